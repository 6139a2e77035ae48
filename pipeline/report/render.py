"""Assemble the clinician report: HTML (self-contained), PDF (headless Chromium) or Markdown.

The HTML has no external references: figures are inline SVG, styles and the small script are inline, and
a Content-Security-Policy meta tag blocks any request the page might still try to make.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import duckdb
import jinja2

from pipeline import PIPELINE_VERSION
from pipeline.analysis.definitions import moment_detectors
from pipeline.errors import AllianceError
from pipeline.report import codes as mi_codes
from pipeline.report import derive, figures
from pipeline.report.data import ReportData, load_report_data
from pipeline.report.indicator_table import indicator_groups
from pipeline.report.summary import (
    DISCLAIMER,
    clock,
    format_value,
    grade_cells,
    grade_legend,
    quality_lines,
)
from pipeline.report.transcript_view import anchor_at, transcript_rows
from pipeline.report.verdict import quality_verdict

#: Below this role confidence the report warns prominently (as the Markdown summary does).
LOW_ROLE_CONFIDENCE = 0.5
#: Recordings shorter than this get a note that the indicators rest on little speech.
SHORT_SESSION_S = 5 * 60.0
CSP = ("default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:; "
       "font-src data:; base-uri 'none'; form-action 'none'")
#: Added to the CSP only when the report links a local recording: media from file: URLs, nothing else.
CSP_MEDIA = "; media-src file:"


@dataclass(frozen=True)
class ReportOptions:
    """How the HTML report is written.

    ``audio_href``: the checked relative link of the session's local recording
    (:func:`pipeline.report.audio_link.audio_href`); None (default) writes no player.
    """

    audio_href: str | None = None

#: Headline indicators shown as small multiples: (name, role, label, format).
HEADLINE = (
    ("talk_time_share", "client", "Client talk-time share", "pct"),
    ("talk_time_share", "therapist", "Therapist talk-time share", "pct"),
    ("we_rate", "client", 'Client "we" per 100 words', "f2"),
    ("we_rate", "therapist", 'Therapist "we" per 100 words', "f2"),
    ("speech_rate", "client", "Client speech rate (words/min)", "f0"),
    ("long_silence_count", None, "Silences of 2 s or more", "int"),
    ("mean_switching_gap", "client", "Client response latency", "s2"),
)
#: Fixed y range of each headline sparkline, so that nearly equal sessions look nearly level (a value outside
#: widens it): talk share all of 0-100 %, the others a range that holds ordinary sessions.
SPARK_SCALE: dict[str, tuple[float, float]] = {
    "talk_time_share": (0.0, 1.0),
    "we_rate": (0.0, 5.0),
    "speech_rate": (0.0, 250.0),
    "long_silence_count": (0.0, 10.0),
    "mean_switching_gap": (-1.0, 3.0),
}

class ReportError(AllianceError):
    """A report cannot be written (for example PDF without Chromium)."""

    code = "report"


#: Indicator values are formatted exactly as in the Markdown summary.
fmt = format_value


def _compare(current: float | None, baseline: float | None, how: str) -> str:
    """Plain words for current against the client's baseline (no value judgement)."""
    if current is None or baseline is None:
        return ""
    diff = current - baseline
    if how == "pct":
        pts = 100 * diff
        if abs(pts) < 3:
            return "about the same as usual"
        return f"{abs(pts):.0f} points {'above' if pts > 0 else 'below'} usual"
    scale = max(abs(baseline), 1e-9)
    if abs(diff) / scale < 0.1 or abs(diff) < 1e-9:
        return "about the same as usual"
    return f"{'higher' if diff > 0 else 'lower'} than usual ({'+' if diff > 0 else '-'}{fmt(abs(diff), how)})"


def _cards(data: ReportData) -> list[dict]:
    cards = []
    for i, (name, role, label, how) in enumerate(HEADLINE):
        t = derive.trend(data.history, name, role, label)
        spark = (figures.trend_sparkline(t, prefix=f"spark{i}", scale=SPARK_SCALE.get(name))
                 if sum(v is not None for v in t.values) >= 2 else None)
        series = ", ".join(f"{sid}: {fmt(v, how)}" for sid, v in zip(t.session_ids, t.values, strict=True))
        usual = f"{fmt(t.usual[0], how)} to {fmt(t.usual[1], how)}" if t.usual else None
        cards.append({
            "label": label, "value": fmt(t.current, how), "baseline": fmt(t.baseline, how) if t.n_earlier else None,
            "n_earlier": t.n_earlier, "compare": _compare(t.current, t.baseline, how), "svg": spark,
            "usual": usual,
            "alt": f"{label} by session, oldest first: {series}." + (f" Usual range {usual}." if usual else ""),
        })
    return cards


def _timeline_text(data: ReportData, evs: Sequence[derive.Event]) -> str:
    """What the timeline figure shows, in words: speech, overlaps, silences and the events drawn (``evs``).

    Stored markers that the figure does not draw (backchannels, listener turns, cues below the precision bar)
    are not counted here.
    """
    parts = []
    bin_s = derive.timeline_bin_s(data.duration_s)
    if bin_s is not None:  # a long session: the figure draws shares of time bins, not each stretch
        parts.append(f"The figure shows the share of each {clock(bin_s)} spoken by each person, and by both at once.")
    for role in ("therapist", "client"):
        segs = derive.role_union(data.speech, role)
        total = clock(sum(s.duration_s for s in segs))
        parts.append(f"The {role} spoke in {len(segs)} stretches, {total} in all." if bin_s is None
                     else f"The {role} spoke {total} in all.")
    both = derive.overlaps(data.speech)
    overlap_s = sum(b.duration_s for b in both)
    parts.append(f"Both spoke at once {len(both)} times ({overlap_s:.1f} s in all)." if bin_s is None
                 else f"Both spoke at once for {overlap_s:.1f} s in all.")
    sil = derive.silences(data)
    if sil:
        parts.append("Silences of 2 s or more at " + ", ".join(
            f"{clock(m.start_s)} ({m.end_s - m.start_s:.1f} s)" for m in sil) + ".")
    else:
        parts.append("No silences of 2 s or more.")
    by_label: dict[str, int] = {}
    for e in evs:
        by_label[e.label] = by_label.get(e.label, 0) + 1
    if by_label:
        parts.append("Events drawn in the figure and listed next to it: "
                     + ", ".join(f"{label} {n}" for label, n in by_label.items()) + ".")
    else:
        parts.append("No events are drawn in the figure.")
    return " ".join(parts)


def _we_text(data: ReportData) -> str:
    parts = []
    for role in ("therapist", "client"):
        times = [m.start_s for m in data.markers if m.kind == "we_language" and m.speaker_role == role]
        rate = data.indicators.get(("we_rate", role))
        when = ", ".join(clock(t) for t in times[:40]) + (" and more" if len(times) > 40 else "")
        parts.append(f"{role.capitalize()}: {len(times)} \"we\" tokens ({fmt(rate, 'f2')} per 100 words)"
                     + (f", at {when}." if times else "."))
    return " ".join(parts)


def _self_report_context(data: ReportData) -> dict:
    sr = data.self_report
    current_id = data.session["session_id"]
    order = [h.session_id for h in data.history]
    groups: dict[tuple[str, str, str], dict[str, float]] = {}
    for sc in sr.scores:
        groups.setdefault((sc.instrument, sc.scale or "", sc.timepoint or ""), {})[sc.session_id] = sc.score
    rows = []
    def order_key(item: tuple[tuple[str, str, str], dict[str, float]]) -> tuple[str, bool, str, str]:
        (instrument, scale, timepoint), _ = item
        return (instrument, scale.lower() != "total", scale, timepoint)  # each instrument's total first

    for i, ((instrument, scale, timepoint), by_session) in enumerate(sorted(groups.items(), key=order_key)):
        values = [by_session.get(sid) for sid in order]
        label = instrument.upper() + (f" {scale}" if scale and scale.lower() != "total" else " total") \
            + (f" ({timepoint})" if timepoint else "")
        series = ", ".join(f"{sid}: {fmt(v, 'f1')}" for sid, v in zip(order, values, strict=True) if v is not None)
        rows.append({
            "label": label, "current": fmt(by_session.get(current_id), "f1"),
            "n": sum(v is not None for v in values),
            "svg": figures.sparkline(values, baseline=None, prefix=f"sr{i}", title=f"{label} by session")
            if sum(v is not None for v in values) >= 2 else None,
            "alt": f"{label} by session, oldest first: {series}.",
        })
    return {"available": sr.available, "note": sr.note, "rows": rows,
            "has_current": any(s.session_id == current_id for s in sr.scores)}


def build_context(data: ReportData, options: ReportOptions = ReportOptions()) -> dict:
    """Everything the template needs, as plain values (figures already rendered to SVG)."""
    s = data.session
    evs = derive.events(data)
    gaps = derive.question_gaps(data.turns, data.speech)
    conf = s.get("role_confidence")
    review = [e for e in evs if e.kind in derive.REVIEW_KINDS]
    stored_cues = sum(1 for m in data.markers if m.kind in derive.EXPLORATORY_DETECTORS)
    detectors = moment_detectors()
    unlisted = [{"label": derive.kind_label(k), "detects": d.detects, "may_indicate": d.may_indicate,
                 "evidence": d.evidence} for k, d in detectors.items()
                if not d.listed and d.may_indicate.startswith(("withdrawal", "confrontation"))]
    return {
        "s": s,
        "title": f"Session process summary: {s['session_id']}",
        "csp": CSP + (CSP_MEDIA if options.audio_href else ""),
        "audio_href": options.audio_href,
        "disclaimer": DISCLAIMER,
        "duration": clock(data.duration_s),
        "speech_time": fmt(data.indicators.get(("speech_time", None)), "mmss"),
        "low_confidence": conf is None or conf < LOW_ROLE_CONFIDENCE,
        "role_confidence": "not recorded" if conf is None else f"{conf:.2f}",
        "short_session": data.duration_s < SHORT_SESSION_S,
        "timeline_bin": clock(b) if (b := derive.timeline_bin_s(data.duration_s)) else None,
        "first_session": not data.earlier,
        "n_earlier": len(data.earlier),
        "cards": _cards(data),
        "timeline_svg": figures.timeline(data, evs),
        "timeline_text": _timeline_text(data, evs),
        "events": [{**e.__dict__, "at": clock(e.start_s), "role": e.speaker_role or "",
                    "t": f"{e.start_s:.2f}", "turn": anchor_at(data.transcript, e.start_s)} for e in evs],
        "transcript": transcript_rows(data.transcript, clock),
        "event_json": [{"id": e.event_id, "label": e.label, "at": clock(e.start_s), "quote": e.quote,
                        "note": e.note, "role": e.speaker_role or ""} for e in evs],
        "we_svg": figures.we_language(data),
        "we_text": _we_text(data),
        "gaps": [{"at": clock(g.at_s), "gap": f"{g.gap_s:.1f} s", "long": g.gap_s >= 2.0,
                  "question": g.question, "responder": g.responder or "(end)", "reply": g.reply or ""} for g in gaps],
        "gaps_svg": figures.question_gaps(gaps, data.duration_s) if gaps else None,
        "n_long_gaps": sum(g.gap_s >= 2.0 for g in gaps),
        "review": [{**e.__dict__, "at": clock(e.start_s)} for e in review],
        "review_kinds": [derive.kind_label(k) for k in derive.REVIEW_KINDS],
        "review_detected": (s.get("markers_version") or "1.0.0") != "1.0.0",
        "unlisted_detectors": unlisted,
        "stored_cues": stored_cues,
        "quality": data.quality,
        "verdict": quality_verdict(data.quality),
        "indicator_groups": indicator_groups(data.indicators, data.grades),
        "quality_lines": quality_lines(data.quality),
        "grade_legend": grade_legend(data.grades),
        "self_report": _self_report_context(data),
        "pipeline_version": PIPELINE_VERSION,
        "miti": {"coded": bool(data.codes), "rows": mi_codes.miti_rows(data.indicators),
                 "groups": mi_codes.utterances_by_code(data.codes, clock), "agreement": mi_codes.agreement_line(),
                 "grades": dict(zip(("accuracy", "evidence"),
                                    grade_cells(data.grades, "mi_reflection_question_ratio"), strict=True))},
    }


def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.PackageLoader("pipeline.report", "templates"),
        autoescape=jinja2.select_autoescape(["html", "j2"]),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def render_html(data: ReportData, options: ReportOptions = ReportOptions()) -> str:
    """The self-contained HTML report of one session."""
    return _environment().get_template("report.html.j2").render(**build_context(data, options))


def write_html_report(con: duckdb.DuckDBPyConnection, session_id: str, out_path: Path | str,
                      options: ReportOptions = ReportOptions()) -> Path:
    """Write the session's HTML report to ``out_path`` (parents created) and return the path.

    Raises
    ------
    SessionNotFoundError
        No session has this id.
    """
    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    html = render_html(load_report_data(con, session_id), options)
    out.write_text(html, encoding="utf-8")
    return out


def find_chromium() -> str | None:
    """Path of a headless-capable Chromium (``$ALLIANCE_CHROMIUM`` first), or None."""
    env = os.environ.get("ALLIANCE_CHROMIUM")
    if env:
        return env if Path(env).exists() else None
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    return None


def require_chromium() -> str:
    """Path of Chromium, or a ReportError saying how to install it."""
    chromium = find_chromium()
    if chromium is None:
        raise ReportError("PDF output needs headless Chromium, which was not found: install it "
                          "(`apt-get install chromium` on Debian) or set ALLIANCE_CHROMIUM to its path; "
                          "`--format html` works without it")
    return chromium


def chromium_args(chromium: str, profile_dir: Path | str) -> list[str]:
    """A headless Chromium command line that keeps the browser offline.

    The page itself makes no requests (its Content-Security-Policy blocks them). Chromium's own background
    requests (component update check, account list) survive every ``--disable-*`` switch, so name
    resolution is switched off too: they fail without leaving the machine.
    """
    return [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--disable-default-apps", "--no-first-run",
            "--disable-extensions", "--disable-component-extensions-with-background-pages", "--no-pings",
            "--disable-domain-reliability", "--disable-client-side-phishing-detection", "--disable-breakpad",
            "--metrics-recording-only", "--mute-audio", "--hide-scrollbars",
            "--disable-features=NetworkTimeServiceQuerying,OptimizationHints,MediaRouter,DialMediaRouteProvider,"
            "AutofillServerCommunication,Translate,CertificateTransparencyComponentUpdater",
            "--host-resolver-rules=MAP * ~NOTFOUND", f"--user-data-dir={profile_dir}"]


def html_to_pdf(html_path: Path | str, pdf_path: Path | str, *, chromium: str | None = None,
                timeout_s: float = 120.0) -> Path:
    """Print an HTML file to PDF with headless Chromium.

    Raises
    ------
    ReportError
        Chromium is not installed, or it failed or wrote no PDF.
    """
    chromium = chromium or require_chromium()
    pdf = Path(pdf_path).resolve()
    pdf.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="alliance-chromium-") as profile:
        cmd = chromium_args(chromium, profile) + ["--no-pdf-header-footer", f"--print-to-pdf={pdf}",
                                                  Path(html_path).resolve().as_uri()]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, check=False)
        except (OSError, subprocess.TimeoutExpired) as e:
            raise ReportError(f"Chromium ({chromium}) could not print {html_path} to PDF: {e}") from e
    if not pdf.is_file() or pdf.stat().st_size == 0:
        raise ReportError(f"Chromium ({chromium}) wrote no PDF (exit {proc.returncode}): {proc.stderr.strip()[-500:]}")
    return pdf


def write_report(con: duckdb.DuckDBPyConnection, session_id: str, out_path: Path | str, *,
                 fmt_name: str = "html", options: ReportOptions = ReportOptions()) -> Path:
    """Write the report as ``html``, ``pdf`` (HTML printed by Chromium) or ``md`` (the Markdown summary).

    Raises
    ------
    SessionNotFoundError
        No session has this id.
    ReportError
        PDF without Chromium, or an unknown format.
    """
    out = Path(out_path)
    if fmt_name == "html":
        return write_html_report(con, session_id, out, options)
    if options.audio_href:
        raise ReportError("an audio player is only written into the HTML report (--format html)")
    if fmt_name == "md":
        from pipeline.report.summary import load_summary, render_markdown

        text = render_markdown(load_summary(con, session_id))
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text, encoding="utf-8")
        return out
    if fmt_name == "pdf":
        chromium = require_chromium()  # fail before any work
        with tempfile.TemporaryDirectory(prefix="alliance-report-") as tmp:
            html = write_html_report(con, session_id, Path(tmp) / f"{session_id}.html")
            return html_to_pdf(html, out, chromium=chromium)
    raise ReportError(f"unknown report format {fmt_name!r}: use html, pdf or md")


__all__: Sequence[str] = ("ReportError", "ReportOptions", "build_context", "find_chromium", "html_to_pdf",
                          "render_html", "require_chromium", "write_html_report", "write_report")
