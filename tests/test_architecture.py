"""The package's import graph follows docs/architecture.md.

No cycle; imports only go down the layers and, within a layer, only to a package listed above; product code
never imports evaluation, bench or tests code.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

#: docs/architecture.md's layers, in the order of its table. A package may import from a lower layer, or from a
#: package listed before it in its own layer (so `report -> research` is allowed and `research -> report` is not).
LAYERS: list[list[str]] = [
    ["core", "lexicons", "models"],
    ["audio", "asr", "codes", "diarization", "markers", "privacy"],
    ["analysis"],
    ["storage"],
    ["research", "report"],
    ["engine"],
    ["flows"],
    ["cli"],
]
#: package -> (layer, position within the layer)
RANK = {pkg: (layer, pos) for layer, pkgs in enumerate(LAYERS) for pos, pkg in enumerate(pkgs)}
#: what the installed package must never import (neither installed nor part of the product)
NOT_PRODUCT = ("evaluation", "bench", "tests")
PRODUCT = ("pipeline", "flows", "models")


def _modules(root: Path = ROOT) -> dict[str, Path]:
    """Every product module by dotted name (a package by its name, its __init__.py as path)."""
    mods = {}
    for top in PRODUCT:
        for p in (root / top).rglob("*.py"):
            rel = p.relative_to(root)
            if rel.parts[:2] == ("models", "cache"):  # downloaded model files, not ours
                continue
            name = ".".join(rel.with_suffix("").parts)
            mods[name.removesuffix(".__init__")] = p
    return mods


def _package(module: str, root: Path = ROOT) -> str:
    parts = module.split(".")
    if parts[0] != "pipeline":
        return parts[0]
    if len(parts) >= 2 and (root / "pipeline" / parts[1]).is_dir():
        return parts[1]
    return "core"


def _imported_names(name: str, path: Path) -> set[str]:
    """Every dotted name a module imports, at any level (function-level imports count).

    Relative imports are resolved; string arguments of importlib.import_module / __import__ count too.
    """
    is_package = path.name == "__init__.py"
    here = name.split(".") if is_package else name.split(".")[:-1]
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = here[: len(here) - (node.level - 1)] if node.level - 1 <= len(here) else []
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            # `from a.b import c`: a.b.c when c is a module, else a.b (the longest module prefix, in _edges)
            out.update(f"{module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif (isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant)
              and isinstance(node.args[0].value, str)
              and ((isinstance(node.func, ast.Attribute) and node.func.attr == "import_module")
                   or (isinstance(node.func, ast.Name) and node.func.id in ("import_module", "__import__")))):
            out.add(node.args[0].value)
    return out


def _edges(mods: dict[str, Path]) -> dict[str, set[str]]:
    """Module -> the project modules it imports.

    `from a.b import c` is an edge to a.b.c when that is a module, else to a.b.
    """
    edges: dict[str, set[str]] = {}
    for name, path in mods.items():
        targets = set()
        for imported in _imported_names(name, path):
            # the longest prefix that is a project module: `pipeline.x.y.func` -> `pipeline.x.y`
            parts = imported.split(".")
            for n in range(len(parts), 0, -1):
                if ".".join(parts[:n]) in mods:
                    targets.add(".".join(parts[:n]))
                    break
        edges[name] = targets - {name}
    return edges


def _forbidden_imports(mods: dict[str, Path]) -> list[tuple[str, str]]:
    return sorted((name, imported) for name, path in mods.items() for imported in _imported_names(name, path)
                  if imported.split(".")[0] in NOT_PRODUCT)


def _wrong_way(edges: dict[str, set[str]], root: Path = ROOT) -> list[tuple[str, str]]:
    """Imports to a higher layer, or to a package of the same layer listed at or after the importer's."""
    return sorted((a, b) for a, targets in edges.items() for b in targets
                  if _package(a, root) != _package(b, root) and RANK[_package(b, root)] > RANK[_package(a, root)])


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Every back edge found by a depth-first search, as the cycle it closes."""
    state: dict[str, int] = {}
    cycles: list[list[str]] = []

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                cycles.append(stack[stack.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt, stack + [nxt])
        state[node] = 2

    for start in sorted(edges):
        if start not in state:
            visit(start, [start])
    return cycles


def _docs_layers() -> list[list[str]]:
    """The layer table of docs/architecture.md as [[package, ...] per layer], in the table's order."""
    text = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    layers: dict[int, list[str]] = {}
    for layer, cell in re.findall(r"^\|\s*(\d+)\s*\|([^|]*)\|", text, flags=re.M):
        for token in re.findall(r"`([^`]+)`", cell):
            if token == "pipeline":
                pkg = "core"
            elif token.startswith("pipeline/"):
                pkg = token.removeprefix("pipeline/")
            elif token in ("flows", "models"):
                pkg = token
            else:
                continue  # a module named in parentheses, e.g. (`types`, `errors`)
            layers.setdefault(int(layer), []).append(pkg)
    return [layers[k] for k in sorted(layers)]


# -- the rules, on the real tree ------------------------------------------------------------------------------


def test_every_package_has_exactly_one_place():
    listed = [pkg for layer in LAYERS for pkg in layer]
    assert len(listed) == len(set(listed))
    assert {_package(m) for m in _modules()} == set(listed)


def test_the_docs_layer_table_is_the_tests_table():
    assert _docs_layers() == LAYERS


def test_no_import_goes_up_a_layer_or_up_the_order_within_a_layer():
    assert _wrong_way(_edges(_modules())) == []


def test_product_code_never_imports_evaluation_bench_or_tests():
    assert _forbidden_imports(_modules()) == []


def test_the_module_graph_has_no_cycle():
    assert _cycles(_edges(_modules())) == []


def test_evaluation_code_is_not_in_the_installed_package():
    for name in ("synthetic", "metrics"):
        assert not (ROOT / "pipeline" / f"{name}.py").exists()
    text = (ROOT / "pyproject.toml").read_text()
    assert '"evaluation*"' not in text and '"bench*"' not in text


# -- the checks find what they are for (planted trees) --------------------------------------------------------


def test_cycle_search_finds_a_planted_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == [["a", "b", "c", "a"]]
    assert _cycles({"a": {"b"}, "b": set(), "c": {"a", "b"}}) == []


def _plant(root: Path, files: dict[str, str]) -> dict[str, Path]:
    for rel, text in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text, encoding="utf-8")
    for top in PRODUCT:
        (root / top).mkdir(exist_ok=True)
        (root / top / "__init__.py").touch()
    return _modules(root)


@pytest.mark.parametrize("source", [
    "from pipeline.report import summary\n",
    "from pipeline.report.summary import render\n",
    "import pipeline.report.summary\n",
    "from ..report import summary\n",
    "from ..report.summary import render\n",
    "def f():\n    from .. import report\n",
    "import importlib\nimportlib.import_module('pipeline.report.summary')\n",
])
def test_a_planted_import_against_the_order_is_found(tmp_path, source):
    """`research` is listed before `report` in layer 4: research importing report fails, in every spelling."""
    mods = _plant(tmp_path, {
        "pipeline/report/__init__.py": "", "pipeline/report/summary.py": "def render(): ...\n",
        "pipeline/research/__init__.py": "", "pipeline/research/compare.py": source,
    })
    assert _wrong_way(_edges(mods), tmp_path) != []


def test_a_planted_import_down_the_order_passes(tmp_path):
    mods = _plant(tmp_path, {
        "pipeline/research/__init__.py": "", "pipeline/research/compare.py": "def f(): ...\n",
        "pipeline/report/__init__.py": "",
        "pipeline/report/summary.py": "from ..research.compare import f\nfrom pipeline.research import compare\n",
    })
    edges = _edges(mods)
    assert edges["pipeline.report.summary"] == {"pipeline.research.compare"}
    assert _wrong_way(edges, tmp_path) == []


@pytest.mark.parametrize("source", [
    "import evaluation.synthetic\n",
    "from bench.bench_session import x\n",
    "def f():\n    from tests.conftest import y\n",
    "import importlib\nm = importlib.import_module('evaluation.metrics')\n",
])
def test_a_planted_import_of_evaluation_bench_or_tests_is_found(tmp_path, source):
    mods = _plant(tmp_path, {"flows/x.py": source})
    assert [name for name, _ in _forbidden_imports(mods)] == ["flows.x"]


def test_the_docs_table_reader_reads_layers_in_order():
    assert _docs_layers()[0][0] == "core" and _docs_layers()[-1] == ["cli"]


# -- no SQL in the command layer ------------------------------------------------------------------------------

#: A string that is an SQL statement (upper-case keywords, as every query of the project is written).
SQL_STATEMENT = re.compile(r"\s*(SELECT\s.+\sFROM\s|INSERT\s+INTO\s|UPDATE\s+\w+\s+SET\s|DELETE\s+FROM\s|"
                           r"CREATE\s+(OR\s+REPLACE\s+)?(TEMP\s+)?(TABLE|VIEW|INDEX)\s|DROP\s+(TABLE|VIEW)\s|"
                           r"WITH\s+\w+\s+AS\s*\(|ALTER\s+TABLE\s)", re.S)
#: Methods that run SQL on a DuckDB connection.
SQL_CALLS = frozenset({"execute", "executemany", "sql"})


def _sql_in_cli(root: Path = ROOT) -> list[tuple[str, int, str]]:
    """``(module, line, what)`` for every SQL statement string and SQL call in pipeline/cli.

    A string counts when it starts like a statement (an f-string: its first literal part); a call when it is
    ``.execute``/``.executemany``/``.sql`` on anything.
    """
    found = []
    for path in sorted((root / "pipeline" / "cli").rglob("*.py")):
        rel = path.relative_to(root).as_posix()
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            text = None
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                text = node.value
            elif isinstance(node, ast.JoinedStr) and node.values and isinstance(node.values[0], ast.Constant):
                text = str(node.values[0].value)
            if text is not None and SQL_STATEMENT.match(text):
                found.append((rel, node.lineno, f"SQL string {text[:40]!r}"))
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in SQL_CALLS:
                found.append((rel, node.lineno, f".{node.func.attr}() call"))
    return sorted(set(found))


def test_the_command_layer_holds_no_sql():
    """pipeline/cli parses and prints: its queries live in storage, privacy, research or report."""
    assert _sql_in_cli() == []


@pytest.mark.parametrize("source", [
    "def f(con):\n    return con.execute('SELECT session_id FROM sessions WHERE therapist_id = ?', ['t']).fetchall()\n",
    "Q = (\"SELECT a\"\n     \" FROM b\")\n",
    "def f(con, t):\n    con.execute(f\"DELETE FROM {t} WHERE x = 1\")\n",
    "def f(con, q):\n    return con.sql(q)\n",
    "S = '''\n  WITH x AS (SELECT 1) SELECT * FROM x'''\n",
    "def f(con, rows):\n    con.executemany(STATEMENT, rows)\n",
])
def test_sql_planted_in_the_command_layer_is_found(tmp_path, source):
    _plant(tmp_path, {"pipeline/cli/__init__.py": "", "pipeline/cli/x.py": source})
    assert {m for m, _, _ in _sql_in_cli(tmp_path)} == {"pipeline/cli/x.py"}


@pytest.mark.parametrize("source", [
    "HELP = 'Delete the session from the database and select a report'\n",
    "def f(r):\n    print(f\"Run report: SELECT * FROM run_items WHERE run_id = '{r}'\")\n",
    "def f(ids):\n    return [i for i in ids if i.startswith('S-')]\n",
])
def test_messages_that_mention_sql_are_not_sql(tmp_path, source):
    _plant(tmp_path, {"pipeline/cli/__init__.py": "", "pipeline/cli/x.py": source})
    assert _sql_in_cli(tmp_path) == []
