"""The report's transcript view: de-identified turns with time-coded anchors, and the anchor of a time.

Anchors are ``turn-<turn_index>``; events link to the anchor of the turn they fall in (or the nearest one).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from pipeline.report.data import TranscriptTurn


def anchor(turn: TranscriptTurn) -> str:
    return f"turn-{turn.turn_index}"


def anchor_at(turns: Sequence[TranscriptTurn], t_s: float) -> str | None:
    """The anchor of the turn holding ``t_s`` (else the nearest turn), None without turns."""
    if not turns:
        return None
    best = min(turns, key=lambda t: 0.0 if t.start_s <= t_s <= t.end_s else min(abs(t.start_s - t_s),
                                                                                   abs(t.end_s - t_s)))
    return anchor(best)


def transcript_rows(turns: Sequence[TranscriptTurn], clock: Callable[[float], str]) -> list[dict]:
    """Plain values for the template: anchor, time code, start in seconds, role and de-identified text."""
    return [{"id": anchor(t), "at": clock(t.start_s), "t": f"{t.start_s:.2f}", "role": t.speaker_role or "unknown",
             "text": t.text} for t in turns]
