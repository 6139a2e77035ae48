"""Code a session's turns and turn the codes into MITI summary indicators (what the pipeline stores)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from pipeline.codes.coder import ProcessCoder, UtteranceCode
from pipeline.codes.context import CodingUtterance
from pipeline.codes.features import Encoder
from pipeline.codes.summary import CodeCount, miti_summary
from pipeline.types import Indicator, RoleAssignment, Turn

#: Stored indicator name, speaker role and unit of each MITI/MISC summary (pipeline.codes.summary).
SUMMARY_INDICATORS: dict[str, tuple[str, str, str]] = {
    "reflection_question_ratio": ("mi_reflection_question_ratio", "therapist", "ratio"),
    "complex_reflection_pct": ("mi_complex_reflection_pct", "therapist", "%"),
    "open_question_pct": ("mi_open_question_pct", "therapist", "%"),
    "change_talk_share": ("mi_change_talk_share", "client", "share"),
    "question_per_10min": ("mi_questions_per_10min", "therapist", "per 10 min"),
    "reflection_per_10min": ("mi_reflections_per_10min", "therapist", "per 10 min"),
    "therapist_input_per_10min": ("mi_input_per_10min", "therapist", "per 10 min"),
    "change_talk_per_10min": ("mi_change_talk_per_10min", "client", "per 10 min"),
    "sustain_talk_per_10min": ("mi_sustain_talk_per_10min", "client", "per 10 min"),
}


@dataclass(frozen=True)
class CodedTurn:
    """A turn's code: which turn, who, when, and the coder's verdict."""

    turn_index: int
    role: str
    start_s: float | None
    end_s: float | None
    code: UtteranceCode


@dataclass(frozen=True)
class CodedSession:
    """Every coded turn of a session and the coder's version."""

    turns: tuple[CodedTurn, ...]
    coder_version: str


def code_turns(turns: Sequence[Turn], roles: RoleAssignment, coder: ProcessCoder, encoder: Encoder) -> CodedSession:
    """Code each therapist and client turn with its preceding turns as context (turns of no role are skipped)."""
    kept = [(t, roles.role_of(t.speaker)) for t in turns]
    kept = [(t, r) for t, r in kept if r in ("therapist", "client") and t.text.strip()]
    utterances = [CodingUtterance(r, t.text, t.start_s, t.end_s) for t, r in kept]
    codes = coder.code(utterances, encoder)
    return CodedSession(
        tuple(CodedTurn(kept[c.index][0].index, c.role, kept[c.index][0].start_s, kept[c.index][0].end_s, c)
              for c in codes),
        coder.version,
    )


def summary_indicators(coded: CodedSession, duration_s: float | None) -> list[Indicator]:
    """The MITI/MISC summaries of a coded session as indicators (None where a denominator is zero)."""
    values = miti_summary([CodeCount(t.code.code, t.code.subtype) for t in coded.turns], duration_s)
    return [Indicator(name, role, values[key], unit)  # type: ignore[arg-type]
            for key, (name, role, unit) in SUMMARY_INDICATORS.items()]


@dataclass(frozen=True)
class CodedTranscript:
    """A coded transcript (no audio): its utterances' codes and MITI summaries."""

    name: str
    utterances: tuple[CodingUtterance, ...]
    codes: tuple[UtteranceCode, ...]
    summary: dict[str, float | None]
    duration_s: float | None
    coder_version: str


def code_transcript(name: str, utterances: Sequence[CodingUtterance], coder: ProcessCoder,
                    encoder: Encoder) -> CodedTranscript:
    """Code a transcript's utterances; the per-10-minute summaries need times (None without them)."""
    codes = coder.code(utterances, encoder)
    times = [t for u in utterances for t in (u.start_s, u.end_s) if t is not None]
    duration = (max(times) - min(0.0, min(times))) if len(times) >= 2 else None
    summary = miti_summary([CodeCount(c.code, c.subtype) for c in codes], duration)
    return CodedTranscript(name, tuple(utterances), tuple(codes), summary, duration, coder.version)
