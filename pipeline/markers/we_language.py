"""First-person-plural ("we"-language) tokens.

A word is a "we" token when its normalised form (lower-cased, apostrophes unified, surrounding
punctuation stripped) is in the ``first_person_plural`` list of ``lexicons/pronouns.json``. Matching is by
lexicon, not morphology: spaCy gives the ``'s`` of "let's" no person or number.
"""

from __future__ import annotations

from collections.abc import Sequence

from pipeline.lexicons import load_lexicon, normalise_token
from pipeline.types import AttributedWord


def we_lexicon() -> frozenset[str]:
    return frozenset(load_lexicon("pronouns")["first_person_plural"])


def find_we_tokens(words: Sequence[AttributedWord]) -> tuple[AttributedWord, ...]:
    """The words that are first-person-plural tokens, in order."""
    lex = we_lexicon()
    return tuple(w for w in words if normalise_token(w.text) in lex)
