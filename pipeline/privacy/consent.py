"""Consent: a recording is processed only when consent is recorded for it.

Consent comes from a sidecar ``AUDIO.consent.json`` next to the recording (or, in batches, a manifest
row with the same fields). Required fields: ``session_id``, ``client_id``, ``scope`` (``clinical`` or
``research``) and ``consented_on`` (ISO date). ``withdrawn_on`` set means consent was withdrawn.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.errors import ConsentError

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


def parse_consent(raw: dict[str, Any], *, source: str) -> Consent:
    """Validate a consent record.

    Raises
    ------
    ConsentError
        A field is missing or invalid, or consent was withdrawn; the message names the field and value.
    """
    for field in ("session_id", "client_id", "scope", "consented_on"):
        if not raw.get(field):
            raise ConsentError(f"{source}: consent record has no {field!r}")
    scope = str(raw["scope"])
    if scope not in SCOPES:
        raise ConsentError(f"{source}: consent scope {scope!r} is not one of {', '.join(SCOPES)}")
    try:
        consented_on = dt.date.fromisoformat(str(raw["consented_on"]))
    except ValueError as e:
        raise ConsentError(f"{source}: consented_on {raw['consented_on']!r} is not an ISO date") from e
    if raw.get("withdrawn_on"):
        raise ConsentError(f"{source}: consent was withdrawn on {raw['withdrawn_on']}")
    by = raw.get("consented_by") or []
    if isinstance(by, str):
        by = [by]
    return Consent(str(raw["session_id"]), str(raw["client_id"]), scope, consented_on, tuple(map(str, by)), source)


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


def check_matches(consent: Consent, *, session_id: str, client_id: str) -> None:
    """Refuse when the consent is for another session or client."""
    if consent.session_id != session_id:
        raise ConsentError(
            f"{consent.source}: consent is for session {consent.session_id!r}, not {session_id!r}"
        )
    if consent.client_id != client_id:
        raise ConsentError(f"{consent.source}: consent is for client {consent.client_id!r}, not {client_id!r}")
