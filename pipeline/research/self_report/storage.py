"""The DuckDB side of a self-report import: what is already stored, and writing a validated import.

:func:`known_from_db` reads what an import is checked against (sessions, administrations already imported);
:func:`store_import` writes an :class:`~pipeline.research.self_report.validation.ImportReport`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

import duckdb
import pandas as pd

from pipeline.research.self_report.instruments import Instrument, item_score
from pipeline.research.self_report.validation import ImportReport, KnownSessions, duplicate_key
from pipeline.storage.db import insert_frame

#: Default linking window (days) between an administration's date and its session's.
DEFAULT_LINK_WINDOW_DAYS = 3


def known_from_db(con: duckdb.DuckDBPyConnection, *, today: dt.date | None = None,
                  window_days: int = DEFAULT_LINK_WINDOW_DAYS) -> KnownSessions:
    """Sessions and already-imported administrations in the database (keyed by :func:`duplicate_key`)."""
    sessions = {sid: (cid, day) for sid, cid, day in
                con.execute("SELECT session_id, client_id, recorded_on FROM sessions").fetchall()}
    existing = {duplicate_key(inst, cid, sid, day, tp): imp for inst, cid, sid, day, tp, imp in con.execute(
        "SELECT instrument, client_id, session_id, administered_on, timepoint, import_id "
        "FROM self_report_administrations ORDER BY import_id").fetchall()}
    return KnownSessions(sessions, existing, today or dt.date.today(), window_days)


def new_import_id() -> str:
    import uuid

    return f"import-{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:8]}"


def store_import(con: duckdb.DuckDBPyConnection, report: ImportReport, *, import_id: str, sha256: str,
                 instruments: Mapping[str, Instrument], command: str,
                 link_window_days: int = DEFAULT_LINK_WINDOW_DAYS) -> None:
    """Write the import's administrations, items, scores and problems in one transaction (all or nothing)."""
    from pipeline import PIPELINE_VERSION
    from pipeline.storage.db import transaction

    adm_rows, item_rows, score_rows = [], [], []
    for n, a in enumerate(report.administrations, 1):
        aid = f"{import_id}-{n:05d}"
        inst = instruments[a.instrument]
        n_answered = sum(1 for v in a.values if item_score(inst, v.item, v.raw) is not None)
        adm_rows.append((aid, import_id, a.instrument, a.client_id, a.session_id, a.administered_on, a.timepoint,
                         len(inst.items), n_answered, a.status, a.note or None, a.link_rule, a.link_distance_days))
        for v in a.values:
            item_rows.append((aid, import_id, a.instrument, v.item, v.raw, item_score(inst, v.item, v.raw),
                              v.missing_code, v.line))
        for s in a.scores:
            score_rows.append((aid, import_id, a.instrument, s.scale, s.value, s.n_items, s.n_answered, s.prorated,
                               s.note or None))
    frames = {
        "self_report_administrations": pd.DataFrame(adm_rows, columns=[
            "administration_id", "import_id", "instrument", "client_id", "session_id", "administered_on",
            "timepoint", "n_items", "n_answered", "status", "note", "link_rule", "link_distance_days"]),
        "self_report_items": pd.DataFrame(item_rows, columns=[
            "administration_id", "import_id", "instrument", "item", "raw_value", "item_score", "missing_code",
            "source_line"]),
        "self_report_scores": pd.DataFrame(score_rows, columns=[
            "administration_id", "import_id", "instrument", "scale", "value", "n_items", "n_answered", "prorated",
            "note"]),
        "self_report_import_errors": pd.DataFrame(
            [(import_id, i.line, i.field, i.value, i.code, i.message) for i in report.issues],
            columns=["import_id", "line", "field", "value", "code", "message"]),
    }
    used = sorted({a.instrument for a in report.administrations} | set(report.instruments))
    with transaction(con):
        con.execute(
            "INSERT INTO self_report_imports (import_id, source_path, source_sha256, file_format, instruments,"
            " lines_read, values_read, values_accepted, values_rejected, administrations, pipeline_version,"
            " imported_at, command, link_window_days) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, now(), ?, ?)",
            [import_id, report.source, sha256, report.file_format, ",".join(used), report.lines_read,
             report.values_read, report.values_accepted, report.values_rejected, len(report.administrations),
             PIPELINE_VERSION, command, link_window_days])
        for key in used:
            inst = instruments[key]
            con.execute(
                "INSERT INTO self_report_instruments (import_id, instrument, name, source, kind, scoring,"
                " concern_below, reliable_change, definition) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [import_id, key, inst.name, inst.source, inst.kind, inst.scoring, inst.concern_below,
                 inst.reliable_change, inst.to_json()])
        for table, frame in frames.items():
            insert_frame(con, table, frame)
