"""How reverberant a recording is: blind estimates from speech decays and from the modulation spectrum.

When a talker stops, the sound at the microphone dies away no faster than the room lets it: the steepest free
decays of the speech envelope give the room's reverberation time (RT60, the time sound takes to fall by 60 dB).
How far the level falls in the first 50 ms of those decays (:attr:`RoomEstimate.early_drop_db`) is a
C50-like measure. Both are computed over the 0.3-4 kHz band on 20 ms frames every 5 ms, after the power of the
stationary noise under the speech (the 10th percentile of the frames) is subtracted from every frame, so that a
decay running into ventilation noise or hiss is not read as a slow one; decays are runs of falling level starting
at least 18 dB above the recording's noise floor and lasting at least 80 ms.
:func:`modulation_ratio_db` is an SRMR-like measure (speech-to-reverberation modulation energy ratio).

The raw decay times are mapped to RT60 by a line fitted on the realistic bench's simulated rooms (RT60 0.3-0.9 s,
talker 1-3.5 m from the microphone, without noise and with HVAC or pink noise at 10-20 dB SNR;
``bench/bench_room.py``, docs/realistic_bench.md): on the held-out session the error was 0.075 s on average without
noise and 0.086-0.101 s with it (at most 0.275 s, at 10 dB); the bench's near room (simulated 0.39 s) reads
0.54-0.56 s, the same room with HVAC noise at 15 dB 0.57-0.61 s, its far room (0.77 s) 0.77-0.80 s, dry speech 0.07 s.
Neither the early drop nor the modulation ratio measured the talker's distance on those rooms (held-out
correlation 0.42 for a distance fitted from the modulation ratio and the RT60 estimate), nor did the difference of
these measures between the two talkers of one recording (``bench/bench_far_talker.py``: held-out AUC 0.505-0.54 for
one talker at least 1.75 x as far as the other): distance is not measured here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from pipeline.errors import ConfigError
from pipeline.types import SAMPLE_RATE_HZ


@dataclass(frozen=True)
class RoomOptions:
    """Parameters of :func:`estimate_room`.

    Attributes
    ----------
    band_hz : tuple[float, float]
        Band the envelope is measured in.
    frame_s, hop_s : float
        Envelope frame and hop.
    min_start_db : float
        A decay starts at least this far above the noise floor (5th percentile of frame levels).
    noise_percentile : float or None
        Before decays are read, the power of this percentile of the frames (the stationary noise under the speech)
        is subtracted from every frame's power, so that a decay running into steady noise (ventilation, hiss) is
        not read as a slow one; a decay is then fitted down to 5 dB above the floor. None: no subtraction (the
        estimator before the noise was subtracted, with ``min_start_db=25``: ``bench/bench_room.py``'s baseline).
    min_decay_s : float
        Shortest decay used.
    fit_db : tuple[float, float]
        The decay slope is fitted between these levels below the decay's start (or down to 5 dB above the floor).
    early_s : float
        :attr:`RoomEstimate.early_drop_db` is the fall over this long after a decay starts.
    percentile : float
        The raw decay time is this percentile of the decays' times (the fastest decays are the room's).
    rt60_slope, rt60_intercept : float
        RT60 = slope x raw decay time + intercept, fitted by ``bench/bench_room.py`` on one session's 105 simulated
        rooms (RT60 0.28-0.87 s x 1, 2, 3.5 m x no noise, HVAC and pink noise at 10, 15, 20 dB); on the other
        session's rooms the error was 0.075 s on average without noise (at most 0.145 s) and 0.086-0.101 s with
        noise (at most 0.275 s).
    max_decays : int
        At most this many decays are used (the first, in order).
    """

    band_hz: tuple[float, float] = (300.0, 4000.0)
    frame_s: float = 0.02
    hop_s: float = 0.005
    min_start_db: float = 18.0
    noise_percentile: float | None = 10.0
    min_decay_s: float = 0.08
    fit_db: tuple[float, float] = (-5.0, -25.0)
    early_s: float = 0.05
    percentile: float = 25.0
    rt60_slope: float = 1.997
    rt60_intercept: float = -0.128
    max_decays: int = 2000

    def __post_init__(self) -> None:
        lo, hi = self.band_hz
        if not (0 < lo < hi):
            raise ConfigError(f"band_hz must be 0 < low < high, got {self.band_hz!r}")
        if not (0 < self.hop_s <= self.frame_s):
            raise ConfigError("hop_s must be in (0, frame_s]")
        for name in ("percentile", "noise_percentile"):
            value = getattr(self, name)
            if not (value is None and name == "noise_percentile") and not (0 <= value <= 100):
                raise ConfigError(f"{name} must be in [0, 100]")


@dataclass(frozen=True)
class RoomEstimate:
    """A recording's blind room estimates (None where too few decays were found)."""

    rt60_s: float | None
    early_drop_db: float | None
    decays: int


def envelope_db(samples: np.ndarray, *, sample_rate_hz: int = SAMPLE_RATE_HZ,
                options: RoomOptions = RoomOptions()) -> np.ndarray:
    """Band-limited frame level in dB (one value per hop)."""
    from scipy.signal import butter, sosfiltfilt

    x = np.asarray(samples, dtype=np.float64)
    hi = min(options.band_hz[1], 0.45 * sample_rate_hz)
    sos = butter(4, [options.band_hz[0], hi], btype="bandpass", fs=sample_rate_hz, output="sos")
    y = sosfiltfilt(sos, x) if x.size > 64 else x
    frame, hop = round(options.frame_s * sample_rate_hz), round(options.hop_s * sample_rate_hz)
    if y.size < frame:
        return np.zeros(0)
    c = np.concatenate([[0.0], np.cumsum(y * y)])
    starts = np.arange(0, y.size - frame + 1, hop)
    power = (c[starts + frame] - c[starts]) / frame
    return 10.0 * np.log10(np.maximum(power, 1e-12))


def decays(env_db: np.ndarray, *, options: RoomOptions = RoomOptions()) -> list[tuple[float, float]]:
    """``(decay time s, early drop dB)`` of each free decay of an envelope (see the module docstring)."""
    return [(t, d) for _, t, d in free_decays(env_db, options=options)]


def free_decays(env_db: np.ndarray, *, options: RoomOptions = RoomOptions()) -> list[tuple[int, float, float]]:
    """``(start frame, decay time s, early drop dB)`` of each free decay of an envelope (:func:`decays`)."""
    if env_db.size < 10:
        return []
    floor = float(np.percentile(env_db, 5))
    if options.noise_percentile is not None:
        power = 10.0 ** (env_db / 10.0)
        noise = float(np.percentile(power, options.noise_percentile))
        env_db = 10.0 * np.log10(np.maximum(power - noise, max(noise * 1e-3, 1e-12)))
    hop, tol = options.hop_s, 1.0
    min_len = max(3, math.ceil(options.min_decay_s / hop))
    early = max(1, round(options.early_s / hop))
    out: list[tuple[int, float, float]] = []
    i, n = 1, env_db.size
    while i < n - min_len and len(out) < options.max_decays:
        start = env_db[i]
        if not (start >= env_db[i - 1] and start > env_db[i + 1] and start > floor + options.min_start_db):
            i += 1
            continue
        j, low = i + 1, env_db[i + 1]
        while j + 1 < n and env_db[j + 1] <= low + tol:
            j += 1
            low = min(low, env_db[j])
        seg = env_db[i:j + 1]
        if seg.size >= min_len:
            top, bottom = start + options.fit_db[0], max(start + options.fit_db[1], floor + 5.0)
            k = np.flatnonzero((seg <= top) & (seg >= bottom))
            if k.size >= 3 and bottom < top - 5.0:
                slope = np.polyfit(k * hop, seg[k], 1)[0]
                if slope < 0:
                    out.append((i, -60.0 / slope, float(start - seg[min(early, seg.size - 1)])))
        i = j + 1
    return out


def estimate_room(samples: np.ndarray, *, sample_rate_hz: int = SAMPLE_RATE_HZ,
                  options: RoomOptions = RoomOptions(), min_decays: int = 10, max_s: float = 600.0) -> RoomEstimate:
    """RT60 and early drop of a recording (:class:`RoomEstimate`); None with fewer than ``min_decays`` decays.

    A recording longer than ``max_s`` is read as evenly spread 30 s pieces totalling ``max_s``.
    """
    x = np.asarray(samples)
    piece = int(30 * sample_rate_hz)
    if x.size > max_s * sample_rate_hz and x.size > piece:
        n = max(1, int(max_s // 30))
        starts = np.linspace(0, x.size - piece, n).astype(int)
        found = [d for s in starts for d in decays(envelope_db(x[s:s + piece], sample_rate_hz=sample_rate_hz,
                                                                options=options), options=options)]
    else:
        found = decays(envelope_db(x, sample_rate_hz=sample_rate_hz, options=options), options=options)
    if len(found) < min_decays:
        return RoomEstimate(None, None, len(found))
    times = np.array([t for t, _ in found])
    drops = np.array([d for _, d in found])
    raw = float(np.percentile(times, options.percentile))
    fastest = times <= raw
    rt60 = options.rt60_slope * raw + options.rt60_intercept
    return RoomEstimate(round(max(rt60, 0.0), 3), round(float(np.median(drops[fastest])), 2), len(found))


#: Centre frequencies (Hz) of the gammatone channels and modulation bands (Hz) of :func:`modulation_ratio_db`.
MODULATION_CHANNELS_HZ = tuple(float(f) for f in np.geomspace(125.0, 6000.0, 16))
MODULATION_BANDS_HZ = tuple(float(f) for f in np.geomspace(4.0, 128.0, 8))


def modulation_ratio_db(samples: np.ndarray, *, sample_rate_hz: int = SAMPLE_RATE_HZ,
                        max_s: float = 120.0) -> float | None:
    """Speech-to-reverberation modulation energy ratio in dB (SRMR-like; Falk, Zheng & Chan 2010).

    Each of 16 gammatone channels (125 Hz-6 kHz, scipy) gives a temporal envelope (power smoothed below 150 Hz,
    400 samples/s); each envelope is split into 8 modulation bands centred at 4-128 Hz (log-spaced, each from half
    an octave below its centre to half an octave above). The ratio is the energy of the four lowest bands (centred
    at 4-18 Hz: the syllable rhythm of speech) over that of the four highest (centred at 29-128 Hz: filled in by
    reverberation, which smears the envelope). Dry, close speech reads high; a reverberant room and a far talker
    lower it. At most ``max_s`` of audio is read (evenly spread 10 s pieces).
    None for less than 2 s of audio or a sample rate below 16 kHz.
    """
    from scipy.signal import butter, gammatone, lfilter, sosfilt

    x = np.asarray(samples)
    if sample_rate_hz < 16_000 or x.size < 2 * sample_rate_hz:
        return None
    piece = 10 * sample_rate_hz
    if x.size > max_s * sample_rate_hz:
        starts = np.linspace(0, x.size - piece, int(max_s // 10)).astype(int)
        x = np.concatenate([x[s:s + piece] for s in starts])
    x = x.astype(np.float64)  # after the pieces are cut: never a float64 copy of a whole long recording
    env_rate = 400
    step = sample_rate_hz // env_rate
    smooth = butter(2, 150.0, fs=sample_rate_hz, output="sos")
    bands = [butter(2, [f / 2 ** 0.5, min(f * 2 ** 0.5, 0.475 * env_rate)], btype="bandpass", fs=env_rate,
                    output="sos") for f in MODULATION_BANDS_HZ]
    energy = np.zeros((len(MODULATION_CHANNELS_HZ), len(MODULATION_BANDS_HZ)))  # shape: (channels, bands)
    for c, cf in enumerate(MODULATION_CHANNELS_HZ):
        b, a = gammatone(cf, "iir", fs=sample_rate_hz)
        y = lfilter(b, a, x)
        env = np.sqrt(np.clip(sosfilt(smooth, y * y), 0.0, None))[::step]
        energy[c] = [float(np.mean(sosfilt(sos, env) ** 2)) for sos in bands]
    high = float(energy[:, 4:].sum())
    if high <= 0:
        return None
    return round(10.0 * math.log10(float(energy[:, :4].sum()) / high), 2)
