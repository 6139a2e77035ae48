"""A stored session's transcript in the formats other tools read: JSON, SRT, WebVTT, text, TSV, RTTM, TextGrid, EAF.

:func:`load_transcript` reads one session from the database (pure: a connection in, a frozen
:class:`TranscriptDoc` out); the ``to_*`` functions turn it into a format; :func:`write_transcript` writes
one format owner-only (0600), never readable by others even for a moment (RTTM with its UEM beside it);
:class:`ExportOptions` holds the choices (subtitle line width and count, RTTM file id, EAF media link).
``docs/exports.md`` describes the formats, their fields and which tool opens which file.

Two views:

- **clinical** (clinician, supervisor, admin): the session's ids, the recognised words with their
  confidence and the turns' text as stored.
- **research** (``study_key`` given): research-scope sessions only; ids replaced by the study's keyed
  pseudonyms (:func:`pipeline.research.access.pseudonym`); turn text from ``turns_deidentified`` (direct
  identifiers replaced by ``[PERSON]``, ``[PLACE]``, ...). Words are *not* de-identified, so a research
  document has no word level at all: no ``words`` in JSON, no word tiers in TextGrid/EAF (not even
  placeholders: their count and timing per turn would tell how long a redacted name was).

Speakers are named by role: ``Therapist``, ``Client``; a speaker without a role keeps its diarization
label (``SPEAKER_02``) and words without a speaker are ``Unknown``. Marker events are exported with their
kind, speaker and value, never their ``detail`` (it can quote the transcript).

Times are seconds from the start of the recording, rounded to the millisecond. TextGrid and EAF need
intervals of positive length that do not overlap within a tier: a zero-length item is given 1 ms, and an
item overlapping an earlier one of the same tier goes to a numbered extra tier (``Therapist words 2``).
"""

from __future__ import annotations

import json
import mimetypes
import os
import re
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import duckdb

from pipeline.csv_safety import csv_safe
from pipeline.diarization.rttm import write_rttm
from pipeline.errors import AccessDeniedError, ConfigError
from pipeline.report.data import MarkerRow, load_markers, load_session
from pipeline.report.subtitles import Cue, CueOptions, turn_cues
from pipeline.report.summary import report_stem
from pipeline.research.pseudonyms import pseudonym
from pipeline.types import Diarization, SpeakerTurn

#: Format name -> file extension.
FORMATS: dict[str, str] = {"json": "json", "srt": "srt", "vtt": "vtt", "txt": "txt", "tsv": "tsv", "rttm": "rttm",
                           "textgrid": "TextGrid", "eaf": "eaf"}
DEFAULT_CUES = CueOptions()
#: Files written beside a format's own file: format -> extensions.
COMPANIONS: dict[str, tuple[str, ...]] = {"rttm": ("uem",)}
#: An RTTM/UEM file id: one field without white space.
_URI = re.compile(r"[^\s]{1,200}")


@dataclass(frozen=True)
class ExportOptions:
    """What a user may choose about an export.

    ``cues``: subtitle line width and count (SRT, WebVTT). ``uri``: the RTTM and UEM file id (default: the
    output file's stem). ``media``: a recording to link in the EAF (ELAN opens it with the annotations; the
    path is written as given, resolved, and relative to the EAF file).
    """

    cues: CueOptions = CueOptions()
    uri: str | None = None
    media: Path | None = None

    def __post_init__(self) -> None:
        if self.uri is not None and not _URI.fullmatch(self.uri):
            raise ConfigError("--uri must be one word of 1 to 200 characters without spaces (RTTM fields are "
                              "separated by spaces)")
#: Marker kinds put on the ``silences`` tier (the others get one tier per kind).
SILENCE_KINDS = frozenset({"long_silence"})
#: The version of the JSON layout (``format.version``).
JSON_VERSION = "1"
ROLE_NAMES = {"therapist": "Therapist", "client": "Client"}
UNKNOWN_SPEAKER = "Unknown"
#: Turn text shown to a researcher when a turn has no de-identified text.
WITHHELD = "[TEXT WITHHELD]"


@dataclass(frozen=True)
class WordItem:
    start_s: float
    end_s: float
    text: str
    probability: float | None
    speaker: str
    speaker_role: str | None


@dataclass(frozen=True)
class TurnItem:
    index: int
    start_s: float
    end_s: float
    speaker: str
    speaker_role: str | None
    text: str
    words: tuple[WordItem, ...]


@dataclass(frozen=True)
class TranscriptDoc:
    """One session as exported: ``view`` is ``clinical`` or ``research`` (see the module docstring)."""

    view: str
    stem: str
    session: dict
    turns: tuple[TurnItem, ...]
    speech: tuple[SpeakerTurn, ...]
    markers: tuple[MarkerRow, ...]

    @property
    def words(self) -> tuple[WordItem, ...]:
        return tuple(w for t in self.turns for w in t.words)

    @property
    def duration_s(self) -> float:
        ends = [t.end_s for t in self.turns] + [s.end_s for s in self.speech] + [m.end_s for m in self.markers]
        return max([float(self.session.get("duration_s") or 0.0), *ends])

    @property
    def speakers(self) -> tuple[str, ...]:
        """Therapist, then client, then any other speaker by name."""
        names = {t.speaker for t in self.turns} | {s.speaker for s in self.speech}
        first = [n for n in ROLE_NAMES.values() if n in names]
        return (*first, *sorted(names - set(first)))


def speaker_name(role: str | None, label: str | None) -> str:
    """``Therapist``/``Client`` for a known role, else the diarization label, else ``Unknown``."""
    if role in ROLE_NAMES:
        return ROLE_NAMES[role]
    return label or UNKNOWN_SPEAKER


# --------------------------------------------------------------------------------------------- reading


def is_research_session(con: duckdb.DuckDBPyConnection, session_id: str) -> bool:
    return con.execute("SELECT count(*) FROM research_sessions WHERE session_id = ?", [session_id]).fetchone()[0] > 0


def resolve_research_session(con: duckdb.DuckDBPyConnection, value: str, *, key: bytes) -> str:
    """The stored session id of a research-scope session named by its id or its pseudonym (``S-...``).

    Raises
    ------
    AccessDeniedError
        No research-scope session has this id or pseudonym (the message does not say whether it exists).
    """
    for (sid,) in con.execute("SELECT session_id FROM research_sessions ORDER BY session_id").fetchall():
        if value in (sid, pseudonym(sid, kind="session_id", key=key)):
            return sid
    raise AccessDeniedError(f"{value!r} is not a research-scope session (researchers see only those)")


def sessions_of_client(con: duckdb.DuckDBPyConnection, client: str, *, key: bytes | None = None) -> list[str]:
    """The client's session ids, oldest first; with ``key``: research-scope only, ``client`` may be a pseudonym."""
    if key is None:
        return [sid for (sid,) in con.execute(
            "SELECT session_id FROM sessions WHERE client_id = ? ORDER BY recorded_on NULLS LAST, session_id",
            [client]).fetchall()]
    rows = con.execute("SELECT session_id, client_id FROM research_sessions ORDER BY recorded_on NULLS LAST, "
                       "session_id").fetchall()
    return [sid for sid, cid in rows if client in (cid, pseudonym(cid, kind="client_id", key=key))]


def sessions_of_therapist(con: duckdb.DuckDBPyConnection, therapist_id: str) -> set[str]:
    """The stored session ids of this therapist (what a clinician may export)."""
    return {sid for (sid,) in con.execute("SELECT session_id FROM sessions WHERE therapist_id = ?",
                                          [therapist_id]).fetchall()}


def sessions_of_run(con: duckdb.DuckDBPyConnection, run_id: str, *, research_only: bool = False) -> list[str]:
    """The stored sessions a run processed (``run_items`` state processed), in the order they finished."""
    table = "research_sessions" if research_only else "sessions"
    rows = con.execute(
        f"SELECT i.session_id FROM run_items i JOIN {table} s USING (session_id) "
        "WHERE i.run_id = ? AND i.state = 'processed' GROUP BY i.session_id ORDER BY min(i.finished_at), 1",
        [run_id]).fetchall()
    return [sid for (sid,) in rows]


def _words(con: duckdb.DuckDBPyConnection, session_id: str) -> list[WordItem]:
    rows = con.execute(
        "SELECT start_s, end_s, text, probability, speaker_label, speaker_role FROM words WHERE session_id = ? "
        "ORDER BY word_index", [session_id]).fetchall()
    return [WordItem(float(s), float(e), t, None if p is None else float(p), speaker_name(r, lab), r)
            for s, e, t, p, lab, r in rows]


def _split_words(words: list[WordItem], turns: list[tuple]) -> list[tuple[WordItem, ...]]:
    """Each turn's words: turns are consecutive runs of words, so ``word_count`` partitions them in order."""
    counts = [int(t[-1]) for t in turns]
    if sum(counts) == len(words):
        out, at = [], 0
        for n in counts:
            out.append(tuple(words[at:at + n]))
            at += n
        return out
    # not a partition (rows edited by hand): words inside the turn's span with its speaker
    return [tuple(w for w in words if w.speaker == speaker_name(t[4], t[3]) and t[1] <= w.start_s <= t[2])
            for t in turns]


def load_transcript(con: duckdb.DuckDBPyConnection, session_id: str, *, study_key: bytes | None = None
                    ) -> TranscriptDoc:
    """The session as a :class:`TranscriptDoc`: clinical, or with ``study_key`` the research view.

    Raises
    ------
    SessionNotFoundError
        No session has this id.
    AccessDeniedError
        ``study_key`` is given and the session is not research-scope.
    """
    row = load_session(con, session_id)
    research = study_key is not None
    if research and not is_research_session(con, session_id):
        raise AccessDeniedError(f"session {session_id!r} is not research-scope (researchers see only those)")
    turns = con.execute(
        "SELECT u.turn_index, u.start_s, u.end_s, u.speaker_label, u.speaker_role, u.text, d.text, u.word_count "
        "FROM turns u LEFT JOIN turns_deidentified d USING (session_id, turn_index) WHERE u.session_id = ? "
        "ORDER BY u.turn_index", [session_id]).fetchall()
    split = [() for _ in turns] if research else _split_words(_words(con, session_id), turns)
    items = tuple(
        TurnItem(int(i), float(s), float(e), speaker_name(r, lab), r,
                 (deid if deid is not None else WITHHELD) if research else text, ws)
        for (i, s, e, lab, r, text, deid, _n), ws in zip(turns, split, strict=True))
    speech = tuple(SpeakerTurn(float(s), float(e), speaker_name(r, lab)) for s, e, lab, r in con.execute(
        "SELECT start_s, end_s, speaker_label, speaker_role FROM speaker_turns WHERE session_id = ? "
        "ORDER BY start_s, end_s", [session_id]).fetchall())
    markers = tuple(MarkerRow(m.start_s, m.end_s, m.kind, m.speaker_role, m.value, None)
                    for m in load_markers(con, session_id))
    if research:
        assert study_key is not None
        ids = {k: pseudonym(str(row[k]), kind=k, key=study_key) for k in ("session_id", "client_id", "therapist_id")}
        stem = ids["session_id"]
    else:
        ids = {k: row[k] for k in ("session_id", "client_id", "therapist_id")}
        stem = report_stem(session_id)
    session = {**ids, "recorded_on": row["recorded_on"].isoformat() if row["recorded_on"] else None,
               "duration_s": float(row["duration_s"]), "language": row["language"],
               "pipeline_version": row["pipeline_version"], "asr_model": row["asr_model"],
               "diarization_model": row["diarization_model"]}
    return TranscriptDoc("research" if research else "clinical", stem, session, items, speech, markers)


# --------------------------------------------------------------------------------------------- JSON

#: JSON Schema (2020-12) of :func:`to_json`'s document.
_WORD_SCHEMA = {
    "type": "object",
    "required": ["word", "start", "end", "score", "probability", "speaker"],
    "properties": {"word": {"type": "string"}, "start": {"type": "number", "minimum": 0},
                   "end": {"type": "number", "minimum": 0}, "score": {"type": ["number", "null"]},
                   "probability": {"type": ["number", "null"]}, "speaker": {"type": "string"},
                   "speaker_role": {"enum": ["therapist", "client", None]}},
}
JSON_SCHEMA: dict = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "alliance-pipeline transcript (WhisperX-style)",
    "type": "object",
    "required": ["format", "language", "session", "segments", "word_segments"],
    "properties": {
        "format": {"type": "object", "required": ["name", "version", "view"],
                   "properties": {"name": {"const": "alliance-transcript"}, "version": {"type": "string"},
                                  "view": {"enum": ["clinical", "research"]}, "note": {"type": "string"}}},
        "language": {"type": ["string", "null"]},
        "session": {"type": "object", "required": ["session_id", "client_id", "therapist_id", "duration_s"],
                    "properties": {"session_id": {"type": "string"}, "client_id": {"type": "string"},
                                   "therapist_id": {"type": "string"},
                                   "recorded_on": {"type": ["string", "null"], "format": "date"},
                                   "duration_s": {"type": "number", "minimum": 0}}},
        "segments": {"type": "array", "items": {
            "type": "object", "required": ["id", "start", "end", "text", "speaker", "words"],
            "properties": {"id": {"type": "integer"}, "start": {"type": "number", "minimum": 0},
                           "end": {"type": "number", "minimum": 0}, "text": {"type": "string"},
                           "speaker": {"type": "string"}, "speaker_role": {"enum": ["therapist", "client", None]},
                           "words": {"type": "array", "items": _WORD_SCHEMA}}}},
        "word_segments": {"type": "array", "items": _WORD_SCHEMA},
    },
}


def _ms(seconds: float) -> float:
    return round(float(seconds), 3)


def _word_json(w: WordItem) -> dict:
    return {"word": w.text, "start": _ms(w.start_s), "end": _ms(w.end_s), "score": w.probability,
            "probability": w.probability, "speaker": w.speaker, "speaker_role": w.speaker_role}


def to_json(doc: TranscriptDoc) -> dict:
    """WhisperX-style: ``segments`` (one per turn, with ``words``), ``word_segments``, ``language``, ``session``.

    ``score`` and ``probability`` are both Whisper's word probability (WhisperX calls it ``score``).
    """
    note = ("research view: pseudonymous ids, de-identified turn text, no word level"
            if doc.view == "research" else "clinical view: as stored")
    return {
        "format": {"name": "alliance-transcript", "version": JSON_VERSION, "view": doc.view, "note": note},
        "language": doc.session.get("language"),
        "session": dict(doc.session),
        "segments": [{"id": t.index, "start": _ms(t.start_s), "end": _ms(t.end_s), "text": t.text,
                      "speaker": t.speaker, "speaker_role": t.speaker_role,
                      "words": [_word_json(w) for w in t.words]} for t in doc.turns],
        "word_segments": [_word_json(w) for w in doc.words],
    }


# --------------------------------------------------------------------------------------------- SRT, WebVTT


def _clock(seconds: float, sep: str) -> str:
    ms = max(0, round(seconds * 1000))
    h, rest = divmod(ms, 3_600_000)
    m, rest = divmod(rest, 60_000)
    s, ms = divmod(rest, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}{sep}{ms:03d}"


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _cues(doc: TranscriptDoc, cue_options: CueOptions, *, prefixed: bool) -> list[tuple[int, int, TurnItem, Cue]]:
    """(turn number, cue number within the turn, turn, cue) of every cue, in turn order."""
    out = []
    for n, t in enumerate(doc.turns, start=1):
        words = [(w.start_s, w.end_s, w.text) for w in t.words]
        cues = turn_cues(t.start_s, max(t.end_s, t.start_s), _one_line(t.text), words=words,
                         prefix=f"{t.speaker}: " if prefixed else "", options=cue_options)
        out += [(n, k, t, c) for k, c in enumerate(cues, start=1)]
    return out


def to_srt(doc: TranscriptDoc, cue_options: CueOptions = DEFAULT_CUES) -> str:
    """Cues of at most ``max_line_count`` lines of ``max_line_width`` characters, each opening with the speaker."""
    cues = []
    for i, (_n, _k, _t, c) in enumerate(_cues(doc, cue_options, prefixed=True), start=1):
        text = "\n".join(c.lines)
        cues.append(f"{i}\n{_clock(c.start_s, ',')} --> {_clock(c.end_s, ',')}\n{text}\n")
    return "\n".join(cues)


def _vtt_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def to_vtt(doc: TranscriptDoc, cue_options: CueOptions = DEFAULT_CUES) -> str:
    """Wrapped cues (``turn-N-K``: turn N, its K-th cue) with a voice span naming the speaker (``<v Therapist>``)."""
    lines = ["WEBVTT", ""]
    if doc.view == "research":
        lines = ["WEBVTT", "", "NOTE research view: pseudonymous ids, de-identified turn text", ""]
    for n, k, t, c in _cues(doc, cue_options, prefixed=False):
        text = "\n".join(_vtt_escape(line) for line in c.lines)
        lines += [f"turn-{n}-{k}", f"{_clock(c.start_s, '.')} --> {_clock(c.end_s, '.')}",
                  f"<v {_vtt_escape(t.speaker)}>{text}", ""]
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------- text, TSV


def to_txt(doc: TranscriptDoc) -> str:
    """One line per turn: ``Therapist: text`` (the turns' text; no times)."""
    return "".join(f"{t.speaker}: {_one_line(t.text)}\n" for t in doc.turns)


def to_tsv(doc: TranscriptDoc) -> str:
    """Tab-separated, one row per turn: ``start``, ``end`` (integer milliseconds, as WhisperX), ``speaker``, ``text``.

    Text cells that a spreadsheet would run as a formula get a leading ``'`` (:mod:`pipeline.csv_safety`).
    """
    rows = ["start\tend\tspeaker\ttext"]
    for t in doc.turns:
        start = max(0, round(t.start_s * 1000))
        rows.append(f"{start}\t{max(start, round(t.end_s * 1000))}\t{csv_safe(t.speaker)}\t"
                    f"{csv_safe(_one_line(t.text))}")
    return "\n".join(rows) + "\n"


# --------------------------------------------------------------------------------------------- RTTM


def to_diarization(doc: TranscriptDoc) -> Diarization:
    """The diarization with speakers named by role (RTTM speaker names have no spaces)."""
    turns = tuple(sorted(SpeakerTurn(s.start_s, s.end_s, "_".join(s.speaker.split())) for s in doc.speech))
    return Diarization(turns, tuple(sorted({t.speaker for t in turns})))


def rttm_uri(path: Path, options: ExportOptions | None = None) -> str:
    """The RTTM/UEM file id: ``options.uri``, else the output file's stem.

    By default the stem is ``session-HASH`` or, for a researcher, the pseudonym: no id.
    """
    return (options.uri if options else None) or Path(path).stem


def to_uem(uri: str, duration_s: float) -> str:
    """The UEM (scored region) of the whole recording: ``URI 1 0.000 END`` (NIST md-eval, pyannote ``load_uem``)."""
    return f"{uri} 1 0.000 {max(0.0, float(duration_s)):.3f}\n"


# --------------------------------------------------------------------------------------------- TextGrid, EAF


@dataclass(frozen=True)
class Tier:
    name: str
    intervals: tuple[tuple[int, int, str], ...]  # milliseconds, positive length, not overlapping


def _lanes(name: str, items: Iterable[tuple[float, float, str]]) -> list[Tier]:
    """Intervals in ms (at least 1 ms long) spread over as few tiers as keep each tier free of overlaps."""
    lanes: list[list[tuple[int, int, str]]] = []
    for start_s, end_s, text in sorted(items, key=lambda x: (x[0], x[1])):
        start = max(0, round(start_s * 1000))
        end = max(round(end_s * 1000), start + 1)
        for lane in lanes:
            if lane[-1][1] <= start:
                lane.append((start, end, text))
                break
        else:
            lanes.append([(start, end, text)])
    if not lanes:
        return [Tier(name, ())]
    return [Tier(name if i == 0 else f"{name} {i + 1}", tuple(lane)) for i, lane in enumerate(lanes)]


def _marker_label(m: MarkerRow) -> str:
    parts = [speaker_name(m.speaker_role, None) if m.speaker_role else "session"]
    if m.value is not None:
        parts.append(f"{m.value:g}")
    return " ".join(parts)


def tiers(doc: TranscriptDoc) -> list[Tier]:
    """The annotation tiers: per speaker turns and (clinical view) words; silences; one tier per marker kind."""
    out: list[Tier] = []
    for speaker in doc.speakers:
        turns = [t for t in doc.turns if t.speaker == speaker]
        out += _lanes(f"{speaker} turns", ((t.start_s, t.end_s, _one_line(t.text)) for t in turns))
        if doc.view == "clinical":
            out += _lanes(f"{speaker} words", ((w.start_s, w.end_s, w.text) for t in turns for w in t.words))
    out += _lanes("silences", ((m.start_s, m.end_s, _marker_label(m)) for m in doc.markers
                               if m.kind in SILENCE_KINDS))
    for kind in sorted({m.kind for m in doc.markers} - SILENCE_KINDS):
        out += _lanes(f"marker {kind}", ((m.start_s, m.end_s, _marker_label(m)) for m in doc.markers
                                         if m.kind == kind))
    return out


def _xmax_ms(doc: TranscriptDoc, all_tiers: Sequence[Tier]) -> int:
    ends = [iv[1] for t in all_tiers for iv in t.intervals]
    return max([round(doc.duration_s * 1000), *ends, 1])


def to_textgrid(doc: TranscriptDoc):  # pympi.Praat.TextGrid
    """A Praat TextGrid (pympi-ling) of :func:`tiers`: interval tiers over the whole recording."""
    from pympi.Praat import TextGrid

    all_tiers = tiers(doc)
    grid = TextGrid(xmin=0, xmax=_xmax_ms(doc, all_tiers) / 1000)
    for tier in all_tiers:
        t = grid.add_tier(tier.name)
        for start, end, text in tier.intervals:
            t.add_interval(start / 1000, end / 1000, text)
    return grid


#: EAF linguistic types: turns (free), words (time-aligned inside their turn), events (silences, markers).
EAF_TURNS, EAF_WORDS, EAF_EVENTS = "turn", "word", "event"


def _interval_ms(start_s: float, end_s: float) -> tuple[int, int]:
    start = max(0, round(start_s * 1000))
    return start, max(round(end_s * 1000), start + 1)


def _within(word: WordItem, turn: tuple[int, int]) -> tuple[int, int]:
    """The word's interval in ms clipped into its turn's (ELAN's Included_In needs the child inside the parent)."""
    start, end = _interval_ms(word.start_s, word.end_s)
    start = min(max(start, turn[0]), turn[1] - 1)
    return start, max(min(end, turn[1]), start + 1)


def eaf_tiers(doc: TranscriptDoc) -> list[tuple[Tier, str, str | None, str | None]]:
    """(tier, linguistic type, parent tier, participant) of the EAF, parents before their children.

    Per speaker: ``Therapist turns`` (participant ``Therapist``) and, clinical view only, ``Therapist words``
    as its child (type ``word``, constraint Included_In: each word inside its turn). Turns of one speaker that
    overlap go to ``Therapist turns 2`` with their own word tier (``Therapist words (turns 2)``); overlapping
    words go to numbered extra word tiers under the same turn tier. Then silences and marker tiers.
    """
    out: list[tuple[Tier, str, str | None, str | None]] = []
    for speaker in doc.speakers:
        lanes: list[list[tuple[tuple[int, int], TurnItem]]] = []
        for t in sorted((t for t in doc.turns if t.speaker == speaker), key=lambda t: (t.start_s, t.end_s)):
            span = _interval_ms(t.start_s, t.end_s)
            for lane in lanes:
                if lane[-1][0][1] <= span[0]:
                    lane.append((span, t))
                    break
            else:
                lanes.append([(span, t)])
        for i, lane in enumerate(lanes or [[]]):
            name = f"{speaker} turns" if i == 0 else f"{speaker} turns {i + 1}"
            out.append((Tier(name, tuple((*span, _one_line(t.text)) for span, t in lane)), EAF_TURNS, None, speaker))
            if doc.view != "clinical":
                continue
            words = [(*_within(w, span), w.text) for span, t in lane for w in t.words]
            base = f"{speaker} words" if i == 0 else f"{speaker} words (turns {i + 1})"
            for tier in _lanes(base, ((a / 1000, b / 1000, text) for a, b, text in words)):
                out.append((tier, EAF_WORDS, name, speaker))
    rest = _lanes("silences", ((m.start_s, m.end_s, _marker_label(m)) for m in doc.markers if m.kind in SILENCE_KINDS))
    for kind in sorted({m.kind for m in doc.markers} - SILENCE_KINDS):
        rest += _lanes(f"marker {kind}", ((m.start_s, m.end_s, _marker_label(m)) for m in doc.markers
                                          if m.kind == kind))
    return out + [(tier, EAF_EVENTS, None, None) for tier in rest]


def media_descriptor(media: Path, eaf_path: Path) -> tuple[str, str, str]:
    """(absolute file URL, path relative to the EAF's folder, MIME type) of a linked recording."""
    target = Path(media).resolve()
    try:
        relative = "./" + Path(os.path.relpath(target, Path(eaf_path).resolve().parent)).as_posix()
    except ValueError:  # another drive (Windows)
        relative = target.as_uri()
    mime = {".wav": "audio/x-wav"}.get(target.suffix.lower()) or mimetypes.guess_type(target.name)[0] or "unknown"
    return target.as_uri(), relative, mime


def to_eaf(doc: TranscriptDoc, *, media: tuple[str, str, str] | None = None):
    """An ELAN EAF document (pympi-ling) of :func:`eaf_tiers`, with participants and word tiers under turn tiers.

    ``media``: a :func:`media_descriptor` to link the recording (none: link it in ELAN, Edit > Linked Files).
    """
    from pympi.Elan import Eaf

    eaf = Eaf(author="alliance-pipeline")
    eaf.add_property("session_id", str(doc.session["session_id"]))
    eaf.add_property("view", doc.view)
    eaf.add_linguistic_type(EAF_TURNS)
    eaf.add_linguistic_type(EAF_WORDS, constraints="Included_In")
    eaf.add_linguistic_type(EAF_EVENTS)
    if media is not None:
        url, relative, mime = media
        eaf.add_linked_file(url, relpath=relative, mimetype=mime)
    for tier, ling, parent, participant in eaf_tiers(doc):
        eaf.add_tier(tier.name, ling=ling, parent=parent, part=participant)
        for start, end, text in tier.intervals:
            eaf.add_annotation(tier.name, start, end, text)
    eaf.remove_tier("default")
    eaf.remove_linguistic_type("default-lt")
    # ELAN numbers new annotations from this property: keep it past the ids used here
    eaf.remove_property("lastUsedAnnotation")
    eaf.add_property("lastUsedAnnotation", eaf.maxaid)
    return eaf


# --------------------------------------------------------------------------------------------- writing


def default_name(doc: TranscriptDoc, fmt: str) -> str:
    """``session-HASH.EXT`` (clinical) or ``S-PSEUDONYM.EXT`` (research): no id in a file name."""
    return f"{doc.stem}.{FORMATS[fmt]}"


def output_paths(path: Path | str, fmt: str) -> tuple[Path, ...]:
    """Every file :func:`write_transcript` writes for ``path``: the file itself, then its companions (RTTM: UEM)."""
    path = Path(path)
    return (path, *(path.with_suffix(f".{ext}") for ext in COMPANIONS.get(fmt, ())))


def _write(doc: TranscriptDoc, fmt: str, tmp: Path, path: Path, options: ExportOptions) -> None:
    """Write ``fmt`` into ``tmp`` (and its companions beside it); ``path`` is where it will be moved to."""
    if fmt == "json":
        tmp.write_text(json.dumps(to_json(doc), ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    elif fmt == "srt":
        tmp.write_text(to_srt(doc, options.cues), encoding="utf-8")
    elif fmt == "vtt":
        tmp.write_text(to_vtt(doc, options.cues), encoding="utf-8")
    elif fmt == "txt":
        tmp.write_text(to_txt(doc), encoding="utf-8")
    elif fmt == "tsv":
        tmp.write_text(to_tsv(doc), encoding="utf-8")
    elif fmt == "rttm":
        uri = rttm_uri(path, options)
        write_rttm(to_diarization(doc), tmp, uri)
        tmp.with_suffix(".uem").write_text(to_uem(uri, doc.duration_s), encoding="utf-8")
    elif fmt == "textgrid":
        to_textgrid(doc).to_file(str(tmp), codec="utf-8")
    elif fmt == "eaf":
        media = None if options.media is None else media_descriptor(options.media, path)
        to_eaf(doc, media=media).to_file(str(tmp))
    else:
        raise ConfigError(f"unknown transcript format {fmt!r}; one of {', '.join(FORMATS)}")


def write_transcript(doc: TranscriptDoc, path: Path | str, fmt: str, options: ExportOptions | None = None
                     ) -> Path:
    """Write ``doc`` as ``fmt`` to ``path`` (replaced if it exists), readable by its owner only (0600).

    RTTM also writes its UEM beside it (:func:`output_paths`). Every file is written in a private temporary
    folder beside ``path`` and moved into place, so it is never readable by others, not even while written.
    """
    if fmt not in FORMATS:
        raise ConfigError(f"unknown transcript format {fmt!r}; one of {', '.join(FORMATS)}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp_dir = Path(tempfile.mkdtemp(prefix=".transcript-", dir=path.parent))  # mode 0700
    try:
        tmp = tmp_dir / f"part.{FORMATS[fmt]}"
        _write(doc, fmt, tmp, path, options or ExportOptions())
        for part, target in zip(output_paths(tmp, fmt), output_paths(path, fmt), strict=True):
            os.chmod(part, 0o600)
            os.replace(part, target)
    finally:
        for leftover in tmp_dir.iterdir():
            leftover.unlink()
        tmp_dir.rmdir()
    return path
