"""The summary's quality section (pipeline.report.summary.quality_lines)."""

from __future__ import annotations

from pipeline.report.summary import quality_lines

ROW = {"speech_s": 120.0, "speech_share": 0.8, "snr_db": 25.0, "overlap_share": 0.05, "mean_word_probability": 0.79,
       "asr_segments_dropped": 0, "words_dropped_outside_speech": 0, "role_confidence": 0.9, "flags": []}


def test_the_expected_wer_is_shown_as_an_estimate_where_stored():
    shown = quality_lines({**ROW, "expected_wer": 0.24})[0]
    assert "Expected word error rate about 24 %" in shown and "not measured" in shown
    assert "word error rate" not in quality_lines({**ROW, "expected_wer": None})[0]
    assert "word error rate" not in quality_lines(ROW)[0]  # a row stored before migration 0013
    flagged = {**ROW, "expected_wer": 0.31, "flags": [{"code": "high_expected_wer", "message": "m", "distrust": "d"}]}
    assert any("high expected wer" in line for line in quality_lines(flagged))
