"""Validate a self-report CSV row by row and score it: the import report (pure, nothing is stored).

Two CSV layouts
---------------
*wide* (one line per administration; needs ``instrument=``): identity columns plus one column per item
key of the instrument. *long* (one line per item value; recognised by ``item`` and ``value`` columns):
identity columns plus ``instrument``, ``item``, ``value``.

Identity columns: ``session_id`` and/or ``client_id``; ``date`` (or ``administered_on``, ISO
``YYYY-MM-DD``), required when only ``client_id`` is given; optional ``timepoint`` (a free label such as
``pre``/``post``). A client-and-date line is linked to that client's session recorded on that date,
if there is one.

Nothing is coerced: every rejected value or line is an :class:`ImportIssue` with its line number, field,
value and a code. Valid values are kept even when others on the same administration are rejected; such an
administration keeps its raw items but gets no score (status ``not_scored``), because a rejected value
is not a missing one. Blank values and declared missing codes are missing and handled by the
instrument's prorating rule (see :mod:`pipeline.research.self_report.instruments`).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import math
import re
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from pipeline.csv_cells import checked_rows
from pipeline.csv_safety import csv_safe_row
from pipeline.errors import InvalidIdError, SelfReportImportError
from pipeline.ids import validate_id
from pipeline.research.self_report.instruments import Instrument, ScaleScore, item_score, score

#: Most data lines one import checks (a study's self-report export is far smaller; more: split the file).
MAX_IMPORT_ROWS = 200_000
ID_COLUMNS = ("session_id", "client_id", "date", "administered_on", "timepoint")
LONG_COLUMNS = ("instrument", "item", "value")


@dataclass(frozen=True)
class ImportIssue:
    """One row-level problem. ``line`` counts the header as line 1."""

    line: int
    field: str
    value: str
    code: str
    message: str


@dataclass(frozen=True)
class KnownSessions:
    """What the database already holds that an import is checked against.

    Attributes
    ----------
    sessions : mapping session_id -> (client_id, recorded_on or None)
    existing : mapping duplicate key -> import_id that stored it
        Keys from :func:`duplicate_key`: an administration of a session is identified by instrument, session
        and timepoint, whatever its date (a re-import without the date column is the same administration).
    today : date
        Dates after this are rejected.
    window_days : int
        Linking window: a client-and-date line is linked to the client's session nearest in date within this
        many days; a session-id line whose date is further than this from the session is rejected.
    """

    sessions: Mapping[str, tuple[str, dt.date | None]]
    existing: Mapping[tuple, str] = field(default_factory=dict)
    today: dt.date = field(default_factory=dt.date.today)
    window_days: int = 3

    @property
    def clients(self) -> frozenset[str]:
        return frozenset(c for c, _ in self.sessions.values())

    def session_on(self, client_id: str, day: dt.date) -> str | None:
        return self.nearest_session(client_id, day)[0]

    def nearest_session(self, client_id: str, day: dt.date) -> tuple[str | None, int | None, str]:
        """The client's session nearest ``day`` within the window.

        ``(session_id, administered_on - recorded_on in days, "")``, or ``(None, None, why)`` when there is
        none or two are equally near.
        """
        near = sorted((abs((d - day).days), (day - d).days, s) for s, (c, d) in self.sessions.items()
                      if c == client_id and d is not None and abs((d - day).days) <= self.window_days)
        if not near:
            return None, None, f"no session of the client within {self.window_days} days"
        if len(near) > 1 and near[0][0] == near[1][0]:
            return None, None, (f"sessions {near[0][2]!r} and {near[1][2]!r} are equally near ({near[0][0]} days): "
                                "give session_id")
        return near[0][2], near[0][1], ""


def duplicate_key(instrument: str, client_id: str, session_id: str | None, day: dt.date | None,
                  timepoint: str | None) -> tuple:
    """What makes two administrations the same.

    Instrument, session and timepoint for a session's administration (its date does not matter); instrument,
    client, date and timepoint for a client-level one.
    """
    if session_id is not None:
        return ("session", instrument, session_id, timepoint)
    return ("client", instrument, client_id, day, timepoint)


@dataclass(frozen=True)
class ItemValue:
    line: int
    instrument: str
    item: str
    raw: float | None          # None = blank
    missing_code: bool


@dataclass(frozen=True)
class Administration:
    """A validated administration: its identity, accepted item values and scores."""

    key: tuple                  # (instrument, client_id, session_id, administered_on, timepoint)
    instrument: str
    client_id: str
    session_id: str | None
    administered_on: dt.date | None
    timepoint: str | None
    values: tuple[ItemValue, ...]
    scores: tuple[ScaleScore, ...]
    status: str                 # scored | partly_scored | not_scored
    note: str
    link_rule: str | None = None           # session_id | client_date | None (client-level)
    link_distance_days: int | None = None  # administered_on - recorded_on


@dataclass(frozen=True)
class ImportReport:
    """What an import found and (unless a dry run) stored."""

    source: str
    file_format: str
    instruments: tuple[str, ...]
    lines_read: int
    values_read: int
    administrations: tuple[Administration, ...]
    issues: tuple[ImportIssue, ...]
    import_id: str | None = None

    @property
    def values_accepted(self) -> int:
        return sum(len(a.values) for a in self.administrations)

    @property
    def values_rejected(self) -> int:
        return self.values_read - self.values_accepted

    def summary_lines(self, *, max_issues: int = 40) -> list[str]:
        """Human-readable report: counts, then each issue (the first ``max_issues``)."""
        adm = self.administrations
        status = defaultdict(int)
        for a in adm:
            status[a.status] += 1
        prorated = sum(1 for a in adm for s in a.scores if s.prorated)
        coded = sum(1 for a in adm for v in a.values if v.missing_code)
        blank = sum(1 for a in adm for v in a.values if v.raw is None)
        unlinked = sum(1 for a in adm if a.session_id is None)
        out = [
            f"{self.source}: {self.file_format} format, instrument(s) {', '.join(self.instruments)}",
            f"  lines read: {self.lines_read}; item values read: {self.values_read}, accepted: "
            f"{self.values_accepted}, rejected: {self.values_rejected}",
            f"  administrations: {len(adm)} (scored {status['scored']}, partly scored {status['partly_scored']}, "
            f"not scored {status['not_scored']}); prorated scale scores: {prorated}; blank values: {blank}; "
            f"values equal to a declared missing code: {coded}; not linked to a session: {unlinked}",
        ]
        by_code = defaultdict(int)
        for i in self.issues:
            by_code[i.code] += 1
        if self.issues:
            out.append("  problems: " + ", ".join(f"{k} {v}" for k, v in sorted(by_code.items())))
            for i in self.issues[:max_issues]:
                out.append(f"  line {i.line}: {i.field}={i.value!r}: {i.code}: {i.message}")
            if len(self.issues) > max_issues:
                out.append(f"  ... and {len(self.issues) - max_issues} more (all are in self_report_import_errors "
                           "or the --report file)")
        else:
            out.append("  no problems found")
        for a in adm:
            if a.status != "scored":
                out.append(f"  {a.instrument} client {a.client_id} session {a.session_id or '-'} "
                           f"{a.timepoint or ''}: {a.status}: {a.note}")
        return out


def read_csv_lines(lines: Iterable[str], *, source: str, max_rows: int | None = None
                   ) -> tuple[list[str], Iterator[tuple[int, dict[str, str]]]]:
    """Header and a stream of ``(line number, row)`` pairs, every cell a stripped string, read row by row.

    Only the current row is held, so a large file is checked in bounded memory; a file with more than
    ``max_rows`` (default :data:`MAX_IMPORT_ROWS`) data lines is refused when the stream reaches that line.

    Raises
    ------
    SelfReportImportError
        No header, repeated column names, a line with more cells than the header, a cell longer than
        :data:`pipeline.csv_cells.MAX_CELL_CHARS`, malformed CSV, or too many lines (the last four while
        the rows are read).
    """
    limit = MAX_IMPORT_ROWS if max_rows is None else max_rows
    records = checked_rows(lines, source=source, error=SelfReportImportError)
    try:
        _, first = next(records)
    except StopIteration:
        raise SelfReportImportError(f"{source} is empty: expected a CSV header line") from None
    header = [h.strip() for h in ([first[0].lstrip("\ufeff"), *first[1:]] if first else first)]
    if not header or len(set(header)) != len(header) or "" in header:
        raise SelfReportImportError(f"{source}: the header {header} has blank or repeated column names")

    def rows() -> Iterator[tuple[int, dict[str, str]]]:
        count = 0
        for line, cells in records:
            if not any(c.strip() for c in cells):
                continue
            if len(cells) > len(header):
                raise SelfReportImportError(f"{source} line {line}: {len(cells)} cells but the header has "
                                            f"{len(header)} columns")
            count += 1
            if count > limit:
                raise SelfReportImportError(f"{source} has more than {limit:,} data lines, more than one import "
                                            "may check: split it")
            cells = cells + [""] * (len(header) - len(cells))
            yield line, {h: c.strip() for h, c in zip(header, cells, strict=True)}

    return header, rows()


def read_csv_text(text: str, *, source: str) -> tuple[list[str], list[tuple[int, dict[str, str]]]]:
    """:func:`read_csv_lines` of a string, the rows as a list."""
    header, rows = read_csv_lines(io.StringIO(text, newline=""), source=source)
    return header, list(rows)


#: A numeral as a self-report cell may hold it: ASCII digits, an optional sign, at most one decimal point.
#: (``float`` also takes ``1_0``, ``1e1``, ``inf`` and non-ASCII digits such as Arabic-Indic ones.)
NUMERAL = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)")
ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def _parse_value(text: str) -> float | None:
    """Float of a cell, None for blank; raises ValueError for anything but a plain decimal numeral."""
    if text == "":
        return None
    if not NUMERAL.fullmatch(text):
        raise ValueError(text)
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(text)
    return value


def _identity(line: int, row: Mapping[str, str], known: KnownSessions,
              issues: list[ImportIssue]) -> tuple[str, str | None, dt.date | None, str | None, str | None,
                                                  int | None] | None:
    """The identity of a line, or None (and issues) when unusable.

    ``(client_id, session_id, date, timepoint, link_rule, link_distance_days)``.
    """
    sid = row.get("session_id", "") or None
    cid = row.get("client_id", "") or None
    date_text = row.get("date", "") or row.get("administered_on", "")
    tp = row.get("timepoint", "") or None
    day = None
    rule: str | None = None
    distance: int | None = None
    bad = len(issues)
    checked: dict[str, str | None] = {}
    for column, kind, value in (("session_id", "session", sid), ("client_id", "client", cid),
                                ("timepoint", "timepoint", tp)):
        try:  # the same id rules as everywhere else (pipeline.ids); NFC, as the ids are stored
            checked[column] = None if value is None else validate_id(kind, value)
        except InvalidIdError as e:
            issues.append(ImportIssue(line, column, value, "bad_id", str(e)))
    if len(issues) > bad:
        return None
    sid, cid, tp = checked["session_id"], checked["client_id"], checked["timepoint"]
    if date_text:
        try:
            if not ISO_DATE.fullmatch(date_text):
                raise ValueError(date_text)
            day = dt.date.fromisoformat(date_text)
        except ValueError:
            issues.append(ImportIssue(line, "date", date_text, "bad_date", "not an ISO date (YYYY-MM-DD)"))
        else:
            if day > known.today:
                issues.append(ImportIssue(line, "date", date_text, "bad_date", f"in the future (today is "
                                          f"{known.today.isoformat()})"))
                day = None
    if sid is None and cid is None:
        issues.append(ImportIssue(line, "session_id", "", "missing_id", "neither session_id nor client_id given"))
    elif sid is not None:
        if sid not in known.sessions:
            issues.append(ImportIssue(line, "session_id", sid, "unknown_session", "no such session in the database"))
        else:
            owner, recorded = known.sessions[sid]
            if cid is not None and cid != owner:
                issues.append(ImportIssue(line, "client_id", cid, "client_mismatch",
                                          f"session {sid!r} belongs to client {owner!r}"))
            cid = owner
            rule = "session_id"
            if day is not None and recorded is not None:
                distance = (day - recorded).days
                if abs(distance) > known.window_days:
                    issues.append(ImportIssue(
                        line, "date", date_text, "date_far_from_session",
                        f"session {sid!r} was recorded on {recorded.isoformat()}, {abs(distance)} days "
                        f"{'before' if distance > 0 else 'after'} this date (linking window: {known.window_days} "
                        "days; widen it with --link-window-days if this is right)"))
    else:
        if cid not in known.clients:
            issues.append(ImportIssue(line, "client_id", cid, "unknown_client", "no session of this client in the "
                                      "database"))
        if not date_text:
            issues.append(ImportIssue(line, "date", "", "missing_date", "a client_id line needs a date (or give "
                                      "session_id)"))
        elif day is not None:
            sid, distance, _ = known.nearest_session(cid, day)
            rule = "client_date" if sid is not None else None
    if len(issues) > bad:
        return None
    return cid, sid, day, tp, rule, distance


def validate_rows(header: Sequence[str], rows: Iterable[tuple[int, Mapping[str, str]]], *,
                  instruments: Mapping[str, Instrument], instrument: str | None, known: KnownSessions,
                  ignore_columns: Sequence[str] = (), source: str = "file") -> ImportReport:
    """Check every line and value, group accepted values into administrations, and score them.

    Parameters
    ----------
    header, rows
        From :func:`read_csv_lines` (a stream, read once) or :func:`read_csv_text`.
    instruments : mapping key -> Instrument
        The instruments lines may name (built-in plus custom).
    instrument : str or None
        The wide format's instrument (required for it); in the long format, if given, lines naming
        another instrument are rejected.
    known : KnownSessions
    ignore_columns : sequence of str
        Extra wide-format columns to skip (anything else unknown is a file-level error).

    Returns
    -------
    ImportReport
        ``import_id`` None (nothing stored yet).

    Raises
    ------
    SelfReportImportError
        File-level problems: the layout cannot be recognised, columns are missing or unknown.
    """
    cols = set(header)
    is_long = {"item", "value"} <= cols
    if not cols & {"session_id", "client_id"}:
        raise SelfReportImportError(f"{source}: needs a session_id or client_id column; header is {list(header)}")
    issues: list[ImportIssue] = []
    values: list[tuple[tuple, ItemValue]] = []
    rejected: dict[tuple, set[str]] = defaultdict(set)  # administration key -> items with a rejected value
    links: dict[tuple, tuple[str | None, int | None]] = {}  # administration key -> (link rule, distance in days)
    n_values = n_lines = 0
    if is_long:
        if "instrument" not in cols and instrument is None:
            raise SelfReportImportError(f"{source}: long format needs an instrument column or --instrument")
        extra = sorted(cols - set(ID_COLUMNS) - set(LONG_COLUMNS) - set(ignore_columns))
        if extra:
            raise SelfReportImportError(f"{source}: unknown columns {extra} (long format: {list(ID_COLUMNS)} + "
                                        f"{list(LONG_COLUMNS)}); skip them with --ignore-column")
        for line, row in rows:
            n_values += 1
            n_lines += 1
            ident = _identity(line, row, known, issues)
            inst_key = row.get("instrument", "") or instrument or ""
            if instrument is not None and inst_key != instrument:
                issues.append(ImportIssue(line, "instrument", inst_key, "unknown_instrument",
                                          f"this import is for {instrument!r}"))
                continue
            inst = instruments.get(inst_key)
            if inst is None:
                issues.append(ImportIssue(line, "instrument", inst_key, "unknown_instrument",
                                          f"known: {sorted(instruments)}"))
                continue
            item = row["item"]
            if item not in inst.items:
                issues.append(ImportIssue(line, "item", item, "unknown_item",
                                          f"{inst.key} items are {list(inst.items)}"))
                continue
            iv = _check_value(line, inst, item, row["value"], issues)
            if ident is not None:
                key = (inst.key, *ident[:4])
                links.setdefault(key, ident[4:])
                if iv is None:
                    rejected[key].add(item)
                else:
                    values.append((key, iv))
        used = tuple(sorted({k[0] for k, _ in values} | ({instrument} if instrument else set())))
    else:
        if instrument is None or instrument not in instruments:
            raise SelfReportImportError(f"{source}: wide format (one column per item) needs --instrument; "
                                        f"known: {sorted(instruments)}")
        inst = instruments[instrument]
        missing = [i for i in inst.items if i not in cols]
        extra = sorted(cols - set(ID_COLUMNS) - set(inst.items) - set(ignore_columns))
        if missing or extra:
            raise SelfReportImportError(
                f"{source}: wide format for {inst.key!r} needs one column per item {list(inst.items)}; "
                f"missing {missing}, unknown {extra} (skip extra columns with --ignore-column)")
        for line, row in rows:
            n_values += len(inst.items)
            n_lines += 1
            ident = _identity(line, row, known, issues)
            checked = [(item, _check_value(line, inst, item, row[item], issues)) for item in inst.items]
            if ident is None:
                continue
            key = (inst.key, *ident[:4])
            links.setdefault(key, ident[4:])
            values += [(key, iv) for _, iv in checked if iv is not None]
            rejected[key] |= {item for item, iv in checked if iv is None}
        used = (inst.key,)
    administrations = _group(values, instruments, known, issues, rejected=rejected, links=links)
    return ImportReport(source=source, file_format="long" if is_long else "wide", instruments=used,
                        lines_read=n_lines, values_read=n_values, administrations=administrations,
                        issues=tuple(sorted(issues, key=lambda i: (i.line, i.field))))


def _check_value(line: int, inst: Instrument, item: str, text: str, issues: list[ImportIssue]) -> ItemValue | None:
    try:
        value = _parse_value(text)
    except ValueError:
        issues.append(ImportIssue(line, item, text, "not_a_number", f"{inst.key} item {item!r} needs a number "
                                  f"from {inst.min_value:g} to {inst.max_value:g} (or blank)"))
        return None
    coded = value is not None and value in inst.missing_codes
    if value is not None and not coded and not inst.min_value <= value <= inst.max_value:
        codes = f" or a missing code {list(inst.missing_codes)}" if inst.missing_codes else ""
        issues.append(ImportIssue(line, item, text, "out_of_range", f"{inst.key} items range from "
                                  f"{inst.min_value:g} to {inst.max_value:g}{codes}"))
        return None
    return ItemValue(line, inst.key, item, value, coded)


#: Line numbers named in one duplicate message (the rest counted): a message per line naming every line
#: made a file repeating one item 50,000 times hold 50,000 x 50,000 numbers (20 GB for 200,000 lines).
MAX_LINES_NAMED = 10


def _line_list(lines: Sequence[int]) -> str:
    """``2, 5, 9`` or, past :data:`MAX_LINES_NAMED`, the first ten and ``... (N lines in all)``."""
    shown = ", ".join(str(n) for n in lines[:MAX_LINES_NAMED])
    return shown if len(lines) <= MAX_LINES_NAMED else f"{shown}, ... ({len(lines):,} lines in all)"


def _group(values: Sequence[tuple[tuple, ItemValue]], instruments: Mapping[str, Instrument], known: KnownSessions,
           issues: list[ImportIssue], *, rejected: Mapping[tuple, set[str]],
           links: Mapping[tuple, tuple[str | None, int | None]] | None = None) -> tuple[Administration, ...]:
    by_key: dict[tuple, list[ItemValue]] = defaultdict(list)
    for key, iv in values:
        by_key[key].append(iv)
    same: dict[tuple, list[tuple]] = defaultdict(list)  # duplicate key -> administration keys in this file
    for key in by_key:
        same[duplicate_key(*key)].append(key)
    out = []
    for key, ivs in by_key.items():
        inst_key, cid, sid, day, tp = key
        where = f"{inst_key} client {cid!r} session {sid!r} date {day} timepoint {tp!r}"
        dup = duplicate_key(*key)
        if dup in known.existing:
            for iv in ivs:
                issues.append(ImportIssue(iv.line, iv.item, _fmt(iv.raw), "already_imported",
                                          f"{where} was stored by import {known.existing[dup]} (an administration "
                                          "is identified by instrument, session and timepoint, whatever its date)"))
            continue
        if len(same[dup]) > 1:
            lines = _line_list(sorted({v.line for k in same[dup] for v in by_key[k]}))
            for iv in ivs:
                issues.append(ImportIssue(iv.line, iv.item, _fmt(iv.raw), "duplicate",
                                          f"{where}: the same administration is given on lines "
                                          f"{lines} (with different dates or link): none is used"))
            continue
        lines_by_item: dict[str, list[ItemValue]] = defaultdict(list)
        for iv in ivs:
            lines_by_item[iv.item].append(iv)
        kept = []
        bad = set(rejected.get(key, set()))
        for item, group in lines_by_item.items():
            if len(group) > 1:
                lines = _line_list([g.line for g in group])
                for g in group:
                    issues.append(ImportIssue(g.line, item, _fmt(g.raw), "duplicate",
                                              f"{where} item {item!r} is given on lines {lines}: none is used"))
                bad.add(item)
            else:
                kept.append(group[0])
        inst = instruments[inst_key]
        if not kept:
            continue
        kept.sort(key=lambda v: inst.items.index(v.item))
        answered = {v.item: v.raw for v in kept}
        if bad:
            status = "not_scored"
            note = f"items {sorted(bad)} had rejected values (see the report): not scored"
            scores: tuple[ScaleScore, ...] = tuple(
                ScaleScore(sc.name, None, len(sc.items), _n_answered(inst, sc.items, answered), False, note)
                for sc in inst.scales)
        else:
            scores = score(inst, answered)
            n_ok = sum(1 for s in scores if s.value is not None)
            status = "scored" if n_ok == len(scores) else "partly_scored" if n_ok else "not_scored"
            note = "; ".join(f"{s.scale}: {s.note}" for s in scores if s.note)
        rule, distance = (links or {}).get(key, (None, None))
        out.append(Administration(key, inst_key, cid, sid, day, tp, tuple(kept), scores, status, note, rule,
                                  distance))
    return tuple(out)


def _n_answered(inst: Instrument, items: Sequence[str], answered: Mapping[str, float | None]) -> int:
    return sum(1 for i in items if item_score(inst, i, answered.get(i)) is not None)


def _fmt(value: float | None) -> str:
    return "" if value is None else f"{value:g}"


def write_report_csv(report: ImportReport, path: Path | str) -> None:
    """Write the row-level problems to CSV (line, field, value, code, message).

    Every cell is formula-safe (:mod:`pipeline.csv_safety`): a value such as ``=HYPERLINK(...)`` from the
    imported file is written with a leading single quote.
    """
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["line", "field", "value", "code", "message"])
        for i in report.issues:
            w.writerow(csv_safe_row([i.line, i.field, i.value, i.code, i.message]))
