"""The one owner of a run: lock, run id, start, pending results, end (``finished`` or ``interrupted``).

Every entry point that writes a run (the session flow, the batch flow, ``alliance process``'s fast path for a
refused or skipped recording, ``alliance db flush-pending``) holds it through :func:`owned_run`:

1. the database's run lock (:func:`pipeline.storage.lock.exclusive_run`, waiting up to ``lock_wait_s``);
2. a new run id; runs a killed process left ``running`` closed as ``interrupted`` and this run recorded as
   ``running`` in one connection (:func:`pipeline.engine.sequence.start_run`);
3. results kept while the database was locked stored first (:func:`pipeline.engine.sequence.flush_pending`);
4. on leaving the block: ``finished`` (or the status the body set), or ``interrupted`` when the block is left
   by any exception, ``KeyboardInterrupt`` and ``SystemExit`` included.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline.engine import sequence
from pipeline.engine.outcome import SessionOutcome
from pipeline.storage import db
from pipeline.storage.lock import exclusive_run


def refuse_if_running(db_path: Path | str, *, wait_s: float = 0.0) -> None:
    """Refuse at once when another run holds ``db_path``'s run lock (waiting up to ``wait_s`` for it).

    The cheap check a command makes before Prefect or any model starts: taking the lock and letting it go
    costs milliseconds, where a refusal by :func:`owned_run` came after start-up. :func:`owned_run` still takes
    the lock for the run itself (another run may start in between).

    Raises
    ------
    DatabaseLockedError
        Another run holds the lock past ``wait_s`` (the message names its process id).
    StorageError
        The database's folder cannot be written (it holds the lock file).
    """
    with exclusive_run(Path(db_path), wait_s=wait_s):
        pass


#: The statuses a run can end with (``pipeline_runs.status``).
END_STATUSES = ("finished", "interrupted", "failed")


@dataclass
class OwnedRun:
    """The run an :func:`owned_run` block holds (mutable on purpose: the body may set how the run ends)."""

    run_id: str
    db_path: Path
    #: Results kept while the database was locked, stored when the run started (their end states).
    flushed: list[SessionOutcome] = field(default_factory=list)
    #: How the run ends when its block is left normally (``finished`` or ``failed``).
    status: str = "finished"
    #: Set by a body that closed the run itself in one of its own connections (nothing left to do on exit).
    closed: bool = False


@contextmanager
def owned_run(db_path: Path | str, *, command: str, models: dict | None = None, lock_wait_s: float = 0.0,
              flush: bool = True, log: Any = None) -> Iterator[OwnedRun]:
    """Own a run on ``db_path`` for the block: ``with owned_run(dbp, command="process x.wav") as run:``.

    ``command`` is recorded in ``pipeline_runs`` (a short description: no session id, no path beyond a file's
    name). With ``flush`` (the default), results kept in ``<db>.pending/`` are stored under this run first.

    Raises
    ------
    DatabaseLockedError
        Another run holds the database past ``lock_wait_s``: no run is recorded.
    StorageError
        The database cannot be opened: no run is recorded.
    """
    dbp = Path(db_path)
    with exclusive_run(dbp, wait_s=lock_wait_s):
        run = OwnedRun(db.new_run_id(), dbp)
        sequence.start_run(dbp, run.run_id, models=models or {}, command=command, log=log)
        try:
            if flush:
                run.flushed = sequence.flush_pending(dbp, run.run_id, log=log)
            yield run
        except BaseException:  # Ctrl-C, SIGTERM (raised as KeyboardInterrupt), a crash: never left 'running'
            sequence.finish_run(dbp, run.run_id, status="interrupted")
            raise
        if not run.closed:
            if run.status not in END_STATUSES:
                raise ValueError(f"a run ends {', '.join(END_STATUSES)}; got {run.status!r}")
            sequence.finish_run(dbp, run.run_id, status=run.status)
