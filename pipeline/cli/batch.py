"""``alliance batch``: process a folder or manifest of recordings with a live progress display."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from pipeline.cli import output
from pipeline.cli.args import add_db_argument, add_language_argument, language_option
from pipeline.engine.outcome import SessionOutcome


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "batch", help="process a folder or manifest of recordings",
        description="Run the Prefect batch flow over a folder (recordings with AUDIO.consent.json sidecars, which "
        "must also give therapist_id) or a CSV/YAML manifest (columns: audio, session_id, client_id, therapist_id, "
        "recorded_on, consent_scope, consented_on, consented_by, therapist_speaker, num_speakers; paths relative "
        "to the manifest and inside its folder). Every recording ends processed, skipped (already stored with "
        "the same audio and pipeline version), refused (no consent) or failed (with stage and reason); one bad "
        "file never stops the batch. Re-running resumes: stored sessions are skipped.")
    p.add_argument("source", type=Path, metavar="FOLDER_OR_MANIFEST")
    add_db_argument(p)
    p.add_argument("--reports-dir", type=Path, default=Path("reports"), help="where summaries go (default: reports)")
    p.add_argument("--workers", type=int, default=1,
                   help="sessions processed in parallel (threads, or Dask worker processes with --engine dask; "
                   "models loaded once per process; default 1)")
    p.add_argument("--engine", choices=("threads", "dask"), default="threads",
                   help="threads of this process (default), or Dask via prefect-dask: a local cluster of --workers "
                   "processes, or the cluster at --dask-address; computed on the workers, written by this process "
                   "only. Needs a running `prefect server start` and PREFECT_API_URL")
    p.add_argument("--dask-address", default=None, metavar="tcp://HOST:PORT",
                   help="an existing Dask scheduler to run on (with --engine dask)")
    p.add_argument("--allowed-root", type=Path, default=None,
                   help="folder every manifest path must lie in (default: the manifest's folder)")
    p.add_argument("--wait", type=float, default=0.0, metavar="SECONDS",
                   help="wait this long for another run on the same database to finish (default: refuse at once)")
    p.add_argument("--force", action="store_true", help="re-process recordings already stored")
    add_language_argument(p)
    p.add_argument("--device", default="cpu", metavar="DEVICE",
                   help="cpu (default), cuda or cuda:N: run Whisper (float16) and pyannote on a GPU")
    p.add_argument("--delete-audio", action="store_true",
                   help="delete each recording once it is stored and summarised (hashes are kept; default: keep)")
    output.add_output_arguments(p)
    p.set_defaults(handler=_cmd_batch)


def progress_line(outcome: SessionOutcome, done: int, total: int, elapsed_s: float) -> str:
    """A recording's end state as a live progress line: ``[2/5] processed S12  rec.flac  (elapsed ..., ETA ...)``."""
    eta = elapsed_s / done * (total - done) if done else 0.0
    where = f" at {outcome.stage}" if outcome.state in ("failed", "refused") and outcome.stage else ""
    name = outcome.source_path if outcome.stage == "manifest" else Path(outcome.source_path).name
    return (f"[{done}/{total}] {outcome.state:<9} {outcome.session_id or '-'}  {name}"
            f"{where}{': ' + outcome.message if outcome.state in ('failed', 'refused') else ''}"
            f"  (elapsed {elapsed_s:.0f} s, ETA {eta:.0f} s)")


def _on_progress(args: argparse.Namespace, progress: output.Progress):
    """The batch flow's per-recording callback: a progress line, and with ``--json`` the recording's object."""

    def on_progress(outcome: SessionOutcome, done: int, total: int, elapsed_s: float) -> None:
        if args.json:
            print(output.outcome_json(outcome, db_path=args.db, wall_s=None), flush=True)
        progress(progress_line(outcome, done, total, elapsed_s))

    return on_progress


def _checks_then_server(args: argparse.Namespace):  # flows.server.BackgroundServer | None
    """Check the database and the folder or manifest, then start Prefect's local server in the background.

    Before any Prefect server or model: a database that cannot be opened or a bad manifest is one clear
    error line (exit 2). Not for Dask, which needs a long-lived server.
    """
    from flows.server import start_background_server
    from pipeline.engine import sequence
    from pipeline.engine.manifest import load_batch
    from pipeline.offline import prefect_home_for

    sequence.check_database(Path(args.db))
    load_batch(args.source, allowed_root=args.allowed_root)
    if args.engine == "dask":
        return None
    home = os.environ.get("PREFECT_HOME") or prefect_home_for(args.db)
    return start_background_server(home if os.path.isdir(home) else None)


def _cmd_batch(args: argparse.Namespace) -> int:
    from pipeline.asr.transcribe import TranscribeOptions
    from pipeline.engine.runtime import PipelineOptions, options_for_device

    if args.workers < 1:
        print(f"error: --workers must be at least 1, got {args.workers}", file=sys.stderr)
        return 2
    if args.dask_address and args.engine != "dask":
        print("error: --dask-address needs --engine dask", file=sys.stderr)
        return 2
    if args.engine == "dask":  # the scheduler's and nannies' start/stop chatter would drown the progress lines
        os.environ.setdefault("DASK_LOGGING__DISTRIBUTED", "warning")  # read when dask is first imported
    progress = output.Progress.for_args(args, started=getattr(args, "started", None))
    progress("checking the database and the folder or manifest")
    server = _checks_then_server(args)
    progress("importing Prefect and the models' libraries" + (" (Prefect's local server starting in the background)"
                                                               if server is not None else ""))
    from flows.batch_flow import run_batch  # Prefect and the models' libraries: ~8 s of imports

    if server is not None:
        progress("waiting for Prefect's local server")
        server.wait_ready()
    progress("running the batch flow (each recording's end state is printed as it comes)")
    report = run_batch(str(args.source), workers=args.workers, engine=args.engine, dask_address=args.dask_address,
                       db_path=args.db, reports_dir=str(args.reports_dir), force=args.force,
                       allowed_root=str(args.allowed_root) if args.allowed_root else None,
                       lock_wait_s=args.wait, on_progress=_on_progress(args, progress),
                       options=options_for_device(args.device, PipelineOptions(
                           keep_audio=not args.delete_audio,
                           transcribe=TranscribeOptions(language=language_option(args.language)))))
    code = 0 if report.count("failed") == 0 else 3
    wall_s = progress.elapsed()
    if args.json:
        print(output.batch_json(report, db_path=args.db, wall_s=wall_s), flush=True)
        return code
    print(f"\nBatch {report.run_id}: {len(report.outcomes)} recording(s) in {wall_s:.0f} s "
          f"(whole command; {report.wall_s:.0f} s in the batch flow)")
    for state in ("processed", "skipped", "refused", "failed"):
        print(f"  {state:<9} {report.count(state)}")
    print(f"Run report: SELECT * FROM run_items WHERE run_id = '{report.run_id}'  (database {args.db})")
    return code
