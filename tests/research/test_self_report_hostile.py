"""Hostile self-report files: ids that break the id rules, formula cells in the problem report, CSV safety."""

from __future__ import annotations

import csv
import datetime as dt

import pytest

from pipeline.csv_safety import csv_safe, csv_safe_frame
from pipeline.research.self_report.importer import import_file, write_report_csv
from pipeline.research.self_report.instruments import BUILTIN
from pipeline.storage import db

TODAY = dt.date(2026, 6, 1)


def _db(path):
    con = db.connect(path)
    con.execute("INSERT INTO sessions (session_id, client_id, therapist_id, recorded_on, audio_sha256, duration_s,"
                " pipeline_version, run_id, processed_at) VALUES ('s1', 'c1', 't1', DATE '2026-01-05', 'ab', 60.0,"
                " '0.1.0', 'r1', now())")
    return con


def test_self_report_ids_follow_the_one_id_rule_per_line(tmp_path):
    rows = [["session_id", "client_id", "timepoint", "relationship", "goals", "approach", "overall"],
            ["s1", "", "pre", "9", "9", "9", "9"],
            ["s\u202e1", "", "", "9", "9", "9", "9"],
            ["", "c\x1b1", "", "9", "9", "9", "9"],
            ["s1", "", "p" * 129, "9", "9", "9", "9"],
            ["s1", "", "mid\u200b", "9", "9", "9", "9"]]
    path = tmp_path / "srs.csv"
    with path.open("w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows(rows)
    con = _db(tmp_path / "a.duckdb")
    report = import_file(con, path, instrument="srs", instruments=BUILTIN, today=TODAY)
    bad = {(i.line, i.field): i for i in report.issues if i.code == "bad_id"}
    assert set(bad) == {(3, "session_id"), (4, "client_id"), (5, "timepoint"), (6, "timepoint")}
    assert "U+202E" in bad[3, "session_id"].message and "129 characters" in bad[5, "timepoint"].message
    stored = con.execute("SELECT session_id, timepoint FROM self_report_administrations").fetchall()
    assert stored == [("s1", "pre")]
    con.close()


def test_the_problem_report_is_formula_safe(tmp_path):
    path = tmp_path / "srs.csv"
    path.write_text("session_id,relationship,goals,approach,overall\n"
                    "s1,=HYPERLINK(\"http://evil\"),9,9,9\n"
                    "s1,@SUM(A1),+cmd,-1,\t=1\n", encoding="utf-8")
    con = _db(tmp_path / "a.duckdb")
    report = import_file(con, path, instrument="srs", instruments=BUILTIN, dry_run=True, today=TODAY)
    con.close()
    out = tmp_path / "problems.csv"
    write_report_csv(report, out)
    with out.open(newline="", encoding="utf-8") as f:
        cells = [row["value"] for row in csv.DictReader(f)]
    assert "'=HYPERLINK(\"http://evil\")" in cells and "'@SUM(A1)" in cells and "'+cmd" in cells
    assert "-1" in cells  # a plain (out-of-range) number is not altered
    assert all(not c.startswith(("=", "+", "@", "\t", "\r")) for c in cells)


@pytest.mark.parametrize("value, safe", [
    ("=1+1", "'=1+1"), ("+1+1", "'+1+1"), ("-1+1", "'-1+1"), ("@A1", "'@A1"), ("\t=1", "'\t=1"),
    ("\r=1", "'\r=1"), ("-", "'-"), ("-1", "-1"), ("+2.5", "+2.5"), ("-3e-4", "-3e-4"), ("a=1", "a=1"),
    ("", ""), (None, None), (-1, -1), ("'=1", "'=1"),
])
def test_csv_safe(value, safe):
    assert csv_safe(value) == safe


def test_csv_safe_frame_touches_text_only():
    import pandas as pd

    frame = pd.DataFrame({"a": ["=x", "ok", None], "n": [-1.0, 2.0, 3.0], "=col": ["+y", "-2", "z"]})
    out = csv_safe_frame(frame)
    assert list(out["a"])[:2] == ["'=x", "ok"] and pd.isna(out["a"].iloc[2])
    assert list(out["n"]) == [-1.0, 2.0, 3.0]
    assert list(out.columns) == ["a", "n", "'=col"] and list(out["'=col"]) == ["'+y", "-2", "z"]
    assert frame["a"].iloc[0] == "=x"  # the input is not changed


# --------------------------------------------------------------------------------------------- round 3: size


def _run_cli(argv, capsys):
    from pipeline.cli.main import main

    code = main(argv)
    out = capsys.readouterr()
    return code, out.out + out.err


@pytest.mark.parametrize("cell", [131_073, 5_000])
def test_an_overlong_cell_is_one_clear_error_exit_2_nothing_stored(tmp_path, capsys, cell):
    path = tmp_path / "srs.csv"
    path.write_text("session_id,relationship,goals,approach,overall\n"
                    f"s1,9,9,9,9\ns1,{'9' * cell},9,9,9\n", encoding="utf-8")
    _db(tmp_path / "a.duckdb").close()
    code, text = _run_cli(["import-self-report", str(path), "--instrument", "srs", "--db",
                           str(tmp_path / "a.duckdb")], capsys)
    assert code == 2 and "Traceback" not in text
    assert "line 3: a cell" in text and "at most 4,096" in text and "9" * 100 not in text
    con = db.connect(tmp_path / "a.duckdb", read_only=True)
    assert con.execute("SELECT count(*) FROM self_report_administrations").fetchone()[0] == 0
    con.close()


def test_a_file_with_too_many_lines_is_refused_while_streaming(tmp_path, monkeypatch):
    from pipeline.errors import SelfReportImportError
    from pipeline.research.self_report import validation

    monkeypatch.setattr(validation, "MAX_IMPORT_ROWS", 50)
    path = tmp_path / "srs.csv"
    path.write_text("session_id,relationship,goals,approach,overall\n" + "s1,9,9,9,9\n" * 51, encoding="utf-8")
    con = _db(tmp_path / "a.duckdb")
    with pytest.raises(SelfReportImportError, match="more than 50 data lines"):
        import_file(con, path, instrument="srs", instruments=BUILTIN, today=TODAY)
    path.write_text("session_id,relationship,goals,approach,overall\n" + "s1,9,9,9,9\n" * 50, encoding="utf-8")
    report = import_file(con, path, instrument="srs", instruments=BUILTIN, today=TODAY, dry_run=True)
    assert report.lines_read == 50
    con.close()


def test_rows_are_read_as_a_stream():
    import io

    from pipeline.research.self_report.validation import read_csv_lines

    lines = io.StringIO("session_id,value\ns1,1\n" + "s1,1\n" * 3, newline="")
    header, rows = read_csv_lines(lines, source="x")
    assert header == ["session_id", "value"] and lines.tell() < len(lines.getvalue())  # nothing read ahead
    assert [n for n, _ in rows] == [2, 3, 4, 5]


def test_duplicate_messages_name_at_most_ten_lines(tmp_path):
    # one item repeated on 5,000 lines: each of the 5,000 messages listed all 5,000 lines (quadratic memory:
    # 200,000 such lines took 20 GB)
    path = tmp_path / "srs.csv"
    path.write_text("session_id,instrument,item,value\n" + "s1,srs,relationship,9\n" * 5_000, encoding="utf-8")
    con = _db(tmp_path / "a.duckdb")
    report = import_file(con, path, instrument=None, instruments=BUILTIN, today=TODAY, dry_run=True)
    con.close()
    dups = [i for i in report.issues if i.code == "duplicate"]
    assert len(dups) == 5_000 and max(len(i.message) for i in dups) < 300
    assert "2, 3, 4, 5, 6, 7, 8, 9, 10, 11, ... (5,000 lines in all)" in dups[0].message
