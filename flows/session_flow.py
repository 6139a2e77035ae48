"""The session flow: one consented recording in, a stored session and a summary out.

Every stage is a Prefect task over a plain function of ``pipeline``. Transcription and diarization of a
session run at the same time (threads) unless ``overlap_stages`` is off. Tasks neither cache nor persist
results: they hold clinical text, which must not land in Prefect's result storage.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import replace
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.task_runners import ThreadPoolTaskRunner

from pipeline import PIPELINE_VERSION
from pipeline.audio import load_audio
from pipeline.consent import Consent, check_matches, parse_consent, read_sidecar
from pipeline.deid import get_ner_nlp
from pipeline.erasure import withdrawn
from pipeline.indicators import MARKERS_VERSION
from pipeline.outcome import SessionOutcome, outcome_for_error
from pipeline.report import write_html_report
from pipeline.runtime import (
    DIARIZATION_MODEL_NAME,
    PipelineOptions,
    get_diarizer,
    get_nlp,
    get_transcriber,
    models_description,
)
from pipeline.session import SessionAnalysis, SessionMeta, analyse
from pipeline.storage import db
from pipeline.storage.lock import exclusive_run
from pipeline.summary import headline, load_summary, render_markdown, report_stem
from pipeline.types import Audio, Diarization, Transcript

_TASK = {"cache_policy": NO_CACHE, "persist_result": False}
#: Serialises this process's database access (sessions of a batch finish in parallel threads).
DB_LOCK = threading.Lock()


@task(name="check-consent", **_TASK)
def consent_task(audio_path: Path, meta: SessionMeta, consent: dict | None) -> Consent:
    c = parse_consent(consent, source="manifest") if consent is not None else read_sidecar(audio_path)
    check_matches(c, session_id=meta.session_id, client_id=meta.client_id)
    return c


@task(name="load-audio", **_TASK)
def audio_task(audio_path: Path, options: PipelineOptions) -> Audio:
    return load_audio(audio_path, options=options.audio)


def _asr_progress(log: Any) -> Callable[[float], None]:
    """Log transcription progress at each quarter of the audio."""
    done = [0]

    def hook(fraction: float) -> None:
        quarter = int(fraction * 4)
        if quarter > done[0]:
            done[0] = quarter
            log.info("transcription %d %% done", 25 * quarter)

    return hook


def _diarization_progress(log: Any) -> Callable[..., None]:
    """Log each diarization step as it completes."""
    seen: set[str] = set()

    def hook(step_name: str, artefact: Any, file: Any = None, total: int | None = None,
             completed: int | None = None) -> None:
        finished = total is None or completed is None or completed >= total
        if finished and step_name not in seen:
            seen.add(step_name)
            log.info("diarization: %s done", step_name.replace("_", " "))

    return hook


@task(name="transcribe", **_TASK)
def transcribe_task(audio: Audio, options: PipelineOptions) -> Transcript:
    return get_transcriber(options.transcribe).transcribe(audio.samples, progress=_asr_progress(get_run_logger()))


@task(name="diarize", **_TASK)
def diarize_task(audio: Audio, meta: SessionMeta, options: PipelineOptions) -> Diarization:
    return get_diarizer(options.diarize).diarize(audio.samples, num_speakers=meta.num_speakers,
                                                 hook=_diarization_progress(get_run_logger()))


@task(name="analyse", **_TASK)
def analyse_task(audio: Audio, transcript: Transcript, diarization: Diarization, meta: SessionMeta,
                 consent: Consent, options: PipelineOptions) -> SessionAnalysis:
    return analyse(audio, transcript, diarization, meta=meta, consent=consent, nlp=get_nlp(),
                   ner_nlp=get_ner_nlp(), diarization_model=DIARIZATION_MODEL_NAME, options=options.indicators)


@task(name="write-session", **_TASK)
def write_task(analysis: SessionAnalysis, db_path: Path, run_id: str) -> None:
    with DB_LOCK:
        con = db.connect(db_path)
        try:
            db.write_session(con, analysis, run_id=run_id, pipeline_version=PIPELINE_VERSION)
        finally:
            con.close()


@task(name="write-summary", **_TASK)
def summary_task(session_id: str, db_path: Path, reports_dir: Path,
                 run_id: str = "summary") -> tuple[str, str, tuple[str, ...]]:
    """Write the Markdown summary and the HTML report; return their paths and the headline lines."""
    reports_dir.mkdir(parents=True, exist_ok=True)
    path = reports_dir / f"{report_stem(session_id)}.md"
    html_path = reports_dir / f"{report_stem(session_id)}.html"
    # under the lock: reads the database, and matplotlib's drawing state is process-wide
    with DB_LOCK:
        con = db.connect(db_path)
        try:
            summary = load_summary(con, session_id)
            write_html_report(con, session_id, html_path)
            tmp = path.with_suffix(".md.partial")
            tmp.write_text(render_markdown(summary), encoding="utf-8")
            tmp.replace(path)
            db.record_files(con, session_id=session_id, files=[(str(path), "summary_md"),
                                                               (str(html_path), "report_html")], run_id=run_id)
        finally:
            con.close()
    return str(path), str(html_path), tuple(headline(summary))


@task(name="apply-retention", **_TASK)
def retention_task(audio_path: Path, sha256: str, session_id: str, db_path: Path, run_id: str) -> str:
    """Delete the processed recording (audio retention ``keep_audio=False``); its hash stays in the database.

    The file is deleted only if it still has the processed audio's SHA-256. Returns what was done.
    """
    from pipeline.audio import sha256_of
    from pipeline.storage import audit

    if not audio_path.is_file():
        return "recording already gone"
    if sha256_of(audio_path) != sha256:
        return "recording changed since it was processed: not deleted"
    audio_path.unlink()
    with DB_LOCK:
        con = db.connect(db_path)
        try:
            audit.record(con, action="delete-audio", actor=audit.current_actor(), session_ids=[session_id],
                         run_id=run_id, detail=f"audio sha256 {sha256} deleted after processing (retention)")
        finally:
            con.close()
    return "recording deleted after processing (retention setting); its SHA-256 is kept"


def _already_done(db_path: Path, meta: SessionMeta, sha256: str, *, force: bool,
                  log: Any = None) -> SessionOutcome | None:
    """Skip an identical re-run; refuse a clash of session id and audio (unless forced).

    Identical means the same session id, audio SHA-256, pipeline version and markers version; a session
    stored by another version is re-processed whole, and the log says why.
    """
    if not db_path.is_file():
        return None
    with DB_LOCK:
        con = db.connect(db_path)
        try:
            existing = db.find_existing(con, session_id=meta.session_id, audio_sha256=sha256)
            refused = withdrawn(con, session_id=meta.session_id, audio_sha256=sha256)
        finally:
            con.close()
    if refused is not None:
        return SessionOutcome("refused", "", meta.session_id, sha256, stage="consent",
                              error_code="consent_withdrawn", message=refused)
    for e in existing:
        same = e.session_id == meta.session_id and e.audio_sha256 == sha256
        current = e.pipeline_version == PIPELINE_VERSION and e.markers_version == MARKERS_VERSION
        if same and current and not force:
            return SessionOutcome("skipped", "", meta.session_id, sha256, message=(
                f"already processed with pipeline {PIPELINE_VERSION}, markers {MARKERS_VERSION} (same audio "
                "SHA-256); use --force to redo"))
        if same and not current and log is not None:
            log.info("%s: stored by pipeline %s / markers %s; re-processing with %s / %s", meta.session_id,
                     e.pipeline_version, e.markers_version, PIPELINE_VERSION, MARKERS_VERSION)
        if not same and not force:
            what = (f"this audio is already stored as session {e.session_id!r}" if e.audio_sha256 == sha256
                    else f"session id {meta.session_id!r} is already used by another recording "
                         f"(SHA-256 {e.audio_sha256[:12]}...)")
            return SessionOutcome("failed", "", meta.session_id, sha256, stage="storage",
                                  error_code="duplicate", message=what + "; use --force to replace it")
    return None


@flow(name="process-session", persist_result=False, task_runner=ThreadPoolTaskRunner(max_workers=2))
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
            con = db.connect(dbp)
            db.start_run(con, run_id=run_id, pipeline_version=PIPELINE_VERSION, models=models_description(options),
                         command=f"process {path.name}")
            con.close()
        return _process(path, meta, dbp, reports, options, consent, force, run_id, own_run, log, started)


def _process(path: Path, meta: SessionMeta, dbp: Path, reports: Path, options: PipelineOptions,
             consent: dict | None, force: bool, run_id: str, own_run: bool, log: Any,
             started: float) -> SessionOutcome:
    stage = "consent"
    sha = None
    audio = None
    try:
        consent_rec = consent_task(path, meta, consent)
        stage = "audio"
        audio = audio_task(path, options)
        sha = audio.sha256
        log.info("%s: %.1f s of audio, SHA-256 %s", path.name, audio.duration_s, sha[:12])
        done = _already_done(dbp, meta, sha, force=force, log=log)
        if done is not None:
            outcome = SessionOutcome(done.state, str(path), meta.session_id, sha, done.stage, done.error_code,
                                     done.message, duration_s=audio.duration_s)
        else:
            stage = "transcription+diarization"
            if options.overlap_stages:
                t_future = transcribe_task.submit(audio, options)
                d_future = diarize_task.submit(audio, meta, options)
                stage = "transcription"
                transcript = t_future.result()
                stage = "diarization"
                diarization = d_future.result()
            else:
                stage = "transcription"
                transcript = transcribe_task(audio, options)
                stage = "diarization"
                diarization = diarize_task(audio, meta, options)
            log.info("%d words (%s), %d speaker turns", len(transcript.words), transcript.language,
                     len(diarization.turns))
            stage = "analysis"
            analysis = analyse_task(audio, transcript, diarization, meta, consent_rec, options)
            stage = "storage"
            write_task(analysis, dbp, run_id)
            stage = "summary"
            summary_path, html_path, lines = summary_task(meta.session_id, dbp, reports, run_id)
            retention = ""
            if not options.keep_audio:
                stage = "retention"
                retention = "; " + retention_task(path, sha, meta.session_id, dbp, run_id)
            outcome = SessionOutcome("processed", str(path), meta.session_id, sha, summary_path=summary_path,
                                     report_path=html_path, headline=lines, duration_s=audio.duration_s,
                                     message=f"stored in {dbp}, summary at {summary_path}{retention}")
    except Exception as e:  # a bad recording, a bug or a library failure: report it with its stage, never half-write
        outcome = outcome_for_error(e, source_path=str(path), session_id=meta.session_id, audio_sha256=sha,
                                    stage=stage, duration_s=audio.duration_s if audio else None)
    outcome = replace(outcome, wall_s=round(time.perf_counter() - started, 2))
    if outcome.state in ("refused", "failed"):
        log.warning("%s %s at %s: %s", path.name, outcome.state, outcome.stage, outcome.message)
    with DB_LOCK:
        _record(dbp, run_id, path, meta, sha, outcome, own_run)
    return outcome


def _record(dbp: Path, run_id: str, path: Path, meta: SessionMeta, sha: str | None, outcome: SessionOutcome,
            own_run: bool) -> None:
    con = db.connect(dbp)
    try:
        db.record_item(con, run_id=run_id, source_path=str(path), state=outcome.state, session_id=meta.session_id,
                       audio_sha256=sha, stage=outcome.stage if outcome.state in ("failed", "refused") else None,
                       error_code=outcome.error_code, message=outcome.message)
        if own_run:
            db.finish_run(con, run_id=run_id, status="finished")
    finally:
        con.close()
