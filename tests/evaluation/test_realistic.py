"""Degradations of evaluation/realistic.py on seeded signals: SNR, RT60, codecs, AGC, timelines with overlaps."""

from __future__ import annotations

import numpy as np
import pytest

from evaluation import realistic as rl
from evaluation.synthetic import TruthUtterance, silences_and_overlaps

SR = 16_000


def _speechlike(seconds: float, seed: int = 0) -> np.ndarray:
    """Bursts of modulated harmonic tone (0.4-1.2 s) separated by silences: a stand-in for speech."""
    rng = np.random.default_rng(seed)
    n = int(seconds * SR)
    out = np.zeros(n)
    at = int(0.3 * SR)
    while at < n - SR:
        length = int(rng.uniform(0.4, 1.2) * SR)
        t = np.arange(length) / SR
        f0 = rng.uniform(100, 220)
        burst = sum(np.sin(2 * np.pi * f0 * k * t) / k for k in range(1, 6)) * np.hanning(length)
        out[at : at + length] = 0.1 * burst
        at += length + int(rng.uniform(0.1, 0.6) * SR)
    return out


@pytest.mark.parametrize("snr_db", [5.0, 10.0, 20.0])
@pytest.mark.parametrize("kind", ["hvac", "white"])
def test_mix_at_snr_achieves_the_asked_snr_within_half_a_db(snr_db: float, kind: str) -> None:
    speech = _speechlike(6.0)
    rng = np.random.default_rng(1)
    noise = rl.hvac_noise(len(speech), SR, rng) if kind == "hvac" else rng.standard_normal(len(speech))
    mix, scaled = rl.mix_at_snr(speech, noise, snr_db, SR)
    assert abs(rl.measure_snr_db(speech, scaled, SR) - snr_db) < 0.5
    assert np.allclose(mix - scaled, speech)


def test_noises_are_seeded_unit_rms_and_babble_loops_its_streams() -> None:
    a = rl.hvac_noise(SR, SR, np.random.default_rng(3))
    b = rl.hvac_noise(SR, SR, np.random.default_rng(3))
    assert np.array_equal(a, b) and abs(np.sqrt(np.mean(a**2)) - 1) < 1e-6
    babble = rl.babble_noise([_speechlike(2.0, 1), _speechlike(3.0, 2)], 5 * SR, np.random.default_rng(0))
    assert len(babble) == 5 * SR and abs(np.sqrt(np.mean(babble**2)) - 1) < 1e-6
    bursts, events = rl.transient_noise(60 * SR, SR, np.random.default_rng(0), per_minute=6.0, peak=0.5)
    assert events and np.max(np.abs(bursts)) <= 0.5 + 1e-9
    assert {e.kind for e in events} <= {"click", "door"}


def test_room_rt60_is_roughly_as_asked_and_reverb_keeps_the_direct_sound_in_place() -> None:
    rirs, measured = rl.room_impulse_responses((4.0, 3.5, 2.7), 0.4, [1.0, 2.0], sr=SR)
    assert len(rirs) == 2
    assert 0.3 <= measured <= 0.55
    # the farther source arrives weaker
    assert np.max(np.abs(rirs[1])) < np.max(np.abs(rirs[0]))
    click = np.zeros(SR)
    click[4000] = 1.0
    wet = rl.reverberate(click, rirs[0])
    assert len(wet) == SR and int(np.argmax(np.abs(wet))) == 4000
    with pytest.raises(ValueError, match="does not fit"):
        rl.room_impulse_responses((3.0, 3.0, 2.5), 0.4, [5.0], sr=SR)


def _lag(x: np.ndarray, y: np.ndarray, max_lag: int = 400) -> int:
    c = [float(np.dot(x[SR : 3 * SR], y[SR + k : 3 * SR + k])) for k in range(-max_lag, max_lag + 1)]
    return int(np.argmax(c)) - max_lag


@pytest.mark.parametrize("codec", ["amr_nb", "mulaw"])
def test_telephone_keeps_length_rate_and_timing_and_removes_the_high_band(codec: str) -> None:
    x = _speechlike(4.0, 5)
    x = x + 0.02 * np.sin(2 * np.pi * 6000 * np.arange(len(x)) / SR)  # energy above the phone band
    y = rl.telephone(x, SR, codec=codec)
    assert y.shape == x.shape and np.all(np.isfinite(y))
    assert abs(_lag(x, y)) <= 2
    spec = np.abs(np.fft.rfft(y))
    freqs = np.fft.rfftfreq(len(y), 1 / SR)
    assert spec[(freqs > 4500)].max() < 0.01 * spec[(freqs > 200) & (freqs < 3400)].max()


@pytest.mark.parametrize(("codec", "bit_rate"), [("mp3", 16000), ("opus", 12000)])
def test_lossy_codecs_keep_length_and_timing(codec: str, bit_rate: int) -> None:
    x = _speechlike(4.0, 6)
    y = rl.lossy_codec(x, SR, codec=codec, bit_rate=bit_rate)
    assert y.shape == x.shape
    assert abs(_lag(x, y)) <= 2
    assert np.corrcoef(x, y)[0, 1] > 0.8


def test_agc_lifts_quiet_and_lowers_loud_passages() -> None:
    t = np.arange(4 * SR) / SR
    x = np.sin(2 * np.pi * 200 * t) * np.where(t < 2, 0.01, 0.5)
    y = rl.agc(x, SR, target_dbfs=-20.0)
    rms = lambda a: 20 * np.log10(np.sqrt(np.mean(a**2)))  # noqa: E731
    assert rms(y[SR : 2 * SR]) > rms(x[SR : 2 * SR]) + 10
    assert rms(y[3 * SR :]) < rms(x[3 * SR :]) - 3
    assert np.max(np.abs(y)) <= 0.99


def _dialogue(n: int = 24) -> list[rl.Clip]:
    rng = np.random.default_rng(0)
    return [rl.Clip("therapist" if i % 2 == 0 else "client", f"line {i}", int(rng.uniform(2.0, 6.0) * SR))
            for i in range(n)]


@pytest.mark.parametrize("target", [0.05, 0.10, 0.15])
def test_timeline_overlaps_reach_the_target_and_are_in_the_truth(target: float) -> None:
    bcs = {r: [rl.Clip(r, "yeah", int(0.35 * SR)), rl.Clip(r, "right", int(0.4 * SR))] for r in ("therapist", "client")}
    placements = rl.plan_timeline(_dialogue(), bcs, sr=SR, seed=4, target_overlap_share=target)
    assert placements == rl.plan_timeline(_dialogue(), bcs, sr=SR, seed=4, target_overlap_share=target)
    share = rl.overlap_share(placements, SR)
    assert target - 0.03 <= share <= target + 0.03
    tags = [t for p in placements for t in p.tags]
    assert "backchannel" in tags and "interruption" in tags
    assert sum("long_silence_before" in p.tags for p in placements) == 4
    # every backchannel lies inside a turn of the other speaker
    for bc in (p for p in placements if "backchannel" in p.tags):
        assert any(h.role != bc.role and h.start_sample < bc.start_sample and bc.end_sample < h.end_sample
                   for h in placements)
    # the truth built from the placements holds the overlaps, in the amount measured
    utts = [TruthUtterance(k, p.role, "v", p.start_sample / SR, p.end_sample / SR, p.start_sample, p.end_sample,
                           p.text, p.tags) for k, p in enumerate(placements)]
    _, overlaps = silences_and_overlaps(utts, SR)
    speech = rl.speech_union_s([(u.start_s, u.end_s) for u in utts])
    assert overlaps and abs(sum(o.duration_s for o in overlaps) / speech - share) < 0.01


def test_place_builds_a_track_per_speaker() -> None:
    placements = rl.plan_timeline(_dialogue(6), {}, sr=SR, seed=0, target_overlap_share=0.0, n_long_silences=1,
                                  n_medium_gaps=0)
    clips = [np.full(p.n_samples, 0.1) for p in placements]
    n = max(p.end_sample for p in placements)
    track = rl.place(placements, clips, n)
    assert np.isclose(track.sum(), 0.1 * sum(p.n_samples for p in placements))
    assert rl.overlap_share(placements, SR) == 0.0
