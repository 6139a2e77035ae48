"""Arguments shared by the ``alliance`` commands: the database, the acting person and the viewer's role.

Access roles (README, "Privacy and security"): a *clinician* reads summaries and reports of their own
clients' sessions (``--therapist``); a *supervisor* reads any session's; an *admin* everything.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import re

from pipeline.errors import AccessDeniedError, ConfigError

DEFAULT_DB = "alliance.duckdb"
#: Environment variable giving the default of ``--db`` (the key files have theirs: ``ALLIANCE_DB_KEY_FILE``,
#: ``ALLIANCE_STUDY_KEY_FILE``).
DB_ENV = "ALLIANCE_DB"
VIEWER_ROLES = ("clinician", "supervisor", "admin")


def _whole_number(text: str, *, minimum: int) -> int:
    try:
        value = int(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from e
    if value < minimum:
        raise argparse.ArgumentTypeError(f"{value} is not at least {minimum}" if minimum else f"{value} is negative")
    return value


def positive_int(text: str) -> int:
    """An integer >= 1 for argparse (``--limit``, counts)."""
    return _whole_number(text, minimum=1)


def non_negative_int(text: str) -> int:
    """An integer >= 0 for argparse (``--link-window-days``)."""
    return _whole_number(text, minimum=0)


def iso_date(text: str) -> dt.date:
    """An ISO date (YYYY-MM-DD) for argparse."""
    try:
        return dt.date.fromisoformat(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(f"{text!r} is not an ISO date (YYYY-MM-DD)") from e


def default_db() -> str:
    """The default of ``--db``: ``$ALLIANCE_DB`` if set (and not empty), else ``alliance.duckdb``."""
    return os.environ.get(DB_ENV) or DEFAULT_DB


def add_db_argument(p: argparse.ArgumentParser) -> None:
    p.add_argument("--db", default=default_db(), metavar="PATH",
                   help=f"DuckDB database file (default: ${DB_ENV}, else {DEFAULT_DB}; created if missing)")


def add_actor_argument(p: argparse.ArgumentParser) -> None:
    p.add_argument("--actor", metavar="NAME", help="who is acting, for the audit log (default: $ALLIANCE_ACTOR "
                   "or the operating-system user)")


def add_viewer_arguments(p: argparse.ArgumentParser) -> None:
    """``--role`` and ``--therapist`` for commands that show a session's content."""
    p.add_argument("--role", choices=VIEWER_ROLES, default="clinician",
                   help="clinician (default: only sessions of --therapist), supervisor or admin (any session)")
    p.add_argument("--therapist", metavar="ID", help="the clinician's therapist id (required for --role clinician)")
    add_actor_argument(p)


def denied(con, session_ids: list[str], args: argparse.Namespace, reason: str) -> AccessDeniedError:
    """Record a refused access in the audit log (action ``denied``) and return the error to raise.

    The audit row holds who asked (``--actor``), the role claimed, the session ids and the reason. A
    connection that cannot write (read-only) still refuses; the refusal is then not logged.
    """
    import duckdb

    from pipeline.storage import audit

    try:
        audit.record(con, action="denied", actor=audit.current_actor(getattr(args, "actor", None)),
                     role=getattr(args, "role", None), session_ids=session_ids, detail=reason)
    except duckdb.Error:
        pass
    return AccessDeniedError(reason)


def check_viewer(con, session_id: str, args: argparse.Namespace) -> None:
    """Refuse a clinician who is not the session's therapist (the message does not reveal whose it is).

    Every refusal is written to the audit log (action ``denied``).
    """
    from pipeline.storage.db import require_session

    session = require_session(con, session_id)
    if args.role == "clinician":
        if not args.therapist:
            raise denied(con, [session_id], args, "a clinician must name themselves with --therapist ID "
                                                  "(or use --role supervisor)")
        if session["therapist_id"] != args.therapist:
            raise denied(con, [session_id], args,
                         f"session {session_id!r} is not a session of therapist {args.therapist!r}")


def add_language_argument(p: argparse.ArgumentParser) -> None:
    """``--language``: the recordings' language (default en, the lexicons' language), or ``auto`` to detect it."""
    p.add_argument("--language", default="en", metavar="CODE",
                   help="language of the recordings (default: en, the language the marker word lists support; "
                   "'auto' detects it over detected speech, but text markers only have English word lists)")


def language_option(value: str) -> str | None:
    """The ``TranscribeOptions.language`` for a ``--language`` value (``auto`` -> None: detect)."""
    return None if value.strip().lower() == "auto" else value.strip().lower()



ASR_BACKENDS = ("faster-whisper", "openai-whisper", "moonshine", "rover")


def add_stage_arguments(p: argparse.ArgumentParser) -> None:
    """The options of the stages, the same for ``process`` and ``batch`` (built by :func:`stage_options`)."""
    p.add_argument("--asr-backend", choices=ASR_BACKENDS, default="faster-whisper",
                   help="speech recognition backend: faster-whisper (default) and openai-whisper run the same Whisper "
                   "base weights (faster-whisper about 3x faster on CPU); moonshine decodes Moonshine base per speech "
                   "region with Whisper word alignment (slower; better on some real audio, worse on phone); rover "
                   "combines Whisper beam 5, Whisper greedy and Moonshine word by word (lowest word error rate in "
                   "degraded rooms, about 5x the CPU: docs/realistic_bench.md, 'System combination')")
    p.add_argument("--asr-beam-size", type=positive_int, default=None, metavar="N",
                   help="Whisper beam width (default 5; 1 is greedy decoding). Against greedy, 5 lowered the word "
                   "error rate in every degraded condition of the realistic bench (rooms, noise, phone, mp3, the "
                   "real sample) for about a third more ASR time (docs/realistic_bench.md, 'Beam 5 as the default')")
    p.add_argument("--asr-batch-size", type=positive_int, default=None, metavar="N",
                   help="faster-whisper only: decode speech chunks (cut at pauses by Silero VAD) N at a time "
                   "(BatchedInferencePipeline). About 25 %% less CPU; WER better in far, noisy and mp3 renders, "
                   "worse in clean, near and phone ones (docs/realistic_bench.md). Default: sequential")
    add_language_argument(p)
    p.add_argument("--segmentation-step", type=float, default=None,
                   help="diarization window step as a fraction of the 10 s window (smaller: slower, more accurate)")
    p.add_argument("--device", default="cpu", metavar="DEVICE",
                   help="cpu (default), cuda or cuda:N: run Whisper (float16) and pyannote on a GPU")
    p.add_argument("--sequential", action="store_true",
                   help="run transcription and diarization one after the other instead of at the same time")


def check_stage_arguments(args: argparse.Namespace) -> None:
    """The stage options' form, checked before anything heavy is imported (:func:`stage_options` builds them).

    Raises
    ------
    ConfigError
        A device that is not ``cpu``, ``cuda`` or ``cuda:N``, a segmentation step outside (0, 1], or ASR options
        that do not go together.
    """
    if not re.fullmatch(r"cpu|cuda(:\d+)?", args.device):  # checked fully (torch) when the options are built
        raise ConfigError(f"--device must be cpu, cuda or cuda:N; got {args.device!r}")
    if args.segmentation_step is not None and not 0 < args.segmentation_step <= 1:
        raise ConfigError(f"--segmentation-step must be in (0, 1]; got {args.segmentation_step!r}")
    if args.asr_batch_size is not None and args.asr_backend != "faster-whisper":
        raise ConfigError(f"--asr-batch-size needs --asr-backend faster-whisper, not {args.asr_backend}")
    if args.asr_beam_size is not None and args.asr_backend in ("moonshine", "rover"):
        raise ConfigError(f"--asr-beam-size does not apply to --asr-backend {args.asr_backend} (rover fixes its "
                          "parts' beams)")


def stage_options(args: argparse.Namespace, *, num_speakers: int | None = None, keep_audio: bool = True):
    """The :class:`~pipeline.engine.runtime.PipelineOptions` of :func:`add_stage_arguments`' values.

    Imports the stages' option classes (and torch, for the device check): call it after start-up began.
    """
    from dataclasses import replace

    from pipeline.asr.transcribe import TranscribeOptions
    from pipeline.diarization.diarize import DiarizeOptions
    from pipeline.engine.runtime import PipelineOptions, options_for_device

    diarize = DiarizeOptions() if num_speakers is None else DiarizeOptions(num_speakers=num_speakers)
    if args.segmentation_step is not None:
        diarize = replace(diarize, segmentation_step=args.segmentation_step)
    transcribe = TranscribeOptions(backend=args.asr_backend, language=language_option(args.language),
                                   batch_size=args.asr_batch_size)
    if args.asr_beam_size is not None:
        transcribe = replace(transcribe, beam_size=args.asr_beam_size)
    return options_for_device(args.device, PipelineOptions(transcribe=transcribe, diarize=diarize,
                                                           overlap_stages=not args.sequential,
                                                           keep_audio=keep_audio))
