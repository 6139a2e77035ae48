"""The analysis-ready session table: one row per research-scope session, every indicator, self-report beside it.

``session_wide`` (a researcher relation, ``alliance query`` / ``alliance export``, and the Parquet file of
``alliance export --dataset DIR``) has, per research-scope session:

* keys and time: ``session_id``, ``client_id``, ``therapist_id``, ``recorded_on`` (DATE), ``session_number``
  (the client's research-scope sessions in date order, from 1), ``days_since_first`` (days since the client's
  first session), ``markers_version``, ``duration_s``;
* every indicator as a DOUBLE column, named as in ``indicators_wide``: ``<indicator>_<role>`` for
  role-specific values (``talk_time_share_client``), the bare name for session-level values
  (``long_silence_count``);
* every self-report measure linked to the session within the linking window: ``sr_<instrument>_<scale>``
  (plus ``_<timepoint>`` where the administration has one; ``-`` in a key becomes ``_``: ``sr_wai_sr_bond``),
  and per instrument (and timepoint) ``sr_<instrument>_link_days``: administration date minus session date
  (NULL: the line gave the session and no date).

A self-report administration counts as linked when it names the session (or its client and a date nearest this
session) and its date is at most ``window_days`` away from the session (default 3; the import already refuses
session lines further than its own window). Sessions with two scores of one measure are refused (see
``self_report_duplicates``) unless ``duplicates="latest"``. Two measures whose labels reduce to one column name
(timepoints ``post`` and ``Post``, ``follow-up`` and ``follow_up``) are refused with both labels named: one
column cannot hold both scores.

:func:`codebook` describes every column (variable, label, unit, definition, accuracy, evidence, markers
version): an indicator's two grades come from the ``indicator_definitions`` table where it has the indicator
(accuracy: how well the number is measured; evidence: what it is known to say about the alliance or outcome),
else ``not_measured`` and ``none_yet``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pandas as pd

from pipeline.errors import ExportError
from pipeline.storage.wide import KEY_COLUMNS, sync_indicators_wide, wide_columns

DEFAULT_WINDOW_DAYS = 3
_SAFE = re.compile(r"[^a-z0-9_]+")

KEY_DEFINITIONS: dict[str, tuple[str, str, str]] = {
    "session_id": ("session", "", "session identifier (a keyed pseudonym in researcher exports)"),
    "client_id": ("client", "", "client identifier (a keyed pseudonym in researcher exports)"),
    "therapist_id": ("therapist", "", "therapist identifier (a keyed pseudonym in researcher exports)"),
    "recorded_on": ("session date", "date", "date the session was recorded (a quasi-identifier)"),
    "session_number": ("session number", "count", "the client's research-scope sessions in date order, from 1"),
    "days_since_first": ("days since first session", "days", "recorded_on minus the client's first session date"),
    "markers_version": ("markers version", "", "version of the marker definitions the session was processed with"),
    "duration_s": ("duration", "s", "length of the recording"),
}


def _slug(text: str) -> str:
    return _SAFE.sub("_", text.lower()).strip("_")


def measure_column(instrument: str, scale: str, timepoint: str | None) -> str:
    """``sr_<instrument>_<scale>[_<timepoint>]`` with every character outside ``[a-z0-9_]`` as ``_``."""
    return "sr_" + "_".join(_slug(p) for p in (instrument, scale, timepoint or "") if p)


def link_column(instrument: str, timepoint: str | None) -> str:
    return "sr_" + "_".join(_slug(p) for p in (instrument, timepoint or "") if p) + "_link_days"


@dataclass(frozen=True)
class Measure:
    instrument: str
    scale: str
    timepoint: str | None
    name: str
    kind: str


def _linked_scores_sql(window_days: int) -> str:
    return ("SELECT r.session_id, r.instrument, r.scale, coalesce(r.timepoint, '') AS timepoint, r.value,"
            " r.link_distance_days, r.import_id, r.administration_id"
            " FROM self_report_scores_long r"
            " WHERE r.session_id IN (SELECT session_id FROM research_sessions) AND r.value IS NOT NULL"
            f" AND (r.link_distance_days IS NULL OR abs(r.link_distance_days) <= {int(window_days)})")


def measures(con: duckdb.DuckDBPyConnection, *, window_days: int = DEFAULT_WINDOW_DAYS) -> list[Measure]:
    """The self-report measures linked to research-scope sessions (instrument, scale, timepoint)."""
    rows = con.execute(
        f"SELECT DISTINCT s.instrument, s.scale, nullif(s.timepoint, ''), any_value(i.name), any_value(i.kind)"
        f" FROM ({_linked_scores_sql(window_days)}) s JOIN self_report_instruments i USING (instrument)"
        " GROUP BY ALL ORDER BY 1, 2, 3 NULLS FIRST").fetchall()
    return [Measure(*r) for r in rows]


def check_columns(found: list[Measure]) -> None:
    """Refuse measures whose labels reduce to one dataset column (one column cannot hold two scores).

    Raises
    ------
    ExportError
        Naming both measures (instrument, scale, timepoint) and the column they share.
    """
    def label(m: Measure) -> str:
        return f"{m.instrument}.{m.scale}" + (f" at timepoint {m.timepoint!r}" if m.timepoint else "")

    seen: dict[str, Measure] = {}
    links: dict[str, Measure] = {}
    for m in found:
        for column, owner, same in ((measure_column(m.instrument, m.scale, m.timepoint), seen,
                                     lambda a, b: (a.instrument, a.scale, a.timepoint) == (b.instrument, b.scale,
                                                                                           b.timepoint)),
                                    (link_column(m.instrument, m.timepoint), links,
                                     lambda a, b: (a.instrument, a.timepoint) == (b.instrument, b.timepoint))):
            other = owner.setdefault(column, m)
            if not same(other, m):
                raise ExportError(f"{label(other)} and {label(m)} both become dataset column {column!r}: one column "
                                  "cannot hold both scores. Re-import one of them under a label that differs in "
                                  "letters or digits (not only in case or punctuation)")


def _q(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def session_wide_sql(con: duckdb.DuckDBPyConnection, *, window_days: int = DEFAULT_WINDOW_DAYS,
                     duplicates: str = "refuse") -> str:
    """SQL of ``session_wide`` for the database as it is now.

    Its columns follow the stored indicators and measures. Call
    :func:`pipeline.storage.wide.sync_indicators_wide` first on a writable connection.

    Raises
    ------
    ExportError
        A session has two scores of one measure and ``duplicates`` is ``refuse``.
    """
    linked = _linked_scores_sql(window_days)
    dup = con.execute(f"SELECT session_id, instrument, scale, count(*) FROM ({linked}) GROUP BY session_id,"
                      " instrument, scale, timepoint HAVING count(*) > 1 ORDER BY 1 LIMIT 1").fetchone()
    if dup and duplicates == "refuse":
        raise ExportError(f"session {dup[0]!r} has {dup[3]} scores of {dup[1]}.{dup[2]}: a dataset row cannot hold "
                          "both. Remove the wrong import or pass --duplicates latest (see the view "
                          "self_report_duplicates)")
    if dup:
        linked = (f"SELECT * FROM ({linked}) QUALIFY row_number() OVER (PARTITION BY session_id, instrument, scale,"
                  " timepoint ORDER BY import_id DESC) = 1")
    ind_cols = wide_columns(con)
    cols = []
    links: dict[str, tuple[str, str]] = {}
    found = measures(con, window_days=window_days)
    check_columns(found)
    for m in found:
        tp = m.timepoint or ""
        cols.append(f"max(value) FILTER (WHERE instrument = {_q(m.instrument)} AND scale = {_q(m.scale)}"
                    f" AND timepoint = {_q(tp)}) AS \"{measure_column(m.instrument, m.scale, m.timepoint)}\"")
        links[link_column(m.instrument, m.timepoint)] = (m.instrument, tp)
    for col, (inst, tp) in links.items():
        cols.append(f"max(link_distance_days) FILTER (WHERE instrument = {_q(inst)} AND timepoint = {_q(tp)})"
                    f" AS \"{col}\"")
    sr = (f"SELECT session_id{''.join(', ' + c for c in cols)} FROM ({linked}) GROUP BY session_id" if cols
          else "SELECT NULL::VARCHAR AS session_id WHERE false")
    sr_cols = [measure_column(m.instrument, m.scale, m.timepoint) for m in found]
    sr_cols += list(links)
    select_ind = "".join(f', w."{c}"' for c in ind_cols)
    select_sr = "".join(f', r."{c}"' for c in sr_cols)
    return (
        "SELECT s.session_id, s.client_id, s.therapist_id, s.recorded_on,"
        " row_number() OVER (PARTITION BY s.client_id ORDER BY s.recorded_on NULLS LAST, s.session_id)"
        " AS session_number,"
        " date_diff('day', min(s.recorded_on) OVER (PARTITION BY s.client_id), s.recorded_on) AS days_since_first,"
        f" s.markers_version, s.duration_s{select_ind}{select_sr}"
        " FROM research_sessions s LEFT JOIN indicators_wide w USING (session_id)"
        f" LEFT JOIN ({sr}) r USING (session_id)")


def codebook(con: duckdb.DuckDBPyConnection, columns: list[str], *,
             window_days: int = DEFAULT_WINDOW_DAYS) -> pd.DataFrame:
    """One row per column of ``session_wide`` (columns :data:`CODEBOOK_COLUMNS`).

    Indicator rows read ``indicator_definitions`` (name, unit, definition and the two grades per markers
    version) where the table exists and has the indicator: ``accuracy`` is how well the number is measured
    (``synthetic_truth``, ``expert_codes``, ``realistic_bench``, ``model_labels``, ``not_measured``) and
    ``evidence`` what it is known to say about the alliance or outcome (``supported``, ``none_yet``,
    ``contradicted``), each with its figures and source in the ``_detail`` column. Otherwise the unit comes from
    the ``indicators`` table, the definition points to docs/data_dictionary.md, accuracy is ``not_measured`` and
    evidence ``none_yet``. Keys, scores and link distances have no grades.
    """
    versions = [v for (v,) in con.execute(
        "SELECT DISTINCT markers_version FROM research_sessions WHERE markers_version IS NOT NULL ORDER BY 1"
    ).fetchall()]
    markers = " + ".join(versions)
    defs: dict[str, tuple] = {}
    has_defs = con.execute("SELECT count(*) FROM information_schema.tables WHERE table_name = 'indicator_definitions'"
                           " AND table_catalog = current_database()").fetchone()[0]
    if has_defs:
        for name, unit, definition, acc, acc_fig, acc_src, ev, ev_note, ev_src, version in con.execute(
                "SELECT name, unit, definition, accuracy, accuracy_figure, accuracy_source, evidence, evidence_note,"
                " evidence_source, markers_version FROM indicator_definitions"
                " WHERE list_contains(?, markers_version) OR ? = 0 ORDER BY markers_version",
                [versions, len(versions)]).fetchall():
            defs[name] = (unit, definition, acc, _detail(acc_fig, acc_src), ev, _detail(ev_note, ev_src), version)
    units = {column_name_for(n, r): u for n, r, u in con.execute(
        "SELECT DISTINCT name, speaker_role, unit FROM indicators").fetchall()}
    names = {column_name_for(n, r): (n, r) for n, r in con.execute(
        "SELECT DISTINCT name, speaker_role FROM indicators").fetchall()}
    measure_by_col = {measure_column(m.instrument, m.scale, m.timepoint): m
                      for m in measures(con, window_days=window_days)}
    rows = []
    for col in columns:
        if col in KEY_DEFINITIONS:
            label, unit, definition = KEY_DEFINITIONS[col]
            rows.append([col, label, unit, definition, "", "", "", "", ""])
        elif col in measure_by_col:
            m = measure_by_col[col]
            tp = f" at {m.timepoint}" if m.timepoint else ""
            rows.append([col, f"{m.name}: {m.scale}{tp}", "points",
                         f"self-report {m.instrument} {m.scale} score (kind {m.kind}) of the administration linked to "
                         f"the session within {window_days} days", "", "", "", "", ""])
        elif col.startswith("sr_") and col.endswith("_link_days"):
            rows.append([col, "self-report link distance", "days", "administration date minus session date "
                         "(NULL: the import named the session and gave no date)", "", "", "", "", ""])
        else:
            name, role = names.get(col, (col, None))
            who = "session" if role is None else role
            d = defs.get(name)
            if d:
                unit, definition, acc, acc_detail, ev, ev_detail, version = d
                rows.append([col, f"{name} ({who})", unit or units.get(col, ""), definition, acc, acc_detail, ev,
                             ev_detail, version])
            else:
                rows.append([col, f"{name} ({who})", units.get(col, ""), "see docs/data_dictionary.md",
                             "not_measured", "", "none_yet", "", markers])
    return pd.DataFrame(rows, columns=CODEBOOK_COLUMNS)


CODEBOOK_COLUMNS = ["variable", "label", "unit", "definition", "accuracy", "accuracy_detail", "evidence",
                    "evidence_detail", "markers_version"]


def _detail(text: str | None, source: str | None) -> str:
    """A figure or note with its source in brackets ('' when neither is known)."""
    return "; ".join(x for x in (text, f"source: {source}" if source else "") if x)


def column_name_for(name: str, role: str | None) -> str:
    from pipeline.storage.wide import column_name

    return column_name(name, role)


@dataclass(frozen=True)
class Dataset:
    #: The data file: ``sessions.parquet`` or ``sessions.csv``.
    data: Path
    codebook: Path
    rows: int
    columns: int

    @property
    def parquet(self) -> Path:  # the name before CSV datasets existed
        return self.data


def write_dataset(con: duckdb.DuckDBPyConnection, out_dir: Path | str, *, key: bytes | None,
                  window_days: int = DEFAULT_WINDOW_DAYS, duplicates: str = "refuse",
                  overwrite: bool = False, fmt: str = "parquet") -> Dataset:
    """Write ``sessions.parquet`` (or ``sessions.csv`` with ``fmt="csv"``; session_wide) and ``codebook.csv``.

    ``key``: the study key; ids are replaced by keyed pseudonyms (researcher). None: ids as stored (admin).
    ``recorded_on`` is a Parquet DATE; every indicator and score a DOUBLE. The CSV has the same columns
    (dates as YYYY-MM-DD, formula-safe cells, a header even without rows).

    Raises
    ------
    ExportError
        The files exist and ``overwrite`` is false, or duplicated scores (see :func:`session_wide_sql`).
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    from pipeline.research.pseudonyms import pseudonymise

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if fmt not in ("parquet", "csv"):
        raise ExportError(f"dataset format {fmt!r} unknown; use parquet or csv")
    data, book = out / f"sessions.{fmt}", out / "codebook.csv"
    for p in (data, book):
        if p.exists() and not overwrite:
            raise ExportError(f"{p} exists: remove it or pass --overwrite")
    sync_indicators_wide(con)
    frame = con.execute(session_wide_sql(con, window_days=window_days, duplicates=duplicates)).df()
    if key is not None:
        frame = pseudonymise(frame, key=key)
    frame["recorded_on"] = pd.to_datetime(frame["recorded_on"]).dt.date
    table = pa.Table.from_pandas(frame, preserve_index=False)
    fields = [pa.field(f.name, pa.date32()) if f.name == "recorded_on" else
              pa.field(f.name, pa.int64()) if f.name in ("session_number", "days_since_first") or
              f.name.endswith("_link_days") else
              pa.field(f.name, pa.string()) if f.name in KEY_DEFINITIONS and f.name not in ("duration_s",) else
              pa.field(f.name, pa.float64()) for f in table.schema]
    table = table.cast(pa.schema(fields), safe=False)
    from pipeline.csv_safety import csv_safe_frame

    if fmt == "csv":  # the typed table's values (ints stay ints), formula-safe text cells
        csv_safe_frame(table.to_pandas(date_as_object=True)).to_csv(data, index=False)
    else:
        pq.write_table(table, data)
    cb = codebook(con, list(frame.columns), window_days=window_days)
    csv_safe_frame(cb).to_csv(book, index=False)  # formula-safe cells: definitions may come from user files
    return Dataset(data, book, len(frame), len(frame.columns))


__all__ = ["DEFAULT_WINDOW_DAYS", "KEY_COLUMNS", "Dataset", "codebook", "measure_column", "session_wide_sql",
           "write_dataset"]
