"""`alliance process` answers before any Prefect server starts, and bad databases are one clear line.

Issue #12 classes 7 and 9: validation, consent and the database check run first (a refusal takes about a
second, not 10-25 s of Prefect's temporary server); a read-only folder, a damaged file or a SQLite file as
``--db`` is one ``error:`` line with exit code 2 before anything is computed, never a traceback, and the
SQLite file makes no network attempt. The background Prefect server dies with a killed ``alliance``.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import sqlite3
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
import soundfile as sf
from conftest import ROOT, tone, write_consent

from pipeline.cli.main import main
from pipeline.report.summary import report_stem
from pipeline.storage import db, pending

ARGS = ["--session-id", "s1", "--client-id", "c1", "--therapist-id", "t1"]


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in ("PREFECT_HOME", "PREFECT_API_URL")}


def _alliance(*args: str, prefix: list[str] | None = None,
              cwd: Path | None = None) -> tuple[subprocess.CompletedProcess, float]:
    started = time.perf_counter()
    out = subprocess.run([*(prefix or []), sys.executable, "-m", "pipeline.cli.main", *args], capture_output=True,
                         text=True, timeout=300, env=_env(), cwd=cwd or ROOT)
    return out, time.perf_counter() - started


@pytest.fixture
def wav(tmp_path) -> Path:
    path = tmp_path / "session one.wav"
    sf.write(path, tone(22.0), 16_000)
    return path


def _one_error_line(out: subprocess.CompletedProcess) -> str:
    assert "Traceback" not in out.stderr and "Traceback" not in out.stdout, out.stderr
    lines = [line for line in out.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), out.stderr
    return lines[0]


def test_a_refusal_answers_before_any_prefect_server_starts(wav, tmp_path):
    dbp = tmp_path / "data" / "a.duckdb"
    out, elapsed = _alliance("process", str(wav), *ARGS, "--db", str(dbp), "--reports-dir", str(tmp_path / "r"))
    assert out.returncode == 3 and "REFUSED" in out.stdout and "consent" in out.stdout, out.stdout + out.stderr
    assert "temporary server" not in out.stdout + out.stderr
    home = dbp.parent / ".alliance-prefect"
    assert stat.S_IMODE(home.stat().st_mode) == 0o700 and not (home / "prefect.db").exists()  # no server ran
    assert elapsed < 8, f"refusal took {elapsed:.1f} s (about 1 s expected)"
    assert stat.S_IMODE(dbp.stat().st_mode) == 0o600
    with db.open(dbp, read_only=True) as con:
        assert con.execute("SELECT state, error_code FROM run_items").fetchall() == [("refused", "no_consent")]
        assert con.execute("SELECT status FROM pipeline_runs").fetchall() == [("finished",)]


def _remote_calls(log: str) -> list[str]:
    """Lines of an strace log showing a non-loopback connect or a host-name lookup (resolver files)."""
    bad = []
    for line in log.splitlines():
        if re.search(r'open(at)?\(.*"/etc/(resolv\.conf|hosts|gai\.conf)"', line) and "ENOENT" not in line:
            bad.append(line)
        elif "connect(" in line and "AF_INET" in line and not re.search(r'"(127\.0\.0\.1|::1)"', line):
            bad.append(line)
    return bad


def test_a_sqlite_file_as_db_fails_clearly_without_any_network_attempt(wav, tmp_path):
    write_consent(wav)
    path = tmp_path / "clinic.sqlite"
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE sessions (id)")
    con.commit()
    con.close()
    strace = shutil.which("strace")
    trace = tmp_path / "strace.log"
    prefix = [strace, "-f", "-qq", "-e", "trace=connect,open,openat", "-o", str(trace)] if strace else None
    out, elapsed = _alliance("process", str(wav), *ARGS, "--db", str(path), prefix=prefix)
    assert out.returncode == 2
    assert "is a SQLite database, not an alliance DuckDB database" in _one_error_line(out)
    if strace:
        assert _remote_calls(trace.read_text()) == []
        assert "sqlite_scanner" not in trace.read_text()  # DuckDB never even looked for its sqlite extension


@pytest.mark.parametrize("content", [os.urandom(64 * 1024), b""])
def test_a_damaged_database_fails_before_anything_is_computed(wav, tmp_path, content):
    write_consent(wav)  # a valid, consented recording: only the database is wrong
    path = tmp_path / "a.duckdb"
    path.write_bytes(content)
    out, elapsed = _alliance("process", str(wav), *ARGS, "--db", str(path))
    assert out.returncode == 2 and "not a DuckDB database file" in _one_error_line(out)
    assert elapsed < 8 and "transcription" not in out.stdout


def test_a_database_under_a_file_is_one_clear_line(wav, tmp_path):
    write_consent(wav)
    (tmp_path / "blocker").write_text("x")
    out, _ = _alliance("process", str(wav), *ARGS, "--db", str(tmp_path / "blocker" / "a.duckdb"))
    assert out.returncode == 2 and "cannot open database" in _one_error_line(out)


def test_a_read_only_folder_is_one_clear_line(wav, tmp_path):
    write_consent(wav)
    folder = tmp_path / "ro"
    folder.mkdir()
    if os.geteuid() == 0:  # root writes into any folder: make it a read-only file system instead
        if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1M,ro", "tmpfs", str(folder)],
                          capture_output=True).returncode:
            pytest.skip("cannot mount a read-only tmpfs here")
        undo = ["umount", "-l", str(folder)]
    else:
        os.chmod(folder, 0o555)
        undo = ["chmod", "755", str(folder)]
    try:
        out, _ = _alliance("process", str(wav), *ARGS, "--db", str(folder / "a.duckdb"), cwd=tmp_path)
    finally:
        subprocess.run(undo, capture_output=True)
    assert out.returncode == 2, out.stderr
    line = _one_error_line(out)
    assert re.search("Permission denied|Read-only file system", line) and "a.duckdb" in line, line


def test_the_background_prefect_server_dies_with_a_killed_alliance(tmp_path):
    """SIGKILL leaves no orphaned Prefect server: the kernel stops it with its parent (PR_SET_PDEATHSIG)."""
    if not sys.platform.startswith("linux"):
        pytest.skip("PR_SET_PDEATHSIG is Linux-only")
    home = tmp_path / ".alliance-prefect"
    home.mkdir(mode=0o700)
    code = ("import os, sys; os.environ['PREFECT_HOME'] = sys.argv[1]; import pipeline\n"
            "from flows.server import start_background_server\n"
            "s = start_background_server(sys.argv[1]); print(s.process.pid, flush=True); s.wait_ready()\n"
            "print('ready', flush=True); os.kill(os.getpid(), 9)")
    out = subprocess.run([sys.executable, "-c", code, str(home)], capture_output=True, text=True, timeout=300,
                         env=_env())
    lines = out.stdout.split()
    assert out.returncode == -signal.SIGKILL and lines[1:] == ["ready"], out.stdout + out.stderr
    server = int(lines[0])
    for _ in range(100):
        try:
            os.kill(server, 0)
        except ProcessLookupError:
            break
        time.sleep(0.1)
    else:
        os.kill(server, signal.SIGKILL)
        pytest.fail("the Prefect server outlived the killed process")
    assert (home / "prefect.db").is_file()  # it used the database's Prefect home


def test_a_prompt_exit_asks_the_background_server_to_stop(tmp_path):
    """The console script leaves with os._exit; before that, stop_started() stops the server without waiting."""
    home = tmp_path / ".alliance-prefect"
    home.mkdir(mode=0o700)
    code = ("import os, sys, time; os.environ['PREFECT_HOME'] = sys.argv[1]; import pipeline\n"
            "from flows.server import start_background_server, stop_started\n"
            "s = start_background_server(sys.argv[1]); s.wait_ready()\n"
            "t = time.perf_counter(); stop_started(); asked = time.perf_counter() - t\n"
            "print(round(asked, 3), s.process.wait(timeout=30), flush=True)")
    out = subprocess.run([sys.executable, "-c", code, str(home)], capture_output=True, text=True, timeout=300,
                         env=_env())
    assert out.returncode == 0, out.stdout + out.stderr
    asked, server_exit = out.stdout.split()
    assert float(asked) < 0.5  # no waiting for the shutdown
    assert int(server_exit) in (0, -signal.SIGTERM)  # it was asked to stop and did


def test_a_prompt_exit_is_not_taken_while_prefects_own_server_runs(tmp_path):
    """The console script sees Prefect's own temporary server and keeps the normal exit.

    That server (ALLIANCE_PREFECT_SERVER=temporary, or a client with no API URL) is a child process only
    Prefect's exit hook stops.
    """
    home = tmp_path / ".alliance-prefect"
    home.mkdir(mode=0o700)
    code = ("import os, sys; os.environ['PREFECT_HOME'] = sys.argv[1]; import pipeline\n"
            "from pipeline.cli.main import prefect_runs_its_own_server as runs\n"
            "before = runs()\n"
            "from prefect.server.api.server import SubprocessASGIServer\n"
            "s = SubprocessASGIServer(); s.start(); during = runs(); s.stop()\n"
            "print(before, during, runs(), flush=True)")
    out = subprocess.run([sys.executable, "-c", code, str(home)], capture_output=True, text=True, timeout=300,
                         env=_env())
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.split() == ["False", "True", "False"]


def test_process_skips_and_rewrites_missing_reports_without_the_flow(prefect_harness, fakes, recording, tmp_path,
                                                                      capsys):
    write_consent(recording)
    dbp, reports = tmp_path / "a.duckdb", tmp_path / "reports"
    common = ["process", str(recording), *ARGS, "--db", str(dbp), "--reports-dir", str(reports)]
    assert main(common) == 0 and "Processed s1" in capsys.readouterr().out
    for p in reports.iterdir():
        p.unlink()
    assert main(common) == 0
    out = capsys.readouterr().out
    assert "SKIPPED" in out and "written again" in out and fakes[0].calls == 1
    assert (reports / f"{report_stem('s1')}.html").is_file()


def test_flush_pending_stores_a_kept_result(tmp_path, analysis, capsys):
    dbp, reports = tmp_path / "a.duckdb", tmp_path / "reports"
    db.connect(dbp).close()
    pending.save(dbp, pending.PendingSession(analysis, str(tmp_path / "x.wav"), str(reports), True, False, "run-old",
                                            22.0, pending.now_iso()))
    assert main(["db", "flush-pending", "--db", str(dbp)]) == 0
    out = capsys.readouterr().out
    assert "processed s1" in out and "0 left" in out and pending.list_pending(dbp) == []
    assert (reports / f"{report_stem('s1')}.md").is_file()
    with db.open(dbp, read_only=True) as con:
        assert con.execute("SELECT count(*) FROM words").fetchone()[0] == len(analysis.words)
        assert con.execute("SELECT state FROM run_items").fetchall() == [("processed",)]
    assert main(["db", "flush-pending", "--db", str(dbp)]) == 0 and "No pending results" in capsys.readouterr().out


def test_the_startup_benchmark_renders_its_table():
    from bench import bench_startup

    row = {"exit": 0, "total_s": 60.0, "in_flow_s": 40.0, "start_up_s": 20.0, "load_avg_1m": 2.0,
           "phases": {"checks_s": 1.0, "imports_s": 8.0, "models_s": 6.0, "server_s": 1.0, "flow_s": 44.0,
                      "exit_s": 0.5}}
    doc = {"audio": "sample_audio/demo_session.flac", "audio_s": 205.2, "cpus": 2,
           "rows": {"refusal": {"exit": 3, "total_s": 1.4, "load_avg_1m": 2.0}, "background": row,
                    "long-lived": {**row, "server_start_s": 8.0}, "no-server": {"result": "error ValueError"}}}
    table = bench_startup.markdown(doc)
    assert "| refusal (no consent record; median of 3) | 3 | 1.4 | - | - | - |" in table
    assert "| 60.0 | 40.0 | 20.0 | 1.0 / 8.0 / 6.0 / 1.0 / 4.0 / 0.5 |" in table and "error ValueError" in table
