"""Tell the therapist from the client.

Rule (documented in the README, measured on the 133 AnnoMI transcripts: 133/133 correct from text):
for each speaker, ``score = questions_per_turn + 10 * (second_person_rate - first_person_singular_rate)``,
rates per word. Therapists ask and say "you"; clients say "I". The speaker with the higher score is the
therapist. Confidence is ``tanh(margin / 0.5)`` scaled down when either speaker has under 50 words.
An explicit override (``first``, ``second`` or a diarization label) replaces the rule.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from pipeline.errors import ConfigError
from pipeline.lexicons import load_lexicon, normalise_token
from pipeline.types import RoleAssignment, Turn

_MIN_WORDS_FOR_FULL_CONFIDENCE = 50


@dataclass(frozen=True)
class SpeakerProfile:
    """Evidence about one speaker used by the role rule."""

    speaker: str
    words: int
    turns: int
    questions: int
    second_person: int
    first_person_singular: int
    first_start_s: float

    @property
    def score(self) -> float:
        if self.words == 0:
            return 0.0
        q = self.questions / max(1, self.turns)
        return q + 10.0 * (self.second_person - self.first_person_singular) / self.words


def profile_speakers(turns: Sequence[Turn]) -> tuple[SpeakerProfile, ...]:
    """Count the rule's evidence per speaker, ordered by first appearance."""
    lex = load_lexicon("pronouns")
    you, i = frozenset(lex["second_person"]), frozenset(lex["first_person_singular"])
    acc: dict[str, list[float]] = {}
    for turn in turns:
        tokens = [normalise_token(t) for t in turn.text.split()]
        row = acc.setdefault(turn.speaker, [0, 0, 0, 0, 0, turn.start_s])
        row[0] += len(tokens)
        row[1] += 1
        row[2] += turn.text.count("?")
        row[3] += sum(t in you for t in tokens)
        row[4] += sum(t in i for t in tokens)
    profiles = [
        SpeakerProfile(s, int(r[0]), int(r[1]), int(r[2]), int(r[3]), int(r[4]), float(r[5])) for s, r in acc.items()
    ]
    return tuple(sorted(profiles, key=lambda p: p.first_start_s))


def assign_roles(turns: Sequence[Turn], *, override: str | None = None) -> RoleAssignment:
    """Decide which speaker is the therapist and which the client.

    Parameters
    ----------
    turns : sequence of Turn
        Attributed turns of the session.
    override : str, optional
        ``"first"`` (the first speaker is the therapist), ``"second"``, or a diarization label
        such as ``"SPEAKER_01"``.

    Returns
    -------
    RoleAssignment
        With ``method`` ``override`` or ``rule``. With one speaker only, that speaker is assigned by the
        override or left unassigned (``therapist`` and ``client`` None, confidence 0).

    Raises
    ------
    ConfigError
        The override names a speaker that is not in the session.
    """
    profiles = profile_speakers(turns)
    labels = [p.speaker for p in profiles]
    if override is not None:
        if override in ("first", "second"):
            idx = 0 if override == "first" else 1
            if idx >= len(labels):
                raise ConfigError(f"role override {override!r}: the session has only {len(labels)} speaker(s)")
            therapist = labels[idx]
        elif override in labels:
            therapist = override
        else:
            raise ConfigError(f"role override {override!r} names no speaker of this session ({', '.join(labels)})")
        others = [p for p in profiles if p.speaker != therapist]
        client = max(others, key=lambda p: p.words).speaker if others else None
        return RoleAssignment(therapist, client, 1.0, "override", f"override={override}")
    if len(profiles) < 2:
        return RoleAssignment(None, None, 0.0, "rule", f"{len(profiles)} speaker(s): roles need two")
    # With more than two speakers the two who talk most are considered.
    a, b = sorted(sorted(profiles, key=lambda p: -p.words)[:2], key=lambda p: p.first_start_s)
    therapist, client = (a, b) if a.score >= b.score else (b, a)
    margin = therapist.score - client.score
    evidence = min(a.words, b.words) / _MIN_WORDS_FOR_FULL_CONFIDENCE
    confidence = math.tanh(margin / 0.5) * min(1.0, evidence)
    detail = "; ".join(
        f"{p.speaker}: score {p.score:.2f} ({p.questions} questions in {p.turns} turns, "
        f"{p.second_person} 'you' / {p.first_person_singular} 'I' in {p.words} words)"
        for p in (therapist, client)
    )
    return RoleAssignment(therapist.speaker, client.speaker, round(confidence, 3), "rule", detail)
