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
the estimates follow from those sums (:mod:`pipeline.research.within`). Trajectories are written by SQL.
(``python -m bench.bench_duckdb_scale --only compare:`` times each step; docs/benchmarks.md.)

Effects here are small in the literature (text-based models predicted client-rated alliance at about
rho = .15): read the intervals, not the point estimates, and treat every row as a question for
supervision, not a finding.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import duckdb
import numpy as np
import pandas as pd

from pipeline.analysis.definitions import ACCURACY_WORDS, accuracy_of, evidence_of
from pipeline.errors import ComparisonError, StorageError
from pipeline.research.correlation import NOT_TREND_ADJUSTED, Correlation, benjamini_hochberg, correlate, from_r
from pipeline.research.within import (
    CI_METHODS,
    COVARIATES,
    ORDERED_TRENDS,
    SUM_NAMES,
    TrendProjection,
    covariate_label,
    mixedlm_within,
    moments_from_sums,
    order_unknown_note,
    ordered_within,
    trend_projection,
    within_estimate,
)
from pipeline.storage.wide import indicator_columns, sync_indicators_wide

LEVELS = ("between", "within")
#: Indicators that describe the recording or the role rule rather than the process.
NOT_PROCESS = frozenset({"duration", "role_confidence"})
#: Chosen by bench/calibration.py (docs/research_calibration.md): false-positive rate <= .07 under every shared
#: trend shape (linear, saturating, step, U-shaped), AR(1) errors to phi .8, 10-40 clients x 3-20 sessions.
DEFAULT_CI = "cluster"
DEFAULT_COVARIATES: tuple[str, ...] = ("session_order",)
#: Covariates that need each session's position in the client's course (refused where it is unknown).
NEEDS_ORDER = frozenset({"session_number", "client_trend", *ORDERED_TRENDS})
#: Changes within this of the reliable-change criterion count as reaching it (scores are decimals).
RC_TOLERANCE = 1e-9
DUPLICATE_RULES = ("refuse", "latest")
TRAJECTORY_SERIES = ("self_report", "all")
#: Above this many session x indicator x measure pairs the within-client Spearman (ranks) is skipped unless asked.
SPEARMAN_WITHIN_MAX_PAIRS = 250_000


@dataclass(frozen=True)
class StrainSignal:
    """An indicator read as a possible sign of strain when it is extreme in ``direction``."""

    name: str
    speaker_role: str | None
    direction: str  # "high" or "low"
    meaning: str


#: Indicators that might be read as strain once evidence supports it (their direction and meaning).
STRAIN_CANDIDATES: tuple[StrainSignal, ...] = (
    StrainSignal("long_silence_count", None, "high", "many long silences"),
    StrainSignal("long_silence_total", None, "high", "much long silence"),
    StrainSignal("mean_switching_gap", "client", "high", "client slow to respond"),
    StrainSignal("talk_time_share", "client", "low", "client little talk time"),
)
#: Process signals of strain (an indicator missing from the database is skipped): only candidates whose
#: *evidence* about the alliance or outcome is ``supported``. How well a number is measured (its accuracy) is
#: not evidence that it signals strain; today no indicator has supported evidence, so this is empty and no
#: discrepancy is flagged.
STRAIN_SIGNALS: tuple[StrainSignal, ...] = tuple(s for s in STRAIN_CANDIDATES if evidence_of(s.name) == "supported")


@dataclass(frozen=True)
class CompareOptions:
    """Options of a comparison run.

    Attributes
    ----------
    instruments : tuple of str
        Instrument keys to compare (empty: all imported).
    scales : tuple of str
        Scale names (empty: all).
    indicators : tuple of str
        ``name`` or ``name:role`` (role ``therapist``, ``client`` or ``session``); empty: every process
        indicator stored.
    levels : tuple of str
        ``between`` and/or ``within``.
    min_n : int
        Smallest (effective) n for which a correlation is estimated; also the fewest clients for the
        within-client model.
    strain_quantile : float
        A strain signal is an indicator at or beyond this quantile of all sessions in its strain
        direction, and beyond the median (so ties at zero never count).
    rating_quantile : float
        Without a published cutoff an alliance rating is *high* at or above this quantile of the
        sample and *low* at or below ``1 - rating_quantile``.
    covariates : tuple of str
        Trend control of the within-client estimate. Default ``session_order``: one fixed effect per session
        position, so a shared trend of any shape is removed (:func:`pipeline.research.within.ordered_within`);
        ``spline``: a natural spline of session position; or the linear controls ``session_number``,
        ``days_since_first`` and/or ``client_trend`` (each client's own linear trend removed). Every control
        but ``days_since_first`` needs the sessions' order: a client with an undated session has none, and the
        within-client estimate is then refused with that reason.
    ci : {"cluster", "bootstrap", "model"}
        Interval of the within-client estimate (default cluster-robust).
    bootstrap : int
        Client resamples for ``ci="bootstrap"``.
    seed : int
        Seed of the bootstrap.
    allow_mixed_versions : bool
        Compare sessions processed with different markers versions (refused by default).
    duplicates : {"refuse", "latest"}
        Several scores of one measure on one session: refuse (default) or keep the latest import's.
    trajectories : {"self_report", "all"}
        Series written to ``client_trajectories``: self-report only (default; indicator series are in the
        ``client_series`` view) or indicators too (a batch step at scale).
    spearman_within : bool or None
        Also the rank version of the repeated-measures correlation (a window over every pair: the slowest
        step at scale). None: only when there are at most :data:`SPEARMAN_WITHIN_MAX_PAIRS` pairs.
    include_contradicted : bool
        Also compare indicators whose evidence is ``contradicted`` (left out by default; naming one in
        ``indicators`` without this is refused).
    """

    instruments: tuple[str, ...] = ()
    scales: tuple[str, ...] = ()
    indicators: tuple[str, ...] = ()
    levels: tuple[str, ...] = LEVELS
    min_n: int = 5
    strain_quantile: float = 0.8
    rating_quantile: float = 0.8
    covariates: tuple[str, ...] = DEFAULT_COVARIATES
    ci: str = DEFAULT_CI
    bootstrap: int = 999
    seed: int = 0
    allow_mixed_versions: bool = False
    duplicates: str = "refuse"
    trajectories: str = "self_report"
    spearman_within: bool | None = None
    include_contradicted: bool = False

    def check(self) -> None:
        """Raise ComparisonError for an option value that is not allowed."""
        bad = set(self.levels) - set(LEVELS)
        if bad:
            raise ComparisonError(f"levels {sorted(bad)} unknown; use {list(LEVELS)}")
        bad = set(self.covariates) - set(COVARIATES) - {"client_trend", *ORDERED_TRENDS}
        if bad:
            raise ComparisonError(f"covariates {sorted(bad)} unknown; use "
                                  f"{[*ORDERED_TRENDS, *COVARIATES, 'client_trend']}")
        ordered = set(self.covariates) & set(ORDERED_TRENDS)
        if ordered and (len(self.covariates) > 1 or self.ci != "cluster"):
            raise ComparisonError(f"covariate {sorted(ordered)[0]} stands alone with the cluster-robust interval "
                                  "(--ci cluster); --ci bootstrap|model and combined covariates go with the linear "
                                  "trend controls (session_number, days_since_first, client_trend), which do not "
                                  "hold under a nonlinear shared trend (docs/research_calibration.md)")
        if self.ci not in CI_METHODS:
            raise ComparisonError(f"ci {self.ci!r} unknown; use one of {list(CI_METHODS)}")
        if self.duplicates not in DUPLICATE_RULES:
            raise ComparisonError(f"duplicates {self.duplicates!r} unknown; use one of {list(DUPLICATE_RULES)}")
        if self.trajectories not in TRAJECTORY_SERIES:
            raise ComparisonError(f"trajectories {self.trajectories!r} unknown; use {list(TRAJECTORY_SERIES)}")


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


RESULT_COLUMNS = ["indicator", "speaker_role", "instrument", "scale", "timepoint", "level", "n", "n_clients",
                  "spearman_rho", "spearman_ci_low", "spearman_ci_high", "spearman_p", "spearman_q",
                  "pearson_r", "pearson_ci_low", "pearson_ci_high", "pearson_p", "pearson_q", "note",
                  "n_sessions", "method", "estimate", "estimate_ci_low", "estimate_ci_high", "estimate_p",
                  "estimate_q", "ci_method", "covariates", "markers_version", "lexicons_version"]

TRAJECTORY_COLUMNS = ["client_id", "series", "name", "speaker_role", "timepoint", "occasion", "session_id",
                      "on_date", "value", "baseline", "change_from_baseline", "reliable_change"]


# ----------------------------------------------------------------------------------------------------
# versions


def lexicons_version() -> str:
    """The shipped word lists and their versions, e.g. ``alliance_work 1.0.0, backchannels 1.0.0, ...``."""
    from importlib.resources import files

    out = []
    for entry in sorted(files("pipeline.lexicons").iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".json"):
            version = json.loads(entry.read_text(encoding="utf-8")).get("version", "?")
            out.append(f"{entry.name[:-5]} {version}")
    return ", ".join(out)


def _lexicons_for(markers_versions: Sequence[str]) -> str:
    from pipeline.analysis.indicators import MARKERS_VERSION

    if list(markers_versions) == [MARKERS_VERSION]:
        return lexicons_version()
    return "as shipped with markers " + " and ".join(markers_versions)


# ----------------------------------------------------------------------------------------------------
# staging in DuckDB


def _sessions_sql() -> str:
    """Research-scope sessions with session number and days since the client's first session."""
    return ("SELECT session_id, client_id, therapist_id, recorded_on, coalesce(markers_version, 'unknown')"
            " AS markers_version,"
            " row_number() OVER (PARTITION BY client_id ORDER BY recorded_on NULLS LAST, session_id) AS session_number,"
            " date_diff('day', min(recorded_on) OVER (PARTITION BY client_id), recorded_on) AS days_since_first,"
            " count(recorded_on) OVER (PARTITION BY client_id) = count(*) OVER (PARTITION BY client_id) AS order_known"
            " FROM research_sessions")


@dataclass(frozen=True)
class Staged:
    """What :func:`stage` fetched: one row per linked score (session x measure), every selected indicator a column.

    Attributes
    ----------
    indicators : list of (str, str)
        ``(name, role_label)`` of the columns of ``x`` (role_label ``session`` for session-level values).
    measures : list of (str, str, str)
        ``(instrument, scale, timepoint)`` (timepoint '' for none), sorted.
    measure : ndarray of int, shape (n,)
        Index into ``measures`` of each row.
    y : ndarray of float, shape (n,)
        The score.
    kind, concern_below : ndarray, shape (n,)
        The instrument's kind and cutoff (NaN: none).
    session_id, client_id, therapist_id : ndarray of object, shape (n,)
    client : ndarray of int, shape (n,)
        Index of the row's client in ``clients`` (sorted labels).
    clients : ndarray of str
    s, d : ndarray of float, shape (n,)
        Session number and days since the client's first session (NaN: no date).
    order : ndarray of float, shape (n,)
        Session number where the client's order is known (every research session of the client dated), else NaN.
    x : ndarray of float, shape (n, k)
        Indicator values of the row's session; NaN where missing or not finite.
    markers_versions : list of str
    n_sessions, n_clients : int
        Sessions with at least one indicator value and a linked score, and their clients.
    """

    indicators: list
    measures: list
    measure: np.ndarray
    y: np.ndarray
    kind: np.ndarray
    concern_below: np.ndarray
    session_id: np.ndarray
    client_id: np.ndarray
    therapist_id: np.ndarray
    client: np.ndarray
    clients: np.ndarray
    s: np.ndarray
    d: np.ndarray
    x: np.ndarray
    markers_versions: list
    n_sessions: int
    n_clients: int
    order: np.ndarray | None = None


def stage(con: duckdb.DuckDBPyConnection, options: CompareOptions) -> Staged:
    """Create the run's temp tables ``_cmp_sessions`` and ``_cmp_scores``; fetch what the estimates need.

    Indicator values come from ``indicators_wide`` (one row per session, maintained on write; brought up to date
    here first), so one row per linked score travels to Python, with every selected indicator as a column.

    Raises
    ------
    ComparisonError
        No scores, an unknown instrument, scale or indicator, duplicated scores (``duplicates="refuse"``) or
        sessions of several markers versions (unless allowed).
    """
    sync_indicators_wide(con)
    con.execute(f"CREATE OR REPLACE TEMP TABLE _cmp_sessions AS {_sessions_sql()}")
    con.execute(
        "CREATE OR REPLACE TEMP TABLE _cmp_scores AS SELECT session_id, client_id, on_date, instrument, scale,"
        " coalesce(timepoint, '') AS timepoint, value, kind, concern_below, reliable_change, import_id,"
        " administration_id FROM research_self_report_scores WHERE value IS NOT NULL"
        " AND (len(?::VARCHAR[]) = 0 OR list_contains(?::VARCHAR[], instrument))"
        " AND (len(?::VARCHAR[]) = 0 OR list_contains(?::VARCHAR[], scale))",
        [list(options.instruments)] * 2 + [list(options.scales)] * 2)
    found = {r[0] for r in con.execute("SELECT DISTINCT instrument FROM _cmp_scores").fetchall()}
    missing = [inst for inst in options.instruments if inst not in found]
    if missing or not found:  # say why: nothing imported, an instrument not imported, or no score on the scales
        imported = [r[0] for r in con.execute("SELECT DISTINCT instrument FROM research_self_report_scores"
                                              " WHERE value IS NOT NULL ORDER BY 1").fetchall()]
        if not imported:
            raise ComparisonError("no self-report scores linked to sessions: run `alliance import-self-report` first")
        if missing:
            raise ComparisonError(f"no scores of instrument {missing[0]!r} linked to sessions; imported: {imported}")
        raise ComparisonError(f"no scores on scales {list(options.scales)}")
    _resolve_duplicates(con, options.duplicates)
    chosen = _select_indicators(indicator_columns(con), options.indicators,
                                include_contradicted=options.include_contradicted)
    if not chosen:
        raise ComparisonError("no indicators on the sessions that have self-report scores")
    wide_cols = "".join(f', w."{col}"' for col, _, _ in chosen)
    table = con.execute(
        "SELECT sc.instrument, sc.scale, sc.timepoint, sc.value, sc.kind, sc.concern_below, ss.session_id,"
        " ss.client_id, ss.therapist_id, ss.session_number::DOUBLE AS s, ss.days_since_first::DOUBLE AS d,"
        " CASE WHEN ss.order_known THEN ss.session_number END::DOUBLE AS o,"
        f" ss.markers_version{wide_cols} FROM _cmp_scores sc JOIN _cmp_sessions ss USING (session_id)"
        " JOIN indicators_wide w USING (session_id)").to_arrow_table()
    x = np.column_stack([table.column(col).to_numpy(zero_copy_only=False) for col, _, _ in chosen]).astype(float)
    x[~np.isfinite(x)] = np.nan
    keep = ~np.isnan(x).all(axis=1)
    if not keep.any():
        raise ComparisonError("no indicators on the sessions that have self-report scores")
    x = x[keep]

    def col(name: str, dtype=object) -> np.ndarray:
        values = table.column(name).to_numpy(zero_copy_only=False)
        return np.asarray(values, dtype=dtype)[keep]

    session_id, client_id = col("session_id"), col("client_id")
    versions = pd.Series(col("markers_version")).groupby(session_id).first().value_counts().sort_index()
    if len(versions) > 1 and not options.allow_mixed_versions:
        listed = ", ".join(f"{v} ({n} sessions)" for v, n in versions.items())
        raise ComparisonError(
            f"the sessions were processed with different markers versions: {listed}. Indicators of different "
            "versions are not the same measurement: re-process the older sessions, restrict the comparison, or "
            "pass --allow-mixed-versions to compare them anyway (every row then names all versions)")
    keys = pd.MultiIndex.from_arrays([col("instrument"), col("scale"), col("timepoint")])
    measure, measures = pd.factorize(keys, sort=True)
    client, clients = pd.factorize(client_id, sort=True)
    return Staged(indicators=[(name, role or "session") for _, name, role in chosen],
                  measures=[tuple(m) for m in measures], measure=measure,
                  y=col("value", float), kind=col("kind"), concern_below=col("concern_below", float),
                  session_id=session_id, client_id=client_id, therapist_id=col("therapist_id"), client=client,
                  clients=np.asarray(clients, dtype=object), s=col("s", float), d=col("d", float), x=x,
                  markers_versions=[str(v) for v in versions.index], n_sessions=int(len(pd.unique(session_id))),
                  n_clients=int(len(clients)), order=col("o", float))


def _resolve_duplicates(con: duckdb.DuckDBPyConnection, rule: str) -> None:
    if not con.execute("SELECT count(*) FROM (SELECT 1 FROM _cmp_scores WHERE session_id IS NOT NULL"
                       " GROUP BY session_id, instrument, scale, timepoint HAVING count(*) > 1)").fetchone()[0]:
        return
    dups = con.execute(
        "SELECT session_id, instrument, scale, timepoint, list(value ORDER BY import_id),"
        " list(import_id ORDER BY import_id) FROM _cmp_scores WHERE session_id IS NOT NULL"
        " GROUP BY ALL HAVING count(*) > 1 ORDER BY session_id, instrument, scale").fetchall()
    if not dups:
        return
    if rule == "latest":
        con.execute(
            "DELETE FROM _cmp_scores WHERE session_id IS NOT NULL AND administration_id NOT IN ("
            " SELECT arg_max(administration_id, import_id) FROM _cmp_scores WHERE session_id IS NOT NULL"
            " GROUP BY session_id, instrument, scale, timepoint)")
        return
    sid, inst, scale, _, values, imports = dups[0]
    shown = ", ".join(f"{v:g} (import {i})" for v, i in zip(values, imports, strict=True))
    raise ComparisonError(
        f"{len(dups)} session measure(s) have more than one score, e.g. session {sid!r} {inst}.{scale}: {shown}. "
        "Averaging them would report a number no client gave. Remove the wrong import, or pass "
        "--duplicates latest to use the latest import's score; all are listed in the view self_report_duplicates")


def _select_indicators(stored: list[tuple[str, str, str | None]], wanted: Sequence[str], *,
                       include_contradicted: bool = False) -> list[tuple[str, str, str | None]]:
    """The ``(column, name, role)`` of ``indicators_wide`` to compare.

    ``wanted``: ``name`` or ``name:role`` items; empty: every process indicator. Indicators whose evidence is
    ``contradicted`` are left out unless ``include_contradicted``; naming one without it is refused.
    """
    if not wanted:
        return sorted((c for c in stored if c[1] not in NOT_PROCESS
                       and (include_contradicted or evidence_of(c[1]) != "contradicted")),
                      key=lambda c: (c[1], c[2] or ""))
    out = []
    for w in wanted:
        name, _, role = w.partition(":")
        if evidence_of(name) == "contradicted" and not include_contradicted:
            raise ComparisonError(f"indicator {w!r}: its evidence is contradicted (docs/data_dictionary.md); "
                                  "add --include-contradicted to compare it anyway")
        hit = [c for c in stored if c[1] == name and (not role or (c[2] or "session") == role)]
        if not hit:
            known = sorted(f"{n}:{r or 'session'}" for _, n, r in stored)
            raise ComparisonError(f"indicator {w!r} is not stored; stored: {known}")
        out += [c for c in hit if c not in out]
    return sorted(out, key=lambda c: (c[1], c[2] or ""))


# ----------------------------------------------------------------------------------------------------
# estimates from per-client sums

KEYS = ["name", "role_label", "instrument", "scale", "timepoint"]


#: The rank sums the Spearman (rank) version of the repeated-measures correlation needs.
RANK_SUMS = ("srx", "sry", "srxx", "sryy", "srxy")


def client_sums(client: np.ndarray, x: np.ndarray, y: np.ndarray, s: np.ndarray, d: np.ndarray,
                ranks: tuple[np.ndarray, np.ndarray] | None = None) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Per-client sums of cross products of x, y, session number s and days d, for k indicators at once.

    Parameters
    ----------
    client : ndarray of int, shape (n,)
        Client code of each pair row.
    x : ndarray, shape (n, k)
        Indicator values; NaN excludes the row from that column's sums.
    y, s, d : ndarray, shape (n,)
        Score, session number, days since first session (rows with a NaN y are excluded from every column).
    ranks : (ndarray, ndarray), optional
        Average ranks of x and y, shape (n, k) each (NaN where excluded): adds :data:`RANK_SUMS`.

    Returns
    -------
    codes : ndarray of int, shape (g,)
        The clients present, ascending.
    sums : dict of str -> ndarray, shape (g, k)
        The keys of :data:`pipeline.research.within.SUM_NAMES` (and :data:`RANK_SUMS`); ``n`` is 0 where a client
        has no pair in a column.

    Notes
    -----
    Each sum is a product of a client-by-row matrix weighted by a row term (1, y, s, d and their products) with
    the masked x, x squared or the mask: a handful of sparse matrix products instead of one pass per indicator.
    """
    from scipy import sparse

    codes, inverse = np.unique(client, return_inverse=True)
    n, g = len(client), len(codes)
    mask = ~np.isnan(x) & ~np.isnan(y)[:, None]
    m = mask.astype(float)
    x0 = np.where(mask, x, 0.0)
    y0, s0, d0 = (np.nan_to_num(v) for v in (y, s, d))

    def by_client(weights: dict[str, np.ndarray], values: np.ndarray) -> dict[str, np.ndarray]:
        stacked = sparse.csr_matrix((np.concatenate(list(weights.values())),
                                     (np.concatenate([inverse + i * g for i in range(len(weights))]),
                                      np.tile(np.arange(n), len(weights)))), shape=(g * len(weights), n))
        out = np.asarray(stacked @ values)
        return {name: out[i * g:(i + 1) * g] for i, name in enumerate(weights)}

    one = np.ones(n)
    sums = by_client({"n": one, "sy": y0, "ss": s0, "sd": d0, "syy": y0 * y0, "sys": y0 * s0, "syd": y0 * d0,
                      "sss": s0 * s0, "ssd": s0 * d0, "sdd": d0 * d0}, m)
    sums |= by_client({"sx": one, "sxy": y0, "sxs": s0, "sxd": d0}, x0)
    plain = sparse.csr_matrix((one, (inverse, np.arange(n))), shape=(g, n))  # sums per client, unweighted
    sums["sxx"] = np.asarray(plain @ (x0 * x0))
    if ranks is not None:
        rx, ry = (np.where(mask, np.nan_to_num(r), 0.0) for r in ranks)
        for name, values in (("srx", rx), ("sry", ry), ("srxx", rx * rx), ("sryy", ry * ry), ("srxy", rx * ry)):
            sums[name] = np.asarray(plain @ values)
    return codes, sums


def _average_ranks(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Average ranks of each column of x and of y over the rows where that column and y are present."""
    from scipy.stats import rankdata

    rx, ry = np.full(x.shape, np.nan), np.full(x.shape, np.nan)
    for j in range(x.shape[1]):
        ok = ~np.isnan(x[:, j]) & ~np.isnan(y)
        rx[ok, j] = rankdata(x[ok, j])
        ry[ok, j] = rankdata(y[ok])
    return rx, ry


def pair_sums(staged: Staged, *, need_days: bool = False, ranks: bool | None = None) -> dict[str, np.ndarray]:
    """Per (indicator, measure, client) sums over the staged rows, ordered by indicator, measure, client.

    The layout :func:`estimate_table` reads: one entry per row, key columns name, role_label, instrument, scale,
    timepoint, client_id, then the sums. ``need_days``: sessions without a date are left out. ``ranks`` None: the
    rank sums only when there are at most :data:`SPEARMAN_WITHIN_MAX_PAIRS` pairs.
    """
    x = staged.x
    if need_days:
        x = np.where(np.isnan(staged.d)[:, None], np.nan, x)
    if ranks is None:
        ranks = int((~np.isnan(x)).sum()) <= SPEARMAN_WITHIN_MAX_PAIRS
    pieces = []
    for mi in range(len(staged.measures)):
        at = staged.measure == mi
        xm, ym = x[at], staged.y[at]
        codes, sums = client_sums(staged.client[at], xm, ym, staged.s[at], staged.d[at],
                                  _average_ranks(xm, ym) if ranks else None)
        flat = {k: np.ascontiguousarray(v.T) for k, v in sums.items()}  # (k, g): one indicator per row
        for j in np.flatnonzero((flat["n"] > 0).any(axis=1)):
            present = flat["n"][j] > 0
            pieces.append(((*staged.indicators[j], *staged.measures[mi]), staged.clients[codes[present]],
                           {k: v[j, present] for k, v in flat.items()}))
    return _assemble(pieces)


def _assemble(pieces: list[tuple[tuple, np.ndarray, dict[str, np.ndarray]]]) -> dict[str, np.ndarray]:
    """``(key, client labels, sums)`` pieces as one table of rows ordered by key, then client.

    ``key_id`` numbers the keys (rows of one key are contiguous), so readers find the blocks without comparing keys.
    """
    pieces = sorted(pieces, key=lambda piece: piece[0])
    if not pieces:
        return ({k: np.array([], dtype=object) for k in (*KEYS, "client_id")} | {k: np.array([]) for k in SUM_NAMES}
                | {"key_id": np.array([], dtype=int)})
    lengths = [len(c) for _, c, _ in pieces]
    out = {k: np.repeat(np.array([key[i] for key, _, _ in pieces], dtype=object), lengths)
           for i, k in enumerate(KEYS)}
    out["client_id"] = np.concatenate([c for _, c, _ in pieces])
    out["key_id"] = np.repeat(np.arange(len(pieces)), lengths)
    return out | {k: np.concatenate([sums[k] for _, _, sums in pieces]) for k in pieces[0][2]}


def estimate_table(agg: dict[str, np.ndarray], *, levels: Sequence[str] = LEVELS, min_n: int = 5,
                   covariates: Sequence[str] = DEFAULT_COVARIATES, ci: str = DEFAULT_CI, bootstrap: int = 999,
                   seed: int = 0, raw_rows=None) -> pd.DataFrame:
    """Every indicator x measure x level from the per-client sums of :func:`pair_sums`.

    ``raw_rows(key) -> DataFrame`` (x, y, client_id, therapist_id, s, d, o) is needed for ``ci="model"`` (the
    model is then fitted with ``statsmodels``), for the ``session_order`` and ``spline`` trend controls
    (:func:`pipeline.research.within.ordered_within`), and to refuse a within-client estimate whose trend control
    needs the sessions' order where it is unknown (``o`` NaN); without it the linear controls use ``s`` as given.
    """
    rng = np.random.default_rng(seed)
    projections: dict = {}  # one trend projection per set of rows, shared by the indicators measured on them
    n_rows = len(agg["n"])
    rows = []
    if n_rows:
        key_id = np.asarray(agg["key_id"])
        bounds = [0, *(np.flatnonzero(key_id[1:] != key_id[:-1]) + 1).tolist(), n_rows]
    else:
        bounds = [0]
    for a, b in zip(bounds[:-1], bounds[1:], strict=True):
        key = tuple(agg[k][a] for k in KEYS)
        part = {k: np.asarray(v[a:b], dtype=float) for k, v in agg.items() if k not in (*KEYS, "client_id", "key_id")}
        n = part["n"]
        for level in levels:
            if level == "between":
                mx, my = part["sx"] / n, part["sy"] / n
                sp = correlate(mx, my, method="spearman", min_n=min_n)
                pe = correlate(mx, my, method="pearson", min_n=min_n)
                rows.append(_row(key, level, n=sp.n, n_clients=len(n), n_sessions=int(n.sum()), sp=sp, pe=pe,
                                 method="client means: Spearman correlation", est=(sp.estimate, sp.ci_low,
                                                                                   sp.ci_high, sp.p),
                                 ci_method="Fisher z", covariates="none", note=sp.note or pe.note))
                continue
            two = n >= 2
            mom = moments_from_sums(part)
            pe = _rm(mom[two], "pearson", min_n)
            if "srx" in part:
                rank_mom = moments_from_sums({"n": n, "sx": part["srx"], "sy": part["sry"], "sxx": part["srxx"],
                                              "syy": part["sryy"], "sxy": part["srxy"],
                                              **{k: np.zeros(len(n)) for k in SUM_NAMES if k not in
                                                 ("n", "sx", "sy", "sxx", "syy", "sxy")}})
                sp = _rm(rank_mom[two], "spearman", min_n)
            else:
                sp = Correlation("spearman", None, None, None, None, pe.n, pe.df, "")  # not asked for
            label = covariate_label(covariates)
            frame = raw_rows(key) if raw_rows is not None and (ci == "model" or NEEDS_ORDER & set(covariates)) \
                else None
            ordered = [c for c in covariates if c in ORDERED_TRENDS]
            codes = None if frame is None else pd.factorize(frame["client_id"])[0]
            refused = _order_refusal(frame, codes, covariates)
            if refused is not None:
                est, note_m, n_s, n_c = (None, None, None, None), refused[0], refused[1], refused[2]
                ci_m = "none: refused"
            elif ordered:
                if frame is None:
                    raise ValueError(f"covariate {ordered[0]} needs raw_rows")
                order = frame["o"].to_numpy(dtype=float)
                w = ordered_within(frame["x"].to_numpy(dtype=float), frame["y"].to_numpy(dtype=float), codes, order,
                                   trend=ordered[0], min_clients=min_n,
                                   projection=_projection(projections, codes, order, ordered[0]))
                est, note_m, n_s, n_c = (w.estimate, w.ci_low, w.ci_high, w.p), w.note, w.n_sessions, w.n_clients
                ci_m = "cluster-robust (CR1, clients), t with G - 1 df"
                if w.estimate is not None and n_c < 20:
                    note_m = f"only {n_c} clients: cluster-level intervals are approximate"
            elif ci == "model":
                est, note_m, n_s, n_c = _model_fit(frame, covariates, min_n)
                ci_m = "model-based (statsmodels MixedLM, REML, Wald z)"
            else:
                w = within_estimate(mom, covariates=covariates, ci=ci, min_clients=min_n, bootstrap=bootstrap,
                                    rng=rng)
                est, note_m, n_s, n_c = (w.estimate, w.ci_low, w.ci_high, w.p), w.note, w.n_sessions, w.n_clients
                ci_m = ("cluster-robust (CR1, clients), t with G - 1 df" if ci == "cluster"
                        else f"client bootstrap ({bootstrap} resamples, percentile)")
                if w.estimate is not None and n_c < 20:
                    note_m = f"only {n_c} clients: cluster-level intervals are approximate"
            rows.append(_row(key, level, n=pe.n, n_clients=n_c, n_sessions=n_s, sp=sp, pe=pe,
                             method=_within_method(ordered), est=est, ci_method=ci_m, covariates=label,
                             note=note_m or sp.note or pe.note))
    out = pd.DataFrame(rows, columns=[c for c in RESULT_COLUMNS if c not in ("markers_version", "lexicons_version")])
    if not out.empty:
        for col in ("spearman", "pearson", "estimate"):
            p = out[f"{col}_p"].astype(object).where(out[f"{col}_p"].notna(), None)
            out[f"{col}_q"] = benjamini_hochberg(list(p))
    return out


def _within_method(ordered: Sequence[str]) -> str:
    trend = {"session_order": "one fixed effect per session position (a shared trend of any shape)",
             "spline": "a natural spline of session position"}
    head = (f"client-centred, {trend[ordered[0]]} removed" if ordered
            else "mixed model: random client intercept, within/between split")
    return (f"{head}; standardised within-client slope (the within-client Spearman and Pearson beside it: "
            f"{NOT_TREND_ADJUSTED})")


def _projection(cache: dict, codes: np.ndarray, order: np.ndarray, trend: str) -> TrendProjection:
    """The trend projection of these rows (client codes, positions), built once per distinct set of rows."""
    held = cache.get(trend)  # keys arrive grouped by measure: the last set of rows is the one to reuse
    if held is None or not (np.array_equal(held[0], codes) and np.array_equal(held[1], order, equal_nan=True)):
        cache[trend] = held = (codes, order, trend_projection(codes, order, trend=trend))
    return held[2]


def _order_refusal(frame: pd.DataFrame | None, codes: np.ndarray | None, covariates: Sequence[str]
                   ) -> tuple[str, int, int] | None:
    """``(reason, sessions, clients)`` when the trend control needs an order some contributing session lacks.

    ``codes``: the client code of each row of ``frame`` (contributing: clients with two or more rows).
    """
    if frame is None or codes is None or not NEEDS_ORDER & set(covariates) or "o" not in frame:
        return None
    used = np.bincount(codes)[codes] >= 2
    order = frame["o"].to_numpy(dtype=float)[used]
    if np.isfinite(order).all():
        return None
    return order_unknown_note(order, codes[used]), int(used.sum()), len(np.unique(codes[used]))


def _rm(mom: np.ndarray, method: str, min_n: int):
    from pipeline.research.within import centred

    k = len(mom)
    n_obs = int(mom[:, 0, 0].sum()) if k else 0
    if n_obs == 0:
        return from_r(method, None, n=0, df=0, n_eff=0, min_n=min_n)
    c = centred(mom).sum(axis=0)
    r = None
    if n_obs - k >= 2 and c[0, 0] > 0 and c[1, 1] > 0:
        r = float(np.clip(c[0, 1] / np.sqrt(c[0, 0] * c[1, 1]), -1, 1))
    return from_r(method, r, n=n_obs, df=n_obs - k - 1, n_eff=n_obs - k + 1, min_n=min_n)


def _model_fit(frame: pd.DataFrame | None, covariates: Sequence[str], min_n: int):
    if frame is None or frame.empty:
        return (None, None, None, None), "no rows", 0, 0
    counts = frame.groupby("client_id")["x"].transform("size")
    used = frame[counts >= 2]
    n_c = int(used["client_id"].nunique())
    if n_c < max(min_n, 3):
        return (None, None, None, None), f"too few clients with 2+ sessions ({n_c})", len(used), n_c
    try:
        fit = mixedlm_within(used["x"], used["y"], used["client_id"], therapists=used["therapist_id"].fillna(""),
                             session_number=used["s"], days_since_first=used["d"].fillna(0),
                             covariates=[c for c in covariates if c in COVARIATES])
    except (np.linalg.LinAlgError, ValueError) as e:
        return (None, None, None, None), f"mixed model failed: {e}", len(used), n_c
    return (fit["estimate"], fit["ci_low"], fit["ci_high"], fit["p"]), fit["note"], len(used), n_c


def _row(key: tuple, level: str, *, n: int, n_clients: int, n_sessions: int, sp, pe, method: str, est: tuple,
         ci_method: str, covariates: str, note: str) -> list:
    name, role, inst, scale, tp = key
    return [name, None if role == "session" else role, inst, scale, tp or None, level, n, n_clients,
            sp.estimate, sp.ci_low, sp.ci_high, sp.p, None, pe.estimate, pe.ci_low, pe.ci_high, pe.p, None,
            note or None, n_sessions, method, *est, None, ci_method, covariates]


def correlation_table(pairs: pd.DataFrame, *, levels: Sequence[str] = LEVELS, min_n: int = 5,
                      covariates: Sequence[str] | None = None, ci: str = DEFAULT_CI, bootstrap: int = 999,
                      seed: int = 0) -> pd.DataFrame:
    """:func:`estimate_table` over a frame of pairs (long: one row per indicator x measure x session).

    Columns: name, role_label, instrument, scale, timepoint, client_id, x, y and optionally session_number /
    days_since_first.

    ``covariates`` None: :data:`DEFAULT_COVARIATES` (session position as fixed effects): without a
    ``session_number`` column the sessions' order is unknown and the within-client estimate is refused, with
    the reason in ``note``; pass ``covariates=()`` for no trend control.
    """
    bad = set(levels) - set(LEVELS)
    if bad:
        raise ComparisonError(f"levels {sorted(bad)} unknown; use {list(LEVELS)}")
    frame = pairs.assign(timepoint=pairs["timepoint"].fillna(""),
                         s=pairs["session_number"] if "session_number" in pairs else 0.0,
                         d=pairs["days_since_first"] if "days_since_first" in pairs else 0.0)
    if covariates is None:
        covariates = DEFAULT_COVARIATES
    labels, client = np.unique(frame["client_id"].astype(str).to_numpy(), return_inverse=True)
    pieces = []
    groups = frame.groupby(KEYS, sort=True).indices
    order = frame["s"].to_numpy(dtype=float) if "session_number" in pairs else np.full(len(frame), np.nan)

    def raw(key: tuple) -> pd.DataFrame:
        g = groups[tuple(key)]
        g = g[np.isfinite(frame["x"].to_numpy(dtype=float)[g]) & np.isfinite(frame["y"].to_numpy(dtype=float)[g])]
        return pd.DataFrame({"x": frame["x"].to_numpy(dtype=float)[g], "y": frame["y"].to_numpy(dtype=float)[g],
                             "client_id": labels[client[g]], "therapist_id": "", "s": frame["s"].to_numpy(float)[g],
                             "d": frame["d"].to_numpy(dtype=float)[g], "o": order[g]})

    for key, g in groups.items():
        x = frame["x"].to_numpy(dtype=float)[g][:, None]
        y = frame["y"].to_numpy(dtype=float)[g]
        x[~np.isfinite(x)] = np.nan
        codes, sums = client_sums(client[g], x, y, frame["s"].to_numpy(dtype=float)[g],
                                  frame["d"].to_numpy(dtype=float)[g], _average_ranks(x, y))
        present = sums["n"][:, 0] > 0
        pieces.append((key, labels[codes[present]], {k: v[present, 0] for k, v in sums.items()}))
    agg = _assemble(pieces)
    return estimate_table(agg, levels=levels, min_n=min_n, covariates=covariates, ci=ci, bootstrap=bootstrap,
                          seed=seed, raw_rows=raw)


# ----------------------------------------------------------------------------------------------------
# discrepancy flags


def discrepancy_flags(ind: pd.DataFrame, scores: pd.DataFrame, *, strain_quantile: float = 0.8,
                      rating_quantile: float = 0.8, min_sessions: int = 5,
                      signals: Sequence[StrainSignal] = STRAIN_SIGNALS) -> pd.DataFrame:
    """Sessions where process signals and the client's alliance rating disagree.

    A session has a *strain signal* when one of :data:`STRAIN_SIGNALS` is at or beyond the
    ``strain_quantile`` of all sessions in its strain direction and strictly beyond the median. An
    alliance rating (instruments of kind ``alliance``) is *high* when the score is at or above the
    instrument's ``concern_below`` (SRS: 36), or without one, at or above the ``rating_quantile`` of the
    sample; *low* below the cutoff, or at or below the ``1 - rating_quantile`` quantile.

    Flags: ``strain_but_rated_high`` (a strain signal and a high rating), ``rated_low_without_strain``
    (a low rating and no strain signal). Needs at least ``min_sessions`` sessions per signal/measure.
    With no strain signal (no indicator with supported evidence: today) nothing is flagged.

    Parameters
    ----------
    ind : DataFrame
        session_id, name, role_label, value.
    scores : DataFrame
        session_id, client_id, instrument, scale, timepoint, value, kind, concern_below.
    signals : sequence of StrainSignal
        The indicators read as strain (default :data:`STRAIN_SIGNALS`: those with supported evidence).

    Returns
    -------
    DataFrame
        Columns as table ``discrepancy_flags`` (without comparison_id).
    """
    def arr(frame: pd.DataFrame, col: str, dtype=object) -> np.ndarray:
        return np.asarray(frame[col].to_numpy(), dtype=dtype)

    alliance = scores[(scores["kind"] == "alliance") & scores["session_id"].notna()]
    return _flags(arr(ind, "session_id"), arr(ind, "name"), arr(ind, "role_label"), arr(ind, "value", float),
                  {c: arr(alliance, c) for c in ("session_id", "client_id", "instrument", "scale")}
                  | {"timepoint": np.asarray(alliance["timepoint"].fillna("").to_numpy(), dtype=object)}
                  | {"value": arr(alliance, "value", float), "concern_below": arr(alliance, "concern_below", float)},
                  strain_quantile=strain_quantile, rating_quantile=rating_quantile, min_sessions=min_sessions,
                  signals=signals)


FLAG_COLUMNS = ["session_id", "client_id", "instrument", "scale", "timepoint", "score", "rating", "flag",
                "strain_signals", "detail"]


def _flags(sid: np.ndarray, name: np.ndarray, role_label: np.ndarray, value: np.ndarray,
           alliance: dict[str, np.ndarray], *, strain_quantile: float, rating_quantile: float,
           min_sessions: int, signals: Sequence[StrainSignal]) -> pd.DataFrame:
    """:func:`discrepancy_flags` over arrays.

    Indicator rows as four arrays, the alliance scores as a dict of columns (timepoint '' for none).
    """
    if not len(alliance["session_id"]) or not signals:
        return pd.DataFrame(columns=FLAG_COLUMNS)
    hits = []
    checked = []
    for sig in signals:
        role = "session" if sig.speaker_role is None else sig.speaker_role
        at = (name == sig.name) & (role_label == role)
        v = pd.Series(value[at], index=pd.Index(sid[at], dtype=object))
        if not v.index.is_unique:
            v = v.groupby(level=0).mean()
        if len(v) < min_sessions:
            continue
        checked.append(v.index.to_numpy())
        vals, med = v.to_numpy(), float(v.median())
        if sig.direction == "high":
            sel = (vals >= np.quantile(vals, strain_quantile)) & (vals > med)
        else:
            sel = (vals <= np.quantile(vals, 1 - strain_quantile)) & (vals < med)
        hits.append((sig, role, dict(zip(v.index[sel], vals[sel], strict=True))))
    checked_ids = pd.Index(np.concatenate(checked) if checked else [], dtype=object)
    hit_ids = pd.Index([k for _, _, h in hits for k in h], dtype=object)

    def text(session: str) -> str:
        return "; ".join(f"{sig.name}:{role}={h[session]:.3g} ({sig.meaning})" for sig, role, h in hits
                         if session in h)

    out = []
    keys = pd.MultiIndex.from_arrays([alliance["instrument"], alliance["scale"], alliance["timepoint"]])
    code, groups = pd.factorize(keys, sort=True)
    for gi, (inst, scale, tp) in enumerate(groups):
        idx = np.flatnonzero(code == gi)
        idx = idx[pd.Index(alliance["session_id"][idx], dtype=object).isin(checked_ids)]
        if len(idx) < min_sessions:
            continue
        val = alliance["value"][idx]
        cutoff = alliance["concern_below"][idx]
        cutoff = cutoff[~np.isnan(cutoff)]
        if len(cutoff):
            c = float(cutoff[0])
            high, low = val >= c, val < c
            rule = f"cutoff {c:g}"
        else:
            hi_q, lo_q = np.quantile(val, rating_quantile), np.quantile(val, 1 - rating_quantile)
            high, low = val >= hi_q, val <= lo_q
            rule = f"sample quantiles {1 - rating_quantile:.2f}/{rating_quantile:.2f} ({lo_q:g}/{hi_q:g})"
        sessions = alliance["session_id"][idx]
        has = pd.Index(sessions, dtype=object).isin(hit_ids)
        tp_out = tp or None
        for rows, rating, flag, detail, signals in (
                (high & has, "high", "strain_but_rated_high", f"rated high by {rule}", True),
                (low & ~has, "low", "rated_low_without_strain", f"rated low by {rule}; no strain signal", False)):
            if rows.any():
                out.append(pd.DataFrame({
                    "session_id": sessions[rows], "client_id": alliance["client_id"][idx][rows], "instrument": inst,
                    "scale": scale, "timepoint": tp_out, "score": val[rows], "rating": rating, "flag": flag,
                    "strain_signals": [text(x) for x in sessions[rows]] if signals else None, "detail": detail}))
    return pd.concat(out, ignore_index=True)[FLAG_COLUMNS] if out else pd.DataFrame(columns=FLAG_COLUMNS)


# ----------------------------------------------------------------------------------------------------
# trajectories (SQL)


def trajectories_sql(series: str = "self_report") -> str:
    """Per-client series with the client's own baseline and reliable-change markers, over the staged tables.

    Occasion: the client's session number (research-scope sessions in date order) for a session's value; for
    a client-level score, the number of the client's sessions recorded on or before its date (0: before the
    first). The baseline is the first value of the series (by occasion, then date); the change from it is
    rounded to 9 decimals and compared with the instrument's reliable-change criterion (ORS: 5 points, higher =
    better) with a tolerance of 1e-9: ``improved``, ``deteriorated``, ``no_reliable_change``; NULL where no
    criterion exists (all indicators).
    """
    indicator_part = (
        " UNION ALL SELECT i.client_id, 'indicator', i.name, i.speaker_role, NULL, ss.session_number, i.session_id,"
        " ss.recorded_on, i.x, NULL FROM _cmp_ind i JOIN _cmp_sessions ss USING (session_id)"
        if series == "all" else "")
    return (
        "WITH v AS ("
        " SELECT r.client_id, 'self_report' AS series, r.instrument || '.' || r.scale AS name,"
        " NULL::VARCHAR AS speaker_role, nullif(r.timepoint, '') AS timepoint,"
        " coalesce(ss.session_number, (SELECT count(*) FROM _cmp_sessions c WHERE c.client_id = r.client_id"
        "  AND c.recorded_on <= r.on_date)) AS occasion, r.session_id, r.on_date, r.value,"
        " r.reliable_change AS criterion"
        " FROM _cmp_scores r LEFT JOIN _cmp_sessions ss USING (session_id)"
        f"{indicator_part})"
        " SELECT client_id, series, name, speaker_role, timepoint, occasion::INTEGER AS occasion, session_id,"
        " on_date, value, first_value(value) OVER w AS baseline,"
        " round(value - first_value(value) OVER w, 9) AS change_from_baseline,"
        " CASE WHEN criterion IS NULL THEN NULL"
        f" WHEN value - first_value(value) OVER w >= criterion - {RC_TOLERANCE} THEN 'improved'"
        f" WHEN value - first_value(value) OVER w <= -criterion + {RC_TOLERANCE} THEN 'deteriorated'"
        " ELSE 'no_reliable_change' END AS reliable_change"
        " FROM v WINDOW w AS (PARTITION BY client_id, series, name, speaker_role, timepoint"
        " ORDER BY occasion, on_date NULLS LAST, session_id ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)")


# ----------------------------------------------------------------------------------------------------
# the run


def new_comparison_id() -> str:
    return f"compare-{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:8]}"


def estimates(staged: Staged, options: CompareOptions) -> pd.DataFrame:
    """The estimate table of the staged rows (:func:`stage` first)."""
    agg = pair_sums(staged, need_days="days_since_first" in options.covariates, ranks=options.spearman_within)
    raw = None
    if "within" in options.levels and (options.ci == "model" or NEEDS_ORDER & set(options.covariates)):
        column = {ind: j for j, ind in enumerate(staged.indicators)}
        measure = {m: i for i, m in enumerate(staged.measures)}

        def raw(key: tuple) -> pd.DataFrame:
            at = (staged.measure == measure[tuple(key[2:])]) & ~np.isnan(staged.x[:, column[tuple(key[:2])]])
            labels = {"client_id": staged.client_id[at], "therapist_id": staged.therapist_id[at]} \
                if options.ci == "model" else {"client_id": staged.client[at]}  # codes: no text columns to build
            return pd.DataFrame({"x": staged.x[at, column[tuple(key[:2])]], "y": staged.y[at], **labels,
                                 "s": staged.s[at], "d": staged.d[at],
                                 "o": staged.s[at] if staged.order is None else staged.order[at]})
    return estimate_table(agg, levels=options.levels, min_n=options.min_n, covariates=options.covariates,
                          ci=options.ci, bootstrap=options.bootstrap, seed=options.seed, raw_rows=raw)


def _first_of_session(staged: Staged) -> np.ndarray:
    """Per staged row: the first row of its session (a session has one row per linked measure, same x)."""
    return ~pd.Series(staged.session_id).duplicated().to_numpy()


def flags_for(staged: Staged, options: CompareOptions) -> pd.DataFrame:
    """Discrepancy flags of the staged rows (only strain-signal indicators and alliance scores are read)."""
    signals = STRAIN_SIGNALS
    names = {sig.name for sig in signals}
    first = _first_of_session(staged)
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
    return _flags(*ind, alliance, strain_quantile=options.strain_quantile, rating_quantile=options.rating_quantile,
                  min_sessions=5, signals=signals)


def stage_indicator_rows(con: duckdb.DuckDBPyConnection, staged: Staged) -> None:
    """Create ``_cmp_ind`` (session_id, client_id, name, speaker_role, x) for ``--trajectories all``.

    The staged values in long form: one row per session and indicator.
    """
    con.execute("CREATE OR REPLACE TEMP TABLE _cmp_ind (session_id VARCHAR, client_id VARCHAR, name VARCHAR,"
                " speaker_role VARCHAR, x DOUBLE)")
    first = _first_of_session(staged)
    x = np.where(first[:, None], staged.x, np.nan)
    rows, cols = np.nonzero(~np.isnan(x))
    roles = np.array([r for _, r in staged.indicators], dtype=object)[cols]
    frame = pd.DataFrame({"session_id": staged.session_id[rows], "client_id": staged.client_id[rows],
                          "name": np.array([n for n, _ in staged.indicators], dtype=object)[cols],
                          "speaker_role": np.where(roles == "session", None, roles), "x": x[rows, cols]})
    con.register("_cmp_ind_frame", frame)
    try:
        con.execute("INSERT INTO _cmp_ind SELECT * FROM _cmp_ind_frame")
    finally:
        con.unregister("_cmp_ind_frame")


def run_comparison(con: duckdb.DuckDBPyConnection, *, options: CompareOptions = CompareOptions(),
                   command: str = "") -> Comparison:
    """Compute estimates, discrepancy flags and trajectories and store them under a new comparison id.

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

    options.check()
    staged = stage(con, options)
    versions = staged.markers_versions
    markers = " + ".join(versions)
    lexicons = _lexicons_for(versions)
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


# ----------------------------------------------------------------------------------------------------
# printing


def _ci(est: object, lo: object, hi: object) -> str:
    if est is None or pd.isna(est):
        return "-"
    if lo is None or pd.isna(lo):
        return f"{est:+.2f}"
    return f"{est:+.2f} [{lo:+.2f}, {hi:+.2f}]"


def _q(q: object) -> str:
    return "-" if q is None or pd.isna(q) else f"{q:.3f}"


def format_table(results: pd.DataFrame) -> str:
    """A Markdown table of the results, ordered by level, measure and indicator.

    ``estimate`` is the primary estimate (within: the mixed model's standardised within-client slope;
    between: Spearman rho of client means); the repeated-measures / client-mean correlations follow it.
    """
    lines = ["| indicator | measure | level | sessions | clients | estimate [95% CI] | q | Spearman rho [95% CI] "
             "(within: not adjusted for trend) | Pearson r [95% CI] (within: not adjusted for trend) | reading | "
             "accuracy | evidence |",
             "|---|---|---|---:|---:|---|---:|---|---|---|---|---|"]
    r = results.sort_values(["level", "instrument", "scale", "timepoint", "indicator", "speaker_role"],
                            na_position="first")
    for _, row in r.iterrows():
        role = row["speaker_role"] if isinstance(row["speaker_role"], str) else "session"
        measure = f"{row['instrument']}.{row['scale']}" + (f"@{row['timepoint']}" if isinstance(row["timepoint"], str)
                                                          else "")
        lines.append(f"| {row['indicator']}:{role} | {measure} | {row['level']} | {row['n_sessions']} | "
                     f"{row['n_clients']} | {_ci(row['estimate'], row['estimate_ci_low'], row['estimate_ci_high'])} | "
                     f"{_q(row['estimate_q'])} | "
                     f"{_ci(row['spearman_rho'], row['spearman_ci_low'], row['spearman_ci_high'])} | "
                     f"{_ci(row['pearson_r'], row['pearson_ci_low'], row['pearson_ci_high'])} | {reading(row)} | "
                     f"{grades(row['indicator'])} |")
    return "\n".join(lines)


def grades(name: str) -> str:
    """The two grades of an indicator as two table cells: how well it is measured | what it says about alliance."""
    status = evidence_of(name)
    return f"{ACCURACY_WORDS[accuracy_of(name)]} | {status.replace('_', ' ')}"


def strain_line(signals: Sequence[StrainSignal] = STRAIN_SIGNALS) -> str:
    """One line saying which indicators are read as strain, and why none are when none are."""
    if not signals:
        return ("Strain signals: none. No indicator has supported evidence about the alliance or outcome "
                "(docs/data_dictionary.md), so none is read as strain and no discrepancy is flagged.")
    return "Strain signals (supported evidence): " + ", ".join(
        f"{s.name}:{s.speaker_role or 'session'} {s.direction} ({s.meaning})" for s in signals) + "."


def reading(row: pd.Series) -> str:
    """A cautious one-phrase reading of a result row (from its primary estimate)."""
    est = row.get("estimate", row.get("spearman_rho"))
    if est is None or pd.isna(est):
        return row["note"] or "not estimable"
    lo, hi = row.get("estimate_ci_low", row.get("spearman_ci_low")), row.get("estimate_ci_high",
                                                                              row.get("spearman_ci_high"))
    q = row.get("estimate_q", row.get("spearman_q"))
    if lo is None or pd.isna(lo):
        return "no interval"
    if lo <= 0 <= hi:
        return "CI includes 0: no evidence either way" if hi - lo > 0.4 else "CI includes 0"
    if q is not None and not pd.isna(q) and q < 0.05:
        return "association (q < .05); not causal"
    return "CI excludes 0 but not after correction"


CAVEAT = ("Associations, not effects; the literature expects them to be small (text-based models predicted "
          "client-rated alliance at about rho = .15). Within clients the estimate is the standardised "
          "within-client slope with client means and the listed trend control removed (default session_order: "
          "one effect per session position, so a trend of any shape shared by indicator and score is removed; "
          "cluster-robust 95 % interval unless told otherwise); the within-client Spearman and Pearson columns are "
          "repeated-measures correlations not adjusted for trend, a description only. Between clients the "
          "estimate is Spearman rho of client means. Read the intervals, not the point estimates; "
          "q = Benjamini-Hochberg over every test of this run. Indicators are process signals for reflection, "
          "not clinical judgements.")
