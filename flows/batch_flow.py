"""The batch flow: many recordings, each ending processed, skipped, refused or failed.

Two engines. ``threads`` (the default): sessions run as subflows of one batch flow, ``workers`` at a time
in threads of one process. Models are loaded once per process and used by one thread at a time, so
parallel sessions pipeline through them (one session's transcription overlaps another's diarization).
``dask``: the batch flow's task runner is prefect-dask's ``DaskTaskRunner`` (a local cluster of
``workers`` single-threaded worker processes, or an existing cluster); each worker process loads the
models once and computes a recording up to its :class:`~pipeline.analysis.session.SessionAnalysis`, and the flow's
own process does every database write and report, one at a time. Dask needs a real Prefect API
(``PREFECT_API_URL``): worker processes would otherwise each start a temporary server of their own.

Database access is serialised and the batch holds the database's run lock from start to end: a second
run on the same file waits or refuses. A recording is written in one transaction only when everything
about it is computed, so a batch killed mid-way leaves whole sessions only; re-running it skips what is
stored (same audio SHA-256 and pipeline version) and redoes the rest.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.futures import as_completed
from prefect.states import Failed
from prefect.task_runners import ThreadPoolTaskRunner

from flows.data_dir import in_deployment, resolve_data_paths
from flows.session_flow import process_session
from pipeline.audio.decode import CheckedAudio
from pipeline.engine import batch_checks, sequence
from pipeline.engine.batch_checks import BatchReport, batch_command
from pipeline.engine.manifest import BatchItem, load_batch
from pipeline.engine.outcome import SessionOutcome
from pipeline.engine.run import OwnedRun, owned_run
from pipeline.engine.runtime import PipelineOptions, models_description
from pipeline.errors import ConfigError
from pipeline.report.index import write_therapist_indexes
from pipeline.storage import db


@task(name="process-recording", cache_policy=NO_CACHE, persist_result=False)
def recording_task(item: BatchItem, db_path: str, reports_dir: str, options: PipelineOptions, force: bool,
                   run_id: str, prechecked: sequence.Prechecked | None = None) -> SessionOutcome:
    assert item.audio_path is not None and item.meta is not None
    # the session flow's only Prefect parameter is a fresh random handle (recorded in run_items); the batch's
    # own precheck is handed on (the file is not hashed again)
    return process_session(str(item.audio_path), item.meta, db_path=db_path, reports_dir=reports_dir,
                           options=options, consent=item.consent, force=force, run_id=run_id,
                           flow_run_name=f"session-{item.handle}", prechecked=prechecked)


Engine = Literal["threads", "dask"]
ENGINES: tuple[str, ...] = ("threads", "dask")


@task(name="compute-recording", cache_policy=NO_CACHE, persist_result=False)
def compute_task(item: BatchItem, consent: sequence.Consent, options: PipelineOptions,
                 checked: CheckedAudio | None = None) -> sequence.Computed:
    """On a Dask worker: :func:`~pipeline.engine.sequence.compute_session` of one recording; never writes.

    Models come from the runtime's per-process cache, so each worker process loads them once. ``checked`` is
    the batch's check and SHA-256 of the file (not computed again).
    """
    assert item.audio_path is not None and item.meta is not None
    return sequence.compute_session(item.audio_path, item.meta, consent, options=options, log=get_run_logger(),
                                    checked=checked)


def _dask_store(item: BatchItem, computed: sequence.Computed, dbp: Path, reports: Path, run_id: str,
                force: bool, keep_audio: bool = True) -> SessionOutcome:
    """In the flow's process, one at a time: store what a worker computed, its reports, and its end state."""
    assert item.audio_path is not None and item.meta is not None
    return sequence.store_session(computed, item.audio_path, item.meta, db_path=dbp, reports_dir=reports,
                                  run_id=run_id, force=force, keep_audio=keep_audio, record=True,
                                  note=f"computed by dask worker pid {computed.pid}")


def _record_outcome(item: BatchItem, outcome: SessionOutcome, dbp: Path, run_id: str) -> SessionOutcome:
    assert item.audio_path is not None and item.meta is not None
    return sequence.record_outcome(dbp, run_id, outcome, source_path=str(item.audio_path),
                                   session_id=item.meta.session_id)


def _finish_run(run: OwnedRun, reports: Path, therapists: list[str]) -> list[Path]:
    """The therapists' index pages and the run's end, in one connection (the run is then closed)."""
    with sequence.DB_LOCK, db.open(run.db_path) as con:
        indexes = write_therapist_indexes(con, reports, therapist_ids=therapists)
        db.finish_run(con, run_id=run.run_id, status=run.status)
    run.closed = True
    return indexes


ARTIFACT_KEY = "batch-outcome"


def _outcome_artifact(items: list[BatchItem], outcomes: list[SessionOutcome]) -> None:
    """The batch's end states as a Prefect table artifact (key ``batch-outcome``) for the Prefect UI.

    One row per recording (its opaque ``BatchItem.handle``, the name of its session subflow; state, stage,
    error code) and a counts row: no name, id, path or text enters Prefect's database. Never fails the batch.
    """
    from prefect.artifacts import create_table_artifact

    handles: dict[tuple[str, str | None], str] = {}
    for item in items:
        sid = item.meta.session_id if item.meta else None
        handles[(item.source, sid)] = item.handle
        if item.audio_path is not None:
            handles[(str(item.audio_path), sid)] = item.handle
    order = {"failed": 0, "refused": 1, "skipped": 2, "processed": 3}
    rows = sorted(({"handle": handles.get((o.source_path, o.session_id), "unknown"), "state": o.state,
                    "stage": o.stage or "", "error_code": o.error_code or ""} for o in outcomes),
                  key=lambda r: (order.get(r["state"], 4), r["handle"]))
    counts = {state: sum(1 for o in outcomes if o.state == state) for state in order}
    summary = ", ".join(f"{n} {state}" for state, n in counts.items())
    rows.append({"handle": "counts", "state": summary, "stage": "", "error_code": f"{len(outcomes)} recordings"})
    try:
        create_table_artifact(rows, key=ARTIFACT_KEY, description=f"Batch outcome: {len(outcomes)} recording(s): "
                              f"{summary}. Handles are opaque (the session subflows' names).")
    except Exception as e:  # noqa: BLE001 - the UI summary is optional; the database holds the outcome
        get_run_logger().warning("batch outcome artifact not written (%s)", type(e).__name__)


def batch_state(report: BatchReport) -> Any:
    """The batch flow run's final Prefect state: ``Failed`` when any recording failed, else ``Completed``.

    A nightly deployment whose recordings failed must not end COMPLETED: an automation on the flow run's
    ``Failed`` state (event ``prefect.flow-run.Failed``) then alerts. Refused recordings (no valid consent) are
    a decision, not a failure: they are counted in the message and the table artifact but leave the run
    ``Completed``. Either state carries the :class:`BatchReport` (in memory; results are never persisted).
    """
    from prefect.states import Completed

    counts = ", ".join(f"{report.count(s)} {s}" for s in ("processed", "skipped", "refused", "failed"))
    if report.count("failed"):
        return Failed(data=report, message=f"{report.count('failed')} of {len(report.outcomes)} recording(s) "
                                           f"failed ({counts}); see run_items of run {report.run_id}")
    return Completed(data=report, message=f"{len(report.outcomes)} recording(s): {counts}")


# The flow's function must not refer to DB_LOCK (or any lock) itself: the Dask task runner pickles the flow
# (by value: its module attribute is the Flow, not the function) with every task it submits.
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
    engine: Engine = "threads",
    checks: str | None = None,
) -> Any:
    """Process every recording of a folder or manifest; one bad file never stops the batch.

    Returns the flow run's final state (:func:`batch_state`): ``Failed`` when any recording failed (an
    automation can alert on it), else ``Completed``; both carry the :class:`BatchReport`, which
    :func:`run_batch` returns.

    Parallelism comes from the flow's task runner: use :func:`run_batch`, which sets it to ``workers``
    threads or Dask workers (``workers`` here only labels the run). ``engine="dask"`` expects a
    ``DaskTaskRunner``: recordings are computed on its workers and written here.
    ``on_progress(outcome, done, total, elapsed_s)`` is called as each recording ends. ``checks`` is the
    handle of the command's own checks of every item (:func:`pipeline.engine.batch_checks.register`; the
    manifest is then not read again); without it (a deployment) the flow makes them itself, in the run.
    """
    log = get_run_logger()
    started = time.perf_counter()
    if in_deployment():  # relative paths under ALLIANCE_DATA_DIR, never the worker's directory (the checkout)
        try:
            paths = resolve_data_paths({"source": source, "db_path": db_path, "reports_dir": reports_dir,
                                        "allowed_root": allowed_root})
        except ConfigError as e:  # refused: one clear message in the flow run's state, nothing written
            log.error("refused: %s", e)
            return Failed(message=f"refused: {e}")
        source, db_path, reports_dir = str(paths["source"]), str(paths["db_path"]), str(paths["reports_dir"])
        allowed_root = paths["allowed_root"]
    dbp = Path(db_path)
    handed = batch_checks.take(checks) if checks is not None else None
    items = list(handed.items) if handed is not None else load_batch(
        Path(source), allowed_root=Path(allowed_root) if allowed_root else None)
    outcomes: list[SessionOutcome] = []
    with owned_run(dbp, command=batch_command(source, workers=workers, engine=engine),
                   models=models_description(options), lock_wait_s=lock_wait_s, log=log) as run:
        run_id = run.run_id
        log.info("batch: %d recording(s), %d worker(s), engine %s", len(items), workers, engine)

        def done(outcome: SessionOutcome) -> None:
            outcomes.append(outcome)
            if on_progress is not None:
                on_progress(outcome, len(outcomes), len(items), time.perf_counter() - started)

        found = handed or batch_checks.check_batch(items, db_path=dbp, force=force)
        batch_checks.record_ended(found, db_path=dbp, reports_dir=Path(reports_dir), run_id=run_id, done=done)
        runnable = found.runnable()
        futures = {}
        for item, pre in runnable:
            if engine == "dask":
                futures[compute_task.submit(item, pre.consent, options, pre.checked)] = item
            else:
                futures[recording_task.submit(item, str(dbp), reports_dir, options, force, run_id, pre)] = item
        for future in as_completed(list(futures)):
            item = futures[future]
            try:
                result = future.result()
                done(_dask_store(item, result, dbp, Path(reports_dir), run_id, force, options.keep_audio)
                     if engine == "dask" else result)
            except Exception as e:  # noqa: BLE001 - the session flow reports its own failures; this is a crash
                crash = SessionOutcome("failed", str(item.audio_path), item.meta.session_id if item.meta else None,
                                       stage="batch", error_code="unexpected", message=f"{type(e).__name__}: {e}")
                done(_record_outcome(item, crash, dbp, run_id) if engine == "dask" else crash)
        therapists = sorted({item.meta.therapist_id for item, _ in runnable if item.meta is not None})
        indexes = _finish_run(run, Path(reports_dir), therapists)
        _outcome_artifact(items, outcomes)
        log.info("%d therapist index page(s) written", len(indexes))
    return batch_state(BatchReport(run_id, tuple(outcomes), round(time.perf_counter() - started, 2)))


def run_batch(source: str, *, workers: int = 1, engine: Engine = "threads", dask_address: str | None = None,
              **kwargs: object) -> BatchReport:
    """Run :func:`process_batch` with ``workers`` sessions in parallel.

    ``engine="threads"``: threads of this process. ``engine="dask"``: a local Dask cluster of ``workers``
    single-threaded worker processes, or the existing cluster at ``dask_address`` (``tcp://host:8786``;
    ``workers`` then only labels the run); needs ``PREFECT_API_URL`` (a running ``prefect server start``).
    """
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers!r}")
    if engine not in ENGINES:
        raise ConfigError(f"engine must be one of {', '.join(ENGINES)}, got {engine!r}")
    if engine == "threads":
        if dask_address is not None:
            raise ConfigError("a Dask address needs engine='dask' (--engine dask)")
        runner: Any = ThreadPoolTaskRunner(max_workers=workers)
    else:
        runner = dask_task_runner(workers, dask_address)
    state = process_batch.with_options(task_runner=runner)(source, workers=workers, engine=engine,
                                                           return_state=True, **kwargs)
    result = state.result(raise_on_failure=False)
    if isinstance(result, BaseException):  # the flow itself failed (a locked database, a bad manifest)
        raise result
    return result


def require_prefect_api() -> str:
    """The Prefect API URL that Dask worker processes will report to; a clear error when there is none."""
    from prefect.settings import PREFECT_API_URL

    url = PREFECT_API_URL.value()
    if not url:
        raise ConfigError(
            "the dask engine needs a running Prefect server that every worker process can reach: start one "
            "with `prefect server start` and set PREFECT_API_URL (e.g. export "
            "PREFECT_API_URL=http://127.0.0.1:4200/api); without it each worker would start a temporary "
            "server of its own")
    return str(url)


def dask_task_runner(workers: int, address: str | None = None) -> Any:
    """prefect-dask's task runner: a local cluster of ``workers`` processes, or the cluster at ``address``."""
    require_prefect_api()
    try:
        from prefect_dask import DaskTaskRunner
    except ImportError as e:  # pragma: no cover - a pinned requirement
        raise ConfigError("the dask engine needs prefect-dask (pip install prefect-dask==0.3.7)") from e
    if address:
        return DaskTaskRunner(address=address)
    return DaskTaskRunner(cluster_kwargs={"n_workers": workers, "threads_per_worker": 1, "processes": True,
                                          "dashboard_address": None})
