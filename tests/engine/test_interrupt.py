"""Interrupting a run (Ctrl-C, SIGTERM) while a long stage runs: it ends promptly, recorded as interrupted.

Transcription and diarization run in two threads; the signal lands in the main thread. Without the stop
event the other stage's thread ran to its end (minutes on a real session) before the run could end.
"""

from __future__ import annotations

import os
import signal
import threading
import time

import duckdb
import pytest
from conftest import write_consent

import pipeline.engine.sequence as sequence_mod
from flows.session_flow import process_session
from pipeline.analysis.session import SessionMeta
from pipeline.cli.main import _sigint_as_interrupt, _sigterm_as_interrupt

META = SessionMeta("s1", "c1", "t1")


class SlowTranscriber:
    """Sends ``signum`` to this process, then "transcribes" for 30 s, calling its progress hook."""

    model_name = "slow"

    def __init__(self, signum: int) -> None:
        self.signum = signum
        self.ended_by: str | None = None

    def transcribe(self, samples, *, progress=None):
        time.sleep(0.3)  # the main thread is waiting for this stage's result by now
        os.kill(os.getpid(), self.signum)
        try:
            for i in range(600):
                time.sleep(0.05)
                progress(i / 600)
        except Exception as e:
            self.ended_by = type(e).__name__
            raise
        self.ended_by = "finished"
        raise AssertionError("never stopped")


def _runs(dbp) -> list[tuple[str]]:
    con = duckdb.connect(str(dbp), read_only=True)
    try:
        return con.execute("SELECT status FROM pipeline_runs").fetchall()
    finally:
        con.close()


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_during_transcription_stops_the_stage_threads_and_marks_the_run(
        prefect_harness, fakes, recording, tmp_path, monkeypatch, signum):
    assert threading.current_thread() is threading.main_thread()
    write_consent(recording)
    slow = SlowTranscriber(signum)
    monkeypatch.setattr(sequence_mod, "get_transcriber", lambda options: slow)
    dbp = tmp_path / "a.duckdb"
    previous, received = _sigterm_as_interrupt()  # what main() installs: SIGTERM as Ctrl-C
    previous_int = _sigint_as_interrupt()  # and Ctrl-C even where SIGINT was inherited as ignored (CI)
    started = time.perf_counter()
    try:
        with pytest.raises(KeyboardInterrupt):
            process_session(str(recording), META, db_path=str(dbp), reports_dir=str(tmp_path / "reports"))
    finally:
        signal.signal(signal.SIGTERM, previous)
        signal.signal(signal.SIGINT, previous_int)
    assert time.perf_counter() - started < 20  # the 30 s stage did not run to its end
    assert slow.ended_by == "RunInterruptedError"
    assert _runs(dbp) == [("interrupted",)]
    assert not (tmp_path / "reports").exists()
    assert received == ([signal.SIGTERM] if signum == signal.SIGTERM else [])
