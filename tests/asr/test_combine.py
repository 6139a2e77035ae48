"""System combination: ROVER voting on hand-built hypotheses, per-turn windows, and jfk through all three systems.

The integration test runs Whisper greedy, beam 5 and Moonshine on jfk.flac (../shared) and combines them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pipeline.asr.combine import (
    CombinedTranscriber,
    Hypothesis,
    RoverOptions,
    align,
    combine_transcripts,
    combine_words,
    rover_parts,
    word_key,
)
from pipeline.asr.per_turn import turn_windows
from pipeline.asr.transcribe import TranscribeOptions, load_transcriber
from pipeline.errors import ConfigError
from pipeline.types import SAMPLE_RATE_HZ, SpeakerTurn, Transcript, Word

SHARED = Path(__file__).resolve().parents[3] / "shared"
JFK_TEXT = "And so my fellow Americans, ask not what your country can do for you, ask what you can do for your country."


def _hyp(text: str, probability: float = 0.9, *, start: float = 0.0, step: float = 0.5,
         confidence: float | None = None) -> Hypothesis:
    words = tuple(Word(round(start + k * step, 3), round(start + k * step + 0.4, 3), t, probability)
                  for k, t in enumerate(text.split()))
    return Hypothesis(words, confidence)


def _text(words) -> str:
    return " ".join(w.text for w in words)


def test_word_key_ignores_case_and_punctuation() -> None:
    assert word_key("Okay,") == "okay" and word_key("it's") == "it's" and word_key("Mm-hmm.") == "mmhmm"
    assert word_key("...") == "..."  # punctuation alone stays comparable with itself


def test_alignment_puts_each_hypothesis_word_in_a_slot_with_nulls_for_gaps() -> None:
    hyps = [_hyp("so how are you"), _hyp("so how you"), _hyp("so how are you today")]
    slots = align(hyps)
    assert slots == [[0, 0, 0], [1, 1, 1], [2, None, 2], [3, 2, 3], [None, None, 4]]


def test_substitution_goes_to_the_majority_and_confidence_breaks_a_split() -> None:
    majority = combine_words([_hyp("I feel bad", 0.6), _hyp("I fell bad", 0.9), _hyp("I feel bad", 0.6)])
    assert _text(majority) == "I feel bad"  # 2 of 3 votes at 0.6 beat 1 vote at 0.9 (alpha 0.5)
    split = combine_words([_hyp("I feel bad", 0.4), _hyp("I fell bad", 0.95)])
    assert _text(split) == "I fell bad"  # one vote each: the more confident word wins


def test_a_deletion_wins_when_the_others_leave_the_slot_empty() -> None:
    inserted = _hyp("yeah I think so", 0.3)
    plain = [_hyp("I think so", 0.9, start=0.5), _hyp("I think so", 0.9, start=0.5)]
    assert _text(combine_words([inserted, *plain])) == "I think so"
    # and loses to a confident word when alpha weighs confidence only
    assert _text(combine_words([_hyp("yeah I think so", 0.95), *plain],
                               RoverOptions(alpha=0.0, null_confidence=0.5))) == "yeah I think so"


def test_a_fixed_confidence_replaces_a_systems_word_probabilities() -> None:
    whisper = _hyp("the cat sat", 0.7)
    moonshine = _hyp("the hat sat", 0.0, confidence=0.9)  # its own probabilities ignored
    assert _text(combine_words([whisper, moonshine])) == "the hat sat"
    low = Hypothesis(moonshine.words, 0.2)
    assert _text(combine_words([whisper, low])) == "the cat sat"


def test_the_winning_word_keeps_its_own_text_times_and_probability() -> None:
    greedy = Hypothesis((Word(1.0, 1.3, "Okay,", 0.5), Word(1.4, 1.8, "so", 0.9)))
    beam = Hypothesis((Word(1.02, 1.31, "okay.", 0.8), Word(1.42, 1.79, "so", 0.95)))
    out = combine_words([greedy, beam])
    assert out == (Word(1.02, 1.31, "okay.", 0.8), Word(1.42, 1.79, "so", 0.95))


def test_empty_hypotheses() -> None:
    assert combine_words([]) == ()
    assert combine_words([Hypothesis(()), Hypothesis(())]) == ()
    only = _hyp("hello there", 0.9)
    assert combine_words([Hypothesis(()), only]) == only.words  # confident words beat one null vote
    weak = _hyp("hello there", 0.1)
    assert combine_words([Hypothesis(()), Hypothesis(()), weak]) == ()  # two systems heard nothing


def test_rover_options_are_checked() -> None:
    with pytest.raises(ValueError, match="alpha"):
        RoverOptions(alpha=1.5)
    with pytest.raises(ValueError, match="moonshine_confidence"):
        RoverOptions(moonshine_confidence=True)


def test_rover_parts_are_beam_greedy_moonshine_and_the_backend_is_registered() -> None:
    parts = rover_parts(TranscribeOptions(backend="rover", cpu_threads=1), RoverOptions(moonshine_confidence=0.7))
    assert [(o.backend, o.beam_size, o.cpu_threads, c) for o, c in parts] == [
        ("faster-whisper", 5, 1, None), ("faster-whisper", 1, 1, None), ("moonshine", 1, 1, 0.7)]
    with pytest.raises(ConfigError, match="batch_size"):
        TranscribeOptions(backend="rover", batch_size=8)


def test_combined_transcript_is_tidy_and_names_its_models() -> None:
    a = Transcript((Word(0.0, 0.5, "hi", 0.9), Word(0.4, 0.9, "there", 0.9)), "en", 1.0, "faster-whisper",
                   "whisper-base", segments=2, segments_dropped=1)
    b = Transcript((Word(0.0, 0.5, "hi", 0.9),), "en", 1.0, "moonshine", "moonshine-base", segments=1)
    out = combine_transcripts([a, b], [None, 0.5], duration_s=0.8)
    assert out.backend == "rover" and out.model_name == "whisper-base+moonshine-base"
    assert (out.segments, out.segments_dropped) == (3, 1)
    assert [(w.text, w.start_s, w.end_s) for w in out.words] == [("hi", 0.0, 0.5), ("there", 0.5, 0.8)]


class _Fake:
    def __init__(self, words: tuple[Word, ...], model_name: str) -> None:
        self.words, self.model_name, self.name = words, model_name, "fake"

    def transcribe(self, samples: np.ndarray, *, progress=None) -> Transcript:
        if progress is not None:
            progress(1.0)
        return Transcript(self.words, "en", 1.0, self.name, self.model_name)


def test_combined_transcriber_runs_each_part_and_reports_progress() -> None:
    seen: list[float] = []
    parts = [(_Fake(_hyp("a b c").words, "m1"), None), (_Fake(_hyp("a x c").words, "m2"), 0.2)]
    out = CombinedTranscriber(parts).transcribe(np.zeros(SAMPLE_RATE_HZ * 2, np.float32),
                                                                  progress=seen.append)
    assert _text(out.words) == "a b c" and seen == [0.5, 1.0]


# --------------------------------------------------------------------------- per-turn windows


def _turns(*spans: tuple[float, float, str]) -> list[SpeakerTurn]:
    return [SpeakerTurn(a, b, s) for a, b, s in spans]


def test_turn_windows_drop_nested_turns_cut_overlaps_and_pad_into_silence() -> None:
    turns = _turns((1.0, 6.0, "A"), (2.0, 3.0, "B"), (5.5, 9.0, "B"), (12.0, 16.0, "A"))
    assert turn_windows(turns, duration_s=20.0) == [(0.8, 5.75), (5.75, 9.2), (11.8, 16.2)]


def test_turn_windows_merge_short_turns_into_the_nearer_neighbour_within_thirty_seconds() -> None:
    turns = _turns((0.0, 5.0, "A"), (5.3, 6.0, "B"), (9.0, 14.0, "A"), (14.5, 44.0, "B"), (44.2, 45.0, "A"))
    windows = turn_windows(turns, duration_s=50.0)
    assert windows[0] == (0.0, 6.2)  # the 0.7 s turn joined the turn 0.3 s before it
    assert windows[-1] == (44.1, 45.2)  # short, but joining the 29.5 s turn would pass 30 s
    assert turn_windows([], duration_s=10.0) == []
    assert all(b - a >= 2.0 for a, b in windows[:-1])


# --------------------------------------------------------------------------- integration


@pytest.mark.integration
def test_jfk_through_greedy_beam_moonshine_and_their_combination(jfk: np.ndarray) -> None:
    from evaluation.metrics import word_error_rate
    from models.store import require

    try:
        ct2_dir, moonshine_dir = require("whisper-base-ct2"), require("moonshine-base-ort")
    except Exception as e:  # noqa: BLE001 - any missing or unverified model skips this integration test
        pytest.skip(f"models not available: {e}")
    rover = load_transcriber(ct2_dir=ct2_dir, openai_checkpoint=None, moonshine_dir=moonshine_dir,
                             options=TranscribeOptions(backend="rover", cpu_threads=2))
    assert isinstance(rover, CombinedTranscriber)
    parts = [part.transcribe(jfk) for part, _ in rover.parts]
    assert [p.backend for p in parts] == ["faster-whisper", "faster-whisper", "moonshine"]
    for p in parts:
        assert word_error_rate(JFK_TEXT, _text(p.words)) <= 0.1
    out = rover.transcribe(jfk)
    assert word_error_rate(JFK_TEXT, _text(out.words)) == 0.0
    assert out.backend == "rover" and out.model_name == "whisper-base+moonshine-base"
    starts = [w.start_s for w in out.words]
    assert starts == sorted(starts) and out.words[-1].end_s <= jfk.size / SAMPLE_RATE_HZ
    by_key = {(word_key(w.text), w.start_s, w.end_s) for p in parts for w in p.words}
    assert all((word_key(w.text), w.start_s, w.end_s) in by_key for w in out.words)  # times from a part


@pytest.fixture(scope="module")
def jfk() -> np.ndarray:
    soxr = pytest.importorskip("soxr")
    import soundfile as sf

    path = SHARED / "data" / "audio" / "jfk.flac"
    if not path.is_file():
        pytest.skip(f"{path} not available (../shared is for development only)")
    samples, rate = sf.read(path, dtype="float32", always_2d=True)
    return soxr.resample(samples.mean(axis=1), rate, SAMPLE_RATE_HZ).astype(np.float32)


class _FakeWhisper:
    """Records each call's prompt and audio length; returns one segment with one word per call."""

    def __init__(self) -> None:
        self.calls: list[tuple[str | None, float]] = []

    def transcribe(self, audio, **kwargs):
        from types import SimpleNamespace

        k = len(self.calls)
        self.calls.append((kwargs["initial_prompt"], audio.size / SAMPLE_RATE_HZ))
        word = SimpleNamespace(start=0.1, end=0.5, word=f" w{k}", probability=0.9)
        ratio = 3.0 if k == 2 else 1.0  # the third window is a repetition loop
        return iter([SimpleNamespace(text=f" w{k}.", compression_ratio=ratio, words=[word])]), None


def test_turn_transcriber_prompts_each_window_with_the_previous_text_and_offsets_words() -> None:
    from pipeline.asr.per_turn import TurnTranscriber

    fake = _FakeWhisper()
    turns = _turns((0.0, 4.0, "A"), (5.0, 9.0, "B"), (10.0, 14.0, "A"), (15.0, 19.0, "B"))
    opts = TranscribeOptions()
    out = TurnTranscriber(fake, model_name="whisper-base", options=opts).transcribe(
        np.zeros(20 * SAMPLE_RATE_HZ, np.float32), turns=turns)
    assert [p for p, _ in fake.calls] == [None, "w0.", "w1.", None]  # a dropped window prompts nothing
    assert [(w.text, w.start_s) for w in out.words] == [("w0", 0.1), ("w1", 4.9), ("w3", 14.9)]
    assert (out.segments, out.segments_dropped) == (4, 1)
    fake2 = _FakeWhisper()
    TurnTranscriber(fake2, model_name="m", options=opts, prompt=False).transcribe(
        np.zeros(20 * SAMPLE_RATE_HZ, np.float32), turns=turns)
    assert [p for p, _ in fake2.calls] == [None] * 4
