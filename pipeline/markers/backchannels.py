"""Backchannels: short acknowledgement tokens that do not take the floor.

Definition
----------
An utterance is a *backchannel* (continuer or acknowledgement token; Yngve 1970, Schegloff 1982) when

1. every one of its normalised tokens is in ``lexicons/backchannels.json`` ("mm-hmm", "yeah",
   "right", "okay", "I see", ...) and it has at most ``max_words`` tokens (default 3); and
2. it does not answer a question: the other speaker's preceding utterance has no question; and
3. it sits inside the other speaker's speech: either the other speaker holds the floor on both sides
   (previous and next utterances are theirs), or its time span lies wholly inside one of the other
   speaker's diarization turns (spoken in overlap).

Backchannels are counted for the speaker who produces them and are not turns: conversational turns
are the utterances left, with neighbouring utterances of one speaker merged.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from pipeline.errors import ConfigError
from pipeline.lexicons import load_lexicon
from pipeline.markers.dialogue import Utterance, question_sentences
from pipeline.types import Diarization


@dataclass(frozen=True)
class BackchannelOptions:
    """``max_words``: longest backchannel in tokens (None: the lexicon file's value, 3)."""

    max_words: int | None = None

    def __post_init__(self) -> None:
        if self.max_words is not None and self.max_words < 1:
            raise ConfigError(f"max_words must be >= 1, got {self.max_words!r}")


@dataclass(frozen=True)
class ConversationalTurn:
    """Utterances of one speaker merged once backchannels are set aside."""

    speaker: str
    utterances: tuple[Utterance, ...]

    @property
    def start_s(self) -> float:
        return self.utterances[0].start_s

    @property
    def end_s(self) -> float:
        return self.utterances[-1].end_s

    @property
    def word_count(self) -> int:
        return sum(u.word_count for u in self.utterances)

    @property
    def text(self) -> str:
        return " ".join(u.text for u in self.utterances)

    @property
    def role(self):  # Role | None
        return self.utterances[0].role


def _inside_other_turn(u: Utterance, diarization: Diarization | None) -> bool:
    if diarization is None:
        return False
    return any(t.speaker != u.speaker and t.start_s <= u.start_s and u.end_s <= t.end_s for t in diarization.turns)


def find_backchannels(
    utterances: Sequence[Utterance],
    *,
    diarization: Diarization | None = None,
    options: BackchannelOptions = BackchannelOptions(),
) -> frozenset[int]:
    """Indices (``Utterance.index``) of the utterances that are backchannels."""
    lex = load_lexicon("backchannels")
    vocab = frozenset(lex["tokens"])
    max_words = options.max_words or int(lex["max_words"])
    out: set[int] = set()
    for k, u in enumerate(utterances):
        toks = u.tokens
        if not toks or len(toks) > max_words or not all(t in vocab for t in toks):
            continue
        prev = utterances[k - 1] if k > 0 else None
        nxt = utterances[k + 1] if k + 1 < len(utterances) else None
        if prev is not None and prev.speaker != u.speaker and question_sentences(prev.text):
            continue
        between = (prev is not None and nxt is not None and prev.speaker != u.speaker
                   and nxt.speaker == prev.speaker)
        if between or _inside_other_turn(u, diarization):
            out.add(u.index)
    return frozenset(out)


def conversational_turns(
    utterances: Sequence[Utterance], backchannels: frozenset[int]
) -> tuple[ConversationalTurn, ...]:
    """Merge utterances into turns, skipping backchannels (so A, B:"mm-hm", A is one turn of A)."""
    turns: list[list[Utterance]] = []
    for u in utterances:
        if u.index in backchannels:
            continue
        if turns and turns[-1][0].speaker == u.speaker:
            turns[-1].append(u)
        else:
            turns.append([u])
    return tuple(ConversationalTurn(t[0].speaker, tuple(t)) for t in turns)
