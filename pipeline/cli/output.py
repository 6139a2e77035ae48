"""Output conventions shared by the ``alliance`` commands: ``--json``, ``--quiet``, ``--verbose`` and progress.

- ``--json``: one JSON object per result on standard output (one line each, keys sorted and always present,
  ``null`` where a value does not apply); progress lines then go to standard error, so standard output
  stays machine-readable. The keys of each kind of result are listed below and in the README ("Output").
- ``--quiet``: no progress lines, only the results (and errors on standard error).
- ``--verbose``: also Prefect's own log lines (its engine's INFO lines and links to its local server, which
  is gone when the command has ended); without it only Prefect's warnings and errors reach the terminal.

Everything here is a pure function of its arguments, except the printing helpers, which only print.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import sys
import time
from collections.abc import Iterable
from pathlib import Path

#: The keys of every ``--json`` object, by kind (stable: a key is added, never renamed or removed).
OUTCOME_KEYS = ("kind", "state", "session_id", "source", "stage", "error_code", "message", "audio_sha256",
                "duration_s", "flow_s", "wall_s", "database", "summary_path", "report_path", "headline")
BATCH_KEYS = ("kind", "run_id", "recordings", "processed", "skipped", "refused", "failed", "wall_s", "flow_s",
              "database")
SUMMARY_KEYS = ("kind", "session_id", "client_id", "therapist_id", "recorded_on", "duration_s", "markers_version",
                "pipeline_version", "indicators", "quality_flags", "markdown")
MODEL_KEYS = ("kind", "key", "ok", "description", "used_for", "licence", "sources", "derived_from", "files",
              "folder", "problem")
AUDIT_KEYS = ("kind", "occurred_at", "actor", "role", "action", "session_ids", "run_id", "detail")


def add_output_arguments(p: argparse.ArgumentParser, *, progress: bool = True) -> None:
    """``--json`` and, for commands that print progress, ``--quiet`` and ``--verbose``."""
    p.add_argument("--json", action="store_true",
                   help="print one JSON object per result (stable keys, see README 'Output'); progress goes to "
                   "standard error")
    if progress:
        level = p.add_mutually_exclusive_group()
        level.add_argument("--quiet", "-q", action="store_true",
                           help="print no progress, only the result (errors still go to standard error)")
        level.add_argument("--verbose", "-v", action="store_true",
                           help="also show Prefect's own log lines (off by default)")


def json_line(kind: str, keys: Iterable[str], **values: object) -> str:
    """One JSON object on one line: every key of ``keys`` present (None where not given), sorted."""
    keys = tuple(keys)
    unknown = set(values) - set(keys)
    if unknown:
        raise ValueError(f"keys not declared for {kind}: {sorted(unknown)}")
    obj = {k: values.get(k) for k in keys}
    obj["kind"] = kind
    return json.dumps(obj, sort_keys=True, default=str, ensure_ascii=False)


#: Shortest file stem replaced in terminal output (a shorter one would also hit ordinary words: "a", "t1").
MIN_STEM_CHARS = 3


def file_spellings(path: str | Path, *, keep: str | None = None) -> tuple[str, ...]:
    """How a file's name can appear in a message: as given, resolved, its name and (3+ characters) its stem.

    ``keep`` is a spelling left alone (the session id, printed anyway, when a file is named after it).
    """
    p = Path(path)
    found = [str(path), str(p), p.name]
    try:
        found.append(str(p.resolve()))
    except (OSError, RuntimeError):
        pass
    if len(p.stem) >= MIN_STEM_CHARS:
        found.append(p.stem)
    return tuple(dict.fromkeys(f for f in found if f and f != keep and f not in (".", "..")))


def without_names(text: str | None, names: dict[str, str]) -> str | None:
    """``text`` with every spelling in ``names`` replaced by its neutral handle (longest first, whole words).

    Users name recordings and transcripts after their clients: terminal output (progress, results, errors)
    prints a neutral handle (``item 3``, the session id given) instead of a file's name, path or stem.
    """
    if not text or not names:
        return text
    spellings = sorted(names, key=len, reverse=True)
    pattern = re.compile("|".join(rf"(?<![\w.-]){re.escape(s)}(?![\w-])" for s in spellings))
    return pattern.sub(lambda m: names[m.group(0)], text)


def outcome_json(outcome, *, db_path: str | Path, wall_s: float | None) -> str:
    """A recording's end state as one ``--json`` line (kind ``recording``).

    ``source`` is the recording's neutral handle (``item 3``), never its file name: callers pass the outcome
    with its ``source_path`` and ``message`` made neutral (:func:`without_names`).
    """

    def resolved(p: str | None) -> str | None:
        return str(Path(p).resolve()) if p else None

    return json_line(
        "recording", OUTCOME_KEYS, state=outcome.state, session_id=outcome.session_id, source=outcome.source_path,
        stage=outcome.stage, error_code=outcome.error_code, message=outcome.message or None,
        audio_sha256=outcome.audio_sha256, duration_s=outcome.duration_s, flow_s=outcome.wall_s,
        wall_s=None if wall_s is None else round(wall_s, 2), database=str(Path(db_path).resolve()),
        summary_path=resolved(outcome.summary_path), report_path=resolved(outcome.report_path),
        headline=list(outcome.headline))


def model_json(row) -> str:
    """A model's state as one ``--json`` line (kind ``model``)."""
    spec = row.spec
    return json_line(
        "model", MODEL_KEYS, key=spec.key, ok=bool(row.ok), description=spec.description, used_for=spec.role,
        licence=spec.licence, sources=list(spec.packages), derived_from=spec.derived_from,
        files=[{"name": f.name, "sha256": f.sha256 or None} for f in spec.files],
        folder=str(row.folder) if row.folder else None, problem=row.problem or None)


class Progress:
    """Progress lines with the seconds since the command started: ``[  3 s] loading the models``.

    ``stream`` None prints nothing (``--quiet``).
    """

    def __init__(self, stream, *, started: float | None = None) -> None:
        self.stream = stream
        self.started = time.perf_counter() if started is None else started

    @classmethod
    def for_args(cls, args: argparse.Namespace, *, started: float | None = None) -> Progress:
        if getattr(args, "quiet", False):
            return cls(None, started=started)
        return cls(sys.stderr if getattr(args, "json", False) else sys.stdout, started=started)

    def elapsed(self) -> float:
        return time.perf_counter() - self.started

    def __call__(self, message: str) -> None:
        if self.stream is not None:
            print(f"[{self.elapsed():3.0f} s] {message}", file=self.stream, flush=True)


#: Prefect's setting for the level of its console log handler (its API handler is separate).
PREFECT_CONSOLE_LEVEL = "PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL"


def quiet_prefect_console(verbose: bool) -> None:
    """Unless ``verbose``, Prefect's console shows only warnings and errors (its logs still reach its API).

    Set before Prefect is imported (it reads its logging settings once); a value the user set wins.
    """
    if not verbose:
        os.environ.setdefault(PREFECT_CONSOLE_LEVEL, "WARNING")


_OURS = (os.sep + "pipeline" + os.sep, os.sep + "flows" + os.sep)


class StageLines(logging.Handler):
    """Pass this package's own run-log lines (stage progress) to a :class:`Progress`, not Prefect's.

    The stages log through Prefect's run loggers (so the lines reach Prefect's UI); with Prefect's console
    quiet, this handler prints the lines logged from the package's own files (``pipeline/``, ``flows/``).
    """

    def __init__(self, progress: Progress) -> None:
        super().__init__(logging.INFO)
        self.progress = progress

    def emit(self, record: logging.LogRecord) -> None:
        if record.levelno < logging.WARNING and any(part in record.pathname for part in _OURS):
            try:
                self.progress(record.getMessage())
            except Exception:  # noqa: BLE001 - a progress line must never break a run
                self.handleError(record)


def attach_stage_lines(progress: Progress) -> StageLines | None:
    """Print the stages' own log lines as progress (after Prefect configured its loggers); None if quiet."""
    if progress.stream is None:
        return None
    handler = StageLines(progress)
    for name in ("prefect.flow_runs", "prefect.task_runs"):
        logging.getLogger(name).addHandler(handler)
    return handler


def detach_stage_lines(handler: StageLines | None) -> None:
    if handler is not None:
        for name in ("prefect.flow_runs", "prefect.task_runs"):
            logging.getLogger(name).removeHandler(handler)


def summary_json(summary, markdown: str) -> str:
    """A session's summary as one ``--json`` line (kind ``summary``).

    ``indicators`` is a list of ``{"name", "role", "value", "grade"}`` (role null for session-level values),
    sorted by name and role; ``quality_flags`` the codes of the raised quality flags; ``markdown`` the text
    ``alliance summary`` prints without ``--json``.
    """
    s, grades = summary.session, summary.grades or {}
    ordered = sorted(summary.indicators.items(), key=lambda kv: (kv[0][0], kv[0][1] or ""))
    indicators = [{"name": name, "role": role, "value": value, "grade": grades.get(name)}
                  for (name, role), value in ordered]
    flags = [f["code"] for f in (summary.quality or {}).get("flags") or []]
    return json_line(
        "summary", SUMMARY_KEYS, session_id=s.get("session_id"), client_id=s.get("client_id"),
        therapist_id=s.get("therapist_id"), recorded_on=s.get("recorded_on"), duration_s=s.get("duration_s"),
        markers_version=s.get("markers_version"), pipeline_version=s.get("pipeline_version"),
        indicators=indicators, quality_flags=flags, markdown=markdown)


def audit_json(occurred_at, actor, role, action, session_ids, run_id, detail) -> str:
    """An audit event as one ``--json`` line (kind ``audit_event``; ``occurred_at`` in ISO 8601)."""
    return json_line("audit_event", AUDIT_KEYS, occurred_at=occurred_at.isoformat() if occurred_at else None,
                     actor=actor, role=role, action=action, session_ids=list(session_ids or []), run_id=run_id,
                     detail=detail)


def batch_json(report, *, db_path: str | Path, wall_s: float) -> str:
    """A batch's totals as one ``--json`` line (kind ``batch``), after one ``recording`` line per recording.

    ``wall_s`` is the whole command's time; ``flow_s`` the batch flow's own.
    """
    return json_line("batch", BATCH_KEYS, run_id=report.run_id, recordings=len(report.outcomes),
                     processed=report.count("processed"), skipped=report.count("skipped"),
                     refused=report.count("refused"), failed=report.count("failed"),
                     wall_s=round(wall_s, 2), flow_s=report.wall_s, database=str(Path(db_path).resolve()))
