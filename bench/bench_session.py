"""Speed, memory and accuracy of the session pipeline on a rendered session with exact truth.

Times the product's own stage sequence (:func:`pipeline.engine.sequence.compute_session`: decode,
transcription || diarization with prosody frames, analysis with NER de-identification), not a copy of it.
Prints JSON (one object per configuration) and a Markdown table. Each configuration runs in its own
process so that peak memory is its own. Defaults: the demo session, both ASR backends, with the
diarization default, stages overlapped and sequential.

    .venv/bin/python -m bench.bench_session [--audio sample_audio/demo_session.flac] [--quick]
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

from evaluation.scoring import score_against_truth

ROOT = Path(__file__).resolve().parents[1]

CONFIGS = [
    {"backend": "faster-whisper", "overlap": True},
    {"backend": "faster-whisper", "overlap": False},
    {"backend": "openai-whisper", "overlap": False},
]


def run_one(audio: Path, truth_path: Path, backend: str, overlap: bool) -> dict:
    """One configuration, timed through the product's own stage sequence (``compute_session``)."""
    import pipeline  # noqa: F401
    from evaluation.product import compute, load_models
    from evaluation.synthetic import read_truth
    from pipeline.asr.transcribe import TranscribeOptions
    from pipeline.engine.runtime import PipelineOptions

    truth = read_truth(truth_path)
    options = PipelineOptions(transcribe=TranscribeOptions(backend=backend), overlap_stages=overlap)
    t0 = time.perf_counter()
    load_s = load_models(options)
    computed = compute(audio, options, session_id="b")
    total = time.perf_counter() - t0
    result = computed.analysis
    stages = {f"{k}_s": v for k, v in computed.timings.items() if k != "models"}  # models: loaded above
    scores = score_against_truth(truth, result)
    return {
        "audio": audio.name,
        "audio_s": round(result.duration_s, 1),
        "asr_backend": backend,
        "asr_compute_type": options.transcribe.resolved_compute_type if backend == "faster-whisper" else "float32",
        "diarization_segmentation_step": options.diarize.segmentation_step,
        "overlap_stages": overlap,
        "load_models_s": round(load_s, 2),
        **{k: round(v, 2) for k, v in stages.items()},
        "compute_s": computed.wall_s,
        "total_s": round(total, 2),
        "rtf_without_model_load": round(computed.wall_s / result.duration_s, 3),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        **scores,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--audio", type=Path, default=ROOT / "sample_audio" / "demo_session.flac")
    ap.add_argument("--truth", type=Path, default=None, help="truth JSON (default: AUDIO's <stem>.truth.json)")
    ap.add_argument("--quick", action="store_true", help="only the default configuration")
    ap.add_argument("--one", help=argparse.SUPPRESS)
    args = ap.parse_args()
    truth = args.truth or args.audio.with_name(args.audio.stem + ".truth.json")
    if args.one:
        cfg = json.loads(args.one)
        print(json.dumps(run_one(args.audio, truth, cfg["backend"], cfg["overlap"])))
        return 0
    rows = []
    for cfg in CONFIGS[:1] if args.quick else CONFIGS:
        out = subprocess.run([sys.executable, "-m", "bench.bench_session", "--audio", str(args.audio),
                              "--truth", str(truth),
                              "--one", json.dumps(cfg)], capture_output=True, text=True, check=True, cwd=ROOT)
        row = json.loads(out.stdout.strip().splitlines()[-1])
        rows.append(row)
        print(json.dumps(row), flush=True)
    machine = f"{platform.machine()}, {subprocess.run(['nproc'], capture_output=True, text=True).stdout.strip()} cores"
    print(f"\nMachine: {machine}, Python {platform.python_version()}\n")
    print("| ASR backend | stages | total s | RTF (no load) | peak MB | WER | DER | attribution | roles ok |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---|")
    for r in rows:
        print(f"| {r['asr_backend']} {r['asr_compute_type']} | {'overlapped' if r['overlap_stages'] else 'sequential'}"
              f" | {r['total_s']} | {r['rtf_without_model_load']} | {r['peak_rss_mb']} | {r['wer']:.3f} | "
              f"{r['der']:.3f} | {r['attribution_accuracy']} | {r['role_correct']} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
