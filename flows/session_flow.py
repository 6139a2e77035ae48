"""The session flow: one consented recording in, a stored session and a summary out.

A thin Prefect wrapper over the one stage sequence of :mod:`pipeline.engine.sequence` (also used by both
batch engines): precheck (consent, skip) -> compute (audio, transcription || diarization, analysis) -> store
(one transaction, summary, report, retention) -> end state. Tasks neither cache nor persist results: they
hold clinical text, which must not land in Prefect's result storage.
"""

from __future__ import annotations

import time
from contextlib import ExitStack
from dataclasses import replace
from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE

from pipeline.analysis.session import SessionMeta
from pipeline.engine import sequence
from pipeline.engine.outcome import SessionOutcome
from pipeline.engine.runtime import PipelineOptions, models_description
from pipeline.storage import db
from pipeline.storage.lock import exclusive_run

_TASK = {"cache_policy": NO_CACHE, "persist_result": False}


@task(name="precheck", **_TASK)
def precheck_task(audio_path: Path, meta: SessionMeta, consent: dict | None, db_path: Path,
                  force: bool) -> sequence.Prechecked:
    return sequence.precheck(audio_path, meta, consent, db_path=db_path, force=force, log=get_run_logger())


@task(name="compute-session", **_TASK)
def compute_task(audio_path: Path, meta: SessionMeta, consent: sequence.Consent,
                 options: PipelineOptions) -> sequence.Computed:
    return sequence.compute_session(audio_path, meta, consent, options=options, log=get_run_logger())


@task(name="store-session", **_TASK)
def store_task(computed: sequence.Computed, audio_path: Path, meta: SessionMeta, db_path: Path, reports_dir: Path,
               run_id: str, force: bool, keep_audio: bool) -> SessionOutcome:
    return sequence.store_session(computed, audio_path, meta, db_path=db_path, reports_dir=reports_dir,
                                  run_id=run_id, force=force, keep_audio=keep_audio, log=get_run_logger())


@flow(name="process-session", persist_result=False)
def process_session(
    audio_path: str,
    meta: SessionMeta,
    *,
    db_path: str = "alliance.duckdb",
    reports_dir: str = "reports",
    options: PipelineOptions = PipelineOptions(),
    consent: dict | None = None,
    force: bool = False,
    run_id: str | None = None,
    lock_wait_s: float = 0.0,
) -> SessionOutcome:
    """Process one consented recording; never raises for a bad recording (the outcome says why).

    ``consent`` is a manifest row's consent fields; without it the sidecar ``AUDIO.consent.json`` is read.
    The run is recorded in ``pipeline_runs`` and the recording's end state in ``run_items``.
    """
    log = get_run_logger()
    started = time.perf_counter()
    path, dbp, reports = Path(audio_path), Path(db_path), Path(reports_dir)
    own_run = run_id is None
    run_id = run_id or db.new_run_id()
    with ExitStack() as stack:
        if own_run:  # a batch holds the run lock itself
            stack.enter_context(exclusive_run(dbp, wait_s=lock_wait_s))
            sequence.start_run(dbp, run_id, models=models_description(options), command=f"process {path.name}")
        pre = precheck_task(path, meta, consent, dbp, force)
        if pre.outcome is not None:
            outcome = pre.outcome
        else:
            computed = compute_task(path, meta, pre.consent, options)
            outcome = store_task(computed, path, meta, dbp, reports, run_id, force, options.keep_audio)
        outcome = replace(outcome, wall_s=round(time.perf_counter() - started, 2))
        if outcome.state in ("refused", "failed"):
            log.warning("recording %s at stage %s (%s)", outcome.state, outcome.stage, outcome.error_code)
        return sequence.record_outcome(dbp, run_id, outcome, source_path=str(path), session_id=meta.session_id,
                                       finish_run=own_run)
