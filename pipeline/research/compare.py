"""Which process indicators track the client's own ratings? Correlations, discrepancies, trajectories.

The unit of analysis is a session with both an indicator value and a self-report score. For every
indicator (name and role) x measure (instrument, scale, timepoint) and both levels:

* **between** clients: each client's mean indicator against their mean score (n = clients);
* **within** clients: client-centred values over sessions (n = sessions of clients with two or more).

Spearman and Pearson correlations come with 95 % CIs (Fisher z, see :mod:`pipeline.research.correlation`) and
Benjamini-Hochberg q values over all tests of the run, per method. Effects here are small in the
literature (text-based models predicted client-rated alliance at about rho = .15): read the intervals,
not the point estimates, and treat every row as a question for supervision, not a finding.
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

from pipeline.errors import ComparisonError, StorageError
from pipeline.research.correlation import Correlation, benjamini_hochberg, correlate, correlate_within

LEVELS = ("between", "within")
#: Indicators that describe the recording or the role rule rather than the process.
NOT_PROCESS = frozenset({"duration", "role_confidence"})


@dataclass(frozen=True)
class StrainSignal:
    """An indicator read as a possible sign of strain when it is extreme in ``direction``."""

    name: str
    speaker_role: str | None
    direction: str  # "high" or "low"
    meaning: str


#: Process signals of strain (an indicator missing from the database is skipped).
STRAIN_SIGNALS: tuple[StrainSignal, ...] = (
    StrainSignal("rupture_candidate_rate", "client", "high", "rupture candidates (per 100 client turns)"),
    StrainSignal("long_silence_count", None, "high", "many long silences"),
    StrainSignal("long_silence_total", None, "high", "much long silence"),
    StrainSignal("mean_switching_gap", "client", "high", "client slow to respond"),
    StrainSignal("talk_time_share", "client", "low", "client withdrawn (little talk time)"),
    StrainSignal("word_share", "client", "low", "client withdrawn (few of the words)"),
)


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
        Smallest (effective) n for which a correlation is estimated.
    strain_quantile : float
        A strain signal is an indicator at or beyond this quantile of all sessions in its strain
        direction, and beyond the median (so ties at zero never count).
    rating_quantile : float
        Without a published cutoff an alliance rating is *high* at or above this quantile of the
        sample and *low* at or below ``1 - rating_quantile``.
    """

    instruments: tuple[str, ...] = ()
    scales: tuple[str, ...] = ()
    indicators: tuple[str, ...] = ()
    levels: tuple[str, ...] = LEVELS
    min_n: int = 5
    strain_quantile: float = 0.8
    rating_quantile: float = 0.8


@dataclass(frozen=True)
class Comparison:
    """The tables one run wrote (also returned for printing and tests)."""

    comparison_id: str
    results: pd.DataFrame
    flags: pd.DataFrame
    trajectories: pd.DataFrame
    n_sessions: int
    n_clients: int


# ----------------------------------------------------------------------------------------------------
# loading


def load_indicators(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """Columns session_id, client_id, recorded_on, name, speaker_role, value (non-null values).

    Research-scope sessions only (the ``research_indicators`` view): comparisons are research.
    """
    return con.execute(
        "SELECT session_id, client_id, recorded_on, name, speaker_role, value "
        "FROM research_indicators WHERE value IS NOT NULL AND isfinite(value)"
    ).df()


def load_scores(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """Non-null scores of research-scope sessions and clients, with the instrument's kind and criteria."""
    return con.execute(
        "SELECT session_id, client_id, on_date, instrument, scale, timepoint, value, kind, concern_below,"
        " reliable_change FROM research_self_report_scores WHERE value IS NOT NULL"
    ).df()


def _role_label(role: object) -> str:
    return "session" if role is None or (isinstance(role, float) and np.isnan(role)) else str(role)


def select_indicators(ind: pd.DataFrame, wanted: Sequence[str]) -> pd.DataFrame:
    """Rows of the indicators matching ``name`` or ``name:role``.

    Raises
    ------
    ComparisonError
        A requested indicator is not stored.
    """
    ind = ind.assign(role_label=[_role_label(r) for r in ind["speaker_role"]])
    if not wanted:
        return ind[~ind["name"].isin(NOT_PROCESS)]
    keep = pd.Series(False, index=ind.index)
    for w in wanted:
        name, _, role = w.partition(":")
        m = (ind["name"] == name) & ((ind["role_label"] == role) if role else True)
        if not m.any():
            known = sorted({f"{n}:{r}" for n, r in zip(ind["name"], ind["role_label"], strict=True)})
            raise ComparisonError(f"indicator {w!r} is not stored; stored: {known}")
        keep |= m
    return ind[keep]


def select_scores(scores: pd.DataFrame, *, instruments: Sequence[str], scales: Sequence[str]) -> pd.DataFrame:
    for inst in instruments:
        if inst not in set(scores["instrument"]):
            raise ComparisonError(f"no scores of instrument {inst!r} linked to sessions; imported: "
                                  f"{sorted(set(scores['instrument']))}")
    out = scores[scores["instrument"].isin(instruments)] if instruments else scores
    if scales:
        out = out[out["scale"].isin(scales)]
        if out.empty:
            raise ComparisonError(f"no scores on scales {list(scales)}")
    return out


# ----------------------------------------------------------------------------------------------------
# correlations (pure over frames)


def paired(ind: pd.DataFrame, scores: pd.DataFrame) -> pd.DataFrame:
    """One row per session x indicator x measure with both values (x = indicator, y = score).

    Several scores of one measure on one session (e.g. two imports) are averaged.
    """
    s = (scores.assign(timepoint=scores["timepoint"].fillna(""))
         .groupby(["session_id", "client_id", "instrument", "scale", "timepoint"], as_index=False)["value"].mean()
         .rename(columns={"value": "y"}))
    i = ind[["session_id", "name", "role_label", "value"]].rename(columns={"value": "x"})
    return i.merge(s, on="session_id")


def correlation_table(pairs: pd.DataFrame, *, levels: Sequence[str] = LEVELS, min_n: int = 5) -> pd.DataFrame:
    """Correlations for every indicator x measure x level, with BH q values per method.

    Parameters
    ----------
    pairs : DataFrame
        From :func:`paired` (columns name, role_label, instrument, scale, timepoint, client_id, x, y).
    levels : sequence of {"between", "within"}
    min_n : int

    Returns
    -------
    DataFrame
        Columns as table ``comparison_results`` (without comparison_id).
    """
    bad = set(levels) - set(LEVELS)
    if bad:
        raise ComparisonError(f"levels {sorted(bad)} unknown; use {list(LEVELS)}")
    rows = []
    keys = ["name", "role_label", "instrument", "scale", "timepoint"]
    for (name, role, inst, scale, tp), g in pairs.groupby(keys, sort=True):
        for level in levels:
            if level == "between":
                m = g.groupby("client_id")[["x", "y"]].mean()
                sp = correlate(m["x"], m["y"], method="spearman", min_n=min_n)
                pe = correlate(m["x"], m["y"], method="pearson", min_n=min_n)
            else:
                sp = correlate_within(g["x"], g["y"], g["client_id"], method="spearman", min_n=min_n)
                pe = correlate_within(g["x"], g["y"], g["client_id"], method="pearson", min_n=min_n)
            rows.append(_row(name, role, inst, scale, tp, level, g["client_id"].nunique(), sp, pe))
    out = pd.DataFrame(rows, columns=RESULT_COLUMNS)
    if not out.empty:
        out["spearman_q"] = benjamini_hochberg(list(out["spearman_p"].astype(object).where(out["spearman_p"].notna(),
                                                                                           None)))
        out["pearson_q"] = benjamini_hochberg(list(out["pearson_p"].astype(object).where(out["pearson_p"].notna(),
                                                                                         None)))
    return out


RESULT_COLUMNS = ["indicator", "speaker_role", "instrument", "scale", "timepoint", "level", "n", "n_clients",
                  "spearman_rho", "spearman_ci_low", "spearman_ci_high", "spearman_p", "spearman_q",
                  "pearson_r", "pearson_ci_low", "pearson_ci_high", "pearson_p", "pearson_q", "note"]


def _row(name: str, role: str, inst: str, scale: str, tp: str, level: str, n_clients: int, sp: Correlation,
         pe: Correlation) -> list:
    note = sp.note or pe.note
    return [name, None if role == "session" else role, inst, scale, tp or None, level, sp.n, n_clients,
            sp.estimate, sp.ci_low, sp.ci_high, sp.p, None, pe.estimate, pe.ci_low, pe.ci_high, pe.p, None,
            note or None]


# ----------------------------------------------------------------------------------------------------
# discrepancy flags


def discrepancy_flags(ind: pd.DataFrame, scores: pd.DataFrame, *, strain_quantile: float = 0.8,
                      rating_quantile: float = 0.8, min_sessions: int = 5) -> pd.DataFrame:
    """Sessions where process signals and the client's alliance rating disagree.

    A session has a *strain signal* when one of :data:`STRAIN_SIGNALS` is at or beyond the
    ``strain_quantile`` of all sessions in its strain direction and strictly beyond the median. An
    alliance rating (instruments of kind ``alliance``) is *high* when the score is at or above the
    instrument's ``concern_below`` (SRS: 36), or without one, at or above the ``rating_quantile`` of the
    sample; *low* below the cutoff, or at or below the ``1 - rating_quantile`` quantile.

    Flags: ``strain_but_rated_high`` (a strain signal and a high rating), ``rated_low_without_strain``
    (a low rating and no strain signal). Needs at least ``min_sessions`` sessions per signal/measure.

    Returns
    -------
    DataFrame
        Columns as table ``discrepancy_flags`` (without comparison_id).
    """
    cols = ["session_id", "client_id", "instrument", "scale", "timepoint", "score", "rating", "flag",
            "strain_signals", "detail"]
    strained: dict[str, list[str]] = {}
    checked_sessions: set[str] = set()
    for sig in STRAIN_SIGNALS:
        role = _role_label(sig.speaker_role)
        v = ind[(ind["name"] == sig.name) & (ind["role_label"] == role)].groupby("session_id")["value"].mean()
        if len(v) < min_sessions:
            continue
        checked_sessions |= set(v.index)
        med = v.median()
        if sig.direction == "high":
            hit = v[(v >= v.quantile(strain_quantile)) & (v > med)]
        else:
            hit = v[(v <= v.quantile(1 - strain_quantile)) & (v < med)]
        for sid, val in hit.items():
            strained.setdefault(sid, []).append(f"{sig.name}:{role}={val:.3g} ({sig.meaning})")
    out = []
    alliance = scores[scores["kind"] == "alliance"]
    for (inst, scale, tp), g in alliance.groupby(["instrument", "scale", "timepoint"], dropna=False):
        g = g[g["session_id"].isin(checked_sessions)]
        if len(g) < min_sessions:
            continue
        cutoff = g["concern_below"].dropna()
        if len(cutoff):
            c = float(cutoff.iloc[0])
            high, low = g["value"] >= c, g["value"] < c
            rule = f"cutoff {c:g}"
        else:
            hi_q, lo_q = g["value"].quantile(rating_quantile), g["value"].quantile(1 - rating_quantile)
            high, low = g["value"] >= hi_q, g["value"] <= lo_q
            rule = f"sample quantiles {1 - rating_quantile:.2f}/{rating_quantile:.2f} ({lo_q:g}/{hi_q:g})"
        for (_, r), h, lo in zip(g.iterrows(), high, low, strict=True):
            sig = strained.get(r["session_id"], [])
            tp_out = None if pd.isna(tp) else tp
            if h and sig:
                out.append([r["session_id"], r["client_id"], inst, scale, tp_out, float(r["value"]), "high",
                            "strain_but_rated_high", "; ".join(sig), f"rated high by {rule}"])
            elif lo and not sig:
                out.append([r["session_id"], r["client_id"], inst, scale, tp_out, float(r["value"]), "low",
                            "rated_low_without_strain", None, f"rated low by {rule}; no strain signal"])
    return pd.DataFrame(out, columns=cols)


# ----------------------------------------------------------------------------------------------------
# trajectories


def trajectories(ind: pd.DataFrame, scores: pd.DataFrame) -> pd.DataFrame:
    """Per-client series with the client's own baseline and reliable-change markers.

    Occasions are the client's sessions in date order (then session id). The baseline is the client's
    first value of the series; ``reliable_change`` compares the change from baseline with the
    instrument's reliable-change criterion (ORS: 5 points; higher = better): ``improved``,
    ``deteriorated`` or ``no_reliable_change``; None where no criterion exists (all indicators).

    Returns
    -------
    DataFrame
        Columns as table ``client_trajectories`` (without comparison_id).
    """
    sess = (pd.concat([ind[["session_id", "client_id", "recorded_on"]].rename(columns={"recorded_on": "on_date"}),
                       scores[["session_id", "client_id", "on_date"]]])
            .drop_duplicates("session_id").copy())
    sess["_d"] = pd.to_datetime(sess["on_date"])
    sess = sess.sort_values(["client_id", "_d", "session_id"], na_position="last")
    sess["occasion"] = sess.groupby("client_id").cumcount() + 1
    occ = sess.set_index("session_id")[["occasion", "on_date"]]
    a = ind.assign(series="indicator", timepoint=None, reliable=np.nan)[
        ["client_id", "session_id", "series", "name", "speaker_role", "timepoint", "value", "reliable"]]
    b = scores.assign(series="self_report", name=scores["instrument"] + "." + scores["scale"], speaker_role=None,
                      reliable=scores["reliable_change"])[
        ["client_id", "session_id", "series", "name", "speaker_role", "timepoint", "value", "reliable"]]
    frames = [f for f in (a, b) if not f.empty]
    if not frames:
        return pd.DataFrame(columns=TRAJECTORY_COLUMNS)
    t = pd.concat(frames, ignore_index=True).join(occ, on="session_id")
    t["_role"] = t["speaker_role"].fillna("")
    t["_tp"] = t["timepoint"].fillna("")
    t = t.sort_values(["client_id", "series", "name", "_role", "_tp", "occasion"])
    first = t.groupby(["client_id", "series", "name", "_role", "_tp"])["value"].transform("first")
    t["baseline"] = first
    t["change_from_baseline"] = t["value"] - first
    rc = t["reliable"]
    t["reliable_change"] = np.where(rc.isna(), None, np.where(t["change_from_baseline"] >= rc, "improved",
                                    np.where(t["change_from_baseline"] <= -rc, "deteriorated",
                                             "no_reliable_change")))
    t["occasion"] = t["occasion"].astype(int)
    return t[TRAJECTORY_COLUMNS].reset_index(drop=True)


TRAJECTORY_COLUMNS = ["client_id", "series", "name", "speaker_role", "timepoint", "occasion", "session_id",
                      "on_date", "value", "baseline", "change_from_baseline", "reliable_change"]


# ----------------------------------------------------------------------------------------------------
# the run


def new_comparison_id() -> str:
    return f"compare-{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:8]}"


def run_comparison(con: duckdb.DuckDBPyConnection, *, options: CompareOptions = CompareOptions(),
                   command: str = "") -> Comparison:
    """Compute correlations, discrepancy flags and trajectories and store them under a new comparison id.

    Raises
    ------
    ComparisonError
        No self-report scores linked to sessions, or an unknown instrument, scale or indicator.
    StorageError
        Writing failed (rolled back).
    """
    from pipeline import PIPELINE_VERSION
    from pipeline.storage.db import insert_frame, transaction

    scores = load_scores(con)
    if scores.empty:
        raise ComparisonError("no self-report scores linked to sessions: run `alliance import-self-report` first")
    scores = select_scores(scores, instruments=options.instruments, scales=options.scales)
    ind = select_indicators(load_indicators(con), options.indicators)
    ind = ind[ind["session_id"].isin(set(scores["session_id"]))]
    if ind.empty:
        raise ComparisonError("no indicators on the sessions that have self-report scores")
    results = correlation_table(paired(ind, scores), levels=options.levels, min_n=options.min_n)
    flags = discrepancy_flags(ind, scores, strain_quantile=options.strain_quantile,
                              rating_quantile=options.rating_quantile)
    traj = trajectories(ind.drop(columns="role_label"), scores)
    cid = new_comparison_id()
    n_tests = int(results["spearman_p"].notna().sum())
    try:
        with transaction(con):
            con.execute("INSERT INTO comparison_runs (comparison_id, created_at, options, n_tests, correction,"
                        " pipeline_version, command) VALUES (?, now(), ?, ?, ?, ?, ?)",
                        [cid, json.dumps(asdict(options)), n_tests,
                         "Benjamini-Hochberg over all tests of the run, per method", PIPELINE_VERSION, command])
            insert_frame(con, "comparison_results", results.assign(comparison_id=cid))
            insert_frame(con, "discrepancy_flags", flags.assign(comparison_id=cid))
            insert_frame(con, "client_trajectories", traj.assign(comparison_id=cid))
    except duckdb.Error as e:
        raise StorageError(f"storing comparison {cid} failed and was rolled back: {e}") from e
    return Comparison(cid, results, flags, traj, int(ind["session_id"].nunique()), int(ind["client_id"].nunique()))


# ----------------------------------------------------------------------------------------------------
# printing


def _ci(est: object, lo: object, hi: object) -> str:
    if est is None or pd.isna(est):
        return "-"
    return f"{est:+.2f} [{lo:+.2f}, {hi:+.2f}]"


def _q(q: object) -> str:
    return "-" if q is None or pd.isna(q) else f"{q:.3f}"


def format_table(results: pd.DataFrame) -> str:
    """A Markdown table of the results, ordered by level, measure and indicator."""
    lines = ["| indicator | measure | level | n | Spearman rho [95% CI] | q | Pearson r [95% CI] | q | reading |",
             "|---|---|---|---:|---|---:|---|---:|---|"]
    r = results.sort_values(["level", "instrument", "scale", "timepoint", "indicator", "speaker_role"],
                            na_position="first")
    for _, row in r.iterrows():
        role = row["speaker_role"] if isinstance(row["speaker_role"], str) else "session"
        measure = f"{row['instrument']}.{row['scale']}" + (f"@{row['timepoint']}" if isinstance(row["timepoint"], str)
                                                          else "")
        lines.append(f"| {row['indicator']}:{role} | {measure} | {row['level']} | {row['n']} | "
                     f"{_ci(row['spearman_rho'], row['spearman_ci_low'], row['spearman_ci_high'])} | "
                     f"{_q(row['spearman_q'])} | {_ci(row['pearson_r'], row['pearson_ci_low'], row['pearson_ci_high'])}"
                     f" | {_q(row['pearson_q'])} | {reading(row)} |")
    return "\n".join(lines)


def reading(row: pd.Series) -> str:
    """A cautious one-phrase reading of a result row."""
    if row["spearman_rho"] is None or pd.isna(row["spearman_rho"]):
        return row["note"] or "not estimable"
    lo, hi = row["spearman_ci_low"], row["spearman_ci_high"]
    if lo <= 0 <= hi:
        return "CI includes 0: no evidence either way" if hi - lo > 0.4 else "CI includes 0"
    if row["spearman_q"] is not None and not pd.isna(row["spearman_q"]) and row["spearman_q"] < 0.05:
        return "association (q < .05); not causal"
    return "CI excludes 0 but not after correction"


CAVEAT = ("Correlations between process signals and self-report are associations, not effects; the literature "
          "expects them to be small (text-based models predicted client-rated alliance at about rho = .15). "
          "Read the 95 % intervals, not the point estimates; q = Benjamini-Hochberg over every test of this run. "
          "Indicators are process signals for reflection, not clinical judgements.")
