"""Extended "we"-language: we/I and we/you ratios and the *collaborative we*.

A "we" token is any first-person-plural word of ``lexicons/pronouns.json`` (as in
:mod:`pipeline.markers.we_language`). It is *collaborative* when it refers to therapist and client
together (the dyad working together), as opposed to an institutional "we" (the clinic: "we recommend",
"let us know"), a generic "we" ("we put a man on the moon") or the client's "we" about family,
partner or friends ("we had a fight").

The rule (cues in ``lexicons/collaborative_we.json``; spaCy parse of the utterance)
----------------------------------------------------------------------------------
A token inside quotation marks, right after a verb of saying ("I go, let's ..."), or cut off by a dash
("let's--") is never collaborative. Otherwise:

- **"let's" / "let us"**: collaborative unless it is a filler or hypothetical ("let's see." at the end
  of a sentence or clause, "let's say", "let's face it") or "let us know" (institutional).
- **therapist "we/us/our"**: the *governing verbs* are the token's syntactic head and its ``xcomp`` /
  ``conj`` verbs, plus the verbs in the next ``window_tokens`` tokens of the same clause. When the first
  of them (past "going to", "have to": the verb they govern) is an institutional verb (recommend, give,
  help, know, ...), the token is not collaborative.
  Otherwise it is collaborative when any cue fires: a modal or semi-modal before the verb ("we could
  try", "we're gonna look", "we have to explore"); a joint-activity verb ("we talked", "since we last
  met", "we've discussed"); a session noun in the window or after "our" ("our time", "a deal", "this
  conversation"); "together", "both", "the two of us" in the sentence; "for us to" + verb.
- **client "we"**: collaborative only through "let's" or as the subject of a talk verb not in the past
  tense ("what are we talking about", but not "we did not talk for days"); by default a client's "we"
  is about people outside the room.

Precision and recall on 100 hand-labelled AnnoMI utterances: ``bench/we_precision_recall.py``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pipeline.lexicons import load_lexicon, normalise_token
from pipeline.markers.dialogue import Language, Utterance, clean_text
from pipeline.types import Role

_SEMI_MODAL_HEADS = frozenset({"go", "have", "get", "need", "got", "gon"})
_MODAL_WORDS = frozenset({"can", "could", "might", "may", "will", "shall", "should", "would", "must", "'ll", "'d",
                          "ca", "wo", "sha"})


@dataclass(frozen=True)
class WeToken:
    """One first-person-plural token and the rule's decision."""

    char_start: int
    text: str
    collaborative: bool
    cue: str


def _cue_lists() -> dict[str, Any]:
    return load_lexicon("collaborative_we")


def _inside_quotes(text: str, pos: int) -> bool:
    return text[:pos].count('"') % 2 == 1


def _reported(tokens: Sequence[Any], i: int, before: frozenset[str]) -> bool:
    # "... I go, let's move on": a verb of saying within two tokens before, across a comma.
    prev = [t for t in tokens[max(0, i - 3):i] if not t.is_punct]
    return bool(prev) and prev[-1].lemma_.lower() in before and any(t.text == "," for t in tokens[max(0, i - 2):i])


def classify_we(text: str, role: Role | None, nlp: Language) -> tuple[WeToken, ...]:
    """Classify every first-person-plural token of one utterance.

    Parameters
    ----------
    text : str
        The utterance text.
    role : {"therapist", "client"} or None
        The speaker's role (the rule differs by role; None is treated as client).
    nlp : Language
        A loaded spaCy pipeline with a parser (``en_core_web_sm``).

    Returns
    -------
    tuple of WeToken
        In text order; ``cue`` names the cue that decided it (or why it was rejected).
    """
    lex = _cue_lists()
    we_words = frozenset(load_lexicon("pronouns")["first_person_plural"])
    clean = clean_text(text)
    doc = nlp(clean)
    toks = list(doc)
    out: list[WeToken] = []
    for i, tok in enumerate(toks):
        low = tok.text.lower()
        nxt = toks[i + 1] if i + 1 < len(toks) else None
        is_lets = low == "let" and nxt is not None and nxt.text.lower() in ("'s", "us")
        if not is_lets and (normalise_token(tok.text) not in we_words or low in ("'s",)):
            continue
        if low == "us" and i > 0 and toks[i - 1].text.lower() == "let":
            continue  # counted with its "let"
        if is_lets:
            out.append(_classify_lets(toks, i, clean, role, lex))
        else:
            out.append(_classify_we_token(doc, toks, i, clean, role, lex))
    return tuple(out)


def _blocked(toks: Sequence[Any], i: int, clean: str, lex: dict[str, Any]) -> str | None:
    tok = toks[i]
    if _inside_quotes(clean, tok.idx):
        return "quoted"
    if _reported(toks, i, frozenset(lex["reported_speech_before"])):
        return "reported speech"
    after = clean[tok.idx + len(tok.text): tok.idx + len(tok.text) + 2]
    nxt2 = toks[i + 2] if i + 2 < len(toks) else None
    lets_cut = tok.text.lower() == "let" and nxt2 is not None and nxt2.text.startswith("-")
    if tok.text.endswith("-") or re.match(r"-", after) or lets_cut:
        return "cut off"
    return None


def _classify_lets(toks: Sequence[Any], i: int, clean: str, role: Role | None, lex: dict[str, Any]) -> WeToken:
    tok = toks[i]
    text = tok.text + toks[i + 1].text_with_ws.rstrip()
    blocked = _blocked(toks, i, clean, lex)
    if blocked:
        return WeToken(tok.idx, text, False, blocked)
    rest = [t for t in toks[i + 2:i + 5]]
    words = [t for t in rest if not t.is_punct]
    if toks[i + 1].text.lower() == "us" and words and words[0].lemma_.lower() in lex["let_us_non_collaborative_next"]:
        return WeToken(tok.idx, text, False, "let us know")
    if not words or rest[0].is_punct:
        return WeToken(tok.idx, text, False, "let's alone")
    first = words[0]
    if first.lemma_.lower() in lex["lets_filler_next"]:
        after_first = rest[rest.index(first) + 1] if rest.index(first) + 1 < len(rest) else None
        if first.lemma_.lower() != "see" or after_first is None or after_first.is_punct:
            return WeToken(tok.idx, text, False, f"let's {first.text.lower()} (filler)")
    return WeToken(tok.idx, text, True, "let's")


def _governing_verbs(tok: Any, toks: Sequence[Any], i: int, window: int) -> list[Any]:
    verbs: list[Any] = []
    head = tok.head
    if tok.dep_ in ("nsubj", "nsubjpass") and head.pos_ in ("VERB", "AUX"):
        verbs.append(head)
        verbs += [c for c in head.children if c.dep_ in ("xcomp", "conj") and c.pos_ == "VERB"]
    for t in toks[i + 1:i + 1 + window]:
        if t.is_punct or t.dep_ == "mark" and t.i > i + 1:
            break
        if t.pos_ == "VERB":
            verbs.append(t)
    return verbs


def _classify_we_token(doc: Any, toks: Sequence[Any], i: int, clean: str, role: Role | None,
                       lex: dict[str, Any]) -> WeToken:
    tok = toks[i]
    low = normalise_token(tok.text)
    text = tok.text
    if i + 1 < len(toks) and toks[i + 1].text.startswith("'") and toks[i + 1].whitespace_ == "":
        text += toks[i + 1].text
    blocked = _blocked(toks, i, clean, lex)
    if blocked:
        return WeToken(tok.idx, text, False, blocked)
    window = int(lex["window_tokens"])
    verbs = _governing_verbs(tok, toks, i, window)
    lemmas = {v.lemma_.lower() for v in verbs}
    main = verbs[0] if verbs else None
    while main is not None and main.lemma_.lower() in _SEMI_MODAL_HEADS:
        # "we're gonna be giving", "we have to explore": the verb that carries the meaning is the xcomp
        nxt = next((c for c in main.children if c.dep_ == "xcomp" and c.pos_ in ("VERB", "AUX")), None)
        if nxt is None:
            break
        main = nxt
    head_lemma = main.lemma_.lower() if main is not None else ""
    sent = tok.sent.text.lower() if doc.has_annotation("SENT_START") else clean.lower()
    if role == "therapist":
        if head_lemma in lex["institutional_verbs"]:
            return WeToken(tok.idx, text, False, f"institutional verb: {head_lemma}")
        if low == "our":
            nxt = [t for t in toks[i + 1:i + 4] if not t.is_punct]
            if any(t.text.lower() in lex["session_nouns"] for t in nxt):
                return WeToken(tok.idx, text, True, "our + session noun")
            return WeToken(tok.idx, text, False, "our + other noun")
        span = []
        for t in toks[i + 1:i + 1 + window + 2]:
            if t.is_punct and t.text not in ("'", "-"):
                break
            span.append(t)
        aux_words = {t.text.lower() for t in span}
        aux_words |= {c.text.lower() for v in verbs for c in v.children if c.dep_ == "aux"}
        if verbs and (aux_words & _MODAL_WORDS or any(t.tag_ == "MD" for t in span[:3])):
            return WeToken(tok.idx, text, True, "modal + verb")
        if verbs and lemmas & {"go", "have", "get", "need"} and any(
                c.dep_ == "xcomp" for v in verbs for c in v.children):
            return WeToken(tok.idx, text, True, "semi-modal + verb")
        if lemmas & set(lex["joint_verbs"]):
            return WeToken(tok.idx, text, True, "joint verb: " + ",".join(sorted(lemmas & set(lex["joint_verbs"]))))
        if any(t.text.lower() in lex["session_nouns"] for t in span):
            return WeToken(tok.idx, text, True, "session noun")
        if any(re.search(rf"\b{re.escape(w)}\b", sent) for w in lex["together_words"]):
            return WeToken(tok.idx, text, True, "together")
        before = toks[i - 1].text.lower() if i > 0 else ""
        after_tok = toks[i + 1].text.lower() if i + 1 < len(toks) else ""
        if low == "us" and before == "for" and after_tok == "to":
            return WeToken(tok.idx, text, True, "for us to")
        return WeToken(tok.idx, text, False, "no cue")
    head_verbs = {v.lemma_.lower() for v in verbs if v.i == tok.head.i}
    past = tok.head.tag_ in ("VBD", "VBN") or any(c.dep_ == "aux" and c.tag_ == "VBD" for c in tok.head.children)
    # "we never really talk anymore": a negated or habitual talk verb describes a relationship, not a
    # request to talk here
    habitual = any(c.dep_ == "neg" or c.lower_ in _HABITUAL_ADVERBS for c in tok.head.children)
    if (tok.dep_ in ("nsubj", "nsubjpass") and head_verbs & set(lex["client_joint_verbs"]) and not past
            and not habitual):
        return WeToken(tok.idx, text, True, "client talk verb")
    return WeToken(tok.idx, text, False, "client default")


_HABITUAL_ADVERBS = frozenset({"never", "anymore", "always", "usually", "often", "rarely", "hardly", "seldom"})


@dataclass(frozen=True)
class WeEvent:
    """A classified "we" token placed in time (times of the utterance word that holds it)."""

    utterance: Utterance
    token: WeToken
    start_s: float
    end_s: float


def find_collaborative_we(utterances: Sequence[Utterance], nlp: Language) -> tuple[WeEvent, ...]:
    """Classify the "we" tokens of every utterance; times are those of the word holding each token."""
    out: list[WeEvent] = []
    for u in utterances:
        if not any(normalise_token(w.text) in _WE_OR_LET for w in u.words):
            continue
        tokens = classify_we(u.text, u.role, nlp)
        # map char offsets of the cleaned text back to words: nearest word by running offset
        offsets, pos = [], 0
        clean_words = [clean_text(w.text) for w in u.words]
        for cw in clean_words:
            offsets.append(pos)
            pos += len(cw) + (1 if cw else 0)
        for t in tokens:
            k = max((j for j, o in enumerate(offsets) if o <= t.char_start), default=0)
            w = u.words[k]
            out.append(WeEvent(u, t, w.start_s, w.end_s))
    return tuple(out)


_WE_OR_LET = frozenset(load_lexicon("pronouns")["first_person_plural"]) | {"let"}
