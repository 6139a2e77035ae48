from __future__ import annotations

import csv
from collections import defaultdict

import pytest
from conftest import shared_path

from pipeline.analysis.attribute import assign_words, build_turns
from pipeline.analysis.roles import assign_roles
from pipeline.errors import ConfigError
from pipeline.types import Diarization, SpeakerTurn, Turn, Word


def _diar(*turns: SpeakerTurn) -> Diarization:
    return Diarization(tuple(turns), tuple(sorted({t.speaker for t in turns})))


def test_word_goes_to_speaker_it_overlaps_most():
    diar = _diar(SpeakerTurn(0.0, 1.0, "A"), SpeakerTurn(0.9, 3.0, "B"))
    words = (Word(0.2, 0.8, "hello", 0.9), Word(0.85, 1.6, "there", 0.9))
    out = assign_words(words, diar)
    assert [w.speaker for w in out] == ["A", "B"]


def test_overlap_summed_over_a_speakers_turns():
    # B has two short turns covering 0.6 s of the word; A one turn covering 0.5 s
    diar = _diar(SpeakerTurn(0.0, 0.5, "A"), SpeakerTurn(0.5, 0.8, "B"), SpeakerTurn(0.8, 1.1, "B"))
    out = assign_words((Word(0.0, 1.1, "word", 0.9),), diar)
    assert out[0].speaker == "B"


def test_word_outside_every_turn_goes_to_nearest():
    diar = _diar(SpeakerTurn(0.0, 1.0, "A"), SpeakerTurn(5.0, 6.0, "B"))
    out = assign_words((Word(4.2, 4.5, "late", 0.9), Word(1.2, 1.4, "early", 0.9)), diar)
    assert [w.speaker for w in out] == ["B", "A"]


def test_inputs_not_mutated_and_order_kept(dialogue):
    words, turns = dialogue
    before = (words, turns)
    out = assign_words(words, _diar(*turns))
    assert (words, turns) == before
    assert [w.text for w in out] == [w.text for w in words]


def test_empty_diarization_leaves_words_unattributed():
    out = assign_words((Word(0, 1, "x", 1.0),), Diarization((), ()))
    assert out[0].speaker is None
    assert build_turns(out)[0].speaker == "UNKNOWN"


def test_turns_are_runs_of_one_speaker(dialogue):
    words, turns = dialogue
    built = build_turns(assign_words(words, _diar(*turns)))
    assert [t.speaker for t in built] == ["SPEAKER_01", "SPEAKER_00", "SPEAKER_01", "SPEAKER_00"]
    assert built[0].text.startswith("How have you been")
    assert [t.index for t in built] == [0, 1, 2, 3]
    assert sum(t.word_count for t in built) == len(words)


def test_rule_picks_therapist(dialogue):
    words, turns = dialogue
    roles = assign_roles(build_turns(assign_words(words, _diar(*turns))))
    assert roles.therapist == "SPEAKER_01" and roles.client == "SPEAKER_00"
    assert roles.method == "rule"
    assert 0 < roles.confidence <= 1


def test_rule_does_not_depend_on_who_speaks_first():
    turns = (Turn(0, "A", 0, 5, "I think I feel tired and my work is hard for me", 11),
             Turn(1, "B", 6, 9, "What do you notice when you feel that way?", 9))
    assert assign_roles(turns).therapist == "B"


@pytest.mark.parametrize("override, expected", [("first", "SPEAKER_01"), ("second", "SPEAKER_00"),
                                                ("SPEAKER_00", "SPEAKER_00")])
def test_override(dialogue, override, expected):
    words, turns = dialogue
    roles = assign_roles(build_turns(assign_words(words, _diar(*turns))), override=override)
    assert roles.therapist == expected and roles.method == "override" and roles.confidence == 1.0
    assert roles.client not in (None, expected)


def test_bad_override_names_the_value(dialogue):
    words, turns = dialogue
    with pytest.raises(ConfigError, match="SPEAKER_09"):
        assign_roles(build_turns(assign_words(words, _diar(*turns))), override="SPEAKER_09")


def test_one_speaker_is_left_unassigned():
    roles = assign_roles((Turn(0, "A", 0, 1, "hello there", 2),))
    assert roles.therapist is None and roles.confidence == 0.0


def test_rule_on_real_counselling_transcripts():
    """The rule applied to the 133 expert-transcribed AnnoMI sessions (real dialogue, text only)."""
    path = shared_path("data", "annomi", "AnnoMI-simple.csv")
    by_transcript: dict[str, list[Turn]] = defaultdict(list)
    truth: dict[str, dict[str, str]] = defaultdict(dict)
    with path.open(encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            tid = row["transcript_id"]
            label = f"S_{row['interlocutor']}"
            truth[tid][row["interlocutor"]] = label
            turns = by_transcript[tid]
            text = row["utterance_text"]
            turns.append(Turn(len(turns), label, float(len(turns)), len(turns) + 0.5, text, len(text.split())))
    correct = sum(assign_roles(turns).therapist == truth[tid]["therapist"] for tid, turns in by_transcript.items())
    assert len(by_transcript) == 133
    assert correct / len(by_transcript) >= 0.98
