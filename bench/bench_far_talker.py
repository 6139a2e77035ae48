r"""Is one talker much farther from the microphone than the other? Per-speaker room measures, compared (issue #21).

A single recording's modulation ratio or early drop did not measure the talker's distance (``bench/bench_room.py``:
they follow the room's RT60 more than the distance). Both talkers of a session are in the same room, so room terms
(RT60, noise floor, codec) should cancel in a per-speaker *difference*: the farther talker has less direct sound
against the same reverberant field, so a lower modulation ratio, a larger early drop and a lower level.

Grid. The dry (clean) renders of sessions annomi-46 and annomi-131 (``bench/bench_realistic.py --render-only``) are
split into a therapist track and a client track by the render's truth turns (``.truth.json``: each utterance's
samples go to its speaker's track; stretches where both speak are zeroed in both, so every kept sample has one
talker; no diarization model is used). In a 6 x 5 x 3 m shoebox (:func:`evaluation.realistic.room_impulse_responses`,
the room of ``bench/bench_room.py``) each track is convolved with the response from its own position, for RT60
0.3, 0.45, 0.6, 0.75, 0.9 s and the therapist x client distances 1, 2, 3.5 m x 1, 2, 3.5 m (two positions at
least 60 degrees apart, so equal distances are still two different responses). The client track gets a random
vocal-effort offset (uniform -6..+6 dB, seeded per session, room and pair), so that level is not handed the
answer. The mix is set to -23 dBFS active level, the bench's -55 dBFS noise floor is added, and each room is
measured without noise and with the bench's HVAC noise at 15 dB SNR.

Per speaker, on that speaker's truth turns without overlap (the first 0.2 s of each turn dropped, where the other
talker's reverberant tail still rings), :func:`speaker_measures` gives the modulation ratio (the SRMR-like
ratio of :func:`pipeline.audio.room.modulation_ratio_db`, its energies summed over the speaker's frames only), the
modulation depth (the energy of the same four low modulation bands, 4-18 Hz, over the envelopes' total energy:
reverberation fills the dips between syllables; it leaves out the 29-128 Hz bands, where the voice's pitch beats),
the band level (0.3-4 kHz) and, from the free decays starting in the speaker's turns
(:func:`pipeline.audio.room.free_decays`), the raw decay time (25th percentile) and the early drop (median over
the fastest quarter). The differences are client minus therapist.

Rule and criterion (written before session 131 was scored; session 46 alone was looked at while writing the
bench, and showed the modulation ratio *rising* for the far client's voice, hence the depth). A pair counts as
*far* when one talker is at least 1.75 x as far as the other (1/2, 1/3.5, 2/3.5 m, either way), *same* when both
are at the same distance. Candidate scores: the differences of modulation ratio, modulation depth, early drop
and raw decay time, and a line ``log(client / therapist distance) = a + b x modulation-ratio difference + c x
depth difference + d x early-drop difference`` fitted on session 46 (the level difference is reported but is
not a candidate: it carries the talkers' vocal effort). The primary score is the candidate with the highest
AUC on session 46 (both noise variants); the rule flags ``far_talker`` when ``|score| > X``, X maximising
detection minus false alarms (Youden) on 46, the farther talker being the one the score's sign names. A flag is
shipped only if, on session 131 held out (both noise variants): the primary score's AUC for far against same
pairs is at least 0.8, at most 20 % of same pairs are flagged at X, and the named talker is the farther one in at
least 90 % of the flagged far pairs. Also reported for every score: correlation with log(client distance /
therapist distance); for the level difference alone the same (how much of it is level), and the modulation
scores' correlation with the level difference and their partial correlation with the log ratio once the level
difference is taken out.

    .venv/bin/python -m bench.bench_far_talker            # ~4 min on 2 cores; needs the cached clean renders

Writes ``bench/results/far_talker.json`` and ``.md``. Exits 0 with a message when the renders are missing.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import soundfile as sf

from bench.render_long import RENDERS_DIR
from bench.results_io import write_results
from evaluation import realistic as rl
from pipeline.audio.room import (
    MODULATION_BANDS_HZ,
    MODULATION_CHANNELS_HZ,
    RoomOptions,
    envelope_db,
    free_decays,
)

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
ROOM = (6.0, 5.0, 3.0)
RT60S = (0.3, 0.45, 0.6, 0.75, 0.9)
DISTANCES = (1.0, 2.0, 3.5)
NOISES: tuple[tuple[str, float | None], ...] = (("none", None), ("hvac", 15.0))
SESSIONS = ("46", "131")
ROLES = ("therapist", "client")
EFFORT_DB = 6.0
FAR_RATIO = 1.75
TRIM_S = 0.2
#: Shipping criterion on the held-out session (see the module docstring).
MIN_AUC, MAX_FALSE_ALARMS, MIN_DIRECTION = 0.8, 0.2, 0.9
FEATURES = ("modulation_ratio_db", "modulation_depth_db", "level_db", "early_drop_db", "raw_decay_s")


def _render(session: str) -> Path | None:
    found = sorted(RENDERS_DIR.glob(f"realistic-{session}-clean-*.flac"))
    return found[0] if found else None


def speaker_tracks(dry: np.ndarray, utterances: Sequence[Mapping], sr: int) -> tuple[dict[str, np.ndarray],
                                                                                        dict[str, list]]:
    """The dry mix split by the truth turns, and each speaker's turns without overlap (seconds).

    Each utterance's samples go to its role's track; samples where two utterances overlap are zeroed in both.
    """
    count = np.zeros(dry.size, dtype=np.int8)
    for u in utterances:
        count[u["start_sample"]:u["end_sample"]] += 1
    tracks = {role: np.zeros_like(dry) for role in ROLES}
    for u in utterances:
        s, e = u["start_sample"], u["end_sample"]
        keep = count[s:e] == 1
        tracks[u["role"]][s:e][keep] = dry[s:e][keep]
    spans: dict[str, list] = {role: [] for role in ROLES}
    for u in utterances:
        s, e = u["start_sample"], u["end_sample"]
        alone = np.flatnonzero(count[s:e] == 1)
        if alone.size == 0:
            continue
        # contiguous runs of samples with one talker
        breaks = np.flatnonzero(np.diff(alone) > 1)
        for a, b in zip(np.r_[0, breaks + 1], np.r_[breaks, alone.size - 1], strict=True):
            spans[u["role"]].append(((s + alone[a]) / sr, (s + alone[b] + 1) / sr))
    return tracks, spans


def _mask(spans: Sequence[tuple[float, float]], rate: float, n: int, trim_s: float) -> np.ndarray:
    m = np.zeros(n, dtype=bool)
    for s, e in spans:
        a, b = int(math.ceil((s + trim_s) * rate)), int(e * rate)
        if b > a:
            m[max(a, 0):min(b, n)] = True
    return m


def speaker_measures(samples: np.ndarray, spans: Mapping[str, Sequence[tuple[float, float]]], *, sr: int,
                     trim_s: float = TRIM_S, min_decays: int = 5) -> dict[str, dict[str, float | None]]:
    """Per speaker: modulation ratio, band level, raw decay time and early drop on that speaker's spans only."""
    from scipy.signal import butter, gammatone, lfilter, sosfilt

    x = np.asarray(samples, dtype=np.float64)
    env_rate = 400
    step = sr // env_rate
    n_env = -(-x.size // step)
    masks = {k: _mask(v, env_rate, n_env, trim_s) for k, v in spans.items()}
    smooth = butter(2, 150.0, fs=sr, output="sos")
    bands = [butter(2, [f / 2 ** 0.5, min(f * 2 ** 0.5, 0.475 * env_rate)], btype="bandpass", fs=env_rate,
                    output="sos") for f in MODULATION_BANDS_HZ]
    energy = {k: np.zeros((len(MODULATION_CHANNELS_HZ), len(MODULATION_BANDS_HZ))) for k in spans}
    total = {k: np.zeros(len(MODULATION_CHANNELS_HZ)) for k in spans}
    for c, cf in enumerate(MODULATION_CHANNELS_HZ):
        b, a = gammatone(cf, "iir", fs=sr)
        y = lfilter(b, a, x)
        env = np.sqrt(np.clip(sosfilt(smooth, y * y), 0.0, None))[::step]
        for k, m in masks.items():
            total[k][c] = float(np.sum(env[m] ** 2))
        for j, sos in enumerate(bands):
            e2 = sosfilt(sos, env) ** 2
            for k, m in masks.items():
                energy[k][c, j] = float(e2[m].sum())
    options = RoomOptions()
    env_db = envelope_db(x, sample_rate_hz=sr, options=options)
    hop_rate = 1.0 / options.hop_s
    found = free_decays(env_db, options=options)
    out: dict[str, dict[str, float | None]] = {}
    for k, v in spans.items():
        hi = float(energy[k][:, 4:].sum())
        low = float(energy[k][:, :4].sum())
        mod = None if hi <= 0 else round(10 * math.log10(low / hi), 3)
        depth = None if total[k].sum() <= 0 or low <= 0 else round(10 * math.log10(low / float(total[k].sum())), 3)
        frames = _mask(v, hop_rate, env_db.size, trim_s)
        level = round(10 * math.log10(float(np.mean(10 ** (env_db[frames] / 10)))), 3) if frames.any() else None
        own = _mask(v, hop_rate, env_db.size, 0.0)
        mine = [(t, d) for i, t, d in found if own[i]]
        raw = drop = None
        if len(mine) >= min_decays:
            times = np.array([t for t, _ in mine])
            drops = np.array([d for _, d in mine])
            q = float(np.percentile(times, options.percentile))
            raw, drop = round(q, 4), round(float(np.median(drops[times <= q])), 3)
        out[k] = {"modulation_ratio_db": mod, "modulation_depth_db": depth, "level_db": level, "raw_decay_s": raw,
                  "early_drop_db": drop,
                  "decays": len(mine)}
    return out


def _pair_rirs(rt60: float, d_t: float, d_c: float) -> tuple[np.ndarray, np.ndarray, float]:
    (r_t, r_c), measured = rl.room_impulse_responses(ROOM, rt60, [d_t, d_c], sr=16_000)
    return r_t, r_c, measured


def grid(sessions: Sequence[str], *, log: bool = True) -> list[dict]:
    """One row per session x RT60 x (therapist, client) distance x noise, with per-speaker measures."""
    rows = []
    pairs = [(a, b) for a in DISTANCES for b in DISTANCES]
    rooms = {(rt60, p): _pair_rirs(rt60, *p) for rt60 in RT60S for p in pairs}
    for s_index, session in enumerate(sessions):
        path = _render(session)
        if path is None:
            continue
        dry, sr = sf.read(path, dtype="float64")
        truth = json.loads(path.with_name(path.stem + ".truth.json").read_text())
        tracks, spans = speaker_tracks(dry, truth["utterances"], sr)
        floor = np.random.default_rng(0).standard_normal(dry.size) * 10 ** (-55 / 20)
        for r_index, rt60 in enumerate(RT60S):
            for p_index, (d_t, d_c) in enumerate(pairs):
                r_t, r_c, measured = rooms[(rt60, (d_t, d_c))]
                effort = float(np.random.default_rng([s_index, r_index, p_index]).uniform(-EFFORT_DB, EFFORT_DB))
                wet = rl.reverberate(tracks["therapist"], r_t) + 10 ** (effort / 20) * rl.reverberate(
                    tracks["client"], r_c)
                wet *= 10 ** (-23 / 20) / np.sqrt(rl.active_power(wet, sr))
                for n_index, (kind, snr_db) in enumerate(NOISES):
                    x = wet
                    if snr_db is not None:
                        rng = np.random.default_rng([s_index, r_index, p_index, n_index])
                        x, _ = rl.mix_at_snr(wet, rl.hvac_noise(wet.size, sr, rng), snr_db, sr)
                    m = speaker_measures(x + floor, spans, sr=sr)
                    row = {"session": session, "noise": kind if snr_db is None else f"{kind}-{snr_db:.0f}db",
                           "rt60_simulated_s": round(measured, 3), "therapist_m": d_t, "client_m": d_c,
                           "client_effort_db": round(effort, 2),
                           "log_ratio": round(math.log(d_c / d_t), 4)}
                    for role in ROLES:
                        for key, value in m[role].items():
                            row[f"{role}_{key}"] = value
                    for key in FEATURES:
                        a, b = row[f"client_{key}"], row[f"therapist_{key}"]
                        row[f"diff_{key}"] = None if a is None or b is None else round(a - b, 4)
                    rows.append(row)
                    if log:
                        print(json.dumps(row), file=sys.stderr, flush=True)
    return rows


def far(row: Mapping) -> bool | None:
    """True: one talker at least FAR_RATIO x as far as the other; False: equal distances; None: in between."""
    ratio = max(row["client_m"], row["therapist_m"]) / min(row["client_m"], row["therapist_m"])
    return True if ratio >= FAR_RATIO else (False if ratio == 1.0 else None)


def auc(scores_pos: Sequence[float], scores_neg: Sequence[float]) -> float | None:
    """Probability that a positive scores above a negative (ties count half)."""
    if not scores_pos or not scores_neg:
        return None
    p, n = np.asarray(scores_pos)[:, None], np.asarray(scores_neg)[None, :]
    return round(float(np.mean((p > n) + 0.5 * (p == n))), 3)


def _labelled(rows: Sequence[Mapping], score: str) -> tuple[list[Mapping], list[Mapping]]:
    pos = [r for r in rows if far(r) is True and r.get(score) is not None]
    neg = [r for r in rows if far(r) is False and r.get(score) is not None]
    return pos, neg


def youden_threshold(rows: Sequence[Mapping], score: str) -> float:
    """The ``|score|`` threshold maximising detection minus false alarms (far against same pairs)."""
    pos, neg = _labelled(rows, score)
    candidates = sorted({abs(r[score]) for r in pos + neg})
    best, best_j = candidates[0], -1.0
    for t in candidates:
        j = np.mean([abs(r[score]) > t for r in pos]) - np.mean([abs(r[score]) > t for r in neg])
        if j > best_j:
            best, best_j = t, j
    return float(best)


def evaluate(rows: Sequence[Mapping], score: str, threshold: float, *, lower_is_farther: bool = True) -> dict:
    """AUC of ``|score|``, detection and false alarms at ``threshold``, direction of flagged far pairs, r."""
    pos, neg = _labelled(rows, score)
    flagged = [r for r in pos if abs(r[score]) > threshold]
    # the talker with the lower score is the farther one: client farther <=> score (client - therapist) < 0
    right = [r for r in flagged if (r[score] < 0) == (r["client_m"] > r["therapist_m"])]
    if not lower_is_farther:
        right = [r for r in flagged if (r[score] > 0) == (r["client_m"] > r["therapist_m"])]
    usable = [r for r in rows if r.get(score) is not None]
    r = float(np.corrcoef([x[score] for x in usable], [x["log_ratio"] for x in usable])[0, 1])
    return {"auc": auc([abs(x[score]) for x in pos], [abs(x[score]) for x in neg]),
            "threshold": round(threshold, 3), "far": len(pos), "same": len(neg),
            "detected": round(len(flagged) / len(pos), 3) if pos else None,
            "false_alarms": round(float(np.mean([abs(x[score]) > threshold for x in neg])), 3) if neg else None,
            "direction_right": round(len(right) / len(flagged), 3) if flagged else None,
            "r_log_ratio": round(r, 3)}


def _partial_r(rows: Sequence[Mapping], key: str, control: str) -> float:
    """Correlation of ``key`` with the log distance ratio after a line in ``control`` is taken out of both."""
    use = [r for r in rows if r.get(key) is not None and r.get(control) is not None]
    c = np.array([r[control] for r in use])
    design = np.c_[np.ones_like(c), c]

    def resid(y: np.ndarray) -> np.ndarray:
        coef, *_ = np.linalg.lstsq(design, y, rcond=None)
        return y - design @ coef

    a = resid(np.array([r[key] for r in use]))
    b = resid(np.array([r["log_ratio"] for r in use]))
    return round(float(np.corrcoef(a, b)[0, 1]), 3)


def line(train: Sequence[Mapping], keys: Sequence[str]) -> list[float]:
    """Least squares ``log ratio = a + sum b_k x diff_k`` on ``train``."""
    use = [r for r in train if all(r.get(k) is not None for k in keys)]
    design = np.array([[1.0, *(r[k] for k in keys)] for r in use])
    coef, *_ = np.linalg.lstsq(design, np.array([r["log_ratio"] for r in use]), rcond=None)
    return [float(c) for c in coef]


def with_line(rows: Sequence[dict], keys: Sequence[str], coef: Sequence[float], name: str) -> None:
    for r in rows:
        vals = [r.get(k) for k in keys]
        r[name] = None if any(v is None for v in vals) else round(coef[0] + sum(
            b * v for b, v in zip(coef[1:], vals, strict=True)), 4)


def pair_means(rows: Sequence[Mapping]) -> dict[str, dict[str, list[float]]]:
    """Per session and score: mean and SD over RT60 and noise for each (therapist, client) distance pair.

    The level difference has the client's vocal-effort offset taken out (``level_minus_effort``): what the positions
    and the voices leave.
    """
    out: dict[str, dict[str, list[float]]] = {}
    keys = ("diff_modulation_ratio_db", "diff_modulation_depth_db", "level_minus_effort", "diff_early_drop_db")
    for r in rows:
        for key in keys:
            v = r["diff_level_db"] - r["client_effort_db"] if key == "level_minus_effort" and \
                r["diff_level_db"] is not None else r.get(key)
            if v is not None:
                name = f"{r['session']} {key} {r['therapist_m']:g}/{r['client_m']:g}"
                out.setdefault(name, {"values": []})["values"].append(float(v))
    return {k: [round(float(np.mean(v["values"])), 2), round(float(np.std(v["values"])), 2)] for k, v in out.items()}


def analyse(rows: Sequence[dict]) -> dict:
    train = [r for r in rows if r["session"] == SESSIONS[0]]
    test = [r for r in rows if r["session"] == SESSIONS[1]]
    out: dict = {"criterion": {"min_auc": MIN_AUC, "max_false_alarms": MAX_FALSE_ALARMS,
                               "min_direction_right": MIN_DIRECTION, "far_ratio": FAR_RATIO}}
    keys = ["diff_modulation_ratio_db", "diff_modulation_depth_db", "diff_early_drop_db"]
    coef = line(train, keys)
    with_line(rows, keys, coef, "fitted_log_ratio")
    out["line"] = {"coef": [round(c, 4) for c in coef], "keys": keys}
    # True: the talker with the lower value is the farther one (less direct sound: lower modulation ratio, lower
    # level, smaller early drop); False: the higher (longer decays; the line predicts log(client / therapist))
    scores = {"diff_modulation_ratio_db": True, "diff_modulation_depth_db": True, "diff_early_drop_db": True,
              "diff_raw_decay_s": False, "fitted_log_ratio": False, "diff_level_db": True}
    out["scores"] = {}
    for score, lower_is_farther in scores.items():
        x = youden_threshold(train, score)
        entry = {"train": evaluate(train, score, x, lower_is_farther=lower_is_farther)}
        for noise in ("all", *sorted({r["noise"] for r in rows})):
            sel = test if noise == "all" else [r for r in test if r["noise"] == noise]
            entry[f"test_{noise}"] = evaluate(sel, score, x, lower_is_farther=lower_is_farther)
        out["scores"][score] = entry
    for name in ("partial_r_given_level", "r_with_level"):
        out[name] = {}
    for score in ("diff_modulation_ratio_db", "diff_modulation_depth_db", "fitted_log_ratio"):
        for s in SESSIONS:
            sel = [r for r in rows if r["session"] == s]
            out["partial_r_given_level"][f"{score} {s}"] = _partial_r(sel, score, "diff_level_db")
            pairs = np.array([(r[score], r["diff_level_db"]) for r in sel
                              if r[score] is not None and r["diff_level_db"] is not None])
            out["r_with_level"][f"{score} {s}"] = round(float(np.corrcoef(*pairs.T)[0, 1]), 3)
    candidates = [k for k in scores if k != "diff_level_db"]
    primary = max(candidates, key=lambda k: out["scores"][k]["train"]["auc"] or 0.0)
    held = out["scores"][primary]["test_all"]
    out["primary"] = primary
    out["pair_means"] = pair_means(rows)
    out["primary_passes"] = bool(held["auc"] is not None and held["auc"] >= MIN_AUC
                                 and held["false_alarms"] is not None and held["false_alarms"] <= MAX_FALSE_ALARMS
                                 and held["direction_right"] is not None and held["direction_right"] >= MIN_DIRECTION)
    return out


def markdown(doc: dict) -> str:
    a = doc["analysis"]
    lines = [f"Primary score (highest AUC on session {SESSIONS[0]}): `{a['primary']}`; rule |score| > X, X fitted "
             f"on {SESSIONS[0]}; criterion on session {SESSIONS[1]} held out (AUC >= {MIN_AUC}, false alarms <= "
             f"{MAX_FALSE_ALARMS}, farther talker named right >= {MIN_DIRECTION}): "
             f"**{'passes' if a['primary_passes'] else 'fails'}**.", "",
             "Far (one talker >= 1.75 x as far) against same-distance pairs; X and the line fitted on "
             f"{SESSIONS[0]}; r: correlation with log(client / therapist distance).", "",
             "| score | set | AUC | X | detected | false alarms | direction right | r |",
             "|---|---|---:|---:|---:|---:|---:|---:|"]
    for score, entry in a["scores"].items():
        for name, e in entry.items():
            lines.append(f"| {score} | {name} | {e['auc']} | {e['threshold']} | {e['detected']} | "
                         f"{e['false_alarms']} | {e['direction_right']} | {e['r_log_ratio']} |")
    coef = a["line"]["coef"]
    lines += ["", f"Line (fitted on {SESSIONS[0]}): log ratio = {coef[0]} + {coef[1]} x modulation-ratio difference "
              f"+ {coef[2]} x depth difference + {coef[3]} x early-drop difference.",
              "Correlation with the level difference (score, session): "
              + ", ".join(f"{k}: {v}" for k, v in a["r_with_level"].items())
              + "; partial correlation with the log ratio, level difference taken out: "
              + ", ".join(f"{k}: {v}" for k, v in a["partial_r_given_level"].items()) + ".", "",
              "Mean (SD) of each difference over RT60 and noise per therapist/client distance pair (level: the "
              "client's random vocal-effort offset taken out):", "",
              "| session | difference | " + " | ".join(f"{t:g}/{c:g} m" for t in DISTANCES for c in DISTANCES) + " |",
              "|---|---|" + "---:|" * len(DISTANCES) ** 2]
    for session in SESSIONS:
        for key in ("diff_modulation_ratio_db", "diff_modulation_depth_db", "level_minus_effort",
                    "diff_early_drop_db"):
            cells = [a["pair_means"].get(f"{session} {key} {t:g}/{c:g}") for t in DISTANCES for c in DISTANCES]
            lines.append(f"| {session} | {key} | " + " | ".join("–" if v is None else f"{v[0]:+.2f} ({v[1]:.2f})"
                                                               for v in cells) + " |")
    lines += ["", "| session | noise | RT60 s | therapist m | client m | effort dB | d mod dB | d depth dB | "
              "d level dB | d early drop dB | d raw decay s |", "|---|---|" + "---:|" * 9]

    def f(x: float | None, nd: int) -> str:
        return "–" if x is None else f"{x:.{nd}f}"

    for r in doc["grid"]:
        lines.append(f"| {r['session']} | {r['noise']} | {r['rt60_simulated_s']:.2f} | {r['therapist_m']:g} | "
                     f"{r['client_m']:g} | {r['client_effort_db']:+.1f} | {f(r['diff_modulation_ratio_db'], 2)} | "
                     f"{f(r['diff_modulation_depth_db'], 2)} | {f(r['diff_level_db'], 1)} | "
                     f"{f(r['diff_early_drop_db'], 1)} | {f(r['diff_raw_decay_s'], 3)} |")
    lines += ["", f"Run time {doc['run_s']} s."]
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="far_talker", help="stem of the JSON/Markdown under bench/results/")
    args = ap.parse_args(argv)
    if any(_render(s) is None for s in SESSIONS):
        print("needs the realistic bench's clean renders: run `.venv/bin/python -m bench.bench_realistic "
              "--conditions clean --render-only` first; nothing to do")
        return 0
    t0 = time.perf_counter()
    rows = grid(SESSIONS)
    doc = {"room_m": ROOM, "rt60s": RT60S, "distances_m": DISTANCES, "effort_db": EFFORT_DB, "trim_s": TRIM_S,
           "noises": [n if s is None else f"{n}-{s:.0f}db" for n, s in NOISES], "analysis": analyse(rows),
           "grid": rows, "run_s": round(time.perf_counter() - t0, 1)}
    md = markdown(doc)
    write_results(args.out, doc, md, results=RESULTS)
    return 0


if __name__ == "__main__":
    sys.exit(main())
