"""Batch processing: manifests, end states on a generated bad-input corpus, kill and re-run, locking."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest
from conftest import ROOT, prefect_server

from pipeline.engine.manifest import ManifestError, load_batch, read_manifest
from pipeline.errors import StorageError
from pipeline.report.summary import report_stem
from pipeline.storage.lock import exclusive_run

HEADER = "audio,session_id,client_id,therapist_id,recorded_on,consent_scope,consented_on,consented_by\n"


def test_manifest_rows_become_items(tmp_path):
    (tmp_path / "a.wav").write_bytes(b"x")
    (tmp_path / "m.csv").write_text(HEADER + "a.wav,s1,c1,t1,2026-01-02,research,2026-01-01,client\n"
                                    "a.wav,s1,c1,t1,,,\n"
                                    "../etc/passwd,s3,c1,t1,,,\n"
                                    "a.wav,s4,c1,t1,02/01/2026,,\n"
                                    ",s5,c1,t1,,,\n")
    items = read_manifest(tmp_path / "m.csv")
    assert items[0].problem is None and items[0].consent["scope"] == "research"
    assert items[0].meta.recorded_on.isoformat() == "2026-01-02"
    assert "duplicate session id 's1'" in items[1].problem
    assert "outside the allowed folder" in items[2].problem
    assert "02/01/2026" in items[3].problem
    assert "missing audio" in items[4].problem


def test_yaml_manifest_and_sql_ish_values_are_data(tmp_path):
    (tmp_path / "m.yaml").write_text(
        "recordings:\n  - {audio: \"x'; DROP TABLE sessions; --.wav\", session_id: \"s'1\", client_id: c, "
        "therapist_id: t}\n")
    (item,) = read_manifest(tmp_path / "m.yaml")
    assert item.problem is None and item.meta.session_id == "s'1"


@pytest.mark.parametrize("content, match", [
    (b"\xff\xfe\x00bad", "UTF-8"),
    (b"session,client\n", "header"),
])
def test_unreadable_manifests(tmp_path, content, match):
    (tmp_path / "m.csv").write_bytes(content)
    with pytest.raises(ManifestError, match=match):
        read_manifest(tmp_path / "m.csv")


def test_huge_field_is_rejected(tmp_path):
    (tmp_path / "m.csv").write_text(HEADER + f"a.wav,{'s' * 5000},c,t,,,\n")
    assert "longer than" in read_manifest(tmp_path / "m.csv")[0].problem


def test_folder_scan_uses_sidecars(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b.flac").write_bytes(b"x")
    (tmp_path / "sub" / "b.flac.consent.json").write_text(json.dumps(
        {"session_id": "s9", "client_id": "c9", "therapist_id": "t9", "scope": "clinical",
         "consented_on": "2026-01-01"}))
    (tmp_path / "readme.txt").write_text("not audio")
    (item,) = load_batch(tmp_path)
    assert item.meta.session_id == "s9" and item.meta.therapist_id == "t9" and item.consent is None


def test_second_run_on_same_database_refuses_clearly(tmp_path):
    db = tmp_path / "a.duckdb"
    with exclusive_run(db):
        code = ("import sys; from pipeline.storage.lock import exclusive_run\n"
                "try:\n    exclusive_run(sys.argv[1]).__enter__()\nexcept Exception as e:\n    print(e)")
        out = subprocess.run([sys.executable, "-c", code, str(db)], capture_output=True, text=True, timeout=60)
        assert f"process {os.getpid()}" in out.stdout and "another run" in out.stdout
        with pytest.raises(StorageError, match="another run"):
            with exclusive_run(db):
                pass


# --- integration: the real pipeline on a generated 20-recording batch -------------------------------------------


def _states(db_path: Path, run_id: str | None = None) -> dict[str, tuple[str, str | None]]:
    con = duckdb.connect(str(db_path), read_only=True)
    try:
        sql = "SELECT source_path, state, error_code FROM run_items"
        rows = con.execute(sql + (" WHERE run_id = ?" if run_id else ""), [run_id] if run_id else []).fetchall()
    finally:
        con.close()
    return {p: (s, c) for p, s, c in rows}


def _match(states: dict[str, tuple[str, str | None]], name: str) -> tuple[str, str | None]:
    hits = [v for k, v in states.items() if k.endswith(name) or k.endswith(f"({name})")]
    assert len(hits) == 1, (name, hits)
    return hits[0]


@pytest.mark.integration
def test_batch_end_states_kill_and_resume(prefect_harness, tmp_path):
    from batch_corpus import build_batch

    from flows.batch_flow import run_batch

    folder = tmp_path / "inbox"
    expected = build_batch(folder, outside=tmp_path / "outside")
    assert len(expected) >= 20 and sum(e.state != "processed" for e in expected) >= 7
    db_path = tmp_path / "batch.duckdb"

    # 1. a real kill in the middle of the batch (a separate process, SIGKILL once something is stored)
    cmd = [str(Path(sys.executable).with_name("alliance")), "batch", str(folder / "manifest.csv"),
           "--db", str(db_path), "--reports-dir", str(tmp_path / "reports"), "--workers", "2"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=ROOT,
                            start_new_session=True)
    killed_after = None
    deadline = time.monotonic() + 600
    for line in proc.stdout:
        if "processed" in line and line.startswith("["):
            killed_after = line.strip()
            break
        if time.monotonic() > deadline:
            break
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=60)
    assert killed_after is not None, "the batch never stored a session before the deadline"

    # 2. re-run in-process: resumes, every recording reaches its expected end state
    report = run_batch(str(folder / "manifest.csv"), workers=2, db_path=str(db_path),
                       reports_dir=str(tmp_path / "reports"))
    states = _states(db_path, report.run_id)
    for e in expected:
        state, code = _match(states, e.name)
        if e.state == "processed":
            assert state in ("processed", "skipped"), (e, state, code)
        else:
            assert (state, code) == (e.state, e.code), e
    assert report.count("skipped") >= 1  # what the killed run stored is not redone
    con = duckdb.connect(str(db_path), read_only=True)
    n_good = sum(e.state == "processed" for e in expected)
    assert con.execute("SELECT count(*) FROM sessions").fetchone()[0] == n_good
    assert con.execute("SELECT count(*) FROM (SELECT session_id, word_index FROM words "
                       "GROUP BY ALL HAVING count(*) > 1)").fetchone()[0] == 0
    # every stored session is whole: it has indicators and its words all belong to one run
    assert con.execute("SELECT count(*) FROM sessions s WHERE NOT EXISTS "
                       "(SELECT 1 FROM indicators i WHERE i.session_id = s.session_id)").fetchone()[0] == 0
    assert con.execute("SELECT max(n) FROM (SELECT count(DISTINCT run_id) n FROM words GROUP BY session_id)"
                       ).fetchone()[0] == 1
    con.close()

    # 3. a third run changes nothing
    again = run_batch(str(folder / "manifest.csv"), workers=1, db_path=str(db_path),
                      reports_dir=str(tmp_path / "reports"))
    assert again.count("processed") == 0 and again.count("skipped") == n_good
    index = (tmp_path / "reports" / f"{report_stem('t-1', kind='index')}.html").read_text()
    assert index.count("<tr>") == n_good + 1 and f"{report_stem('good-0')}.html" in index


@pytest.mark.integration
def test_batch_runs_as_deployment_served_by_local_worker(tmp_path):
    """The documented path: prefect server start, prefect deploy, a process worker, a deployment run."""
    import numpy as np
    import soundfile as sf
    from batch_corpus import RATE, _demo, _excerpt

    samples, _ = _demo()
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    sf.write(inbox / "ok.flac", _excerpt(samples, 30.0, 12.0), RATE)
    sf.write(inbox / "silent.wav", np.zeros(RATE * 5, dtype=np.float32), RATE)
    (inbox / "manifest.csv").write_text(HEADER + "ok.flac,dep-ok,c,t,,research,2026-01-01,client\n"
                                        "silent.wav,dep-silent,c,t,,research,2026-01-01,client\n")
    prefect = str(Path(sys.executable).with_name("prefect"))
    with prefect_server(tmp_path) as env:
        run = lambda *args, **kw: subprocess.run([prefect, *args], env=env, cwd=ROOT, capture_output=True,  # noqa: E731
                                                 text=True, timeout=kw.get("timeout", 300))
        assert run("work-pool", "create", "local", "--type", "process").returncode == 0
        deployed = run("--no-prompt", "deploy", "--name", "nightly-inbox")
        assert deployed.returncode == 0, deployed.stdout[-2000:] + deployed.stderr[-2000:]
        db_path = tmp_path / "dep.duckdb"
        started = run("deployment", "run", "process-batch/nightly-inbox", "--param",
                      f"source={inbox / 'manifest.csv'}", "--param", f"db_path={db_path}",
                      "--param", f"reports_dir={tmp_path / 'reports'}")
        assert started.returncode == 0, started.stderr[-2000:]
        worker = run("worker", "start", "--pool", "local", "--run-once", timeout=600)
        assert worker.returncode == 0, worker.stdout[-3000:]
        states = _states(db_path)
        assert _match(states, "ok.flac") == ("processed", None)
        assert _match(states, "silent.wav") == ("failed", "audio_silent")
        # a deployment run with a failed recording ends FAILED (it ended COMPLETED): an automation can alert
        listed = run("flow-run", "ls", "--flow-name", "process-batch", "--output", "json")
        assert listed.returncode == 0, listed.stderr[-2000:]
        ran = [r["state_type"] for r in json.loads(listed.stdout) if r["state_type"] != "SCHEDULED"]  # not cron's
        assert ran == ["FAILED"], ran


@pytest.mark.integration
def test_file_disappearing_mid_batch_fails_alone(prefect_harness, tmp_path):
    import soundfile as sf
    from batch_corpus import RATE, _demo, _excerpt

    from flows.batch_flow import run_batch

    samples, _ = _demo()
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    rows = []
    for i, start in enumerate((20.0, 30.0, 40.0)):  # both voices speak 3-4 s in each (one voice is refused)
        sf.write(inbox / f"r{i}.flac", _excerpt(samples, start, 8.0), RATE)
        rows.append(f"r{i}.flac,mid-{i},c,t,,research,2026-01-01,client\n")
    (inbox / "manifest.csv").write_text(HEADER + "".join(rows))

    def delete_last(outcome, done, total, elapsed_s):
        (inbox / "r2.flac").unlink(missing_ok=True)  # gone after the first recording ended

    report = run_batch(str(inbox / "manifest.csv"), workers=1, db_path=str(tmp_path / "a.duckdb"),
                       reports_dir=str(tmp_path / "r"), on_progress=delete_last)
    states = {o.session_id: (o.state, o.error_code) for o in report.outcomes}
    assert states == {"mid-0": ("processed", None), "mid-1": ("processed", None),
                      "mid-2": ("failed", "audio_missing")}
