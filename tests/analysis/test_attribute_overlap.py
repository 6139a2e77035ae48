"""Word attribution inside overlapped speech (issue #14): nested backchannel turns and staggered interruptions."""

from __future__ import annotations

import pytest

from pipeline.analysis.attribute import assign_words
from pipeline.errors import ConfigError
from pipeline.types import Diarization, SpeakerTurn, Word


def _diar(*turns: SpeakerTurn) -> Diarization:
    return Diarization(tuple(sorted(turns)), tuple(sorted({t.speaker for t in turns})))


def _words(*spec: tuple[float, float, str]) -> tuple[Word, ...]:
    return tuple(Word(s, e, text, 0.9) for s, e, text in spec)


def _speakers(words, diar, **kw) -> list[str | None]:
    return [w.speaker for w in assign_words(words, diar, **kw)]


# the listener (SPEAKER_00) says "right" at 2.0-2.6 inside SPEAKER_01's turn; ASR heard only SPEAKER_01
NESTED = _diar(SpeakerTurn(0.0, 6.0, "SPEAKER_01"), SpeakerTurn(2.0, 2.6, "SPEAKER_00"))
NESTED_WORDS = _words((1.5, 1.9, "So"), (1.9, 2.1, "if"), (2.1, 2.3, "you"), (2.3, 2.5, "got"), (2.6, 2.9, "a"),
                      (2.9, 3.3, "date."))


def test_words_under_a_nested_backchannel_turn_stay_with_the_speaker_holding_the_floor():
    assert _speakers(NESTED_WORDS, NESTED) == ["SPEAKER_01"] * 6
    # before: both speakers overlap "you" and "got" fully; the tie went to the first label
    assert _speakers(NESTED_WORDS, NESTED, method="max-overlap")[2:4] == ["SPEAKER_00", "SPEAKER_00"]


def test_a_standalone_backchannel_inside_the_nested_turn_goes_to_the_listener():
    diar = _diar(SpeakerTurn(0.0, 6.0, "SPEAKER_00"), SpeakerTurn(2.0, 2.6, "SPEAKER_01"))
    words = _words((1.4, 1.9, "morning."), (2.1, 2.4, "Yeah."), (2.7, 3.0, "So"), (3.0, 3.3, "tell"))
    assert _speakers(words, diar) == ["SPEAKER_00", "SPEAKER_01", "SPEAKER_00", "SPEAKER_00"]
    assert _speakers(words, diar, method="max-overlap")[1] == "SPEAKER_00"
    two = _words((1.4, 1.9, "morning."), (2.05, 2.25, "I"), (2.25, 2.5, "see."), (2.7, 3.0, "So"))
    assert _speakers(two, diar)[1:3] == ["SPEAKER_01", "SPEAKER_01"]


def test_a_backchannel_word_inside_a_sentence_is_not_a_backchannel():
    diar = _diar(SpeakerTurn(0.0, 6.0, "SPEAKER_01"), SpeakerTurn(2.0, 2.6, "SPEAKER_00"))
    words = _words((1.6, 2.0, "make"), (2.1, 2.5, "sure"), (2.6, 2.9, "that"), (2.9, 3.2, "you"))
    assert _speakers(words, diar) == ["SPEAKER_01"] * 4


# an interruption: SPEAKER_00 ends at 3.2 while SPEAKER_01 starts at 2.7
STAGGERED = _diar(SpeakerTurn(0.0, 3.2, "SPEAKER_00"), SpeakerTurn(2.7, 6.0, "SPEAKER_01"))


def test_staggered_turns_switch_speaker_at_the_sentence_end():
    words = _words((2.2, 2.5, "these"), (2.5, 2.75, "days."), (2.75, 3.0, "How"), (3.0, 3.2, "much"),
                   (3.2, 3.5, "is"), (3.5, 3.8, "it?"))
    assert _speakers(words, STAGGERED) == ["SPEAKER_00"] * 2 + ["SPEAKER_01"] * 4
    assert _speakers(words, STAGGERED, method="max-overlap")[2:4] == ["SPEAKER_00", "SPEAKER_00"]


def test_staggered_turns_without_a_sentence_end_keep_the_base_rule():
    words = _words((2.2, 2.5, "these"), (2.5, 2.75, "days"), (2.75, 3.0, "how"), (3.0, 3.3, "much"))
    assert _speakers(words, STAGGERED) == _speakers(words, STAGGERED, method="max-overlap")


def test_words_outside_overlaps_are_attributed_as_before(dialogue):
    words, turns = dialogue
    diar = _diar(*turns)
    assert _speakers(words, diar) == _speakers(words, diar, method="max-overlap")


def test_unknown_method_is_rejected():
    with pytest.raises(ConfigError, match="method"):
        assign_words(NESTED_WORDS, NESTED, method="nearest")
