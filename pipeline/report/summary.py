"""The clinician's per-session process summary, rendered from the database as Markdown."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

import duckdb

from pipeline.analysis.quality import EXPECTED_WER_HELD_OUT_ERROR
from pipeline.report.verdict import quality_verdict
from pipeline.storage.db import require_session

DISCLAIMER = (
    "These indicators are process signals for reflection and supervision. They are not diagnoses, "
    "not clinical judgements and not a measure of the quality of the therapy; automatic transcription "
    "and speaker separation make errors. Read them alongside the recording and the client's own view."
)

#: (indicator name, label, how to format the value): the indicator table of every summary and report.
INDICATOR_ROWS = (
    ("talk_time_share", "Talk-time share", "pct"),
    ("speaking_time", "Speaking time", "mmss"),
    ("word_count", "Words", "int"),
    ("speech_rate", "Speech rate (words per minute of own speaking time)", "f1"),
    ("we_count", '"We"-language tokens', "int"),
    ("we_rate", '"We"-language per 100 words', "f2"),
    ("long_silence_count", "Silences of 2 s or more (count)", "int"),
    ("long_silence_total", "Silences of 2 s or more (total)", "s1"),
    ("mean_switching_gap", "Mean switching gap (response latency)", "s2"),
    ("pause_rate", "In-turn pauses of 0.25-2 s (per minute of own speech)", "f1"),
    ("pitch_median", "Median pitch (Hz)", "f0"),
    ("energy_median", "Median loudness (dBFS)", "f1"),
    ("new_material_share", "Client content words new to this client's sessions", "pct"),
)


@dataclass(frozen=True)
class SessionSummary:
    session: dict
    indicators: dict[tuple[str, str | None], float | None]
    silences: tuple[tuple[float, float, str | None, dict], ...]
    #: The session's ``session_quality`` row (None for sessions stored before markers 1.3.0).
    quality: dict | None = None
    #: Per indicator name, its two grades as stored for the session's markers version: (accuracy, evidence).
    grades: dict[str, tuple[str, str]] | None = None


#: Short words for the table cells; the legend below says what each means.
ACCURACY_CELLS = {"synthetic_truth": "synthetic truth", "expert_codes": "expert codes",
                  "realistic_bench": "realistic bench", "model_labels": "model labels", "not_measured": "not measured"}
EVIDENCE_CELLS = {"supported": "supported", "none_yet": "none yet", "contradicted": "contradicted"}
#: The legend of the indicator table (summary and report), in plain words.
GRADE_LEGEND = (
    "Two separate facts per indicator. Accuracy: how well the number is measured (synthetic truth: against "
    "renders with exact truth; expert codes: against human experts' codes; realistic bench: against degraded "
    "renders with truth; model labels: against language-model labels, not human experts; not measured). "
    "Evidence: what the number is known to say about the alliance or the outcome (supported: shown to move with "
    "alliance or outcome ratings; none yet; contradicted: evidence against what its name suggests, not a "
    "warning sign).",
    "A well-measured number is not thereby a sign of the alliance: a silence counted exactly is still only a "
    "silence.",
)


def grade_legend(grades: dict[str, tuple[str, str]] | None) -> tuple[str, ...]:
    """The legend, plus what the stored grades say: whether any indicator has supported evidence."""
    supported = sorted(n for n, (_acc, ev) in (grades or {}).items() if ev == "supported")
    if not grades:
        return GRADE_LEGEND
    if not supported:
        return (*GRADE_LEGEND, "No indicator has supported evidence about the alliance or outcome.")
    return (*GRADE_LEGEND, "Supported evidence about the alliance or outcome: " + ", ".join(supported) + ".")


def grade_cells(grades: dict[str, tuple[str, str]] | None, name: str) -> tuple[str, str]:
    """The accuracy and evidence cells of an indicator (``not graded`` for a markers version without them)."""
    acc, ev = (grades or {}).get(name, (None, None))
    return ACCURACY_CELLS.get(acc, "not graded"), EVIDENCE_CELLS.get(ev, "not graded")


def load_quality(con: duckdb.DuckDBPyConnection, session_id: str) -> dict | None:
    """The session's quality row with ``flags`` decoded, or None when none is stored."""
    cur = con.execute("SELECT * FROM session_quality WHERE session_id = ?", [session_id])
    row = cur.fetchone()
    if row is None:
        return None
    out = dict(zip([d[0] for d in cur.description], row, strict=True))
    out["flags"] = json.loads(out.get("flags") or "[]")
    return out


def load_grades(con: duckdb.DuckDBPyConnection, markers_version: str | None) -> dict[str, tuple[str, str]]:
    """(accuracy, evidence) per indicator name for a markers version (empty for versions without definitions)."""
    return {name: (acc, ev) for name, acc, ev in con.execute(
        "SELECT name, accuracy, evidence FROM indicator_definitions WHERE markers_version = ?",
        [markers_version]).fetchall()}


def report_stem(session_id: str, *, kind: str = "session") -> str:
    """The file-name stem of a session's summary and report (or, ``kind="index"``, a therapist's index page).

    Opaque and unique per exact id: ``session-`` and the first 16 hex digits of the id's SHA-256. No id
    enters a file name (ids may be names), two ids never share a file (``X 1`` and ``X/1`` differ), and the
    paths written are recorded in ``report_files``, so erasure deletes exactly a session's own files.
    """
    return f"{kind}-{hashlib.sha256(session_id.encode('utf-8')).hexdigest()[:16]}"


def clock(seconds: float) -> str:
    """``m:ss`` (or ``h:mm:ss`` from an hour) for a time in seconds."""
    hours, rest = divmod(int(round(seconds)), 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def format_value(value: float | None, how: str) -> str:
    """Format an indicator value for people (``n/a`` when missing).

    ``how`` is a format code of :data:`INDICATOR_ROWS`: pct, mmss, int, f0, f1, f2, s1 or s2.
    """
    if value is None:
        return "n/a"
    if how == "pct":
        return f"{100 * value:.0f} %"
    if how == "mmss":
        return clock(value)
    if how in ("int", "f0"):
        return f"{value:.0f}"
    if how == "f1":
        return f"{value:.1f}"
    if how == "f2":
        return f"{value:.2f}"
    if how == "s1":
        return f"{value:.1f} s"
    return f"{value:.2f} s"


def _clock(seconds: float) -> str:
    return f"{int(seconds // 60)}:{seconds % 60:04.1f}"


def load_summary(con: duckdb.DuckDBPyConnection, session_id: str) -> SessionSummary:
    """Read what the summary shows (raises SessionNotFoundError for an unknown id)."""
    session = require_session(con, session_id)
    ind = {
        (name, role): value
        for name, role, value in con.execute(
            "SELECT name, speaker_role, value FROM indicators WHERE session_id = ?", [session_id]
        ).fetchall()
    }
    silences = tuple(
        (s, e, role, json.loads(detail or "{}"))
        for s, e, role, detail in con.execute(
            "SELECT start_s, end_s, speaker_role, detail FROM markers WHERE session_id = ? AND kind = 'long_silence' "
            "ORDER BY start_s",
            [session_id],
        ).fetchall()
    )
    return SessionSummary(session, ind, silences, load_quality(con, session_id),
                          load_grades(con, session.get("markers_version")))


def quality_lines(quality: dict | None) -> list[str]:
    """The summary's quality section (Markdown lines): the measures and every flag with what not to trust."""
    if quality is None:
        return ["Quality measures are not stored for this session (processed before markers 1.3.0).", ""]
    q = quality
    snr = "n/a" if q["snr_db"] is None else f"{q['snr_db']:.0f} dB"
    prob = "n/a" if q["mean_word_probability"] is None else f"{q['mean_word_probability']:.2f}"
    lines = [f"Speech {q['speech_s']:.0f} s ({100 * q['speech_share']:.0f} % of the recording); estimated SNR {snr}; "
             f"overlapped speech {100 * q['overlap_share']:.0f} %; mean word probability {prob}; "
             f"dropped as hallucinations: {q['asr_segments_dropped']} segment(s), "
             f"{q['words_dropped_outside_speech']} word(s) outside speech; role confidence "
             f"{q['role_confidence']:.2f}.", ""]
    if q.get("expected_wer") is not None:
        lines[0] += (f" Expected word error rate about {100 * q['expected_wer']:.0f} %: estimated from the words' "
                     f"confidence (within about {100 * EXPECTED_WER_HELD_OUT_ERROR:.0f} points on held-out synthetic "
                     "renders), not measured.")
    if not q["flags"]:
        return lines + ["No quality flag raised.", ""]
    for f in q["flags"]:
        lines.append(f"- **⚠ {f['code'].replace('_', ' ')}**: {f['message']}. Do not rely on: {f['distrust']}.")
    return lines + [""]


def headline(summary: SessionSummary) -> list[str]:
    """A few lines for the terminal."""
    i = summary.indicators
    return [
        f"talk-time share: therapist {format_value(i.get(('talk_time_share', 'therapist')), 'pct')}, "
        f"client {format_value(i.get(('talk_time_share', 'client')), 'pct')}",
        f'"we" per 100 words: therapist {format_value(i.get(("we_rate", "therapist")), "f2")}, '
        f'client {format_value(i.get(("we_rate", "client")), "f2")}',
        f"silences >= 2 s: {format_value(i.get(('long_silence_count', None)), 'int')} "
        f"({format_value(i.get(('long_silence_total', None)), 's1')} in all); "
        f"mean switching gap {format_value(i.get(('mean_switching_gap', None)), 's2')}",
    ]


def render_markdown(summary: SessionSummary) -> str:
    """The per-session summary as Markdown."""
    s = summary.session
    i = summary.indicators
    lines = [
        f"# Session process summary: {s['session_id']}",
        "",
        f"> {DISCLAIMER}",
        "",
        f"- Client: `{s['client_id']}`; therapist: `{s['therapist_id']}`; "
        f"recorded on: {s['recorded_on'] or 'not given'}",
        f"- Duration: {format_value(s['duration_s'], 'mmss')} "
        f"(speech {format_value(i.get(('speech_time', None)), 'mmss')}); "
        f"language: {s['language']}",
        f"- Speech recognition: {s['asr_backend']} ({s['asr_model']}); pipeline {s['pipeline_version']}, "
        f"run `{s['run_id']}`",
        f"- Roles: {s['role_method']} (confidence {s['role_confidence']:.2f}); therapist = {s['therapist_label']}, "
        f"client = {s['client_label']}",
        "",
    ]
    if s["role_method"] == "rule" and (s["role_confidence"] or 0) < 0.5:
        lines += [
            "**Caution: the therapist/client assignment is uncertain for this session.** Check it against the "
            "recording; a supervisor can re-run with an explicit role override.",
            "",
        ]
    lines += ["## Recording quality", "", f"**{quality_verdict(summary.quality).sentence}**", ""]
    lines += quality_lines(summary.quality)
    from pipeline.report.codes import markdown_lines

    lines += markdown_lines(i, coded=any(n.startswith("mi_") and v is not None for (n, _), v in i.items()))
    lines += ["## Indicators", "", "| Indicator | Therapist | Client | Accuracy | Evidence about alliance |",
              "|---|---:|---:|---|---|"]
    for name, label, how in INDICATOR_ROWS:
        therapist, client = (format_value(i.get((name, role)), how) for role in ("therapist", "client"))
        accuracy, evidence = grade_cells(summary.grades, name)
        lines.append(f"| {label} | {therapist} | {client} | {accuracy} | {evidence} |")
    lines += ["", " ".join(grade_legend(summary.grades)) + " Figures and sources: docs/data_dictionary.md."]
    lines += ["", "## Silences of 2 s or more", ""]
    if not summary.silences:
        lines.append("None in this session.")
    else:
        lines += ["| At | Length | Kind | Before | After |", "|---|---:|---|---|---|"]
        for start, end, _role, detail in summary.silences:
            kind = "switching gap" if detail.get("type") == "switch" else "pause"
            lines.append(
                f"| {_clock(start)} | {end - start:.1f} s | {kind} | {detail.get('before') or '?'} | "
                f"{detail.get('after') or '?'} |"
            )
    lines += [
        "",
        "## What these mean",
        "",
        "- **Talk-time share**: each person's share of the time anyone is speaking.",
        "- **Speech rate**: words per minute of the person's own speaking time.",
        '- **"We"-language**: first-person-plural words (we, us, our, let\'s, ...) per 100 of the person\'s '
        "words; it includes \"we\" about other people (e.g. a family), not only the two of you.",
        "- **Silences of 2 s or more**: gaps when nobody speaks; a *switching gap* is followed by the other "
        "person, a *pause* by the same person. Silences can be reflective as well as awkward.",
        "- **Switching gap**: time from the end of one person's turn to the start of the other's (negative "
        "values are overlaps).",
        "",
    ]
    return "\n".join(lines)
