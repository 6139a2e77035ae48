"""Pacing: syllables and articulation rate, turns, overlaps and interruptions.

Syllables
---------
Counted per word with a vowel-group heuristic (no model, no dictionary): the number of maximal runs
of vowels ``a e i o u y`` in the lower-cased letters of the word, minus one for a silent final "e"
("make", but not "the", "be" or "-le" as in "little"), minus one for a final "-ed" not after t/d
("talked" 1, "wanted" 2), minus one for a final "-es" not after s, x, z, c, g, ch, sh ("makes" 1,
"boxes" 2); at least 1 for a word with a letter, 0 for a word without (digits, dashes). On a test list
of common conversational words it matches the dictionary count for most words (see the tests).

Overlaps and interruptions (from diarization turns)
---------------------------------------------------
An *overlap* is counted when a turn of speaker B starts strictly inside a turn of speaker A and the
two overlap by at least ``min_overlap_s`` (default 0.1 s). It belongs to B (the one who comes in).
An overlap is an *interruption* when B keeps talking after A's turn ends (B takes the floor) and B
started at least ``interruption_min_overlap_s`` (default 0.5 s) before A's end: shorter overlaps at
the end of a turn are terminal overlaps (Jefferson 1984), anticipation of a turn's end, not
interruptions. Overlaps wholly inside A's turn (B stops first) are not interruptions.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from pipeline.errors import ConfigError
from pipeline.types import Diarization

_VOWEL_GROUPS = re.compile(r"[aeiouy]+")


def count_syllables(word: str) -> int:
    """Syllables of one word by the vowel-group heuristic (module docstring)."""
    w = re.sub(r"[^a-z]", "", word.lower())
    if not w:
        return 0
    n = len(_VOWEL_GROUPS.findall(w))
    if len(w) > 2 and w.endswith("e") and not w.endswith(("le", "ee", "ye")) and w[-2] not in "aeiouy":
        n -= 1
    elif len(w) > 3 and w.endswith("ed") and w[-3] not in "td" and w[-3] not in "aeiouy":
        n -= 1
    elif len(w) > 3 and w.endswith("es") and not re.search(r"(s|x|z|c|g|ch|sh)es$", w) and w[-3] not in "aeiouy":
        n -= 1
    return max(1, n)


@dataclass(frozen=True)
class OverlapOptions:
    """Thresholds in seconds."""

    min_overlap_s: float = 0.1
    interruption_min_overlap_s: float = 0.5

    def __post_init__(self) -> None:
        if not self.min_overlap_s >= 0:
            raise ConfigError(f"min_overlap_s must be >= 0, got {self.min_overlap_s!r}")
        if not self.interruption_min_overlap_s >= self.min_overlap_s:
            raise ConfigError(f"interruption_min_overlap_s={self.interruption_min_overlap_s!r} must be >= "
                              f"min_overlap_s={self.min_overlap_s!r}")


@dataclass(frozen=True, order=True)
class Overlap:
    """Speaker ``by`` starts at ``start_s`` while ``over`` is talking; they overlap until ``end_s``."""

    start_s: float
    end_s: float
    by: str
    over: str
    interruption: bool


def find_overlaps(diarization: Diarization, *, options: OverlapOptions = OverlapOptions()) -> tuple[Overlap, ...]:
    """Overlaps and interruptions between speakers' diarization turns, in time order."""
    turns = sorted(diarization.turns)
    out: list[Overlap] = []
    for b in turns:
        holders = [a for a in turns if a.speaker != b.speaker and a.start_s < b.start_s < a.end_s]
        if not holders:
            continue
        a = max(holders, key=lambda x: x.end_s)
        end = min(a.end_s, b.end_s)
        if end - b.start_s < options.min_overlap_s:
            continue
        takes_floor = b.end_s > a.end_s
        interruption = takes_floor and (a.end_s - b.start_s) >= options.interruption_min_overlap_s
        out.append(Overlap(b.start_s, end, b.speaker, a.speaker, interruption))
    return tuple(out)
