"""Prefect's own records of session runs: found and deleted when consent is withdrawn.

The session flow persists no results (its tasks hold clinical text), but Prefect's database keeps each
flow run's parameters (the audio path and the session, client and therapist ids) and its log lines.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence


async def _delete(session_ids: set[str]) -> int:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowFilter, FlowFilterName

    deleted = 0
    async with get_client() as client:
        offset = 0
        while True:
            runs = await client.read_flow_runs(
                flow_filter=FlowFilter(name=FlowFilterName(any_=["process-session"])), limit=200, offset=offset)
            if not runs:
                break
            offset += len(runs)
            for run in runs:
                meta = run.parameters.get("meta") or {}
                sid = meta.get("session_id") if isinstance(meta, dict) else getattr(meta, "session_id", None)
                if sid in session_ids:
                    await client.delete_flow_run(run.id)
                    deleted += 1
                    offset -= 1
    return deleted


def delete_flow_runs(session_ids: Sequence[str]) -> int:
    """Delete the ``process-session`` flow runs (with their task runs and logs) of these sessions.

    Uses the configured Prefect API (``PREFECT_API_URL``) or, without one, Prefect's local database
    through a temporary server. Returns how many runs were deleted.
    """
    return asyncio.run(_delete(set(session_ids)))
