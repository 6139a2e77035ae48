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

Anything else (quotes, ``/ % & < >``, spaces inside, non-Latin scripts) is plain data: SQL takes ids as
parameters, report file names and Prefect run names are derived from a hash, HTML escapes them.
"""

from __future__ import annotations

import unicodedata

from pipeline.errors import InvalidIdError

#: Longest id accepted, in characters (after NFC).
MAX_ID_CHARS = 128
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
    return None


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
