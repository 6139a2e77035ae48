"""Prefect's API for one ``alliance`` command: a local server started early, in the background, tied to us.

Prefect 3 runs no flow without an API: with ``PREFECT_API_URL`` unset it starts a temporary server
(a uvicorn subprocess, 5-12 s on 2 cores) when the first flow is called, after every import and check,
and a killed ``alliance`` (SIGKILL) leaves that subprocess running. Instead, once a recording has
passed its consent, skip and database checks, :func:`start_background_server` starts the same server
(the same uvicorn command, the same ephemeral settings, the database's Prefect home) *before* the
models are imported and loaded, so its start-up overlaps theirs, and asks the kernel to stop it when
this process dies, however it dies (Linux ``PR_SET_PDEATHSIG``). :meth:`BackgroundServer.wait_ready`
is called just before the flow. The server answers only requests carrying its own random secret
(Prefect's basic auth, :mod:`pipeline.prefect_auth`): other local users cannot list, read or create runs.

Nothing here imports Prefect: ``PREFECT_API_URL`` must be set before Prefect reads its settings. With
``PREFECT_API_URL`` already set (a long-lived ``alliance server`` / ``prefect server start``), no server
is started. ``ALLIANCE_PREFECT_SERVER=temporary`` keeps Prefect's own temporary server (for comparison).
"""

from __future__ import annotations

import atexit
import importlib.util
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from pipeline.errors import ConfigError
from pipeline.prefect_auth import CLIENT_ENV, SERVER_ENV, new_auth_string

MODE_ENV = "ALLIANCE_PREFECT_SERVER"


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG: SIGTERM when the parent dies
    except (OSError, AttributeError):
        pass


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _prefect_app_dir() -> str:
    spec = importlib.util.find_spec("prefect")
    if spec is None or spec.origin is None:  # pragma: no cover - a pinned requirement
        raise ConfigError("Prefect is not installed (pip install prefect==3.9.1)")
    return str(Path(spec.origin).parent.parent)


class BackgroundServer:
    """A Prefect API server on a free loopback port, run as a child that dies with this process."""

    def __init__(self, home: str | None) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}/api"
        self.started = time.perf_counter()
        self.ready_s: float | None = None
        log = None
        if home:
            fd = os.open(os.path.join(home, "server.log"), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            log = os.fdopen(fd, "ab")
        #: this server's secret (Prefect basic auth): held in this process's environment only
        self.auth_string = new_auth_string()
        env = {**os.environ, "PREFECT_UI_ENABLED": "0", "PREFECT__SERVER_EPHEMERAL": "1",
               "PREFECT__SERVER_FINAL": "1", SERVER_ENV: self.auth_string}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "--app-dir", _prefect_app_dir(), "--factory",
             "prefect.server.api.server:create_app", "--host", "127.0.0.1", "--port", str(self.port),
             "--log-level", "error", "--lifespan", "on"],
            env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=log or subprocess.DEVNULL,
            preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None)  # noqa: PLW1509
        if log is not None:
            log.close()
        atexit.register(self.stop)
        _STARTED.append(self)

    def wait_ready(self, timeout_s: float = 180.0) -> float:
        """Block until the server answers its health check; return the seconds since it was started.

        Raises
        ------
        ConfigError
            The server exited or did not answer within ``timeout_s``.
        """
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise ConfigError(f"Prefect's local server exited with code {self.process.returncode} while "
                                  "starting (see .alliance-prefect/server.log next to the database)")
            try:
                with urllib.request.urlopen(self.url + "/health", timeout=2) as r:
                    if r.status == 200:
                        self.ready_s = round(time.perf_counter() - self.started, 2)
                        return self.ready_s
            except OSError:
                pass
            time.sleep(0.1)
        raise ConfigError(f"Prefect's local server did not start within {timeout_s:.0f} s")

    def stop_soon(self) -> None:
        """Ask the server to stop and return at once (it shuts down by itself; see :func:`stop_started`)."""
        if self.process.poll() is None:
            self.process.terminate()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


#: Servers this process started (so a prompt exit can ask them to stop).
_STARTED: list[BackgroundServer] = []


def stop_started() -> None:
    """Ask every server this process started to stop, without waiting for it."""
    for server in _STARTED:
        server.stop_soon()


def start_background_server(home: str | None = None) -> BackgroundServer | None:
    """Start Prefect's API server now and point ``PREFECT_API_URL`` at it; None where not needed or possible.

    Not started when ``PREFECT_API_URL`` is set (a long-lived server), when ``ALLIANCE_PREFECT_SERVER`` is
    ``temporary`` (Prefect then starts its own when the first flow runs) or when Prefect is already
    imported in this process (its settings are read: a test harness, a notebook).
    """
    if os.environ.get("PREFECT_API_URL") or os.environ.get(MODE_ENV, "").lower() == "temporary":
        return None
    if "prefect" in sys.modules:
        return None
    server = BackgroundServer(home)
    os.environ["PREFECT_API_URL"] = server.url
    os.environ[CLIENT_ENV] = server.auth_string  # other local users get 401 from it
    return server
