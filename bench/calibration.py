"""Monte Carlo calibration of the within-client comparison: false-positive rate and power per candidate.

Usage::

    .venv/bin/python -m bench.calibration [--reps 100] [--json bench/calibration.json]
                                          [--markdown docs/research_calibration.md]

Each cell draws a data set of an indicator ``x`` and a self-report score ``y`` per session: a client intercept
(SD 1) plus a within-client part (SD 1) plus, in both ``x`` and ``y``, a **shared trend** over the session's
position in the course of therapy (amplitude 1.5 within-client SD, each client's amplitude scaled by 1 + 0.3 z,
independently for x and y). Trend shapes over ``u`` = (session - 1) / (last session - 1):

* ``none``; ``linear`` (u); ``saturating`` (rise then plateau: (1 - e^(-5u)) / (1 - e^(-5)));
  ``step`` (0 before u = .4, 1 from there); ``u_shaped`` ((2u - 1)^2).

Factors: AR(1) within-client errors (phi 0, .5, .8), designs of 10-40 clients with 3-20 sessions (10 x 3,
10 x 20, 40 x 3, 40 x 20 and 20 clients with 3-20 sessions each), an SRS ceiling (y reported as
min(40, 36 + 2.5 y) to one decimal: a third to half of the scores at 40), a strong between-client association
(client means correlated -0.8, none within). Null cells have no within-client effect; effect cells add a
within-client slope of 0.25 (y on x's non-trend part, within-client SD units). One cell gives the estimators
session positions shuffled within each client (sessions without dates ordered by id, as ``alliance compare``
did before): the product refuses that case instead, so it does not enter the rule.

Candidates (every one estimates the within-client association; the shared code is
:mod:`pipeline.research.within`):

* ``rmcorr``: repeated-measures correlation (Pearson), t with N - k - 1 df: no trend control;
* ``linear``: client-centred, linear session number, CR1 cluster-robust interval, t with G - 1 df (the default
  before this run);
* ``client_trend``: each client's own linear trend removed, CR1;
* ``first_diff``: first differences within client (dy on dx with an intercept, i.e. a linear shared trend),
  ``statsmodels`` OLS, CR1;
* ``spline``: client-centred plus a natural cubic spline of session position (patsy ``cr``, at most 4 df),
  ``statsmodels`` OLS, CR1;
* ``session_order``: client-centred plus one fixed effect per session position (any shared shape), statsmodels
  OLS, CR1 counting the absorbed client means (as a fit with client dummies);
* ``session_order_xt``: the same with the CR1 factor of Stata's ``xtreg, fe`` (client means not counted).

The rule (fixed in ``docs/research_calibration.md`` before this grid was first run) is :func:`select_default`.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):  # small fits: threads only contend
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
EFFECT = 0.25
AMPLITUDE = 1.5
AMPLITUDE_SD = 0.3
MAX_FPR = 0.07
POWER_TIE = 0.01

SHAPES = {
    "none": lambda u: np.zeros_like(u),
    "linear": lambda u: u,
    "saturating": lambda u: (1 - np.exp(-5 * u)) / (1 - math.exp(-5)),
    "step": lambda u: (u >= 0.4).astype(float),
    "u_shaped": lambda u: (2 * u - 1) ** 2,
}


@dataclass(frozen=True)
class Design:
    clients: int
    sessions: int  # the last session position
    min_sessions: int  # equal to sessions: balanced; less: each client's count drawn uniformly

    @property
    def name(self) -> str:
        if self.min_sessions == self.sessions:
            return f"{self.clients}x{self.sessions}"
        return f"{self.clients}x{self.min_sessions}-{self.sessions}"


DESIGNS = (Design(10, 3, 3), Design(10, 20, 20), Design(40, 3, 3), Design(40, 20, 20), Design(20, 20, 3))
VARYING = DESIGNS[-1]


@dataclass(frozen=True)
class Cell:
    shape: str
    design: Design
    phi: float = 0.0
    ceiling: bool = False
    between_r: float = 0.0
    effect: float = 0.0
    shuffled: bool = False  # positions unknown: the estimators get them shuffled within client

    @property
    def null(self) -> bool:
        return self.effect == 0.0

    @property
    def name(self) -> str:
        parts = [self.shape, self.design.name, f"phi{self.phi:g}"]
        parts += ["ceiling"] * self.ceiling + [f"between{self.between_r:g}"] * bool(self.between_r)
        parts += ["order_unknown"] * self.shuffled + [f"effect{self.effect:g}"] * (not self.null)
        return " ".join(parts)


def cells() -> tuple[Cell, ...]:
    """The grid: every shape x phi 0/.8 x design; ceiling, between-client and unknown-order cells; effect cells."""
    out = [Cell(s, d, phi) for s in SHAPES for phi in (0.0, 0.8) for d in DESIGNS]
    out += [Cell(s, VARYING, 0.5, ceiling=True) for s in SHAPES]
    out += [Cell("saturating", VARYING, 0.5, between_r=-0.8)]
    out += [Cell(s, d, 0.5, effect=EFFECT) for s in ("none", "saturating") for d in DESIGNS]
    out += [Cell("saturating", VARYING, 0.5, ceiling=True, effect=EFFECT)]
    out += [Cell("linear", VARYING, 0.0, shuffled=True)]
    return tuple(out)


CANDIDATES = ("rmcorr", "linear", "client_trend", "first_diff", "spline", "session_order", "session_order_xt")


def _ar(rng: np.random.Generator, phi: float, k: int, m: int) -> np.ndarray:
    """K stationary AR(1) series of length m with unit variance, shape (k, m)."""
    e = rng.standard_normal((k, m))
    out = np.empty((k, m))
    out[:, 0] = e[:, 0]
    for t in range(1, m):
        out[:, t] = phi * out[:, t - 1] + math.sqrt(1 - phi * phi) * e[:, t]
    return out


def simulate(cell: Cell, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """One data set, one row per session: ``x``, ``y``, ``client``, ``order`` (what the estimators see)."""
    d = cell.design
    k, m = d.clients, d.sessions
    means = rng.multivariate_normal([0.0, 0.0], [[1.0, cell.between_r], [cell.between_r, 1.0]], size=k)
    xw, uw = _ar(rng, cell.phi, k, m), _ar(rng, cell.phi, k, m)
    yw = cell.effect * xw + uw
    f = SHAPES[cell.shape](np.arange(m) / (m - 1))
    x = means[:, :1] + xw + AMPLITUDE * (1 + AMPLITUDE_SD * rng.standard_normal((k, 1))) * f
    y = means[:, 1:] + yw + AMPLITUDE * (1 + AMPLITUDE_SD * rng.standard_normal((k, 1))) * f
    if cell.ceiling:
        y = np.round(np.minimum(40.0, 36.0 + 2.5 * y), 1)
    n_sessions = rng.integers(d.min_sessions, d.sessions + 1, size=k) if d.min_sessions < m else np.full(k, m)
    present = np.arange(m)[None, :] < n_sessions[:, None]
    order = np.tile(np.arange(1, m + 1, dtype=float), (k, 1))
    if cell.shuffled:
        order = np.array([np.concatenate([rng.permutation(order[i, :n]), order[i, n:]])
                          for i, n in enumerate(n_sessions)])
    client = np.repeat(np.arange(k)[:, None], m, axis=1)
    return {"x": x[present], "y": y[present], "client": client[present], "order": order[present],
            "at_ceiling": float(np.mean(y[present] >= 40.0)) if cell.ceiling else 0.0}


def first_difference(x: np.ndarray, y: np.ndarray, client: np.ndarray, order: np.ndarray) -> float | None:
    """The p of dy on dx (with an intercept) over consecutive sessions of each client, CR1, t with G - 1 df."""
    from scipy import stats as sps

    from pipeline.research.within import cluster_ols

    idx = np.lexsort((order, client))
    x, y, client = x[idx], y[idx], client[idx]
    same = client[1:] == client[:-1]
    dx, dy, g = (x[1:] - x[:-1])[same], (y[1:] - y[:-1])[same], client[1:][same]
    if len(np.unique(g)) < 3 or dx @ dx <= 0:
        return None
    beta, se, _, groups = cluster_ols(dy, np.column_stack([dx, np.ones(len(dx))]), g)
    return None if se == 0 else float(2 * sps.t.sf(abs(beta / se), groups - 1))


def estimate_p(name: str, data: dict[str, np.ndarray]) -> float | None:
    """The two-sided p of candidate ``name`` on one data set."""
    from pipeline.research.within import client_moments, ordered_within, rmcorr, within_estimate

    x, y, client, order = data["x"], data["y"], data["client"], data["order"]
    if name in ("rmcorr", "linear", "client_trend"):
        mom = client_moments(x, y, client, order)[1]
        if name == "rmcorr":
            return rmcorr(mom)[1]
        cov = ("session_number",) if name == "linear" else ("client_trend",)
        return within_estimate(mom, covariates=cov, ci="cluster", min_clients=3).p
    if name == "first_diff":
        return first_difference(x, y, client, order)
    trend = "spline" if name == "spline" else "session_order"
    return ordered_within(x, y, client, order, trend=trend, min_clients=3,
                          count_client_means=name != "session_order_xt").p


def statsmodels_reference_p(data: dict[str, np.ndarray]) -> float:
    """The p of x in ``y ~ x + C(client) + C(order)`` (statsmodels formula, cluster-robust, t): ``session_order``."""
    import pandas as pd
    import statsmodels.formula.api as smf

    frame = pd.DataFrame({k: data[k] for k in ("x", "y", "client", "order")})
    fit = smf.ols("y ~ x + C(client) + C(order)", frame).fit(cov_type="cluster", cov_kwds={"groups": frame["client"]},
                                                              use_t=True)
    return float(fit.pvalues["x"])


def run(reps: int = 100, *, check: int = 2, seed: int = 20261207, log: bool = True,
        grid: tuple[Cell, ...] | None = None) -> dict:
    """Every cell x candidate: the share of data sets with p < .05 (estimable data sets only)."""
    from pipeline.research.within import ordered_within

    grid = cells() if grid is None else grid
    rng = np.random.default_rng(seed)
    out = {"reps": reps, "seed": seed, "amplitude": AMPLITUDE, "effect": EFFECT, "candidates": list(CANDIDATES),
           "mc_se_at_05": round(math.sqrt(0.05 * 0.95 / reps), 4), "cells": []}
    t0 = time.perf_counter()
    max_dp = 0.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for cell in grid:
            counts = {c: [0, 0] for c in CANDIDATES}  # rejections, estimable
            ceiling = 0.0
            for r in range(reps):
                data = simulate(cell, rng)
                ceiling += data["at_ceiling"] / reps
                for name in CANDIDATES:
                    p = estimate_p(name, data)
                    if p is not None:
                        counts[name][0] += p < 0.05
                        counts[name][1] += 1
                if r < check and not cell.shuffled:
                    mine = ordered_within(data["x"], data["y"], data["client"], data["order"], min_clients=3).p
                    max_dp = max(max_dp, abs(mine - statsmodels_reference_p(data)))
            out["cells"].append({
                "name": cell.name, "shape": cell.shape, "design": cell.design.name, "clients": cell.design.clients,
                "sessions": [cell.design.min_sessions, cell.design.sessions], "phi": cell.phi,
                "ceiling": cell.ceiling, "share_at_ceiling": round(ceiling, 3), "between_r": cell.between_r,
                "effect": cell.effect, "order_unknown": cell.shuffled, "null": cell.null,
                "rate": {c: round(k / n, 4) if n else None for c, (k, n) in counts.items()},
                "estimable": {c: n for c, (_, n) in counts.items()}})
            if log:
                print(f"{time.perf_counter() - t0:7.1f} s  {cell.name}", file=sys.stderr, flush=True)
    out["statsmodels_check"] = {"replications_per_cell": check, "max_abs_difference_p": float(f"{max_dp:.2e}")}
    out["seconds"] = round(time.perf_counter() - t0, 1)
    out["selection"] = select_default(out)
    return out


def select_default(doc: dict, *, max_fpr: float = MAX_FPR) -> dict:
    """The default: the candidate that holds its level under every trend shape, then the most powerful.

    Eligible: (a) for every trend shape, the false-positive rate pooled over that shape's null cells is at most
    ``max_fpr``; (b) in no single null cell does it exceed ``max_fpr`` by more than two Monte Carlo standard
    errors (2 x sqrt(.05 x .95 / reps)). Cells with unknown session order are left out (the product refuses
    them). Among the eligible, the highest mean power over the effect cells; candidates within ``POWER_TIE``
    of the best count as tied and the first in :data:`CANDIDATES` order among them wins.
    """
    names = list(doc["candidates"])
    reps = doc["reps"]
    nulls = [c for c in doc["cells"] if c["null"] and not c["order_unknown"]]
    effects = [c for c in doc["cells"] if not c["null"]]
    tolerance = max_fpr + 2 * math.sqrt(0.05 * 0.95 / reps)
    shapes = sorted({c["shape"] for c in nulls}, key=list(SHAPES).index)

    def rate(c: dict, n: str) -> float:
        return 1.0 if c["rate"][n] is None else c["rate"][n]  # never estimable: not eligible

    by_shape = {n: {s: round(sum(rate(c, n) * c["estimable"][n] for c in nulls if c["shape"] == s)
                             / max(sum(c["estimable"][n] for c in nulls if c["shape"] == s), 1), 4)
                    for s in shapes} for n in names}
    worst_cell = {n: max(rate(c, n) for c in nulls) for n in names}
    power = {n: round(sum(0.0 if c["rate"][n] is None else c["rate"][n] for c in effects) / max(len(effects), 1), 4)
             for n in names}
    eligible = [n for n in names if max(by_shape[n].values()) <= max_fpr and worst_cell[n] <= tolerance + 1e-12]
    chosen = None
    if eligible:
        best = max(power[n] for n in eligible)
        chosen = next(n for n in eligible if power[n] >= best - POWER_TIE)
    return {"max_fpr": max_fpr, "cell_tolerance": round(tolerance, 4), "fpr_by_shape": by_shape,
            "worst_null_cell": worst_cell, "mean_power": power, "eligible": eligible, "chosen": chosen}


def _fmt(v: float | None, bold_above: float | None = None) -> str:
    if v is None:
        return "-"
    s = f"{v:.3f}"
    return f"**{s}**" if bold_above is not None and v > bold_above else s


def markdown(doc: dict) -> str:
    """The results section of ``docs/research_calibration.md``."""
    from pipeline.research.compare import DEFAULT_COVARIATES

    names = doc["candidates"]
    sel = doc["selection"]
    lines = [
        "## Results",
        "",
        f"Reproduce: `.venv/bin/python -m bench.calibration --reps {doc['reps']} --json bench/calibration.json "
        "--markdown docs/research_calibration.md` "
        f"({doc['seconds']} s wall, one process, on a 2-core machine shared with other jobs; seed {doc['seed']}). "
        f"{doc['reps']} data sets per cell; "
        f"Monte Carlo standard error of a rate near .05: {doc['mc_se_at_05']:.3f} per cell (a single cell may "
        f"exceed .07 by chance; the rule's per-cell bound is {sel['cell_tolerance']:.3f}), about "
        f"{doc['mc_se_at_05'] / math.sqrt(11):.3f} for a shape's pooled rate (11-12 null cells per shape).",
        "",
        "**False-positive rate by trend shape** (pooled over the shape's null cells: every design, phi 0 and .8, "
        "the ceiling and between-client cells). Bold: above .07.",
        "",
        "| candidate | " + " | ".join(sel["fpr_by_shape"][names[0]]) + " | worst single cell | mean power | eligible |",
        "|---|" + "---:|" * (len(sel["fpr_by_shape"][names[0]]) + 2) + "---|",
    ]
    for n in names:
        lines.append(f"| `{n}` | " + " | ".join(_fmt(v, sel["max_fpr"]) for v in sel["fpr_by_shape"][n].values())
                     + f" | {_fmt(sel['worst_null_cell'][n], sel['cell_tolerance'])} | {sel['mean_power'][n]:.3f} | "
                     f"{'yes' if n in sel['eligible'] else 'no'} |")
    default = "+".join(DEFAULT_COVARIATES)
    verdict = (f"`{sel['chosen']}`" if sel["chosen"] else "none eligible (see *Outcome and deviation* above)")
    lines += [
        "",
        f"**Chosen by the rule**: {verdict}. **The code's default** (`alliance compare`, "
        f"`pipeline.research.compare.DEFAULT_COVARIATES`): `{default}`"
        + (" (the same)." if sel["chosen"] == default else
           " (a deviation from the rule, stated above)." if sel["chosen"] is None else " (DIFFERS: fix one)."),
        "",
        f"Every cell (share of data sets with p < .05: the false-positive rate in null cells, power in effect "
        f"cells). Bold: a null cell above the per-cell bound {sel['cell_tolerance']:.3f}. Design: clients x "
        "sessions. `order_unknown`: positions shuffled within client (not in the rule; the product refuses it).",
        "",
        "| cell | at ceiling | " + " | ".join(f"`{n}`" for n in names) + " |",
        "|---|---:|" + "---:|" * len(names),
    ]
    for c in doc["cells"]:
        bold = sel["cell_tolerance"] if c["null"] else None
        kind = "null" if c["null"] else "effect"
        lines.append(f"| {c['name']} ({kind}) | {c['share_at_ceiling']:.2f} | "
                     + " | ".join(_fmt(c["rate"][n], bold) for n in names) + " |")
    lines += [
        "",
        f"statsmodels check: on the first {doc['statsmodels_check']['replications_per_cell']} data sets of each "
        "cell, `session_order` was refitted as `y ~ x + C(client) + C(order)` with statsmodels' formula OLS and "
        "its cluster-robust covariance; largest absolute difference in p: "
        f"{doc['statsmodels_check']['max_abs_difference_p']:.1e}.",
        "",
    ]
    return "\n".join(lines)


RESULTS_MARK = "## Results"


def write_markdown(path: Path, doc: dict) -> None:
    """Replace the results section of ``path`` (everything from ``## Results``), keeping the fixed text above."""
    head = path.read_text(encoding="utf-8").split(RESULTS_MARK)[0].rstrip() + "\n\n" if path.exists() else ""
    path.write_text(head + markdown(doc), encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=100, help="data sets per cell (default 100)")
    ap.add_argument("--check", type=int, default=2, help="data sets per cell refitted with statsmodels formulas")
    ap.add_argument("--seed", type=int, default=20261207)
    ap.add_argument("--json", type=Path, help="write the JSON here")
    ap.add_argument("--markdown", type=Path, help="replace the results section of this Markdown file "
                    "(default: print it)")
    ap.add_argument("--from-json", type=Path, help="re-render a stored run (JSON from --json) instead of running")
    ap.add_argument("--only", action="append", metavar="CELL", help="run only this cell (its name as in the "
                    "table, e.g. 'saturating 20x3-20 phi0.8'; repeatable): a confirmatory run, JSON only")
    args = ap.parse_args(argv)
    if args.only:
        grid = tuple(c for c in cells() if c.name in args.only)
        missing = sorted(set(args.only) - {c.name for c in grid})
        if missing:
            ap.error(f"no cell named {missing}")
        doc = run(args.reps, check=args.check, seed=args.seed, grid=grid)
        text = json.dumps(doc, indent=1) + "\n"
        args.json.write_text(text, encoding="utf-8") if args.json else print(text)
        return 0
    if args.from_json:
        doc = json.loads(args.from_json.read_text(encoding="utf-8"))
        doc["selection"] = select_default(doc)
        args.json = None
    else:
        doc = run(args.reps, check=args.check, seed=args.seed)
    if args.json:
        args.json.write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
    if args.markdown:
        write_markdown(args.markdown, doc)
    else:
        print(markdown(doc))
    return 0


if __name__ == "__main__":
    sys.exit(main())
