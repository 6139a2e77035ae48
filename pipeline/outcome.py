"""The end state of one recording in a run."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

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
