"""Scale-out of the batch through Dask (prefect-dask): two local worker processes, one DuckDB writer."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import numpy as np
import pytest
import soundfile as sf
from conftest import ROOT, prefect_server

from pipeline.report.summary import report_stem

HEADER = "audio,session_id,client_id,therapist_id,recorded_on,consent_scope,consented_on,consented_by\n"


def test_dask_engine_without_prefect_api_refuses_clearly(monkeypatch):
    from flows.batch_flow import run_batch
    from pipeline.errors import ConfigError

    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings(restore_defaults={PREFECT_API_URL}):
        with pytest.raises(ConfigError, match="prefect server start"):
            run_batch("unused.csv", workers=2, engine="dask")




@pytest.mark.integration
def test_batch_on_two_dask_worker_processes(tmp_path):
    from batch_corpus import RATE, _demo, _excerpt

    samples, _ = _demo()
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    sf.write(inbox / "a.flac", _excerpt(samples, 20.0, 12.0), RATE)
    sf.write(inbox / "b.flac", _excerpt(samples, 40.0, 12.0), RATE)  # both voices speak (one voice is refused)
    sf.write(inbox / "silent.wav", np.zeros(RATE * 5, dtype=np.float32), RATE)
    manifest = inbox / "manifest.csv"
    manifest.write_text(HEADER + "a.flac,dask-a,c-a,t-1,,research,2026-01-01,client\n"
                        "b.flac,dask-b,c-b,t-1,,research,2026-01-01,client\n"
                        "silent.wav,dask-silent,c-s,t-1,,research,2026-01-01,client\n")
    with prefect_server(tmp_path) as env:
        db_path = tmp_path / "dask.duckdb"
        cmd = [str(Path(sys.executable).with_name("alliance")), "batch", str(manifest), "--engine", "dask",
               "--workers", "2", "--db", str(db_path), "--reports-dir", str(tmp_path / "reports")]
        started = time.perf_counter()
        proc = subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                start_new_session=True)
        try:
            out, _ = proc.communicate(timeout=400)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            raise
        wall = time.perf_counter() - started
        print(f"alliance batch --engine dask --workers 2: {wall:.1f} s wall\n{out[-3000:]}")
        assert proc.returncode == 3, out[-4000:]  # one recording failed, as it should

        con = duckdb.connect(str(db_path), read_only=True)
        try:
            rows = con.execute("SELECT session_id, state, error_code, message FROM run_items").fetchall()
            states = {sid: (state, code) for sid, state, code, _ in rows}
            assert states == {"dask-a": ("processed", None), "dask-b": ("processed", None),
                              "dask-silent": ("failed", "audio_silent")}, rows
            # whole sessions: each stored once, with words and indicators, all from one run
            assert sorted(r[0] for r in con.execute("SELECT session_id FROM sessions").fetchall()) == [
                "dask-a", "dask-b"]
            assert con.execute("SELECT count(*) FROM sessions s WHERE NOT EXISTS "
                               "(SELECT 1 FROM indicators i WHERE i.session_id = s.session_id)").fetchone()[0] == 0
            assert con.execute("SELECT count(DISTINCT session_id), max(n) FROM (SELECT session_id, "
                               "count(DISTINCT run_id) n FROM words GROUP BY session_id)").fetchone() == (2, 1)
        finally:
            con.close()
        # computed in two distinct worker processes, neither of them the process that wrote the database
        pids = {int(m.group(1)) for _, state, _, msg in rows if state == "processed"
                for m in [re.search(r"dask worker pid (\d+)", msg or "")] if m}
        assert len(pids) == 2 and proc.pid not in pids, rows
        assert (tmp_path / "reports" / f"{report_stem('dask-a')}.html").is_file()
        assert (tmp_path / "reports" / f"{report_stem('t-1', kind='index')}.html").is_file()

        # a re-run skips what is stored (checked in the writing process, before anything is submitted)
        again = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True, timeout=300)
        assert again.returncode == 3, again.stdout[-3000:] + again.stderr[-3000:]
        assert re.search(r"skipped\s+2\b", again.stdout) and re.search(r"processed\s+0\b", again.stdout), again.stdout


SESSION_CONTENT = frozenset({"sessions", "words", "turns", "turns_deidentified", "speaker_turns", "markers",
                             "indicators", "session_lemmas"})


@pytest.mark.integration
def test_three_engines_write_identical_rows(tmp_path):
    """`alliance process`, the thread batch and the Dask batch run one stage sequence: same rows, run ids aside."""
    from batch_corpus import RATE, _demo, _excerpt

    from evaluation.db_contents import contents, differences

    samples, _ = _demo()
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    sf.write(inbox / "a.flac", _excerpt(samples, 20.0, 12.0), RATE)
    manifest = inbox / "manifest.csv"
    manifest.write_text(HEADER + "a.flac,same-a,c-a,t-1,,research,2026-01-01,client\n")
    (inbox / "a.flac.consent.json").write_text('{"session_id": "same-a", "client_id": "c-a", "scope": "research", '
                                          '"consented_on": "2026-01-01", "consented_by": ["client", "therapist"]}')
    alliance = str(Path(sys.executable).with_name("alliance"))
    dbs = {name: tmp_path / f"{name}.duckdb" for name in ("process", "threads", "dask")}
    with prefect_server(tmp_path) as env:
        commands = {
            "process": [alliance, "process", str(inbox / "a.flac"), "--session-id", "same-a", "--client-id", "c-a",
                        "--therapist-id", "t-1"],
            "threads": [alliance, "batch", str(manifest), "--engine", "threads"],
            "dask": [alliance, "batch", str(manifest), "--engine", "dask", "--workers", "1"],
        }
        for name, cmd in commands.items():
            out = subprocess.run(cmd + ["--db", str(dbs[name]), "--reports-dir", str(tmp_path / f"r-{name}")],
                                 env=env, cwd=ROOT, capture_output=True, text=True, timeout=400)
            assert out.returncode == 0, (name, out.stdout[-3000:], out.stderr[-3000:])
    found = {name: contents(path, tables=SESSION_CONTENT) for name, path in dbs.items()}
    assert sum(len(rows) for rows in found["process"].values()) > 100
    assert differences(found["process"], found["threads"]) == []
    assert differences(found["process"], found["dask"]) == []
