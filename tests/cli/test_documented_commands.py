"""Every ``alliance`` command printed in README.md and docs/ runs as printed (issue 24, item 1).

The shell blocks' commands are collected from the documents (``tests/cli/documented_commands.py``, which
holds the maintained list of how each is checked). On a test database that holds the printed ids (session
S12 of client C7 and therapist T3, and more sessions with self-report for ``compare``), the minimal form of
each runs through the real command (exit 0) and the full form (every optional part) parses. Inline commands
in the prose must name a real command and real options. The commands that need the models run, with the
real models, in the integration test at the end.
"""

from __future__ import annotations

import datetime as dt
import shutil
from dataclasses import replace

import duckdb
import numpy as np
import pytest

from pipeline.cli.main import build_parser, main
from tests.cli.documented_commands import HOW, MODELS, RUN, Documented, documented, forms, inline_words

RUN_ID = "run-20261102T210000Z-1a2b3c4d"
BLOCKS = [d for d in documented() if not d.inline]


def _analysis():
    from conftest import CLIENT_1, CLIENT_2, THERAPIST_1, THERAPIST_2, words_from

    from pipeline.analysis.session import SessionMeta, analyse
    from pipeline.privacy.consent import parse_consent
    from pipeline.types import Audio, Diarization, SpeakerTurn, Transcript

    words = (words_from(THERAPIST_1, 0.5, 5.0) + words_from(CLIENT_1, 5.6, 11.0)
             + words_from(THERAPIST_2, 11.4, 15.0) + words_from(CLIENT_2, 18.0, 21.0))
    turns = (SpeakerTurn(0.5, 5.0, "SPEAKER_01"), SpeakerTurn(5.6, 11.0, "SPEAKER_00"),
             SpeakerTurn(11.4, 15.0, "SPEAKER_01"), SpeakerTurn(18.0, 21.0, "SPEAKER_00"))
    audio = Audio(np.zeros(16_000 * 22, dtype=np.float32), 16_000, "ab" * 32, "x.wav", "WAV", 16_000, 1)
    consent = parse_consent({"session_id": "S12", "client_id": "C7", "scope": "research",
                             "consented_on": "2026-11-01", "consented_by": ["client"]}, source="test")
    return analyse(audio, Transcript(words, "en", 0.99, "fake", "fake-asr"),
                   Diarization(turns, ("SPEAKER_00", "SPEAKER_01")),
                   meta=SessionMeta("S12", "C7", "T3", dt.date(2026, 11, 2)), consent=consent,
                   diarization_model="fake")


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    """A folder with ``alliance.duckdb`` (S12 and 9 more sessions, SRS for those 9), study keys, ratings.csv."""
    from pipeline.research.self_report.importer import import_file
    from pipeline.research.self_report.instruments import BUILTIN
    from pipeline.storage import db
    from pipeline.storage.encryption import generate_key_file

    folder = tmp_path_factory.mktemp("documented")
    con = db.connect(folder / "alliance.duckdb")
    first = _analysis()
    db.write_session(con, first, run_id=RUN_ID, pipeline_version="0.1.0")
    db.record_item(con, run_id=RUN_ID, source_path="/in/S12.flac", state="processed", session_id="S12")
    rng = np.random.default_rng(24)
    seed = ["session_id,relationship,goals,approach,overall"]
    for c in range(3):
        for s in range(3):
            sid, cid = f"S{2 * c + 3}{s}", f"C{c + 8}"
            a = replace(first, meta=replace(first.meta, session_id=sid, client_id=cid,
                                            recorded_on=dt.date(2026, 11, 3 + 7 * s + c)),
                        consent=replace(first.consent, session_id=sid, client_id=cid),
                        audio_sha256=f"{10 * c + s:02d}" * 32,
                        measures=replace(first.measures, indicators=tuple(
                            replace(i, value=i.value * (1 + 0.3 * rng.standard_normal())) if i.value else i
                            for i in first.measures.indicators)))
            db.write_session(con, a, run_id="r2", pipeline_version="0.1.0")
            seed.append(sid + "," + ",".join([f"{rng.uniform(6, 10):.1f}"] * 4))
    (folder / "seed.csv").write_text("\n".join(seed) + "\n")
    assert not import_file(con, folder / "seed.csv", instrument="srs", instruments=BUILTIN).issues
    con.close()
    (folder / "ratings.csv").write_text("session_id,relationship,goals,approach,overall\nS12,9,8,9,9\n")
    (folder / "manifest.csv").write_text("audio,session_id,client_id,therapist_id\n")
    (folder / "session.csv").write_text("role,text\ntherapist,What brings you in today?\n"
                                        "client,I want to cut down on my drinking.\n"
                                        "therapist,You want to cut down.\n")
    for name in ("study.key", "STUDY.key"):
        generate_key_file(folder / name)
    return folder


@pytest.fixture
def here(study, tmp_path, monkeypatch):
    """A fresh copy of the study folder as the working directory; the documented environment."""
    from pipeline.research.pseudonyms import load_study_key, pseudonym

    work = tmp_path / "w"
    shutil.copytree(study, work)
    monkeypatch.chdir(work)
    for var in ("ALLIANCE_DB", "ALLIANCE_DB_KEY_FILE", "ALLIANCE_DB_KEY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("ALLIANCE_STUDY_KEY_FILE", str(work / "study.key"))  # README: Privacy and security
    return {"C7_PSEUDONYM": pseudonym("C7", kind="client_id", key=load_study_key(work / "study.key"))}


def test_every_printed_command_is_in_the_maintained_list():
    printed = {d.text for d in BLOCKS}
    missing = sorted(printed - set(HOW))
    assert not missing, f"documented commands without an entry in tests/cli/documented_commands.py: {missing}"
    stale = sorted(set(HOW) - printed)
    assert not stale, f"entries no document prints any more: {stale}"


def test_the_collector_finds_the_quick_start_and_the_docs():
    texts = [d.text for d in BLOCKS]
    assert "alliance summary S12 --therapist T3 [--db alliance.duckdb]" in texts  # README, .venv/bin/ removed
    assert any(d.document == "docs/exports.md" for d in BLOCKS)
    assert any(d.document == "docs/research_dataset.md" for d in BLOCKS)
    # a continuation line (ending in a backslash) belongs to its command
    assert any(t.startswith("alliance batch FOLDER_OR_MANIFEST") and "--dask-address" in t for t in texts)


def _subcommands(parser, words):
    """The parser of ``alliance WORDS...`` (None if a word is not a command)."""
    import argparse

    for word in words:
        actions = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        if not actions or word not in actions[0].choices:
            return None
        parser = actions[0].choices[word]
    return parser


@pytest.mark.parametrize("doc", [d for d in documented() if d.inline], ids=lambda d: f"{d.document}:{d.line}")
def test_inline_commands_name_real_commands_and_options(doc: Documented):
    words, options = inline_words(doc.text)
    if not words:
        pytest.skip("prose, not a command")
    parser = build_parser()
    sub = _subcommands(parser, words[:2]) or _subcommands(parser, words[:1])
    assert sub is not None, f"{doc.document}:{doc.line}: `{doc.text}` is not an alliance command"
    known = {o for a in sub._actions for o in a.option_strings}
    assert set(options) <= known, f"{doc.document}:{doc.line}: unknown options {set(options) - known}"


@pytest.mark.parametrize("doc", BLOCKS, ids=lambda d: f"{d.document}:{d.line}")
def test_the_full_form_of_every_printed_command_parses(doc: Documented, capsys):
    _, full = forms(doc.text, {"C7_PSEUDONYM": "C-0"})
    try:
        build_parser().parse_args(full)
    except SystemExit as e:
        pytest.fail(f"{doc.document}:{doc.line}: {full} does not parse: {capsys.readouterr().err} ({e})")


@pytest.mark.parametrize("doc", [d for d in BLOCKS if HOW.get(d.text) == RUN], ids=lambda d: f"{d.document}:{d.line}")
def test_printed_commands_run_as_printed(doc: Documented, here, capsys):
    minimal, _ = forms(doc.text, here)
    code = main(minimal)
    out, err = capsys.readouterr()
    assert code == 0, f"{doc.document}:{doc.line}: alliance {' '.join(minimal)} -> exit {code}\n{out}\n{err}"
    assert "Traceback" not in err


def _sql_blocks():
    from tests.cli.documented_commands import ROOT

    text = (ROOT / "README.md").read_text(encoding="utf-8")
    import re

    return re.findall(r"```sql\n(.*?)```", text, flags=re.S)


@pytest.mark.parametrize("sql", _sql_blocks(), ids=lambda s: s.split("FROM")[1].split()[0])
def test_readme_sql_examples_run_in_duckdb_and_through_alliance_query(sql, here, capsys):
    assert main(["compare", "--instrument", "srs"]) == 0  # so comparison_results has rows
    capsys.readouterr()
    con = duckdb.connect("alliance.duckdb", read_only=True)
    try:
        rows = con.execute(sql).fetchall()
    finally:
        con.close()
    assert rows
    assert main(["query", sql]) == 0, capsys.readouterr().err
    assert "Empty DataFrame" not in capsys.readouterr().out


@pytest.mark.integration
def test_printed_commands_that_need_the_models_run_as_printed(study, tmp_path, monkeypatch, capsys):
    """The quick start's ``process`` (on the demo recording, named as printed) and ``batch``, then ``models``."""
    import json

    from tests.cli.documented_commands import ROOT

    work = tmp_path / "w"
    shutil.copytree(study, work, ignore=shutil.ignore_patterns("alliance.duckdb*"))
    monkeypatch.chdir(work)
    monkeypatch.delenv("ALLIANCE_DB", raising=False)
    shutil.copy(ROOT / "sample_audio" / "demo_session.flac", work / "RECORDING.flac")
    consent = json.loads((ROOT / "sample_audio" / "demo_session.flac.consent.json").read_text())
    consent.update(session_id="S12", client_id="C7", therapist_id="T3")
    (work / "RECORDING.flac.consent.json").write_text(json.dumps(consent))
    (work / "manifest.csv").write_text("audio,session_id,client_id,therapist_id\nRECORDING.flac,S12,C7,T3\n")
    for doc in [d for d in BLOCKS if HOW.get(d.text) == MODELS]:
        minimal, _ = forms(doc.text, {})
        code = main(minimal)
        out, err = capsys.readouterr()
        assert code == 0, f"{doc.document}:{doc.line}: alliance {' '.join(minimal)} -> exit {code}\n{out}\n{err}"
    assert main(["summary", "S12", "--therapist", "T3"]) == 0
