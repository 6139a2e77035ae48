"""The one validation of identifiers at the boundary: session, client, therapist ids and the like.

Every way an id enters the pipeline uses :func:`validate_id` with the same rules: ``alliance process``
arguments, batch manifest rows and folder sidecars, consent records, self-report imports and consent
withdrawals. An id is accepted when it

- is a string of 1 to :data:`MAX_ID_CHARS` characters (after Unicode NFC normalisation, which is what is
  returned and stored: the same name typed on two systems compares equal),
- has no leading or trailing whitespace,
- holds no control, format, line/paragraph separator or surrogate character (Unicode categories Cc, Cf,
  Zl, Zp, Cs): no newlines or escape sequences that forge log and report lines, no bidirectional overrides
  such as U+202E that make ``evil.exe`` display as ``exe.live``, no zero-width characters that make two
  different ids look the same.

- does not mix letters of two look-alike scripts (:data:`LOOK_ALIKE_SCRIPTS`: ``Sаm`` with a Cyrillic ``а``;
  Unicode Scripts data through ``confusable_homoglyphs``): such an id looks like another one while being
  different.

Anything else (quotes, ``/ % & < >``, spaces inside, a single non-Latin script) is plain data: SQL takes ids
as parameters, report file names and Prefect run names are derived from a hash, HTML escapes them.

Two ids that differ only by letter case (``S12``, ``s12``) or by look-alike letters of another script
(Latin ``S12``, Cyrillic ``Ѕ12``) are different ids to the database but the same to a reader and, by case,
to a case-insensitive disk. :func:`id_key` folds both (NFKC, each letter to its Latin look-alike, case
folded: the Unicode TR39 idea of a skeleton); :func:`clashing_id` finds a stored id with the same key, and
the pipeline refuses the new one (``invalid_id``) instead of storing a second, confusable id.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable
from functools import lru_cache

from confusable_homoglyphs import categories, confusables

from pipeline.errors import InvalidIdError

#: Longest id accepted, in characters (after NFC).
MAX_ID_CHARS = 128
#: Scripts whose letters look alike (``a``/``а``/``α``): an id may use letters of at most one of them (Han with
#: Hiragana, or Latin with Han, stay allowed).
LOOK_ALIKE_SCRIPTS = frozenset({"LATIN", "CYRILLIC", "GREEK", "ARMENIAN", "CHEROKEE", "COPTIC"})
#: Unicode general categories an id may not contain.
FORBIDDEN_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs"})


def _describe(ch: str) -> str:
    name = unicodedata.name(ch, "")
    return f"U+{ord(ch):04X}" + (f" ({name})" if name else "")


def id_problem(kind: str, value: object) -> str | None:
    """Why ``value`` is not a valid ``kind`` id, or None. The message never echoes the raw value."""
    if not isinstance(value, str):
        return f"{kind} id must be text, got {type(value).__name__}"
    if value == "":
        return f"{kind} id is empty"
    text = unicodedata.normalize("NFC", value)
    if len(text) > MAX_ID_CHARS:
        return f"{kind} id is {len(text)} characters long; at most {MAX_ID_CHARS} are allowed"
    bad = next((ch for ch in text if unicodedata.category(ch) in FORBIDDEN_CATEGORIES), None)
    if bad is not None:
        return (f"{kind} id contains the invisible or control character {_describe(bad)} at position "
                f"{text.index(bad) + 1}: ids may not hold control, format or bidirectional characters")
    if text != text.strip():
        return f"{kind} id {text.strip()!r} has leading or trailing whitespace"
    scripts = sorted({categories.alias(ch) for ch in text} & LOOK_ALIKE_SCRIPTS)
    if len(scripts) > 1:
        return (f"{kind} id mixes letters of the {' and '.join(s.title() for s in scripts)} scripts: look-alike "
                "ids are refused; use one script")
    return None


@lru_cache(maxsize=4096)
def _latin_look_alike(ch: str) -> str:
    """The Latin letter ``ch`` looks like (Unicode confusables data), else ``ch`` itself."""
    if ch.isascii() or categories.alias(ch) in ("LATIN", "COMMON"):
        return ch
    found = confusables.is_confusable(ch, greedy=True, preferred_aliases=[]) or []
    for entry in found:
        for glyph in entry["homoglyphs"]:
            if len(glyph["c"]) == 1 and categories.alias(glyph["c"]) == "LATIN" and glyph["c"].isascii():
                return glyph["c"]
    return ch


def id_key(value: str) -> str:
    """What a reader (or a case-insensitive disk) sees of an id: NFKC, Latin look-alikes, case folded."""
    text = unicodedata.normalize("NFKC", value)
    return "".join(_latin_look_alike(ch) for ch in text).casefold()


def clashing_id(value: str, existing: Iterable[str]) -> str | None:
    """A different id of ``existing`` with the same :func:`id_key` as ``value`` (first in order), else None."""
    key = id_key(value)
    return next((other for other in existing if other != value and id_key(other) == key), None)


def clash_problem(kind: str, value: str, existing: Iterable[str]) -> str | None:
    """Why ``value`` may not be stored next to ``existing`` ids of the same kind, or None."""
    other = clashing_id(value, existing)
    if other is None:
        return None
    how = "letter case" if other.casefold() == value.casefold() else "look-alike letters (or case)"
    return (f"{kind} id differs from the stored {kind} id {other!r} only by {how}: two such ids would be "
            "confused by readers and case-insensitive disks; use the stored id or a clearly different one")


def validate_id(kind: str, value: object) -> str:
    """The id in NFC form, or :class:`~pipeline.errors.InvalidIdError` naming the rule it breaks.

    Parameters
    ----------
    kind : str
        What the id is ("session", "client", "therapist", ...), for the message.
    value : object
        The candidate; must be a ``str``.

    Returns
    -------
    str
        ``value`` normalised to NFC.

    Raises
    ------
    InvalidIdError
        Empty, longer than :data:`MAX_ID_CHARS`, leading/trailing whitespace, or a forbidden character (the
        message names its code point; the raw value is not echoed, so a terminal never renders it).
    """
    problem = id_problem(kind, value)
    if problem is not None:
        raise InvalidIdError(problem)
    return unicodedata.normalize("NFC", value)  # type: ignore[arg-type]
