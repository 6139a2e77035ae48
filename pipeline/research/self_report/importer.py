"""Import a self-report CSV: validate it (:mod:`.validation`), then store it (:mod:`.storage`).

The CSV layouts and the validation rules are described in :mod:`pipeline.research.self_report.validation`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Mapping, Sequence
from pathlib import Path

import duckdb

from pipeline.errors import SelfReportImportError, StorageError
from pipeline.research.self_report.instruments import Instrument
from pipeline.research.self_report.storage import (
    DEFAULT_LINK_WINDOW_DAYS,
    known_from_db,
    new_import_id,
    store_import,
)
from pipeline.research.self_report.validation import ImportReport, read_csv_lines, validate_rows, write_report_csv

__all__ = ["MAX_IMPORT_BYTES", "ImportReport", "import_file", "write_report_csv"]

#: Largest self-report file read (a hostile or mistaken file must not exhaust memory).
MAX_IMPORT_BYTES = 50 * 1024 * 1024


def import_file(con: duckdb.DuckDBPyConnection, path: Path | str, *, instrument: str | None,
                instruments: Mapping[str, Instrument], ignore_columns: Sequence[str] = (), dry_run: bool = False,
                command: str = "", today: dt.date | None = None,
                link_window_days: int = DEFAULT_LINK_WINDOW_DAYS) -> ImportReport:
    """Validate ``path`` against the database and, unless ``dry_run``, store it in one transaction.

    ``link_window_days``: a client-and-date line links to the client's session nearest in date within this many
    days (the distance is stored); a session-id line dated further than this from its session is rejected.

    Returns
    -------
    ImportReport
        With ``import_id`` set when stored.

    Raises
    ------
    SelfReportImportError
        The file cannot be read or its layout is not recognised (nothing stored).
    StorageError
        The write failed and was rolled back.
    """
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > MAX_IMPORT_BYTES:
            raise SelfReportImportError(f"{path} is {size} bytes, more than the {MAX_IMPORT_BYTES} a self-report "
                                        "file may have: split it")
        with path.open("rb") as f:
            sha256 = hashlib.file_digest(f, "sha256").hexdigest()
        # read row by row: only the current line and what validation keeps are in memory
        with path.open(encoding="utf-8", newline="") as f:
            header, rows = read_csv_lines(f, source=str(path))
            report = validate_rows(header, rows, instruments=instruments, instrument=instrument,
                                   known=known_from_db(con, today=today, window_days=link_window_days),
                                   ignore_columns=ignore_columns, source=str(path))
    except (OSError, UnicodeDecodeError) as e:
        raise SelfReportImportError(f"cannot read {path} as UTF-8 text: {e}") from e
    if dry_run:
        return report
    import_id = new_import_id()
    report = ImportReport(**{**report.__dict__, "import_id": import_id})
    try:
        store_import(con, report, import_id=import_id, sha256=sha256,
                     instruments=instruments, command=command, link_window_days=link_window_days)
    except duckdb.Error as e:
        raise StorageError(f"storing self-report from {path} failed and was rolled back: {e}") from e
    return report
