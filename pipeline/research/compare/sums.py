"""Per-client sums of cross products for every indicator at once: what the estimates are computed from."""

from __future__ import annotations

import numpy as np

from pipeline.research.compare.options import SPEARMAN_WITHIN_MAX_PAIRS
from pipeline.research.compare.staging import Staged
from pipeline.research.within import SUM_NAMES

KEYS = ["name", "role_label", "instrument", "scale", "timepoint"]


#: The rank sums the Spearman (rank) version of the repeated-measures correlation needs.
RANK_SUMS = ("srx", "sry", "srxx", "sryy", "srxy")


def client_sums(client: np.ndarray, x: np.ndarray, y: np.ndarray, s: np.ndarray, d: np.ndarray,
                ranks: tuple[np.ndarray, np.ndarray] | None = None, *, linear: bool = True
                ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Per-client sums of cross products of x, y, session number s and days d, for k indicators at once.

    Parameters
    ----------
    client : ndarray of int, shape (n,)
        Client code of each pair row.
    x : ndarray, shape (n, k)
        Indicator values; NaN excludes the row from that column's sums.
    y, s, d : ndarray, shape (n,)
        Score, session number, days since first session (rows with a NaN y are excluded from every column).
    ranks : (ndarray, ndarray), optional
        Average ranks of x and y, shape (n, k) each (NaN where excluded): adds :data:`RANK_SUMS`.
    linear : bool
        Also the sums with s and d (the linear trend controls need them); False: they are zeros (the
        ``session_order`` and ``spline`` controls are estimated from the rows, not from these sums).

    Returns
    -------
    codes : ndarray of int, shape (g,)
        The clients present, ascending.
    sums : dict of str -> ndarray, shape (g, k)
        The keys of :data:`pipeline.research.within.SUM_NAMES` (and :data:`RANK_SUMS`); ``n`` is 0 where a client
        has no pair in a column.

    Notes
    -----
    Each sum is a product of a client-by-row matrix weighted by a row term (1, y, s, d and their products) with
    the masked x, x squared or the mask: a handful of sparse matrix products instead of one pass per indicator.
    """
    from scipy import sparse

    codes, inverse = np.unique(client, return_inverse=True)
    n, g = len(client), len(codes)
    mask = ~np.isnan(x) & ~np.isnan(y)[:, None]
    m = mask.astype(float)
    x0 = np.where(mask, x, 0.0)
    y0, s0, d0 = (np.nan_to_num(v) for v in (y, s, d))

    def by_client(weights: dict[str, np.ndarray], values: np.ndarray) -> dict[str, np.ndarray]:
        stacked = sparse.csr_matrix((np.concatenate(list(weights.values())),
                                     (np.concatenate([inverse + i * g for i in range(len(weights))]),
                                      np.tile(np.arange(n), len(weights)))), shape=(g * len(weights), n))
        out = np.asarray(stacked @ values)
        return {name: out[i * g:(i + 1) * g] for i, name in enumerate(weights)}

    one = np.ones(n)
    if linear:
        sums = by_client({"n": one, "sy": y0, "ss": s0, "sd": d0, "syy": y0 * y0, "sys": y0 * s0, "syd": y0 * d0,
                          "sss": s0 * s0, "ssd": s0 * d0, "sdd": d0 * d0}, m)
        sums |= by_client({"sx": one, "sxy": y0, "sxs": s0, "sxd": d0}, x0)
    else:
        sums = by_client({"n": one, "sy": y0, "syy": y0 * y0}, m) | by_client({"sx": one, "sxy": y0}, x0)
        sums |= {name: np.zeros((g, x.shape[1])) for name in ("ss", "sd", "sys", "syd", "sss", "ssd", "sdd", "sxs",
                                                                "sxd")}
    plain = sparse.csr_matrix((one, (inverse, np.arange(n))), shape=(g, n))  # sums per client, unweighted
    sums["sxx"] = np.asarray(plain @ (x0 * x0))
    if ranks is not None:
        rx, ry = (np.where(mask, np.nan_to_num(r), 0.0) for r in ranks)
        for name, values in (("srx", rx), ("sry", ry), ("srxx", rx * rx), ("sryy", ry * ry), ("srxy", rx * ry)):
            sums[name] = np.asarray(plain @ values)
    return codes, sums


def average_ranks(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Average ranks of each column of x and of y over the rows where that column and y are present."""
    from scipy.stats import rankdata

    rx, ry = np.full(x.shape, np.nan), np.full(x.shape, np.nan)
    for j in range(x.shape[1]):
        ok = ~np.isnan(x[:, j]) & ~np.isnan(y)
        rx[ok, j] = rankdata(x[ok, j])
        ry[ok, j] = rankdata(y[ok])
    return rx, ry


def pair_sums(staged: Staged, *, need_days: bool = False, ranks: bool | None = None, linear: bool = True
              ) -> dict[str, np.ndarray]:
    """Per (indicator, measure, client) sums over the staged rows, ordered by indicator, measure, client.

    The layout :func:`estimate_table` reads: one entry per row, key columns name, role_label, instrument, scale,
    timepoint, client_id, then the sums. ``need_days``: sessions without a date are left out. ``ranks`` None: the
    rank sums only when there are at most :data:`SPEARMAN_WITHIN_MAX_PAIRS` pairs. ``linear`` False: the sums
    with session number and days are zeros (see :func:`client_sums`).
    """
    x = staged.x
    if need_days:
        x = np.where(np.isnan(staged.d)[:, None], np.nan, x)
    if ranks is None:
        ranks = int((~np.isnan(x)).sum()) <= SPEARMAN_WITHIN_MAX_PAIRS
    pieces = []
    for mi in range(len(staged.measures)):
        at = staged.measure == mi
        xm, ym = x[at], staged.y[at]
        codes, sums = client_sums(staged.client[at], xm, ym, staged.s[at], staged.d[at],
                                  average_ranks(xm, ym) if ranks else None, linear=linear)
        flat = {k: np.ascontiguousarray(v.T) for k, v in sums.items()}  # (k, g): one indicator per row
        for j in np.flatnonzero((flat["n"] > 0).any(axis=1)):
            present = flat["n"][j] > 0
            pieces.append(((*staged.indicators[j], *staged.measures[mi]), staged.clients[codes[present]],
                           {k: v[j, present] for k, v in flat.items()}))
    return assemble(pieces)


def assemble(pieces: list[tuple[tuple, np.ndarray, dict[str, np.ndarray]]]) -> dict[str, np.ndarray]:
    """``(key, client labels, sums)`` pieces as one table of rows ordered by key, then client.

    ``key_id`` numbers the keys (rows of one key are contiguous), so readers find the blocks without comparing keys.
    """
    pieces = sorted(pieces, key=lambda piece: piece[0])
    if not pieces:
        return ({k: np.array([], dtype=object) for k in (*KEYS, "client_id")} | {k: np.array([]) for k in SUM_NAMES}
                | {"key_id": np.array([], dtype=int)})
    lengths = [len(c) for _, c, _ in pieces]
    out = {k: np.repeat(np.array([key[i] for key, _, _ in pieces], dtype=object), lengths)
           for i, k in enumerate(KEYS)}
    out["client_id"] = np.concatenate([c for _, c, _ in pieces])
    out["key_id"] = np.repeat(np.arange(len(pieces)), lengths)
    return out | {k: np.concatenate([sums[k] for _, _, sums in pieces]) for k in pieces[0][2]}
