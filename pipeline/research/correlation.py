"""Correlations with Fisher-z confidence intervals, within-client correlation, Benjamini-Hochberg.

Pure functions over arrays; no database. Definitions
--------------------------------------------------
*Pearson* r with p from the t distribution (``n - 2`` df) and 95 % CI ``tanh(atanh(r) +- 1.96 / sqrt(n - 3))``.
*Spearman* rho = Pearson r of average ranks; same p; CI with the Fieller-Hartley-Pearson (1957) standard
error ``sqrt(1.06 / (n - 3))``.
*Within-client* (repeated-measures correlation, Bakdash & Marusich 2017): both variables are centred on
each client's mean and correlated over all ``N`` observations of ``k`` clients; ``df = N - k - 1`` for
the p-value and ``N - k + 1`` plays the role of ``n`` in the CI. The Spearman version does the same on
ranks taken over all observations. **Not adjusted for trend**: a trend over the course of therapy shared by
both variables makes them correlate within clients (in ``bench/calibration.py`` it rejected a true null in
most data sets under every shared trend shape), so they describe, and are never printed as the association;
the headline within-client estimate is :func:`pipeline.research.within.ordered_within`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy import stats as sps

Method = Literal["pearson", "spearman"]
Z_95 = 1.959963984540054
SPEARMAN_SE_FACTOR = 1.06
#: How a within-client (repeated-measures) correlation is labelled wherever it is shown.
NOT_TREND_ADJUSTED = "repeated-measures correlation, not adjusted for trend"


@dataclass(frozen=True)
class Correlation:
    """An estimate with its 95 % CI and two-sided p; all None when it is undefined.

    Attributes
    ----------
    method : {"pearson", "spearman"}
    estimate, ci_low, ci_high, p : float or None
    n : int
        Observations used.
    df : int
        Degrees of freedom of the t test (``n - 2``; ``N - k - 1`` within clients).
    note : str
        Why the estimate is missing, if it is.
    """

    method: Method
    estimate: float | None
    ci_low: float | None
    ci_high: float | None
    p: float | None
    n: int
    df: int
    note: str = ""


def _pearson_r(x: np.ndarray, y: np.ndarray) -> float | None:
    xc, yc = x - x.mean(), y - y.mean()
    denom = math.sqrt(float(xc @ xc) * float(yc @ yc))
    if denom == 0.0:
        return None
    return float(np.clip(float(xc @ yc) / denom, -1.0, 1.0))


def _finish(method: Method, r: float | None, *, n: int, df: int, n_eff: int, min_n: int) -> Correlation:
    if n_eff < max(min_n, 4):
        return Correlation(method, None, None, None, None, n, df, f"too few observations (effective n {n_eff} "
                           f"< {max(min_n, 4)})")
    if r is None:
        return Correlation(method, None, None, None, None, n, df, "no variation in one of the variables")
    if abs(r) >= 1.0:
        return Correlation(method, r, r, r, 0.0, n, df, "perfect correlation")
    t = r * math.sqrt(df / (1.0 - r * r))
    p = float(2.0 * sps.t.sf(abs(t), df))
    se = math.sqrt((SPEARMAN_SE_FACTOR if method == "spearman" else 1.0) / (n_eff - 3))
    z = math.atanh(r)
    return Correlation(method, r, math.tanh(z - Z_95 * se), math.tanh(z + Z_95 * se), p, n, df)


def correlate(x: Sequence[float], y: Sequence[float], *, method: Method, min_n: int = 4) -> Correlation:
    """Pearson or Spearman correlation of paired values.

    Parameters
    ----------
    x, y : sequence of float, shape (n,)
        Paired observations without missing values.
    method : {"pearson", "spearman"}
    min_n : int
        Below this many pairs (and always below 4) the estimate is None.

    Returns
    -------
    Correlation
    """
    xa, ya = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if xa.shape != ya.shape or xa.ndim != 1:
        raise ValueError(f"x and y must be 1-D and the same length, got shapes {xa.shape} and {ya.shape}")
    n = len(xa)
    if method == "spearman":
        xa, ya = sps.rankdata(xa), sps.rankdata(ya)
    r = _pearson_r(xa, ya) if n >= 2 else None
    return _finish(method, r, n=n, df=n - 2, n_eff=n, min_n=min_n)


def correlate_within(x: Sequence[float], y: Sequence[float], groups: Sequence[object], *, method: Method,
                     min_n: int = 4) -> Correlation:
    """Within-client correlation (each variable centred on its client's mean): not adjusted for trend.

    See :data:`NOT_TREND_ADJUSTED`. Clients with a single observation carry no within-client information and
    are dropped first.

    Parameters
    ----------
    x, y : sequence of float, shape (N,)
    groups : sequence, shape (N,)
        Client of each observation.
    method : {"pearson", "spearman"}
    min_n : int
        Minimum effective n (``N - k + 1``).

    Returns
    -------
    Correlation
        ``n`` is N (observations of clients with two or more).
    """
    xa, ya = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    g = np.asarray(groups, dtype=object)
    if not (xa.shape == ya.shape == g.shape) or xa.ndim != 1:
        raise ValueError(f"x, y and groups must be 1-D and the same length: {xa.shape}, {ya.shape}, {g.shape}")
    labels, counts = np.unique(g.astype(str), return_counts=True)
    keep = np.isin(g.astype(str), labels[counts >= 2])
    xa, ya, g = xa[keep], ya[keep], g[keep].astype(str)
    n, k = len(xa), len(np.unique(g))
    if method == "spearman" and n:
        xa, ya = sps.rankdata(xa), sps.rankdata(ya)
    if n == 0:
        return Correlation(method, None, None, None, None, 0, 0, "no client has two or more observations")
    xc, yc = _centre(xa, g), _centre(ya, g)
    r = _pearson_r(xc, yc) if n - k >= 2 else None
    return _finish(method, r, n=n, df=n - k - 1, n_eff=n - k + 1, min_n=min_n)


def _centre(v: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """``v`` minus its group's mean, shape (n,); one pass (bincount), not one mask per group."""
    _, inverse = np.unique(groups, return_inverse=True)
    v = np.asarray(v, dtype=float)
    means = np.bincount(inverse, weights=v) / np.bincount(inverse)
    return v - means[inverse]


def benjamini_hochberg(p: Sequence[float | None]) -> list[float | None]:
    """Benjamini-Hochberg adjusted p-values (q), None kept in place.

    ``q_(i) = min_{j >= i} p_(j) * m / j`` over the ``m`` non-missing p sorted ascending, capped at 1.
    """
    idx = [i for i, v in enumerate(p) if v is not None and not math.isnan(v)]
    m = len(idx)
    out: list[float | None] = [None] * len(p)
    if not m:
        return out
    order = sorted(idx, key=lambda i: p[i])
    running = 1.0
    for rank in range(m, 0, -1):
        i = order[rank - 1]
        running = min(running, float(p[i]) * m / rank)
        out[i] = min(running, 1.0)
    return out


def from_r(method: Method, r: float | None, *, n: int, df: int, n_eff: int, min_n: int = 4) -> Correlation:
    """A :class:`Correlation` (p from t with ``df``, Fisher-z CI with ``n_eff``) from an already computed r."""
    return _finish(method, r, n=n, df=df, n_eff=n_eff, min_n=min_n)
