"""Plausibility gates and quality flags (pipeline.analysis.quality): nothing invented is stored."""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pytest
from conftest import CLIENT_1, THERAPIST_1, words_from

from pipeline.analysis.quality import (
    QualityOptions,
    SessionQuality,
    check_plausible,
    estimate_high_band_db,
    estimate_snr_db,
    overlap_seconds,
    require_language,
    require_two_voices,
    speech_union,
    words_in_speech,
)
from pipeline.analysis.session import SessionMeta, analyse
from pipeline.errors import ConfigError, ImplausibleValueError, NoSpeechError, SingleSpeakerError
from pipeline.privacy.consent import parse_consent
from pipeline.types import Audio, Diarization, Indicator, SpeakerTurn, Transcript, Word

RATE = 16_000
META = SessionMeta("s1", "c1", "t1", dt.date(2026, 1, 2))
CONSENT = parse_consent({"session_id": "s1", "client_id": "c1", "scope": "research", "consented_on": "2026-01-01",
                         "consented_by": ["client"]},
                        source="test")


def _audio(seconds: float, samples: np.ndarray | None = None) -> Audio:
    x = samples if samples is not None else np.zeros(int(RATE * seconds), dtype=np.float32)
    return Audio(x, RATE, "ab" * 32, "x.wav", "WAV", RATE, 1)


def _diar(*turns: tuple[float, float, str]) -> Diarization:
    ts = tuple(sorted(SpeakerTurn(s, e, k) for s, e, k in turns))
    return Diarization(ts, tuple(sorted({t.speaker for t in ts})))


def _analyse(words, diarization, seconds=60.0, samples=None):
    return analyse(_audio(seconds, samples), Transcript(tuple(words), "en", 1.0, "fake", "fake", 3, 1), diarization,
                   meta=META, consent=CONSENT, diarization_model="fake")


def test_speech_union_and_overlap():
    d = _diar((0, 2, "A"), (1, 3, "B"), (5, 6, "A"))
    assert speech_union(d) == ((0, 3), (5, 6))
    assert overlap_seconds(d) == pytest.approx(1.0)


def test_no_detected_speech_fails_with_no_speech_and_nothing_is_analysed():
    # Whisper "heard" words in a file where the speech detector found none: nothing may be stored
    with pytest.raises(NoSpeechError) as e:
        _analyse(words_from("thank you for watching", 10, 12), _diar())
    assert e.value.code == "no_speech" and e.value.stage == "analysis"


def test_words_outside_detected_speech_are_dropped_and_counted():
    inside = words_from(THERAPIST_1, 0.5, 5.0)
    invented = words_from("subtitles by the amara org community", 40.0, 44.0)
    kept, dropped = words_in_speech(inside + invented, diarization=_diar((0.5, 5.0, "A")))
    assert kept == inside and dropped == len(invented)
    # Whisper stretches a segment's last words over the silence after it: they go with their run
    stretched = inside + (Word(5.0, 9.0, "country.", 0.8),)
    assert words_in_speech(stretched, diarization=_diar((0.5, 5.0, "A")))[1] == 0
    # a word just outside a turn (timestamps drift) is kept within the margin
    near = (Word(5.6, 5.9, "okay", 0.9),)
    assert words_in_speech(near, diarization=_diar((0.5, 5.0, "A")))[1] == 0
    with pytest.raises(NoSpeechError):  # with a tight margin it is outside, and it was the only word
        words_in_speech(near, diarization=_diar((0.5, 5.0, "A")), options=QualityOptions(word_margin_s=0.1))


def test_only_invented_words_fail_with_no_recognised_speech():
    with pytest.raises(NoSpeechError) as e:
        _analyse(words_from("you you you you", 50, 52), _diar((1, 8, "A"), (9, 15, "B")))
    assert e.value.code == "no_recognised_speech"


def _two_voices(distance):
    d = _diar((0.5, 5.0, "SPEAKER_00"), (5.6, 9.0, "SPEAKER_01"))
    return Diarization(d.turns, d.speakers, speaker_distance=distance)


def test_one_voice_split_in_two_fails_with_single_speaker_and_two_voices_pass():
    words = words_from(THERAPIST_1, 0.5, 5.0) + words_from(CLIENT_1, 5.6, 9.0)
    with pytest.raises(SingleSpeakerError) as e:  # a monologue's two clusters (measured 0.025-0.037)
        _analyse(words, _two_voices(0.03))
    assert e.value.code == "single_speaker" and e.value.stage == "analysis" and "0.03" in str(e.value)
    with pytest.raises(SingleSpeakerError):  # jfk.flac inside 90 s of noise: the second cluster is noise
        require_two_voices(_two_voices(0.163))
    assert _analyse(words, _two_voices(0.35)).roles.therapist  # pyannote's real two-speaker sample: 0.347
    assert _analyse(words, _two_voices(None)).roles.therapist  # no centroids (RTTM, text-only): not judged
    require_two_voices(_two_voices(0.03), options=QualityOptions(min_speaker_distance=0.0))
    one = _diar((0.5, 5.0, "SPEAKER_00"), (5.6, 9.0, "SPEAKER_00"))  # held to two, turns for one (jfk.flac)
    with pytest.raises(SingleSpeakerError, match="found speech by 1"):
        _analyse(words, one)
    require_two_voices(one, expected=1)  # one speaker asked for: not judged


def test_words_whisper_invents_over_speech_that_is_not_language_fail_with_not_language():
    said = words_from(THERAPIST_1 + " " + CLIENT_1, 0.5, 9.0)
    unsure = tuple(Word(w.start_s, w.end_s, w.text, p) for w, p in zip(said, [0.2, 0.3, 0.9, 0.25] * 9, strict=True))
    with pytest.raises(NoSpeechError) as e:  # reversed speech: fluent words, median confidence 0.21-0.28
        _analyse(unsure, _two_voices(0.6))
    assert e.value.code == "not_language" and "median confidence of 0.28" in str(e.value)
    assert require_language(words_from(THERAPIST_1, 0.5, 5.0)) == pytest.approx(0.9)
    assert require_language(unsure, options=QualityOptions(min_median_word_probability=0.2)) < 0.5


def test_impossible_values_fail_the_session():
    with pytest.raises(ImplausibleValueError, match="words/min"):
        check_plausible([Indicator("speech_rate", "therapist", 330_582.0, "words/min")])
    with pytest.raises(ImplausibleValueError, match="no speaking time"):
        check_plausible([Indicator("word_count", "client", 12.0, "words"),
                         Indicator("speaking_time", "client", 0.0, "s")])
    check_plausible([Indicator("speech_rate", "therapist", 180.0, "words/min")])  # ordinary speech passes


def test_a_few_seconds_of_speech_is_stored_with_a_low_speech_flag():
    words = words_from(THERAPIST_1, 0.5, 5.0) + words_from("I have been okay I think", 5.6, 8.0)
    a = _analyse(words, _diar((0.5, 5.0, "SPEAKER_01"), (5.6, 8.0, "SPEAKER_00")), seconds=120.0)
    codes = {f.code for f in a.quality.flags}
    assert "low_speech" in codes and "hallucinations_dropped" in codes  # the fake transcript dropped 1 segment
    assert a.quality.speech_s == pytest.approx(6.9) and a.quality.speech_share == pytest.approx(6.9 / 120, abs=1e-3)


def test_snr_estimate_separates_clean_from_noisy():
    rng = np.random.default_rng(0)
    t = np.arange(RATE * 20) / RATE
    speech = np.zeros_like(t)
    speech[RATE * 2:RATE * 12] = 0.3 * np.sin(2 * np.pi * 220 * t[RATE * 2:RATE * 12])
    d = _diar((2, 12, "A"))
    clean = estimate_snr_db(speech + 0.001 * rng.standard_normal(t.size), d)
    noisy = estimate_snr_db(speech + 0.1 * rng.standard_normal(t.size), d)
    assert clean > 30 and noisy < 10
    assert estimate_snr_db(np.zeros(RATE * 20), _diar((0, 20, "A"))) is None  # no non-speech to compare


def test_high_band_level_tells_telephone_band_audio_from_wideband():
    from scipy.signal import butter, resample_poly, sosfiltfilt

    rng = np.random.default_rng(3)
    wide = (0.1 * rng.standard_normal(RATE * 12)).astype(np.float32)  # a flat spectrum up to 8 kHz
    sos = butter(8, [300, 3400], btype="bandpass", fs=RATE, output="sos")
    phone = resample_poly(resample_poly(sosfiltfilt(sos, wide), 1, 2), 2, 1).astype(np.float32)  # via 8 kHz
    d = _diar((1, 11, "A"))
    assert -3 < estimate_high_band_db(wide, d) < 3
    assert estimate_high_band_db(phone, d) < -50
    assert estimate_high_band_db(phone, _diar((1, 1.5, "A"))) is None  # under 1 s of speech
    assert estimate_high_band_db(phone[::2], d, sample_rate_hz=8000) is None  # no band above 4 kHz to measure


def test_narrowband_audio_is_flagged_with_what_not_to_trust():
    from pipeline.analysis.quality import quality_flags

    base = dict(speech_s=600.0, speech_share=0.9, snr_db=30.0, overlap_share=0.02, mean_word_probability=0.9,
                asr_segments=10, asr_segments_dropped=0, words_dropped_outside_speech=0,
                word_attribution_overlap=1.0, role_confidence=0.9, language="en", language_probability=1.0)
    assert quality_flags(SessionQuality(**base, high_band_db=-20.0), duration_s=700) == ()
    (flag,) = quality_flags(SessionQuality(**base, high_band_db=-70.0), duration_s=700)
    assert flag.code == "narrowband" and "text markers" in flag.distrust
    assert quality_flags(SessionQuality(**base, high_band_db=None), duration_s=700) == ()
    with pytest.raises(ConfigError, match="min_high_band_db"):
        QualityOptions(min_high_band_db=float("nan"))


def test_dialogue_session_has_quality_and_no_flags_beyond_expected(dialogue):
    words, turns = dialogue
    rng = np.random.default_rng(1)
    x = (0.001 * rng.standard_normal(RATE * 22)).astype(np.float32)
    for t in turns:
        x[int(t.start_s * RATE):int(t.end_s * RATE)] += 0.2
    a = _analyse(words, Diarization(turns, ("SPEAKER_00", "SPEAKER_01")), seconds=22.0, samples=x)
    q = a.quality
    assert q.words_dropped_outside_speech == 0 and q.overlap_share == 0.0 and q.snr_db > 30
    assert json.dumps([f.code for f in q.flags]) == '["low_speech", "hallucinations_dropped"]'


def test_a_session_in_a_reverberant_room_carries_its_room_measures_and_the_reverberant_flag():
    """The room measures go into the quality row (migration 0012), not only into the flag's message."""
    from pathlib import Path

    import soundfile as sf

    from evaluation import realistic as rl

    pyannote_audio = pytest.importorskip("pyannote.audio")
    dry, _ = sf.read(Path(pyannote_audio.__file__).parent / "sample" / "sample.wav")
    (rir,), _ = rl.room_impulse_responses((6.0, 5.0, 3.0), 1.2, [3.5], sr=RATE)
    wet = rl.reverberate(dry[: RATE * 30], rir)
    wet = (wet * 10 ** (-23 / 20) / np.sqrt(rl.active_power(wet, RATE))).astype(np.float32)
    words = words_from(THERAPIST_1, 1.0, 12.0) + words_from("I have been okay I think", 14.0, 25.0)
    a = _analyse(words, _diar((1.0, 12.0, "SPEAKER_01"), (14.0, 25.0, "SPEAKER_00")), seconds=30.0, samples=wet)
    q = a.quality
    assert q.rt60_s is not None and q.rt60_s > QualityOptions().max_rt60_s, q
    assert q.early_drop_db is not None and q.modulation_ratio_db is not None
    flag = next(f for f in q.flags if f.code == "reverberant")
    assert f"{q.rt60_s:.1f} s" in flag.message and "text markers" in flag.distrust


def _whisper(words, backend="faster-whisper") -> Transcript:
    return Transcript(tuple(words), "en", 1.0, backend, "whisper-base")


def test_expected_wer_is_the_bench_line_for_whisper_transcripts_only():
    from dataclasses import replace

    from pipeline.analysis.quality import EXPECTED_WER_LINE, expected_wer

    words = [replace(w, probability=p) for w, p in zip(words_from(THERAPIST_1, 0.0, 8.0), [0.9, 0.7] * 8,
                                                        strict=False)]
    mean = float(np.mean([w.probability for w in words]))
    intercept, slope = EXPECTED_WER_LINE
    assert expected_wer(_whisper(words)) == pytest.approx(intercept + slope * mean, abs=1e-3)
    assert expected_wer(_whisper(words, "openai-whisper")) == expected_wer(_whisper(words))
    assert expected_wer(_whisper(words, "moonshine")) is None and expected_wer(_whisper(words, "rover")) is None
    assert expected_wer(_whisper(())) is None
    sure = [replace(w, probability=1.0) for w in words]
    unsure = [replace(w, probability=0.05) for w in words]
    assert expected_wer(_whisper(sure)) == 0.0 and expected_wer(_whisper(unsure)) == 1.0  # clipped to [0, 1]


def test_the_expected_wer_line_is_the_committed_calibration():
    """The product's constants are the fit of bench/calibrate_expected_wer.py (bench/results/expected_wer.json)."""
    from pathlib import Path

    from pipeline.analysis.quality import EXPECTED_WER_HELD_OUT_ERROR, EXPECTED_WER_LINE

    result = Path(__file__).resolve().parents[2] / "bench" / "results" / "expected_wer.json"
    line = json.loads(result.read_text())["line"]
    assert EXPECTED_WER_LINE == (line["intercept"], line["slope"])
    assert EXPECTED_WER_HELD_OUT_ERROR == round(line["held_out"]["mean_abs_error"], 3)
    assert line["fitted_on"] == "annomi-46" and line["held_out"]["n"] == 16


def test_a_transcript_whose_words_are_unsure_is_flagged_with_its_expected_wer():
    from dataclasses import replace

    turns = ((1.0, 12.0, "SPEAKER_01"), (13.0, 24.0, "SPEAKER_00"))
    words = words_from(THERAPIST_1, 1.0, 12.0) + words_from(CLIENT_1, 13.0, 24.0)
    unsure = tuple(replace(w, probability=0.72) for w in words)  # expected about 36 %
    a = analyse(_audio(60.0), _whisper(unsure), _diar(*turns), meta=META, consent=CONSENT, diarization_model="fake")
    assert a.quality.expected_wer == pytest.approx(0.356, abs=0.01)
    flag = next(f for f in a.quality.flags if f.code == "high_expected_wer")
    assert "36 %" in flag.message and "one word in 3" in flag.distrust
    sure = analyse(_audio(60.0), _whisper(words), _diar(*turns), meta=META, consent=CONSENT, diarization_model="fake")
    assert sure.quality.expected_wer < QualityOptions().max_expected_wer  # 0.9 each: about 6 %
    assert "high_expected_wer" not in [f.code for f in sure.quality.flags]
