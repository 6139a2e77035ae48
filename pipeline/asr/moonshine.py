"""Moonshine base (English) speech recognition per speech region, with word times from Whisper forced alignment.

Moonshine (Useful Sensors, MIT) recognises text only. Here:

1. Speech regions are found with the Silero VAD that faster-whisper bundles (at most ``MAX_REGION_S`` each).
2. Each region is decoded greedily by Moonshine base: the int8 ONNX Runtime files of the ``moonshine-cpp``
   package (``encoder_model.ort``, ``decoder_model_merged.ort``) run directly with onnxruntime (the package's
   own Python wrapper is broken and cannot set its thread count); tokens are decoded with the
   ``tokenizer.json`` of ``useful-moonshine-onnx``. A region whose text compresses better than
   ``TranscribeOptions.max_compression_ratio`` (a repetition loop) is dropped and counted.
3. Word times come from forced alignment of that text with the loaded Whisper model (CTranslate2's
   ``Whisper.align``, through faster-whisper's ``find_alignment``, as faster-whisper does for its own word
   timestamps): consecutive regions are aligned together in windows of at most 30 s (one Whisper encoder pass
   per window), and each word is kept inside the region it was recognised in.

Nothing here downloads anything; the files come from the verified model cache (``moonshine-base-ort``).
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.asr.base import Heard, ProgressHook, Recogniser
from pipeline.errors import ConfigError, ModelError, ModelMissingError
from pipeline.types import SAMPLE_RATE_HZ, Transcript, Word

__all__ = ["MoonshineTranscriber", "Region", "speech_regions", "windows"]

MODEL_NAME = "moonshine-base"
MODEL_FILES = ("encoder_model.ort", "decoder_model_merged.ort", "tokenizer.json")
MAX_REGION_S = 20.0  # Moonshine is trained on utterances; long inputs degrade
WINDOW_S = 30.0  # Whisper's input window, for the alignment
TOKENS_PER_S = 6.5  # decoding stops after this many tokens per second of audio (a loop guard)
_NUM_LAYERS, _KV_HEADS, _HEAD_DIM = 8, 8, 52  # Moonshine base
_START, _EOS = 1, 2
_PREPEND = "\"'“¿([{-"
_APPEND = "\"'.。,，!！?？:：”)]}、"


@dataclass(frozen=True)
class Region:
    """A stretch of speech, in samples (half-open)."""

    start: int
    end: int


def speech_regions(samples: np.ndarray, *, max_region_s: float = MAX_REGION_S) -> tuple[Region, ...]:
    """Speech regions found by faster-whisper's Silero VAD.

    At most ``max_region_s`` long, padded by 0.2 s, split at silences of 0.5 s or more.
    """
    from faster_whisper.vad import VadOptions, get_speech_timestamps

    opts = VadOptions(max_speech_duration_s=max_region_s, min_silence_duration_ms=500, speech_pad_ms=200)
    return tuple(Region(int(c["start"]), int(c["end"])) for c in get_speech_timestamps(samples, opts))


def windows(regions: tuple[Region, ...], *, window_s: float = WINDOW_S) -> list[list[Region]]:
    """Consecutive regions grouped so that each group spans at most ``window_s`` (first start to last end)."""
    limit = int(window_s * SAMPLE_RATE_HZ)
    groups: list[list[Region]] = []
    for r in regions:
        if groups and r.end - groups[-1][0].start <= limit:
            groups[-1].append(r)
        else:
            groups.append([r])
    return groups


def _compression_ratio(text: str) -> float:
    raw = text.encode("utf-8")
    return len(raw) / len(zlib.compress(raw)) if raw else 0.0


class MoonshineTranscriber(Recogniser):
    """Transcriber: Moonshine base text per VAD region, word times by Whisper forced alignment.

    Parameters
    ----------
    encoder, decoder : onnxruntime.InferenceSession
    tokenizer : tokenizers.Tokenizer
        Moonshine's tokenizer.
    aligner : faster_whisper.WhisperModel
        The Whisper model whose alignment heads time the words.
    options : TranscribeOptions
    """

    name = "moonshine"
    model_name = MODEL_NAME
    label = "Moonshine"

    def __init__(self, encoder: Any, decoder: Any, tokenizer: Any, aligner: Any, *, options: Any) -> None:
        self._encoder, self._decoder, self._tokenizer, self._aligner = encoder, decoder, tokenizer, aligner
        self.options = options

    @classmethod
    def load(cls, moonshine_dir: Path, *, ct2_dir: Path, options: Any) -> MoonshineTranscriber:
        """Load Moonshine's ONNX Runtime files and the Whisper model used for alignment.

        Raises
        ------
        ConfigError
            A language other than English is asked for, or a CUDA device (this backend runs on CPU).
        ModelMissingError
            A file is missing.
        ModelError
            onnxruntime or CTranslate2 cannot load a file.
        """
        import onnxruntime
        from faster_whisper import WhisperModel
        from tokenizers import Tokenizer

        if options.language not in (None, "en"):
            raise ConfigError(f"backend='moonshine' recognises English only, not language={options.language!r}")
        if options.device != "cpu":
            raise ConfigError("backend='moonshine' runs on CPU only")
        for name in MODEL_FILES:
            if not (Path(moonshine_dir) / name).is_file():
                raise ModelMissingError(f"{Path(moonshine_dir) / name} is missing from the Moonshine folder")
        so = onnxruntime.SessionOptions()
        so.intra_op_num_threads = options.cpu_threads
        so.inter_op_num_threads = 1
        try:
            encoder = onnxruntime.InferenceSession(str(Path(moonshine_dir) / "encoder_model.ort"), so,
                                                   providers=["CPUExecutionProvider"])
            decoder = onnxruntime.InferenceSession(str(Path(moonshine_dir) / "decoder_model_merged.ort"), so,
                                                   providers=["CPUExecutionProvider"])
            tokenizer = Tokenizer.from_file(str(Path(moonshine_dir) / "tokenizer.json"))
            aligner = WhisperModel(str(ct2_dir), device="cpu", compute_type=options.resolved_compute_type,
                                   cpu_threads=options.cpu_threads, local_files_only=True)
        except (RuntimeError, ValueError, OSError, Exception) as e:  # onnxruntime raises its own exception types
            raise ModelError(f"Moonshine could not load {moonshine_dir} (aligner {ct2_dir}): {e}") from e
        return cls(encoder, decoder, tokenizer, aligner, options=options)

    # ------------------------------------------------------------------ recognition

    def _decode(self, audio: np.ndarray) -> str:
        """Greedy Moonshine decoding of one region (float32, shape (n,))."""
        hidden = self._encoder.run(None, {"input_values": audio[None, :]})[0]
        past = {f"past_key_values.{i}.{a}.{b}": np.zeros((1, _KV_HEADS, 0, _HEAD_DIM), dtype=np.float32)
                for i in range(_NUM_LAYERS) for a in ("decoder", "encoder") for b in ("key", "value")}
        names = list(past)
        tokens: list[int] = []
        ids = np.array([[_START]], dtype=np.int64)
        max_len = max(8, int(np.ceil(len(audio) / SAMPLE_RATE_HZ * TOKENS_PER_S)))
        for i in range(max_len):
            logits, *present = self._decoder.run(None, {"input_ids": ids, "encoder_hidden_states": hidden,
                                                        "use_cache_branch": np.array([i > 0]), **past})
            nxt = int(logits[0, -1].argmax())
            if nxt == _EOS:
                break
            tokens.append(nxt)
            ids = np.array([[nxt]], dtype=np.int64)
            for k, v in zip(names, present, strict=True):
                if i == 0 or ".decoder." in k:  # encoder keys/values are computed once
                    past[k] = v
        return self._tokenizer.decode(tokens, skip_special_tokens=True).strip()

    def _align(self, audio: np.ndarray, texts: list[str]) -> list[list[dict]]:
        """Whisper forced alignment of ``texts`` (one per region, in order) over ``audio`` (<= 30 s).

        Returns one list of words (``word``, ``start``, ``end``, ``probability``; seconds from the window start)
        per text; all empty when the word split does not match the texts.
        """
        from faster_whisper.audio import pad_or_trim
        from faster_whisper.tokenizer import Tokenizer
        from faster_whisper.transcribe import merge_punctuations

        model = self._aligner
        tok = Tokenizer(model.hf_tokenizer, model.model.is_multilingual, task="transcribe", language="en")
        per_text = [tok.encode(" " + t) for t in texts]
        counts = [len(tok.split_to_word_tokens(t + [tok.eot])[0]) - 1 for t in per_text]
        tokens = [t for ts in per_text for t in ts]
        features = model.feature_extractor(audio)
        frames = features.shape[-1] - 1
        encoded = model.encode(pad_or_trim(features[:, :frames]))
        words = model.find_alignment(tok, [tokens], encoded, frames)[0]
        if len(words) != sum(counts):
            return [[] for _ in texts]
        out, k = [], 0
        for n in counts:
            group = words[k : k + n]
            merge_punctuations(group, _PREPEND, _APPEND)
            out.append([w for w in group if w["word"].strip()])
            k += n
        return out

    def _nothing_heard(self) -> Transcript:
        return Transcript(words=(), language="en", language_probability=1.0, backend=self.name,
                          model_name=self.model_name)

    def _recognise(self, samples: np.ndarray, progress: ProgressHook | None) -> Heard:
        heard = Heard("en", 1.0, [])
        for group in windows(speech_regions(samples)):
            texts, kept = [], []
            for r in group:
                heard.segments += 1
                text = self._decode(samples[r.start : r.end])
                if text and _compression_ratio(text) > self.options.max_compression_ratio:
                    heard.segments_dropped += 1
                    continue
                if text:
                    texts.append(text)
                    kept.append(r)
            if texts:
                w0 = group[0].start
                aligned = self._align(samples[w0 : group[-1].end], texts)
                for r, text, words in zip(kept, texts, aligned, strict=True):
                    heard.words.extend(_timed_words(r, text, words, offset_s=w0 / SAMPLE_RATE_HZ))
            if progress is not None:
                progress(min(group[-1].end / samples.size, 1.0))
        return heard


def _timed_words(region: Region, text: str, aligned: list[dict], *, offset_s: float) -> list[Word]:
    """A region's words with their aligned times (seconds from ``offset_s``) kept inside the region.

    Where alignment failed (``aligned`` empty) the text's words are spread evenly over the region.
    """
    lo, hi = region.start / SAMPLE_RATE_HZ, region.end / SAMPLE_RATE_HZ
    if not aligned:
        parts = text.split()
        step = (hi - lo) / len(parts)
        return [Word(lo + i * step, lo + (i + 1) * step, p, 0.0) for i, p in enumerate(parts)]
    words = []
    for w in aligned:
        s = min(max(offset_s + float(w["start"]), lo), hi)
        e = min(max(offset_s + float(w["end"]), s), hi)
        words.append(Word(s, e, w["word"], float(w["probability"])))
    return words
