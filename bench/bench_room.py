r"""Calibrate and check the blind room estimates (pipeline/audio/room.py) on the realistic bench's rooms.

The dry (clean) renders of the realistic bench (``bench/bench_realistic.py --render-only``) are reverberated in a
6 x 5 x 3 m shoebox (pyroomacoustics, :func:`evaluation.realistic.room_impulse_responses`) for each RT60 and
talker distance of the grid (RT60 0.3-0.9 s, 1-3.5 m: the range of the bench's rooms), with the bench's
-55 dBFS noise floor, and each of those again with stationary noise added at 10, 15 and 20 dB SNR (active speech
over noise, :func:`evaluation.realistic.mix_at_snr`): the bench's HVAC noise (:func:`evaluation.realistic.hvac_noise`)
and pink noise. For each, the raw decay time and the early drop of :func:`pipeline.audio.room.estimate_room`
(uncalibrated: slope 1, intercept 0) and the modulation ratio (:func:`pipeline.audio.room.modulation_ratio_db`)
are measured. The RT60 mapping is fitted on the first session (all noise variants) and checked on the second
(held out), and on the bench's own renders (room-near 0.39 s, room-far 0.77 s, HVAC at 15 dB in the near room,
phone). For a far-microphone measure, the early drop's and the modulation ratio's correlation with distance are
reported, and a line ``log distance = a + b x modulation ratio + c x RT60 estimate`` is fitted on the first
session and checked on the second.

    .venv/bin/python -m bench.bench_room                    # ~5 min on 2 cores; needs the cached renders

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
from bench.results_io import write_results
from evaluation import realistic as rl
from pipeline.audio.room import RoomOptions, estimate_room, modulation_ratio_db

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
ROOM = (6.0, 5.0, 3.0)
RT60S = (0.3, 0.45, 0.6, 0.75, 0.9)
DISTANCES = (1.0, 2.0, 3.5)
NOISES: tuple[tuple[str, float | None], ...] = (("none", None), ("hvac", 20.0), ("hvac", 15.0), ("hvac", 10.0),
                                                ("pink", 20.0), ("pink", 15.0), ("pink", 10.0))
SESSIONS = ("46", "131")
RENDER_CONDITIONS = ("clean", "room-near", "room-far", "hvac-15db", "phone-amr")
SECONDS = 60.0
RAW = RoomOptions(rt60_slope=1.0, rt60_intercept=0.0)
#: The estimator before the noise floor was subtracted (issue #21, first round), calibrated the same way.
BASELINE = RoomOptions(rt60_slope=1.0, rt60_intercept=0.0, noise_percentile=None, min_start_db=25.0)
#: ... and with the calibration it shipped with (fitted on noise-free rooms only).
SHIPPED = dataclasses.replace(BASELINE, rt60_slope=2.24, rt60_intercept=-0.257)


def _render(session: str, condition: str) -> Path | None:
    found = sorted(RENDERS_DIR.glob(f"realistic-{session}-{condition}-*.flac"))
    return found[0] if found else None


def pink_noise(n: int, rng: np.random.Generator) -> np.ndarray:
    """Unit-RMS pink noise (power falling 3 dB per octave), shaped in the frequency domain."""
    spectrum = rng.standard_normal(n // 2 + 1) + 1j * rng.standard_normal(n // 2 + 1)
    spectrum[0] = 0.0
    spectrum[1:] /= np.sqrt(np.arange(1, spectrum.size))
    x = np.fft.irfft(spectrum, n)
    return x / np.sqrt(np.mean(x * x))


def _noise_name(kind: str, snr_db: float | None) -> str:
    return kind if snr_db is None else f"{kind}-{snr_db:.0f}db"


def grid(sessions: Sequence[str], *, log: bool = True) -> list[dict]:
    """One row per session x RT60 x distance x noise: simulated RT60, raw decay time, early drop, modulation ratio."""
    rows = []
    rooms = {rt60: rl.room_impulse_responses(ROOM, rt60, list(DISTANCES), sr=16_000) for rt60 in RT60S}
    for s_index, session in enumerate(sessions):
        path = _render(session, "clean")
        if path is None:
            continue
        dry, sr = sf.read(path, dtype="float64")
        dry = dry[: int(SECONDS * sr)]
        floor = np.random.default_rng(0).standard_normal(dry.size) * 10 ** (-55 / 20)
        for r_index, rt60 in enumerate(RT60S):
            rirs, measured = rooms[rt60]
            for d_index, (distance, rir) in enumerate(zip(DISTANCES, rirs, strict=True)):
                wet = rl.reverberate(dry, rir)
                wet *= 10 ** (-23 / 20) / np.sqrt(rl.active_power(wet, sr))
                for n_index, (kind, snr_db) in enumerate(NOISES):
                    x = wet
                    if snr_db is not None:
                        rng = np.random.default_rng([s_index, r_index, d_index, n_index])
                        noise = rl.hvac_noise(wet.size, sr, rng) if kind == "hvac" else pink_noise(wet.size, rng)
                        x, _ = rl.mix_at_snr(wet, noise, snr_db, sr)
                    est = estimate_room(x + floor, sample_rate_hz=sr, options=RAW)
                    base = estimate_room(x + floor, sample_rate_hz=sr, options=BASELINE)
                    rows.append({"session": session, "noise": _noise_name(kind, snr_db), "rt60_asked_s": rt60,
                                 "rt60_simulated_s": round(measured, 3), "distance_m": distance,
                                 "raw_decay_s": est.rt60_s, "early_drop_db": est.early_drop_db, "decays": est.decays,
                                 "baseline_raw_decay_s": base.rt60_s,
                                 "modulation_ratio_db": modulation_ratio_db(x + floor, sample_rate_hz=sr)})
                    if log:
                        print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    return rows


def fit(rows: Sequence[dict], key: str = "raw_decay_s") -> tuple[float, float]:
    """Least-squares ``simulated RT60 = slope x raw + intercept`` over the rows with a raw estimate (``key``)."""
    rows = [r for r in rows if r[key] is not None]
    x = np.array([r[key] for r in rows])
    y = np.array([r["rt60_simulated_s"] for r in rows])
    slope, intercept = np.polyfit(x, y, 1)
    return float(slope), float(intercept)


def _r(rows: Sequence[dict], key: str, target: str = "distance_m") -> float | None:
    pairs = [(r[key], r[target]) for r in rows if r.get(key) is not None]
    if len(pairs) < 3:
        return None
    a, b = np.array(pairs).T
    return round(float(np.corrcoef(a, b)[0, 1]), 3)


def held_out_errors(test: Sequence[dict], key: str = "rt60_estimate_s") -> list[dict]:
    """Per noise variant: rows, rows with an estimate, mean and max absolute RT60 error on the held-out session."""
    out = []
    for kind, snr_db in NOISES:
        name = _noise_name(kind, snr_db)
        sel = [r for r in test if r["noise"] == name]
        err = [abs(r[key] - r["rt60_simulated_s"]) for r in sel if r[key] is not None]
        out.append({"noise": name, "rows": len(sel), "estimated": len(err),
                    "mae_s": round(float(np.mean(err)), 3) if err else None,
                    "max_s": round(float(np.max(err)), 3) if err else None})
    return out


def distance_model(train: Sequence[dict], test: Sequence[dict]) -> dict:
    """``log distance = a + b x modulation ratio + c x RT60 estimate`` fitted on ``train``, scored on ``test``."""
    def usable(rows: Sequence[dict]) -> list[dict]:
        return [r for r in rows if r["modulation_ratio_db"] is not None and r["rt60_estimate_s"] is not None]

    def design(rows: Sequence[dict]) -> np.ndarray:
        return np.array([[1.0, r["modulation_ratio_db"], r["rt60_estimate_s"]] for r in rows])

    tr, te = usable(train), usable(test)
    coef, *_ = np.linalg.lstsq(design(tr), np.log([r["distance_m"] for r in tr]), rcond=None)
    out = {"coef": [round(float(c), 4) for c in coef], "train_rows": len(tr), "test_rows": len(te)}
    for name, rows in (("train", tr), ("test", te)):
        pred = np.exp(design(rows) @ coef)
        true = np.array([r["distance_m"] for r in rows])
        out[f"{name}_r"] = round(float(np.corrcoef(pred, true)[0, 1]), 3)
        out[f"{name}_median_m"] = {f"{d:g}": round(float(np.median(pred[true == d])), 2) for d in DISTANCES}
    return out


def markdown(doc: dict) -> str:
    s, b = doc["fit"]["slope"], doc["fit"]["intercept"]
    far = doc["distance"]
    bs, bb = doc["baseline_fit"]["slope"], doc["baseline_fit"]["intercept"]
    lines = [f"Calibration (fitted on session {doc['fit']['on']}, every noise variant): RT60 = {s:.3f} x raw decay "
             f"time + {b:.3f} s; baseline (no noise subtraction, decays from 25 dB above the floor; same fit): "
             f"{bs:.3f} x raw + {bb:.3f} s. Held-out (session {doc['fit']['held_out']}) RT60 error per noise "
             "variant (baseline in brackets):", "",
             "| noise | rooms | with an estimate | mean abs. error s | max abs. error s |", "|---|---:|---:|---:|---:|"]
    for e, o in zip(doc["held_out"], doc["baseline_held_out"], strict=True):
        mae, worst, o_mae, o_worst = ("–" if x[k] is None else x[k] for x in (e, o) for k in ("mae_s", "max_s"))
        lines.append(f"| {e['noise']} | {e['rows']} | {e['estimated']} ({o['estimated']}) | {mae} ({o_mae}) | "
                     f"{worst} ({o_worst}) |")
    lines += ["", "Far microphone: correlation with the talker's distance (noise-free rooms, both sessions; per "
              "session 46 / 131): early drop "
              f"{far['early_drop_r']} ({far['early_drop_r_46']} / {far['early_drop_r_131']})"
              f", modulation ratio {far['modulation_r']} ({far['modulation_r_46']} / {far['modulation_r_131']}); "
              f"modulation ratio with RT60 (simulated) {far['modulation_rt60_r']}. Distance from the modulation ratio "
              f"and the RT60 estimate (fitted on {doc['fit']['on']}, all noise variants, {far['model']['train_rows']} "
              f"rooms): r = {far['model']['train_r']} on the fitted session, **{far['model']['test_r']} held out** "
              f"({far['model']['test_rows']} rooms); median predicted distance at 1 / 2 / 3.5 m held out: "
              + " / ".join(f"{v} m" for v in far["model"]["test_median_m"].values()) + ".", "",
              "| session | noise | RT60 simulated s | distance m | raw decay s | RT60 estimate s | early drop dB | "
              "modulation ratio dB | decays |", "|---|---|---:|---:|---:|---:|---:|---:|---:|"]

    def f(x: float | None, nd: int) -> str:
        return "–" if x is None else f"{x:.{nd}f}"

    for r in doc["grid"]:
        lines.append(f"| {r['session']} | {r['noise']} | {r['rt60_simulated_s']:.2f} | {r['distance_m']:.1f} | "
                     f"{f(r['raw_decay_s'], 3)} | {f(r['rt60_estimate_s'], 2)} | {f(r['early_drop_db'], 1)} | "
                     f"{f(r['modulation_ratio_db'], 2)} | {r['decays']} |")
    lines += ["", "Bench renders (calibrated estimate):", "", "| render | RT60 simulated s | RT60 estimate s | "
              "baseline RT60 estimate s (as shipped) | early drop dB | modulation ratio dB | decays |",
              "|---|---:|---:|---:|---:|---:|---:|"]
    for r in doc["renders"]:
        lines.append(f"| {r['render']} | {r['rt60_simulated_s'] or '–'} | {f(r['rt60_estimate_s'], 2)} | "
                     f"{f(r['baseline_rt60_estimate_s'], 2)} ({f(r['shipped_rt60_estimate_s'], 2)}) | "
                     f"{f(r['early_drop_db'], 1)} | "
                     f"{f(r['modulation_ratio_db'], 2)} | {r['decays']} |")
    lines += ["", f"Run time {doc['run_s']} s."]
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="room", help="stem of the JSON/Markdown under bench/results/")
    args = ap.parse_args(argv)
    if any(_render(s, "clean") is None for s in SESSIONS):
        print("needs the realistic bench's clean renders: run `.venv/bin/python -m bench.bench_realistic "
              "--conditions clean room-near room-far hvac-15db phone-amr --render-only` first; nothing to do")
        return 0
    t0 = time.perf_counter()
    rows = grid(SESSIONS)
    train = [r for r in rows if r["session"] == SESSIONS[0]]
    slope, intercept = fit(train)
    b_slope, b_intercept = fit(train, "baseline_raw_decay_s")
    for r in rows:
        for key, raw, (a, b) in (("rt60_estimate_s", "raw_decay_s", (slope, intercept)),
                                 ("baseline_rt60_estimate_s", "baseline_raw_decay_s", (b_slope, b_intercept))):
            r[key] = None if r[raw] is None else round(max(a * r[raw] + b, 0.0), 3)
    test = [r for r in rows if r["session"] == SESSIONS[1]]
    quiet = [r for r in rows if r["noise"] == "none"]
    distance = {"early_drop_r": _r(quiet, "early_drop_db"), "modulation_r": _r(quiet, "modulation_ratio_db"),
                "modulation_rt60_r": _r(quiet, "modulation_ratio_db", "rt60_simulated_s"),
                "model": distance_model(train, test)}
    for s in SESSIONS:
        sel = [r for r in quiet if r["session"] == s]
        distance[f"early_drop_r_{s}"] = _r(sel, "early_drop_db")
        distance[f"modulation_r_{s}"] = _r(sel, "modulation_ratio_db")
    calibrated = RoomOptions(rt60_slope=round(slope, 3), rt60_intercept=round(intercept, 3))
    baseline = dataclasses.replace(BASELINE, rt60_slope=round(b_slope, 3), rt60_intercept=round(b_intercept, 3))
    renders = []
    for session in SESSIONS:
        for condition in RENDER_CONDITIONS:
            path = _render(session, condition)
            if path is None:
                continue
            meta = json.loads(path.with_name(path.stem + ".render.json").read_text())
            x, sr = sf.read(path, dtype="float64")
            est = estimate_room(x, sample_rate_hz=sr, options=calibrated)
            renders.append({"render": f"annomi-{session} {condition}", "rt60_simulated_s": meta.get("rt60_measured_s"),
                            "rt60_estimate_s": est.rt60_s, "early_drop_db": est.early_drop_db, "decays": est.decays,
                            "baseline_rt60_estimate_s": estimate_room(x, sample_rate_hz=sr, options=baseline).rt60_s,
                            "shipped_rt60_estimate_s": estimate_room(x, sample_rate_hz=sr, options=SHIPPED).rt60_s,
                            "modulation_ratio_db": modulation_ratio_db(x, sample_rate_hz=sr)})
    doc = {"options": dataclasses.asdict(RAW), "room_m": ROOM, "seconds": SECONDS,
           "noises": [_noise_name(k, s) for k, s in NOISES],
           "fit": {"on": SESSIONS[0], "held_out": SESSIONS[1], "slope": slope, "intercept": intercept},
           "baseline_options": dataclasses.asdict(BASELINE),
           "baseline_fit": {"slope": b_slope, "intercept": b_intercept},
           "held_out": held_out_errors(test), "baseline_held_out": held_out_errors(test, "baseline_rt60_estimate_s"),
           "distance": distance, "grid": rows, "renders": renders,
           "run_s": round(time.perf_counter() - t0, 1)}
    md = markdown(doc)
    write_results(args.out, doc, md, results=RESULTS)
    return 0


if __name__ == "__main__":
    sys.exit(main())
