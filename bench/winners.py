"""The winner per condition across the realistic bench's committed runs, pooled over both sessions.

``python -m bench.winners [RESULT.json ...] [--out winners]``

Reads realistic-bench results (default: the issue-#21 runs under ``bench/results/``: greedy against beam 5, the
ROVER runs on each session) and, for every condition and configuration (ASR and
front end) measured on **both** sessions, pools the Whisper-normalised WER by reference words. A configuration
measured in two runs on the same render (greedy and beam 5 appear in several) is counted once, from the first file
that has it. The winner is the lowest pooled WER; the CPU seconds per audio second of ASR + diarization are
pooled the same way. No decoding: it only recombines the committed figures.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.results_io import RESULTS, write_results

DEFAULT_RUNS = ("realistic-beam5.json", "realistic-rover-46.json", "realistic-rover-131.json",
                "realistic-rover-131b.json")
SESSIONS = ("annomi-46", "annomi-131")


def _config(row: dict[str, Any]) -> str:
    front = row.get("front_end", "none")
    return row["asr"] if front == "none" else f"{row['asr']} + {front}"


def collect(docs: Sequence[dict[str, Any]]) -> dict[tuple[str, str, str], dict[str, Any]]:
    """(condition, configuration, session) -> the first row measured for it."""
    seen: dict[tuple[str, str, str], dict[str, Any]] = {}
    for doc in docs:
        for row in doc["rows"]:
            if row.get("attribution_method", "overlap-aware") != "overlap-aware" or row.get("wer_whisper") is None:
                continue
            seen.setdefault((row["condition"], _config(row), row["session"]), row)
    return seen


def winners(seen: dict[tuple[str, str, str], dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for condition in dict.fromkeys(c for c, _, _ in seen):
        pooled = {}
        for config in dict.fromkeys(k for c, k, _ in seen if c == condition):
            rows = [seen.get((condition, config, s)) for s in SESSIONS]
            if any(r is None for r in rows):
                continue  # measured on one session only
            words = sum(r["n_ref_words_whisper"] for r in rows)
            audio = sum(r["audio_s"] for r in rows)
            cpu = sum((r.get("asr_cpu_s") or 0.0) + (r.get("diarization_cpu_s") or 0.0) for r in rows)
            pooled[config] = {"wer": sum(r["wer_whisper"] * r["n_ref_words_whisper"] for r in rows) / words,
                              "cpu_per_audio_s": cpu / audio if audio else None}
        if pooled:
            best = min(pooled, key=lambda k: pooled[k]["wer"])
            out.append({"condition": condition, "winner": best, "configs": pooled})
    return out


def markdown(table: Sequence[dict[str, Any]], sources: Sequence[str]) -> str:
    configs = list(dict.fromkeys(k for t in table for k in t["configs"]))
    lines = [f"Pooled Whisper-normalised WER over annomi-46 and annomi-131 (`python -m bench.winners`; from "
             f"{', '.join(sources)}); – where a configuration was not run on both sessions; CPU s per audio second "
             "of ASR + diarization in brackets.", "",
             "| condition | winner | " + " | ".join(configs) + " |", "|---|---|" + "---:|" * len(configs)]
    for t in table:
        cells = []
        for k in configs:
            c = t["configs"].get(k)
            cells.append("–" if c is None else f"{100 * c['wer']:.1f} % ({c['cpu_per_audio_s']:.2f})"
                         if c["cpu_per_audio_s"] is not None else f"{100 * c['wer']:.1f} %")
        lines.append(f"| {t['condition']} | {t['winner']} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("results", nargs="*", type=Path, help="realistic-bench result JSONs (default: issue #21's runs)")
    ap.add_argument("--out", default="winners", help="stem of the JSON/Markdown under bench/results/")
    args = ap.parse_args(argv)
    paths = args.results or [RESULTS / name for name in DEFAULT_RUNS]
    present = [p for p in paths if p.is_file()]
    if not present:
        print("no realistic-bench results found: run python -m bench.bench_realistic first; nothing to do")
        return 0
    table = winners(collect([json.loads(p.read_text()) for p in present]))
    sources = [p.name for p in present]
    write_results(args.out, {"sources": sources, "winners": table}, markdown(table, sources), results=RESULTS)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
