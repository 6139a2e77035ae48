"""``alliance import-self-report``, ``alliance compare`` and ``alliance export``: the research side.

Exit codes: 0 done; 1 import stored the valid rows but rejected some (see the report); 2 usage,
configuration or file-level error (nothing stored).
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from pipeline.cli.args import add_db_argument, non_negative_int


def register(sub: argparse._SubParsersAction) -> None:
    i = sub.add_parser(
        "import-self-report", help="import client self-report ratings (SRS, ORS, WAI-SR, custom) from CSV",
        description="Validate a CSV of self-report ratings row by row, store the valid rows with their item, "
        "subscale and total scores (linked to sessions), and print an import report. Wide format: one line "
        "per administration with session_id and/or client_id, date (YYYY-MM-DD), optional timepoint, and one "
        "column per item key. Long format (columns item and value): session_id/client_id, date, timepoint, "
        "instrument, item, value. Out-of-range values, unknown items, sessions or clients, bad dates and "
        "duplicates are reported, never coerced; valid rows still go in. Built-in item keys: srs: relationship "
        "goals approach overall; ors: individually interpersonally socially overall; wai-sr: q1..q12.")
    i.add_argument("file", type=Path, metavar="FILE.csv")
    i.add_argument("--instrument", metavar="KEY",
                   help="srs, ors, wai-sr or a key from --instrument-config (required for the wide format)")
    i.add_argument("--instrument-config", type=Path, action="append", default=[], metavar="TOML_OR_JSON",
                   help="declare custom instruments (items, range, subscales, reverse_keyed, max_missing, ...); "
                   "repeatable")
    i.add_argument("--ignore-column", action="append", default=[], metavar="NAME",
                   help="a column to skip (unknown columns are an error otherwise); repeatable")
    i.add_argument("--report", type=Path, metavar="PATH", help="also write the row-level problems to this CSV")
    i.add_argument("--dry-run", action="store_true", help="validate and report, store nothing")
    i.add_argument("--link-window-days", type=non_negative_int, default=3, metavar="DAYS",
                   help="linking window (default 3): a client_id + date line links to the client's session nearest "
                   "in date within DAYS days (the distance is stored); a session_id line dated further than DAYS "
                   "from its session is rejected")
    add_db_argument(i)
    i.set_defaults(handler=_cmd_import)

    c = sub.add_parser(
        "compare", help="relate process indicators to self-report (mixed model within clients, CIs, q values)",
        description="For each indicator x self-report measure, within clients (primary for repeated sessions): "
        "a mixed model with a random client intercept and the indicator split into its within-client part and "
        "the client mean, adjusted for session number (default), giving a standardised within-client slope "
        "with a cluster-robust 95%% CI (defaults chosen by python -m bench.calibration; see "
        "docs/research_calibration.md), and the repeated-measures correlation beside it; between clients: "
        "Spearman and Pearson correlations of client means with Fisher-z CIs. Every row names its sessions and "
        "clients, method, covariates and markers/lexicons versions. Benjamini-Hochberg q values; discrepancy "
        "flags (strain signals vs a high alliance rating, and the reverse; only indicators with supported evidence "
        "are strain signals: none today) and per-client self-report "
        "trajectories with baseline and reliable change. Stored in comparison_results, discrepancy_flags and "
        "client_trajectories under a new comparison_id and printed. Associations, not effects: expect them to "
        "be small.")
    c.add_argument("--instrument", action="append", default=[], metavar="KEY", help="restrict to this instrument "
                   "(repeatable; default: every imported one)")
    c.add_argument("--scale", action="append", default=[], metavar="NAME",
                   help="restrict to this scale, e.g. total, bond (repeatable)")
    c.add_argument("--indicator", action="append", default=[], metavar="NAME[:ROLE]",
                   help="indicator name, optionally with role therapist, client or session, e.g. we_rate:client "
                   "(repeatable; default: every process indicator)")
    c.add_argument("--level", choices=("between", "within", "both"), default="both",
                   help="between clients (client means), within clients (client-centred), or both (default)")
    c.add_argument("--min-n", type=int, default=5, help="smallest (effective) n to estimate a correlation "
                   "(default 5)")
    c.add_argument("--flags", type=int, default=10, metavar="N", help="print at most N discrepancy flags "
                   "(default 10; all are stored)")
    c.add_argument("--covariate", action="append", default=None, metavar="NAME",
                   choices=("session_order", "spline", "session_number", "days_since_first", "client_trend", "none"),
                   help="trend control of the within-client estimate: session_order (default: one effect per "
                   "session position, any trend shape), spline, or the linear session_number, days_since_first, "
                   "client_trend (each client's own linear trend removed), or none; repeatable (linear ones only)")
    c.add_argument("--ci", choices=("cluster", "bootstrap", "model"), default="cluster",
                   help="within-client interval: cluster-robust (default), client bootstrap, or the mixed model's "
                   "own (statsmodels MixedLM, REML; assumes independent sessions)")
    c.add_argument("--bootstrap", type=int, default=999, metavar="B", help="client resamples for --ci bootstrap")
    c.add_argument("--seed", type=int, default=0, help="bootstrap seed (default 0)")
    c.add_argument("--allow-mixed-versions", action="store_true",
                   help="compare sessions processed with different markers versions (refused by default)")
    c.add_argument("--duplicates", choices=("refuse", "latest"), default="refuse",
                   help="several scores of one measure on one session: refuse (default) or use the latest import's")
    c.add_argument("--spearman-within", action=argparse.BooleanOptionalAction, default=None,
                   help="also the rank (Spearman) repeated-measures correlation within clients (default: only up "
                   "to 250,000 session x indicator x measure pairs; ranks over every pair are the slowest step)")
    c.add_argument("--trajectories", choices=("self_report", "all"), default="self_report",
                   help="series stored in client_trajectories: self-report (default) or indicators too (batch)")
    c.add_argument("--include-contradicted", action="store_true",
                   help="also compare indicators whose evidence is contradicted (left out by default)")
    add_db_argument(c)
    c.set_defaults(handler=_cmd_compare)

    e = sub.add_parser(
        "export", help="export tables or views to Parquet (partitioned) or CSV",
        description="Write tables or views (e.g. session_indicators_self_report, comparison_results, "
        "client_trajectories) to OUT_DIR as Parquet (partitioned by client_id where the relation has it) or "
        "CSV, each with NAME.schema.json listing its columns and types.")
    e.add_argument("relations", nargs="*", metavar="NAME", help="table or view names (default: the research views)")
    e.add_argument("--out", type=Path, metavar="OUT_DIR")
    e.add_argument("--dataset", type=Path, metavar="DIR",
                   help="write the analysis-ready dataset instead: DIR/sessions.parquet (or .csv with --format csv; "
                   "one row per research-scope "
                   "session, every indicator as a column with role suffix, self-report scores linked within the "
                   "window) and DIR/codebook.csv (variable, label, unit, definition, accuracy, evidence, markers "
                   "version)")
    e.add_argument("--link-window-days", type=non_negative_int, default=3, metavar="DAYS",
                   help="--dataset: self-report counts as the session's when dated within DAYS (default 3)")
    e.add_argument("--duplicates", choices=("refuse", "latest"), default="refuse",
                   help="--dataset: a session with two scores of one measure: refuse (default) or use the latest")
    e.add_argument("--format", choices=("parquet", "csv"), default="parquet")
    e.add_argument("--partition-by", action="append", default=None, metavar="COLUMN",
                   help="hive partition column (repeatable; default client_id for Parquet)")
    e.add_argument("--no-partition", action="store_true", help="write one file per relation")
    e.add_argument("--overwrite", action="store_true", help="replace existing exports")
    e.add_argument("--role", choices=("researcher", "admin"), default="researcher",
                   help="researcher (default): only the research relations (research-scope sessions, pseudonyms "
                   "instead of ids, no text; needs the study key); admin: any table or view as stored")
    e.add_argument("--study-key-file", type=Path, metavar="KEYFILE",
                   help="the study's pseudonym key (researcher; default: $ALLIANCE_STUDY_KEY_FILE)")
    e.add_argument("--actor", metavar="NAME", help="who exports, for the audit log")
    add_db_argument(e)
    e.set_defaults(handler=_cmd_export)


DEFAULT_EXPORTS = ("session_indicators_self_report", "self_report_scores_long", "client_series",
                   "comparison_results", "discrepancy_flags", "client_trajectories")


def _command() -> str:
    return shlex.join(["alliance", *sys.argv[1:]])


def _cmd_import(args: argparse.Namespace) -> int:
    from pipeline.research.self_report.importer import import_file, write_report_csv
    from pipeline.research.self_report.instruments import load_instruments, resolve
    from pipeline.storage import db

    custom = {}
    for cfg in args.instrument_config:
        custom.update(load_instruments(cfg))
    instruments = resolve([args.instrument] if args.instrument else [], custom)
    with db.open(args.db) as con:
        report = import_file(con, args.file, instrument=args.instrument, instruments=instruments,
                             ignore_columns=args.ignore_column, dry_run=args.dry_run, command=_command(),
                             link_window_days=args.link_window_days)
    for line in report.summary_lines():
        print(line)
    if args.report:
        write_report_csv(report, args.report)
        print(f"  problems written to {args.report}")
    if args.dry_run:
        print("  dry run: nothing stored")
    else:
        print(f"  stored as import {report.import_id} in {Path(args.db).resolve()}")
    return 1 if report.issues else 0


def _cmd_compare(args: argparse.Namespace) -> int:
    from pipeline.research.compare import (
        CAVEAT,
        DEFAULT_COVARIATES,
        CompareOptions,
        format_table,
        run_comparison,
        strain_line,
    )
    from pipeline.storage import db

    covariates = DEFAULT_COVARIATES if args.covariate is None else tuple(c for c in args.covariate if c != "none")
    options = CompareOptions(instruments=tuple(args.instrument), scales=tuple(args.scale),
                             indicators=tuple(args.indicator),
                             levels=("between", "within") if args.level == "both" else (args.level,),
                             min_n=args.min_n, covariates=covariates, ci=args.ci, bootstrap=args.bootstrap,
                             seed=args.seed, allow_mixed_versions=args.allow_mixed_versions,
                             duplicates=args.duplicates, trajectories=args.trajectories,
                             spearman_within=args.spearman_within,
                             include_contradicted=args.include_contradicted)
    with db.open(args.db) as con:
        result = run_comparison(con, options=options, command=_command())
    print(f"Comparison {result.comparison_id}: {result.n_sessions} sessions of {result.n_clients} clients with "
          f"indicators and self-report; markers {result.markers_version}; lexicons {result.lexicons_version}.\n")
    print(format_table(result.results))
    print(f"\n{CAVEAT}\n")
    print(strain_line())
    flags = result.flags
    print(f"Discrepancy flags: {len(flags)} (table discrepancy_flags)")
    for _, f in flags.head(args.flags).iterrows():
        tp = f" @{f['timepoint']}" if isinstance(f["timepoint"], str) else ""
        print(f"  {f['session_id']} ({f['client_id']}): {f['flag']}: {f['instrument']}.{f['scale']}{tp} = "
              f"{f['score']:g}; {f['strain_signals'] if isinstance(f['strain_signals'], str) else f['detail']}")
    print(f"Trajectories: {len(result.trajectories)} rows (table client_trajectories).")
    return 0


def _export_dataset(args: argparse.Namespace) -> int:
    from pipeline.research.dataset import write_dataset
    from pipeline.research.pseudonyms import load_study_key
    from pipeline.storage import audit, db

    key = load_study_key(args.study_key_file) if args.role == "researcher" else None
    with db.open(args.db, create=False) as con:
        d = write_dataset(con, args.dataset, key=key, window_days=args.link_window_days, duplicates=args.duplicates,
                          overwrite=args.overwrite, fmt=args.format)
        audit.record(con, action="export", actor=audit.current_actor(args.actor), role=args.role,
                     detail=f"dataset to {args.dataset}: {d.rows} sessions x {d.columns} columns")
    ids = "pseudonymised ids" if key is not None else "ids as stored (admin)"
    print(f"dataset: {d.rows} sessions x {d.columns} columns -> {d.data} ({ids}); codebook -> {d.codebook}")
    return 0


def _cmd_export(args: argparse.Namespace) -> int:
    from pipeline.errors import ConfigError
    from pipeline.research.access import RELATIONS, check_relation, load_study_key, research_database
    from pipeline.research.export import export
    from pipeline.storage import audit, db

    if args.dataset is not None:
        return _export_dataset(args)
    if args.out is None:
        raise ConfigError("alliance export needs --out OUT_DIR (or --dataset DIR)")
    part = () if args.no_partition else (tuple(args.partition_by) if args.partition_by else None)
    with db.open(args.db, create=False) as con:
        if args.role == "researcher":
            names = args.relations or [r.name for r in RELATIONS]
            for name in names:
                check_relation(name)
            source = research_database(con, key=load_study_key(args.study_key_file), names=names)
        else:
            names = args.relations or list(DEFAULT_EXPORTS)
            source = con
        try:
            for name in names:
                f = export(source, name, out_dir=args.out, fmt=args.format, partition_by=part,
                           overwrite=args.overwrite)
                how = f" partitioned by {', '.join(f.partition_by)}" if f.partition_by else ""
                print(f"{f.relation}: {f.rows} rows -> {f.path}{how}")
        finally:
            if source is not con:
                source.close()
        audit.record(con, action="export", actor=audit.current_actor(args.actor), role=args.role,
                     detail=f"{args.format} to {args.out}: {', '.join(names)}")
    return 0
