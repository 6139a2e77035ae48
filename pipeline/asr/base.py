"""What every speech recogniser shares: sample validation, word clean-up and the shape of a transcription.

A backend subclasses :class:`Recogniser` and supplies only :meth:`Recogniser._recognise` (the language and the
raw words of non-empty, validated samples); :meth:`Recogniser.transcribe` validates the samples, answers empty
audio without running a model, turns a decoder's ``RuntimeError``/``ValueError`` into a :class:`StageError`,
reports the end to the progress hook and tidies the words (:func:`tidy_words`) into a
:class:`~pipeline.types.Transcript`. The Whisper backends share more (the piece and window loop:
:class:`pipeline.asr.transcribe.WhisperTranscriber`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

from pipeline.errors import StageError
from pipeline.types import SAMPLE_RATE_HZ, Transcript, Word

__all__ = ["MIN_WORD_DURATION_S", "SILENCE_GUARD_S", "SILENT_PEAK", "Heard", "ProgressHook", "Recogniser",
           "checked_samples", "tidy_words", "words_heard"]

ProgressHook = Callable[[float], None]
"""Called with the fraction (0 to 1) of the audio transcribed so far."""

STAGE = "transcribe"
UNDETERMINED_LANGUAGE = "und"  # ISO 639-2 code for "undetermined"
MIN_WORD_DURATION_S = 0.02  # Whisper's timestamp resolution
TIME_DECIMALS = 3  # word times are rounded to milliseconds
SILENT_PEAK = 10 ** (-90 / 20)
"""-90 dBFS, below the 16-bit quantisation step (-96 dBFS plus dither): a span with no sample above it is digital
silence, in which no word can have been heard."""
SILENCE_GUARD_S = 0.1  # a word's span is widened by this much on each side before it is judged silent


def tidy_words(words: Iterable[Word], *, duration_s: float) -> tuple[Word, ...]:
    """Clean raw ASR words into a monotonic, in-bounds sequence.

    Rules, applied in decoding order (the order of the input, which is kept):

    1. Text is stripped of surrounding white space; words left empty are dropped.
    2. Times are clipped to ``[0, duration_s]``; a word starts no earlier than the previous word ends.
    3. A word with ``end_s <= start_s`` is given ``MIN_WORD_DURATION_S`` (capped at ``duration_s``);
       if no time is left for it (at the very end of the audio) it is dropped.
    4. Probabilities are clipped to ``[0, 1]``; times are rounded to milliseconds.

    Parameters
    ----------
    words : iterable of Word
        Raw words as the backend produced them (text may have a leading space).
    duration_s : float
        Length of the audio in seconds.

    Returns
    -------
    tuple of Word
        With ``0 <= start_s < end_s <= next.start_s`` and ``end_s <= duration_s`` for every word.
    """
    tidy: list[Word] = []
    previous_end_s = 0.0
    for word in words:
        text = word.text.strip()
        if not text:
            continue
        start_s = min(max(word.start_s, previous_end_s, 0.0), duration_s)
        end_s = min(max(word.end_s, start_s), duration_s)
        if end_s <= start_s:
            end_s = min(start_s + MIN_WORD_DURATION_S, duration_s)
        start_s, end_s = round(start_s, TIME_DECIMALS), round(end_s, TIME_DECIMALS)
        if end_s <= start_s:
            continue
        probability = min(max(float(word.probability), 0.0), 1.0)
        tidy.append(Word(start_s=start_s, end_s=end_s, text=text, probability=probability))
        previous_end_s = end_s
    return tuple(tidy)


def words_heard(words: Iterable[Word], samples: np.ndarray, *, sample_rate_hz: int = SAMPLE_RATE_HZ,
                silent_peak: float = SILENT_PEAK, guard_s: float = SILENCE_GUARD_S) -> tuple[tuple[Word, ...], int]:
    """The words spoken over some signal, and how many were dropped over digital silence.

    A word whose span, widened by ``guard_s`` on each side (Whisper's word times are approximate), holds no
    sample louder than ``silent_peak`` lies in digital silence: a decoder that emits one there (Whisper with a
    beam of 5 says "You" over 3 s of zeros) invented it. Only digital silence is judged here; words over noise
    but outside detected speech are dropped later, against the diarization
    (:func:`pipeline.analysis.quality.words_in_speech`).

    Parameters
    ----------
    words : iterable of Word
    samples : np.ndarray, shape (n,)
        The recording the words were recognised in (float, full scale 1.0).
    sample_rate_hz : int
    silent_peak : float
        The linear peak below which a span counts as silent (default -90 dBFS).
    guard_s : float

    Returns
    -------
    (kept words, number dropped)
    """
    kept: list[Word] = []
    dropped = 0
    n = samples.shape[0]
    for word in words:
        lo = max(0, int((word.start_s - guard_s) * sample_rate_hz))
        hi = min(n, int(np.ceil((word.end_s + guard_s) * sample_rate_hz)))
        if hi > lo and float(np.max(np.abs(samples[lo:hi]))) < silent_peak:
            dropped += 1
        else:
            kept.append(word)
    return tuple(kept), dropped


def checked_samples(samples: np.ndarray) -> np.ndarray:
    """Validate samples; return them as a contiguous float32 1-D array (a copy only when needed)."""
    if not isinstance(samples, np.ndarray) or samples.ndim != 1:
        shape = getattr(samples, "shape", type(samples).__name__)
        raise StageError(STAGE, f"samples must be a 1-D numpy array of mono 16 kHz audio, got {shape}")
    if not np.issubdtype(samples.dtype, np.floating):
        raise StageError(STAGE, f"samples must be floating point in [-1, 1], got dtype {samples.dtype}")
    samples = np.ascontiguousarray(samples, dtype=np.float32)
    if not np.all(np.isfinite(samples)):
        raise StageError(STAGE, "samples contain NaN or infinite values")
    return samples


@dataclass
class Heard:
    """What a backend recognised in one recording, before the words are tidied."""

    language: str
    language_probability: float
    words: list[Word]
    segments: int = 0
    segments_dropped: int = 0


class Recogniser:
    """Base of the transcribers: one :meth:`transcribe` around a backend's :meth:`_recognise`.

    Subclasses set ``name`` and ``model_name`` and keep their :class:`TranscribeOptions` in ``options``.
    """

    name: str
    model_name: str
    options: Any
    label = ""
    """How a decoding failure names the backend (``name`` when empty)."""

    def transcribe(self, samples: np.ndarray, *, progress: ProgressHook | None = None) -> Transcript:
        """Recognise words in float32 mono 16 kHz ``samples`` (shape (n,)).

        Empty audio gives no words without running the model. ``progress`` is called as the backend goes (where
        it can tell) and with 1.0 at the end.

        Raises
        ------
        StageError
            If the samples are malformed or decoding fails.
        """
        samples = checked_samples(samples)
        if samples.size == 0:
            return self._nothing_heard()
        duration_s = samples.size / SAMPLE_RATE_HZ
        try:
            heard = self._recognise(samples, progress)
        except (RuntimeError, ValueError) as e:
            raise StageError(STAGE, f"{self.label or self.name} failed on {duration_s:.1f} s of audio: {e}") from e
        if progress is not None:
            progress(1.0)
        words, silent = words_heard(tidy_words(heard.words, duration_s=duration_s), samples)
        return Transcript(
            words=words,
            language=heard.language,
            language_probability=heard.language_probability,
            backend=self.name,
            model_name=self.model_name,
            segments=heard.segments,
            segments_dropped=heard.segments_dropped,
            words_dropped=silent,
        )

    def _nothing_heard(self) -> Transcript:
        """The transcript of empty audio: the configured language (probability 1), else undetermined."""
        language = self.options.language
        return Transcript(
            words=(),
            language=language or UNDETERMINED_LANGUAGE,
            language_probability=1.0 if language else 0.0,
            backend=self.name,
            model_name=self.model_name,
        )

    def _recognise(self, samples: np.ndarray, progress: ProgressHook | None) -> Heard:
        """The language and raw words of validated, non-empty ``samples``; may raise RuntimeError/ValueError."""
        raise NotImplementedError
