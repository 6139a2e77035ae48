"""Results kept while the database is locked: owner-only, opaque, encrypted with a key, erasable."""

from __future__ import annotations

import os
import stat
from dataclasses import replace

import pytest
from conftest import CLIENT_1

from pipeline.errors import StorageError
from pipeline.storage import encryption, pending


def _item(analysis, **kw):
    return pending.PendingSession(analysis, "/data/session one.wav", "/data/reports", True, False, "run-x", 22.0,
                                  pending.now_iso(), **kw)


def test_a_pending_result_is_owner_only_opaque_and_reads_back(tmp_path, analysis):
    dbp = tmp_path / "a.duckdb"
    path = pending.save(dbp, _item(analysis))
    assert path.parent == pending.pending_dir(dbp) == tmp_path / "a.duckdb.pending"
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700 and stat.S_IMODE(path.stat().st_mode) == 0o600
    assert "s1" not in path.name and "session" not in path.name and len(path.stem) == 32
    back = pending.load(path)
    assert back.analysis.meta == analysis.meta and len(back.analysis.words) == len(analysis.words)
    assert pending.list_pending(dbp) == [path]
    pending.discard(path)
    assert pending.list_pending(dbp) == []


def test_with_a_database_key_the_pending_file_is_encrypted(tmp_path, analysis, monkeypatch):
    monkeypatch.setenv(encryption.KEY_FILE_ENV, str(encryption.generate_key_file(tmp_path / "db.key")))
    path = pending.save(tmp_path / "a.duckdb", _item(analysis))
    word = CLIENT_1.split()[-2]  # a transcript word
    assert word.encode() not in path.read_bytes() and b"SessionAnalysis" not in path.read_bytes()
    assert pending.load(path).analysis.meta.session_id == "s1"
    monkeypatch.setenv(encryption.KEY_FILE_ENV, str(encryption.generate_key_file(tmp_path / "other.key")))
    with pytest.raises(StorageError, match="cannot be decrypted"):
        pending.load(path)
    monkeypatch.delenv(encryption.KEY_FILE_ENV)
    with pytest.raises(StorageError, match="encrypted"):
        pending.load(path)


def test_a_pending_file_others_could_write_is_not_read(tmp_path, analysis):
    path = pending.save(tmp_path / "a.duckdb", _item(analysis))
    os.chmod(path, 0o666)
    with pytest.raises(StorageError, match="writable by others"):
        pending.load(path)
    os.chmod(path, 0o600)
    os.chmod(path.parent, 0o777)
    with pytest.raises(StorageError, match="writable by others"):
        pending.load(path)


def test_a_foreign_file_is_not_unpickled(tmp_path):
    folder = pending.pending_dir(tmp_path / "a.duckdb")
    folder.mkdir(mode=0o700)
    path = folder / ("0" * 32 + ".pkl")
    path.write_bytes(b"\x80\x04not ours")
    os.chmod(path, 0o600)
    with pytest.raises(StorageError, match="not a pending result"):
        pending.load(path)


def test_withdrawal_discards_the_pending_results_of_the_session_or_client(tmp_path, analysis):
    dbp = tmp_path / "a.duckdb"
    pending.save(dbp, _item(analysis))
    other = replace(analysis, meta=replace(analysis.meta, session_id="s2", client_id="c2"))
    keep = pending.save(dbp, _item(other))
    assert [p.name for p in pending.discard_for(dbp, session_ids=["s1"])] and pending.list_pending(dbp) == [keep]
    assert pending.discard_for(dbp, client_id="c2") == [keep] and pending.list_pending(dbp) == []
