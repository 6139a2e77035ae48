"""``alliance report SESSION_ID``: the clinician's per-session process report (HTML, PDF or Markdown)."""

from __future__ import annotations

import argparse
from pathlib import Path

from pipeline.cli.args import add_db_argument, add_viewer_arguments, check_viewer, denied
from pipeline.errors import ConfigError

FORMATS = ("html", "pdf", "md")


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``report`` subcommand."""
    p = subparsers.add_parser(
        "report", help="write a session's process report (HTML, PDF or Markdown)",
        description="Write the per-session process report of a stored session: a self-contained HTML page "
        "(timeline, marker events with quotes, the client's baseline and trend, silences after questions, "
        "self-report when stored) that makes no network requests; PDF prints that page with headless Chromium; "
        "md is the Markdown summary. Indicators are process signals for reflection, not clinical judgements.")
    p.add_argument("session_id", metavar="SESSION_ID", nargs="?")
    p.add_argument("--client", metavar="ID",
                   help="instead of a session: the client's page, each indicator's trend across their sessions "
                   "(a clinician sees only their own sessions of the client); HTML only")
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
    if (args.client is None) == (args.session_id is None):
        raise ConfigError("give either SESSION_ID or --client ID")
    if args.client is not None:
        return _cmd_client(args)
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


def _cmd_client(args: argparse.Namespace) -> int:
    from pipeline.report.client_page import load_client_page, render_client_html
    from pipeline.report.summary import report_stem
    from pipeline.storage import audit, db

    if args.report_format != "html" or args.audio is not None:
        raise ConfigError("the client page is HTML only, without audio (leave out --format and --audio)")
    out = args.out or Path("reports") / f"{report_stem(args.client, kind='client')}.html"
    with db.open(args.db, create=False) as con:
        if args.role == "clinician" and not args.therapist:
            raise denied(con, [], args, "a clinician must name themselves with --therapist ID "
                                        "(or use --role supervisor)")
        page = load_client_page(con, args.client, therapist_id=args.therapist if args.role == "clinician" else None)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(render_client_html(page), encoding="utf-8")
        sessions = [h.session_id for h in page.history]
        for sid in sessions:  # erasing any of these sessions deletes the page
            db.record_files(con, session_id=sid, files=[(str(out), "client_html")], run_id="report-command")
        audit.record(con, action="report", actor=audit.current_actor(args.actor), role=args.role,
                     session_ids=sessions, detail=f"client html {out}")
    print(f"Client page ({len(sessions)} session{'' if len(sessions) == 1 else 's'}): {out.resolve()}")
    print("  (process signals for reflection, not clinical judgements)")
    return 0
