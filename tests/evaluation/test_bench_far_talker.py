"""bench/bench_far_talker.py: the truth-turn split, the per-speaker measures, the scoring, and a clean exit."""

from __future__ import annotations

import numpy as np
import pytest

from bench import bench_far_talker as bft
from pipeline.audio.room import decays, envelope_db, free_decays

SR = 16_000


def test_the_dry_mix_is_split_by_turns_and_overlapped_samples_go_to_nobody():
    dry = np.arange(1, 101, dtype=float)
    utterances = [{"role": "therapist", "start_sample": 0, "end_sample": 60},
                  {"role": "client", "start_sample": 50, "end_sample": 90}]
    tracks, spans = bft.speaker_tracks(dry, utterances, sr=10)
    assert np.array_equal(tracks["therapist"][:50], dry[:50]) and not tracks["therapist"][50:].any()
    assert not tracks["client"][:60].any() and np.array_equal(tracks["client"][60:90], dry[60:90])
    assert not tracks["client"][90:].any()
    assert spans == {"therapist": [(0.0, 5.0)], "client": [(6.0, 9.0)]}


def test_a_backchannel_inside_a_turn_splits_the_turn_into_two_spans():
    utterances = [{"role": "therapist", "start_sample": 0, "end_sample": 100},
                  {"role": "client", "start_sample": 40, "end_sample": 50}]
    _, spans = bft.speaker_tracks(np.ones(100), utterances, sr=10)
    assert spans == {"therapist": [(0.0, 4.0), (5.0, 10.0)], "client": []}


def _bursts(seconds: float, rng: np.random.Generator) -> np.ndarray:
    """Noise bursts of 150 ms at a syllable rate, with gaps: a crude speech-like envelope."""
    x = np.zeros(int(seconds * SR))
    for start in np.arange(0.0, seconds - 0.3, 0.3):
        s = int(start * SR)
        x[s:s + int(0.15 * SR)] = rng.standard_normal(int(0.15 * SR))
    return x


def test_a_talker_smeared_by_a_long_tail_reads_lower_modulation_depth_than_a_dry_one():
    rng = np.random.default_rng(0)
    near, far = _bursts(10.0, rng), _bursts(10.0, rng)
    t = np.arange(int(0.8 * SR)) / SR
    tail = rng.standard_normal(t.size) * np.exp(-6.9 * t / 0.8)  # RT60 0.8 s, no direct sound
    tail[0] = 0.0
    wet = np.convolve(far, tail)[:far.size]
    wet *= np.sqrt(np.mean(near ** 2) / np.mean(wet ** 2))
    x = np.concatenate([near, wet]) + 1e-4 * rng.standard_normal(2 * near.size)
    m = bft.speaker_measures(x, {"near": [(0.0, 10.0)], "far": [(10.0, 20.0)]}, sr=SR)
    assert m["far"]["modulation_depth_db"] < m["near"]["modulation_depth_db"] - 3.0
    assert m["near"]["raw_decay_s"] is None  # bursts that stop dead leave no free decay
    assert m["far"]["raw_decay_s"] == pytest.approx(0.8, abs=0.15)  # a pure exponential tail reads its own RT60
    assert abs(m["far"]["level_db"] - m["near"]["level_db"]) < 1.5


def test_free_decays_are_decays_with_their_start_frame():
    rng = np.random.default_rng(1)
    t = np.arange(int(0.5 * SR)) / SR
    x = np.convolve(_bursts(5.0, rng), rng.standard_normal(t.size) * np.exp(-6.9 * t / 0.5))
    env = envelope_db(x + 1e-5 * rng.standard_normal(x.size))
    found = free_decays(env)
    assert found and [(t, d) for _, t, d in found] == decays(env)
    assert all(env[i] >= env[i - 1] and env[i] > env[i + 1] for i, _, _ in found)


def test_auc_counts_ties_half_and_needs_both_classes():
    assert bft.auc([3.0, 2.0], [1.0, 2.0]) == pytest.approx(0.875)
    assert bft.auc([], [1.0]) is None


def _row(t: float, c: float, score: float) -> dict:
    return {"therapist_m": t, "client_m": c, "s": score, "log_ratio": float(np.log(c / t))}


def test_the_threshold_separates_far_from_same_and_direction_is_read_from_the_sign():
    rows = [_row(1.0, 1.0, 0.2), _row(2.0, 2.0, -0.3), _row(1.0, 3.5, -2.0), _row(3.5, 1.0, 1.5),
            _row(1.0, 2.0, 0.9), _row(2.0, 3.5, 0.0)]
    assert bft.far(rows[0]) is False and bft.far(rows[2]) is True
    x = bft.youden_threshold(rows, "s")
    assert x == pytest.approx(0.3)
    e = bft.evaluate(rows, "s", x)
    assert e["detected"] == pytest.approx(0.75) and e["false_alarms"] == 0.0
    # flagged: client farther with -2.0 (right), therapist farther with +1.5 (right), client farther with +0.9 (wrong)
    assert e["direction_right"] == pytest.approx(0.667, abs=1e-3)
    assert bft.evaluate(rows, "s", x, lower_is_farther=False)["direction_right"] == pytest.approx(0.333, abs=1e-3)


def test_without_renders_it_exits_0_and_writes_nothing(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(bft, "RENDERS_DIR", tmp_path / "none")
    monkeypatch.setattr(bft, "RESULTS", tmp_path / "results")
    assert bft.main([]) == 0
    assert "nothing to do" in capsys.readouterr().out
    assert not (tmp_path / "results").exists()
