"""Consent withdrawal, the whole workflow: which sessions, their pending results, Prefect runs, erasure, indexes.

``alliance consent withdraw`` parses its arguments and prints :class:`Withdrawal`; everything else is here.
The erasure itself (every table, files, the record kept) is :func:`pipeline.storage.erasure.withdraw`.
Deleting the sessions' Prefect flow runs needs Prefect's client (``flows.prefect_runs.delete_flow_runs``,
a layer above this one): the caller hands it in as ``delete_flow_runs``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from pipeline.engine.run import refuse_if_running
from pipeline.errors import ConfigError, DatabaseLockedError
from pipeline.ids import validate_id
from pipeline.report.index import write_therapist_indexes
from pipeline.storage import db, pending
from pipeline.storage.erasure import ErasureResult, withdraw, withdraw_before_processing
from pipeline.storage.lock import exclusive_run, lock_path

#: ``delete_flow_runs(flow_handles, session_ids=..., db_path=...) -> int`` (flows.prefect_runs.delete_flow_runs).
DeleteFlowRuns = Callable[..., int]


@dataclass(frozen=True)
class WithdrawalRequest:
    """What to erase: exactly one of ``session_id``/``client_id``, by ``actor``; the reports folders to clean."""

    session_id: str | None
    client_id: str | None
    actor: str
    reports_dirs: tuple[Path, ...] = (Path("reports"),)
    keep_audio: bool = False


@dataclass(frozen=True)
class Withdrawal:
    """What a withdrawal did."""

    #: What was erased (None: nothing of the session was stored; its withdrawal was registered while a run
    #: held the database, and that run stored nothing of it).
    result: ErasureResult | None
    pending_removed: tuple[Path, ...]
    #: Prefect flow runs deleted (None: not asked to, or no stored session).
    prefect_deleted: int | None
    #: The erasure id of a withdrawal registered while another run held the database (``--wait``).
    registered: str | None = None


#: Where the refusal of a withdrawal during a run points (``alliance consent withdraw --wait``).
WAIT_HINT = ("; or add --wait SECONDS: the withdrawal of a session is then registered at once (a running batch "
             "checks it before storing each session, so it stores nothing more of it) and the erasure waits for "
             "the run to end")


def withdraw_consent(db_path: Path | str, request: WithdrawalRequest, *,
                     delete_flow_runs: DeleteFlowRuns | None = None, wait_s: float = 0.0,
                     on_registered: Callable[[str, int | None], None] | None = None) -> Withdrawal:
    """Erase a stored session (or every session of a client) under the run lock, then compact the file.

    Results computed while the database was locked and not stored yet are erased too; the sessions'
    Prefect flow runs (found by their handles in ``run_items``) are deleted with ``delete_flow_runs``
    (None: kept); the therapists' index pages in ``request.reports_dirs`` are rewritten.

    When another run (a batch) holds the database: with ``wait_s`` 0 refused at once; else a session not
    stored yet has its withdrawal registered at once (:func:`pipeline.storage.erasure.withdraw_before_processing`,
    in a short opening of the database between the run's own), so the run's store step, which checks
    withdrawals immediately before writing each session, never stores it; ``on_registered(erasure_id,
    holder_pid)`` is called, then the run lock is waited for (up to ``wait_s`` seconds) and whatever is stored
    of the session or client is erased. A client's withdrawal waits and erases (sessions the run stores
    meanwhile included) but registers nothing beforehand.

    Raises
    ------
    SessionNotFoundError
        The session is not stored (and no withdrawal was registered while waiting).
    DatabaseLockedError
        Another run holds the database past ``wait_s`` (a registered withdrawal stays registered).
    StorageError
        The database cannot be opened or written (nothing erased).
    """
    dbp = Path(db_path)
    run_id = db.new_run_id()
    registered = None
    try:
        refuse_if_running(dbp)
    except DatabaseLockedError as e:
        if wait_s <= 0:
            raise DatabaseLockedError(f"{e}{WAIT_HINT}") from None
        registered = _register_while_running(dbp, request)
        if on_registered is not None:
            on_registered(registered or "", _holder(dbp))
    with exclusive_run(dbp, wait_s=wait_s):
        with db.open(dbp, create=False) as con:
            ids = db.sessions_of(con, session_id=request.session_id, client_id=request.client_id)
            flow_handles = db.flow_handles(con, ids)
        if not ids and registered is not None:  # the run stored nothing of it: nothing to erase
            removed = pending.discard_for(dbp, session_ids=[request.session_id or ""], client_id=None)
            return Withdrawal(None, tuple(Path(p) for p in removed), None, registered)
        removed = pending.discard_for(dbp, session_ids=[*ids, *([request.session_id] if request.session_id else [])],
                                      client_id=request.client_id)
        deleted = None if delete_flow_runs is None or not ids else delete_flow_runs(
            flow_handles, session_ids=ids, db_path=str(dbp))
        with db.open(dbp, create=False) as con:
            result = withdraw(con, session_id=request.session_id, client_id=request.client_id, actor=request.actor,
                              run_id=run_id, keep_audio=request.keep_audio, prefect_runs_deleted=deleted)
            for folder in request.reports_dirs:
                if Path(folder).is_dir():
                    write_therapist_indexes(con, Path(folder), therapist_ids=list(result.therapist_ids))
        db.compact(dbp)
    return Withdrawal(result, tuple(Path(p) for p in removed), deleted, registered)


def _register_while_running(dbp: Path, request: WithdrawalRequest) -> str | None:
    """Register a session's withdrawal while another run holds the run lock; its erasure id, or None.

    None for a client (a run may store sessions of any id for it), and for a session already stored (erased
    once the run ends).
    """
    if request.session_id is None:
        return None
    sid = validate_id("session", request.session_id)
    with db.open(dbp, create=False) as con:
        if db.sessions_of(con, session_id=sid):
            return None
        erasure_id, _ = withdraw_before_processing(con, session_id=sid, client_id=None, audio_sha256=None,
                                                   actor=request.actor, run_id=db.new_run_id())
    return erasure_id


def _holder(dbp: Path) -> int | None:
    """The process id written in the run lock file by the run holding it (None if unreadable)."""
    try:
        text = lock_path(dbp).read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        return None
    return int(text) if text.isdigit() else None


def withdraw_before_processing_of(db_path: Path | str, *, session_id: str | None, actor: str,
                                  audio_sha256: str | None = None) -> tuple[str, bool]:
    """Register a withdrawal of a session not processed yet (its recording is then refused when it arrives).

    The database is created if missing (the withdrawal may come first). Returns the erasure id and whether
    it is new (False: already registered, nothing changed).

    Raises
    ------
    ConfigError
        No session id.
    InvalidIdError
        The session id is not a valid id.
    """
    if session_id is None:
        raise ConfigError("--before-processing needs --session SESSION_ID")
    sid = validate_id("session", session_id)
    with exclusive_run(Path(db_path)), db.open(db_path) as con:
        return withdraw_before_processing(con, session_id=sid, client_id=None, audio_sha256=audio_sha256,
                                          actor=actor, run_id=db.new_run_id())
