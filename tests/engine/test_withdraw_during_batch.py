"""``alliance consent withdraw`` while a batch runs (issue 24): refused naming ``--wait``, or registered at once.

With ``--wait`` a session's withdrawal is registered before the batch stores it; the batch checks withdrawals
immediately before storing each session, so the withdrawn session is never stored, and the command erases
whatever is stored once the batch has let go of the database.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

import soundfile as sf
from conftest import ROOT, tone

from pipeline.storage import db
from pipeline.storage.lock import exclusive_run

HEADER = "audio,session_id,client_id,therapist_id,recorded_on,consent_scope,consented_on,consented_by\n"


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in ("PREFECT_HOME", "PREFECT_API_URL")}


def _withdraw(dbp, *extra: str, **popen) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "pipeline.cli.main", "consent", "withdraw", "--session", "s1",
                             "--no-prefect", "--db", str(dbp), *extra], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=_env(), cwd=ROOT, **popen)


def test_a_withdrawal_during_a_run_is_refused_at_once_naming_wait(tmp_path):
    dbp = tmp_path / "a.duckdb"
    with db.open(dbp):
        pass
    with exclusive_run(dbp):
        started = time.perf_counter()
        out, err = _withdraw(dbp).communicate(timeout=120)
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: another run (process "), err
    assert "--wait SECONDS" in lines[0] and time.perf_counter() - started < 30


def test_a_session_withdrawn_during_a_batch_is_never_stored(prefect_harness, fakes, recording, tmp_path,
                                                           monkeypatch):
    from flows.batch_flow import run_batch

    sf.write(tmp_path / "two.wav", tone(22.0, seed=7, freq=180.0), 16_000)
    manifest = tmp_path / "m.csv"
    manifest.write_text(HEADER + f"{recording.name},s1,c1,t1,,research,2026-01-01,client\n"
                        "two.wav,s2,c2,t1,,research,2026-01-01,client\n")
    dbp = tmp_path / "a.duckdb"
    transcriber = fakes[0]
    real = transcriber.transcribe
    withdrawing: list[subprocess.Popen] = []
    said: list[str] = []

    def transcribe(samples, *, progress=None):
        if not withdrawing:  # the first recording's transcription: the batch holds the run lock
            withdrawing.append(_withdraw(dbp, "--wait", "300", "--reports-dir", str(tmp_path / "reports")))
            said.append(withdrawing[0].stdout.readline())  # printed once the withdrawal is registered
        return real(samples, progress=progress)

    monkeypatch.setattr(transcriber, "transcribe", transcribe)
    report = run_batch(str(manifest), workers=1, db_path=str(dbp), reports_dir=str(tmp_path / "reports"))
    out, err = withdrawing[0].communicate(timeout=300)
    assert withdrawing[0].returncode == 0, out + err
    assert said[0].startswith("Withdrawal of session s1 registered (erasure-") and "will not store it" in said[0]
    states = {o.session_id: (o.state, o.error_code) for o in report.outcomes}
    assert states == {"s1": ("refused", "consent_withdrawn"), "s2": ("processed", None)}
    assert "nothing to erase" in out
    with db.open(dbp, read_only=True) as con:
        assert con.execute("SELECT session_id FROM sessions").fetchall() == [("s2",)]
        assert con.execute("SELECT count(*) FROM turns WHERE session_id = 's1'").fetchone() == (0,)


def test_a_clients_withdrawal_waits_for_the_run_then_erases_what_it_stored(tmp_path, analysis):
    """--client with --wait registers nothing ahead (any session id may come), waits, then erases."""
    import threading

    from pipeline.engine.withdrawal import WithdrawalRequest, withdraw_consent

    dbp = tmp_path / "a.duckdb"
    with db.open(dbp) as con:
        db.write_session(con, analysis, run_id="r1", pipeline_version="0.1.0")
    told: list[tuple[str, int | None]] = []
    done: list = []
    with exclusive_run(dbp):  # a batch's run
        worker = threading.Thread(target=lambda: done.append(withdraw_consent(
            dbp, WithdrawalRequest(None, "c1", "admin", (tmp_path / "reports",)), wait_s=60,
            on_registered=lambda erasure_id, pid: told.append((erasure_id, pid)))))
        worker.start()
        deadline = time.monotonic() + 30
        while not told and time.monotonic() < deadline:
            time.sleep(0.1)
        assert told == [("", os.getpid())] and not done  # waiting for the run
    worker.join(timeout=60)
    assert done and done[0].result is not None and done[0].result.session_ids == ("s1",)
    with db.open(dbp, read_only=True) as con:
        assert con.execute("SELECT count(*) FROM sessions").fetchone() == (0,)
