"""Realistic degradations of rendered sessions: rooms, noise, overlapping speech, codecs, AGC.

Pure functions over float arrays (mono, ``sr`` samples per second, nominally in [-1, 1]); every random choice
comes from a seed or a ``numpy.random.Generator`` passed in, so the same inputs give the same output. They are
composed by ``bench/bench_realistic.py`` into recording conditions; the speech timing they change is reported
back so the truth stays exact:

- :func:`plan_timeline` places utterances on one timeline with gaps, long silences, interruptions and listener
  backchannels, choosing overlaps until a target share of speech is overlapped; :func:`overlap_share` measures it.
- :func:`place` builds one track per speaker from the placed clips.
- :func:`room_impulse_responses` (pyroomacoustics image-source shoebox room, RT60 from Sabine's formula, corrected
  once against the RT60 measured on the simulated response) and :func:`reverberate` (aligned to the direct
  sound, so utterance times do not move).
- :func:`hvac_noise`, :func:`babble_noise`, :func:`transient_noise`; :func:`mix_at_snr` scales noise to an SNR
  measured over the speech-active frames (:func:`active_power`).
- :func:`telephone` (300-3400 Hz band, 8 kHz, AMR-NB or mu-law through PyAV), :func:`lossy_codec` (mp3 or opus
  through PyAV), :func:`agc` (automatic gain control, a fast-attack slow-release compressor).

Codec outputs are re-aligned to their input by cross-correlation (encoder delay) and cut or padded to the
input's length, so truth times hold to within one sample.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import soxr
from scipy import signal as sps

__all__ = [
    "Clip",
    "Placement",
    "active_power",
    "agc",
    "babble_noise",
    "hvac_noise",
    "lossy_codec",
    "measure_snr_db",
    "mix_at_snr",
    "overlap_share",
    "place",
    "plan_timeline",
    "reverberate",
    "room_impulse_responses",
    "speech_union_s",
    "telephone",
    "transient_noise",
]

_FRAME_S = 0.02
_ACTIVE_BELOW_PEAK_DB = 40.0
SPEED_OF_SOUND = 343.0


# --------------------------------------------------------------------------- levels and SNR


def _frames_power(x: np.ndarray, sr: int, frame_s: float = _FRAME_S) -> np.ndarray:
    frame = max(1, int(round(frame_s * sr)))
    n = len(x) // frame
    if n == 0:
        return np.array([float(np.mean(np.square(x)))]) if len(x) else np.zeros(1)
    return np.mean(np.square(x[: n * frame].reshape(n, frame), dtype=np.float64), axis=1)


def active_power(x: np.ndarray, sr: int, *, below_peak_db: float = _ACTIVE_BELOW_PEAK_DB) -> float:
    """Mean power of the 20 ms frames within ``below_peak_db`` of the loudest frame (the speech-active frames).

    Used for SNR so that a recording with long silences is not judged quieter than its speech is.
    """
    p = _frames_power(np.asarray(x, dtype=np.float64), sr)
    peak = float(p.max()) if p.size else 0.0
    if peak <= 0:
        return 0.0
    return float(np.mean(p[p >= peak * 10 ** (-below_peak_db / 10)]))


def measure_snr_db(speech: np.ndarray, noise: np.ndarray, sr: int) -> float:
    """SNR in dB: :func:`active_power` of ``speech`` over the mean power of ``noise`` (all samples)."""
    pn = float(np.mean(np.square(np.asarray(noise, dtype=np.float64))))
    return 10 * np.log10(active_power(speech, sr) / pn)


def mix_at_snr(speech: np.ndarray, noise: np.ndarray, snr_db: float, sr: int) -> tuple[np.ndarray, np.ndarray]:
    """``speech + g * noise`` with ``g`` chosen so that :func:`measure_snr_db` is ``snr_db``.

    ``noise`` must be at least as long as ``speech`` (its first ``len(speech)`` samples are used).

    Returns
    -------
    (mix, scaled_noise)
    """
    noise = np.asarray(noise, dtype=np.float64)[: len(speech)]
    if len(noise) < len(speech):
        raise ValueError(f"noise has {len(noise)} samples, speech {len(speech)}")
    pn = float(np.mean(np.square(noise)))
    g = np.sqrt(active_power(speech, sr) / (pn * 10 ** (snr_db / 10)))
    scaled = g * noise
    return np.asarray(speech, dtype=np.float64) + scaled, scaled


def _unit_rms(x: np.ndarray) -> np.ndarray:
    rms = float(np.sqrt(np.mean(np.square(x))))
    return x / rms if rms > 0 else x


# --------------------------------------------------------------------------- noise sources


def hvac_noise(n: int, sr: int, rng: np.random.Generator, *, hum_hz: float = 50.0) -> np.ndarray:
    """Stationary ventilation-like noise of unit RMS.

    Brown-ish low-passed noise, a mains hum with harmonics, a broadband fan hiss and a slow (0.2 Hz) amplitude wobble.
    """
    white = rng.standard_normal(n)
    rumble = sps.sosfilt(sps.butter(2, 250, "lowpass", fs=sr, output="sos"), white)
    hiss = sps.sosfilt(sps.butter(2, [300, 3000], "bandpass", fs=sr, output="sos"), rng.standard_normal(n))
    t = np.arange(n) / sr
    hum = sum(np.sin(2 * np.pi * hum_hz * k * t + rng.uniform(0, 2 * np.pi)) / k for k in (1, 2, 3))
    x = 1.0 * _unit_rms(rumble) + 0.35 * _unit_rms(hiss) + 0.25 * _unit_rms(hum)
    x *= 1.0 + 0.1 * np.sin(2 * np.pi * 0.2 * t + rng.uniform(0, 2 * np.pi))
    return _unit_rms(x)


def babble_noise(streams: Sequence[np.ndarray], n: int, rng: np.random.Generator) -> np.ndarray:
    """Unit-RMS babble: each speech stream looped from a random offset to length ``n``, equalised and summed."""
    if not streams:
        raise ValueError("babble needs at least one speech stream")
    out = np.zeros(n)
    for s in streams:
        s = np.asarray(s, dtype=np.float64)
        if len(s) == 0:
            continue
        start = int(rng.integers(0, len(s)))
        reps = -(-(n + start) // len(s))
        out += _unit_rms(np.tile(s, reps)[start : start + n])
    return _unit_rms(out)


@dataclass(frozen=True)
class Transient:
    """One impulsive event of :func:`transient_noise`."""

    kind: str
    start_s: float
    end_s: float


def transient_noise(n: int, sr: int, rng: np.random.Generator, *, per_minute: float = 3.0,
                    peak: float = 0.5) -> tuple[np.ndarray, tuple[Transient, ...]]:
    """Impulsive noise: clicks and door slams.

    Clicks are 2-6 ms broadband pulses (pens, cups, a mouse); door slams a thud of 0.15-0.4 s (low-passed decaying
    noise). ``per_minute`` events on average (Poisson), each with a peak of ``peak`` (absolute) times 0.5 to 1.
    """
    out = np.zeros(n)
    events: list[Transient] = []
    count = int(rng.poisson(per_minute * n / sr / 60.0))
    for _ in range(count):
        at = int(rng.integers(0, max(1, n - sr // 2)))
        if rng.random() < 0.6:
            length = int(rng.uniform(0.002, 0.006) * sr)
            burst = rng.standard_normal(length) * np.exp(-np.arange(length) / (0.3 * length))
            kind = "click"
        else:
            length = int(rng.uniform(0.15, 0.4) * sr)
            env = np.exp(-np.arange(length) / (0.06 * sr))
            burst = sps.sosfilt(sps.butter(2, 400, "lowpass", fs=sr, output="sos"), rng.standard_normal(length)) * env
            kind = "door"
        burst = burst / np.max(np.abs(burst)) * peak * rng.uniform(0.5, 1.0)
        end = min(n, at + length)
        out[at:end] += burst[: end - at]
        events.append(Transient(kind, at / sr, end / sr))
    return out, tuple(sorted(events, key=lambda e: e.start_s))


# --------------------------------------------------------------------------- rooms


def room_impulse_responses(room_dim: Sequence[float], rt60_s: float, distances_m: Sequence[float], *,
                           sr: int, mic_height_m: float = 0.9, source_height_m: float = 1.2,
                           correct_rt60: bool = True) -> tuple[list[np.ndarray], float]:
    """Impulse responses from sources at ``distances_m`` (horizontal, in different directions) to one microphone.

    A shoebox room of ``room_dim`` metres; wall absorption and image-source order from Sabine's formula
    (``pyroomacoustics.inverse_sabine``) for ``rt60_s``. The image-source method overshoots the asked RT60 in
    small rooms; with ``correct_rt60`` the RT60 is measured on the simulated responses (Schroeder) and the
    absorption recomputed once for ``rt60_s**2 / measured``.

    Returns
    -------
    (rirs, measured_rt60_s)
        One response per source (float64), and the mean RT60 measured on them.
    """
    import pyroomacoustics as pra

    dim = np.asarray(room_dim, dtype=float)
    mic = np.array([dim[0] * 0.3, dim[1] * 0.5, mic_height_m])
    sources, used = [], []
    for k, d in enumerate(distances_m):
        # the first direction (15 degree steps from 36 + 120 k degrees) that fits, >= 60 degrees from the others
        for step in range(24):
            a = np.deg2rad(36 + 120 * k + 15 * step)
            pos = mic + np.array([d * np.cos(a), d * np.sin(a), source_height_m - mic_height_m])
            apart = all(abs((a - b + np.pi) % (2 * np.pi) - np.pi) >= np.deg2rad(59.9) for b in used)
            if apart and np.all((pos > 0.3) & (pos < dim - 0.3)):
                sources.append(pos)
                used.append(a)
                break
        else:
            raise ValueError(f"a source {d} m from the microphone does not fit in a {tuple(dim)} m room")

    def simulate(rt: float) -> tuple[list[np.ndarray], float]:
        e_abs, max_order = pra.inverse_sabine(rt, dim)
        room = pra.ShoeBox(dim, fs=sr, materials=pra.Material(e_abs), max_order=max_order)
        for pos in sources:
            room.add_source(pos)
        room.add_microphone(mic)
        room.compute_rir()
        rirs = [np.asarray(room.rir[0][k], dtype=np.float64) for k in range(len(sources))]
        measured = float(np.mean(room.measure_rt60()[0]))
        return rirs, measured

    rirs, measured = simulate(rt60_s)
    if correct_rt60 and measured > 0:
        rirs, measured = simulate(rt60_s * rt60_s / measured)
    return rirs, measured


def reverberate(track: np.ndarray, rir: np.ndarray) -> np.ndarray:
    """``track`` convolved with ``rir``, advanced so the direct sound stays at the original sample times.

    The response is cut before its direct-path peak (propagation delay and the simulator's filter delay), and
    the result has the length of ``track`` (the reverberant tail after its end is dropped).
    """
    lead = int(np.argmax(np.abs(rir)))
    out = sps.fftconvolve(np.asarray(track, dtype=np.float64), rir[lead:])
    return out[: len(track)]


# --------------------------------------------------------------------------- codecs and AGC


def agc(x: np.ndarray, sr: int, *, target_dbfs: float = -20.0, max_gain_db: float = 18.0,
        attack_s: float = 0.01, release_s: float = 0.5, floor_dbfs: float = -60.0) -> np.ndarray:
    """Automatic gain control as phones and conference devices apply it.

    The level is followed in 10 ms frames with a fast attack and a slow release; the gain brings it to
    ``target_dbfs`` (between ``-max_gain_db`` and ``+max_gain_db``), and is interpolated per sample. Quiet
    passages and silences are lifted (noise pumping), loud ones pulled down. Output is hard-limited to 0.99.
    """
    x = np.asarray(x, dtype=np.float64)
    frame = max(1, int(0.01 * sr))
    n = -(-len(x) // frame)
    padded = np.zeros(n * frame)
    padded[: len(x)] = x
    level = 10 * np.log10(np.mean(np.square(padded.reshape(n, frame)), axis=1) + 1e-12)
    a_att, a_rel = np.exp(-0.01 / attack_s), np.exp(-0.01 / release_s)
    env = np.empty(n)
    e = max(level[0], floor_dbfs)
    for i, v in enumerate(np.maximum(level, floor_dbfs)):
        a = a_att if v > e else a_rel
        e = a * e + (1 - a) * v
        env[i] = e
    gain_db = np.clip(target_dbfs - env, -max_gain_db, max_gain_db)
    centres = (np.arange(n) + 0.5) * frame
    g = 10 ** (np.interp(np.arange(len(x)), centres, gain_db) / 20)
    return np.clip(x * g, -0.99, 0.99)


def _align_to(reference: np.ndarray, y: np.ndarray, max_lag: int) -> np.ndarray:
    """``y`` shifted by the lag that best matches ``reference``, cut or zero-padded to its length.

    The lag (at most ``max_lag`` samples either way) maximises the cross-correlation.
    """
    n = len(reference)
    m = min(n, len(y))
    lag = 0
    if max_lag > 0 and m > 0:
        corr = sps.correlate(y[: m + max_lag], reference[:m], mode="full", method="fft")
        zero = m - 1  # index of lag 0 in the "full" output
        lo, hi = max(0, zero - max_lag), min(len(corr), zero + max_lag + 1)
        lag = int(np.argmax(corr[lo:hi])) + lo - zero
    src = y[lag:] if lag >= 0 else np.concatenate([np.zeros(-lag), y])
    out = np.zeros(n)
    k = min(n, len(src))
    out[:k] = src[:k]
    return out


def _av_roundtrip(x: np.ndarray, sr: int, *, container: str, codec: str, bit_rate: int | None,
                  sample_fmt: str) -> np.ndarray:
    """Encode mono float ``x`` at ``sr`` with PyAV (FFmpeg) and decode it back to float64 at ``sr``."""
    import av

    buf = io.BytesIO()
    with av.open(buf, "w", format=container) as out:
        stream = out.add_stream(codec, rate=sr)
        stream.layout = "mono"
        if bit_rate:
            stream.bit_rate = bit_rate
        pcm = np.clip(x, -1.0, 1.0)
        pcm = (np.round(pcm * 32767).astype(np.int16) if sample_fmt.startswith("s16") else pcm.astype(np.float32))
        frame = av.AudioFrame.from_ndarray(pcm.reshape(1, -1), format=sample_fmt, layout="mono")
        frame.sample_rate = sr
        for packet in stream.encode(frame):
            out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    buf.seek(0)
    chunks = []
    with av.open(buf, "r") as inp:
        resampler = av.AudioResampler(format="flt", layout="mono", rate=sr)
        for frame in inp.decode(audio=0):
            for f in resampler.resample(frame):
                chunks.append(f.to_ndarray().reshape(-1))
        for f in resampler.resample(None):
            chunks.append(f.to_ndarray().reshape(-1))
    return np.concatenate(chunks).astype(np.float64) if chunks else np.zeros(0)


_CODECS = {
    # name: (container, codec, sample format, native rate or None)
    "amr_nb": ("amr", "libopencore_amrnb", "s16", 8000),
    "mulaw": ("wav", "pcm_mulaw", "s16", 8000),
    "mp3": ("mp3", "libmp3lame", "s16p", None),
    "opus": ("ogg", "libopus", "s16", None),
}


def telephone(x: np.ndarray, sr: int, *, codec: str = "amr_nb", bit_rate: int = 12200,
              with_agc: bool = True) -> np.ndarray:
    """A phone line: AGC, 300-3400 Hz band, 8 kHz, a narrow-band codec, back to ``sr`` (length and timing kept).

    ``amr_nb`` is the GSM-AMR mobile codec at ``bit_rate`` 4750 to 12200 b/s; ``mulaw`` is G.711 (landline).
    """
    if codec not in ("amr_nb", "mulaw"):
        raise ValueError(f"telephone codec must be 'amr_nb' or 'mulaw', not {codec!r}")
    x = np.asarray(x, dtype=np.float64)
    y = agc(x, sr) if with_agc else x
    y = sps.sosfiltfilt(sps.butter(4, [300, 3400], "bandpass", fs=sr, output="sos"), y)
    narrow = soxr.resample(y, sr, 8000, quality="HQ")
    container, name, fmt, _ = _CODECS[codec]
    coded = _av_roundtrip(narrow, 8000, container=container, codec=name,
                          bit_rate=bit_rate if codec == "amr_nb" else None, sample_fmt=fmt)
    back = soxr.resample(coded, 8000, sr, quality="HQ")
    return _align_to(y, back, max_lag=int(0.05 * sr))


def lossy_codec(x: np.ndarray, sr: int, *, codec: str = "mp3", bit_rate: int = 16000) -> np.ndarray:
    """A low-bit-rate ``mp3`` (LAME) or ``opus`` round trip at ``sr`` (opus at 16 kHz), same length and timing."""
    if codec not in ("mp3", "opus"):
        raise ValueError(f"lossy codec must be 'mp3' or 'opus', not {codec!r}")
    container, name, fmt, _ = _CODECS[codec]
    coded = _av_roundtrip(np.asarray(x, dtype=np.float64), sr, container=container, codec=name,
                          bit_rate=bit_rate, sample_fmt=fmt)
    return _align_to(np.asarray(x, dtype=np.float64), coded, max_lag=int(0.1 * sr))


# --------------------------------------------------------------------------- timelines with overlaps


@dataclass(frozen=True)
class Clip:
    """One utterance to place: who says what, and its length in samples (after trimming)."""

    role: str
    text: str
    n_samples: int
    tags: tuple[str, ...] = ()


@dataclass(frozen=True)
class Placement:
    """Where :func:`plan_timeline` put a clip (``clip_index`` into the dialogue, or -1 for a backchannel)."""

    clip_index: int
    role: str
    text: str
    start_sample: int
    n_samples: int
    tags: tuple[str, ...] = field(default=())

    @property
    def end_sample(self) -> int:
        return self.start_sample + self.n_samples


def plan_timeline(dialogue: Sequence[Clip], backchannels: Mapping[str, Sequence[Clip]], *, sr: int, seed: int,
                  gap_s: float = 0.6, lead_s: float = 0.5, n_long_silences: int = 4,
                  long_silence_s: tuple[float, float] = (2.25, 5.0), n_medium_gaps: int = 3,
                  medium_gap_s: tuple[float, float] = (1.2, 1.6), target_overlap_share: float = 0.06,
                  backchannel_share: float = 0.5, interruption_s: tuple[float, float] = (0.3, 1.2)
                  ) -> tuple[Placement, ...]:
    """Place a dialogue on one timeline with silences, interruptions and backchannels.

    Each line follows the end of all speech so far after a gap drawn from ``[0.5, 1.5] * gap_s``; ``n_long_silences``
    lines (not the first two) follow a long silence, ``n_medium_gaps`` a medium gap (distractors under 2 s).
    Overlaps are then chosen in a seeded random order until the overlapped speech reaches about
    ``target_overlap_share`` of all speech: ``backchannel_share`` of it from the listener's short backchannel clips
    (``backchannels[role]``, tagged ``"backchannel"``) placed inside the other's turns of at least 3 s (not in
    their first or last 0.8 s), the rest from interruptions (a speaker switch whose next line starts
    ``interruption_s`` seconds before the current line ends, tagged ``"interruption"``; never after a long
    silence or medium gap).

    Returns
    -------
    tuple of Placement
        Sorted by start sample (ties: dialogue order).
    """
    rng = np.random.default_rng(seed)
    n = len(dialogue)
    gaps = [gap_s * rng.uniform(0.5, 1.5) for _ in range(n)]
    gaps[0] = lead_s
    kinds = ["gap"] * n
    eligible = list(range(2, n))
    long_idx = [int(i) for i in rng.choice(eligible, size=min(n_long_silences, len(eligible)), replace=False)]
    for i, d in zip(long_idx, np.linspace(*long_silence_s, len(long_idx)), strict=True):
        gaps[i], kinds[i] = float(d), "long"
    free = [i for i in eligible if kinds[i] == "gap"]
    for i in (int(i) for i in rng.choice(free, size=min(n_medium_gaps, len(free)), replace=False)):
        gaps[i], kinds[i] = float(rng.uniform(*medium_gap_s)), "medium"

    total_speech = sum(c.n_samples for c in dialogue) / sr
    budget_int = target_overlap_share * total_speech * (1 - backchannel_share)
    budget_bc = target_overlap_share * total_speech * backchannel_share
    overlap_before = [0.0] * n
    switches = [i for i in range(1, n) if kinds[i] == "gap" and dialogue[i].role != dialogue[i - 1].role]
    for i in (int(i) for i in rng.permutation(switches)):
        if budget_int <= 0:
            break
        ov = min(float(rng.uniform(*interruption_s)), 0.5 * dialogue[i - 1].n_samples / sr,
                 dialogue[i].n_samples / sr)
        overlap_before[i] = ov
        budget_int -= ov

    placements: list[Placement] = []
    cursor = 0
    for i, c in enumerate(dialogue):
        if overlap_before[i] > 0:
            start = max(placements[-1].start_sample + 1, cursor - int(round(overlap_before[i] * sr)))
            tags = (*c.tags, "interruption")
        else:
            start = cursor + int(round(gaps[i] * sr))
            tags = c.tags + (("long_silence_before",) if kinds[i] == "long" else ())
        placements.append(Placement(i, c.role, c.text, start, c.n_samples, tags))
        cursor = max(cursor, start + c.n_samples)

    hosts = [p for p in placements if p.n_samples >= 3 * sr]
    margin = int(0.8 * sr)
    taken: list[tuple[int, int]] = []
    for k in (int(k) for k in rng.permutation(len(hosts))):
        if budget_bc <= 0:
            break
        host = hosts[k]
        listener = next((r for r in backchannels if r != host.role and backchannels[r]), None)
        if listener is None:
            continue
        bc = backchannels[listener][int(rng.integers(0, len(backchannels[listener])))]
        lo, hi = host.start_sample + margin, host.end_sample - margin - bc.n_samples
        if hi <= lo:
            continue
        start = int(rng.integers(lo, hi))
        # not on top of another overlap (an interruption at the host's ends is outside the margin anyway)
        if any(start < e and start + bc.n_samples > s for s, e in taken):
            continue
        taken.append((start, start + bc.n_samples))
        placements.append(Placement(-1, listener, bc.text, start, bc.n_samples, (*bc.tags, "backchannel")))
        budget_bc -= bc.n_samples / sr
    return tuple(sorted(placements, key=lambda p: (p.start_sample, p.clip_index < 0)))


def place(placements: Sequence[Placement], clips: Sequence[np.ndarray], n: int) -> np.ndarray:
    """Sum ``clips[k]`` at ``placements[k].start_sample`` into an array of ``n`` samples (one speaker's track)."""
    out = np.zeros(n)
    for p, clip in zip(placements, clips, strict=True):
        if len(clip) != p.n_samples:
            raise ValueError(f"clip of {len(clip)} samples placed as {p.n_samples}")
        out[p.start_sample : p.end_sample] += clip
    return out


def _union(intervals: Sequence[tuple[float, float]]) -> list[tuple[float, float]]:
    merged: list[list[float]] = []
    for s, e in sorted(intervals):
        if merged and s <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], e)
        else:
            merged.append([s, e])
    return [(s, e) for s, e in merged]


def speech_union_s(intervals: Sequence[tuple[float, float]]) -> float:
    """Total length of the union of ``(start, end)`` intervals."""
    return sum(e - s for s, e in _union(intervals))


def overlap_regions(intervals_by_speaker: Mapping[str, Sequence[tuple[float, float]]]) -> list[tuple[float, float]]:
    """Where two or more speakers' intervals overlap (merged)."""
    unions = {k: _union(v) for k, v in intervals_by_speaker.items()}
    keys = sorted(unions)
    out = []
    for a_i, a in enumerate(keys):
        for b in keys[a_i + 1 :]:
            for s1, e1 in unions[a]:
                for s2, e2 in unions[b]:
                    s, e = max(s1, s2), min(e1, e2)
                    if e > s:
                        out.append((s, e))
    return _union(out)


def overlap_share(placements: Sequence[Placement], sr: int) -> float:
    """Overlapped speech (two speakers at once) as a share of all speech (the union of every placement)."""
    by_role: dict[str, list[tuple[float, float]]] = {}
    for p in placements:
        by_role.setdefault(p.role, []).append((p.start_sample / sr, p.end_sample / sr))
    total = speech_union_s([iv for v in by_role.values() for iv in v])
    return sum(e - s for s, e in overlap_regions(by_role)) / total if total else 0.0


# --------------------------------------------------------------------------- speaker-attributed scoring


@dataclass(frozen=True)
class Segment:
    """One stretch of text spoken by one speaker (a truth utterance, or one recognised word)."""

    speaker: str
    start_s: float
    end_s: float
    text: str


def _seglst(segments: Sequence[Segment], normalise: Callable[[str], str], session: str) -> list[dict]:
    out = []
    for s in segments:
        words = normalise(s.text)
        if words.strip():
            out.append({"session_id": session, "speaker": s.speaker, "start_time": float(s.start_s),
                        "end_time": float(max(s.end_s, s.start_s)), "words": words})
    return out


def speaker_attributed_wers(reference: Sequence[Segment], hypothesis: Sequence[Segment], *,
                            normalise: Callable[[str], str], collar_s: float = 5.0,
                            role_of: Mapping[str, str] | None = None) -> dict[str, Any]:
    """cpWER, tcpWER (``meeteval``) and the WER of each reference speaker, after ``normalise`` on every segment.

    - **cpWER** (CHiME-6): each speaker's words concatenated in time order, hypothesis speakers matched to
      reference speakers by the permutation with the fewest errors; a word given to the wrong speaker costs a
      deletion and an insertion.
    - **tcpWER** (CHiME-7/8): the same with a time constraint: a hypothesis word can only match a reference word
      whose span (a pseudo-word timing inside its utterance, widened by ``collar_s``) it overlaps.
    - **per-speaker WER** (``wer_by_speaker``): hypothesis speakers mapped by ``role_of`` (diarization label ->
      reference speaker, e.g. the pipeline's roles; default the cpWER assignment), then each reference
      speaker's stream scored against the words given to that speaker (WER of the therapist, of the client).

    Returns counts too (``*_errors``, ``*_length``) so rows can be pooled by reference words.
    """
    from meeteval.wer.wer.cp import cp_word_error_rate
    from meeteval.wer.wer.siso import siso_word_error_rate
    from meeteval.wer.wer.time_constrained import time_constrained_minimum_permutation_word_error_rate

    ref = _seglst(reference, normalise, "s")
    hyp = _seglst(hypothesis, normalise, "s")
    ref_speakers = sorted({s["speaker"] for s in ref})
    if not ref:
        return {}
    hyp_or_empty = hyp or [{"session_id": "s", "speaker": "none", "start_time": 0.0, "end_time": 0.0, "words": ""}]
    cp = cp_word_error_rate(ref, hyp_or_empty)
    tcp = time_constrained_minimum_permutation_word_error_rate(ref, hyp_or_empty, collar=collar_s)
    if role_of is None:
        role_of = {h: r for r, h in cp.assignment if r is not None and h is not None}
    out: dict[str, Any] = {"cpwer": cp.error_rate, "cpwer_errors": cp.errors, "cpwer_length": cp.length,
                           "tcpwer": tcp.error_rate, "tcpwer_errors": tcp.errors, "tcpwer_length": tcp.length,
                           "tcpwer_collar_s": collar_s, "wer_by_speaker": {}}
    for spk in ref_speakers:
        ref_words = " ".join(s["words"] for s in sorted(ref, key=lambda s: s["start_time"]) if s["speaker"] == spk)
        hyp_words = " ".join(s["words"] for s in sorted(hyp, key=lambda s: s["start_time"])
                             if role_of.get(s["speaker"]) == spk)
        er = siso_word_error_rate(ref_words, hyp_words)
        out["wer_by_speaker"][spk] = {"wer": er.error_rate, "errors": er.errors, "length": er.length}
    return out
