"""Tests of the flite session generator (``evaluation.synthetic``).

Script, truth and RTTM logic run everywhere; rendering tests skip when ``flite`` is
not on PATH (``apt-get install flite``).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from evaluation.synthetic import (
    Script,
    ScriptError,
    ScriptLine,
    SessionTruth,
    SynthesizerError,
    TruthUtterance,
    load_script,
    main,
    read_annomi_rows,
    read_truth,
    render_session,
    script_from_annomi,
    silences_and_overlaps,
    truth_paths,
    write_rttm,
    write_truth,
)
from pipeline.errors import ConfigError

needs_flite = pytest.mark.skipif(shutil.which("flite") is None, reason="flite not on PATH")
ANNOMI_CSV = Path(__file__).resolve().parents[3] / "shared" / "data" / "annomi" / "AnnoMI-simple.csv"
SR = 16_000


def _script_doc(**overrides: object) -> dict:
    doc = {
        "session_id": "t-1",
        "voices": {"therapist": "slt", "client": "awb"},
        "lines": [
            {"role": "therapist", "text": "How was your week?", "gap_before_s": 0.2},
            {"role": "client", "text": "Fine, thanks.", "gap_before_s": 0.6, "tags": ["short"]},
        ],
    }
    doc.update(overrides)
    return doc


def _write(tmp_path: Path, doc: object, name: str = "s.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(doc) if not isinstance(doc, str) else doc)
    return path


def _utt(index: int, role: str, start: int, end: int) -> TruthUtterance:
    return TruthUtterance(index, role, "slt", start / SR, end / SR, start, end, "x")  # type: ignore[arg-type]


# ----------------------------------------------------------------- script loading


def test_load_script_reads_lines_voices_and_tags(tmp_path: Path) -> None:
    script = load_script(_write(tmp_path, _script_doc(tail_s=1.5)))
    assert script.session_id == "t-1"
    assert script.voices == {"therapist": "slt", "client": "awb"}
    assert script.tail_s == 1.5
    assert script.lines[1] == ScriptLine("client", "Fine, thanks.", 0.6, 0.0, ("short",))


def _bad_line(**fields: object) -> dict:
    line = {"role": "client", "text": "Hello.", "gap_before_s": 0.5}
    line.update(fields)
    return _script_doc(lines=[{"role": "therapist", "text": "Hi.", "gap_before_s": 0.1}, line])


@pytest.mark.parametrize(
    ("doc", "match"),
    [
        ("{not json", "not valid JSON"),
        ([1, 2], "top level"),
        (_script_doc(speakers=2), "unknown keys"),
        (_script_doc(lines="none"), "'lines' must be a list"),
        (_script_doc(lines=[]), "no lines"),
        (_script_doc(session_id=""), "session_id"),
        (_script_doc(voices={"therapist": "slt"}), r"voices\['client'\]"),
        (_script_doc(voices={"therapist": "slt", "client": "awb", "judge": "rms"}), "unknown roles"),
        (_script_doc(voices={"therapist": "slt", "client": "A B"}), "flite voice name"),
        (_script_doc(tail_s=-1), "tail_s"),
        (_bad_line(role="patient"), "line 1: role='patient'"),
        (_bad_line(text="..."), "line 1: text='...'"),
        (_bad_line(gap_before_s=-0.1), "line 1: gap_before_s=-0.1"),
        (_bad_line(gap_before_s="1"), "line 1: gap_before_s='1' is not a number"),
        (_bad_line(gap_before_s=0.3, overlap_s=0.2), "not both"),
        (_bad_line(pause=1), r"line 1: unknown keys \['pause'\]"),
        (_script_doc(lines=[{"role": "client", "text": "Hi."}]), r"line 0: missing keys \['gap_before_s'\]"),
        (_script_doc(lines=[{"role": "client", "text": "Hi.", "gap_before_s": 0, "overlap_s": 1}]), "nothing precedes"),
    ],
)
def test_load_script_rejects_bad_input(tmp_path: Path, doc: object, match: str) -> None:
    with pytest.raises(ScriptError, match=match):
        load_script(_write(tmp_path, doc))


def test_load_script_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_script(tmp_path / "nope.json")


# ----------------------------------------------------------------- truth logic


def test_silences_are_classified_as_switch_or_pause() -> None:
    utts = [
        _utt(0, "therapist", 0, 16_000),
        _utt(1, "client", 24_000, 40_000),  # 0.5 s switch
        _utt(2, "client", 56_000, 60_000),  # 1.0 s pause
        _utt(3, "therapist", 60_000, 70_000),  # zero gap: no silence
        _utt(4, "client", 134_000, 150_000),  # 4.0 s switch
    ]
    silences, overlaps = silences_and_overlaps(utts, SR)
    assert [(s.kind, s.before_index, s.after_index, s.duration_s) for s in silences] == [
        ("switch", 0, 1, 0.5),
        ("pause", 1, 2, 1.0),
        ("switch", 3, 4, 4.0),
    ]
    assert overlaps == ()


def test_gap_after_an_embedded_overlap_counts_from_the_latest_end() -> None:
    # client backchannel inside the therapist's turn, then the client answers
    utts = [
        _utt(0, "therapist", 0, 48_000),
        _utt(1, "client", 16_000, 24_000),
        _utt(2, "client", 56_000, 64_000),
    ]
    silences, overlaps = silences_and_overlaps(utts, SR)
    assert [(o.first_index, o.second_index, o.start_s, o.end_s) for o in overlaps] == [(0, 1, 1.0, 1.5)]
    assert [(s.kind, s.before_index, s.start_s, s.end_s) for s in silences] == [("switch", 0, 3.0, 3.5)]


def _truth() -> SessionTruth:
    utts = (_utt(0, "therapist", 1_600, 17_600), _utt(1, "client", 25_600, 41_600))
    silences, overlaps = silences_and_overlaps(utts, SR)
    return SessionTruth("t-1", "t.flac", SR, 48_000, 3, -55.0, "flite-2.2", utts, silences, overlaps)


def test_truth_json_round_trips(tmp_path: Path) -> None:
    truth = _truth()
    write_truth(truth, tmp_path / "t.truth.json")
    assert read_truth(tmp_path / "t.truth.json") == truth
    doc = json.loads((tmp_path / "t.truth.json").read_text())
    assert doc["duration_s"] == 3.0
    assert doc["silences"][0]["duration_s"] == 0.5


def test_read_truth_rejects_other_versions(tmp_path: Path) -> None:
    (tmp_path / "t.json").write_text('{"format_version": 99}')
    with pytest.raises(ScriptError, match="format_version=99"):
        read_truth(tmp_path / "t.json")


def test_rttm_has_one_row_per_utterance_with_role_as_speaker(tmp_path: Path) -> None:
    write_rttm(_truth(), tmp_path / "t.rttm")
    assert (tmp_path / "t.rttm").read_text().splitlines() == [
        "SPEAKER t-1 1 0.100 1.000 <NA> <NA> therapist <NA> <NA>",
        "SPEAKER t-1 1 1.600 1.000 <NA> <NA> client <NA> <NA>",
    ]


def test_truth_as_diarization_uses_roles() -> None:
    diarization = _truth().as_diarization()
    assert diarization.speakers == ("client", "therapist")
    assert [t.speaker for t in diarization.turns] == ["therapist", "client"]


# ----------------------------------------------------------------- AnnoMI


def test_script_from_annomi_cleans_text_and_plants_long_silences() -> None:
    rows = [
        {"transcript_id": "7", "interlocutor": "therapist", "utterance_text": "How are you?"},
        {"transcript_id": "7", "interlocutor": "client", "utterance_text": "Good-- well, okay-"},
        {"transcript_id": "7", "interlocutor": "client", "utterance_text": "--"},
        {"transcript_id": "7", "interlocutor": "therapist", "utterance_text": "-and work?"},
        {"transcript_id": "7", "interlocutor": "client", "utterance_text": "Busy. [laughs]"},
    ]
    voices = {"therapist": "slt", "client": "rms"}
    script = script_from_annomi(rows, voices=voices, gap_s=0.6, long_silence_every=2, seed=1)
    assert script.session_id == "annomi-7"
    assert [line.text for line in script.lines] == ["How are you?", "Good, well, okay", "and work?", "Busy."]
    assert [line.gap_before_s for line in script.lines][1::2] == [5.0, 5.0]
    assert all(0.3 <= line.gap_before_s <= 0.9 for line in script.lines[0::2])
    assert script_from_annomi(rows, voices=voices, gap_s=0.6, seed=1) == script_from_annomi(
        rows, voices=voices, gap_s=0.6, seed=1
    )
    with pytest.raises(ScriptError, match="interlocutor='coach'"):
        script_from_annomi([{"interlocutor": "coach", "utterance_text": "Hi"}], voices=voices, gap_s=0.5)


@pytest.mark.skipif(not ANNOMI_CSV.exists(), reason="shared AnnoMI data not present")
def test_script_from_real_annomi_excerpt() -> None:
    rows = read_annomi_rows(ANNOMI_CSV, 0)[:6]
    script = script_from_annomi(rows, voices={"therapist": "slt", "client": "awb"}, gap_s=0.5, seed=0)
    assert script.session_id == "annomi-0"
    assert [line.role for line in script.lines] == ["therapist", "client"] * 3
    assert script.lines[1].text == "Sure."


# ----------------------------------------------------------------- rendering (flite)


def test_missing_flite_names_the_binary_and_the_package(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    script = load_script(_write(tmp_path, _script_doc()))
    with pytest.raises(SynthesizerError, match=r"'flite'.*apt-get install flite"):
        render_session(script, tmp_path / "x.wav")


def _frames_db(x: np.ndarray, frame: int = 160) -> np.ndarray:
    k = len(x) // frame
    return 20 * np.log10(np.sqrt(np.mean(x[: k * frame].reshape(k, frame) ** 2, axis=1)) + 1e-12)


@needs_flite
@pytest.mark.parametrize("suffix", [".flac", ".wav"])
def test_render_is_byte_identical_for_same_seed(tmp_path: Path, suffix: str) -> None:
    script = load_script(_write(tmp_path, _script_doc()))
    a = render_session(script, tmp_path / f"a{suffix}", seed=5)
    b = render_session(script, tmp_path / f"b{suffix}", seed=5)
    c = render_session(script, tmp_path / f"c{suffix}", seed=6)
    assert (tmp_path / f"a{suffix}").read_bytes() == (tmp_path / f"b{suffix}").read_bytes()
    assert (tmp_path / f"a{suffix}").read_bytes() != (tmp_path / f"c{suffix}").read_bytes()
    assert a.utterances == b.utterances == c.utterances


@needs_flite
def test_truth_matches_the_file(tmp_path: Path) -> None:
    script = load_script(_write(tmp_path, _script_doc(tail_s=0.7)))
    truth = render_session(script, tmp_path / "s.flac", noise_floor_dbfs=-55.0)
    info = sf.info(tmp_path / "s.flac")
    assert (info.samplerate, info.channels, info.subtype) == (16_000, 1, "PCM_16")
    assert info.frames == truth.n_samples
    first, second = truth.utterances
    assert first.start_sample == round(0.2 * SR)
    assert second.start_sample - first.end_sample == round(0.6 * SR)
    assert truth.n_samples - second.end_sample == round(0.7 * SR)
    assert [(s.kind, round(s.duration_s, 6)) for s in truth.silences] == [("switch", 0.6)]
    assert (first.role, first.voice, second.voice) == ("therapist", "slt", "awb")

    x, _ = sf.read(tmp_path / "s.flac", dtype="float64")
    assert np.count_nonzero(x[: first.start_sample]) > 0.9 * first.start_sample  # noise, not zeros
    gap = x[first.end_sample : second.start_sample]
    gap_db = 20 * np.log10(np.sqrt(np.mean(gap**2)))
    assert -57 < gap_db < -53  # the noise floor, not digital silence
    for u in truth.utterances:
        speech_db = 20 * np.log10(np.sqrt(np.mean(x[u.start_sample : u.end_sample] ** 2)))
        assert speech_db - gap_db > 25
        assert _frames_db(x[u.start_sample : u.start_sample + 160])[0] > -53  # trimmed to speech


@needs_flite
@pytest.mark.parametrize("voice", ["slt", "awb", "rms", "kal16"])
def test_flite_internal_pauses_stay_short(tmp_path: Path, voice: str) -> None:
    text = "Well, I suppose so. It was hard... I don't know. What happened next? Nothing, really."
    script = Script("p", (ScriptLine("client", text, 0.0),), {"client": voice}, tail_s=0.0)
    truth = render_session(script, tmp_path / "p.wav", noise_floor_dbfs=-70.0)
    x, _ = sf.read(tmp_path / "p.wav", dtype="float64")
    quiet = _frames_db(x) < -45
    longest = run = 0
    for q in quiet:
        run = run + 1 if q else 0
        longest = max(longest, run)
    assert longest * 0.01 < 0.5, f"{voice}: {longest * 0.01:.2f} s pause inside one utterance"
    assert truth.silences == ()


@needs_flite
def test_overlap_and_resampled_voice(tmp_path: Path) -> None:
    lines = (
        ScriptLine("therapist", "Tell me about the week, from the start.", 0.1),
        ScriptLine("client", "Okay.", 0.0, overlap_s=0.3),
        ScriptLine("client", "It was long.", 0.5),
    )
    script = Script("o", lines, {"therapist": "slt", "client": "kal"})  # kal is 8 kHz
    truth = render_session(script, tmp_path / "o.wav")
    assert sf.info(tmp_path / "o.wav").samplerate == 16_000
    t, ok, _ = truth.utterances
    assert ok.start_sample == t.end_sample - round(0.3 * SR)
    assert len(truth.overlaps) == 1 and truth.overlaps[0].first_index == 0
    assert [s.kind for s in truth.silences] == ["pause" if ok.end_sample > t.end_sample else "switch"]


@needs_flite
def test_unknown_voice_is_named(tmp_path: Path) -> None:
    script = load_script(_write(tmp_path, _script_doc(voices={"therapist": "slt", "client": "nosuch"})))
    with pytest.raises(SynthesizerError, match="no voice 'nosuch'"):
        render_session(script, tmp_path / "x.wav")


@needs_flite
def test_cli_writes_audio_truth_and_rttm(tmp_path: Path) -> None:
    script_path = _write(tmp_path, _script_doc())
    assert main([str(script_path), str(tmp_path / "out.flac")]) == 0
    truth_json, rttm = truth_paths(tmp_path / "out.flac")
    assert truth_json.name == "out.truth.json" and rttm.name == "out.rttm"
    truth = read_truth(truth_json)
    assert truth.audio_file == "out.flac"
    assert len(rttm.read_text().splitlines()) == len(truth.utterances) == 2
    assert main([str(tmp_path / "missing.json"), str(tmp_path / "x.flac")]) == 2
