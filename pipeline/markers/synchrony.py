"""Prosodic synchrony and convergence between adjacent turns (entrainment).

Pure functions over per-turn values; the values come from the audio in :func:`pipeline.markers.prosody.turn_prosody`
and the session's indicators from :func:`pipeline.markers.prosody.measure_prosody` (audio path only).

Definitions
-----------
- *Turn values* (:class:`TurnValues`), per conversational turn (backchannels removed, a speaker's
  neighbouring utterances merged) of the therapist or the client:

  - ``pitch``: mean over the turn's voiced frames of ``12 log2(f0 / m)``, semitones relative to the
    speaker's own median f0 ``m`` over the session, so the two voices' registers (a low and a high
    voice) do not enter; None with less than ``min_turn_voiced_s`` of voiced frames;
  - ``energy``: mean level of the turn's active frames minus the speaker's median active-frame level
    over the session (dB; gain and microphone distance cancel); None with less than ``min_turn_active_s``
    of active frames;
  - ``rate``: speech rate, ``60 x words / (last word end - first word start)`` in words/min; None with
    fewer than ``min_turn_words`` words or a zero span.

  Frames are the speaker's own-speech frames (overlap left out, :mod:`pipeline.markers.prosody`) lying
  wholly inside the turn's span.
- *Pairs*: every adjacent pair of turns of different roles (therapist -> client and client ->
  therapist), i.e. every speaker change; a pair counts for a feature when both turns have it.
- ``pitch_synchrony``, ``energy_synchrony``, ``rate_synchrony`` (session): the correlation, over pairs,
  of the first turn's value with the next turn's: synchrony in the sense of Levitan & Hirschberg (2011)
  (who correlated adjacent inter-pausal units at turn exchanges; here whole-turn means). Rate enters
  relative to the speaker's own median turn rate (words/min), so a faster and a slower speaker do not
  make a spurious negative correlation when both directions are pooled; pitch and energy are relative
  already. Pearson by default (``method``), Spearman (average ranks) as an option. Positive: each turn
  moves with the previous speaker's turn; negative: against it. None with fewer than ``min_pairs``
  pairs or without variance on one side.
- ``rate_convergence`` (session): the least-squares slope of the pair's absolute rate difference
  ``|rate_first - rate_next|`` (raw words/min) against the next turn's start in minutes, in words/min
  per minute. Negative: the two speakers' rates grow closer over the session (convergence); positive:
  apart. None with fewer than ``min_pairs`` pairs or when all pairs start at one time.

These are process signals: typical session values depend on turn count and recording quality, so
compare within a setting.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from pipeline.errors import ConfigError
from pipeline.types import ROLES, Indicator, Role

Feature = Literal["pitch", "energy", "rate"]
FEATURES: tuple[Feature, ...] = ("pitch", "energy", "rate")


@dataclass(frozen=True)
class SynchronyOptions:
    """Parameters of the turn-pair measures (module docstring).

    Attributes
    ----------
    min_turn_voiced_s, min_turn_active_s : float
        Least voiced (active) frame time in a turn for its pitch (energy) value.
    min_turn_words : int
        Fewest words in a turn for its rate.
    min_pairs : int
        Fewest usable pairs for a correlation or a slope (at least 3).
    method : {"pearson", "spearman"}
        Correlation of the synchrony indicators.
    """

    min_turn_voiced_s: float = 0.2
    min_turn_active_s: float = 0.2
    min_turn_words: int = 2
    min_pairs: int = 10
    method: Literal["pearson", "spearman"] = "pearson"

    def __post_init__(self) -> None:
        for name in ("min_turn_voiced_s", "min_turn_active_s"):
            if not getattr(self, name) >= 0:
                raise ConfigError(f"{name} must be >= 0, got {getattr(self, name)!r}")
        if not self.min_turn_words >= 1:
            raise ConfigError(f"min_turn_words must be >= 1, got {self.min_turn_words!r}")
        if not self.min_pairs >= 3:
            raise ConfigError(f"min_pairs must be >= 3, got {self.min_pairs!r}")
        if self.method not in ("pearson", "spearman"):
            raise ConfigError(f"method must be 'pearson' or 'spearman', got {self.method!r}")


@dataclass(frozen=True)
class TurnValues:
    """One turn's prosodic values (module docstring); None where undefined.

    Attributes
    ----------
    role : Role or None
        None for a turn of neither role (it makes no pair).
    start_s, end_s : float
    pitch : float or None
        Semitones relative to the speaker's session median f0.
    energy : float or None
        dB relative to the speaker's session median active level.
    rate : float or None
        Words/min (raw).
    """

    role: Role | None
    start_s: float
    end_s: float
    pitch: float | None
    energy: float | None
    rate: float | None


def turn_rate(word_count: int, start_s: float, end_s: float, *, options: SynchronyOptions = SynchronyOptions()
              ) -> float | None:
    """Words/min over the turn's span; None under ``min_turn_words`` words or for an empty span."""
    if word_count < options.min_turn_words or not end_s > start_s:
        return None
    return 60.0 * word_count / (end_s - start_s)


def adjacent_pairs(turns: Sequence[TurnValues]) -> tuple[tuple[TurnValues, TurnValues], ...]:
    """Every (turn, next turn) with two different roles of (therapist, client), in order."""
    return tuple((a, b) for a, b in zip(turns[:-1], turns[1:], strict=True)
                 if a.role in ROLES and b.role in ROLES and a.role != b.role)


def _relative_rates(turns: Sequence[TurnValues]) -> dict[int, float]:
    """id(turn) -> rate minus the median rate of its role's turns."""
    out: dict[int, float] = {}
    for role in ROLES:
        own = [t for t in turns if t.role == role and t.rate is not None]
        if own:
            med = float(np.median([t.rate for t in own]))
            out.update({id(t): t.rate - med for t in own})  # type: ignore[operator]
    return out


def _average_ranks(x: np.ndarray) -> np.ndarray:
    order = np.argsort(x, kind="mergesort")
    ranks = np.empty(len(x))
    sx = x[order]
    i = 0
    while i < len(x):
        j = i
        while j + 1 < len(x) and sx[j + 1] == sx[i]:
            j += 1
        ranks[order[i:j + 1]] = (i + j) / 2.0 + 1.0
        i = j + 1
    return ranks


def correlation(x: Sequence[float], y: Sequence[float], *, method: str = "pearson") -> float | None:
    """Pearson (or Spearman, average ranks) correlation; None for fewer than 3 points or no variance."""
    a, b = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if len(a) != len(b):
        raise ValueError(f"x and y differ in length: {len(a)} != {len(b)}")
    if len(a) < 3:
        return None
    if method == "spearman":
        a, b = _average_ranks(a), _average_ranks(b)
    da, db = a - a.mean(), b - b.mean()
    saa, sbb = float(np.sum(da * da)), float(np.sum(db * db))
    # no variance (up to rounding of the mean) on either side: undefined
    if saa <= 1e-24 * max(1.0, float(np.sum(a * a))) or sbb <= 1e-24 * max(1.0, float(np.sum(b * b))):
        return None
    return float(np.clip(np.sum(da * db) / np.sqrt(saa * sbb), -1.0, 1.0))


def slope(t: Sequence[float], y: Sequence[float]) -> float | None:
    """Least-squares slope of y on t; None for fewer than 2 points or a single t."""
    a, b = np.asarray(t, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if len(a) < 2:
        return None
    a = a - a.mean()
    den = float(np.sum(a * a))
    if den <= 0:
        return None
    return float(np.sum(a * (b - b.mean())) / den)


def feature_synchrony(turns: Sequence[TurnValues], feature: Feature, *,
                      options: SynchronyOptions = SynchronyOptions()) -> float | None:
    """The synchrony of one feature over the session's adjacent pairs (module docstring)."""
    rel = _relative_rates(turns) if feature == "rate" else None

    def value(t: TurnValues) -> float | None:
        return rel.get(id(t)) if rel is not None else getattr(t, feature)

    xy = [(value(a), value(b)) for a, b in adjacent_pairs(turns)]
    xy = [(x, y) for x, y in xy if x is not None and y is not None]
    if len(xy) < options.min_pairs:
        return None
    return correlation([x for x, _ in xy], [y for _, y in xy], method=options.method)


def rate_convergence(turns: Sequence[TurnValues], *, options: SynchronyOptions = SynchronyOptions()
                     ) -> float | None:
    """Slope of ``|rate_first - rate_next|`` (words/min) on the next turn's start (min); negative: converging."""
    pts = [(b.start_s / 60.0, abs(a.rate - b.rate)) for a, b in adjacent_pairs(turns)
           if a.rate is not None and b.rate is not None]
    if len(pts) < options.min_pairs:
        return None
    return slope([t for t, _ in pts], [d for _, d in pts])


def synchrony_indicators(turns: Sequence[TurnValues], *, options: SynchronyOptions = SynchronyOptions()
                         ) -> tuple[Indicator, ...]:
    """``pitch_synchrony``, ``energy_synchrony``, ``rate_synchrony`` (unit ``r``) and ``rate_convergence``.

    Parameters
    ----------
    turns : sequence of TurnValues
        The session's conversational turns in order.
    options : SynchronyOptions

    Returns
    -------
    tuple of Indicator
        Session-level (role None); None where undefined.
    """
    return (
        Indicator("pitch_synchrony", None, feature_synchrony(turns, "pitch", options=options), "r"),
        Indicator("energy_synchrony", None, feature_synchrony(turns, "energy", options=options), "r"),
        Indicator("rate_synchrony", None, feature_synchrony(turns, "rate", options=options), "r"),
        Indicator("rate_convergence", None, rate_convergence(turns, options=options), "words/min per min"),
    )
