"""Staging in DuckDB: research sessions and linked scores as temp tables, one row per scored session to Python."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import duckdb
import numpy as np
import pandas as pd

from pipeline.analysis.definitions import evidence_of
from pipeline.errors import ComparisonError
from pipeline.research.compare.options import NOT_PROCESS, CompareOptions
from pipeline.storage.wide import indicator_columns, sync_indicators_wide


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
    measure, measures = _measures(col("instrument"), col("scale"), col("timepoint"))
    client, clients = pd.factorize(client_id, sort=True)
    return Staged(indicators=[(name, role or "session") for _, name, role in chosen],
                  measures=measures, measure=measure,
                  y=col("value", float), kind=col("kind"), concern_below=col("concern_below", float),
                  session_id=session_id, client_id=client_id, therapist_id=col("therapist_id"), client=client,
                  clients=np.asarray(clients, dtype=object), s=col("s", float), d=col("d", float), x=x,
                  markers_versions=[str(v) for v in versions.index], n_sessions=int(len(pd.unique(session_id))),
                  n_clients=int(len(clients)), order=col("o", float))


def _measures(*columns: np.ndarray) -> tuple[np.ndarray, list[tuple]]:
    """Codes of the rows' (instrument, scale, timepoint) and the measures in sorted order.

    Each column is factorised on its own (sorted), so the combined code orders the measures as sorting the
    tuples would; no tuple per row is built.
    """
    codes, levels = zip(*(pd.factorize(c, sort=True) for c in columns), strict=True)
    combined = np.zeros(len(columns[0]), dtype=np.int64)
    for c, lv in zip(codes, levels, strict=True):
        combined = combined * len(lv) + c
    measure, present = pd.factorize(combined, sort=True)
    out = []
    for v in np.asarray(present, dtype=np.int64).tolist():
        parts = []
        for lv in reversed(levels):
            v, r = divmod(v, len(lv))
            parts.append(lv[r])
        out.append(tuple(reversed(parts)))
    return np.asarray(measure, dtype=np.intp), out


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


def first_of_session(staged: Staged) -> np.ndarray:
    """Per staged row: the first row of its session (a session has one row per linked measure, same x)."""
    return ~pd.Series(staged.session_id).duplicated().to_numpy()
