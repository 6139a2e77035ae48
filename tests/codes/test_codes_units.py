"""Process codes: context without look-ahead, MITI summaries, transcript readers, the artefact's checksum."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipeline.analysis.transcript_readers import detect_format, read_for_coding
from pipeline.codes.context import CodingUtterance, contexts
from pipeline.codes.summary import CodeCount, against_threshold, miti_summary
from pipeline.errors import ConfigError, ModelChecksumError


def test_context_uses_only_what_came_before() -> None:
    utts = [CodingUtterance("therapist", "What brings you here?"), CodingUtterance("client", "My drinking."),
            CodingUtterance("client", "It is getting worse."), CodingUtterance("therapist", "It worries you.")]
    ctx = contexts(utts)
    assert ctx[0].previous == ctx[0].other_last == ctx[0].own_last == ""
    assert ctx[1].other_last == "What brings you here?" and ctx[1].own_last == ""
    assert ctx[2].previous == "My drinking." and ctx[2].previous_role == "client"
    assert ctx[2].previous2 == "What brings you here?" and ctx[2].other_last == "What brings you here?"
    assert ctx[3].other_last == "It is getting worse." and ctx[3].own_last == "What brings you here?"
    # changing a later utterance never changes an earlier context
    changed = contexts([*utts[:3], CodingUtterance("therapist", "Something else entirely.")])
    assert changed[:3] == ctx[:3]


def test_miti_summary_counts_and_refuses_empty_denominators() -> None:
    codes = [CodeCount("question", "open"), CodeCount("question", "closed"), CodeCount("question", "open"),
             CodeCount("reflection", "complex"), CodeCount("reflection", "simple"), CodeCount("reflection", "complex"),
             CodeCount("change"), CodeCount("change"), CodeCount("sustain"), CodeCount("neutral")]
    s = miti_summary(codes, 600.0)
    assert s["reflection_question_ratio"] == pytest.approx(1.0)
    assert s["complex_reflection_pct"] == pytest.approx(200 / 3)
    assert s["open_question_pct"] == pytest.approx(200 / 3)
    assert s["change_talk_share"] == pytest.approx(2 / 3)
    assert s["question_per_10min"] == pytest.approx(3.0)
    empty = miti_summary([CodeCount("other")], None)
    assert empty["reflection_question_ratio"] is None and empty["change_talk_share"] is None
    assert empty["question_per_10min"] is None
    assert against_threshold("reflection_question_ratio", 2.0) == "good"
    assert against_threshold("complex_reflection_pct", 45.0) == "fair"
    assert against_threshold("open_question_pct", 10.0) == "below fair"
    assert against_threshold("change_talk_share", 0.9) == ""


def test_readers_csv_json_whisperx_and_role_rule(tmp_path: Path) -> None:
    csv_path = tmp_path / "t.csv"
    csv_path.write_text("role,text\nTherapist,How are things?\nclient,Not great.\n", encoding="utf-8")
    (conv,) = read_for_coding(csv_path)
    assert [u.role for u in conv.utterances] == ["therapist", "client"] and conv.role_confidence == 1.0
    wx = tmp_path / "w.json"
    wx.write_text(json.dumps({"segments": [
        {"start": 0.0, "end": 2.0, "text": "What would you like to change about your drinking?",
         "speaker": "SPEAKER_01"},
        {"start": 2.5, "end": 4.0, "text": "I think I drink too much and I want to cut down.", "speaker": "SPEAKER_00"},
        {"start": 4.5, "end": 6.0, "text": "You want to cut down. What would you gain?", "speaker": "SPEAKER_01"},
    ]}), encoding="utf-8")
    assert detect_format(wx) == "whisperx"
    (conv,) = read_for_coding(wx)
    assert [u.role for u in conv.utterances] == ["therapist", "client", "therapist"]
    (conv,) = read_for_coding(wx, therapist_speaker="SPEAKER_00")
    assert [u.role for u in conv.utterances] == ["client", "therapist", "client"]
    with pytest.raises(ConfigError, match="SPEAKER_09"):
        read_for_coding(wx, therapist_speaker="SPEAKER_09")


def test_readers_eaf_and_textgrid_through_pympi(tmp_path: Path) -> None:
    pympi = pytest.importorskip("pympi")
    eaf = pympi.Elan.Eaf()
    for tier in ("therapist", "client"):
        eaf.add_tier(tier)
    eaf.add_annotation("therapist", 0, 2000, "What brings you in today?")
    eaf.add_annotation("client", 2500, 4000, "I want to stop smoking.")
    eaf.to_file(str(tmp_path / "s.eaf"))
    (conv,) = read_for_coding(tmp_path / "s.eaf")
    assert [(u.role, u.start_s) for u in conv.utterances] == [("therapist", 0.0), ("client", 2.5)]
    grid = pympi.Praat.TextGrid(xmax=4.0)
    grid.add_tier("therapist").add_interval(0.0, 2.0, "What brings you in today?")
    grid.add_tier("client").add_interval(2.5, 4.0, "I want to stop smoking.")
    grid.to_file(str(tmp_path / "s.TextGrid"))
    (conv,) = read_for_coding(tmp_path / "s.TextGrid")
    assert [u.role for u in conv.utterances] == ["therapist", "client"]


def test_readers_refuse_bad_files_with_one_reason(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        read_for_coding(tmp_path / "missing.csv")
    bad = tmp_path / "bad.eaf"
    bad.write_text("<not xml", encoding="utf-8")
    with pytest.raises(ConfigError, match="not a readable eaf"):
        read_for_coding(bad)
    odd = tmp_path / "x.docx"
    odd.write_text("x", encoding="utf-8")
    with pytest.raises(ConfigError, match="--format"):
        read_for_coding(odd)
    empty = tmp_path / "e.csv"
    empty.write_text("role,text\ntherapist,   \n", encoding="utf-8")
    with pytest.raises(ConfigError, match="no utterance"):
        read_for_coding(empty)


def test_a_changed_artefact_is_refused(tmp_path: Path) -> None:
    from pipeline.codes.coder import ARTEFACT_DIR, ARTEFACT_NAME, CARD_NAME, load_coder

    if not (ARTEFACT_DIR / ARTEFACT_NAME).is_file():
        pytest.skip("no shipped coder artefact")
    (tmp_path / CARD_NAME).write_bytes((ARTEFACT_DIR / CARD_NAME).read_bytes())
    data = bytearray((ARTEFACT_DIR / ARTEFACT_NAME).read_bytes())
    data[-1] ^= 0xFF
    (tmp_path / ARTEFACT_NAME).write_bytes(bytes(data))
    with pytest.raises(ModelChecksumError):
        load_coder(tmp_path)


def test_readers_keep_only_role_tiers_of_the_pipelines_own_exports(tmp_path: Path) -> None:
    """An exported EAF has turn tiers per role, word tiers under them, and silence/marker tiers beside them."""
    pympi = pytest.importorskip("pympi")
    eaf = pympi.Elan.Eaf()
    eaf.add_linguistic_type("words", constraints="Included_In")
    eaf.add_tier("Therapist turns", part="Therapist")
    eaf.add_tier("Client turns", part="Client")
    eaf.add_tier("Therapist words", ling="words", parent="Therapist turns")
    eaf.add_tier("silences")
    eaf.add_annotation("Therapist turns", 0, 2000, "What brings you in today?")
    eaf.add_annotation("Therapist words", 0, 500, "What")
    eaf.add_annotation("Client turns", 2500, 4000, "I want to stop smoking.")
    eaf.add_annotation("silences", 2000, 2500, "0.5 s")
    eaf.to_file(str(tmp_path / "export.eaf"))
    (conv,) = read_for_coding(tmp_path / "export.eaf")
    assert [(u.role, u.text) for u in conv.utterances] == [("therapist", "What brings you in today?"),
                                                            ("client", "I want to stop smoking.")]
    assert conv.role_method == "given by the transcript"


def test_reading_a_transcript_changes_no_process_wide_csv_limit(tmp_path: Path) -> None:
    """The manifest and self-report readers rely on csv's default cell limit: reading a transcript keeps it."""
    import csv

    before = csv.field_size_limit()
    path = tmp_path / "t.csv"
    path.write_text("role,text\ntherapist,How are things?\nclient,Fine.\n", encoding="utf-8")
    read_for_coding(path)
    assert csv.field_size_limit() == before
    huge = tmp_path / "huge.csv"
    huge.write_text("role,text\ntherapist," + "x" * (before + 1) + "\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="not a readable csv"):
        read_for_coding(huge)
