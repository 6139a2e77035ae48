"""Prosody on generated voices of known pitch and level (seeded), plus own-speech spans and options."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.errors import ConfigError
from pipeline.markers.prosody import (
    ProsodyOptions,
    diarization_frames,
    measure_prosody,
    own_speech_spans,
    speaker_prosody,
)
from pipeline.types import Diarization, RoleAssignment, Span, SpeakerTurn

SR = 16_000
ROLES = RoleAssignment("T", "C", 1.0, "override", "")
_HARMONICS = (1.0, 0.5, 1 / 3)  # amplitudes of harmonics 1..3


def _dbfs(rms: float) -> float:
    return 20 * np.log10(rms)


def voice(duration_s: float, *, f0_hz: float, level_dbfs: float) -> np.ndarray:
    """A steady harmonic tone whose RMS is exactly ``level_dbfs``; shape (n,)."""
    t = np.arange(int(round(duration_s * SR))) / SR
    x = sum(a * np.sin(2 * np.pi * (k + 1) * f0_hz * t) for k, a in enumerate(_HARMONICS))
    rms = np.sqrt(sum(a * a for a in _HARMONICS) / 2)
    return (x * (10 ** (level_dbfs / 20) / rms)).astype(np.float32)


def _diar(*turns: SpeakerTurn) -> Diarization:
    return Diarization(tuple(turns), tuple(sorted({t.speaker for t in turns})))


def _session(seed: int = 0) -> tuple[np.ndarray, Diarization]:
    """T (220 Hz, -20 dBFS) then C (150 Hz, -26 dBFS), then an overlap.

    Each turn has a silent stretch inside it; in the overlap both talk loudly at other pitches; noise floor
    -70 dBFS.
    """
    rng = np.random.default_rng(seed)
    x = (10 ** (-70 / 20) * rng.standard_normal(14 * SR)).astype(np.float32)

    def put(start_s: float, y: np.ndarray) -> None:
        i = int(round(start_s * SR))
        x[i:i + len(y)] += y

    put(0.0, voice(2.0, f0_hz=220, level_dbfs=-20))
    put(2.5, voice(2.5, f0_hz=220, level_dbfs=-20))        # T: 0-5 s, silent 2.0-2.5 s
    put(5.5, voice(3.0, f0_hz=150, level_dbfs=-26))
    put(9.0, voice(2.0, f0_hz=150, level_dbfs=-26))        # C: 5.5-11 s, silent 8.5-9.0 s
    put(11.0, voice(3.0, f0_hz=300, level_dbfs=-6))        # both turns cover 11-14 s: overlap, left out
    diar = _diar(SpeakerTurn(0.0, 5.0, "T"), SpeakerTurn(5.5, 14.0, "C"), SpeakerTurn(11.0, 14.0, "T"))
    return x, diar


def _values(indicators) -> dict[tuple[str, str], float | None]:
    return {(i.speaker_role, i.name): i.value for i in indicators}


def test_pitch_and_energy_of_two_known_voices():
    x, diar = _session()
    v = _values(measure_prosody(x, diar, ROLES))
    assert v["therapist", "pitch_median"] == pytest.approx(220, abs=3)
    assert v["client", "pitch_median"] == pytest.approx(150, abs=3)
    assert v["therapist", "energy_median"] == pytest.approx(-20, abs=1)
    assert v["client", "energy_median"] == pytest.approx(-26, abs=1)
    for role in ("therapist", "client"):
        assert v[role, "pitch_iqr"] < 0.2          # a steady tone: no spread
        assert v[role, "energy_iqr"] < 1.0
        assert v[role, "voiced_share"] > 0.95      # silent stretches are inactive, not unvoiced
    assert v["therapist", "prosody_time"] == pytest.approx(5.0)
    assert v["client", "prosody_time"] == pytest.approx(5.5)  # 5.5-11 s: the overlap is left out


def test_frames_computed_beforehand_give_the_same_indicators():
    """The session run computes the speakers' frames while transcription runs and hands them in."""
    x, diar = _session()
    frames = diarization_frames(x, diar)
    assert sorted(frames) == ["C", "T"]
    assert measure_prosody(x, diar, ROLES, frames=frames) == measure_prosody(x, diar, ROLES)
    # a speaker missing from the given frames is computed
    assert measure_prosody(x, diar, ROLES, frames={"T": frames["T"]}) == measure_prosody(x, diar, ROLES)


def test_units():
    x, diar = _session()
    units = {i.name: i.unit for i in measure_prosody(x, diar, ROLES)}
    assert units == {"prosody_time": "s", "pitch_median": "Hz", "pitch_iqr": "semitones",
                     "energy_median": "dBFS", "energy_iqr": "dB", "voiced_share": "ratio"}


def test_silent_stretch_inside_a_turn_is_inactive():
    x, diar = _session()
    s = speaker_prosody(x, own_speech_spans(diar, "T"), speaker="T")
    # 4.5 s of tone in 5 s of turn; frames straddling the edges of the gap may go either way
    assert 4.3 <= s.active_s <= 4.6
    assert s.voiced_s == pytest.approx(s.active_s, abs=0.1)


def test_gain_shifts_energy_and_leaves_pitch():
    x, diar = _session()
    loud = _values(measure_prosody(x, diar, ROLES))
    quiet = _values(measure_prosody(x * np.float32(0.1), diar, ROLES))
    for role in ("therapist", "client"):
        assert quiet[role, "energy_median"] == pytest.approx(loud[role, "energy_median"] - 20, abs=0.01)
        assert quiet[role, "pitch_median"] == pytest.approx(loud[role, "pitch_median"], abs=0.01)


def test_block_size_does_not_change_results():
    x, diar = _session()
    a = measure_prosody(x, diar, ROLES)
    b = measure_prosody(x, diar, ROLES, options=ProsodyOptions(max_block_s=0.3))
    assert _values(a) == pytest.approx(_values(b))


def test_input_not_modified():
    x, diar = _session()
    before = x.copy()
    measure_prosody(x, diar, ROLES)
    assert np.array_equal(x, before)


def test_missing_role_and_too_little_speech_give_none():
    x, diar = _session()
    v = _values(measure_prosody(x, diar, RoleAssignment("T", None, 0.5, "rule", "")))
    assert v["client", "pitch_median"] is None and v["client", "prosody_time"] == 0.0
    short = speaker_prosody(x, (Span(0.0, 0.5),), speaker="T")
    assert short.pitch_median_hz is None and short.energy_median_dbfs is None  # < 1 s of frames
    assert short.voiced_share == pytest.approx(1.0)
    empty = speaker_prosody(x, (Span(0.0, 0.01),), speaker="T")  # shorter than one frame
    assert empty.analysed_s == 0.0 and empty.voiced_share is None


def test_digital_silence_is_never_active():
    s = speaker_prosody(np.zeros(3 * SR, dtype=np.float32), (Span(0.0, 3.0),), speaker="T")
    assert s.analysed_s == 3.0 and s.active_s == 0.0
    assert s.energy_median_dbfs is None and s.pitch_median_hz is None and s.voiced_share is None


def test_spans_past_the_end_are_clipped():
    x, _ = _session()
    s = speaker_prosody(x, (Span(12.0, 99.0),), speaker="C")
    assert s.analysed_s == pytest.approx(2.0)


def test_own_speech_spans_remove_overlap_and_merge_own_turns():
    diar = _diar(SpeakerTurn(0, 4, "A"), SpeakerTurn(3, 5, "A"), SpeakerTurn(1, 2, "B"), SpeakerTurn(4.5, 7, "B"),
                 SpeakerTurn(6, 8, "A"))
    assert own_speech_spans(diar, "A") == (Span(0, 1), Span(2, 4.5), Span(7, 8))
    assert own_speech_spans(diar, "B") == (Span(5, 6),)  # (1, 2) lies inside A's turn: all overlap
    assert own_speech_spans(diar, "Z") == ()


def test_mono_required():
    x, diar = _session()
    with pytest.raises(ValueError, match="shape"):
        measure_prosody(np.stack([x, x], axis=1), diar, ROLES)


@pytest.mark.parametrize("kwargs, bad", [
    ({"fmin_hz": 500.0}, "fmin_hz"),
    ({"fmin_hz": 0.0}, "fmin_hz"),
    ({"frame_length_s": 0.02}, "frame_length_s"),
    ({"hop_s": 0.0}, "hop_s"),
    ({"hop_s": 0.1}, "hop_s"),
    ({"active_range_db": -1.0}, "active_range_db"),
    ({"min_active_dbfs": 0.0}, "min_active_dbfs"),
    ({"min_periodicity": 1.0}, "min_periodicity"),
    ({"min_voiced_s": -1.0}, "min_voiced_s"),
    ({"max_block_s": 0.1}, "max_block_s"),
])
def test_options_validated(kwargs, bad):
    with pytest.raises(ConfigError, match=bad):
        ProsodyOptions(**kwargs)
