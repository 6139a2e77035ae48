"""Consent semantics: who consented, when, a withdrawal that is a date, and withdrawal before processing."""

from __future__ import annotations

import datetime as dt
import re

import duckdb
import pytest
from conftest import write_consent

from pipeline.analysis.session import SessionMeta
from pipeline.cli.main import main
from pipeline.engine import sequence
from pipeline.errors import ConsentError, ConsentInvalidError, ConsentWithdrawnError
from pipeline.privacy.consent import check_matches, parse_consent

GOOD = {"session_id": "s1", "client_id": "c1", "scope": "clinical", "consented_on": "2026-01-01",
        "consented_by": ["client"]}
TODAY = dt.date(2026, 6, 1)


def _parse(**change):
    return parse_consent({**GOOD, **change}, source="test", today=TODAY)


@pytest.mark.parametrize("by, ok", [
    ([], False), ("", False), (["therapist"], False), (["guardian", "therapist"], False), ([""], False),
    (["client"], True), (["Client", "therapist"], True), (["c1"], True), ("client", True), (None, False),
])
def test_consented_by_must_name_the_client(by, ok):
    if ok:
        assert "client" in [b.casefold() for b in _parse(consented_by=by).consented_by] or by == ["c1"]
    else:
        with pytest.raises(ConsentInvalidError, match="consented_by|consented_by id"):
            _parse(consented_by=by)


def test_consented_by_absent_is_refused_in_every_path():  # issue 24: it was accepted as "an older record"
    record = {k: v for k, v in GOOD.items() if k != "consented_by"}
    with pytest.raises(ConsentInvalidError, match="consented_by is missing"):
        parse_consent(record, source="test", today=TODAY)


def test_consent_in_the_future_is_refused():
    assert _parse(consented_on="2026-06-01").consented_on == TODAY
    with pytest.raises(ConsentInvalidError, match="in the future"):
        _parse(consented_on="2026-06-02")


def test_consent_after_the_recording_is_refused():
    c = _parse(consented_on="2026-03-02")
    check_matches(c, session_id="s1", client_id="c1", recorded_on=dt.date(2026, 3, 2))
    check_matches(c, session_id="s1", client_id="c1")  # recording date unknown
    with pytest.raises(ConsentInvalidError, match="after the recording date 2026-03-01"):
        check_matches(c, session_id="s1", client_id="c1", recorded_on=dt.date(2026, 3, 1))


@pytest.mark.parametrize("value", ["no", "yes", "false", "2026-13-01", "01/02/2026", 20260101, True, ["2026-01-01"]])
def test_withdrawn_on_that_is_not_a_date_is_an_invalid_record(value):
    with pytest.raises(ConsentInvalidError, match="invalid withdrawn_on") as e:
        _parse(withdrawn_on=value)
    assert e.value.code == "consent_invalid"


def test_withdrawn_on_a_date_is_withdrawn_and_empty_is_not():
    with pytest.raises(ConsentWithdrawnError, match="withdrawn on 2026-02-01") as e:
        _parse(withdrawn_on="2026-02-01")
    assert e.value.code == "consent_withdrawn"
    assert _parse(withdrawn_on="").session_id == "s1" and _parse(withdrawn_on=None).session_id == "s1"


@pytest.mark.parametrize("field, value, shown", [
    ("session_id", "s\u202e1", "U+202E"), ("client_id", "c\x001", "U+0000"), ("session_id", "x" * 200, "200"),
    ("session_id", " s1", "whitespace"), ("client_id", ["c1"], "must be text"),
])
def test_consent_ids_follow_the_id_rule(field, value, shown):
    with pytest.raises(ConsentInvalidError, match=re.escape(shown)):
        _parse(**{field: value})


def test_consent_ids_are_nfc():
    c = _parse(session_id="Se\u0301ance")
    assert c.session_id == "S\u00e9ance"
    check_matches(c, session_id="S\u00e9ance", client_id="c1")


def test_sidecar_consent_after_the_recording_is_refused_in_the_sequence(recording, tmp_path):
    write_consent(recording)  # consented_on 2026-01-01
    meta = SessionMeta("s1", "c1", "t1", dt.date(2025, 12, 31))
    pre = sequence.precheck(recording, meta, None, db_path=tmp_path / "a.duckdb", force=False)
    assert (pre.outcome.state, pre.outcome.error_code) == ("refused", "consent_invalid")
    assert "after the recording date" in pre.outcome.message


# ------------------------------------------------------------------ withdrawal before processing


def _withdraw(dbp, *extra: str) -> int:
    return main(["consent", "withdraw", "--before-processing", "--db", str(dbp), "--actor", "dpo", *extra])


def test_withdrawal_before_processing_refuses_the_recording_end_to_end(prefect_harness, fakes, recording, tmp_path,
                                                                       monkeypatch, capsys):
    from flows.session_flow import process_session

    monkeypatch.setenv("PREFECT_HOME", str(tmp_path / "prefect-home"))
    write_consent(recording)
    dbp = tmp_path / "a.duckdb"
    assert _withdraw(dbp, "--session", "s1") == 0
    assert "registered before processing" in capsys.readouterr().out
    assert _withdraw(dbp, "--session", "s1") == 0  # registering it again changes nothing
    assert "already registered" in capsys.readouterr().out

    out = process_session(str(recording), SessionMeta("s1", "c1", "t1"), db_path=str(dbp),
                          reports_dir=str(tmp_path / "reports"))
    assert (out.state, out.error_code) == ("refused", "consent_withdrawn"), out.message
    assert "before it was processed" in out.message
    assert fakes[0].calls == 0

    code = main(["process", str(recording), "--session-id", "s1", "--client-id", "c1", "--therapist-id", "t1",
                 "--db", str(dbp), "--reports-dir", str(tmp_path / "reports")])
    assert code == 3 and "REFUSED" in capsys.readouterr().out
    con = duckdb.connect(str(dbp), read_only=True)
    try:
        assert con.execute("SELECT count(*) FROM sessions").fetchone()[0] == 0
        assert con.execute("SELECT count(*) FROM consent_withdrawals").fetchone()[0] == 1
        detail = con.execute("SELECT detail FROM audit_log WHERE action = 'withdraw'").fetchall()
        states = con.execute("SELECT state, error_code FROM run_items").fetchall()
    finally:
        con.close()
    assert len(detail) == 1 and "before processing" in detail[0][0]
    assert states == [("refused", "consent_withdrawn")] * 2


def test_withdrawal_before_processing_with_the_file_refuses_it_under_any_id(recording, tmp_path, monkeypatch,
                                                                           capsys):
    monkeypatch.setenv("PREFECT_HOME", str(tmp_path / "prefect-home"))
    dbp = tmp_path / "a.duckdb"
    assert _withdraw(dbp, "--session", "s9", "--audio", str(recording)) == 0
    write_consent(recording, session_id="s2")
    pre = sequence.precheck(recording, SessionMeta("s2", "c1", "t1"), None, db_path=dbp, force=False)
    assert (pre.outcome.state, pre.outcome.error_code) == ("refused", "consent_withdrawn")
    assert "this recording" in pre.outcome.message


def test_withdrawal_before_processing_needs_a_valid_session_not_yet_stored(analysis, tmp_path, monkeypatch, capsys):
    from pipeline.storage import db

    monkeypatch.setenv("PREFECT_HOME", str(tmp_path / "prefect-home"))
    dbp = tmp_path / "a.duckdb"
    with db.open(dbp) as con:
        db.write_session(con, analysis, run_id="r1", pipeline_version="test")
    assert _withdraw(dbp, "--session", "s1") == 2
    assert "already processed" in capsys.readouterr().err
    assert _withdraw(dbp, "--client", "c1") == 2
    assert "needs --session" in capsys.readouterr().err
    assert _withdraw(dbp, "--session", "s\u202e2") == 2
    assert "U+202E" in capsys.readouterr().err


def test_consent_for_another_session_is_still_no_consent():
    with pytest.raises(ConsentError) as e:
        check_matches(_parse(), session_id="s2", client_id="c1")
    assert e.value.code == "no_consent"
