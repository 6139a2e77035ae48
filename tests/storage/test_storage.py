from __future__ import annotations

import datetime as dt

import duckdb
import pytest

from pipeline.errors import SessionNotFoundError, StorageError
from pipeline.report.summary import DISCLAIMER, load_summary, render_markdown
from pipeline.storage import db
from pipeline.storage.migrate import applied_versions, available_migrations, migrate

TABLES = ("sessions", "turns", "words", "markers", "indicators", "speaker_turns", "consents")


def _counts(con) -> dict[str, int]:
    return {t: con.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in TABLES}


def test_migrations_numbered_and_idempotent(tmp_path):
    assert [v for v, _, _ in available_migrations()][0] == 1
    con = db.connect(tmp_path / "a.duckdb")
    assert migrate(con) == []  # already applied by connect
    tables = {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
    assert set(TABLES) | {"pipeline_runs", "run_items", "schema_migrations", "indicators_wide"} <= tables


def test_newer_database_is_refused(tmp_path):
    con = db.connect(tmp_path / "a.duckdb")
    con.execute("INSERT INTO schema_migrations (version, name) VALUES (999, 'from_the_future')")
    with pytest.raises(StorageError, match="999"):
        migrate(con)


def test_write_twice_leaves_the_same_rows(tmp_path, analysis):
    con = db.connect(tmp_path / "a.duckdb")
    db.write_session(con, analysis, run_id="r1", pipeline_version="0.1.0")
    first = _counts(con)
    rows1 = con.execute("SELECT * EXCLUDE (run_id) FROM words ORDER BY word_index").fetchall()
    db.write_session(con, analysis, run_id="r2", pipeline_version="0.1.0")
    assert _counts(con) == first
    assert con.execute("SELECT * EXCLUDE (run_id) FROM words ORDER BY word_index").fetchall() == rows1
    assert first["sessions"] == 1 and first["words"] == len(analysis.words) and first["turns"] == 4
    assert con.execute("SELECT DISTINCT run_id FROM indicators").fetchall() == [("r2",)]


def test_rewrite_with_a_new_indicator_adds_its_wide_column(tmp_path, analysis):
    """Re-processing after a markers version with new indicators: the session's wide row is rewritten.

    DuckDB refuses a key deleted earlier in the transaction if the table was altered after the delete, so the
    new column must be added before the session's old rows are deleted.
    """
    from dataclasses import replace

    from pipeline.types import Indicator

    con = db.connect(tmp_path / "a.duckdb")
    db.write_session(con, analysis, run_id="r1", pipeline_version="0.1.0")
    extra = replace(analysis.measures, indicators=(*analysis.measures.indicators,
                                                   Indicator("brand_new_count", "client", 3.0, "count")))
    db.write_session(con, replace(analysis, measures=extra), run_id="r2", pipeline_version="0.1.0")
    assert con.execute("SELECT run_id, brand_new_count_client FROM indicators_wide").fetchall() == [("r2", 3.0)]
    assert con.execute("SELECT name, speaker_role FROM indicators_wide_columns WHERE column_name ="
                       " 'brand_new_count_client'").fetchall() == [("brand_new_count", "client")]


def test_failure_mid_session_writes_nothing(tmp_path, analysis, monkeypatch):
    con = db.connect(tmp_path / "a.duckdb")
    real = db.insert_frame

    def failing(con_, table, frame):
        if table == "markers":
            raise duckdb.IOException("disk went away while writing markers")
        real(con_, table, frame)

    monkeypatch.setattr(db, "insert_frame", failing)
    with pytest.raises(StorageError, match="rolled back"):
        db.write_session(con, analysis, run_id="r1", pipeline_version="0.1.0")
    assert set(_counts(con).values()) == {0}


def test_failure_on_rewrite_keeps_the_old_rows(tmp_path, analysis, monkeypatch):
    con = db.connect(tmp_path / "a.duckdb")
    db.write_session(con, analysis, run_id="r1", pipeline_version="0.1.0")
    before = _counts(con)
    monkeypatch.setattr(db, "insert_frame", lambda *a: (_ for _ in ()).throw(duckdb.IOException("boom")))
    with pytest.raises(StorageError):
        db.write_session(con, analysis, run_id="r2", pipeline_version="0.1.0")
    assert _counts(con) == before
    assert con.execute("SELECT run_id FROM sessions").fetchone()[0] == "r1"


def test_rows_queryable_with_plain_sql(tmp_path, analysis):
    con = db.connect(tmp_path / "a.duckdb")
    db.write_session(con, analysis, run_id="r1", pipeline_version="0.1.0")
    share = con.execute("SELECT talk_time_share_therapist FROM indicators_wide").fetchone()[0]
    assert 0 < share < 1
    roles = con.execute("SELECT DISTINCT speaker_role FROM turns ORDER BY 1").fetchall()
    assert roles == [("client",), ("therapist",)]


def test_summary_renders_with_disclaimer(tmp_path, analysis):
    con = db.connect(tmp_path / "a.duckdb")
    db.write_session(con, analysis, run_id="r1", pipeline_version="0.1.0")
    md = render_markdown(load_summary(con, "s1"))
    assert DISCLAIMER in md and "| Talk-time share |" in md and "switching gap" in md
    with pytest.raises(SessionNotFoundError, match="nope"):
        load_summary(con, "nope")


def test_read_only_missing_database_is_clear(tmp_path):
    with pytest.raises(StorageError, match="does not exist"):
        db.connect(tmp_path / "none.duckdb", read_only=True)


def test_locked_database_is_a_storage_error(tmp_path):
    path = tmp_path / "a.duckdb"
    writer = db.connect(path)  # keep this writer open
    import os
    import subprocess
    import sys

    code = ("import sys; from pipeline.errors import StorageError; from pipeline.storage import db\n"
            "try:\n    db.connect(sys.argv[1])\nexcept Exception as e:\n"
            "    print(type(e).__name__, isinstance(e, StorageError), e)")
    env = {**os.environ, "ALLIANCE_DB_LOCK_WAIT_S": "1"}  # a bounded wait, then database_locked
    out = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, timeout=60, env=env)
    assert "DatabaseLockedError True" in out.stdout and "lock" in out.stdout.lower()
    writer.close()


def test_client_history_indicators_follow_the_clients_sessions(tmp_path, dialogue):
    """new_material_share needs earlier sessions; erasing one recomputes the others."""
    from dataclasses import replace

    import numpy as np

    from pipeline.analysis.session import SessionMeta, analyse
    from pipeline.engine.runtime import get_nlp
    from pipeline.privacy.consent import parse_consent
    from pipeline.storage.erasure import withdraw
    from pipeline.types import Audio, Diarization, Transcript

    words, turns = dialogue
    audio = Audio(np.zeros(16_000 * 22, dtype=np.float32), 16_000, "ab" * 32, "x.wav", "WAV", 16_000, 1)
    consent = parse_consent({"session_id": "s1", "client_id": "c1", "scope": "research",
                             "consented_on": "2026-01-01", "consented_by": ["client"]}, source="test")
    first = analyse(audio, Transcript(words, "en", 0.99, "fake", "fake-asr"),
                    Diarization(turns, ("SPEAKER_00", "SPEAKER_01")), meta=SessionMeta("s1", "c1", "t1",
                    dt.date(2026, 1, 2)), consent=consent, diarization_model="fake", nlp=get_nlp())
    assert dict(first.measures.client_lemmas).get("fight|NOUN") == 1
    second = replace(first, meta=replace(first.meta, session_id="s2", recorded_on=dt.date(2026, 1, 9)),
                     audio_sha256="cd" * 32)
    con = db.connect(tmp_path / "a.duckdb")

    def share(sid):
        return con.execute("SELECT value FROM indicators WHERE session_id = ? AND name = 'new_material_share'",
                           [sid]).fetchone()[0]

    db.write_session(con, second, run_id="r1", pipeline_version="0.1.0")  # written first, dated later
    assert share("s2") is None  # no earlier session yet
    db.write_session(con, first, run_id="r2", pipeline_version="0.1.0")
    assert share("s1") is None and share("s2") == 0.0  # the same words again: nothing new
    withdraw(con, session_id="s1", actor="t", run_id="r3", keep_audio=True)
    assert share("s2") is None
    con.close()


def _database_at(path, version: int) -> duckdb.DuckDBPyConnection:
    """A database as a pipeline that shipped migrations 1..``version`` left it (schema_migrations included)."""
    con = duckdb.connect(str(path))
    applied_versions(con)  # creates schema_migrations as the migrator does
    for number, name, sql in available_migrations()[:version]:
        con.execute(sql)
        con.execute("INSERT INTO schema_migrations (version, name) VALUES (?, ?)", [number, name])
    return con


def test_migration_0012_adds_the_room_measures_to_session_quality(tmp_path):
    """An empty row written before 0012 keeps NULL room measures; migration 0012 is the next after 0011."""
    assert [(v, n) for v, n, _ in available_migrations()][11] == (12, "quality_room")
    con = _database_at(tmp_path / "old.duckdb", 11)
    con.execute("INSERT INTO session_quality (session_id, run_id) VALUES ('s0', 'r0')")
    assert 12 in migrate(con)
    assert con.execute("SELECT rt60_s, early_drop_db, modulation_ratio_db, run_id FROM session_quality").fetchall() \
        == [(None, None, None, "r0")]


def test_the_room_measures_are_stored_in_the_session_s_quality_row(tmp_path, analysis):
    from dataclasses import replace

    q = replace(analysis.quality, rt60_s=0.79, early_drop_db=4.6, modulation_ratio_db=6.9)
    con = db.connect(tmp_path / "a.duckdb")
    db.write_session(con, replace(analysis, quality=q), run_id="r1", pipeline_version="0.1.0")
    assert con.execute("SELECT rt60_s, early_drop_db, modulation_ratio_db, run_id FROM session_quality"
                       ).fetchall() == [(0.79, 4.6, 6.9, "r1")]


def test_migration_0013_adds_the_expected_wer_to_session_quality(tmp_path, analysis):
    """A row written before 0013 keeps a NULL expected WER; a new session's row carries it."""
    from dataclasses import replace

    assert [(v, n) for v, n, _ in available_migrations()][12] == (13, "expected_wer")
    con = _database_at(tmp_path / "old.duckdb", 12)
    con.execute("INSERT INTO session_quality (session_id, run_id) VALUES ('s0', 'r0')")
    assert 13 in migrate(con)
    assert con.execute("SELECT expected_wer, run_id FROM session_quality").fetchall() == [(None, "r0")]
    con.close()
    con = db.connect(tmp_path / "a.duckdb")
    db.write_session(con, replace(analysis, quality=replace(analysis.quality, expected_wer=0.213)), run_id="r1",
                     pipeline_version="0.1.0")
    assert con.execute("SELECT expected_wer, run_id FROM session_quality").fetchall() == [(0.213, "r1")]
