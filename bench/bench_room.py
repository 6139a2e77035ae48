r"""Calibrate and check the blind room estimate (pipeline/audio/room.py) on the realistic bench's rooms.

The dry (clean) renders of the realistic bench (``bench/bench_realistic.py --render-only``) are reverberated in a
6 x 5 x 3 m shoebox (pyroomacoustics, :func:`evaluation.realistic.room_impulse_responses`) for each RT60 and
talker distance of the grid (RT60 0.3-0.9 s, 1-3.5 m: the range of the bench's rooms), with the bench's
-55 dBFS noise floor. For each, the raw decay time and the early drop of :func:`pipeline.audio.room.estimate_room`
(uncalibrated: slope 1, intercept 0) are measured. The RT60 mapping is fitted on the first session and checked
on the second (held out), and on the bench's own room renders (room-near 0.39 s, room-far 0.77 s, phone).

    .venv/bin/python -m bench.bench_room                    # ~1-2 min on 2 cores; needs the cached renders

Writes ``bench/results/room.json`` and ``.md``. Exits 0 with a message when the renders are missing.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import soundfile as sf

from bench.render_long import RENDERS_DIR
from evaluation import realistic as rl
from pipeline.audio.room import RoomOptions, estimate_room

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
ROOM = (6.0, 5.0, 3.0)
RT60S = (0.3, 0.45, 0.6, 0.75, 0.9)
DISTANCES = (1.0, 2.0, 3.5)
SESSIONS = ("46", "131")
SECONDS = 60.0
RAW = RoomOptions(rt60_slope=1.0, rt60_intercept=0.0)


def _render(session: str, condition: str) -> Path | None:
    found = sorted(RENDERS_DIR.glob(f"realistic-{session}-{condition}-*.flac"))
    return found[0] if found else None


def grid(sessions: Sequence[str], *, log: bool = True) -> list[dict]:
    """One row per session x RT60 x distance: simulated RT60, raw decay time, early drop."""
    rows = []
    for session in sessions:
        path = _render(session, "clean")
        if path is None:
            continue
        dry, sr = sf.read(path, dtype="float64")
        dry = dry[: int(SECONDS * sr)]
        floor = np.random.default_rng(0).standard_normal(dry.size) * 10 ** (-55 / 20)
        for rt60 in RT60S:
            rirs, measured = rl.room_impulse_responses(ROOM, rt60, list(DISTANCES), sr=sr)
            for distance, rir in zip(DISTANCES, rirs, strict=True):
                wet = rl.reverberate(dry, rir)
                wet *= 10 ** (-23 / 20) / np.sqrt(rl.active_power(wet, sr))
                est = estimate_room(wet + floor, sample_rate_hz=sr, options=RAW)
                rows.append({"session": session, "rt60_asked_s": rt60, "rt60_simulated_s": round(measured, 3),
                             "distance_m": distance, "raw_decay_s": est.rt60_s, "early_drop_db": est.early_drop_db,
                             "decays": est.decays})
                if log:
                    print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    return rows


def fit(rows: Sequence[dict]) -> tuple[float, float]:
    """Least-squares ``simulated RT60 = slope x raw + intercept``."""
    x = np.array([r["raw_decay_s"] for r in rows])
    y = np.array([r["rt60_simulated_s"] for r in rows])
    slope, intercept = np.polyfit(x, y, 1)
    return float(slope), float(intercept)


def markdown(doc: dict) -> str:
    s, b = doc["fit"]["slope"], doc["fit"]["intercept"]
    lines = [f"Calibration (fitted on session {doc['fit']['on']}): RT60 = {s:.3f} x raw decay time + {b:.3f} s. "
             f"Held-out error (session {doc['fit']['held_out']}): mean |error| {doc['held_out_mae_s']:.3f} s, "
             f"max {doc['held_out_max_s']:.3f} s. Correlation of the early drop with distance: "
             f"{doc['early_drop_distance_r']:.2f}.", "",
             "| session | RT60 simulated s | distance m | raw decay s | RT60 estimate s | early drop dB |",
             "|---|---:|---:|---:|---:|---:|"]
    for r in doc["grid"]:
        lines.append(f"| {r['session']} | {r['rt60_simulated_s']:.2f} | {r['distance_m']:.1f} | "
                     f"{r['raw_decay_s']:.3f} | {r['rt60_estimate_s']:.2f} | {r['early_drop_db']:.1f} |")
    lines += ["", "Bench renders (calibrated estimate):", "", "| render | RT60 simulated s | RT60 estimate s | "
              "early drop dB |", "|---|---:|---:|---:|"]
    for r in doc["renders"]:
        lines.append(f"| {r['render']} | {r['rt60_simulated_s'] or '–'} | {r['rt60_estimate_s']} | "
                     f"{r['early_drop_db']} |")
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="room", help="stem of the JSON/Markdown under bench/results/")
    args = ap.parse_args(argv)
    if any(_render(s, "clean") is None for s in SESSIONS):
        print("needs the realistic bench's clean renders: run `.venv/bin/python -m bench.bench_realistic "
              "--conditions clean room-near room-far phone-amr --render-only` first; nothing to do")
        return 0
    t0 = time.perf_counter()
    rows = grid(SESSIONS)
    train = [r for r in rows if r["session"] == SESSIONS[0]]
    slope, intercept = fit(train)
    for r in rows:
        r["rt60_estimate_s"] = round(slope * r["raw_decay_s"] + intercept, 3)
    test = [r for r in rows if r["session"] == SESSIONS[1]]
    errors = [abs(r["rt60_estimate_s"] - r["rt60_simulated_s"]) for r in test]
    drops = np.array([r["early_drop_db"] for r in rows])
    dists = np.array([r["distance_m"] for r in rows])
    calibrated = RoomOptions(rt60_slope=round(slope, 3), rt60_intercept=round(intercept, 3))
    renders = []
    for session in SESSIONS:
        for condition in ("clean", "room-near", "room-far", "phone-amr"):
            path = _render(session, condition)
            if path is None:
                continue
            meta = json.loads(path.with_name(path.stem + ".render.json").read_text())
            x, sr = sf.read(path, dtype="float64")
            est = estimate_room(x, sample_rate_hz=sr, options=calibrated)
            renders.append({"render": f"annomi-{session} {condition}", "rt60_simulated_s": meta.get("rt60_measured_s"),
                            "rt60_estimate_s": est.rt60_s, "early_drop_db": est.early_drop_db})
    doc = {"options": dataclasses.asdict(RAW), "room_m": ROOM, "seconds": SECONDS,
           "fit": {"on": SESSIONS[0], "held_out": SESSIONS[1], "slope": slope, "intercept": intercept},
           "held_out_mae_s": float(np.mean(errors)), "held_out_max_s": float(np.max(errors)),
           "early_drop_distance_r": float(np.corrcoef(drops, dists)[0, 1]), "grid": rows, "renders": renders,
           "run_s": round(time.perf_counter() - t0, 1)}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{args.out}.json").write_text(json.dumps(doc, indent=1) + "\n")
    md = markdown(doc)
    (RESULTS / f"{args.out}.md").write_text(md)
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
