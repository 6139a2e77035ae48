"""Computed sessions kept on disk while the database could not be written, until a later run stores them.

When the database stays locked past the wait (another process holds the file: a ``duckdb`` shell, a
notebook, a second program), the computed :class:`~pipeline.analysis.session.SessionAnalysis` is not
thrown away: it is written to ``<database>.pending/<random>.pkl`` (folder 0700, file 0600, an opaque
name: no id or path in it) and the next run on the database, or ``alliance db flush-pending``, stores
it (see :func:`pipeline.engine.sequence.flush_pending`), so nothing is computed twice or lost.

A pending file holds transcript text like the database. With a database key set
(``ALLIANCE_DB_KEY_FILE``) it is encrypted with AES-256-GCM under a key derived from the database key;
without one it is plain, like the database. Pending files are read only when the folder and the file
belong to this user and nobody else can write them (a pickle must never come from someone else).
Withdrawal deletes the pending results of the erased sessions (:func:`discard_for`).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import pickle
import secrets
import stat
from dataclasses import dataclass
from pathlib import Path

from pipeline.analysis.session import SessionAnalysis
from pipeline.errors import StorageError
from pipeline.private_files import private_dir, write_private
from pipeline.storage import encryption

_MAGIC = b"ALLIANCE-PENDING\x01"
_SUFFIX = ".pkl"


@dataclass(frozen=True)
class PendingSession:
    """A computed session waiting to be stored, with what its run would have done after the write."""

    analysis: SessionAnalysis
    audio_path: str
    reports_dir: str
    keep_audio: bool
    force: bool
    computed_by_run: str
    duration_s: float | None
    created_at: str


def pending_dir(db_path: Path | str) -> Path:
    """The folder of the database's pending results (``<database>.pending``)."""
    return Path(str(db_path) + ".pending")


def _cipher(key: str):  # cryptography's AESGCM
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    return AESGCM(hashlib.sha256(b"alliance-pending\x00" + key.encode("ascii")).digest())


def _check_private(path: Path) -> None:
    st = path.stat()
    if st.st_uid != os.geteuid() or st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise StorageError(f"{path} is not owned by this user or is writable by others: not read (a pending "
                           "result is a pickle and must come from this user only)")


def save(db_path: Path | str, item: PendingSession) -> Path:
    """Write ``item`` to a new owner-only file in the database's pending folder; return its path."""
    folder = private_dir(pending_dir(db_path))
    data = pickle.dumps(item, protocol=pickle.HIGHEST_PROTOCOL)
    key = encryption.load_key()
    if key is None:
        blob = _MAGIC + b"P" + data
    else:
        nonce = secrets.token_bytes(12)
        blob = _MAGIC + b"E" + nonce + _cipher(key).encrypt(nonce, data, _MAGIC)
    return write_private(folder / f"{secrets.token_hex(16)}{_SUFFIX}", blob, sync=True)


def list_pending(db_path: Path | str) -> list[Path]:
    """The database's pending result files, oldest first."""
    folder = pending_dir(db_path)
    if not folder.is_dir():
        return []
    return sorted(folder.glob(f"*{_SUFFIX}"), key=lambda p: (p.stat().st_mtime, p.name))


def load(path: Path | str) -> PendingSession:
    """Read one pending result.

    Raises
    ------
    StorageError
        The folder or file is not this user's own, the file is not a pending result, or it is encrypted
        and no (or another) database key is set.
    """
    path = Path(path)
    _check_private(path.parent)
    _check_private(path)
    blob = path.read_bytes()
    if not blob.startswith(_MAGIC) or len(blob) < len(_MAGIC) + 1:
        raise StorageError(f"{path} is not a pending result of this pipeline")
    kind, body = blob[len(_MAGIC):len(_MAGIC) + 1], blob[len(_MAGIC) + 1:]
    if kind == b"E":
        key = encryption.load_key()
        if key is None:
            raise StorageError(f"{path} is encrypted: set {encryption.KEY_FILE_ENV} to the database's key file")
        from cryptography.exceptions import InvalidTag

        try:
            body = _cipher(key).decrypt(body[:12], body[12:], _MAGIC)
        except InvalidTag as e:
            raise StorageError(f"{path} cannot be decrypted with the database key set now") from e
    elif kind != b"P":
        raise StorageError(f"{path} is not a pending result of this pipeline")
    item = pickle.loads(body)  # noqa: S301 - our own file, checked private above
    if not isinstance(item, PendingSession):
        raise StorageError(f"{path} is not a pending result of this pipeline")
    return item


def discard(path: Path | str) -> None:
    """Remove a pending result (stored, or no longer wanted)."""
    Path(path).unlink(missing_ok=True)


def discard_for(db_path: Path | str, *, session_ids: list[str] | tuple[str, ...] = (),
                client_id: str | None = None) -> list[Path]:
    """Remove the pending results of these sessions (or of every session of ``client_id``); return them.

    Used by consent withdrawal: a result not yet stored is erased with the rest. A file that cannot
    be read is left in place (and reported by ``alliance db flush-pending``).
    """
    removed = []
    for path in list_pending(db_path):
        try:
            meta = load(path).analysis.meta
        except (StorageError, OSError, pickle.UnpicklingError, EOFError, AttributeError, ImportError):
            continue
        if meta.session_id in session_ids or (client_id is not None and meta.client_id == client_id):
            discard(path)
            removed.append(path)
    return removed


def now_iso() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
