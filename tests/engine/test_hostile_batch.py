"""Hostile batch inputs, each ending with its reason.

Non-files named like recordings, ids that break the id rules, repeated columns, consent rows that must be
refused; and a batch of the hostile-audio corpus end to end (fake models).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import duckdb
import pytest
import soundfile as sf
from conftest import tone

from evaluation.hostile_corpus import build_hostile_audio
from pipeline.engine import sequence
from pipeline.engine.manifest import ManifestError, load_batch, read_manifest

HEADER = "audio,session_id,client_id,therapist_id,recorded_on,consent_scope,consented_on\n"


def _sidecar(audio: Path, session_id: str, **extra: object) -> None:
    audio.with_name(audio.name + ".consent.json").write_text(json.dumps(
        {"session_id": session_id, "client_id": "c1", "therapist_id": "t1", "scope": "research",
         "consented_on": "2026-01-01", "consented_by": ["client"], **extra}))


def test_folder_scan_reports_a_fifo_and_a_directory_named_like_recordings(tmp_path):
    (tmp_path / "dir.wav").mkdir()
    os.mkfifo(tmp_path / "fifo.wav")
    sf.write(tmp_path / "ok.wav", tone(2.0), 16_000)
    items = {i.source: i for i in load_batch(tmp_path)}
    assert set(items) == {"dir.wav", "fifo.wav", "ok.wav"}
    assert items["ok.wav"].problem is None
    for name, what in (("dir.wav", "directory"), ("fifo.wav", "FIFO")):
        assert items[name].problem_code == "audio_not_a_file" and what in items[name].problem


@pytest.mark.parametrize("bad, shown", [
    ("s\u202e1", "U+202E"),  # right-to-left override
    ("s\x1b[31m1", "U+001B"),  # a terminal escape
    ("s\u200b1", "U+200B"),  # zero-width space
    ("s\n1", "U+000A"),
    ("s" * 129, "129 characters"),
])
def test_manifest_ids_follow_the_one_id_rule_per_row(tmp_path, bad, shown):
    import csv

    with (tmp_path / "m.csv").open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["audio", "session_id", "client_id", "therapist_id"])
        w.writerow(["a.wav", "good", "c1", "t1"])
        for column in ("session_id", "client_id", "therapist_id"):
            row = {"audio": "a.wav", "session_id": f"s-{column}", "client_id": "c1", "therapist_id": "t1"}
            row[column] = bad
            w.writerow(row.values())
    good, *bad_rows = read_manifest(tmp_path / "m.csv")
    assert good.problem is None
    for item, column in zip(bad_rows, ("session", "client", "therapist"), strict=True):
        assert item.problem_code == "invalid_id" and f"{column} id" in item.problem and shown in item.problem
        assert bad not in item.problem  # the raw value is not echoed into reports and terminals


def test_manifest_ids_are_nfc(tmp_path):
    (tmp_path / "m.csv").write_text("audio,session_id,client_id,therapist_id\na.wav,Se\u0301ance,c,t\n",
                                    encoding="utf-8")
    (item,) = read_manifest(tmp_path / "m.csv")
    assert item.meta.session_id == "S\u00e9ance"


def test_folder_sidecar_ids_follow_the_id_rule(tmp_path):
    sf.write(tmp_path / "a.wav", tone(2.0), 16_000)
    _sidecar(tmp_path / "a.wav", "s\u202e1")
    (item,) = load_batch(tmp_path)
    assert item.problem_code == "invalid_id" and "U+202E" in item.problem


def test_repeated_manifest_columns_are_refused(tmp_path):
    (tmp_path / "m.csv").write_text("audio,session_id,client_id,therapist_id,session_id\na.wav,s1,c,t,s2\n")
    with pytest.raises(ManifestError, match="repeats the column"):
        read_manifest(tmp_path / "m.csv")
    (tmp_path / "m.yaml").write_text("- {audio: a.wav, session_id: s1, client_id: c, therapist_id: t, "
                                     "session_id: s2}\n")
    with pytest.raises(ManifestError, match="repeated"):
        read_manifest(tmp_path / "m.yaml")


def test_yaml_lists_are_read_as_lists(tmp_path):
    (tmp_path / "m.yaml").write_text("- audio: a.wav\n  session_id: s1\n  client_id: c\n  therapist_id: t\n"
                                     "  consent_scope: research\n  consented_on: 2026-01-01\n"
                                     "  consented_by: [client, therapist]\n  known_names: [Anna, Ben]\n")
    (item,) = read_manifest(tmp_path / "m.yaml")
    assert item.consent["consented_by"] == ["client", "therapist"]
    assert item.meta.known_names == ("Anna", "Ben")


@pytest.mark.parametrize("extra_header, extra_cells, recorded_on, match", [
    (",consented_by", ",", "", "consented_by is empty"),
    (",consented_by", ",therapist", "", "does not name the client"),
    (",consented_by,withdrawn_on", ",client,no", "", "invalid withdrawn_on"),
    (",consented_by", ",client", "2025-12-31", "after the recording date"),
    ("", "", "", "consented_by is missing"),  # no column at all: refused as well (issue 24)
    (",consented_by", ",client", "", None),
])
def test_manifest_consent_rows_are_refused_with_the_reason(tmp_path, extra_header, extra_cells, recorded_on, match):
    sf.write(tmp_path / "a.wav", tone(2.0), 16_000)
    (tmp_path / "m.csv").write_text(HEADER.rstrip("\n") + extra_header + "\n"
                                    + f"a.wav,s1,c1,t1,{recorded_on},research,2026-01-01{extra_cells}\n")
    (item,) = read_manifest(tmp_path / "m.csv")
    pre = sequence.precheck(item.audio_path, item.meta, item.consent, db_path=tmp_path / "a.duckdb", force=False)
    if match is None:
        assert pre.outcome is None and pre.consent is not None
    else:
        assert (pre.outcome.state, pre.outcome.error_code) == ("refused", "consent_invalid")
        assert match in pre.outcome.message


def test_the_hostile_corpus_in_a_batch_ends_each_file_with_its_reason(prefect_harness, fakes, tmp_path):
    """A folder batch of the hostile corpus and one good recording whose ids hold ``/ % & < >``."""
    from flows.batch_flow import run_batch

    inbox = tmp_path / "inbox"
    cases = build_hostile_audio(inbox)
    for i, case in enumerate(cases):
        if (inbox / case.name).is_file():
            _sidecar(inbox / case.name, f"hostile-{i}")
    sf.write(inbox / "good.wav", tone(22.0), 16_000)
    odd = "a/b%c&d<e>f 'g\""
    _sidecar(inbox / "good.wav", odd)
    dbp = tmp_path / "a.duckdb"
    report = run_batch(str(inbox), db_path=str(dbp), reports_dir=str(tmp_path / "reports"))
    by_name = {Path(o.source_path).name: o for o in report.outcomes}
    for case in cases:
        o = by_name[case.name]
        assert (o.state, o.error_code) == ("failed", case.code), (case.name, o.message)
        assert o.stage == "audio"
    assert by_name["good.wav"].state == "processed", by_name["good.wav"].message
    assert fakes[0].calls == 1  # no model ran for any hostile file
    con = duckdb.connect(str(dbp), read_only=True)
    try:
        assert con.execute("SELECT session_id FROM sessions").fetchall() == [(odd,)]
        recorded = dict(con.execute("SELECT source_path, error_code FROM run_items WHERE run_id = ?",
                                    [report.run_id]).fetchall())
    finally:
        con.close()
    assert {Path(p).name: c for p, c in recorded.items() if c} == {c.name: c.code for c in cases}
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        names = [r.name for r in client.read_flow_runs(limit=200)]
    assert names and not any(ch in n for n in names for ch in "/%&<>")


@pytest.mark.parametrize("cell", [131_073, 1_000_000])
def test_an_overlong_manifest_cell_is_one_clear_error_exit_2(tmp_path, capsys, cell):
    from pipeline.cli.main import main

    manifest = tmp_path / "m.csv"
    manifest.write_text(HEADER + "a.wav,s1,c1,t1,2026-01-02,research,2026-01-01\n"
                        f"{'x' * cell}.wav,s2,c1,t1,2026-01-02,research,2026-01-01\n", encoding="utf-8")
    with pytest.raises(ManifestError, match="line 3: a cell"):
        read_manifest(manifest)
    code = main(["batch", str(manifest), "--db", str(tmp_path / "a.duckdb")])
    out = capsys.readouterr()
    assert code == 2 and "Traceback" not in out.out + out.err and "line 3: a cell" in out.err
    assert "x" * 100 not in out.err
