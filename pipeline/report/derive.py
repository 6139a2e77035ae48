"""Values the report derives from the stored rows: overlaps, silences after questions, events, trends.

Pure functions over :mod:`pipeline.report.data` values; times in seconds.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

from pipeline.analysis.definitions import listed_moment_kinds, moment_detectors
from pipeline.report.data import HistoryPoint, MarkerRow, ReportData, SpeechSpan, TurnRow

#: Marker kinds: (label, glyph (a matplotlib marker, so kinds differ in shape, not colour alone), timeline row).
#: Kinds not listed (added by later marker versions) get a generic label, a circle and the "Other" row.
KIND_STYLE: dict[str, tuple[str, str, str]] = {
    "long_silence": ("Silence of 2 s or more", "s", "Silences"),
    "we_language": ('"We"-language', "^", '"We"-language'),
    "collaborative_we": ('Collaborative "we"', "v", '"We"-language'),
    "rupture_candidate": ("Strain cue (markers before 1.3.0)", "X", "To review"),
    "topic_avoidance": ("Topic avoidance", "D", "To review"),
    "topic_shift": ("Topic shift after a question", "D", "To review"),
    "deflection": ("Deflection", "P", "To review"),
    "minimal_response": ("Minimal response", "d", "To review"),
    "silence_after_probe": ("Long silence before answering a question", "X", "To review"),
    "deference": ("Deferential phrase", "X", "To review"),
    "complaint": ("Complaint about the therapy", "X", "To review"),
    "rejecting_intervention": ("Suggestion turned down", "X", "To review"),
    "process_talk": ("Talk about the therapy itself", "h", "Other markers"),
    "client_question": ("Client question", "p", "Other markers"),
    "session_summary": ("Therapist summary", "*", "Other markers"),
}
#: Moment detectors whose measured precision reached the bar (docs/validation.md section 6) and that point
#: at possible strain: only these are listed under "Moments to review".
REVIEW_KINDS = tuple(k for k in listed_moment_kinds() if moment_detectors()[k].may_indicate.startswith(
    ("withdrawal", "confrontation")))
#: Moment detectors that did not reach the bar: stored for research, never shown to clinicians as events.
EXPLORATORY_DETECTORS = frozenset(k for k, d in moment_detectors().items() if not d.listed) | {"rupture_candidate"}
#: Kinds not listed as events: overlaps have their own timeline row; backchannels ("mm-hm") and listener turns
#: (short nested diarization turns, exploratory) are too many; unvalidated moment detectors are not shown to
#: clinicians.
UNLISTED_KINDS = frozenset({"overlap", "backchannel", "listener_turn"}) | EXPLORATORY_DETECTORS
#: Timeline rows of events, top to bottom after the speech rows.
EVENT_ROWS = ("Silences", '"We"-language', "To review", "Other markers")


def kind_label(kind: str) -> str:
    return KIND_STYLE.get(kind, (kind.replace("_", " ").capitalize(), "o", ""))[0]


def kind_glyph(kind: str) -> str:
    return KIND_STYLE.get(kind, ("", "o", ""))[1]


def kind_row(kind: str) -> str:
    return KIND_STYLE.get(kind, ("", "o", "Other markers"))[2]


@dataclass(frozen=True, order=True)
class Interval:
    start_s: float
    end_s: float

    @property
    def duration_s(self) -> float:
        return self.end_s - self.start_s


def speech_union(speech: Sequence[SpeechSpan]) -> tuple[Interval, ...]:
    """Union of all diarization segments, sorted and merged."""
    merged: list[list[float]] = []
    for s in sorted(speech):
        if merged and s.start_s <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], s.end_s)
        else:
            merged.append([s.start_s, s.end_s])
    return tuple(Interval(a, b) for a, b in merged)


def overlaps(speech: Sequence[SpeechSpan]) -> tuple[Interval, ...]:
    """Times when therapist and client speak at once (intersections of their diarization segments)."""
    ther = speech_union([s for s in speech if s.speaker_role == "therapist"])
    cli = speech_union([s for s in speech if s.speaker_role == "client"])
    out: list[Interval] = []
    i = j = 0
    while i < len(ther) and j < len(cli):
        a = max(ther[i].start_s, cli[j].start_s)
        b = min(ther[i].end_s, cli[j].end_s)
        if b > a:
            out.append(Interval(a, b))
        if ther[i].end_s < cli[j].end_s:
            i += 1
        else:
            j += 1
    return tuple(out)


def role_union(speech: Sequence[SpeechSpan], role: str) -> tuple[Interval, ...]:
    return speech_union([s for s in speech if s.speaker_role == role])


@dataclass(frozen=True)
class QuestionGap:
    """A therapist turn ending in a question and the time until anyone speaks next.

    ``gap_s`` runs from the end of the therapist's diarized speech to the next speech by anyone (negative:
    the reply overlapped the question); ``responder`` is the role of the next turn (None at the session end).
    """

    at_s: float
    gap_s: float
    question: str
    responder: str | None
    reply: str | None


def question_gaps(turns: Sequence[TurnRow], speech: Sequence[SpeechSpan]) -> tuple[QuestionGap, ...]:
    """Silences after therapist questions, measured on the diarization (not on Whisper word gaps).

    A question is a therapist turn whose text ends with "?". Its end is the end of the therapist's
    diarization speech covering the turn's last word; the gap runs to the first later start of anyone's speech.
    The last turn of a session (nothing follows) is left out.
    """
    ther = role_union(speech, "therapist")
    starts = sorted(s.start_s for s in speech)
    out: list[QuestionGap] = []
    for k, t in enumerate(turns):
        if t.speaker_role != "therapist" or not t.text.rstrip().endswith("?") or k + 1 >= len(turns):
            continue
        # the therapist speech segment nearest the question's last word
        covering = [iv for iv in ther if iv.start_s <= t.end_s + 0.3]
        end_s = covering[-1].end_s if covering else t.end_s
        nxt = turns[k + 1]
        later = [s for s in starts if s > end_s]
        reply_start = later[0] if later else nxt.start_s
        if nxt.speaker_role != "therapist" and nxt.start_s < end_s:
            # the reply began before the question's speech ended: an overlap
            client_starts = [s.start_s for s in speech if s.speaker_role != "therapist" and s.start_s <= end_s
                             and s.end_s > t.start_s]
            reply_start = max(client_starts) if client_starts else nxt.start_s
        out.append(QuestionGap(t.end_s, reply_start - end_s, _last_sentence(t.text), nxt.speaker_role,
                               _first_words(nxt.text)))
    return tuple(out)


def _last_sentence(text: str, *, max_chars: int = 140) -> str:
    text = text.strip()
    cut = max(text.rfind(". ", 0, len(text) - 1), text.rfind("! ", 0, len(text) - 1),
              text.rfind("? ", 0, len(text) - 1))
    sentence = text[cut + 2:] if cut >= 0 else text
    return sentence if len(sentence) <= max_chars else "..." + sentence[-max_chars:]


def _first_words(text: str, *, max_chars: int = 100) -> str:
    text = text.strip()
    return text if len(text) <= max_chars else text[:max_chars].rsplit(" ", 1)[0] + "..."


@dataclass(frozen=True)
class Event:
    """A marker event as the report lists it: ``event_id`` ties the list entry to its point on the timeline."""

    event_id: str
    kind: str
    label: str
    speaker_role: str | None
    start_s: float
    end_s: float
    quote: str
    note: str


def _turn_at(turns: Sequence[TurnRow], t_s: float, role: str | None = None) -> TurnRow | None:
    pool = [t for t in turns if role is None or t.speaker_role == role] or list(turns)
    if not pool:
        return None
    return min(pool, key=lambda t: 0.0 if t.start_s <= t_s <= t.end_s else min(abs(t.start_s - t_s),
                                                                                   abs(t.end_s - t_s)))


def _quote_around(turn: TurnRow, token: str | None, *, max_chars: int = 160) -> str:
    text = turn.text.strip()
    if len(text) <= max_chars:
        return text
    pos = text.lower().find((token or "").lower()) if token else -1
    if pos < 0:
        return text[:max_chars].rsplit(" ", 1)[0] + "..."
    a = max(0, pos - max_chars // 2)
    b = min(len(text), a + max_chars)
    return ("..." if a else "") + text[a:b].strip() + ("..." if b < len(text) else "")


def _same_token(a: MarkerRow, b: MarkerRow) -> bool:
    return a.speaker_role == b.speaker_role and abs(a.start_s - b.start_s) < 0.01 and abs(a.end_s - b.end_s) < 0.01


def listed_markers(markers: Sequence[MarkerRow]) -> tuple[MarkerRow, ...]:
    """The markers listed as events: unlisted kinds left out, and each "we" token once.

    A collaborative "we" is stored twice: as a ``we_language`` token and as a ``collaborative_we`` marker of
    the same span and speaker. It is listed once, as the collaborative one.
    """
    collab = [m for m in markers if m.kind == "collaborative_we"]
    return tuple(m for m in markers if m.kind not in UNLISTED_KINDS
                 and not (m.kind == "we_language" and any(_same_token(m, c) for c in collab)))


def events(data: ReportData) -> tuple[Event, ...]:
    """Every listed marker event (:func:`listed_markers`) with a quote from the transcript, in time order."""
    out: list[Event] = []
    for m in listed_markers(data.markers):
        n = len(out)
        label = kind_label(m.kind)
        if m.kind == "long_silence":
            d = m.detail_json()
            before = _turn_at([t for t in data.turns if t.end_s <= m.start_s + 0.5] or data.turns, m.start_s)
            after = _turn_at([t for t in data.turns if t.start_s >= m.end_s - 0.5] or data.turns, m.end_s)
            kind = "switching gap" if d.get("type") == "switch" else "pause"
            quote = ""
            if before is not None:
                quote += f"{before.speaker_role or '?'}: \u201c{_last_sentence(before.text, max_chars=90)}\u201d"
            if after is not None and after is not before:
                quote += f" \u2026 {after.speaker_role or '?'}: \u201c{_first_words(after.text, max_chars=90)}\u201d"
            note = f"{m.end_s - m.start_s:.1f} s {kind} ({d.get('before') or '?'} to {d.get('after') or '?'})"
        else:
            d = m.detail_json()
            turn = _turn_at(data.turns, m.start_s, m.speaker_role)
            token = m.detail if m.kind == "we_language" else None
            quoted = d.get("quote") or (_quote_around(turn, token) if turn is not None else "")
            quote = f"\u201c{quoted}\u201d" if quoted else ""
            if m.kind == "we_language":
                note = f"\u201c{m.detail}\u201d by the {m.speaker_role or 'unknown speaker'}"
            elif m.kind == "collaborative_we":
                note = (f"\u201c{d.get('token') or 'we'}\u201d by the {m.speaker_role or 'unknown speaker'}, "
                        "about the two of you" + (f" (cue: {d['cue']})" if d.get("cue") else ""))
            elif d:
                kind = str(d.get("reason") or d.get("why") or d.get("type") or d.get("phrase") or "")
                parts = [kind.replace("_", " ").capitalize(),
                         f"after the question \u201c{d['probe']}\u201d" if d.get("probe") else ""]
                note = ", ".join(p for p in parts if p)
            else:
                note = m.detail or ""
        out.append(Event(f"ev{n}", m.kind, label, m.speaker_role, m.start_s, m.end_s, quote, str(note)))
    return tuple(out)


def timeline_bin_s(duration_s: float) -> float | None:
    """Bin width for an aggregated timeline, or None when turns can be drawn one by one.

    Up to 20 minutes every diarization segment is drawn; longer sessions are shown as the share of each
    bin spoken by each person (bins of 30 s to a few minutes, at most about 180 bins).
    """
    if duration_s <= 20 * 60:
        return None
    for width in (30.0, 60.0, 120.0, 300.0, 600.0):
        if duration_s / width <= 180:
            return width
    return math.ceil(duration_s / 180 / 60) * 60.0


def binned_share(intervals: Sequence[Interval], *, duration_s: float, bin_s: float) -> list[float]:
    """Fraction of each bin ``[k * bin_s, (k + 1) * bin_s)`` covered by the intervals; shape (n_bins,)."""
    n = max(1, math.ceil(duration_s / bin_s))
    cover = [0.0] * n
    for iv in intervals:
        k = int(iv.start_s // bin_s)
        while k < n and k * bin_s < iv.end_s:
            a = max(iv.start_s, k * bin_s)
            b = min(iv.end_s, (k + 1) * bin_s)
            cover[k] += max(0.0, b - a)
            k += 1
    return [min(1.0, c / bin_s) for c in cover]


def silences(data: ReportData) -> tuple[MarkerRow, ...]:
    return tuple(m for m in data.markers if m.kind == "long_silence")


@dataclass(frozen=True)
class Trend:
    """One indicator across the client's sessions (oldest first, the current session last)."""

    name: str
    speaker_role: str | None
    label: str
    values: tuple[float | None, ...]
    session_ids: tuple[str, ...]
    current: float | None
    baseline: float | None  # median of the earlier sessions, None without any
    n_earlier: int
    #: The client's usual range: the middle half of the earlier sessions' values (25th to 75th percentile), or
    #: all of them (lowest to highest) with fewer than 4; None with fewer than 2 earlier sessions.
    usual: tuple[float, float] | None = None


def usual_range(earlier: Sequence[float]) -> tuple[float, float] | None:
    """The client's usual range of an indicator from its earlier sessions (see :attr:`Trend.usual`)."""
    if len(earlier) < 2:
        return None
    if len(earlier) < 4:
        return (min(earlier), max(earlier))
    q = statistics.quantiles(earlier, n=4, method="inclusive")
    return (q[0], q[2])


def trend(history: Sequence[HistoryPoint], name: str, role: str | None, label: str) -> Trend:
    values = tuple(h.indicators.get((name, role)) for h in history)
    current = values[-1] if history and history[-1].is_current else None
    earlier = [v for h, v in zip(history, values, strict=True) if not h.is_current and v is not None]
    baseline = statistics.median(earlier) if earlier else None
    return Trend(name, role, label, values, tuple(h.session_id for h in history), current, baseline, len(earlier),
                 usual_range(earlier))
