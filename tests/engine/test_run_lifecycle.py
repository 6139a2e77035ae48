"""One owner of a run (``pipeline.engine.run.owned_run``) behind every entry point that writes one.

Ctrl-C anywhere inside a run leaves it ``interrupted`` (never ``running``), whichever entry point started it:
the session flow, the batch flow, ``alliance process``'s fast path (a refused recording) and
``alliance db flush-pending``. Before, only the two flows closed their run on an exception.
A new ``alliance process`` opens the database at most 4 times and hands its precheck on (the flow neither
re-reads the consent nor hashes the file again).
"""

from __future__ import annotations

import contextlib
import csv
import re
import shutil
import subprocess
import sys

import duckdb
import pytest
import soundfile as sf
from conftest import ROOT, pyannote_sample, write_consent

import flows.batch_flow as batch_mod
import pipeline.engine.batch_checks as batch_checks
import pipeline.engine.sequence as sequence_mod
from pipeline.analysis.session import SessionMeta
from pipeline.engine.run import owned_run
from pipeline.storage import db, pending

META = SessionMeta("s1", "c1", "t1")


def _statuses(dbp) -> list[str]:
    con = duckdb.connect(str(dbp), read_only=True)
    try:
        return [r[0] for r in con.execute("SELECT status FROM pipeline_runs ORDER BY started_at").fetchall()]
    finally:
        con.close()


def _ctrl_c(*args, **kwargs):
    raise KeyboardInterrupt


def _session_flow(tmp_path, recording, monkeypatch):
    from flows.session_flow import process_session

    write_consent(recording)
    monkeypatch.setattr(sequence_mod, "get_transcriber", lambda options: _ctrl_c())  # in the compute task
    with pytest.raises(KeyboardInterrupt):
        process_session(str(recording), META, db_path=str(tmp_path / "a.duckdb"),
                        reports_dir=str(tmp_path / "reports"))


def _batch_flow(tmp_path, recording, monkeypatch):
    manifest = tmp_path / "manifest.csv"
    with manifest.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["audio", "session_id", "client_id", "therapist_id", "consent_scope", "consented_on",
                    "consented_by"])
        w.writerow(["x.wav", "", "c9", "t9", "clinical", "2026-01-01", "client"])  # a manifest failure
    monkeypatch.setattr(batch_checks, "manifest_failure", _ctrl_c)  # in the flow's own thread, inside the run
    with pytest.raises(KeyboardInterrupt):
        batch_mod.run_batch(str(manifest), workers=1, db_path=str(tmp_path / "a.duckdb"),
                            reports_dir=str(tmp_path / "reports"))


def _cli_fast_path(tmp_path, recording, monkeypatch):
    from pipeline.cli.main import main

    # no consent sidecar: refused before Prefect or any model, recorded by the CLI's own run
    monkeypatch.setattr(sequence_mod, "record_outcome", _ctrl_c)
    assert main(["process", str(recording), "--session-id", "s1", "--client-id", "c1", "--therapist-id", "t1",
                 "--db", str(tmp_path / "a.duckdb"), "--reports-dir", str(tmp_path / "reports")]) == 130


def _cli_flow_path(tmp_path, recording, monkeypatch):
    from pipeline.cli.main import main

    write_consent(recording)  # a new recording: the CLI owns the run from before the models load
    monkeypatch.setattr("flows.server.start_background_server", lambda home: None)
    monkeypatch.setattr(sequence_mod, "get_transcriber", _ctrl_c)  # while the models load
    assert main(["process", str(recording), "--session-id", "s1", "--client-id", "c1", "--therapist-id", "t1",
                 "--db", str(tmp_path / "a.duckdb"), "--reports-dir", str(tmp_path / "reports")]) == 130


def _cli_flush_pending(tmp_path, recording, monkeypatch, analysis=None):
    from pipeline.cli.main import main

    dbp = tmp_path / "a.duckdb"
    with db.open(dbp):
        pass
    pending.save(dbp, pending.PendingSession(analysis, str(recording), str(tmp_path / "reports"), True, False,
                                             "run-x", 22.0, pending.now_iso()))
    monkeypatch.setattr(sequence_mod, "store_session", _ctrl_c)
    assert main(["db", "flush-pending", "--db", str(dbp)]) == 130
    assert pending.list_pending(dbp)  # nothing lost: the result stays for the next run


ENTRY_POINTS = {"session_flow": _session_flow, "batch_flow": _batch_flow, "cli_process_fast_path": _cli_fast_path,
                "cli_process_flow_path": _cli_flow_path, "cli_db_flush_pending": _cli_flush_pending}


@pytest.mark.parametrize("entry", list(ENTRY_POINTS))
def test_ctrl_c_inside_any_entry_points_run_leaves_it_interrupted(prefect_harness, fakes, recording, tmp_path,
                                                                  monkeypatch, analysis, entry):
    kwargs = {"analysis": analysis} if entry == "cli_db_flush_pending" else {}
    ENTRY_POINTS[entry](tmp_path, recording, monkeypatch, **kwargs)
    assert _statuses(tmp_path / "a.duckdb") == ["interrupted"]


def test_owned_run_closes_stale_runs_flushes_and_finishes(tmp_path, recording, analysis):
    dbp = tmp_path / "a.duckdb"
    with db.open(dbp) as con:  # a run a killed process left running (no pid recorded)
        con.execute("INSERT INTO pipeline_runs (run_id, pipeline_version, models, started_at, status, command) "
                    "VALUES ('old', 'x', '{}', now(), 'running', 'process x')")
    write_consent(recording)
    pending.save(dbp, pending.PendingSession(analysis, str(recording), str(tmp_path / "reports"), True, False,
                                             "old", 22.0, pending.now_iso()))
    with owned_run(dbp, command="test") as run:
        assert [o.state for o in run.flushed] == ["processed"]
    con = duckdb.connect(str(dbp), read_only=True)
    try:
        rows = dict(con.execute("SELECT run_id, status FROM pipeline_runs").fetchall())
        items = con.execute("SELECT run_id, state FROM run_items").fetchall()
    finally:
        con.close()
    assert rows == {"old": "interrupted", run.run_id: "finished"}
    assert items == [(run.run_id, "processed")]
    assert not pending.list_pending(dbp)


def test_owned_run_refuses_an_unknown_end_status(tmp_path):
    with pytest.raises(ValueError, match="finished"), owned_run(tmp_path / "a.duckdb", command="t") as run:
        run.status = "done"


class _Counting:
    """``db.open`` wrapped to count the database's openings (connections)."""

    def __init__(self, monkeypatch) -> None:
        self.n = 0
        real = db.open

        @contextlib.contextmanager
        def counted(*args, **kwargs):
            self.n += 1
            with real(*args, **kwargs) as con:
                yield con

        monkeypatch.setattr(db, "open", counted)


def test_a_new_recording_opens_the_database_at_most_four_times_and_hashes_once(
        prefect_harness, fakes, recording, tmp_path, monkeypatch):
    """The CLI's precheck (database check, consent, skip test) is handed to the flow, the store is one connection.

    Before: 9 openings (check, precheck, start, the flow's precheck, its skip test, write, summary,
    end state, finish) and the file hashed 3 times.
    """
    import pipeline.audio.decode as decode_mod
    import pipeline.cli.main as cli

    write_consent(recording)
    counting = _Counting(monkeypatch)
    hashed: list[str] = []
    real_sha = decode_mod.sha256_of
    monkeypatch.setattr(decode_mod, "sha256_of",
                        lambda path, fh=None: hashed.append(str(path)) or real_sha(path, fh))
    monkeypatch.setattr("flows.server.start_background_server", lambda home: None)  # the test harness serves
    assert cli.main(["process", str(recording), "--session-id", "s1", "--client-id", "c1", "--therapist-id", "t1",
                     "--db", str(tmp_path / "a.duckdb"), "--reports-dir", str(tmp_path / "reports")]) == 0
    assert counting.n <= 4, counting.n
    assert hashed == [str(recording)]
    con = duckdb.connect(str(tmp_path / "a.duckdb"), read_only=True)
    try:
        assert con.execute("SELECT status FROM pipeline_runs").fetchall() == [("finished",)]
        state, handle = con.execute("SELECT state, flow_handle FROM run_items").fetchone()
        assert state == "processed" and handle.startswith("h-")
        assert con.execute("SELECT count(*) FROM report_files").fetchone()[0] == 2
    finally:
        con.close()


def _manifest(tmp_path, rows) -> str:
    path = tmp_path / "manifest.csv"
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["audio", "session_id", "client_id", "therapist_id", "consent_scope", "consented_on",
                    "consented_by"])
        w.writerows(rows)
    return str(path)


def test_a_batch_with_a_failed_recording_ends_failed_in_prefect(prefect_harness, fakes, recording, tmp_path):
    """An automation can alert on it: the flow run's state is FAILED (it was COMPLETED), with the report kept."""
    source = _manifest(tmp_path, [[recording.name, "s1", "c1", "t1", "research", "2026-01-01", "client"],
                                  ["x.wav", "", "c9", "t9", "clinical", "2026-01-01", "client"]])
    state = batch_mod.process_batch(source, db_path=str(tmp_path / "a.duckdb"), reports_dir=str(tmp_path / "r"),
                                    return_state=True)
    assert state.is_failed() and "1 of 2 recording(s) failed" in state.message
    report = state.result(raise_on_failure=False)
    assert isinstance(report, batch_mod.BatchReport)
    assert (report.count("processed"), report.count("failed")) == (1, 1)
    assert _statuses(tmp_path / "a.duckdb") == ["finished"]  # the run itself ended; an item failed
    again = batch_mod.run_batch(source, db_path=str(tmp_path / "a.duckdb"), reports_dir=str(tmp_path / "r"))
    assert (again.count("skipped"), again.count("failed")) == (1, 1)  # run_batch returns the report


def test_a_batch_without_failures_ends_completed(prefect_harness, fakes, recording, tmp_path):
    source = _manifest(tmp_path, [[recording.name, "s1", "c1", "t1", "research", "2026-01-01", "client"],
                                  [recording.name, "s2", "c2", "t1", "research", "2026-01-01", ""]])  # refused
    state = batch_mod.process_batch(source, db_path=str(tmp_path / "a.duckdb"), reports_dir=str(tmp_path / "r"),
                                    return_state=True)
    assert state.is_completed()
    report = state.result()
    assert (report.count("processed"), report.count("refused")) == (1, 1)


def _opens(log: str, path: str, flags: str = "") -> int:
    """Successful ``openat`` calls of exactly ``path`` (with flags starting ``flags``) in an strace log."""
    pattern = re.compile(r'openat\([^,]+, "' + re.escape(path) + r'", ' + re.escape(flags) + r'[^)]*\) = \d+')
    return sum(1 for line in log.splitlines() if pattern.search(line))


@pytest.mark.integration
@pytest.mark.parametrize("suffix", [".wav", ".flac"])
def test_alliance_process_under_strace_opens_database_and_recording_few_times(tmp_path, suffix):
    """The real command on a new WAV or FLAC recording, traced: few opens of the recording and of the database.

    The recording twice (header and SHA-256 through one handle, then decode; a WAV was opened 7 times, then 3,
    a FLAC 5); at most 4 database connections (DuckDB opens the file read-write once per connection, and reads
    it 3 more times: was 9 connections, 35 opens).
    """
    strace = shutil.which("strace")
    if strace is None:
        pytest.skip("strace not installed (.ci/run installs it)")
    audio = tmp_path / f"rec{suffix}"
    if suffix == ".wav":
        shutil.copy(pyannote_sample(), audio)
    else:  # the same audio, FLAC-coded (libsndfile reads its header: one more open before this change)
        sf.write(audio, *sf.read(pyannote_sample(), dtype="int16"))
    write_consent(audio, session_id="pa-1", client_id="c-pa")
    dbp, log = tmp_path / "x.duckdb", tmp_path / "strace.log"
    cmd = [strace, "-f", "-qq", "-e", "trace=openat", "-o", str(log), sys.executable, "-m", "pipeline.cli.main",
           "process", str(audio), "--session-id", "pa-1", "--client-id", "c-pa", "--therapist-id", "t-pa",
           "--db", str(dbp), "--reports-dir", str(tmp_path / "r")]
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=900, cwd=ROOT)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    text = log.read_text()
    audio_opens, connections = _opens(text, str(audio)), _opens(text, str(dbp), "O_RDWR")
    assert 1 <= audio_opens <= 2, audio_opens
    assert 1 <= connections <= 4, connections
    assert _opens(text, str(dbp)) <= 4 * connections  # the measured 13 (was 35)


def test_the_strace_counter_reads_openat_lines():
    log = "\n".join([
        '1 openat(AT_FDCWD, "/t/x.duckdb", O_RDONLY) = -1 ENOENT (No such file or directory)',
        '1 openat(AT_FDCWD, "/t/x.duckdb", O_RDWR|O_CREAT|O_CLOEXEC, 0666) = 3',
        '1 openat(AT_FDCWD, "/t/x.duckdb", O_RDONLY|O_CLOEXEC) = 4',
        '1 openat(AT_FDCWD, "/t/x.duckdb.wal", O_RDWR|O_CLOEXEC) = 5',
        '2 openat(AT_FDCWD, "/t/x.duckdb", O_RDWR|O_CLOEXEC) = 4'])
    assert (_opens(log, "/t/x.duckdb"), _opens(log, "/t/x.duckdb", "O_RDWR")) == (3, 2)
