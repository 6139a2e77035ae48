"""Every CSV the package writes goes through the one formula-injection rule (pipeline.csv_safety).

This walks the package's source like tests/storage/test_sql_safety.py: a ``.to_csv`` must be called on
``csv_safe_frame(...)``, a DuckDB ``.write_csv`` on a relation built by a ``*csv_safe*`` function, and a
``csv`` writer's ``writerow``/``writerows`` must get ``csv_safe_row(...)`` or a header of constants. A new
CSV writer fails this test until its cells are made safe.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _name(node: ast.AST) -> str:
    if isinstance(node, ast.Call):
        return _name(node.func)
    if isinstance(node, ast.Attribute):
        return node.attr
    if isinstance(node, ast.Name):
        return node.id
    return ""


def _unsafe(tree: ast.AST) -> list[tuple[int, str]]:
    bad = []
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
            continue
        attr, receiver = node.func.attr, node.func.value
        if attr == "to_csv" and _name(receiver) != "csv_safe_frame":
            bad.append((node.lineno, ast.unparse(node)[:80]))
        elif attr == "write_csv" and "csv_safe" not in _name(receiver):
            bad.append((node.lineno, ast.unparse(node)[:80]))
        elif attr in ("writerow", "writerows") and node.args:
            arg = node.args[0]
            header = isinstance(arg, ast.List | ast.Tuple) and all(isinstance(e, ast.Constant) for e in arg.elts)
            if not header and _name(arg) != "csv_safe_row":
                bad.append((node.lineno, ast.unparse(node)[:80]))
    return bad


def test_every_csv_cell_the_package_writes_is_formula_safe():
    files = [*ROOT.joinpath("pipeline").rglob("*.py"), *ROOT.joinpath("flows").rglob("*.py")]
    bad = [f"{p.relative_to(ROOT)}:{line}: {code}" for p in files
           for line, code in _unsafe(ast.parse(p.read_text(encoding="utf-8")))]
    assert bad == [], "CSV written without pipeline.csv_safety:\n" + "\n".join(bad)


def test_the_check_catches_a_raw_writer():
    tree = ast.parse("frame.to_csv(out)\nrel.write_csv('x')\nw.writerow([a, b])\nw.writerow(['h1', 'h2'])\n"
                     "csv_safe_frame(frame).to_csv(out)\nw.writerow(csv_safe_row([a, b]))")
    assert [line for line, _ in _unsafe(tree)] == [1, 2, 3]
