"""Agreement statistics for the coder benches: ICC(2,1), bootstrap intervals over transcripts, AUC."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np


def icc_2_1(a: Sequence[float], b: Sequence[float]) -> float:
    """ICC(2,1) of two raters (two-way random effects, absolute agreement, single measure; Shrout & Fleiss 1979).

    Rows with a missing value in either rater are dropped.
    """
    x = np.column_stack([np.asarray(a, float), np.asarray(b, float)])
    x = x[np.all(np.isfinite(x), axis=1)]
    return icc_2_1_matrix(x)


def icc_2_1_matrix(x: np.ndarray) -> float:
    """ICC(2,1) of an (n targets, k raters) matrix."""
    n, k = x.shape
    if n < 2:
        return float("nan")
    grand = x.mean()
    ss_rows = k * ((x.mean(axis=1) - grand) ** 2).sum()
    ss_cols = n * ((x.mean(axis=0) - grand) ** 2).sum()
    ss_err = ((x - grand) ** 2).sum() - ss_rows - ss_cols
    msr, msc, mse = ss_rows / (n - 1), ss_cols / (k - 1), ss_err / ((n - 1) * (k - 1))
    denominator = msr + (k - 1) * mse + k * (msc - mse) / n
    return float((msr - mse) / denominator) if denominator > 0 else float("nan")


def bootstrap_by_group(groups: Sequence[str], statistic: Callable[[np.ndarray], float], *, n: int = 1000,
                       seed: int = 20261207) -> tuple[float, float]:
    """95 % percentile interval of ``statistic(row_indices)`` resampling whole groups (transcripts)."""
    groups = np.asarray(groups)
    unique = np.unique(groups)
    members = {g: np.flatnonzero(groups == g) for g in unique}
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(n):
        pick = rng.choice(unique, size=unique.size, replace=True)
        idx = np.concatenate([members[g] for g in pick])
        v = statistic(idx)
        if np.isfinite(v):
            values.append(v)
    if not values:
        return float("nan"), float("nan")
    lo, hi = np.percentile(values, [2.5, 97.5])
    return float(lo), float(hi)
