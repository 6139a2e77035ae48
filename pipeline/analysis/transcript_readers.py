"""Transcripts from other tools, as speaker-labelled utterances with roles: the input of ``alliance code``.

Formats: ``csv``/``json`` (rows with a role or speaker, text, optional ``start_s``/``end_s``; see
:mod:`pipeline.analysis.text_only`), ``annomi`` (AnnoMI CSV: one transcript per ``transcript_id``), ``whisperx``
(WhisperX JSON: ``segments`` with ``speaker``), ``eaf`` (ELAN: one top-level tier per speaker, read with
pympi-ling) and ``textgrid`` (Praat: one interval tier per speaker, pympi-ling). Speakers whose label is not a
role (``SPEAKER_00``) get roles from ``therapist_speaker`` or, without it, from the product's role rule
(:func:`pipeline.analysis.roles.assign_roles`), whose confidence is returned with the transcript.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from pipeline.analysis.roles import assign_roles
from pipeline.analysis.text_only import _ROLE_ALIASES, TranscriptUtterance
from pipeline.errors import ConfigError
from pipeline.types import Turn

FORMATS = ("auto", "csv", "json", "annomi", "whisperx", "eaf", "textgrid")
#: Largest transcript file read (a transcript of several hours is a few MB).
MAX_BYTES = 50 * 1024 * 1024


@dataclass(frozen=True)
class LabelledUtterance:
    speaker: str
    text: str
    start_s: float | None = None
    end_s: float | None = None


@dataclass(frozen=True)
class RoledTranscript:
    """One conversation with roles: ``role_method`` says how the roles were decided, with a confidence."""

    name: str
    utterances: tuple[TranscriptUtterance, ...]
    role_method: str
    role_confidence: float


def detect_format(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix == ".eaf":
        return "eaf"
    if suffix == ".textgrid":
        return "textgrid"
    if suffix == ".json":
        head = path.read_text(encoding="utf-8", errors="replace")[:4096].lstrip()
        return "whisperx" if head.startswith("{") else "json"
    if suffix in (".csv", ".tsv"):
        with path.open(newline="", encoding="utf-8", errors="replace") as fh:
            header = next(csv.reader(fh), [])
        return "annomi" if {"transcript_id", "interlocutor", "utterance_text"} <= set(header) else "csv"
    raise ConfigError(f"{path.name}: cannot tell the format from the extension; "
                      f"pass --format ({', '.join(FORMATS[1:])})")


def _float(value: object) -> float | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError) as e:
        raise ConfigError(f"time {value!r} is not a number of seconds") from e


def _rows(path: Path, fmt: str) -> list[tuple[str, list[LabelledUtterance]]]:
    if fmt in ("csv", "annomi"):
        with path.open(newline="", encoding="utf-8") as fh:
            rows = list(csv.DictReader(fh))
        if fmt == "annomi":
            groups: dict[str, list[dict[str, str]]] = {}
            for r in rows:
                groups.setdefault(r["transcript_id"], []).append(r)
            return [(f"transcript {t}", [LabelledUtterance(r["interlocutor"], r["utterance_text"])
                                         for r in sorted(rs, key=lambda r: int(r["utterance_id"]))])
                    for t, rs in sorted(groups.items(), key=lambda kv: int(kv[0]) if kv[0].isdigit() else kv[0])]
        return [(path.stem, [_row_utterance(r, i) for i, r in enumerate(rows)])]
    if fmt == "json":
        rows = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
            raise ConfigError(f"{path.name}: expected a JSON list of utterance objects")
        return [(path.stem, [_row_utterance(r, i) for i, r in enumerate(rows)])]
    if fmt == "whisperx":
        data = json.loads(path.read_text(encoding="utf-8"))
        segments = data.get("segments") if isinstance(data, dict) else None
        if not isinstance(segments, list):
            raise ConfigError(f"{path.name}: a WhisperX JSON file has a 'segments' list")
        out = []
        for i, s in enumerate(segments):
            if not isinstance(s, dict) or "speaker" not in s:
                raise ConfigError(f"{path.name}: segment {i} has no speaker (run WhisperX with diarization)")
            out.append(LabelledUtterance(str(s["speaker"]), str(s.get("text", "")), _float(s.get("start")),
                                         _float(s.get("end"))))
        return [(path.stem, out)]
    if fmt == "eaf":
        import pympi

        eaf = pympi.Elan.Eaf(str(path))
        speaker_tiers = {}
        for tier, (_, _, attrs, _) in eaf.tiers.items():
            if not attrs.get("PARENT_REF"):  # word or comment tiers hang under a speaker's tier
                speaker_tiers[tier] = attrs.get("PARTICIPANT") or tier
        out = [LabelledUtterance(speaker_tiers[tier], value, start / 1000, end / 1000)
               for tier in _speaker_tiers(speaker_tiers) for start, end, value in
               eaf.get_annotation_data_for_tier(tier)]
        return [(path.stem, sorted(out, key=lambda u: (u.start_s or 0.0, u.end_s or 0.0)))]
    if fmt == "textgrid":
        import pympi

        grid = pympi.Praat.TextGrid(str(path))
        tiers = {t.name: t for t in grid.get_tiers() if t.tier_type == "IntervalTier"}
        out = [LabelledUtterance(name, text, start, end) for name in _speaker_tiers({n: n for n in tiers})
               for start, end, text in tiers[name].get_all_intervals() if text.strip()]
        return [(path.stem, sorted(out, key=lambda u: (u.start_s or 0.0, u.end_s or 0.0)))]
    raise ConfigError(f"unknown transcript format {fmt!r}; one of {', '.join(FORMATS)}")


def _tier_role(speaker: str) -> str | None:
    """``Therapist``, ``client turns`` -> the role; word tiers and other names -> None."""
    words = speaker.strip().lower().split()
    if not words or "words" in words or len(words) > 2 or (len(words) == 2 and words[1] != "turns"):
        return None
    return _ROLE_ALIASES.get(words[0])


def _speaker_tiers(speakers: dict[str, str]) -> list[str]:
    """Pick the tiers that hold speech.

    Those named for a role (the pipeline's own exports add silences, markers and word tiers beside them) or,
    when none is, every tier (one per speaker).
    """
    roled = [tier for tier, speaker in speakers.items() if _tier_role(speaker)]
    return roled or list(speakers)


def _row_utterance(row: dict, i: int) -> LabelledUtterance:
    speaker = next((row[k] for k in ("role", "speaker_role", "interlocutor", "speaker") if k in row), None)
    if speaker is None:
        raise ConfigError(f"row {i}: no role or speaker column (role, speaker_role, interlocutor or speaker)")
    text = next((row[k] for k in ("text", "utterance_text") if k in row), "")
    return LabelledUtterance(str(speaker), str(text or ""), _float(row.get("start_s")), _float(row.get("end_s")))


def _with_roles(name: str, labelled: Sequence[LabelledUtterance], therapist_speaker: str | None) -> RoledTranscript:
    labelled = [u for u in labelled if u.text.strip()]
    if not labelled:
        raise ConfigError(f"{name}: the transcript has no utterance with text")
    speakers = sorted({u.speaker for u in labelled})
    aliases = {s: _ROLE_ALIASES.get(s.strip().lower()) or _tier_role(s) for s in speakers}
    if all(aliases.values()) and therapist_speaker is None:
        roles, method, confidence = aliases, "given by the transcript", 1.0
    else:
        if therapist_speaker is not None and therapist_speaker not in speakers and therapist_speaker not in (
                "first", "second"):
            raise ConfigError(f"{name}: --therapist-speaker {therapist_speaker!r} is not one of {', '.join(speakers)}")
        turns = [Turn(i, u.speaker, u.start_s or float(i), u.end_s or float(i) + 1, u.text, len(u.text.split()))
                 for i, u in enumerate(labelled)]
        assignment = assign_roles(turns, override=therapist_speaker)
        roles = {s: assignment.role_of(s) for s in speakers}
        method, confidence = assignment.method, assignment.confidence
    utterances = tuple(TranscriptUtterance(roles[u.speaker], u.text, u.start_s, u.end_s)  # type: ignore[arg-type]
                       for u in labelled if roles.get(u.speaker) in ("therapist", "client"))
    return RoledTranscript(name, utterances, method, confidence)


def read_for_coding(path: str | Path, *, fmt: str = "auto", therapist_speaker: str | None = None,
                    ) -> list[RoledTranscript]:
    """Every conversation in ``path`` with roles, ready to code.

    Raises
    ------
    ConfigError
        Missing, too large or unreadable file, unknown format, no text, or an unknown ``therapist_speaker``.
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"transcript {path.name} does not exist or is not a file")
    if path.stat().st_size > MAX_BYTES:
        raise ConfigError(f"transcript {path.name} is larger than {MAX_BYTES // (1024 * 1024)} MB")
    if fmt not in FORMATS:
        raise ConfigError(f"unknown transcript format {fmt!r}; one of {', '.join(FORMATS)}")
    fmt = detect_format(path) if fmt == "auto" else fmt
    try:
        conversations = _rows(path, fmt)
    except ConfigError:
        raise
    except Exception as e:
        raise ConfigError(f"{path.name} is not a readable {fmt} transcript: {type(e).__name__}: {e}") from e
    return [_with_roles(name, labelled, therapist_speaker) for name, labelled in conversations]
