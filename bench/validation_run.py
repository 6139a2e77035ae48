r"""The pre-registered validation of the text markers (docs/validation.md, sections 2-5), run once.

Usage: ``.venv/bin/python -m bench.validation_run [--validation DIR] [--annomi DIR] [--json OUT] [--md OUT]``.
Reads ``../shared/data/validation`` (ESConv, iEval) and ``../shared/data/annomi`` (AnnoMI-simple.csv);
a data set whose file is absent is skipped (exit 0). Writes the results as JSON and a Markdown table
(default ``bench/validation_results.json`` and ``.md``) and prints the table.

Everything follows docs/validation.md as committed in ad0d3e2 (the pre-registration):

- loading rules (section 2): ESConv ``sys`` -> therapist, ``usr`` -> client; iEval ``chat_log`` split on
  ``"\n- "`` (the first line's ``"- "`` stripped), person / bot alternating from the person; every ESConv
  utterance and the iEval bot lines detokenised (``\w ' \w`` -> ``\w'\w``, no space before
  ``. , ? ! ; :``); AnnoMI from ``AnnoMI-simple.csv``; the ESConv ``situation`` is not measured;
- markers from the product's text-only path (:func:`pipeline.analysis.text_only.measure_transcript`)
  with spaCy ``en_core_web_sm`` (:func:`pipeline.engine.runtime.get_nlp`);
- tests (section 4): ESConv Spearman rho, p from ``scipy.stats.spearmanr``, 95 % CI by Fisher z with the
  Bonett-Wright SE; iEval Spearman rho over all chats with a participant-cluster bootstrap (10,000
  resamples, seed 20261130, percentile CI, p = 2 x the smaller tail share, capped at 1); AnnoMI
  Mann-Whitney U (two-sided, ``method="auto"``), rank-biserial r, Hedges g with the Welch t interval of
  the mean difference on the same standardiser and J;
- minimum n, degenerate markers, Benjamini-Hochberg per data set, grades (section 5); sensitivity
  analyses are reported, never graded.

Bootstrap p: the tail shares are the shares of bootstrap rho <= 0 and >= 0 (a resample with rho exactly
0 counts in both tails, the conservative reading of "beyond 0"); p = 0 means no resample fell on the
other side (p < 1/10,000).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import re
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy import stats

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
ESCONV = Path("esconv") / "esconv_multiesc_valid.jsonl"
IEVAL = Path("ieval") / "ieval_data.json"
ANNOMI = Path("AnnoMI-simple.csv")

#: SHA-256 of the data files as pre-registered (docs/validation.md section 1).
PREREGISTERED_SHA256 = {
    "esconv": "5cd20a4b8d79f9cf8a9ccadd7d3e0dd50f0f279f491cef9719d460377d31821e",
    "ieval": "bdc977804ffc526398d3fdc220d64ca580cdb1941f09a60ba09e1f72739a083a",
    "annomi": "b178db3b0b9858a0fa4ed670dabeccd63e975ba67e141d7ae16f2e8214f78e61",
}
PREREGISTRATION_COMMIT = "ad0d3e2"
BOOT_N = 10_000
BOOT_SEED = 20261130
ALPHA = 0.05
IEVAL_BOTS = ("Pink", "Purple", "Yellow", "Green")
IEVAL_SCENARIOS = ("positive", "negative")

_JOIN_APOSTROPHE = re.compile(r"(?<=\w) ' (?=\w)")
_SPACE_BEFORE_PUNCT = re.compile(r"\s+(?=[.,?!;:])")


@dataclass(frozen=True)
class Hypothesis:
    """One pre-registered test (docs/validation.md section 4)."""

    id: str
    dataset: str            # esconv | ieval | annomi
    marker: str
    role: str | None        # None: session-level
    outcome: str            # ESConv/iEval outcome field, or "mi_quality" (high vs low)
    predicted: int          # +1 / -1 (AnnoMI: sign of high - low)
    blind: bool = True


HYPOTHESES = (
    Hypothesis("H1", "esconv", "lsm", None, "feedback_mean", +1),
    Hypothesis("H2", "esconv", "lsm", None, "intensity_drop", +1),
    Hypothesis("H3", "esconv", "collaborative_we_rate", "therapist", "feedback_mean", +1),
    Hypothesis("H4", "esconv", "alliance_work_rate", "therapist", "feedback_mean", +1),
    Hypothesis("H5", "esconv", "rupture_candidate_rate", "client", "feedback_mean", -1),
    Hypothesis("H6", "esconv", "rupture_candidate_rate", "client", "intensity_drop", -1),
    Hypothesis("H7", "esconv", "topic_shift_rate", "client", "feedback_mean", -1),
    Hypothesis("H8", "esconv", "deflection_rate", "client", "feedback_mean", -1),
    Hypothesis("H9", "esconv", "we_i_ratio", "client", "intensity_drop", +1),
    Hypothesis("H10", "ieval", "lsm_turn_mean", None, "EU", +1),
    Hypothesis("H11", "ieval", "lsm_turn_mean", None, "ER", +1),
    Hypothesis("H12", "ieval", "rupture_candidate_rate", "client", "ER", -1),
    Hypothesis("A1", "annomi", "rupture_candidate_rate", "client", "mi_quality", -1, blind=False),
    Hypothesis("A2", "annomi", "rupture_withdrawal_count", "client", "mi_quality", -1, blind=False),
    Hypothesis("A3", "annomi", "topic_shift_rate", "client", "mi_quality", -1, blind=False),
    Hypothesis("A4", "annomi", "lsm", None, "mi_quality", +1),
    Hypothesis("A5", "annomi", "alliance_work_rate", "therapist", "mi_quality", +1, blind=False),
    Hypothesis("A6", "annomi", "collaborative_we_rate", "therapist", "mi_quality", +1, blind=False),
)
FAMILY = {"esconv": "E", "ieval": "I", "annomi": "A"}


# ------------------------------------------------------------------ loading (section 2, loading rules)

def detokenise(text: str) -> str:
    r"""Loading rule 3: join ``\w ' \w`` and remove the space before ``. , ? ! ; :``."""
    return _SPACE_BEFORE_PUNCT.sub("", _JOIN_APOSTROPHE.sub("'", text))


@dataclass
class Unit:
    """One conversation: its utterances (``TranscriptUtterance``), outcomes and, once measured, markers."""

    id: str
    utterances: tuple
    outcomes: dict[str, object]
    cluster: str | None = None
    values: dict[tuple[str, str | None], float | None] = field(default_factory=dict)


def load_esconv(path: Path) -> list[Unit]:
    from pipeline.analysis.text_only import utterances_from_rows

    units = []
    role = {"sys": "therapist", "usr": "client"}
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        conv = json.loads(line)
        rows = [{"role": role[d["speaker"]], "text": detokenise(d["text"])} for d in conv["dialog"]]
        feedback = [int(d["feedback"]) for d in conv["dialog"] if d.get("feedback") is not None]
        init, final = int(conv["init_intensity"]), int(conv["final_intensity"])
        units.append(Unit(conv["conv_id"], utterances_from_rows(rows), {
            "init_intensity": init, "final_intensity": final, "intensity_drop": init - final,
            "feedback_mean": sum(feedback) / len(feedback) if feedback else None,
            "feedback_n": len(feedback)}))
    return units


def split_chat_log(chat_log: str) -> list[str]:
    r"""Loading rule 2: split on ``"\n- "`` and strip the first line's ``"- "``."""
    lines = chat_log.split("\n- ")
    if lines and lines[0].startswith("- "):
        lines[0] = lines[0][2:]
    return lines


def load_ieval(path: Path) -> list[Unit]:
    from pipeline.analysis.text_only import utterances_from_rows

    units = []
    for rec in json.loads(path.read_text(encoding="utf-8")):
        for scenario in IEVAL_SCENARIOS:
            for bot in IEVAL_BOTS:
                chat = rec[scenario][bot]
                rows = []
                for k, text in enumerate(split_chat_log(chat["chat_log"])):
                    is_bot = k % 2 == 1            # the person opens, the bot closes
                    rows.append({"role": "therapist" if is_bot else "client",
                                 "text": detokenise(text) if is_bot else text})
                units.append(Unit(f"{rec['part']}:{scenario}:{bot}", utterances_from_rows(rows),
                                  {"EU": chat["EU"], "ER": chat["ER"], "scenario": scenario, "bot": bot,
                                   "n_lines": len(rows)},
                                  cluster=str(rec["part"])))
    return units


def load_annomi(path: Path) -> list[Unit]:
    from pipeline.analysis.text_only import read_annomi

    return [Unit(t.transcript_id, t.utterances, {"mi_quality": t.mi_quality}) for t in read_annomi(path)]


def measure(units: Sequence[Unit], nlp: object, label: str) -> None:
    """Fill ``unit.values`` with every indicator of the text-only path: (name, role) -> value."""
    from pipeline.analysis.text_only import measure_transcript

    t0 = time.perf_counter()
    for k, u in enumerate(units):
        m = measure_transcript(u.utterances, session_id=u.id, nlp=nlp)
        u.values = {(i.name, i.speaker_role): i.value for i in m.measures.indicators}
        if (k + 1) % 200 == 0:
            print(f"  {label}: {k + 1}/{len(units)} measured ({time.perf_counter() - t0:.0f} s)", file=sys.stderr)
    print(f"  {label}: {len(units)} measured in {time.perf_counter() - t0:.0f} s", file=sys.stderr)


# ------------------------------------------------------------------ statistics (section 4)

def fisher_ci_bonett_wright(rho: float, n: int) -> tuple[float, float]:
    """95 % CI of Spearman's rho by Fisher z with SE sqrt((1 + rho^2 / 2) / (n - 3))."""
    z = math.atanh(max(min(rho, 1 - 1e-12), -1 + 1e-12))
    se = math.sqrt((1 + rho * rho / 2) / (n - 3))
    q = stats.norm.ppf(0.975)
    return math.tanh(z - q * se), math.tanh(z + q * se)


def _pearson(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a - a.mean(), b - b.mean()
    den = math.sqrt(float(np.dot(a, a)) * float(np.dot(b, b)))
    return float(np.dot(a, b) / den) if den > 0 else float("nan")


def spearman_rho(x: np.ndarray, y: np.ndarray) -> float:
    """Spearman's rho with average ranks for ties (Pearson r of the ranks)."""
    return _pearson(stats.rankdata(x), stats.rankdata(y))


def cluster_bootstrap(x: np.ndarray, y: np.ndarray, clusters: Sequence[str],
                      statistic: Callable[[np.ndarray, np.ndarray, np.ndarray], float], *,
                      subgroup: np.ndarray | None = None, n_boot: int = BOOT_N, seed: int = BOOT_SEED
                      ) -> dict[str, float]:
    """Percentile 95 % CI and two-sided p of a statistic, resampling clusters (participants) with replacement.

    ``statistic(x, y, groups)`` gets the resampled units and a group code per unit: the draw's position
    (a participant drawn twice makes two groups) times 2 plus ``subgroup`` (0/1, e.g. the scenario), so
    within-group statistics never mix two copies of a participant.
    """
    codes, index = np.unique(np.asarray(clusters), return_inverse=True)
    members = [np.flatnonzero(index == c) for c in range(len(codes))]
    sub = np.zeros(len(x), dtype=np.int64) if subgroup is None else np.asarray(subgroup, dtype=np.int64)
    rng = np.random.default_rng(seed)
    boot = np.empty(n_boot)
    for b in range(n_boot):
        draw = rng.integers(0, len(members), len(members))
        idx = np.concatenate([members[c] for c in draw])
        pos = np.repeat(np.arange(len(draw)), [len(members[c]) for c in draw])
        boot[b] = statistic(x[idx], y[idx], 2 * pos + sub[idx])
    boot = boot[np.isfinite(boot)]
    lo, hi = np.percentile(boot, [2.5, 97.5])
    p = min(1.0, 2 * min(float(np.mean(boot <= 0)), float(np.mean(boot >= 0))))
    return {"ci_low": float(lo), "ci_high": float(hi), "p": p, "n_boot_finite": int(len(boot))}


def centred_within_ranks(x: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """Average ranks of x within each group (ties averaged), minus the group's mean rank; vectorised."""
    n = len(x)
    order = np.lexsort((x, groups))
    gs, xs = groups[order], x[order]
    pos = np.arange(n)
    new_group = np.r_[True, gs[1:] != gs[:-1]]
    gid = np.cumsum(new_group) - 1
    g_start = pos[new_group]
    g_size = np.diff(np.r_[g_start, n])
    new_run = new_group | np.r_[True, xs[1:] != xs[:-1]]
    rid = np.cumsum(new_run) - 1
    r_start = pos[new_run]
    r_end = np.r_[r_start[1:], n]
    rank = (r_start + r_end - 1)[rid] / 2.0 - g_start[gid] + 1.0
    out = np.empty(n)
    out[order] = rank - (g_size[gid] + 1) / 2.0
    return out


def hedges_g_welch(high: np.ndarray, low: np.ndarray) -> dict[str, float]:
    """Hedges g = J (mean_h - mean_l) / pooled SD; 95 % CI: the Welch t interval on the same scale."""
    n1, n2 = len(high), len(low)
    m1, m2 = float(high.mean()), float(low.mean())
    v1, v2 = float(high.var(ddof=1)), float(low.var(ddof=1))
    sp = math.sqrt(((n1 - 1) * v1 + (n2 - 1) * v2) / (n1 + n2 - 2))
    j = 1 - 3 / (4 * (n1 + n2) - 9)
    se = math.sqrt(v1 / n1 + v2 / n2)
    df = se ** 4 / ((v1 / n1) ** 2 / (n1 - 1) + (v2 / n2) ** 2 / (n2 - 1)) if se > 0 else float("nan")
    t = float(stats.t.ppf(0.975, df)) if se > 0 else float("nan")
    diff = m1 - m2
    if sp == 0:
        return {"g": float("nan"), "ci_low": float("nan"), "ci_high": float("nan"), "welch_df": df}
    return {"g": j * diff / sp, "ci_low": j * (diff - t * se) / sp, "ci_high": j * (diff + t * se) / sp,
            "welch_df": df, "mean_high": m1, "mean_low": m2, "sd_pooled": sp, "J": j}


def benjamini_hochberg(p: Sequence[float]) -> list[float]:
    """BH-adjusted p values (step-up, monotone, capped at 1), in the input order."""
    m = len(p)
    order = sorted(range(m), key=lambda i: p[i])
    q = [0.0] * m
    running = 1.0
    for rank in range(m, 0, -1):
        i = order[rank - 1]
        running = min(running, p[i] * m / rank)
        q[i] = running
    return q


# ------------------------------------------------------------------ the tests

def _pairs(units: Sequence[Unit], h: Hypothesis) -> tuple[list[Unit], int]:
    """Units with a non-NULL marker (and outcome), and the NULL count."""
    kept = [u for u in units if u.values.get((h.marker, h.role)) is not None and u.outcomes.get(h.outcome) is not None]
    return kept, len(units) - len(kept)


def _testability(h: Hypothesis, kept: Sequence[Unit]) -> str | None:
    """The reason a test is not testable (section 4), or None."""
    vals = np.array([u.values[(h.marker, h.role)] for u in kept], dtype=float)
    nonzero = int(np.count_nonzero(vals))
    if h.dataset == "esconv" and len(kept) < 50:
        return f"n = {len(kept)} < 50 conversations with a non-NULL marker"
    if h.dataset == "ieval":
        n_part = len({u.cluster for u in kept})
        if len(kept) < 200 or n_part < 100:
            return f"{len(kept)} chats from {n_part} participants (minimum 200 from 100)"
    if h.dataset == "annomi":
        n_high = sum(u.outcomes["mi_quality"] == "high" for u in kept)
        n_low = sum(u.outcomes["mi_quality"] == "low" for u in kept)
        if n_high < 30 or n_low < 10:
            return f"{n_high} high / {n_low} low (minimum 30 / 10)"
    if nonzero < 10 or nonzero < 0.1 * len(kept):
        return f"degenerate: {nonzero} of {len(kept)} units non-zero (< 10 % or < 10)"
    return None


def run_test(h: Hypothesis, units: Sequence[Unit]) -> dict[str, object]:
    kept, n_null = _pairs(units, h)
    vals = np.array([u.values[(h.marker, h.role)] for u in kept], dtype=float)
    row: dict[str, object] = {
        "id": h.id, "dataset": h.dataset, "family": FAMILY[h.dataset], "marker": h.marker,
        "role": h.role or "session", "outcome": h.outcome, "predicted": "+" if h.predicted > 0 else "-",
        "blind": h.blind, "n": len(kept), "n_null": n_null, "n_nonzero": int(np.count_nonzero(vals)),
    }
    reason = _testability(h, kept)
    if reason is not None:
        row.update(testable=False, reason=reason)
        return row
    row["testable"] = True
    if h.dataset == "esconv":
        y = np.array([float(u.outcomes[h.outcome]) for u in kept])
        res = stats.spearmanr(vals, y)
        rho = float(res.statistic)
        lo, hi = fisher_ci_bonett_wright(rho, len(kept))
        row.update(effect="rho", estimate=rho, ci_low=lo, ci_high=hi, p=float(res.pvalue),
                   ci_method="Fisher z, Bonett-Wright SE")
    elif h.dataset == "ieval":
        y = np.array([float(u.outcomes[h.outcome]) for u in kept])
        clusters = [u.cluster for u in kept]
        rho = spearman_rho(vals, y)
        boot = cluster_bootstrap(vals, y, clusters, lambda a, b, _g: spearman_rho(a, b))
        row.update(effect="rho", estimate=rho, ci_low=boot["ci_low"], ci_high=boot["ci_high"], p=boot["p"],
                   n_participants=len(set(clusters)), n_boot_finite=boot["n_boot_finite"],
                   ci_method="participant-cluster bootstrap, percentile")
    else:
        high = np.array([v for v, u in zip(vals, kept, strict=True) if u.outcomes["mi_quality"] == "high"])
        low = np.array([v for v, u in zip(vals, kept, strict=True) if u.outcomes["mi_quality"] == "low"])
        mw = stats.mannwhitneyu(high, low, alternative="two-sided", method="auto")
        r_rb = 2 * float(mw.statistic) / (len(high) * len(low)) - 1
        g = hedges_g_welch(high, low)
        row.update(effect="g", estimate=g["g"], ci_low=g["ci_low"], ci_high=g["ci_high"], p=float(mw.pvalue),
                   rank_biserial=r_rb, U=float(mw.statistic), n_high=len(high), n_low=len(low),
                   mean_high=g.get("mean_high"), mean_low=g.get("mean_low"), welch_df=g["welch_df"],
                   ci_method="Welch t interval of the mean difference / pooled SD x J")
    return row


def grade(rows: list[dict[str, object]]) -> None:
    """BH within each family (testable rows only), then the section-5 grade of every row."""
    for fam in ("E", "I", "A"):
        tested = [r for r in rows if r["family"] == fam and r["testable"]]
        for r, q in zip(tested, benjamini_hochberg([float(r["p"]) for r in tested]), strict=True):
            r["q"] = q
            r["family_m"] = len(tested)
    for r in rows:
        if not r["testable"]:
            r["grade"] = "not testable"
            continue
        predicted = 1 if r["predicted"] == "+" else -1
        sign = int(np.sign(r["estimate"]))
        note = []
        if r["effect"] == "g" and np.sign(r["rank_biserial"]) != sign:
            r["grade"] = "exploratory"
            note.append("g and rank-biserial r disagree in sign")
        elif r["q"] < ALPHA and sign == predicted:
            r["grade"] = "validated"
        elif r["q"] < ALPHA and sign == -predicted:
            r["grade"] = "contradicted"
        else:
            r["grade"] = "exploratory"
        if not r["blind"]:
            note.append("not blind")
        r["grade_note"] = "; ".join(note)


# ------------------------------------------------------------------ sensitivity analyses (never graded)

def sensitivity_ieval(units: Sequence[Unit]) -> list[dict[str, object]]:
    """H10-H12 with ranks centred within each participant x scenario set (removes rating style).

    The statistic is the Pearson correlation of the centred ranks of marker and outcome; CI and p by the
    same participant-cluster bootstrap as the main test.
    """
    def stat(a: np.ndarray, b: np.ndarray, groups: np.ndarray) -> float:
        return _pearson(centred_within_ranks(a, groups), centred_within_ranks(b, groups))

    out = []
    for h in (x for x in HYPOTHESES if x.dataset == "ieval"):
        kept, n_null = _pairs(units, h)
        x = np.array([u.values[(h.marker, h.role)] for u in kept], dtype=float)
        y = np.array([float(u.outcomes[h.outcome]) for u in kept])
        clusters = [u.cluster for u in kept]
        scen = np.array([int(u.outcomes["scenario"] == "negative") for u in kept])
        _, part = np.unique(np.asarray(clusters), return_inverse=True)
        r0 = stat(x, y, 2 * part + scen)
        boot = cluster_bootstrap(x, y, clusters, stat, subgroup=scen)
        out.append({"id": f"{h.id}-s", "of": h.id, "analysis": "ranks centred within participant x scenario",
                    "marker": h.marker, "role": h.role or "session", "outcome": h.outcome,
                    "predicted": "+" if h.predicted > 0 else "-", "n": len(kept), "n_null": n_null,
                    "n_participants": len(set(clusters)), "effect": "r (centred ranks)", "estimate": r0,
                    "ci_low": boot["ci_low"], "ci_high": boot["ci_high"], "p": boot["p"],
                    "grade": "exploratory (sensitivity)"})
    return out


def partial_spearman(x: np.ndarray, y: np.ndarray, z: np.ndarray) -> tuple[float, float, float, float]:
    """Spearman partial correlation of x and y given z: estimate, 95 % CI (Fisher z, SE 1/sqrt(n-4)), p (t, n-3 df)."""
    rx, ry, rz = stats.rankdata(x), stats.rankdata(y), stats.rankdata(z)
    rxy, rxz, ryz = _pearson(rx, ry), _pearson(rx, rz), _pearson(ry, rz)
    r = (rxy - rxz * ryz) / math.sqrt((1 - rxz ** 2) * (1 - ryz ** 2))
    n = len(x)
    df = n - 3
    t = r * math.sqrt(df / (1 - r * r))
    p = float(2 * stats.t.sf(abs(t), df))
    se = 1 / math.sqrt(n - 4)
    zr = math.atanh(r)
    return r, math.tanh(zr - 1.96 * se), math.tanh(zr + 1.96 * se), p


def sensitivity_esconv(units: Sequence[Unit]) -> list[dict[str, object]]:
    """H2, H6, H9 on final_intensity with init_intensity partialled out (predicted sign reversed)."""
    out = []
    for h in (x for x in HYPOTHESES if x.id in ("H2", "H6", "H9")):
        kept, n_null = _pairs(units, h)
        x = np.array([u.values[(h.marker, h.role)] for u in kept], dtype=float)
        fin = np.array([float(u.outcomes["final_intensity"]) for u in kept])
        ini = np.array([float(u.outcomes["init_intensity"]) for u in kept])
        r, lo, hi, p = partial_spearman(x, fin, ini)
        out.append({"id": f"{h.id}-s", "of": h.id,
                    "analysis": "final_intensity given init_intensity (Spearman partial)",
                    "marker": h.marker, "role": h.role or "session", "outcome": "final_intensity",
                    "predicted": "-" if h.predicted > 0 else "+", "n": len(kept), "n_null": n_null,
                    "effect": "partial rho", "estimate": r, "ci_low": lo, "ci_high": hi, "p": p,
                    "grade": "exploratory (sensitivity)"})
    return out


def sensitivity_annomi(units: Sequence[Unit]) -> list[dict[str, object]]:
    """A2 as a rate: rupture_withdrawal_count / client turn_count."""
    kept = [u for u in units if u.values.get(("rupture_withdrawal_count", "client")) is not None
            and (u.values.get(("turn_count", "client")) or 0) > 0]
    vals = np.array([u.values[("rupture_withdrawal_count", "client")] / u.values[("turn_count", "client")]
                     for u in kept])
    high = np.array([v for v, u in zip(vals, kept, strict=True) if u.outcomes["mi_quality"] == "high"])
    low = np.array([v for v, u in zip(vals, kept, strict=True) if u.outcomes["mi_quality"] == "low"])
    mw = stats.mannwhitneyu(high, low, alternative="two-sided", method="auto")
    g = hedges_g_welch(high, low)
    return [{"id": "A2-s", "of": "A2", "analysis": "rupture_withdrawal_count / client turn_count",
             "marker": "rupture_withdrawal_count / turn_count", "role": "client", "outcome": "mi_quality",
             "predicted": "-", "n": len(kept), "n_null": len(units) - len(kept), "n_high": len(high),
             "n_low": len(low), "effect": "g", "estimate": g["g"], "ci_low": g["ci_low"], "ci_high": g["ci_high"],
             "rank_biserial": 2 * float(mw.statistic) / (len(high) * len(low)) - 1, "p": float(mw.pvalue),
             "grade": "exploratory (sensitivity)"}]


# ------------------------------------------------------------------ output

def _fmt(v: object, nd: int = 3) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "—"
    if isinstance(v, float):
        return f"{v:.{nd}f}"
    return str(v)


def _fmt_p(p: object, n_boot: int | None = None) -> str:
    if p is None:
        return "—"
    p = float(p)
    if n_boot and p == 0:
        return f"< {1 / n_boot:.4f}"
    if p < 0.0001:
        return f"{p:.1e}"
    return f"{p:.4f}"


def markdown(result: dict[str, object]) -> str:
    rows = result["tests"]
    lines = [
        "| ID | marker (role) | outcome | pred. | n (NULL) | effect | 95 % CI | p | q (BH) | grade |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        n = f"{r['n']} ({r['n_null']})"
        if r.get("n_participants"):
            n = f"{r['n']} chats / {r['n_participants']} part. ({r['n_null']})"
        if r["dataset"] == "annomi" and r.get("n_high") is not None:
            n = f"{r['n_high']} high / {r['n_low']} low ({r['n_null']})"
        if not r["testable"]:
            lines.append(f"| {r['id']} | `{r['marker']}` ({r['role']}) | {r['outcome']} | {r['predicted']} | {n} | "
                         f"— | — | — | — | **not testable**: {r['reason']} |")
            continue
        eff = f"ρ = {r['estimate']:.3f}" if r["effect"] == "rho" else (
            f"g = {r['estimate']:.3f}, r_rb = {r['rank_biserial']:.3f}")
        grade_txt = f"**{r['grade']}**" + (f" ({r['grade_note']})" if r.get("grade_note") else "")
        boot = BOOT_N if r["dataset"] == "ieval" else None
        lines.append(f"| {r['id']} | `{r['marker']}` ({r['role']}) | {r['outcome']} | {r['predicted']} | {n} | "
                     f"{eff} | [{r['ci_low']:.3f}, {r['ci_high']:.3f}] | {_fmt_p(r['p'], boot)} | "
                     f"{_fmt_p(r['q'])} | {grade_txt} |")
    lines += ["", "Sensitivity analyses (not in any family, never graded):", "",
              "| ID | analysis | marker (role) | outcome | pred. | n (NULL) | effect | 95 % CI | p |",
              "|---|---|---|---|---|---|---|---|---|"]
    for r in result["sensitivity"]:
        boot = BOOT_N if r["id"].startswith(("H10", "H11", "H12")) else None
        eff = f"{r['effect']} = {r['estimate']:.3f}"
        if "rank_biserial" in r:
            eff += f", r_rb = {r['rank_biserial']:.3f}"
        lines.append(f"| {r['id']} | {r['analysis']} | `{r['marker']}` ({r['role']}) | {r['outcome']} | "
                     f"{r['predicted']} | {r['n']} ({r['n_null']}) | {eff} | [{r['ci_low']:.3f}, {r['ci_high']:.3f}] | "
                     f"{_fmt_p(r['p'], boot)} |")
    return "\n".join(lines) + "\n"


def _finite(obj: object) -> object:
    """NaN and infinities as None (strict JSON); numpy scalars as Python numbers."""
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_finite(v) for v in obj]
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _git(*args: str) -> str:
    try:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--validation", type=Path, default=SHARED / "validation", help="ESConv and iEval folder")
    ap.add_argument("--annomi", type=Path, default=SHARED / "annomi", help="folder with AnnoMI-simple.csv")
    ap.add_argument("--json", type=Path, default=ROOT / "bench" / "validation_results.json")
    ap.add_argument("--md", type=Path, default=ROOT / "bench" / "validation_results.md")
    args = ap.parse_args(argv)

    files = {"esconv": args.validation / ESCONV, "ieval": args.validation / IEVAL, "annomi": args.annomi / ANNOMI}
    present = {k: p for k, p in files.items() if p.exists()}
    for k, p in files.items():
        if k not in present:
            print(f"{k}: {p} not found: skipped", file=sys.stderr)
    if not present:
        print("no validation data found: skipped")
        return 0

    from pipeline.analysis.indicators import MARKERS_VERSION
    from pipeline.engine.runtime import get_nlp
    from pipeline.lexicons import load_lexicon

    t0 = time.perf_counter()
    nlp = get_nlp()
    loaders = {"esconv": load_esconv, "ieval": load_ieval, "annomi": load_annomi}
    data: dict[str, list[Unit]] = {}
    hashes = {}
    for k, p in present.items():
        sha = _sha256(p)
        hashes[k] = {"file": str(p.name), "sha256": sha, "matches_preregistered": sha == PREREGISTERED_SHA256[k]}
        if sha != PREREGISTERED_SHA256[k]:
            print(f"WARNING: {p} differs from the pre-registered SHA-256", file=sys.stderr)
        data[k] = loaders[k](p)
        measure(data[k], nlp, k)

    rows = [run_test(h, data[h.dataset]) for h in HYPOTHESES if h.dataset in data]
    grade(rows)
    sens: list[dict[str, object]] = []
    if "esconv" in data:
        sens += sensitivity_esconv(data["esconv"])
    if "ieval" in data:
        sens += sensitivity_ieval(data["ieval"])
    if "annomi" in data:
        sens += sensitivity_annomi(data["annomi"])

    fw = load_lexicon("function_words")
    result = {
        "script": "bench/validation_run.py",
        "command": "python -m bench.validation_run",
        "preregistration_commit": PREREGISTRATION_COMMIT,
        "commit": _git("rev-parse", "HEAD"),
        "working_tree_clean": _git("status", "--porcelain", "--untracked-files=no") == "",
        "markers_version": MARKERS_VERSION,
        "function_words_version": fw["version"],
        "function_words_sha256": hashlib.sha256(
            (ROOT / "pipeline" / "lexicons" / "function_words.json").read_bytes()).hexdigest(),
        "spacy_model": f"{nlp.meta.get('lang', 'en')}_{nlp.meta.get('name')} {nlp.meta.get('version')}",
        "bootstrap": {"resamples": BOOT_N, "seed": BOOT_SEED},
        "data": hashes,
        "units": {k: {"units": len(v), "utterances": sum(len(u.utterances) for u in v)} for k, v in data.items()},
        "seconds": round(time.perf_counter() - t0, 1),
        "tests": rows,
        "sensitivity": sens,
    }
    args.json.write_text(json.dumps(_finite(result), indent=1, allow_nan=False) + "\n", encoding="utf-8")
    md = markdown(result)
    args.md.write_text(md, encoding="utf-8")
    print(md)
    print(f"written {args.json} and {args.md} ({result['seconds']} s)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
