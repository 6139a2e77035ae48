"""The default within-client estimate of ``alliance compare`` for many indicators at once.

:func:`ordered_within_columns` gives, column by column, what :func:`pipeline.research.within.ordered_within`
gives (within 1e-9), without a statsmodels fit and a row frame per indicator.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import stats as sps

from pipeline.research.within import WithinEstimate, _codes, order_unknown_note, ordered_within


def ordered_within_columns(x: np.ndarray, y: np.ndarray, clients: np.ndarray, order: np.ndarray, *,
                           trend: str = "session_order", min_clients: int = 5,
                           count_client_means: bool = True, refusals_only: bool = False
                           ) -> list[WithinEstimate | None]:
    """:func:`ordered_within` for every column of ``x`` at once, each over the rows where that column is present.

    Column ``j`` gives the estimate :func:`pipeline.research.within.ordered_within` gives for the rows where
    ``x[:, j]`` and ``y`` are finite (equal within rounding: ``tests/research/test_compare_speed.py``). Built for
    many indicators measured on almost the same sessions: clients and positions are coded once for all columns;
    per column only bincounts over the rows, the position Gram matrix (positions x positions) and the slope with
    its CR1 cluster-robust standard error in closed form (one regressor left after the projection: the
    statsmodels OLS cluster covariance of :func:`pipeline.research.within.cluster_ols`, which ``ordered_within``
    uses, is ``sum_g (sum_i x_i e_i)^2 / (x'x)^2``). Columns with the same present rows share one Gram matrix. Trends
    other than ``session_order`` go through :func:`ordered_within` column by column.

    Parameters
    ----------
    x : ndarray, shape (n, k)
        Indicator values, NaN where missing.
    y : ndarray, shape (n,)
    clients : ndarray, shape (n,)
        Client labels or codes.
    order : ndarray, shape (n,)
        Session position (NaN: unknown; a contributing session without one refuses the column's estimate: its
        ``ci_method`` is then ``"refused"``, the reason in ``note``).
    refusals_only : bool
        Only say which columns are refused (the others are None): for the linear trend controls, whose
        estimate comes from per-client sums but which need the order too.
    """
    x = np.ascontiguousarray(np.asarray(x, dtype=float).T)  # one indicator per row: contiguous columns
    y, order = np.asarray(y, dtype=float), np.asarray(order, dtype=float)
    present = np.isfinite(x) & np.isfinite(y)
    client = _codes(clients)
    n_all = int(client.max()) + 1 if len(client) else 0
    finite = np.isfinite(order)
    position = np.zeros(len(order), dtype=np.intp)
    position[finite] = _codes(order[finite])
    n_levels = int(position.max()) + 1 if len(position) else 0
    cache: dict[bytes, tuple] = {}
    out = []
    for j in range(x.shape[0]):
        m = present[j]
        per_client = np.bincount(client, weights=m, minlength=n_all)
        keep = m & (per_client[client] >= 2)
        rows = np.flatnonzero(keep)
        g, n_obs = int((per_client >= 2).sum()), len(rows)
        if not finite[rows].all():  # refused, as estimate_table refuses it: ci_method "refused"
            out.append(WithinEstimate(None, None, None, None, None, n_obs, g, 0, "refused", trend,
                                      order_unknown_note(order[rows], client[rows])))
            continue
        if refusals_only:
            out.append(None)
            continue
        if trend != "session_order":
            out.append(ordered_within(x[j, m], y[m], client[m], order[m], trend=trend, min_clients=min_clients,
                                      count_client_means=count_client_means))
            continue
        if g < max(min_clients, 3):
            out.append(WithinEstimate(None, None, None, None, None, n_obs, g, 0, "cluster", trend,
                                      f"too few clients with 2+ sessions ({g})"))
            continue
        c, p = client[rows], position[rows]
        key = keep.tobytes()
        if key not in cache:
            cache[key] = _position_gram(c, p, per_client, n_all, n_levels)
        solve, rank, levels, local = cache[key]
        xv, yv = x[j, rows], y[rows]
        resid = []
        for v in (xv, yv):
            v = v - (np.bincount(c, weights=v, minlength=n_all) / np.maximum(per_client, 1))[c]
            if solve.size:
                sums = np.bincount(local[p], weights=v, minlength=levels)[1:]
                fit = np.concatenate([[0.0], solve @ sums])[local[p]]
                v = v - (fit - (np.bincount(c, weights=fit, minlength=n_all) / np.maximum(per_client, 1))[c])
            resid.append(v)
        xt, yt = resid
        sxx, syy = float(xt @ xt), float(yt @ yt)
        xm = x[j, m]
        if sxx <= 1e-12 * max(1.0, float(xm @ xm)) or syy <= 1e-12 * max(1.0, float(y[m] @ y[m])):
            out.append(WithinEstimate(None, None, None, None, None, n_obs, g, 0, "cluster", trend,
                                      "no within-client variation left in x or y once the trend is removed"))
            continue
        beta = float(xt @ yt) / sxx
        score = np.bincount(c, weights=xt * (yt - beta * xt), minlength=n_all)
        absorbed = rank + (g if count_client_means else 0)
        factor = g / (g - 1) * (n_obs - 1) / max(n_obs - 1 - absorbed, 1)
        se = math.sqrt(max(float(score @ score) / (sxx * sxx) * factor, 0.0))
        scale = math.sqrt(sxx / syy)
        est, se = beta * scale, se * scale
        df = g - 1
        if se == 0:
            out.append(WithinEstimate(est, est, est, 0.0, 0.0, n_obs, g, df, "cluster", trend, "zero standard error"))
            continue
        q = float(sps.t.ppf(0.975, df))
        out.append(WithinEstimate(est, est - q * se, est + q * se, float(2 * sps.t.sf(abs(est / se), df)), se, n_obs,
                                  g, df, "cluster", trend))
    return out


def _position_gram(c: np.ndarray, p: np.ndarray, per_client: np.ndarray, n_clients: int, n_levels: int
                   ) -> tuple[np.ndarray, int, int, np.ndarray]:
    """``(solve, rank, levels, local)`` of the client-centred position dummies of these rows.

    As in :func:`pipeline.research.within.trend_projection`; ``local`` maps a position code to its index among the
    positions present (the first present is the reference).
    """
    counts = np.bincount(c * n_levels + p, minlength=n_clients * n_levels).reshape(n_clients, n_levels)
    counts = counts[per_client >= 2]
    counts = counts[counts.sum(axis=1) > 0]
    total = counts.sum(axis=0)
    levels = np.flatnonzero(total > 0)
    local = np.zeros(n_levels, dtype=np.intp)
    local[levels] = np.arange(len(levels))
    if len(levels) < 2:
        return np.zeros((0, 0)), 0, len(levels), local
    counts = counts[:, levels].astype(float)
    gram = np.diag(counts.sum(axis=0)) - counts.T @ (counts / counts.sum(axis=1, keepdims=True))
    gram = gram[1:, 1:]
    return (np.linalg.pinv(gram, hermitian=True), int(np.linalg.matrix_rank(gram, hermitian=True)), len(levels),
            local)
