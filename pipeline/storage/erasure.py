"""Consent withdrawal: erase everything derived from a session's (or a client's) recordings.

What is erased, in one transaction:

- every row of the session in ``sessions``, ``consents``, ``words``, ``turns``, ``speaker_turns``,
  ``markers``, ``indicators``, ``session_lemmas``, ``report_files`` and ``run_items`` (source paths and
  messages), its ``discrepancy_flags`` and ``client_trajectories`` rows, and the self-report
  administrations tied to the session (items and scores too); for a client withdrawal all of the
  client's self-report as well;

then, after the commit, the files recorded for the session (Markdown summary, HTML/PDF report) and any
``<session>.md|.html|.pdf`` in the given report folders; the source audio and its consent sidecar unless
``keep_audio``. Therapist index pages are rewritten by the caller.

The command line stored for every run that looked at the sessions (``pipeline_runs.command``: ``batch
/path/to/manifest.csv``, ``process NAME.flac``) is cut to its first word: a manifest path or a file name
can name the client. Prefect's records hold only random handles (:attr:`pipeline.engine.manifest.BatchItem.
handle`), never a hash a guessed id could reproduce; the session flow runs are deleted by the caller.

What is kept (no content): a ``consent_withdrawals`` row per session (ids, audio SHA-256, when, who),
so a re-submitted recording is refused; an ``erasures`` row with table row counts, a SHA-256 of each
session's erased words (to prove later what was erased without keeping it) and the removed file paths;
an ``audit_log`` event. Aggregate ``comparison_results`` (correlations over many sessions) are kept.

The database file is compacted afterwards by :func:`pipeline.storage.db.compact` so deleted rows do not
linger in free blocks of the file.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import duckdb

from pipeline.errors import ConfigError, SessionNotFoundError, StorageError
from pipeline.privacy.consent import sidecar_path
from pipeline.storage import audit
from pipeline.storage.client_history import refresh_client_history
from pipeline.storage.db import SESSION_TABLES, transaction

#: Session-keyed tables erased besides SESSION_TABLES.
_MORE_SESSION_TABLES = ("report_files", "run_items", "discrepancy_flags")
_SELF_REPORT_BY_ADMIN = ("self_report_items", "self_report_scores")
#: What remains of the command line of a run that processed an erased session (after its first word).
ERASED_COMMAND = " [arguments removed: a session of this run was erased]"


@dataclass(frozen=True)
class ErasureResult:
    """What one withdrawal erased."""

    erasure_id: str
    target_kind: str
    target_id: str
    session_ids: tuple[str, ...]
    therapist_ids: tuple[str, ...]
    rows_deleted: tuple[tuple[str, int], ...]
    files_removed: tuple[str, ...]


def _sessions(con: duckdb.DuckDBPyConnection, *, session_id: str | None,
              client_id: str | None) -> list[tuple[str, str, str, str]]:
    if (session_id is None) == (client_id is None):
        raise ConfigError("withdraw needs exactly one of a session id or a client id")
    column, value = ("session_id", session_id) if session_id is not None else ("client_id", client_id)
    rows = con.execute(
        f"SELECT session_id, client_id, therapist_id, audio_sha256 FROM sessions WHERE {column} = ? ORDER BY 1",
        [value],
    ).fetchall()
    if not rows and session_id is not None:
        raise SessionNotFoundError(f"no session {session_id!r} in the database")
    return rows


def _content_sha256(con: duckdb.DuckDBPyConnection, session_id: str) -> str:
    h = hashlib.sha256()
    for (text,) in con.execute("SELECT text FROM words WHERE session_id = ? ORDER BY word_index",
                               [session_id]).fetchall():
        h.update(text.encode("utf-8") + b"\n")
    return h.hexdigest()


def _files(con: duckdb.DuckDBPyConnection, session_ids: Sequence[str], keep_audio: bool) -> list[Path]:
    """Exactly the files recorded for these sessions (reports, summaries and, unless kept, the recordings)."""
    ids = list(session_ids)
    found = [Path(p) for (p,) in con.execute(
        "SELECT DISTINCT path FROM report_files WHERE list_contains(?, session_id)", [ids]).fetchall()]
    if not keep_audio:
        audio = [Path(p) for (p,) in con.execute(
            "SELECT DISTINCT source_path FROM run_items WHERE list_contains(?, session_id) AND state = 'processed'",
            [ids]).fetchall()]
        found += audio + [sidecar_path(p) for p in audio]
    out: list[Path] = []
    for p in found:
        if p not in out:
            out.append(p)
    return out


def _delete(con: duckdb.DuckDBPyConnection, table: str, where: str, params: list) -> int:
    n = con.execute(f"SELECT count(*) FROM {table} WHERE {where}", params).fetchone()[0]
    if n:
        con.execute(f"DELETE FROM {table} WHERE {where}", params)
    return int(n)


def withdraw(con: duckdb.DuckDBPyConnection, *, session_id: str | None = None, client_id: str | None = None,
             actor: str, run_id: str, keep_audio: bool = False,
             prefect_runs_deleted: int | None = None) -> ErasureResult:
    """Erase a session's (or all of a client's) derived data and files, and record the erasure.

    Parameters
    ----------
    con : duckdb connection
        A writable connection.
    session_id, client_id : str
        Exactly one: the session, or every session and self-report of the client.
    actor : str
        Who withdraws (recorded).
    run_id : str
        The run id recorded with the erasure.
    keep_audio : bool
        Keep the source recording and its consent sidecar (default: delete them too).
    prefect_runs_deleted : int, optional
        How many Prefect flow runs of the sessions the caller deleted (recorded).

    Returns
    -------
    ErasureResult

    Raises
    ------
    SessionNotFoundError
        ``session_id`` is not stored.
    StorageError
        The database write failed (rolled back; no file was touched).
    """
    rows = _sessions(con, session_id=session_id, client_id=client_id)
    kind, target = ("session", session_id) if session_id is not None else ("client", client_id)
    ids = [r[0] for r in rows]
    erasure_id = f"erasure-{uuid.uuid4().hex[:12]}"
    files = _files(con, ids, keep_audio)
    hashes = {sid: _content_sha256(con, sid) for sid in ids}
    deleted: dict[str, int] = {}
    try:
        with transaction(con):
            in_ids = "list_contains(?, session_id)"
            admins_where = in_ids if kind == "session" else "(list_contains(?, session_id) OR client_id = ?)"
            admin_params: list = [ids] if kind == "session" else [ids, client_id]
            admin_ids = [a for (a,) in con.execute(
                f"SELECT administration_id FROM self_report_administrations WHERE {admins_where}",
                admin_params).fetchall()]
            for table in _SELF_REPORT_BY_ADMIN:
                deleted[table] = _delete(con, table, "list_contains(?, administration_id)", [admin_ids])
            deleted["self_report_administrations"] = _delete(
                con, "self_report_administrations", "list_contains(?, administration_id)", [admin_ids])
            traj_where = in_ids if kind == "session" else "(list_contains(?, session_id) OR client_id = ?)"
            deleted["client_trajectories"] = _delete(con, "client_trajectories", traj_where, admin_params)
            # the runs that looked at these sessions keep no command line: it names the manifest or recording
            run_ids = [r for (r,) in con.execute(f"SELECT DISTINCT run_id FROM run_items WHERE {in_ids}",
                                                 [ids]).fetchall()]
            con.execute("UPDATE pipeline_runs SET command = regexp_extract(command, '^[a-z-]+') || ?"
                        " WHERE list_contains(?, run_id) AND command IS NOT NULL", [ERASED_COMMAND, run_ids])
            for table in (*SESSION_TABLES, *_MORE_SESSION_TABLES):
                deleted[table] = deleted.get(table, 0) + _delete(con, table, in_ids, [ids])
            for cid in sorted({r[1] for r in rows}):
                refresh_client_history(con, cid, run_id=run_id)  # the client's other sessions change
            for sid, cid, _therapist, sha in rows:
                con.execute(
                    "INSERT INTO consent_withdrawals (session_id, client_id, audio_sha256, withdrawn_at, recorded_by,"
                    " erasure_id) VALUES (?, ?, ?, now(), ?, ?)", [sid, cid, sha, actor, erasure_id])
            con.execute(
                "INSERT INTO erasures (erasure_id, erased_at, actor, target_kind, target_id, session_ids, rows_deleted,"
                " content_sha256, files_removed, prefect_runs_deleted, run_id)"
                " VALUES (?, now(), ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [erasure_id, actor, kind, target, ids, json.dumps(deleted), json.dumps(hashes),
                 json.dumps([str(p) for p in files if p.exists()]), prefect_runs_deleted, run_id])
            audit.record(con, action="withdraw", actor=actor, role="admin", session_ids=ids, run_id=run_id,
                         detail=f"{kind} {target}: {erasure_id}")
    except duckdb.Error as e:
        raise StorageError(f"erasing {kind} {target!r} failed and was rolled back: {e}") from e
    removed = []
    for p in files:
        if p.is_file():
            p.unlink()
            removed.append(str(p))
    therapists = tuple(sorted({r[2] for r in rows}))
    return ErasureResult(erasure_id, kind, str(target), tuple(ids), therapists,
                         tuple(sorted(deleted.items())), tuple(removed))


def withdraw_before_processing(con: duckdb.DuckDBPyConnection, *, session_id: str, client_id: str | None,
                               audio_sha256: str | None, actor: str, run_id: str) -> tuple[str, bool]:
    """Register a withdrawal for a session that is not stored yet, so its recording is refused when it arrives.

    Nothing is erased (nothing is stored); a ``consent_withdrawals`` row (the session id, the client id or
    ``''`` when not given, the recording's SHA-256 when given), an ``erasures`` row with no session and no
    rows, and an audit event are written in one transaction.

    Returns
    -------
    (erasure_id, new) : tuple
        ``new`` is False when a withdrawal of this session id was already registered (nothing is written).

    Raises
    ------
    ConfigError
        The session is stored: withdraw it with :func:`withdraw`, which also erases it.
    StorageError
        The write failed (rolled back).
    """
    if con.execute("SELECT count(*) FROM sessions WHERE session_id = ?", [session_id]).fetchone()[0]:
        raise ConfigError(f"session {session_id!r} is already processed and stored: withdraw it without "
                          "--before-processing, which erases its data")
    existing = con.execute("SELECT erasure_id FROM consent_withdrawals WHERE session_id = ? ORDER BY withdrawn_at "
                           "LIMIT 1", [session_id]).fetchone()
    if existing is not None:
        return str(existing[0]), False
    erasure_id = f"erasure-{uuid.uuid4().hex[:12]}"
    try:
        with transaction(con):
            con.execute(
                "INSERT INTO consent_withdrawals (session_id, client_id, audio_sha256, withdrawn_at, recorded_by,"
                " erasure_id) VALUES (?, ?, ?, now(), ?, ?)", [session_id, client_id or "", audio_sha256, actor,
                                                               erasure_id])
            con.execute(
                "INSERT INTO erasures (erasure_id, erased_at, actor, target_kind, target_id, session_ids, rows_deleted,"
                " content_sha256, files_removed, prefect_runs_deleted, run_id)"
                " VALUES (?, now(), ?, 'session', ?, [], '{}', '{}', '[]', NULL, ?)",
                [erasure_id, actor, session_id, run_id])
            audit.record(con, action="withdraw", actor=actor, role="admin", session_ids=[session_id], run_id=run_id,
                         detail=f"session {session_id}: before processing: {erasure_id}")
    except duckdb.Error as e:
        raise StorageError(f"registering the withdrawal of session {session_id!r} failed and was rolled back: "
                           f"{e}") from e
    return erasure_id, True


def withdrawn(con: duckdb.DuckDBPyConnection, *, session_id: str, audio_sha256: str) -> str | None:
    """Why a recording must be refused because consent was withdrawn, or None.

    Refused: the same audio (SHA-256) or the same session id was withdrawn before (erased, or registered
    before the recording was processed).
    """
    row = con.execute(
        "SELECT w.session_id, w.audio_sha256, w.withdrawn_at, coalesce(len(e.session_ids), 1) FROM"
        " consent_withdrawals w LEFT JOIN erasures e USING (erasure_id)"
        " WHERE w.audio_sha256 = ? OR w.session_id = ? ORDER BY w.withdrawn_at LIMIT 1",
        [audio_sha256, session_id],
    ).fetchone()
    if row is None:
        return None
    what = "this recording" if row[1] == audio_sha256 else f"session id {session_id!r}"
    if row[3] == 0:
        return (f"consent for {what} was withdrawn on {row[2]:%Y-%m-%d}, before it was processed "
                f"(session {row[0]!r}); it is not processed")
    return (f"consent for {what} was withdrawn on {row[2]:%Y-%m-%d} and its data erased "
            f"(session {row[0]!r}); it is not processed again")
