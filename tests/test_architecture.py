"""The package's import graph: no cycle, and no import from a lower layer to a higher one (docs/architecture.md)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

#: docs/architecture.md's layers: a module may import only from its own layer or below.
LAYERS = {
    "core": 0, "lexicons": 0, "models": 0,
    "audio": 1, "asr": 1, "codes": 1, "diarization": 1, "markers": 1, "privacy": 1,
    "analysis": 2, "storage": 3, "report": 4, "research": 4, "engine": 5, "flows": 6, "cli": 7,
}


def _modules() -> dict[str, Path]:
    mods = {}
    for top in ("pipeline", "flows", "models"):
        for p in (ROOT / top).rglob("*.py"):
            if "cache" in p.parts:
                continue
            name = ".".join(p.relative_to(ROOT).with_suffix("").parts)
            mods[name.removesuffix(".__init__")] = p
    return mods


def _package(module: str) -> str:
    parts = module.split(".")
    if parts[0] != "pipeline":
        return parts[0]
    if len(parts) >= 2 and (ROOT / "pipeline" / parts[1]).is_dir():
        return parts[1]
    return "core"


def _edges(mods: dict[str, Path]) -> dict[str, set[str]]:
    """Module -> the project modules it imports (at any level: function-level imports count too)."""
    edges: dict[str, set[str]] = {}
    for name, path in mods.items():
        out = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                for alias in node.names:
                    target = f"{node.module}.{alias.name}"
                    out.add(target if target in mods else node.module)
            elif isinstance(node, ast.Import):
                out.update(a.name for a in node.names)
        edges[name] = {m for m in out if m in mods and m != name}
    return edges


def test_every_package_has_a_layer():
    assert {_package(m) for m in _modules()} <= set(LAYERS)


def test_no_import_goes_up_a_layer():
    edges = _edges(_modules())
    upward = [(a, b) for a, targets in edges.items() for b in targets
              if LAYERS[_package(b)] > LAYERS[_package(a)]]
    assert upward == []


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


def test_cycle_search_finds_a_planted_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == [["a", "b", "c", "a"]]
    assert _cycles({"a": {"b"}, "b": set(), "c": {"a", "b"}}) == []


def test_the_module_graph_has_no_cycle():
    assert _cycles(_edges(_modules())) == []


def test_evaluation_code_is_not_in_the_installed_package():
    for name in ("synthetic", "metrics"):
        assert not (ROOT / "pipeline" / f"{name}.py").exists()
    text = (ROOT / "pyproject.toml").read_text()
    assert '"evaluation*"' not in text and '"bench*"' not in text
