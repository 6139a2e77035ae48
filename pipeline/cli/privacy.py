"""Privacy commands: ``consent withdraw``, ``db keygen|encrypt|compact``, ``audit``, ``query`` (researchers).

Access roles (README, "Privacy and security"): a *clinician* reads summaries and reports of their own
clients' sessions (``--therapist``); a *supervisor* reads any session's; a *researcher* reaches only the
pseudonymised research relations (``export``, ``query``); an *admin* (the data controller) withdraws
consent, encrypts and exports raw tables. Every such command writes an audit event.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pipeline.cli.args import add_actor_argument, add_db_argument, positive_int
from pipeline.cli.output import add_output_arguments, audit_json


def register(sub: argparse._SubParsersAction) -> None:
    c = sub.add_parser("consent", help="consent withdrawal: erase a session's or a client's data",
                       description="Consent management. `withdraw` erases everything derived from the session's "
                       "(or all of the client's) recordings: words, turns, markers, indicators, lemmas, self-report "
                       "tied to them, run records, summaries and reports on disk, results kept while the database was "
                       "locked, this database's Prefect flow runs of them (found by handle), and (unless "
                       "--keep-audio) the source recording and its consent sidecar; the database file is then "
                       "rewritten so no deleted row lingers in it. Kept: who withdrew, when, and "
                       "SHA-256 hashes (so the recording is refused if submitted again), never content.")
    csub = c.add_subparsers(dest="consent_command", required=True, metavar="ACTION")
    w = csub.add_parser("withdraw", help="erase a session or a client")
    target = w.add_mutually_exclusive_group(required=True)
    target.add_argument("--session", metavar="SESSION_ID")
    target.add_argument("--client", metavar="CLIENT_ID")
    w.add_argument("--reports-dir", action="append", type=Path, default=[], metavar="DIR",
                   help="also remove SESSION.md/.html/.pdf here (repeatable; default: reports)")
    w.add_argument("--keep-audio", action="store_true", help="keep the source recording and its consent sidecar")
    w.add_argument("--no-prefect", action="store_true",
                   help="do not delete the sessions' Prefect flow runs (they hold an opaque handle and log lines "
                   "with counts: no id, path or content)")
    w.add_argument("--before-processing", action="store_true",
                   help="with --session: the session is not processed yet; register the withdrawal so that its "
                   "recording is refused when it arrives (nothing is erased; the database is created if missing)")
    w.add_argument("--wait", type=float, default=0.0, metavar="SECONDS",
                   help="when a run (a batch) holds the database: register the session's withdrawal at once (the "
                   "batch checks withdrawals before storing each session, so it stores nothing more of it), wait "
                   "up to SECONDS for the run to end, then erase what is stored (default: refuse at once)")
    w.add_argument("--audio", type=Path, metavar="FILE",
                   help="with --before-processing: the recording itself; its SHA-256 is kept so that it is "
                   "refused under any session id")
    add_actor_argument(w)
    add_db_argument(w)
    w.set_defaults(handler=_cmd_withdraw)

    d = sub.add_parser("db", help="database key, encryption and compaction",
                       description="`keygen KEYFILE` writes a new 256-bit key readable by you only; `encrypt` "
                       "rewrites a plain database encrypted with the key from ALLIANCE_DB_KEY_FILE (or "
                       "--key-file); `compact` rewrites the file with only its live rows.")
    dsub = d.add_subparsers(dest="db_command", required=True, metavar="ACTION")
    k = dsub.add_parser("keygen", help="write a new database key file (mode 0600; study keys: `alliance study keygen`)")
    k.add_argument("key_file", type=Path, metavar="KEYFILE")
    k.set_defaults(handler=_cmd_keygen)
    e = dsub.add_parser("encrypt", help="encrypt a plain database in place")
    e.add_argument("--key-file", type=Path, metavar="KEYFILE", help="default: $ALLIANCE_DB_KEY_FILE")
    add_db_argument(e)
    e.set_defaults(handler=_cmd_encrypt)
    m = dsub.add_parser("compact", help="rewrite the database with live rows only")
    add_db_argument(m)
    m.set_defaults(handler=_cmd_compact)
    fp = dsub.add_parser("flush-pending", help="store results kept while the database was locked",
                         description="When the database stayed locked by another process (a duckdb shell, a "
                         "notebook) past the wait, a computed session is kept in DB.pending/ (owner-only; "
                         "encrypted with a database key) instead of being lost. Every run on the database "
                         "stores such results first; this command stores them now (summary and report "
                         "included) and records their end states in run_items.")
    add_db_argument(fp)
    fp.set_defaults(handler=_cmd_flush_pending)

    a = sub.add_parser("audit", help="show the audit log",
                       description="Print the append-only audit log (who ran what on which sessions, when).")
    a.add_argument("--session", metavar="SESSION_ID", help="only events naming this session")
    a.add_argument("--limit", type=positive_int, default=50, help="most events shown, newest first (default 50)")
    add_db_argument(a)
    add_output_arguments(a, progress=False)
    a.set_defaults(handler=_cmd_audit)

    q = sub.add_parser("query", help="researchers: SQL over the pseudonymised research relations",
                       description="Run one SQL query as a researcher. The query runs in a separate in-memory "
                       "database holding only research-scope sessions, with pseudonyms instead of ids and no "
                       "text but de-identified turns; it cannot read files or the network. Relations: "
                       "sessions, indicators, markers, turns, self_report_scores, comparison_runs, comparison_results, "
                       "discrepancy_flags, client_trajectories, indicators_wide, session_wide (one row per session: "
                       "every indicator and the linked self-report), self_report_items, self_report_instruments.")
    q.add_argument("sql", metavar="SQL")
    q.add_argument("--study-key-file", type=Path, metavar="KEYFILE",
                   help="the study's pseudonym key (default: $ALLIANCE_STUDY_KEY_FILE)")
    q.add_argument("--csv", action="store_true", help="print CSV instead of a table")
    add_actor_argument(q)
    add_db_argument(q)
    q.set_defaults(handler=_cmd_query)


def _cmd_withdraw_before_processing(args: argparse.Namespace) -> int:
    from pipeline.audio.decode import sha256_of
    from pipeline.engine.withdrawal import withdraw_before_processing_of
    from pipeline.storage.audit import current_actor

    sha = sha256_of(args.audio) if args.audio is not None else None
    erasure_id, new = withdraw_before_processing_of(args.db, session_id=args.session, actor=current_actor(args.actor),
                                                    audio_sha256=sha)
    session_id = args.session
    if not new:
        print(f"A withdrawal of session {session_id} is already registered ({erasure_id}): nothing changed.")
        return 0
    print(f"Withdrawal of session {session_id} registered before processing ({erasure_id}): its recording "
          + ("(this file, under any session id) " if sha else "")
          + "will be refused when it arrives. Nothing was stored, so nothing was erased.")
    return 0


def _cmd_withdraw(args: argparse.Namespace) -> int:
    from flows.prefect_runs import delete_flow_runs
    from pipeline.engine.withdrawal import WithdrawalRequest, withdraw_consent
    from pipeline.storage.audit import current_actor

    if args.before_processing:
        return _cmd_withdraw_before_processing(args)
    if args.audio is not None:
        from pipeline.errors import ConfigError

        raise ConfigError("--audio goes with --before-processing (a stored session's recording is known by its hash)")
    if args.wait < 0:
        from pipeline.errors import ConfigError

        raise ConfigError(f"--wait must be 0 or more seconds, got {args.wait:g}")
    request = WithdrawalRequest(args.session, args.client, current_actor(args.actor),
                                tuple(args.reports_dir or [Path("reports")]), args.keep_audio)

    def on_registered(erasure_id: str, holder: int | None) -> None:
        who = f"process {holder}" if holder is not None else "another process"
        what = (f"Withdrawal of session {args.session} registered ({erasure_id}): the run of {who} will not store "
                "it." if erasure_id else f"A run ({who}) holds the database: nothing is registered ahead for "
                f"{'a client' if args.client else 'a stored session'}; it is erased when the run ends.")
        print(f"{what} Waiting up to {args.wait:g} s for the run to end ...", flush=True)

    done = withdraw_consent(args.db, request, delete_flow_runs=None if args.no_prefect else delete_flow_runs,
                            wait_s=args.wait, on_registered=on_registered)
    result, prefect_deleted = done.result, done.prefect_deleted
    if result is None:
        print(f"The run ended without storing session {args.session}: nothing to erase; the withdrawal stays "
              f"registered ({done.registered}), so the session is refused if it is submitted again.")
        for f in done.pending_removed:
            print(f"  removed pending result {f}")
        return 0
    print(f"Erased {result.target_kind} {result.target_id}: {len(result.session_ids)} session(s) "
          f"({result.erasure_id}).")
    for table, n in result.rows_deleted:
        if n:
            print(f"  {table}: {n} rows")
    for f in result.files_removed:
        print(f"  removed {f}")
    for f in done.pending_removed:
        print(f"  removed pending result {f}")
    if prefect_deleted is not None:
        print(f"  Prefect flow runs deleted: {prefect_deleted}")
    print("  database rewritten without the deleted rows; the withdrawal is recorded (ids, hashes, no content)")
    return 0


def _cmd_keygen(args: argparse.Namespace) -> int:
    from pipeline.storage.encryption import KEY_FILE_ENV, generate_key_file

    path = generate_key_file(args.key_file)
    print(f"New database key written to {path} (mode 0600). Keep a copy somewhere safe: without it the data "
          f"cannot be read. Encrypt the database with it, then set it for every command:\n"
          f"  alliance db encrypt --key-file {path.resolve()} --db DB\n  export {KEY_FILE_ENV}={path.resolve()}\n"
          "(A research study's pseudonym key is a different key: `alliance study keygen STUDY.key`.)")
    return 0


def _cmd_encrypt(args: argparse.Namespace) -> int:
    from pipeline.errors import StorageError
    from pipeline.storage import audit, db, encryption
    from pipeline.storage.lock import exclusive_run

    key = encryption.load_key(args.key_file)
    if key is None:
        raise StorageError(f"no key: pass --key-file or set {encryption.KEY_FILE_ENV}")
    path = Path(args.db)
    if not path.is_file():
        raise StorageError(f"database {path} does not exist")
    if encryption.is_encrypted(path):
        print(f"{path} is already encrypted.")
        return 0
    with exclusive_run(path):
        db.rewrite_in_place(path, source_key=None, target_key=key)
        with db.open(path, key=key) as con:
            audit.record(con, action="encrypt", actor=audit.current_actor(), role="admin", detail=str(path))
    print(f"{path} is now encrypted (AES-256-GCM). The plain file it replaced was unlinked; on an SSD or a "
          "copy-on-write file system its blocks may survive: encrypt before first use where that matters.")
    return 0


def _cmd_flush_pending(args: argparse.Namespace) -> int:
    from pipeline.engine.run import owned_run
    from pipeline.storage import pending

    dbp = Path(args.db)
    waiting = pending.list_pending(dbp)
    if not waiting:
        print(f"No pending results for {dbp}.")
        return 0
    with owned_run(dbp, command="db flush-pending") as run:  # storing what is pending is what a run does first
        outcomes = run.flushed
    for o in outcomes:
        print(f"  {o.state:<9} {o.session_id}: {o.message}")
    left = pending.list_pending(dbp)
    print(f"{len(outcomes)} pending result(s) handled; {len(left)} left"
          + (f" in {pending.pending_dir(dbp)} (the database may still be locked, or a file unreadable)" if left
             else "."))
    return 0 if not left else 3


def _cmd_compact(args: argparse.Namespace) -> int:
    from pipeline.storage import db
    from pipeline.storage.lock import exclusive_run

    with exclusive_run(Path(args.db)):
        db.compact(args.db)
    print(f"{args.db} rewritten with live rows only.")
    return 0


def _cmd_audit(args: argparse.Namespace) -> int:
    from pipeline.storage import audit, db

    with db.open(args.db, read_only=True) as con:
        rows = audit.events(con, session_id=args.session, limit=args.limit)
    for at, actor, role, action, sids, run_id, detail in rows:
        if args.json:
            print(audit_json(at, actor, role, action, sids, run_id, detail))
            continue
        print(f"{at:%Y-%m-%d %H:%M:%S} {actor} ({role or '-'}) {action} {','.join(sids or [])} "
              f"[{run_id or '-'}] {detail or ''}")
    return 0


def _cmd_query(args: argparse.Namespace) -> int:
    from pipeline.csv_safety import csv_safe_frame
    from pipeline.research.access import load_study_key, run_research_query
    from pipeline.storage.audit import current_actor

    frame = run_research_query(args.db, args.sql, key=load_study_key(args.study_key_file),
                               actor=current_actor(args.actor))
    if args.csv:
        csv_safe_frame(frame).to_csv(sys.stdout, index=False)  # formula-safe cells (pipeline.csv_safety)
    else:
        print(frame.to_string(index=False, max_rows=200))
    return 0
