"""Features of a coding decision: frozen sentence embeddings, TF-IDF n-grams and a few surface cues.

The embeddings cover the utterance and its context; the vocabularies are fit on training conversations only,
then frozen with the coder.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
from scipy import sparse
from sklearn.feature_extraction import DictVectorizer
from sklearn.feature_extraction.text import TfidfVectorizer

from pipeline.codes.context import Context

_WORD = re.compile(r"[a-z']+")


class Encoder(Protocol):
    def encode(self, texts: Sequence[str]) -> np.ndarray: ...


@dataclass(frozen=True)
class FeatureOptions:
    """Which blocks a coder uses.

    ``embed`` names the context fields embedded (of ``text``, ``previous``, ``other_last``, ``own_last``);
    ``tfidf_context`` the context fields whose words are also counted; ``embed_weight`` scales the dense block
    against the unit-length TF-IDF rows.
    """

    embed: tuple[str, ...] = ("text", "other_last", "own_last")
    tfidf_words: bool = True
    tfidf_chars: bool = True
    tfidf_context: tuple[str, ...] = ("other_last",)
    surface: bool = True
    embed_weight: float = 1.0


def surface_cues(c: Context) -> dict[str, float | str]:
    words = _WORD.findall(c.text.lower())
    text = c.text.strip()
    return {
        "first": words[0] if words else "<none>",
        "first2": " ".join(words[:2]) if words else "<none>",
        "has_q": float("?" in text),
        "ends_q": float(text.endswith("?")),
        "log_words": math.log1p(len(words)),
        "same_speaker_before": float(c.previous_role == c.role),
        "other_asked": float(c.other_last.strip().endswith("?")),
        "position": c.position,
    }


class CodeFeaturizer:
    """``fit(contexts)`` learns the vocabularies; ``transform(contexts, encoder)`` gives a sparse matrix."""

    def __init__(self, options: FeatureOptions = FeatureOptions()) -> None:
        self.options = options
        self._words: TfidfVectorizer | None = None
        self._chars: TfidfVectorizer | None = None
        self._context_words: dict[str, TfidfVectorizer] = {}
        self._surface: DictVectorizer | None = None

    def fit(self, contexts: Sequence[Context]) -> CodeFeaturizer:
        texts = [c.text for c in contexts]
        o = self.options
        if o.tfidf_words:
            self._words = TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True).fit(texts)
        if o.tfidf_chars:
            self._chars = TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), min_df=3, sublinear_tf=True,
                                          max_features=50_000).fit(texts)
        for field in o.tfidf_context:
            self._context_words[field] = TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True).fit(
                [getattr(c, field) for c in contexts]
            )
        if o.surface:
            self._surface = DictVectorizer().fit([surface_cues(c) for c in contexts])
        return self

    def transform(self, contexts: Sequence[Context], encoder: Encoder | None) -> sparse.csr_matrix:
        o = self.options
        blocks: list[sparse.spmatrix] = []
        if o.embed:
            if encoder is None:
                raise ValueError("these features need a sentence encoder")
            fields = [[getattr(c, f) for c in contexts] for f in o.embed]
            unique = sorted({t for column in fields for t in column})
            vectors = encoder.encode(unique)
            row = {t: i for i, t in enumerate(unique)}
            for column in fields:
                dense = vectors[[row[t] for t in column]]
                dense[[not t for t in column]] = 0.0  # no such turn (start of the session): a zero vector
                blocks.append(sparse.csr_matrix(dense * o.embed_weight))
        texts = [c.text for c in contexts]
        if self._words is not None:
            blocks.append(self._words.transform(texts))
        if self._chars is not None:
            blocks.append(self._chars.transform(texts))
        for field, vectorizer in self._context_words.items():
            blocks.append(vectorizer.transform([getattr(c, field) for c in contexts]))
        if self._surface is not None:
            blocks.append(self._surface.transform([surface_cues(c) for c in contexts]))
        return sparse.hstack(blocks, format="csr")
