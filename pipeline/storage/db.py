"""Open the database, write a session in one transaction, record runs, read sessions back.

All SQL is parameterised; bulk rows go through registered DataFrames.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import socket
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pandas as pd

from pipeline.analysis.session import SessionAnalysis
from pipeline.errors import DatabaseLockedError, SessionNotFoundError, StorageError
from pipeline.storage import audit, encryption
from pipeline.storage.client_history import refresh_client_history
from pipeline.storage.duck import SAFE_CONFIG
from pipeline.storage.migrate import migrate
from pipeline.storage.wide import add_columns, sync_indicators_wide

#: Tables holding rows derived from a session (deleted and rewritten together).
SESSION_TABLES = ("words", "turns", "turns_deidentified", "coded_utterances", "speaker_turns", "markers", "indicators",
                  "session_lemmas",
                  "session_quality", "indicators_wide", "consents", "sessions")



#: How long an open waits for another process (a second run, a ``duckdb`` shell or notebook reading the
#: file) to release the database file's lock, in seconds; ``ALLIANCE_DB_LOCK_WAIT_S`` overrides it.
LOCK_WAIT_ENV = "ALLIANCE_DB_LOCK_WAIT_S"
DEFAULT_LOCK_WAIT_S = 60.0

_SQLITE_MAGIC = b"SQLite format 3\x00"
_DUCKDB_MAGIC = b"DUCK"  # bytes 8-11 of every DuckDB file, encrypted or not


def lock_wait_s() -> float:
    """Seconds to wait for the database file's lock (``ALLIANCE_DB_LOCK_WAIT_S``, default 60)."""
    raw = os.environ.get(LOCK_WAIT_ENV, "").strip()
    if not raw:
        return DEFAULT_LOCK_WAIT_S
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not 0 <= value <= 86_400:
        raise StorageError(f"{LOCK_WAIT_ENV}={raw!r} is not a number of seconds between 0 and 86400")
    return value


def _one_line(error: BaseException) -> str:
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return lines[0] if lines else type(error).__name__


def check_file(path: Path) -> None:
    """Refuse what is not a DuckDB database before DuckDB looks at it.

    A SQLite file would make DuckDB reach for its sqlite extension; a folder, an unreadable file or a
    foreign format gets one clear line.

    Raises
    ------
    StorageError
        ``path`` is a folder, unreadable, a SQLite database or not a DuckDB file.
    """
    if path.exists() and not path.is_file():
        raise StorageError(f"database {path} is not a file: pass a DuckDB file path with --db")
    if not path.is_file():
        return
    try:
        with path.open("rb") as f:
            head = f.read(16)
    except OSError as e:
        raise StorageError(f"cannot read database {path}: {e.strerror or e}") from e
    if head.startswith(_SQLITE_MAGIC):
        raise StorageError(f"{path} is a SQLite database, not an alliance DuckDB database: pass the DuckDB "
                           "file (or a new path to create one) with --db")
    if head[8:12] != _DUCKDB_MAGIC:
        raise StorageError(f"{path} is not a DuckDB database file (empty, foreign or damaged): restore it from "
                           "a backup or pass another --db")


def _is_lock_conflict(error: BaseException) -> bool:
    text = str(error)
    return "Could not set lock on file" in text or "Conflicting lock is held" in text


def new_run_id() -> str:
    return f"run-{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:8]}"


def connect(path: Path | str, *, read_only: bool = False, create: bool = True,
            key: str | None = None, lock_wait: float | None = None) -> duckdb.DuckDBPyConnection:
    """Open (and for writers, migrate) the database; a new file is created owner-only (0600).

    Parameters
    ----------
    path : path
        The DuckDB file.
    read_only : bool
        Open without the write lock (several readers may share the file; no audit rows can be written).
    create : bool
        Create the file when it is missing (writers only). False: a missing file is an error.
    key : str, optional
        Encryption key; None reads it from ``--db-key-file``/``ALLIANCE_DB_KEY_FILE``/``ALLIANCE_DB_KEY``
        (see :mod:`pipeline.storage.encryption`). With a key the file is opened encrypted.
    lock_wait : float, optional
        Seconds to wait while another process holds the file's lock (a second run, a ``duckdb`` shell
        or a notebook reading it); None: :func:`lock_wait_s` (60 s unless ``ALLIANCE_DB_LOCK_WAIT_S``).

    Raises
    ------
    DatabaseLockedError
        Another process still held the file's lock after ``lock_wait`` seconds.
    StorageError
        The file cannot be opened (unreadable, in a folder that cannot be written, not a DuckDB file,
        damaged, encrypted and no key or the wrong key, plain while a key is set). The message is one line.
    """
    path = Path(path)
    if (read_only or not create) and not path.is_file():
        raise StorageError(f"database {path} does not exist: process a recording first")
    check_file(path)
    if key is None:
        key = encryption.load_key()
    wait = lock_wait_s() if lock_wait is None else lock_wait
    deadline = time.monotonic() + wait
    created = not path.exists()
    while True:
        try:
            if not read_only:
                path.parent.mkdir(parents=True, exist_ok=True)
            if key is not None:
                con = encryption.open_encrypted(path, key=key, read_only=read_only)
            else:
                con = duckdb.connect(str(path), read_only=read_only, config=SAFE_CONFIG)
            break
        except (duckdb.Error, OSError, StorageError) as e:
            if _is_lock_conflict(e):
                if time.monotonic() < deadline:
                    time.sleep(0.25)
                    continue
                holder = str(e).split("Conflicting lock is held in", 1)[-1].split(".", 1)[0].strip()
                raise DatabaseLockedError(
                    f"database {path} is locked by another process ({holder or 'unknown'}) and stayed locked "
                    f"for {wait:.0f} s: close it (a duckdb shell or notebook on the file, another run) or set "
                    f"{LOCK_WAIT_ENV} to wait longer") from None
            if isinstance(e, StorageError):
                raise
            if "encrypted" in str(e).lower():
                raise StorageError(
                    f"database {path} is encrypted: set {encryption.KEY_FILE_ENV} to its key file "
                    f"(or {encryption.KEY_ENV} to the key)") from e
            reason = e.strerror if isinstance(e, OSError) and e.strerror else _one_line(e)
            raise StorageError(f"cannot open database {path}: {reason}") from e
    if created and path.is_file():
        os.chmod(path, 0o600)
    if not read_only:
        try:
            migrate(con)
        except (duckdb.Error, StorageError) as e:
            con.close()
            if isinstance(e, StorageError):
                raise
            raise StorageError(f"database {path} is damaged or unreadable: {_one_line(e)}") from e
    return con


@contextmanager
def open(path: Path | str, *, read_only: bool = False, create: bool = True,  # noqa: A001 - db.open reads well
         key: str | None = None, lock_wait: float | None = None) -> Iterator[duckdb.DuckDBPyConnection]:
    """The one way to open the database: ``with db.open(path) as con:`` (closed on leaving the block).

    Arguments as :func:`connect` (read-only opens, creation, encryption key, lock wait); writers are
    migrated. A DuckDB error escaping the block (a damaged block read, a failed statement) becomes a
    one-line :class:`~pipeline.errors.StorageError`.
    """
    con = connect(path, read_only=read_only, create=create, key=key, lock_wait=lock_wait)
    try:
        yield con
    except duckdb.Error as e:
        raise StorageError(f"database {path}: {_one_line(e)}") from e
    finally:
        con.close()


@contextmanager
def transaction(con: duckdb.DuckDBPyConnection) -> Iterator[None]:
    con.execute("BEGIN TRANSACTION")
    try:
        yield
    except BaseException:
        con.execute("ROLLBACK")
        raise
    else:
        con.execute("COMMIT")


def start_run(con: duckdb.DuckDBPyConnection, *, run_id: str, pipeline_version: str, models: dict,
              command: str) -> None:
    """Record a run as ``running``, with this process's id and host (see :func:`close_stale_runs`)."""
    con.execute(
        "INSERT INTO pipeline_runs (run_id, pipeline_version, models, started_at, status, command, pid, host) "
        "VALUES (?, ?, ?, now(), 'running', ?, ?, ?)",
        [run_id, pipeline_version, json.dumps(models), command, os.getpid(), socket.gethostname()],
    )


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def close_stale_runs(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Close as ``interrupted`` every ``running`` run of this host whose process is gone; return their ids.

    A run killed (SIGKILL, power loss, out of memory) never reaches its end; the next run closes it.
    Callers hold the database's run lock, so no live run of this host can be mistaken for a stale one;
    runs recorded before process ids were kept (no pid) count as stale too. Runs of other hosts (a
    database on a shared folder) are left alone: their processes cannot be checked from here.
    """
    host = socket.gethostname()
    stale = [run_id for run_id, pid, run_host in con.execute(
        "SELECT run_id, pid, host FROM pipeline_runs WHERE status = 'running'").fetchall()
        if (run_host is None or run_host == host) and (pid is None or pid == os.getpid() or not _process_alive(pid))]
    if stale:
        con.execute("UPDATE pipeline_runs SET status = 'interrupted', finished_at = now() "
                    "WHERE list_contains(?, run_id) AND status = 'running'", [stale])
    return stale


def finish_run(con: duckdb.DuckDBPyConnection, *, run_id: str, status: str) -> None:
    con.execute("UPDATE pipeline_runs SET finished_at = now(), status = ? WHERE run_id = ?", [status, run_id])


def record_item(con: duckdb.DuckDBPyConnection, *, run_id: str, source_path: str, state: str,
                session_id: str | None = None, audio_sha256: str | None = None, stage: str | None = None,
                error_code: str | None = None, message: str | None = None, flow_handle: str | None = None) -> None:
    """Record one recording's end state in ``run_items`` (with the session flow's handle, when a flow ran)."""
    con.execute(
        "INSERT INTO run_items (run_id, source_path, session_id, audio_sha256, state, stage, error_code, message,"
        " finished_at, flow_handle) VALUES (?, ?, ?, ?, ?, ?, ?, ?, now(), ?)",
        [run_id, source_path, session_id, audio_sha256, state, stage, error_code, message, flow_handle],
    )


def flow_handles(con: duckdb.DuckDBPyConnection, session_ids: list[str]) -> list[str]:
    """The session-flow handles recorded for these sessions (their Prefect flow runs' only parameter)."""
    return [h for (h,) in con.execute(
        "SELECT DISTINCT flow_handle FROM run_items WHERE list_contains(?, session_id) AND flow_handle IS NOT NULL"
        " ORDER BY 1", [list(session_ids)]).fetchall()]


def sessions_of(con: duckdb.DuckDBPyConnection, *, session_id: str | None = None,
                client_id: str | None = None) -> list[str]:
    """The stored session ids that are ``session_id`` or belong to ``client_id``."""
    return [r[0] for r in con.execute("SELECT session_id FROM sessions WHERE session_id = ? OR client_id = ?",
                                      [session_id, client_id]).fetchall()]


def missing_outputs(con: duckdb.DuckDBPyConnection, session_id: str) -> list[str]:
    """Which of the session's summary (``summary_md``) and report (``report_html``) files are not on disk.

    A kind never recorded counts as missing (the run that stored the session died before writing it).
    """
    rows = con.execute("SELECT kind, path FROM report_files WHERE session_id = ? AND list_contains(?, kind)",
                       [session_id, ["summary_md", "report_html"]]).fetchall()
    present = {kind for kind, path in rows if Path(path).is_file()}
    return [k for k in ("summary_md", "report_html") if k not in present]


@dataclass(frozen=True)
class ExistingSession:
    session_id: str
    audio_sha256: str
    pipeline_version: str
    markers_version: str | None


def find_existing(con: duckdb.DuckDBPyConnection, *, session_id: str, audio_sha256: str) -> list[ExistingSession]:
    """Sessions already stored under this id or from this audio."""
    rows = con.execute(
        "SELECT session_id, audio_sha256, pipeline_version, markers_version FROM sessions"
        " WHERE session_id = ? OR audio_sha256 = ?",
        [session_id, audio_sha256],
    ).fetchall()
    return [ExistingSession(*r) for r in rows]


def _frames(a: SessionAnalysis, run_id: str) -> dict[str, pd.DataFrame]:
    sid = a.meta.session_id
    role = a.roles.role_of
    words = pd.DataFrame(
        {
            "session_id": sid,
            "word_index": range(len(a.words)),
            "speaker_label": [w.speaker for w in a.words],
            "speaker_role": [role(w.speaker) for w in a.words],
            "start_s": [w.start_s for w in a.words],
            "end_s": [w.end_s for w in a.words],
            "text": [w.text for w in a.words],
            "probability": [w.probability for w in a.words],
            "run_id": run_id,
        }
    )
    turns = pd.DataFrame(
        {
            "session_id": sid,
            "turn_index": [t.index for t in a.turns],
            "speaker_label": [t.speaker for t in a.turns],
            "speaker_role": [role(t.speaker) for t in a.turns],
            "start_s": [t.start_s for t in a.turns],
            "end_s": [t.end_s for t in a.turns],
            "text": [t.text for t in a.turns],
            "word_count": [t.word_count for t in a.turns],
            "run_id": run_id,
        }
    )
    speaker_turns = pd.DataFrame(
        {
            "session_id": sid,
            "speaker_label": [t.speaker for t in a.diarization.turns],
            "speaker_role": [role(t.speaker) for t in a.diarization.turns],
            "start_s": [t.start_s for t in a.diarization.turns],
            "end_s": [t.end_s for t in a.diarization.turns],
            "run_id": run_id,
        }
    )
    markers = pd.DataFrame(
        {
            "session_id": sid,
            "kind": [m.kind for m in a.measures.markers],
            "speaker_role": [m.speaker_role for m in a.measures.markers],
            "start_s": [m.start_s for m in a.measures.markers],
            "end_s": [m.end_s for m in a.measures.markers],
            "value": [m.value for m in a.measures.markers],
            "detail": [m.detail for m in a.measures.markers],
            "run_id": run_id,
        }
    )
    indicators = pd.DataFrame(
        {
            "session_id": sid,
            "name": [i.name for i in a.measures.indicators],
            "speaker_role": [i.speaker_role for i in a.measures.indicators],
            "value": [i.value for i in a.measures.indicators],
            "unit": [i.unit for i in a.measures.indicators],
            "run_id": run_id,
        }
    )
    lemmas = pd.DataFrame(
        {
            "session_id": sid,
            "speaker_role": "client",
            "lemma": [k for k, _ in a.measures.client_lemmas],
            "count": [n for _, n in a.measures.client_lemmas],
            "run_id": run_id,
        }
    )
    deid = pd.DataFrame(
        {
            "session_id": sid,
            "turn_index": [t.index for t in a.turns][: len(a.deidentified_turns)],
            "text": list(a.deidentified_turns),
            "run_id": run_id,
        }
    )
    frames = {"words": words, "turns": turns, "turns_deidentified": deid, "speaker_turns": speaker_turns,
              "markers": markers, "indicators": indicators, "session_lemmas": lemmas}
    if a.codes is not None:
        deid_text = dict(zip([t.index for t in a.turns], a.deidentified_turns, strict=False))
        frames["coded_utterances"] = pd.DataFrame(
            {
                "session_id": sid,
                "turn_index": [t.turn_index for t in a.codes.turns],
                "speaker_role": [t.role for t in a.codes.turns],
                "start_s": [t.start_s for t in a.codes.turns],
                "end_s": [t.end_s for t in a.codes.turns],
                "text": [deid_text.get(t.turn_index, "") for t in a.codes.turns],
                "code": [t.code.code for t in a.codes.turns],
                "code_probability": [t.code.probability for t in a.codes.turns],
                "subtype": [t.code.subtype or None for t in a.codes.turns],
                "subtype_probability": [t.code.subtype_probability for t in a.codes.turns],
                "coder_version": a.codes.coder_version,
                "run_id": run_id,
            }
        )
    if a.quality is not None:
        q = a.quality
        frames["session_quality"] = pd.DataFrame([{
            "session_id": sid, "speech_s": q.speech_s, "speech_share": q.speech_share, "snr_db": q.snr_db,
            "overlap_share": q.overlap_share, "mean_word_probability": q.mean_word_probability,
            "asr_segments": q.asr_segments, "asr_segments_dropped": q.asr_segments_dropped,
            "words_dropped_outside_speech": q.words_dropped_outside_speech,
            "word_attribution_overlap": q.word_attribution_overlap, "role_confidence": q.role_confidence,
            "language": q.language, "language_probability": q.language_probability,
            "high_band_db": q.high_band_db, "rt60_s": q.rt60_s, "early_drop_db": q.early_drop_db,
            "modulation_ratio_db": q.modulation_ratio_db, "expected_wer": q.expected_wer,
            "flags": json.dumps([{"code": f.code, "message": f.message, "distrust": f.distrust} for f in q.flags]),
            "run_id": run_id}])
    return frames


def sync_definitions(con: duckdb.DuckDBPyConnection, *, run_id: str) -> None:
    """Store the indicator definitions of the current markers version (once per version)."""
    from pipeline.analysis.definitions import definitions

    version = _markers_version()
    if con.execute("SELECT count(*) FROM indicator_definitions WHERE markers_version = ?", [version]).fetchone()[0]:
        return
    rows = [{"name": d.name, "speaker_roles": d.roles, "unit": d.unit, "definition": d.definition,
             "markers_version": version, "accuracy": d.accuracy.kind, "accuracy_figure": d.accuracy.figure,
             "accuracy_source": d.accuracy.source, "evidence": d.evidence.status,
             "evidence_note": d.evidence.note, "evidence_source": d.evidence.source,
             "run_id": run_id} for d in definitions().values()]
    insert_frame(con, "indicator_definitions", pd.DataFrame(rows))


def insert_frame(con: duckdb.DuckDBPyConnection, table: str, frame: pd.DataFrame) -> None:
    """Insert a DataFrame's rows into ``table`` (missing values as NULL).

    ``table`` must come from the package's own fixed names, never from user input.
    """
    if frame.empty:
        return
    frame = frame.astype("object").where(frame.notna(), None)
    view = f"_incoming_{table}"
    con.register(view, frame)
    try:
        cols = ", ".join(frame.columns)
        con.execute(f"INSERT INTO {table} ({cols}) SELECT {cols} FROM {view}")
    finally:
        con.unregister(view)


def delete_session(con: duckdb.DuckDBPyConnection, session_id: str) -> None:
    for table in SESSION_TABLES:
        con.execute(f"DELETE FROM {table} WHERE session_id = ?", [session_id])


def write_session(con: duckdb.DuckDBPyConnection, analysis: SessionAnalysis, *, run_id: str,
                  pipeline_version: str, actor: str | None = None) -> None:
    """Replace every row of the session with the analysis, in one transaction.

    A failure at any point rolls back: the database holds either the old rows or the new ones.

    Raises
    ------
    StorageError
        The write failed (the message names the session and the database error).
    """
    a = analysis
    m = a.meta
    try:
        with transaction(con):
            # new indicators' columns first: DuckDB refuses a key deleted earlier in the transaction if the table
            # is altered after the delete (pipeline.storage.wide.add_columns)
            add_columns(con, sorted({(i.name, i.speaker_role) for i in a.measures.indicators},
                                    key=lambda p: (p[0], p[1] or "")))
            delete_session(con, m.session_id)
            con.execute(
                "INSERT INTO sessions (session_id, client_id, therapist_id, recorded_on, audio_sha256, duration_s,"
                " language, pipeline_version, run_id, processed_at, asr_backend, asr_model, diarization_model,"
                " num_speakers, role_method, role_confidence, role_evidence, therapist_label, client_label,"
                " markers_version, source_format, source_sample_rate_hz, source_channels)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, now(), ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [m.session_id, m.client_id, m.therapist_id, m.recorded_on, a.audio_sha256, a.duration_s,
                 a.transcript.language, pipeline_version, run_id, a.transcript.backend, a.transcript.model_name,
                 a.diarization_model, len(a.diarization.speakers), a.roles.method, a.roles.confidence,
                 a.roles.evidence, a.roles.therapist, a.roles.client, _markers_version(), a.source_format,
                 a.source_sample_rate_hz, a.source_channels],
            )
            c = a.consent
            con.execute(
                "INSERT INTO consents (session_id, client_id, scope, consented_on, consented_by, source, run_id)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                [m.session_id, c.client_id, c.scope, c.consented_on, ",".join(c.consented_by), c.source, run_id],
            )
            for table, frame in _frames(a, run_id).items():
                insert_frame(con, table, frame)
            refresh_client_history(con, m.client_id, run_id=run_id)
            sync_definitions(con, run_id=run_id)
            sync_indicators_wide(con)
            audit.record(con, action="process", actor=audit.current_actor(actor), session_ids=[m.session_id],
                         run_id=run_id, detail=f"audio sha256 {a.audio_sha256}")
    except duckdb.Error as e:
        raise StorageError(f"writing session {m.session_id!r} failed and was rolled back: {e}") from e


def _markers_version() -> str:
    from pipeline.analysis.indicators import MARKERS_VERSION

    return MARKERS_VERSION


def require_session(con: duckdb.DuckDBPyConnection, session_id: str) -> dict:
    """The session's row as a dict.

    Raises
    ------
    SessionNotFoundError
        No session has this id.
    """
    cur = con.execute("SELECT * FROM sessions WHERE session_id = ?", [session_id])
    row = cur.fetchone()
    if row is None:
        raise SessionNotFoundError(f"no session {session_id!r} in the database")
    return dict(zip([d[0] for d in cur.description], row, strict=False))


def record_files(con: duckdb.DuckDBPyConnection, *, session_id: str, files: list[tuple[str, str]],
                 run_id: str) -> None:
    """Record files written for a session as ``(path, kind)`` pairs (every path is kept, for erasure)."""
    with transaction(con):
        for path, kind in files:
            resolved = str(Path(path).resolve())
            con.execute("DELETE FROM report_files WHERE session_id = ? AND path = ?", [session_id, resolved])
            con.execute("INSERT INTO report_files (session_id, path, kind, run_id) VALUES (?, ?, ?, ?)",
                        [session_id, resolved, kind, run_id])


def compact(path: Path | str, *, key: str | None = None) -> None:
    """Rewrite the database file with only its live rows (no open connection may hold it).

    After an erasure, deleted rows may remain in free blocks of the file until they are overwritten;
    the rewritten file holds none of them. Encrypted files stay encrypted with the same key.

    Raises
    ------
    StorageError
        The copy failed (the original file is left as it was).
    """
    if key is None:
        key = encryption.load_key()
    rewrite_in_place(path, source_key=key, target_key=key)


def rewrite_in_place(path: Path | str, *, source_key: str | None, target_key: str | None) -> None:
    """Copy the database to a sibling file and replace the original with it.

    The copy is read with ``source_key`` and written with ``target_key``; the original is left as it was if
    the copy fails.
    """
    path = Path(path)
    tmp = path.with_name(path.name + ".rewriting")
    for p in (tmp, Path(str(tmp) + ".wal")):
        p.unlink(missing_ok=True)
    encryption.rewrite(path, tmp, source_key=source_key, target_key=target_key)
    tmp.replace(path)
    Path(str(path) + ".wal").unlink(missing_ok=True)
