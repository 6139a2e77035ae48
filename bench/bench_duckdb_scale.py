"""How the research views and queries scale: a synthetic DuckDB of N sessions, every documented query timed.

A temporary database gets the project's schema (:func:`pipeline.storage.db.connect` migrates it) and is
filled in SQL with synthetic rows: clients with 5 to 30 weekly sessions each, the 80 indicators the
pipeline writes per session (names, roles and units taken from :func:`pipeline.analysis.indicators.measure_session`
on a tiny dialogue), ``--markers-per-session`` marker events, consent (90 % research scope) and, for a
share of sessions, SRS and ORS totals (plus one client-level ORS "pre" per client). ``words`` and ``turns``
stay empty: no view reads them. Values are random; the row counts are exact.

Then each query is timed (median of ``--repeats`` after one warm-up): the views of
``pipeline/storage/migrations/*.sql`` materialised whole (``CREATE TEMP TABLE AS``, so no transfer to
Python is counted), the README's example queries, per-session and per-client look-ups, a per-client
trajectory in SQL, the comparison (:func:`pipeline.research.compare.run_comparison`, and its loading steps), the
researcher sandbox (:func:`pipeline.research.access.research_database`, behind ``alliance query`` and
researcher exports) and ``alliance export``'s default views as Parquet. Queries over ``--target-s``
(default 1 s) are flagged.

Prints JSON to stdout and a Markdown table to stderr (or ``--markdown FILE``)::

    .venv/bin/python -m bench.bench_duckdb_scale --sessions 100000 --markdown bench/results/duckdb_100k.md
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd

from bench.bench_long import machine_info
from pipeline.storage import db, encryption

ROOT = Path(__file__).resolve().parents[1]
BENCH = Path(__file__).resolve().parent

RUN_ID = "run-bench-scale"
IMPORT_ID = "import-bench-scale"
#: a study key for the researcher sandbox (any bytes do)
STUDY_KEY = b"bench-study-key-0123456789abcdef"


@dataclass(frozen=True)
class Query:
    """One timed item: SQL or a Python callable.

    ``kind`` "ctas": SQL materialised in DuckDB; "df": SQL fetched as a DataFrame; "call": a Python callable
    taking the connection.
    """

    name: str
    what: str
    kind: str
    sql: str = ""
    params: tuple[Any, ...] = ()
    call: Callable[[duckdb.DuckDBPyConnection], Any] | None = None
    repeats: int | None = None  # None: the run's --repeats
    after: Callable[[], None] | None = None  # run once after the timing (not timed)


# ----------------------------------------------------------------------------------------------------
# synthetic data


def indicator_catalogue() -> pd.DataFrame:
    """Every indicator the pipeline writes for one session: columns ``name``, ``speaker_role``, ``unit``.

    Computed by :func:`pipeline.analysis.indicators.measure_session` on a four-turn dialogue (no models needed), so
    it follows the markers version in use. Also returns the marker kinds seen, in ``attrs["marker_kinds"]``.
    """
    from pipeline.analysis.attribute import assign_words, build_turns
    from pipeline.analysis.indicators import measure_session
    from pipeline.analysis.roles import assign_roles
    from pipeline.types import Diarization, SpeakerTurn, Word

    lines = [("SPEAKER_01", "How have you been since we last met? What would you like to focus on today?", 0.5, 5.0),
             ("SPEAKER_00", "I have been okay I think. My sister and I had a fight and we did not talk.", 5.6, 11.0),
             ("SPEAKER_01", "That sounds hard. Let's look at what happened and what you need from her?", 11.4, 15.0),
             ("SPEAKER_00", "I don't know. I guess I want us to be close again.", 18.0, 21.0)]
    words: list[Word] = []
    for _, text, a, b in lines:
        tokens = text.split()
        step = (b - a) / len(tokens)
        words += [Word(a + i * step, a + (i + 1) * step, tok, 0.9) for i, tok in enumerate(tokens)]
    diarization = Diarization(tuple(SpeakerTurn(a, b, s) for s, _, a, b in lines), ("SPEAKER_00", "SPEAKER_01"))
    attributed = assign_words(words, diarization)
    measures = measure_session(attributed, diarization, assign_roles(build_turns(attributed)), duration_s=22.0)
    cat = pd.DataFrame({"name": [i.name for i in measures.indicators],
                        "speaker_role": [i.speaker_role for i in measures.indicators],
                        "unit": [i.unit for i in measures.indicators]})
    cat.attrs["marker_kinds"] = sorted({m.kind for m in measures.markers} | {"long_silence", "we_language"})
    return cat


def client_plan(n_sessions: int, *, seed: int = 0, min_sessions: int = 5, max_sessions: int = 30) -> pd.DataFrame:
    """One row per session: ``session_id``, ``client_id``, ``therapist_id``, ``recorded_on`` (weekly per client).

    Clients get ``min_sessions`` to ``max_sessions`` sessions (uniform); the last client takes what is left.
    """
    rng = np.random.default_rng(seed)
    counts = rng.integers(min_sessions, max_sessions + 1, size=n_sessions // min_sessions + 1)
    ends = np.cumsum(counts)
    n_clients = int(np.searchsorted(ends, n_sessions) + 1)
    counts = counts[:n_clients].copy()
    counts[-1] -= int(ends[n_clients - 1] - n_sessions)
    client = np.repeat(np.arange(n_clients), counts)
    k = np.arange(n_sessions) - np.repeat(np.cumsum(counts) - counts, counts)
    start = np.datetime64("2022-01-03") + rng.integers(0, 3 * 365, size=n_clients).astype("timedelta64[D]")
    therapist = rng.integers(0, max(1, n_clients // 20), size=n_clients)
    return pd.DataFrame({
        "session_id": [f"s{i:07d}" for i in range(n_sessions)],
        "client_id": [f"c{c:06d}" for c in client],
        "therapist_id": [f"t{t:04d}" for t in therapist[client]],
        "recorded_on": (start[client] + (7 * k).astype("timedelta64[D]")).astype("datetime64[s]"),
    })


def fill_database(con: duckdb.DuckDBPyConnection, n_sessions: int, *, seed: int = 0,
                  self_report_share: float = 0.6, research_share: float = 0.9,
                  markers_per_session: int = 20) -> dict[str, int]:
    """Fill a migrated, empty database with ``n_sessions`` synthetic sessions (see the module docstring).

    Returns
    -------
    dict
        Row count of every table filled.
    """
    from pipeline import PIPELINE_VERSION
    from pipeline.analysis.indicators import MARKERS_VERSION
    from pipeline.research.self_report.instruments import BUILTIN

    plan = client_plan(n_sessions, seed=seed)
    cat = indicator_catalogue()
    kinds = pd.DataFrame({"kind": cat.attrs["marker_kinds"]})
    kinds["k"] = range(len(kinds))
    con.execute(f"SELECT setseed({(seed % 1000) / 1000})")
    con.register("_plan", plan)
    con.register("_cat", cat)
    con.register("_kinds", kinds)
    try:
        con.execute("BEGIN TRANSACTION")
        con.execute(
            "INSERT INTO pipeline_runs (run_id, pipeline_version, models, started_at, finished_at, status, command)"
            " VALUES (?, ?, '{}', now(), now(), 'finished', 'bench_duckdb_scale')", [RUN_ID, PIPELINE_VERSION])
        con.execute(
            "INSERT INTO sessions (session_id, client_id, therapist_id, recorded_on, audio_sha256, duration_s,"
            " language, pipeline_version, run_id, processed_at, asr_backend, asr_model, diarization_model,"
            " num_speakers, role_method, role_confidence, role_evidence, therapist_label, client_label,"
            " markers_version, source_format, source_sample_rate_hz, source_channels)"
            " SELECT session_id, client_id, therapist_id, recorded_on::DATE, sha256(session_id),"
            " 2400 + 1200 * random(), 'en', ?, ?, now(), 'faster-whisper', 'whisper-base', 'bench', 2,"
            " 'talk_share', 0.5 + 0.5 * random(), 'synthetic', 'SPEAKER_00', 'SPEAKER_01', ?, 'FLAC', 16000, 1"
            " FROM _plan", [PIPELINE_VERSION, RUN_ID, MARKERS_VERSION])
        con.execute(
            "INSERT INTO consents (session_id, client_id, scope, consented_on, consented_by, source, run_id)"
            " SELECT session_id, client_id, CASE WHEN hash(client_id) % 1000 < ? THEN 'research' ELSE 'clinical'"
            " END, recorded_on::DATE, 'client', 'bench', ? FROM _plan", [int(research_share * 1000), RUN_ID])
        con.execute(
            "INSERT INTO indicators (session_id, name, speaker_role, value, unit, run_id)"
            " SELECT p.session_id, c.name, c.speaker_role, CASE WHEN random() < 0.02 THEN NULL"
            " WHEN c.unit = 'ratio' THEN random() ELSE 50 * random() END, c.unit, ? FROM _plan p CROSS JOIN _cat c",
            [RUN_ID])
        con.execute(
            "INSERT INTO markers (session_id, kind, speaker_role, start_s, end_s, value, detail, run_id)"
            " SELECT session_id, kind, role, t, t + 5 * random(), random(), '{\"quote\": \"synthetic\"}', ?"
            " FROM (SELECT p.session_id, k.kind, CASE WHEN r.i % 2 = 0 THEN 'therapist' ELSE 'client' END AS role,"
            "       r.i * 120 + 100 * random() AS t"
            "       FROM _plan p CROSS JOIN range(?) r(i) JOIN _kinds k ON k.k = r.i % (SELECT count(*) FROM _kinds))",
            [RUN_ID, markers_per_session])
        # self-report: one import, SRS and ORS as built in, SRS + ORS at a share of sessions, ORS "pre" per client
        con.execute(
            "INSERT INTO self_report_imports (import_id, source_path, source_sha256, file_format, instruments,"
            " lines_read, values_read, values_accepted, values_rejected, administrations, pipeline_version,"
            " imported_at, command) VALUES (?, 'bench.csv', 'x', 'wide', 'srs,ors', 0, 0, 0, 0, 0, ?, now(),"
            " 'bench')", [IMPORT_ID, PIPELINE_VERSION])
        for key in ("srs", "ors"):
            inst = BUILTIN[key]
            con.execute("INSERT INTO self_report_instruments VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        [IMPORT_ID, key, inst.name, inst.source, inst.kind, inst.scoring, inst.concern_below,
                         inst.reliable_change, inst.to_json()])
        con.execute(
            "CREATE TEMP TABLE _adm AS"
            " SELECT 'A-' || session_id || '-' || i.instrument AS administration_id, i.instrument, client_id,"
            "        session_id, recorded_on::DATE AS administered_on, NULL::VARCHAR AS timepoint"
            " FROM _plan, (VALUES ('srs'), ('ors')) i(instrument)"
            " WHERE hash(session_id) % 1000 < ?"
            " UNION ALL"
            " SELECT 'A-' || client_id || '-ors-pre', 'ors', client_id, NULL, min(recorded_on)::DATE - 7, 'pre'"
            " FROM _plan GROUP BY client_id", [int(self_report_share * 1000)])
        con.execute(
            "INSERT INTO self_report_administrations (administration_id, import_id, instrument, client_id,"
            " session_id, administered_on, timepoint, n_items, n_answered, status, note)"
            " SELECT administration_id, ?, instrument, client_id, session_id, administered_on, timepoint, 4, 4,"
            " 'scored', NULL FROM _adm", [IMPORT_ID])
        con.execute(
            "INSERT INTO self_report_scores (administration_id, import_id, instrument, scale, value, n_items,"
            " n_answered, prorated, note)"
            " SELECT administration_id, ?, instrument, 'total', CASE WHEN instrument = 'srs'"
            " THEN round(28 + 12 * random(), 1) ELSE round(40 * random(), 1) END, 4, 4, false, NULL FROM _adm",
            [IMPORT_ID])
        con.execute("DROP TABLE _adm")
        con.execute("COMMIT")
    finally:
        for view in ("_plan", "_cat", "_kinds"):
            con.unregister(view)
    con.execute("CHECKPOINT")
    tables = ("sessions", "consents", "indicators", "markers", "self_report_administrations", "self_report_scores")
    counts = {t: int(con.execute(f"SELECT count(*) FROM {t}").fetchone()[0]) for t in tables}
    counts["clients"] = int(plan["client_id"].nunique())
    return counts


# ----------------------------------------------------------------------------------------------------
# queries


def _middle_client(con: duckdb.DuckDBPyConnection) -> str:
    """A research-scope client with the median number of sessions (a typical per-client look-up)."""
    return con.execute(
        "WITH n AS (SELECT client_id, count(*) AS k FROM research_sessions GROUP BY client_id)"
        " SELECT client_id FROM n ORDER BY abs(k - (SELECT median(k) FROM n)), client_id LIMIT 1").fetchone()[0]


def queries(con: duckdb.DuckDBPyConnection, *, out_dir: Path) -> list[Query]:
    """The timed items, in order (the comparison runs before the queries that read its tables)."""
    from pipeline.cli.research import DEFAULT_EXPORTS
    from pipeline.research.export import export

    client = _middle_client(con)
    session = con.execute("SELECT min(session_id) FROM research_sessions WHERE client_id = ?", [client]).fetchone()[0]
    q: list[Query] = []
    for view in ("indicators_wide", "self_report_scores_long", "session_indicators_self_report", "client_series",
                 "research_sessions", "research_indicators", "research_markers", "research_self_report_scores"):
        q.append(Query(f"view:{view}", f"the whole view {view}, materialised", "ctas", f"SELECT * FROM {view}"))
    q += [
        Query("readme:sessions_x_indicators_wide", "README Schema example (sessions JOIN indicators_wide, ordered)",
              "df", "SELECT s.session_id, s.recorded_on, w.talk_time_share_client, w.talk_time_share_therapist,"
                    " w.we_rate_client, w.long_silence_count FROM sessions s JOIN indicators_wide w USING (session_id)"
                    " ORDER BY s.recorded_on"),
        Query("wide:sync_noop", "sync_indicators_wide when nothing changed (paid by every write and research read)",
              "call", call=_sync_wide),
        Query("research:session_wide", "session_wide (every indicator + linked self-report, one row per session), "
              "materialised", "call", call=_session_wide),
        Query("session:indicators_wide", "indicators_wide of one session", "df",
              "SELECT * FROM indicators_wide WHERE session_id = ?", (session,)),
        Query("client:session_indicators_self_report", "session_indicators_self_report of one client", "df",
              "SELECT * FROM session_indicators_self_report WHERE client_id = ? ORDER BY recorded_on, indicator",
              (client,)),
        Query("client:client_series", "client_series of one client", "df",
              "SELECT * FROM client_series WHERE client_id = ? ORDER BY session_number, series, name", (client,)),
        Query("client:trajectory_sql", "one client's series with baseline and change (window over client_series)",
              "df", trajectory_sql("WHERE client_id = ?") + " ORDER BY series, name, speaker_role, session_number",
              (client,)),
        Query("all:trajectory_sql", "every client's series with baseline and change, materialised", "ctas",
              trajectory_sql()),
        Query("all:client_means_srs", "per-client mean talk_time_share:client against mean SRS total", "df",
              "SELECT client_id, avg(indicator_value) AS talk_share, avg(score) AS srs, count(*) AS n"
              " FROM session_indicators_self_report WHERE indicator = 'talk_time_share' AND speaker_role = 'client'"
              " AND instrument = 'srs' AND scale = 'total' GROUP BY client_id"),
    ]
    q += compare_queries(client)
    q.append(Query("research:research_database", "pseudonymised in-memory research copy (alliance query, "
                   "researcher export)", "call", call=_research_rows, repeats=1))
    q.append(Query("research:query_session_wide", "alliance query on session_wide only (the sandbox loads only the "
                   "relations a query names)", "call", call=_research_session_wide, repeats=1))
    q.append(Query("export:dataset", "alliance export --dataset (Parquet + codebook, pseudonymised)", "call",
                   call=lambda c: _dataset(c, out_dir / "dataset"), repeats=1))
    for view in DEFAULT_EXPORTS:
        q.append(Query(f"export:{view}", f"alliance export {view} (Parquet, by client_id where present)", "call",
                       call=lambda c, v=view: export(c, v, out_dir=out_dir, fmt="parquet", overwrite=True),
                       repeats=1))
    return q


def compare_queries(client: str) -> list[Query]:
    """The steps of :func:`pipeline.research.compare.run_comparison`, whole runs, and queries of its tables.

    The steps one by one (staging in DuckDB, the estimate table from per-client sums, flags, trajectories in
    SQL), then the whole run for all instruments and for each instrument, then the README and per-client
    queries of the tables it writes.
    """
    from pipeline.research import compare

    opts = compare.CompareOptions(allow_mixed_versions=True)

    def srs(c: duckdb.DuckDBPyConnection):
        return compare.run_comparison(c, options=compare.CompareOptions(instruments=("srs",)), command="bench")

    def ors(c: duckdb.DuckDBPyConnection):
        return compare.run_comparison(c, options=compare.CompareOptions(instruments=("ors",)), command="bench")

    held: dict[str, compare.Staged] = {}

    def stage(c: duckdb.DuckDBPyConnection) -> int:
        held["staged"] = compare.stage(c, opts)
        return held["staged"].n_sessions

    def trajectories_all(c: duckdb.DuckDBPyConnection) -> int:
        compare.stage_indicator_rows(c, held["staged"])
        c.execute(f"CREATE OR REPLACE TEMP TABLE _bench_traj AS {compare.trajectories_sql('all')}")
        return int(c.execute("SELECT count(*) FROM _bench_traj").fetchone()[0])

    return [
        Query("compare:stage", "compare.stage: research sessions and linked scores (DuckDB temp tables), duplicate "
              "and version checks, one row per scored session with every indicator fetched from indicators_wide",
              "call", call=stage),
        Query("compare:estimates", "compare.estimates: per-client sums of every indicator (numpy, column-wise), "
              "then the within-client estimate with session position as fixed effects (cluster-robust), the "
              "repeated-measures correlations (not adjusted for trend) and client-mean correlations", "call",
              call=lambda c: compare.estimates(held["staged"], opts)),
        Query("compare:discrepancy_flags", "compare.flags_for", "call",
              call=lambda c: compare.flags_for(held["staged"], opts)),
        Query("compare:trajectories", "self-report trajectories in SQL (materialised)", "ctas",
              compare.trajectories_sql("self_report")),
        Query("compare:trajectories_all", "indicator values in long form + self-report and indicator trajectories "
              "in SQL (--trajectories all)", "call", call=trajectories_all, repeats=1),
        Query("compare:run_comparison", "compare.run_comparison, all defaults (alliance compare), stored", "call",
              call=lambda c: compare.run_comparison(c, command="bench"), repeats=1),
        Query("compare:run_comparison_srs", "alliance compare --instrument srs (stored)", "call", call=srs),
        Query("compare:run_comparison_ors", "alliance compare --instrument ors (stored)", "call", call=ors),
        Query("readme:comparison_results", "README comparison_results example", "df",
              "SELECT indicator, speaker_role, instrument, scale, level, n_sessions, n_clients, estimate,"
              " estimate_ci_low, estimate_ci_high, estimate_q FROM comparison_results"
              " WHERE comparison_id = (SELECT max(comparison_id) FROM comparison_runs)"
              " ORDER BY abs(estimate) DESC NULLS LAST"),
        Query("client:client_trajectories", "client_trajectories (table) of one client, latest comparison", "df",
              "SELECT * FROM client_trajectories WHERE client_id = ? AND comparison_id ="
              " (SELECT max(comparison_id) FROM comparison_runs) ORDER BY series, name, occasion", (client,)),
    ]


def _sync_wide(con: duckdb.DuckDBPyConnection) -> int:
    from pipeline.storage.wide import sync_indicators_wide

    return sync_indicators_wide(con)


def _session_wide(con: duckdb.DuckDBPyConnection) -> int:
    from pipeline.research.dataset import session_wide_sql

    con.execute(f"CREATE OR REPLACE TEMP TABLE _bench_wide AS {session_wide_sql(con)}")
    n = int(con.execute("SELECT count(*) FROM _bench_wide").fetchone()[0])
    con.execute("DROP TABLE _bench_wide")
    return n


def _research_session_wide(con: duckdb.DuckDBPyConnection) -> int:
    from pipeline.research.access import relations_in, research_sandbox

    sql = "SELECT count(*) FROM session_wide"
    box = research_sandbox(con, key=STUDY_KEY, names=relations_in(sql))
    try:
        return int(box.execute(sql).fetchone()[0])
    finally:
        box.close()


def _dataset(con: duckdb.DuckDBPyConnection, out: Path) -> int:
    from pipeline.research.dataset import write_dataset

    return write_dataset(con, out, key=STUDY_KEY, overwrite=True).rows


def fill_trajectories_sql(con: duckdb.DuckDBPyConnection) -> int:
    """Stand in for a comparison run that was skipped.

    Fills ``client_trajectories`` (and a ``comparison_runs`` row) from :func:`trajectory_sql`, so the
    queries of that table have its size.

    Returns
    -------
    int
        Rows written.
    """
    cid = "compare-bench-sql"
    con.execute("INSERT INTO comparison_runs VALUES (?, now(), '{}', 0, 'none', 'bench', 'bench (SQL stand-in)')",
                [cid])
    con.execute(
        "INSERT INTO client_trajectories (comparison_id, client_id, series, name, speaker_role, timepoint, occasion,"
        " session_id, on_date, value, baseline, change_from_baseline, reliable_change)"
        f" SELECT ?, client_id, series, name, speaker_role, timepoint, coalesce(session_number, 0), session_id,"
        f" on_date, value, baseline, change_from_baseline, NULL FROM ({trajectory_sql()})", [cid])
    return int(con.execute("SELECT count(*) FROM client_trajectories WHERE comparison_id = ?", [cid]).fetchone()[0])


def _research_rows(con: duckdb.DuckDBPyConnection) -> int:
    """Build the researcher's pseudonymised in-memory copy; return its total row count."""
    from pipeline.research.access import RELATIONS, research_database

    box = research_database(con, key=STUDY_KEY)
    try:
        return sum(int(box.execute(f"SELECT count(*) FROM {r.name}").fetchone()[0]) for r in RELATIONS)
    finally:
        box.close()


def trajectory_sql(where: str = "") -> str:
    """Per-client series with the client's baseline (first value) and change from it, in SQL.

    ``where`` filters ``client_series`` before the window (e.g. ``"WHERE client_id = ?"``); the window is
    partitioned by client, so filtering by client first gives the same rows.
    """
    return ("SELECT client_id, series, name, speaker_role, timepoint, session_number, session_id, on_date, value,"
            " first_value(value) OVER w AS baseline, value - first_value(value) OVER w AS change_from_baseline"
            f" FROM client_series {where}"
            " WINDOW w AS (PARTITION BY client_id, series, name, speaker_role, timepoint"
            " ORDER BY session_number NULLS FIRST, on_date)")


def run_query(con: duckdb.DuckDBPyConnection, q: Query) -> int | None:
    """Run one item once; return the rows it produced (None for a call that returns no frame)."""
    if q.kind == "ctas":
        con.execute(f"CREATE OR REPLACE TEMP TABLE _bench_out AS {q.sql}", list(q.params))
        n = int(con.execute("SELECT count(*) FROM _bench_out").fetchone()[0])
        con.execute("DROP TABLE _bench_out")
        return n
    if q.kind == "df":
        return len(con.execute(q.sql, list(q.params)).df())
    out = q.call(con)
    if isinstance(out, pd.DataFrame):
        return len(out)
    if isinstance(out, int):
        return out
    if hasattr(out, "rows"):  # pipeline.research.export.ExportedFile
        return int(out.rows)
    if hasattr(out, "results"):  # pipeline.research.compare.Comparison: rows of the correlation table
        return len(out.results)
    return None


def time_query(con: duckdb.DuckDBPyConnection, q: Query, *, repeats: int, target_s: float) -> dict[str, Any]:
    """One warm-up, then the median of ``repeats`` runs (``q.repeats`` overrides; 1 means no warm-up)."""
    n_runs = q.repeats or repeats
    rows = None
    if n_runs > 1:
        rows = run_query(con, q)
    runs = []
    for _ in range(n_runs):
        t = time.perf_counter()
        rows = run_query(con, q)
        runs.append(time.perf_counter() - t)
    if q.after is not None:
        q.after()
    median = statistics.median(runs)
    return {"name": q.name, "what": q.what, "median_s": round(median, 4), "runs_s": [round(r, 4) for r in runs],
            "warm_up": n_runs > 1, "rows": rows, "over_target": median > target_s}


#: compare steps and the steps whose results they use
NEEDS = {"compare:paired": ("compare:load",), "compare:correlation_table": ("compare:load", "compare:paired"),
         "compare:estimates": ("compare:stage",), "compare:discrepancy_flags": ("compare:stage",),
         "compare:trajectories": ("compare:stage",), "compare:trajectories_all": ("compare:stage",)}


def select(items: Sequence[Query], *, only: Sequence[str] = (), skip: Sequence[str] = ()) -> list[Query]:
    """The items named by ``only`` less those named by ``skip``, with the steps they need.

    ``only`` and ``skip`` are substrings (``only`` empty: all); the steps come from :data:`NEEDS`; the
    original order is kept.
    """
    chosen = {q.name for q in items if (not only or any(o in q.name for o in only))
              and not any(x in q.name for x in skip)}
    chosen |= {dep for name in chosen for dep in NEEDS.get(name, ())}
    return [q for q in items if q.name in chosen]


def bench(n_sessions: int, *, repeats: int = 3, target_s: float = 1.0, seed: int = 0,
          markers_per_session: int = 20, self_report_share: float = 0.6, only: Sequence[str] = (),
          skip: Sequence[str] = (), work_dir: Path | None = None, log: bool = True) -> dict[str, Any]:
    """Build the database of ``n_sessions`` sessions and time every query.

    Parameters
    ----------
    n_sessions : int
    repeats : int
        Timed runs per query (after one warm-up); the median is reported.
    target_s : float
        Queries with a median above this are flagged ``over_target``.
    only, skip : sequence of str
        Time only the items whose name contains one of ``only`` (all when empty), and none whose name
        contains one of ``skip``. The comparison steps' input (``compare:stage``; ``compare:load`` and
        ``compare:paired`` in older item lists) is timed whenever a later step is. When
        ``compare:run_comparison`` is not run, ``client_trajectories``
        is filled by :func:`fill_trajectories_sql` instead, so the queries of that table still see its size.
    work_dir : Path, optional
        Where the database and exports go (default: a temporary folder, removed afterwards).

    Returns
    -------
    dict
        ``n_sessions``, ``rows`` (per table), ``fill_s``, ``db_mb``, ``duckdb`` (version, threads, memory
        limit), ``queries`` (name, what, median_s, runs_s, rows, over_target), ``over_target`` (names),
        ``peak_rss_mb``.
    """
    with tempfile.TemporaryDirectory(prefix="bench-duckdb-", dir=work_dir) as tmp:
        path = Path(tmp) / "scale.duckdb"
        t = time.perf_counter()
        con = db.connect(path)  # migrates; encrypted when the environment sets a database key
        try:
            counts = fill_database(con, n_sessions, seed=seed, markers_per_session=markers_per_session,
                                   self_report_share=self_report_share)
            fill_s = time.perf_counter() - t
            if log:
                print(f"filled {n_sessions} sessions in {fill_s:.1f} s: {counts}", file=sys.stderr, flush=True)
            t = time.perf_counter()
            counts["indicators_wide"] = _sync_wide(con)  # the first build of the wide table (every session new)
            wide_build_s = time.perf_counter() - t
            results = []
            items = select(queries(con, out_dir=Path(tmp) / "export"), only=only, skip=skip)
            if "compare:run_comparison" not in {q.name for q in items}:
                counts["client_trajectories_sql"] = fill_trajectories_sql(con)
            for q in items:
                try:
                    r = time_query(con, q, repeats=repeats, target_s=target_s)
                except Exception as e:  # noqa: BLE001 - one broken query must not hide the others' timings
                    r = {"name": q.name, "what": q.what, "median_s": None, "runs_s": [], "warm_up": False,
                         "rows": None, "over_target": False, "error": f"{type(e).__name__}: {e}"[:500]}
                r["peak_rss_mb_after"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
                results.append(r)
                if log:
                    if "error" in r:
                        print(f"    error    {q.name}: {r['error'][:200]}", file=sys.stderr, flush=True)
                    else:
                        flag = "  OVER" if r["over_target"] else ""
                        print(f"{r['median_s']:9.3f} s  {q.name} ({r['rows']} rows){flag}", file=sys.stderr,
                              flush=True)
            info = con.execute("SELECT version(), current_setting('threads'), current_setting('memory_limit')"
                               ).fetchone()
        finally:
            con.close()
        db_mb = path.stat().st_size / 2**20
    return {"n_sessions": n_sessions, "rows": counts, "fill_s": round(fill_s, 2), "db_mb": round(db_mb, 1),
            "wide_build_s": round(wide_build_s, 2),
            "duckdb": {"version": info[0], "threads": info[1], "memory_limit": info[2]},
            "repeats": repeats, "target_s": target_s, "queries": results,
            "over_target": [r["name"] for r in results if r["over_target"]],
            "errors": [r["name"] for r in results if "error" in r],
            "encrypted": encryption.load_key() is not None,
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)}


def markdown(doc: dict[str, Any]) -> str:
    """The timings as a Markdown table."""
    rows = doc["rows"]
    lines = [f"{doc['n_sessions']} sessions, {rows['clients']} clients, {rows['indicators']} indicator rows, "
             f"{rows['markers']} markers, {rows['self_report_scores']} self-report scores; database "
             f"{doc['db_mb']} MB, filled in {doc['fill_s']} s (indicators_wide built in "
             f"{doc.get('wide_build_s', '-')} s);"
             f" DuckDB {doc['duckdb']['version']}, "
             f"{doc['duckdb']['threads']} threads; peak RSS {doc['peak_rss_mb']} MB. Median of {doc['repeats']} "
             f"after a warm-up (items marked 1x: one run).", "",
             "| query | what | rows | median s | peak MB so far | |", "|---|---|---:|---:|---:|---|"]
    for r in doc["queries"]:
        if "error" in r:
            lines.append(f"| `{r['name']}` | {r['what']} | - | error | {r['peak_rss_mb_after']} | {r['error'][:120]} |")
            continue
        once = "" if r["warm_up"] else " (1x)"
        over = f"**over {doc['target_s']:g} s**" if r["over_target"] else ""
        lines.append(f"| `{r['name']}` | {r['what']} | {r['rows'] if r['rows'] is not None else '-'} "
                     f"| {r['median_s']:.3f}{once} | {r['peak_rss_mb_after']} | {over} |")
    return "\n".join(lines) + "\n"


def _drop_option(argv: list[str], name: str) -> list[str]:
    """``argv`` without ``name`` and its value (``--name V`` or ``--name=V``)."""
    out, skip = [], False
    for a in argv:
        if skip:
            skip = False
        elif a == name:
            skip = True
        elif not a.startswith(name + "="):
            out.append(a)
    return out


def _with_baseline(args: argparse.Namespace, argv: list[str]) -> int:
    """The bench at ``args.baseline`` (a child process on that revision's files), then on this tree, back to back."""
    import io
    import os
    import subprocess
    import tarfile

    rest = _drop_option(_drop_option(argv, "--baseline"), "--markdown")
    runs = {}
    with tempfile.TemporaryDirectory(prefix="bench-baseline-") as tmp:
        archive = subprocess.run(["git", "-C", str(ROOT), "archive", "--format=tar", args.baseline],
                                 capture_output=True, check=True).stdout
        with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
            tar.extractall(tmp, filter="data")
        for label, where in (("baseline", Path(tmp)), ("this_tree", ROOT)):
            load_before = os.getloadavg()
            done = subprocess.run([sys.executable, "-m", "bench.bench_duckdb_scale", *rest], cwd=where,
                                  env={**os.environ, "PYTHONPATH": str(where)}, capture_output=True, text=True,
                                  check=True)
            runs[label] = {**json.loads(done.stdout), "load_before": load_before, "load_after": os.getloadavg()}
            print(done.stderr, file=sys.stderr, flush=True)
    doc = {"command": "python -m bench.bench_duckdb_scale " + " ".join(argv), "baseline_rev": args.baseline,
           "baseline_commit": subprocess.run(["git", "-C", str(ROOT), "rev-parse", args.baseline],
                                             capture_output=True, text=True, check=True).stdout.strip(), **runs}
    print(json.dumps(doc, indent=1, default=str))
    if args.markdown:
        args.markdown.parent.mkdir(parents=True, exist_ok=True)
        args.markdown.write_text("\n".join(f"## {label} (load {runs[label]['load_before'][0]:.1f} before, "
                                           f"{runs[label]['load_after'][0]:.1f} after)\n\n{markdown(runs[label])}"
                                           for label in runs), encoding="utf-8")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Parse the options, run :func:`bench`, print JSON and Markdown."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sessions", type=int, default=100_000, help="number of sessions (default 100000)")
    ap.add_argument("--repeats", type=int, default=3, help="timed runs per query after a warm-up (default 3)")
    ap.add_argument("--target-s", type=float, default=1.0, help="flag queries slower than this (default 1 s)")
    ap.add_argument("--markers-per-session", type=int, default=20, help="marker rows per session (default 20)")
    ap.add_argument("--self-report-share", type=float, default=0.6,
                    help="share of sessions with SRS and ORS (default 0.6)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--only", nargs="+", default=(), metavar="SUBSTRING",
                    help="time only the items whose name contains one of these (e.g. view: client:)")
    ap.add_argument("--skip", nargs="+", default=(), metavar="SUBSTRING",
                    help="skip the items whose name contains one of these (e.g. compare:run_comparison "
                         "compare:correlation_table, quadratic in the number of clients)")
    ap.add_argument("--work-dir", type=Path, help="where the temporary database goes (default: the system temp)")
    ap.add_argument("--markdown", type=Path, help="write the Markdown table here (default: stderr)")
    ap.add_argument("--baseline", metavar="REV",
                    help="first run the same bench with the code of this git revision (git archive into a temporary "
                    "folder, a child process), then this tree's; both go in the JSON (baseline first) with the "
                    "load average before and after each")
    args = ap.parse_args(argv)
    if args.baseline:
        return _with_baseline(args, argv if argv is not None else sys.argv[1:])
    doc = bench(args.sessions, repeats=args.repeats, target_s=args.target_s, seed=args.seed,
                markers_per_session=args.markers_per_session, self_report_share=args.self_report_share,
                only=args.only, skip=args.skip, work_dir=args.work_dir)
    doc["machine"] = machine_info(with_torch=False)
    print(json.dumps(doc, indent=1, default=str))
    table = markdown(doc)
    if args.markdown:
        args.markdown.parent.mkdir(parents=True, exist_ok=True)
        args.markdown.write_text(table, encoding="utf-8")
    else:
        print("\n" + table, file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
