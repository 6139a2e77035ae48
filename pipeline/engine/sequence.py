"""The one stage sequence of a session, as plain functions every engine calls.

consent -> skip check -> audio -> transcription || diarization -> analysis  (:func:`precheck`, :func:`compute_session`)
-> write -> summary and report -> retention  (:func:`store_session`) -> end state  (:func:`record_outcome`)

The session flow, the thread batch (the session flow as a subflow) and the Dask batch (compute on a worker,
store in the flow's process) all run exactly these functions; the Prefect flows in ``flows/`` only wrap them
as tasks. :func:`compute_session` touches no database; :func:`store_session` writes one session in one
transaction and then its files. Neither raises for a bad recording: the end state says why.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from pipeline import PIPELINE_VERSION
from pipeline.analysis.indicators import MARKERS_VERSION
from pipeline.analysis.session import SessionAnalysis, SessionMeta, analyse
from pipeline.audio.decode import load_audio, sha256_of
from pipeline.engine.outcome import SessionOutcome, outcome_for_error
from pipeline.engine.runtime import (
    DIARIZATION_MODEL_NAME,
    PipelineOptions,
    get_diarizer,
    get_nlp,
    get_transcriber,
)
from pipeline.errors import AllianceError
from pipeline.privacy.consent import Consent, check_matches, parse_consent, read_sidecar
from pipeline.privacy.deid import get_ner_nlp
from pipeline.report import write_html_report
from pipeline.report.summary import headline, load_summary, render_markdown, report_stem
from pipeline.storage import audit, db
from pipeline.storage.erasure import withdrawn

#: Serialises this process's database access and report drawing (sessions of a batch finish in parallel
#: threads; matplotlib's drawing state is process-wide).
DB_LOCK = threading.Lock()

_LOG = logging.getLogger("alliance.session")


@dataclass(frozen=True)
class Computed:
    """What :func:`compute_session` returns: an analysis to store, or the end state of a recording that failed."""

    analysis: SessionAnalysis | None
    outcome: SessionOutcome | None
    pid: int
    duration_s: float | None
    wall_s: float


@dataclass(frozen=True)
class Prechecked:
    """What :func:`precheck` returns: the consent to compute with, or the recording's final end state."""

    consent: Consent | None
    outcome: SessionOutcome | None


def check_consent(audio_path: Path, meta: SessionMeta, consent: dict | None) -> Consent:
    """The recording's consent (a manifest row's fields, else the sidecar), matched to the session and client."""
    c = parse_consent(consent, source="manifest") if consent is not None else read_sidecar(audio_path)
    check_matches(c, session_id=meta.session_id, client_id=meta.client_id)
    return c


def already_done(db_path: Path, meta: SessionMeta, sha256: str, *, force: bool,
                 log: Any = None) -> SessionOutcome | None:
    """Skip an identical re-run; refuse a withdrawn recording and a clash of session id and audio.

    Identical means the same session id, audio SHA-256, pipeline version and markers version; a session
    stored by another version is re-processed whole, and the log says why.
    """
    if not db_path.is_file():
        return None
    with DB_LOCK, db.open(db_path) as con:
        existing = db.find_existing(con, session_id=meta.session_id, audio_sha256=sha256)
        refused = withdrawn(con, session_id=meta.session_id, audio_sha256=sha256)
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
        if same and not current:
            (log or _LOG).info("stored by pipeline %s / markers %s; re-processing with %s / %s",
                               e.pipeline_version, e.markers_version, PIPELINE_VERSION, MARKERS_VERSION)
        if not same and not force:
            what = (f"this audio is already stored as session {e.session_id!r}" if e.audio_sha256 == sha256
                    else f"session id {meta.session_id!r} is already used by another recording "
                         f"(SHA-256 {e.audio_sha256[:12]}...)")
            return SessionOutcome("failed", "", meta.session_id, sha256, stage="storage",
                                  error_code="duplicate", message=what + "; use --force to replace it")
    return None


def precheck(audio_path: Path, meta: SessionMeta, consent: dict | None, *, db_path: Path,
             force: bool, log: Any = None) -> Prechecked:
    """Consent (else *refused*), then the skip test on the file's SHA-256, before any decoding."""
    try:
        c = check_consent(audio_path, meta, consent)
    except AllianceError as e:
        return Prechecked(None, outcome_for_error(e, source_path=str(audio_path), session_id=meta.session_id,
                                                  audio_sha256=None, stage="consent"))
    try:
        sha = sha256_of(audio_path)
    except OSError:
        return Prechecked(c, None)  # missing or unreadable: the audio stage says exactly why
    try:
        done = already_done(db_path, meta, sha, force=force, log=log)
    except AllianceError as e:
        return Prechecked(None, outcome_for_error(e, source_path=str(audio_path), session_id=meta.session_id,
                                                  audio_sha256=sha, stage="storage"))
    return Prechecked(c, None if done is None else replace(done, source_path=str(audio_path)))


def asr_progress(log: Any) -> Callable[[float], None]:
    """Log transcription progress at each quarter of the audio."""
    done = [0]

    def hook(fraction: float) -> None:
        quarter = int(fraction * 4)
        if quarter > done[0]:
            done[0] = quarter
            log.info("transcription %d %% done", 25 * quarter)

    return hook


def diarization_progress(log: Any) -> Callable[..., None]:
    """Log each diarization step as it completes."""
    seen: set[str] = set()

    def hook(step_name: str, artefact: Any, file: Any = None, total: int | None = None,
             completed: int | None = None) -> None:
        finished = total is None or completed is None or completed >= total
        if finished and step_name not in seen:
            seen.add(step_name)
            log.info("diarization: %s done", step_name.replace("_", " "))

    return hook


def compute_session(audio_path: Path, meta: SessionMeta, consent: Consent, *, options: PipelineOptions,
                    log: Any = None) -> Computed:
    """Audio in, every computed result out (no database): decode, transcribe || diarize, analyse.

    Transcription and diarization run at the same time in two threads unless ``options.overlap_stages``
    is off. Models come from the runtime's per-process cache. Never raises for a bad recording.
    """
    log = log or _LOG
    started = time.perf_counter()
    stage, sha, audio = "audio", None, None
    try:
        audio = load_audio(audio_path, options=options.audio)
        sha = audio.sha256
        log.info("%.1f s of audio, SHA-256 %s", audio.duration_s, sha[:12])
        stage = "transcription+diarization"
        transcriber, diarizer = get_transcriber(options.transcribe), get_diarizer(options.diarize)

        def transcribe() -> Any:
            return transcriber.transcribe(audio.samples, progress=asr_progress(log))

        def diarize() -> Any:
            return diarizer.diarize(audio.samples, num_speakers=meta.num_speakers, hook=diarization_progress(log))

        if options.overlap_stages:
            with ThreadPoolExecutor(max_workers=2, thread_name_prefix="stage") as pool:
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
        log.info("%d words (%s), %d speaker turns", len(transcript.words), transcript.language,
                 len(diarization.turns))
        stage = "analysis"
        analysis = analyse(audio, transcript, diarization, meta=meta, consent=consent, nlp=get_nlp(),
                           ner_nlp=get_ner_nlp(), diarization_model=DIARIZATION_MODEL_NAME,
                           options=options.indicators)
        return Computed(analysis, None, os.getpid(), audio.duration_s, round(time.perf_counter() - started, 2))
    except Exception as e:  # a bad recording, a bug or a library failure: report it with its stage
        outcome = outcome_for_error(e, source_path=str(audio_path), session_id=meta.session_id, audio_sha256=sha,
                                    stage=stage, duration_s=audio.duration_s if audio else None)
    return Computed(None, outcome, os.getpid(), outcome.duration_s, round(time.perf_counter() - started, 2))


def write_summary(session_id: str, db_path: Path, reports_dir: Path,
                  run_id: str = "summary") -> tuple[str, str, tuple[str, ...]]:
    """Write the Markdown summary and the HTML report; return their paths and the headline lines."""
    reports_dir.mkdir(parents=True, exist_ok=True)
    path = reports_dir / f"{report_stem(session_id)}.md"
    html_path = reports_dir / f"{report_stem(session_id)}.html"
    with DB_LOCK, db.open(db_path) as con:
        summary = load_summary(con, session_id)
        write_html_report(con, session_id, html_path)
        tmp = path.with_suffix(".md.partial")
        tmp.write_text(render_markdown(summary), encoding="utf-8")
        tmp.replace(path)
        db.record_files(con, session_id=session_id, files=[(str(path), "summary_md"),
                                                           (str(html_path), "report_html")], run_id=run_id)
    return str(path), str(html_path), tuple(headline(summary))


def apply_retention(audio_path: Path, sha256: str, session_id: str, db_path: Path, run_id: str) -> str:
    """Delete the processed recording (``keep_audio=False``); its hash stays in the database.

    The file is deleted only if it still has the processed audio's SHA-256. Returns what was done.
    """
    if not audio_path.is_file():
        return "recording already gone"
    if sha256_of(audio_path) != sha256:
        return "recording changed since it was processed: not deleted"
    audio_path.unlink()
    with DB_LOCK, db.open(db_path) as con:
        audit.record(con, action="delete-audio", actor=audit.current_actor(), session_ids=[session_id],
                     run_id=run_id, detail=f"audio sha256 {sha256} deleted after processing (retention)")
    return "recording deleted after processing (retention setting); its SHA-256 is kept"


def store_session(computed: Computed, audio_path: Path, meta: SessionMeta, *, db_path: Path, reports_dir: Path,
                  run_id: str, force: bool, keep_audio: bool = True, log: Any = None) -> SessionOutcome:
    """Write what :func:`compute_session` produced (one transaction), its summary and report, then retention.

    The skip test is repeated at write time: another recording of the same batch may have stored this audio
    meanwhile. Never raises for a bad recording: the returned end state says why.
    """
    analysis = computed.analysis
    if computed.outcome is not None or analysis is None:
        outcome = computed.outcome or SessionOutcome("failed", str(audio_path), meta.session_id, stage="compute",
                                                     error_code="unexpected", message="nothing was computed")
        return replace(outcome, wall_s=computed.wall_s)
    stage, sha = "storage", analysis.audio_sha256
    try:
        done = already_done(db_path, meta, sha, force=force, log=log)
        if done is not None:
            return replace(done, source_path=str(audio_path), duration_s=computed.duration_s, wall_s=computed.wall_s)
        with DB_LOCK, db.open(db_path) as con:
            db.write_session(con, analysis, run_id=run_id, pipeline_version=PIPELINE_VERSION)
        stage = "summary"
        summary_path, html_path, lines = write_summary(meta.session_id, db_path, reports_dir, run_id)
        retention = ""
        if not keep_audio:
            stage = "retention"
            retention = "; " + apply_retention(audio_path, sha, meta.session_id, db_path, run_id)
        outcome = SessionOutcome("processed", str(audio_path), meta.session_id, sha, summary_path=summary_path,
                                 report_path=html_path, headline=lines, duration_s=computed.duration_s,
                                 message=f"stored in {db_path}, summary at {summary_path}{retention}")
    except Exception as e:  # a storage or report failure: the end state says which stage
        outcome = outcome_for_error(e, source_path=str(audio_path), session_id=meta.session_id, audio_sha256=sha,
                                    stage=stage, duration_s=computed.duration_s)
    return replace(outcome, wall_s=computed.wall_s)


def start_run(db_path: Path, run_id: str, *, models: dict, command: str) -> None:
    """Record a run as started in ``pipeline_runs``."""
    with DB_LOCK, db.open(db_path) as con:
        db.start_run(con, run_id=run_id, pipeline_version=PIPELINE_VERSION, models=models, command=command)


def record_outcome(db_path: Path, run_id: str, outcome: SessionOutcome, *, source_path: str,
                   session_id: str | None, finish_run: bool = False) -> SessionOutcome:
    """Record one recording's end state in ``run_items`` (and, for a single-recording run, finish the run)."""
    with DB_LOCK, db.open(db_path) as con:
        db.record_item(con, run_id=run_id, source_path=source_path, state=outcome.state, session_id=session_id,
                       audio_sha256=outcome.audio_sha256,
                       stage=outcome.stage if outcome.state in ("failed", "refused") else None,
                       error_code=outcome.error_code, message=outcome.message)
        if finish_run:
            db.finish_run(con, run_id=run_id, status="finished")
    return outcome
