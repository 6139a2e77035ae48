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


def test_attributed_wers_give_each_role_its_wer_and_the_pooled_row_counts_them():
    pytest.importorskip("meeteval")
    from bench.bench_realistic import attributed_wers, markdown, pool
    from pipeline.types import AttributedWord

    truth = SimpleNamespace(utterances=(_utt(0, "therapist", 0.0, 2.0, "How are you?"),
                                        _utt(1, "client", 2.5, 4.0, "Fine thanks.")))
    words = [AttributedWord(0.1, 0.4, "How", 1.0, "A"), AttributedWord(0.5, 0.8, "are", 1.0, "A"),
             AttributedWord(0.9, 1.2, "you?", 1.0, "A"), AttributedWord(2.6, 2.9, "Fine", 1.0, "B"),
             AttributedWord(3.0, 3.3, "thanks.", 1.0, "A")]
    out = attributed_wers(truth, SimpleNamespace(words=words), {"A": "therapist", "B": "client"})
    assert (out["cpwer_errors"], out["cpwer_length"]) == (2, 5)
    assert (out["wer_client"], out["wer_therapist"]) == (0.5, 1 / 3)
    base = {"audio_s": 4.0, "n_ref_words": 5, "wer": 0.0, "wer_without_backchannels": 0.0, "der": 0.0,
            "attribution": 1.0, "attribution_n": 5, "overlap_attribution": None, "overlap_attribution_n": 0,
            "silence_f1": None, "silences_true": 0, "silence_f1_onset": None, "overlap_recall": None,
            "overlap_precision": None, "overlap_true_s": 0.0, "roles_ok": True, "onset_error_median_s": None,
            "onset_n": 0, "invented_words_raw": 0, "invented_words_kept": 0, "asr_s": 1.0, "diarization_s": 1.0,
            "analysis_s": 0.0, "enhance_s": 2.0, "rt60_est_s": 0.5}
    pooled = pool([{**base, **out}, {**base, **out}])
    assert pooled["cpwer"] == 0.4 and pooled["wer_client"] == 0.5 and pooled["rtf"] == 1.0  # (2+1+1 s) / 4 s
    md = markdown({"machine": "m", "sessions": [], "renders": [],
                   "pooled": [{"condition": "clean", "front_end": "wpe", "asr": "greedy", **pooled}]})
    assert "| cpWER | tcpWER | WER therapist / client |" in md and "| clean | wpe | greedy |" in md
    assert "| 40.0 % | 40.0 % | 33.3 % / 50.0 % |" in md


def test_rover_reuses_the_runs_transcripts_of_its_parts_and_the_cache_round_trips(tmp_path, monkeypatch):
    import numpy as np

    import bench.bench_realistic as br
    from pipeline.types import Transcript

    calls = []

    class Fake:
        def __init__(self, opts):
            self.opts = opts

        def transcribe(self, samples):
            calls.append((self.opts.backend, self.opts.beam_size))
            text = "so how are you" if self.opts.backend == "moonshine" else "so how you"
            return Transcript(tuple(Word(k, k + 0.5, t, 0.9) for k, t in enumerate(text.split())), "en", 1.0,
                              self.opts.backend, "m")

    monkeypatch.setattr(br, "_transcriber", lambda opts, load_s: Fake(opts))
    cache = br.TranscriptCache(tmp_path / "t.json")
    samples = np.zeros(16000 * 5, np.float32)
    greedy, *_ = br._transcribe("greedy", samples, None, "rec|none|asr", cache, {})
    rover, wall, cpu = br._transcribe("rover", samples, None, "rec|none|asr", cache, {})
    assert calls == [("faster-whisper", 1), ("faster-whisper", 5), ("moonshine", 1)]  # greedy decoded once
    assert rover.backend == "rover" and wall >= 0 and cpu >= 0
    cache.save()
    again = br.TranscriptCache(tmp_path / "t.json")
    monkeypatch.setattr(br, "_transcriber", lambda opts, load_s: pytest.fail("decoded again"))
    assert br._transcribe("greedy", samples, None, "rec|none|asr", again, {})[0] == greedy
    assert br._transcribe("rover", samples, None, "rec|none|asr", again, {})[0] == rover


def test_error_kinds_sort_each_error_by_the_reference_word_it_falls_on():
    """Backchannel and overlapped words, spelled letters and the rest are counted apart (bench/asr_error_kinds.py)."""
    pytest.importorskip("whisper")  # the Whisper normaliser
    from bench.asr_error_kinds import error_kinds

    # "have" (placed at 2.3 s, under the client's "right") -> "had"; "date" (3.7 s, not overlapped) -> "day";
    # "M H M" for "Mm-hmm." (which the normaliser removes): "right", the backchannel, aligns with "m" and two
    # letters are inserted; "two" -> "to" in the last turn
    got = error_kinds(TRUTH, "So if you had a day in mind, that helps. M H M I think to weeks.")
    assert (got["backchannel"], got["overlap"], got["spelled"], got["other"]) == (1, 1, 2, 2)
    assert got["errors"] == 6 and got["ref_words"] > 10
    assert error_kinds(TRUTH, "So if you have a date in mind, that helps. Right. I think two weeks.")["errors"] == 0


def test_expected_wer_calibration_fits_on_one_session_and_scores_the_other():
    """bench/calibrate_expected_wer.py: Whisper transcripts only, fitted on annomi-46, scored on annomi-131."""
    from bench.calibrate_expected_wer import fit, points

    result, cache = {"rows": []}, {}
    for session, offset in (("46", 0.0), ("131", 0.02)):
        for k, (condition, p) in enumerate((("clean", 0.9), ("room-far", 0.8), ("phone-amr", 0.7))):
            wer = 1.5 - 1.6 * p + offset
            result["rows"].append({"session": f"annomi-{session}", "condition": condition, "asr": "beam5",
                                   "front_end": "none", "wer_whisper": wer})
            cache[f"realistic-{session}-{condition}-{k}abc.flac|none|asr|TranscribeOptions(backend='faster-whisper', "
                  "beam_size=5, compute_type='int8')"] = {"transcript": {"words": [[0, 1, "w", p]] * 4}}
    cache["realistic-46-clean-0abc.flac|none|asr|TranscribeOptions(backend='moonshine', beam_size=5, x=1)"] = {
        "transcript": {"words": [[0, 1, "w", 0.1]]}}  # not a Whisper transcript: left out
    rows = points(result, cache)
    assert len(rows) == 6
    line = fit(rows)
    assert (line["intercept"], line["slope"]) == (pytest.approx(1.5), pytest.approx(-1.6))
    assert line["fit"]["mean_abs_error"] == pytest.approx(0.0, abs=1e-9)
    assert line["held_out"]["n"] == 3 and line["held_out"]["mean_error"] == pytest.approx(-0.02)


def test_winners_pool_configurations_run_on_both_sessions_only():
    """bench/winners.py: WER pooled by reference words over both sessions; one-session configurations left out."""
    from bench.winners import collect, winners

    def row(session, asr, wer, n=100):
        return {"session": session, "condition": "clean", "asr": asr, "front_end": "none", "wer_whisper": wer,
                "n_ref_words_whisper": n, "audio_s": 10.0, "asr_cpu_s": 1.0, "diarization_cpu_s": 0.5}

    docs = [{"rows": [row("annomi-46", "greedy", 0.10), row("annomi-131", "greedy", 0.20, 300),
                      row("annomi-46", "beam5", 0.12), row("annomi-131", "beam5", 0.16, 300)]},
            {"rows": [row("annomi-46", "greedy", 0.90),  # the same render again: the first file's row counts
                      row("annomi-46", "rover", 0.01)]}]  # one session only
    (table,) = winners(collect(docs))
    assert set(table["configs"]) == {"greedy", "beam5"} and table["winner"] == "beam5"
    assert table["configs"]["greedy"]["wer"] == pytest.approx((10 + 60) / 400)
    assert table["configs"]["beam5"]["wer"] == pytest.approx((12 + 48) / 400)
    assert table["configs"]["beam5"]["cpu_per_audio_s"] == pytest.approx(0.15)
