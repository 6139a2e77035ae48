"""``alliance export-transcript``: a session's (a client's, a batch run's) transcript for other tools.

Formats (``docs/exports.md``): WhisperX-style JSON, SRT, WebVTT, text, TSV, RTTM (with UEM), Praat TextGrid,
ELAN EAF, or ``all`` of them; ``--index`` writes the table of which hashed file is which session's. Roles as
for ``report`` and ``summary`` (a clinician only their own therapist's sessions; supervisor and admin
any), plus ``researcher``: research-scope sessions only, pseudonyms, de-identified turn text, no words.
Every file is written owner-only (0600) and recorded for the session, so a consent withdrawal deletes it;
every export is in the audit log.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from pipeline.cli.args import VIEWER_ROLES, add_actor_argument, add_db_argument, check_viewer, positive_int
from pipeline.errors import AccessDeniedError, ConfigError, SessionNotFoundError

DEFAULT_DIR = Path("reports") / "transcripts"
INDEX_DIR = Path("reports")
FORMAT_NAMES = ("json", "srt", "vtt", "txt", "tsv", "rttm", "textgrid", "eaf")
ROLES = (*VIEWER_ROLES, "researcher")


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``export-transcript`` subcommand."""
    p = subparsers.add_parser(
        "export-transcript", help="write a transcript as JSON, SRT, WebVTT, text, TSV, RTTM, TextGrid or EAF",
        description="Write the transcript of a stored session (or of every session of a client, or of a batch "
        "run: one file per session into a folder) for other tools: json (WhisperX-style segments and words), "
        "srt and vtt (subtitles with the speaker's role, wrapped to --max-line-width x --max-line-count), txt and "
        "tsv (one line per turn), rttm (the diarization, speakers named by role, with a .uem beside it), "
        "textgrid (Praat) and eaf (ELAN) with tiers per role (turns, words) plus silences and marker events; "
        "all: every format. --index: a table of which hashed file belongs to which session. "
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
    which.add_argument("--index", action="store_true", help="write a TSV of the session files this role may see "
                       "(session, client, therapist, date, kind, path); not for researchers; deleted when any "
                       "session it lists is erased")
    p.add_argument("--format", choices=(*FORMAT_NAMES, "all"), dest="transcript_format",
                   help="output format (all: every format, one file each; required unless --index)")
    p.add_argument("--out", type=Path, metavar="PATH",
                   help="output file for one session, a folder for --client/--run and --format all (default: "
                   "reports/transcripts/session-HASH.EXT, HASH from the session id; researcher: S-PSEUDONYM.EXT; "
                   "--index: reports/files-all.tsv or, for a clinician, reports/files-HASH.tsv)")
    p.add_argument("--max-line-width", type=positive_int, default=42, metavar="N",
                   help="srt, vtt: at most N characters a subtitle line, speaker prefix included (default 42)")
    p.add_argument("--max-line-count", type=positive_int, default=2, metavar="N",
                   help="srt, vtt: at most N lines a cue; longer turns become several cues (default 2)")
    p.add_argument("--uri", metavar="ID", help="rttm: the file id in the RTTM and UEM (default: the output "
                   "file's stem, never the session id)")
    p.add_argument("--media", type=Path, metavar="RECORDING",
                   help="eaf: link this recording in the ELAN file (absolute and relative path; default: none)")
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
    from pipeline.report.transcript_export import (
        resolve_research_session,
        sessions_of_client,
        sessions_of_run,
        sessions_of_therapist,
    )

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
        own = sessions_of_therapist(con, args.therapist)
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


def _options(args: argparse.Namespace):
    from pipeline.report.subtitles import CueOptions
    from pipeline.report.transcript_export import ExportOptions

    return ExportOptions(CueOptions(args.max_line_width, args.max_line_count), uri=args.uri, media=args.media)


def _cmd_index(args: argparse.Namespace) -> int:
    from pipeline.report.file_index import file_index, index_name, write_index
    from pipeline.storage import audit, db

    with db.open(args.db, create=False) as con:
        rows = file_index(con, role=args.role, therapist=args.therapist)
        path = args.out or INDEX_DIR / index_name(args.role, args.therapist)
        ids = sorted({r.session_id for r in rows})
        # the index names sessions: recorded for each, so erasing any of them deletes it
        for sid in ids:
            db.record_files(con, session_id=sid, files=[(str(path), "file_index")], run_id="export-transcript")
        write_index(rows, path)
        audit.record(con, action="export-transcript", actor=audit.current_actor(args.actor), role=args.role,
                     session_ids=ids, detail=f"file index: {len(rows)} file(s) of {len(ids)} session(s) to "
                     f"{Path(path).resolve()}")
    print(f"{Path(path).resolve()}")
    print(f"Indexed {len(rows)} file(s) of {len(ids)} session(s) (owner-only).")
    return 0


def _cmd_export_transcript(args: argparse.Namespace) -> int:
    from pipeline.report.transcript_export import default_name, load_transcript, output_paths, write_transcript
    from pipeline.research.pseudonyms import load_study_key
    from pipeline.storage import audit, db

    if args.index:
        return _cmd_index(args)
    if args.transcript_format is None:
        raise ConfigError("--format is required (json, srt, vtt, txt, tsv, rttm, textgrid, eaf or all)")
    options = _options(args)
    fmt = args.transcript_format
    formats = FORMAT_NAMES if fmt == "all" else (fmt,)
    key = load_study_key(args.study_key_file) if args.role == "researcher" else None
    one_file = args.session_id is not None and fmt != "all"
    written: list[Path] = []
    with db.open(args.db, create=False) as con:
        ids = _select(con, args, key)
        if args.uri is not None and len(ids) > 1:
            raise ConfigError(f"--uri names one recording but {len(ids)} sessions were selected: leave it out "
                              "(each RTTM's id is then its file's stem)")
        for sid in ids:
            doc = load_transcript(con, sid, study_key=key)
            for f in formats:
                folder = args.out or DEFAULT_DIR
                path = args.out if one_file and args.out is not None else folder / default_name(doc, f)
                # recorded before it is written: a withdrawal finds the file even if this command dies half-way
                db.record_files(con, session_id=sid, files=[(str(p), f"transcript_{f}") for p in output_paths(path, f)],
                                run_id="export-transcript")
                written.append(write_transcript(doc, path, f, options))
                written += output_paths(path, f)[1:]
        target = written[0] if one_file else (args.out or DEFAULT_DIR)
        audit.record(con, action="export-transcript", actor=audit.current_actor(args.actor), role=args.role,
                     session_ids=ids, detail=f"{fmt}: {len(written)} file(s) to {Path(target).resolve()}")
    for path in written:
        print(f"{path.resolve()}")
    view = "research view: pseudonyms, de-identified turn text, no words" if key is not None else "owner-only"
    print(f"Exported {len(written)} file(s) as {fmt} ({view}).")
    return 0
