"""Reading CSV from outside: every cell bounded, every parser error one clear sentence.

Python's :mod:`csv` raises ``csv.Error: field larger than field limit (131072)`` for a longer cell, and other
``csv.Error`` for malformed quoting; left alone they end a command with a traceback. :func:`checked_rows`
turns them, and any cell longer than the caller's limit (a self-report value or a manifest path is never
thousands of characters long), into the caller's own error naming the source and the line, while reading
row by row (nothing but the current row is held).
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator

#: Longest cell a self-report file or a manifest may hold (ids are at most 128 characters, paths 4096 bytes).
MAX_CELL_CHARS = 4096


def checked_rows(lines: Iterable[str], *, source: str, error: type[Exception],
                 max_cell_chars: int = MAX_CELL_CHARS) -> Iterator[tuple[int, list[str]]]:
    """``(line number, cells)`` of each CSV record of ``lines``, header included.

    Raises
    ------
    error
        A cell longer than ``max_cell_chars`` (or than :mod:`csv`'s own limit), or malformed CSV; the message
        names ``source`` and the line, never the cell's content.
    """
    reader = csv.reader(lines)
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as e:
            raise error(csv_error_message(e, source=source, line=reader.line_num,
                                          max_cell_chars=max_cell_chars)) from None
        check_cells(cells, source=source, line=reader.line_num, error=error, max_cell_chars=max_cell_chars)
        yield reader.line_num, cells


def csv_error_message(e: csv.Error, *, source: str, line: int, max_cell_chars: int = MAX_CELL_CHARS) -> str:
    """One sentence for a :class:`csv.Error` at ``line`` of ``source``."""
    if "field larger than field limit" in str(e):
        return (f"{source} line {line}: a cell longer than {csv.field_size_limit():,} characters (a cell may have "
                f"at most {max_cell_chars:,})")
    return f"{source} line {line}: not valid CSV ({e})"


def check_cells(cells: Iterable[object], *, source: str, line: int, error: type[Exception],
                max_cell_chars: int = MAX_CELL_CHARS) -> None:
    """Raise ``error`` if a text cell of ``cells`` is longer than ``max_cell_chars`` (its content is not quoted)."""
    longest = max((len(c) for c in cells if isinstance(c, str)), default=0)
    if longest > max_cell_chars:
        raise error(f"{source} line {line}: a cell of {longest:,} characters (a cell may have at most "
                    f"{max_cell_chars:,})")
