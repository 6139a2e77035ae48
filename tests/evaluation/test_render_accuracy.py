"""The pure matching and metric functions of bench/render_accuracy.py (no models, no rendering)."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def ra():
    from bench import render_accuracy

    return render_accuracy


def test_exact_silences_match_with_zero_error(ra):
    true = [(10.0, 13.0), (20.0, 25.0)]
    s = ra.summarise_silences(ra.silence_scores(true, list(true)))
    assert (s["n_matched"], s["precision"], s["recall"], s["f1"], s["f1_onset_tol"]) == (2, 1.0, 1.0, 1.0, 1.0)
    assert s["onset_abs_error_s"] == {"median": 0.0, "p90": 0.0, "max": 0.0}
    assert s["onset_share_within_tol"] == 1.0


def test_missed_and_spurious_silences(ra):
    true = [(10.0, 13.0), (20.0, 25.0)]
    detected = [(10.1, 12.9), (40.0, 42.5)]  # second true one missed, one spurious
    s = ra.summarise_silences(ra.silence_scores(true, detected))
    assert s["n_matched"] == 1
    assert s["precision"] == pytest.approx(0.5)
    assert s["recall"] == pytest.approx(0.5)
    assert s["f1"] == pytest.approx(0.5)
    assert ra.summarise_silences(ra.silence_scores(true, []))["precision"] is None
    assert ra.summarise_silences(ra.silence_scores(true, []))["f1"] == 0.0


def test_onset_error_beyond_tolerance_counts_against_the_strict_f1(ra):
    true = [(10.0, 13.0), (20.0, 25.0)]
    detected = [(10.4, 13.1), (19.9, 25.0)]  # overlap-matched, but the first onset is 0.4 s late
    raw = ra.silence_scores(true, detected)
    assert raw["onset_errors_s"] == pytest.approx([0.4, -0.1])
    assert raw["offset_errors_s"] == pytest.approx([0.1, 0.0])
    s = ra.summarise_silences(raw)
    assert s["f1"] == 1.0
    assert s["f1_onset_tol"] == pytest.approx(0.5)
    assert s["onset_share_within_tol"] == pytest.approx(0.5)
    assert s["onset_abs_error_s"]["max"] == pytest.approx(0.4)
    assert s["onset_abs_error_s"]["median"] == pytest.approx(0.25)


def test_interval_matching_is_one_to_one_and_needs_overlap(ra):
    # one long detected silence spanning two true ones: only the one it overlaps more is matched
    assert ra.match_intervals([(0.0, 2.0), (3.0, 8.0)], [(1.0, 7.0)]) == [(1, 0)]
    # touching is not overlapping
    assert ra.match_intervals([(0.0, 2.0)], [(2.0, 4.0)]) == []


def test_transfers_matched_by_time_with_offset_error(ra):
    true = [(5.0, 0.5), (12.0, 3.0), (20.0, -0.2)]  # (at_s, offset_s)
    detected = [(5.1, 0.6), (12.3, 2.6), (30.0, 0.4)]  # third true one missed, one spurious
    t = ra.transfer_scores(true, detected, tolerance_s=1.0)
    assert t["pairs"] == [(0, 0), (1, 1)]
    assert t["offset_errors_s"] == pytest.approx([0.1, 0.4])
    e = ra.summarise_errors(t["offset_errors_s"])
    assert e["median"] == pytest.approx(0.25)
    assert e["max"] == pytest.approx(0.4)
    assert ra.match_events([1.0], [2.5], tolerance_s=1.0) == []
    # nearest first: the detected event at 1.1 goes to the true one at 1.0, not 1.5
    assert ra.match_events([1.5, 1.0], [1.1], tolerance_s=1.0) == [(1, 0)]


def test_detection_scores_and_relative_error(ra):
    assert ra.detection_scores(0, 0, 0) == {"precision": None, "recall": None, "f1": None}
    assert ra.detection_scores(4, 2, 2)["f1"] == pytest.approx(2 * 2 / 6)
    assert ra.relative_error(105.0, 100.0) == pytest.approx(0.05)
    assert ra.relative_error(3.0, 0.0) is None
    assert ra.relative_error(None, 5.0) is None
    assert ra.summarise_errors([]) == {"median": None, "p90": None, "max": None}


def test_bench_skips_cleanly_without_shared_or_flite(ra, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(ra, "ANNOMI_CSV", tmp_path / "absent.csv")
    assert ra.main([]) == 0
    assert "not available" in capsys.readouterr().out
    csv = tmp_path / "AnnoMI-full.csv"
    csv.write_text("transcript_id\n")
    monkeypatch.setattr(ra, "ANNOMI_CSV", csv)
    monkeypatch.setattr(ra.shutil, "which", lambda name: None)
    assert ra.main([]) == 0
    assert "flite" in capsys.readouterr().out
