"""Numbered, append-only schema migrations recorded in ``schema_migrations``."""

from __future__ import annotations

import re
from importlib.resources import files

import duckdb

from pipeline.errors import StorageError

_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


def available_migrations() -> list[tuple[int, str, str]]:
    """``(version, name, sql)`` for every shipped migration, in order."""
    out = []
    for entry in files("pipeline.storage").joinpath("migrations").iterdir():
        m = _NAME.match(entry.name)
        if m:
            out.append((int(m.group(1)), m.group(2), entry.read_text(encoding="utf-8")))
    out.sort()
    versions = [v for v, _, _ in out]
    if versions != list(range(1, len(versions) + 1)):
        raise StorageError(f"migrations must be numbered 0001, 0002, ... without gaps; found {versions}")
    return out


def applied_versions(con: duckdb.DuckDBPyConnection) -> list[int]:
    con.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations "
        "(version INTEGER PRIMARY KEY, name VARCHAR NOT NULL, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())"
    )
    return [r[0] for r in con.execute("SELECT version FROM schema_migrations ORDER BY version").fetchall()]


def migrate(con: duckdb.DuckDBPyConnection) -> list[int]:
    """Apply every migration not yet applied, each in its own transaction; return those applied.

    Raises
    ------
    StorageError
        The database records a migration this version of the pipeline does not know (it was written
        by a newer version): there is no downgrade path.
    """
    shipped = available_migrations()
    done = applied_versions(con)
    known = {v for v, _, _ in shipped}
    unknown = sorted(set(done) - known)
    if unknown:
        raise StorageError(
            f"the database has schema migrations {unknown} that this pipeline does not know: "
            "it was written by a newer version; upgrade alliance-pipeline"
        )
    applied = []
    for version, name, sql in shipped:
        if version in done:
            continue
        con.execute("BEGIN TRANSACTION")
        try:
            con.execute(sql)
            con.execute("INSERT INTO schema_migrations (version, name) VALUES (?, ?)", [version, name])
            con.execute("COMMIT")
        except duckdb.Error as e:
            con.execute("ROLLBACK")
            raise StorageError(f"migration {version:04d}_{name} failed: {e}") from e
        applied.append(version)
    return applied
