"""Which process indicators track the client's own ratings? Estimates, discrepancies, trajectories.

The unit of analysis is a session with both an indicator value and a self-report score linked to it. For
every indicator (name and role) x measure (instrument, scale, timepoint) and level:

* **within** clients (primary for repeated sessions): by default client-centred with one fixed effect per
  session position, so a trend of any shape shared by indicator and score is removed
  (:func:`pipeline.research.within.ordered_within`, statsmodels OLS, CR1 cluster-robust interval, t with G - 1
  df; chosen by ``python -m bench.calibration``, table in ``docs/research_calibration.md``). A client with an
  undated session has no known order: the estimate is then refused with that reason. The linear controls
  (session number, days since the first session, each client's own linear trend) remain as options, with the
  mixed model's bootstrap or model-based intervals. The repeated-measures correlation (Spearman and Pearson,
  Bakdash & Marusich 2017) is kept beside it as a description, **not adjusted for trend**.
* **between** clients: Spearman (primary) and Pearson correlations of the client means (n = clients).

Every row says how many sessions and clients contribute, the method, interval method and covariates, and the
markers and lexicons versions of the sessions used (sessions of different markers versions are refused unless
``allow_mixed_versions``). q values: Benjamini-Hochberg over all tests of the run, per column.

The heavy steps never touch the long tables: indicator values come from ``indicators_wide`` (one row per session,
maintained on write), joined in DuckDB with the linked scores, so only one row per scored session travels to
Python; the per-client sums of cross products for every indicator at once are column-wise numpy reductions, and
the linear-control estimates follow from those sums (:mod:`pipeline.research.within`); the default estimate is
computed for all indicators of a measure at once (:func:`pipeline.research.within_columns.ordered_within_columns`: the
estimates of ``ordered_within`` within 1e-9, without a model fit per indicator). Trajectories are written by SQL.
(``python -m bench.bench_duckdb_scale --only compare:`` times each step; docs/benchmarks.md.)

The package: :mod:`.options` (options, constants, table columns), :mod:`.staging` (DuckDB temp tables and the
fetch), :mod:`.sums` (per-client sums), :mod:`.estimates` (the estimate table), :mod:`.flags` (discrepancy
flags), :mod:`.trajectories` (SQL), :mod:`.text` (printing), :mod:`.versions`; the run itself is here.

Effects here are small in the literature (text-based models predicted client-rated alliance at about
rho = .15): read the intervals, not the point estimates, and treat every row as a question for
supervision, not a finding.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from dataclasses import asdict, dataclass

import duckdb
import numpy as np
import pandas as pd

from pipeline.errors import StorageError
from pipeline.research.compare.estimates import correlation_table, estimate_table, estimates
from pipeline.research.compare.flags import (
    FLAG_COLUMNS,
    STRAIN_CANDIDATES,
    STRAIN_SIGNALS,
    StrainSignal,
    discrepancy_flags,
    flag_rows,
)
from pipeline.research.compare.options import (
    DEFAULT_CI,
    DEFAULT_COVARIATES,
    DUPLICATE_RULES,
    LEVELS,
    NEEDS_ORDER,
    NOT_PROCESS,
    RC_TOLERANCE,
    RESULT_COLUMNS,
    SPEARMAN_WITHIN_MAX_PAIRS,
    TRAJECTORY_COLUMNS,
    TRAJECTORY_SERIES,
    CompareOptions,
)
from pipeline.research.compare.staging import Staged, first_of_session, stage
from pipeline.research.compare.sums import KEYS, RANK_SUMS, client_sums, pair_sums
from pipeline.research.compare.text import CAVEAT, format_table, grades, reading, strain_line
from pipeline.research.compare.trajectories import stage_indicator_rows, trajectories_sql
from pipeline.research.compare.versions import lexicons_for, lexicons_version

__all__ = [
    "CAVEAT",
    "CompareOptions",
    "Comparison",
    "DEFAULT_CI",
    "DEFAULT_COVARIATES",
    "DUPLICATE_RULES",
    "FLAG_COLUMNS",
    "KEYS",
    "LEVELS",
    "NEEDS_ORDER",
    "NOT_PROCESS",
    "RANK_SUMS",
    "RC_TOLERANCE",
    "RESULT_COLUMNS",
    "SPEARMAN_WITHIN_MAX_PAIRS",
    "STRAIN_CANDIDATES",
    "STRAIN_SIGNALS",
    "Staged",
    "StrainSignal",
    "TRAJECTORY_COLUMNS",
    "TRAJECTORY_SERIES",
    "client_sums",
    "correlation_table",
    "discrepancy_flags",
    "estimate_table",
    "estimates",
    "flags_for",
    "format_table",
    "grades",
    "lexicons_version",
    "new_comparison_id",
    "pair_sums",
    "reading",
    "run_comparison",
    "stage",
    "stage_indicator_rows",
    "strain_line",
    "trajectories_sql",
]


@dataclass(frozen=True)
class Comparison:
    """The tables one run wrote (also returned for printing and tests)."""

    comparison_id: str
    results: pd.DataFrame
    flags: pd.DataFrame
    trajectories: pd.DataFrame
    n_sessions: int
    n_clients: int
    markers_version: str = ""
    lexicons_version: str = ""


def new_comparison_id() -> str:
    return f"compare-{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:8]}"


def flags_for(staged: Staged, options: CompareOptions) -> pd.DataFrame:
    """Discrepancy flags of the staged rows (only strain-signal indicators and alliance scores are read)."""
    signals = STRAIN_SIGNALS
    names = {sig.name for sig in signals}
    first = first_of_session(staged)
    sid, name, role_label, value = [], [], [], []
    for j, (ind_name, role) in enumerate(staged.indicators):
        if ind_name in names:
            ok = first & ~np.isnan(staged.x[:, j])
            sid.append(staged.session_id[ok])
            name.append(np.full(ok.sum(), ind_name, dtype=object))
            role_label.append(np.full(ok.sum(), role, dtype=object))
            value.append(staged.x[ok, j])
    ind = [np.concatenate(c) if c else np.array([], dtype=object) for c in (sid, name, role_label)]
    ind.append(np.concatenate(value) if value else np.array([]))
    at = staged.kind == "alliance"
    measures = np.array([*staged.measures, ("", "", "")], dtype=object)[staged.measure[at]]
    alliance = {"session_id": staged.session_id[at], "client_id": staged.client_id[at], "instrument": measures[:, 0],
                "scale": measures[:, 1], "timepoint": measures[:, 2], "value": staged.y[at],
                "concern_below": staged.concern_below[at]}
    return flag_rows(*ind, alliance, strain_quantile=options.strain_quantile,
                     rating_quantile=options.rating_quantile, min_sessions=5, signals=signals)


def run_comparison(con: duckdb.DuckDBPyConnection, *, options: CompareOptions | None = None,
                   command: str = "") -> Comparison:
    """Compute estimates, discrepancy flags and trajectories and store them under a new comparison id.

    ``options`` None: :class:`CompareOptions` defaults (``alliance compare`` without options).

    Raises
    ------
    ComparisonError
        No self-report scores linked to sessions, an unknown instrument, scale or indicator, duplicated scores,
        or mixed markers versions (see :func:`stage`).
    StorageError
        Writing failed (rolled back).
    """
    from pipeline import PIPELINE_VERSION
    from pipeline.storage.db import insert_frame, transaction

    options = CompareOptions() if options is None else options
    options.check()
    staged = stage(con, options)
    versions = staged.markers_versions
    markers = " + ".join(versions)
    lexicons = lexicons_for(versions)
    results = estimates(staged, options).assign(markers_version=markers, lexicons_version=lexicons)[RESULT_COLUMNS]
    flags = flags_for(staged, options)
    if options.trajectories == "all":
        stage_indicator_rows(con, staged)
    con.execute(f"CREATE OR REPLACE TEMP TABLE _cmp_traj AS {trajectories_sql(options.trajectories)}")
    cid = new_comparison_id()
    n_tests = int(results["estimate_p"].notna().sum())
    try:
        with transaction(con):
            con.execute("INSERT INTO comparison_runs (comparison_id, created_at, options, n_tests, correction,"
                        " pipeline_version, command) VALUES (?, now(), ?, ?, ?, ?, ?)",
                        [cid, json.dumps({**asdict(options), "markers_version": markers,
                                          "lexicons_version": lexicons}), n_tests,
                         "Benjamini-Hochberg over all tests of the run, per column (estimate, spearman, pearson)",
                         PIPELINE_VERSION, command])
            insert_frame(con, "comparison_results", results.assign(comparison_id=cid))
            insert_frame(con, "discrepancy_flags", flags.assign(comparison_id=cid))
            con.execute(f"INSERT INTO client_trajectories (comparison_id, {', '.join(TRAJECTORY_COLUMNS)})"
                        f" SELECT ?, {', '.join(TRAJECTORY_COLUMNS)} FROM _cmp_traj", [cid])
    except duckdb.Error as e:
        raise StorageError(f"storing comparison {cid} failed and was rolled back: {e}") from e
    traj = con.execute(f"SELECT {', '.join(TRAJECTORY_COLUMNS)} FROM _cmp_traj ORDER BY client_id, series, name,"
                       " speaker_role, timepoint, occasion").df()
    for table in ("_cmp_traj", "_cmp_ind", "_cmp_scores", "_cmp_sessions"):
        con.execute(f"DROP TABLE IF EXISTS {table}")
    return Comparison(cid, results, flags, traj, staged.n_sessions, staged.n_clients, markers, lexicons)
