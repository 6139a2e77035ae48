r"""CPU cost of the speech front ends (pipeline/audio/enhance.py) per second of audio.

CPU seconds of this process (``time.process_time``: all its threads), not wall time, so a machine shared with
other jobs inflates the figure less than the realistic bench's wall times. Runs each front end ``--repeats`` times
on the first ``--seconds`` of a realistic-bench render (room-far of session 46), or of pyannote's 30 s real
sample when the renders are missing.

    .venv/bin/python -m bench.bench_enhance_cost            # about 1 min of CPU

Writes ``bench/results/enhance_cost.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import soundfile as sf

from bench.render_long import RENDERS_DIR
from bench.results_io import write_results
from pipeline.audio.enhance import METHODS, EnhanceOptions, enhance

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"


def _audio(seconds: float) -> tuple[np.ndarray, str]:
    found = sorted(RENDERS_DIR.glob("realistic-46-room-far-*.flac"))
    if found:
        path, name = found[0], "realistic-46-room-far"
    else:
        import pyannote.audio

        path, name = Path(pyannote.audio.__file__).parent / "sample" / "sample.wav", "pyannote sample"
    x, sr = sf.read(path, dtype="float32")
    assert sr == 16_000
    return x[: int(seconds * sr)], name


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--out", default="enhance_cost")
    args = ap.parse_args(argv)
    x, name = _audio(args.seconds)
    enhance(x[:16_000], EnhanceOptions(method="wpe+denoise"))  # load the denoiser once (not timed)
    rows = []
    for method in METHODS[1:]:
        cpu = []
        for _ in range(args.repeats):
            t = time.process_time()
            enhance(x, EnhanceOptions(method=method))
            cpu.append(time.process_time() - t)
        rows.append({"method": method, "audio_s": x.size / 16_000, "cpu_s": [round(c, 2) for c in cpu],
                     "cpu_per_audio_s": round(min(cpu) / (x.size / 16_000), 4)})
        print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    doc = {"audio": name, "cpus": os.cpu_count(), "load_avg": os.getloadavg(), "rows": rows}
    lines = [f"Audio: {name}, {x.size / 16_000:.0f} s; {os.cpu_count()} CPUs, load average "
             f"{doc['load_avg'][0]:.1f} at the end.", "", "| front end | CPU s per audio s (best of "
             f"{args.repeats}) |", "|---|---:|"]
    lines += [f"| {r['method']} | {r['cpu_per_audio_s']:.3f} |" for r in rows]
    md = "\n".join(lines) + "\n"
    write_results(args.out, doc, md, results=RESULTS)
    return 0


if __name__ == "__main__":
    sys.exit(main())
