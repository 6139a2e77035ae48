"""Spreadsheet formula injection: the one rule for every CSV cell the pipeline writes.

A cell that starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return is run as a formula by
Excel, LibreOffice and Google Sheets (``=HYPERLINK(...)``, ``=cmd|' /C calc'!A0``). Ids, manifest cells,
self-report values and messages that quote them come from outside, so every text cell written to a CSV
goes through :func:`csv_safe`, which prefixes such a cell with a single quote (the OWASP rule: the
spreadsheet shows the text, the quote is not displayed). Plain numbers (``-1``, ``+2.5``, ``-3e-4``) are
left alone: no spreadsheet evaluates them as anything but a number.

Users: the self-report problem report (``--report``), ``alliance query --csv`` and ``alliance export
--format csv`` (as a DuckDB projection built from the same constants: :func:`duckdb_csv_safe`).
"""

from __future__ import annotations

import re
from typing import Any

#: First characters that make a spreadsheet evaluate a cell.
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
#: A cell that is just a number (never neutralised).
_NUMBER = r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?"
_NUMBER_RE = re.compile(_NUMBER)
#: The same tests as regular expressions for DuckDB (RE2 syntax).
FORMULA_REGEX = "^[" + "".join(re.escape(c) if c not in "\t\r" else {"\t": r"\t", "\r": r"\r"}[c]
                               for c in FORMULA_PREFIXES) + "]"
NUMBER_REGEX = "^" + _NUMBER + "$"


def csv_safe(value: Any) -> Any:
    """``value`` with a leading ``'`` when it is text a spreadsheet would run as a formula; else unchanged.

    Non-text values (numbers, None, dates) are returned as they are.
    """
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES) and not _NUMBER_RE.fullmatch(value):
        return "'" + value
    return value


def csv_safe_row(values: list[Any] | tuple[Any, ...]) -> list[Any]:
    """:func:`csv_safe` of each cell."""
    return [csv_safe(v) for v in values]


def csv_safe_frame(frame: Any) -> Any:
    """A copy of a pandas DataFrame with :func:`csv_safe` applied to every text cell (and column name)."""
    out = frame.copy()
    for column in out.columns:
        if out[column].dtype == object or str(out[column].dtype) in ("string", "str"):
            out[column] = [csv_safe(v) for v in out[column]]  # None stays None
    out.columns = [csv_safe(c) if isinstance(c, str) else c for c in out.columns]
    return out


def duckdb_csv_safe(column: str) -> Any:
    """A DuckDB expression applying the :func:`csv_safe` rule to the text column ``column`` (aliased to it)."""
    import duckdb

    col = column_expression(column)
    risky = duckdb.FunctionExpression("regexp_matches", col, duckdb.ConstantExpression(FORMULA_REGEX))
    number = duckdb.FunctionExpression("regexp_matches", col, duckdb.ConstantExpression(NUMBER_REGEX))
    neutral = duckdb.FunctionExpression("concat", duckdb.ConstantExpression("'"), col)
    return duckdb.CaseExpression(risky & ~number, neutral).otherwise(col).alias(column)


def column_expression(column: str) -> Any:
    """A DuckDB column reference to ``column`` taken literally (a dot in the name is not a table qualifier)."""
    import duckdb

    return duckdb.ColumnExpression('"' + column.replace('"', '""') + '"')
