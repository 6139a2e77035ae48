"""Every ASR backend's words, times and counts on sample_audio/demo_session.flac and jfk.flac, as one JSON file.

For checking that a change to ``pipeline/asr`` changes no output: run it before and after and compare the files
(``cmp``). Each configuration exercises one path: whole recording, pieces (``piece_s``), language detection,
batched decoding, beam refinement, the re-decoding of repetitive windows (a compression-ratio threshold every
window exceeds), Moonshine; plus empty audio and the progress fractions reported. Runs on CPU (about 13 minutes
on 2 cores). Models come from the verified store (``ALLIANCE_MODELS_DIR``); jfk.flac from ../shared.

    python -m bench.asr_words_snapshot OUT.json
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from models.store import require
from pipeline.asr.transcribe import TranscribeOptions, load_transcriber
from pipeline.types import SAMPLE_RATE_HZ

ROOT = Path(__file__).resolve().parents[1]
CLIPS = {"jfk": ROOT.parent / "shared" / "data" / "audio" / "jfk.flac",
         "demo": ROOT / "sample_audio" / "demo_session.flac"}
RUNS: tuple[tuple[str, dict, tuple[str, ...]], ...] = (
    ("fw", {}, ("jfk", "demo")),
    ("ow", {"backend": "openai-whisper"}, ("jfk", "demo")),
    ("fw-piece60", {"piece_s": 60.0}, ("demo",)),
    ("ow-piece60", {"backend": "openai-whisper", "piece_s": 60.0}, ("demo",)),
    ("fw-detect", {"language": None}, ("jfk",)),
    ("ow-detect", {"backend": "openai-whisper", "language": None}, ("jfk",)),
    ("fw-batch4", {"batch_size": 4}, ("jfk",)),
    ("fw-refine3", {"refine_beam_size": 3, "refine_below_logprob": -0.3}, ("demo",)),
    ("fw-ratio1", {"max_compression_ratio": 1.2}, ("demo",)),
    ("ow-ratio1", {"backend": "openai-whisper", "max_compression_ratio": 1.2}, ("demo",)),
    ("moon", {"backend": "moonshine"}, ("jfk", "demo")),
)


def _mono_16k(path: Path) -> np.ndarray:
    samples, rate = sf.read(path, dtype="float32", always_2d=True)
    return soxr.resample(samples.mean(axis=1), rate, SAMPLE_RATE_HZ).astype(np.float32)


def snapshot(only: list[str]) -> dict:
    """``{"<run>/<clip>": {words, language, ...}, "empty/<run>": [...]}`` for the runs named (all if none)."""
    from models.ct2_whisper import convert_ct2_to_openai

    ct2 = require("whisper-base-ct2")
    checkpoint = require("whisper-base-openai") / "whisper-base.pt"
    if not checkpoint.is_file():
        checkpoint = convert_ct2_to_openai(ct2, checkpoint)
    clips = {name: _mono_16k(path) for name, path in CLIPS.items()}
    result: dict = {}
    for name, kwargs, which in RUNS:
        if only and name not in only:
            continue
        moonshine = require("moonshine-base-ort") if kwargs.get("backend") == "moonshine" else None
        transcriber = load_transcriber(ct2_dir=ct2, openai_checkpoint=checkpoint, moonshine_dir=moonshine,
                                       options=TranscribeOptions(**kwargs))
        for clip in which:
            t0, fractions = time.perf_counter(), []
            tr = transcriber.transcribe(clips[clip], progress=fractions.append)
            result[f"{name}/{clip}"] = {
                "words": [[w.start_s, w.end_s, w.text, w.probability] for w in tr.words], "language": tr.language,
                "lp": tr.language_probability, "backend": tr.backend, "model": tr.model_name,
                "segments": tr.segments, "dropped": tr.segments_dropped, "progress": fractions}
            print(name, clip, len(tr.words), tr.segments, tr.segments_dropped, f"{time.perf_counter() - t0:.1f}s",
                  flush=True)
        empty = transcriber.transcribe(np.zeros(0, dtype=np.float32))
        result["empty/" + name] = [list(empty.words), empty.language, empty.language_probability, empty.backend,
                                   empty.model_name, empty.segments]
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("runs", nargs="*", help=f"only these runs, of {[r[0] for r in RUNS]}")
    args = parser.parse_args(argv)
    args.out.write_text(json.dumps(snapshot(args.runs), indent=1))


if __name__ == "__main__":
    main()
