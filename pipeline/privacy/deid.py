"""De-identification of transcript text: direct identifiers replaced by typed placeholders.

``deidentify("Hi Anna, call me on 020 7946 0958")`` gives ``"Hi [PERSON], call me on [PHONE]"`` and the
replaced character spans of the *original* text. Pure functions: the input is never changed and nothing
is written anywhere.

Labels (what is redacted)
-------------------------
========== ==================================================================================
PERSON     names of people, including nicknames and pets' names; titles ("Dr.", "Aunt") are kept
PLACE      named places of any size (countries, cities, suburbs, streets, landmarks), street
           addresses and postcodes / ZIP codes
ORG        named organisations (employers, schools, clinics, companies, teams, agencies)
NAME       a proper name of unknown kind: a capitalised word inside a sentence that no other
           source typed (see ``capitalised_words`` in :class:`DeidOptions`)
DATE       absolute dates: month names, day-of-month dates, numeric dates, years in a date
           context. Relative dates ("last week", "today", "in two weeks") and a weekday alone
           ("on Friday") are kept: they do not identify anyone and carry the session's timeline
AGE        a stated age ("I'm 28", "my 15-year-old", "since I was 14", "aged 35")
PHONE      phone numbers (US, UK and international forms; also seven or more spoken digits)
EMAIL      e-mail addresses (also the spoken form "anna dot smith at gmail dot com")
URL        web addresses (``http(s)://``, ``www.``, bare domains with a common top-level domain)
ID_NUMBER  identity numbers: SSN, NHS-style and other long digit groups, UK National Insurance
           numbers, letter-and-digit codes
========== ==================================================================================

Kept on purpose: kinship and role words ("Mom", "my GP", "the hospital"), "God", drug and product
names, clinical acronyms, nationalities, holidays, weekdays, numbers that are not ages (scale answers,
drinks per week, money, clock times, transcript timestamps).

Sources, combined
-----------------
- ``"pattern"``: regular expressions (the labels above; greeting, self-introduction, title and
  vocative cues for names: "Hi, Anna", "my name is Anna", "Dr. Smith", "..., Anna?"; "moved to X",
  "from X" for places; "X High School", "X Pharmacy" for organisations) and the capitalised-word
  fallback (``NAME``). Transcripts are sentence-cased (Whisper output, professional transcripts), so a
  capitalised word after a lowercase word or a comma is nearly always a proper noun; kinship words,
  "God", weekdays, months, interjections, drug names and clinical acronyms are excluded by word lists.
  The word lists (stop words, titles, cue words, street and organisation words, ...) are data, in the
  versioned lexicon ``pipeline/lexicons/deid.json``; the patterns here combine them.
  Lower-cased text defeats this fallback and the name cues (and much of the NER).
- ``"ner"``: spaCy named entities (PERSON; GPE, LOC, FAC as PLACE; ORG; DATE filtered to absolute
  dates, "N years old" as AGE; spans with digits are left to the patterns). Only when an ``nlp`` with
  an ``ner`` component is passed. Without it, recall drops (names at the start of a sentence,
  lower-case names, organisations: 0.93 against 0.99 span recall on the labelled AnnoMI set, see
  ``bench/deid_precision_recall.py``) and far fewer spans carry their type (most become ``NAME``).
- ``"known_name"``: the client's own list (client, partner, children, ...), matched
  case-insensitively on word boundaries; a multi-word name also matches each of its words; a
  possessive ("Anna's") is matched with the "'s" left outside the span.

Overlapping spans merge into their union, labelled by the widest span (a typed label always beats
``NAME``; equal widths: known name, then pattern, then NER); same-label spans separated by one space or
hyphen merge too ("Mary-Mary", "John Carlo").

The spaCy pipeline of :func:`pipeline.engine.runtime.get_nlp` excludes NER; use :func:`get_ner_nlp`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from pipeline.errors import ConfigError
from pipeline.lexicons import load_lexicon

LABELS: tuple[str, ...] = ("PERSON", "PLACE", "ORG", "NAME", "DATE", "AGE", "PHONE", "EMAIL", "URL", "ID_NUMBER")
SOURCES: tuple[str, ...] = ("known_name", "pattern", "ner")
#: Tie-break when two overlapping spans are equally wide (earlier wins).
_LABEL_PRIORITY = {lab: i for i, lab in enumerate(("EMAIL", "URL", "DATE", "ID_NUMBER", "PHONE", "AGE",
                                                   "PERSON", "ORG", "PLACE", "NAME"))}
_SOURCE_PRIORITY = {src: i for i, src in enumerate(SOURCES)}


@dataclass(frozen=True)
class DeidOptions:
    """What to redact and how.

    Parameters
    ----------
    labels : frozenset of str
        Labels to redact (a non-empty subset of :data:`LABELS`); spans of other labels are left in.
    placeholder : str
        Replacement text, formatted with ``label`` (default ``"[{label}]"``); must not be empty.
    known_names_ignore_case : bool
        Match known names in any case ("anna", "ANNA"). A name that is also a common word ("Will",
        "Hope") is then redacted wherever the word appears: recall first.
    name_cues : bool
        Use the greeting, self-introduction, title and vocative patterns for names.
    capitalised_words : bool
        Redact, as ``NAME``, capitalised words inside a sentence that no other source labelled
        (transcripts are sentence-cased, so these are mostly proper nouns).
    """

    labels: frozenset[str] = field(default_factory=lambda: frozenset(LABELS))
    placeholder: str = "[{label}]"
    known_names_ignore_case: bool = True
    name_cues: bool = True
    capitalised_words: bool = True

    def __post_init__(self) -> None:
        if not isinstance(self.labels, frozenset) or not self.labels:
            raise ConfigError(f"labels must be a non-empty frozenset of {LABELS}, got {self.labels!r}")
        unknown = sorted(set(self.labels) - set(LABELS))
        if unknown:
            raise ConfigError(f"unknown labels {unknown}; known: {LABELS}")
        if not isinstance(self.placeholder, str) or not self.placeholder:
            raise ConfigError(f"placeholder must be a non-empty string, got {self.placeholder!r}")
        try:
            self.placeholder.format(label="PERSON")
        except (KeyError, IndexError, ValueError) as e:
            raise ConfigError(f"placeholder {self.placeholder!r} must format with only {{label}}: {e}") from e


@dataclass(frozen=True, order=True)
class RedactedSpan:
    """One redacted span: ``original[start:end]`` (character offsets, end exclusive)."""

    start: int
    end: int
    label: str
    source: str


@dataclass(frozen=True)
class Redaction:
    """The redacted text and the spans of the original text that were replaced, in text order."""

    text: str
    spans: tuple[RedactedSpan, ...]


@lru_cache(maxsize=1)
def get_ner_nlp() -> Any:
    """The pinned spaCy English pipeline *with* NER, loaded once per process.

    Raises
    ------
    pipeline.errors.ModelMissingError
        The model package is not installed at the pinned version.
    """
    import spacy

    from models.store import load_manifest, require_python_package

    return spacy.load(require_python_package(load_manifest()["spacy-en-core-web-sm"]))


def deidentify(text: str, *, nlp: Any = None, known_names: Sequence[str] = (),
               options: DeidOptions = DeidOptions()) -> Redaction:
    """Replace the direct identifiers of one text by typed placeholders.

    Parameters
    ----------
    text : str
        The text (an utterance or a whole transcript); not modified.
    nlp : spacy.Language or None
        A pipeline with an ``ner`` component (:func:`get_ner_nlp`). None: patterns and known names only.
    known_names : sequence of str
        Names of the people of this client's sessions (client, partner, children, ...).
    options : DeidOptions
        What to redact and how.

    Returns
    -------
    Redaction
        The redacted text and the replaced spans (offsets into ``text``, in characters).

    Raises
    ------
    pipeline.errors.ConfigError
        A known name with fewer than two letters, ``known_names`` given as one string, or an ``nlp``
        without an ``ner`` component.
    """
    return deidentify_many([text], nlp=nlp, known_names=known_names, options=options)[0]


def deidentify_many(texts: Iterable[str], *, nlp: Any = None, known_names: Sequence[str] = (),
                    options: DeidOptions = DeidOptions(),
                    batch_size: int = 64) -> list[Redaction]:
    """:func:`deidentify` over many texts, NER run in batches (``nlp.pipe``, other components off).

    Parameters
    ----------
    texts : iterable of str
        The texts; not modified.
    nlp, known_names, options
        As for :func:`deidentify`.
    batch_size : int
        Texts per ``nlp.pipe`` batch (>= 1).

    Returns
    -------
    list of Redaction
        One per text, in order.
    """
    texts = list(texts)
    for i, t in enumerate(texts):
        if not isinstance(t, str):
            raise TypeError(f"texts[{i}] must be str, got {type(t).__name__}: {t!r:.60}")
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ConfigError(f"batch_size must be an int >= 1, got {batch_size!r}")
    if isinstance(known_names, str):
        raise ConfigError(f"known_names must be a sequence of names, not one string: {known_names!r}")
    names = _known_name_regex(tuple(known_names), options.known_names_ignore_case)
    if nlp is None:
        ents: list[list[tuple[int, int, str]]] = [[] for _ in texts]
    else:
        if "ner" not in getattr(nlp, "pipe_names", ()):
            raise ConfigError(f"nlp has no 'ner' component (pipes: {list(getattr(nlp, 'pipe_names', []))}); "
                              "use pipeline.privacy.deid.get_ner_nlp()")
        disable = [p for p in nlp.pipe_names if p != "ner" and not _feeds_ner(nlp, p)]
        ents = [[(e.start_char, e.end_char, e.label_) for e in doc.ents]
                for doc in nlp.pipe(texts, batch_size=batch_size, disable=disable)]
    return [_redact(t, e, names, options) for t, e in zip(texts, ents, strict=True)]


# ---------------------------------------------------------------- internals

def _feeds_ner(nlp: Any, pipe: str) -> bool:
    # A shared tok2vec that the NER listens to must stay on (in en_core_web_sm the NER has its own).
    return "ner" in getattr(nlp.get_pipe(pipe), "listening_components", ())


def _redact(text: str, ents: list[tuple[int, int, str]], names: re.Pattern[str] | None,
            options: DeidOptions) -> Redaction:
    found: list[RedactedSpan] = []
    if names is not None:
        found += [RedactedSpan(m.start(), m.end(), "PERSON", "known_name") for m in names.finditer(text)]
    found += _pattern_spans(text, name_cues=options.name_cues, capitalised=options.capitalised_words)
    found += _ner_spans(text, ents)
    spans = _merge([s for s in found if s.label in options.labels and s.end > s.start], text)
    out, pos = [], 0
    for s in spans:
        out += [text[pos:s.start], options.placeholder.format(label=s.label)]
        pos = s.end
    out.append(text[pos:])
    return Redaction("".join(out), tuple(spans))


def _merge(spans: list[RedactedSpan], text: str) -> list[RedactedSpan]:
    """Union of overlapping spans (label and source of the widest), then same-label neighbours."""
    def rank(s: RedactedSpan) -> tuple[bool, int, int, int]:  # untyped NAME loses to any typed label
        return (s.label == "NAME", -(s.end - s.start), _SOURCE_PRIORITY[s.source], _LABEL_PRIORITY[s.label])

    merged: list[RedactedSpan] = []
    group: list[RedactedSpan] = []
    for s in sorted(spans):
        if group and s.start >= max(g.end for g in group):
            merged.append(_union(group, rank))
            group = []
        group.append(s)
    if group:
        merged.append(_union(group, rank))
    out: list[RedactedSpan] = []
    for s in merged:
        prev = out[-1] if out else None
        if prev and prev.label == s.label and re.fullmatch(r"[ \-]?", text[prev.end:s.start]):
            out[-1] = RedactedSpan(prev.start, s.end, s.label, min(prev, s, key=rank).source)
        else:
            out.append(s)
    return out


def _union(group: list[RedactedSpan], rank: Any) -> RedactedSpan:
    best = min(group, key=rank)
    return RedactedSpan(min(g.start for g in group), max(g.end for g in group), best.label, best.source)


_LEX = load_lexicon("deid")


def _alt(words: Iterable[str], *, curly: bool = False) -> str:
    """A regex alternation of literal words and phrases, tried in the given order.

    Special characters are escaped, a space matches any run of whitespace and (``curly``) an apostrophe
    matches a curly one too.
    """
    alts = (r"\s+".join(map(re.escape, w.split())) for w in words)
    return "|".join(a.replace("'", r"['\u2019]") if curly else a for a in alts)


_TITLES = frozenset(_LEX["known_name_titles"])


@lru_cache(maxsize=64)
def _known_name_regex(names: tuple[str, ...], ignore_case: bool) -> re.Pattern[str] | None:
    variants: set[str] = set()
    for n in names:
        if not isinstance(n, str) or len(re.findall(r"[^\W\d_]", n)) < 2:
            raise ConfigError(f"known name {n!r} must be a string with at least two letters")
        words = n.split()
        variants.add(" ".join(words))
        variants.update(w for w in words if len(w) >= 2 and w.lower() not in _TITLES)
    if not variants:
        return None
    alts = "|".join(r"\s+".join(map(re.escape, v.split())) for v in sorted(variants, key=len, reverse=True))
    return re.compile(rf"(?<!\w)(?:{alts})(?!\w)", re.IGNORECASE if ignore_case else 0)


# ---- patterns

_UNITS = _alt(_LEX["number_units"])
_TEENS = _alt(_LEX["number_teens"])
_TENS = _alt(_LEX["number_tens"])
_NUMWORD = rf"(?:(?:{_TENS})(?:[- ](?:{_UNITS}))?|{_TEENS}|{_UNITS})"
_AGE_NUM = rf"(?:1[01]\d|\d{{1,2}}|{_NUMWORD})"
_MONTH = _alt(_LEX["months"]) + "|" + _alt(_LEX["month_abbreviations"])
_MONTH_FULL_NOT_MAY = _alt(m for m in _LEX["months"] if m != "May")  # "may" is mostly the verb
_WEEKDAY = _alt(_LEX["weekdays"])
_ORDWORD = "|".join([_alt(_LEX["ordinals"]), *(f"{re.escape(tens)}[- ](?:{_alt(units)})"
                                              for tens, units in _LEX["compound_ordinals"].items())])
_DAY = rf"(?:[0-3]?\d(?:st|nd|rd|th)?|{_ORDWORD})"
_YEAR = r"(?:1[89]\d\d|20\d\d)"
_WD = rf"(?:(?:{_WEEKDAY}),?\s+)?"
_NAME = r"[A-Z][a-z]+(?:[A-Z][a-z]+)*(?:[-'\u2019][A-Z][a-z]+)*"  # Anna, McDonald, O'Brien, Mary-Jane
_KIN = _alt(_LEX["kin"])
_POSSESSIVE = _alt(_LEX["possessives"])
_AGE_UNIT = _alt(_LEX["age_units"])
_AGE_VERB = (r"(?:'s\s+turning|'m|'s|'re|\s+am|\s+is|\s+are|\s+was|\s+were|\s+turn(?:s|ed|ing)?|"
             rf"(?:(?:'m|'re|'s|\s+am|\s+are|\s+is)?\s+(?:{_alt(_LEX['age_modals'])})|'ll|'d)"
             r"(?:\s+have)?\s+(?:be|been|turn))").replace("'", "['\u2019]")
_AGE_FOLLOW = (r"(?=\s*(?:$|[.,;:!?)\"\u2014\u2013-]|\s(?:" + _alt(_LEX["age_followers"]) + r")\b))")
_SPOKEN_DIGIT = f"(?:{_alt(_LEX['spoken_digits'])})"
_STREET = _alt(_LEX["street_types"])
_STREET_NUMBERED = _STREET + "|" + _alt(_LEX["street_types_after_number"])

_ORG_HEAD = _alt(_LEX["organisation_heads"])

_ID_CONTEXT = re.compile(rf"(?i)\b(?:{_alt(_LEX['id_context_words'])})\b[^.?!\d]{{0,25}}$")

# (label, compiled pattern, group holding the span or 0)
_PATTERNS: tuple[tuple[str, re.Pattern[str], int], ...] = tuple(
    (lab, re.compile(rx, flags), grp) for lab, rx, flags, grp in (
        ("EMAIL", r"\b[\w.+-]+@[\w-]+(?:\.[\w-]+)+\b", 0, 0),
        ("EMAIL", rf"\b\w+(?:\s+dot\s+\w+)*\s+at\s+\w+(?:\s+dot\s+(?:{_alt(_LEX['spoken_email_domains'])}))+\b",
         re.I, 0),
        ("URL", r"\b(?:https?://|www\.)[^\s<>\"]*[^\s<>\".,;:!?)\]]", re.I, 0),
        ("URL", rf"\b(?:[a-z0-9-]+\.)+(?:{_alt(_LEX['url_domains'])})\b(?:/[^\s<>\"]*"
         r"[^\s<>\".,;:!?)\]])?", re.I, 0),
        ("ID_NUMBER", r"\b\d{3}-\d{2}-\d{4}\b", 0, 0),
        ("ID_NUMBER", r"\b[A-CEGHJ-PR-TW-Z]{2}\s?\d{2}\s?\d{2}\s?\d{2}\s?[A-D]\b", 0, 0),
        ("ID_NUMBER", r"\b(?=[A-Z0-9-]*\d[A-Z0-9-]*\d[A-Z0-9-]*\d)(?=[A-Z0-9-]*[A-Z])[A-Z0-9]+(?:-[A-Z0-9]+)*\b", 0, 0),
        ("PHONE", r"(?<![\w/:.,])(?:\+\d{1,3}[\s.-]?)?(?:\(\d{1,5}\)[\s.-]?)?\d{2,6}(?:[\s.-]\d{2,6}){1,4}"
         r"(?![\w/:]|[.,]\d)", 0, 0),
        ("PHONE", r"(?<![\w/:.,])(?:\+\d{7,14}|0\d{9,10})(?![\w/:]|[.,]\d)", 0, 0),
        ("ID_NUMBER", r"(?<![\w/:.,+])[1-9]\d{5,}(?![\w/:]|[.,]\d)", 0, 0),
        ("PHONE", rf"\b{_SPOKEN_DIGIT}(?:[\s,-]+{_SPOKEN_DIGIT}){{6,}}\b", re.I, 0),
        ("DATE", r"\b(?:\d{4}-\d{1,2}-\d{1,2}|\d{1,2}[/.-]\d{1,2}[/.-](?:\d{4}|\d{2}))\b", 0, 0),
        ("DATE", rf"\b{_WD}(?:the\s+)?{_DAY}\s+(?:of\s+)?(?:{_MONTH})(?:,?\s+{_YEAR})?\b", 0, 0),
        ("DATE", rf"\b{_WD}(?:{_MONTH})\s+(?:the\s+)?{_DAY}(?:,?\s+{_YEAR})?\b"
         rf"(?!\s*(?:{_alt(_LEX['not_date_after_month_day'])}))", 0, 0),
        ("DATE", rf"\b(?:{_MONTH}),?\s+{_YEAR}\b", 0, 0),
        ("DATE", rf"\b(?:{_MONTH_FULL_NOT_MAY})\b", 0, 0),
        ("DATE", rf"(?i:\b(?:{_alt(_LEX['may_month_cues'])})\s+)(May)\b"
         rf"(?!\s+(?:{_alt(_LEX['may_not_month_before'])})\b)", 0, 1),
        ("DATE", rf"(?i:\b(?:{_alt(_LEX['year_cues'])})\s+(?:the\s+)?(?:year\s+)?)({_YEAR}s?)\b"
         rf"(?!\s*(?:{_alt(_LEX['year_not_before'])}))", 0, 1),
        ("DATE", r"\b(?:1[89]|20)\d0s\b", 0, 0),
        ("DATE", r"(?i:\bon\s+the\s+)([0-3]?\d(?:st|nd|rd|th))\b", 0, 1),
        ("AGE", rf"\b(?:{_AGE_NUM}|an?)(?:[- ]and[- ]a[- ]half)?[- ](?:{_AGE_UNIT})s?[- ]old\b", re.I, 0),
        ("AGE", rf"\bage(?:d|\s+of|\s+as)?\s+({_AGE_NUM})\b", re.I, 1),
        ("AGE", rf"(?i:\b(?:{_alt(_LEX['age_subjects'])}|(?:{_POSSESSIVE})\s+(?:{_KIN})){_AGE_VERB}"
         rf"(?:,?\s*(?:{_alt(_LEX['age_fillers'])}),?)?(?:\s+(?:{_alt(_LEX['age_adverbs'])}))?\s+)"
         rf"({_AGE_NUM}(?:(?:,\s*|\s+or\s+|\s+to\s+|-){_AGE_NUM})?){_AGE_FOLLOW}", 0, 1),
        ("PLACE", r"\b(?:[A-Z]{1,2}\d[A-Z\d]?|GIR)\s*\d[A-Z]{2}\b", 0, 0),
        ("PLACE", r"\b[A-Z]\d[A-Z]\s?\d[A-Z]\d\b", 0, 0),
        ("PLACE", r"(?:\b[A-Z]{2}|(?i:\bzip(?:\s+code)?(?:\s+is)?:?))\s+(\d{5}(?:-\d{4})?)\b", 0, 1),
        ("PLACE", rf"\b\d{{1,5}}[A-Za-z]?,?\s+(?:{_NAME}\s+){{1,3}}(?:{_STREET_NUMBERED})(?!\w)", 0, 0),
        ("PLACE", rf"\b(?!(?:{_alt(_LEX['not_street_name_after'])})\s){_NAME}"
         rf"(?:\s+{_NAME}){{0,2}}\s+(?:{_STREET})(?!\w)", 0, 0),
        ("PLACE", r"\b(?i:P\.?\s?O\.?\s+Box)\s+\d+\b", 0, 0),
        ("PLACE", rf"(?i:\b(?:{_alt(_LEX['residence_verbs'])})(?:\s+(?:{_alt(_LEX['residence_particles'])}))?"
         rf"\s+(?:{_alt(_LEX['residence_prepositions'])})\s+)"
         rf"(?!(?:{_alt(_LEX['not_place_after'])})\b)({_NAME}(?:\s+{_NAME})?)", 0, 1),
        ("ORG", rf"\b(?:{_NAME}(?:['\u2019]s)?\s+){{1,3}}(?:{_ORG_HEAD})(?!\w)", 0, 0),
    ))

_NOT_NAMES = frozenset(_LEX["not_names"])
_CLINICAL = frozenset(_LEX["clinical_terms"])
_CLINICAL_PHRASES = frozenset(_LEX["clinical_phrases"])


def _pattern_spans(text: str, *, name_cues: bool, capitalised: bool) -> list[RedactedSpan]:
    spans: list[RedactedSpan] = []
    for label, rx, grp in _PATTERNS:
        for m in rx.finditer(text):
            start, end = m.span(grp)
            frag = text[start:end]
            if label == "PHONE" and not _plausible_phone(frag):
                continue
            if label == "ID_NUMBER" and (len(frag) < 6 or frag.lower() in _CLINICAL):
                continue
            if label in ("PLACE", "ORG") and frag[:1].isalpha():
                trimmed = _trim_words(text, start, end)
                if trimmed is None:
                    continue
                start, end = trimmed
            contextual_id = label == "PHONE" and _ID_CONTEXT.search(text[max(0, start - 40):start])
            spans.append(RedactedSpan(start, end, "ID_NUMBER" if contextual_id else label, "pattern"))
    if name_cues:
        for rx in _NAME_CUES:
            for m in rx.finditer(text):
                trimmed = _trim_words(text, *m.span(1))
                if trimmed is not None:
                    spans.append(RedactedSpan(*trimmed, "PERSON", "pattern"))
    if capitalised:
        for m in _CAPITALISED.finditer(text):
            trimmed = _trim_words(text, *m.span())
            if trimmed is not None and not _DATE_WORD.fullmatch(text[slice(*trimmed)]):
                spans.append(RedactedSpan(*trimmed, "NAME", "pattern"))
    return spans


def _is_stop(word: str) -> bool:
    """A word never redacted on its own: a stop word, a drug or acronym, "I", a contraction ("she'll")."""
    w = word.lower().strip(".,;:!?\"'()\u2019-")
    if w in _NOT_NAMES or w in _CLINICAL or re.fullmatch(r"i(?:[-'\u2019].*)?", w):
        return True
    parts = [re.sub(r"['\u2019](?:ll|re|ve|d|m|s|t)$", "", p) for p in w.split("-") if p]
    return bool(parts) and all(p in _NOT_NAMES or p in _CLINICAL for p in parts)


def _trim_words(text: str, start: int, end: int) -> tuple[int, int] | None:
    """Drop leading lowercase or stop words and trailing stop words; None when nothing is left."""
    words = [(m.start() + start, m.end() + start) for m in re.finditer(r"\S+", text[start:end])]
    while words and (_is_stop(text[slice(*words[0])]) or not text[words[0][0]].isupper()):
        words.pop(0)
    while words and (_is_stop(text[slice(*words[-1])]) or text[words[-1][0]].islower()):
        words.pop()
    if not words or all(_is_stop(w) for w in text[words[0][0]:words[-1][1]].split()):
        return None
    if " ".join(text[words[0][0]:words[-1][1]].lower().split()) in _CLINICAL_PHRASES:
        return None
    return words[0][0], words[-1][1]


def _plausible_phone(frag: str) -> bool:
    if re.search(r"[a-z]", frag, re.I):  # spoken digits
        return True
    digits = re.sub(r"\D", "", frag)
    return 7 <= len(digits) <= 15


# A capitalised word (and the capitalised words after it) after a lowercase word, digit or comma.
_CAPITALISED = re.compile(rf"(?<=[a-z0-9,;:] ){_NAME}(?:\s+{_NAME})*")
_DATE_WORD = re.compile(rf"(?:{_WEEKDAY}|{_MONTH})s?")

_NAME_CUES = tuple(re.compile(rx) for rx in (
    # titles: "Dr. Smith", "Mrs Jones", "Aunt Kathy"
    rf"\b(?:{_alt(_LEX['name_cue_titles'])})\.?\s+({_NAME}(?:\s+{_NAME})?)",
    # greetings and thanks: "Hi, Anna", "Thanks, Anna", "welcome back, Anna"
    rf"(?i:\b(?:{_alt(_LEX['greetings'])})),?\s+({_NAME}(?:\s+{_NAME})?)\b",
    # self-introductions: "my name is Anna", "I'm Anna." (a name and then a pause)
    rf"(?i:\b(?:{_alt(_LEX['self_introductions'], curly=True)}))\s+({_NAME}(?:\s+{_NAME})?)",
    rf"\bI(?:['\u2019]m|\s+am)\s+({_NAME}(?:\s+{_NAME})?)(?=\s*[.,!])",
    # vocatives: "..., Anna?" / "..., Anna, ..." (a capitalised word between a comma and a clause end)
    rf"(?<=,)\s+({_NAME})(?=\s*[.?!,;]|\s*$)",
    # "Anna, ..." at the very start of an utterance followed by a question or a you-clause
    rf"^\s*({_NAME}),\s+(?=(?:{_alt(_LEX['after_opening_name'])})\b)",
))


# ---- NER

_NER_LABELS: dict[str, str] = dict(_LEX["ner_labels"])
_ABSOLUTE_DATE = re.compile(rf"\b(?:{_MONTH})(?!\w)|\b{_YEAR}s?\b|\d{{1,2}}[/.-]\d{{1,2}}[/.-]\d{{2,4}}|"
                            r"\b(?:1[89]|20)\d0s\b")
_AGE_DATE = re.compile(rf"(?i)\b(?:{_AGE_UNIT})s?[- ]old\b")
_RELATIVE_LEAD = re.compile(rf"(?i)^(?:(?:{_alt(_LEX['relative_date_leads'])})\b[\s-]*)+")
_TITLE_LEAD = re.compile(rf"^(?:(?:{_alt(_LEX['ner_title_leads'])})\.?\s+)+")


def _ner_spans(text: str, ents: list[tuple[int, int, str]]) -> list[RedactedSpan]:
    spans = []
    for start, end, ner_label in ents:
        label = _NER_LABELS.get(ner_label)
        if label is None or _inside_brackets(text, start):
            continue
        frag = text[start:end]
        if label == "DATE":
            if _AGE_DATE.search(frag):
                label = "AGE"
            elif not _ABSOLUTE_DATE.search(frag):
                continue  # relative: "last week", "today", "Friday", "two years"
            lead = _RELATIVE_LEAD.match(frag)
            start += lead.end() if lead else 0
        elif re.search(r"\d", frag):
            continue  # numbers are the patterns' job ("Call 020 7946 0958" tagged ORG)
        else:
            if frag.endswith("-"):  # a cut-off word ("November-", "So--"): not part of a name
                end = start + frag.rstrip("-").rfind(" ")
            lead = _TITLE_LEAD.match(frag)
            start += lead.end() if lead else 0
            poss = re.search(r"['\u2019]s?$", text[start:end])
            end -= len(poss.group()) if poss else 0
            trimmed = _trim_words(text, start, end) if end > start else None
            if trimmed is None:
                continue
            start, end = trimmed
            if label == "PERSON" and _DATE_WORD.fullmatch(text[start:end]):
                continue
        if end > start:
            spans.append(RedactedSpan(start, end, label, "ner"))
    return spans


def _inside_brackets(text: str, pos: int) -> bool:
    """Inside a transcriber's annotation such as ``[unintelligible 00:01:33]``."""
    return text.rfind("[", 0, pos) > text.rfind("]", 0, pos)
