"""Issue 22 items 2 and 5: compare reads as strain only what has evidence; colliding dataset columns are refused.

Each test fails on the code before the change: compare read well-measured indicators as strain (talk share,
silences, client latency), compared contradicted indicators by default and printed no grades; the dataset
export kept one of two timepoint labels that reduce to one column and copied it into both.
"""

from __future__ import annotations

import pytest

from pipeline.cli.main import main
from pipeline.errors import ComparisonError, ExportError
from pipeline.research.compare import CompareOptions, run_comparison
from pipeline.research.dataset import write_dataset
from pipeline.research.self_report.importer import import_file
from pipeline.research.self_report.instruments import BUILTIN
from pipeline.storage import db
from tests.research.test_compare import _db


def _with_rupture_rate(path: str) -> None:
    con = db.connect(path)
    con.execute("INSERT INTO indicators SELECT session_id, 'rupture_candidate_rate', 'client', 1.0 + random(), 'x',"
                " 'r1' FROM sessions")
    con.close()


def test_compare_flags_nothing_says_why_and_prints_both_grades(tmp_path, capsys):
    path = _db(tmp_path)  # c1s2: 6 long silences and SRS 38 (was strain_but_rated_high); c3s0: SRS 28
    assert main(["compare", "--db", path, "--instrument", "srs", "--min-n", "4"]) == 0
    out = capsys.readouterr().out
    assert "Discrepancy flags: 0" in out
    lines = [line for line in out.splitlines() if line.startswith("Strain signals: none.")]
    assert len(lines) == 1 and "supported evidence" in lines[0]
    assert "| reading | accuracy | evidence |" in out
    row = next(line for line in out.splitlines() if line.startswith("| long_silence_count:session | srs.total |"))
    assert row.endswith("| measured against synthetic truth | none yet |")
    assert "validated" not in out
    con = db.connect(path)
    assert con.execute("SELECT count(*) FROM discrepancy_flags").fetchone()[0] == 0
    con.close()


def test_contradicted_indicators_are_left_out_unless_asked_for(tmp_path, capsys):
    path = _db(tmp_path)
    _with_rupture_rate(path)
    con = db.connect(path)
    default = run_comparison(con, options=CompareOptions(instruments=("srs",), min_n=4))
    assert "rupture_candidate_rate" not in set(default.results["indicator"])
    with pytest.raises(ComparisonError, match="rupture_candidate_rate:client.*contradicted.*--include-contradicted"):
        run_comparison(con, options=CompareOptions(instruments=("srs",), indicators=("rupture_candidate_rate:client",)))
    asked = run_comparison(con, options=CompareOptions(instruments=("srs",), min_n=4, include_contradicted=True))
    assert "rupture_candidate_rate" in set(asked.results["indicator"])
    con.close()
    assert main(["compare", "--db", path, "--instrument", "srs", "--min-n", "4", "--indicator",
                 "rupture_candidate_rate:client"]) == 2
    assert "contradicted" in capsys.readouterr().err
    assert main(["compare", "--db", path, "--instrument", "srs", "--min-n", "4", "--indicator",
                 "rupture_candidate_rate:client", "--include-contradicted"]) == 0
    row = next(line for line in capsys.readouterr().out.splitlines()
               if line.startswith("| rupture_candidate_rate:client | srs.total | within"))
    assert row.endswith("| accuracy not measured | contradicted |")


@pytest.mark.parametrize("first,second", [("post", "Post"), ("follow-up", "follow_up")])
def test_timepoints_that_reduce_to_one_column_are_refused_with_both_labels(tmp_path, capsys, first, second):
    path = _db(tmp_path)
    con = db.connect(path)
    csv = tmp_path / "tp.csv"
    csv.write_text("session_id,timepoint,relationship,goals,approach,overall\n"
                   f"c0s0,{first},9,9,9,9\nc0s0,{second},5,5,5,5\n")
    report = import_file(con, csv, instrument="srs", instruments=BUILTIN)
    assert not report.issues
    with pytest.raises(ExportError) as err:
        write_dataset(con, tmp_path / "ds", key=None)
    con.close()
    msg = str(err.value)
    assert f"timepoint {first!r}" in msg and f"timepoint {second!r}" in msg and "sr_srs_total_" in msg
    assert not (tmp_path / "ds" / "sessions.parquet").exists()  # nothing half-written
    capsys.readouterr()
    assert main(["export", "--db", path, "--dataset", str(tmp_path / "ds2"), "--role", "admin"]) == 2
    err = capsys.readouterr().err
    assert f"{first!r}" in err and f"{second!r}" in err and "Traceback" not in err
    assert not (tmp_path / "ds2" / "codebook.csv").exists()
