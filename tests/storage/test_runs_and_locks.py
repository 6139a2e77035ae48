"""Interrupted runs, a database held by another process, and files that are not this pipeline's database.

Issue #12 classes 6 and 7: a run killed mid-way is closed as *interrupted* by the next one; an open waits
(bounded) for another process's lock on the file and then fails with ``database_locked``; a read-only
folder, a damaged file or a SQLite file is one clear :class:`StorageError` line, never a traceback and
never a network attempt.
"""

from __future__ import annotations

import os
import socket
import sqlite3
import stat
import subprocess
import sys
import time

import pytest

from pipeline.errors import DatabaseLockedError, StorageError
from pipeline.storage import db

HOLD = """
import sys, time, duckdb
con = duckdb.connect(sys.argv[1], read_only=True)
print("holding", flush=True)
time.sleep(float(sys.argv[2]))
con.close()
"""


def hold_file(path, seconds: float) -> subprocess.Popen:
    """A second process holding the DuckDB file (read-only, like `duckdb -readonly` or a notebook)."""
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(path), str(seconds)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "holding"
    return proc


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_migration_records_process_and_flow_handle(tmp_path):
    con = db.connect(tmp_path / "a.duckdb")
    db.start_run(con, run_id="r1", pipeline_version="0.1.0", models={}, command="test")
    pid, host = con.execute("SELECT pid, host FROM pipeline_runs WHERE run_id = 'r1'").fetchone()
    assert pid == os.getpid() and host == socket.gethostname()
    db.record_item(con, run_id="r1", source_path="x.wav", state="processed", session_id="s1", flow_handle="h-1")
    assert db.flow_handles(con, ["s1"]) == ["h-1"] and db.flow_handles(con, ["s2"]) == []
    con.close()


def test_a_run_whose_process_is_gone_is_closed_as_interrupted(tmp_path):
    con = db.connect(tmp_path / "a.duckdb")
    host = socket.gethostname()
    rows = [("killed", dead_pid(), host), ("alive", 1, host), ("other-host", dead_pid(), "elsewhere.example"),
            ("before-pids", None, None)]
    for run_id, pid, h in rows:
        con.execute("INSERT INTO pipeline_runs (run_id, pipeline_version, started_at, status, pid, host) "
                    "VALUES (?, '0.1.0', now(), 'running', ?, ?)", [run_id, pid, h])
    assert sorted(db.close_stale_runs(con)) == ["before-pids", "killed"]
    status = dict(con.execute("SELECT run_id, status FROM pipeline_runs").fetchall())
    assert status == {"killed": "interrupted", "alive": "running", "other-host": "running",
                      "before-pids": "interrupted"}
    assert con.execute("SELECT count(*) FROM pipeline_runs WHERE status = 'interrupted' AND finished_at IS NOT NULL"
                       ).fetchone()[0] == 2
    con.close()


def test_an_open_waits_for_a_reader_and_then_gives_up_with_database_locked(tmp_path):
    path = tmp_path / "a.duckdb"
    db.connect(path).close()
    holder = hold_file(path, 30)
    try:
        started = time.monotonic()
        with pytest.raises(DatabaseLockedError, match="locked by another process") as e:
            db.connect(path, lock_wait=1.0)
        assert 1.0 <= time.monotonic() - started < 10 and e.value.code == "database_locked"
        assert "\n" not in str(e.value) and "ALLIANCE_DB_LOCK_WAIT_S" in str(e.value)
    finally:
        holder.kill()
        holder.wait()


def test_an_open_succeeds_once_the_reader_lets_go(tmp_path, monkeypatch):
    path = tmp_path / "a.duckdb"
    db.connect(path).close()
    monkeypatch.setenv(db.LOCK_WAIT_ENV, "30")
    holder = hold_file(path, 2)
    try:
        started = time.monotonic()
        con = db.connect(path)  # waits (default from the environment) instead of failing
        assert time.monotonic() - started >= 0.5
        con.close()
    finally:
        holder.wait(timeout=30)


def test_a_bad_lock_wait_setting_is_refused(monkeypatch):
    monkeypatch.setenv(db.LOCK_WAIT_ENV, "soon")
    with pytest.raises(StorageError, match="ALLIANCE_DB_LOCK_WAIT_S"):
        db.lock_wait_s()


def test_a_new_database_is_owner_only(tmp_path):
    path = tmp_path / "a.duckdb"
    db.connect(path).close()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_a_sqlite_file_is_refused_before_duckdb_looks_at_it(tmp_path, monkeypatch):
    path = tmp_path / "clinic.sqlite"
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE t (a)")
    con.commit()
    con.close()
    for key in (None, "k" * 64):  # plain, and with a database key (the encrypted path probes the file too)
        if key:
            monkeypatch.setenv("ALLIANCE_DB_KEY", key)
        with pytest.raises(StorageError, match="is a SQLite database, not an alliance DuckDB database") as e:
            db.connect(path)
        assert "\n" not in str(e.value)
    extensions = os.path.expanduser("~/.duckdb/extensions")
    found = [f for _, _, files in os.walk(extensions) for f in files if "sqlite" in f]  # none if no folder
    assert found == []  # nothing was installed


@pytest.mark.parametrize("content", [b"", b"not a database at all" * 10, os.urandom(8192)])
def test_a_foreign_or_empty_file_is_one_clear_line(tmp_path, content):
    path = tmp_path / "a.duckdb"
    path.write_bytes(content)
    with pytest.raises(StorageError, match="is not a DuckDB database file") as e:
        db.connect(path)
    assert "\n" not in str(e.value)


def test_a_damaged_database_is_one_clear_line(tmp_path):
    path = tmp_path / "a.duckdb"
    con = db.connect(path)
    con.execute("CREATE TABLE filler AS SELECT range AS a, repeat('x', 100) AS b FROM range(200000)")
    con.close()
    data = bytearray(path.read_bytes())
    for i in range(20_000, len(data), 4096):  # keep the header, break every block after it
        data[i:i + 64] = b"\xff" * 64
    path.write_bytes(bytes(data))
    with pytest.raises(StorageError) as e:
        with db.open(path) as c:
            c.execute("SELECT sum(length(b)) FROM filler").fetchone()
    assert "\n" not in str(e.value) and str(path) in str(e.value)


def test_a_folder_that_cannot_be_created_is_one_clear_line(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(StorageError, match="cannot open database") as e:
        db.connect(blocker / "a.duckdb")
    assert "\n" not in str(e.value)
    from pipeline.storage.lock import exclusive_run

    with pytest.raises(StorageError, match="must be writable"):
        with exclusive_run(blocker / "a.duckdb"):
            pass
