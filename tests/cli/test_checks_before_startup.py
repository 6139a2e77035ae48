"""Issue 24 (paths that work as written): what can be refused is refused before Prefect or any model starts.

A run blocked by another run holding the database is refused at once (exit 3, one line); a batch checks every
item (manifest row, consent, file, SHA-256, skip test, a second row with the same audio) in one opening of the
database, so a batch whose items all end there never starts Prefect; the recording's or transcript's file
name never reaches the terminal (users name files after clients).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import soundfile as sf
from conftest import ROOT, tone, write_consent

import flows.server
from pipeline.audio.decode import sha256_of
from pipeline.cli.main import main
from pipeline.storage import db
from pipeline.storage.lock import exclusive_run

HEADER = "audio,session_id,client_id,therapist_id,recorded_on,consent_scope,consented_on,consented_by\n"
NAME = "Jane Doe"  # a recording named after its client


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in ("PREFECT_HOME", "PREFECT_API_URL")}


def _alliance(*args: str) -> tuple[subprocess.CompletedProcess, float]:
    started = time.perf_counter()
    out = subprocess.run([sys.executable, "-m", "pipeline.cli.main", *args], capture_output=True, text=True,
                         timeout=300, env=_env(), cwd=ROOT)
    return out, time.perf_counter() - started


@pytest.fixture
def named_wav(tmp_path) -> Path:
    path = tmp_path / "in" / f"{NAME}.wav"
    path.parent.mkdir()
    sf.write(path, tone(22.0), 16_000)
    return path


@pytest.fixture
def no_server(monkeypatch):
    """Fail the test if Prefect's local server is started (the checks must end the command first)."""
    monkeypatch.setattr(flows.server, "start_background_server",
                        lambda *a, **k: pytest.fail("Prefect's server was started"))


@pytest.mark.parametrize("command", ["process", "batch"])
def test_a_run_blocked_by_another_run_is_refused_at_once(named_wav, tmp_path, command):
    """Before: refused only by the flow's run, after Prefect and the models started (37-51 s), exit 2."""
    write_consent(named_wav)
    dbp = tmp_path / "data" / "a.duckdb"
    args = ([str(named_wav), "--session-id", "s1", "--client-id", "c1", "--therapist-id", "t1"]
            if command == "process" else [str(named_wav.parent)])
    with exclusive_run(dbp):
        out, elapsed = _alliance(command, *args, "--db", str(dbp), "--reports-dir", str(tmp_path / "r"))
    lines = [line for line in out.stderr.splitlines() if line.strip()]
    assert out.returncode == 3 and len(lines) == 1, out.stdout + out.stderr
    assert lines[0].startswith("error: another run (process ") and f"{os.getpid()}" in lines[0]
    assert elapsed < 10, f"refused after {elapsed:.1f} s"
    assert not (dbp.parent / ".alliance-prefect" / "prefect.db").exists()  # no Prefect server ran
    assert NAME not in out.stdout + out.stderr


def test_a_batch_whose_items_all_end_in_the_checks_never_starts_prefect(named_wav, tmp_path, no_server, analysis,
                                                                        capsys):
    """Refused (no consent), failed (empty file, bad row), skipped (stored): recorded in one run, no Prefect."""
    dbp = tmp_path / "a.duckdb"
    inbox = named_wav.parent
    (inbox / "Bob Smith.wav").write_bytes(b"")
    (inbox / "stored.wav").write_bytes(named_wav.read_bytes() + b"\0\0")  # other audio, stored below
    manifest = inbox / "m.csv"
    manifest.write_text(HEADER + f"{NAME}.wav,s1,c1,t1,,,,\n"
                        "Bob Smith.wav,s2,c1,t1,,research,2026-01-01,client\n"
                        "../elsewhere/Mary Major.wav,s3,c1,t1,,,,\n"
                        "stored.wav,s4,c1,t1,,research,2026-01-01,client\n")
    _store_session(dbp, analysis, "s4", sha256_of(inbox / "stored.wav"))
    code = main(["batch", str(manifest), "--db", str(dbp), "--reports-dir", str(tmp_path / "r"), "--json"])
    out, err = capsys.readouterr()
    objs = [json.loads(line) for line in out.splitlines()]
    states = {o["session_id"]: (o["state"], o["error_code"], o["source"]) for o in objs if o["kind"] == "recording"}
    assert code == 3 and states == {"s1": ("refused", "no_consent", "item 1"),
                                    "s2": ("failed", "audio_empty", "item 2"),
                                    None: ("failed", "manifest", "item 3"),
                                    "s4": ("skipped", None, "item 4")}
    with db.open(dbp, read_only=True) as con:
        assert con.execute("SELECT count(*) FROM run_items").fetchone()[0] == 4
        assert con.execute("SELECT status FROM pipeline_runs ORDER BY started_at DESC LIMIT 1").fetchone() == (
            "finished",)
    for name in (NAME, "Bob Smith", "Mary Major", "stored.wav"):
        assert name not in out + err, name


def _store_session(dbp: Path, analysis, session_id: str, sha: str) -> None:
    """The ``analysis`` fixture stored as ``session_id`` with this audio's SHA-256 (as a run would have)."""
    from dataclasses import replace

    from pipeline import PIPELINE_VERSION

    stored = replace(analysis, audio_sha256=sha, meta=replace(analysis.meta, session_id=session_id))
    with db.open(dbp) as con:
        db.write_session(con, stored, run_id="r0", pipeline_version=PIPELINE_VERSION)


def test_duplicate_audio_in_a_batch_and_audio_stored_under_another_id_fail_before_models(
        named_wav, tmp_path, no_server, analysis, capsys):
    """Two rows with the same audio, and audio stored as another session: both end in the checks."""
    dbp = tmp_path / "a.duckdb"
    inbox = named_wav.parent
    shutil.copy(named_wav, inbox / "copy.wav")
    (inbox / "old.wav").write_bytes(named_wav.read_bytes() + b"\0\0")
    _store_session(dbp, analysis, "s-old", sha256_of(inbox / "old.wav"))
    manifest = inbox / "m.csv"
    manifest.write_text(HEADER + f"{NAME}.wav,s1,c1,t1,,research,2026-01-01,client\n"
                        "copy.wav,s2,c1,t1,,research,2026-01-01,client\n"
                        "old.wav,s3,c1,t1,,research,2026-01-01,client\n")
    from pipeline.engine.batch_checks import check_batch
    from pipeline.engine.manifest import load_batch

    checks = check_batch(load_batch(manifest), db_path=dbp, force=False)
    assert [item.meta.session_id for item, _ in checks.runnable()] == ["s1"]
    ended = {item.meta.session_id: o for item, o in checks.ended()}
    assert (ended["s2"].state, ended["s2"].error_code) == ("failed", "duplicate")
    assert "the same audio (SHA-256) as item 1 of this batch (session 's1')" in ended["s2"].message
    assert (ended["s3"].state, ended["s3"].error_code) == ("failed", "duplicate")
    assert "already stored as session 's-old'" in ended["s3"].message
    (inbox / f"{NAME}.wav").unlink()  # now every row ends in the checks: the command never starts Prefect
    (inbox / "m.csv").write_text(HEADER + "copy.wav,s2,c1,t1,,research,2026-01-01,client\n"
                                 "copy.wav,s5,c1,t1,,research,2026-01-01,client\n"
                                 "old.wav,s3,c1,t1,,research,2026-01-01,client\n")
    _store_session(dbp, analysis, "s2", sha256_of(inbox / "copy.wav"))
    assert main(["batch", str(manifest), "--db", str(dbp), "--reports-dir", str(tmp_path / "r")]) == 3
    out = capsys.readouterr().out
    assert "failed    s5  item 2 at storage: this audio is already stored as session 's2'" in out
    assert "failed    s3  item 3 at storage: this audio is already stored as session 's-old'" in out


def test_the_file_is_hashed_once_for_a_batch(named_wav, tmp_path, monkeypatch):
    """The checks' SHA-256 is handed on to the computation (the flow neither checks nor hashes again)."""
    import pipeline.audio.decode as decode
    from pipeline.engine.batch_checks import check_batch
    from pipeline.engine.manifest import load_batch

    write_consent(named_wav)
    calls = []
    real = decode.sha256_of
    expected = real(named_wav)  # before counting: sha256_of(path) re-enters sha256_of(path, handle)
    monkeypatch.setattr(decode, "sha256_of", lambda path, *a, **k: calls.append(path) or real(path, *a, **k))
    checks = check_batch(load_batch(named_wav.parent), db_path=tmp_path / "a.duckdb", force=False)
    ((item, pre),) = checks.runnable()
    assert len(calls) <= 1
    assert pre.checked is not None and pre.checked.sha256 == expected


def test_process_never_prints_the_recordings_file_name(named_wav, tmp_path):
    """Before: ``REFUSED: /tmp/.../Jane Doe.wav: no consent recorded for Jane Doe.wav ...``."""
    dbp = tmp_path / "a.duckdb"
    for extra in ([], ["--json"]):
        out, _ = _alliance("process", str(named_wav), "--session-id", "s1", "--client-id", "c1", "--therapist-id",
                           "t1", "--db", str(dbp), *extra)
        assert out.returncode == 3 and "no consent" in out.stdout, out.stdout + out.stderr
        assert NAME not in out.stdout + out.stderr, out.stdout + out.stderr
    assert "REFUSED: session s1: no consent recorded for the recording" in _alliance(
        "process", str(named_wav), "--session-id", "s1", "--client-id", "c1", "--therapist-id", "t1",
        "--db", str(dbp))[0].stdout
    gone = tmp_path / f"{NAME} 2.wav"
    out, _ = _alliance("process", str(gone), "--session-id", "s2", "--client-id", "c1", "--therapist-id", "t1",
                       "--db", str(dbp))
    assert out.returncode == 3 and "FAILED: session s2" in out.stdout and NAME not in out.stdout + out.stderr


def test_batch_in_folder_mode_never_prints_a_file_name_even_as_a_default_session_id(named_wav, tmp_path,
                                                                                  no_server, capsys):
    """A folder recording without a sidecar gets its stem as session id: printed as its handle instead."""
    assert main(["batch", str(named_wav.parent), "--db", str(tmp_path / "a.duckdb")]) == 0
    out = capsys.readouterr().out
    assert "[1/1] refused   item 1  item 1 at consent" in out and NAME not in out, out


def test_code_never_prints_the_transcripts_file_name(tmp_path, capsys):
    assert main(["code", str(tmp_path / f"{NAME}.csv")]) == 2
    err = capsys.readouterr().err
    assert "error: transcript the transcript does not exist" in err and NAME not in err
    (tmp_path / f"{NAME}.csv").write_text("role,text\nnobody,\n")
    assert main(["code", str(tmp_path / f"{NAME}.csv")]) == 2
    out, err = capsys.readouterr()
    assert err.startswith("error: ") and NAME not in out + err
    (tmp_path / f"{NAME}.csv").write_text("role,text\ntherapist,What brings you here today?\n"
                                          "client,My wife says I drink too much.\n"
                                          "therapist,So she is worried about you.\n")
    for extra in ([], ["--json"]):
        assert main(["code", str(tmp_path / f"{NAME}.csv"), *extra]) == 0
        out, err = capsys.readouterr()
        assert NAME not in out + err and ("the transcript: 3 utterances coded" in out
                                          or '"conversation": "the transcript"' in out), out
