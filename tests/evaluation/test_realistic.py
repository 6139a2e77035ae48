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


# --------------------------------------------------------------------------- speaker-attributed WER (meeteval)

REF = (rl.Segment("therapist", 0.0, 2.0, "How are you today?"), rl.Segment("client", 2.5, 4.0, "Fine, thanks."),
       rl.Segment("therapist", 4.5, 6.0, "Good."))


def _words(*spec: tuple[str, float, str]) -> list:
    return [rl.Segment(spk, t, t + 0.3, w) for spk, t, w in spec]


def _lower(text: str) -> str:
    return " ".join(w.strip(".,?!").lower() for w in text.split())


PERFECT = (("A", 0.1, "how"), ("A", 0.5, "are"), ("A", 0.9, "you"), ("A", 1.3, "today"), ("B", 2.6, "fine"),
           ("B", 3.0, "thanks"), ("A", 4.6, "good"))


def test_cpwer_and_tcpwer_are_zero_for_the_right_words_speakers_and_times():
    pytest.importorskip("meeteval")
    out = rl.speaker_attributed_wers(REF, _words(*PERFECT), normalise=_lower, role_of={"A": "therapist",
                                                                                        "B": "client"})
    assert (out["cpwer"], out["tcpwer"], out["cpwer_length"]) == (0.0, 0.0, 7)
    assert out["wer_by_speaker"] == {"client": {"wer": 0.0, "errors": 0, "length": 2},
                                     "therapist": {"wer": 0.0, "errors": 0, "length": 5}}


def test_a_word_given_to_the_wrong_speaker_costs_cpwer_a_deletion_and_an_insertion():
    pytest.importorskip("meeteval")
    swapped = list(PERFECT)
    swapped[5] = ("A", 3.0, "thanks")  # the client's word given to the therapist's label
    out = rl.speaker_attributed_wers(REF, _words(*swapped), normalise=_lower, role_of={"A": "therapist",
                                                                                       "B": "client"})
    assert out["cpwer_errors"] == 2 and out["tcpwer_errors"] == 2
    assert out["wer_by_speaker"]["client"] == {"wer": 0.5, "errors": 1, "length": 2}
    assert out["wer_by_speaker"]["therapist"]["errors"] == 1  # one insertion


def test_tcpwer_counts_a_right_word_at_the_wrong_time_cpwer_does_not():
    pytest.importorskip("meeteval")
    late = list(PERFECT)
    late[6] = ("A", 14.0, "good")  # 9.5 s after its utterance ended: outside the 5 s collar
    out = rl.speaker_attributed_wers(REF, _words(*late), normalise=_lower)
    assert out["cpwer"] == 0.0
    assert out["tcpwer_errors"] == 2


def test_speaker_labels_are_matched_by_the_best_permutation_and_roles_by_role_of():
    pytest.importorskip("meeteval")
    relabelled = [("X" if s == "A" else "Y", t, w) for s, t, w in PERFECT]
    out = rl.speaker_attributed_wers(REF, _words(*relabelled), normalise=_lower)
    assert out["cpwer"] == 0.0 and out["wer_by_speaker"]["client"]["wer"] == 0.0  # role_of from the assignment
    swapped_roles = rl.speaker_attributed_wers(REF, _words(*relabelled), normalise=_lower,
                                               role_of={"X": "client", "Y": "therapist"})
    assert swapped_roles["cpwer"] == 0.0  # cpWER does not care which label is which
    assert swapped_roles["wer_by_speaker"]["client"]["wer"] > 1.0  # the per-role WER does
