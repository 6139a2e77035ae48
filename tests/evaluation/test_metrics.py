"""Word error rate under the strict normaliser and under Whisper's English normaliser."""

from __future__ import annotations

import pytest

from evaluation.metrics import normalise_text, word_error_rate

pytest.importorskip("whisper.normalizers", reason="openai-whisper is not installed")

from evaluation.metrics import whisper_normalise_text, word_error_rate_whisper


@pytest.mark.parametrize(
    ("reference", "hypothesis"),
    [
        ("I have two kids.", "I have 2 kids."),
        ("I didn't like the colour.", "I did not like the color."),
        ("Um, I think so.", "I think so."),
        ("Mm-hmm. Twenty-one days.", "21 days"),
    ],
)
def test_whisper_wer_forgives_spelling_variants_the_strict_wer_counts(reference: str, hypothesis: str) -> None:
    assert word_error_rate(reference, hypothesis) > 0
    assert word_error_rate_whisper(reference, hypothesis) == 0.0


def test_whisper_wer_still_counts_real_errors() -> None:
    assert word_error_rate_whisper("I have two kids", "I have three kids") == pytest.approx(0.25)
    assert word_error_rate_whisper("I have two kids", "") == 1.0
    assert word_error_rate_whisper("", "") == 0.0


def test_whisper_normaliser_output_is_lower_case_words() -> None:
    out = whisper_normalise_text("  OK,   so... I'd go!  ")
    assert out == " ".join(out.split()) and out == out.lower()
    assert "ok" in out.split()  # does not unify "ok" and "okay": the bench does that itself


def test_word_error_rate_takes_a_normaliser() -> None:
    assert word_error_rate("A b", "a B") == 0.0
    assert word_error_rate("A b", "a B", normaliser=str) == 1.0
    assert word_error_rate("Hello, world", "hello world", normaliser=normalise_text) == 0.0
