"""Read what the clinician report shows from the database: pure functions over a DuckDB connection.

Every function takes an open connection and a session id and returns plain frozen values; nothing is
cached or written. Times are seconds from the start of the recording.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field

import duckdb

from pipeline.report.summary import load_grades, load_quality
from pipeline.storage.db import require_session


@dataclass(frozen=True, order=True)
class TurnRow:
    """A turn of words (``turns`` table)."""

    start_s: float
    end_s: float
    speaker_role: str | None
    text: str
    word_count: int


@dataclass(frozen=True, order=True)
class SpeechSpan:
    """A diarization segment (``speaker_turns`` table)."""

    start_s: float
    end_s: float
    speaker_role: str | None


@dataclass(frozen=True, order=True)
class MarkerRow:
    """A marker event; ``detail`` is the stored text (JSON for silences, the token for "we"-language)."""

    start_s: float
    end_s: float
    kind: str
    speaker_role: str | None
    value: float | None
    detail: str | None

    def detail_json(self) -> dict:
        """``detail`` parsed as a JSON object ({} when it is not one)."""
        try:
            parsed = json.loads(self.detail or "")
        except ValueError:
            return {}
        return parsed if isinstance(parsed, dict) else {}


#: Indicator values keyed by (name, speaker_role); speaker_role None is session-level.
Indicators = dict[tuple[str, str | None], float | None]


@dataclass(frozen=True)
class HistoryPoint:
    """One of the client's sessions (earlier ones and the current one) with its indicators."""

    session_id: str
    recorded_on: dt.date | None
    processed_at: dt.datetime
    is_current: bool
    indicators: Indicators


@dataclass(frozen=True)
class SelfReportScore:
    """One self-report score of a session (an instrument's total, or a named subscale)."""

    session_id: str
    instrument: str
    scale: str | None
    score: float
    timepoint: str | None = None


@dataclass(frozen=True)
class SelfReport:
    """Self-report scores of the client's sessions up to this one.

    ``available`` and ``note`` are what the renderer reads: the migrations always create the self-report
    tables, so ``available`` is True and ``note`` None.
    """

    available: bool = True
    scores: tuple[SelfReportScore, ...] = ()
    note: str | None = None


@dataclass(frozen=True)
class CodedRow:
    """One coded turn as the report shows it (de-identified text)."""

    start_s: float | None
    speaker_role: str
    text: str
    code: str
    probability: float
    subtype: str | None
    coder_version: str


@dataclass(frozen=True, order=True)
class TranscriptTurn:
    """A turn of the de-identified transcript (``turns_deidentified`` text with the ``turns`` times and role)."""

    start_s: float
    end_s: float
    turn_index: int
    speaker_role: str | None
    text: str


@dataclass(frozen=True)
class ReportData:
    """Everything the report shows about one session."""

    session: dict
    turns: tuple[TurnRow, ...]
    speech: tuple[SpeechSpan, ...]
    markers: tuple[MarkerRow, ...]
    indicators: Indicators
    history: tuple[HistoryPoint, ...]
    self_report: SelfReport
    #: The session's quality row (flags decoded), None before markers 1.3.0.
    quality: dict | None = None
    #: Per indicator name, (accuracy, evidence) as stored for the session's markers version.
    grades: dict[str, tuple[str, str]] = field(default_factory=dict)
    #: The MI process codes of the session's turns (``coded_utterances``), in time order; empty when not coded.
    codes: tuple[CodedRow, ...] = ()
    #: The de-identified transcript, in time order (empty when none is stored).
    transcript: tuple[TranscriptTurn, ...] = ()

    @property
    def duration_s(self) -> float:
        return float(self.session["duration_s"])

    @property
    def earlier(self) -> tuple[HistoryPoint, ...]:
        """The client's sessions before this one, oldest first (empty for a first session)."""
        return tuple(h for h in self.history if not h.is_current)


def load_session(con: duckdb.DuckDBPyConnection, session_id: str) -> dict:
    """The ``sessions`` row as a dict (raises SessionNotFoundError for an unknown id)."""
    return require_session(con, session_id)


def load_turns(con: duckdb.DuckDBPyConnection, session_id: str) -> tuple[TurnRow, ...]:
    rows = con.execute(
        "SELECT start_s, end_s, speaker_role, text, word_count FROM turns WHERE session_id = ? ORDER BY turn_index",
        [session_id],
    ).fetchall()
    return tuple(TurnRow(float(s), float(e), r, t, int(n)) for s, e, r, t, n in rows)


def load_speech(con: duckdb.DuckDBPyConnection, session_id: str) -> tuple[SpeechSpan, ...]:
    """Diarization segments, sorted by start."""
    rows = con.execute(
        "SELECT start_s, end_s, speaker_role FROM speaker_turns WHERE session_id = ? ORDER BY start_s, end_s",
        [session_id],
    ).fetchall()
    return tuple(SpeechSpan(float(s), float(e), r) for s, e, r in rows)


def load_markers(con: duckdb.DuckDBPyConnection, session_id: str) -> tuple[MarkerRow, ...]:
    """Marker events with a time, sorted by start (every kind, including ones added after this module)."""
    rows = con.execute(
        "SELECT start_s, coalesce(end_s, start_s), kind, speaker_role, value, detail FROM markers "
        "WHERE session_id = ? AND start_s IS NOT NULL ORDER BY start_s, kind",
        [session_id],
    ).fetchall()
    return tuple(MarkerRow(float(s), float(e), k, r, v, d) for s, e, k, r, v, d in rows)


def load_indicators(con: duckdb.DuckDBPyConnection, session_id: str) -> Indicators:
    return {
        (name, role): value
        for name, role, value in con.execute(
            "SELECT name, speaker_role, value FROM indicators WHERE session_id = ?", [session_id]
        ).fetchall()
    }


def load_history(con: duckdb.DuckDBPyConnection, session_id: str) -> tuple[HistoryPoint, ...]:
    """The client's sessions up to and including this one, oldest first.

    Sessions are ordered by ``recorded_on`` (falling back to the date processed when it is missing), then
    ``processed_at``; sessions after this one are left out, so a baseline never uses the future.
    """
    session = require_session(con, session_id)
    rows = con.execute(
        "SELECT session_id, recorded_on, processed_at FROM sessions WHERE client_id = ? "
        "ORDER BY coalesce(recorded_on, CAST(processed_at AS DATE)), processed_at, session_id",
        [session["client_id"]],
    ).fetchall()
    ids = [r[0] for r in rows]
    rows = rows[: ids.index(session_id) + 1]
    values: dict[str, Indicators] = {sid: {} for sid, _, _ in rows}
    if rows:
        for sid, name, role, value in con.execute(
            "SELECT i.session_id, i.name, i.speaker_role, i.value FROM indicators i "
            "JOIN sessions s USING (session_id) WHERE s.client_id = ?",
            [session["client_id"]],
        ).fetchall():
            if sid in values:
                values[sid][(name, role)] = value
    return tuple(HistoryPoint(sid, rec, proc, sid == session_id, values[sid]) for sid, rec, proc in rows)


def load_self_report(con: duckdb.DuckDBPyConnection, session_id: str) -> SelfReport:
    """The client's self-report scores up to this session (``self_report_scores_long``, from the migrations).

    Scores not linked to one of these sessions are left out.
    """
    sessions = sorted(h.session_id for h in load_history(con, session_id))
    rows = con.execute(
        "SELECT session_id, instrument, scale, timepoint, value FROM self_report_scores_long "
        "WHERE session_id IN (SELECT unnest(?)) AND value IS NOT NULL",
        [sessions],
    ).fetchall()
    scores = tuple(SelfReportScore(sid, inst, scale, float(value), timepoint)
                   for sid, inst, scale, timepoint, value in rows)
    return SelfReport(scores=tuple(sorted(scores, key=lambda x: (x.instrument, x.scale or "", x.timepoint or "",
                                                                 x.session_id))))


def load_report_data(con: duckdb.DuckDBPyConnection, session_id: str) -> ReportData:
    """Everything the report shows (raises SessionNotFoundError for an unknown id)."""
    session = load_session(con, session_id)
    return ReportData(
        session=session,
        turns=load_turns(con, session_id),
        speech=load_speech(con, session_id),
        markers=load_markers(con, session_id),
        indicators=load_indicators(con, session_id),
        history=load_history(con, session_id),
        self_report=load_self_report(con, session_id),
        quality=load_quality(con, session_id),
        grades=load_grades(con, session.get("markers_version")),
        codes=load_codes(con, session_id),
        transcript=load_transcript(con, session_id),
    )


def load_transcript(con: duckdb.DuckDBPyConnection, session_id: str) -> tuple[TranscriptTurn, ...]:
    """The session's de-identified turns with their times and roles, in time order."""
    rows = con.execute(
        "SELECT t.start_s, t.end_s, t.turn_index, t.speaker_role, d.text FROM turns_deidentified d "
        "JOIN turns t USING (session_id, turn_index) WHERE d.session_id = ? ORDER BY t.start_s, t.turn_index",
        [session_id]).fetchall()
    return tuple(TranscriptTurn(float(s), float(e), int(i), r, x) for s, e, i, r, x in rows)


def load_codes(con: duckdb.DuckDBPyConnection, session_id: str) -> tuple[CodedRow, ...]:
    """The session's coded turns (empty before markers 1.5.0 or when coding was off)."""
    rows = con.execute(
        "SELECT start_s, speaker_role, text, code, code_probability, subtype, coder_version FROM coded_utterances "
        "WHERE session_id = ? ORDER BY turn_index", [session_id]).fetchall()
    return tuple(CodedRow(None if s is None else float(s), r, t, c, float(p), st, v) for s, r, t, c, p, st, v in rows)
