"""The base every transcriber shares (pipeline.asr.base.Recogniser), on a stand-in backend."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.asr.base import SILENT_PEAK, Heard, Recogniser, words_heard
from pipeline.asr.moonshine import MoonshineTranscriber
from pipeline.asr.transcribe import FasterWhisperTranscriber, OpenAIWhisperTranscriber, TranscribeOptions
from pipeline.errors import StageError
from pipeline.types import SAMPLE_RATE_HZ, Word


class _Echo(Recogniser):
    """A backend that 'hears' fixed raw words (untidy: leading spaces, an empty word, a zero-length word)."""

    name = "echo"
    model_name = "echo-1"

    def __init__(self, options: TranscribeOptions, fail: Exception | None = None) -> None:
        self.options, self.fail, self.calls = options, fail, 0

    def _recognise(self, samples, progress):
        self.calls += 1
        if self.fail is not None:
            raise self.fail
        if progress is not None:
            progress(0.5)
        return Heard("de", 0.8, [Word(0.1, 0.4, " Hallo", 0.9), Word(0.4, 0.5, "  ", 0.9),
                                 Word(0.6, 0.6, " du", 1.5)], segments=2, segments_dropped=1)


def _hiss(seconds: float, level: float = 0.01) -> np.ndarray:
    return (np.random.default_rng(0).standard_normal(int(seconds * SAMPLE_RATE_HZ)) * level).astype(np.float32)


def test_the_base_tidies_the_words_and_makes_the_transcript() -> None:
    seen: list[float] = []
    transcript = _Echo(TranscribeOptions()).transcribe(_hiss(1.0), progress=seen.append)
    assert transcript.words == (Word(0.1, 0.4, "Hallo", 0.9), Word(0.6, 0.62, "du", 1.0))
    assert transcript.words_dropped == 0
    assert (transcript.language, transcript.language_probability) == ("de", 0.8)
    assert (transcript.backend, transcript.model_name, transcript.segments, transcript.segments_dropped) == (
        "echo", "echo-1", 2, 1)
    assert seen == [0.5, 1.0]


def test_empty_audio_is_answered_without_the_backend() -> None:
    echo = _Echo(TranscribeOptions(language=None))
    transcript = echo.transcribe(np.zeros(0, np.float32))
    assert (transcript.words, transcript.language, transcript.language_probability, echo.calls) == ((), "und", 0.0, 0)


@pytest.mark.parametrize("error", [RuntimeError("out of memory"), ValueError("bad shape")])
def test_a_decoding_failure_is_a_stage_error_naming_the_backend_and_the_length(error: Exception) -> None:
    with pytest.raises(StageError, match=r"echo failed on 2\.0 s of audio"):
        _Echo(TranscribeOptions(), fail=error).transcribe(np.zeros(2 * SAMPLE_RATE_HZ, np.float32))


def test_every_backend_is_a_recogniser() -> None:
    assert all(issubclass(c, Recogniser) for c in (FasterWhisperTranscriber, OpenAIWhisperTranscriber,
                                                    MoonshineTranscriber))


def test_moonshine_checks_samples_and_names_itself_in_a_failure() -> None:
    class Encoder:
        def run(self, *args, **kwargs):
            raise RuntimeError("onnx broke")

    moonshine = MoonshineTranscriber(Encoder(), None, None, None, options=TranscribeOptions(backend="moonshine"))
    with pytest.raises(StageError, match="1-D numpy array"):
        moonshine.transcribe(np.zeros((2, 10), np.float32))
    empty = moonshine.transcribe(np.zeros(0, np.float32))
    assert (empty.words, empty.language, empty.backend) == ((), "en", "moonshine")
    t = np.arange(3 * SAMPLE_RATE_HZ) / SAMPLE_RATE_HZ
    speech_like = (0.5 * np.sin(2 * np.pi * 220 * t) * (np.sin(2 * np.pi * 3 * t) > 0)).astype(np.float32)
    with pytest.raises(StageError, match="Moonshine failed on 3.0 s of audio: onnx broke"):
        moonshine.transcribe(speech_like)


def test_words_in_digital_silence_are_dropped_and_counted() -> None:
    """Whisper with a beam of 5 says "You" over zeros; a word with no sample above -90 dBFS around it goes."""
    samples = _hiss(1.0)
    samples[int(0.45 * SAMPLE_RATE_HZ):] = 0.0  # "Hallo" (0.1-0.4 s) over hiss, "du" (0.6 s) over zeros
    transcript = _Echo(TranscribeOptions()).transcribe(samples)
    assert transcript.words == (Word(0.1, 0.4, "Hallo", 0.9),)
    assert transcript.words_dropped == 1
    everything = _Echo(TranscribeOptions()).transcribe(np.zeros(SAMPLE_RATE_HZ, np.float32))
    assert (everything.words, everything.words_dropped) == ((), 2)


def test_a_word_is_judged_with_a_margin_and_quiet_speech_is_kept() -> None:
    samples = np.zeros(2 * SAMPLE_RATE_HZ, np.float32)
    samples[int(1.05 * SAMPLE_RATE_HZ)] = 0.5  # one sample 50 ms after the word: inside the 0.1 s margin
    samples[int(1.5 * SAMPLE_RATE_HZ):int(1.8 * SAMPLE_RATE_HZ)] = 2 * SILENT_PEAK  # very quiet, but a signal
    words = [Word(0.5, 1.0, "near", 0.9), Word(1.5, 1.8, "quiet", 0.9), Word(0.2, 0.3, "nothing", 0.9)]
    kept, dropped = words_heard(words, samples)
    assert [w.text for w in kept] == ["near", "quiet"] and dropped == 1
    kept, dropped = words_heard(words, samples, guard_s=0.0)
    assert [w.text for w in kept] == ["quiet"] and dropped == 2
