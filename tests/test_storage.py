from __future__ import annotations

import datetime as dt

import duckdb
import pytest

from pipeline.errors import SessionNotFoundError, StorageError
from pipeline.storage import db
from pipeline.storage.migrate import available_migrations, migrate
from pipeline.summary import DISCLAIMER, load_summary, render_markdown

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
    share = con.execute("SELECT talk_time_share FROM indicators_wide WHERE speaker_role = 'therapist'").fetchone()[0]
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
    import subprocess
    import sys

    code = ("import sys; from pipeline.storage import db\n"
            "try:\n    db.connect(sys.argv[1])\nexcept Exception as e:\n    print(type(e).__name__, e)")
    out = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, timeout=60)
    assert "StorageError" in out.stdout and "lock" in out.stdout.lower()
    writer.close()
