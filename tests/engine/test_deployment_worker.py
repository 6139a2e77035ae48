"""Deployments as documented (issue 24): data paths under ALLIANCE_DATA_DIR, and a worker one SIGTERM stops.

A deployment run's relative ``db_path`` (the default ``alliance.duckdb``) would land in the worker's working
directory, the code checkout: it is resolved against ``ALLIANCE_DATA_DIR`` or refused. The project's worker
(``python -m flows.worker``, i.e. ``prefect worker start`` with SIGINT restored) stops cleanly on one SIGTERM
even where it was started with SIGINT ignored, as a background job of a non-interactive shell is.
"""

from __future__ import annotations

import json
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import ROOT, prefect_server

from flows.data_dir import DATA_DIR_ENV, resolve_data_paths
from pipeline.errors import ConfigError
from pipeline.storage import db

HEADER = "audio,session_id,client_id,therapist_id,recorded_on,consent_scope,consented_on,consented_by\n"
PATHS = {"source": "inbox", "db_path": "alliance.duckdb", "reports_dir": "reports", "allowed_root": None}


def test_relative_paths_resolve_under_the_data_folder_or_are_refused(tmp_path):
    with pytest.raises(ConfigError, match=f"{DATA_DIR_ENV} is not set"):
        resolve_data_paths(PATHS, env={})
    with pytest.raises(ConfigError, match="inside the code checkout"):
        resolve_data_paths(PATHS, env={DATA_DIR_ENV: str(ROOT / "data")})
    with pytest.raises(ConfigError, match="absolute"):
        resolve_data_paths(PATHS, env={DATA_DIR_ENV: "data"})
    resolved = resolve_data_paths(PATHS, env={DATA_DIR_ENV: str(tmp_path)})
    assert resolved == {"source": str(tmp_path / "inbox"), "db_path": str(tmp_path / "alliance.duckdb"),
                        "reports_dir": str(tmp_path / "reports"), "allowed_root": None}
    absolute = {**PATHS, "db_path": str(tmp_path / "x.duckdb"), "source": str(tmp_path), "reports_dir": "/r"}
    assert resolve_data_paths(absolute, env={}) == absolute  # absolute paths are used as given


def test_a_deployment_run_of_the_batch_flow_uses_the_data_folder(prefect_harness, tmp_path, monkeypatch):
    """In a deployment run (from the checkout) the defaults go under ALLIANCE_DATA_DIR; without it: refused."""
    from flows.batch_flow import process_batch

    own = ROOT / "alliance.duckdb"
    before = own.stat().st_mtime_ns if own.exists() else None
    monkeypatch.chdir(ROOT)
    monkeypatch.setenv("PREFECT__RUNTIME__DEPLOYMENT__ID", "00000000-0000-0000-0000-000000000001")
    monkeypatch.delenv(DATA_DIR_ENV, raising=False)
    state = process_batch("inbox", db_path="alliance.duckdb", reports_dir="reports", return_state=True)
    assert state.is_failed() and f"{DATA_DIR_ENV} is not set" in state.message
    assert (own.stat().st_mtime_ns if own.exists() else None) == before
    assert not Path(str(own) + ".lock").exists()

    (tmp_path / "inbox").mkdir()
    (tmp_path / "inbox" / "a.wav").write_bytes(b"")  # no consent: refused in the checks, no model
    monkeypatch.setenv(DATA_DIR_ENV, str(tmp_path))
    state = process_batch("inbox", db_path="alliance.duckdb", reports_dir="reports", return_state=True)
    assert state.is_completed(), state.message
    with db.open(tmp_path / "alliance.duckdb", read_only=True) as con:
        assert con.execute("SELECT state, error_code FROM run_items").fetchall() == [("refused", "no_consent")]
    assert (own.stat().st_mtime_ns if own.exists() else None) == before


def _env(env: dict[str, str]) -> dict[str, str]:
    out = {k: v for k, v in env.items() if k != DATA_DIR_ENV}
    out["PREFECT_WORKER_QUERY_SECONDS"] = "2"
    return out


def test_deploying_from_the_checkout_cannot_write_into_it_and_one_sigterm_stops_the_worker(tmp_path):
    """Deploy from the project root, run with the default parameters, the project's worker, one SIGTERM.

    Before: the run wrote ROOT/alliance.duckdb; ``prefect worker start`` started with SIGINT ignored did not
    stop on the first SIGTERM (the second one SIGKILLed it).
    """
    own = ROOT / "alliance.duckdb"
    before = own.stat().st_mtime_ns if own.exists() else None
    prefect = str(Path(sys.executable).with_name("prefect"))
    with prefect_server(tmp_path) as server_env:
        env = _env(server_env)
        run = lambda *args: subprocess.run([prefect, *args], env=env, cwd=ROOT, capture_output=True,  # noqa: E731
                                           text=True, timeout=300)
        assert run("work-pool", "create", "local", "--type", "process").returncode == 0
        deployed = run("--no-prompt", "deploy", "--name", "nightly-inbox")
        assert deployed.returncode == 0, deployed.stdout[-2000:] + deployed.stderr[-2000:]
        assert run("deployment", "run", "process-batch/nightly-inbox").returncode == 0  # defaults: relative
        # SIGINT ignored, as in a background job of a non-interactive shell (``trap '' INT`` is inherited)
        worker = subprocess.Popen(["sh", "-c", f"trap '' INT; exec {shlex.quote(sys.executable)} -m flows.worker "
                                   "--pool local"], env=env, cwd=ROOT, stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, text=True)
        try:
            ran: list[dict] = []
            deadline = time.monotonic() + 240
            while time.monotonic() < deadline:
                listed = run("flow-run", "ls", "--flow-name", "process-batch", "--output", "json")
                ran = [r for r in json.loads(listed.stdout or "[]") if r["state_type"] not in ("SCHEDULED",
                                                                                              "PENDING", "RUNNING")]
                if ran:
                    break
                time.sleep(2)
            assert [r["state_type"] for r in ran] == ["FAILED"], ran
            assert DATA_DIR_ENV in (ran[0].get("state", {}) or {}).get("message", "") or DATA_DIR_ENV in json.dumps(
                ran[0])
            worker.send_signal(signal.SIGTERM)  # once
            out, _ = worker.communicate(timeout=30)
        finally:
            if worker.poll() is None:
                worker.kill()
                worker.wait()
        assert worker.returncode == 0, out[-3000:]
        assert "stopped!" in out
    assert (own.stat().st_mtime_ns if own.exists() else None) == before
    assert not Path(str(own) + ".lock").exists()


def test_the_worker_entry_point_restores_sigint():
    from flows.worker import restore_sigint

    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        restore_sigint()
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    finally:
        signal.signal(signal.SIGINT, previous)


def test_the_documented_worker_command_is_the_projects():
    for doc in ("README.md", "prefect.yaml"):
        text = (ROOT / doc).read_text(encoding="utf-8")
        assert "python -m flows.worker --pool local" in text and f"export {DATA_DIR_ENV}=" in text, doc
