"""Read every stored block once: a database with corrupt blocks is refused before a run writes into it.

DuckDB checks a block's checksum only when the block is read. Opening a damaged file and counting rows reads
metadata only, so a run would start, write its run record and fail at its first real read or update (exit 3,
a record in a broken file). :func:`check_blocks` reads every column of every table (``hash`` of each whole
row), so any corrupt block in use raises here, before anything is written. Cost: one sequential read of
the data: 0.6-0.8 s for a 22 MB file of 3,000,000 ``run_items`` rows on 2 shared cores (2026-12-07, timed
with ``time.perf_counter`` around this function; see docs/bad_input.md).
"""

from __future__ import annotations

import duckdb

from pipeline.errors import StorageError


def _quote(name: str) -> str:
    """A table name read from the catalogue, double-quoted."""
    return '"' + name.replace('"', '""') + '"'


def check_blocks(con: duckdb.DuckDBPyConnection, *, name: str) -> int:
    """Read every row of every table of the connection's database; return the number of tables read.

    Raises
    ------
    StorageError
        A block failed its checksum (or could not be read): the message names the table and says what to do.
    """
    tables = [t for (t,) in con.execute(
        "SELECT table_name FROM duckdb_tables() WHERE database_name = current_database() ORDER BY 1").fetchall()]
    db_name = name
    for name in tables:
        try:
            con.execute(f"SELECT count(hash(x)) FROM {_quote(name)} x").fetchone()
        except duckdb.Error as e:
            raise StorageError(f"database {db_name} is damaged (table {name}: {str(e).splitlines()[0][:200]}); "
                               "nothing was written: restore it from a backup") from None
    return len(tables)
