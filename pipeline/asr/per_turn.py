"""Whisper decoding per diarized turn, each turn prompted with the text of the turn before it.

Whisper decodes a recording in 30 s windows that ignore who is speaking. Here the diarization's turns are the
decoding units instead (:func:`turn_windows`): a turn nested wholly inside another speaker's turn (a backchannel
under the floor-holder) is left to the enclosing turn, overlapping turns are cut at the middle of their overlap,
each turn is widened into the silence around it (at most ``pad_s``, never past the middle of the gap), and a
window shorter than ``min_s`` is merged into its nearer neighbour while the result stays within ``max_s``. A
turn longer than 30 s stays one window, which faster-whisper decodes in its own 30 s steps. Each window is
decoded with the previous window's text as faster-whisper's ``initial_prompt`` (:class:`TurnTranscriber`).

This needs the diarization before ASR, so the two stages run one after the other instead of side by side.
Measured on the realistic bench (``docs/realistic_bench.md``, "System combination").
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from models.ct2_whisper import model_name_for
from pipeline.asr.base import tidy_words
from pipeline.asr.features import install_blockwise_features
from pipeline.errors import ModelError, StageError
from pipeline.types import SAMPLE_RATE_HZ, SpeakerTurn, Transcript, Word

__all__ = ["TurnTranscriber", "turn_windows"]

STAGE = "transcribe"
MIN_WINDOW_S = 2.0
MAX_WINDOW_S = 30.0
PAD_S = 0.2


def turn_windows(turns: Sequence[SpeakerTurn], *, duration_s: float, min_s: float = MIN_WINDOW_S,
                 max_s: float = MAX_WINDOW_S, pad_s: float = PAD_S) -> list[tuple[float, float]]:
    """Consecutive, non-overlapping decoding windows ``(start_s, end_s)`` from diarization turns.

    See the module docstring for the rules. Empty when there are no turns.
    """
    spans = sorted((max(0.0, t.start_s), min(duration_s, t.end_s)) for t in turns
                   if min(duration_s, t.end_s) > max(0.0, t.start_s))
    outer = [s for s in spans if not any(o[0] <= s[0] and s[1] <= o[1] and (o[0], o[1]) != (s[0], s[1])
                                         for o in spans)]
    cut: list[list[float]] = []
    for a, b in outer:
        if cut and a < cut[-1][1]:  # a staggered overlap: the boundary at its middle
            mid = 0.5 * (a + min(b, cut[-1][1]))
            cut[-1][1], a = mid, mid
            if b <= a:
                continue
        cut.append([a, b])
    merged = []
    for k, (a, b) in enumerate(cut):  # widen into the silence around, at most pad_s, never past the gap's middle
        lo = 0.0 if k == 0 else 0.5 * (cut[k - 1][1] + a)
        hi = duration_s if k == len(cut) - 1 else 0.5 * (b + cut[k + 1][0])
        merged.append([min(a, max(lo, a - pad_s)), max(b, min(hi, b + pad_s))])
    changed = True
    while changed:
        changed = False
        for k, w in enumerate(merged):
            if w[1] - w[0] >= min_s:
                continue
            choices = []  # (gap to the neighbour, index of the pair's first window)
            if k > 0 and w[1] - merged[k - 1][0] <= max_s:
                choices.append((w[0] - merged[k - 1][1], k - 1))
            if k + 1 < len(merged) and merged[k + 1][1] - w[0] <= max_s:
                choices.append((merged[k + 1][0] - w[1], k))
            if not choices:
                continue
            _, j = min(choices)
            merged[j:j + 2] = [[merged[j][0], merged[j + 1][1]]]
            changed = True
            break
    return [(round(a, 3), round(b, 3)) for a, b in merged]


class TurnTranscriber:
    """faster-whisper decoding per diarized turn, prompted with the previous turn's text.

    Parameters
    ----------
    model : faster_whisper.WhisperModel
    model_name : str
    options : TranscribeOptions
        ``language``, ``beam_size`` and ``max_compression_ratio`` apply (a window whose text compresses better
        than the ratio is dropped and counted, as Whisper's own guard does).
    prompt : bool
        Prompt each window with the previous window's text (default); False decodes every window alone.
    """

    name = "faster-whisper-turns"

    def __init__(self, model: Any, *, model_name: str, options: Any, prompt: bool = True) -> None:
        self._model, self.model_name, self.options = model, model_name, options
        self.prompt = prompt

    @classmethod
    def load(cls, ct2_dir: Path, *, options: Any, prompt: bool = True) -> TurnTranscriber:
        """Load the CTranslate2 Whisper folder on CPU (``options.compute_type``, ``cpu_threads``).

        Raises
        ------
        ModelMissingError
            The folder is missing.
        ModelError
            CTranslate2 cannot load it.
        """
        from faster_whisper import WhisperModel

        model_name = model_name_for(ct2_dir)
        try:
            model = WhisperModel(str(ct2_dir), device="cpu", compute_type=options.resolved_compute_type,
                                 cpu_threads=options.cpu_threads, local_files_only=True)
        except (RuntimeError, ValueError, OSError) as e:
            raise ModelError(f"faster-whisper could not load {ct2_dir}: {e}") from e
        install_blockwise_features(model)
        return cls(model, model_name=model_name, options=options, prompt=prompt)

    def transcribe(self, samples: np.ndarray, *, turns: Sequence[SpeakerTurn], progress: Any = None) -> Transcript:
        """Recognise words in float32 mono 16 kHz ``samples`` window by window (see :func:`turn_windows`).

        Raises
        ------
        StageError
            If decoding fails.
        """
        duration_s = samples.shape[0] / SAMPLE_RATE_HZ
        opts = self.options
        raw: list[Word] = []
        n_segments = n_dropped = 0
        prompt: str | None = None
        windows = turn_windows(turns, duration_s=duration_s)
        try:
            for a, b in windows:
                piece = samples[int(round(a * SAMPLE_RATE_HZ)): int(round(b * SAMPLE_RATE_HZ))]
                segments, _ = self._model.transcribe(
                    piece, language=opts.language, beam_size=opts.beam_size, temperature=0.0, word_timestamps=True,
                    initial_prompt=prompt, condition_on_previous_text=False, vad_filter=False)
                texts = []
                for seg in segments:
                    n_segments += 1
                    if seg.compression_ratio > opts.max_compression_ratio:
                        n_dropped += 1
                        continue
                    texts.append(seg.text.strip())
                    raw.extend(Word(min(w.start + a, b), min(w.end + a, b), w.word, w.probability)
                               for w in seg.words or ())
                prompt = (" ".join(t for t in texts if t) or None) if self.prompt else None
                if progress is not None:
                    progress(min(b / duration_s, 1.0))
        except (RuntimeError, ValueError) as e:
            raise StageError(STAGE, f"faster-whisper per turn failed on {duration_s:.1f} s of audio: {e}") from e
        return Transcript(words=tidy_words(raw, duration_s=duration_s), language=opts.language or "und",
                          language_probability=1.0 if opts.language else 0.0, backend=self.name,
                          model_name=self.model_name, segments=n_segments, segments_dropped=n_dropped)
