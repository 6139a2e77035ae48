"""Listener turns (short diarization turns nested in the other speaker's turn) on hand-made diarizations."""

from __future__ import annotations

import json

import pytest

from pipeline.analysis.indicators import IndicatorOptions, measure_session
from pipeline.analysis.text_only import TIME_BASED_INDICATORS, TranscriptUtterance, measure_transcript
from pipeline.errors import ConfigError
from pipeline.markers.listener_turns import ListenerTurnOptions, find_listener_turns, measure_listener_turns
from pipeline.report.derive import UNLISTED_KINDS
from pipeline.types import AttributedWord, Diarization, RoleAssignment, SpeakerTurn

ROLES = RoleAssignment("T", "C", 1.0, "override", "")


def _diar(*turns: SpeakerTurn) -> Diarization:
    return Diarization(tuple(sorted(turns)), tuple(sorted({t.speaker for t in turns})))


def _words(text: str, speaker: str, start_s: float, end_s: float) -> list[AttributedWord]:
    toks = text.split()
    step = (end_s - start_s) / len(toks)
    return [AttributedWord(start_s + i * step, start_s + (i + 1) * step, t, 0.9, speaker) for i, t in enumerate(toks)]


def _ind(indicators) -> dict:
    return {(i.name, i.speaker_role): i.value for i in indicators}


# The therapist talks 0-20 s; the client's short turns: nested (4.0-4.6), nested at exactly 1.5 s (8-9.5),
# nested but too long (12-14), sticking out past the therapist's turn end (19.5-20.5). Then the client talks
# 21-30 s with one nested therapist turn (25-25.5).
DIAR = _diar(SpeakerTurn(0.0, 20.0, "T"), SpeakerTurn(4.0, 4.6, "C"), SpeakerTurn(8.0, 9.5, "C"),
             SpeakerTurn(12.0, 14.0, "C"), SpeakerTurn(19.5, 20.5, "C"), SpeakerTurn(21.0, 30.0, "C"),
             SpeakerTurn(25.0, 25.5, "T"))


def test_nested_short_turns_are_listener_turns_and_others_are_not():
    found = find_listener_turns(DIAR)
    assert [(t.start_s, t.end_s, t.speaker, t.over) for t in found] == [
        (4.0, 4.6, "C", "T"), (8.0, 9.5, "C", "T"), (25.0, 25.5, "T", "C")]  # 1.5 s is inclusive
    assert found[0].duration_s == pytest.approx(0.6)
    assert [t.start_s for t in find_listener_turns(DIAR, options=ListenerTurnOptions(max_s=2.0))] == [
        4.0, 8.0, 12.0, 25.0]  # the 2 s nested turn counts with a longer max_s; the one sticking out never does


def test_a_turn_inside_the_same_speakers_turn_or_alone_is_not_a_listener_turn():
    diar = _diar(SpeakerTurn(0.0, 10.0, "T"), SpeakerTurn(3.0, 3.5, "T"), SpeakerTurn(11.0, 11.5, "C"))
    assert find_listener_turns(diar) == ()


def test_a_transcribed_interjection_is_not_a_listener_turn_but_a_transcribed_backchannel_is():
    words = (_words("so I went there on Monday and then on Tuesday again", "T", 0.0, 20.0)
             + _words("mm-hmm", "C", 4.1, 4.5) + _words("wait no", "C", 8.2, 9.3))
    found = find_listener_turns(DIAR, words)
    assert [(t.start_s, t.text) for t in found] == [(4.0, "mm-hmm"), (25.0, "")]
    # the floor holder's words inside the nested turn do not matter
    assert [t.start_s for t in find_listener_turns(DIAR, _words("and then on Tuesday", "T", 3.9, 4.7))] == [
        4.0, 8.0, 25.0]


def test_indicators_and_markers_follow_the_role_assignment():
    markers, ind = measure_listener_turns([], DIAR, ROLES)
    v = _ind(ind)
    assert v[("listener_turn_count", "client")] == 2 and v[("listener_turn_count", "therapist")] == 1
    # per minute of the OTHER role's speaking time: the therapist 0-20 s and 25-25.5 s (20.5 s) for the client
    assert v[("listener_turn_rate", "client")] == pytest.approx(60 * 2 / 20.5)
    # the client's union of turns: 4-4.6, 8-9.5, 12-14, 19.5-20.5, 21-30 = 14.1 s
    assert v[("listener_turn_rate", "therapist")] == pytest.approx(60 * 1 / 14.1)
    assert [(m.kind, m.speaker_role, m.start_s) for m in markers] == [
        ("listener_turn", "client", 4.0), ("listener_turn", "client", 8.0), ("listener_turn", "therapist", 25.0)]
    assert json.loads(markers[0].detail) == {"over": "therapist", "quote": ""}
    assert markers[0].value == pytest.approx(0.6)
    swapped = _ind(measure_listener_turns([], DIAR, RoleAssignment("C", "T", 1.0, "override", ""))[1])
    assert swapped[("listener_turn_count", "therapist")] == 2 and swapped[("listener_turn_count", "client")] == 1


def test_rate_is_none_when_the_other_role_never_speaks():
    ind = _ind(measure_listener_turns([], _diar(SpeakerTurn(0.0, 5.0, "T")), ROLES)[1])
    assert ind[("listener_turn_count", "client")] == 0 and ind[("listener_turn_rate", "client")] == 0
    assert ind[("listener_turn_count", "therapist")] == 0 and ind[("listener_turn_rate", "therapist")] is None


def test_options_are_checked():
    with pytest.raises(ConfigError, match="max_s"):
        ListenerTurnOptions(max_s=0)


def test_measure_session_adds_listener_turns_without_changing_the_lexical_backchannels():
    words = _words("so I went there on Monday and then on Tuesday again", "T", 0.0, 20.0)
    m = measure_session(words, DIAR, ROLES, duration_s=30.0)
    v = _ind(m.indicators)
    assert v[("listener_turn_count", "client")] == 2 and v[("listener_turn_count", "therapist")] == 1
    assert v[("backchannel_count", "client")] == 0  # untranscribed: not a (lexical) backchannel
    assert sum(mk.kind == "listener_turn" for mk in m.markers) == 3
    off = _ind(measure_session(words, DIAR, ROLES, duration_s=30.0,
                               options=IndicatorOptions(listener_turns=ListenerTurnOptions(max_s=0.5))).indicators)
    assert off[("listener_turn_count", "client")] == 0
    assert "listener_turn" in UNLISTED_KINDS  # never listed to clinicians as an event


def test_text_only_counts_nested_utterances_with_given_times_and_drops_them_when_synthetic():
    given = [TranscriptUtterance("therapist", "So I went there on Monday and then again on Tuesday.", 0.0, 10.0),
             TranscriptUtterance("client", "Mm-hmm.", 3.0, 3.5),
             TranscriptUtterance("therapist", "And it was fine.", 10.5, 12.0)]
    v = _ind(measure_transcript(given).measures.indicators)
    assert v[("listener_turn_count", "client")] == 1
    synthetic = measure_transcript([TranscriptUtterance(u.role, u.text) for u in given])
    assert {"listener_turn_count", "listener_turn_rate"} <= TIME_BASED_INDICATORS
    assert not {i.name for i in synthetic.measures.indicators} & {"listener_turn_count", "listener_turn_rate"}
    assert "listener_turn" not in {mk.kind for mk in synthetic.measures.markers}
