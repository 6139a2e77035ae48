"""Audio in: decode, validate at the boundary, down-mix and resample to 16 kHz mono.

Formats: anything libsndfile reads (wav, flac, ogg/vorbis/opus, mp3) and, through PyAV (bundled with
faster-whisper), m4a/aac/mp4. The session key is the SHA-256 of the file's bytes.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from pipeline.errors import (
    AudioEmptyError,
    AudioMissingError,
    AudioSilentError,
    AudioTooShortError,
    AudioUnreadableError,
    ConfigError,
)
from pipeline.types import SAMPLE_RATE_HZ, Audio

_PYAV_SUFFIXES = frozenset({".m4a", ".mp4", ".aac", ".m4b", ".webm"})


@dataclass(frozen=True)
class AudioOptions:
    """Validation thresholds for incoming recordings.

    Attributes
    ----------
    min_duration_s : float
        Recordings shorter than this are refused (too short to diarize or transcribe meaningfully).
    silence_threshold_dbfs : float
        A recording whose loudest 50 ms frame has an RMS level below this is refused as silent.
    """

    min_duration_s: float = 1.0
    silence_threshold_dbfs: float = -50.0

    def __post_init__(self) -> None:
        if not self.min_duration_s >= 0:
            raise ConfigError(f"min_duration_s must be >= 0, got {self.min_duration_s!r}")
        if not self.silence_threshold_dbfs < 0:
            raise ConfigError(f"silence_threshold_dbfs must be < 0, got {self.silence_threshold_dbfs!r}")


def sha256_of(path: Path) -> str:
    """Hex SHA-256 of the file's bytes (the session key)."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _riff_shortfall(path: Path) -> tuple[int, int] | None:
    """For a RIFF/WAVE file, ``(declared, present)`` bytes of its data chunk when the file is cut short.

    libsndfile silently reads what is there, so a truncated upload would pass unnoticed.
    """
    size = path.stat().st_size
    with path.open("rb") as fh:
        head = fh.read(12)
        if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
            return None
        pos = 12
        while pos + 8 <= size:
            fh.seek(pos)
            chunk = fh.read(8)
            chunk_id, chunk_size = chunk[:4], int.from_bytes(chunk[4:8], "little")
            if chunk_id == b"data":
                present = size - (pos + 8)
                # 0 and 0xFFFFFFFF mark streamed files whose size was never written
                if chunk_size not in (0, 0xFFFFFFFF) and present < chunk_size:
                    return chunk_size, present
                return None
            pos += 8 + chunk_size + (chunk_size & 1)
    return None


def _decode_soundfile(path: Path) -> tuple[np.ndarray, int, str]:
    try:
        info = sf.info(str(path))
        data, rate = sf.read(str(path), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as e:
        raise AudioUnreadableError(f"{path.name}: not a readable audio file ({e})") from e
    shortfall = _riff_shortfall(path) if info.format in {"WAV", "WAVEX"} else None
    if shortfall is not None:
        declared, present = shortfall
        raise AudioUnreadableError(
            f"{path.name}: truncated: the header declares {declared} bytes of audio but the file holds {present}"
        )
    return data, int(rate), str(info.format)


def _decode_pyav(path: Path) -> tuple[np.ndarray, int, str]:
    try:
        import av
    except ImportError as e:  # pragma: no cover - av ships with faster-whisper
        raise AudioUnreadableError(f"{path.name}: {path.suffix} needs PyAV (`pip install av`)") from e
    try:
        with av.open(str(path)) as container:
            stream = next(s for s in container.streams if s.type == "audio")
            rate = int(stream.rate)
            chunks = [frame.to_ndarray() for frame in container.decode(stream)]
    except (StopIteration, av.error.FFmpegError, ValueError) as e:
        raise AudioUnreadableError(f"{path.name}: not a readable audio file ({e})") from e
    if not chunks:
        return np.zeros((0, 1), dtype=np.float32), rate, path.suffix.lstrip(".").upper()
    # PyAV gives (channels, samples) for planar formats and (1, samples*channels) for packed ones.
    planar = [c if c.ndim == 2 else c[np.newaxis, :] for c in chunks]
    data = np.concatenate(planar, axis=1).T.astype(np.float32)
    if np.issubdtype(chunks[0].dtype, np.integer):
        data /= float(np.iinfo(chunks[0].dtype).max)
    return data, rate, path.suffix.lstrip(".").upper()


def frame_rms_dbfs(samples: np.ndarray, *, sample_rate_hz: int, frame_ms: float = 50.0) -> np.ndarray:
    """RMS level of consecutive non-overlapping frames, in dBFS.

    Parameters
    ----------
    samples : np.ndarray, shape (n_samples,)
    sample_rate_hz : int
    frame_ms : float

    Returns
    -------
    np.ndarray, shape (n_frames,)
    """
    frame = max(1, int(sample_rate_hz * frame_ms / 1000))
    n = len(samples) // frame
    if n == 0:
        return np.full(1, 20 * np.log10(np.sqrt(np.mean(samples**2)) + 1e-12)) if len(samples) else np.zeros(0)
    out = np.empty(n)
    block = 4096  # frames per block: bounded memory on long recordings (a float64 copy of 90 min is 690 MB)
    for first in range(0, n, block):
        frames = samples[first * frame: min(n, first + block) * frame].reshape(-1, frame).astype(np.float64)
        out[first: first + len(frames)] = np.mean(frames**2, axis=1)
    return 20 * np.log10(np.sqrt(out) + 1e-12)


def load_audio(path: Path, *, options: AudioOptions = AudioOptions()) -> Audio:
    """Decode and validate a recording.

    Parameters
    ----------
    path : Path
        The recording.
    options : AudioOptions
        Validation thresholds.

    Returns
    -------
    Audio
        Mono float32 samples at 16 kHz, shape (n_samples,), with the file's SHA-256.

    Raises
    ------
    AudioMissingError, AudioEmptyError, AudioUnreadableError, AudioTooShortError, AudioSilentError
        Each names the file and what is wrong with it.
    """
    path = Path(path)
    if not path.is_file():
        raise AudioMissingError(f"{path}: no such file")
    if path.stat().st_size == 0:
        raise AudioEmptyError(f"{path.name}: the file is empty (0 bytes)")
    digest = sha256_of(path)
    if path.suffix.lower() in _PYAV_SUFFIXES:
        data, rate, fmt = _decode_pyav(path)
    else:
        data, rate, fmt = _decode_soundfile(path)
    if data.shape[0] == 0:
        raise AudioEmptyError(f"{path.name}: the file holds no audio samples")
    channels = data.shape[1]
    mono = data.mean(axis=1, dtype=np.float32) if channels > 1 else data[:, 0]
    del data
    if rate != SAMPLE_RATE_HZ:
        mono = soxr.resample(mono, rate, SAMPLE_RATE_HZ, quality="HQ")
    mono = np.ascontiguousarray(mono, dtype=np.float32)  # a copy only where needed: no whole-file temporaries
    np.clip(mono, -1.0, 1.0, out=mono)
    duration_s = len(mono) / SAMPLE_RATE_HZ
    if duration_s < options.min_duration_s:
        raise AudioTooShortError(
            f"{path.name}: {duration_s:.2f} s of audio is shorter than the minimum of {options.min_duration_s:.2f} s"
        )
    loudest = float(frame_rms_dbfs(mono, sample_rate_hz=SAMPLE_RATE_HZ).max())
    if loudest < options.silence_threshold_dbfs:
        raise AudioSilentError(
            f"{path.name}: the recording is silent (loudest 50 ms frame {loudest:.1f} dBFS, "
            f"threshold {options.silence_threshold_dbfs:.1f} dBFS)"
        )
    return Audio(
        samples=mono,
        sample_rate_hz=SAMPLE_RATE_HZ,
        sha256=digest,
        source_path=str(path),
        source_format=fmt,
        source_sample_rate_hz=rate,
        source_channels=channels,
    )
