"""Plausibility gates with the real models: noise, a few seconds of speech, silence (nothing invented is stored)."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
import soxr
from conftest import shared_path

from pipeline.analysis.session import SessionMeta
from pipeline.engine import sequence
from pipeline.engine.runtime import PipelineOptions
from pipeline.privacy.consent import parse_consent

RATE = 16_000
META = SessionMeta("g1", "c1", "t1")
CONSENT = parse_consent({"session_id": "g1", "client_id": "c1", "scope": "research", "consented_on": "2026-01-01",
                         "consented_by": ["client"]},
                        source="test")


def _compute(path):
    return sequence.compute_session(path, META, CONSENT, options=PipelineOptions())


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
    c = _compute(path)
    a = c.analysis
    assert a is not None, c.outcome
    codes = {f.code for f in a.quality.flags}
    assert "low_speech" in codes
    # every stored word lies in (or within a second of) the 11 s of speech; Whisper's loops on the noise are gone
    assert all(39.0 <= w.start_s and w.end_s <= 52.5 for w in a.words), [(w.start_s, w.text) for w in a.words]
    assert a.quality.asr_segments_dropped > 0 and "country" in " ".join(w.text for w in a.words)
