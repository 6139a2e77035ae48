"""bench/bench_room.py: the calibration fit, its table, and a clean exit without the realistic bench's renders."""

from __future__ import annotations

import pytest

from bench import bench_room


def test_the_calibration_line_recovers_a_known_mapping():
    rows = [{"raw_decay_s": r, "rt60_simulated_s": 2.0 * r - 0.2} for r in (0.25, 0.3, 0.4, 0.5)]
    slope, intercept = bench_room.fit(rows)
    assert slope == pytest.approx(2.0) and intercept == pytest.approx(-0.2)


def test_without_renders_it_exits_0_and_writes_nothing(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(bench_room, "RENDERS_DIR", tmp_path / "none")
    monkeypatch.setattr(bench_room, "RESULTS", tmp_path / "results")
    assert bench_room.main([]) == 0
    assert "nothing to do" in capsys.readouterr().out
    assert not (tmp_path / "results").exists()


def test_the_calibration_skips_rooms_without_an_estimate():
    rows = [{"raw_decay_s": r, "rt60_simulated_s": 2.0 * r - 0.2} for r in (0.25, 0.3, 0.4, 0.5)]
    assert bench_room.fit([*rows, {"raw_decay_s": None, "rt60_simulated_s": 0.9}]) == pytest.approx((2.0, -0.2))


def test_pink_noise_has_unit_rms_and_falls_3_db_per_octave():
    import numpy as np
    from scipy.signal import welch

    x = bench_room.pink_noise(16_000 * 20, np.random.default_rng(0))
    assert np.sqrt(np.mean(x * x)) == pytest.approx(1.0)
    f, p = welch(x, fs=16_000, nperseg=4096)
    octave = 10 * np.log10(np.mean(p[(f >= 500) & (f < 1000)]) / np.mean(p[(f >= 1000) & (f < 2000)]))
    assert octave == pytest.approx(3.0, abs=0.5)


def test_held_out_errors_count_rooms_without_an_estimate_per_noise():
    test = [{"noise": "none", "rt60_simulated_s": 0.5, "rt60_estimate_s": 0.6},
            {"noise": "none", "rt60_simulated_s": 0.5, "rt60_estimate_s": 0.3},
            {"noise": "hvac-10db", "rt60_simulated_s": 0.5, "rt60_estimate_s": None}]
    by = {e["noise"]: e for e in bench_room.held_out_errors(test)}
    assert by["none"] == {"noise": "none", "rows": 2, "estimated": 2, "mae_s": 0.15, "max_s": 0.2}
    assert by["hvac-10db"]["estimated"] == 0 and by["hvac-10db"]["mae_s"] is None


def test_the_distance_model_recovers_a_known_relation_and_scores_the_held_out_session():
    import numpy as np

    def rows(offset: float) -> list[dict]:
        return [{"distance_m": d, "rt60_estimate_s": rt, "modulation_ratio_db": (1.0 - np.log(d) - rt) / 0.5 + offset}
                for d in bench_room.DISTANCES for rt in (0.3, 0.6, 0.9)]

    model = bench_room.distance_model(rows(0.0), rows(0.0))
    assert model["coef"] == pytest.approx([1.0, -0.5, -1.0], abs=1e-3) and model["test_r"] == pytest.approx(1.0)
    assert model["test_median_m"] == {"1": 1.0, "2": 2.0, "3.5": 3.5}
    assert bench_room.distance_model(rows(0.0), rows(2.0))["test_median_m"]["1"] < 0.5  # a shifted session


def test_the_table_names_the_fit_and_the_held_out_error():
    row = {"session": "46", "noise": "hvac-15db", "rt60_simulated_s": 0.57, "distance_m": 2.0, "raw_decay_s": 0.37,
           "rt60_estimate_s": 0.57, "early_drop_db": 6.0, "modulation_ratio_db": 8.21, "decays": 40}
    model = {"coef": [1, 2, 3], "train_rows": 105, "test_rows": 100, "train_r": 0.86, "test_r": 0.41,
             "test_median_m": {"1": 0.6, "2": 2.4, "3.5": 1.9}}
    md = bench_room.markdown({
        "fit": {"on": "46", "held_out": "131", "slope": 2.24, "intercept": -0.257},
        "baseline_fit": {"slope": 2.0, "intercept": -0.1},
        "held_out": [{"noise": "none", "rows": 15, "estimated": 15, "mae_s": 0.076, "max_s": 0.154},
                     {"noise": "hvac-10db", "rows": 15, "estimated": 0, "mae_s": None, "max_s": None}],
        "baseline_held_out": [{"noise": "none", "rows": 15, "estimated": 15, "mae_s": 0.08, "max_s": 0.2},
                              {"noise": "hvac-10db", "rows": 15, "estimated": 0, "mae_s": None, "max_s": None}],
        "distance": {"early_drop_r": -0.17, "early_drop_r_46": 0.1, "early_drop_r_131": -0.3, "modulation_r": -0.55,
                     "modulation_r_46": -0.6, "modulation_r_131": -0.5, "modulation_rt60_r": -0.72, "model": model},
        "grid": [row], "renders": [{"render": "annomi-46 room-far", "rt60_simulated_s": 0.77, "rt60_estimate_s": 0.79,
                                    "baseline_rt60_estimate_s": 0.8, "shipped_rt60_estimate_s": 0.81,
                                    "early_drop_db": 4.5, "modulation_ratio_db": 6.5, "decays": 250}],
        "run_s": 1.0})
    assert "RT60 = 2.240 x raw decay time + -0.257 s" in md
    assert "baseline (no noise subtraction" in md and "2.000 x raw + -0.100 s" in md
    assert "| none | 15 | 15 (15) | 0.076 (0.08) | 0.154 (0.2) |" in md
    assert "| hvac-10db | 15 | 0 (0) | – (–) | – (–) |" in md
    assert "**0.41 held out**" in md and "0.6 m / 2.4 m / 1.9 m" in md
    assert "| 46 | hvac-15db | 0.57 | 2.0 | 0.370 | 0.57 | 6.0 | 8.21 | 40 |" in md
    assert "| annomi-46 room-far | 0.77 | 0.79 | 0.80 (0.81) | 4.5 | 6.50 | 250 |" in md
