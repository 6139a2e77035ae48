"""Encryption at rest for the DuckDB file: key handling and opening an encrypted database.

DuckDB (1.4+) encrypts a database file with AES-256-GCM when it is attached with ``ENCRYPTION_KEY``:
every block, the write-ahead log and temporary files. Writing securely needs the OpenSSL-backed crypto
of the signed ``httpfs`` extension, which ships as the pinned registry package
``duckdb-extension-httpfs`` and is loaded here from its file (nothing is downloaded; unsigned
extensions stay forbidden). Without it DuckDB only offers a fallback it labels insecure
(``force_mbedtls_unsafe``), which this module never enables.

Where the key comes from, first match wins:

1. a ``key_file`` passed by the caller (``--db-key-file``);
2. the file named by ``ALLIANCE_DB_KEY_FILE``;
3. the key itself in ``ALLIANCE_DB_KEY``.

A key is 32 to 256 characters of ``[A-Za-z0-9_+/=-]``; ``alliance db keygen`` writes 64 random hex
characters (256 bits) to a file readable by its owner only. A key file readable by group or others is
refused, as ssh refuses such private keys.
"""

from __future__ import annotations

import os
import re
import secrets
import stat
from functools import lru_cache
from pathlib import Path

import duckdb

from pipeline.errors import StorageError
from pipeline.storage.duck import connect_memory

KEY_ENV = "ALLIANCE_DB_KEY"
KEY_FILE_ENV = "ALLIANCE_DB_KEY_FILE"
#: Name the encrypted file is attached under (the connection's default catalog).
CATALOG = "alliance"

_KEY = re.compile(r"^[A-Za-z0-9_+/=-]{32,256}$")


#: What a key file holds -> the command that creates one (a study key is not a database key).
KEY_KINDS = {"database key": "alliance db keygen DB.key", "study key": "alliance study keygen STUDY.key"}


def _check_key(key: str, *, source: str, what: str = "database key") -> str:
    key = key.strip()
    if not _KEY.match(key):
        raise StorageError(
            f"the {what} from {source} is not 32-256 characters of A-Z a-z 0-9 _ + / = - "
            f"(length {len(key)}); create one with `{KEY_KINDS[what]}`"
        )
    return key


def read_key_file(path: Path | str, *, what: str = "database key") -> str:
    """Read and validate a key file; ``what`` (``database key`` or ``study key``) names it in errors.

    Raises
    ------
    StorageError
        The file is missing, readable by group or others, or does not hold a valid key.
    """
    path = Path(path)
    if not path.is_file():
        raise StorageError(f"{what} file {path} does not exist (create one with `{KEY_KINDS[what]}`)")
    mode = path.stat().st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise StorageError(
            f"{what} file {path} is accessible to group or others (mode {stat.filemode(mode)}): "
            f"run `chmod 600 {path}`"
        )
    return _check_key(path.read_text(encoding="ascii", errors="replace"), source=str(path), what=what)


def load_key(key_file: Path | str | None = None) -> str | None:
    """The database key from ``key_file``, ``ALLIANCE_DB_KEY_FILE`` or ``ALLIANCE_DB_KEY``; None if none is set."""
    if key_file is not None:
        return read_key_file(key_file)
    if os.environ.get(KEY_FILE_ENV):
        return read_key_file(os.environ[KEY_FILE_ENV])
    if os.environ.get(KEY_ENV):
        return _check_key(os.environ[KEY_ENV], source=KEY_ENV)
    return None


def generate_key_file(path: Path | str) -> Path:
    """Write a new random 256-bit key (64 hex characters) to ``path`` with mode 0600.

    Raises
    ------
    StorageError
        ``path`` exists (a key is never overwritten: data encrypted with it would be lost).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError as e:
        raise StorageError(f"{path} exists: a key file is never overwritten") from e
    with os.fdopen(fd, "w", encoding="ascii") as f:
        f.write(secrets.token_hex(32) + "\n")
    return path


@lru_cache(maxsize=1)
def httpfs_extension_path() -> str:
    """Path of the signed httpfs extension shipped by the ``duckdb-extension-httpfs`` package."""
    try:
        import duckdb_extension_httpfs
    except ImportError as e:  # pragma: no cover - a dependency of the package
        raise StorageError(
            "encrypted databases need the duckdb-extension-httpfs package matching duckdb "
            f"{duckdb.__version__}: pip install duckdb-extension-httpfs=={duckdb.__version__}"
        ) from e
    root = Path(duckdb_extension_httpfs.__file__).parent
    found = sorted(root.rglob(f"v{duckdb.__version__}/httpfs.duckdb_extension"))
    if not found:
        raise StorageError(
            f"no httpfs extension for duckdb {duckdb.__version__} under {root}: install "
            f"duckdb-extension-httpfs=={duckdb.__version__}"
        )
    return str(found[0])


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def secure_connection() -> duckdb.DuckDBPyConnection:
    """An in-memory connection with the secure crypto loaded and no extension auto-loading."""
    con = connect_memory(allow_unsigned_extensions=False)
    con.execute(f"LOAD {_literal(httpfs_extension_path())}")
    return con


def attach(con: duckdb.DuckDBPyConnection, path: Path | str, *, key: str | None, alias: str,
           read_only: bool = False) -> None:
    """Attach ``path`` under ``alias``, encrypted with ``key`` when given (the key is validated first)."""
    options = []
    if key is not None:
        options.append(f"ENCRYPTION_KEY {_literal(_check_key(key, source='the caller'))}")
    if read_only:
        options.append("READ_ONLY")
    suffix = f" ({', '.join(options)})" if options else ""
    con.execute(f"ATTACH {_literal(str(path))} AS {alias}{suffix}")


def is_encrypted(path: Path | str) -> bool:
    """Whether the DuckDB file at ``path`` is encrypted (False for a missing or plain file)."""
    path = Path(path)
    if not path.is_file() or path.stat().st_size == 0:
        return False
    con = connect_memory()
    try:
        con.execute(f"ATTACH {_literal(str(path))} AS probe (READ_ONLY)")
    except duckdb.Error as e:
        return "encrypted" in str(e).lower()
    finally:
        con.close()
    return False


def open_encrypted(path: Path | str, *, key: str, read_only: bool) -> duckdb.DuckDBPyConnection:
    """Open an encrypted database file (created if missing and not ``read_only``) as the default catalog.

    Raises
    ------
    StorageError
        Wrong key, a plain (unencrypted) file given a key, or the file cannot be opened.
    """
    path = Path(path)
    if path.is_file() and path.stat().st_size > 0 and not is_encrypted(path):
        raise StorageError(
            f"database {path} is not encrypted but a key is set: encrypt it first with "
            f"`alliance db encrypt --db {path}` or unset {KEY_ENV}/{KEY_FILE_ENV}"
        )
    con = secure_connection()
    try:
        attach(con, path, key=key, alias=CATALOG, read_only=read_only)
        con.execute(f"USE {CATALOG}")
    except duckdb.Error as e:
        con.close()
        hint = " (wrong key?)" if "key" in str(e).lower() else ""
        raise StorageError(f"cannot open encrypted database {path}{hint}: {e}") from e
    return con


def rewrite(source: Path | str, target: Path | str, *, source_key: str | None, target_key: str | None) -> None:
    """Copy every table, view and row of ``source`` into a new file ``target``.

    Used to encrypt a plain database and to compact one after an erasure: the new file holds only
    live rows, so deleted content does not linger in free blocks of the old file.

    Raises
    ------
    StorageError
        ``target`` exists, or the copy failed (``target`` is removed).
    """
    target = Path(target)
    if target.exists():
        raise StorageError(f"{target} exists; not overwriting it")
    con = secure_connection()
    try:
        attach(con, source, key=source_key, alias="src", read_only=True)
        attach(con, target, key=target_key, alias="dst")
        con.execute("COPY FROM DATABASE src TO dst")
        con.execute("DETACH dst")
        con.execute("DETACH src")
    except duckdb.Error as e:
        con.close()
        for p in (target, Path(str(target) + ".wal")):
            p.unlink(missing_ok=True)
        raise StorageError(f"copying {source} to {target} failed: {e}") from e
    con.close()
