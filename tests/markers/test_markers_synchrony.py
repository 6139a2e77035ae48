"""Turn-pair prosodic synchrony and rate convergence: pure functions, generated voices (seeded), wiring."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from pipeline.analysis.indicators import measure_session
from pipeline.analysis.text_only import TIME_BASED_INDICATORS, TranscriptUtterance, measure_transcript
from pipeline.errors import ConfigError
from pipeline.markers.prosody import measure_prosody, own_speech_spans, speaker_frames, turn_prosody
from pipeline.markers.synchrony import (
    SynchronyOptions,
    TurnValues,
    adjacent_pairs,
    correlation,
    feature_synchrony,
    rate_convergence,
    slope,
)
from pipeline.types import AttributedWord, Diarization, RoleAssignment, SpeakerTurn

SR = 16_000
ROLES = RoleAssignment("T", "C", 1.0, "override", "")
NAMES = ("pitch_synchrony", "energy_synchrony", "rate_synchrony", "rate_convergence")
TURN_S, GAP_S, N_TURNS = 1.0, 0.3, 24


@dataclass(frozen=True)
class _Turn:
    speaker: str
    role: str | None
    start_s: float
    end_s: float
    word_count: int


def _tv(role, start_s=0.0, *, pitch=None, energy=None, rate=None) -> TurnValues:
    return TurnValues(role, start_s, start_s + 1.0, pitch, energy, rate)


def _voice(duration_s: float, *, f0_hz: float, level_dbfs: float) -> np.ndarray:
    t = np.arange(int(round(duration_s * SR))) / SR
    harmonics = (1.0, 0.5, 1 / 3)
    x = sum(a * np.sin(2 * np.pi * (k + 1) * f0_hz * t) for k, a in enumerate(harmonics))
    return (x * (10 ** (level_dbfs / 20) / np.sqrt(sum(a * a for a in harmonics) / 2))).astype(np.float32)


def _session(deviation: np.ndarray, *, seed: int = 0) -> tuple[np.ndarray, Diarization, list[_Turn]]:
    """Alternating T (200 Hz, -20 dBFS) and C (120 Hz, -26 dBFS) turns; noise floor -70 dBFS.

    Turn k is shifted by deviation[k] semitones and deviation[k] dB from its speaker's base.
    """
    rng = np.random.default_rng(seed)
    total = N_TURNS * (TURN_S + GAP_S) + 0.5
    x = (10 ** (-70 / 20) * rng.standard_normal(int(total * SR))).astype(np.float32)
    spans, turns = [], []
    for k, d in enumerate(deviation):
        spk, f0, lvl = ("T", 200.0, -20.0) if k % 2 == 0 else ("C", 120.0, -26.0)
        start = 0.25 + k * (TURN_S + GAP_S)
        y = _voice(TURN_S, f0_hz=f0 * 2 ** (d / 12), level_dbfs=lvl + d)
        i = int(round(start * SR))
        x[i:i + len(y)] += y
        spans.append(SpeakerTurn(start, start + TURN_S, spk))
        turns.append(_Turn(spk, "therapist" if spk == "T" else "client", start, start + TURN_S, 3))
    return x, Diarization(tuple(spans), ("C", "T")), turns


def _entrained(seed: int = 1) -> np.ndarray:
    """Each turn near the previous one: a slow wave (one period over the session) plus small noise."""
    k = np.arange(N_TURNS)
    return 3.0 * np.sin(2 * np.pi * k / N_TURNS) + np.random.default_rng(seed).normal(0, 0.1, N_TURNS)


def _disentrained(seed: int = 2) -> np.ndarray:
    """Each turn mirrors the previous one about its speaker's median.

    The slow wave with every second turn flipped (each speaker's median stays near 0).
    """
    return _entrained(seed) * np.where(np.arange(N_TURNS) % 2 == 0, 1.0, -1.0)


def _values(indicators) -> dict:
    return {(i.name, i.speaker_role): i.value for i in indicators}


# ------------------------------------------------------------------ pure functions

def test_correlation_pearson_spearman_and_undefined():
    assert correlation([1, 2, 3, 4], [2, 4, 6, 8]) == pytest.approx(1.0)
    assert correlation([1, 2, 3, 4], [8, 6, 4, 2]) == pytest.approx(-1.0)
    assert correlation([1, 2, 3, 4], [1, 4, 9, 100], method="spearman") == pytest.approx(1.0)
    # ties get average ranks: ranks of y are (1.5, 1.5, 3, 4)
    assert correlation([1, 2, 3, 4], [5, 5, 6, 7], method="spearman") == pytest.approx(
        correlation([1, 2, 3, 4], [1.5, 1.5, 3, 4]))
    assert correlation([1, 2], [1, 2]) is None
    assert correlation([1, 2, 3], [5, 5, 5]) is None
    with pytest.raises(ValueError):
        correlation([1, 2, 3], [1, 2])


def test_slope():
    assert slope([0, 1, 2, 3], [10, 8, 6, 4]) == pytest.approx(-2.0)
    assert slope([1, 1, 1], [1, 2, 3]) is None
    assert slope([1], [1]) is None


def test_pairs_need_two_different_roles_and_no_third_speaker_between():
    turns = [_tv("therapist"), _tv("client"), _tv(None), _tv("therapist"), _tv("therapist"), _tv("client")]
    pairs = adjacent_pairs(turns)
    assert [(a.role, b.role) for a, b in pairs] == [("therapist", "client"), ("therapist", "client")]
    assert pairs[0][0] is turns[0] and pairs[1][0] is turns[4]


def test_rate_synchrony_is_relative_to_each_speakers_median():
    # T speaks ~180 words/min, C ~120; each turn follows the previous turn's deviation from its own median.
    rng = np.random.default_rng(3)
    dev = 20 * np.sin(2 * np.pi * np.arange(30) / 30) + rng.normal(0, 1, 30)
    turns = [_tv("therapist" if k % 2 == 0 else "client", rate=(180.0 if k % 2 == 0 else 120.0) + d)
             for k, d in enumerate(dev)]
    assert feature_synchrony(turns, "rate") > 0.9
    raw = correlation([a.rate for a, b in adjacent_pairs(turns)], [b.rate for a, b in adjacent_pairs(turns)])
    assert raw < -0.5     # what pooling raw rates over both directions would report


def test_synchrony_needs_min_pairs_and_values_on_both_turns():
    turns = [_tv("therapist" if k % 2 == 0 else "client", pitch=float(k)) for k in range(10)]   # 9 pairs
    assert feature_synchrony(turns, "pitch") is None
    assert feature_synchrony(turns, "pitch", options=SynchronyOptions(min_pairs=5)) == pytest.approx(1.0)
    gappy = [_tv(t.role, pitch=None if k == 3 else t.pitch) for k, t in enumerate(turns)]   # 2 pairs lost
    assert feature_synchrony(gappy, "pitch", options=SynchronyOptions(min_pairs=8)) is None


def test_rate_convergence_slope_of_absolute_difference():
    # |T - C| shrinks from 60 to 0 words/min over 12 minutes: 5 words/min per minute
    turns = []
    for k in range(25):
        t = 30.0 * k            # a turn every 30 s
        gap = 60.0 * (1 - k / 24)
        turns.append(_tv("therapist" if k % 2 == 0 else "client", t,
                         rate=150.0 + (gap / 2 if k % 2 == 0 else -gap / 2)))
    v = rate_convergence(turns)
    assert v is not None and v < 0
    diffs = [abs(a.rate - b.rate) for a, b in adjacent_pairs(turns)]
    times = [b.start_s / 60 for a, b in adjacent_pairs(turns)]
    assert v == pytest.approx(slope(times, diffs))
    assert v == pytest.approx(-5.0, abs=0.3)
    assert rate_convergence(turns[:5]) is None


def test_options_are_checked():
    for bad in ({"min_pairs": 2}, {"min_turn_words": 0}, {"min_turn_voiced_s": -1.0}, {"method": "kendall"}):
        with pytest.raises(ConfigError):
            SynchronyOptions(**bad)


# ------------------------------------------------------------------ generated voices

def test_turn_values_recover_known_pitch_and_level_shifts():
    dev = _entrained()
    x, diar, turns = _session(dev)
    frames = {s: speaker_frames(x, own_speech_spans(diar, s)) for s in ("T", "C")}
    values = turn_prosody(frames, turns)
    for k, v in enumerate(values):
        own = dev[k % 2::2]
        assert v.pitch == pytest.approx(dev[k] - np.median(own), abs=0.15)
        assert v.energy == pytest.approx(dev[k] - np.median(own), abs=0.3)
        assert v.rate == pytest.approx(60 * 3 / TURN_S)


@pytest.mark.parametrize("deviation, sign", [(_entrained(), 1), (_disentrained(), -1)])
def test_pitch_and_energy_synchrony_of_generated_sessions(deviation, sign):
    x, diar, turns = _session(deviation)
    v = _values(measure_prosody(x, diar, ROLES, turns=turns))
    assert sign * v["pitch_synchrony", None] > 0.8
    assert sign * v["energy_synchrony", None] > 0.8
    assert v["rate_synchrony", None] is None          # every turn has the same rate: no variance
    assert v["rate_convergence", None] == pytest.approx(0.0, abs=1e-9)


def test_without_turns_measure_prosody_is_unchanged():
    x, diar, _ = _session(_entrained())
    names = {i.name for i in measure_prosody(x, diar, ROLES)}
    assert not names & set(NAMES)


def test_measure_session_adds_synchrony_on_audio_and_text_only_leaves_it_out():
    x, diar, turns = _session(_entrained())
    words = []
    for t in turns:
        words += [AttributedWord(t.start_s + i * TURN_S / 3, t.start_s + (i + 1) * TURN_S / 3, w, 0.9, t.speaker)
                  for i, w in enumerate(("alpha", "beta", "gamma"))]
    m = measure_session(words, diar, ROLES, duration_s=len(x) / SR, samples=x)
    v = _values(m.indicators)
    assert v["pitch_synchrony", None] > 0.8 and v["energy_synchrony", None] > 0.8
    assert {i.unit for i in m.indicators if i.name in NAMES} == {"r", "words/min per min"}
    assert set(NAMES) <= TIME_BASED_INDICATORS
    text = measure_transcript([TranscriptUtterance("therapist", "How are you today?"),
                               TranscriptUtterance("client", "Fine, thank you, and you?")])
    assert not {i.name for i in text.measures.indicators} & set(NAMES)
