"""`pip install .` gives a working package.

pyproject.toml declares every third-party module the installed code imports (module-level imports as main
dependencies, the rest as main dependencies or extras), and a wheel built from the tree installs into a fresh
virtual environment and imports every module, offline.
"""

from __future__ import annotations

import ast
import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tomllib
import zipfile
from importlib.metadata import PackageNotFoundError, packages_distributions, version
from pathlib import Path

import pytest
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[1]
PRODUCT = ("pipeline", "flows", "models")


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _product_files(root: Path = ROOT) -> list[Path]:
    return [p for top in PRODUCT for p in sorted((root / top).rglob("*.py"))
            if p.relative_to(root).parts[:2] != ("models", "cache")]


def third_party_imports(files: list[Path]) -> dict[str, str]:
    """Dotted third-party import -> "module" when any file imports it at module level, else "function"."""
    out: dict[str, str] = {}
    for path in files:
        tree = ast.parse(path.read_text(encoding="utf-8"))
        top = {id(n) for n in tree.body}
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                first = name.split(".")[0]
                if first in sys.stdlib_module_names or first in PRODUCT or first == "__future__":
                    continue
                kind = "module" if id(node) in top else "function"
                if out.get(name) != "module":
                    out[name] = kind
    return out


def distribution_of(module: str, dists: dict[str, list[str]]) -> str | None:
    """The installed distribution that provides ``module``.

    For a namespace shared by several distributions (pyannote.*), the one named after the module's first two
    parts: pyannote.audio -> pyannote-audio.
    """
    parts = module.split(".")
    found = dists.get(parts[0], [])
    if len(found) == 1:
        return _norm(found[0])
    if len(parts) > 1:
        wanted = _norm(f"{parts[0]}-{parts[1]}")
        if wanted in {_norm(d) for d in found}:
            return wanted
    return None


def declared() -> tuple[set[str], dict[str, set[str]]]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    main = {_norm(Requirement(r).name) for r in project["dependencies"]}
    extras = {k: {_norm(Requirement(r).name) for r in v} for k, v in project.get("optional-dependencies", {}).items()}
    return main, extras


def undeclared(imports: dict[str, str], main: set[str], extras: dict[str, set[str]],
               dists: dict[str, list[str]]) -> list[str]:
    """Imports with no declared distribution; module-level imports must be main dependencies."""
    optional = set().union(*extras.values())
    missing = []
    for module, kind in sorted(imports.items()):
        dist = distribution_of(module, dists)
        allowed = main if kind == "module" else main | optional
        if dist is None or dist not in allowed:
            missing.append(f"{module} ({kind}-level, distribution {dist})")
    return missing


def test_every_third_party_import_is_declared():
    main, extras = declared()
    assert undeclared(third_party_imports(_product_files()), main, extras, packages_distributions()) == []


def test_every_declared_distribution_is_installed_here():
    """A misspelt or unpinned name would not be: the declared set is the pinned set of requirements.txt."""
    main, extras = declared()
    missing = []
    for name in sorted(main | set().union(*extras.values())):
        try:
            version(name)
        except PackageNotFoundError:
            missing.append(name)
    assert missing == []


def test_the_declaration_check_finds_a_planted_undeclared_import(tmp_path):
    (tmp_path / "pipeline").mkdir()
    (tmp_path / "pipeline" / "x.py").write_text("import jinja2\nimport numpy\n\ndef f():\n    import yaml\n")
    imports = third_party_imports(_product_files(tmp_path))
    assert imports == {"jinja2": "module", "numpy": "module", "yaml": "function"}
    dists = {"jinja2": ["Jinja2"], "numpy": ["numpy"], "yaml": ["PyYAML"]}
    assert undeclared(imports, {"numpy"}, {"x": {"pyyaml"}}, dists) == ["jinja2 (module-level, distribution jinja2)"]
    # a module-level import declared only as an extra is not enough: importing the module would fail
    assert undeclared(imports, {"numpy"}, {"x": {"pyyaml", "jinja2"}}, dists) == [
        "jinja2 (module-level, distribution jinja2)"]
    assert undeclared(imports, {"numpy", "jinja2"}, {"x": {"pyyaml"}}, dists) == []


def test_a_namespace_import_maps_to_its_own_distribution():
    dists = {"pyannote": ["pyannote.audio", "pyannote-core", "pyannote.metrics"]}
    assert distribution_of("pyannote.audio.pipelines", dists) == "pyannote-audio"
    assert distribution_of("pyannote.core", dists) == "pyannote-core"
    assert distribution_of("pyannote", dists) is None


def test_a_missing_optional_backend_is_a_setup_error_not_a_traceback(tmp_path, monkeypatch):
    from pipeline.asr.transcribe import OpenAIWhisperTranscriber, TranscribeOptions
    from pipeline.errors import ConfigError

    monkeypatch.setitem(sys.modules, "whisper", None)  # `import whisper` raises ImportError
    with pytest.raises(ConfigError, match=r"alliance-pipeline\[openai-whisper\]"):
        OpenAIWhisperTranscriber.load(tmp_path / "model.pt", ct2_dir=tmp_path,
                                      options=TranscribeOptions(backend="openai-whisper"))


# -- the wheel -------------------------------------------------------------------------------------------------

_IMPORT_ALL = """
import importlib, json, pkgutil, sys
names, failed = [], {}
for top in ("pipeline", "flows", "models"):
    package = importlib.import_module(top)
    names.append(top)
    names += [m.name for m in pkgutil.walk_packages(package.__path__, top + ".")]
for name in names:
    try:
        module = importlib.import_module(name)
        if not module.__file__.startswith(sys.prefix):
            failed[name] = "imported from " + module.__file__
    except Exception as e:
        failed[name] = f"{type(e).__name__}: {e}"
print(json.dumps({"modules": names, "failed": failed}))
"""


def _run(cmd: list[str], env: dict[str, str], cwd: Path, timeout: int = 600) -> str:
    """Run a command; fail with its output when it fails."""
    done = subprocess.run([str(c) for c in cmd], env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"{cmd}: exit {done.returncode}\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}"
    return done.stdout


def _not_source(folder: str, names: list[str]) -> list[str]:
    return [n for n in names if n == "__pycache__" or n.endswith(".pyc")
            or (Path(folder) == ROOT / "models" and n == "cache")]


def _copy_tree(dest: Path) -> None:
    """The files a wheel is built from (not the checkout itself: the build must not write into it)."""
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, dest / name)
    for top in PRODUCT:
        shutil.copytree(ROOT / top, dest / top, ignore=_not_source)


@pytest.mark.integration
def test_a_wheel_installs_offline_into_a_fresh_venv_and_imports_every_module(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "PYTHON"))}
    env.update(PIP_NO_INDEX="1", PIP_DISABLE_PIP_VERSION_CHECK="1", PIP_CONFIG_FILE=os.devnull,
               PREFECT_HOME=str(tmp_path / "prefect"), HOME=str(tmp_path))
    src = tmp_path / "src"
    src.mkdir()
    _copy_tree(src)
    wheels = tmp_path / "wheels"
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
          "--wheel-dir", wheels, src], env, tmp_path)
    (wheel,) = wheels.glob("alliance_pipeline-*.whl")

    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")}
    assert tops == set(PRODUCT)
    for data in ("pipeline/storage/migrations/0001_initial.sql", "pipeline/analysis/indicator_definitions.json",
                 "pipeline/lexicons/deid.json", "models/manifest.toml"):
        assert data in names
    assert any(n.startswith("pipeline/report/templates/") and n.endswith(".j2") for n in names)
    (metadata,) = [n for n in names if n.endswith(".dist-info/METADATA")]
    requires = [Requirement(line.removeprefix("Requires-Dist:").strip())
                for line in zipfile.ZipFile(wheel).read(metadata).decode().splitlines()
                if line.startswith("Requires-Dist:")]
    main, extras = declared()
    assert {_norm(r.name) for r in requires if r.marker is None} == main
    assert {_norm(r.name) for r in requires if r.marker is not None} == set().union(*extras.values())

    # A fresh venv with no site packages; the pinned third-party set (this interpreter's) is seen through a
    # .pth line, after the venv's own site-packages, so the wheel's copy of the package is the one imported.
    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", venv], env, tmp_path)
    python = venv / "bin" / "python"
    site = Path(_run([python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"], env, tmp_path).strip())
    (site / "pinned-set.pth").write_text(sysconfig.get_path("purelib") + "\n")
    _run([sys.executable, "-m", "pip", "--python", python, "install", "--no-deps", "--no-index", "--quiet", wheel],
         env, tmp_path)

    out = _run([python, "-c", _IMPORT_ALL], env, tmp_path)
    result = json.loads(out.strip().splitlines()[-1])
    assert result["failed"] == {}
    expected = {".".join(p.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
                for p in _product_files()}
    assert set(result["modules"]) == expected

    assert "process" in _run([venv / "bin" / "alliance", "--help"], env, tmp_path)
