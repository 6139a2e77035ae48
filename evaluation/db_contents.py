"""Every table's content of a database, without what differs between runs (run ids, timestamps, paths).

Used to prove that two databases hold the same sessions: the engines' equivalence test, and the
before/after comparison of a restructuring (``python -m evaluation.db_contents A.duckdb B.duckdb``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import duckdb

#: Columns whose values differ between two runs of the same input by design.
RUN_COLUMNS = frozenset({"run_id", "processed_at", "started_at", "finished_at", "created_at", "recorded_at",
                         "imported_at", "at", "occurred_at", "import_id", "erasure_id", "path", "source_path",
                         "command", "models", "wall_s"})
#: Tables about runs, audits and files rather than the sessions' content.
RUN_TABLES = frozenset({"pipeline_runs", "run_items", "audit_log", "report_files", "schema_migrations"})


def contents(path: Path | str, *, tables: frozenset[str] | None = None) -> dict[str, list[tuple]]:
    """Sorted rows of every base table (run tables and run columns left out), keyed by table name."""
    con = duckdb.connect(str(path), read_only=True,
                         config={"autoinstall_known_extensions": False, "autoload_known_extensions": False})
    try:
        names = [r[0] for r in con.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_type = 'BASE TABLE' ORDER BY 1").fetchall()]
        out: dict[str, list[tuple]] = {}
        for name in names:
            if name in RUN_TABLES or (tables is not None and name not in tables):
                continue
            cols = [r[0] for r in con.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_name = ? ORDER BY ordinal_position",
                [name]).fetchall() if r[0] not in RUN_COLUMNS]
            select = ", ".join(f'"{c}"' for c in cols)
            rows = con.execute(f'SELECT {select} FROM "{name}"').fetchall()
            out[name] = sorted(rows, key=repr)
        return out
    finally:
        con.close()


def differences(a: dict[str, list[tuple]], b: dict[str, list[tuple]]) -> list[str]:
    """Human-readable differences between two :func:`contents` (empty when equal)."""
    problems = []
    for name in sorted(set(a) | set(b)):
        if name not in a or name not in b:
            problems.append(f"{name}: only in {'second' if name not in a else 'first'}")
        elif a[name] != b[name]:
            only_a = [r for r in a[name] if r not in b[name]]
            only_b = [r for r in b[name] if r not in a[name]]
            problems.append(f"{name}: {len(a[name])} vs {len(b[name])} rows; first only {only_a[:2]}; "
                            f"second only {only_b[:2]}")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("first", type=Path)
    parser.add_argument("second", type=Path)
    args = parser.parse_args(argv)
    a, b = contents(args.first), contents(args.second)
    problems = differences(a, b)
    for p in problems:
        print(p)
    n = sum(len(v) for v in a.values())
    print(f"{'identical' if not problems else 'DIFFERENT'}: {len(a)} tables, {n} rows compared")
    return 0 if not problems else 1


if __name__ == "__main__":
    sys.exit(main())
