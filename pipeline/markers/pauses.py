"""Pauses inside a speaker's turn, measured from word timestamps.

The diarization merges short gaps into one turn, so the gaps between consecutive recognised words are
the measure here (:mod:`pipeline.markers.silences` measures the long silences between diarization turns).

Definitions
-----------
- Words are taken in time order; tokens with no letter or digit (a lone dash, "...") are skipped, as
  they carry no speech. A *run* is a maximal sequence of consecutive words attributed to one speaker; a
  word with another speaker, or with no speaker, ends it. Only gaps inside a run count, so a gap never
  crosses a change of speaker.
- The gap between two consecutive words of a run is ``next.start_s - previous.end_s`` (0 when they
  overlap). It is a *pause* when ``min_pause_s <= gap < max_pause_s``:

  * ``min_pause_s`` = 0.25 s: the usual lower bound for silent pauses, below which gaps are mostly
    articulatory (stop closures, transitions); convention after Goldman-Eisler (1968).
  * ``max_pause_s`` = 2 s (None: no upper bound): gaps this long are the long silences of the
    foundation's indicator (``SilenceOptions.min_silence_s`` = 2 s) and are left to it; without the cap
    one long gap would dominate the mean pause.
- A gap in which other speakers talk (their diarization turns cover more than
  ``other_speech_tolerance_s``, 0.1 s, of it) is not a pause: the other person spoke (a backchannel the
  recogniser missed, or an interjection).
- Pauses of at least ``marker_min_pause_s`` (1 s) are also marker events (kind ``pause``), so that the
  report can show hesitations in context; shorter ones are only counted.

Caveats (Whisper word timestamps)
---------------------------------
Whisper's word times come from aligning its attention weights to the audio (dynamic time warping) and
are approximate; Bain et al. (2023, WhisperX) describe Whisper's timestamp inaccuracy and correct it with
forced alignment, which this pipeline does not do. A word can be stretched over neighbouring silence,
which shortens the gap, so counts near 0.25 s are conservative. Whisper also often leaves out fillers
("um", "uh"): a filled pause then shows as a gap and is counted as a pause. The times arrive tidied
(:func:`pipeline.asr.transcribe.tidy_words`: monotonic, millisecond precision).
Treat the figures as approximate and compare them within one pipeline version, not across ASR backends.

Indicators per role
-------------------
``pause_count`` (count), ``pause_rate`` (pauses per minute of the role's speaking time, the union of its
diarization turns, as for ``speech_rate``), ``mean_pause`` (s; None without pauses).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

from pipeline.errors import ConfigError
from pipeline.lexicons import normalise_token
from pipeline.markers.silences import speaking_time_s
from pipeline.types import ROLES, AttributedWord, Diarization, Indicator, Marker, RoleAssignment

_EPS = 1e-9
_CONTEXT_WORDS = 3


@dataclass(frozen=True)
class PauseOptions:
    """Thresholds in seconds (module docstring).

    Attributes
    ----------
    min_pause_s : float
        Shortest gap counted as a pause (inclusive).
    max_pause_s : float or None
        Gaps at least this long are not pauses (long silences); None for no upper bound.
    marker_min_pause_s : float
        Shortest pause also reported as a ``pause`` marker.
    other_speech_tolerance_s : float
        Other speakers' diarization speech allowed inside a gap before it stops being a pause.
    """

    min_pause_s: float = 0.25
    max_pause_s: float | None = 2.0
    marker_min_pause_s: float = 1.0
    other_speech_tolerance_s: float = 0.1

    def __post_init__(self) -> None:
        if not self.min_pause_s > 0:
            raise ConfigError(f"min_pause_s must be > 0, got {self.min_pause_s!r}")
        if self.max_pause_s is not None and not self.max_pause_s > self.min_pause_s:
            raise ConfigError(f"max_pause_s={self.max_pause_s!r} must be > min_pause_s={self.min_pause_s!r} "
                              "(or None)")
        if not self.marker_min_pause_s >= self.min_pause_s:
            raise ConfigError(f"marker_min_pause_s={self.marker_min_pause_s!r} must be >= "
                              f"min_pause_s={self.min_pause_s!r}")
        if not self.other_speech_tolerance_s >= 0:
            raise ConfigError(f"other_speech_tolerance_s must be >= 0, got {self.other_speech_tolerance_s!r}")


@dataclass(frozen=True, order=True)
class Pause:
    """A silent gap between two consecutive words of one speaker's run.

    Attributes
    ----------
    start_s, end_s : float
        End of the word before, start of the word after (seconds).
    speaker : str
        Diarization label of the speaker holding the floor.
    before, after : str
        Up to three words before and after the gap (context for the report).
    """

    start_s: float
    end_s: float
    speaker: str
    before: str
    after: str

    @property
    def duration_s(self) -> float:
        return self.end_s - self.start_s


def _other_speech_s(diarization: Diarization | None, speaker: str, start_s: float, end_s: float) -> float:
    """Seconds of [start_s, end_s) covered by other speakers' turns (union, so overlaps count once)."""
    if diarization is None:
        return 0.0
    spans = sorted((max(t.start_s, start_s), min(t.end_s, end_s)) for t in diarization.turns
                   if t.speaker != speaker and t.start_s < end_s and t.end_s > start_s)
    total, reach = 0.0, start_s
    for s, e in spans:
        s = max(s, reach)
        if e > s:
            total += e - s
            reach = e
    return total


def find_pauses(
    words: Sequence[AttributedWord],
    *,
    diarization: Diarization | None = None,
    options: PauseOptions = PauseOptions(),
) -> tuple[Pause, ...]:
    """Pauses inside speakers' runs of words (module docstring).

    Parameters
    ----------
    words : sequence of AttributedWord
        Words with their speakers; sorted by time here (the input is not changed).
    diarization : Diarization, optional
        When given, gaps in which other speakers talk are left out.
    options : PauseOptions

    Returns
    -------
    tuple of Pause
        In time order.
    """
    spoken = sorted((w for w in words if normalise_token(w.text)), key=lambda w: (w.start_s, w.end_s))
    out: list[Pause] = []
    for k in range(1, len(spoken)):
        prev, nxt = spoken[k - 1], spoken[k]
        if prev.speaker is None or prev.speaker != nxt.speaker:
            continue
        gap = max(0.0, nxt.start_s - prev.end_s)
        if gap < options.min_pause_s - _EPS:
            continue
        if options.max_pause_s is not None and gap >= options.max_pause_s - _EPS:
            continue
        if _other_speech_s(diarization, prev.speaker, prev.end_s, nxt.start_s) > options.other_speech_tolerance_s:
            continue
        before = " ".join(w.text for w in _same_speaker(spoken, k - 1, -1))
        after = " ".join(w.text for w in _same_speaker(spoken, k, 1))
        out.append(Pause(prev.end_s, nxt.start_s, prev.speaker, before, after))
    return tuple(out)


def _same_speaker(words: Sequence[AttributedWord], k: int, step: int) -> list[AttributedWord]:
    """Up to ``_CONTEXT_WORDS`` words from ``k`` in direction ``step`` by the speaker of ``words[k]``, in order."""
    out = []
    i = k
    while 0 <= i < len(words) and len(out) < _CONTEXT_WORDS and words[i].speaker == words[k].speaker:
        out.append(words[i])
        i += step
    return out[::-1] if step < 0 else out


def measure_pauses(
    words: Sequence[AttributedWord],
    diarization: Diarization,
    roles: RoleAssignment,
    *,
    options: PauseOptions = PauseOptions(),
) -> tuple[tuple[Marker, ...], tuple[Indicator, ...]]:
    """Pause markers and per-role pause indicators of one session.

    Parameters
    ----------
    words : sequence of AttributedWord
    diarization : Diarization
        Speaking time (the rate's denominator) and other speakers' speech inside gaps.
    roles : RoleAssignment
    options : PauseOptions

    Returns
    -------
    (markers, indicators) : tuple of Marker, tuple of Indicator
        Markers of kind ``pause`` (value = duration in s; detail JSON ``quote``: the words around the gap,
        "before … after") for pauses of at least ``marker_min_pause_s``, in time order. Indicators for each
        role in (therapist, client): ``pause_count`` (count), ``pause_rate`` (pauses/min of speaking time;
        None without speaking time), ``mean_pause`` (s; None without pauses).
    """
    role_of = roles.role_of
    pauses = find_pauses(words, diarization=diarization, options=options)
    markers = tuple(
        Marker("pause", role_of(p.speaker), p.start_s, p.end_s, round(p.duration_s, 3),
               json.dumps({"quote": f"{p.before} \u2026 {p.after}"}))
        for p in pauses if p.duration_s >= options.marker_min_pause_s - _EPS
    )
    talk = speaking_time_s(diarization)
    ind: list[Indicator] = []
    for role in ROLES:
        own = [p.duration_s for p in pauses if role_of(p.speaker) == role]
        speak_s = sum(v for s, v in talk.items() if role_of(s) == role)
        ind += [
            Indicator("pause_count", role, float(len(own)), "count"),
            Indicator("pause_rate", role, 60.0 * len(own) / speak_s if speak_s > 0 else None, "pauses/min"),
            Indicator("mean_pause", role, sum(own) / len(own) if own else None, "s"),
        ]
    return markers, tuple(ind)
