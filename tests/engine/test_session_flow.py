"""The Prefect session flow with fake models: end states, idempotency, consent, no half-writes."""

from __future__ import annotations

import duckdb
import pytest
from conftest import write_consent

import pipeline.engine.sequence as sf_mod
from flows.session_flow import process_session
from pipeline.analysis.session import SessionMeta
from pipeline.errors import AudioSilentError, ConsentError, StageError
from pipeline.report.summary import report_stem

META = SessionMeta("s1", "c1", "t1")


def _count(db_path, table):
    con = duckdb.connect(str(db_path), read_only=True)
    try:
        return con.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
    finally:
        con.close()


def test_processed_then_skipped(prefect_harness, fakes, recording, tmp_path):
    write_consent(recording)
    dbp, reports = tmp_path / "a.duckdb", tmp_path / "reports"
    first = process_session(str(recording), META, db_path=str(dbp), reports_dir=str(reports))
    assert first.state == "processed", first.message
    assert (reports / f"{report_stem('s1')}.md").is_file() and first.headline
    assert (reports / f"{report_stem('s1')}.html").is_file() and first.report_path.endswith(f"{report_stem('s1')}.html")
    n_words = _count(dbp, "words")
    assert n_words == len(fakes[0].words)
    again = process_session(str(recording), META, db_path=str(dbp), reports_dir=str(reports))
    assert again.state == "skipped" and fakes[0].calls == 1
    forced = process_session(str(recording), META, db_path=str(dbp), reports_dir=str(reports), force=True)
    assert forced.state == "processed" and _count(dbp, "words") == n_words and _count(dbp, "sessions") == 1
    states = duckdb.connect(str(dbp), read_only=True).execute(
        "SELECT state FROM run_items ORDER BY finished_at").fetchall()
    assert [s for (s,) in states] == ["processed", "skipped", "processed"]


def test_no_consent_is_refused_and_nothing_derived_is_written(prefect_harness, fakes, recording, tmp_path):
    dbp = tmp_path / "a.duckdb"
    out = process_session(str(recording), META, db_path=str(dbp), reports_dir=str(tmp_path / "r"))
    assert out.state == "refused" and out.error_code == "no_consent" and "consent.json" in out.message
    assert fakes[0].calls == 0
    assert _count(dbp, "sessions") == 0 and _count(dbp, "words") == 0
    assert not (tmp_path / "r").exists()


def test_consent_for_another_client_is_refused(prefect_harness, fakes, recording, tmp_path):
    write_consent(recording, client_id="someone-else")
    out = process_session(str(recording), META, db_path=str(tmp_path / "a.duckdb"), reports_dir=str(tmp_path))
    assert out.state == "refused" and "someone-else" in out.message


def test_bad_audio_fails_with_stage_and_reason(prefect_harness, fakes, tmp_path):
    path = tmp_path / "broken.wav"
    path.write_bytes(b"RIFF....not really")
    write_consent(path)
    out = process_session(str(path), META, db_path=str(tmp_path / "a.duckdb"), reports_dir=str(tmp_path))
    assert out.state == "failed" and out.stage == "audio" and out.error_code == "audio_unreadable"
    assert "broken.wav" in out.message


def test_same_audio_under_another_session_id_is_flagged(prefect_harness, fakes, recording, tmp_path):
    write_consent(recording)
    dbp = tmp_path / "a.duckdb"
    assert process_session(str(recording), META, db_path=str(dbp), reports_dir=str(tmp_path)).state == "processed"
    copy = tmp_path / "copy.wav"
    copy.write_bytes(recording.read_bytes())
    write_consent(copy, session_id="s2")
    out = process_session(str(copy), SessionMeta("s2", "c1", "t1"), db_path=str(dbp), reports_dir=str(tmp_path))
    assert out.state == "failed" and "already stored as session 's1'" in out.message
    assert _count(dbp, "sessions") == 1


def test_stage_failure_writes_nothing(prefect_harness, monkeypatch, fakes, recording, tmp_path):
    write_consent(recording)

    class Exploding:
        model_name = "boom"

        def diarize(self, samples, *, num_speakers=None, hook=None):
            raise RuntimeError("diarizer crashed")

    monkeypatch.setattr(sf_mod, "get_diarizer", lambda options: Exploding())
    dbp = tmp_path / "a.duckdb"
    out = process_session(str(recording), META, db_path=str(dbp), reports_dir=str(tmp_path))
    assert out.state == "failed" and out.stage == "diarization" and "diarizer crashed" in out.message
    assert _count(dbp, "sessions") == 0 and _count(dbp, "words") == 0


def test_new_markers_version_reprocesses(prefect_harness, fakes, recording, tmp_path, monkeypatch):
    write_consent(recording)
    dbp = tmp_path / "a.duckdb"
    assert process_session(str(recording), META, db_path=str(dbp), reports_dir=str(tmp_path)).state == "processed"
    monkeypatch.setattr(sf_mod, "MARKERS_VERSION", "99.0.0")
    again = process_session(str(recording), META, db_path=str(dbp), reports_dir=str(tmp_path))
    assert again.state == "processed" and fakes[0].calls == 2 and _count(dbp, "sessions") == 1


@pytest.mark.parametrize("error, state, stage, code", [
    (ConsentError("no sidecar"), "refused", "consent", "no_consent"),
    (AudioSilentError("x.wav: silent"), "failed", "audio", "audio_silent"),
    (StageError("diarize", "pyannote failed"), "failed", "diarize", "stage_failed"),
    (RuntimeError("boom"), "failed", "audio", "unexpected"),
])
def test_outcome_for_error(error, state, stage, code):
    from pipeline.engine.outcome import outcome_for_error

    stage_now = "consent" if state == "refused" else "audio"
    out = outcome_for_error(error, source_path="x.wav", session_id="s1", audio_sha256=None, stage=stage_now,
                            duration_s=3.0)
    assert (out.state, out.stage, out.error_code) == (state, stage, code)
    assert str(error) in out.message
