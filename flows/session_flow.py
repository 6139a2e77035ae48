"""The session flow: one consented recording in, a stored session and a summary out.

A thin Prefect wrapper over the one stage sequence of :mod:`pipeline.engine.sequence` (also used by both
batch engines): precheck (consent, skip) -> compute (audio, transcription || diarization, analysis) -> store
(one transaction, summary, report, retention) -> end state. Tasks neither cache nor persist results: they
hold clinical text, which must not land in Prefect's result storage. The flow's only parameter is an opaque
handle (:mod:`pipeline.engine.handles`); log lines carry counts and stage names, no path, id or name.
"""

from __future__ import annotations

import time
from contextlib import ExitStack
from dataclasses import replace
from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE

from pipeline.analysis.session import SessionMeta
from pipeline.audio.decode import CheckedAudio
from pipeline.engine import handles, sequence
from pipeline.engine.outcome import SessionOutcome
from pipeline.engine.run import owned_run
from pipeline.engine.runtime import PipelineOptions, models_description

_TASK = {"cache_policy": NO_CACHE, "persist_result": False}


@task(name="precheck", **_TASK)
def precheck_task(audio_path: Path, meta: SessionMeta, consent: dict | None, db_path: Path,
                  force: bool, reports_dir: Path, run_id: str) -> sequence.Prechecked:
    return sequence.precheck(audio_path, meta, consent, db_path=db_path, force=force, log=get_run_logger(),
                             reports_dir=reports_dir, run_id=run_id)


@task(name="compute-session", **_TASK)
def compute_task(audio_path: Path, meta: SessionMeta, consent: sequence.Consent,
                 options: PipelineOptions, checked: CheckedAudio | None = None) -> sequence.Computed:
    return sequence.compute_session(audio_path, meta, consent, options=options, log=get_run_logger(),
                                    checked=checked)


@task(name="store-session", **_TASK)
def store_task(computed: sequence.Computed, audio_path: Path, meta: SessionMeta, db_path: Path, reports_dir: Path,
               run_id: str, force: bool, keep_audio: bool, flow_handle: str | None = None) -> SessionOutcome:
    return sequence.store_session(computed, audio_path, meta, db_path=db_path, reports_dir=reports_dir,
                                  run_id=run_id, force=force, keep_audio=keep_audio, log=get_run_logger(),
                                  record=True, flow_handle=flow_handle)


@flow(name="process-session", persist_result=False)
def process_session_flow(handle: str) -> SessionOutcome:
    """Process the recording registered under ``handle``; never raises for a bad recording.

    The flow's only parameter is an opaque handle (:mod:`pipeline.engine.handles`): Prefect's database
    keeps flow-run parameters, and a session's path, ids, known names and consent must not land there.
    Call :func:`process_session`, which registers the inputs, owns the run (lock, ``pipeline_runs``) and
    calls this flow in the same process.
    """
    request = handles.lookup(handle)
    log = get_run_logger()
    started = time.perf_counter()
    path, dbp, reports, meta = request.audio_path, request.db_path, request.reports_dir, request.meta
    options: PipelineOptions = request.options
    run_id = request.run_id
    assert run_id is not None, "process_session registers every request with its run id"
    pre = request.prechecked  # the command's own precheck, handed on: not repeated
    if pre is None:
        pre = precheck_task(path, meta, request.consent, dbp, request.force, reports, run_id)
    if pre.outcome is not None:
        outcome = sequence.record_outcome(dbp, run_id, pre.outcome, source_path=str(path),
                                          session_id=meta.session_id, flow_handle=handle)
    else:
        computed = compute_task(path, meta, pre.consent, options, pre.checked)
        # one connection: skip test, write, report rows and the end state (with this flow's handle)
        outcome = store_task(computed, path, meta, dbp, reports, run_id, request.force, options.keep_audio, handle)
    outcome = replace(outcome, wall_s=round(time.perf_counter() - started, 2))
    if outcome.state in ("refused", "failed"):
        log.warning("recording %s at stage %s (%s)", outcome.state, outcome.stage, outcome.error_code)
    return outcome


def process_session(
    audio_path: str | Path,
    meta: SessionMeta,
    *,
    db_path: str | Path = "alliance.duckdb",
    reports_dir: str | Path = "reports",
    options: PipelineOptions | None = None,
    consent: dict | None = None,
    force: bool = False,
    run_id: str | None = None,
    lock_wait_s: float = 0.0,
    flow_run_name: str | None = None,
    prechecked: sequence.Prechecked | None = None,
) -> SessionOutcome:
    """Process one consented recording with the Prefect session flow; never raises for a bad recording.

    ``consent`` is a manifest row's consent fields; without it the sidecar ``AUDIO.consent.json`` is read.
    Without ``run_id`` this call owns a run (:func:`pipeline.engine.run.owned_run`: the run lock, waiting up
    to ``lock_wait_s``; ``pipeline_runs``; results kept while the database was locked; ``interrupted`` when
    left by an exception). With ``run_id`` the caller owns it (a batch, ``alliance process``). ``prechecked``
    is the caller's own :func:`~pipeline.engine.sequence.precheck` of this recording (one that let it
    through): the flow does not repeat it. The recording's end state goes to ``run_items`` with the flow's
    handle. The inputs are registered in this process under a random handle, the flow's only parameter
    (nothing else of the session reaches Prefect's database), and forgotten when the flow returns. Run
    set-up happens outside the flow, so an error there (a locked database) is raised here and never stored
    by Prefect.

    Raises
    ------
    StorageError
        The run could not start: another run holds the database, or it cannot be opened.
    """
    options = options or PipelineOptions()
    dbp = Path(db_path)
    with ExitStack() as stack:
        if run_id is None:
            run_id = stack.enter_context(owned_run(dbp, command=f"process {Path(audio_path).name}",
                                                   models=models_description(options),
                                                   lock_wait_s=lock_wait_s)).run_id
        handle = handles.register(handles.SessionRequest(
            Path(audio_path), meta, dbp, Path(reports_dir), options, consent, force, run_id, lock_wait_s,
            prechecked))
        try:
            flow_ = process_session_flow if flow_run_name is None else process_session_flow.with_options(
                flow_run_name=flow_run_name)
            return flow_(handle)
        finally:
            handles.release(handle)
