"""The batch flow: many recordings, each ending processed, skipped, refused or failed.

Sessions run as subflows of one batch flow, ``workers`` at a time in threads of one process. Models are
loaded once per process and used by one thread at a time, so parallel sessions pipeline through them
(one session's transcription overlaps another's diarization). Database access is serialised and the
batch holds the database's run lock from start to end: a second run on the same file waits or refuses.
A recording is written in one transaction only when everything about it is computed, so a batch
killed mid-way leaves whole sessions only; re-running it skips what is stored (same audio SHA-256 and
pipeline version) and redoes the rest.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.futures import as_completed
from prefect.task_runners import ThreadPoolTaskRunner

from flows.session_flow import DB_LOCK, process_session
from pipeline import PIPELINE_VERSION
from pipeline.manifest import BatchItem, load_batch
from pipeline.outcome import SessionOutcome
from pipeline.report.index import write_therapist_indexes
from pipeline.runtime import PipelineOptions, models_description
from pipeline.storage import db
from pipeline.storage.lock import exclusive_run


@dataclass(frozen=True)
class BatchReport:
    run_id: str
    outcomes: tuple[SessionOutcome, ...]
    wall_s: float

    def count(self, state: str) -> int:
        return sum(1 for o in self.outcomes if o.state == state)


@task(name="process-recording", cache_policy=NO_CACHE, persist_result=False)
def recording_task(item: BatchItem, db_path: str, reports_dir: str, options: PipelineOptions, force: bool,
                   run_id: str) -> SessionOutcome:
    assert item.audio_path is not None and item.meta is not None
    return process_session.with_options(name=f"session-{item.meta.session_id}")(
        str(item.audio_path), item.meta, db_path=db_path, reports_dir=reports_dir, options=options,
        consent=item.consent, force=force, run_id=run_id)


def _manifest_failure(item: BatchItem, dbp: Path, run_id: str) -> SessionOutcome:
    outcome = SessionOutcome("failed", item.source, item.meta.session_id if item.meta else None,
                             stage="manifest", error_code="manifest", message=item.problem or "")
    with DB_LOCK:
        con = db.connect(dbp)
        try:
            db.record_item(con, run_id=run_id, source_path=item.source, state="failed",
                           session_id=outcome.session_id, stage="manifest", error_code="manifest",
                           message=outcome.message)
        finally:
            con.close()
    return outcome


@flow(name="process-batch", persist_result=False, task_runner=ThreadPoolTaskRunner(max_workers=1))
def process_batch(
    source: str,
    *,
    db_path: str = "alliance.duckdb",
    reports_dir: str = "reports",
    workers: int = 1,
    options: PipelineOptions = PipelineOptions(),
    force: bool = False,
    allowed_root: str | None = None,
    lock_wait_s: float = 0.0,
    on_progress: Callable[[SessionOutcome, int, int, float], None] | None = None,
) -> BatchReport:
    """Process every recording of a folder or manifest; one bad file never stops the batch.

    Parallelism comes from the flow's task runner: use :func:`run_batch`, which sets it to ``workers``
    threads (``workers`` here only labels the run).
    ``on_progress(outcome, done, total, elapsed_s)`` is called as each recording ends.
    """

    log = get_run_logger()
    started = time.perf_counter()
    dbp = Path(db_path)
    items = load_batch(Path(source), allowed_root=Path(allowed_root) if allowed_root else None)
    run_id = db.new_run_id()
    outcomes: list[SessionOutcome] = []
    with exclusive_run(dbp, wait_s=lock_wait_s):
        with DB_LOCK:
            con = db.connect(dbp)
            db.start_run(con, run_id=run_id, pipeline_version=PIPELINE_VERSION, models=models_description(options),
                         command=f"batch {source} (workers={workers})")
            con.close()
        log.info("batch %s: %d recording(s), %d worker(s)", run_id, len(items), workers)

        def done(outcome: SessionOutcome) -> None:
            outcomes.append(outcome)
            if on_progress is not None:
                on_progress(outcome, len(outcomes), len(items), time.perf_counter() - started)

        runnable = []
        for item in items:
            if item.problem is not None:
                done(_manifest_failure(item, dbp, run_id))
            else:
                runnable.append(item)
        futures = {recording_task.submit(item, str(dbp), reports_dir, options, force, run_id): item
                   for item in runnable}
        for future in as_completed(list(futures)):
            item = futures[future]
            try:
                done(future.result())
            except Exception as e:  # the session flow reports its own failures; this is a crash
                done(SessionOutcome("failed", str(item.audio_path), item.meta.session_id if item.meta else None,
                                    stage="batch", error_code="unexpected", message=f"{type(e).__name__}: {e}"))
        therapists = sorted({o.meta.therapist_id for o in runnable if o.meta is not None})
        with DB_LOCK:
            con = db.connect(dbp)
            try:
                indexes = write_therapist_indexes(con, Path(reports_dir), therapist_ids=therapists)
                db.finish_run(con, run_id=run_id, status="finished")
            finally:
                con.close()
        log.info("index pages: %s", ", ".join(str(p) for p in indexes) or "none")
    return BatchReport(run_id, tuple(outcomes), round(time.perf_counter() - started, 2))


def run_batch(source: str, *, workers: int = 1, **kwargs: object) -> BatchReport:
    """Run :func:`process_batch` with ``workers`` sessions in parallel (threads of this process)."""
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers!r}")
    return process_batch.with_options(task_runner=ThreadPoolTaskRunner(max_workers=workers))(
        source, workers=workers, **kwargs)
