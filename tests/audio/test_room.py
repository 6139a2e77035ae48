"""Blind room estimates of pipeline/audio/room.py: reverberation time from speech decays, quality flag."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy.signal import fftconvolve

from pipeline.audio.room import RoomOptions, estimate_room, modulation_ratio_db
from pipeline.errors import ConfigError
from pipeline.types import SAMPLE_RATE_HZ

SR = 16_000


def _real_speech(seconds: float) -> np.ndarray:
    import soundfile as sf

    pyannote_audio = pytest.importorskip("pyannote.audio")
    x, _ = sf.read(Path(pyannote_audio.__file__).parent / "sample" / "sample.wav")
    return x[: int(seconds * SR)]


def _rir(rt60_s: float, seed: int = 1) -> np.ndarray:
    """A direct impulse and an exponentially decaying noise tail of RT60 ``rt60_s`` (twice the direct energy)."""
    rng = np.random.default_rng(seed)
    n = int(1.2 * rt60_s * SR)
    t = np.arange(n) / SR
    tail = rng.standard_normal(n) * 10 ** (-3 * t / rt60_s)
    tail[: int(0.005 * SR)] = 0.0
    tail *= np.sqrt(2.0 / np.sum(tail ** 2))
    tail[0] = 1.0
    return tail


def test_the_estimate_grows_with_the_room_s_reverberation_time_and_dry_speech_reads_low():
    dry = _real_speech(30.0)
    floor = np.random.default_rng(0).standard_normal(dry.size) * 10 ** (-55 / 20)
    est = {rt: estimate_room(fftconvolve(dry, _rir(rt))[: dry.size] + floor).rt60_s for rt in (0.3, 0.6, 0.9)}
    dry_est = estimate_room(dry + floor).rt60_s
    assert dry_est < 0.3
    assert dry_est < est[0.3] < est[0.6] < est[0.9], (dry_est, est)
    assert abs(est[0.9] - 0.9) < 0.3 and abs(est[0.3] - 0.3) < 0.3, est  # calibrated on other rooms


def test_too_little_speech_gives_no_estimate_rather_than_a_guess():
    assert estimate_room(np.zeros(SR * 5)).rt60_s is None
    assert estimate_room(np.zeros(100)).decays == 0
    with pytest.raises(ConfigError):
        RoomOptions(band_hz=(4000.0, 300.0))


def test_long_recordings_are_read_in_pieces_with_the_same_answer():
    dry = _real_speech(30.0)
    wet = fftconvolve(dry, _rir(0.8))[: dry.size]
    whole = estimate_room(wet).rt60_s
    pieces = estimate_room(np.tile(wet, 3), max_s=60.0).rt60_s
    assert pieces == pytest.approx(whole, abs=0.1)


def test_a_reverberant_recording_raises_the_reverberant_flag_with_what_not_to_trust():
    from pipeline.analysis.quality import QualityOptions, SessionQuality, quality_flags

    base = dict(speech_s=600.0, speech_share=0.9, snr_db=30.0, overlap_share=0.02, mean_word_probability=0.9,
                asr_segments=10, asr_segments_dropped=0, words_dropped_outside_speech=0,
                word_attribution_overlap=1.0, role_confidence=0.9, language="en", language_probability=1.0)
    assert quality_flags(SessionQuality(**base, rt60_s=0.5), duration_s=700) == ()
    assert quality_flags(SessionQuality(**base, rt60_s=None), duration_s=700) == ()
    (flag,) = quality_flags(SessionQuality(**base, rt60_s=0.8), duration_s=700)
    assert flag.code == "reverberant" and "0.8 s" in flag.message and "text markers" in flag.distrust
    with pytest.raises(ConfigError, match="max_rt60_s"):
        QualityOptions(max_rt60_s=-1.0)


def _simulated(dry: np.ndarray, room_m: tuple[float, float, float], rt60_s: float, distance_m: float) -> np.ndarray:
    """``dry`` in a pyroomacoustics shoebox at ``distance_m`` from the microphone, at -23 dBFS active level."""
    from evaluation import realistic as rl

    (rir,), _ = rl.room_impulse_responses(room_m, rt60_s, [distance_m], sr=SR)
    wet = rl.reverberate(dry, rir)
    return wet * 10 ** (-23 / 20) / np.sqrt(rl.active_power(wet, SR))


NEAR_ROOM = ((4.0, 3.5, 2.7), 0.4)  # the realistic bench's near room (simulated RT60 0.39 s)
FAR_ROOM = ((6.0, 5.0, 3.0), 0.8)  # its far room (0.77 s)


def test_simulated_rooms_of_two_reverberation_times_read_in_order():
    dry = _real_speech(30.0)
    floor = np.random.default_rng(0).standard_normal(dry.size) * 10 ** (-55 / 20)
    near = estimate_room(_simulated(dry, *NEAR_ROOM, 1.0) + floor).rt60_s
    far = estimate_room(_simulated(dry, *FAR_ROOM, 1.0) + floor).rt60_s
    assert estimate_room(dry + floor).rt60_s < 0.3 < near < far, (near, far)


@pytest.mark.parametrize("seed", [1, 2])
def test_steady_ventilation_noise_is_not_read_as_a_reverberant_room(seed):
    """HVAC noise at 15 dB in the near room: the decays run into the noise; read raw they looked slow (0.65 s)."""
    from evaluation import realistic as rl
    from pipeline.analysis.quality import QualityOptions

    dry = _real_speech(30.0)
    floor = np.random.default_rng(0).standard_normal(dry.size) * 10 ** (-55 / 20)
    wet = _simulated(dry, *NEAR_ROOM, 1.5)
    noisy, _ = rl.mix_at_snr(wet, rl.hvac_noise(wet.size, SR, np.random.default_rng(seed)), 15.0, SR)
    quiet_est, noisy_est = estimate_room(wet + floor), estimate_room(noisy + floor)
    assert noisy_est.decays >= 10 and noisy_est.rt60_s is not None
    assert noisy_est.rt60_s < QualityOptions().max_rt60_s, noisy_est
    assert abs(noisy_est.rt60_s - quiet_est.rt60_s) < 0.1, (quiet_est, noisy_est)


def test_the_modulation_ratio_falls_with_reverberation_and_needs_wideband_audio():
    from pipeline.audio.room import modulation_ratio_db

    dry = _real_speech(30.0)
    dry_db = modulation_ratio_db(dry)
    near_db = modulation_ratio_db(_simulated(dry, *NEAR_ROOM, 1.0))
    far_db = modulation_ratio_db(_simulated(dry, *FAR_ROOM, 3.5))
    assert dry_db > near_db > far_db, (dry_db, near_db, far_db)
    assert modulation_ratio_db(dry[: SR]) is None  # under 2 s
    assert modulation_ratio_db(dry[::2], sample_rate_hz=8000) is None
    assert modulation_ratio_db(np.zeros(SR * 5)) is None  # silence: nothing to compare
    assert modulation_ratio_db(np.tile(dry, 6), max_s=60.0) == pytest.approx(modulation_ratio_db(dry), abs=1.0)


def test_noise_percentile_must_be_a_percentile():
    with pytest.raises(ConfigError, match="noise_percentile"):
        RoomOptions(noise_percentile=150.0)


def test_modulation_ratio_of_a_long_recording_copies_only_the_pieces_it_reads():
    """Memory stays bounded: the 120 s read from a 40-minute recording, never a float64 copy of all of it.

    Filtering the 120 s takes about 77 MB whatever the length; a float64 copy of the input alone is twice its size.
    """
    import tracemalloc

    rng = np.random.default_rng(3)
    long = (0.05 * rng.standard_normal(40 * 60 * SAMPLE_RATE_HZ)).astype(np.float32)  # 154 MB
    tracemalloc.start()
    try:
        assert modulation_ratio_db(long) is not None
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < long.nbytes * 3 / 4, peak
