"""Prefect's own records of session runs: found and deleted when consent is withdrawn.

The session flow persists no results (its tasks hold clinical text) and takes one parameter, an opaque
handle (:mod:`pipeline.engine.handles`) that ``run_items.flow_handle`` records; its log lines carry
counts and stage names only. A withdrawal deletes exactly the flow runs whose handle this database
recorded for the erased sessions (single runs and a thread batch's subflows alike), with their task
runs and logs; flow runs of other databases, even of the same session id, are left alone. Flow runs
from before handles (parameters holding the session's ids and the database path) are matched by the
session id *and* this database's path.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path
from typing import Any


def _legacy_match(parameters: dict[str, Any], session_ids: set[str], db_path: Path | None) -> bool:
    """A pre-handle ``process-session`` run (``meta`` and ``db_path`` parameters) of these sessions and database."""
    meta = parameters.get("meta")
    if db_path is None or meta is None or "db_path" not in parameters:
        return False
    sid = meta.get("session_id") if isinstance(meta, dict) else getattr(meta, "session_id", None)
    try:
        same_db = Path(str(parameters["db_path"])).resolve() == db_path.resolve()
    except (OSError, ValueError):
        return False
    return sid in session_ids and same_db


async def _delete(handles: set[str], session_ids: set[str], db_path: Path | None) -> int:
    from prefect.client.orchestration import get_client

    deleted = 0
    async with get_client() as client:
        offset = 0
        while True:
            runs = await client.read_flow_runs(limit=200, offset=offset)
            if not runs:
                break
            offset += len(runs)
            for run in runs:
                params = run.parameters or {}
                if params.get("handle") in handles or _legacy_match(params, session_ids, db_path):
                    await client.delete_flow_run(run.id)
                    deleted += 1
                    offset -= 1
    return deleted


def delete_flow_runs(handles: Sequence[str], *, session_ids: Sequence[str] = (),
                     db_path: Path | str | None = None) -> int:
    """Delete the session flow runs (with their task runs and logs) called with these handles.

    ``handles`` come from ``run_items.flow_handle`` of the erased sessions
    (:func:`pipeline.storage.db.flow_handles`). With ``session_ids`` and ``db_path``, flow runs recorded
    before handles existed are deleted too when their parameters name one of these sessions and this
    database. Uses the configured Prefect API (``PREFECT_API_URL``) or, without one, Prefect's local
    database (``PREFECT_HOME``) through a temporary server. Returns how many runs were deleted.
    """
    if not handles and not (session_ids and db_path):
        return 0
    return asyncio.run(_delete(set(handles), set(session_ids), Path(db_path) if db_path else None))
