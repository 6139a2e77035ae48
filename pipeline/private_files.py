"""Owner-only folders and files: every folder 0700, every file 0600, a file never visible half-written."""

from __future__ import annotations

import os
from pathlib import Path


def private_dir(path: str | os.PathLike[str]) -> Path:
    """Create ``path`` (and its parents) if needed and make it 0700, also when it already existed."""
    folder = Path(path)
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(folder, 0o700)
    return folder


def write_private(path: str | os.PathLike[str], data: bytes, *, sync: bool = False) -> Path:
    """Write ``data`` to ``path`` as a 0600 file: into ``.NAME.partial`` beside it, then renamed into place.

    ``sync`` flushes the bytes to disk before the rename (for results that must survive a crash).
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.partial")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
        if sync:
            f.flush()
            os.fsync(f.fileno())
    tmp.replace(path)
    return path
