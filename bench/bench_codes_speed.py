"""What coding costs: the shipped MI coder's wall time per transcript length, beside a TF-IDF-only baseline.

    python -m bench.bench_codes_speed [--out bench/results/codes_speed.json]

Times the product's own ``ProcessCoder.code`` (with the frozen encoder, nothing cached) on three AnnoMI
transcripts of different lengths, and baseline A (TF-IDF of the utterance and the one before, no encoder) fitted
on train/dev and timed on the same transcripts in the same run. Needs ../shared/data/annomi.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from pathlib import Path

from evaluation.codes.annomi import DEFAULT_ANNOMI, SPLIT_PATH, load_annomi
from evaluation.codes.select import BASELINE_A, task_items
from pipeline.codes.coder import UtteranceCoder
from pipeline.codes.context import contexts


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--annomi", type=Path, default=DEFAULT_ANNOMI)
    parser.add_argument("--out", type=Path, default=Path("bench/results/codes_speed.json"))
    args = parser.parse_args(argv)
    if not (args.annomi / "AnnoMI-simple.csv").is_file():
        print(f"skipped: {args.annomi} not available", file=sys.stderr)
        return 0
    from pipeline.engine.runtime import get_process_coder

    t0 = time.perf_counter()
    coder, encoder = get_process_coder()
    load_s = time.perf_counter() - t0
    transcripts = load_annomi(args.annomi)
    split = json.loads(SPLIT_PATH.read_text())
    test = sorted(split["test"], key=lambda t: len(transcripts[t].utterances))
    picks = [test[len(test) // 4], test[len(test) // 2], test[-1]]
    items, labels, _ = task_items(transcripts, sorted(split["train_dev_folds"], key=int), "therapist")
    baseline = UtteranceCoder(BASELINE_A).fit(items, labels, None)
    rows = []
    for t in picks:
        utts = transcripts[t].coding_utterances()
        minutes = (max(u.start_s for u in utts) - min(u.start_s for u in utts)) / 60
        s = time.perf_counter()
        coder.code(utts, encoder)
        coder_s = time.perf_counter() - s
        ctx = [c for c in contexts(utts) if c.role == "therapist"]
        s = time.perf_counter()
        baseline.predict(ctx, None)
        base_s = time.perf_counter() - s
        rows.append({"transcript": t, "utterances": len(utts), "minutes": round(minutes, 1),
                     "coder_s": round(coder_s, 2), "utterances_per_s": round(len(utts) / coder_s, 1),
                     "baseline_a_therapist_only_s": round(base_s, 3)})
        print(json.dumps(rows[-1]), flush=True)
    out = {"load_s": round(load_s, 2), "threads": os.cpu_count(), "rows": rows,
           "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=1) + "\n")
    print(json.dumps({k: v for k, v in out.items() if k != "rows"}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
