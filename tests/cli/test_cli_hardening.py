"""The command line at its boundary: ids, counts, denied access, researchers' SQL, CSV cells, signals."""

from __future__ import annotations

import csv
import hashlib
import io
import os
import signal
from pathlib import Path

import duckdb
import pytest

import pipeline.engine.sequence as sequence_mod
from pipeline.cli.main import main
from pipeline.storage import db, encryption

PROCESS = ["--client-id", "c1", "--therapist-id", "t1"]


@pytest.fixture(autouse=True)
def _own_prefect_home(tmp_path, monkeypatch):
    monkeypatch.setenv("PREFECT_HOME", str(tmp_path / "prefect-home"))  # main() must not move the user's


@pytest.mark.parametrize("flag, bad, shown", [
    ("--session-id", "s\u202e1", "U+202E"),
    ("--session-id", "s\n1", "U+000A"),
    ("--client-id", "c\u200b1", "U+200B"),
    ("--therapist-id", "t" * 129, "129 characters"),
    ("--session-id", " s1", "whitespace"),
    ("--session-id", "", "empty"),
])
def test_process_refuses_bad_ids_before_anything_else(tone_wav, tmp_path, capsys, flag, bad, shown):
    argv = ["process", str(tone_wav), "--session-id", "s1", *PROCESS, "--db", str(tmp_path / "a.duckdb")]
    argv[argv.index(flag) + 1] = bad
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and shown in err and err.endswith("[invalid_id]")
    assert bad not in err or bad == ""  # never echoed raw
    assert not (tmp_path / "a.duckdb").exists()


def test_process_accepts_ids_with_punctuation_and_normalises_them(tone_wav, tmp_path, capsys):
    """``/ % & < >`` are data; the id reaches the consent check in NFC (here: refused for no consent)."""
    argv = ["process", str(tone_wav), "--session-id", "a/b%c&d<e>Se\u0301ance", *PROCESS,
            "--db", str(tmp_path / "a.duckdb")]
    assert main(argv) == 3
    out = capsys.readouterr().out
    assert "a/b%c&d<e>S\u00e9ance" in out and "REFUSED" in out


@pytest.mark.parametrize("limit", ["-5", "0", "x"])
def test_audit_limit_must_be_at_least_one(tmp_path, capsys, limit):
    with pytest.raises(SystemExit) as e:
        main(["audit", "--limit", limit, "--db", str(tmp_path / "a.duckdb")])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert "--limit" in err and "Traceback" not in err


def _stored(tmp_path: Path, analysis) -> Path:
    dbp = tmp_path / "a.duckdb"
    with db.open(dbp) as con:
        db.write_session(con, analysis, run_id="r1", pipeline_version="0.1.0")
    return dbp


def test_denied_access_is_in_the_audit_log(tmp_path, analysis, capsys):
    dbp = _stored(tmp_path, analysis)
    assert main(["summary", "s1", "--db", str(dbp), "--therapist", "t2", "--actor", "eve"]) == 2
    assert main(["report", "s1", "--db", str(dbp), "--actor", "mallory", "--out", str(tmp_path / "r.html")]) == 2
    assert "[access_denied]" in capsys.readouterr().err
    assert main(["audit", "--db", str(dbp), "--limit", "5"]) == 0
    shown = capsys.readouterr().out
    assert shown.count(" denied ") == 2
    with db.open(dbp, read_only=True) as con:
        rows = con.execute("SELECT actor, role, action, session_ids, detail FROM audit_log WHERE action = 'denied' "
                           "ORDER BY occurred_at").fetchall()
    assert [(a, r, s) for a, r, _, s, _ in rows] == [("eve", "clinician", ["s1"]), ("mallory", "clinician", ["s1"])]
    assert "therapist 't2'" in rows[0][4] and "--therapist" in rows[1][4]
    assert not (tmp_path / "r.html").exists()


def test_researchers_sql_is_audited_as_a_hash_not_as_text(tmp_path, analysis, capsys):
    dbp = _stored(tmp_path, analysis)
    keyf = encryption.generate_key_file(tmp_path / "study.key")
    sql = "SELECT count(*) AS n FROM sessions WHERE 'looking for Jane Doe' <> ''"
    assert main(["query", sql, "--db", str(dbp), "--study-key-file", str(keyf)]) == 0
    with db.open(dbp, read_only=True) as con:
        (detail,) = con.execute("SELECT detail FROM audit_log WHERE action = 'query'").fetchone()
        everything = " ".join(str(r) for r in con.execute("SELECT * FROM audit_log").fetchall())
    assert detail == f"sql sha256 {hashlib.sha256(sql.encode()).hexdigest()} ({len(sql)} chars)"
    assert "Jane" not in everything


def test_query_csv_cells_are_formula_safe(tmp_path, analysis, capsys):
    dbp = _stored(tmp_path, analysis)
    keyf = encryption.generate_key_file(tmp_path / "study.key")
    sql = "SELECT '=HYPERLINK(\"http://x\")' AS a, '@SUM(A1)' AS b, '-1' AS c, -2 AS d, 'plain' AS e"
    assert main(["query", sql, "--db", str(dbp), "--study-key-file", str(keyf), "--csv"]) == 0
    rows = list(csv.reader(io.StringIO(capsys.readouterr().out)))
    assert rows[1] == ["'=HYPERLINK(\"http://x\")", "'@SUM(A1)", "-1", "-2", "plain"]


@pytest.mark.parametrize("signum, code, word", [(signal.SIGTERM, 143, "terminated"), (signal.SIGINT, 130,
                                                                                     "interrupted")])
def test_a_signal_ends_the_command_with_one_line_and_its_code(tone_wav, tmp_path, capsys, monkeypatch, signum, code,
                                                              word):
    """SIGTERM is handled as Ctrl-C is: one line on stderr, no traceback, exit 143 (130 for Ctrl-C)."""
    def killed(*args, **kwargs):
        os.kill(os.getpid(), signum)

    monkeypatch.setattr(sequence_mod, "precheck", killed)  # the command's first step (database check included)
    before = signal.getsignal(signal.SIGTERM)
    argv = ["process", str(tone_wav), "--session-id", "s1", *PROCESS, "--db", str(tmp_path / "a.duckdb")]
    assert main(argv) == code
    err = capsys.readouterr().err.strip()
    assert err.startswith(word) and len(err.splitlines()) == 1 and "Traceback" not in err
    assert signal.getsignal(signal.SIGTERM) == before  # main() put the previous handler back


def test_export_csv_cells_are_formula_safe(tmp_path, analysis):
    from dataclasses import replace

    from pipeline.research.export import export

    evil = '=HYPERLINK("http://evil","x")'
    a = replace(analysis, meta=replace(analysis.meta, session_id=evil, therapist_id="+t1"),
                consent=replace(analysis.consent, session_id=evil))
    dbp = _stored(tmp_path, a)
    with db.open(dbp) as con:
        plain = export(con, "sessions", out_dir=tmp_path / "out", fmt="csv")
        parted = export(con, "sessions", out_dir=tmp_path / "parted", fmt="csv", partition_by=["client_id"])
    with plain.path.open(newline="") as f:
        row = next(csv.DictReader(f))
    assert row["session_id"] == "'" + evil and row["therapist_id"] == "'+t1"
    assert float(row["duration_s"]) > 0  # numbers stay numbers
    (part,) = Path(parted.path).rglob("*.csv")
    with part.open(newline="") as f:
        assert next(csv.DictReader(f))["session_id"] == "'" + evil
    assert duckdb.connect().execute(f"SELECT count(*) FROM read_csv('{plain.path}')").fetchone()[0] == 1
