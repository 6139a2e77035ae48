"""A small hostile-audio corpus, generated at test time (nothing binary is committed).

Each case is a file (or a non-file) named like a recording whose header lies or which is not audio at
all, with the error code the audio boundary must end it with, before anything big is decoded. Used by
``tests/audio/test_hostile_audio.py``, ``tests/engine/test_hostile_batch.py`` and ``bench/bad_input.py``
(``from evaluation.hostile_corpus import ...``: no test folder on ``sys.path``).
"""

from __future__ import annotations

import io
import os
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

RATE = 16_000


@dataclass(frozen=True)
class HostileCase:
    """One hostile input: its file name, what it is, and the end state and code it must get."""

    name: str
    what: str
    code: str
    state: str = "failed"


def _speech_like(seconds: float, rate: int = RATE) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (0.3 * np.sin(2 * np.pi * 220 * t) * (0.6 + 0.4 * np.sin(2 * np.pi * 3 * t))).astype(np.float32)


def wav_bytes(*, rate: int, channels: int, data: bytes, declared_data_bytes: int | None = None,
              bits: int = 16) -> bytes:
    """A RIFF/WAVE file whose ``fmt `` and ``data`` headers say whatever they are told to (PCM)."""
    block_align = (channels * bits // 8) & 0xFFFF
    fmt = struct.pack("<HHIIHH", 1, channels & 0xFFFF, rate & 0xFFFFFFFF,
                      (rate * block_align) & 0xFFFFFFFF, block_align, bits)
    size = len(data) if declared_data_bytes is None else declared_data_bytes
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", size) + data
    return b"RIFF" + struct.pack("<I", len(body) & 0xFFFFFFFF) + body


def au_bytes(*, rate: int, channels: int, data: bytes, declared_data_bytes: int = 0xFFFFFFFF) -> bytes:
    """A Sun/NeXT AU file (16-bit PCM) whose header says whatever it is told to."""
    return b".snd" + struct.pack(">IIIII", 24, declared_data_bytes, 3, rate, channels) + data


def flac_claiming(seconds_claimed: float, *, seconds_held: float = 1.0) -> bytes:
    """A real FLAC of ``seconds_held`` whose STREAMINFO claims ``seconds_claimed`` (total samples patched)."""
    buf = io.BytesIO()
    sf.write(buf, _speech_like(seconds_held), RATE, format="FLAC")
    data = bytearray(buf.getvalue())
    assert data[:4] == b"fLaC"
    at = 8 + 10  # STREAMINFO: 20 bits rate, 3 bits channels, 5 bits depth, 36 bits total samples
    field = int.from_bytes(data[at:at + 8], "big")
    field = (field & ~((1 << 36) - 1)) | int(seconds_claimed * RATE)
    data[at:at + 8] = field.to_bytes(8, "big")
    return bytes(data)


def build_hostile_audio(folder: Path, *, fifo: bool = True) -> list[HostileCase]:
    """Write every hostile case into ``folder``; return them with their expected end state and code.

    ``fifo``: also create a FIFO named ``fifo.wav`` (POSIX only).
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    cases: list[HostileCase] = []

    def add(name: str, content: bytes, what: str, code: str) -> None:
        (folder / name).write_bytes(content)
        cases.append(HostileCase(name, what, code))

    pcm = (_speech_like(14.7, 8_000) * 32767).astype("<i2").tobytes()  # 235,200 bytes of real samples
    add("lied_8hz.wav", wav_bytes(rate=8, channels=1, data=pcm + pcm),
        "470 KB WAV whose header claims 8 Hz (16 h of audio once resampled)", "audio_sample_rate")
    add("lied_0hz.wav", wav_bytes(rate=0, channels=1, data=pcm[:32_000]), "WAV claiming 0 Hz", "audio_sample_rate")
    add("lied_4ghz.wav", wav_bytes(rate=4_000_000_000, channels=1, data=pcm[:32_000]), "WAV claiming 4 GHz",
        "audio_sample_rate")
    add("lied_1e6_channels.wav", au_bytes(rate=RATE, channels=1_000_000, data=bytes(100_000)),
        "AU content named .wav claiming 1,000,000 channels", "audio_channels")
    add("lied_65535_channels.wav", wav_bytes(rate=RATE, channels=65_535, data=bytes(65_535 * 2 * 4)),
        "WAV claiming 65,535 channels", "audio_channels")
    add("lied_0_channels.wav", wav_bytes(rate=RATE, channels=0, data=pcm[:32_000]), "WAV claiming 0 channels",
        "audio_channels")
    add("lied_huge_frames.wav", wav_bytes(rate=RATE, channels=1, data=pcm[:32_000], declared_data_bytes=0xFFFFFFF0),
        "32 KB WAV whose data chunk claims 4 GB (37 h)", "audio_truncated")
    add("lied_huge_frames.au.wav", au_bytes(rate=RATE, channels=1, data=pcm[:32_000], declared_data_bytes=2**31),
        "32 KB AU claiming 2 GB of samples", "audio_truncated")
    add("lied_5h.flac", flac_claiming(5 * 3600), "6 KB FLAC whose STREAMINFO claims 5 h", "audio_too_long")
    full = io.BytesIO()
    sf.write(full, _speech_like(3.0), RATE, format="WAV", subtype="PCM_16")
    add("truncated.wav", full.getvalue()[: len(full.getvalue()) // 2], "WAV cut in half", "audio_truncated")
    add("zero.wav", b"", "0-byte file", "audio_empty")
    header_only = io.BytesIO()
    sf.write(header_only, np.zeros(0, np.float32), RATE, format="WAV")
    add("header_only.wav", header_only.getvalue(), "WAV header without samples", "audio_empty")
    add("notes.wav", b"meeting notes, not a recording\n" * 40, "text file named .wav", "audio_unreadable")
    add("random.wav", np.random.default_rng(7).bytes(20_000), "random bytes named .wav", "audio_unreadable")
    (folder / "dir.wav").mkdir(exist_ok=True)
    cases.append(HostileCase("dir.wav", "a directory named .wav", "audio_not_a_file"))
    if fifo and hasattr(os, "mkfifo"):
        if not (folder / "fifo.wav").exists():
            os.mkfifo(folder / "fifo.wav")
        cases.append(HostileCase("fifo.wav", "a FIFO (named pipe) named .wav: reading it would block forever",
                                 "audio_not_a_file"))
    return cases
