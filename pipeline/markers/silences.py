"""Silences and switching gaps, measured from the diarization (not from Whisper word gaps).

Definitions
-----------
- *Speech* is the union of all diarization turns. A *silence* is a gap in that union of at least
  ``min_silence_s`` seconds, strictly between the first and last speech of the session (lead-in and
  trailing silence are not conversational and are left out).
- A silence is a *pause* when the same speaker talks on both sides, a *switching gap* when the speaker
  changes. A pause belongs to the speaker holding the floor; a switching gap to the speaker who
  responds (it is their response latency).
- A *switching gap* (floor-transfer offset) is measured at every change of speaker, even without silence:
  ``next.start_s - previous.end_s``; negative values are overlaps. A turn wholly inside another
  speaker's turn (a backchannel) is not a floor transfer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pipeline.errors import ConfigError
from pipeline.types import Diarization


@dataclass(frozen=True)
class SilenceOptions:
    """Thresholds in seconds (the foundation's indicator uses silences of 2 s or more)."""

    min_silence_s: float = 2.0

    def __post_init__(self) -> None:
        if not self.min_silence_s > 0:
            raise ConfigError(f"min_silence_s must be > 0, got {self.min_silence_s!r}")


@dataclass(frozen=True, order=True)
class Silence:
    start_s: float
    end_s: float
    kind: Literal["pause", "switch"]
    before_speaker: str
    after_speaker: str

    @property
    def duration_s(self) -> float:
        return self.end_s - self.start_s

    @property
    def owner(self) -> str:
        """The speaker the silence is attributed to (holder for a pause, responder for a switch)."""
        return self.after_speaker


@dataclass(frozen=True, order=True)
class FloorTransfer:
    """A change of speaker: ``offset_s`` from the end of one speaker's turn to the start of the next."""

    at_s: float
    offset_s: float
    from_speaker: str
    to_speaker: str


def find_silences(diarization: Diarization, *, options: SilenceOptions = SilenceOptions()) -> tuple[Silence, ...]:
    """Gaps of at least ``options.min_silence_s`` in the union of speech, classified pause or switch."""
    turns = tuple(sorted(diarization.turns))
    out: list[Silence] = []
    if not turns:
        return ()
    reach = turns[0].end_s
    holder = turns[0]
    for turn in turns[1:]:
        gap = turn.start_s - reach
        if gap >= options.min_silence_s:
            kind: Literal["pause", "switch"] = "pause" if holder.speaker == turn.speaker else "switch"
            out.append(Silence(reach, turn.start_s, kind, holder.speaker, turn.speaker))
        if turn.end_s >= reach:
            reach, holder = turn.end_s, turn
    return tuple(out)


def floor_transfers(diarization: Diarization) -> tuple[FloorTransfer, ...]:
    """Every change of speaker with its offset (negative = overlap)."""
    turns = tuple(sorted(diarization.turns))
    out: list[FloorTransfer] = []
    if not turns:
        return ()
    current = turns[0]
    for turn in turns[1:]:
        if turn.end_s <= current.end_s and turn.speaker != current.speaker:
            continue  # wholly inside the current speaker's turn: a backchannel, not a transfer
        if turn.speaker != current.speaker:
            out.append(FloorTransfer(turn.start_s, turn.start_s - current.end_s, current.speaker, turn.speaker))
            current = turn
        elif turn.end_s > current.end_s:
            current = turn
    return tuple(out)


def speaking_time_s(diarization: Diarization) -> dict[str, float]:
    """Seconds each speaker talks (union of their own turns, so self-overlap is not double-counted)."""
    out: dict[str, float] = {}
    for speaker in diarization.speakers:
        spans = sorted((t.start_s, t.end_s) for t in diarization.turns if t.speaker == speaker)
        total, cur_s, cur_e = 0.0, None, None
        for s, e in spans:
            if cur_e is None or s > cur_e:
                if cur_e is not None:
                    total += cur_e - cur_s
                cur_s, cur_e = s, e
            else:
                cur_e = max(cur_e, e)
        if cur_e is not None:
            total += cur_e - cur_s
        out[speaker] = total
    return out
