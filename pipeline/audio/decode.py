"""Audio in: decode, validate at the boundary, down-mix and resample to 16 kHz mono.

Formats: anything libsndfile reads (wav, flac, ogg/vorbis/opus, mp3) and, through PyAV (bundled with
faster-whisper), m4a/aac/mp4. The session key is the SHA-256 of the file's bytes.

A command opens a recording twice: :func:`check_audio` reads its header and hashes it through one file handle
(libsndfile reads the header from that handle too), and :func:`load_audio`, handed that check, opens it once
more to decode it (PyAV's formats: once more to read the header).

Hostile files are refused before anything is decoded. Only regular files are opened (a FIFO, a directory or
a device named ``x.wav`` is refused without opening it: reading a FIFO would block forever). The header's
claims are checked for plausibility first: a sample rate from :data:`MIN_SAMPLE_RATE_HZ` to
:data:`MAX_SAMPLE_RATE_HZ`, 1 to :data:`MAX_CHANNELS` channels, a declared duration of at most
``AudioOptions.max_duration_s`` (4 h by default) and, for WAV and AU, declared audio data that the file
actually holds (a 470 KB WAV whose header claims 8 Hz once decoded to 8 hours of audio and a 5.9 GB
resampling buffer). Decoding then runs in blocks of :data:`BLOCK_FRAMES` frames that are down-mixed and
resampled as they come, so memory is bounded by the 16 kHz mono result (at most ``max_duration_s`` of it,
about 0.9 GB for 4 h, twice that while it is joined), never by what a header claims or by the source's
rate and channel count; decoding stops as soon as more audio comes out than the limit allows.
"""

from __future__ import annotations

import hashlib
import math
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np
import soundfile as sf
import soxr

from pipeline.errors import (
    AudioChannelsError,
    AudioEmptyError,
    AudioMissingError,
    AudioNonFiniteError,
    AudioNotAFileError,
    AudioSampleRateError,
    AudioSilentError,
    AudioTooLongError,
    AudioTooShortError,
    AudioTruncatedError,
    AudioUnreadableError,
    ConfigError,
)
from pipeline.types import SAMPLE_RATE_HZ, Audio

_PYAV_SUFFIXES = frozenset({".m4a", ".mp4", ".aac", ".m4b", ".webm"})

#: Plausible sample rates: telephone speech is 8 kHz; nothing below 4 kHz carries speech, and 384 kHz is
#: the highest rate audio interfaces record at.
MIN_SAMPLE_RATE_HZ = 4_000
MAX_SAMPLE_RATE_HZ = 384_000
#: Most channels a session recording may have (a stereo recorder, a small multi-microphone array).
MAX_CHANNELS = 8
#: Default longest recording accepted (``AudioOptions.max_duration_s``): a session is at most a few hours.
MAX_DURATION_S = 4 * 3600.0
#: A down-mix holding less than this share of the channels' mean energy cancels (-20 dB: phase-inverted
#: channels); the loudest channel is then used alone (see ``_MonoResampler.cancelling_channel``).
CANCELLING_MIX_RATIO = 0.01
#: Source frames decoded, down-mixed and resampled at a time (8 channels of float32: 8 MiB).
BLOCK_FRAMES = 1 << 18


@dataclass(frozen=True)
class AudioOptions:
    """Validation thresholds for incoming recordings.

    Attributes
    ----------
    min_duration_s : float
        Recordings shorter than this are refused (too short to diarize or transcribe meaningfully).
    silence_threshold_dbfs : float
        A recording whose loudest 50 ms frame has an RMS level below this is refused as silent.
    max_duration_s : float
        Recordings declaring (or decoding to) more than this are refused before (or while) decoding.
    """

    min_duration_s: float = 1.0
    silence_threshold_dbfs: float = -50.0
    max_duration_s: float = MAX_DURATION_S

    def __post_init__(self) -> None:
        if not self.min_duration_s >= 0:
            raise ConfigError(f"min_duration_s must be >= 0, got {self.min_duration_s!r}")
        if not (math.isfinite(self.max_duration_s) and self.max_duration_s > self.min_duration_s):
            raise ConfigError(f"max_duration_s must be finite and > min_duration_s, got {self.max_duration_s!r}")
        if not self.silence_threshold_dbfs < 0:
            raise ConfigError(f"silence_threshold_dbfs must be < 0, got {self.silence_threshold_dbfs!r}")


_KINDS = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISSOCK, "a socket"),
          (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"))


def not_a_file_reason(mode: int) -> str | None:
    """What a non-regular file is (``"a FIFO (named pipe)"``, ...), or None for a regular file."""
    if stat.S_ISREG(mode):
        return None
    return next((what for test, what in _KINDS if test(mode)), "not a regular file")


def check_regular_file(path: Path) -> os.stat_result:
    """The file's status, after making sure it is a regular file (following symbolic links).

    Raises
    ------
    AudioMissingError
        Nothing is there.
    AudioNotAFileError
        A directory, FIFO, socket or device: never opened (opening a FIFO for reading blocks forever).
    """
    try:
        st = Path(path).stat()
    except FileNotFoundError as e:
        raise AudioMissingError(f"{path}: no such file") from e
    except OSError as e:
        raise AudioUnreadableError(f"{Path(path).name}: cannot be read ({e.strerror})") from e
    what = not_a_file_reason(st.st_mode)
    if what is not None:
        raise AudioNotAFileError(f"{Path(path).name}: {what}, not a regular file: not read")
    return st


def open_regular(path: Path) -> BinaryIO:
    """The file opened for reading, after :func:`check_regular_file`; refused unless what was opened is regular.

    Raises
    ------
    AudioMissingError, AudioNotAFileError
        From :func:`check_regular_file`: a FIFO or device is never opened, so reading cannot block.
    OSError
        The file cannot be opened.
    """
    check_regular_file(path)
    # O_NONBLOCK: should the path be swapped for a FIFO after the check, opening it does not block
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    fh = os.fdopen(fd, "rb")
    if not stat.S_ISREG(os.fstat(fh.fileno()).st_mode):
        fh.close()
        raise AudioNotAFileError(f"{Path(path).name}: not a regular file: not read")
    return fh


def sha256_of(path: Path, fh: BinaryIO | None = None) -> str:
    """Hex SHA-256 of the file's bytes (the session key), read in 1 MiB blocks.

    ``fh``: the file already opened (:func:`open_regular`), hashed from its start without opening it again.

    Raises
    ------
    AudioMissingError, AudioNotAFileError
        From :func:`open_regular`.
    OSError
        The file cannot be read.
    """
    if fh is None:
        with open_regular(path) as own:
            return sha256_of(path, own)
    digest = hashlib.sha256()
    fh.seek(0)
    while chunk := fh.read(1 << 20):
        digest.update(chunk)
    return digest.hexdigest()


@dataclass(frozen=True)
class Declared:
    """What a recording's header claims, read without decoding.

    ``frames`` is None where the container does not say; ``data_bytes``/``present_bytes`` are the audio
    data the header declares and the bytes the file holds after it (WAV and AU), else None.
    """

    format: str
    sample_rate_hz: int
    channels: int
    frames: int | None
    data_bytes: int | None = None
    present_bytes: int | None = None


def _riff_header(fh: BinaryIO, size: int) -> Declared | None:
    """The ``fmt `` and ``data`` chunks of a RIFF/WAVE file, or None for anything else."""
    fh.seek(0)
    head = fh.read(12)
    if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
        return None
    rate = channels = block_align = None
    pos = 12
    while pos + 8 <= size:
        fh.seek(pos)
        chunk = fh.read(8)
        chunk_id, chunk_size = chunk[:4], int.from_bytes(chunk[4:8], "little")
        if chunk_id == b"fmt " and chunk_size >= 16:
            fmt = fh.read(16)
            if len(fmt) == 16:
                channels = int.from_bytes(fmt[2:4], "little")
                rate = int.from_bytes(fmt[4:8], "little")
                block_align = int.from_bytes(fmt[12:14], "little")
        elif chunk_id == b"data":
            if rate is None or channels is None:
                return None  # no format before the data: let the decoder say what is wrong
            present = size - (pos + 8)
            # 0 and 0xFFFFFFFF mark streamed files whose size was never written: what is there counts
            declared = present if chunk_size in (0, 0xFFFFFFFF) else chunk_size
            frames = declared // block_align if block_align else None
            return Declared("WAV", rate, channels, frames, declared, present)
        pos += 8 + chunk_size + (chunk_size & 1)
    return None


#: AU (Sun/NeXT ``.snd``) encodings -> bytes per sample (PCM, float, mu-law, A-law).
_AU_SAMPLE_BYTES = {1: 1, 2: 1, 3: 2, 4: 3, 5: 4, 6: 4, 7: 8, 27: 1}


def _au_header(fh: BinaryIO, size: int) -> Declared | None:
    """The 24-byte header of an AU file, or None for anything else."""
    fh.seek(0)
    head = fh.read(24)
    if len(head) < 24 or head[:4] != b".snd":
        return None
    offset, data_size, encoding, rate, channels = (int.from_bytes(head[i:i + 4], "big") for i in range(4, 24, 4))
    present = max(0, size - offset)
    declared = present if data_size == 0xFFFFFFFF else data_size
    width = _AU_SAMPLE_BYTES.get(encoding)
    frames = declared // (width * channels) if width and channels else None
    return Declared("AU", rate, channels, frames, declared, present)


def _probe(path: Path, size: int, fh: BinaryIO) -> Declared:
    """What the header claims, without decoding, read through ``fh`` (the file ``path`` opened).

    Parsed directly for WAV and AU (whose claims libsndfile clamps or rejects without saying why), from
    libsndfile (through ``fh``) or PyAV (which opens ``path``) otherwise.
    """
    declared = _riff_header(fh, size) or _au_header(fh, size)
    if declared is not None:
        return declared
    if path.suffix.lower() in _PYAV_SUFFIXES:
        return _probe_pyav(path)
    try:
        fh.seek(0)
        try:
            info = sf.info(fh)
        except sf.LibsndfileError:  # libsndfile guesses a headerless format (.mp3, .vox...) from a file's name
            info = sf.info(str(path))
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as e:
        if "channel" in str(e).lower():
            raise AudioChannelsError(f"{path.name}: implausible channel count in the header ({e})") from e
        raise AudioUnreadableError(f"{path.name}: not a readable audio file ({e})") from e
    return Declared(str(info.format), int(info.samplerate), int(info.channels),
                    int(info.frames) if 0 <= info.frames < 1 << 62 else None)


def _probe_pyav(path: Path) -> Declared:
    av = _import_av(path)
    try:
        with av.open(str(path)) as container:
            stream = next(s for s in container.streams if s.type == "audio")
            rate, channels = int(stream.rate or 0), int(stream.codec_context.channels or 0)
            if stream.duration is not None and stream.time_base is not None:
                seconds = float(stream.duration * stream.time_base)
            elif container.duration is not None:
                seconds = container.duration / 1_000_000
            else:
                seconds = None
    except (StopIteration, av.error.FFmpegError, ValueError) as e:
        raise AudioUnreadableError(f"{path.name}: not a readable audio file ({e})") from e
    frames = int(seconds * rate) if seconds is not None and rate > 0 and math.isfinite(seconds) else None
    return Declared(path.suffix.lstrip(".").upper(), rate, channels, frames)


def check_declared(path: Path, declared: Declared, *, max_duration_s: float) -> None:
    """Refuse a header whose claims are implausible, before anything is decoded.

    Raises
    ------
    AudioSampleRateError, AudioChannelsError, AudioTruncatedError, AudioTooLongError, AudioEmptyError
        Each names the claim and the bound.
    """
    name, rate, channels = path.name, declared.sample_rate_hz, declared.channels
    if not MIN_SAMPLE_RATE_HZ <= rate <= MAX_SAMPLE_RATE_HZ:
        raise AudioSampleRateError(f"{name}: the header declares a sample rate of {rate} Hz; accepted are "
                                   f"{MIN_SAMPLE_RATE_HZ} to {MAX_SAMPLE_RATE_HZ} Hz")
    if not 1 <= channels <= MAX_CHANNELS:
        raise AudioChannelsError(f"{name}: the header declares {channels} channels; accepted are 1 to "
                                 f"{MAX_CHANNELS}")
    if declared.data_bytes is not None and declared.present_bytes is not None \
            and declared.present_bytes < declared.data_bytes:
        raise AudioTruncatedError(f"{name}: truncated: the header declares {declared.data_bytes} bytes of audio "
                                  f"but the file holds {declared.present_bytes}")
    if declared.data_bytes is not None and declared.frames == 0:  # WAV/AU: exact, nothing to decode
        raise AudioEmptyError(f"{name}: the file holds no audio samples")
    if declared.frames is not None and declared.frames / rate > max_duration_s:
        raise AudioTooLongError(f"{name}: the header declares {declared.frames / rate / 3600:.1f} h of audio; "
                                f"at most {max_duration_s / 3600:g} h are accepted")


class _MonoResampler:
    """Down-mix blocks of ``(frames, channels)`` float32 and resample them to 16 kHz as they come.

    Counts the source frames and stops with :class:`AudioTooLongError` past ``max_frames``, and with
    :class:`AudioNonFiniteError` at the first NaN or infinite sample; the output is identical to down-mixing
    and resampling the whole signal at once. ``channel``: take that channel alone instead of the mean.
    Keeps each channel's energy and the mix's, so :meth:`cancelling_channel` can tell a down-mix that
    cancels (phase-inverted channels).
    """

    def __init__(self, path: Path, rate: int, max_frames: int, channel: int | None = None) -> None:
        self.path, self.rate, self.max_frames, self.channel = path, rate, max_frames, channel
        self.frames = 0
        self.channels = 0
        self.parts: list[np.ndarray] = []
        self.mix_energy = 0.0
        self.channel_energy = np.zeros(0)
        self.stream = (soxr.ResampleStream(rate, SAMPLE_RATE_HZ, 1, dtype="float32", quality="HQ")
                       if rate != SAMPLE_RATE_HZ else None)

    def add(self, block: np.ndarray) -> None:
        if not np.isfinite(block).all():
            at = (self.frames + int(np.argmin(np.isfinite(block).all(axis=1)))) / max(self.rate, 1)
            raise AudioNonFiniteError(f"{self.path.name}: NaN or infinite samples (first at {at:.2f} s): a broken "
                                      "floating-point file; re-export the recording")
        self.frames += block.shape[0]
        self.channels = max(self.channels, block.shape[1])
        if self.frames > self.max_frames:
            raise AudioTooLongError(f"{self.path.name}: more than {self.max_frames / self.rate / 3600:g} h of "
                                    "audio decoded (more than the header declared): stopped")
        if self.channel is not None:
            mono = np.array(block[:, min(self.channel, block.shape[1] - 1)], dtype=np.float32, copy=True)
        elif block.shape[1] > 1:
            mono = block.mean(axis=1, dtype=np.float32)
            energy = np.einsum("ij,ij->j", block, block, dtype=np.float64)
            if self.channel_energy.shape != energy.shape:
                self.channel_energy = np.resize(self.channel_energy, energy.shape)
            self.channel_energy += energy
            self.mix_energy += float(np.dot(mono, mono))
        else:  # a copy: the decoder may reuse its block buffer
            mono = np.array(block[:, 0], dtype=np.float32, copy=True)
        self.parts.append(self.stream.resample_chunk(mono) if self.stream is not None else mono)

    def cancelling_channel(self) -> int | None:
        """The loudest channel when the down-mix cancels, else None.

        Cancels: the mix holds less than :data:`CANCELLING_MIX_RATIO` of the channels' mean energy per
        channel. The mean of two identical channels keeps all of it, of two unrelated ones about half; of
        a channel and its phase-inverted copy (a miswired microphone) nothing, and the recording would look
        silent.
        """
        if self.channel is not None or self.channel_energy.size < 2:
            return None
        mean_channel = float(self.channel_energy.mean())
        if mean_channel > 0 and self.mix_energy < CANCELLING_MIX_RATIO * mean_channel:
            return int(np.argmax(self.channel_energy))
        return None

    def result(self) -> np.ndarray:
        if self.stream is not None:
            self.parts.append(self.stream.resample_chunk(np.zeros(0, dtype=np.float32), last=True))
        out = np.concatenate(self.parts) if self.parts else np.zeros(0, dtype=np.float32)
        self.parts = []
        return out


def _decode_soundfile(path: Path, declared: Declared, max_duration_s: float, channel: int | None = None
                      ) -> tuple[np.ndarray, int, str, int, int, int | None]:
    try:
        with sf.SoundFile(str(path)) as f:
            rate, fmt = int(f.samplerate), str(f.format)
            check_declared(path, Declared(fmt, rate, int(f.channels), None), max_duration_s=max_duration_s)
            out = _MonoResampler(path, rate, math.ceil(max_duration_s * rate), channel)
            for block in f.blocks(blocksize=BLOCK_FRAMES, dtype="float32", always_2d=True):
                out.add(block)
            channels = int(f.channels)
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as e:
        if "channel" in str(e).lower():
            raise AudioChannelsError(f"{path.name}: implausible channel count in the header ({e})") from e
        raise AudioUnreadableError(f"{path.name}: not a readable audio file ({e})") from e
    return out.result(), rate, fmt, channels, out.frames, out.cancelling_channel()


def _import_av(path: Path):  # the av module
    try:
        import av
    except ImportError as e:  # pragma: no cover - av ships with faster-whisper
        raise AudioUnreadableError(f"{path.name}: {path.suffix} needs PyAV (`pip install av`)") from e
    return av


def _frame_samples(frame) -> np.ndarray:  # an av.AudioFrame
    """One decoded PyAV frame as ``(samples, channels)`` float32 in [-1, 1]."""
    arr = frame.to_ndarray()
    channels = frame.layout.nb_channels or 1
    data = arr.T if frame.format.is_planar else arr.reshape(-1, channels)  # planar (ch, n); packed (1, n*ch)
    if np.issubdtype(arr.dtype, np.unsignedinteger):
        half = float(np.iinfo(arr.dtype).max // 2 + 1)
        return ((data.astype(np.float32) - half) / half).astype(np.float32)
    if np.issubdtype(arr.dtype, np.integer):
        return data.astype(np.float32) / float(np.iinfo(arr.dtype).max)
    return data.astype(np.float32, copy=False)


def _decode_pyav(path: Path, declared: Declared, max_duration_s: float, channel: int | None = None
                 ) -> tuple[np.ndarray, int, str, int, int, int | None]:
    av = _import_av(path)
    rate = declared.sample_rate_hz
    out: _MonoResampler | None = None
    channels = declared.channels
    try:
        with av.open(str(path)) as container:
            stream = next(s for s in container.streams if s.type == "audio")
            for frame in container.decode(stream):
                if out is None:  # the decoded rate (HE-AAC decodes at twice the rate its stream declares)
                    rate = int(frame.sample_rate or rate)
                    check_declared(path, Declared(declared.format, rate, channels, None),
                                   max_duration_s=max_duration_s)
                    out = _MonoResampler(path, rate, math.ceil(max_duration_s * rate), channel)
                block = _frame_samples(frame)
                if block.shape[1] > MAX_CHANNELS:
                    raise AudioChannelsError(f"{path.name}: a frame holds {block.shape[1]} channels; accepted "
                                             f"are 1 to {MAX_CHANNELS}")
                channels = block.shape[1]
                out.add(block)
    except (StopIteration, av.error.FFmpegError, ValueError) as e:
        raise AudioUnreadableError(f"{path.name}: not a readable audio file ({e})") from e
    if out is None:
        return np.zeros(0, dtype=np.float32), rate, declared.format, channels, 0, None
    return out.result(), rate, declared.format, channels, out.frames, out.cancelling_channel()


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


def probe_audio(path: Path, *, options: AudioOptions = AudioOptions()) -> Declared:
    """Check a recording at the boundary without decoding it: a regular, non-empty file with a plausible header.

    Cheap (reads the header only): the session sequence runs it before any model is loaded, so a hostile
    or broken file ends there. :func:`load_audio` runs it again before decoding.

    Returns
    -------
    Declared
        What the header claims.

    Raises
    ------
    AudioMissingError, AudioNotAFileError, AudioEmptyError, AudioUnreadableError, AudioSampleRateError,
    AudioChannelsError, AudioTruncatedError, AudioTooLongError
    """
    path = Path(path)
    with open_regular(path) as fh:
        return _probe_open(path, fh, options)


def _probe_open(path: Path, fh: BinaryIO, options: AudioOptions) -> Declared:
    size = os.fstat(fh.fileno()).st_size
    if size == 0:
        raise AudioEmptyError(f"{path.name}: the file is empty (0 bytes)")
    declared = _probe(path, size, fh)
    check_declared(path, declared, max_duration_s=options.max_duration_s)
    return declared


@dataclass(frozen=True)
class CheckedAudio:
    """A recording checked at the boundary (:func:`check_audio`): its header's claims, SHA-256 and file status.

    Handed from the precheck to :func:`load_audio`, so a recording is probed and hashed once per command;
    ``signature`` (device, inode, size, modification time) tells whether the file is still the one checked.
    """

    declared: Declared
    sha256: str
    signature: tuple[int, int, int, int]


def _signature(st: os.stat_result) -> tuple[int, int, int, int]:
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


def check_audio(path: Path, *, options: AudioOptions = AudioOptions()) -> CheckedAudio:
    """:func:`probe_audio` and :func:`sha256_of` through one opening of the file, with its status at that time.

    Raises
    ------
    As :func:`probe_audio`; ``OSError`` where the file cannot be read for hashing.
    """
    path = Path(path)
    with open_regular(path) as fh:
        status = os.fstat(fh.fileno())
        declared = _probe_open(path, fh, options)
        digest = sha256_of(path, fh)
    return CheckedAudio(declared, digest, _signature(status))


def load_audio(path: Path, *, options: AudioOptions = AudioOptions(), checked: CheckedAudio | None = None) -> Audio:
    """Decode and validate a recording.

    Parameters
    ----------
    path : Path
        The recording.
    options : AudioOptions
        Validation thresholds.
    checked : CheckedAudio, optional
        The precheck's :func:`check_audio` of this file: while the file's status (device, inode, size,
        modification time) is unchanged, it is neither probed nor hashed again (one open: the decoder's).

    Returns
    -------
    Audio
        Mono float32 samples at 16 kHz, shape (n_samples,), with the file's SHA-256.

    Raises
    ------
    AudioMissingError, AudioNotAFileError, AudioEmptyError, AudioUnreadableError, AudioTooShortError,
    AudioSilentError
        Each names the file and what is wrong with it.
    AudioSampleRateError, AudioChannelsError, AudioTruncatedError, AudioTooLongError
        The header's claims are implausible (checked before decoding) or decoding produced more than
        ``options.max_duration_s`` of audio (stopped as soon as it did).
    """
    path = Path(path)
    if checked is None or _signature(check_regular_file(path)) != checked.signature:
        checked = check_audio(path, options=options)
    declared, digest = checked.declared, checked.sha256
    decode = _decode_pyav if path.suffix.lower() in _PYAV_SUFFIXES else _decode_soundfile
    mono, rate, fmt, channels, frames, cancelling = decode(path, declared, options.max_duration_s)
    if cancelling is not None:  # the channels cancel in the down-mix (phase-inverted): the loudest one alone
        mono, rate, fmt, channels, frames, _ = decode(path, declared, options.max_duration_s, cancelling)
    if frames == 0:
        raise AudioEmptyError(f"{path.name}: the file holds no audio samples")
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
