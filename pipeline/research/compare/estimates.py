"""The estimate table: within-client estimates, repeated-measures and client-mean correlations, q values."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from pipeline.errors import ComparisonError
from pipeline.research.compare.options import (
    DEFAULT_CI,
    DEFAULT_COVARIATES,
    LEVELS,
    NEEDS_ORDER,
    RESULT_COLUMNS,
    CompareOptions,
)
from pipeline.research.compare.staging import Staged
from pipeline.research.compare.sums import KEYS, assemble, average_ranks, client_sums, pair_sums
from pipeline.research.correlation import NOT_TREND_ADJUSTED, Correlation, benjamini_hochberg, correlate, from_r
from pipeline.research.within import (
    COVARIATES,
    ORDERED_TRENDS,
    SUM_NAMES,
    TrendProjection,
    WithinEstimate,
    covariate_label,
    mixedlm_within,
    moments_from_sums,
    order_unknown_note,
    ordered_within,
    trend_projection,
    within_estimate,
)
from pipeline.research.within_columns import ordered_within_columns


def estimates(staged: Staged, options: CompareOptions) -> pd.DataFrame:
    """The estimate table of the staged rows (:func:`stage` first).

    The within-client estimates that need the sessions' order (the default ``session_order``, ``spline``, and
    the refusal where the order is unknown) are computed for all indicators of a measure at once
    (:func:`pipeline.research.within_columns.ordered_within_columns`); only ``ci="model"`` fits row frames one by one.
    BLAS runs on one thread here (except for ``ci="model"``): the products are small and many, and on a busy
    machine a second BLAS thread made them several times slower (``docs/benchmarks.md``).
    """
    if options.ci == "model":  # statsmodels MixedLM fits, left as they were
        return _estimates(staged, options)
    with threadpool_limits(limits=1, user_api="blas"):  # thousands of tiny products: threads only wait on each other
        return _estimates(staged, options)


def _estimates(staged: Staged, options: CompareOptions) -> pd.DataFrame:
    agg = pair_sums(staged, need_days="days_since_first" in options.covariates, ranks=options.spearman_within,
                    linear=not set(options.covariates) & set(ORDERED_TRENDS) or options.ci == "model")
    raw = within = None
    needs_rows = "within" in options.levels and (options.ci == "model" or NEEDS_ORDER & set(options.covariates))
    if needs_rows and options.ci == "model":
        column = {ind: j for j, ind in enumerate(staged.indicators)}
        measure = {m: i for i, m in enumerate(staged.measures)}

        def raw(key: tuple) -> pd.DataFrame:
            at = (staged.measure == measure[tuple(key[2:])]) & ~np.isnan(staged.x[:, column[tuple(key[:2])]])
            return pd.DataFrame({"x": staged.x[at, column[tuple(key[:2])]], "y": staged.y[at],
                                 "client_id": staged.client_id[at], "therapist_id": staged.therapist_id[at],
                                 "s": staged.s[at], "d": staged.d[at],
                                 "o": staged.s[at] if staged.order is None else staged.order[at]})
    elif needs_rows:
        within = _within_by_key(staged, options)
    return estimate_table(agg, levels=options.levels, min_n=options.min_n, covariates=options.covariates,
                          ci=options.ci, bootstrap=options.bootstrap, seed=options.seed, raw_rows=raw, within=within)


def _within_by_key(staged: Staged, options: CompareOptions) -> dict[tuple, WithinEstimate]:
    """Per (indicator, role, measure) key: the ordered trend control's estimate, or the refusal of a linear one.

    A linear control (``session_number``, ``client_trend``) gets an entry only where it is refused (its estimate
    comes from the per-client sums).
    """
    ordered = [c for c in options.covariates if c in ORDERED_TRENDS]
    out = {}
    for mi, meas in enumerate(staged.measures):
        at = staged.measure == mi
        order = staged.s[at] if staged.order is None else staged.order[at]
        found = ordered_within_columns(staged.x[at], staged.y[at], staged.client[at], order,
                                       trend=ordered[0] if ordered else "session_order", min_clients=options.min_n,
                                       refusals_only=not ordered)
        for ind, w in zip(staged.indicators, found, strict=True):
            if w is not None:
                out[(*ind, *meas)] = w
    return out


def estimate_table(agg: dict[str, np.ndarray], *, levels: Sequence[str] = LEVELS, min_n: int = 5,
                   covariates: Sequence[str] = DEFAULT_COVARIATES, ci: str = DEFAULT_CI, bootstrap: int = 999,
                   seed: int = 0, raw_rows=None, within: dict[tuple, WithinEstimate] | None = None
                   ) -> pd.DataFrame:
    """Every indicator x measure x level from the per-client sums of :func:`pair_sums`.

    ``raw_rows(key) -> DataFrame`` (x, y, client_id, therapist_id, s, d, o) is needed for ``ci="model"`` (the
    model is then fitted with ``statsmodels``), for the ``session_order`` and ``spline`` trend controls
    (:func:`pipeline.research.within.ordered_within`), and to refuse a within-client estimate whose trend control
    needs the sessions' order where it is unknown (``o`` NaN); without it the linear controls use ``s`` as given.
    ``within``: per key, the ordered control's estimate or a refusal computed beforehand
    (:func:`pipeline.research.within_columns.ordered_within_columns`, ``ci_method`` ``"refused"``); used instead of
    ``raw_rows`` for the keys it holds.
    """
    rng = np.random.default_rng(seed)
    projections: dict = {}  # one trend projection per set of rows, shared by the indicators measured on them
    n_rows = len(agg["n"])
    rows = []
    if n_rows:
        key_id = np.asarray(agg["key_id"])
        bounds = [0, *(np.flatnonzero(key_id[1:] != key_id[:-1]) + 1).tolist(), n_rows]
    else:
        bounds = [0]
    for a, b in zip(bounds[:-1], bounds[1:], strict=True):
        key = tuple(agg[k][a] for k in KEYS)
        part = {k: np.asarray(v[a:b], dtype=float) for k, v in agg.items() if k not in (*KEYS, "client_id", "key_id")}
        n = part["n"]
        for level in levels:
            if level == "between":
                mx, my = part["sx"] / n, part["sy"] / n
                sp = correlate(mx, my, method="spearman", min_n=min_n)
                pe = correlate(mx, my, method="pearson", min_n=min_n)
                rows.append(_row(key, level, n=sp.n, n_clients=len(n), n_sessions=int(n.sum()), sp=sp, pe=pe,
                                 method="client means: Spearman correlation", est=(sp.estimate, sp.ci_low,
                                                                                   sp.ci_high, sp.p),
                                 ci_method="Fisher z", covariates="none", note=sp.note or pe.note))
                continue
            two = n >= 2
            mom = moments_from_sums(part)
            pe = _rm(mom[two], "pearson", min_n)
            if "srx" in part:
                rank_mom = moments_from_sums({"n": n, "sx": part["srx"], "sy": part["sry"], "sxx": part["srxx"],
                                              "syy": part["sryy"], "sxy": part["srxy"],
                                              **{k: np.zeros(len(n)) for k in SUM_NAMES if k not in
                                                 ("n", "sx", "sy", "sxx", "syy", "sxy")}})
                sp = _rm(rank_mom[two], "spearman", min_n)
            else:
                sp = Correlation("spearman", None, None, None, None, pe.n, pe.df, "")  # not asked for
            label = covariate_label(covariates)
            pre = None if within is None else within.get(key)
            frame = raw_rows(key) if pre is None and raw_rows is not None and (
                ci == "model" or NEEDS_ORDER & set(covariates)) else None
            ordered = [c for c in covariates if c in ORDERED_TRENDS]
            codes = None if frame is None else pd.factorize(frame["client_id"])[0]
            refused = _order_refusal(frame, codes, covariates)
            if pre is not None and pre.ci_method == "refused":
                refused = pre.note, pre.n_sessions, pre.n_clients
            if refused is not None:
                est, note_m, n_s, n_c = (None, None, None, None), refused[0], refused[1], refused[2]
                ci_m = "none: refused"
            elif ordered:
                if pre is not None:
                    w = pre
                elif frame is None:
                    raise ValueError(f"covariate {ordered[0]} needs raw_rows")
                else:
                    order = frame["o"].to_numpy(dtype=float)
                    w = ordered_within(frame["x"].to_numpy(dtype=float), frame["y"].to_numpy(dtype=float), codes,
                                       order, trend=ordered[0], min_clients=min_n,
                                       projection=_projection(projections, codes, order, ordered[0]))
                est, note_m, n_s, n_c = (w.estimate, w.ci_low, w.ci_high, w.p), w.note, w.n_sessions, w.n_clients
                ci_m = "cluster-robust (CR1, clients), t with G - 1 df"
                if w.estimate is not None and n_c < 20:
                    note_m = f"only {n_c} clients: cluster-level intervals are approximate"
            elif ci == "model":
                est, note_m, n_s, n_c = _model_fit(frame, covariates, min_n)
                ci_m = "model-based (statsmodels MixedLM, REML, Wald z)"
            else:
                w = within_estimate(mom, covariates=covariates, ci=ci, min_clients=min_n, bootstrap=bootstrap,
                                    rng=rng)
                est, note_m, n_s, n_c = (w.estimate, w.ci_low, w.ci_high, w.p), w.note, w.n_sessions, w.n_clients
                ci_m = ("cluster-robust (CR1, clients), t with G - 1 df" if ci == "cluster"
                        else f"client bootstrap ({bootstrap} resamples, percentile)")
                if w.estimate is not None and n_c < 20:
                    note_m = f"only {n_c} clients: cluster-level intervals are approximate"
            rows.append(_row(key, level, n=pe.n, n_clients=n_c, n_sessions=n_s, sp=sp, pe=pe,
                             method=_within_method(ordered), est=est, ci_method=ci_m, covariates=label,
                             note=note_m or sp.note or pe.note))
    out = pd.DataFrame(rows, columns=[c for c in RESULT_COLUMNS if c not in ("markers_version", "lexicons_version")])
    if not out.empty:
        for col in ("spearman", "pearson", "estimate"):
            p = out[f"{col}_p"].astype(object).where(out[f"{col}_p"].notna(), None)
            out[f"{col}_q"] = benjamini_hochberg(list(p))
    return out


def _within_method(ordered: Sequence[str]) -> str:
    trend = {"session_order": "one fixed effect per session position (a shared trend of any shape)",
             "spline": "a natural spline of session position"}
    head = (f"client-centred, {trend[ordered[0]]} removed" if ordered
            else "mixed model: random client intercept, within/between split")
    return (f"{head}; standardised within-client slope (the within-client Spearman and Pearson beside it: "
            f"{NOT_TREND_ADJUSTED})")


def _projection(cache: dict, codes: np.ndarray, order: np.ndarray, trend: str) -> TrendProjection:
    """The trend projection of these rows (client codes, positions), built once per distinct set of rows."""
    held = cache.get(trend)  # keys arrive grouped by measure: the last set of rows is the one to reuse
    if held is None or not (np.array_equal(held[0], codes) and np.array_equal(held[1], order, equal_nan=True)):
        cache[trend] = held = (codes, order, trend_projection(codes, order, trend=trend))
    return held[2]


def _order_refusal(frame: pd.DataFrame | None, codes: np.ndarray | None, covariates: Sequence[str]
                   ) -> tuple[str, int, int] | None:
    """``(reason, sessions, clients)`` when the trend control needs an order some contributing session lacks.

    ``codes``: the client code of each row of ``frame`` (contributing: clients with two or more rows).
    """
    if frame is None or codes is None or not NEEDS_ORDER & set(covariates) or "o" not in frame:
        return None
    used = np.bincount(codes)[codes] >= 2
    order = frame["o"].to_numpy(dtype=float)[used]
    if np.isfinite(order).all():
        return None
    return order_unknown_note(order, codes[used]), int(used.sum()), len(np.unique(codes[used]))


def _rm(mom: np.ndarray, method: str, min_n: int):
    from pipeline.research.within import centred

    k = len(mom)
    n_obs = int(mom[:, 0, 0].sum()) if k else 0
    if n_obs == 0:
        return from_r(method, None, n=0, df=0, n_eff=0, min_n=min_n)
    c = centred(mom).sum(axis=0)
    r = None
    if n_obs - k >= 2 and c[0, 0] > 0 and c[1, 1] > 0:
        r = float(np.clip(c[0, 1] / np.sqrt(c[0, 0] * c[1, 1]), -1, 1))
    return from_r(method, r, n=n_obs, df=n_obs - k - 1, n_eff=n_obs - k + 1, min_n=min_n)


def _model_fit(frame: pd.DataFrame | None, covariates: Sequence[str], min_n: int):
    if frame is None or frame.empty:
        return (None, None, None, None), "no rows", 0, 0
    counts = frame.groupby("client_id")["x"].transform("size")
    used = frame[counts >= 2]
    n_c = int(used["client_id"].nunique())
    if n_c < max(min_n, 3):
        return (None, None, None, None), f"too few clients with 2+ sessions ({n_c})", len(used), n_c
    try:
        fit = mixedlm_within(used["x"], used["y"], used["client_id"], therapists=used["therapist_id"].fillna(""),
                             session_number=used["s"], days_since_first=used["d"].fillna(0),
                             covariates=[c for c in covariates if c in COVARIATES])
    except (np.linalg.LinAlgError, ValueError) as e:
        return (None, None, None, None), f"mixed model failed: {e}", len(used), n_c
    return (fit["estimate"], fit["ci_low"], fit["ci_high"], fit["p"]), fit["note"], len(used), n_c


def _row(key: tuple, level: str, *, n: int, n_clients: int, n_sessions: int, sp, pe, method: str, est: tuple,
         ci_method: str, covariates: str, note: str) -> list:
    name, role, inst, scale, tp = key
    return [name, None if role == "session" else role, inst, scale, tp or None, level, n, n_clients,
            sp.estimate, sp.ci_low, sp.ci_high, sp.p, None, pe.estimate, pe.ci_low, pe.ci_high, pe.p, None,
            note or None, n_sessions, method, *est, None, ci_method, covariates]


def correlation_table(pairs: pd.DataFrame, *, levels: Sequence[str] = LEVELS, min_n: int = 5,
                      covariates: Sequence[str] | None = None, ci: str = DEFAULT_CI, bootstrap: int = 999,
                      seed: int = 0) -> pd.DataFrame:
    """:func:`estimate_table` over a frame of pairs (long: one row per indicator x measure x session).

    Columns: name, role_label, instrument, scale, timepoint, client_id, x, y and optionally session_number /
    days_since_first.

    ``covariates`` None: :data:`DEFAULT_COVARIATES` (session position as fixed effects): without a
    ``session_number`` column the sessions' order is unknown and the within-client estimate is refused, with
    the reason in ``note``; pass ``covariates=()`` for no trend control.
    """
    bad = set(levels) - set(LEVELS)
    if bad:
        raise ComparisonError(f"levels {sorted(bad)} unknown; use {list(LEVELS)}")
    frame = pairs.assign(timepoint=pairs["timepoint"].fillna(""),
                         s=pairs["session_number"] if "session_number" in pairs else 0.0,
                         d=pairs["days_since_first"] if "days_since_first" in pairs else 0.0)
    if covariates is None:
        covariates = DEFAULT_COVARIATES
    labels, client = np.unique(frame["client_id"].astype(str).to_numpy(), return_inverse=True)
    pieces = []
    groups = frame.groupby(KEYS, sort=True).indices
    order = frame["s"].to_numpy(dtype=float) if "session_number" in pairs else np.full(len(frame), np.nan)

    def raw(key: tuple) -> pd.DataFrame:
        g = groups[tuple(key)]
        g = g[np.isfinite(frame["x"].to_numpy(dtype=float)[g]) & np.isfinite(frame["y"].to_numpy(dtype=float)[g])]
        return pd.DataFrame({"x": frame["x"].to_numpy(dtype=float)[g], "y": frame["y"].to_numpy(dtype=float)[g],
                             "client_id": labels[client[g]], "therapist_id": "", "s": frame["s"].to_numpy(float)[g],
                             "d": frame["d"].to_numpy(dtype=float)[g], "o": order[g]})

    for key, g in groups.items():
        x = frame["x"].to_numpy(dtype=float)[g][:, None]
        y = frame["y"].to_numpy(dtype=float)[g]
        x[~np.isfinite(x)] = np.nan
        codes, sums = client_sums(client[g], x, y, frame["s"].to_numpy(dtype=float)[g],
                                  frame["d"].to_numpy(dtype=float)[g], average_ranks(x, y))
        present = sums["n"][:, 0] > 0
        pieces.append((key, labels[codes[present]], {k: v[present, 0] for k, v in sums.items()}))
    agg = assemble(pieces)
    return estimate_table(agg, levels=levels, min_n=min_n, covariates=covariates, ci=ci, bootstrap=bootstrap,
                          seed=seed, raw_rows=raw)
