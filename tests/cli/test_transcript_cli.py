"""``alliance export-transcript``: role rules, researcher view, audit, owner-only files, erasure on withdrawal."""

from __future__ import annotations

import json
import stat
from dataclasses import replace

import pytest

from pipeline.cli.main import main
from pipeline.report.summary import report_stem
from pipeline.research.pseudonyms import pseudonym
from pipeline.storage import db, encryption
from pipeline.storage.erasure import withdraw


@pytest.fixture
def dbp(tmp_path, analysis):
    """s1 (client c1, therapist t1, research scope), s2 (c1, therapist t2, clinical scope), both in run r1."""
    path = tmp_path / "a.duckdb"
    con = db.connect(path)
    db.write_session(con, analysis, run_id="r1", pipeline_version="0.1.0")
    other = replace(analysis, meta=replace(analysis.meta, session_id="s2", therapist_id="t2"),
                    consent=replace(analysis.consent, session_id="s2", scope="clinical"), audio_sha256="cd" * 32)
    db.write_session(con, other, run_id="r1", pipeline_version="0.1.0")
    for sid in ("s1", "s2"):
        db.record_item(con, run_id="r1", source_path=f"/in/{sid}.wav", state="processed", session_id=sid)
    con.close()
    return path


def _audit(dbp):
    con = db.connect(dbp, read_only=True)
    rows = con.execute("SELECT role, session_ids, detail FROM audit_log WHERE action = 'export-transcript' "
                       "ORDER BY occurred_at").fetchall()
    con.close()
    return rows


def _files(dbp):
    con = db.connect(dbp, read_only=True)
    rows = con.execute("SELECT session_id, kind, path FROM report_files WHERE kind LIKE 'transcript_%' "
                       "ORDER BY session_id, kind").fetchall()
    con.close()
    return rows


def test_help_lists_every_format(capsys):
    with pytest.raises(SystemExit) as e:
        main(["export-transcript", "--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    for word in ("json", "srt", "vtt", "txt", "tsv", "rttm", "textgrid", "eaf", "all", "--client", "--run",
                 "researcher", "--index", "--max-line-width", "--max-line-count", "--uri", "--media"):
        assert word in out


def test_clinician_exports_own_session_owner_only_audited_and_recorded(dbp, tmp_path, capsys):
    out = tmp_path / "mine.vtt"
    assert main(["export-transcript", "s1", "--format", "vtt", "--out", str(out), "--db", str(dbp),
                 "--therapist", "t1", "--actor", "dr-a"]) == 0
    assert out.read_text().startswith("WEBVTT") and "<v Therapist>" in out.read_text()
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert _files(dbp) == [("s1", "transcript_vtt", str(out.resolve()))]
    ((role, ids, detail),) = _audit(dbp)
    assert role == "clinician" and ids == ["s1"] and detail.startswith("vtt: 1 file(s)")
    assert "Exported 1 file(s) as vtt" in capsys.readouterr().out


def test_clinician_cannot_export_another_therapists_session(dbp, tmp_path, capsys):
    out = tmp_path / "x.json"
    assert main(["export-transcript", "s2", "--format", "json", "--out", str(out), "--db", str(dbp),
                 "--therapist", "t1"]) == 2
    assert "not a session of therapist 't1'" in capsys.readouterr().err and not out.exists()
    assert main(["export-transcript", "s1", "--format", "json", "--out", str(out), "--db", str(dbp)]) == 2
    assert main(["export-transcript", "s2", "--format", "json", "--out", str(out), "--db", str(dbp),
                 "--role", "supervisor"]) == 0
    assert [r for r, _, _ in _audit(dbp)] == ["supervisor"]
    assert main(["export-transcript", "nope", "--format", "json", "--db", str(dbp), "--role", "admin"]) == 2
    assert "no session 'nope'" in capsys.readouterr().err


def test_client_and_run_exports_write_one_file_per_session_within_the_role(dbp, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["export-transcript", "--client", "c1", "--format", "textgrid", "--out", "tg", "--db", str(dbp),
                 "--therapist", "t1"]) == 0
    assert sorted(p.name for p in (tmp_path / "tg").iterdir()) == [f"{report_stem('s1')}.TextGrid"]
    assert main(["export-transcript", "--run", "r1", "--format", "eaf", "--db", str(dbp), "--role", "supervisor"]) == 0
    default = tmp_path / "reports" / "transcripts"
    assert sorted(p.name for p in default.iterdir()) == sorted(f"{report_stem(s)}.eaf" for s in ("s1", "s2"))
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in default.iterdir())
    assert [ids for _, ids, _ in _audit(dbp)] == [["s1"], ["s1", "s2"]]
    assert main(["export-transcript", "--client", "c1", "--format", "srt", "--out", "x", "--db", str(dbp),
                 "--therapist", "t9"]) == 2
    assert main(["export-transcript", "--run", "no-such-run", "--format", "srt", "--db", str(dbp),
                 "--role", "admin"]) == 2


def test_researcher_gets_pseudonyms_and_research_scope_only(dbp, tmp_path, capsys, monkeypatch):
    from pipeline.research.pseudonyms import STUDY_KEY_FILE_ENV

    monkeypatch.delenv(STUDY_KEY_FILE_ENV, raising=False)
    keyf = encryption.generate_key_file(tmp_path / "study.key")
    key = encryption.read_key_file(keyf).encode("ascii")
    out = tmp_path / "research"
    args = ["--format", "json", "--out", str(out), "--db", str(dbp), "--role", "researcher",
            "--study-key-file", str(keyf)]
    assert main(["export-transcript", "--client", pseudonym("c1", kind="client_id", key=key), *args]) == 0
    (path,) = out.iterdir()  # s2 is clinical scope: not exported
    assert path.name == f"{pseudonym('s1', kind='session_id', key=key)}.json"
    data = json.loads(path.read_text())
    assert data["format"]["view"] == "research" and data["word_segments"] == []
    assert data["session"]["session_id"] == path.stem and data["session"]["client_id"] == pseudonym(
        "c1", kind="client_id", key=key)
    assert main(["export-transcript", "s2", *args]) == 2
    assert "not a research-scope session" in capsys.readouterr().err
    assert main(["export-transcript", pseudonym("s1", kind="session_id", key=key), *args[:-2]]) == 2
    assert "study key" in capsys.readouterr().err
    assert [r for r, _, _ in _audit(dbp)] == ["researcher"]


def test_withdrawal_deletes_exported_transcripts(dbp, tmp_path):
    out = tmp_path / "all"
    assert main(["export-transcript", "--run", "r1", "--format", "all", "--out", str(out), "--db", str(dbp),
                 "--role", "admin"]) == 0
    exts = ("json", "srt", "vtt", "txt", "tsv", "rttm", "uem", "TextGrid", "eaf")
    mine = [p for p in out.iterdir() if p.name.startswith(report_stem("s1"))]
    assert len(mine) == len(exts) and len(_files(dbp)) == 2 * len(exts)
    con = db.connect(dbp)
    result = withdraw(con, session_id="s1", actor="dpo", run_id="w1", keep_audio=True)
    con.close()
    assert sorted(result.files_removed) == sorted(str(p.resolve()) for p in mine)
    assert not any(p.exists() for p in mine)
    assert sorted(p.name for p in out.iterdir()) == sorted(f"{report_stem('s2')}.{e}" for e in exts)


def test_format_all_of_one_session_into_a_folder_with_the_options(dbp, tmp_path, capsys):
    from pyannote.database.util import load_rttm
    from pympi.Elan import Eaf

    out = tmp_path / "one"
    media = tmp_path / "rec.wav"
    media.write_bytes(b"")
    assert main(["export-transcript", "s1", "--format", "all", "--out", str(out), "--db", str(dbp), "--therapist",
                 "t1", "--max-line-width", "200", "--max-line-count", "1", "--uri", "dyad-1", "--media",
                 str(media)]) == 0
    stem = report_stem("s1")
    assert sorted(p.name for p in out.iterdir()) == sorted(f"{stem}.{e}" for e in (
        "json", "srt", "vtt", "txt", "tsv", "rttm", "uem", "TextGrid", "eaf"))
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in out.iterdir())
    assert (out / f"{stem}.srt").read_text().count(" --> ") == 4  # one cue per turn at 200 x 1
    assert list(load_rttm(out / f"{stem}.rttm")) == ["dyad-1"]
    assert Eaf(str(out / f"{stem}.eaf")).get_linked_files()[0]["MEDIA_URL"] == media.resolve().as_uri()
    assert "Exported 9 file(s) as all" in capsys.readouterr().out
    assert main(["export-transcript", "s1", "--db", str(dbp), "--therapist", "t1"]) == 2  # no --format
    assert "--format is required" in capsys.readouterr().err
    assert main(["export-transcript", "s1", "--format", "rttm", "--uri", "a b", "--db", str(dbp),
                 "--therapist", "t1"]) == 2
    assert main(["export-transcript", "--run", "r1", "--format", "rttm", "--uri", "x", "--out", str(tmp_path / "r"),
                 "--db", str(dbp), "--role", "admin"]) == 2
    assert "--uri names one recording" in capsys.readouterr().err


def test_file_index_maps_sessions_to_hashed_files_for_the_roles_that_may_see_it(dbp, tmp_path, capsys,
                                                                                monkeypatch):
    import csv

    monkeypatch.chdir(tmp_path)
    assert main(["export-transcript", "--run", "r1", "--format", "json", "--db", str(dbp), "--role", "admin"]) == 0
    assert main(["export-transcript", "--index", "--db", str(dbp), "--role", "supervisor"]) == 0
    index = tmp_path / "reports" / "files-all.tsv"
    assert stat.S_IMODE(index.stat().st_mode) == 0o600
    rows = list(csv.DictReader(index.open(newline=""), delimiter="\t"))
    assert sorted((r["session_id"], r["kind"], r["path"]) for r in rows) == [
        (s, "transcript_json", str((tmp_path / "reports" / "transcripts" / f"{report_stem(s)}.json").resolve()))
        for s in ("s1", "s2")]
    assert rows[0]["client_id"] == "c1" and {r["therapist_id"] for r in rows} == {"t1", "t2"}
    capsys.readouterr()
    mine = tmp_path / "mine.tsv"
    assert main(["export-transcript", "--index", "--out", str(mine), "--db", str(dbp), "--therapist", "t1"]) == 0
    assert [r["session_id"] for r in csv.DictReader(mine.open(newline=""), delimiter="\t")] == ["s1"]
    assert main(["export-transcript", "--index", "--db", str(dbp)]) == 2  # a clinician must name themselves
    assert main(["export-transcript", "--index", "--db", str(dbp), "--role", "researcher"]) == 2
    assert "no file index" in capsys.readouterr().err
    # the index names s1: erasing s1 deletes every index that lists it
    con = db.connect(dbp)
    withdraw(con, session_id="s1", actor="dpo", run_id="w1", keep_audio=True)
    con.close()
    assert not index.exists() and not mine.exists()
