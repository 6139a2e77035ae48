"""After an erasure nothing confirms a session id: no command line naming the manifest, no reproducible handle."""

from __future__ import annotations

import hashlib

from pipeline.engine.manifest import BatchItem
from pipeline.storage import db
from pipeline.storage.erasure import ERASED_COMMAND, withdraw


def test_runs_of_an_erased_session_keep_no_command_line(tmp_path, analysis):
    con = db.connect(tmp_path / "a.duckdb")
    db.write_session(con, analysis, run_id="r1", pipeline_version="0.1.0")  # s1
    db.start_run(con, run_id="r1", pipeline_version="0.1.0", models={},
                 command="batch /data/Anna Smith/manifest.csv (workers=1, engine=threads)")
    db.start_run(con, run_id="r2", pipeline_version="0.1.0", models={}, command="process other.flac")
    db.record_item(con, run_id="r1", source_path="/data/Anna Smith/s1.wav", state="processed", session_id="s1")
    db.record_item(con, run_id="r2", source_path="other.flac", state="processed", session_id="s9")
    withdraw(con, session_id="s1", actor="dpo", run_id="w1", keep_audio=True)
    commands = dict(con.execute("SELECT run_id, command FROM pipeline_runs").fetchall())
    con.close()
    assert commands == {"r1": "batch" + ERASED_COMMAND, "r2": "process other.flac"}  # other runs untouched


def test_batch_handles_are_random_not_a_hash_of_row_and_session_id():
    a, b = BatchItem("row-1.wav", None, None, None), BatchItem("row-1.wav", None, None, None)
    assert a.handle != b.handle and len(a.handle) == 12
    assert a.handle != hashlib.sha256(b"row-1.wav\x00").hexdigest()[:12]
    assert a == b  # the handle is a name, not part of the item's value
