"""A full disk and a read-only database: clear errors, nothing corrupted. Needs root to mount a tmpfs."""

from __future__ import annotations

import hashlib
import subprocess
from dataclasses import replace
from pathlib import Path

import pytest

from pipeline.analysis.session import SessionMeta
from pipeline.errors import StorageError
from pipeline.storage import db
from pipeline.types import AttributedWord


@pytest.fixture
def small_fs(tmp_path):
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8M", "tmpfs", str(mnt)], capture_output=True).returncode:
        pytest.skip("cannot mount a tmpfs here (needs root)")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _counts(path: Path) -> dict[str, int]:
    con = db.connect(path, read_only=True)
    try:
        return {t: con.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in ("sessions", "words", "indicators")}
    finally:
        con.close()


def test_disk_full_write_fails_clearly_and_keeps_old_rows(small_fs, analysis):
    path = small_fs / "a.duckdb"
    con = db.connect(path)
    db.write_session(con, analysis, run_id="r1", pipeline_version="0.1.0")
    con.close()
    before = _counts(path)
    # a second, huge session, with the disk nearly full
    filler = small_fs / "filler"
    subprocess.run(["dd", "if=/dev/zero", f"of={filler}", "bs=64k"], capture_output=True)  # until ENOSPC
    filler.write_bytes(filler.read_bytes()[: -512 * 1024])  # leave ~0.5 MB free
    words = tuple(AttributedWord(i * 0.1, i * 0.1 + 0.05, "word" * 20, 0.9, "SPEAKER_00") for i in range(200_000))
    big = replace(analysis, meta=SessionMeta("s2", "c1", "t1"), audio_sha256="cd" * 32, words=words)
    con = db.connect(path)
    with pytest.raises(StorageError, match="s2") as e:
        db.write_session(con, big, run_id="r2", pipeline_version="0.1.0")
    con.close()
    assert "rolled back" in str(e.value) and "no space left" in str(e.value).lower()
    filler.unlink()
    assert _counts(path) == before  # the first session is intact, nothing of the second


def test_read_only_database_is_a_clear_error_and_untouched(small_fs, analysis):
    path = small_fs / "a.duckdb"
    con = db.connect(path)
    db.write_session(con, analysis, run_id="r1", pipeline_version="0.1.0")
    con.close()
    digest = _sha(path)
    assert subprocess.run(["mount", "-o", "remount,ro", str(small_fs)], capture_output=True).returncode == 0
    with pytest.raises(StorageError, match="cannot open database") as e:
        db.connect(path)
    assert "read-only" in str(e.value).lower()
    assert _sha(path) == digest
    assert _counts(path)["sessions"] == 1  # still readable
