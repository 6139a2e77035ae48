"""The word error rate a transcript's mean word probability predicts: fitted on one session, checked on another.

``python -m bench.calibrate_expected_wer [--result bench/results/realistic-beam5.json]
[--transcripts bench/results/realistic-beam5.transcripts.json] [--out expected_wer]``

Reads a realistic-bench result and its transcript cache (``python -m bench.bench_realistic --asr greedy beam5
--out realistic-beam5 --transcripts ...``; no decoding here). For every Whisper transcript of a render it takes the
mean probability of all its words (what :func:`pipeline.analysis.quality.expected_wer` reads) and the render's
Whisper-normalised WER. A least-squares line ``WER = a + b x mean probability`` is fitted on **session annomi-46**
only (8 conditions x greedy and beam 5 = 16 transcripts) and scored **held out on annomi-131** (16) and on
pyannote's real sample (2): mean and largest absolute error, in points of WER. The plan (one line, both
decodings, fitted on 46, scored on 131) was fixed before the held-out rows were looked at; the correlation of the
two quantities was seen on both sessions first (2026-12-07, by hand, -0.96 to -0.99 per session and decoding).
The product's constants (:data:`pipeline.analysis.quality.EXPECTED_WER_LINE`) are this fit; a test checks that they
equal ``bench/results/expected_wer.json``.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from bench.bench_realistic import render_of
from bench.results_io import RESULTS, write_results

FIT_SESSION, HELD_OUT_SESSION = "annomi-46", "annomi-131"


def points(result: dict[str, Any], cache: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per Whisper transcript: session, condition, decoding, mean word probability, WER."""
    wer = {(r["session"], r["condition"], r["asr"]): r["wer_whisper"] for r in result["rows"]
           if r.get("front_end", "none") == "none" and r.get("wer_whisper") is not None}
    out = []
    for key, entry in cache.items():
        name, front_end, _stage, options = key.split("|", 3)
        if front_end != "none" or "backend='faster-whisper'" not in options:
            continue
        asr = "beam5" if "beam_size=5," in options else "greedy" if "beam_size=1," in options else None
        session, condition = render_of(name)
        probabilities = [w[3] for w in entry["transcript"]["words"]]
        if asr is None or not probabilities or (session, condition, asr) not in wer:
            continue
        out.append({"session": session, "condition": condition, "asr": asr,
                    "mean_word_probability": float(np.mean(probabilities)),
                    "wer_whisper": wer[(session, condition, asr)]})
    return sorted(out, key=lambda r: (r["session"], r["condition"], r["asr"]))


def fit(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    train = [r for r in rows if r["session"] == FIT_SESSION]
    slope, intercept = np.polyfit([r["mean_word_probability"] for r in train], [r["wer_whisper"] for r in train], 1)

    def scored(sel: Sequence[dict[str, Any]]) -> dict[str, Any]:
        err = [intercept + slope * r["mean_word_probability"] - r["wer_whisper"] for r in sel]
        return {"n": len(sel), "mean_abs_error": float(np.mean(np.abs(err))) if err else None,
                "max_abs_error": float(np.max(np.abs(err))) if err else None,
                "mean_error": float(np.mean(err)) if err else None}

    for r in rows:
        r["expected_wer"] = float(intercept + slope * r["mean_word_probability"])
    return {"intercept": round(float(intercept), 4), "slope": round(float(slope), 4), "fitted_on": FIT_SESSION,
            "fit": scored(train), "held_out": scored([r for r in rows if r["session"] == HELD_OUT_SESSION]),
            "real_sample": scored([r for r in rows if r["session"] == "pyannote-sample"])}


def markdown(doc: dict[str, Any]) -> str:
    line = doc["line"]
    lines = [f"Expected WER = {line['intercept']} + {line['slope']} x mean word probability, fitted on "
             f"{line['fitted_on']} ({line['fit']['n']} transcripts; greedy and beam 5). Held out on "
             f"{HELD_OUT_SESSION}: mean absolute error {100 * line['held_out']['mean_abs_error']:.1f} points, largest "
             f"{100 * line['held_out']['max_abs_error']:.1f}, mean error {100 * line['held_out']['mean_error']:+.1f} "
             f"({line['held_out']['n']} transcripts); real sample: mean absolute error "
             f"{100 * line['real_sample']['mean_abs_error']:.1f} points ({line['real_sample']['n']}).", "",
             "| session | condition | decoding | mean word probability | WER | expected WER |",
             "|---|---|---|---:|---:|---:|"]
    for r in doc["rows"]:
        lines.append(f"| {r['session']} | {r['condition']} | {r['asr']} | {r['mean_word_probability']:.3f} | "
                     f"{100 * r['wer_whisper']:.1f} % | {100 * r['expected_wer']:.1f} % |")
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--result", type=Path, default=RESULTS / "realistic-beam5.json")
    ap.add_argument("--transcripts", type=Path, default=RESULTS / "realistic-beam5.transcripts.json")
    ap.add_argument("--out", default="expected_wer", help="stem of the JSON/Markdown under bench/results/")
    args = ap.parse_args(argv)
    if not (args.result.is_file() and args.transcripts.is_file()):
        print(f"needs {args.result} and {args.transcripts} (python -m bench.bench_realistic --asr greedy beam5 "
              "--out realistic-beam5 --transcripts ...): nothing to do")
        return 0
    rows = points(json.loads(args.result.read_text()), json.loads(args.transcripts.read_text()))
    doc = {"source": [str(args.result), str(args.transcripts)], "line": fit(rows), "rows": rows}
    md = markdown(doc)
    write_results(args.out, doc, md, results=RESULTS)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
