"""Value types shared by every stage.

Time is always float seconds from the start of the recording, in fields named ``*_s``.
All types are frozen: stages return new objects and never change their inputs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np

Role = Literal["therapist", "client"]
ROLES: tuple[Role, Role] = ("therapist", "client")


@dataclass(frozen=True)
class Utterance:
    """One utterance of a conversation: who said it (a role), its text, its times in seconds (None if unknown).

    What the text-only path measures (``analysis.text_only``) and what the MI coders code (``codes``).
    """

    role: Role
    text: str
    start_s: float | None = None
    end_s: float | None = None
SAMPLE_RATE_HZ = 16_000


@dataclass(frozen=True, order=True)
class Span:
    """A closed-open time interval ``[start_s, end_s)`` in seconds."""

    start_s: float
    end_s: float

    def __post_init__(self) -> None:
        if not (self.end_s >= self.start_s):
            raise ValueError(f"span end_s={self.end_s!r} is before start_s={self.start_s!r}")

    @property
    def duration_s(self) -> float:
        return self.end_s - self.start_s

    def overlap_s(self, other: Span) -> float:
        """Length in seconds of the intersection with ``other`` (0 when disjoint)."""
        return max(0.0, min(self.end_s, other.end_s) - max(self.start_s, other.start_s))


@dataclass(frozen=True)
class Audio:
    """A decoded recording: mono float32 samples at 16 kHz.

    Attributes
    ----------
    samples : np.ndarray, shape (n_samples,), float32 in [-1, 1]
    sample_rate_hz : int
        Always 16 000 after loading.
    sha256 : str
        Hex digest of the source file's bytes (the session key).
    source_sample_rate_hz, source_channels : int
        What the file held before resampling and down-mixing.
    """

    samples: np.ndarray = field(repr=False, compare=False)
    sample_rate_hz: int
    sha256: str
    source_path: str
    source_format: str
    source_sample_rate_hz: int
    source_channels: int

    @property
    def duration_s(self) -> float:
        return len(self.samples) / self.sample_rate_hz


@dataclass(frozen=True, order=True)
class Word:
    """One recognised word with its time span (from the ASR's word timestamps)."""

    start_s: float
    end_s: float
    text: str
    probability: float


@dataclass(frozen=True)
class Transcript:
    """ASR output: words in time order plus what produced them."""

    words: tuple[Word, ...]
    language: str
    language_probability: float
    backend: str
    model_name: str
    #: Decoded segments, and how many were dropped as hallucinations (repetitive text; see pipeline.asr).
    segments: int = 0
    segments_dropped: int = 0
    #: Words dropped because they lay in digital silence (:func:`pipeline.asr.base.words_heard`).
    words_dropped: int = 0


@dataclass(frozen=True, order=True)
class SpeakerTurn:
    """A diarization segment: ``speaker`` (an anonymous label such as ``SPEAKER_00``) talks in a span."""

    start_s: float
    end_s: float
    speaker: str

    @property
    def span(self) -> Span:
        return Span(self.start_s, self.end_s)


@dataclass(frozen=True)
class Diarization:
    """Who spoke when, as sorted speaker turns (overlapping turns of different speakers allowed)."""

    turns: tuple[SpeakerTurn, ...]
    speakers: tuple[str, ...]
    #: Cosine distance between the two closest speakers' embedding centroids (CAM++), when the diarizer
    #: reports centroids and found two or more speakers; None otherwise (RTTM files, text-only sessions).
    #: Near 0 when one voice was split into two clusters (the one-voice gate, :mod:`pipeline.analysis.quality`).
    speaker_distance: float | None = None


@dataclass(frozen=True, order=True)
class AttributedWord:
    """A word assigned to a diarization speaker (``speaker`` is None when no turn overlaps it)."""

    start_s: float
    end_s: float
    text: str
    probability: float
    speaker: str | None


@dataclass(frozen=True)
class Turn:
    """A run of consecutive words by one speaker."""

    index: int
    speaker: str
    start_s: float
    end_s: float
    text: str
    word_count: int


@dataclass(frozen=True)
class RoleAssignment:
    """Which diarization label is the therapist and which the client.

    ``confidence`` is in [0, 1]; ``method`` says how it was decided (``override`` or ``rule``).
    """

    therapist: str | None
    client: str | None
    confidence: float
    method: str
    evidence: str

    def role_of(self, speaker: str | None) -> Role | None:
        if speaker is None:
            return None
        if speaker == self.therapist:
            return "therapist"
        if speaker == self.client:
            return "client"
        return None


@dataclass(frozen=True)
class Marker:
    """An event or measured span found in a session (e.g. a long silence, a "we" token)."""

    kind: str
    speaker_role: Role | None
    start_s: float
    end_s: float
    value: float
    detail: str


@dataclass(frozen=True)
class Indicator:
    """One per-session number; ``speaker_role`` None means session-level."""

    name: str
    speaker_role: Role | None
    value: float | None
    unit: str
