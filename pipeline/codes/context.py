"""What a coder sees of a conversation: the utterance and what came before it, never what came after.

Pure functions over a sequence of :class:`CodingUtterance` (one per utterance or turn, in time order).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from pipeline.types import Utterance

#: One utterance or turn a coder sees (:class:`pipeline.types.Utterance`: role, text, times when known).
CodingUtterance = Utterance


@dataclass(frozen=True)
class Context:
    """The inputs of one coding decision.

    ``previous`` is the utterance just before (either person), ``previous2`` the one before that,
    ``other_last`` the other person's most recent utterance, ``own_last`` the speaker's own previous
    utterance; ``position`` is the index over the count.
    """

    text: str
    role: str
    previous: str
    previous_role: str
    previous2: str
    other_last: str
    own_last: str
    position: float


def contexts(utterances: Sequence[CodingUtterance]) -> list[Context]:
    """One :class:`Context` per utterance, built left to right (nothing after an utterance is used)."""
    last: dict[str, str] = {}
    out: list[Context] = []
    n = max(1, len(utterances) - 1)
    previous, previous_role, previous2 = "", "", ""
    for i, u in enumerate(utterances):
        other = "client" if u.role == "therapist" else "therapist"
        out.append(
            Context(
                text=u.text,
                role=u.role,
                previous=previous,
                previous_role=previous_role,
                previous2=previous2,
                other_last=last.get(other, ""),
                own_last=last.get(u.role, ""),
                position=i / n,
            )
        )
        last[u.role] = u.text
        previous2, previous, previous_role = previous, u.text, u.role
    return out
