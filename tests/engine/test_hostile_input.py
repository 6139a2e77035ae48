"""Hostile input: refused, or stored as plain data.

Wrong encodings, huge files and fields, SQL-ish values and path tricks (manifest path traversal and huge
manifest fields: tests/engine/test_batch.py).
"""

from __future__ import annotations

import json

import pytest
from conftest import write_consent

import pipeline.research.self_report.importer as importer
from flows.session_flow import process_session
from pipeline.analysis.session import SessionMeta
from pipeline.errors import ConsentError, SelfReportImportError
from pipeline.privacy.consent import read_sidecar
from pipeline.research.self_report.instruments import BUILTIN
from pipeline.storage import db

SQLISH = "s1'; DROP TABLE sessions; --"


def _import(con, path):
    return importer.import_file(con, path, instrument="srs", instruments=BUILTIN)


def test_self_report_in_a_wrong_encoding_is_refused(tmp_path):
    path = tmp_path / "srs.csv"
    path.write_bytes("session_id,relationship\nSéance-1,9\n".encode("utf-16"))
    con = db.connect(tmp_path / "a.duckdb")
    with pytest.raises(SelfReportImportError, match="UTF-8"):
        _import(con, path)
    assert con.execute("SELECT count(*) FROM self_report_imports").fetchone()[0] == 0
    con.close()


def test_an_oversized_self_report_file_is_refused_before_reading(tmp_path, monkeypatch):
    monkeypatch.setattr(importer, "MAX_IMPORT_BYTES", 100)
    path = tmp_path / "srs.csv"
    path.write_text("session_id,relationship\n" + "s1,9\n" * 100)
    con = db.connect(tmp_path / "a.duckdb")
    with pytest.raises(SelfReportImportError, match="split it"):
        _import(con, path)
    con.close()


def test_sql_ish_ids_are_stored_as_data(prefect_harness, fakes, recording, tmp_path):
    write_consent(recording, session_id=SQLISH, client_id="c'1")
    dbp = tmp_path / "a.duckdb"
    out = process_session(str(recording), SessionMeta(SQLISH, "c'1", "t\"1"), db_path=str(dbp),
                          reports_dir=str(tmp_path / "reports"))
    assert out.state == "processed", out.message
    con = db.connect(dbp, read_only=True)
    rows = con.execute("SELECT session_id, client_id, therapist_id FROM sessions").fetchall()
    assert rows == [(SQLISH, "c'1", 't"1')]
    con.close()
    # the report file name is sanitised: no quote, no slash, no leading dot
    names = sorted(p.name for p in (tmp_path / "reports").iterdir())
    assert all("'" not in n and "/" not in n and not n.startswith(".") for n in names), names


@pytest.mark.parametrize("content, match", [
    (b"\xff\xfe{", "UTF-8 JSON"),
    (b"[1, 2]", "JSON object"),
    (json.dumps({"session_id": "s1", "client_id": "c1", "scope": "everything", "consented_on": "2026-01-01"}).encode(),
     "scope 'everything'"),
    (b"{" + b" " * 70_000 + b"}", "larger than"),
])
def test_hostile_consent_sidecars_are_refused_with_the_reason(tmp_path, content, match):
    audio = tmp_path / "a.wav"
    audio.write_bytes(b"RIFF")
    (tmp_path / "a.wav.consent.json").write_bytes(content)
    with pytest.raises(ConsentError, match=match):
        read_sidecar(audio)


@pytest.mark.parametrize("session, client, why", [
    ("S1", "c1", "session id differs from the stored session id 's1' only by letter case"),
    ("s1", "\u04411", "client id differs from the stored client id 'c1' only by look-alike letters"),  # Cyrillic с
    ("s2", "C1", "client id differs from the stored client id 'c1' only by letter case"),
])
def test_ids_differing_only_by_case_or_look_alikes_are_refused_before_any_model(tmp_path, analysis, session,
                                                                                client, why):
    from pipeline.engine.sequence import already_done

    path = tmp_path / "a.duckdb"
    con = db.connect(path)
    db.write_session(con, analysis, run_id="r1", pipeline_version="0.1.0")  # s1 / c1 / t1
    con.close()
    out = already_done(path, SessionMeta(session, client, "t1"), "ef" * 32, force=True)
    assert out is not None and out.state == "refused" and out.error_code == "invalid_id" and why in out.message
    assert already_done(path, SessionMeta("s2", "c1", "t1"), "ef" * 32, force=False) is None  # the same ids: fine
