"""In-turn pauses from word timestamps, on hand-made words."""

from __future__ import annotations

import json

import pytest

from pipeline.errors import ConfigError
from pipeline.markers.pauses import PauseOptions, find_pauses, measure_pauses
from pipeline.types import AttributedWord, Diarization, RoleAssignment, SpeakerTurn

ROLES = RoleAssignment("T", "C", 1.0, "override", "")


def _w(start_s: float, end_s: float, text: str, speaker: str | None = "C") -> AttributedWord:
    return AttributedWord(start_s, end_s, text, 0.9, speaker)


def _diar(*turns: SpeakerTurn) -> Diarization:
    return Diarization(tuple(turns), tuple(sorted({t.speaker for t in turns})))


def _gaps(pauses) -> list[tuple[float, float]]:
    return [(p.start_s, p.end_s) for p in pauses]


def test_threshold_is_inclusive_at_quarter_second():
    words = [_w(0.0, 0.3, "I"), _w(0.55, 0.9, "was"), _w(1.14, 1.5, "just"), _w(1.5, 1.8, "thinking")]
    # gaps: 0.25 (pause), 0.24 (not), 0.0 (not)
    assert _gaps(find_pauses(words)) == [(0.3, 0.55)]


def test_gap_across_a_speaker_change_is_not_a_pause():
    words = [_w(0.0, 0.5, "so", "T"), _w(1.5, 2.0, "well", "C"), _w(2.6, 3.0, "maybe", "C")]
    assert _gaps(find_pauses(words)) == [(2.0, 2.6)]


def test_word_without_speaker_breaks_the_run():
    words = [_w(0.0, 0.5, "so"), _w(0.8, 1.0, "uh", None), _w(1.5, 2.0, "yes")]
    assert find_pauses(words) == ()


def test_punctuation_only_tokens_are_skipped():
    words = [_w(0.0, 0.5, "well"), _w(0.6, 0.7, "\u2014"), _w(1.0, 1.4, "no")]
    assert _gaps(find_pauses(words)) == [(0.5, 1.0)]


def test_long_gaps_are_left_to_long_silence():
    words = [_w(0.0, 0.5, "and"), _w(2.5, 3.0, "then"), _w(4.9, 5.0, "it")]
    assert _gaps(find_pauses(words)) == [(3.0, 4.9)]          # 2.0 s is a long silence, 1.9 s a pause
    assert len(find_pauses(words, options=PauseOptions(max_pause_s=None))) == 2


def test_overlapping_or_unsorted_words():
    words = [_w(1.0, 1.4, "b"), _w(0.0, 1.1, "a"), _w(2.0, 2.3, "c")]
    assert _gaps(find_pauses(words)) == [(1.4, 2.0)]          # a/b overlap: gap 0


def test_other_speaker_talking_inside_the_gap_is_not_a_pause():
    words = [_w(0.0, 1.0, "it"), _w(2.0, 2.5, "was"), _w(3.0, 3.5, "hard")]
    diar = _diar(SpeakerTurn(0.0, 3.5, "C"), SpeakerTurn(1.2, 1.6, "T"), SpeakerTurn(2.45, 2.55, "T"))
    # T's missed "mm-hmm" covers 0.4 s of the first gap; 0.05 s of the second (within tolerance)
    assert _gaps(find_pauses(words, diarization=diar)) == [(2.5, 3.0)]
    assert len(find_pauses(words)) == 2


def test_input_not_modified():
    words = (_w(1.0, 1.4, "b"), _w(0.0, 0.5, "a"))
    copy = tuple(words)
    find_pauses(words)
    assert words == copy


def test_measure_pauses_indicators_and_markers():
    words = [
        _w(0.0, 0.5, "how", "T"), _w(0.5, 1.0, "are", "T"), _w(1.3, 1.8, "you?", "T"),   # T: 0.3 s pause
        _w(3.0, 3.5, "I", "C"), _w(3.5, 3.8, "don't", "C"), _w(5.0, 5.4, "know", "C"),   # C: 1.2 s pause
        _w(5.8, 6.0, "really", "C"),                                                        # C: 0.4 s pause
    ]
    diar = _diar(SpeakerTurn(0.0, 1.8, "T"), SpeakerTurn(3.0, 6.0, "C"))
    markers, ind = measure_pauses(words, diar, ROLES)
    v = {(i.speaker_role, i.name): (i.value, i.unit) for i in ind}
    assert v["therapist", "pause_count"] == (1.0, "count")
    assert v["therapist", "pause_rate"][0] == pytest.approx(60 / 1.8)
    assert v["therapist", "pause_rate"][1] == "pauses/min"
    assert v["therapist", "mean_pause"][0] == pytest.approx(0.3)
    assert v["client", "pause_count"][0] == 2.0
    assert v["client", "pause_rate"][0] == pytest.approx(60 * 2 / 3.0)
    assert v["client", "mean_pause"] == (pytest.approx(0.8), "s")
    assert len(markers) == 1                                  # only pauses >= 1 s are events
    m = markers[0]
    assert (m.kind, m.speaker_role, m.start_s, m.end_s, m.value) == ("pause", "client", 3.8, 5.0, 1.2)
    assert json.loads(m.detail) == {"quote": "I don't \u2026 know really"}


def test_no_words_or_no_speech_gives_none():
    diar = _diar(SpeakerTurn(0.0, 2.0, "T"))
    markers, ind = measure_pauses([], diar, ROLES)
    v = {(i.speaker_role, i.name): i.value for i in ind}
    assert markers == ()
    assert v["therapist", "pause_count"] == 0.0 and v["therapist", "pause_rate"] == 0.0
    assert v["therapist", "mean_pause"] is None
    assert v["client", "pause_rate"] is None                  # no speaking time


@pytest.mark.parametrize("kwargs, bad", [
    ({"min_pause_s": 0.0}, "min_pause_s"),
    ({"max_pause_s": 0.2}, "max_pause_s"),
    ({"marker_min_pause_s": 0.1}, "marker_min_pause_s"),
    ({"other_speech_tolerance_s": -0.1}, "other_speech_tolerance_s"),
])
def test_options_validated(kwargs, bad):
    with pytest.raises(ConfigError, match=bad):
        PauseOptions(**kwargs)
