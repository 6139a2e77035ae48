"""MITI 4.2.1 / MISC session summaries from utterance codes, with the published reference thresholds.

Pure functions: codes in, numbers out. A summary whose denominator is zero is ``None`` (not measured), never 0.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class Threshold:
    """A published reference: ``fair`` and ``good`` lower bounds, and where they come from."""

    fair: float
    good: float
    source: str


THRESHOLDS: dict[str, Threshold] = {
    "reflection_question_ratio": Threshold(1.0, 2.0, "MITI 4.2.1 (Moyers et al. 2016)"),
    "complex_reflection_pct": Threshold(40.0, 50.0, "MITI 4.2.1 (Moyers et al. 2016)"),
    "open_question_pct": Threshold(50.0, 70.0, "MITI 3.1.1 (Moyers et al. 2010); MITI 4 dropped this threshold"),
}

SUMMARY_NAMES = (
    "reflection_question_ratio",
    "complex_reflection_pct",
    "open_question_pct",
    "change_talk_share",
    "question_per_10min",
    "reflection_per_10min",
    "therapist_input_per_10min",
    "change_talk_per_10min",
    "sustain_talk_per_10min",
)


@dataclass(frozen=True)
class CodeCount:
    """One coded utterance as the summaries need it: main ``code`` and ``subtype`` ('' where none)."""

    code: str
    subtype: str = ""


def _ratio(num: float, den: float, scale: float = 1.0) -> float | None:
    return None if den <= 0 else scale * num / den


def miti_summary(codes: Iterable[CodeCount], duration_s: float | None) -> dict[str, float | None]:
    """The session's summaries: R:Q, % complex reflections, % open questions, CT/(CT+ST), codes per 10 min."""
    codes = list(codes)
    main = Counter(c.code for c in codes)
    sub = Counter((c.code, c.subtype) for c in codes)
    minutes10 = duration_s / 600.0 if duration_s and duration_s > 0 else None
    q, r = main["question"], main["reflection"]
    out: dict[str, float | None] = {
        "reflection_question_ratio": _ratio(r, q),
        "complex_reflection_pct": _ratio(sub[("reflection", "complex")],
                                         sub[("reflection", "complex")] + sub[("reflection", "simple")], 100.0),
        "open_question_pct": _ratio(sub[("question", "open")],
                                    sub[("question", "open")] + sub[("question", "closed")], 100.0),
        "change_talk_share": _ratio(main["change"], main["change"] + main["sustain"]),
    }
    for name, code in (("question", "question"), ("reflection", "reflection"),
                       ("therapist_input", "therapist_input"), ("change_talk", "change"),
                       ("sustain_talk", "sustain")):
        out[f"{name}_per_10min"] = None if minutes10 is None else main[code] / minutes10
    return out


def against_threshold(name: str, value: float | None) -> str:
    """``below fair`` / ``fair`` / ``good`` against the published threshold, '' where none exists."""
    t = THRESHOLDS.get(name)
    if t is None or value is None:
        return ""
    return "good" if value >= t.good else "fair" if value >= t.fair else "below fair"
