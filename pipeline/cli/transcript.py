"""``alliance export-transcript``: a session's (a client's, a batch run's) transcript for other tools.

Formats (``docs/exports.md``): WhisperX-style JSON, SRT, WebVTT, RTTM, Praat TextGrid, ELAN EAF. Roles as
for ``report`` and ``summary`` (a clinician only their own therapist's sessions; supervisor and admin
any), plus ``researcher``: research-scope sessions only, pseudonyms, de-identified turn text, no words.
Every file is written owner-only (0600) and recorded for the session, so a consent withdrawal deletes it;
every export is in the audit log.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from pipeline.cli.args import VIEWER_ROLES, add_actor_argument, add_db_argument, check_viewer
from pipeline.errors import AccessDeniedError, SessionNotFoundError

DEFAULT_DIR = Path("reports") / "transcripts"
ROLES = (*VIEWER_ROLES, "researcher")


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``export-transcript`` subcommand."""
    p = subparsers.add_parser(
        "export-transcript", help="write a transcript as JSON, SRT, WebVTT, RTTM, Praat TextGrid or ELAN EAF",
        description="Write the transcript of a stored session (or of every session of a client, or of a batch "
        "run: one file per session into a folder) for other tools: json (WhisperX-style segments and words), "
        "srt and vtt (subtitles with the speaker's role), rttm (the diarization, speakers named by role), "
        "textgrid (Praat) and eaf (ELAN) with tiers per role (turns, words) plus silences and marker events. "
        "Files are readable by their owner only and deleted with the session on consent withdrawal. "
        "--role researcher: research-scope sessions only, pseudonyms instead of ids, de-identified turn text, "
        "no word-level text (needs the study key). See docs/exports.md.")
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("session_id", nargs="?", metavar="SESSION",
                       help="a session id (a researcher may give its pseudonym S-...)")
    which.add_argument("--client", metavar="ID", help="every session of this client (researcher: or its C-... "
                       "pseudonym); one file per session into --out")
    which.add_argument("--run", metavar="RUN_ID", help="every session a batch run processed; one file per session "
                       "into --out")
    p.add_argument("--format", choices=("json", "srt", "vtt", "rttm", "textgrid", "eaf"), required=True,
                   dest="transcript_format", help="output format")
    p.add_argument("--out", type=Path, metavar="PATH",
                   help="output file for one session, a folder for --client/--run (default: reports/transcripts/"
                   "session-HASH.EXT, HASH from the session id; researcher: S-PSEUDONYM.EXT)")
    add_db_argument(p)
    p.add_argument("--role", choices=ROLES, default="clinician",
                   help="clinician (default: only sessions of --therapist), supervisor or admin (any session), "
                   "researcher (research-scope sessions, pseudonyms, de-identified turn text, no words)")
    p.add_argument("--therapist", metavar="ID", help="the clinician's therapist id (required for --role clinician)")
    p.add_argument("--study-key-file", type=Path, metavar="KEYFILE",
                   help="the study's pseudonym key (researcher; default: $ALLIANCE_STUDY_KEY_FILE)")
    add_actor_argument(p)
    p.set_defaults(handler=_cmd_export_transcript)


def _select(con, args: argparse.Namespace, key: bytes | None) -> list[str]:
    """The session ids to export, after the role's rules (raises AccessDeniedError / SessionNotFoundError)."""
    from pipeline.report.transcript_export import resolve_research_session, sessions_of_client, sessions_of_run

    if args.session_id is not None:
        if key is not None:
            return [resolve_research_session(con, args.session_id, key=key)]
        check_viewer(con, args.session_id, args)
        return [args.session_id]
    if args.client is not None:
        ids = sessions_of_client(con, args.client, key=key)
        what = f"client {args.client!r}"
    else:
        ids = sessions_of_run(con, args.run, research_only=key is not None)
        what = f"run {args.run!r}"
    if args.role == "clinician":
        if not args.therapist:
            raise AccessDeniedError("a clinician must name themselves with --therapist ID (or use --role supervisor)")
        own = {sid for (sid,) in con.execute("SELECT session_id FROM sessions WHERE therapist_id = ?",
                                              [args.therapist]).fetchall()}
        ids = [sid for sid in ids if sid in own]
        for sid in ids:
            check_viewer(con, sid, args)
        if not ids:
            raise AccessDeniedError(f"{what} has no session of therapist {args.therapist!r}")
    if not ids:
        if key is not None:
            raise AccessDeniedError(f"{what} has no research-scope session (researchers see only those)")
        raise SessionNotFoundError(f"{what} has no stored session")
    return ids


def _cmd_export_transcript(args: argparse.Namespace) -> int:
    from pipeline.report.transcript_export import default_name, load_transcript, write_transcript
    from pipeline.research.pseudonyms import load_study_key
    from pipeline.storage import audit, db

    fmt = args.transcript_format
    key = load_study_key(args.study_key_file) if args.role == "researcher" else None
    single = args.session_id is not None
    written: list[Path] = []
    with db.open(args.db, create=False) as con:
        ids = _select(con, args, key)
        for sid in ids:
            doc = load_transcript(con, sid, study_key=key)
            if single and args.out is not None:
                path = args.out
            else:
                path = (args.out or DEFAULT_DIR) / default_name(doc, fmt)
            # recorded before it is written: a withdrawal finds the file even if this command dies half-way
            db.record_files(con, session_id=sid, files=[(str(path), f"transcript_{fmt}")],
                            run_id="export-transcript")
            written.append(write_transcript(doc, path, fmt))
        target = written[0] if single else (args.out or DEFAULT_DIR)
        audit.record(con, action="export-transcript", actor=audit.current_actor(args.actor), role=args.role,
                     session_ids=ids, detail=f"{fmt}: {len(written)} file(s) to {Path(target).resolve()}")
    for path in written:
        print(f"{path.resolve()}")
    view = "research view: pseudonyms, de-identified turn text, no words" if key is not None else "owner-only"
    print(f"Exported {len(written)} transcript(s) as {fmt} ({view}).")
    return 0
