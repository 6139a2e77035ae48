"""The ``indicators_wide`` table: one row per session, one column per indicator and role, maintained on write.

Column names: ``<indicator>_<role>`` for role-specific values (``talk_time_share_therapist``,
``talk_time_share_client``) and the bare indicator name for session-level values (``long_silence_count``).
Every column is DOUBLE; a session without a value for an indicator has NULL there. ``run_id`` is the run
that wrote the session's indicators: a row whose ``run_id`` differs from the session's is stale.

:func:`sync_indicators_wide` brings the table up to date for the sessions that changed (written, re-written or
erased since the last sync) and adds a column for every indicator not seen before. ``write_session`` calls it
inside its transaction; the research commands call it before they read, so rows written by other paths (the
text-only worked examples, an upgraded database) are picked up too.

``indicators_wide_columns`` (migration 0008) records which indicator (name, role) each column holds; a second
indicator that would map to an existing column (a session-level ``x_client`` beside the client's ``x``) is
refused rather than mixed into it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import duckdb

from pipeline.errors import StorageError

_SAFE = re.compile(r"^[a-z][a-z0-9_]*$")
#: columns of indicators_wide that are not indicators
KEY_COLUMNS = ("session_id", "run_id")


def column_name(name: str, role: str | None) -> str:
    """The wide column of an indicator: ``name`` for session-level values, else ``name_role``."""
    return name if role is None else f"{name}_{role}"


def _check(column: str) -> str:
    if not _SAFE.match(column) or column in KEY_COLUMNS:
        raise StorageError(f"indicator column {column!r} cannot be a column of indicators_wide "
                           "(lower-case letters, digits and _ only)")
    return column


def wide_columns(con: duckdb.DuckDBPyConnection) -> list[str]:
    """The indicator columns of ``indicators_wide``, in table order."""
    return [c for (c,) in con.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_name = 'indicators_wide'"
        " AND table_schema = 'main' AND table_catalog = current_database() ORDER BY ordinal_position").fetchall()
        if c not in KEY_COLUMNS]


def indicator_columns(con: duckdb.DuckDBPyConnection) -> list[tuple[str, str, str | None]]:
    """``(column, name, speaker_role)`` of every indicator column of ``indicators_wide``, in table order.

    Only columns whose names match ``[a-z][a-z0-9_]*`` are returned (every column :func:`sync_indicators_wide`
    creates does), so callers may quote them into SQL.
    """
    known = _owners(con)
    return [(c, *known[c]) for c in wide_columns(con) if c in known and _SAFE.match(c)]


def _owners(con: duckdb.DuckDBPyConnection) -> dict[str, tuple[str, str | None]]:
    """Column -> (indicator name, speaker role) as recorded in ``indicators_wide_columns``."""
    return {c: (n, r) for c, n, r in con.execute(
        "SELECT column_name, name, speaker_role FROM indicators_wide_columns").fetchall()}


def add_columns(con: duckdb.DuckDBPyConnection, pairs: Iterable[tuple[str, str | None]]
                ) -> list[tuple[str, str | None, str]]:
    """Give ``indicators_wide`` a column for every ``(name, speaker_role)``; return ``(name, role, column)``.

    Each new column is recorded in ``indicators_wide_columns``; a second indicator for an existing column is
    refused. Call it before deleting rows of ``indicators_wide`` in a transaction: DuckDB refuses to insert a
    key again that was deleted earlier in the same transaction once the table has been altered since
    ("Duplicate key"), which is what re-processing a session after a markers version with new indicators did.

    Raises
    ------
    StorageError
        A column name outside ``[a-z][a-z0-9_]*``, or two indicators for one column.
    """
    have = set(wide_columns(con))
    owner = _owners(con)
    wanted = [(name, role, _check(column_name(name, role))) for name, role in pairs]
    for name, role, col in wanted:
        if col not in owner:
            owner[col] = (name, role)
            con.execute("INSERT INTO indicators_wide_columns VALUES (?, ?, ?)", [col, name, role])
        elif owner[col] != (name, role):
            raise StorageError(f"indicator {name!r} (role {role or 'session'}) would share the indicators_wide "
                               f"column {col!r} with indicator {owner[col][0]!r} (role "
                               f"{owner[col][1] or 'session'}); rename one of them")
        if col not in have:
            con.execute(f'ALTER TABLE indicators_wide ADD COLUMN "{col}" DOUBLE')
            have.add(col)
    return wanted


def sync_indicators_wide(con: duckdb.DuckDBPyConnection) -> int:
    """Rewrite the rows of sessions whose indicators changed; return how many rows were (re)written or removed.

    Runs inside the caller's transaction, if any (``write_session`` has one; it calls :func:`add_columns` before
    deleting the session's old rows); on its own each statement commits. Cost: one anti-join of ``sessions`` with
    the table (milliseconds at 100,000 sessions) when nothing changed.
    """
    con.execute(
        "CREATE OR REPLACE TEMP TABLE _wide_stale AS"
        " SELECT s.session_id, s.run_id FROM sessions s LEFT JOIN indicators_wide w USING (session_id)"
        " WHERE w.session_id IS NULL OR w.run_id IS DISTINCT FROM s.run_id")
    n = int(con.execute("SELECT count(*) FROM _wide_stale").fetchone()[0])
    wanted = add_columns(con, con.execute(
        "SELECT DISTINCT name, speaker_role FROM indicators WHERE session_id IN (SELECT session_id FROM _wide_stale)"
        " ORDER BY name, speaker_role NULLS FIRST").fetchall()) if n else []
    orphans = con.execute(
        "DELETE FROM indicators_wide WHERE session_id NOT IN (SELECT session_id FROM sessions)").fetchone()
    removed = int(orphans[0]) if orphans else 0
    if n:
        con.execute("DELETE FROM indicators_wide WHERE session_id IN (SELECT session_id FROM _wide_stale)")
        aggs = "".join(
            f", max(i.value) FILTER (WHERE i.name = '{name}' AND i.speaker_role "
            + ("IS NULL" if role is None else f"= '{role}'") + f') AS "{col}"'
            for name, role, col in wanted if _SAFE.match(name) and (role is None or _SAFE.match(role)))
        cols = "".join(f', "{col}"' for _, _, col in wanted)
        con.execute(
            f"INSERT INTO indicators_wide (session_id, run_id{cols})"
            f" SELECT st.session_id, any_value(st.run_id){aggs} FROM _wide_stale st"
            " LEFT JOIN indicators i ON i.session_id = st.session_id GROUP BY st.session_id")
    con.execute("DROP TABLE IF EXISTS _wide_stale")
    return n + removed
