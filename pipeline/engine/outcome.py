"""The end state of one recording in a run."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pipeline.errors import AllianceError, ConsentError

State = Literal["processed", "skipped", "refused", "failed"]


@dataclass(frozen=True)
class SessionOutcome:
    """What happened to one recording: exactly one of processed, skipped, refused or failed."""

    state: State
    source_path: str
    session_id: str | None
    audio_sha256: str | None = None
    stage: str | None = None
    error_code: str | None = None
    message: str = ""
    summary_path: str | None = None
    report_path: str | None = None
    headline: tuple[str, ...] = ()
    duration_s: float | None = None
    wall_s: float | None = None


def outcome_for_error(error: Exception, *, source_path: str, session_id: str | None, audio_sha256: str | None,
                      stage: str, duration_s: float | None = None) -> SessionOutcome:
    """The end state of a recording whose processing raised ``error`` at ``stage``.

    A consent error means *refused*; any other pipeline error *failed* at its own stage (a
    :class:`~pipeline.errors.StageError` names one) or at ``stage``; anything else (a bug, a library
    failure) *failed* with code ``unexpected`` and the exception's type and message.
    """
    if isinstance(error, ConsentError):
        return SessionOutcome("refused", source_path, session_id, audio_sha256, stage, error.code, str(error))
    if isinstance(error, AllianceError):
        return SessionOutcome("failed", source_path, session_id, audio_sha256, getattr(error, "stage", stage),
                              error.code, str(error), duration_s=duration_s)
    return SessionOutcome("failed", source_path, session_id, audio_sha256, stage, "unexpected",
                          f"{type(error).__name__}: {error}", duration_s=duration_s)
