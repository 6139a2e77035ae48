"""Text metrics for checking speech recognition against a reference transcript."""

from __future__ import annotations

import unicodedata

__all__ = ["normalise_text", "word_error_rate"]


def normalise_text(text: str) -> str:
    """Lower-case ``text``, remove punctuation and collapse white space.

    Dashes and other connector punctuation become spaces (``"twenty-one"`` -> ``"twenty one"``);
    every other punctuation mark is deleted (``"didn't"`` -> ``"didnt"``, ``"Hello?"`` -> ``"hello"``).

    Parameters
    ----------
    text : str

    Returns
    -------
    str
        Words separated by single spaces.
    """
    chars = []
    for char in unicodedata.normalize("NFKC", text).lower():
        category = unicodedata.category(char)
        if category in ("Pd", "Pc"):
            chars.append(" ")
        elif not category.startswith("P"):
            chars.append(char)
    return " ".join("".join(chars).split())


def word_error_rate(reference: str, hypothesis: str) -> float:
    """Word error rate of ``hypothesis`` against ``reference`` after :func:`normalise_text`.

    WER = (substitutions + deletions + insertions) / number of reference words, from the word-level
    edit distance.

    Parameters
    ----------
    reference, hypothesis : str

    Returns
    -------
    float
        0 for a perfect match; may exceed 1 with many insertions. With an empty reference: 0.0 if the
        hypothesis is empty too, else 1.0.
    """
    ref = normalise_text(reference).split()
    hyp = normalise_text(hypothesis).split()
    if not ref:
        return 0.0 if not hyp else 1.0
    return _edit_distance(ref, hyp) / len(ref)


def _edit_distance(ref: list[str], hyp: list[str]) -> int:
    """Levenshtein distance between two word lists (one row of the table kept at a time)."""
    previous = list(range(len(hyp) + 1))
    for i, ref_word in enumerate(ref, start=1):
        current = [i]
        for j, hyp_word in enumerate(hyp, start=1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ref_word != hyp_word)))
        previous = current
    return previous[-1]
