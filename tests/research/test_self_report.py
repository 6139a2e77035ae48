"""Self-report instruments, scoring, the prorating rule and the row-level import report."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from pipeline.cli.main import main
from pipeline.errors import InstrumentConfigError, SelfReportImportError
from pipeline.research.self_report.importer import import_file
from pipeline.research.self_report.instruments import (
    BUILTIN,
    ORS,
    SRS,
    WAI_SR,
    load_instruments,
    parse_instrument,
    score,
)
from pipeline.storage import db

TODAY = dt.date(2026, 6, 1)


def _scores(inst, answers) -> dict:
    return {s.scale: s.value for s in score(inst, answers)}


def make_db(path: Path, sessions) -> None:
    """Sessions only (``(session_id, client_id, recorded_on)``): what self-report links to."""
    con = db.connect(path)
    for sid, cid, day in sessions:
        con.execute("INSERT INTO sessions (session_id, client_id, therapist_id, recorded_on, audio_sha256, duration_s,"
                    " pipeline_version, run_id, processed_at) VALUES (?, ?, 't1', ?, ?, 60.0, '0.1.0', 'r1', now())",
                    [sid, cid, day, sid * 8])
    con.close()


SESSIONS = [("s1", "c1", dt.date(2026, 1, 5)), ("s2", "c1", dt.date(2026, 1, 12)), ("s3", "c2", dt.date(2026, 1, 6))]


# ----------------------------------------------------------------------------------------------------
# instruments and scoring


def test_builtin_structures_match_the_published_ones():
    assert SRS.items == ("relationship", "goals", "approach", "overall") and SRS.concern_below == 36
    assert (ORS.min_value, ORS.max_value, ORS.concern_below, ORS.reliable_change) == (0, 10, 25, 5)
    assert len(WAI_SR.items) == 12 and (WAI_SR.min_value, WAI_SR.max_value) == (1, 5)
    subs = {s.name: set(s.items) for s in WAI_SR.scales if s.name != "total"}
    assert subs == {"task": {"q1", "q2", "q10", "q12"}, "bond": {"q3", "q5", "q7", "q9"},
                    "goal": {"q4", "q6", "q8", "q11"}}
    assert set().union(*subs.values()) == set(WAI_SR.items)  # every item in exactly one subscale
    assert all(i.source for i in BUILTIN.values())


def test_srs_total_and_no_prorating():
    assert _scores(SRS, {"relationship": 9, "goals": 8.5, "approach": 9, "overall": 10}) == {"total": 36.5}
    s = score(SRS, {"relationship": 9, "goals": 8, "approach": 9})
    assert s[0].value is None and "1 of 4 items missing" in s[0].note


def test_wai_sr_prorating_rule():
    full = {f"q{i}": 4 for i in range(1, 13)}
    assert _scores(WAI_SR, full) == {"total": 48, "task": 16, "bond": 16, "goal": 16}
    one_missing = {**full, "q3": None, "q5": 2}  # bond: 3 of 4 answered (4, 2, 4) -> mean 10/3, prorated x4
    got = {s.scale: s for s in score(WAI_SR, one_missing)}
    assert got["bond"].value == pytest.approx(4 * 10 / 3) and got["bond"].prorated
    assert got["total"].value == pytest.approx(12 * (4 * 10 + 2) / 11)
    two_in_bond = {k: v for k, v in full.items() if k not in ("q3", "q5")}
    got = {s.scale: s.value for s in score(WAI_SR, two_in_bond)}
    assert got["bond"] is None and got["total"] == pytest.approx(48)  # total allows 2 of 12
    three = {k: v for k, v in full.items() if k not in ("q1", "q3", "q4")}
    assert _scores(WAI_SR, three)["total"] is None


def test_custom_instrument_reverse_keyed_mean_scoring_and_missing_codes():
    inst = parse_instrument({"key": "mini", "items": ["a", "b", "c"], "min": 1, "max": 5, "reverse_keyed": ["b"],
                             "scoring": "mean", "missing_codes": [9], "max_missing": {"total": 1},
                             "subscales": {"ab": ["a", "b"]}})
    assert _scores(inst, {"a": 5, "b": 1, "c": 3}) == {"total": pytest.approx((5 + 5 + 3) / 3), "ab": 5.0}
    got = _scores(inst, {"a": 5, "b": 9, "c": 3})  # 9 = declared missing code
    assert got == {"total": 4.0, "ab": None}


def test_config_file_toml_and_json(tmp_path):
    toml = tmp_path / "inst.toml"
    toml.write_text('[[instrument]]\nkey = "hai"\nitems = ["x1", "x2"]\nmin = 0\nmax = 6\n'
                    'subscales = { first = ["x1"] }\nmax_missing = { total = 1 }\nkind = "alliance"\n')
    got = load_instruments(toml)["hai"]
    assert got.kind == "alliance" and [s.name for s in got.scales] == ["total", "first"]
    js = tmp_path / "inst.json"
    js.write_text(json.dumps({"instrument": [{"key": "k2", "items": ["a"], "min": 0, "max": 1}]}))
    assert load_instruments(js)["k2"].items == ("a",)


@pytest.mark.parametrize("bad, message", [
    ({"items": ["a"], "min": 0, "max": 1}, "'key' is required"),
    ({"key": "srs", "items": ["a"], "min": 0, "max": 1}, "built-in"),
    ({"key": "k", "items": ["a", "a"], "min": 0, "max": 1}, "without repeats"),
    ({"key": "k", "items": ["a"], "min": 5, "max": 1}, "min 5.0 must be below max 1.0"),
    ({"key": "k", "items": ["a"], "min": 0, "max": 1, "reverse_keyed": ["zz"]}, "zz"),
    ({"key": "k", "items": ["a"], "min": 0, "max": 1, "subscales": {"s": ["b"]}}, "subscale 's'"),
    ({"key": "k", "items": ["a", "b"], "min": 0, "max": 1, "max_missing": {"total": 2}}, "leaves no item"),
    ({"key": "k", "items": ["a"], "min": 0, "max": 1, "colour": "red"}, "colour"),
    ({"key": "k", "items": ["a"], "min": "0", "max": 1}, "'min' = '0'"),
])
def test_invalid_instrument_configs_name_the_problem(bad, message):
    with pytest.raises(InstrumentConfigError, match=message):
        parse_instrument(bad)


# ----------------------------------------------------------------------------------------------------
# import: row-level report, valid rows kept, nothing coerced

BAD_SRS = """session_id,client_id,date,relationship,goals,approach,overall
s1,,,9,9,8,10
s2,,,11,9,9,9
s3,,,9,nine,9,9
s9,,,9,9,9,9
,c2,2026-13-01,9,9,9,9
,c2,2026-01-06,7,8,,9
,c1,,8,8,8,8
,c3,2026-01-06,8,8,8,8
,c1,2026-02-01,5,6,7,8
s3,c1,,9,9,9,9
,c1,2030-01-01,9,9,9,9
"""


def _import(tmp_path, text, **kw):
    path = tmp_path / "ratings.csv"
    path.write_text(text)
    con = db.connect(tmp_path / "a.duckdb")
    try:
        return import_file(con, path, today=TODAY, **kw), con
    except BaseException:
        con.close()
        raise


def test_bad_srs_file_gives_row_level_report_and_keeps_valid_rows(tmp_path):
    make_db(tmp_path / "a.duckdb", SESSIONS)
    report, con = _import(tmp_path, BAD_SRS, instrument="srs", instruments=BUILTIN)
    codes = {(i.line, i.code) for i in report.issues}
    assert codes == {(3, "out_of_range"), (4, "not_a_number"), (5, "unknown_session"), (6, "bad_date"),
                     (8, "missing_date"), (9, "unknown_client"), (11, "client_mismatch"), (12, "bad_date"),
                     # lines 4 and 7 are both SRS of session s3 (7 linked by its date): one administration given
                     # twice, so neither is used
                     (4, "duplicate"), (7, "duplicate")}
    bad = next(i for i in report.issues if i.code == "out_of_range")
    assert bad.field == "relationship" and bad.value == "11" and "0 to 10" in bad.message
    adm = con.execute("SELECT client_id, session_id, administered_on, status FROM self_report_administrations "
                      "ORDER BY client_id, administered_on NULLS FIRST, session_id").fetchall()
    assert adm == [
        ("c1", "s1", None, "scored"),
        ("c1", "s2", None, "not_scored"),            # goals..overall kept, relationship=11 rejected: no score
        ("c1", None, dt.date(2026, 2, 1), "scored"),  # client + date, no session within 3 days: kept, unlinked
    ]
    # every valid value is stored; rejected ones are not
    assert con.execute("SELECT count(*) FROM self_report_items").fetchone()[0] == 4 + 3 + 4
    assert report.values_accepted == 11 and report.values_read == 44
    assert con.execute("SELECT value FROM self_report_scores_long WHERE session_id = 's1'").fetchall() == [(36.0,)]
    stored = con.execute("SELECT line, code FROM self_report_import_errors ORDER BY line").fetchall()
    assert set(stored) == codes
    text = "\n".join(report.summary_lines())
    assert "out_of_range 1" in text and "line 3: relationship='11'" in text
    con.close()


def test_duplicates_in_file_and_reimport_are_rejected_not_merged(tmp_path):
    make_db(tmp_path / "a.duckdb", SESSIONS)
    text = ("session_id,timepoint,instrument,item,value\n"
            "s1,post,srs,relationship,9\ns1,post,srs,goals,9\ns1,post,srs,approach,9\ns1,post,srs,overall,9\n"
            "s2,post,srs,relationship,8\ns2,post,srs,relationship,7\ns2,post,srs,goals,8\ns2,post,srs,approach,8\n"
            "s2,post,srs,overall,8\ns2,post,srs,clarity,8\ns2,post,xyz,a,1\n")
    report, con = _import(tmp_path, text, instrument=None, instruments=BUILTIN)
    assert {(i.line, i.code) for i in report.issues} == {(6, "duplicate"), (7, "duplicate"), (11, "unknown_item"),
                                                         (12, "unknown_instrument")}
    assert con.execute("SELECT session_id, status FROM self_report_administrations ORDER BY 1").fetchall() == [
        ("s1", "scored"), ("s2", "not_scored")]
    con.close()
    path = tmp_path / "ratings.csv"
    con = db.connect(tmp_path / "a.duckdb")
    again = import_file(con, path, instrument=None, instruments=BUILTIN, today=TODAY)
    assert {i.code for i in again.issues} >= {"already_imported"} and again.administrations == ()
    assert con.execute("SELECT count(*) FROM self_report_items").fetchone()[0] == 4 + 3
    con.close()


def test_missing_codes_are_counted_and_prorated_per_the_rule(tmp_path):
    make_db(tmp_path / "a.duckdb", SESSIONS)
    cfg = {"key": "care", "items": [f"q{i}" for i in range(1, 11)], "min": 1, "max": 5, "missing_codes": [0],
           "max_missing": {"total": 2}, "kind": "alliance"}
    inst = {**BUILTIN, "care": parse_instrument(cfg)}
    rows = ["session_id," + ",".join(cfg["items"]), "s1,5,5,5,5,5,5,5,5,0,0", "s2,5,5,5,5,5,5,5,0,0,0",
            "s3,4,4,4,4,4,4,4,4,4,6"]
    report, con = _import(tmp_path, "\n".join(rows) + "\n", instrument="care", instruments=inst)
    assert [(i.line, i.code) for i in report.issues] == [(4, "out_of_range")]  # 6 > 5 is not a missing code
    got = dict(con.execute("SELECT session_id, value FROM self_report_scores_long").fetchall())
    assert got == {"s1": 50.0, "s2": None, "s3": None}
    assert con.execute("SELECT count(*) FROM self_report_items WHERE missing_code").fetchone()[0] == 5
    con.close()


@pytest.mark.parametrize("text, message", [
    ("", "empty"),
    ("relationship,goals\n1,2\n", "session_id or client_id"),
    ("session_id,relationship,goals,approach\ns1,1,2,3\n", "missing \\['overall'\\]"),
    ("session_id,relationship,goals,approach,overall,notes\ns1,1,2,3,4,x\n", "unknown \\['notes'\\]"),
])
def test_file_level_problems_stop_the_import(tmp_path, text, message):
    make_db(tmp_path / "a.duckdb", SESSIONS)
    with pytest.raises(SelfReportImportError, match=message):
        _import(tmp_path, text, instrument="srs", instruments=BUILTIN)
    con = db.connect(tmp_path / "a.duckdb")
    assert con.execute("SELECT count(*) FROM self_report_imports").fetchone()[0] == 0
    con.close()


def test_cli_import_exit_codes_report_file_and_dry_run(tmp_path, capsys):
    dbp = tmp_path / "a.duckdb"
    make_db(dbp, SESSIONS)
    csv_path = tmp_path / "srs.csv"
    csv_path.write_text(BAD_SRS)
    assert main(["import-self-report", str(csv_path), "--instrument", "srs", "--db", str(dbp), "--dry-run"]) == 1
    assert "dry run: nothing stored" in capsys.readouterr().out
    con = db.connect(dbp)
    assert con.execute("SELECT count(*) FROM self_report_items").fetchone()[0] == 0
    con.close()
    rep = tmp_path / "problems.csv"
    assert main(["import-self-report", str(csv_path), "--instrument", "srs", "--db", str(dbp),
                 "--report", str(rep)]) == 1
    assert "unknown_session" in rep.read_text()
    good = tmp_path / "good.csv"
    good.write_text("session_id,timepoint,individually,interpersonally,socially,overall\ns1,pre,5,5,5,5\n")
    assert main(["import-self-report", str(good), "--instrument", "ors", "--db", str(dbp)]) == 0
    assert main(["import-self-report", str(good), "--instrument", "nope", "--db", str(dbp)]) == 2
    assert "unknown instrument" in capsys.readouterr().err


def test_migration_adds_tables_and_views(tmp_path):
    con = db.connect(tmp_path / "a.duckdb")
    names = {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
    assert {"self_report_imports", "self_report_items", "self_report_scores", "self_report_administrations",
            "self_report_import_errors", "self_report_instruments", "comparison_results", "discrepancy_flags",
            "client_trajectories", "self_report_scores_long", "session_indicators_self_report",
            "client_series"} <= names
    con.close()
