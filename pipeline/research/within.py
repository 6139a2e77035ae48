"""Within-client estimates for repeated sessions: the mixed model, trend controls, cluster-robust intervals.

The headline estimate of ``alliance compare`` is :func:`ordered_within` (end of this module): client means and
a trend shared by indicator and score of any shape over the session's position removed, cluster-robust
interval; chosen by ``python -m bench.calibration`` (``docs/research_calibration.md``). ``alliance compare``
computes it for every indicator of a measure at once with
:func:`pipeline.research.within_columns.ordered_within_columns` (same estimates within 1e-9). The linear trend
controls below remain as options.

The mixed model for an indicator ``x`` and a self-report score ``y`` measured on the same sessions is a
linear mixed model with a random intercept per client (and per therapist where there are several)::

    y_ij = b0 + bW (x_ij - xbar_i) + bB xbar_i + g' (c_ij - cbar_i) + h' cbar_i + u_i [+ v_t] + e_ij

with ``x`` split into its within-client part and the client mean (Mundlak 1978; the between-vs-within
decomposition that keeps a between-client association, Simpson's paradox, out of the within estimate) and the
trend covariates ``c`` (session number and/or days since the client's first session) split the same way.
Because every within-client column sums to zero inside each client, the GLS normal equations separate: the
mixed model's within coefficients equal the fixed-effects (client-demeaned OLS) estimates exactly, whatever
the variance components (a test checks this against ``statsmodels`` MixedLM). So ``bW`` and its cluster-robust
standard error follow from per-client sums of cross-products alone (:data:`SUM_NAMES`; at any size, one set of
sums per client), never from the raw rows.

Reported on one scale: ``x`` and ``y`` are divided by their pooled within-client standard deviations, so the
estimate is a *standardised within-client slope* (with no covariates it equals the repeated-measures
correlation).

Intervals (``ci``):

* ``cluster`` (default): CR1 cluster-robust (clients) sandwich, Student t with G - 1 degrees of freedom;
* ``bootstrap``: clients resampled with replacement (percentile interval; p from the bootstrap distribution);
* ``model``: the mixed model's own Wald interval (``statsmodels`` MixedLM, REML), which assumes independent
  residuals within a client.

Why cluster-robust by default: see ``docs/research_calibration.md`` (``python -m bench.calibration``): with
autocorrelated sessions or client-varying trends, intervals that assume independent residuals are too narrow.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats as sps

#: Order of the variables in a moment matrix: 1, x, y, session number, days since first session.
VARS = ("1", "x", "y", "session_number", "days_since_first")
COVARIATES = ("session_number", "days_since_first")
CI_METHODS = ("cluster", "bootstrap", "model")
Z_95 = 1.959963984540054


def client_moments(x: Sequence[float], y: Sequence[float], clients: Sequence[object],
                   session_number: Sequence[float] | None = None,
                   days_since_first: Sequence[float] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Per-client raw cross-product matrices ``sum z z'`` of ``z = (1, x, y, session, days)``.

    Returns
    -------
    labels : ndarray, shape (k,)
    moments : ndarray, shape (k, 5, 5)
    """
    x = np.asarray(x, dtype=float)
    n = len(x)
    s = np.zeros(n) if session_number is None else np.asarray(session_number, dtype=float)
    d = np.zeros(n) if days_since_first is None else np.asarray(days_since_first, dtype=float)
    z = np.column_stack([np.ones(n), x, np.asarray(y, dtype=float), s, d])
    labels, inverse = np.unique(np.asarray(clients).astype(str), return_inverse=True)
    m = np.zeros((len(labels), 5, 5))
    np.add.at(m, inverse, z[:, :, None] * z[:, None, :])
    return labels, m


def moments_from_sums(sums: dict[str, np.ndarray]) -> np.ndarray:
    """Moment matrices from the 15 per-client sums of :data:`SUM_NAMES`, shape (k, 5, 5)."""
    k = len(sums["n"])
    m = np.zeros((k, 5, 5))
    short = ("", "x", "y", "s", "d")
    for a in range(5):
        for b in range(a, 5):
            name = "n" if a == b == 0 else "s" + "".join(sorted(short[a] + short[b], key=short.index))
            m[:, a, b] = m[:, b, a] = np.asarray(sums[name], dtype=float)
    return m


#: The per-client sums :func:`moments_from_sums` expects: count, then sums of x, y, s, d and their products.
SUM_NAMES = ("n", "sx", "sy", "ss", "sd", "sxx", "sxy", "sxs", "sxd", "syy", "sys", "syd", "sss", "ssd", "sdd")


def centred(moments: np.ndarray) -> np.ndarray:
    """Within-client centred cross-products of (x, y, s, d), shape (k, 4, 4)."""
    n = moments[:, 0, 0]
    first = moments[:, 0, 1:]
    return moments[:, 1:, 1:] - first[:, :, None] * first[:, None, :] / n[:, None, None]


@dataclass(frozen=True)
class WithinEstimate:
    """A within-client estimate with its 95 % interval.

    Attributes
    ----------
    estimate : float or None
        Standardised within-client slope of y on x (adjusted for the covariates).
    ci_low, ci_high, p : float or None
    se : float or None
        Standard error on the standardised scale.
    n_sessions, n_clients : int
        Sessions and clients that contribute (clients with at least two sessions, three when detrended).
    df : int
        Degrees of freedom of the t reference (cluster: G - 1; model: residual df).
    ci_method, covariates : str
    note : str
    """

    estimate: float | None
    ci_low: float | None
    ci_high: float | None
    p: float | None
    se: float | None
    n_sessions: int
    n_clients: int
    df: int
    ci_method: str
    covariates: str
    note: str = ""


def _columns(covariates: Sequence[str]) -> list[int]:
    bad = sorted(set(covariates) - set(COVARIATES) - {"client_trend"})
    if bad:
        raise ValueError(f"covariates {bad} unknown; use {list(COVARIATES)} or client_trend")
    return [0] + [2 + COVARIATES.index(c) for c in covariates if c in COVARIATES]  # centred: x=0, y=1, s=2, d=3


def covariate_label(covariates: Sequence[str]) -> str:
    return "+".join(covariates) if covariates else "none"


def _prepare(moments: np.ndarray, covariates: Sequence[str]) -> tuple[np.ndarray, np.ndarray, int]:
    """Centred cross-products of the contributing clients (optionally detrended per client)."""
    n = moments[:, 0, 0]
    c = centred(moments)
    need = 2
    if "client_trend" in covariates:
        need = 3
        css = c[:, 2, 2]
        ok = css > 1e-12
        c = c[ok]
        n = n[ok]
        css = css[ok]
        c = c - c[:, :, 2:3] * c[:, 2:3, :] / css[:, None, None]
    keep = n >= need
    return c[keep], n[keep], need


def within_estimate(moments: np.ndarray, *, covariates: Sequence[str] = ("session_number",),
                    ci: str = "cluster", min_clients: int = 5, bootstrap: int = 999,
                    rng: np.random.Generator | None = None) -> WithinEstimate:
    """The mixed model's standardised within-client slope from per-client moments.

    Parameters
    ----------
    moments : ndarray, shape (k, 5, 5)
        From :func:`client_moments` or :func:`moments_from_sums`.
    covariates : sequence of str
        ``session_number``, ``days_since_first`` (entered within-client centred) and/or ``client_trend``
        (each client's own linear trend in session number removed from x and y).
    ci : {"cluster", "bootstrap", "model"}
        ``model``: the mixed model's model-based interval in closed form (residual variance of the within
        fit, t with N - k - p df); :func:`mixedlm_within` fits the same model with ``statsmodels`` (REML), whose
        standard error differs from it only through the REML variance estimate.
    min_clients : int
        Fewer contributing clients: no estimate.
    bootstrap : int
        Resamples for ``ci="bootstrap"``.
    """
    label = covariate_label(covariates)
    cols = _columns(covariates)
    c, n, need = _prepare(moments, covariates)
    g, n_obs = len(c), int(n.sum())
    absorbed = g * (2 if "client_trend" in covariates else 1)
    p = len(cols)
    if g < max(min_clients, 3) or n_obs - absorbed - p < 2:
        return WithinEstimate(None, None, None, None, None, n_obs, g, 0, ci, label,
                              f"too few clients with {need}+ sessions ({g})")
    w = np.array(cols)
    a = c[:, w][:, :, w].sum(axis=0)
    b = c[:, w, 1].sum(axis=0)
    sxx, syy = float(c[:, 0, 0].sum()), float(c[:, 1, 1].sum())
    if sxx <= 1e-12 or syy <= 1e-12 or abs(np.linalg.det(a)) < 1e-12 * max(1.0, float(np.abs(a).max())) ** p:
        return WithinEstimate(None, None, None, None, None, n_obs, g, 0, ci, label,
                              "no within-client variation left in x or y")
    beta = np.linalg.solve(a, b)
    scale = math.sqrt(sxx / syy)  # pooled within SDs share the same denominator
    est = float(beta[0] * scale)
    if ci == "cluster":
        scores = c[:, w, 1] - np.einsum("kij,j->ki", c[:, w][:, :, w], beta)
        meat = scores.T @ scores
        ainv = np.linalg.inv(a)
        factor = g / (g - 1) * (n_obs - 1) / max(n_obs - p - absorbed, 1)
        var = float((ainv @ meat @ ainv)[0, 0]) * factor
        se = math.sqrt(max(var, 0.0)) * scale
        df = g - 1
        if se == 0:
            return WithinEstimate(est, est, est, 0.0, 0.0, n_obs, g, df, ci, label, "zero standard error")
        t = est / se
        q = float(sps.t.ppf(0.975, df))
        return WithinEstimate(est, est - q * se, est + q * se, float(2 * sps.t.sf(abs(t), df)), se, n_obs, g, df,
                              ci, label)
    if ci == "bootstrap":
        rng = rng or np.random.default_rng(0)
        weights = rng.multinomial(g, np.full(g, 1.0 / g), size=bootstrap).astype(float)  # (B, g)
        aw = np.einsum("bk,kij->bij", weights, c[:, w][:, :, w])
        bw = weights @ c[:, w, 1]
        sx = weights @ c[:, 0, 0]
        sy = weights @ c[:, 1, 1]
        ok = (np.abs(np.linalg.det(aw)) > 1e-12) & (sx > 0) & (sy > 0)
        betas = np.linalg.solve(aw[ok], bw[ok][:, :, None])[:, 0, 0] * np.sqrt(sx[ok] / sy[ok])
        if len(betas) < 20:
            return WithinEstimate(est, None, None, None, None, n_obs, g, g - 1, ci, label, "bootstrap degenerate")
        lo, hi = np.quantile(betas, [0.025, 0.975])
        below, above = (np.sum(betas <= 0) + 1) / (len(betas) + 1), (np.sum(betas >= 0) + 1) / (len(betas) + 1)
        return WithinEstimate(est, float(lo), float(hi), float(min(1.0, 2 * min(below, above))),
                              float(np.std(betas, ddof=1)), n_obs, g, g - 1, ci, label)
    if ci == "model":
        df = n_obs - absorbed - p
        sigma2 = max(syy - float(b @ beta), 0.0) / df
        se = math.sqrt(sigma2 * float(np.linalg.inv(a)[0, 0])) * scale
        if se == 0:
            return WithinEstimate(est, est, est, 0.0, 0.0, n_obs, g, df, ci, label, "zero standard error")
        q = float(sps.t.ppf(0.975, df))
        return WithinEstimate(est, est - q * se, est + q * se, float(2 * sps.t.sf(abs(est / se), df)), se, n_obs, g,
                              df, ci, label)
    raise ValueError(f"ci {ci!r} unknown; use one of {list(CI_METHODS)}")


def rmcorr(moments: np.ndarray, *, min_n: int = 4) -> tuple[float | None, float | None, int, int, int]:
    """Repeated-measures correlation (Bakdash & Marusich 2017) from moments: ``(r, p, N, k, df)``."""
    c, n, _ = _prepare(moments, ())
    n_obs, k = int(n.sum()), len(c)
    df = n_obs - k - 1
    if n_obs - k + 1 < max(min_n, 4) or df < 1:
        return None, None, n_obs, k, max(df, 0)
    sxx, syy, sxy = c[:, 0, 0].sum(), c[:, 1, 1].sum(), c[:, 0, 1].sum()
    if sxx <= 0 or syy <= 0:
        return None, None, n_obs, k, df
    r = float(np.clip(sxy / math.sqrt(sxx * syy), -1, 1))
    if abs(r) >= 1:
        return r, 0.0, n_obs, k, df
    t = r * math.sqrt(df / (1 - r * r))
    return r, float(2 * sps.t.sf(abs(t), df)), n_obs, k, df


def mixedlm_within(x: Sequence[float], y: Sequence[float], clients: Sequence[object], *,
                   therapists: Sequence[object] | None = None, session_number: Sequence[float] | None = None,
                   days_since_first: Sequence[float] | None = None,
                   covariates: Sequence[str] = ("session_number",)) -> dict[str, float | str | None]:
    """Fit the mixed model with ``statsmodels`` (REML): the within and between coefficients, model-based.

    A random intercept per client; with two or more therapists, clients are nested in therapists (a
    therapist random intercept plus a client variance component). x, y and the covariates are standardised by
    their pooled within-client SDs so the within coefficient is on the scale of :func:`within_estimate`.

    Returns
    -------
    dict
        ``estimate``, ``se``, ``ci_low``, ``ci_high``, ``p`` (Wald z) of the within coefficient, ``between``
        (client-mean coefficient), ``client_var``, ``therapist_var``, ``resid_var``, ``converged``, ``note``.
    """
    import warnings

    import pandas as pd
    import statsmodels.formula.api as smf

    frame = pd.DataFrame({"x": np.asarray(x, float), "y": np.asarray(y, float),
                          "client": np.asarray(clients).astype(str)})
    if session_number is not None:
        frame["session_number"] = np.asarray(session_number, float)
    if days_since_first is not None:
        frame["days_since_first"] = np.asarray(days_since_first, float)
    counts = frame.groupby("client")["x"].transform("size")
    frame = frame[counts >= 2].copy()
    terms = []
    for v in ["x", "y", *[c for c in covariates if c in COVARIATES]]:
        mean = frame.groupby("client")[v].transform("mean")
        w = frame[v] - mean
        sd = math.sqrt(float((w**2).sum()) / max(len(frame) - frame["client"].nunique(), 1)) or 1.0
        if v == "y":
            frame["ys"] = frame["y"] / sd
        else:
            frame[v + "w"], frame[v + "m"] = w / sd, mean / sd
            terms.append(v + "w")
            if v == "x" or float(frame[v + "m"].var()) > 1e-10:  # a balanced design's mean session is constant
                terms.append(v + "m")
    formula = "ys ~ " + " + ".join(terms)
    nested = therapists is not None and len(set(map(str, therapists))) >= 2
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if nested:
            frame["therapist"] = np.asarray(therapists).astype(str)[(counts >= 2).to_numpy()]
            model = smf.mixedlm(formula, frame, groups="therapist", re_formula="1",
                                vc_formula={"client": "0 + C(client)"})
        else:
            model = smf.mixedlm(formula, frame, groups="client")
        fit = model.fit(reml=True)
    est, se = float(fit.params["xw"]), float(fit.bse["xw"])
    z = est / se if se > 0 else float("nan")
    out = {"estimate": est, "se": se, "ci_low": est - Z_95 * se, "ci_high": est + Z_95 * se,
           "p": float(2 * sps.norm.sf(abs(z))) if math.isfinite(z) else None, "between": float(fit.params["xm"]),
           "resid_var": float(fit.scale), "converged": bool(fit.converged), "note": ""}
    if nested:
        out["therapist_var"] = float(fit.cov_re.iloc[0, 0])
        out["client_var"] = float(fit.vcomp[0]) if len(fit.vcomp) else None
    else:
        out["therapist_var"] = None
        out["client_var"] = float(fit.cov_re.iloc[0, 0])
    if not fit.converged:
        out["note"] = "mixed model did not converge"
    return out


# ----------------------------------------------------------------------------------------------------
# trend of any shape: the session's position in the client's course as a categorical fixed effect

#: Shapes of the shared trend :func:`ordered_within` can remove: ``session_order`` (one fixed effect per session
#: position: any shape), ``spline`` (natural cubic spline of the position, at most 4 df), ``linear``.
TRENDS = ("session_order", "spline", "linear")
#: The trend controls that are covariates of ``alliance compare`` (``linear`` there is ``session_number``).
ORDERED_TRENDS = ("session_order", "spline")
SPLINE_DF = 4


def trend_basis(order: np.ndarray, trend: str) -> np.ndarray:
    """Columns that describe a trend shared by all clients over session position ``order``, shape (n, q).

    ``session_order``: patsy's treatment coding of the positions (``C(order)``: a dummy for every position but
    the first), so the removed trend may take any shape; ``spline``: patsy's natural cubic regression spline
    ``cr(order, df)`` (centred) with ``df = min(4, positions - 1)`` (the dummies when that leaves fewer than 3
    df); ``linear``: the position itself.
    """
    import patsy

    order = np.asarray(order, dtype=float)
    if trend not in TRENDS:
        raise ValueError(f"trend {trend!r} unknown; use one of {list(TRENDS)}")
    if trend == "linear":
        return order[:, None]
    positions, inverse = np.unique(order, return_inverse=True)
    df = min(SPLINE_DF, len(positions) - 1)
    if trend == "spline" and df >= 3:
        return np.asarray(patsy.dmatrix(f"cr(order, df={df}, constraints='center')", {"order": order}))[:, 1:]
    if len(positions) < 2:
        return np.zeros((len(order), 0))
    per_position = patsy.contrasts.Treatment().code_without_intercept(list(positions)).matrix  # (L, L - 1)
    return per_position[inverse]


def cluster_ols(y: np.ndarray, design: np.ndarray, groups: np.ndarray, *, absorbed: int = 0
                ) -> tuple[float, float, int, int]:
    """OLS of ``y`` on ``design`` (coefficient of column 0) with a CR1 cluster-robust standard error.

    The fit and covariance are ``statsmodels`` OLS ``cov_type="cluster"`` (Stata's CR1: G / (G - 1) x
    (N - 1) / (N - K)); ``absorbed`` parameters removed before the fit (client means, trend columns partialled
    out) are added to K, so the result equals the fit with those columns in the design. Returns
    ``(coefficient, se, rank, G)``; inference uses t with G - 1 df.
    """
    import statsmodels.api as sm

    codes = _codes(groups)
    g = int(codes.max()) + 1
    fit = sm.OLS(y, design).fit(cov_type="cluster", cov_kwds={"groups": codes, "use_correction": False},
                                use_t=True)
    n, rank = len(y), int(np.linalg.matrix_rank(design))
    factor = g / (g - 1) * (n - 1) / max(n - rank - absorbed, 1)
    se = math.sqrt(max(float(np.asarray(fit.cov_params())[0, 0]) * factor, 0.0))
    return float(np.asarray(fit.params)[0]), se, rank, g


def _codes(labels: Sequence[object]) -> np.ndarray:
    """Labels as codes 0..k-1 in order of first appearance, shape (n,) (hashing: no sort of n labels)."""
    import pandas as pd

    values = np.asarray(labels)
    if values.dtype.kind not in "iufb":
        values = values.astype(str)
    return np.asarray(pd.factorize(values)[0], dtype=np.intp)


def _client_demean(values: np.ndarray, codes: np.ndarray, g: int) -> np.ndarray:
    """Each column minus its client's mean, shape as ``values`` (n,) or (n, q)."""
    v = values.reshape(len(codes), -1)
    counts = np.bincount(codes, minlength=g).astype(float)
    means = np.stack([np.bincount(codes, weights=v[:, j], minlength=g) for j in range(v.shape[1])], axis=1)
    return (v - means[codes] / counts[codes, None]).reshape(values.shape)


@dataclass(frozen=True)
class TrendProjection:
    """Client means and a shared trend over session position, ready to remove from columns of the same rows.

    Built once for a set of rows (:func:`trend_projection`) and reused for every indicator measured on them
    (Frisch-Waugh-Lovell: the slope of y on x with client and trend columns equals the slope of the residuals,
    and so does its cluster-robust covariance).

    Attributes
    ----------
    keep : ndarray of bool, shape (n_input,)
        Rows of clients with two or more sessions (the others carry no within-client information).
    codes : ndarray of int, shape (n,)
        Client code of each kept row, 0..g-1.
    n_clients : int
    basis : ndarray, shape (n, q), or None
        Client-centred trend columns (``spline``, ``linear``); None for ``session_order``, whose q = L - 1
        client-centred dummies are never built: ``position`` and per-position sums stand in for them.
    position : ndarray of int, shape (n,), or None
        ``session_order``: index of each kept row's position among the L positions (0, the reference, is the
        first met: the projection does not depend on which).
    solve : ndarray, shape (q, q)
        Pseudo-inverse of the trend columns' cross-products (the normal equations: q x q, never n x n).
    rank : int
        Rank of the trend columns (the trend parameters).
    trend : str
    """

    keep: np.ndarray
    codes: np.ndarray
    n_clients: int
    basis: np.ndarray | None
    position: np.ndarray | None
    solve: np.ndarray
    rank: int
    trend: str

    def remove(self, values: np.ndarray) -> np.ndarray:
        """Residuals of kept rows' ``values`` (n, k) after client means and the trend, shape (n, k)."""
        v = _client_demean(np.asarray(values, dtype=float), self.codes, self.n_clients)
        if self.position is None:
            return v if self.basis is None else v - self.basis @ (self.solve @ (self.basis.T @ v))
        levels = self.solve.shape[0] + 1
        # dummies' cross-products with v: per-position sums (v is client-centred, so the dummies' client means
        # contribute nothing); the fitted trend D c, client-centred, is what the centred dummies fit
        sums = np.stack([np.bincount(self.position, weights=v[:, j], minlength=levels) for j in range(v.shape[1])],
                        axis=1)[1:]
        coef = np.vstack([np.zeros((1, v.shape[1])), self.solve @ sums])  # (L, k), reference position 0
        return v - _client_demean(coef[self.position], self.codes, self.n_clients)


def trend_projection(clients: Sequence[object], order: Sequence[float], *, trend: str = "session_order"
                     ) -> TrendProjection:
    """The :class:`TrendProjection` of rows with these clients and session positions.

    With an unknown position among the kept rows the trend has no columns: :func:`ordered_within` refuses first.
    """
    order = np.asarray(order, dtype=float)
    codes = _codes(clients)
    keep = np.bincount(codes)[codes] >= 2
    codes = _codes(codes[keep])
    g = int(codes.max()) + 1 if len(codes) else 0
    if not g or not np.isfinite(order[keep]).all():
        return TrendProjection(keep, codes, g, None, None, np.zeros((0, 0)), 0, trend)
    if trend == "session_order":
        position = _codes(order[keep])  # any position may be the reference: the projection is the same
        levels = int(position.max()) + 1
        if levels < 2:
            return TrendProjection(keep, codes, g, None, None, np.zeros((0, 0)), 0, trend)
        counts = np.zeros((g, levels))  # sessions per client and position, shape (g, L)
        np.add.at(counts, (codes, position), 1.0)
        # centred dummies' cross-products: D'D - D' (client means of D) = diag(per position) - N' diag(1/n) N
        gram = np.diag(counts.sum(axis=0)) - counts.T @ (counts / counts.sum(axis=1, keepdims=True))
        gram = gram[1:, 1:]
        return TrendProjection(keep, codes, g, None, position.reshape(-1), np.linalg.pinv(gram, hermitian=True),
                               int(np.linalg.matrix_rank(gram, hermitian=True)), trend)
    basis = _client_demean(trend_basis(order[keep], trend), codes, g)
    gram = basis.T @ basis  # shape (q, q)
    return TrendProjection(keep, codes, g, basis, None, np.linalg.pinv(gram, hermitian=True),
                           int(np.linalg.matrix_rank(gram, hermitian=True)), trend)


def ordered_within(x: Sequence[float], y: Sequence[float], clients: Sequence[object], order: Sequence[float], *,
                   trend: str = "session_order", min_clients: int = 5, count_client_means: bool = True,
                   projection: TrendProjection | None = None) -> WithinEstimate:
    """Within-client slope of y on x with a shared trend of any shape over session position removed.

    The model is ``y_ij = a_i + f(order_ij) + b x_ij + e_ij``: a fixed effect per client (the within-client
    centring of the mixed model, so client means never enter) and a shared trend ``f`` of the session's position
    in the client's course (:func:`trend_basis`: by default one fixed effect per position, so f may be linear,
    saturating, a step or U-shaped). Client means and trend columns are partialled out
    (:class:`TrendProjection`), then ``statsmodels`` OLS of the residuals gives the slope with a CR1
    cluster-robust (client) standard error counting every partialled parameter, t with G - 1 df: the same
    coefficient and p as ``y ~ x + C(client) + C(order)`` with statsmodels' cluster covariance (a test checks
    it). Autocorrelated sessions and client-specific trend deviations widen the interval instead of producing
    false positives (``bench/calibration.py``). The estimate is standardised: x and y are divided by their SDs
    left after client means and the shared trend are removed (with no trend it is the repeated-measures
    correlation's slope).

    Parameters
    ----------
    x, y : sequence of float, shape (n,)
        Indicator value and score per session.
    clients : sequence, shape (n,)
    order : sequence of float, shape (n,)
        The session's position in the client's course (1 = first session; NaN: unknown).
    trend : {"session_order", "spline", "linear"}
    min_clients : int
        Fewer clients with two or more sessions: no estimate.
    count_client_means : bool
        Count the absorbed client means in K of the CR1 factor (as a fit with client dummies does: the
        conservative choice, chosen by ``bench/calibration.py``); False: as Stata's ``xtreg, fe``.
    projection : TrendProjection, optional
        Of the same rows, clients, order and trend (to reuse it across indicators); built here if omitted.

    Returns
    -------
    WithinEstimate
        ``estimate`` None with the reason in ``note`` when a contributing session has no known position (no
        date and no order: no trend can be removed, so the estimate is refused), when too few clients have two
        or more sessions, or when nothing varies within clients once the trend is removed.
    """
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    order = np.asarray(order, dtype=float)
    label, ci = trend, "cluster"
    if projection is not None:
        keep, codes, g = projection.keep, projection.codes, projection.n_clients
    else:
        codes = _codes(clients)
        keep = np.bincount(codes)[codes] >= 2
        codes = _codes(codes[keep])
        g = int(codes.max()) + 1 if len(codes) else 0
    n_obs = int(keep.sum())
    if not np.isfinite(order[keep]).all():
        return WithinEstimate(None, None, None, None, None, n_obs, g, 0, ci, label,
                              order_unknown_note(order[keep], codes))
    if g < max(min_clients, 3):
        return WithinEstimate(None, None, None, None, None, n_obs, g, 0, ci, label,
                              f"too few clients with 2+ sessions ({g})")
    proj = projection if projection is not None else trend_projection(clients, order, trend=trend)
    resid = proj.remove(np.column_stack([x, y])[proj.keep])
    xt, yt = resid[:, 0], resid[:, 1]
    sxx, syy = float(xt @ xt), float(yt @ yt)
    if sxx <= 1e-12 * max(1.0, float(x @ x)) or syy <= 1e-12 * max(1.0, float(y @ y)):
        return WithinEstimate(None, None, None, None, None, n_obs, g, 0, ci, label,
                              "no within-client variation left in x or y once the trend is removed")
    beta, se, _, _ = cluster_ols(yt, xt[:, None], proj.codes,
                                 absorbed=proj.rank + (g if count_client_means else 0))
    scale = math.sqrt(sxx / syy)
    est, se = beta * scale, se * scale
    df = g - 1
    if se == 0:
        return WithinEstimate(est, est, est, 0.0, 0.0, n_obs, g, df, ci, label, "zero standard error")
    q = float(sps.t.ppf(0.975, df))
    return WithinEstimate(est, est - q * se, est + q * se, float(2 * sps.t.sf(abs(est / se), df)), se, n_obs, g, df,
                          ci, label)


def order_unknown_note(order: np.ndarray, codes: np.ndarray) -> str:
    """Why the within-client estimate is refused when some sessions have no known position."""
    unknown = ~np.isfinite(np.asarray(order, dtype=float))
    return (f"{len(np.unique(np.asarray(codes)[unknown]))} client(s) have a session with neither a date nor an "
            f"order, so the position of {int(unknown.sum())} session(s) in the course of therapy is unknown: a trend "
            "over the course of therapy cannot be separated from the association, and the within-client estimate "
            "is refused (record the session dates)")
