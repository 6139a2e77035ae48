"""An on-disk cache of sentence embeddings for the coder benches (bench/results/, never committed)."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from pipeline.codes.encoder import EMBEDDING_DIM, load_encoder

DEFAULT_CACHE = Path(__file__).resolve().parents[2] / "bench" / "results" / "codes_embeddings.npz"


def _key(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class CachingEncoder:
    """Encodes with the product's frozen encoder, remembering each text's vector in ``path``."""

    def __init__(self, path: Path = DEFAULT_CACHE) -> None:
        self.path = path
        self._vectors: dict[str, np.ndarray] = {}
        self._encoder = None
        self.encoded = 0
        if path.is_file():
            with np.load(path) as data:
                self._vectors = dict(zip(data["keys"].tolist(), data["vectors"], strict=True))

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        keys = [_key(t) for t in texts]
        missing = sorted({k: t for k, t in zip(keys, texts, strict=True) if k not in self._vectors}.items())
        if missing:
            if self._encoder is None:
                self._encoder = load_encoder()
            vectors = self._encoder.encode([t for _, t in missing])
            self._vectors.update({k: v for (k, _), v in zip(missing, vectors, strict=True)})
            self.encoded += len(missing)
            self.save()
        out = np.zeros((len(texts), EMBEDDING_DIM), np.float32)
        for i, k in enumerate(keys):
            out[i] = self._vectors[k]
        return out

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        keys = sorted(self._vectors)
        tmp = self.path.with_name(self.path.stem + ".partial.npz")
        np.savez(tmp, keys=np.array(keys), vectors=np.stack([self._vectors[k] for k in keys]))
        tmp.replace(self.path)
