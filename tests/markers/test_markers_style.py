"""Language style matching: the word list, per-category scores, session and turn-level LSM, and the wiring."""

from __future__ import annotations

import pytest

from pipeline.analysis.text_only import TranscriptUtterance, measure_transcript
from pipeline.errors import ConfigError
from pipeline.lexicons import load_lexicon
from pipeline.markers.style_matching import (
    StyleMatchingOptions,
    category_rates,
    category_score,
    function_word_categories,
    session_lsm,
    turn_pair_scores,
    words_of_text,
)

NINE = ("personal_pronouns", "impersonal_pronouns", "articles", "prepositions", "auxiliary_verbs",
        "high_frequency_adverbs", "conjunctions", "negations", "quantifiers")


def test_word_list_is_versioned_and_has_the_nine_categories():
    lex = load_lexicon("function_words")
    assert lex["version"] == "1.0.0"
    assert tuple(lex["categories"]) == NINE
    for words in lex["categories"].values():
        assert words and len(words) == len(set(words))
        assert all(w == w.lower().strip() and " " not in w for w in words)


def test_tokens_in_several_categories_as_documented():
    cats = function_word_categories()
    assert {c for c, v in cats.items() if "don't" in v} == {"auxiliary_verbs", "negations"}
    assert {c for c, v in cats.items() if "i'm" in v} == {"personal_pronouns", "auxiliary_verbs"}
    assert not any("like" in v for v in cats.values())


def test_category_rates_are_percent_of_words():
    cats = function_word_categories(StyleMatchingOptions(categories=("articles", "negations")))
    words = words_of_text("The cat did not sit on a mat ?")   # "?" is not a word: 8 words
    assert len(words) == 8
    assert category_rates(words, cats) == {"articles": pytest.approx(25.0), "negations": pytest.approx(12.5)}
    assert category_rates([], cats) is None


def test_category_score_formula():
    assert category_score(10.0, 10.0) == pytest.approx(1.0)
    assert category_score(10.0, 0.0) == pytest.approx(1 - 10 / 10.0001)
    assert category_score(0.0, 0.0) == pytest.approx(1.0)   # absent on both sides: 1 at session level
    assert category_score(6.0, 2.0) == pytest.approx(1 - 4 / 8.0001)


def test_session_lsm_identical_and_disjoint_styles():
    text = "I think that we could do it but not all of the time".split()
    assert session_lsm(text, text) == pytest.approx(1.0)
    # every category only on one side: per category 1 - p/(p + eps), about 0; absent ones score 1
    only_articles = StyleMatchingOptions(categories=("articles", "negations"))
    v = session_lsm(["the", "cat"], ["no", "dog"], options=only_articles)
    assert v == pytest.approx(1 - 50 / 50.0001, abs=1e-9)
    assert session_lsm([], ["no"]) is None


def test_turn_pairs_skip_absent_categories_and_pairs_without_a_category():
    opts = StyleMatchingOptions(categories=("articles", "negations"))
    turns = [
        ("therapist", words_of_text("the plan")),        # articles 50
        ("client", words_of_text("a idea")),             # articles 50: only articles scored -> 1.0
        (None, words_of_text("the")),                    # no role: no pair on either side
        ("therapist", words_of_text("okay")),
        ("client", words_of_text("fine")),               # no category in either turn: pair skipped
        ("client", words_of_text("the")),                # same role: not a pair
    ]
    assert turn_pair_scores(turns, options=opts) == pytest.approx((1.0,))
    one_sided = [("therapist", words_of_text("no")), ("client", words_of_text("fine thanks"))]
    assert turn_pair_scores(one_sided, options=opts) == pytest.approx((1 - 100 / 100.0001,))


def test_options_are_checked():
    with pytest.raises(ConfigError):
        StyleMatchingOptions(epsilon=0.0)
    with pytest.raises(ConfigError):
        function_word_categories(StyleMatchingOptions(categories=("pronouns",)))


def test_text_only_path_produces_lsm_and_lsm_turn_mean():
    utts = [TranscriptUtterance("therapist", "What did you do about it when it was the worst?"),
            TranscriptUtterance("client", "I did not do anything about it, it was just the worst."),
            TranscriptUtterance("therapist", "So you waited and hoped it would pass."),
            TranscriptUtterance("client", "Yes, I waited for it to pass but it never did.")]
    ind = {(i.name, i.speaker_role): (i.value, i.unit) for i in measure_transcript(utts).measures.indicators}
    lsm, unit = ind["lsm", None]
    turn_mean, _ = ind["lsm_turn_mean", None]
    assert unit == "score 0-1"
    assert 0.5 < lsm < 1.0 and 0.0 < turn_mean < 1.0
