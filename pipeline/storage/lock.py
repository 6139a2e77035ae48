"""One writer per database: an advisory lock file beside it, held for a whole run."""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from pipeline.errors import DatabaseLockedError, StorageError


def lock_path(db_path: Path) -> Path:
    return Path(str(db_path) + ".lock")


@contextmanager
def exclusive_run(db_path: Path, *, wait_s: float = 0.0) -> Iterator[None]:
    """Hold the database's run lock; wait up to ``wait_s`` seconds for another run to finish.

    Raises
    ------
    DatabaseLockedError
        Another run holds the lock past ``wait_s`` (the message names its process id).
    StorageError
        The database's folder cannot be written.
    """
    path = lock_path(Path(db_path))
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as e:
        raise StorageError(f"cannot use the folder of database {db_path}: {e.strerror or e} "
                           "(the database's folder must be writable: it holds the lock file)") from e
    deadline = time.monotonic() + wait_s
    try:
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
                    raise DatabaseLockedError(
                        f"another run (process {holder}) is writing to {db_path}; wait for it to finish "
                        "or use another --db"
                    ) from None
                time.sleep(0.5)
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        yield
    finally:
        os.close(fd)  # closing releases the lock
