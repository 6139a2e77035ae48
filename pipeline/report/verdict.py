"""The plain recording-quality verdict that opens the clinician report: one sentence from the quality flags.

Three levels, derived only from the flags :mod:`pipeline.analysis.quality` stored for the session:

- ``good``: no flag (or only ``hallucinations_dropped``, which removed text that was not speech);
- ``poor``: too little speech or uncertain roles (every indicator or every per-person number is affected), or
  three or more flags at once;
- ``care``: any other flag; the sentence names what not to rely on.
"""

from __future__ import annotations

from dataclasses import dataclass

#: Flags after which no indicator (or no per-person indicator) can be read as measured.
POOR_FLAGS = frozenset({"low_speech", "uncertain_roles"})
#: Flags that do not lower the verdict: the text they concern was removed before any indicator was computed.
MINOR_FLAGS = frozenset({"hallucinations_dropped"})
#: From this many (non-minor) flags at once the recording is called poor.
POOR_FLAG_COUNT = 3


@dataclass(frozen=True)
class Verdict:
    """``level`` is good, care, poor or unknown; ``sentence`` is what the report prints first."""

    level: str
    sentence: str


def quality_verdict(quality: dict | None) -> Verdict:
    """The verdict for a session's quality row (``flags`` decoded, as :func:`load_quality` returns it)."""
    if quality is None:
        return Verdict("unknown", "Recording quality unknown: this session was processed before quality was "
                                  "measured, so read the numbers below with care.")
    flags = [f for f in quality.get("flags") or () if f.get("code") not in MINOR_FLAGS]
    codes = {f.get("code") for f in flags}
    if not flags:
        return Verdict("good", "Good recording: the numbers below can be read as measured.")
    distrust = "; ".join(dict.fromkeys(str(f.get("distrust") or "").strip() for f in flags if f.get("distrust")))
    problems = ", ".join(str(f.get("code", "")).replace("_", " ") for f in flags)
    if codes & POOR_FLAGS or len(flags) >= POOR_FLAG_COUNT:
        return Verdict("poor", f"Poor recording ({problems}): do not rely on {distrust}; listen to the recording "
                               "before reading anything below.")
    return Verdict("care", f"Usable with care ({problems}): the numbers below are measured, but do not rely on "
                           f"{distrust}.")
