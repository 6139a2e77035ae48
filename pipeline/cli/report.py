"""``alliance report SESSION_ID``: the clinician's per-session process report (HTML, PDF or Markdown)."""

from __future__ import annotations

import argparse
from pathlib import Path

from pipeline.cli.args import add_db_argument, add_viewer_arguments, check_viewer

FORMATS = ("html", "pdf", "md")


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``report`` subcommand."""
    p = subparsers.add_parser(
        "report", help="write a session's process report (HTML, PDF or Markdown)",
        description="Write the per-session process report of a stored session: a self-contained HTML page "
        "(timeline, marker events with quotes, the client's baseline and trend, silences after questions, "
        "self-report when stored) that makes no network requests; PDF prints that page with headless Chromium; "
        "md is the Markdown summary. Indicators are process signals for reflection, not clinical judgements.")
    p.add_argument("session_id", metavar="SESSION_ID")
    p.add_argument("--format", choices=FORMATS, default="html", dest="report_format",
                   help="html (default), pdf (needs chromium) or md")
    p.add_argument("--out", type=Path, metavar="PATH",
                   help="output file (default: reports/session-HASH.html, .pdf or .md; HASH from the session id)")
    p.add_argument("--audio", type=Path, metavar="PATH",
                   help="the session's local recording: the HTML report gets a player linked to it by relative "
                   "path (never embedded) whose time codes seek it; needs --audio-playback-consented, and the "
                   "file's SHA-256 must match the session's")
    p.add_argument("--audio-playback-consented", action="store_true",
                   help="confirm that the client agreed to the recording being played from the report (the "
                   "stored consent record does not say)")
    add_db_argument(p)
    add_viewer_arguments(p)
    p.set_defaults(handler=_cmd_report)


def _cmd_report(args: argparse.Namespace) -> int:
    from pipeline.report import ReportOptions, write_report  # matplotlib: imported per report, not per command
    from pipeline.report.audio_link import audio_href
    from pipeline.report.summary import report_stem
    from pipeline.storage import audit, db

    out = args.out or Path("reports") / f"{report_stem(args.session_id)}.{args.report_format}"
    with db.open(args.db, create=False) as con:
        check_viewer(con, args.session_id, args)
        options = ReportOptions()
        if args.audio is not None:
            options = ReportOptions(audio_href=audio_href(con, args.session_id, args.audio, out,
                                                          playback_consented=args.audio_playback_consented))
        path = write_report(con, args.session_id, out, fmt_name=args.report_format, options=options)
        kind = {"md": "summary_md", "html": "report_html", "pdf": "report_pdf"}[args.report_format]
        db.record_files(con, session_id=args.session_id, files=[(str(path), kind)], run_id="report-command")
        audit.record(con, action="report", actor=audit.current_actor(args.actor), role=args.role,
                     session_ids=[args.session_id], detail=f"{args.report_format} {path}")
    print(f"Report for {args.session_id}: {path.resolve()}")
    print("  (process signals for reflection, not clinical judgements)")
    return 0
