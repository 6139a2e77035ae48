"""Subtitle cues that fit a screen: a turn's text wrapped to at most N lines of at most W characters.

Subtitle convention (BBC, Netflix, EBU guidelines; WhisperX's ``--max_line_width``/``--max_line_count``) is
about 42 characters a line and 2 lines a cue. A turn longer than that becomes several cues, one after the
other, each timed by its own words: with word times when the turn's words are given (clinical view), else
by its share of the turn's characters (research view, which has no word level). The first cue of a turn
starts at the turn's start and the last ends at its end. A single word longer than a line stays whole on
its own line (subtitle readers do not hyphenate). Pure functions.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from pipeline.errors import ConfigError

DEFAULT_LINE_WIDTH = 42
DEFAULT_LINE_COUNT = 2


@dataclass(frozen=True)
class CueOptions:
    """``max_line_width`` characters per line (the speaker prefix included), ``max_line_count`` lines per cue."""

    max_line_width: int = DEFAULT_LINE_WIDTH
    max_line_count: int = DEFAULT_LINE_COUNT

    def __post_init__(self) -> None:
        if self.max_line_width < 10 or self.max_line_count < 1:
            raise ConfigError(f"subtitle lines need a width of at least 10 characters and at least 1 line a cue "
                              f"(got {self.max_line_width} x {self.max_line_count})")


@dataclass(frozen=True)
class Cue:
    start_s: float
    end_s: float
    lines: tuple[str, ...]


def _timed_tokens(start_s: float, end_s: float, text: str,
                  words: Sequence[tuple[float, float, str]]) -> list[tuple[float, float, str]]:
    """The turn's tokens with times: the words' own when they spell the text, else by character share."""
    tokens = text.split()
    if words and [w for _, _, w in words] == tokens:
        return [(float(s), float(e), w) for s, e, w in words]
    total = max(1, len(" ".join(tokens)))
    span = max(0.0, end_s - start_s)
    out, at = [], 0
    for tok in tokens:
        out.append((start_s + span * at / total, start_s + span * (at + len(tok)) / total, tok))
        at += len(tok) + 1
    return out


def turn_cues(start_s: float, end_s: float, text: str, *, prefix: str = "",
              words: Sequence[tuple[float, float, str]] = (), options: CueOptions = CueOptions()) -> list[Cue]:
    """The cues of one turn; ``prefix`` (e.g. ``"Client: "``) opens each cue and counts toward its first line."""
    tokens = _timed_tokens(start_s, end_s, text, words)
    if not tokens:
        return [Cue(start_s, max(start_s, end_s), (prefix.rstrip(),) if prefix.strip() else ("",))]
    groups: list[list[list[tuple[float, float, str]]]] = []  # cues -> lines -> tokens
    for tok in tokens:
        cue = groups[-1] if groups else None
        if cue is not None:
            line = cue[-1]
            used = len(prefix) * (len(cue) == 1) + len(" ".join(t[2] for t in line))
            if used + 1 + len(tok[2]) <= options.max_line_width:
                line.append(tok)
                continue
            if len(cue) < options.max_line_count:
                cue.append([tok])
                continue
        groups.append([[tok]])
    cues = []
    for i, cue in enumerate(groups):
        first, last = cue[0][0], cue[-1][-1]
        begin = start_s if i == 0 else first[0]
        finish = max(end_s, last[1]) if i == len(groups) - 1 else max(last[1], begin)
        lines = [" ".join(t[2] for t in line) for line in cue]
        lines[0] = prefix + lines[0]
        cues.append(Cue(begin, max(finish, begin), tuple(lines)))
    # keep the cues of one turn in order and apart (word times may overlap by a few ms)
    fixed = [cues[0]]
    for cue in cues[1:]:
        prev = fixed[-1]
        if cue.start_s < prev.end_s:
            fixed[-1] = Cue(prev.start_s, max(prev.start_s, cue.start_s), prev.lines)
        fixed.append(cue)
    return fixed
