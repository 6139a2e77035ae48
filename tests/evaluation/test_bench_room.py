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


def test_the_table_names_the_fit_and_the_held_out_error():
    row = {"session": "46", "rt60_simulated_s": 0.57, "distance_m": 2.0, "raw_decay_s": 0.37,
           "rt60_estimate_s": 0.57, "early_drop_db": 6.0}
    md = bench_room.markdown({"fit": {"on": "46", "held_out": "131", "slope": 2.24, "intercept": -0.257},
                              "held_out_mae_s": 0.076, "held_out_max_s": 0.154, "early_drop_distance_r": -0.17,
                              "grid": [row], "renders": [{"render": "annomi-46 room-far", "rt60_simulated_s": 0.77,
                                                          "rt60_estimate_s": 0.79, "early_drop_db": 4.5}]})
    assert "RT60 = 2.240 x raw decay time + -0.257 s" in md and "mean |error| 0.076 s" in md
    assert "| 46 | 0.57 | 2.0 | 0.370 | 0.57 | 6.0 |" in md and "| annomi-46 room-far | 0.77 | 0.79 | 4.5 |" in md
