"""Transcript exports, each read back with its format's reference reader, times within 1 ms of the database."""

from __future__ import annotations

import datetime as dt
import json
import stat
from dataclasses import replace

import numpy as np
import pytest
from conftest import CLIENT_1, CLIENT_2, THERAPIST_1, THERAPIST_2, words_from

from pipeline.analysis.session import SessionMeta, analyse
from pipeline.errors import AccessDeniedError, ConfigError
from pipeline.privacy.consent import parse_consent
from pipeline.report.data import MarkerRow
from pipeline.report.transcript_export import (
    FORMATS,
    JSON_SCHEMA,
    TranscriptDoc,
    TurnItem,
    WordItem,
    default_name,
    load_transcript,
    resolve_research_session,
    to_vtt,
    write_transcript,
)
from pipeline.research.pseudonyms import pseudonym
from pipeline.storage import db
from pipeline.types import Audio, Diarization, SpeakerTurn, Transcript

TOL = 1e-3 + 1e-9  # 1 ms
KEY = b"k" * 40
#: A name said in the session: redacted from the de-identified text, so never in a research export.
NAME = "Annabel"


@pytest.fixture
def con(tmp_path, analysis):
    """The conftest ``analysis`` (session s1) stored in a fresh database."""
    c = db.connect(tmp_path / "t.duckdb")
    db.write_session(c, analysis, run_id="r1", pipeline_version="0.1.0")
    yield c
    c.close()


@pytest.fixture
def named_con(tmp_path):
    """The conftest dialogue with a known name in the client's first turn (research scope)."""
    words = (words_from(THERAPIST_1, 0.5, 5.0) + words_from(f"{CLIENT_1} {NAME} knows.", 5.6, 11.0)
             + words_from(THERAPIST_2, 11.4, 15.0) + words_from(CLIENT_2, 18.0, 21.0))
    turns = (SpeakerTurn(0.5, 5.0, "SPEAKER_01"), SpeakerTurn(5.6, 11.0, "SPEAKER_00"),
             SpeakerTurn(11.4, 15.0, "SPEAKER_01"), SpeakerTurn(18.0, 21.0, "SPEAKER_00"))
    audio = Audio(np.zeros(22, dtype=np.float32), 1, "ab" * 32, "x.wav", "WAV", 16_000, 1)
    consent = parse_consent({"session_id": "s1", "client_id": "c1", "scope": "research",
                             "consented_on": "2026-01-01", "consented_by": ["client"]}, source="test")
    a = analyse(audio, Transcript(words, "en", 0.99, "fake", "fake-asr"),
                Diarization(turns, ("SPEAKER_00", "SPEAKER_01")),
                meta=SessionMeta("s1", "c1", "t1", dt.date(2026, 1, 2), known_names=(NAME,)), consent=consent,
                diarization_model="fake")
    c = db.connect(tmp_path / "n.duckdb")
    db.write_session(c, a, run_id="r1", pipeline_version="0.1.0")
    yield c
    c.close()


def _rows(con, sql):
    return con.execute(sql).fetchall()


def _words(con):
    """(start, end, text, role) of the stored words."""
    return _rows(con, "SELECT start_s, end_s, text, speaker_role FROM words ORDER BY word_index")


def _turns(con):
    return _rows(con, "SELECT start_s, end_s, text, speaker_role FROM turns ORDER BY turn_index")


def _close(a, b):
    return abs(float(a) - float(b)) <= TOL


def _write(con, tmp_path, fmt, **kw):
    doc = load_transcript(con, "s1", **kw)
    return doc, write_transcript(doc, tmp_path / "out" / default_name(doc, fmt), fmt)


# --------------------------------------------------------------------------------------------- each format


def test_json_validates_and_round_trips_words_and_turns(con, tmp_path):
    import jsonschema

    _, path = _write(con, tmp_path, "json")
    data = json.loads(path.read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(JSON_SCHEMA)
    jsonschema.Draft202012Validator(JSON_SCHEMA, format_checker=jsonschema.FormatChecker()).validate(data)
    assert data["language"] == "en" and data["session"]["session_id"] == "s1" and data["format"]["view"] == "clinical"
    stored = _words(con)
    assert len(data["word_segments"]) == len(stored)
    for w, (s, e, text, role) in zip(data["word_segments"], stored, strict=True):
        assert w["word"] == text and _close(w["start"], s) and _close(w["end"], e)
        assert w["speaker"] == {"therapist": "Therapist", "client": "Client"}[role] and w["score"] == pytest.approx(0.9)
    for seg, (s, e, text, role) in zip(data["segments"], _turns(con), strict=True):
        assert seg["text"] == text and seg["speaker_role"] == role and _close(seg["start"], s) and _close(seg["end"], e)
        assert " ".join(w["word"] for w in seg["words"]) == text  # each segment holds exactly its turn's words


def _by_turn(cues, turns, text_of):
    """Cues grouped by the turn they spell out, in order (a long turn is several cues)."""
    groups, at = [], 0
    for _s, _e, text, _r in turns:
        group, said = [], []
        while " ".join(said) != text:
            assert at < len(cues), f"cues ran out before {text!r}"
            group.append(cues[at])
            said.append(text_of(cues[at]))
            at += 1
        groups.append(group)
    assert at == len(cues)
    return groups


def _fits(lines, width=42, count=2):
    return len(lines) <= count and all(len(line) <= width or " " not in line for line in lines)


def test_srt_reads_back_wrapped_42_by_2_with_the_role_as_prefix(con, tmp_path):
    import srt

    _, path = _write(con, tmp_path, "srt")
    subs = list(srt.parse(path.read_text(encoding="utf-8")))
    turns = _turns(con)
    assert len(subs) > len(turns)  # the conftest turns are longer than 84 characters: wrapped, not one line
    groups = _by_turn(subs, turns, lambda c: " ".join(c.content.split("\n")).split(": ", 1)[1])
    for group, (s, e, _text, role) in zip(groups, turns, strict=True):
        assert _close(group[0].start.total_seconds(), s) and _close(group[-1].end.total_seconds(), e)
        for cue in group:
            assert cue.content.startswith(f"{role.capitalize()}: ") and _fits(cue.content.split("\n"))
    ends = [(c.start.total_seconds(), c.end.total_seconds()) for c in subs]
    assert all(a <= b for a, b in ends) and all(b <= c for (_, b), (c, _) in zip(ends, ends[1:], strict=False))


def _seconds(ts) -> float:
    return ts.hours * 3600 + ts.minutes * 60 + ts.seconds + ts.milliseconds / 1000


def test_vtt_reads_back_wrapped_with_voice_spans(con, tmp_path):
    import webvtt

    _, path = _write(con, tmp_path, "vtt")
    captions = list(webvtt.read(str(path)))
    turns = _turns(con)
    groups = _by_turn(captions, turns, lambda c: " ".join(c.text.split("\n")))
    for group, (s, e, _text, role) in zip(groups, turns, strict=True):
        assert all(c.voice == role.capitalize() and _fits(c.text.split("\n")) for c in group)
        assert _close(_seconds(group[0].start_time), s) and _close(_seconds(group[-1].end_time), e)
    assert captions[0].identifier == "turn-1-1"


def test_cue_width_and_count_are_options_and_word_times_split_a_turn(con, tmp_path):
    import srt

    from pipeline.report.subtitles import CueOptions
    from pipeline.report.transcript_export import ExportOptions

    doc = load_transcript(con, "s1")
    wide = write_transcript(doc, tmp_path / "wide.srt", "srt", ExportOptions(CueOptions(200, 1)))
    assert len(list(srt.parse(wide.read_text()))) == len(doc.turns)  # every turn fits one 200-character line
    narrow = list(srt.parse(write_transcript(doc, tmp_path / "n.srt", "srt",
                                             ExportOptions(CueOptions(20, 1))).read_text()))
    assert all(_fits([c.content], 20, 1) for c in narrow)
    # the first turn's second cue starts at its first word's own time
    k = len(narrow[0].content.split(": ", 1)[1].split())
    assert _close(narrow[1].start.total_seconds(), doc.turns[0].words[k].start_s)
    assert _close(narrow[0].end.total_seconds(), doc.turns[0].words[k - 1].end_s)
    with pytest.raises(ConfigError, match="width of at least 10"):
        CueOptions(5, 2)


def test_txt_and_tsv_one_line_per_turn(con, tmp_path):
    import csv

    _, txt = _write(con, tmp_path, "txt")
    turns = _turns(con)
    assert txt.read_text(encoding="utf-8").splitlines() == [f"{r.capitalize()}: {t}" for _, _, t, r in turns]
    _, tsv = _write(con, tmp_path, "tsv")
    rows = list(csv.DictReader(tsv.open(encoding="utf-8", newline=""), delimiter="\t"))
    assert [r["text"] for r in rows] == [t for _, _, t, _ in turns]
    for row, (s, e, _t, role) in zip(rows, turns, strict=True):
        assert row["speaker"] == role.capitalize() and _close(int(row["start"]) / 1000, s)
        assert _close(int(row["end"]) / 1000, e)


def test_tsv_neutralises_formula_text():
    from pipeline.report.transcript_export import to_tsv

    doc = TranscriptDoc("clinical", "x", {"session_id": "s", "duration_s": 2.0}, (
        TurnItem(0, 0.0, 1.0, "Client", "client", "=HYPERLINK(\"x\")\tand", ()),), (), ())
    assert to_tsv(doc).splitlines()[1] == "0\t1000\tClient\t'=HYPERLINK(\"x\") and"


def test_vtt_escapes_markup_in_text():
    import io

    import webvtt

    doc = TranscriptDoc("clinical", "x", {"session_id": "s", "duration_s": 2.0}, (
        TurnItem(0, 0.0, 1.0, "Client", "client", "a <b> & c --> d", ()),), (), ())
    (cap,) = webvtt.from_buffer(io.StringIO(to_vtt(doc)))
    assert cap.voice == "Client" and "<b>" not in cap.raw_text and "&lt;b&gt; &amp; c --&gt; d" in cap.raw_text


def test_rttm_reads_back_with_roles_as_speakers_and_a_uem(con, tmp_path):
    from pyannote.database.util import load_rttm, load_uem

    from pipeline.diarization.rttm import read_rttm

    doc, path = _write(con, tmp_path, "rttm")
    stored = sorted((s, e, role.capitalize()) for s, e, role in _rows(
        con, "SELECT start_s, end_s, speaker_role FROM speaker_turns"))
    ours = read_rttm(path)
    assert [(t.speaker) for t in ours.turns] == [r for _, _, r in stored]
    assert all(_close(t.start_s, s) and _close(t.end_s, e) for t, (s, e, _) in zip(ours.turns, stored, strict=True))
    (uri, annotation), = load_rttm(path).items()
    assert uri == doc.stem and uri.startswith("session-")  # no session id in the file
    tracks = sorted((seg.start, seg.end, label) for seg, _, label in annotation.itertracks(yield_label=True))
    assert all(_close(a, s) and _close(b, e) and la == r for (a, b, la), (s, e, r) in zip(tracks, stored, strict=True))
    ((uem_uri, timeline),) = load_uem(path.with_suffix(".uem")).items()
    assert uem_uri == uri and len(timeline) == 1 and timeline[0].start == 0
    assert _close(timeline[0].end, doc.duration_s) and stat.S_IMODE(path.with_suffix(".uem").stat().st_mode) == 0o600


def test_rttm_file_id_is_the_output_stem_or_the_uri(con, tmp_path):
    from pyannote.database.util import load_rttm, load_uem

    from pipeline.report.transcript_export import ExportOptions

    doc = load_transcript(con, "s1")
    path = write_transcript(doc, tmp_path / "dyad07.rttm", "rttm")
    assert list(load_rttm(path)) == ["dyad07"] and list(load_uem(tmp_path / "dyad07.uem")) == ["dyad07"]
    path = write_transcript(doc, tmp_path / "x.rttm", "rttm", ExportOptions(uri="rec-3"))
    assert list(load_rttm(path)) == ["rec-3"] and list(load_uem(tmp_path / "x.uem")) == ["rec-3"]
    with pytest.raises(ConfigError, match="without spaces"):
        ExportOptions(uri="two words")


def _intervals(tier_data):
    """Non-empty (start_s, end_s, text) of a TextGrid tier's intervals."""
    return [(s, e, t) for s, e, t in tier_data if t]


def test_textgrid_reads_back_with_pympi(con, tmp_path):
    from pympi.Praat import TextGrid

    _, path = _write(con, tmp_path, "textgrid")
    grid = TextGrid(str(path), codec="utf-8")
    names = [t.name for t in grid.get_tiers()]
    assert names[:5] == ["Therapist turns", "Therapist words", "Client turns", "Client words", "silences"]
    assert any(n.startswith("marker ") for n in names)
    for role in ("therapist", "client"):
        got = _intervals(grid.get_tier(f"{role.capitalize()} words").get_intervals(sort=True))
        want = [(s, e, t) for s, e, t, r in _words(con) if r == role]
        assert [t for _, _, t in got] == [t for _, _, t in want]
        assert all(_close(a, s) and _close(b, e) for (a, b, _), (s, e, _) in zip(got, want, strict=True))
        turns = _intervals(grid.get_tier(f"{role.capitalize()} turns").get_intervals(sort=True))
        assert [t for _, _, t in turns] == [t for _, _, t, r in _turns(con) if r == role]
    silences = _intervals(grid.get_tier("silences").get_intervals(sort=True))
    stored = _rows(con, "SELECT start_s, end_s, value FROM markers WHERE kind = 'long_silence' ORDER BY start_s")
    assert len(silences) == len(stored) >= 1
    assert all(_close(a, s) and _close(b, e) for (a, b, _), (s, e, _) in zip(silences, stored, strict=True))
    assert silences[0][2] == "Client 3"  # owner and seconds
    we = _intervals(grid.get_tier("marker we_language").get_intervals())
    assert len(we) == _rows(con, "SELECT count(*) FROM markers WHERE kind = 'we_language'")[0][0]


def test_eaf_reads_back_with_pympi(con, tmp_path):
    from pympi.Elan import Eaf

    _, path = _write(con, tmp_path, "eaf")
    eaf = Eaf(str(path))
    assert "default" not in eaf.get_tier_names() and "Client words" in eaf.get_tier_names()
    assert dict(eaf.get_properties())["session_id"] == "s1"
    assert eaf.get_linked_files() == []  # no media unless asked
    for role in ("therapist", "client"):
        got = sorted(eaf.get_annotation_data_for_tier(f"{role.capitalize()} words"))
        want = [(s, e, t) for s, e, t, r in _words(con) if r == role]
        assert [t for _, _, t in got] == [t for _, _, t in want]
        assert all(_close(a / 1000, s) and _close(b / 1000, e) for (a, b, _), (s, e, _) in zip(got, want, strict=True))
    silences = eaf.get_annotation_data_for_tier("silences")
    stored = _rows(con, "SELECT start_s, end_s FROM markers WHERE kind = 'long_silence'")
    assert len(silences) == len(stored) >= 1
    assert all(_close(a / 1000, s) and _close(b / 1000, e) for (a, b, _), (s, e) in zip(silences, stored, strict=True))
    # ELAN numbers new annotations after this: no clash with the ones written
    ids = [int(a[1:]) for a in eaf.annotations]
    assert int(dict(eaf.get_properties())["lastUsedAnnotation"]) >= max(ids)


def test_eaf_has_participants_and_words_inside_their_turns(con, tmp_path):
    from pympi.Elan import Eaf

    _, path = _write(con, tmp_path, "eaf")
    eaf = Eaf(str(path))
    for speaker in ("Therapist", "Client"):
        turns_tier = eaf.get_parameters_for_tier(f"{speaker} turns")
        words_tier = eaf.get_parameters_for_tier(f"{speaker} words")
        assert turns_tier["PARTICIPANT"] == words_tier["PARTICIPANT"] == speaker
        assert words_tier["PARENT_REF"] == f"{speaker} turns" and "PARENT_REF" not in turns_tier
        ling = eaf.get_parameters_for_linguistic_type(words_tier["LINGUISTIC_TYPE_REF"])
        assert ling["CONSTRAINTS"] == "Included_In" and ling["TIME_ALIGNABLE"] == "true"
        assert eaf.get_child_tiers_for(f"{speaker} turns") == [f"{speaker} words"]
        turns = eaf.get_annotation_data_for_tier(f"{speaker} turns")
        for ws, we, word in eaf.get_annotation_data_for_tier(f"{speaker} words"):
            (parent,) = [t for t in turns if t[0] <= ws and we <= t[1]]  # inside exactly one turn
            assert word in parent[2].split()
    assert eaf.get_parameters_for_tier("silences").get("PARENT_REF") is None


def test_eaf_links_the_media_when_asked(con, tmp_path):
    from pympi.Elan import Eaf

    from pipeline.report.transcript_export import ExportOptions

    media = tmp_path / "rec" / "session.flac"
    media.parent.mkdir()
    media.write_bytes(b"")
    path = write_transcript(load_transcript(con, "s1"), tmp_path / "coding" / "x.eaf", "eaf",
                            ExportOptions(media=media))
    (linked,) = Eaf(str(path)).get_linked_files()
    assert linked["MEDIA_URL"] == media.resolve().as_uri() and linked["MIME_TYPE"] == "audio/flac"
    assert linked["RELATIVE_MEDIA_URL"] == "./../rec/session.flac"


def test_overlaps_and_zero_length_items_keep_textgrid_and_eaf_valid(tmp_path):
    from pympi.Elan import Eaf
    from pympi.Praat import TextGrid

    words = (WordItem(1.0, 2.0, "one", 0.9, "Client", "client"), WordItem(1.5, 2.5, "two", 0.9, "Client", "client"),
             WordItem(3.0, 3.0, "three", 0.9, "Client", "client"))
    doc = TranscriptDoc("clinical", "x", {"session_id": "s", "duration_s": 4.0},
                        (TurnItem(0, 1.0, 3.0, "Client", "client", 'one "two" three', words),),
                        (SpeakerTurn(1.0, 3.0, "Client"),),
                        (MarkerRow(2.0, 2.0, "we_language", "client", 1.0, None),))
    grid = TextGrid(str(write_transcript(doc, tmp_path / "x.TextGrid", "textgrid")), codec="utf-8")
    assert _intervals(grid.get_tier("Client words").get_intervals(sort=True)) == [(1.0, 2.0, "one"),
                                                                                  (3.0, 3.001, "three")]
    assert _intervals(grid.get_tier("Client words 2").get_intervals()) == [(1.5, 2.5, "two")]
    assert _intervals(grid.get_tier("Client turns").get_intervals()) == [(1.0, 3.0, 'one "two" three')]
    assert _intervals(grid.get_tier("marker we_language").get_intervals()) == [(2.0, 2.001, "Client 1")]
    eaf = Eaf(str(write_transcript(doc, tmp_path / "x.eaf", "eaf")))
    assert eaf.get_annotation_data_for_tier("Client words 2") == [(1500, 2500, "two")]
    # EAF words sit inside their turn (Included_In): the zero-length word at the turn's end gets its last ms
    assert sorted(eaf.get_annotation_data_for_tier("Client words")) == [(1000, 2000, "one"), (2999, 3000, "three")]


# --------------------------------------------------------------------------------------------- files


def test_files_are_owner_only_and_nothing_is_left_behind(con, tmp_path):
    for fmt in FORMATS:
        _, path = _write(con, tmp_path, fmt)
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, fmt
        assert path.name.startswith("session-") and "s1" not in path.name
    assert sorted(p.suffix for p in (tmp_path / "out").iterdir()) == sorted([*(f".{e}" for e in FORMATS.values()),
                                                                             ".uem"])
    with pytest.raises(ConfigError, match="unknown transcript format"):
        write_transcript(load_transcript(con, "s1"), tmp_path / "x.doc", "doc")


# --------------------------------------------------------------------------------------------- research view


def test_research_view_is_pseudonymous_de_identified_and_has_no_words(named_con, tmp_path):
    import jsonschema

    raw = " ".join(t for _, _, t, _ in _words(named_con))
    assert NAME in raw  # the name is in the stored words ...
    contents = {}
    for fmt in FORMATS:
        doc, path = _write(named_con, tmp_path, fmt, study_key=KEY)
        assert doc.view == "research" and path.name == f"{pseudonym('s1', kind='session_id', key=KEY)}.{FORMATS[fmt]}"
        contents[fmt] = path.read_text(encoding="utf-8")
    for fmt, text in contents.items():
        assert NAME not in text, fmt  # ... and in no research export
    data = json.loads(contents["json"])
    jsonschema.Draft202012Validator(JSON_SCHEMA).validate(data)
    assert data["word_segments"] == [] and all(s["words"] == [] for s in data["segments"])
    assert data["session"]["client_id"] == pseudonym("c1", kind="client_id", key=KEY)
    assert data["session"]["therapist_id"].startswith("T-") and data["format"]["view"] == "research"
    assert "[PERSON]" in contents["vtt"] and "[PERSON]" in contents["srt"]
    deid = [t for (t,) in _rows(named_con, "SELECT text FROM turns_deidentified ORDER BY turn_index")]
    assert [s["text"] for s in data["segments"]] == deid
    assert "words" not in contents["textgrid"] and "words" not in contents["eaf"]  # no word tiers at all
    assert "Client turns" in contents["textgrid"] and "silences" in contents["eaf"]


def test_research_view_only_for_research_scope_sessions(tmp_path, analysis):
    c = db.connect(tmp_path / "c.duckdb")
    clinical = replace(analysis, consent=replace(analysis.consent, scope="clinical"))
    db.write_session(c, clinical, run_id="r1", pipeline_version="0.1.0")
    with pytest.raises(AccessDeniedError, match="not research-scope"):
        load_transcript(c, "s1", study_key=KEY)
    with pytest.raises(AccessDeniedError):
        resolve_research_session(c, "s1", key=KEY)
    c.close()


def test_a_researcher_may_name_a_session_by_its_pseudonym(con):
    assert resolve_research_session(con, pseudonym("s1", kind="session_id", key=KEY), key=KEY) == "s1"
    assert resolve_research_session(con, "s1", key=KEY) == "s1"
    with pytest.raises(AccessDeniedError):
        resolve_research_session(con, "S-0000000000000000", key=KEY)
