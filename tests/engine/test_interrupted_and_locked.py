"""Issue #12 class 6: interrupted and blocked writes lose nothing and leave nothing 'running'.

- a database held by another process while a session is computed: the write waits (bounded), then the
  result is kept as a pending file, the end state says ``database_locked`` with its path, and the next run
  stores it without computing again;
- a run killed after its write: the next run closes it as ``interrupted`` and, instead of skipping without
  files, writes the missing summary and report.
"""

from __future__ import annotations

import subprocess
import sys

import duckdb
from conftest import write_consent

import pipeline.engine.sequence as sf_mod
from flows.session_flow import process_session
from pipeline.analysis.session import SessionMeta
from pipeline.report.summary import report_stem
from pipeline.storage import db, pending

META = SessionMeta("s1", "c1", "t1")
HOLD = """
import sys, time, duckdb
con = duckdb.connect(sys.argv[1], read_only=True)
print("holding", flush=True)
time.sleep(120)
"""


def _rows(dbp, sql):
    con = duckdb.connect(str(dbp), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def test_a_reader_holding_the_database_during_the_run_loses_nothing(prefect_harness, fakes, recording, tmp_path,
                                                                     monkeypatch):
    write_consent(recording)
    dbp, reports = tmp_path / "a.duckdb", tmp_path / "reports"
    monkeypatch.setenv(db.LOCK_WAIT_ENV, "1")
    transcriber = fakes[0]
    holder: list[subprocess.Popen] = []

    class OpensTheDatabaseMeanwhile:
        """While the recording is transcribed, someone opens the database in a second process."""

        name, model_name = transcriber.name, transcriber.model_name

        def transcribe(self, samples, *, progress=None):
            proc = subprocess.Popen([sys.executable, "-c", HOLD, str(dbp)], stdout=subprocess.PIPE, text=True)
            assert proc.stdout.readline().strip() == "holding"
            holder.append(proc)
            return transcriber.transcribe(samples, progress=progress)

    monkeypatch.setattr(sf_mod, "get_transcriber", lambda options: OpensTheDatabaseMeanwhile())
    try:
        out = process_session(str(recording), META, db_path=str(dbp), reports_dir=str(reports))
    finally:
        for proc in holder:
            proc.kill()
            proc.wait()
    assert out.state == "failed" and out.stage == "storage" and out.error_code == "database_locked", out.message
    (kept,) = pending.list_pending(dbp)
    assert str(kept) in out.message and "nothing is computed again" in out.message
    assert transcriber.calls == 1 and not reports.exists()

    # the next run (any run on this database) stores the kept result first; the recording is then skipped
    monkeypatch.setattr(sf_mod, "get_transcriber", lambda options: transcriber)
    again = process_session(str(recording), META, db_path=str(dbp), reports_dir=str(reports))
    assert again.state == "skipped", again.message
    assert transcriber.calls == 1  # nothing was computed twice
    assert pending.list_pending(dbp) == []
    assert (reports / f"{report_stem('s1')}.md").is_file() and (reports / f"{report_stem('s1')}.html").is_file()
    items = _rows(dbp, "SELECT state, message FROM run_items ORDER BY finished_at")
    assert [s for s, _ in items] == ["processed", "skipped"]
    assert "kept while the database was locked" in items[0][1]
    assert _rows(dbp, "SELECT count(*) FROM sessions") == [(1,)]
    runs = [s for (s,) in _rows(dbp, "SELECT status FROM pipeline_runs ORDER BY started_at")]
    assert runs == ["interrupted", "finished"]  # the locked run could not close itself; the next one did


def test_a_killed_run_is_closed_and_the_rerun_writes_its_missing_report(prefect_harness, fakes, recording, tmp_path):
    write_consent(recording)
    dbp, reports = tmp_path / "a.duckdb", tmp_path / "reports"
    first = process_session(str(recording), META, db_path=str(dbp), reports_dir=str(reports))
    assert first.state == "processed"
    # what SIGKILL between the write and the report leaves: whole rows, no files, the run still 'running'
    for p in reports.iterdir():
        p.unlink()
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    con = db.connect(dbp)
    con.execute("UPDATE pipeline_runs SET status = 'running', finished_at = NULL, pid = ?", [gone.pid])
    con.close()

    again = process_session(str(recording), META, db_path=str(dbp), reports_dir=str(reports))
    assert again.state == "skipped" and "missing summary and report written again" in again.message, again.message
    assert fakes[0].calls == 1
    assert (reports / f"{report_stem('s1')}.md").is_file() and (reports / f"{report_stem('s1')}.html").is_file()
    assert again.summary_path and again.report_path
    runs = [s for (s,) in _rows(dbp, "SELECT status FROM pipeline_runs ORDER BY started_at")]
    assert runs == ["interrupted", "finished"]
    # once the files are there, a re-run is a plain skip
    third = process_session(str(recording), META, db_path=str(dbp), reports_dir=str(reports))
    assert third.state == "skipped" and "written again" not in third.message
