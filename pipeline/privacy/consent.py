"""Consent: a recording is processed only when consent is recorded for it.

Consent comes from a sidecar ``AUDIO.consent.json`` next to the recording (or, in batches, a manifest
row with the same fields). Required fields: ``session_id``, ``client_id``, ``scope`` (``clinical`` or
``research``) and ``consented_on`` (ISO date). ``withdrawn_on`` set means consent was withdrawn.

A record is refused (:class:`~pipeline.errors.ConsentInvalidError`, code ``consent_invalid``) when

- an id breaks the id rules of :mod:`pipeline.ids` (control or bidirectional characters, over 128
  characters, ...),
- ``consented_by`` is missing (absent or null), empty, or does not name the client (``"client"`` or the
  client's id): in every path (sidecar, manifest row with or without the column, folder batch),
- ``consented_on`` is not an ISO date, lies in the future, or (:func:`check_matches`) after the recording
  date when that is known,
- ``withdrawn_on`` is set but is not an ISO date (``"no"`` is an invalid record, not a withdrawal).

A valid ``withdrawn_on`` refuses the recording as withdrawn (:class:`~pipeline.errors.ConsentWithdrawnError`,
code ``consent_withdrawn``); a missing record is code ``no_consent``.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.errors import ConsentError, ConsentInvalidError, ConsentWithdrawnError, InvalidIdError
from pipeline.ids import validate_id

SCOPES = ("clinical", "research")
_MAX_SIDECAR_BYTES = 64 * 1024


@dataclass(frozen=True)
class Consent:
    session_id: str
    client_id: str
    scope: str
    consented_on: dt.date
    consented_by: tuple[str, ...]
    source: str


def sidecar_path(audio_path: Path) -> Path:
    return audio_path.with_name(audio_path.name + ".consent.json")


def _show(value: Any) -> str:
    """A short, escaped rendering of a bad value for a message."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _iso_date(value: Any) -> dt.date:
    """An ISO date (``YYYY-MM-DD``) from a string or a date; ValueError otherwise."""
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return value
    if not isinstance(value, str) or len(value.strip()) != 10:
        raise ValueError(value)
    return dt.date.fromisoformat(value.strip())


def _id(raw: dict[str, Any], field: str, kind: str, source: str) -> str:
    value = raw[field]
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)  # a JSON number as an id, as before
    try:
        return validate_id(kind, value)
    except InvalidIdError as e:
        raise ConsentInvalidError(f"{source}: invalid consent record: {e}") from e


def parse_consent(raw: dict[str, Any], *, source: str, today: dt.date | None = None) -> Consent:
    """Validate a consent record.

    Parameters
    ----------
    raw : dict
        The record's fields (a sidecar's JSON object or a manifest row's consent columns).
    source : str
        Where it came from, for messages.
    today : date, optional
        ``consented_on`` after this is refused (default: the local date).

    Raises
    ------
    ConsentInvalidError
        A field is missing or invalid (see the module docstring); the message names the field and value.
    ConsentWithdrawnError
        ``withdrawn_on`` is a valid date: consent was withdrawn.
    """
    for field in ("session_id", "client_id", "scope", "consented_on"):
        if raw.get(field) in (None, "", [], {}):
            raise ConsentInvalidError(f"{source}: consent record has no {field!r}")
    session_id = _id(raw, "session_id", "session", source)
    client_id = _id(raw, "client_id", "client", source)
    scope = str(raw["scope"])
    if scope not in SCOPES:
        raise ConsentInvalidError(f"{source}: consent scope {_show(scope)} is not one of {', '.join(SCOPES)}")
    try:
        consented_on = _iso_date(raw["consented_on"])
    except ValueError as e:
        raise ConsentInvalidError(f"{source}: consented_on {_show(raw['consented_on'])} is not an ISO date "
                                  "(YYYY-MM-DD)") from e
    today = today or dt.date.today()
    if consented_on > today:
        raise ConsentInvalidError(f"{source}: consented_on {consented_on} is in the future (today is {today})")
    withdrawn_on = raw.get("withdrawn_on")
    if withdrawn_on not in (None, ""):
        try:
            day = _iso_date(withdrawn_on)
        except ValueError as e:
            raise ConsentInvalidError(f"{source}: invalid withdrawn_on {_show(withdrawn_on)}: not an ISO date "
                                      "(YYYY-MM-DD); leave it out (or empty) unless consent was withdrawn") from e
        raise ConsentWithdrawnError(f"{source}: consent was withdrawn on {day}")
    if raw.get("consented_by") is None:  # absent or null: nobody is recorded as having consented
        raise ConsentInvalidError(f"{source}: consented_by is missing: it must name at least the client "
                                  "(\"client\" or the client's id)")
    value = raw["consented_by"]
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list):
        raise ConsentInvalidError(f"{source}: consented_by must be a list of names, got {_show(value)}")
    try:
        by = tuple(validate_id("consented_by", str(v) if isinstance(v, int) else v) for v in items)
    except InvalidIdError as e:
        raise ConsentInvalidError(f"{source}: invalid consent record: {e}") from e
    if not by:
        raise ConsentInvalidError(f"{source}: consented_by is empty: it must name at least the client "
                                  "(\"client\" or the client's id)")
    if not any(b.casefold() == "client" or b == client_id for b in by):
        raise ConsentInvalidError(f"{source}: consented_by {list(by)} does not name the client: it must "
                                  "include \"client\" or the client's id")
    return Consent(session_id, client_id, scope, consented_on, by, source)


def read_sidecar(audio_path: Path) -> Consent:
    """Read and validate the consent sidecar of a recording.

    Raises
    ------
    ConsentError
        No sidecar, an unreadable one, or an invalid record.
    """
    path = sidecar_path(Path(audio_path))
    if not path.is_file():
        raise ConsentError(
            f"no consent recorded for {Path(audio_path).name}: expected {path.name} next to it "
            "(fields: session_id, client_id, scope, consented_on) or a manifest row"
        )
    if path.stat().st_size > _MAX_SIDECAR_BYTES:
        raise ConsentError(f"{path.name}: consent sidecar is larger than {_MAX_SIDECAR_BYTES} bytes")
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ConsentError(f"{path.name}: consent sidecar is not valid UTF-8 JSON ({e})") from e
    if not isinstance(raw, dict):
        raise ConsentError(f"{path.name}: consent sidecar must be a JSON object")
    return parse_consent(raw, source=path.name)


def check_matches(consent: Consent, *, session_id: str, client_id: str, recorded_on: dt.date | None = None) -> None:
    """Refuse when the consent is for another session or client, or was given after the recording.

    Raises
    ------
    ConsentError
        Another session or client (code ``no_consent``).
    ConsentInvalidError
        ``consented_on`` is after ``recorded_on`` (when the recording date is known).
    """
    if consent.session_id != session_id:
        raise ConsentError(
            f"{consent.source}: consent is for session {consent.session_id!r}, not {session_id!r}"
        )
    if consent.client_id != client_id:
        raise ConsentError(f"{consent.source}: consent is for client {consent.client_id!r}, not {client_id!r}")
    if recorded_on is not None and consent.consented_on > recorded_on:
        raise ConsentInvalidError(f"{consent.source}: consented_on {consent.consented_on} is after the recording "
                                  f"date {recorded_on}: consent must be given before the session is recorded")
