from __future__ import annotations

import json

import pytest

from pipeline.analysis.attribute import assign_words
from pipeline.analysis.indicators import measure_session
from pipeline.errors import ConfigError
from pipeline.lexicons import normalise_token
from pipeline.markers.silences import SilenceOptions, find_silences, floor_transfers, speaking_time_s
from pipeline.markers.we_language import find_we_tokens
from pipeline.types import AttributedWord, Diarization, RoleAssignment, SpeakerTurn


def _diar(*turns: SpeakerTurn) -> Diarization:
    return Diarization(tuple(turns), tuple(sorted({t.speaker for t in turns})))


def _w(text: str, speaker: str = "A", t: float = 0.0) -> AttributedWord:
    return AttributedWord(t, t + 0.2, text, 0.9, speaker)


@pytest.mark.parametrize("raw, norm", [("We're,", "we're"), ("LET\u2019S", "let's"), ("us.", "us"), ('"our"', "our")])
def test_normalise_token(raw, norm):
    assert normalise_token(raw) == norm


@pytest.mark.parametrize("text, is_we", [
    ("we", True), ("We've", True), ("let's", True), ("Let\u2019s", True), ("ourselves", True), ("we'd", True),
    ("lets", False), ("were", False), ("weed", False), ("use", False), ("I", False), ("you", False),
])
def test_we_lexicon(text, is_we):
    assert bool(find_we_tokens([_w(text)])) is is_we


def test_silences_pause_and_switch():
    diar = _diar(SpeakerTurn(0, 2, "A"), SpeakerTurn(4.5, 6, "A"), SpeakerTurn(6.5, 8, "B"),
                 SpeakerTurn(11, 12, "A"))
    s = find_silences(diar, options=SilenceOptions(min_silence_s=2.0))
    assert [(x.start_s, x.end_s, x.kind) for x in s] == [(2, 4.5, "pause"), (8, 11, "switch")]
    assert s[1].owner == "A"  # the responder owns a switching gap


def test_silence_under_overlapping_turn_is_not_a_silence():
    # B's long turn covers A's gap: nobody is silent
    diar = _diar(SpeakerTurn(0, 2, "A"), SpeakerTurn(1, 9, "B"), SpeakerTurn(5, 6, "A"))
    assert find_silences(diar) == ()


def test_silence_threshold_is_inclusive_and_validated():
    diar = _diar(SpeakerTurn(0, 1, "A"), SpeakerTurn(3, 4, "B"))
    assert len(find_silences(diar, options=SilenceOptions(min_silence_s=2.0))) == 1
    assert find_silences(diar, options=SilenceOptions(min_silence_s=2.01)) == ()
    with pytest.raises(ConfigError, match="-1"):
        SilenceOptions(min_silence_s=-1)


def test_floor_transfers_skip_backchannels_and_measure_overlap():
    diar = _diar(SpeakerTurn(0, 5, "A"), SpeakerTurn(2, 2.4, "B"),  # backchannel inside A's turn
                 SpeakerTurn(4.8, 8, "B"),  # overlapping take-over: offset -0.2
                 SpeakerTurn(8.7, 9, "A"))  # gap 0.7
    offsets = [round(t.offset_s, 3) for t in floor_transfers(diar)]
    assert offsets == [-0.2, 0.7]


def test_speaking_time_unions_own_turns():
    diar = _diar(SpeakerTurn(0, 2, "A"), SpeakerTurn(1, 3, "A"), SpeakerTurn(2, 4, "B"))
    assert speaking_time_s(diar) == {"A": 3.0, "B": 2.0}


def test_measure_session_indicators(dialogue):
    words, turns = dialogue
    diar = _diar(*turns)
    roles = RoleAssignment("SPEAKER_01", "SPEAKER_00", 0.9, "rule", "")
    m = measure_session(assign_words(words, diar), diar, roles, duration_s=22.0)
    ind = {(i.name, i.speaker_role): i.value for i in m.indicators}
    assert ind[("talk_time_share", "therapist")] == pytest.approx(8.1 / 16.5)
    assert ind[("talk_time_share", "therapist")] + ind[("talk_time_share", "client")] == pytest.approx(1.0)
    assert ind[("word_count", "therapist")] == 30 and ind[("word_count", "client")] == 32
    assert ind[("speech_rate", "client")] == pytest.approx(60 * 32 / 8.4)
    # therapist: "we" (last met), "Let's"; client: "we" (did not talk), "us"
    assert ind[("we_count", "therapist")] == 2 and ind[("we_count", "client")] == 2
    assert ind[("long_silence_count", None)] == 1 and ind[("long_silence_total", None)] == pytest.approx(3.0)
    assert ind[("long_silence_count", "client")] == 1  # the client responds after the 3 s gap
    assert ind[("mean_switching_gap", None)] == pytest.approx((0.6 + 0.4 + 3.0) / 3)
    silence = [x for x in m.markers if x.kind == "long_silence"]
    assert len(silence) == 1 and json.loads(silence[0].detail) == {"type": "switch", "before": "therapist",
                                                                   "after": "client"}
    assert sum(1 for x in m.markers if x.kind == "we_language") == 4


def test_measure_session_without_words_is_defined():
    diar = _diar(SpeakerTurn(0, 1, "A"), SpeakerTurn(2, 3, "B"))
    m = measure_session((), diar, RoleAssignment("A", "B", 0.5, "rule", ""), duration_s=3.0)
    ind = {(i.name, i.speaker_role): i.value for i in m.indicators}
    assert ind[("we_rate", "client")] is None and ind[("word_count", "client")] == 0
