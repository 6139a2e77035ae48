"""Issue #12 class 8: what leaks around the database, and that it no longer does.

Prefect's own database keeps flow-run parameters and log lines: the session flow takes only an opaque
handle (the real inputs stay in this process), log lines name no file, id or name, and a withdrawal deletes
exactly this database's flow runs of the erased sessions (found by the handles run_items recorded).
Prefect's home sits next to the database, owner-only; the database, reports, exports and pending results
are owner-only. Research relations carry no run id and only whole-second durations.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import stat
import subprocess
import sys

import pytest
from conftest import write_consent

from flows.session_flow import process_session
from pipeline.analysis.session import SessionMeta
from pipeline.cli.main import main
from pipeline.storage import db

SECRETS = ("secret-session-77", "client-zed", "therapist-q", "Zebediah")


def _meta() -> SessionMeta:
    return SessionMeta(SECRETS[0], SECRETS[1], SECRETS[2], known_names=(SECRETS[3],))


async def _read_flow_runs() -> list:
    from prefect.client.orchestration import get_client

    runs, offset = [], 0
    async with get_client() as client:
        while batch := await client.read_flow_runs(limit=200, offset=offset):
            runs += batch
            offset += len(batch)
    return runs


async def _read_logs(flow_run_id) -> list:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId

    async with get_client() as client:
        return await client.read_logs(LogFilter(flow_run_id=LogFilterFlowRunId(any_=[flow_run_id])), limit=200)


def _flow_runs() -> list:
    return asyncio.run(_read_flow_runs())


def _logs_of(flow_run_id) -> list[str]:
    from prefect.logging.handlers import APILogWorker

    APILogWorker.drain_all(timeout=10)  # log lines are sent in the background
    return [g.message for g in asyncio.run(_read_logs(flow_run_id))]


def _handles(dbp, session_id) -> list[str]:
    with db.open(dbp, read_only=True) as con:
        return db.flow_handles(con, [session_id])


def test_the_session_flow_gets_only_an_opaque_handle_and_logs_no_names(prefect_harness, fakes, recording, tmp_path):
    write_consent(recording, session_id=SECRETS[0], client_id=SECRETS[1])
    dbp = tmp_path / "a.duckdb"
    out = process_session(str(recording), _meta(), db_path=str(dbp), reports_dir=str(tmp_path / "reports"))
    assert out.state == "processed", out.message
    (handle,) = _handles(dbp, SECRETS[0])
    runs = _flow_runs()
    (run,) = [r for r in runs if (r.parameters or {}).get("handle") == handle]
    assert run.parameters == {"handle": handle} and run.flow_id is not None
    everything = json.dumps([r.parameters for r in runs]) + " ".join(r.name for r in runs)
    mine = _logs_of(run.id)
    assert mine, "the flow's log lines reach Prefect (counts and stage names)"
    for secret in (*SECRETS, recording.name, str(tmp_path)):
        assert secret not in everything, secret
        assert not [m for m in mine if secret in m], secret


def test_withdrawal_deletes_only_this_databases_flow_runs(prefect_harness, fakes, recording, tmp_path):
    dbs = []
    for name in ("clinic-a", "clinic-b"):
        folder = tmp_path / name
        folder.mkdir()
        audio = folder / "rec.wav"
        shutil.copy(recording, audio)
        write_consent(audio)  # the same session id in both databases
        dbp = folder / "a.duckdb"
        assert process_session(str(audio), SessionMeta("s1", "c1", "t1"), db_path=str(dbp),
                               reports_dir=str(folder / "reports")).state == "processed"
        dbs.append(dbp)
    (handle_a,), (handle_b,) = _handles(dbs[0], "s1"), _handles(dbs[1], "s1")
    assert main(["consent", "withdraw", "--session", "s1", "--db", str(dbs[0]), "--keep-audio",
                 "--reports-dir", str(tmp_path / "clinic-a" / "reports")]) == 0
    with db.open(dbs[0], read_only=True) as con:
        assert con.execute("SELECT prefect_runs_deleted FROM erasures").fetchone()[0] == 1
    runs = _flow_runs()
    left = {(r.parameters or {}).get("handle") for r in runs}
    assert handle_a not in left and handle_b in left  # the other clinic's run of "s1" is not touched


def test_thread_batch_subflows_use_the_same_handles(prefect_harness, fakes, recording, tmp_path):
    from flows.batch_flow import run_batch

    (tmp_path / "m.csv").write_text("audio,session_id,client_id,therapist_id,recorded_on,consent_scope,consented_on,"
                                    f"consented_by,known_names\n{recording.name},{SECRETS[0]},{SECRETS[1]},{SECRETS[2]},,"
                                    f"research,2026-01-01,client,{SECRETS[3]}\n")
    dbp = tmp_path / "a.duckdb"
    report = run_batch(str(tmp_path / "m.csv"), db_path=str(dbp), reports_dir=str(tmp_path / "reports"))
    assert report.count("processed") == 1, report.outcomes
    (handle,) = _handles(dbp, SECRETS[0])
    runs = _flow_runs()
    (sub,) = [r for r in runs if (r.parameters or {}).get("handle") == handle]
    assert sub.parameters == {"handle": handle} and sub.parent_task_run_id is not None
    everything = json.dumps([r.parameters for r in runs if r.id == sub.id])
    assert not [s for s in SECRETS if s in everything]


def test_prefect_home_is_next_to_the_database_and_owner_only(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("PREFECT_HOME", "PREFECT_API_URL")}
    code = ("import sys; from pipeline.offline import use_prefect_home; print(use_prefect_home(sys.argv[1]));"
            "import prefect.settings as s; print(s.PREFECT_HOME.value())")
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path / "data" / "a.duckdb")], env=env,
                         capture_output=True, text=True, timeout=120)
    home = tmp_path / "data" / ".alliance-prefect"
    assert out.stdout.split() == [str(home), str(home)], out.stderr
    assert stat.S_IMODE(home.stat().st_mode) == 0o700


def test_reports_and_exports_are_owner_only(tmp_path, analysis):
    from pipeline.engine.sequence import write_summary
    from pipeline.research.export import export

    old = os.umask(0o022)  # as permissive as a default login shell
    try:
        dbp = tmp_path / "a.duckdb"
        con = db.connect(dbp)
        db.write_session(con, analysis, run_id="r1", pipeline_version="0.1.0")
        con.close()
        md, html, _ = write_summary("s1", dbp, tmp_path / "reports", "r1")
        with db.open(dbp) as con:
            exported = export(con, "indicators", out_dir=tmp_path / "exports", fmt="parquet")
    finally:
        os.umask(old)
    for path in (dbp, md, html):
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600, path
    assert stat.S_IMODE((tmp_path / "reports").stat().st_mode) == 0o700
    files = [p for p in exported.path.rglob("*") if p.is_file()] or [exported.path]
    assert files and all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in files)
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o700 for p in exported.path.rglob("*") if p.is_dir())


def test_research_relations_carry_no_run_id_and_whole_second_durations(tmp_path, analysis):
    from pipeline.research.access import research_sandbox

    dbp = tmp_path / "a.duckdb"
    con = db.connect(dbp)
    db.write_session(con, analysis, run_id="run-20260101T000000Z-abcdef12", pipeline_version="0.1.0")
    con.execute("UPDATE sessions SET duration_s = 1234.567")
    box = research_sandbox(con, key=b"k" * 40)
    con.close()
    columns = box.execute("SELECT table_name, column_name FROM information_schema.columns").fetchall()
    assert not [c for c in columns if c[1] == "run_id"], columns
    assert box.execute("SELECT duration_s FROM sessions").fetchall() == [(1235,)]
    dumped = " ".join(str(v) for (t,) in box.execute("SELECT table_name FROM information_schema.tables").fetchall()
                      for row in box.execute(f'SELECT * FROM "{t}"').fetchall() for v in row)
    assert "run-20260101" not in dumped
    box.close()


@pytest.mark.parametrize("flow_file", ["flows/session_flow.py", "flows/batch_flow.py", "pipeline/engine/sequence.py"])
def test_log_lines_name_no_file_or_id(flow_file):
    """Every log call's arguments are counts, stage names, codes or versions: never a path, id or name."""
    import ast
    from pathlib import Path

    from conftest import ROOT

    banned = {"path", "audio_path", "source", "session_id", "client_id", "therapist_id", "run_id", "meta", "sha",
              "sha256", "db_path", "dbp", "reports_dir", "item", "known_names"}
    tree = ast.parse(Path(ROOT, flow_file).read_text())
    for node in ast.walk(tree):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and node.func.attr in ("info", "warning", "error", "debug", "exception")):
            names = {n.id for arg in node.args[1:] for n in ast.walk(arg) if isinstance(n, ast.Name)}
            attrs = {n.attr for arg in node.args[1:] for n in ast.walk(arg) if isinstance(n, ast.Attribute)}
            assert not (names | attrs) & banned, f"{flow_file}:{node.lineno} logs {(names | attrs) & banned}"
