"""Accuracy metrics against a reference: word error rate (text) and diarization error rate (pyannote.metrics).

Two text normalisers: :func:`normalise_text` (strict: lower case, punctuation removed, nothing else) and
:func:`whisper_normalise_text`, Whisper's ``EnglishTextNormalizer`` (the field's standard for comparing ASR
systems: the Whisper paper, the Open ASR leaderboard), which also spells numbers as digits, expands contractions,
unifies British and American spellings and drops fillers ("um", "uh", "hmm").
"""

from __future__ import annotations

import math
import unicodedata
from collections.abc import Callable
from functools import cache

from pyannote.core import Timeline

from pipeline.diarization.rttm import to_annotation
from pipeline.errors import ConfigError
from pipeline.types import Diarization

__all__ = [
    "diarization_error_rate",
    "normalise_text",
    "whisper_normalise_text",
    "word_error_rate",
    "word_error_rate_whisper",
]


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


def word_error_rate(
    reference: str, hypothesis: str, *, normaliser: Callable[[str], str] = normalise_text
) -> float:
    """Word error rate of ``hypothesis`` against ``reference`` after ``normaliser`` (default :func:`normalise_text`).

    WER = (substitutions + deletions + insertions) / number of reference words, from the word-level
    edit distance.

    Parameters
    ----------
    reference, hypothesis : str
    normaliser : callable
        Applied to both texts before splitting them on white space.

    Returns
    -------
    float
        0 for a perfect match; may exceed 1 with many insertions. With an empty reference: 0.0 if the
        hypothesis is empty too, else 1.0.
    """
    ref = normaliser(reference).split()
    hyp = normaliser(hypothesis).split()
    if not ref:
        return 0.0 if not hyp else 1.0
    return _edit_distance(ref, hyp) / len(ref)


@cache
def _whisper_normaliser() -> Callable[[str], str]:
    from whisper.normalizers import EnglishTextNormalizer

    return EnglishTextNormalizer()


def whisper_normalise_text(text: str) -> str:
    """Normalise ``text`` with Whisper's ``EnglishTextNormalizer`` (package ``openai-whisper``).

    Besides lower case and punctuation: numbers as digits (``"twenty-one"`` -> ``"21"``), contractions
    expanded (``"didn't"`` -> ``"did not"``), British spellings made American (``"colour"`` -> ``"color"``),
    fillers removed (``"um"``, ``"uh"``, ``"hmm"``, ``"mm"``), words in brackets removed. It does not unify
    ``"ok"`` and ``"okay"``.

    Parameters
    ----------
    text : str

    Returns
    -------
    str
        Words separated by single spaces.

    Raises
    ------
    ImportError
        ``openai-whisper`` is not installed.
    """
    return " ".join(_whisper_normaliser()(text).split())


def word_error_rate_whisper(reference: str, hypothesis: str) -> float:
    """Word error rate after Whisper's English normaliser (:func:`whisper_normalise_text`), the ASR standard.

    Raises
    ------
    ImportError
        ``openai-whisper`` is not installed.
    """
    return word_error_rate(reference, hypothesis, normaliser=whisper_normalise_text)


def _edit_distance(ref: list[str], hyp: list[str]) -> int:
    """Levenshtein distance between two word lists (one row of the table kept at a time)."""
    previous = list(range(len(hyp) + 1))
    for i, ref_word in enumerate(ref, start=1):
        current = [i]
        for j, hyp_word in enumerate(hyp, start=1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ref_word != hyp_word)))
        previous = current
    return previous[-1]


def diarization_error_rate(
    reference: Diarization, hypothesis: Diarization, *, collar_s: float = 0.0
) -> float:
    """Diarization error rate of ``hypothesis`` against ``reference`` (pyannote.metrics).

    Speaker labels are matched by the optimal (Hungarian) mapping, so label names do not
    matter. Overlapping speech is scored (``skip_overlap=False``); the evaluated region is
    the extent of both annotations.

    Parameters
    ----------
    reference, hypothesis : Diarization
    collar_s : float
        Total width in seconds of the no-score zone around each reference boundary,
        as pyannote.metrics defines it (``collar_s / 2`` on each side). 0 scores everything.

    Returns
    -------
    float
        (false alarm + missed detection + confusion) / total reference speech, a
        fraction (0.05 is 5 %); can exceed 1. When the reference has no speech it is
        0.0 if the hypothesis has none either, else 1.0.

    Raises
    ------
    ConfigError
        ``collar_s`` is negative or not finite.
    """
    from pyannote.metrics.diarization import DiarizationErrorRate

    if not (isinstance(collar_s, (int, float)) and math.isfinite(collar_s) and collar_s >= 0):
        raise ConfigError(f"collar_s must be a finite number >= 0; got {collar_s!r}")
    ref = to_annotation(reference)
    hyp = to_annotation(hypothesis)
    if ref.get_timeline().duration() == 0:
        return 0.0 if hyp.get_timeline().duration() == 0 else 1.0
    # the scored region: from the first to the last boundary of either annotation
    uem = ref.get_timeline().union(hyp.get_timeline()).extent()
    metric = DiarizationErrorRate(collar=float(collar_s), skip_overlap=False)
    return float(metric(ref, hyp, uem=Timeline([uem])))
