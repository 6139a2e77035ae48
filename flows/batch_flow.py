"""The batch flow: many recordings, each ending processed, skipped, refused or failed.

Two engines. ``threads`` (the default): sessions run as subflows of one batch flow, ``workers`` at a time
in threads of one process. Models are loaded once per process and used by one thread at a time, so
parallel sessions pipeline through them (one session's transcription overlaps another's diarization).
``dask``: the batch flow's task runner is prefect-dask's ``DaskTaskRunner`` (a local cluster of
``workers`` single-threaded worker processes, or an existing cluster); each worker process loads the
models once and computes a recording up to its :class:`~pipeline.session.SessionAnalysis`, and the flow's
own process does every database write and report, one at a time. Dask needs a real Prefect API
(``PREFECT_API_URL``): worker processes would otherwise each start a temporary server of their own.

Database access is serialised and the batch holds the database's run lock from start to end: a second
run on the same file waits or refuses. A recording is written in one transaction only when everything
about it is computed, so a batch killed mid-way leaves whole sessions only; re-running it skips what is
stored (same audio SHA-256 and pipeline version) and redoes the rest.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.futures import as_completed
from prefect.task_runners import ThreadPoolTaskRunner

from flows.session_flow import (
    DB_LOCK,
    _already_done,
    _asr_progress,
    _diarization_progress,
    _record,
    consent_task,
    process_session,
    retention_task,
    summary_task,
    write_task,
)
from pipeline import PIPELINE_VERSION
from pipeline.audio import load_audio, sha256_of
from pipeline.consent import Consent
from pipeline.deid import get_ner_nlp
from pipeline.errors import AllianceError, ConfigError
from pipeline.manifest import BatchItem, load_batch
from pipeline.outcome import SessionOutcome, outcome_for_error
from pipeline.report.index import write_therapist_indexes
from pipeline.runtime import (
    DIARIZATION_MODEL_NAME,
    PipelineOptions,
    get_diarizer,
    get_nlp,
    get_transcriber,
    models_description,
)
from pipeline.session import SessionAnalysis, analyse
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


Engine = Literal["threads", "dask"]
ENGINES: tuple[str, ...] = ("threads", "dask")


@dataclass(frozen=True)
class Computed:
    """What a Dask worker sends back: an analysis to store, or the outcome of a recording that failed."""

    analysis: SessionAnalysis | None
    outcome: SessionOutcome | None
    pid: int
    duration_s: float | None
    wall_s: float


@task(name="compute-recording", cache_policy=NO_CACHE, persist_result=False)
def compute_task(item: BatchItem, consent: Consent, options: PipelineOptions) -> Computed:
    """On a Dask worker: audio, transcription, diarization and analysis of one recording; never writes.

    Models come from the runtime's per-process cache, so each worker process loads them once. Plain
    functions, no Prefect sub-tasks: the worker runs this task and nothing else.
    """
    assert item.audio_path is not None and item.meta is not None
    log = get_run_logger()
    started = time.perf_counter()
    path, meta = item.audio_path, item.meta
    pid = os.getpid()
    stage, sha, audio = "audio", None, None
    try:
        audio = load_audio(path, options=options.audio)
        sha = audio.sha256
        log.info("%s: %.1f s of audio, SHA-256 %s (worker pid %d)", path.name, audio.duration_s, sha[:12], pid)
        stage = "transcription+diarization"
        transcriber, diarizer = get_transcriber(options.transcribe), get_diarizer(options.diarize)

        def transcribe() -> Any:
            return transcriber.transcribe(audio.samples, progress=_asr_progress(log))

        def diarize() -> Any:
            return diarizer.diarize(audio.samples, num_speakers=meta.num_speakers, hook=_diarization_progress(log))

        if options.overlap_stages:
            with ThreadPoolExecutor(max_workers=2) as pool:
                t_future, d_future = pool.submit(transcribe), pool.submit(diarize)
                stage = "transcription"
                transcript = t_future.result()
                stage = "diarization"
                diarization = d_future.result()
        else:
            stage = "transcription"
            transcript = transcribe()
            stage = "diarization"
            diarization = diarize()
        stage = "analysis"
        analysis = analyse(audio, transcript, diarization, meta=meta, consent=consent, nlp=get_nlp(),
                           ner_nlp=get_ner_nlp(), diarization_model=DIARIZATION_MODEL_NAME,
                           options=options.indicators)
        return Computed(analysis, None, pid, audio.duration_s, round(time.perf_counter() - started, 2))
    except Exception as e:  # a bad recording, a bug or a library failure: report it with its stage
        outcome = outcome_for_error(e, source_path=str(path), session_id=meta.session_id, audio_sha256=sha,
                                    stage=stage, duration_s=audio.duration_s if audio else None)
    log.warning("%s failed at %s: %s (worker pid %d)", path.name, outcome.stage, outcome.message, pid)
    return Computed(None, outcome, pid, outcome.duration_s, round(time.perf_counter() - started, 2))


def _dask_precheck(item: BatchItem, dbp: Path, force: bool) -> tuple[Consent | None, SessionOutcome | None]:
    """In the flow's process, before submitting: consent (refused), then the skip test on the file's hash.

    Returns the consent record to compute with, or the recording's final outcome.
    """
    assert item.audio_path is not None and item.meta is not None
    path, meta = item.audio_path, item.meta
    try:
        consent = consent_task.fn(path, meta, item.consent)
    except AllianceError as e:
        return None, outcome_for_error(e, source_path=str(path), session_id=meta.session_id, audio_sha256=None,
                                       stage="consent")
    try:
        sha = sha256_of(path)
    except OSError:
        return consent, None  # missing or unreadable: the worker's audio stage says exactly why
    done = _already_done(dbp, meta, sha, force=force)
    if done is not None:
        return None, replace(done, source_path=str(path))
    return consent, None


def _dask_store(item: BatchItem, computed: Computed, dbp: Path, reports: Path, run_id: str,
                force: bool, keep_audio: bool = True) -> SessionOutcome:
    """In the flow's process, one at a time: write what a worker computed, its reports, and its end state."""
    assert item.audio_path is not None and item.meta is not None
    path, meta = item.audio_path, item.meta
    analysis = computed.analysis
    if computed.outcome is not None or analysis is None:
        outcome = computed.outcome or SessionOutcome("failed", str(path), meta.session_id, stage="batch",
                                                     error_code="unexpected", message="worker returned nothing")
    else:
        stage = "storage"
        sha = analysis.audio_sha256
        try:
            # checked again at write time: another recording of this batch may have stored this audio meanwhile
            done = _already_done(dbp, meta, sha, force=force)
            if done is not None:
                outcome = replace(done, source_path=str(path), duration_s=computed.duration_s)
            else:
                write_task(analysis, dbp, run_id)
                stage = "summary"
                summary_path, html_path, lines = summary_task(meta.session_id, dbp, reports, run_id)
                if not keep_audio:
                    stage = "retention"
                    retention_task(path, sha, meta.session_id, dbp, run_id)
                outcome = SessionOutcome("processed", str(path), meta.session_id, sha, summary_path=summary_path,
                                         report_path=html_path, headline=lines, duration_s=computed.duration_s,
                                         message=f"stored in {dbp}, summary at {summary_path}; "
                                         f"computed by dask worker pid {computed.pid}")
        except Exception as e:
            outcome = outcome_for_error(e, source_path=str(path), session_id=meta.session_id, audio_sha256=sha,
                                        stage=stage, duration_s=computed.duration_s)
    outcome = replace(outcome, wall_s=computed.wall_s)
    with DB_LOCK:
        _record(dbp, run_id, path, meta, outcome.audio_sha256, outcome, False)
    return outcome


def _record_outcome(item: BatchItem, outcome: SessionOutcome, dbp: Path, run_id: str) -> SessionOutcome:
    assert item.audio_path is not None and item.meta is not None
    with DB_LOCK:
        _record(dbp, run_id, item.audio_path, item.meta, outcome.audio_sha256, outcome, False)
    return outcome


def _start_run(dbp: Path, run_id: str, options: PipelineOptions, command: str) -> None:
    with DB_LOCK:
        con = db.connect(dbp)
        try:
            db.start_run(con, run_id=run_id, pipeline_version=PIPELINE_VERSION, models=models_description(options),
                         command=command)
        finally:
            con.close()


def _finish_run(dbp: Path, run_id: str, reports: Path, therapists: list[str]) -> list[Path]:
    with DB_LOCK:
        con = db.connect(dbp)
        try:
            indexes = write_therapist_indexes(con, reports, therapist_ids=therapists)
            db.finish_run(con, run_id=run_id, status="finished")
        finally:
            con.close()
    return indexes


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
) -> BatchReport:
    """Process every recording of a folder or manifest; one bad file never stops the batch.

    Parallelism comes from the flow's task runner: use :func:`run_batch`, which sets it to ``workers``
    threads or Dask workers (``workers`` here only labels the run). ``engine="dask"`` expects a
    ``DaskTaskRunner``: recordings are computed on its workers and written here.
    ``on_progress(outcome, done, total, elapsed_s)`` is called as each recording ends.
    """
    log = get_run_logger()
    started = time.perf_counter()
    dbp = Path(db_path)
    items = load_batch(Path(source), allowed_root=Path(allowed_root) if allowed_root else None)
    run_id = db.new_run_id()
    outcomes: list[SessionOutcome] = []
    with exclusive_run(dbp, wait_s=lock_wait_s):
        _start_run(dbp, run_id, options, f"batch {source} (workers={workers}, engine={engine})")
        log.info("batch %s: %d recording(s), %d worker(s), engine %s", run_id, len(items), workers, engine)

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
        futures = {}
        for item in runnable:
            if engine == "dask":
                consent, final = _dask_precheck(item, dbp, force)
                if final is not None:
                    done(_record_outcome(item, final, dbp, run_id))
                    continue
                futures[compute_task.submit(item, consent, options)] = item
            else:
                futures[recording_task.submit(item, str(dbp), reports_dir, options, force, run_id)] = item
        for future in as_completed(list(futures)):
            item = futures[future]
            try:
                result = future.result()
                done(_dask_store(item, result, dbp, Path(reports_dir), run_id, force, options.keep_audio)
                     if engine == "dask" else result)
            except Exception as e:  # the session flow reports its own failures; this is a crash
                crash = SessionOutcome("failed", str(item.audio_path), item.meta.session_id if item.meta else None,
                                       stage="batch", error_code="unexpected", message=f"{type(e).__name__}: {e}")
                done(_record_outcome(item, crash, dbp, run_id) if engine == "dask" else crash)
        therapists = sorted({o.meta.therapist_id for o in runnable if o.meta is not None})
        indexes = _finish_run(dbp, run_id, Path(reports_dir), therapists)
        log.info("index pages: %s", ", ".join(str(p) for p in indexes) or "none")
    return BatchReport(run_id, tuple(outcomes), round(time.perf_counter() - started, 2))


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
    return process_batch.with_options(task_runner=runner)(source, workers=workers, engine=engine, **kwargs)


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
