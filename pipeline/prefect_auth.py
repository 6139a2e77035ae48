"""Basic authentication for the local Prefect API: only the owner of the data folder may talk to it.

A Prefect server on 127.0.0.1 without authentication lets every local user list runs, read logs and create
flow runs, whatever the mode of the owner-only Prefect folder. Prefect's own basic auth closes that: the
server is started with ``PREFECT_SERVER_API_AUTH_STRING`` and every client sends ``PREFECT_API_AUTH_STRING``
(both ``USER:SECRET``; Prefect answers 401 otherwise, except its health check).

- ``alliance server`` keeps the secret in ``api-auth`` inside the database's Prefect folder
  (``.alliance-prefect``, 0700; the file 0600, created on first start: :func:`ensure_auth_string`); every
  ``alliance`` command for that database that is pointed at a loopback server by ``PREFECT_API_URL`` reads
  it (:func:`configure_client`), so nothing needs to be typed or exported but the URL.
- the background server one command starts for itself gets a fresh random secret held only in that
  process's environment (``flows/server.py``).

Nothing here imports Prefect: the variables must be set before Prefect reads its settings.
"""

from __future__ import annotations

import os
import secrets
import stat
from pathlib import Path
from urllib.parse import urlparse

from pipeline.errors import ConfigError
from pipeline.private_files import write_private

AUTH_FILE_NAME = "api-auth"
USER = "alliance"
SERVER_ENV = "PREFECT_SERVER_API_AUTH_STRING"
CLIENT_ENV = "PREFECT_API_AUTH_STRING"


def new_auth_string() -> str:
    """``alliance:`` and 256 random bits (URL-safe base64)."""
    return f"{USER}:{secrets.token_urlsafe(32)}"


def auth_file(home: str | os.PathLike[str]) -> Path:
    return Path(home) / AUTH_FILE_NAME


def read_auth_string(home: str | os.PathLike[str]) -> str | None:
    """The secret kept in ``home``, or None when there is none.

    Raises
    ------
    ConfigError
        The file is readable or writable by others (a secret others can read authenticates anybody).
    """
    path = auth_file(home)
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        return None
    if stat.S_IMODE(mode) & 0o077:
        raise ConfigError(f"{path} is readable by other users (mode {stat.S_IMODE(mode):o}): it authenticates to "
                          "the Prefect server; delete it (a new one is made on the next `alliance server`)")
    return path.read_text(encoding="utf-8").strip() or None


def ensure_auth_string(home: str | os.PathLike[str]) -> str:
    """The secret kept in ``home``, created (0600) if there is none yet."""
    found = read_auth_string(home)
    if found is not None:
        return found
    value = new_auth_string()
    write_private(auth_file(home), (value + "\n").encode("utf-8"))
    return value


def is_loopback(url: str) -> bool:
    host = urlparse(url).hostname or ""
    return host in ("127.0.0.1", "localhost", "::1")


def configure_client(home: str | os.PathLike[str]) -> bool:
    """Set ``PREFECT_API_AUTH_STRING`` from ``home``'s secret for a loopback ``PREFECT_API_URL``; True if set.

    Left alone when the variable is set already, when no URL or a remote one is set (a remote server has its
    own credentials), or when ``home`` holds no secret or one others can read (never raises: it runs before
    the command's error handling).
    """
    url = os.environ.get("PREFECT_API_URL", "")
    if os.environ.get(CLIENT_ENV) or not url or not is_loopback(url):
        return False
    try:
        found = read_auth_string(home)
    except ConfigError:  # readable by others: not used (`alliance server` refuses to start with it)
        return False
    if found is None:
        return False
    os.environ[CLIENT_ENV] = found
    return True
