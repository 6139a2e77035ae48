"""All SQL is parameterised: values travel as parameters, never inside the SQL text.

This walks the package's source: every ``execute``/``sql`` call whose SQL is built by formatting may
interpolate only identifiers the package itself chose (table and column names from its own constants,
quoted literals of its own file paths). A new interpolation fails this test until it is reviewed and
added below with its reason.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

#: Interpolated expressions allowed in SQL text, as source code -> why it is safe.
ALLOWED = {
    "table": "a table name from the package's own constants (SESSION_TABLES, erasure lists)",
    "where": "a WHERE clause chosen from the package's fixed strings; values are parameters",
    "cols": "column names of a DataFrame the package built",
    "view": "a registered view name derived from a fixed table name",
    "column": "'session_id' or 'client_id', chosen in code",
    "name": "a research relation name from research_access.RELATIONS (or a catalog-checked name)",
    "_quote(name)": "an identifier checked against the catalog, quoted",
    "_literal(httpfs_extension_path())": "the packaged extension's path, quoted as a literal",
    "_literal(str(path))": "a database file path given by the operator, quoted as a literal",
    "alias": "a fixed catalog alias ('alliance', 'src', 'dst')",
    "suffix": "fixed ATTACH options; the key is validated to [A-Za-z0-9_+/=-] and quoted",
    "CATALOG": "the fixed catalog name",
    "in_ids": "a fixed predicate string",
    "admins_where": "a fixed predicate string",
    "traj_where": "a fixed predicate string",
    "r.sql": "a research relation's fixed SQL",
    "_RESEARCH": "a fixed sub-query",
    "_RESEARCH_CLIENTS": "a fixed sub-query",
    "_linked_scores_sql(window_days)": "a fixed sub-query; the window is coerced with int() inside it",
    "linked": "the same fixed sub-query (research/dataset.py)",
    "_sessions_sql()": "a fixed sub-query of the comparison (no argument)",
    "_pairs_sql()": "a fixed sub-query of the comparison (no argument)",
    "', '.join(TRAJECTORY_COLUMNS)": "the package's fixed column list",
    "cast": "CAST clauses over DATE column names taken from the relation's own schema",
    "col": "an indicators_wide column name checked by storage.wide._check ([a-z0-9_] only)",
    "wide_cols": "indicators_wide columns from storage.wide.indicator_columns ([a-z0-9_] only), double-quoted",
    "aggs": "FILTER clauses whose indicator names and roles match storage.wide._SAFE ([a-z0-9_] only)",
    "trajectories_sql(options.trajectories)": "a fixed query chosen by a value CompareOptions validates against "
                                                "TRAJECTORY_SERIES",
}


def _sql_calls(tree: ast.AST):
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in ("execute", "sql"):
            if node.args:
                yield node.args[0]


def _interpolations(arg: ast.AST):
    for node in ast.walk(arg):
        if isinstance(node, ast.FormattedValue):
            yield ast.unparse(node.value)
        elif isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mod) and isinstance(node.left, ast.Constant):
            yield "%-format: " + ast.unparse(node)
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "format":
            yield ".format: " + ast.unparse(node)


def test_sql_text_interpolates_only_reviewed_identifiers():
    bad = []
    files = [*ROOT.joinpath("pipeline").rglob("*.py"), *ROOT.joinpath("flows").rglob("*.py")]
    assert len(files) > 30
    for path in files:
        tree = ast.parse(path.read_text(encoding="utf-8"))
        # names bound to f-strings and later passed to execute are checked too
        for arg in _sql_calls(tree):
            for expr in _interpolations(arg):
                if expr not in ALLOWED:
                    bad.append(f"{path.relative_to(ROOT)}:{arg.lineno}: {expr}")
    assert bad == [], "SQL built from unreviewed values:\n" + "\n".join(bad)


def test_the_check_catches_a_formatted_value():
    tree = ast.parse('con.execute(f"SELECT * FROM sessions WHERE session_id = \'{session_id}\'")')
    assert [e for a in _sql_calls(tree) for e in _interpolations(a)] == ["session_id"]
