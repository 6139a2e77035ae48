"""Command-line conventions (issue 24, item 2).

``--version``, ``--json``, ``--quiet``/``--verbose``, ``ALLIANCE_DB``, study vs database key names, CSV
datasets and empty exports, progress from the first second and the whole command's wall time.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from dataclasses import replace

import duckdb
import pytest

from pipeline.cli import output
from pipeline.cli.main import main
from pipeline.engine.outcome import SessionOutcome
from pipeline.storage import db


@pytest.fixture
def dbp(tmp_path, analysis):
    """s1 (client c1, therapist t1, research scope) written in run r1."""
    path = tmp_path / "a.duckdb"
    con = db.connect(path)
    db.write_session(con, analysis, run_id="r1", pipeline_version="0.1.0")
    con.close()
    return path


def test_version_prints_pipeline_and_markers_versions(capsys):
    from pipeline import PIPELINE_VERSION
    from pipeline.analysis.indicators import MARKERS_VERSION

    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code == 0
    assert capsys.readouterr().out.strip() == f"alliance {PIPELINE_VERSION} (markers {MARKERS_VERSION})"


def test_alliance_db_is_the_default_database(dbp, monkeypatch, tmp_path, capsys):
    monkeypatch.chdir(tmp_path)  # no alliance.duckdb here: without the variable, the session is unknown
    assert main(["summary", "s1", "--therapist", "t1"]) == 2
    capsys.readouterr()
    monkeypatch.setenv("ALLIANCE_DB", str(dbp))
    assert main(["summary", "s1", "--therapist", "t1"]) == 0
    assert "s1" in capsys.readouterr().out
    assert main(["summary", "s1", "--therapist", "t1", "--db", str(tmp_path / "other.duckdb")]) == 2  # --db wins


def test_summary_json_is_one_object_with_stable_keys(dbp, capsys):
    assert main(["summary", "s1", "--therapist", "t1", "--db", str(dbp), "--json"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 1
    obj = json.loads(lines[0])
    assert tuple(sorted(obj)) == tuple(sorted(output.SUMMARY_KEYS)) and obj["kind"] == "summary"
    assert obj["session_id"] == "s1" and obj["therapist_id"] == "t1" and obj["markdown"].startswith("#")
    shares = {(i["name"], i["role"]): i["value"] for i in obj["indicators"]}
    assert 0 < shares[("talk_time_share", "client")] < 1
    assert all(set(i) == {"name", "role", "value", "grade"} for i in obj["indicators"])


def test_audit_json_one_object_per_event(dbp, capsys):
    main(["summary", "s1", "--therapist", "t1", "--db", str(dbp)])
    main(["summary", "s1", "--therapist", "nobody", "--db", str(dbp)])
    capsys.readouterr()
    assert main(["audit", "--db", str(dbp), "--json"]) == 0
    events = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [e["action"] for e in events][:2] == ["denied", "summary"]  # newest first
    assert all(tuple(sorted(e)) == tuple(sorted(output.AUDIT_KEYS)) for e in events)
    assert events[1]["session_ids"] == ["s1"] and "T" in events[1]["occurred_at"]


def test_models_json_one_object_per_model(capsys, monkeypatch):
    from models import store

    rows = store.status()
    code = main(["models", "--json"])
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == len(rows) and code == (0 if all(r.ok for r in rows) else 1)
    for line, row in zip(lines, rows, strict=True):
        obj = json.loads(line)
        assert tuple(sorted(obj)) == tuple(sorted(output.MODEL_KEYS))
        assert obj["kind"] == "model" and obj["key"] == row.spec.key and obj["ok"] is row.ok
        assert all(f["name"] for f in obj["files"])


def test_outcome_json_has_every_key_and_the_whole_wall_time(tmp_path):
    o = SessionOutcome("failed", "/in/x.wav", "s1", None, "audio", "audio_missing", "gone", wall_s=None)
    obj = json.loads(output.outcome_json(o, db_path=tmp_path / "a.duckdb", wall_s=12.345))
    assert tuple(sorted(obj)) == tuple(sorted(output.OUTCOME_KEYS))
    assert obj["kind"] == "recording" and obj["state"] == "failed" and obj["error_code"] == "audio_missing"
    assert obj["wall_s"] == 12.35 and obj["flow_s"] is None and obj["headline"] == []
    with pytest.raises(ValueError, match="not declared"):
        output.json_line("recording", output.OUTCOME_KEYS, surprise=1)


def test_process_json_and_quiet_on_a_recording_without_consent(tone_wav, tmp_path, capsys):
    """A refused recording ends before models or Prefect: one JSON object on stdout, progress on stderr."""
    dbp = str(tmp_path / "a.duckdb")
    args = ["process", str(tone_wav), "--session-id", "s9", "--client-id", "c9", "--therapist-id", "t9", "--db", dbp]
    assert main([*args, "--json"]) == 3
    out, err = capsys.readouterr()
    obj = json.loads(out)  # the whole of stdout is one object
    assert obj["state"] == "refused" and obj["error_code"] == "no_consent" and obj["wall_s"] >= 0
    assert "checking the database" in err  # progress, on stderr with --json
    assert main([*args, "--quiet"]) == 3
    out, err = capsys.readouterr()
    assert "checking the database" not in out + err and out.strip().startswith("REFUSED")
    assert main(args) == 3
    out, _ = capsys.readouterr()
    assert out.startswith("[  0 s] processing session s9")  # progress from the first second
    assert out.rstrip().endswith(" s)")  # the final line gives the whole command's time


def test_quiet_and_verbose_exclude_each_other(capsys):
    with pytest.raises(SystemExit) as e:
        main(["process", "x.wav", "--session-id", "s", "--client-id", "c", "--therapist-id", "t", "-q", "-v"])
    assert e.value.code == 2


def test_prefect_console_is_quiet_unless_verbose(monkeypatch):
    monkeypatch.setenv(output.PREFECT_CONSOLE_LEVEL, "x")  # recorded, so the test's value is undone after it
    monkeypatch.delenv(output.PREFECT_CONSOLE_LEVEL)
    output.quiet_prefect_console(verbose=True)
    import os

    assert "PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL" not in os.environ
    output.quiet_prefect_console(verbose=False)
    assert os.environ["PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL"] == "WARNING"


def test_prefect_info_lines_and_dead_links_stay_off_the_console_by_default(tmp_path):
    """In a fresh process (Prefect reads its settings once): Prefect's own INFO line is not shown, ours are."""
    code = ("import logging, sys\n"
            "from pipeline.cli import output\n"
            "output.quiet_prefect_console(verbose='-v' in sys.argv)\n"
            "import prefect.logging.configuration as c; c.setup_logging()\n"
            "p = output.Progress(sys.stdout)\n"
            "h = output.attach_stage_lines(p)\n"
            "logging.getLogger('prefect.engine').info('View at http://127.0.0.1:1/runs/x')\n")
    import os

    env = {k: v for k, v in os.environ.items() if k != output.PREFECT_CONSOLE_LEVEL}
    quiet = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env)
    verbose = subprocess.run([sys.executable, "-c", code, "-v"], capture_output=True, text=True, timeout=120,
                             env=env)
    assert "View at" not in quiet.stdout + quiet.stderr  # Prefect's line: neither its console nor ours
    assert "View at" in verbose.stderr


def test_stage_lines_print_the_packages_own_log_lines_only():
    import io

    stream = io.StringIO()
    handler = output.StageLines(output.Progress(stream))
    ours = logging.LogRecord("prefect.task_runs", logging.INFO, "/x/pipeline/engine/sequence.py", 1,
                             "transcription %d %% done", (50,), None)
    theirs = logging.LogRecord("prefect.task_runs", logging.INFO, "/x/prefect/task_engine.py", 1,
                               "Finished in state Completed()", (), None)
    handler.emit(ours)
    handler.emit(theirs)
    assert "transcription 50 % done" in stream.getvalue() and "Finished" not in stream.getvalue()


def test_study_and_database_keys_have_separate_commands_and_hints(tmp_path, capsys):
    assert main(["study", "keygen", str(tmp_path / "study.key")]) == 0
    out = capsys.readouterr().out
    assert "export ALLIANCE_STUDY_KEY_FILE=" in out and "ALLIANCE_DB_KEY_FILE" not in out
    assert main(["db", "keygen", str(tmp_path / "db.key")]) == 0
    out = capsys.readouterr().out
    assert "database key" in out and "alliance db encrypt" in out and "alliance study keygen" in out


def test_study_key_errors_name_the_study_key(dbp, tmp_path, capsys):
    assert main(["query", "SELECT 1", "--db", str(dbp), "--study-key-file", str(tmp_path / "nope.key")]) == 2
    err = capsys.readouterr().err
    assert "study key file" in err and "database key" not in err and "alliance study keygen" in err
    bad = tmp_path / "bad.key"
    bad.write_text("short\n")
    bad.chmod(0o600)
    assert main(["export", "--dataset", str(tmp_path / "d"), "--db", str(dbp), "--study-key-file", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "study key" in err and "database key" not in err


def test_dataset_format_csv_writes_csv(dbp, tmp_path, capsys):
    out = tmp_path / "study"
    assert main(["export", "--dataset", str(out), "--role", "admin", "--format", "csv", "--db", str(dbp)]) == 0
    assert (out / "sessions.csv").is_file() and not (out / "sessions.parquet").exists()
    assert "sessions.csv" in capsys.readouterr().out
    frame = duckdb.sql(f"SELECT * FROM read_csv('{out / 'sessions.csv'}')").df()
    assert list(frame["session_id"]) == ["s1"] and "talk_time_share_client" in frame.columns
    assert str(frame["recorded_on"].iloc[0]).startswith("2026-01-02")


def test_empty_tables_export_with_their_columns(dbp, tmp_path, capsys):
    """A partitioned export of an empty relation is still a table polars and DuckDB read, with its columns."""
    import polars

    out = tmp_path / "x"
    assert main(["export", "self_report_scores_long", "--role", "admin", "--out", str(out), "--db", str(dbp)]) == 0
    folder = out / "self_report_scores_long"
    con = duckdb.connect(str(dbp), read_only=True)
    columns = [r[0] for r in con.execute("DESCRIBE self_report_scores_long").fetchall()]
    con.close()
    back = duckdb.sql(f"SELECT * FROM read_parquet('{folder}/**/*.parquet', hive_partitioning = true)").df()
    assert len(back) == 0 and sorted(back.columns) == sorted(columns)
    pl = polars.read_parquet(f"{folder}/**/*.parquet")
    assert pl.height == 0 and sorted(pl.columns) == sorted(columns)
    assert main(["export", "self_report_scores_long", "--role", "admin", "--format", "csv", "--out", str(out),
                 "--db", str(dbp), "--overwrite"]) == 0
    header = (out / "self_report_scores_long.csv").read_text().splitlines()
    assert len(header) == 1 and header[0].split(",") == columns


def test_batch_progress_line_is_a_pure_function():
    from pipeline.cli.batch import progress_line

    o = replace(SessionOutcome("failed", "/in/Jane Doe.wav", "s1", None, "audio", "audio_missing",
                               "/in/Jane Doe.wav: gone"))
    names = {"/in/Jane Doe.wav": "item 3", "Jane Doe.wav": "item 3", "Jane Doe": "item 3"}
    assert progress_line(o, 1, 4, 10.0, handle="item 3", names=names) == \
        "[1/4] failed    s1  item 3 at audio: item 3: gone  (elapsed 10 s, ETA 30 s)"


def test_a_missing_recording_is_reported_as_missing_not_as_no_consent(tmp_path, capsys):
    gone = tmp_path / "gone.wav"
    code = main(["process", str(gone), "--session-id", "s9", "--client-id", "c9", "--therapist-id", "t9",
                 "--db", str(tmp_path / "a.duckdb"), "--json"])
    obj = json.loads(capsys.readouterr().out)
    assert code == 3 and obj["state"] == "failed" and obj["error_code"] == "audio_missing"
    assert obj["stage"] == "audio" and "consent" not in obj["message"]


def test_duplicate_audio_is_refused_before_any_model_or_prefect_server(dbp, tone_wav, monkeypatch, capsys):
    """The same audio under another session id: refused in the precheck (its SHA-256 is known first)."""
    from conftest import write_consent

    import flows.server
    from pipeline.audio.decode import sha256_of

    con = db.connect(dbp)
    con.execute("UPDATE sessions SET audio_sha256 = ?", [sha256_of(tone_wav)])
    con.close()
    write_consent(tone_wav, session_id="s2", client_id="c1")
    monkeypatch.setattr(flows.server, "start_background_server",
                        lambda *a, **k: pytest.fail("Prefect's server was started for a duplicate"))
    code = main(["process", str(tone_wav), "--session-id", "s2", "--client-id", "c1", "--therapist-id", "t1",
                 "--db", str(dbp), "--json"])
    obj = json.loads(capsys.readouterr().out)
    assert code == 3 and obj["error_code"] == "duplicate" and "already stored as session 's1'" in obj["message"]


def test_process_prints_each_stage_and_the_whole_wall_time(prefect_harness, fakes, recording, tmp_path, capsys):
    from conftest import write_consent

    write_consent(recording)
    dbp = tmp_path / "a.duckdb"
    args = ["process", str(recording), "--session-id", "s1", "--client-id", "c1", "--therapist-id", "t1",
            "--db", str(dbp), "--reports-dir", str(tmp_path / "reports")]
    assert main(args) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("[  0 s] processing session s1")
    progress = [line for line in lines if line.startswith("[")]
    for step in ("loading the models", "running the session flow", "s of audio decoded", "speaker turns"):
        assert any(step in line for line in progress), (step, lines)
    final = next(line for line in lines if line.startswith("Processed s1 in "))
    assert "s in the session flow" in final
    assert not any("View at" in line or "Finished in state" in line for line in lines)


def test_batch_json_prints_one_object_per_recording_and_progress_on_stderr(tmp_path, capsys):
    import argparse

    from pipeline.cli.batch import NeutralNames, _on_progress

    args = argparse.Namespace(json=True, quiet=False, db=str(tmp_path / "a.duckdb"))
    callback = _on_progress(args, output.Progress.for_args(args), NeutralNames([]))
    callback(SessionOutcome("processed", "/in/a.wav", "s1", "ab" * 32, duration_s=20.0, wall_s=3.0), 1, 2, 5.0)
    callback(SessionOutcome("refused", "/in/b.wav", "s2", None, "consent", "no_consent", "no consent"), 2, 2, 6.0)
    out, err = capsys.readouterr()
    objs = [json.loads(line) for line in out.splitlines()]
    assert [(o["kind"], o["state"], o["session_id"]) for o in objs] == [("recording", "processed", "s1"),
                                                                        ("recording", "refused", "s2")]
    assert "[1/2] processed" in err and "[2/2] refused" in err


def test_batch_json_totals_line():
    class Report:
        run_id, wall_s = "run-1", 7.5
        outcomes = [SessionOutcome("processed", "a", "s1"), SessionOutcome("failed", "b", "s2")]

        def count(self, state):
            return sum(o.state == state for o in self.outcomes)

    obj = json.loads(output.batch_json(Report(), db_path="a.duckdb", wall_s=20.04))
    assert tuple(sorted(obj)) == tuple(sorted(output.BATCH_KEYS))
    assert (obj["recordings"], obj["processed"], obj["failed"], obj["wall_s"], obj["flow_s"]) == (2, 1, 1, 20.04, 7.5)


def test_an_in_process_command_leaves_the_prefect_console_setting_as_it_was(tmp_path, monkeypatch, capsys):
    import os

    monkeypatch.setenv(output.PREFECT_CONSOLE_LEVEL, "x")  # recorded, so undone after the test
    monkeypatch.delenv(output.PREFECT_CONSOLE_LEVEL)
    assert main(["audit", "--db", str(tmp_path / "none.duckdb")]) == 2
    assert output.PREFECT_CONSOLE_LEVEL not in os.environ
    monkeypatch.setenv(output.PREFECT_CONSOLE_LEVEL, "DEBUG")  # the user's own value wins and stays
    main(["audit", "--db", str(tmp_path / "none.duckdb")])
    assert os.environ[output.PREFECT_CONSOLE_LEVEL] == "DEBUG"
