"""Plausibility gates and per-session quality flags: what may be stored, and how far to trust it.

Gates (raise, so nothing is stored):

- **no speech**: the diarization's speech (pyannote segmentation over the whole recording) totals less than
  ``min_speech_s`` -> :class:`~pipeline.errors.NoSpeechError` (``no_speech``);
- **words outside speech** (the hallucination guard): a run of recognised words none of which, widened by
  ``word_margin_s`` on each side, touches detected speech is dropped and counted; when no word is left,
  :class:`~pipeline.errors.NoSpeechError` (``no_recognised_speech``);
- **not language** (reversed speech, babble, music with voice): Whisper still writes words, but with low
  confidence; when the median probability of the words inside speech is below ``min_median_word_probability``
  -> :class:`~pipeline.errors.NoSpeechError` (``not_language``);
- **one voice**: held to two speakers, the diarizer finds speech by one only, or splits a single voice into two
  clusters whose embedding centroids are nearly the same (the two closest nearer than ``min_speaker_distance``,
  cosine) -> :class:`~pipeline.errors.SingleSpeakerError` (``single_speaker``);
- **impossible values**: a speaker with words but no speaking time, or a speech rate beyond
  ``max_speech_rate_wpm`` -> :class:`~pipeline.errors.ImplausibleValueError`.

Flags (stored in ``session_quality`` and shown at the top of the summary and report): low speech, low
estimated SNR, narrowband audio, a reverberant room, heavy overlap, low ASR confidence, dropped hallucinations,
uncertain roles, a high expected word error rate. Each flag says which indicators not to trust. The room measures
behind ``reverberant`` (``rt60_s``, ``early_drop_db``, ``modulation_ratio_db``) are columns of the row (migration
0012); so is ``expected_wer`` (migration 0013), the word error rate the transcript's own confidence predicts
(:func:`expected_wer`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from pipeline.audio.room import estimate_room, modulation_ratio_db
from pipeline.errors import ConfigError, ImplausibleValueError, NoSpeechError, SingleSpeakerError
from pipeline.types import SAMPLE_RATE_HZ, AttributedWord, Diarization, Indicator, RoleAssignment, Transcript, Word


@dataclass(frozen=True)
class QualityOptions:
    """Thresholds of the gates and flags (README, "Quality flags").

    Attributes
    ----------
    min_speech_s : float
        Below this much detected speech the session fails with ``no_speech``.
    low_speech_s, low_speech_share : float
        Under either (seconds of speech, share of the recording) the session is stored with ``low_speech``.
    word_margin_s : float
        A run of words is kept when one of its words, widened by this much on each side, touches detected speech.
    run_gap_s : float
        Words closer than this belong to one run (judged together).
    max_speech_rate_wpm : float
        A speaker's words per minute of their own speaking time above this is impossible (fast speech is
        about 200-300; the guard is generous so it never fires on real speech).
    min_snr_db, max_overlap_share, min_word_probability, min_role_confidence : float
        Flag thresholds (see :func:`quality_flags`).
    min_median_word_probability : float
        Below this median word probability (words inside speech) the session fails with ``not_language``.
        Measured (``bench/bench_gates.py``, ``docs/gates.md``): reversed speech 0.21-0.28; real and rendered
        speech, clean, under six-voice babble at 10 dB and over a phone line, 0.97-0.99.
    min_speaker_distance : float
        Below this cosine distance between the two closest speaker centroids the session fails with
        ``single_speaker``. Measured (``bench/bench_gates.py``, ``docs/gates.md``): one voice split in two
        0.025-0.037 (four flite voices, 43-49 s), 0.163 (jfk.flac inside 90 s of low noise: the second cluster is
        mostly noise); two and three voices 0.347 (pyannote's real sample) to 0.728. The threshold sits between.
    min_high_band_db : float
        ``narrowband`` below this (:func:`estimate_high_band_db`; wideband renders -13 to -31 dB, telephone-band
        audio -67 to -75 dB).
    max_rt60_s : float
        ``reverberant`` above this estimated reverberation time (:func:`pipeline.audio.room.estimate_room`;
        the realistic bench's near room and phone line, RT60 0.39 s, read 0.46-0.56 s, the near room with HVAC
        noise at 15 dB 0.57-0.61 s, its far room, 0.77 s, reads 0.77-0.80 s).
    max_expected_wer : float
        ``high_expected_wer`` above this expected word error rate (:func:`expected_wer`): one word in four wrong.
        On the realistic bench (beam 5, ``bench/results/expected_wer.md``) it fires on both phone-line and both
        babble renders and on one of the two mp3 renders (true WER 26-39 %), and on none of the clean, room, HVAC
        and overlap-rich renders (expected at most 22.5 %; true 13-26 %: it misses one HVAC render at 25.9 %).
    """

    min_speech_s: float = 1.0
    low_speech_s: float = 30.0
    low_speech_share: float = 0.05
    word_margin_s: float = 1.0
    run_gap_s: float = 1.0
    max_speech_rate_wpm: float = 450.0
    min_snr_db: float = 10.0
    min_high_band_db: float = -50.0
    max_overlap_share: float = 0.15
    min_word_probability: float = 0.6
    min_role_confidence: float = 0.5
    min_median_word_probability: float = 0.5
    min_speaker_distance: float = 0.25
    max_rt60_s: float = 0.65
    max_expected_wer: float = 0.25

    def __post_init__(self) -> None:
        for name in ("min_speech_s", "low_speech_s", "low_speech_share", "word_margin_s", "run_gap_s",
                     "max_speech_rate_wpm", "max_rt60_s", "max_expected_wer",
                     "max_overlap_share", "min_word_probability", "min_role_confidence",
                     "min_median_word_probability", "min_speaker_distance"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
                raise ConfigError(f"{name} must be a finite number >= 0, got {value!r}")
        value = self.min_high_band_db
        if isinstance(value, bool) or not (isinstance(value, (int, float)) and math.isfinite(value)):
            raise ConfigError(f"min_high_band_db must be a finite number (dB), got {value!r}")


@dataclass(frozen=True)
class QualityFlag:
    """One reason to read a session's indicators with care: ``code``, what it means and what not to trust."""

    code: str
    message: str
    distrust: str


@dataclass(frozen=True)
class SessionQuality:
    """Per-session quality measures (one ``session_quality`` row) and the flags they raise."""

    speech_s: float
    speech_share: float
    snr_db: float | None
    overlap_share: float
    mean_word_probability: float | None
    asr_segments: int
    asr_segments_dropped: int
    words_dropped_outside_speech: int
    word_attribution_overlap: float | None
    role_confidence: float
    language: str
    language_probability: float
    high_band_db: float | None = None
    rt60_s: float | None = None
    early_drop_db: float | None = None
    modulation_ratio_db: float | None = None
    expected_wer: float | None = None
    flags: tuple[QualityFlag, ...] = ()


#: ``expected WER = intercept + slope x mean word probability`` of a Whisper transcript (all its words): the line
#: ``python -m bench.calibrate_expected_wer`` fitted on one realistic-bench session (8 conditions, greedy and beam
#: 5) and scored held out on the other (mean absolute error 2.1 points, largest 4.8) and on pyannote's real sample
#: (1.1 points); ``bench/results/expected_wer.json`` (a test keeps the two equal).
EXPECTED_WER_LINE = (1.5386, -1.6419)
EXPECTED_WER_HELD_OUT_ERROR = 0.021
#: The backends whose word probabilities the line was fitted on (Moonshine's and ROVER's are not Whisper's).
EXPECTED_WER_BACKENDS = ("faster-whisper", "openai-whisper")


def expected_wer(transcript: Transcript) -> float | None:
    """The word error rate a Whisper transcript's mean word probability predicts, in [0, 1]; None otherwise.

    An estimate of how well the words are measured, from the realistic bench's flite renders (rooms, noise,
    codecs, overlap) and checked on one real 30 s recording: not a measured WER, and not evidence about the
    session. None for other backends and for a transcript without words.
    """
    if transcript.backend not in EXPECTED_WER_BACKENDS or not transcript.words:
        return None
    intercept, slope = EXPECTED_WER_LINE
    mean = float(np.mean([w.probability for w in transcript.words]))
    return round(min(max(intercept + slope * mean, 0.0), 1.0), 3)


def speech_union(diarization: Diarization) -> tuple[tuple[float, float], ...]:
    """The union of every speaker's turns: sorted, non-overlapping ``(start_s, end_s)`` spans."""
    out: list[list[float]] = []
    for turn in sorted(diarization.turns):
        if out and turn.start_s <= out[-1][1]:
            out[-1][1] = max(out[-1][1], turn.end_s)
        else:
            out.append([turn.start_s, turn.end_s])
    return tuple((s, e) for s, e in out)


def overlap_seconds(diarization: Diarization) -> float:
    """Seconds during which two or more speakers' turns overlap."""
    events = sorted([(t.start_s, 1) for t in diarization.turns] + [(t.end_s, -1) for t in diarization.turns])
    total, active, last = 0.0, 0, None
    for time_s, step in events:
        if active >= 2 and last is not None:
            total += time_s - last
        active += step
        last = time_s
    return total


def require_speech(diarization: Diarization, *, options: QualityOptions = QualityOptions()) -> float:
    """Seconds of detected speech; :class:`NoSpeechError` when below ``options.min_speech_s``."""
    speech_s = sum(e - s for s, e in speech_union(diarization))
    if speech_s < options.min_speech_s:
        raise NoSpeechError(
            f"no speech found: the speech detector (pyannote segmentation over the whole recording) found "
            f"{speech_s:.1f} s of speech (at least {options.min_speech_s:g} s needed); nothing is stored",
            code="no_speech")
    return speech_s


def word_runs(words: Sequence[Word], *, max_gap_s: float) -> tuple[tuple[Word, ...], ...]:
    """Consecutive words split wherever one ends ``max_gap_s`` or more before the next starts."""
    runs: list[list[Word]] = []
    for w in words:
        if runs and w.start_s - runs[-1][-1].end_s < max_gap_s:
            runs[-1].append(w)
        else:
            runs.append([w])
    return tuple(tuple(r) for r in runs)


def words_in_speech(words: Sequence[Word], *, diarization: Diarization,
                    options: QualityOptions = QualityOptions()) -> tuple[tuple[Word, ...], int]:
    """Keep the runs of words that touch detected speech; drop (and count) runs that lie wholly outside it.

    Words are grouped into runs split at gaps of ``options.run_gap_s`` or more (Whisper stretches the
    last words of a segment over the silence after it, so single words are judged with their run). A run
    is kept when any of its words, widened by ``options.word_margin_s`` on each side, touches speech.

    Returns the kept words (order kept) and how many were dropped. :class:`NoSpeechError`
    (``no_recognised_speech``) when no word is left.
    """
    spans = speech_union(diarization)
    starts = np.array([s for s, _ in spans])  # shape: (n_spans,)
    ends = np.array([e for _, e in spans])

    def touches(w: Word) -> bool:
        lo, hi = w.start_s - options.word_margin_s, w.end_s + options.word_margin_s
        return bool(spans) and bool(np.any((starts < hi) & (ends > lo)))

    kept = [w for run in word_runs(words, max_gap_s=options.run_gap_s) if any(touches(w) for w in run) for w in run]
    if not kept:
        raise NoSpeechError(
            f"no recognised speech: {len(words)} word(s) recognised, none inside detected speech; nothing is stored",
            code="no_recognised_speech")
    return tuple(kept), len(words) - len(kept)


def require_language(words: Sequence[Word], *, options: QualityOptions = QualityOptions()) -> float:
    """The median probability of ``words``; :class:`NoSpeechError` (``not_language``) when it is too low.

    Whisper writes fluent-looking words over speech that is not language (reversed speech, babble, music
    with voice), but with low confidence; real speech, even in noise, is recognised with a high median.
    """
    median = float(np.median([w.probability for w in words])) if words else 0.0
    if words and median < options.min_median_word_probability:
        raise NoSpeechError(
            f"not language: the {len(words)} recognised word(s) have a median confidence of {median:.2f} "
            f"(at least {options.min_median_word_probability:g} needed): speech that is not language (reversed, "
            "babble, music with voice) or not in the transcription language; nothing is stored",
            code="not_language")
    return median


def require_two_voices(diarization: Diarization, *, expected: int | None = 2,
                       options: QualityOptions = QualityOptions()) -> None:
    """:class:`SingleSpeakerError` when a recording meant for two or more speakers holds one voice.

    One voice shows in two ways: the diarizer, held to ``expected`` speakers, gives turns to one speaker only
    (a short monologue), or splits the voice into clusters whose embedding centroids are nearly the same
    (``diarization.speaker_distance`` below ``options.min_speaker_distance``). Nothing is checked when fewer
    than two speakers are expected; the distance is not checked when the diarization carries none (RTTM,
    text-only).
    """
    if expected is None or expected < 2:
        return
    if len(diarization.speakers) < 2:
        raise SingleSpeakerError(
            f"one voice: {expected} speakers were expected and the diarizer found speech by "
            f"{len(diarization.speakers)}: not a two-person conversation; nothing is stored")
    distance = diarization.speaker_distance
    if distance is not None and distance < options.min_speaker_distance:
        raise SingleSpeakerError(
            f"one voice: the diarizer's speakers are one voice split in two (embedding distance {distance:.2f}, "
            f"at least {options.min_speaker_distance:g} needed): not a two-person conversation; nothing is stored")


def check_plausible(indicators: Sequence[Indicator], *, options: QualityOptions = QualityOptions()) -> None:
    """:class:`ImplausibleValueError` for a speaker with words but no speaking time, or an impossible rate."""
    values = {(i.name, i.speaker_role): i.value for i in indicators}
    for role in ("therapist", "client"):
        words = values.get(("word_count", role)) or 0.0
        speaking = values.get(("speaking_time", role)) or 0.0
        if words > 0 and speaking <= 0:
            raise ImplausibleValueError(f"the {role} has {words:.0f} word(s) but no speaking time: the "
                                        "transcript and the diarization disagree; nothing is stored")
        rate = values.get(("speech_rate", role))
        if rate is not None and rate > options.max_speech_rate_wpm:
            raise ImplausibleValueError(
                f"the {role}'s speech rate would be {rate:.0f} words/min (more than {options.max_speech_rate_wpm:g} "
                "is not human speech): the transcript is not trustworthy; nothing is stored")


def estimate_snr_db(samples: np.ndarray, diarization: Diarization, *,
                    sample_rate_hz: int = SAMPLE_RATE_HZ) -> float | None:
    """Speech-to-non-speech power ratio in dB (mean power inside detected speech over mean power outside).

    None when either part is shorter than 1 s (nothing to compare). A rough estimate: speech power
    includes the noise under it, so high-noise recordings read a little better than they are.
    """
    if samples.size == 0:
        return None
    mask = np.zeros(samples.size, dtype=bool)
    for s, e in speech_union(diarization):
        mask[int(s * sample_rate_hz):int(e * sample_rate_hz)] = True
    n_speech, n_rest = int(mask.sum()), int((~mask).sum())
    if n_speech < sample_rate_hz or n_rest < sample_rate_hz:
        return None
    x = samples.astype(np.float64)
    speech_power = float(np.mean(x[mask] ** 2))
    rest_power = float(np.mean(x[~mask] ** 2))
    if speech_power <= 0:
        return None
    return round(10.0 * math.log10(speech_power / max(rest_power, 1e-12)), 1)


#: Frequency bands (Hz) of :func:`estimate_high_band_db`: the speech band and the band above a telephone line's.
SPEECH_BAND_HZ = (300.0, 3000.0)
HIGH_BAND_HZ = (4500.0, 7500.0)


def estimate_high_band_db(samples: np.ndarray, diarization: Diarization, *,
                          sample_rate_hz: int = SAMPLE_RATE_HZ, max_speech_s: float = 600.0) -> float | None:
    """Mean power of detected speech in 4.5-7.5 kHz relative to 0.3-3 kHz, in dB (Welch spectrum).

    Wideband speech keeps energy above 4.5 kHz: -13 to -31 dB on the realistic bench's rooms, noise, overlap and
    16 kb/s mp3 renders and the demo session; telephone-band audio (300-3400 Hz, 8 kHz sampling, resampled)
    has next to none: -75 dB through the AMR phone line, -67 dB on pyannote's real sample. None with less than
    1 s of speech or a sample rate below 16 kHz. At most ``max_speech_s`` of speech is read (evenly spread).
    """
    from scipy.signal import welch

    if sample_rate_hz < 2 * HIGH_BAND_HZ[1] or samples.size == 0:
        return None
    spans = [(int(s * sample_rate_hz), int(e * sample_rate_hz)) for s, e in speech_union(diarization)]
    total = sum(e - s for s, e in spans)
    if total < sample_rate_hz:
        return None
    step = max(1, math.ceil(total / (max_speech_s * sample_rate_hz)))
    speech = np.concatenate([samples[s:e] for s, e in spans[::step] if e - s >= 1024] or [np.zeros(0)])
    if speech.size < sample_rate_hz:
        return None
    f, power = welch(speech.astype(np.float64), fs=sample_rate_hz, nperseg=1024)

    def band(lo: float, hi: float) -> float:
        return float(np.mean(power[(f >= lo) & (f < hi)]))

    low = band(*SPEECH_BAND_HZ)
    if low <= 0:
        return None
    return round(10.0 * math.log10(max(band(*HIGH_BAND_HZ), 1e-30) / low), 1)


def attribution_overlap(words: Sequence[AttributedWord], diarization: Diarization) -> float | None:
    """Mean share of each word's duration inside a turn of the speaker it was given (1.0 = unambiguous)."""
    if not words:
        return None
    spans: dict[str | None, list[tuple[float, float]]] = {}
    for t in diarization.turns:
        spans.setdefault(t.speaker, []).append((t.start_s, t.end_s))
    # shape: (n_turns_of_speaker,) start and end arrays per speaker
    arrays = {s: (np.array([a for a, _ in v]), np.array([b for _, b in v])) for s, v in spans.items()}
    empty = (np.zeros(0), np.zeros(0))
    shares = []
    for w in words:
        starts, ends = arrays.get(w.speaker, empty)
        inside = float(np.clip(np.minimum(ends, w.end_s) - np.maximum(starts, w.start_s), 0.0, None).sum())
        shares.append(min(1.0, inside / max(w.end_s - w.start_s, 1e-9)))
    return round(float(np.mean(shares)), 3)


def quality_flags(q: SessionQuality, *, duration_s: float,
                  options: QualityOptions = QualityOptions()) -> tuple[QualityFlag, ...]:
    """The flags a session's quality measures raise (thresholds in :class:`QualityOptions`)."""
    flags = []
    if q.speech_s < options.low_speech_s or q.speech_share < options.low_speech_share:
        flags.append(QualityFlag(
            "low_speech", f"only {q.speech_s:.0f} s of speech ({100 * q.speech_share:.0f} % of {duration_s:.0f} s)",
            "every indicator: too little speech for stable rates and shares"))
    if q.snr_db is not None and q.snr_db < options.min_snr_db:
        flags.append(QualityFlag("noisy", f"estimated SNR {q.snr_db:.0f} dB (below {options.min_snr_db:g} dB)",
                                 "text markers (more recognition errors) and pitch/energy measures"))
    if q.high_band_db is not None and q.high_band_db < options.min_high_band_db:
        flags.append(QualityFlag(
            "narrowband", f"almost no sound above 4.5 kHz ({q.high_band_db:.0f} dB below the speech band): telephone-"
            "band or low-passed audio", "text markers (on the realistic bench a phone line raised the word error "
            "rate from about 21 % to 35 %)"))
    if q.rt60_s is not None and q.rt60_s > options.max_rt60_s:
        flags.append(QualityFlag(
            "reverberant", f"estimated reverberation time {q.rt60_s:.1f} s (above {options.max_rt60_s:g} s): a "
            "reverberant room, where a far microphone loses more words", "text markers (on the realistic bench a "
            "0.8 s room with the client 3.5 m away raised the word error rate from about 20 % to 24 %)"))
    if q.overlap_share > options.max_overlap_share:
        flags.append(QualityFlag(
            "heavy_overlap", f"{100 * q.overlap_share:.0f} % of speech is overlapped",
            "timing markers (silences, switching gaps, interruptions) and talk-time shares"))
    if q.mean_word_probability is not None and q.mean_word_probability < options.min_word_probability:
        flags.append(QualityFlag(
            "low_asr_confidence", f"mean word probability {q.mean_word_probability:.2f}",
            "text markers (we-language, questions, topics, quotes)"))
    if q.expected_wer is not None and q.expected_wer > options.max_expected_wer:
        flags.append(QualityFlag(
            "high_expected_wer", f"expected word error rate about {100 * q.expected_wer:.0f} % (from the words' "
            f"confidence; within about {100 * EXPECTED_WER_HELD_OUT_ERROR:.0f} points on held-out renders)",
            "text markers and process codes (we-language, questions, reflections, topics): about one word in "
            f"{max(1, round(1 / q.expected_wer))} is wrong; timing markers are not affected"))
    if q.asr_segments_dropped or q.words_dropped_outside_speech:
        flags.append(QualityFlag(
            "hallucinations_dropped",
            f"{q.asr_segments_dropped} repetitive ASR segment(s) and {q.words_dropped_outside_speech} word(s) "
            "outside detected speech were dropped", "text markers near the dropped stretches"))
    if q.role_confidence < options.min_role_confidence:
        flags.append(QualityFlag("uncertain_roles", f"role confidence {q.role_confidence:.2f}",
                                 "every per-role indicator (therapist and client may be swapped)"))
    return tuple(flags)


def measure_quality(samples: np.ndarray, *, duration_s: float, transcript: Transcript, diarization: Diarization,
                    words: Sequence[AttributedWord], roles: RoleAssignment, words_dropped: int,
                    options: QualityOptions = QualityOptions()) -> SessionQuality:
    """Every quality measure of a session and the flags they raise."""
    speech_s = sum(e - s for s, e in speech_union(diarization))
    probabilities = [w.probability for w in words]
    room = estimate_room(samples)
    q = SessionQuality(
        speech_s=round(speech_s, 3),
        speech_share=round(speech_s / duration_s, 4) if duration_s > 0 else 0.0,
        snr_db=estimate_snr_db(samples, diarization),
        overlap_share=round(overlap_seconds(diarization) / speech_s, 4) if speech_s > 0 else 0.0,
        mean_word_probability=round(float(np.mean(probabilities)), 3) if probabilities else None,
        asr_segments=transcript.segments,
        asr_segments_dropped=transcript.segments_dropped,
        words_dropped_outside_speech=words_dropped + transcript.words_dropped,  # digital silence: outside speech
        word_attribution_overlap=attribution_overlap(words, diarization),
        role_confidence=roles.confidence,
        language=transcript.language,
        language_probability=transcript.language_probability,
        high_band_db=estimate_high_band_db(samples, diarization),
        rt60_s=room.rt60_s,
        early_drop_db=room.early_drop_db,
        modulation_ratio_db=modulation_ratio_db(samples),
        expected_wer=expected_wer(transcript),
    )
    return SessionQuality(**{**q.__dict__, "flags": quality_flags(q, duration_s=duration_s, options=options)})
