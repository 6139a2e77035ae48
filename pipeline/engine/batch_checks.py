"""A batch's checks before Prefect or any model starts, and the end states they reach.

``alliance batch`` (and the batch flow when a deployment runs it) checks every item in one opening of the
database: the manifest row, consent, the file's check and SHA-256 (:func:`pipeline.engine.sequence.precheck`),
the skip test, and a second row with the same audio as an earlier one. An item that ends there (refused,
skipped, failed) never reaches a model; a batch whose items all end there never starts Prefect. The
checks of the items that go on are handed to the flow under an opaque handle (:func:`register`), so the
file is not hashed again and no path or id enters Prefect's records. The store step repeats the skip and
withdrawal test (another run, or a withdrawal, may come in between).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from pipeline.engine import sequence
from pipeline.engine.handles import InProcessRegistry
from pipeline.engine.manifest import BatchItem
from pipeline.engine.outcome import SessionOutcome, outcome_for_error
from pipeline.storage import db
from pipeline.storage.integrity import check_blocks


@dataclass(frozen=True)
class BatchReport:
    run_id: str
    outcomes: tuple[SessionOutcome, ...]
    wall_s: float

    def count(self, state: str) -> int:
        return sum(1 for o in self.outcomes if o.state == state)


@dataclass(frozen=True)
class BatchChecks:
    """Every item of a batch with its precheck (None for an item with a manifest problem), in batch order."""

    items: tuple[BatchItem, ...]
    prechecks: tuple[sequence.Prechecked | None, ...]

    def runnable(self) -> list[tuple[BatchItem, sequence.Prechecked]]:
        """The items that go on to the models, with the precheck that let them through."""
        return [(item, pre) for item, pre in zip(self.items, self.prechecks, strict=True)
                if pre is not None and pre.outcome is None]

    def ended(self) -> list[tuple[BatchItem, SessionOutcome | None]]:
        """The items that end in the checks: a manifest problem (None) or the precheck's end state."""
        return [(item, None if pre is None else pre.outcome) for item, pre in zip(self.items, self.prechecks,
                                                                                  strict=True)
                if pre is None or pre.outcome is not None]


def check_batch(items: list[BatchItem], *, db_path: Path, force: bool) -> BatchChecks:
    """Precheck every item in one opening of the database (created and checked as ``alliance process`` does).

    A second item with the same audio (SHA-256) as an earlier one of the batch ends *failed* with code
    ``duplicate``, as the same audio already stored under another session id does.

    Raises
    ------
    StorageError
        The database cannot be opened or read.
    """
    prechecks: list[sequence.Prechecked | None] = []
    first_with: dict[str, int] = {}
    with sequence.DB_LOCK, db.open(db_path) as con:
        con.execute("SELECT count(*) FROM sessions").fetchone()
        check_blocks(con, name=db_path.name)
        for n, item in enumerate(items, start=1):
            if item.problem is not None or item.audio_path is None or item.meta is None:
                prechecks.append(None)
                continue
            pre = sequence.precheck(item.audio_path, item.meta, item.consent, db_path=db_path, force=force, con=con)
            sha = pre.checked.sha256 if pre.checked is not None else None
            if pre.outcome is None and sha is not None:
                if sha in first_with:
                    earlier = items[first_with[sha] - 1]
                    sid = earlier.meta.session_id if earlier.meta else None
                    pre = sequence.Prechecked(None, SessionOutcome(
                        "failed", str(item.audio_path), item.meta.session_id, sha, stage="storage",
                        error_code="duplicate", message=f"the same audio (SHA-256) as item {first_with[sha]} of "
                        f"this batch (session {sid!r}): processed once, under that session id"), pre.checked)
                else:
                    first_with[sha] = n
            prechecks.append(pre)
    return BatchChecks(tuple(items), tuple(prechecks))


def manifest_failure(item: BatchItem) -> SessionOutcome:
    """The end state of an item with a manifest problem (``failed`` at ``manifest``, or ``audio`` for a FIFO)."""
    stage = "audio" if item.problem_code.startswith("audio_") else "manifest"  # e.g. a FIFO named x.wav
    return SessionOutcome("failed", item.source, item.meta.session_id if item.meta else None,
                          stage=stage, error_code=item.problem_code, message=item.problem or "")


def record_ended(checks: BatchChecks, *, db_path: Path, reports_dir: Path, run_id: str,
                 done: Callable[[SessionOutcome], None]) -> None:
    """Record the end state of every item that ended in the checks under ``run_id``; ``done`` gets each.

    A skipped session whose summary or report is missing gets them written again
    (:func:`pipeline.engine.sequence.complete_outputs`).
    """
    for item, outcome in checks.ended():
        if outcome is None:
            failure = manifest_failure(item)
            done(sequence.record_outcome(db_path, run_id, failure, source_path=item.source,
                                         session_id=failure.session_id))
            continue
        assert item.meta is not None
        try:
            outcome = sequence.complete_outputs(outcome, db_path=db_path, reports_dir=reports_dir, run_id=run_id)
        except Exception as e:  # noqa: BLE001 - the session is stored; its files could not be written
            outcome = outcome_for_error(e, source_path=str(item.audio_path), session_id=item.meta.session_id,
                                        audio_sha256=outcome.audio_sha256, stage="summary")
        done(sequence.record_outcome(db_path, run_id, replace(outcome, source_path=str(item.audio_path)),
                                     source_path=str(item.audio_path), session_id=item.meta.session_id))


def batch_command(source: str | Path, *, workers: int, engine: str) -> str:
    """The batch's line in ``pipeline_runs.command`` (cut to its first word when a session of it is erased)."""
    return f"batch {source} (workers={workers}, engine={engine})"


_CHECKS: InProcessRegistry[BatchChecks] = InProcessRegistry(
    "b", "no batch checks registered under handle {handle} in this process")


def register(checks: BatchChecks) -> str:
    """Keep a command's checks under a random handle, the batch flow's ``checks`` parameter (not its contents)."""
    return _CHECKS.register(checks)


def take(handle: str) -> BatchChecks:
    """The checks registered under ``handle``, forgotten here.

    Raises
    ------
    ConfigError
        Nothing is registered under it in this process (the checks are handed on in-process only).
    """
    return _CHECKS.pop(handle)
