"""The append-only audit log: who ran what on which sessions, when, under which run id.

Rows hold ids, counts and command names, never transcript text. Nothing in the package updates or
deletes them (an erasure records itself here too).
"""

from __future__ import annotations

import getpass
import os
import uuid
from collections.abc import Sequence

import duckdb

ACTOR_ENV = "ALLIANCE_ACTOR"
ROLES = ("clinician", "supervisor", "researcher", "admin")


def current_actor(explicit: str | None = None) -> str:
    """Who is acting: ``explicit`` (``--actor``), else ``ALLIANCE_ACTOR``, else the operating-system user."""
    if explicit:
        return explicit
    if os.environ.get(ACTOR_ENV):
        return os.environ[ACTOR_ENV]
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (containers)
        return f"uid:{os.getuid()}"


def record(con: duckdb.DuckDBPyConnection, *, action: str, actor: str, role: str | None = None,
           session_ids: Sequence[str] = (), run_id: str | None = None, detail: str | None = None) -> str:
    """Append one event; returns its id. Call inside the caller's transaction where there is one."""
    event_id = f"evt-{uuid.uuid4().hex}"
    con.execute(
        "INSERT INTO audit_log (event_id, occurred_at, actor, role, action, session_ids, run_id, detail)"
        " VALUES (?, now(), ?, ?, ?, ?, ?, ?)",
        [event_id, actor, role, action, list(session_ids), run_id, detail],
    )
    return event_id


def events(con: duckdb.DuckDBPyConnection, *, session_id: str | None = None, limit: int = 50) -> list[tuple]:
    """The newest ``limit`` events (all, or those naming ``session_id``), newest first.

    Rows: ``(occurred_at, actor, role, action, session_ids, run_id, detail)``.
    """
    where, params = ("WHERE list_contains(session_ids, ?)", [session_id]) if session_id else ("", [])
    return con.execute(
        f"SELECT occurred_at, actor, role, action, session_ids, run_id, detail FROM audit_log {where} "
        "ORDER BY occurred_at DESC LIMIT ?", [*params, limit]).fetchall()
