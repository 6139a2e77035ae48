"""Therapist alliance work, client engagement and rupture candidates (lexical rules).

All patterns are in ``lexicons/alliance_work.json`` (regular expressions, case-insensitive). Every
event is a *candidate* for a supervisor to review, stored with its time and quote; none is a verdict.

Therapist alliance work (per therapist conversational turn)
-----------------------------------------------------------
- *process talk*: talk about the relationship or the process ("how does that land for you", "is this
  helpful", "did I get that right", "is it okay if we ...");
- *agenda setting*: inviting the client to set the session's focus ("what would you like to talk
  about", "how would you like to use our time", "where would you like to start");
- *session summary*: a summary cue ("to sum up", "what I'm hearing", "we've talked about") in a turn
  ending in the last ``summary_tail_share`` (default 0.2) of the session's speech; it *invites
  correction* when it has a correction invitation ("did I miss anything", "does that sound right") or
  ends with a question;
- *self-disclosure*: a sentence about the therapist's own life (family words after "my", "when I was",
  "in my experience", "I used to smoke", ...), with an intimacy level: 3 high (a current struggle:
  "I'm struggling with", "these days I"), 2 medium (a past challenge: "struggled", "quit", "went
  through", "when I was"), 1 low (anything else: a hobby, a family mention). After Henretty &
  Levitt's (2010) content/intimacy distinction, reduced to three lexical levels.

Client engagement
-----------------
- *client question*: each question sentence (tag questions excluded) in a client conversational turn.

Rupture candidates (Safran & Muran's marker families)
-----------------------------------------------------
- *withdrawal*: a minimal response, deflection or topic shift after a probe (:mod:`.topic`), a long
  silence (>= ``long_silence_s``, default 3 s) before the client's reply to a probe, or deference
  ("whatever you think", "you're the expert");
- *confrontation*: a complaint about the therapist or the therapy ("this isn't helping", "you don't
  understand", "waste of time"), or rejecting an intervention: a client reply starting with a
  rejection ("no,", "yeah, but", "I've tried that") to a therapist turn with a suggestion cue ("you
  could", "have you thought about", "how about").
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache

from pipeline.errors import ConfigError
from pipeline.lexicons import load_lexicon
from pipeline.markers.backchannels import ConversationalTurn
from pipeline.markers.dialogue import clean_text, question_sentences, sentences
from pipeline.markers.silences import Silence
from pipeline.markers.topic import ProbeReply


@dataclass(frozen=True)
class AllianceOptions:
    summary_tail_share: float = 0.2
    long_silence_s: float = 3.0

    def __post_init__(self) -> None:
        if not 0.0 < self.summary_tail_share <= 1.0:
            raise ConfigError(f"summary_tail_share must be in (0, 1], got {self.summary_tail_share!r}")
        if not self.long_silence_s > 0:
            raise ConfigError(f"long_silence_s must be > 0, got {self.long_silence_s!r}")


@dataclass(frozen=True)
class TextEvent:
    """A candidate event: ``kind``, the turn it is in, the triggering quote and extra fields."""

    kind: str
    turn: ConversationalTurn
    quote: str
    value: float = 1.0
    subtype: str | None = None
    extra: tuple[tuple[str, object], ...] = ()


@cache
def _patterns(key: str) -> tuple[re.Pattern[str], ...]:
    return tuple(re.compile(p, re.IGNORECASE) for p in load_lexicon("alliance_work")[key])


def first_match(key: str, text: str) -> str | None:
    """The first text matched by any pattern of ``alliance_work.json[key]``, or None."""
    for p in _patterns(key):
        m = p.search(text)
        if m:
            return m.group(0)
    return None


def _sentence_with(text: str, fragment: str) -> str:
    for s in sentences(text):
        if fragment.lower() in s.lower():
            return s
    return text


def disclosure_intimacy(sentence: str) -> int:
    """1 low, 2 medium, 3 high (module docstring)."""
    if first_match("disclosure_high", sentence):
        return 3
    if first_match("disclosure_medium", sentence):
        return 2
    return 1


def therapist_alliance_work(turns: Sequence[ConversationalTurn], *,
                            options: AllianceOptions = AllianceOptions()) -> tuple[TextEvent, ...]:
    """Process talk, agenda setting, session summaries and self-disclosure in therapist turns."""
    if not turns:
        return ()
    t0, t1 = turns[0].start_s, max(t.end_s for t in turns)
    tail_from = t1 - options.summary_tail_share * (t1 - t0)
    out: list[TextEvent] = []
    for t in turns:
        if t.role != "therapist":
            continue
        text = clean_text(t.text)
        for kind in ("process_talk", "agenda_setting"):
            hit = first_match(kind, text)
            if hit:
                out.append(TextEvent(kind, t, _sentence_with(text, hit)))
        if t.end_s > tail_from:
            hit = first_match("summary_cues", text)
            if hit:
                invite = first_match("correction_invites", text) or (text.rstrip().endswith("?") and "question")
                out.append(TextEvent("session_summary", t, _sentence_with(text, hit), 1.0,
                                     "invites_correction" if invite else "no_invitation",
                                     (("invitation", invite or None),)))
        for s in sentences(text):
            hit = first_match("self_disclosure", s)
            if hit:
                level = disclosure_intimacy(s)
                pos = (t.start_s - t0) / (t1 - t0) if t1 > t0 else 0.0
                out.append(TextEvent("self_disclosure", t, s, float(level), ("low", "medium", "high")[level - 1],
                                     (("session_position", round(pos, 3)), ("cue", hit))))
    return tuple(out)


def client_questions(turns: Sequence[ConversationalTurn]) -> tuple[TextEvent, ...]:
    """Every question sentence in client turns."""
    return tuple(TextEvent("client_question", t, q) for t in turns if t.role == "client"
                 for q in question_sentences(t.text))


def rupture_candidates(
    turns: Sequence[ConversationalTurn],
    probes: Sequence[ProbeReply],
    silences: Sequence[Silence],
    *,
    client_speaker: str | None,
    options: AllianceOptions = AllianceOptions(),
) -> tuple[TextEvent, ...]:
    """Withdrawal and confrontation candidates (module docstring); ``subtype`` names the family."""
    out: list[TextEvent] = []
    for p in probes:
        if p.reply is None:
            continue
        base = (("probe", clean_text(p.question)),)
        if p.minimal:
            out.append(TextEvent("rupture_candidate", p.reply, clean_text(p.reply.text), 1.0, "withdrawal",
                                 (("marker", "minimal_response"),) + base))
        elif p.deflection:
            out.append(TextEvent("rupture_candidate", p.reply, clean_text(p.reply.text), 1.0, "withdrawal",
                                 (("marker", "deflection"),) + base))
        elif p.topic_shift:
            out.append(TextEvent("rupture_candidate", p.reply, clean_text(p.reply.text)[:300], 1.0, "withdrawal",
                                 (("marker", "topic_shift"), ("similarity", p.similarity)) + base))
        gap = [s for s in silences if s.kind == "switch" and s.after_speaker == client_speaker
               and s.duration_s >= options.long_silence_s
               and p.probe.start_s <= s.start_s and s.end_s <= p.reply.start_s + 0.5]
        if gap:
            out.append(TextEvent("rupture_candidate", p.reply, clean_text(p.reply.text)[:300], gap[0].duration_s,
                                 "withdrawal", (("marker", "silence_after_probe"),
                                                ("silence_s", round(gap[0].duration_s, 3))) + base))
    for k, t in enumerate(turns):
        if t.role != "client":
            continue
        text = clean_text(t.text)
        hit = first_match("deference", text)
        if hit:
            out.append(TextEvent("rupture_candidate", t, _sentence_with(text, hit), 1.0, "withdrawal",
                                 (("marker", "deference"),)))
        hit = first_match("complaints", text)
        if hit:
            out.append(TextEvent("rupture_candidate", t, _sentence_with(text, hit), 1.0, "confrontation",
                                 (("marker", "complaint"),)))
        prev = turns[k - 1] if k > 0 else None
        if prev is not None and prev.role == "therapist":
            cue = first_match("suggestion_cues", clean_text(prev.text))
            first = sentences(text)[0] if sentences(text) else ""
            hit = first_match("rejections", first) if cue else None
            if hit:
                out.append(TextEvent("rupture_candidate", t, first, 1.0, "confrontation",
                                     (("marker", "rejecting_intervention"), ("suggestion", cue))))
    return tuple(sorted(out, key=lambda e: e.turn.start_s))
