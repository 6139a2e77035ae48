"""Whisper's log-mel features for long recordings, computed in blocks of frames (bounded memory).

faster-whisper computes the features of its whole input at once: the complex STFT, its magnitudes and the
mel projection of the whole recording are held together, which peaked at 4.9 GB on 90 minutes of audio
(about 55 MB per audio minute). Every feature frame depends only on its own 400 samples, except for one
step: the floor ``max - 8`` (in log10 units) uses the maximum of the whole recording. So the frames can be
computed block by block into one preallocated ``(n_mels, n_frames)`` float32 array (about 2 MB per audio
minute), and the floor applied at the end: the result equals the one-shot computation up to float rounding
of the mel matrix product (checked in the tests), and the transcript does not change.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import numpy as np

__all__ = ["install_blockwise_features", "log_mel_blockwise"]

BLOCK_FRAMES = 6_000  # 60 s of 10 ms frames per block


@cache  # one class per process (it is built lazily: faster_whisper is imported only when needed)
def _blockwise_class() -> type:
    from faster_whisper.feature_extractor import FeatureExtractor

    class _Blockwise(FeatureExtractor):
        """faster-whisper's ``FeatureExtractor`` with the same output, computed ``block_frames`` at a time."""

        block_frames: int = BLOCK_FRAMES

        def __call__(self, waveform: np.ndarray, padding: int = 160, chunk_length: int | None = None) -> np.ndarray:
            if chunk_length is not None:  # the same bookkeeping as the parent
                self.n_samples = chunk_length * self.sampling_rate
                self.nb_max_frames = self.n_samples // self.hop_length
            return log_mel_blockwise(np.asarray(waveform, dtype=np.float32), mel_filters=self.mel_filters,
                                     n_fft=self.n_fft, hop_length=self.hop_length, padding=padding,
                                     block_frames=self.block_frames, stft=self.stft)

    return _Blockwise


def log_mel_blockwise(waveform: np.ndarray, *, mel_filters: np.ndarray, n_fft: int, hop_length: int,
                      padding: int, block_frames: int = BLOCK_FRAMES, stft: Any) -> np.ndarray:
    """Whisper's normalised log-mel spectrogram of ``waveform``, computed ``block_frames`` frames at a time.

    Parameters
    ----------
    waveform : np.ndarray, shape (n,), float32
    mel_filters : np.ndarray, shape (n_mels, n_fft // 2 + 1)
    n_fft, hop_length : int
        Window and hop, in samples.
    padding : int
        Zeros appended before framing (faster-whisper appends 160).
    block_frames : int
        Frames per block.
    stft : callable
        faster-whisper's ``FeatureExtractor.stft`` (called with ``center=False`` on each block).

    Returns
    -------
    np.ndarray, shape (n_mels, n_frames), float32
        ``n_frames = (n + padding) // hop_length``, as faster-whisper's extractor returns.
    """
    half = n_fft // 2
    n = waveform.shape[0]
    # The framed signal is reflect(half) + waveform + zeros(padding) + reflect(half), as faster-whisper
    # builds it; only its two ends are materialised, so the waveform itself is never copied whole.
    if n < half + 1:  # too short for the reflection to stay inside the waveform: build it whole
        full = np.pad(np.concatenate([waveform, np.zeros(padding, np.float32)]), (half, half), mode="reflect")
        head, waveform, tail = full[:half], full[half:], full[:0]
        n = waveform.shape[0]
    else:
        head = np.pad(waveform[: half + 1], (half, 0), mode="reflect")[:half]
        y_tail = np.concatenate([waveform[-(half + 1) :], np.zeros(padding, np.float32)])
        tail = np.pad(y_tail, (0, half), mode="reflect")[-(padding + half) :]
    length = half + n + tail.shape[0]
    n_frames = 1 + (length - n_fft) // hop_length - 1  # the last frame is dropped, as in the parent

    def framed(a: int, b: int) -> np.ndarray:  # samples a..b of the framed signal
        parts = (head[a:b], waveform[max(a - half, 0) : max(b - half, 0)],
                 tail[max(a - half - n, 0) : max(b - half - n, 0)])
        used = [p for p in parts if p.size]
        return used[0] if len(used) == 1 else np.concatenate(used)

    window = np.hanning(n_fft + 1)[:-1].astype("float32")
    out = np.empty((mel_filters.shape[0], max(n_frames, 0)), dtype=np.float32)
    for f0 in range(0, n_frames, block_frames):
        f1 = min(f0 + block_frames, n_frames)
        block = framed(f0 * hop_length, (f1 - 1) * hop_length + n_fft)
        spec = stft(block, n_fft, hop_length, window=window, center=False, return_complex=True).astype("complex64")
        magnitudes = np.abs(spec) ** 2  # shape (n_fft // 2 + 1, f1 - f0)
        np.log10(np.clip(mel_filters @ magnitudes, a_min=1e-10, a_max=None), out=out[:, f0:f1])
    if out.size:
        np.maximum(out, out.max() - 8.0, out=out)
    out += 4.0
    out /= 4.0
    return out


def install_blockwise_features(model: Any) -> None:
    """Give a loaded ``faster_whisper.WhisperModel`` the blockwise extractor (same settings as its own)."""
    model.feature_extractor = _blockwise_class()(**model.feat_kwargs)

