"""Opaque handles: what a Prefect flow run is given instead of a session's real inputs.

Prefect keeps every flow run's parameters in its own database (and shows them in its UI). A session's
real inputs (the recording's path, the session, client and therapist ids, the client's known names,
consent fields, options, the database path and run id) must not land there, so the session flow takes
one parameter: a random handle, under which the caller registered a :class:`SessionRequest` in this
process just before calling the flow. The handle is also recorded in ``run_items.flow_handle``, so a
withdrawal finds exactly this database's flow runs of the erased sessions.

The registry lives in memory: the session flow runs in the process that registered its handle
(``alliance process``, the thread batch's subflows). A handle is released when its flow returns.
"""

from __future__ import annotations

import secrets
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from pipeline.errors import ConfigError

if TYPE_CHECKING:
    from pipeline.analysis.session import SessionMeta

T = TypeVar("T")


class InProcessRegistry(Generic[T]):
    """Objects kept in this process's memory under random handles (``PREFIX-`` and 24 hex digits).

    ``missing`` is the :class:`ConfigError` message for a handle nothing is registered under (``{handle}``
    is filled in).
    """

    def __init__(self, prefix: str, missing: str) -> None:
        self._prefix, self._missing = prefix, missing
        self._lock = threading.Lock()
        self._objects: dict[str, T] = {}

    def register(self, obj: T) -> str:
        handle = f"{self._prefix}-{secrets.token_hex(12)}"
        with self._lock:
            self._objects[handle] = obj
        return handle

    def get(self, handle: str) -> T:
        """The object under ``handle`` (kept). Raises ConfigError when there is none."""
        with self._lock:
            obj = self._objects.get(handle)
        if obj is None:
            raise ConfigError(self._missing.format(handle=repr(handle)))
        return obj

    def pop(self, handle: str) -> T:
        """The object under ``handle``, forgotten here. Raises ConfigError when there is none."""
        with self._lock:
            obj = self._objects.pop(handle, None)
        if obj is None:
            raise ConfigError(self._missing.format(handle=repr(handle)))
        return obj

    def release(self, handle: str) -> None:
        """Forget ``handle`` (nothing happens when it is unknown)."""
        with self._lock:
            self._objects.pop(handle, None)


@dataclass(frozen=True)
class SessionRequest:
    """Everything the session flow needs about one recording (kept in memory, never sent to Prefect)."""

    audio_path: Path
    meta: SessionMeta
    db_path: Path
    reports_dir: Path
    options: Any  # pipeline.engine.runtime.PipelineOptions (not imported here: it pulls in the models)
    consent: dict | None = None
    force: bool = False
    run_id: str | None = None
    lock_wait_s: float = 0.0
    #: The command's own precheck (``sequence.Prechecked`` that let the recording through), handed on so the
    #: flow neither checks consent nor hashes the file again; None: the flow runs the precheck itself.
    prechecked: Any = None


_SESSIONS: InProcessRegistry[SessionRequest] = InProcessRegistry(
    "h", "no session registered under handle {handle} in this process: the session flow runs only in-process "
    "(alliance process, alliance batch); deployments use the batch flow with a manifest")


def register(request: SessionRequest) -> str:
    """Keep ``request`` under a new random handle (``h-`` and 24 hex digits) and return the handle."""
    return _SESSIONS.register(request)


def lookup(handle: str) -> SessionRequest:
    """The request registered under ``handle``.

    Raises
    ------
    ConfigError
        No request is registered under it in this process (the session flow runs only in the process
        that registered its inputs: ``alliance process`` or a thread batch, not a deployment).
    """
    return _SESSIONS.get(handle)


def release(handle: str) -> None:
    """Forget the request (its flow has ended)."""
    _SESSIONS.release(handle)
