"""Utterances, sentences and questions: the text units the text-level markers work on.

An *utterance* is a maximal run of consecutive words by one speaker (the same unit as
:func:`pipeline.analysis.attribute.build_turns`, but keeping the words and the role). A *conversational turn*
is what is left after backchannels are removed and neighbouring utterances of the same speaker are
merged (see :mod:`pipeline.markers.backchannels`).

Questions
---------
A sentence is a question when it ends with ``?`` (Whisper and human transcribers punctuate questions)
and is not a tag question: the whole sentence, or its part after the last comma, is not a tag ("you
know?", "..., right?", list ``tag_questions`` in ``lexicons/topic.json``).
A question is *open* (MITI 4.2 convention: it invites a wide range of answers) when, after leading
discourse markers ("so", "and", "um", ...), it starts with an open opener ("what", "how", "why",
"tell me", ...), except "how many / much / long / old / often / far / soon", which ask for a quantity.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from pipeline.lexicons import load_lexicon, normalise_token
from pipeline.types import AttributedWord, Role, RoleAssignment

_SENTENCE_END = re.compile(r"(?<=[.?!])\s+")
_APOSTROPHES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u02bc": "'"})


class Language(Protocol):
    """What the markers need from a loaded spaCy pipeline: ``nlp(text) -> Doc``.

    The Doc's tokens must carry ``text``, ``lemma_``, ``pos_``, ``tag_``, ``dep_``, ``head``,
    ``is_stop``, ``idx`` and ``is_alpha`` (``en_core_web_sm`` does; ``spacy.blank`` has no parse).
    """

    def __call__(self, text: str) -> Any: ...


@dataclass(frozen=True)
class Utterance:
    """A run of one speaker's consecutive words.

    Attributes
    ----------
    index : int
        Position in the session, from 0.
    speaker : str
        Diarization label.
    role : Role or None
    start_s, end_s : float
        First word's start and last word's end (seconds).
    words : tuple of AttributedWord
    """

    index: int
    speaker: str
    role: Role | None
    start_s: float
    end_s: float
    words: tuple[AttributedWord, ...]

    @property
    def text(self) -> str:
        return " ".join(w.text for w in self.words)

    @property
    def tokens(self) -> tuple[str, ...]:
        """Normalised tokens (empty ones, e.g. a lone dash, left out)."""
        return tuple(t for t in (normalise_token(w.text) for w in self.words) if t)

    @property
    def word_count(self) -> int:
        return len(self.tokens)


def build_utterances(words: Sequence[AttributedWord], roles: RoleAssignment) -> tuple[Utterance, ...]:
    """Group consecutive words of one speaker into utterances (words with no speaker are dropped)."""
    out: list[Utterance] = []
    run: list[AttributedWord] = []

    def flush() -> None:
        if run:
            spk = run[0].speaker or "UNKNOWN"
            out.append(Utterance(len(out), spk, roles.role_of(spk), run[0].start_s, run[-1].end_s, tuple(run)))

    for w in words:
        if w.speaker is None:
            continue
        if run and w.speaker != run[-1].speaker:
            flush()
            run = []
        run.append(w)
    flush()
    return tuple(out)


def clean_text(text: str) -> str:
    """Unify apostrophes and drop bracketed notes such as ``[laughs]``."""
    text = re.sub(r"\[[^\]]*\]", " ", text.translate(_APOSTROPHES))
    return re.sub(r"\s+", " ", text).strip()


def sentences(text: str) -> tuple[str, ...]:
    """Split on sentence-final punctuation followed by space (no model needed)."""
    return tuple(s.strip() for s in _SENTENCE_END.split(clean_text(text)) if s.strip())


def words_of(text: str) -> tuple[str, ...]:
    return tuple(t for t in (normalise_token(x) for x in clean_text(text).split()) if t)


def starts_with_phrase(tokens: Sequence[str], phrases: Sequence[str]) -> str | None:
    """The first phrase of ``phrases`` that ``tokens`` starts with, or None."""
    for p in phrases:
        pw = p.split()
        if tuple(tokens[: len(pw)]) == tuple(pw):
            return p
    return None


def strip_leading(tokens: Sequence[str], skip: frozenset[str]) -> tuple[str, ...]:
    i = 0
    while i < len(tokens) and tokens[i] in skip:
        i += 1
    return tuple(tokens[i:])


def question_sentences(text: str) -> tuple[str, ...]:
    """Sentences of ``text`` that are real questions (tag questions left out)."""
    lex = load_lexicon("topic")
    tags = {tuple(t.split()) for t in lex["tag_questions"]}
    out = []
    for s in sentences(text):
        if not s.rstrip().endswith("?"):
            continue
        toks = words_of(s)
        tail = words_of(s.rsplit(",", 1)[-1]) if "," in s else toks
        if not toks or tuple(toks) in tags or tuple(tail) in tags:
            continue
        out.append(s)
    return tuple(out)


def is_open_question(sentence: str) -> bool:
    """Whether a question sentence is open (see the module docstring)."""
    lex = load_lexicon("topic")
    toks = strip_leading(words_of(sentence), frozenset(lex["discourse_markers"]))
    opener = starts_with_phrase(toks, lex["open_openers"])
    if opener is None:
        return False
    if toks[0] == "how" and len(toks) > 1 and toks[1] in lex["closed_after_how"]:
        return False
    return True


def quote(text: str, *, max_chars: int = 300) -> str:
    """A trimmed quote for a marker's ``detail``."""
    text = clean_text(text)
    return text if len(text) <= max_chars else text[: max_chars - 1] + "\u2026"

