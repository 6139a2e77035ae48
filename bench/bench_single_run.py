"""Single run side by side: the naive chain, the whole ``alliance process`` command, and its session flow alone.

``python -m bench.bench_single_run [--minutes 8.6] [--repeats 1] [--variants default batched] [--json PATH]
[--markdown PATH]``: renders (or reuses) a two-speaker render of real AnnoMI dialogue of about ``--minutes``
(bench.render_long), then, in the same run and interleaved, runs the naive chain (openai-whisper float32 on the
whole file, then pyannote's default pipeline, in a fresh process: ``bench.bench_long``'s ``naive`` configuration)
and the real ``alliance process`` command in a fresh process (timed from outside; its session flow's own time from
``ALLIANCE_STARTUP_TIMINGS``), once per ``--variants`` entry after each naive run. Reports each wall time and the
ratios against the naive chain.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from pathlib import Path

from bench.bench_long import machine_info, run_in_subprocess
from bench.bench_startup import alliance_run, offline_env
from bench.render_long import LongSpec, render_long

IDS = ["--session-id", "single-001", "--client-id", "c1", "--therapist-id", "t1"]


#: ``alliance process`` variants besides the defaults: extra arguments.
VARIANTS = {"default": [], "greedy": ["--asr-beam-size", "1"], "batched": ["--asr-batch-size", "8"]}


def run(minutes: float, repeats: int, variants: list[str] | None = None) -> dict:
    render = render_long(LongSpec(minutes=minutes))
    rows = []
    with tempfile.TemporaryDirectory(prefix="single-run-") as tmp:
        folder = Path(tmp)
        audio = folder / render.audio.name
        audio.write_bytes(render.audio.read_bytes())
        audio.with_name(audio.name + ".consent.json").write_text(json.dumps(
            {"session_id": "single-001", "client_id": "c1", "scope": "research", "consented_on": "2026-01-01",
             "consented_by": ["client", "therapist"]}))
        for k in range(repeats):
            naive = run_in_subprocess(render.audio, render.truth, "naive", timeout_s=1800)
            for j, variant in enumerate(variants or ["default"]):
                ours = alliance_run(["process", str(audio), *IDS, "--db", str(folder / "alliance.duckdb"),
                                     "--reports-dir", str(folder / "reports"), *(["--force"] if k or j else []),
                                     *VARIANTS[variant]], offline_env())
                rows.append({"repeat": k + 1, "variant": variant, "naive_wall_s": naive.get("process_wall_s"),
                             "naive_error": naive.get("error"),
                             "naive_wer": naive.get("wer"), "naive_der": naive.get("der"),
                             "whole_command_s": ours["total_s"], "in_flow_s": ours["in_flow_s"],
                             "exit": ours["exit"], "phases": ours.get("phases"),
                             "peak_rss_mb": ours.get("peak_rss_mb"),
                             "load_avg_1m": round(os.getloadavg()[0], 2)})
    for r in rows:
        if r["naive_error"] or r["exit"] != 0:
            continue  # a failed run has no speed to compare
        if r["naive_wall_s"] and r["whole_command_s"]:
            r["speedup_whole"] = round(r["naive_wall_s"] / r["whole_command_s"], 2)
        if r["naive_wall_s"] and r["in_flow_s"]:
            r["speedup_in_flow"] = round(r["naive_wall_s"] / r["in_flow_s"], 2)
    return {"audio_s": round(render.duration_s, 1), "rows": rows, "machine": machine_info(with_torch=False)}


def markdown(doc: dict) -> str:
    out = [f"Render of {doc['audio_s']} s; targets: whole command >= 4x faster than the naive chain, "
           "in-flow >= 5x.",
           "",
           "| repeat | `alliance process` | naive chain s | whole `alliance process` s | in flow s | whole vs naive | "
           "in flow vs naive | peak RSS MB | load (1 min) |",
           "|---:|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in doc["rows"]:
        args = " ".join(VARIANTS[r.get("variant", "default")]) or "defaults"
        out.append(f"| {r['repeat']} | {args} | {r['naive_wall_s']} | {r['whole_command_s']} | {r['in_flow_s']} | "
                   f"{r.get('speedup_whole', 'n/a')}x | {r.get('speedup_in_flow', 'n/a')}x | "
                   f"{r.get('peak_rss_mb', '-')} | {r.get('load_avg_1m', '-')} |")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=8.6, help="render length (the issue's session: 514 s)")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--variants", nargs="+", default=["default"], choices=list(VARIANTS),
                        help="alliance process variants, each run after the naive chain in every repeat "
                        "(batched: --asr-batch-size 8)")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--markdown", type=Path)
    args = parser.parse_args(argv)
    doc = run(args.minutes, args.repeats, args.variants)
    table = markdown(doc)
    print(json.dumps(doc, indent=1, default=str))
    print(table)
    if args.json:
        args.json.write_text(json.dumps(doc, indent=1, default=str) + "\n", encoding="utf-8")
    if args.markdown:
        args.markdown.write_text(table + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
