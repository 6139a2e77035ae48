"""The text-only path: run the marker suite on an existing transcript, without audio.

Input is a sequence of utterances with a speaker role ("therapist" or "client") and optional times:
a CSV or JSON file (:func:`read_transcript`) or AnnoMI rows (:func:`read_annomi`). The utterances
become the pipeline's own typed objects, so the same code measures them as a recording:

- every utterance becomes one diarization turn of speaker label ``therapist`` or ``client`` (the
  roles are given, so :class:`RoleAssignment` has method ``transcript`` and confidence 1);
- its whitespace-separated words become :class:`AttributedWord` spread evenly over the utterance.

Times
-----
With ``start_s`` (and optionally ``end_s``) on every utterance, those times are used (``timing`` is
``given``; a missing end is the next utterance's start, or ``word_s`` per word). Otherwise times are
*synthetic* (``timing`` is ``synthetic``): each word lasts ``word_s`` (default 0.4 s, i.e. 150 words/min)
and utterances follow each other with ``gap_s`` (default 0.5 s) between them. Synthetic times only
order events; the indicators that measure time (:data:`TIME_BASED_INDICATORS`: rates per second or
minute, silences, overlaps, talk-time share) are then left out of the result, and so are the
``long_silence`` and ``overlap`` markers. AnnoMI's timestamps (start only, whole seconds, several
utterances per second) are not used by default.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pipeline.analysis.attribute import build_turns
from pipeline.analysis.indicators import IndicatorOptions, SessionMeasures, measure_session
from pipeline.errors import ConfigError
from pipeline.markers.dialogue import Language, clean_text
from pipeline.types import (
    ROLES,
    AttributedWord,
    Diarization,
    Role,
    RoleAssignment,
    SpeakerTurn,
    Turn,
    Utterance,
)

#: Indicators that measure time; dropped when the times are synthetic.
TIME_BASED_INDICATORS = frozenset({
    "duration", "speech_time", "speaking_time", "talk_time_share", "speech_rate", "long_silence_count",
    "long_silence_total", "mean_switching_gap", "turns_per_minute", "mean_turn_duration", "articulation_rate",
    "overlap_count", "interruption_count", "silence_after_probe_count", "pause_count", "pause_rate", "mean_pause",
    "pitch_synchrony", "energy_synchrony", "rate_synchrony", "rate_convergence",
    "listener_turn_count", "listener_turn_rate",
})
_TIME_BASED_MARKERS = frozenset({"long_silence", "overlap", "pause", "listener_turn"})

_ROLE_ALIASES = {"therapist": "therapist", "counsellor": "therapist", "counselor": "therapist", "t": "therapist",
                 "client": "client", "patient": "client", "c": "client"}


#: One utterance of a transcript (:class:`pipeline.types.Utterance`); times None when the transcript has none.
TranscriptUtterance = Utterance


@dataclass(frozen=True)
class TextTiming:
    """How synthetic times are made: seconds per word and between utterances."""

    word_s: float = 0.4
    gap_s: float = 0.5

    def __post_init__(self) -> None:
        if not self.word_s > 0 or not self.gap_s >= 0:
            raise ConfigError(f"word_s must be > 0 and gap_s >= 0, got {self.word_s!r}, {self.gap_s!r}")


@dataclass(frozen=True)
class TextSession:
    """A transcript turned into the pipeline's typed objects, with its measures."""

    session_id: str
    timing: Literal["given", "synthetic"]
    words: tuple[AttributedWord, ...]
    turns: tuple[Turn, ...]
    diarization: Diarization
    roles: RoleAssignment
    duration_s: float
    measures: SessionMeasures


def _role(value: object, where: str) -> Role:
    role = _ROLE_ALIASES.get(str(value).strip().lower())
    if role is None:
        raise ConfigError(f"{where}: speaker role {value!r} is not one of {ROLES} (or an alias)")
    return role  # type: ignore[return-value]


def _float(value: object) -> float | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    return float(value)  # type: ignore[arg-type]


def utterances_from_rows(rows: Iterable[Mapping[str, object]]) -> tuple[TranscriptUtterance, ...]:
    """Utterances from row mappings; rows with no word are dropped.

    Each row has ``role`` (or ``speaker_role``, ``interlocutor``, ``speaker``), ``text`` (or
    ``utterance_text``) and optional ``start_s`` / ``end_s``.
    """
    out = []
    for i, row in enumerate(rows):
        role_value = next((row[k] for k in ("role", "speaker_role", "interlocutor", "speaker") if k in row), None)
        text = str(next((row[k] for k in ("text", "utterance_text") if k in row), "") or "")
        if role_value is None:
            raise ConfigError(f"row {i}: no role column (role, speaker_role, interlocutor or speaker)")
        if not re.search(r"\w", clean_text(text)):
            continue
        out.append(TranscriptUtterance(_role(role_value, f"row {i}"), text, _float(row.get("start_s")),
                                       _float(row.get("end_s"))))
    return tuple(out)


def read_transcript(path: str | Path) -> tuple[TranscriptUtterance, ...]:
    """Read a ``.csv`` (header row) or ``.json`` (a list of objects) transcript."""
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"transcript {path} does not exist")
    if path.suffix.lower() == ".json":
        rows = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(rows, list):
            raise ConfigError(f"{path}: expected a JSON list of utterance objects")
        return utterances_from_rows(rows)
    with path.open(newline="", encoding="utf-8") as fh:
        return utterances_from_rows(list(csv.DictReader(fh)))


@dataclass(frozen=True)
class AnnomiTranscript:
    transcript_id: str
    mi_quality: str
    topic: str
    utterances: tuple[TranscriptUtterance, ...]


def read_annomi(csv_path: str | Path) -> tuple[AnnomiTranscript, ...]:
    """All transcripts of ``AnnoMI-simple.csv`` (or ``-full``), utterances in order, times not used."""
    by_id: dict[str, list[dict[str, str]]] = {}
    with open(csv_path, newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            by_id.setdefault(row["transcript_id"], []).append(row)
    out = []
    for tid, rows in sorted(by_id.items(), key=lambda kv: int(kv[0])):
        rows.sort(key=lambda r: int(r["utterance_id"]))
        utts = utterances_from_rows({"role": r["interlocutor"], "text": r["utterance_text"]} for r in rows)
        out.append(AnnomiTranscript(tid, rows[0]["mi_quality"], rows[0].get("topic", ""), utts))
    return tuple(out)


def place_words(utterances: Sequence[TranscriptUtterance], *, timing: TextTiming = TextTiming(),
                ) -> tuple[Literal["given", "synthetic"], tuple[AttributedWord, ...], tuple[SpeakerTurn, ...]]:
    """Give every word a time span (module docstring) and every utterance a diarization turn."""
    given = bool(utterances) and all(u.start_s is not None for u in utterances)
    words: list[AttributedWord] = []
    spans: list[SpeakerTurn] = []
    t = 0.0
    for k, u in enumerate(utterances):
        tokens = clean_text(u.text).split()
        if given:
            start = float(u.start_s)  # type: ignore[arg-type]
            nxt = utterances[k + 1].start_s if k + 1 < len(utterances) else None
            end = u.end_s if u.end_s is not None else (nxt if nxt is not None and nxt > start
                                                       else start + timing.word_s * len(tokens))
        else:
            start = t + (timing.gap_s if k else 0.0)
            end = start + timing.word_s * len(tokens)
            t = end
        step = (end - start) / max(1, len(tokens))
        words += [AttributedWord(start + i * step, start + (i + 1) * step, tok, 1.0, u.role)
                  for i, tok in enumerate(tokens)]
        spans.append(SpeakerTurn(start, end, u.role))
    return ("given" if given else "synthetic"), tuple(words), tuple(spans)


def measure_transcript(
    utterances: Sequence[TranscriptUtterance],
    *,
    session_id: str = "transcript",
    nlp: Language | None = None,
    timing: TextTiming = TextTiming(),
    options: IndicatorOptions = IndicatorOptions(),
) -> TextSession:
    """Build the typed session of a transcript and measure it with :func:`measure_session`.

    Raises
    ------
    ConfigError
        The transcript has no utterance with a word.
    """
    if not utterances:
        raise ConfigError(f"{session_id}: the transcript has no utterance with a word")
    kind, words, spans = place_words(utterances, timing=timing)
    diar = Diarization(tuple(sorted(spans)), tuple(sorted({s.speaker for s in spans})))
    roles = RoleAssignment("therapist", "client", 1.0, "transcript", "roles given by the transcript")
    duration = max(s.end_s for s in spans)
    m = measure_session(words, diar, roles, duration_s=duration, options=options, nlp=nlp)
    if kind == "synthetic":
        m = SessionMeasures(tuple(x for x in m.markers if x.kind not in _TIME_BASED_MARKERS),
                            tuple(i for i in m.indicators if i.name not in TIME_BASED_INDICATORS))
    return TextSession(session_id, kind, words, build_turns(words), diar, roles, duration, m)
