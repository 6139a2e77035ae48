"""Speed, memory and accuracy of the session pipeline on a rendered session with exact truth.

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
from bisect import bisect_right
from collections.abc import Callable
from itertools import accumulate
from pathlib import Path
from typing import TYPE_CHECKING

ROOT = Path(__file__).resolve().parents[1]

if TYPE_CHECKING:
    from evaluation.synthetic import SessionTruth
    from pipeline.analysis.session import SessionAnalysis
    from pipeline.types import Diarization

CONFIGS = [
    {"backend": "faster-whisper", "overlap": True},
    {"backend": "faster-whisper", "overlap": False},
    {"backend": "openai-whisper", "overlap": False},
]


def truth_role_lookup(truth: SessionTruth) -> Callable[[float], str | None]:
    """A function giving the role of the first truth utterance (in script order) that contains a time.

    Binary search over the utterance starts, so it stays fast on sessions of thousands of utterances.
    """
    utts = sorted(truth.utterances, key=lambda u: (u.start_s, u.index))
    starts = [u.start_s for u in utts]
    reach = list(accumulate((u.end_s for u in utts), max))  # latest end among the first k utterances

    def role_at(t: float) -> str | None:
        best = None
        j = bisect_right(starts, t) - 1
        while j >= 0 and reach[j] >= t:
            if utts[j].end_s >= t and (best is None or utts[j].index < best.index):
                best = utts[j]
            j -= 1
        return best.role if best is not None else None

    return role_at


def score_against_truth(truth: SessionTruth, result: SessionAnalysis, diarization: Diarization) -> dict:
    """Accuracy of one analysed session against its rendered truth.

    Returns
    -------
    dict
        ``wer`` (all truth text against all recognised words), ``der`` (no collar), ``role_correct``
        (every diarization label that owns words got the role most of its words have in the truth),
        ``attribution_accuracy`` (share of words inside a truth utterance whose role is that utterance's),
        ``long_silence_recall`` (truth silences of 2 s or more with a ``long_silence`` marker starting
        within 0.25 s), ``long_silences_found``, ``long_silences_true``.
    """
    from evaluation.metrics import diarization_error_rate, word_error_rate

    ref = " ".join(u.text for u in truth.utterances)
    hyp = " ".join(w.text for w in result.words)
    role_at = truth_role_lookup(truth)
    correct = counted = 0
    majority: dict[str, dict[str, int]] = {}
    for w in result.words:
        owner = role_at(0.5 * (w.start_s + w.end_s))
        if owner is None:
            continue
        counted += 1
        correct += owner == result.roles.role_of(w.speaker)
        if w.speaker is not None:
            votes = majority.setdefault(w.speaker, {})
            votes[owner] = votes.get(owner, 0) + 1
    roles_ok = bool(majority) and all(result.roles.role_of(label) == max(v, key=v.get)
                                      for label, v in majority.items())
    truth_long = [s for s in truth.silences if s.duration_s >= 2.0]
    found = [m for m in result.measures.markers if m.kind == "long_silence"]
    hits = sum(any(abs(m.start_s - s.start_s) <= 0.25 for m in found) for s in truth_long)
    return {
        "wer": round(word_error_rate(ref, hyp), 4),
        "der": round(diarization_error_rate(truth.as_diarization(), diarization), 4),
        "role_correct": roles_ok,
        "attribution_accuracy": round(correct / counted, 4) if counted else None,
        "long_silence_recall": round(hits / len(truth_long), 3) if truth_long else None,
        "long_silences_found": len(found),
        "long_silences_true": len(truth_long),
    }


def run_one(audio: Path, truth_path: Path, backend: str, overlap: bool) -> dict:
    from concurrent.futures import ThreadPoolExecutor

    import pipeline  # noqa: F401
    from evaluation.synthetic import read_truth
    from pipeline.analysis.session import SessionMeta, analyse
    from pipeline.asr.transcribe import TranscribeOptions
    from pipeline.audio.decode import load_audio
    from pipeline.diarization.diarize import DiarizeOptions
    from pipeline.engine.runtime import get_diarizer, get_transcriber
    from pipeline.privacy.consent import parse_consent

    truth = read_truth(truth_path)
    times: dict[str, float] = {}
    t0 = time.perf_counter()
    topt, dopt = TranscribeOptions(backend=backend), DiarizeOptions()
    transcriber, diarizer = get_transcriber(topt), get_diarizer(dopt)
    times["load_models_s"] = time.perf_counter() - t0
    t = time.perf_counter()
    a = load_audio(audio)
    times["load_audio_s"] = time.perf_counter() - t
    t = time.perf_counter()
    if overlap:
        with ThreadPoolExecutor(2) as pool:
            ft = pool.submit(transcriber.transcribe, a.samples)
            fd = pool.submit(diarizer.diarize, a.samples)
            transcript, diarization = ft.result(), fd.result()
        times["asr_and_diarization_s"] = time.perf_counter() - t
    else:
        transcript = transcriber.transcribe(a.samples)
        times["asr_s"] = time.perf_counter() - t
        t = time.perf_counter()
        diarization = diarizer.diarize(a.samples)
        times["diarization_s"] = time.perf_counter() - t
    t = time.perf_counter()
    consent = parse_consent({"session_id": "b", "client_id": "c", "scope": "research",
                             "consented_on": "2026-01-01", "consented_by": ["client"]}, source="bench")
    result = analyse(a, transcript, diarization, meta=SessionMeta("b", "c", "t"), consent=consent,
                     diarization_model="bench")
    times["analysis_s"] = time.perf_counter() - t
    total = time.perf_counter() - t0

    scores = score_against_truth(truth, result, diarization)
    return {
        "audio": audio.name,
        "audio_s": round(a.duration_s, 1),
        "asr_backend": backend,
        "asr_compute_type": topt.resolved_compute_type if backend == "faster-whisper" else "float32",
        "diarization_segmentation_step": dopt.segmentation_step,
        "overlap_stages": overlap,
        **{k: round(v, 2) for k, v in times.items()},
        "total_s": round(total, 2),
        "rtf_without_model_load": round((total - times["load_models_s"]) / a.duration_s, 3),
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
