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
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipeline import PIPELINE_VERSION
from pipeline.analysis.indicators import MARKERS_VERSION
from pipeline.analysis.session import SessionAnalysis, SessionMeta, analyse
from pipeline.audio.decode import AudioOptions, CheckedAudio, check_audio, load_audio, probe_audio, sha256_of
from pipeline.audio.enhance import inputs_for_stages
from pipeline.engine.outcome import SessionOutcome, outcome_for_error
from pipeline.errors import AllianceError, DatabaseLockedError, RunInterruptedError
from pipeline.ids import clash_problem
from pipeline.privacy.consent import Consent, check_matches, parse_consent, read_sidecar
from pipeline.privacy.deid import get_ner_nlp
from pipeline.private_files import private_dir, write_private
from pipeline.storage import audit, db, pending
from pipeline.storage.erasure import withdrawn
from pipeline.storage.integrity import check_blocks

if TYPE_CHECKING:
    from pipeline.engine.runtime import PipelineOptions

# The models (runtime: torch, pyannote, Whisper) and the report drawing (matplotlib) are imported when
# first used, not with this module: consent, skip and database checks (``alliance process`` refusing a
# recording) then answer in about a second instead of paying ~8 s of imports.


def get_transcriber(options: Any) -> Any:
    """:func:`pipeline.engine.runtime.get_transcriber` (imported on first use)."""
    from pipeline.engine import runtime

    return runtime.get_transcriber(options)


def get_diarizer(options: Any) -> Any:
    """:func:`pipeline.engine.runtime.get_diarizer` (imported on first use)."""
    from pipeline.engine import runtime

    return runtime.get_diarizer(options)


def get_nlp() -> Any:
    """:func:`pipeline.engine.runtime.get_nlp` (imported on first use)."""
    from pipeline.engine import runtime

    return runtime.get_nlp()


def get_process_coder() -> Any:
    """:func:`pipeline.engine.runtime.get_process_coder` (imported on first use): (coder, encoder)."""
    from pipeline.engine import runtime

    return runtime.get_process_coder()


def _diarization_model_name() -> str:
    from pipeline.engine.runtime import DIARIZATION_MODEL_NAME

    return DIARIZATION_MODEL_NAME

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
    #: Seconds per stage, in the order run: ``decode``, ``models`` (loading, 0 when cached), ``transcription``,
    #: ``diarization`` (with the prosody frames computed after it), ``analysis``. With overlapped stages,
    #: transcription and diarization are each timed in their own thread and overlap in wall time.
    timings: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Prechecked:
    """What :func:`precheck` returns: the consent to compute with, or the recording's final end state."""

    consent: Consent | None
    outcome: SessionOutcome | None
    #: The audio as checked and hashed (header, SHA-256, file status), handed to :func:`compute_session` so the
    #: file is neither probed nor hashed again (None where it could not be read: the audio stage says why).
    checked: CheckedAudio | None = None


def check_consent(audio_path: Path, meta: SessionMeta, consent: dict | None) -> Consent:
    """The recording's consent (a manifest row's fields, else the sidecar), matched to the session and client."""
    c = parse_consent(consent, source="manifest") if consent is not None else read_sidecar(audio_path)
    check_matches(c, session_id=meta.session_id, client_id=meta.client_id, recorded_on=meta.recorded_on)
    return c


def stored_id_clash(con: Any, meta: SessionMeta) -> str | None:
    """Why the session, client or therapist id clashes with a different stored one."""
    for kind, column, value in (("session", "session_id", meta.session_id), ("client", "client_id", meta.client_id),
                                ("therapist", "therapist_id", meta.therapist_id)):
        stored = [v for (v,) in con.execute(f"SELECT DISTINCT {column} FROM sessions").fetchall()]
        problem = clash_problem(kind, value, stored)
        if problem is not None:
            return problem
    return None


def already_done(db_path: Path, meta: SessionMeta, sha256: str, *, force: bool,
                 log: Any = None, con: Any = None) -> SessionOutcome | None:
    """Skip an identical re-run; refuse a withdrawn recording and a clash of session id and audio.

    Identical means the same session id, audio SHA-256, pipeline version and markers version; a session
    stored by another version is re-processed whole, and the log says why. With ``con`` (an open connection,
    :data:`DB_LOCK` held by the caller) the test runs in it; else the database is opened for it.
    """
    if con is None:
        if not db_path.is_file():
            return None
        with DB_LOCK, db.open(db_path) as own:
            return already_done(db_path, meta, sha256, force=force, log=log, con=own)
    existing = db.find_existing(con, session_id=meta.session_id, audio_sha256=sha256)
    refused = withdrawn(con, session_id=meta.session_id, audio_sha256=sha256)
    clash = stored_id_clash(con, meta)
    if clash is not None:  # S12 next to s12 or a Cyrillic Ѕ12: refused, never stored as a second id
        return SessionOutcome("refused", "", meta.session_id, sha256, stage="storage", error_code="invalid_id",
                              message=clash)
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


def check_database(db_path: Path) -> None:
    """Open the database once (created and migrated if new) before anything is computed.

    A folder that cannot be written, a damaged or foreign file (SQLite, anything not DuckDB, a DuckDB file
    with a corrupt block in use: every block is read once), a missing
    key or a lock held past the wait is then one clear error up front, not a failure after the
    recording was transcribed.

    Raises
    ------
    StorageError
        The database cannot be opened or read (one line, naming the file and the reason).
    """
    with DB_LOCK, db.open(db_path) as con:
        check_blocks(con, name=db_path.name)  # corrupt blocks: refused here, before a run record is written


def complete_outputs(outcome: SessionOutcome, *, db_path: Path, reports_dir: Path, run_id: str,
                     con: Any = None) -> SessionOutcome:
    """A *skipped* session whose summary or report file is missing gets them written again.

    A run killed after its write (the rows are whole) but before its report left the session stored
    without files; a re-run skips the computation and writes what is missing. Returns ``outcome``
    (with the new paths and a note) or, when nothing is missing, unchanged. With ``con`` (an open
    connection, :data:`DB_LOCK` held by the caller) everything happens in it.
    """
    if outcome.state != "skipped" or outcome.session_id is None:
        return outcome
    if con is None:
        with DB_LOCK, db.open(db_path) as own:
            return complete_outputs(outcome, db_path=db_path, reports_dir=reports_dir, run_id=run_id, con=own)
    missing = db.missing_outputs(con, outcome.session_id)
    if not missing:
        return outcome
    summary_path, html_path, lines = write_summary_in(con, outcome.session_id, reports_dir, run_id)
    what = " and ".join({"summary_md": "summary", "report_html": "report"}[k] for k in missing)
    return replace(outcome, summary_path=summary_path, report_path=html_path, headline=lines,
                   message=f"{outcome.message}; its missing {what} written again (summary at {summary_path})")


def precheck(audio_path: Path, meta: SessionMeta, consent: dict | None, *, db_path: Path,
             force: bool, log: Any = None, reports_dir: Path | None = None,
             run_id: str | None = None, audio_options: AudioOptions | None = None,
             check_database: bool = False, con: Any = None) -> Prechecked:
    """Consent (else *refused*), the audio boundary without decoding, then the skip test on the file's SHA-256.

    The audio check (:func:`pipeline.audio.decode.check_audio`: a regular non-empty file, a plausible header,
    its SHA-256) ends a hostile or broken recording as *failed* at ``audio`` before any model is loaded or
    anything is decoded; what it found is handed on (``Prechecked.checked``) so :func:`compute_session`
    neither probes nor hashes the file again.

    With ``check_database`` the database is opened first (created and migrated if new; one clear error if
    it cannot be, as :func:`check_database`) and the skip test runs in that same connection: one opening of
    the database for a command's whole precheck.

    With ``reports_dir`` and ``run_id``, a skipped session whose summary or report is missing gets them
    written again (:func:`complete_outputs`).

    With ``con`` (an open connection, :data:`DB_LOCK` held by the caller: a batch checking all its recordings
    in one opening) the skip test runs in it.

    Raises
    ------
    StorageError
        Only with ``check_database``: the database cannot be opened or read.
    """
    if check_database:
        with DB_LOCK, db.open(db_path) as con:
            con.execute("SELECT count(*) FROM sessions").fetchone()
            check_blocks(con, name=db_path.name)  # corrupt blocks: refused here, before a run record is written
            return _precheck(audio_path, meta, consent, db_path=db_path, force=force, log=log,
                             reports_dir=reports_dir, run_id=run_id, audio_options=audio_options, con=con)
    return _precheck(audio_path, meta, consent, db_path=db_path, force=force, log=log, reports_dir=reports_dir,
                     run_id=run_id, audio_options=audio_options, con=con)


def _precheck(audio_path: Path, meta: SessionMeta, consent: dict | None, *, db_path: Path, force: bool, log: Any,
              reports_dir: Path | None, run_id: str | None, audio_options: AudioOptions | None,
              con: Any) -> Prechecked:
    if not os.path.lexists(audio_path):  # a missing recording is reported as missing, not as "no consent"
        try:
            probe_audio(audio_path, options=audio_options or AudioOptions())
        except AllianceError as e:
            return Prechecked(None, outcome_for_error(e, source_path=str(audio_path), session_id=meta.session_id,
                                                      audio_sha256=None, stage="audio"))
    try:
        c = check_consent(audio_path, meta, consent)
    except AllianceError as e:
        return Prechecked(None, outcome_for_error(e, source_path=str(audio_path), session_id=meta.session_id,
                                                  audio_sha256=None, stage="consent"))
    try:  # a regular, non-empty file with a plausible header (no decoding): a hostile file ends here
        checked = check_audio(audio_path, options=audio_options or AudioOptions())
    except AllianceError as e:
        return Prechecked(None, outcome_for_error(e, source_path=str(audio_path), session_id=meta.session_id,
                                                  audio_sha256=None, stage="audio"))
    except OSError:
        return Prechecked(c, None)  # unreadable: the audio stage says exactly why
    sha = checked.sha256
    try:
        done = already_done(db_path, meta, sha, force=force, log=log, con=con)
    except AllianceError as e:
        return Prechecked(None, outcome_for_error(e, source_path=str(audio_path), session_id=meta.session_id,
                                                  audio_sha256=sha, stage="storage"))
    if done is not None and reports_dir is not None and run_id is not None:
        try:
            done = complete_outputs(done, db_path=db_path, reports_dir=reports_dir, run_id=run_id, con=con)
        except Exception as e:  # noqa: BLE001 - the session is stored; its files could not be written
            return Prechecked(None, outcome_for_error(e, source_path=str(audio_path), session_id=meta.session_id,
                                                      audio_sha256=sha, stage="summary"))
    return Prechecked(c, None if done is None else replace(done, source_path=str(audio_path)), checked)


def _check_stop(stop: threading.Event | None, stage: str) -> None:
    if stop is not None and stop.is_set():
        raise RunInterruptedError(f"{stage} stopped: the run was interrupted")


def asr_progress(log: Any, stop: threading.Event | None = None) -> Callable[[float], None]:
    """Log transcription progress at each quarter of the audio; stop (raise) once ``stop`` is set."""
    done = [0]

    def hook(fraction: float) -> None:
        _check_stop(stop, "transcription")
        quarter = int(fraction * 4)
        if quarter > done[0]:
            done[0] = quarter
            log.info("transcription %d %% done", 25 * quarter)

    return hook


def diarization_progress(log: Any, stop: threading.Event | None = None) -> Callable[..., None]:
    """Log each diarization step as it completes; stop (raise) once ``stop`` is set."""
    seen: set[str] = set()

    def hook(step_name: str, artefact: Any, file: Any = None, total: int | None = None,
             completed: int | None = None) -> None:
        _check_stop(stop, "diarization")
        finished = total is None or completed is None or completed >= total
        if finished and step_name not in seen:
            seen.add(step_name)
            log.info("diarization: %s done", step_name.replace("_", " "))

    return hook


def compute_session(audio_path: Path, meta: SessionMeta, consent: Consent, *, options: PipelineOptions,
                    log: Any = None, checked: CheckedAudio | None = None) -> Computed:
    """Audio in, every computed result out (no database): decode, transcribe || diarize, analyse.

    Transcription and diarization run at the same time in two threads unless ``options.overlap_stages``
    is off. Models come from the runtime's per-process cache. ``checked`` is the precheck's check of the
    file (``Prechecked.checked``): the file is then opened once, by the decoder. The result's ``timings``
    give the seconds of each stage (what benches report). Never raises for a bad recording.
    """
    log = log or _LOG
    started = time.perf_counter()
    timings: dict[str, float] = {}

    def timed(name: str, fn: Callable[[], Any]) -> Any:
        t0 = time.perf_counter()
        try:
            return fn()
        finally:
            timings[name] = round(time.perf_counter() - t0, 3)

    stage, sha, audio = "audio", None, None
    try:
        audio = timed("decode", lambda: load_audio(audio_path, options=options.audio, checked=checked))
        sha = audio.sha256
        log.info("%.1f s of audio decoded", audio.duration_s)
        stage = "transcription+diarization"
        transcriber, diarizer = timed("models", lambda: (get_transcriber(options.transcribe),
                                                         get_diarizer(options.diarize)))
        asr_samples, diar_samples = inputs_for_stages(audio.samples, options.enhance)  # untouched unless chosen

        # Set when this thread is interrupted (Ctrl-C, SIGTERM) or a stage fails: the other stage's thread
        # then stops at its next progress hook instead of running to the end while the run waits for it.
        stop = threading.Event()

        def transcribe() -> Any:
            return timed("transcription", lambda: transcriber.transcribe(asr_samples,
                                                                         progress=asr_progress(log, stop)))

        def diarize() -> Any:
            return timed("diarization", lambda: diarizer.diarize(diar_samples, num_speakers=meta.num_speakers,
                                                                 hook=diarization_progress(log, stop)))

        def diarize_then_prosody() -> tuple[Any, Any]:
            from pipeline.markers.prosody import diarization_frames

            # Diarization usually ends well before transcription: the speakers' pitch and energy frames (which
            # need only the audio and the diarization) are computed on the core it leaves idle.
            d = diarize()
            _check_stop(stop, "diarization")
            try:
                return d, timed("prosody", lambda: diarization_frames(audio.samples, d,
                                                                      options=options.indicators.prosody))
            except Exception:  # noqa: BLE001 - the analysis computes them again and reports its own failure
                return d, None

        if options.overlap_stages:
            with ThreadPoolExecutor(max_workers=2, thread_name_prefix="stage") as pool:
                t_future, d_future = pool.submit(transcribe), pool.submit(diarize_then_prosody)
                try:
                    stage = "transcription"
                    transcript = t_future.result()
                    stage = "diarization"
                    diarization, frames = d_future.result()
                except BaseException:
                    stop.set()
                    raise
        else:
            stage = "transcription"
            transcript = transcribe()
            stage = "diarization"
            diarization, frames = diarize(), None
        log.info("%d words (%s), %d speaker turns", len(transcript.words), transcript.language,
                 len(diarization.turns))
        stage = "analysis"
        coder, encoder = get_process_coder() if options.process_codes else (None, None)
        analysis = timed("analysis", lambda: analyse(
            audio, transcript, diarization, meta=meta, consent=consent, nlp=get_nlp(), ner_nlp=get_ner_nlp(),
            diarization_model=_diarization_model_name(), options=options.indicators, prosody_frames=frames,
            coder=coder, encoder=encoder))
        return Computed(analysis, None, os.getpid(), audio.duration_s, round(time.perf_counter() - started, 2),
                        dict(timings))
    except Exception as e:  # noqa: BLE001 - a bad recording, a bug or a library failure: report it with its stage
        outcome = outcome_for_error(e, source_path=str(audio_path), session_id=meta.session_id, audio_sha256=sha,
                                    stage=stage, duration_s=audio.duration_s if audio else None)
    return Computed(None, outcome, os.getpid(), outcome.duration_s, round(time.perf_counter() - started, 2),
                    dict(timings))


def write_summary(session_id: str, db_path: Path, reports_dir: Path,
                  run_id: str = "summary") -> tuple[str, str, tuple[str, ...]]:
    """Write the Markdown summary and the HTML report (owner-only files); return their paths and the headline."""
    with DB_LOCK, db.open(db_path) as con:
        return write_summary_in(con, session_id, reports_dir, run_id)


def write_summary_in(con: Any, session_id: str, reports_dir: Path,
                     run_id: str = "summary") -> tuple[str, str, tuple[str, ...]]:
    """:func:`write_summary` in an open connection (:data:`DB_LOCK` held by the caller: it also guards drawing)."""
    from pipeline.report import write_html_report
    from pipeline.report.summary import headline, load_summary, render_markdown, report_stem

    private_dir(reports_dir)
    path = reports_dir / f"{report_stem(session_id)}.md"
    html_path = reports_dir / f"{report_stem(session_id)}.html"
    summary = load_summary(con, session_id)
    write_html_report(con, session_id, html_path)
    os.chmod(html_path, 0o600)
    write_private(path, render_markdown(summary).encode("utf-8"))
    db.record_files(con, session_id=session_id, files=[(str(path), "summary_md"),
                                                       (str(html_path), "report_html")], run_id=run_id)
    return str(path), str(html_path), tuple(headline(summary))


def apply_retention(audio_path: Path, sha256: str, session_id: str, db_path: Path, run_id: str,
                    con: Any = None) -> str:
    """Delete the processed recording (``keep_audio=False``); its hash stays in the database.

    The file is deleted only if it still has the processed audio's SHA-256. Returns what was done. With
    ``con`` (:data:`DB_LOCK` held by the caller) the audit event is written in it.
    """
    if not audio_path.is_file():
        return "recording already gone"
    if sha256_of(audio_path) != sha256:
        return "recording changed since it was processed: not deleted"
    audio_path.unlink()
    detail = f"audio sha256 {sha256} deleted after processing (retention)"
    if con is None:
        with DB_LOCK, db.open(db_path) as own:
            audit.record(own, action="delete-audio", actor=audit.current_actor(), session_ids=[session_id],
                         run_id=run_id, detail=detail)
    else:
        audit.record(con, action="delete-audio", actor=audit.current_actor(), session_ids=[session_id],
                     run_id=run_id, detail=detail)
    return "recording deleted after processing (retention setting); its SHA-256 is kept"


def _store_in(con: Any, computed: Computed, audio_path: Path, meta: SessionMeta, *, db_path: Path,
              reports_dir: Path, run_id: str, force: bool, keep_audio: bool, log: Any,
              stage: list[str]) -> SessionOutcome:
    """:func:`store_session`'s steps in one open connection; ``stage[0]`` follows the step (for the error)."""
    analysis = computed.analysis
    assert analysis is not None
    sha = analysis.audio_sha256
    done = already_done(db_path, meta, sha, force=force, log=log, con=con)
    if done is not None:
        stage[0] = "summary"
        done = complete_outputs(done, db_path=db_path, reports_dir=reports_dir, run_id=run_id, con=con)
        return replace(done, source_path=str(audio_path), duration_s=computed.duration_s)
    db.write_session(con, analysis, run_id=run_id, pipeline_version=PIPELINE_VERSION)
    stage[0] = "summary"
    summary_path, html_path, lines = write_summary_in(con, meta.session_id, reports_dir, run_id)
    retention = ""
    if not keep_audio:
        stage[0] = "retention"
        retention = "; " + apply_retention(audio_path, sha, meta.session_id, db_path, run_id, con=con)
    return SessionOutcome("processed", str(audio_path), meta.session_id, sha, summary_path=summary_path,
                          report_path=html_path, headline=lines, duration_s=computed.duration_s,
                          message=f"stored in {db_path}, summary at {summary_path}{retention}")


def store_session(computed: Computed, audio_path: Path, meta: SessionMeta, *, db_path: Path, reports_dir: Path,
                  run_id: str, force: bool, keep_audio: bool = True, log: Any = None,
                  keep_pending: bool = True, record: bool = False, flow_handle: str | None = None,
                  note: str = "") -> SessionOutcome:
    """Write what :func:`compute_session` produced (one transaction), its summary and report, then retention.

    One connection for all of it: the skip test is repeated at write time (another recording of the same
    batch may have stored this audio meanwhile; a skipped session's missing files are written again), then
    the write, the report rows and, with ``record``, the end state in ``run_items`` (with the session flow's
    ``flow_handle``; ``note`` is added to a processed recording's message). When the database stays locked by
    another process past the wait (``ALLIANCE_DB_LOCK_WAIT_S``, default 60 s), the computed result is kept
    as a pending file (:mod:`pipeline.storage.pending`; not with ``keep_pending=False``) and the end state
    is *failed* at ``storage`` with code ``database_locked`` and the file's path: the next run stores it.
    Never raises for a bad recording: the returned end state says why.
    """
    analysis = computed.analysis

    def finished(outcome: SessionOutcome) -> SessionOutcome:
        outcome = replace(outcome, wall_s=computed.wall_s)
        return replace(outcome, message=f"{outcome.message}; {note}") if outcome.state == "processed" and note \
            else outcome

    def recorded(outcome: SessionOutcome) -> SessionOutcome:  # in a connection of its own
        outcome = finished(outcome)
        return record_outcome(db_path, run_id, outcome, source_path=str(audio_path), session_id=meta.session_id,
                              flow_handle=flow_handle) if record else outcome

    if computed.outcome is not None or analysis is None:
        return recorded(computed.outcome or SessionOutcome(
            "failed", str(audio_path), meta.session_id, stage="compute", error_code="unexpected",
            message="nothing was computed"))
    stage, sha = ["storage"], analysis.audio_sha256
    try:
        with DB_LOCK, db.open(db_path) as con:
            try:
                outcome = _store_in(con, computed, audio_path, meta, db_path=db_path, reports_dir=reports_dir,
                                    run_id=run_id, force=force, keep_audio=keep_audio, log=log, stage=stage)
            except Exception as e:  # noqa: BLE001 - a storage or report failure: the end state says which stage
                outcome = outcome_for_error(e, source_path=str(audio_path), session_id=meta.session_id,
                                            audio_sha256=sha, stage=stage[0], duration_s=computed.duration_s)
            outcome = finished(outcome)
            if not record:
                return outcome
            try:  # the end state in the same connection
                record_item_in(con, run_id, outcome, source_path=str(audio_path), session_id=meta.session_id,
                               flow_handle=flow_handle)
                return outcome
            except Exception:  # noqa: BLE001, S110 - a connection a failed step left unusable: a new one below
                pass
        return record_outcome(db_path, run_id, outcome, source_path=str(audio_path), session_id=meta.session_id,
                              flow_handle=flow_handle)
    except DatabaseLockedError as e:
        if not keep_pending:
            outcome = outcome_for_error(e, source_path=str(audio_path), session_id=meta.session_id,
                                        audio_sha256=sha, stage="storage", duration_s=computed.duration_s)
            return replace(outcome, wall_s=computed.wall_s)  # the pending file stays; nothing to record now
        kept = pending.save(db_path, pending.PendingSession(
            analysis, str(audio_path), str(reports_dir), keep_audio, force, run_id, computed.duration_s,
            pending.now_iso()))
        return recorded(SessionOutcome(
            "failed", str(audio_path), meta.session_id, sha, stage="storage", error_code=e.code,
            message=f"{e}; the computed result is kept in {kept} and stored by the next run on this database "
                    f"(or `alliance db flush-pending --db {db_path}`): nothing is computed again",
            duration_s=computed.duration_s))
    except Exception as e:  # noqa: BLE001 - the database could not be opened at all
        return recorded(outcome_for_error(e, source_path=str(audio_path), session_id=meta.session_id,
                                          audio_sha256=sha, stage="storage", duration_s=computed.duration_s))


def start_run(db_path: Path, run_id: str, *, models: dict, command: str, log: Any = None) -> list[str]:
    """Record a run as started in ``pipeline_runs`` (with this process's id and host).

    First, runs left ``running`` by a process that is gone (killed) are closed as ``interrupted``
    (:func:`pipeline.storage.db.close_stale_runs`); their ids are returned. Call with the run lock held.
    """
    with DB_LOCK, db.open(db_path) as con:
        stale = db.close_stale_runs(con)
        db.start_run(con, run_id=run_id, pipeline_version=PIPELINE_VERSION, models=models, command=command)
    if stale:
        (log or _LOG).warning("%d earlier run(s) left running by a process that is gone: closed as interrupted",
                              len(stale))
    return stale


def finish_run(db_path: Path, run_id: str, *, status: str = "finished") -> None:
    """Close a run (``finished``, ``interrupted`` or ``failed``).

    A database still locked leaves it open (the next run closes it as interrupted).
    """
    try:
        with DB_LOCK, db.open(db_path) as con:
            db.finish_run(con, run_id=run_id, status=status)
    except DatabaseLockedError:
        _LOG.warning("the run could not be closed: the database stayed locked")


def record_item_in(con: Any, run_id: str, outcome: SessionOutcome, *, source_path: str, session_id: str | None,
                   flow_handle: str | None = None) -> None:
    """One recording's end state as a ``run_items`` row, in an open connection."""
    db.record_item(con, run_id=run_id, source_path=source_path, state=outcome.state, session_id=session_id,
                   audio_sha256=outcome.audio_sha256,
                   stage=outcome.stage if outcome.state in ("failed", "refused") else None,
                   error_code=outcome.error_code, message=outcome.message, flow_handle=flow_handle)


def record_outcome(db_path: Path, run_id: str, outcome: SessionOutcome, *, source_path: str,
                   session_id: str | None, finish_run: bool = False, flow_handle: str | None = None) -> SessionOutcome:
    """Record one recording's end state in ``run_items`` (and, for a single-recording run, finish the run).

    ``flow_handle`` is the session flow's handle (its Prefect flow run's only parameter), kept so a
    withdrawal deletes exactly those flow runs. A database still locked after the wait leaves the end
    state unrecorded (the returned outcome says so; a pending result is recorded when it is stored).
    """
    try:
        with DB_LOCK, db.open(db_path) as con:
            record_item_in(con, run_id, outcome, source_path=source_path, session_id=session_id,
                           flow_handle=flow_handle)
            if finish_run:
                db.finish_run(con, run_id=run_id, status="finished")
    except DatabaseLockedError:
        _LOG.warning("end state not recorded in run_items: the database stayed locked")
        return replace(outcome, message=f"{outcome.message} (not recorded in run_items: the database stayed "
                                        "locked; the run is closed as interrupted by the next run)")
    return outcome


def flush_pending(db_path: Path, run_id: str, *, log: Any = None) -> list[SessionOutcome]:
    """Store the results kept while the database was locked (:mod:`pipeline.storage.pending`), oldest first.

    Each is stored as :func:`store_session` would have (skip test, one transaction, summary and report,
    retention) under ``run_id``, and its end state recorded in ``run_items``. A result whose consent was
    withdrawn meanwhile, or that another run stored meanwhile, is discarded, never stored; one that
    still cannot be written (the database locked again) stays for the next run. Call with the run lock held.
    """
    log = log or _LOG
    outcomes: list[SessionOutcome] = []
    for path in pending.list_pending(db_path):
        try:
            item = pending.load(path)
        except Exception as e:  # noqa: BLE001 - an unreadable file stays; the command reports it
            log.warning("a pending result could not be read (%s); left in place", type(e).__name__)
            continue
        meta = item.analysis.meta
        computed = Computed(item.analysis, None, os.getpid(), item.duration_s, 0.0)
        outcome = store_session(computed, Path(item.audio_path), meta, db_path=db_path,
                                reports_dir=Path(item.reports_dir), run_id=run_id, force=item.force,
                                keep_audio=item.keep_audio, log=log, keep_pending=False)
        if outcome.state == "failed" and outcome.stage == "storage" and outcome.error_code != "duplicate":
            log.warning("a pending result could not be stored yet (%s); kept for the next run", outcome.error_code)
            if outcome.error_code == "database_locked":
                break
            continue
        pending.discard(path)
        outcome = replace(outcome, message=f"{outcome.message} [from the result computed by run "
                                           f"{item.computed_by_run} and kept while the database was locked]")
        outcomes.append(record_outcome(db_path, run_id, outcome, source_path=item.audio_path,
                                       session_id=meta.session_id))
    if outcomes:
        log.info("%d pending result(s) stored", len(outcomes))
    return outcomes
