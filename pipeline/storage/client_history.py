"""The client-history indicators (new material, dropped topics), recomputed across a client's sessions.

Both depend on the client's other sessions, so adding, re-processing or erasing any session changes the
values of the client's later ones: :func:`refresh_client_history` recomputes them for every session of
the client from the stored ``session_lemmas``, inside the caller's transaction. Sessions are ordered by
``recorded_on`` (the processing date where none was given), then by session id.
"""

from __future__ import annotations

import duckdb

from pipeline.markers.client_history import DroppedTopicOptions, SessionLemmas, history_indicators

HISTORY_INDICATORS = ("new_material_share", "dropped_topic_count")


def client_series(con: duckdb.DuckDBPyConnection, client_id: str) -> list[SessionLemmas]:
    """The client's sessions with their content lemmas (sessions with no lemmas stored are left out)."""
    rows = con.execute(
        "SELECT s.session_id, coalesce(s.recorded_on, CAST(s.processed_at AS DATE)), l.lemma, l.count"
        " FROM sessions s JOIN session_lemmas l USING (session_id)"
        " WHERE s.client_id = ? AND l.speaker_role = 'client' ORDER BY 1",
        [client_id],
    ).fetchall()
    series: dict[str, tuple] = {}
    for sid, day, lemma, count in rows:
        series.setdefault(sid, (day, {}))[1][lemma] = count
    return [SessionLemmas(sid, day, lemmas) for sid, (day, lemmas) in series.items()]


def refresh_client_history(con: duckdb.DuckDBPyConnection, client_id: str, *, run_id: str,
                           options: DroppedTopicOptions | None = None) -> int:
    """Rewrite the history indicators of every session of ``client_id``; returns the sessions updated."""
    options = options if options is not None else DroppedTopicOptions()
    series = client_series(con, client_id)
    ids = [s.session_id for s in series]
    con.execute(
        "DELETE FROM indicators WHERE list_contains(?, name) AND session_id IN "
        "(SELECT session_id FROM sessions WHERE client_id = ?)", [list(HISTORY_INDICATORS), client_id])
    for sid in ids:
        for ind in history_indicators(series, sid, options=options):
            con.execute("INSERT INTO indicators (session_id, name, speaker_role, value, unit, run_id)"
                        " VALUES (?, ?, ?, ?, ?, ?)", [sid, ind.name, ind.speaker_role, ind.value, ind.unit, run_id])
    return len(ids)
