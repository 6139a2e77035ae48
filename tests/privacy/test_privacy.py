"""Privacy promises, each with a test that fails if the promise breaks.

Encryption at rest, consent withdrawal and erasure (database, files, Prefect), audit log, roles, audio
retention.
"""

from __future__ import annotations

import os
import re
import stat

import duckdb
import pytest
from conftest import write_consent

from flows.session_flow import process_session
from pipeline.analysis.session import SessionMeta
from pipeline.cli.main import main
from pipeline.engine.runtime import PipelineOptions
from pipeline.errors import AccessDeniedError, ConfigError, SessionNotFoundError, StorageError
from pipeline.report.summary import report_stem
from pipeline.research.access import pseudonym, research_sandbox
from pipeline.storage import db, encryption
from pipeline.storage.erasure import withdraw

#: Words of the test dialogue (conftest.CLIENT_1) that must not survive an erasure or appear in plain bytes.
SECRET = "sister"


def _file_bytes(path) -> bytes:
    data = path.read_bytes()
    wal = path.with_name(path.name + ".wal")
    return data + (wal.read_bytes() if wal.exists() else b"")


@pytest.fixture
def key_file(tmp_path, monkeypatch):
    path = encryption.generate_key_file(tmp_path / "keys" / "db.key")
    monkeypatch.setenv(encryption.KEY_FILE_ENV, str(path))
    return path


# ---------------------------------------------------------------- encryption at rest


def test_keygen_writes_an_owner_only_key_and_never_overwrites(tmp_path):
    path = encryption.generate_key_file(tmp_path / "k")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and len(path.read_text().strip()) == 64
    with pytest.raises(StorageError, match="never overwritten"):
        encryption.generate_key_file(path)


def test_a_key_file_readable_by_others_is_refused(tmp_path):
    path = encryption.generate_key_file(tmp_path / "k")
    os.chmod(path, 0o644)
    with pytest.raises(StorageError, match="chmod 600"):
        encryption.read_key_file(path)


def test_a_short_key_is_refused(monkeypatch):
    monkeypatch.setenv(encryption.KEY_ENV, "short")
    with pytest.raises(StorageError, match="32-256"):
        encryption.load_key()


def test_encrypted_database_hides_text_and_needs_the_key(tmp_path, key_file, analysis, monkeypatch):
    path = tmp_path / "enc.duckdb"
    con = db.connect(path)
    db.write_session(con, analysis, run_id="r1", pipeline_version="0.1.0")
    assert con.execute("SELECT count(*) FROM words WHERE text ILIKE ?", [f"%{SECRET}%"]).fetchone()[0] == 1
    con.close()
    assert encryption.is_encrypted(path)
    assert SECRET.encode() not in _file_bytes(path) and b"c1" not in path.read_bytes()[:4096]
    # readable again with the key (read-only too)
    ro = db.connect(path, read_only=True)
    assert ro.execute("SELECT count(*) FROM sessions").fetchone()[0] == 1
    ro.close()
    # without the key: a clear error, and plain DuckDB cannot open it either
    monkeypatch.delenv(encryption.KEY_FILE_ENV)
    with pytest.raises(StorageError, match="encrypted: set ALLIANCE_DB_KEY_FILE"):
        db.connect(path, read_only=True)
    with pytest.raises(duckdb.Error):
        duckdb.connect(str(path), read_only=True)
    # the wrong key is refused
    other = encryption.generate_key_file(tmp_path / "other.key")
    monkeypatch.setenv(encryption.KEY_FILE_ENV, str(other))
    with pytest.raises(StorageError):
        db.connect(path, read_only=True)


def test_a_plain_database_is_not_opened_as_encrypted_and_can_be_encrypted(tmp_path, analysis, monkeypatch):
    path = tmp_path / "plain.duckdb"
    con = db.connect(path)
    db.write_session(con, analysis, run_id="r1", pipeline_version="0.1.0")
    con.close()
    assert SECRET.encode() in _file_bytes(path)  # the test's premise: plain files do hold the text
    key = encryption.generate_key_file(tmp_path / "db.key")
    monkeypatch.setenv(encryption.KEY_FILE_ENV, str(key))
    with pytest.raises(StorageError, match="not encrypted but a key is set"):
        db.connect(path)
    assert main(["db", "encrypt", "--db", str(path)]) == 0
    assert encryption.is_encrypted(path) and SECRET.encode() not in _file_bytes(path)
    con = db.connect(path, read_only=True)
    assert con.execute("SELECT count(*) FROM words").fetchone()[0] == len(analysis.words)
    assert con.execute("SELECT action FROM audit_log WHERE action = 'encrypt'").fetchone() is not None
    con.close()


# ---------------------------------------------------------------- withdrawal and erasure


def _process(recording, tmp_path, session_id="s1", client_id="c1", **kw):
    write_consent(recording, session_id=session_id, client_id=client_id)
    return process_session(str(recording), SessionMeta(session_id, client_id, "t1"),
                           db_path=str(tmp_path / "a.duckdb"), reports_dir=str(tmp_path / "reports"), **kw)


def _tables_naming(con, value: str) -> list[str]:
    """Every table (not view) with a VARCHAR/array cell containing ``value``."""
    hits = []
    for table, in con.execute("SELECT table_name FROM information_schema.tables WHERE table_type = 'BASE TABLE'"
                              " AND table_catalog = current_database()").fetchall():
        cols = [c for c, t in con.execute("SELECT column_name, data_type FROM information_schema.columns "
                                           "WHERE table_name = ? AND table_catalog = current_database()",
                                           [table]).fetchall() if "VARCHAR" in t or "JSON" in t]
        for c in cols:
            if con.execute(f'SELECT count(*) FROM "{table}" WHERE CAST("{c}" AS VARCHAR) ILIKE ?',
                           [f"%{value}%"]).fetchone()[0]:
                hits.append(f"{table}.{c}")
    return hits


@pytest.mark.parametrize("encrypted", [False, True])
def test_withdraw_erases_everything_derived(prefect_harness, fakes, recording, tmp_path, monkeypatch, encrypted):
    if encrypted:
        monkeypatch.setenv(encryption.KEY_FILE_ENV, str(encryption.generate_key_file(tmp_path / "db.key")))
    assert _process(recording, tmp_path).state == "processed"
    other = tmp_path / "other.wav"
    import soundfile as sf
    from conftest import tone
    sf.write(other, tone(22.0, seed=7, freq=300.0), 16_000)
    assert _process(other, tmp_path, session_id="s2", client_id="c2").state == "processed"
    dbp, reports = tmp_path / "a.duckdb", tmp_path / "reports"
    assert (reports / f"{report_stem('s1')}.html").is_file() and (reports / f"{report_stem('s1')}.md").is_file()
    assert main(["summary", "s1", "--db", str(dbp), "--therapist", "t1"]) == 0
    with db.open(dbp, read_only=True) as con:
        handles = {sid: db.flow_handles(con, [sid]) for sid in ("s1", "s2")}
    assert all(len(h) == 1 for h in handles.values()), handles  # one flow run each, found by its handle

    assert main(["consent", "withdraw", "--session", "s1", "--db", str(dbp), "--reports-dir", str(reports),
                 "--actor", "dpo"]) == 0

    assert not (reports / f"{report_stem('s1')}.html").exists() and not (reports / f"{report_stem('s1')}.md").exists()
    assert not recording.exists() and not recording.with_name(recording.name + ".consent.json").exists()
    assert (reports / f"{report_stem('s2')}.html").is_file() and other.exists()  # the other session is untouched
    con = db.connect(dbp, read_only=True)
    try:
        # the session id survives only in the withdrawal record, the erasure record and the audit log
        assert set(_tables_naming(con, "s1")) <= {"consent_withdrawals.session_id", "erasures.session_ids",
                                                  "erasures.content_sha256", "erasures.target_id",
                                                  "audit_log.session_ids", "audit_log.detail",
                                                  "erasures.files_removed"}
        assert con.execute("SELECT count(*) FROM words WHERE session_id = 's2'").fetchone()[0] > 0
        er = con.execute("SELECT actor, target_kind, session_ids, prefect_runs_deleted FROM erasures").fetchone()
        assert er[:3] == ("dpo", "session", ["s1"]) and er[3] == 1
        actions = [a for (a,) in con.execute("SELECT action FROM audit_log ORDER BY occurred_at").fetchall()]
        assert actions.count("process") == 2 and "summary" in actions and actions[-1] == "withdraw"
    finally:
        con.close()
    # the fakes give both sessions the same words: erase the other client too, then no word may remain
    assert main(["consent", "withdraw", "--client", "c2", "--db", str(dbp), "--reports-dir", str(reports)]) == 0
    assert not other.exists() and not (reports / f"{report_stem('s2')}.html").exists()
    con = db.connect(dbp, read_only=True)
    try:
        assert _tables_naming(con, SECRET) == []
        assert con.execute("SELECT count(*) FROM words").fetchone()[0] == 0
    finally:
        con.close()
    # nothing derived lingers in the file's bytes (rewritten after the erasure)
    assert SECRET.encode() not in _file_bytes(dbp)
    # no Prefect result files were ever written, and the sessions' flow runs are gone
    from prefect.settings import PREFECT_LOCAL_STORAGE_PATH

    storage = PREFECT_LOCAL_STORAGE_PATH.value()
    assert not storage.exists() or not any(storage.rglob("*")), f"Prefect wrote results to {storage}"
    from flows.prefect_runs import delete_flow_runs
    assert delete_flow_runs(handles["s1"] + handles["s2"], session_ids=["s1", "s2"], db_path=dbp) == 0


def test_withdrawn_audio_is_refused_when_submitted_again(prefect_harness, fakes, recording, tmp_path):
    assert _process(recording, tmp_path).state == "processed"
    audio = recording.read_bytes()
    assert main(["consent", "withdraw", "--session", "s1", "--db", str(tmp_path / "a.duckdb"), "--no-prefect"]) == 0
    recording.write_bytes(audio)
    again = _process(recording, tmp_path, session_id="s1-new")
    assert again.state == "refused" and again.error_code == "consent_withdrawn", again.message
    assert "withdrawn" in again.message


def test_client_withdrawal_erases_all_their_sessions_and_self_report(tmp_path, analysis):
    from dataclasses import replace

    dbp = tmp_path / "a.duckdb"
    con = db.connect(dbp)
    db.write_session(con, analysis, run_id="r1", pipeline_version="0.1.0")
    second = replace(analysis, meta=replace(analysis.meta, session_id="s2"), audio_sha256="cd" * 32)
    db.write_session(con, second, run_id="r1", pipeline_version="0.1.0")
    con.execute("INSERT INTO self_report_administrations (administration_id, import_id, instrument, client_id,"
                " session_id, administered_on, timepoint, n_items, n_answered, status, note)"
                " VALUES ('a1', 'i1', 'srs', 'c1', NULL, NULL, 'pre', 4, 4, 'scored', NULL)")
    con.execute("INSERT INTO self_report_scores (administration_id, import_id, instrument, scale, value, n_items,"
                " n_answered, prorated) VALUES ('a1', 'i1', 'srs', 'total', 30, 4, 4, false)")
    result = withdraw(con, client_id="c1", actor="dpo", run_id="r2", keep_audio=True)
    assert sorted(result.session_ids) == ["s1", "s2"]
    for table in ("sessions", "words", "self_report_administrations", "self_report_scores"):
        assert con.execute(f"SELECT count(*) FROM {table}").fetchone()[0] == 0, table
    assert con.execute("SELECT count(*) FROM consent_withdrawals").fetchone()[0] == 2
    with pytest.raises(SessionNotFoundError):
        withdraw(con, session_id="s1", actor="dpo", run_id="r3")
    with pytest.raises(ConfigError):
        withdraw(con, actor="dpo", run_id="r3")
    con.close()


# ---------------------------------------------------------------- retention


def test_audio_is_deleted_after_processing_only_when_asked(prefect_harness, fakes, recording, tmp_path):
    kept = _process(recording, tmp_path)
    assert kept.state == "processed" and recording.exists()
    gone = _process(recording, tmp_path, force=True, options=PipelineOptions(keep_audio=False))
    assert gone.state == "processed" and not recording.exists(), gone.message
    con = db.connect(tmp_path / "a.duckdb", read_only=True)
    sha = con.execute("SELECT audio_sha256 FROM sessions").fetchone()[0]
    assert sha == kept.audio_sha256  # the hash is kept: a re-submission is recognised
    assert con.execute("SELECT count(*) FROM audit_log WHERE action = 'delete-audio'").fetchone()[0] == 1
    con.close()


# ---------------------------------------------------------------- roles


def test_a_clinician_sees_only_their_own_sessions(tmp_path, analysis, capsys):
    dbp = tmp_path / "a.duckdb"
    con = db.connect(dbp)
    db.write_session(con, analysis, run_id="r1", pipeline_version="0.1.0")
    con.close()
    assert main(["summary", "s1", "--db", str(dbp), "--therapist", "t1"]) == 0
    assert main(["summary", "s1", "--db", str(dbp), "--therapist", "t2"]) == 2
    assert "not a session of therapist 't2'" in capsys.readouterr().err
    assert main(["summary", "s1", "--db", str(dbp)]) == 2  # a clinician must say who they are
    assert main(["summary", "s1", "--db", str(dbp), "--role", "supervisor"]) == 0
    con = db.connect(dbp, read_only=True)
    roles = con.execute("SELECT role FROM audit_log WHERE action = 'summary' ORDER BY occurred_at").fetchall()
    assert [r for (r,) in roles] == ["clinician", "supervisor"]
    con.close()


def test_researchers_get_pseudonyms_research_scope_only_and_no_text(tmp_path, analysis, capsys):
    from dataclasses import replace

    dbp = tmp_path / "a.duckdb"
    con = db.connect(dbp)
    db.write_session(con, analysis, run_id="r1", pipeline_version="0.1.0")  # research scope
    clinical = replace(analysis, meta=replace(analysis.meta, session_id="s-clinical", client_id="c9"),
                       consent=replace(analysis.consent, session_id="s-clinical", client_id="c9", scope="clinical"),
                       audio_sha256="cd" * 32)
    db.write_session(con, clinical, run_id="r1", pipeline_version="0.1.0")
    key = b"k" * 40
    box = research_sandbox(con, key=key)
    con.close()
    sessions = box.execute("SELECT session_id, client_id, therapist_id FROM sessions").fetchall()
    assert sessions == [(pseudonym("s1", kind="session_id", key=key), pseudonym("c1", kind="client_id", key=key),
                         pseudonym("t1", kind="therapist_id", key=key))]
    assert pseudonym("c1", kind="client_id", key=b"z" * 40) != sessions[0][1]  # another study, another pseudonym
    cols = {c for (c,) in box.execute("SELECT column_name FROM information_schema.columns").fetchall()}
    assert not cols & {"text", "detail", "role_evidence"}
    n_ind = box.execute("SELECT count(DISTINCT session_id) FROM indicators").fetchone()[0]
    assert n_ind == 1  # the clinical-scope session is not there
    # the sandbox cannot reach files: neither the database nor anything else
    for sql in (f"ATTACH '{dbp}' AS raw", "SELECT * FROM read_csv('/etc/passwd')", "SET enable_external_access = true"):
        with pytest.raises(duckdb.Error):
            box.execute(sql)
    box.close()
    keyf = encryption.generate_key_file(tmp_path / "study.key")
    assert main(["query", "SELECT count(*) AS n, min(client_id) AS c FROM sessions", "--db", str(dbp),
                 "--study-key-file", str(keyf), "--csv"]) == 0
    out = capsys.readouterr().out
    n, client = out.splitlines()[1].split(",")  # a substring test failed when the random key's hex held "c1"
    assert n == "1" and client != "c1" and re.fullmatch(r"C-[0-9a-f]{16}", client), out


def test_researcher_export_is_pseudonymised_and_raw_tables_need_admin(tmp_path, analysis, monkeypatch, capsys):
    import pandas as pd

    dbp = tmp_path / "a.duckdb"
    con = db.connect(dbp)
    db.write_session(con, analysis, run_id="r1", pipeline_version="0.1.0")
    con.close()
    keyf = encryption.generate_key_file(tmp_path / "study.key")
    out = tmp_path / "out"
    assert main(["export", "--db", str(dbp), "--out", str(out), "--format", "csv", "--study-key-file", str(keyf)]) == 0
    frame = pd.read_csv(out / "indicators.csv")
    assert frame["session_id"].str.startswith("S-").all() and frame["client_id"].str.startswith("C-").all()
    assert main(["export", "words", "--db", str(dbp), "--out", str(out), "--format", "csv",
                 "--study-key-file", str(keyf)]) == 2
    assert "not available to researchers" in capsys.readouterr().err
    assert main(["export", "words", "--role", "admin", "--db", str(dbp), "--out", str(tmp_path / "raw"),
                 "--format", "csv"]) == 0
    con = db.connect(dbp, read_only=True)
    assert [r for (r,) in con.execute("SELECT role FROM audit_log WHERE action = 'export'").fetchall()] == [
        "researcher", "admin"]
    con.close()


def test_access_denied_is_an_alliance_error():
    assert issubclass(AccessDeniedError, Exception) and AccessDeniedError.code == "access_denied"


def test_researchers_read_only_de_identified_turns(tmp_path):
    import datetime as dt

    import numpy as np
    from conftest import words_from

    from pipeline.analysis.session import analyse
    from pipeline.privacy.consent import parse_consent
    from pipeline.privacy.deid import get_ner_nlp
    from pipeline.types import Audio, Diarization, SpeakerTurn, Transcript

    therapist = "How was the week, Anna? What would you like to talk about today?"
    client = "Tom and I drove to Boston on March 3rd and my email is anna.k@example.org so yeah."
    words = words_from(therapist, 0.5, 5.0) + words_from(client, 5.6, 12.0)
    turns = (SpeakerTurn(0.5, 5.0, "SPEAKER_00"), SpeakerTurn(5.6, 12.0, "SPEAKER_01"))
    audio = Audio(np.zeros(16_000 * 13, dtype=np.float32), 16_000, "ef" * 32, "x.wav", "WAV", 16_000, 1)
    consent = parse_consent({"session_id": "s1", "client_id": "c1", "scope": "research",
                             "consented_on": "2026-01-01", "consented_by": ["client"]}, source="test")
    a = analyse(audio, Transcript(words, "en", 0.99, "fake", "fake-asr"),
                Diarization(turns, ("SPEAKER_00", "SPEAKER_01")), meta=SessionMeta(
                    "s1", "c1", "t1", dt.date(2026, 1, 2), known_names=("Tom",)),
                consent=consent, diarization_model="fake", ner_nlp=get_ner_nlp())
    con = db.connect(tmp_path / "a.duckdb")
    db.write_session(con, a, run_id="r1", pipeline_version="0.1.0")
    box = research_sandbox(con, key=b"k" * 40)
    con.close()
    texts = " ".join(t for (t,) in box.execute("SELECT text_deidentified FROM turns ORDER BY turn_index").fetchall())
    box.close()
    for identifier in ("Anna", "Tom", "Boston", "March", "anna.k@example.org"):
        assert identifier not in texts, texts
    assert "[PERSON]" in texts and "[EMAIL]" in texts and "talk about today" in texts
