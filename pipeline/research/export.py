"""Export any table or view of the database to Parquet (partitioned) or CSV, with its column schema.

The research schema is documented in the README ("Self-report and comparison"); :data:`DESCRIPTIONS`
holds the one-line description written beside each export.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import duckdb

from pipeline.csv_safety import column_expression, duckdb_csv_safe
from pipeline.errors import ExportError

Format = Literal["parquet", "csv"]

DESCRIPTIONS: dict[str, str] = {
    "sessions": "one row per session",
    "indicators": "indicators in long format (session, name, role, value, unit)",
    "indicators_wide": "one row per session x role, one column per indicator",
    "self_report_imports": "one row per self-report import",
    "self_report_instruments": "the instrument definition each import scored with",
    "self_report_import_errors": "row-level problems of each import (rows not stored)",
    "self_report_administrations": "one completed questionnaire",
    "self_report_items": "raw item values and item scores",
    "self_report_scores": "scale scores (total and subscales) per administration",
    "self_report_scores_long": "scores with client, session, date and timepoint",
    "session_indicators_self_report": "indicators beside self-report scores per session (long x long)",
    "client_series": "per client over time: indicators and scores by session number",
    "comparison_runs": "one row per comparison run",
    "comparison_results": "indicator x measure x level correlations with CIs and q values",
    "discrepancy_flags": "sessions where process signals and alliance ratings disagree",
    "client_trajectories": "per-client series with baseline and reliable change",
}


@dataclass(frozen=True)
class ExportedFile:
    relation: str
    path: Path
    rows: int
    partition_by: tuple[str, ...]


def relations(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Tables and views of the main schema."""
    return [r[0] for r in con.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main'"
        " AND table_catalog = current_database() ORDER BY table_name"
    ).fetchall()]


def export(con: duckdb.DuckDBPyConnection, name: str, *, out_dir: Path | str, fmt: Format,
           partition_by: Sequence[str] | None = None, overwrite: bool = False) -> ExportedFile:
    """Write table or view ``name`` under ``out_dir``.

    Parameters
    ----------
    name : str
        A table or view of the database (checked against the catalog).
    out_dir : path
    fmt : {"parquet", "csv"}
    partition_by : sequence of str or None
        Hive partition columns (``client_id=C7/...``). None: ``client_id`` for Parquet when the relation
        has it (so one client's data can be found and removed by folder), none for CSV. ``()``: none.
    overwrite : bool
        Replace an existing export of the same name.

    Returns
    -------
    ExportedFile
        ``path`` is ``out_dir/name`` (a folder) when partitioned, else ``out_dir/name.parquet|csv``. A
        ``name.schema.json`` beside it lists the columns and types.

    Raises
    ------
    ExportError
        Unknown relation or column, or the target exists and ``overwrite`` is false.
    """
    known = relations(con)
    if name not in known:
        raise ExportError(f"no table or view {name!r}; available: {known}")
    rel = con.table(name)
    columns = [(c, str(t)) for c, t in zip(rel.columns, rel.types, strict=True)]
    names = [c for c, _ in columns]
    if partition_by is None:
        partition_by = ("client_id",) if fmt == "parquet" and "client_id" in names else ()
    partition_by = tuple(partition_by)
    bad = [c for c in partition_by if c not in names]
    if bad:
        raise ExportError(f"{name!r} has no column(s) {bad} to partition by; columns: {names}")
    out_dir = Path(out_dir)
    out_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    target = out_dir / name if partition_by else out_dir / f"{name}.{fmt}"
    if target.exists() and not overwrite:
        raise ExportError(f"{target} exists: remove it or pass --overwrite")
    if target.exists() and target.is_dir():
        import shutil

        shutil.rmtree(target)
    rows = int(con.execute(f"SELECT count(*) FROM {_quote(name)}").fetchone()[0])
    kwargs = {"partition_by": list(partition_by)} if partition_by else {}
    if partition_by and rows == 0:
        # DuckDB writes no file at all for an empty partitioned relation, and an empty folder is no table to
        # polars or DuckDB: one file with every column (the partition columns too) and no rows instead.
        target.mkdir(mode=0o700, parents=True)
        target, kwargs = target / f"data_0.{fmt}", {}
    try:
        if fmt == "parquet":
            rel.write_parquet(str(target), **kwargs)
        elif fmt == "csv":
            _csv_safe_relation(rel, columns, keep=partition_by).write_csv(str(target), header=True, **kwargs)
        else:
            raise ExportError(f"format {fmt!r} unknown; use parquet or csv")
    except duckdb.Error as e:
        raise ExportError(f"writing {target} failed: {e}") from e
    schema = {"relation": name, "description": DESCRIPTIONS.get(name, ""), "rows": rows, "format": fmt,
              "partition_by": list(partition_by), "columns": [{"name": c, "type": t} for c, t in columns]}
    (out_dir / f"{name}.schema.json").write_text(json.dumps(schema, indent=2) + "\n", encoding="utf-8")
    path = out_dir / name if partition_by else target
    owner_only(path, out_dir / f"{name}.schema.json")
    return ExportedFile(name, path, rows, partition_by)


def _csv_safe_relation(rel: duckdb.DuckDBPyRelation, columns: Sequence[tuple[str, str]], *,
                       keep: Sequence[str]) -> duckdb.DuckDBPyRelation:
    """``rel`` with every text column passed through the :func:`pipeline.csv_safety.csv_safe` rule.

    Partition columns (``keep``) become folder names, not cells, and are left as they are.
    """
    exprs = [duckdb_csv_safe(c) if t == "VARCHAR" and c not in keep else column_expression(c).alias(c)
             for c, t in columns]
    return rel.project(*exprs)


def owner_only(*paths: Path) -> None:
    """Make exported files 0600 and their folders 0700 (exports hold clinical data or pseudonymised rows)."""
    for path in paths:
        if path.is_dir():
            path.chmod(0o700)
            for p in path.rglob("*"):
                p.chmod(0o700 if p.is_dir() else 0o600)
        elif path.exists():
            path.chmod(0o600)


def _quote(identifier: str) -> str:
    """Quote an identifier already checked against the catalog."""
    return '"' + identifier.replace('"', '""') + '"'
