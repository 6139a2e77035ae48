"""``alliance batch``: process a folder or manifest of recordings with a live progress display."""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from pipeline.cli import output
from pipeline.cli.args import add_db_argument, add_stage_arguments, check_stage_arguments, stage_options
from pipeline.engine.outcome import SessionOutcome

if TYPE_CHECKING:  # the checks pull in the stage sequence: imported when the command runs, not with the parser
    from pipeline.engine.batch_checks import BatchChecks, BatchReport
    from pipeline.engine.manifest import BatchItem


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
    add_stage_arguments(p)
    p.add_argument("--delete-audio", action="store_true",
                   help="delete each recording once it is stored and summarised (hashes are kept; default: keep)")
    output.add_output_arguments(p)
    p.set_defaults(handler=_cmd_batch)


def progress_line(outcome: SessionOutcome, done: int, total: int, elapsed_s: float, *, handle: str,
                  names: dict[str, str] | None = None) -> str:
    """A recording's end state as a live progress line: ``[2/5] processed S12  item 3  (elapsed ..., ETA ...)``.

    ``handle`` is the recording's neutral name (``item 3``): a file's name, path or stem never reaches the
    terminal (users name files after clients); ``names`` maps each spelling of every item's file to its
    handle, for the session id and the message.
    """
    eta = elapsed_s / done * (total - done) if done else 0.0
    where = f" at {outcome.stage}" if outcome.state in ("failed", "refused") and outcome.stage else ""
    sid = output.without_names(outcome.session_id, names or {}) or "-"
    message = output.without_names(outcome.message, names or {})
    return (f"[{done}/{total}] {outcome.state:<9} {sid}  {handle}"
            f"{where}{': ' + (message or '') if outcome.state in ('failed', 'refused') else ''}"
            f"  (elapsed {elapsed_s:.0f} s, ETA {eta:.0f} s)")


class NeutralNames:
    """A batch's recordings under neutral handles (``item N``, their position in the batch) for the terminal."""

    def __init__(self, items: Sequence[BatchItem]) -> None:
        self.names: dict[str, str] = {}
        self._positions: dict[tuple[str, str | None], int] = {}
        for n, item in enumerate(items, start=1):
            for spelling in item.names():
                self.names.setdefault(spelling, f"item {n}")
            sid = item.meta.session_id if item.meta is not None else None
            self._positions.setdefault((item.source, sid), n)
            if item.audio_path is not None:
                self._positions.setdefault((str(item.audio_path), sid), n)

    def handle(self, outcome: SessionOutcome) -> str:
        n = self._positions.get((outcome.source_path, outcome.session_id))
        return f"item {n}" if n is not None else "item ?"

    def neutral(self, outcome: SessionOutcome) -> SessionOutcome:
        """The outcome as the terminal shows it: the handle as its source, no file name in id or message."""
        return replace(outcome, source_path=self.handle(outcome),
                       session_id=output.without_names(outcome.session_id, self.names),
                       message=output.without_names(outcome.message, self.names) or "")


def _on_progress(args: argparse.Namespace, progress: output.Progress, neutral: NeutralNames):
    """The batch flow's per-recording callback: a progress line, and with ``--json`` the recording's object."""

    def on_progress(outcome: SessionOutcome, done: int, total: int, elapsed_s: float) -> None:
        if args.json:
            print(output.outcome_json(neutral.neutral(outcome), db_path=args.db, wall_s=None), flush=True)
        progress(progress_line(outcome, done, total, elapsed_s, handle=neutral.handle(outcome),
                               names=neutral.names))

    return on_progress


def _checks(args: argparse.Namespace) -> BatchChecks:
    """The run lock, the folder or manifest, the database and every item's checks, before Prefect or a model.

    Another run holding the database is refused at once (exit 3; or waited for with ``--wait``); a database
    that cannot be opened or a bad manifest is one clear error line (exit 2); every item's consent, file,
    SHA-256 and skip test run in one opening of the database (:mod:`pipeline.engine.batch_checks`).
    """
    from pipeline.engine.batch_checks import check_batch
    from pipeline.engine.manifest import load_batch
    from pipeline.engine.run import refuse_if_running

    refuse_if_running(Path(args.db), wait_s=args.wait)
    items = load_batch(args.source, allowed_root=args.allowed_root)
    return check_batch(items, db_path=Path(args.db), force=args.force)


def _without_flow(args: argparse.Namespace, checks: BatchChecks, on_progress) -> BatchReport:
    """A batch whose every item ended in its checks: their end states recorded in a run, no Prefect, no model."""
    from pipeline.engine.batch_checks import BatchReport, batch_command, record_ended
    from pipeline.engine.run import owned_run

    started = time.perf_counter()
    outcomes: list[SessionOutcome] = []

    def done(outcome: SessionOutcome) -> None:
        outcomes.append(outcome)
        on_progress(outcome, len(outcomes), len(checks.items), time.perf_counter() - started)

    with owned_run(Path(args.db), command=batch_command(args.source, workers=args.workers, engine=args.engine),
                   lock_wait_s=args.wait) as run:
        record_ended(checks, db_path=Path(args.db), reports_dir=args.reports_dir, run_id=run.run_id, done=done)
    return BatchReport(run.run_id, tuple(outcomes), round(time.perf_counter() - started, 2))


def _cmd_batch(args: argparse.Namespace) -> int:
    if args.workers < 1:
        print(f"error: --workers must be at least 1, got {args.workers}", file=sys.stderr)
        return 2
    if args.dask_address and args.engine != "dask":
        print("error: --dask-address needs --engine dask", file=sys.stderr)
        return 2
    check_stage_arguments(args)
    if args.engine == "dask":  # the scheduler's and nannies' start/stop chatter would drown the progress lines
        os.environ.setdefault("DASK_LOGGING__DISTRIBUTED", "warning")  # read when dask is first imported
    progress = output.Progress.for_args(args, started=getattr(args, "started", None))
    progress("checking the database and the folder or manifest: the run lock, and each recording's consent, "
             "file and skip test")
    checks = _checks(args)
    on_progress = _on_progress(args, progress, NeutralNames(checks.items))
    if not checks.runnable():  # every item refused, skipped or failed in the checks: no Prefect, no model
        progress("no recording to process: recording the end states (no Prefect, no model)")
        report = _without_flow(args, checks, on_progress)
    else:
        report = _with_flow(args, checks, progress, on_progress)
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


def _with_flow(args: argparse.Namespace, checks: BatchChecks, progress: output.Progress,
               on_progress) -> BatchReport:
    """Start Prefect's local server (not for Dask), import the models' libraries and run the batch flow."""
    from flows.server import start_background_server
    from pipeline.engine import batch_checks
    from pipeline.offline import prefect_home_for

    server = None
    if args.engine != "dask":  # Dask needs a long-lived server (PREFECT_API_URL)
        home = os.environ.get("PREFECT_HOME") or prefect_home_for(args.db)
        server = start_background_server(home if os.path.isdir(home) else None)
    progress(f"{len(checks.runnable())} of {len(checks.items)} recording(s) to process; importing Prefect and the "
             "models' libraries" + (" (Prefect's local server starting in the background)" if server else ""))
    from flows.batch_flow import run_batch  # Prefect and the models' libraries: ~8 s of imports
    if server is not None:
        progress("waiting for Prefect's local server")
        server.wait_ready()
    progress("running the batch flow (each recording's end state is printed as it comes)")
    return run_batch(str(args.source), workers=args.workers, engine=args.engine, dask_address=args.dask_address,
                     db_path=args.db, reports_dir=str(args.reports_dir), force=args.force,
                     allowed_root=str(args.allowed_root) if args.allowed_root else None,
                     lock_wait_s=args.wait, on_progress=on_progress, checks=batch_checks.register(checks),
                     options=stage_options(args, keep_audio=not args.delete_audio))
