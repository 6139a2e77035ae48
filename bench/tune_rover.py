r"""Choose the ROVER weights (``pipeline.asr.combine.RoverOptions``) on one session's transcripts, without decoding.

Reads the transcript cache that ``bench.bench_realistic --transcripts PATH`` wrote (every part of ``rover``:
Whisper beam 5, Whisper greedy, Moonshine, per recording), keeps the renders of one AnnoMI session (default 46:
the other session is the check), and scores every combination of the grid by WER under Whisper's normaliser,
pooled over that session's conditions by reference words. Prints the grid's best rows and the chosen weights
against greedy and each part; writes ``bench/results/<out>.md``.

    .venv/bin/python -m bench.tune_rover bench/results/realistic-rover-46.transcripts.json --session 46
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from bench.bench_realistic import RESULTS, _canon_whisper
from bench.render_long import RENDERS_DIR
from evaluation.metrics import word_error_rate
from evaluation.synthetic import read_truth, truth_paths

GRID = {"moonshine_confidence": (0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9), "alpha": (0.3, 0.5, 0.7),
        "null_confidence": (0.3, 0.5, 0.7)}


def _recordings(cache: dict, session: str) -> dict[str, str]:
    """Cache key prefix (recording|front end|stage) -> condition, for the renders of ``session``."""
    out = {}
    for key in cache:
        name, front_end, stage, _ = key.split("|", 3)
        if name.startswith(f"realistic-{session}-") and front_end == "none":
            out[f"{name}|{front_end}|{stage}"] = name.split("-", 2)[2].rsplit("-", 1)[0]
    return out


def main(argv: Sequence[str] | None = None) -> int:
    from bench.bench_realistic import TranscriptCache
    from pipeline.asr.combine import RoverOptions, combine_transcripts, rover_parts
    from pipeline.asr.transcribe import TranscribeOptions

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("transcripts", type=Path)
    ap.add_argument("--session", default="46")
    ap.add_argument("--out", default="tune-rover")
    args = ap.parse_args(argv)
    cache = TranscriptCache(args.transcripts)
    recordings = _recordings(cache.entries, args.session)
    if not recordings:
        print(f"no transcripts of session {args.session} in {args.transcripts}")
        return 1
    opts = TranscribeOptions(backend="rover")
    data = []  # (condition, reference text, [part transcripts], greedy transcript)
    for prefix, condition in sorted(recordings.items(), key=lambda kv: kv[1]):
        keys = [f"{prefix}|{o!r}" for o, _ in rover_parts(opts)]
        if any(k not in cache.entries for k in keys):
            print(f"{prefix}: not every part of rover was decoded; left out", file=sys.stderr)
            continue
        truth = read_truth(truth_paths(RENDERS_DIR / prefix.split("|")[0])[0])
        ref = _canon_whisper(" ".join(u.text for u in truth.utterances))
        parts = [cache.get(k, None, None)[0] for k in keys]
        data.append((condition, ref, parts, truth.n_samples / truth.sample_rate_hz))

    def pooled(words_of) -> tuple[float, dict[str, float]]:
        per = {}
        errors = length = 0.0
        for condition, ref, parts, duration in data:
            wer = word_error_rate(ref, _canon_whisper(" ".join(w.text for w in words_of(parts, duration))))
            per[condition] = wer
            errors += wer * len(ref.split())
            length += len(ref.split())
        return errors / length, per

    results = []
    for values in itertools.product(*GRID.values()):
        rover = RoverOptions(**dict(zip(GRID, values, strict=True)))
        confidences = [rover.moonshine_confidence if c is not None else None for _, c in rover_parts(opts)]
        wer, per = pooled(lambda parts, d, rover=rover, confidences=confidences: combine_transcripts(
            parts, confidences, duration_s=d, options=rover).words)
        results.append((wer, rover, per))
    results.sort(key=lambda r: r[0])
    names = ["beam5", "greedy", "moonshine"]
    singles = {n: pooled(lambda parts, d, k=k: parts[k].words) for k, n in enumerate(names)}
    conditions = [c for c, *_ in data]
    head = "| system | " + " | ".join(conditions) + " | pooled |"
    lines = [f"ROVER weights on session annomi-{args.session} ({len(data)} conditions), WER under Whisper's "
             f"normaliser, from {args.transcripts.name}; grid {json.dumps(GRID)}.", "", head,
             "|" + "---|" * (len(conditions) + 2)]
    for n, (wer, per) in singles.items():
        lines.append(f"| {n} | " + " | ".join(f"{100 * per[c]:.1f} %" for c in conditions) + f" | {100 * wer:.1f} % |")
    for wer, rover, per in results[:8]:
        label = f"rover a={rover.alpha} null={rover.null_confidence} moonshine={rover.moonshine_confidence}"
        lines.append(f"| {label} | " + " | ".join(f"{100 * per[c]:.1f} %" for c in conditions)
                     + f" | {100 * wer:.1f} % |")
    best = results[0][1]
    lines += ["", f"Chosen (lowest pooled WER): alpha={best.alpha}, null_confidence={best.null_confidence}, "
              f"moonshine_confidence={best.moonshine_confidence}."]
    md = "\n".join(lines) + "\n"
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{args.out}.md").write_text(md)
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
