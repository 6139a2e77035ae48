"""Plausibility gates with the real models: what is not a two-person conversation stores nothing invented.

Noise, a few seconds of speech, silence; one voice, reversed speech, and a conversation that repeats its lines
(the renders need ``flite``).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import soundfile as sf
import soxr
from conftest import pyannote_sample, shared_path

from bench.bench_gates import MONOLOGUE, REPEATED, have_flite, render_lines
from pipeline.analysis.session import SessionMeta
from pipeline.engine import sequence
from pipeline.engine.runtime import PipelineOptions
from pipeline.privacy.consent import parse_consent

RATE = 16_000
META = SessionMeta("g1", "c1", "t1")
CONSENT = parse_consent({"session_id": "g1", "client_id": "c1", "scope": "research", "consented_on": "2026-01-01",
                         "consented_by": ["client"]},
                        source="test")


def _compute(path, meta=META):
    return sequence.compute_session(path, meta, CONSENT, options=PipelineOptions())


@pytest.mark.integration
def test_white_noise_fails_with_no_speech_and_stores_nothing(tmp_path):
    path = tmp_path / "noise.wav"
    sf.write(path, (0.05 * np.random.default_rng(0).standard_normal(RATE * 30)).astype(np.float32), RATE)
    c = _compute(path)
    assert c.analysis is None and c.outcome.state == "failed"
    assert c.outcome.error_code in ("no_speech", "no_recognised_speech") and c.outcome.stage == "analysis"


@pytest.mark.integration
def test_silence_fails_at_the_audio_stage(tmp_path):
    path = tmp_path / "silent.wav"
    sf.write(path, np.zeros(RATE * 20, dtype=np.float32), RATE)
    c = _compute(path)
    assert c.analysis is None and c.outcome.error_code == "audio_silent"


@pytest.mark.integration
def test_a_few_seconds_of_speech_in_noise_is_stored_flagged_without_invented_words(tmp_path):
    x, sr = sf.read(shared_path("data", "audio", "jfk.flac"), dtype="float32", always_2d=True)
    speech = soxr.resample(x.mean(axis=1), sr, RATE).astype(np.float32)
    audio = (0.003 * np.random.default_rng(1).standard_normal(RATE * 90)).astype(np.float32)
    audio[RATE * 40:RATE * 40 + speech.size] += speech
    path = tmp_path / "few.wav"
    sf.write(path, audio, RATE)
    assert _compute(path).outcome.error_code == "single_speaker"  # one voice, held to two speakers: not stored
    c = _compute(path, replace(META, num_speakers=1))  # one speaker asked for: processed
    a = c.analysis
    assert a is not None, c.outcome
    codes = {f.code for f in a.quality.flags}
    assert "low_speech" in codes
    # every stored word lies in (or within a second of) the 11 s of speech; Whisper's loops on the noise are gone
    assert all(39.0 <= w.start_s and w.end_s <= 52.5 for w in a.words), [(w.start_s, w.text) for w in a.words]
    # the noise windows Whisper loops on are re-decoded clip by clip (nothing left of the loops) or dropped
    assert len(a.words) <= 25 and "country" in " ".join(w.text for w in a.words)


def _flite_render(tmp_path, lines, name):
    if not have_flite():
        pytest.skip("flite is not installed (apt-get install flite)")
    path = tmp_path / f"{name}.wav"
    sf.write(path, render_lines(lines), RATE)
    return path


@pytest.mark.integration
def test_one_voice_is_refused_as_single_speaker_and_nothing_is_stored(tmp_path):
    # 26 s of one speaker: held to two speakers, the diarizer split it (talk share 42/58 %) and it was stored
    c = _compute(_flite_render(tmp_path, tuple(("slt", t) for t in MONOLOGUE[:4]), "monologue"))
    assert c.analysis is None and c.outcome.state == "failed", c.outcome
    assert (c.outcome.error_code, c.outcome.stage) == ("single_speaker", "analysis")


@pytest.mark.integration
@pytest.mark.parametrize("beam_size, error_code", [(5, "no_recognised_speech"), (1, "not_language")])
def test_reversed_speech_stores_no_words(tmp_path, beam_size, error_code):
    # pyannote's real two-speaker sample played backwards: greedy Whisper writes 66 fluent words (median p 0.21),
    # which the language gate refuses; with a beam of 5 (the default) Whisper writes none (2026-12-07)
    x, sr = sf.read(pyannote_sample(), dtype="float32")
    path = tmp_path / "reversed.wav"
    sf.write(path, x[::-1], sr)
    options = PipelineOptions()
    c = sequence.compute_session(path, META, CONSENT, options=replace(
        options, transcribe=replace(options.transcribe, beam_size=beam_size)))
    assert c.analysis is None and c.outcome.state == "failed", c.outcome
    assert (c.outcome.error_code, c.outcome.stage) == (error_code, "analysis")


@pytest.mark.integration
def test_a_conversation_repeating_its_lines_keeps_every_line(tmp_path):
    # 20 s, two lines said three times: the 30 s window compresses like a loop; it failed no_recognised_speech
    c = _compute(_flite_render(tmp_path, REPEATED, "repeated"))
    assert c.analysis is not None, c.outcome
    text = " ".join(w.text for w in c.analysis.words).lower()
    assert text.count("monday") == 3 and text.count("sister") == 3, text
    assert c.analysis.quality.asr_segments_dropped == 0
