"""A database with a corrupt block in use is refused up front: exit 2, one line, no run record written."""

from __future__ import annotations

import os

import duckdb
import pytest
from conftest import write_consent

from pipeline.errors import StorageError
from pipeline.storage import db
from pipeline.storage.integrity import check_blocks


def _damaged(tmp_path):
    """A pipeline database with one data block of run_items overwritten (its catalogue still opens)."""
    path = tmp_path / "a.duckdb"
    con = db.connect(path)
    con.execute("INSERT INTO run_items (run_id, source_path, state, message, finished_at) "
                "SELECT 'r0', 'x' || range, 'failed', repeat('m', 40), now() FROM range(150000)")
    con.execute("CHECKPOINT")
    blocks = sorted({b for (b,) in con.execute(
        "SELECT block_id FROM pragma_storage_info('run_items') WHERE column_name = 'message' AND block_id >= 0"
    ).fetchall()})
    con.close()
    with path.open("r+b") as f:  # one data block of run_items.message (DuckDB: 3 x 4 KiB headers, 256 KiB blocks)
        f.seek(3 * 4096 + blocks[len(blocks) // 2] * 262_144 + 1000)
        f.write(os.urandom(2048))
    probe = duckdb.connect(str(path))
    assert probe.execute("SELECT count(*) FROM run_items").fetchone()[0] == 150_000  # counting does not notice
    probe.close()
    return path


def test_check_blocks_reads_every_block(tmp_path):
    path = _damaged(tmp_path)
    con = duckdb.connect(str(path))
    with pytest.raises(StorageError, match="a.duckdb is damaged .*nothing was written"):
        check_blocks(con, name=path.name)
    con.close()
    healthy = db.connect(tmp_path / "b.duckdb")
    assert check_blocks(healthy, name="b.duckdb") > 10
    healthy.close()


def test_process_on_a_damaged_database_exits_2_without_a_run_record(tmp_path, tone_wav, capsys):
    from pipeline.cli.main import main

    path = _damaged(tmp_path)
    write_consent(tone_wav)
    code = main(["process", str(tone_wav), "--session-id", "s1", "--client-id", "c1", "--therapist-id", "t1",
                 "--db", str(path), "--reports-dir", str(tmp_path / "reports")])
    err = capsys.readouterr().err
    assert code == 2 and "is damaged" in err and "Traceback" not in err
    con = duckdb.connect(str(path))
    assert con.execute("SELECT count(*) FROM pipeline_runs").fetchone()[0] == 0
    con.close()
