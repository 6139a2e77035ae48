"""Monte Carlo calibration of the within-client comparison: false-positive rate, power and coverage per method.

Usage::

    .venv/bin/python -m bench.calibration [--reps 1000] [--json bench/calibration.json]
                                          [--markdown docs/research_calibration.md]

Each scenario draws 40 clients x 6 weekly sessions of an indicator ``x`` and a self-report score ``y``. Both
are a client intercept (SD 1) plus a within-client part (SD 1):

* ``independent``: within parts independent over sessions; no within-client effect;
* ``ar_0.5``, ``ar_0.8``: within parts AR(1) over a client's sessions (phi .5, .8), independent of each other;
* ``shared_trend``: both drift upwards over sessions (0.3 SD per session on average, client slopes varying with
  SD 0.15, independently for x and y): an association through time only;
* ``simpson``: client means of x and y correlated -0.8 (a strong between-client association), none within;
* ``effect``, ``effect_ar_0.5``, ``simpson_effect``: a true within-client effect (standardised slope 0.25) with
  independent sessions, with AR(1) phi .5, and against a between-client association of the opposite sign.

Methods (every one estimates the within-client association; :mod:`pipeline.research.within`):

* ``rmcorr``: repeated-measures correlation, t test with N - k - 1 df (what ``alliance compare`` reported before);
* ``model``: the mixed model (random client intercept, within/between split) with its model-based interval,
  in closed form; checked against ``statsmodels`` MixedLM (REML) on the first ``--check`` replications;
* ``cluster``: the same estimate with a CR1 cluster-robust (client) interval, t with G - 1 df;
* ``bootstrap``: the same estimate, clients resampled (percentile interval, ``--boot`` resamples);
* each with covariates ``none``, ``session_number`` (within-client centred), or ``client_trend`` (each
  client's own linear trend removed).

The default (``pipeline.research.compare.DEFAULT_CI`` with ``DEFAULT_COVARIATES``) must keep the false-positive
rate at or below .07 at nominal .05 in every null scenario, and its 95 % interval must miss the true value in at
most 7 % of data sets in every scenario; among the methods that do, the one with the highest mean power is chosen
(:func:`select_default`). The Monte Carlo standard error of a rate near .05 is sqrt(.05 x .95 / reps).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
N_CLIENTS, N_SESSIONS = 40, 6
EFFECT = 0.25  # true within-client slope of y on x, both in within-client SD units


@dataclass(frozen=True)
class Scenario:
    name: str
    what: str
    phi: float = 0.0
    trend: float = 0.0
    trend_sd: float = 0.0
    between_r: float = 0.0
    effect: float = 0.0

    @property
    def null(self) -> bool:
        return self.effect == 0.0

    @property
    def true_estimate(self) -> float:
        """The standardised within slope the estimators target (0 under the null)."""
        return self.effect / math.sqrt(1 + self.effect**2)


SCENARIOS = (
    Scenario("independent", "independent sessions, no effect"),
    Scenario("ar_0.5", "AR(1) phi .5 within client, no effect", phi=0.5),
    Scenario("ar_0.8", "AR(1) phi .8 within client, no effect", phi=0.8),
    Scenario("shared_trend", "both drift over sessions (0.3 SD/session, slopes SD 0.15), no effect", trend=0.3,
             trend_sd=0.15),
    Scenario("simpson", "client means correlated -0.8, no within effect", between_r=-0.8),
    Scenario("effect", f"within effect {EFFECT}, independent sessions", effect=EFFECT),
    Scenario("effect_ar_0.5", f"within effect {EFFECT}, AR(1) phi .5", phi=0.5, effect=EFFECT),
    Scenario("simpson_effect", f"within effect {EFFECT}, client means correlated -0.8", between_r=-0.8,
             effect=EFFECT),
)

METHODS = (
    ("rmcorr", "rmcorr", ()),
    ("model", "model", ()),
    ("model", "model", ("session_number",)),
    ("cluster", "cluster", ()),
    ("cluster", "cluster", ("session_number",)),
    ("cluster", "cluster", ("client_trend",)),
    ("bootstrap", "bootstrap", ("session_number",)),
)


def method_name(ci: str, covariates: tuple[str, ...]) -> str:
    if ci == "rmcorr":
        return "rmcorr"
    return f"{ci} / {'+'.join(covariates) or 'none'}"


def _ar(rng: np.random.Generator, phi: float, k: int, m: int) -> np.ndarray:
    """K stationary AR(1) series of length m with unit variance, shape (k, m)."""
    e = rng.standard_normal((k, m))
    out = np.empty((k, m))
    out[:, 0] = e[:, 0]
    for t in range(1, m):
        out[:, t] = phi * out[:, t - 1] + math.sqrt(1 - phi * phi) * e[:, t]
    return out


def simulate(sc: Scenario, rng: np.random.Generator, k: int = N_CLIENTS,
             m: int = N_SESSIONS) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """One data set: ``x, y, client, session_number`` (flattened, client-major)."""
    cov = np.array([[1.0, sc.between_r], [sc.between_r, 1.0]])
    means = rng.multivariate_normal([0.0, 0.0], cov, size=k)
    xw, uw = _ar(rng, sc.phi, k, m), _ar(rng, sc.phi, k, m)
    yw = sc.effect * xw + uw
    t = np.arange(m, dtype=float)
    if sc.trend:
        xw = xw + (sc.trend + sc.trend_sd * rng.standard_normal((k, 1))) * t
        yw = yw + (sc.trend + sc.trend_sd * rng.standard_normal((k, 1))) * t
    x = means[:, :1] + xw
    y = means[:, 1:] + yw
    client = np.repeat(np.arange(k), m)
    return x.ravel(), y.ravel(), client, np.tile(t + 1, k)


def run(reps: int = 1000, *, boot: int = 299, check: int = 20, seed: int = 20261201,
        log: bool = True) -> dict:
    """Every scenario x method: rejection rate at .05, coverage of the true value, mean estimate."""
    from pipeline.research.within import client_moments, mixedlm_within, rmcorr, within_estimate

    rng = np.random.default_rng(seed)
    out = {"reps": reps, "clients": N_CLIENTS, "sessions": N_SESSIONS, "boot": boot, "seed": seed,
           "mc_se_at_05": round(math.sqrt(0.05 * 0.95 / reps), 4), "scenarios": [], "statsmodels_check": {}}
    t0 = time.perf_counter()
    max_dp = 0.0
    for sc in SCENARIOS:
        counts = {method_name(ci, cov): {"reject": 0, "cover": 0, "est": 0.0, "n": 0} for _, ci, cov in METHODS}
        for r in range(reps):
            x, y, client, s = simulate(sc, rng)
            _, mom = client_moments(x, y, client, s)
            for _, ci, cov in METHODS:
                name = method_name(ci, cov)
                c = counts[name]
                if ci == "rmcorr":
                    est, p, *_ = rmcorr(mom)
                    lo = hi = None
                else:
                    e = within_estimate(mom, covariates=cov, ci=ci, bootstrap=boot, rng=rng)
                    est, p, lo, hi = e.estimate, e.p, e.ci_low, e.ci_high
                    if ci == "model" and cov and r < check:
                        sm = mixedlm_within(x, y, client, session_number=s, covariates=cov)
                        max_dp = max(max_dp, abs(sm["p"] - p), abs(sm["estimate"] - est))
                if est is None or p is None:
                    continue
                c["n"] += 1
                c["reject"] += p < 0.05
                c["est"] += est
                if lo is not None:
                    c["cover"] += lo <= sc.true_estimate <= hi
        rows = []
        for name, c in counts.items():
            n = max(c["n"], 1)
            rows.append({"method": name, "rate": round(c["reject"] / n, 4),
                         "coverage": None if name == "rmcorr" else round(c["cover"] / n, 4),
                         "mean_estimate": round(c["est"] / n, 4), "estimable": c["n"]})
        out["scenarios"].append({"name": sc.name, "what": sc.what, "null": sc.null,
                                 "true_estimate": round(sc.true_estimate, 4), "methods": rows})
        if log:
            print(f"{time.perf_counter() - t0:7.1f} s  {sc.name}", file=sys.stderr, flush=True)
    out["statsmodels_check"] = {"replications_per_scenario": check, "max_abs_difference_p_or_estimate":
                                float(f"{max_dp:.2e}")}
    out["seconds"] = round(time.perf_counter() - t0, 1)
    out["selection"] = select_default(out)
    return out


def select_default(doc: dict, *, max_fpr: float = 0.07) -> dict:
    """The default: the method whose test and interval hold their level everywhere, then the most powerful.

    Eligible: p < .05 in at most ``max_fpr`` of the data sets of every null scenario, and (for methods that
    report an interval) the 95 % interval missing the true value in at most ``max_fpr`` of the data sets of
    every scenario, null or not (an interval is what ``alliance compare`` prints). Among the eligible, the
    highest mean power over the effect scenarios.
    """
    names = [m["method"] for m in doc["scenarios"][0]["methods"]]
    table = {sc["name"]: {m["method"]: m for m in sc["methods"]} for sc in doc["scenarios"]}
    nulls = [sc["name"] for sc in doc["scenarios"] if sc["null"]]
    effects = [sc["name"] for sc in doc["scenarios"] if not sc["null"]]
    ok = {n: max(table[s][n]["rate"] for s in nulls) for n in names}
    miss = {n: max((1 - table[s][n]["coverage"] for s in table if table[s][n]["coverage"] is not None), default=None)
            for n in names}
    power = {n: sum(table[s][n]["rate"] for s in effects) / len(effects) for n in names}
    eligible = [n for n in names if ok[n] <= max_fpr and miss[n] is not None and miss[n] <= max_fpr + 1e-12]
    best = max(eligible, key=lambda n: (power[n], -ok[n])) if eligible else None
    return {"max_fpr": max_fpr, "worst_null_rate": ok,
            "worst_miss_rate": {n: None if v is None else round(v, 4) for n, v in miss.items()},
            "mean_power": {n: round(v, 4) for n, v in power.items()}, "eligible": eligible, "chosen": best}


def markdown(doc: dict) -> str:
    from pipeline.research.compare import DEFAULT_CI, DEFAULT_COVARIATES

    names = [m["method"] for m in doc["scenarios"][0]["methods"]]
    default = method_name(DEFAULT_CI, tuple(DEFAULT_COVARIATES))
    sel = doc["selection"]
    lines = [
        "# Calibration of the within-client comparison",
        "",
        f"Reproduce: `.venv/bin/python -m bench.calibration --reps {doc['reps']} --json bench/calibration.json "
        "--markdown docs/research_calibration.md` "
        f"({doc['seconds']} s on this machine, one process). {doc['clients']} clients x {doc['sessions']} sessions "
        f"per data set, {doc['reps']} data sets per scenario (seed {doc['seed']}); bootstrap {doc['boot']} "
        "client resamples. Scenarios and methods: `bench/calibration.py`; the estimators: "
        "`pipeline/research/within.py`.",
        "",
        "Cells: share of data sets with p < .05 (the **false-positive rate** in the null scenarios, **power** in "
        "the effect scenarios), then the 95 % interval's coverage of the true within-client slope (0 under the "
        f"null, {EFFECT / math.sqrt(1 + EFFECT**2):.3f} with an effect). Monte Carlo standard error of a rate near "
        f".05: {doc['mc_se_at_05']:.4f} (of a power near .8: {math.sqrt(.8 * .2 / doc['reps']):.4f}).",
        "",
        "| scenario | " + " | ".join(f"`{n}`" for n in names) + " |",
        "|---|" + "---:|" * len(names),
    ]
    for sc in doc["scenarios"]:
        cells = []
        for m in sc["methods"]:
            rate = f"{m['rate']:.3f}"
            if sc["null"] and m["rate"] > sel["max_fpr"]:
                rate = f"**{rate}**"
            cov = "" if m["coverage"] is None else f" ({m['coverage']:.2f})"
            cells.append(rate + cov)
        kind = "null" if sc["null"] else "effect"
        lines.append(f"| {sc['name']} ({kind}: {sc['what']}) | " + " | ".join(cells) + " |")
    lines += [
        "",
        "Bold: a false-positive rate above .07. Per method: the worst false-positive rate over the null "
        "scenarios, the worst share of 95 % intervals that miss the true value over all scenarios, mean power:",
        "",
        "| method | worst false-positive rate | worst interval miss rate | mean power | eligible |",
        "|---|---:|---:|---:|---|",
    ]
    for n in names:
        m = sel["worst_miss_rate"][n]
        lines.append(f"| `{n}` | {sel['worst_null_rate'][n]:.3f} | {'-' if m is None else f'{m:.3f}'} | "
                     f"{sel['mean_power'][n]:.3f} | {'yes' if n in sel['eligible'] else 'no'} |")
    chosen = sel["chosen"]
    lines += [
        "",
        f"**Rule**: false-positive rate <= {sel['max_fpr']} in every null scenario and 95 % intervals missing the "
        f"true value in at most {sel['max_fpr']:.0%} of data sets in every scenario (null or not: the interval is "
        "what `alliance compare` prints), then the highest mean power. **Chosen**: "
        f"`{chosen}`. **The code's default** (`alliance compare`, `pipeline.research.compare.DEFAULT_CI` and "
        f"`DEFAULT_COVARIATES`): `{default}`" + (" (the same)." if chosen == default else " (DIFFERS: fix one)."),
        "",
        "Reading: the repeated-measures correlation and the mixed model's model-based interval assume independent "
        "sessions within a client; with autocorrelated sessions (phi .5 and .8) they reject a true null too "
        "often. A trend shared by indicator and score produces a within-client association unless session "
        "number is a covariate (or each client's trend is removed, which costs power: 2 of 6 sessions' "
        "degrees of freedom per client). The within/between split keeps a between-client association (Simpson) "
        "out of the within estimate for every method. The client bootstrap (percentile) keeps its p-value level "
        "but its interval is too narrow with 40 clients (misses up to 8 %). The cluster-robust interval (CR1, "
        "t with G - 1 df) holds its level in every scenario (it is conservative: .03-.05) at a cost of about 5 "
        "points of power against the intervals that assume independence.",
        "",
        f"statsmodels check: on the first {doc['statsmodels_check']['replications_per_scenario']} data sets of "
        "each scenario the closed-form mixed model (`model / session_number`) was refitted with statsmodels "
        "MixedLM (REML); largest absolute difference in estimate or p: "
        f"{doc['statsmodels_check']['max_abs_difference_p_or_estimate']:.1e}.",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=1000, help="data sets per scenario (default 1000)")
    ap.add_argument("--boot", type=int, default=299, help="bootstrap resamples (default 299)")
    ap.add_argument("--check", type=int, default=20, help="data sets per scenario refitted with statsmodels")
    ap.add_argument("--seed", type=int, default=20261201)
    ap.add_argument("--json", type=Path, help="write the JSON here")
    ap.add_argument("--markdown", type=Path, help="write the Markdown here (default: stdout)")
    ap.add_argument("--from-json", type=Path, help="re-render a stored run (JSON from --json) instead of running")
    args = ap.parse_args(argv)
    if args.from_json:
        doc = json.loads(args.from_json.read_text(encoding="utf-8"))
        doc["selection"] = select_default(doc)
        args.json = None
    else:
        doc = run(args.reps, boot=args.boot, check=args.check, seed=args.seed)
    text = json.dumps(doc, indent=1)
    if args.json:
        args.json.write_text(text + "\n", encoding="utf-8")
    md = markdown(doc)
    if args.markdown:
        args.markdown.write_text(md, encoding="utf-8")
    else:
        print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
