"""Topic avoidance after therapist probes: topic shifts, deflections and minimal responses.

Definitions
-----------
- A *probe* is a therapist conversational turn with at least one question sentence
  (:func:`pipeline.markers.dialogue.question_sentences`); it is *open* when its last question is open.
- The *reply* is the client's next conversational turn, when it comes directly after the probe.
- *Minimal response* to an open probe: the reply has at most ``minimal_max_words`` (default 2) words
  once fillers ("um", "uh", the phrase "you know") are removed ("Yeah.", "Fine.", "Not really").
- *Deflection* to an open probe: the reply has at most ``deflection_max_words`` words (lexicon,
  default 12) and one of the deflection phrases ("I don't know", "it's fine", "whatever", ...) starts
  one of its sentences (after discourse markers).
- *Topic shift*: content lemmas are spaCy lemmas (a final "-ing" stripped, so the noun
  "drinking" meets the verb "drink") of tokens tagged NOUN, PROPN, VERB or ADJ that are
  alphabetic, not stop words, at least 3 letters and not in ``generic_lemmas``. With Q the content
  lemmas of the whole probe turn and R those of the reply, similarity is the share of the probe's
  content the reply takes up, ``|Q & R| / |Q|``. A reply is a topic shift when ``|Q| >= 2``,
  ``|R| >= min_reply_content`` (default 3, so minimal replies are left to the rule above) and the
  similarity is at most ``max_similarity`` (default 0: no shared content lemma). Lexical overlap
  misses synonyms and pronoun reference ("it"): events are candidates for review.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from pipeline.errors import ConfigError
from pipeline.lexicons import load_lexicon
from pipeline.markers.backchannels import ConversationalTurn
from pipeline.markers.dialogue import (
    Language,
    clean_text,
    is_open_question,
    question_sentences,
    sentences,
    starts_with_phrase,
    strip_leading,
    words_of,
)


@dataclass(frozen=True)
class TopicOptions:
    minimal_max_words: int = 2
    min_reply_content: int = 3
    min_probe_content: int = 2
    max_similarity: float = 0.0

    def __post_init__(self) -> None:
        if not 0.0 <= self.max_similarity < 1.0:
            raise ConfigError(f"max_similarity must be in [0, 1), got {self.max_similarity!r}")
        if self.minimal_max_words < 1:
            raise ConfigError(f"minimal_max_words must be >= 1, got {self.minimal_max_words!r}")


@dataclass(frozen=True)
class ProbeReply:
    """A therapist probe, the client's reply and what the rules found."""

    probe: ConversationalTurn
    reply: ConversationalTurn | None
    question: str
    open: bool
    minimal: bool = False
    deflection: str | None = None
    similarity: float | None = None
    topic_shift: bool = False


def content_lemmas(text: str, nlp: Language) -> frozenset[str]:
    """Content lemmas of ``text`` (module docstring)."""
    generic = frozenset(load_lexicon("topic")["generic_lemmas"])
    doc = nlp(clean_text(text))
    return frozenset(_stem(t.lemma_.lower()) for t in doc
                     if t.pos_ in ("NOUN", "PROPN", "VERB", "ADJ") and t.is_alpha and not t.is_stop
                     and len(t.text) >= 3 and t.lemma_.lower() not in generic)


def _stem(lemma: str) -> str:
    # spaCy lemmatises the gerund noun "drinking" to itself and the verb "drink" to "drink"
    return lemma[:-3] if lemma.endswith("ing") and len(lemma) > 5 else lemma


def find_deflection(text: str) -> str | None:
    """The deflection phrase a short reply starts a sentence with, or None."""
    lex = load_lexicon("topic")
    if len(words_of(text)) > int(lex["deflection_max_words"]):
        return None
    skip = frozenset(lex["discourse_markers"]) - {"i"}
    phrases = sorted(lex["deflections"], key=lambda p: -len(p.split()))
    for s in sentences(text):
        hit = starts_with_phrase(strip_leading(words_of(s), skip), phrases)
        if hit:
            return hit
    return None


def analyse_probes(
    turns: Sequence[ConversationalTurn],
    *,
    nlp: Language | None = None,
    options: TopicOptions = TopicOptions(),
) -> tuple[ProbeReply, ...]:
    """Every therapist probe with the client's reply classified (topic shift needs ``nlp``)."""
    fillers = frozenset(load_lexicon("topic")["fillers"])
    out: list[ProbeReply] = []
    for k, t in enumerate(turns):
        if t.role != "therapist":
            continue
        qs = question_sentences(t.text)
        if not qs:
            continue
        reply = turns[k + 1] if k + 1 < len(turns) and turns[k + 1].role == "client" else None
        is_open = is_open_question(qs[-1])
        if reply is None:
            out.append(ProbeReply(t, None, qs[-1], is_open))
            continue
        n_words = len([w for w in words_of(re.sub(r"(?i)\byou know\b", " ", reply.text)) if w not in fillers])
        minimal = is_open and n_words <= options.minimal_max_words
        deflection = find_deflection(reply.text) if is_open else None
        similarity, shift = None, False
        if nlp is not None:
            q, r = content_lemmas(t.text, nlp), content_lemmas(reply.text, nlp)
            if len(q) >= options.min_probe_content and len(r) >= options.min_reply_content:
                similarity = len(q & r) / len(q)
                shift = similarity <= options.max_similarity
        out.append(ProbeReply(t, reply, qs[-1], is_open, minimal, deflection, similarity, shift))
    return tuple(out)
