"""bench/bench_realistic.py scores needing no models: backchannel and listener-turn matching, Whisper-normalised WER."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from bench.bench_realistic import _backchannel_cell, _whisper_wers, backchannel_scores
from evaluation.synthetic import TruthUtterance
from pipeline.types import Diarization, Marker, SpeakerTurn, Word


def _utt(k: int, role: str, start: float, end: float, text: str, tags: tuple[str, ...] = ()) -> TruthUtterance:
    return TruthUtterance(k, role, "awb", start, end, int(start * 16000), int(end * 16000), text, tags)


TRUTH = SimpleNamespace(utterances=(
    _utt(0, "therapist", 0.0, 6.0, "So if you have a date in mind, that helps."),
    _utt(1, "client", 2.0, 2.5, "right", ("backchannel",)),
    _utt(2, "client", 6.5, 7.0, "Mm-hmm."),
    _utt(3, "client", 7.5, 9.0, "I think two weeks."),
))


def _analysis(*markers: Marker) -> SimpleNamespace:
    turns = (SpeakerTurn(0.0, 6.2, "A"), SpeakerTurn(2.0, 2.6, "B"), SpeakerTurn(6.4, 9.0, "B"))
    return SimpleNamespace(measures=SimpleNamespace(markers=markers), diarization=Diarization(turns, ("A", "B")),
                           roles=SimpleNamespace(role_of={"A": "therapist", "B": "client"}.get))


def _bc(role: str, start: float, end: float, quote: str) -> Marker:
    return Marker("backchannel", role, start, end, 1.0, json.dumps({"quote": quote}))


def test_backchannels_matched_by_role_time_and_text():
    out = backchannel_scores(TRUTH, _analysis(
        _bc("client", 2.1, 2.4, "Right."),         # the inserted one
        _bc("therapist", 6.5, 7.0, "Mm-hmm."),     # wrong role
        _bc("client", 6.5, 7.0, "Okay."),          # right time and role, another word: not this backchannel
        Marker("long_silence", None, 6.0, 6.5, 1.0, "{}"),
        Marker("listener_turn", "client", 2.0, 2.6, 0.6, json.dumps({"over": "therapist", "quote": ""})),
        Marker("listener_turn", "therapist", 6.4, 7.0, 0.6, json.dumps({"over": "client", "quote": ""}))))
    assert out == {"backchannels_true": 2, "backchannels_inserted": 1, "backchannels_detected": 3,
                   "backchannels_matched": 1, "backchannels_inserted_matched": 1, "nested_turns": 1,
                   "nested_turns_matched": 1, "nested_turns_inserted_matched": 1, "listener_turns": 2,
                   "listener_turns_matched": 1, "listener_turns_inserted_matched": 1}
    assert _backchannel_cell(out) == "0.50 / 0.33 (1.00; 1/2 true, 3 found)"
    assert _backchannel_cell(out, "nested_turns") == "0.50 / 1.00 (1.00; 1/2 true, 1 found)"
    assert _backchannel_cell(out, "listener_turns") == "0.50 / 0.50 (1.00; 1/2 true, 2 found)"
    assert _backchannel_cell({}) == "–"


def test_whisper_wer_is_reported_next_to_the_strict_one():
    pytest.importorskip("whisper.normalizers")
    words = [Word(0, 1, t, 1.0) for t in "So if you have a date in mind that helps. Right. I think 2 weeks.".split()]
    out = _whisper_wers(TRUTH, SimpleNamespace(words=words))
    assert out["wer_whisper"] == 0.0  # "Mm-hmm" is a filler, "two" is "2"
    assert out["n_ref_words_whisper"] == 15
