"""Prosody: per-speaker pitch and energy summaries from the audio, over each speaker's own speech.

Definitions
-----------
- *Own speech* of a speaker is the union of their diarization turns minus every other speaker's turns
  (overlapped speech is left out: its pitch and level mix two voices). Spans shorter than one analysis
  frame are skipped.
- Own speech is cut into frames of ``frame_length_s`` (64 ms) every ``hop_s`` (10 ms); only frames
  wholly inside a span count. Per frame: the RMS level in dBFS (``20 log10 rms``, full scale = 1.0, so
  a full-scale sine is -3.01 dBFS), the YIN f0 estimate (de Cheveigné & Kawahara 2002, ``librosa.yin``
  searching ``fmin_hz``..``fmax_hz``) and a *periodicity*: the normalised cross-correlation of the
  frame's first ``frame - max_period`` samples with the same stretch one estimated period later (1 for a
  perfectly periodic frame, about 0 for noise).
- A frame is *active* when its level is at most ``active_range_db`` (30 dB) below the speaker's loud
  level, the 95th percentile of all their frames' levels in the session: a relative gate, so it works at
  any recording gain (30 dB is about Praat's silence threshold, 0.03 of the peak amplitude). Silent
  frames inside a turn fall below it only where the noise floor is more than 30 dB under the speech;
  in noisier recordings they count as active and lower ``energy_median`` and ``voiced_share``. Frames
  below ``min_active_dbfs`` (-80 dBFS, under any real speech) are never active (digital silence).
- A frame is *voiced* when it is active and its periodicity is at least ``min_periodicity`` (0.45, the
  default voicing threshold of Praat's autocorrelation pitch tracker (Boersma 1993), used here as a
  convention: the measure is similar, not identical).
- Summaries per speaker: ``pitch_median`` (Hz) and ``pitch_iqr`` (semitones, ``12 log2(q75 / q25)``)
  over voiced frames; ``energy_median`` (dBFS) and ``energy_iqr`` (dB, ``q75 - q25``) over active
  frames; ``voiced_share`` = voiced / active frames; ``prosody_time`` = seconds of own speech analysed.
  Pitch is None with less than ``min_voiced_s`` of voiced frames, energy with less than
  ``min_active_s`` of active frames.

Cost and memory
---------------
YIN on every frame plus the periodicity took 0.13-0.18 s of one CPU per minute of recording on the
2-core development machine (sample_audio demo, 155 s of own speech in 205 s; the demo tiled to 61.6 min
took 10.6 s of CPU, peak traced memory 18 MB). The first call in a process also loads librosa's
numba-compiled helpers (about 2 s with ``NUMBA_CACHE_DIR`` warm, 20 s cold). pYIN took about 4.5 s per
minute of speech (some 25 times slower) and agreed with this voicing rule on 94-96 % of the demo's
frames, with medians within 1 Hz, so it is not used. Audio is analysed span by span in blocks of at
most ``max_block_s`` seconds (about 16 MB of transient arrays at the default 10 s, 5 MB at 2.5 s); what
is kept for the whole session is three float32 numbers, a float64 start time and two flags per frame
(about 8 MB per hour of speech).

Turn-pair synchrony
-------------------
Given the session's conversational turns, :func:`measure_prosody` also reports the synchrony of pitch,
energy and speech rate between adjacent turns and the convergence of speech rate, from the same frames
(:func:`turn_prosody`; definitions in :mod:`pipeline.markers.synchrony`).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

import librosa
import numpy as np

from pipeline.errors import ConfigError
from pipeline.markers.synchrony import SynchronyOptions, TurnValues, synchrony_indicators, turn_rate
from pipeline.types import ROLES, SAMPLE_RATE_HZ, Diarization, Indicator, Role, RoleAssignment, Span

_LOUD_PERCENTILE = 95.0
_TINY = 1e-12


@dataclass(frozen=True)
class ProsodyOptions:
    """Analysis parameters (module docstring); times in seconds, levels in dB.

    Attributes
    ----------
    fmin_hz, fmax_hz : float
        Pitch search range. 65-400 Hz covers adult speaking voices.
    frame_length_s : float
        Analysis frame; must hold at least two periods of ``fmin_hz``.
    hop_s : float
        Frame step.
    active_range_db : float
        Gate: frames more than this far below the speaker's loud level (95th percentile) are inactive.
    min_active_dbfs : float
        Frames below this level are never active (digital silence, dropouts).
    min_periodicity : float
        Voicing threshold on the normalised cross-correlation, in (0, 1).
    min_voiced_s, min_active_s : float
        Least voiced (active) frame time for a pitch (energy) summary; None below it.
    max_block_s : float
        Longest stretch of audio analysed at once (bounds memory, not results).
    """

    fmin_hz: float = 65.0
    fmax_hz: float = 400.0
    frame_length_s: float = 0.064
    hop_s: float = 0.010
    active_range_db: float = 30.0
    min_active_dbfs: float = -80.0
    min_periodicity: float = 0.45
    min_voiced_s: float = 1.0
    min_active_s: float = 1.0
    max_block_s: float = 10.0

    def __post_init__(self) -> None:
        if not 0 < self.fmin_hz < self.fmax_hz:
            raise ConfigError(f"need 0 < fmin_hz < fmax_hz, got fmin_hz={self.fmin_hz!r}, fmax_hz={self.fmax_hz!r}")
        if not self.frame_length_s >= 2.0 / self.fmin_hz:
            raise ConfigError(f"frame_length_s={self.frame_length_s!r} must hold two periods of "
                              f"fmin_hz={self.fmin_hz!r} (>= {2.0 / self.fmin_hz:.4f} s)")
        if not 0 < self.hop_s <= self.frame_length_s:
            raise ConfigError(f"hop_s must be in (0, frame_length_s], got {self.hop_s!r}")
        if not self.active_range_db > 0:
            raise ConfigError(f"active_range_db must be > 0, got {self.active_range_db!r}")
        if not self.min_active_dbfs < 0:
            raise ConfigError(f"min_active_dbfs must be < 0, got {self.min_active_dbfs!r}")
        if not 0 < self.min_periodicity < 1:
            raise ConfigError(f"min_periodicity must be in (0, 1), got {self.min_periodicity!r}")
        for name in ("min_voiced_s", "min_active_s"):
            if not getattr(self, name) >= 0:
                raise ConfigError(f"{name} must be >= 0, got {getattr(self, name)!r}")
        if not self.max_block_s >= 4 * self.frame_length_s:
            raise ConfigError(f"max_block_s={self.max_block_s!r} must be >= 4 * frame_length_s")


@dataclass(frozen=True)
class ProsodySummary:
    """One speaker's prosody over their own (non-overlapped) speech; None where undefined.

    Attributes
    ----------
    speaker : str
        Diarization label.
    analysed_s : float
        Seconds of own speech analysed (frame spans merged).
    active_s, voiced_s : float
        Frame count times ``hop_s`` of active and voiced frames.
    pitch_median_hz : float or None
    pitch_iqr_semitones : float or None
    energy_median_dbfs : float or None
    energy_iqr_db : float or None
    voiced_share : float or None
        Voiced / active frames.
    """

    speaker: str
    analysed_s: float
    active_s: float
    voiced_s: float
    pitch_median_hz: float | None
    pitch_iqr_semitones: float | None
    energy_median_dbfs: float | None
    energy_iqr_db: float | None
    voiced_share: float | None


def own_speech_spans(diarization: Diarization, speaker: str) -> tuple[Span, ...]:
    """The union of ``speaker``'s turns minus every other speaker's turns, sorted.

    Parameters
    ----------
    diarization : Diarization
    speaker : str

    Returns
    -------
    tuple of Span
        Disjoint, sorted, of positive length.
    """
    own = _union([(t.start_s, t.end_s) for t in diarization.turns if t.speaker == speaker])
    others = _union([(t.start_s, t.end_s) for t in diarization.turns if t.speaker != speaker])
    out: list[Span] = []
    k = 0
    for s, e in own:
        cur = s
        while k < len(others) and others[k][1] <= cur:
            k += 1
        j = k
        while j < len(others) and others[j][0] < e:
            if others[j][0] > cur:
                out.append(Span(cur, others[j][0]))
            cur = max(cur, others[j][1])
            j += 1
        if e > cur:
            out.append(Span(cur, e))
    return tuple(out)


def _union(spans: list[tuple[float, float]]) -> list[tuple[float, float]]:
    out: list[tuple[float, float]] = []
    for s, e in sorted(spans):
        if e <= s:
            continue
        if out and s <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], e))
        else:
            out.append((s, e))
    return out


def _blocks(n: int, *, frame: int, hop: int, max_frames: int) -> Iterator[tuple[int, int]]:
    """(first sample, frame count) of consecutive blocks covering the frames of an ``n``-sample span."""
    total = (n - frame) // hop + 1 if n >= frame else 0
    for i0 in range(0, total, max_frames):
        yield i0 * hop, min(max_frames, total - i0)


def _frame_features(y: np.ndarray, *, sr: int, frame: int, hop: int, options: ProsodyOptions
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Level (dBFS), f0 (Hz) and periodicity of every whole frame of ``y``; each shape (n_frames,)."""
    f0 = librosa.yin(y, fmin=options.fmin_hz, fmax=options.fmax_hz, sr=sr, frame_length=frame,
                     hop_length=hop, center=False)
    frames = librosa.util.frame(y, frame_length=frame, hop_length=hop)  # shape: (frame, n_frames), a view
    level = 20.0 * np.log10(np.sqrt(np.mean(np.square(frames, dtype=np.float64), axis=0)) + _TINY)
    max_period = min(int(math.ceil(sr / options.fmin_hz)), frame - 1)
    width = frame - max_period
    period = np.clip(np.rint(sr / f0).astype(np.int64), 1, max_period)  # shape: (n_frames,)
    cols = np.arange(frames.shape[1])
    a = frames[:width, :].astype(np.float64)  # shape: (width, n_frames)
    b = frames[np.arange(width)[:, None] + period[None, :], cols[None, :]].astype(np.float64)
    den = np.sqrt(np.sum(a * a, axis=0) * np.sum(b * b, axis=0))
    periodicity = np.where(den > _TINY, np.sum(a * b, axis=0) / np.maximum(den, _TINY), 0.0)
    return level.astype(np.float32), f0.astype(np.float32), periodicity.astype(np.float32)


@dataclass(frozen=True, eq=False)
class SpeakerFrames:
    """Every analysed frame of one speaker's own speech, in time order (module docstring).

    Attributes
    ----------
    start_s : np.ndarray, shape (n_frames,), float64
        Frame start times in seconds; each frame lasts ``frame_s``.
    frame_s, hop_s : float
        Frame length and step as used (whole samples).
    level_dbfs, f0_hz : np.ndarray, shape (n_frames,), float32
    active, voiced : np.ndarray, shape (n_frames,), bool
    analysed_s : float
        Seconds of own speech analysed.
    """

    start_s: np.ndarray
    frame_s: float
    hop_s: float
    level_dbfs: np.ndarray
    f0_hz: np.ndarray
    active: np.ndarray
    voiced: np.ndarray
    analysed_s: float


def warm_up() -> None:
    """Load librosa's numba-compiled YIN helpers now instead of inside the first session's analysis.

    They take about 2 s on first use in a process (with ``NUMBA_CACHE_DIR`` warm); ``alliance process`` calls
    this while Prefect's server starts, next to loading the models.
    """
    t = np.arange(2 * SAMPLE_RATE_HZ) / SAMPLE_RATE_HZ
    tone = (0.1 * np.sin(2 * np.pi * 150.0 * t)).astype(np.float32)
    speaker_frames(tone, [Span(0.0, 2.0)])


def speaker_frames(
    samples: np.ndarray,
    spans: Sequence[Span],
    *,
    sample_rate_hz: int = SAMPLE_RATE_HZ,
    options: ProsodyOptions = ProsodyOptions(),
) -> SpeakerFrames:
    """Frame level, f0 and the active / voiced gates of one speaker over the given spans.

    Parameters
    ----------
    samples : np.ndarray, shape (n_samples,), float in [-1, 1]
        The whole recording, mono. Not modified.
    spans : sequence of Span
        The speaker's own speech (:func:`own_speech_spans`), seconds; clipped to the recording.
    sample_rate_hz : int
    options : ProsodyOptions

    Returns
    -------
    SpeakerFrames

    Raises
    ------
    ValueError
        ``samples`` is not one-dimensional or ``sample_rate_hz`` is not positive.
    """
    _check_samples(samples, sample_rate_hz)
    sr = sample_rate_hz
    frame = int(round(options.frame_length_s * sr))
    hop = max(1, int(round(options.hop_s * sr)))
    max_frames = max(1, int((options.max_block_s * sr - frame) // hop) + 1)
    starts, levels, f0s, pers = [], [], [], []
    analysed_s = 0.0
    for span in spans:
        a = max(0, int(round(span.start_s * sr)))
        b = min(len(samples), int(round(span.end_s * sr)))
        if b - a < frame:
            continue
        analysed_s += (b - a) / sr
        for off, n_frames in _blocks(b - a, frame=frame, hop=hop, max_frames=max_frames):
            y = np.asarray(samples[a + off: a + off + (n_frames - 1) * hop + frame], dtype=np.float32)
            level, f0, per = _frame_features(y, sr=sr, frame=frame, hop=hop, options=options)
            starts.append((a + off + hop * np.arange(len(level), dtype=np.float64)) / sr)
            levels.append(level)
            f0s.append(f0)
            pers.append(per)
    if not levels:
        empty = np.zeros(0, dtype=np.float32)
        none = np.zeros(0, dtype=bool)
        return SpeakerFrames(np.zeros(0), frame / sr, hop / sr, empty, empty, none, none, analysed_s)
    level = np.concatenate(levels)
    per = np.concatenate(pers)
    active = (level >= np.percentile(level, _LOUD_PERCENTILE) - options.active_range_db) & (
        level >= options.min_active_dbfs)
    voiced = active & (per >= options.min_periodicity)
    return SpeakerFrames(np.concatenate(starts), frame / sr, hop / sr, level, np.concatenate(f0s), active, voiced,
                         analysed_s)


def speaker_prosody(
    samples: np.ndarray,
    spans: Sequence[Span],
    *,
    speaker: str,
    sample_rate_hz: int = SAMPLE_RATE_HZ,
    options: ProsodyOptions = ProsodyOptions(),
) -> ProsodySummary:
    """Pitch and energy summary of one speaker over the given spans of the recording.

    Parameters
    ----------
    samples : np.ndarray, shape (n_samples,), float in [-1, 1]
        The whole recording, mono. Not modified.
    spans : sequence of Span
        The speaker's own speech (:func:`own_speech_spans`), seconds; clipped to the recording.
    speaker : str
        Label stored in the result.
    sample_rate_hz : int
    options : ProsodyOptions

    Returns
    -------
    ProsodySummary

    Raises
    ------
    ValueError
        ``samples`` is not one-dimensional or ``sample_rate_hz`` is not positive.
    """
    frames = speaker_frames(samples, spans, sample_rate_hz=sample_rate_hz, options=options)
    return _summarise(frames, speaker=speaker, options=options)


def _summarise(frames: SpeakerFrames, *, speaker: str, options: ProsodyOptions) -> ProsodySummary:
    analysed_s = frames.analysed_s
    if len(frames.level_dbfs) == 0:
        return ProsodySummary(speaker, analysed_s, 0.0, 0.0, None, None, None, None, None)
    level, f0, active, voiced = frames.level_dbfs, frames.f0_hz, frames.active, frames.voiced
    hop_s = frames.hop_s
    n_active, n_voiced = int(active.sum()), int(voiced.sum())
    pitch_median = pitch_iqr = energy_median = energy_iqr = None
    if n_voiced > 0 and n_voiced * hop_s >= options.min_voiced_s:
        q25, q50, q75 = np.percentile(f0[voiced].astype(np.float64), [25, 50, 75])
        pitch_median, pitch_iqr = float(q50), float(12.0 * np.log2(q75 / q25))
    if n_active > 0 and n_active * hop_s >= options.min_active_s:
        q25, q50, q75 = np.percentile(level[active].astype(np.float64), [25, 50, 75])
        energy_median, energy_iqr = float(q50), float(q75 - q25)
    return ProsodySummary(
        speaker=speaker,
        analysed_s=analysed_s,
        active_s=n_active * hop_s,
        voiced_s=n_voiced * hop_s,
        pitch_median_hz=pitch_median,
        pitch_iqr_semitones=pitch_iqr,
        energy_median_dbfs=energy_median,
        energy_iqr_db=energy_iqr,
        voiced_share=n_voiced / n_active if n_active else None,
    )


def _check_samples(samples: np.ndarray, sample_rate_hz: int) -> None:
    if getattr(samples, "ndim", None) != 1:
        raise ValueError(f"samples must be mono, shape (n_samples,), got shape {getattr(samples, 'shape', None)!r}")
    if not sample_rate_hz > 0:
        raise ValueError(f"sample_rate_hz must be > 0, got {sample_rate_hz!r}")


def diarization_frames(samples: np.ndarray, diarization: Diarization, *, sample_rate_hz: int = SAMPLE_RATE_HZ,
                       options: ProsodyOptions = ProsodyOptions()) -> dict[str, SpeakerFrames]:
    """:func:`speaker_frames` of every speaker of ``diarization`` over their own speech.

    Depends on the audio and the diarization only, so the session run computes it while transcription is still
    running and hands it to :func:`measure_prosody` (``frames``).
    """
    return {label: speaker_frames(samples, own_speech_spans(diarization, label), sample_rate_hz=sample_rate_hz,
                                  options=options)
            for label in sorted({t.speaker for t in diarization.turns})}


def measure_prosody(
    samples: np.ndarray,
    diarization: Diarization,
    roles: RoleAssignment,
    *,
    sample_rate_hz: int = SAMPLE_RATE_HZ,
    options: ProsodyOptions = ProsodyOptions(),
    turns: Sequence[ProsodyTurn] | None = None,
    synchrony: SynchronyOptions = SynchronyOptions(),
    frames: Mapping[str, SpeakerFrames] | None = None,
) -> tuple[Indicator, ...]:
    """Per-role prosody indicators of one session, and turn-pair synchrony when turns are given.

    Parameters
    ----------
    samples : np.ndarray, shape (n_samples,), float32 in [-1, 1]
        The recording (``Audio.samples``), mono, 16 kHz by default. Not modified.
    diarization : Diarization
    roles : RoleAssignment
        A role without a speaker label gets None values (``prosody_time`` 0).
    sample_rate_hz : int
    options : ProsodyOptions
    turns : sequence of ProsodyTurn, optional
        The session's conversational turns in order (:func:`pipeline.markers.backchannels.conversational_turns`).
    synchrony : SynchronyOptions

    Returns
    -------
    tuple of Indicator
        For each role in (therapist, client): ``prosody_time`` (s), ``pitch_median`` (Hz),
        ``pitch_iqr`` (semitones), ``energy_median`` (dBFS), ``energy_iqr`` (dB), ``voiced_share`` (ratio);
        then, with ``turns``, the session-level ``pitch_synchrony``, ``energy_synchrony``, ``rate_synchrony``
        (r) and ``rate_convergence`` (words/min per min) of :mod:`pipeline.markers.synchrony`.

    Notes
    -----
    ``frames``: the speakers' frames from :func:`diarization_frames` (same samples, diarization and options), if
    already computed; any speaker missing from it is computed here.

    Raises
    ------
    ValueError
        ``samples`` is not one-dimensional or ``sample_rate_hz`` is not positive.
    """
    _check_samples(samples, sample_rate_hz)
    out: list[Indicator] = []
    given = frames or {}
    frames = {}
    for role in ROLES:
        label = roles.therapist if role == "therapist" else roles.client
        if label is None:
            s = ProsodySummary("", 0.0, 0.0, 0.0, None, None, None, None, None)
        else:
            frames[label] = given.get(label) or speaker_frames(samples, own_speech_spans(diarization, label),
                                                               sample_rate_hz=sample_rate_hz, options=options)
            s = _summarise(frames[label], speaker=label, options=options)
        out += [
            Indicator("prosody_time", role, s.analysed_s, "s"),
            Indicator("pitch_median", role, s.pitch_median_hz, "Hz"),
            Indicator("pitch_iqr", role, s.pitch_iqr_semitones, "semitones"),
            Indicator("energy_median", role, s.energy_median_dbfs, "dBFS"),
            Indicator("energy_iqr", role, s.energy_iqr_db, "dB"),
            Indicator("voiced_share", role, s.voiced_share, "ratio"),
        ]
    if turns is not None:
        out += synchrony_indicators(turn_prosody(frames, turns, options=synchrony), options=synchrony)
    return tuple(out)


class ProsodyTurn(Protocol):
    """What the turn-pair measures need from a turn (:class:`pipeline.markers.backchannels.ConversationalTurn`)."""

    @property
    def speaker(self) -> str: ...

    @property
    def role(self) -> Role | None: ...

    @property
    def start_s(self) -> float: ...

    @property
    def end_s(self) -> float: ...

    @property
    def word_count(self) -> int: ...


def turn_prosody(
    frames: Mapping[str, SpeakerFrames],
    turns: Sequence[ProsodyTurn],
    *,
    options: SynchronyOptions = SynchronyOptions(),
) -> tuple[TurnValues, ...]:
    """Each turn's relative pitch and energy and its speech rate (:mod:`pipeline.markers.synchrony`).

    Parameters
    ----------
    frames : mapping of str to SpeakerFrames
        Per diarization label (:func:`speaker_frames` over :func:`own_speech_spans`); a turn of a speaker
        not in it has no pitch or energy.
    turns : sequence of ProsodyTurn
        Conversational turns in order; a turn of no role is kept (it breaks adjacency) but makes no pair.
    options : SynchronyOptions

    Returns
    -------
    tuple of TurnValues
        One per turn, in order.
    """
    refs: dict[str, tuple[float | None, float | None]] = {}
    for label, fr in frames.items():
        f0_ref = float(np.median(fr.f0_hz[fr.voiced])) if fr.voiced.any() else None
        level_ref = float(np.median(fr.level_dbfs[fr.active])) if fr.active.any() else None
        refs[label] = (f0_ref, level_ref)
    out = []
    for t in turns:
        pitch = energy = None
        fr = frames.get(t.speaker)
        if fr is not None:
            f0_ref, level_ref = refs[t.speaker]
            # frames wholly inside the turn's span (1 us tolerance for rounding)
            i0 = int(np.searchsorted(fr.start_s, t.start_s - 1e-6, side="left"))
            i1 = int(np.searchsorted(fr.start_s, t.end_s - fr.frame_s + 1e-6, side="right"))
            voiced, active = fr.voiced[i0:i1], fr.active[i0:i1]
            n_voiced, n_active = int(voiced.sum()), int(active.sum())
            if f0_ref is not None and n_voiced > 0 and n_voiced * fr.hop_s >= options.min_turn_voiced_s:
                f0 = fr.f0_hz[i0:i1][voiced].astype(np.float64)
                pitch = float(np.mean(12.0 * np.log2(f0 / f0_ref)))
            if level_ref is not None and n_active > 0 and n_active * fr.hop_s >= options.min_turn_active_s:
                energy = float(np.mean(fr.level_dbfs[i0:i1][active].astype(np.float64)) - level_ref)
        out.append(TurnValues(t.role, t.start_s, t.end_s, pitch, energy,
                              turn_rate(t.word_count, t.start_s, t.end_s, options=options)))
    return tuple(out)
