"""The fast within-client path of ``alliance compare`` gives the estimates of the row-by-row path (1e-9).

:func:`pipeline.research.within_columns.ordered_within_columns` computes the default estimate (session position as fixed
effects, CR1 cluster-robust) for all indicators of a measure at once; :func:`ordered_within` (statsmodels OLS on
the projected rows, itself checked against ``y ~ x + C(client) + C(order)`` in test_trend.py) is the reference.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pipeline.research.compare import CompareOptions, estimate_table, estimates, pair_sums, stage
from pipeline.research.within import ordered_within
from pipeline.research.within_columns import ordered_within_columns
from pipeline.storage import db

FIELDS = ("estimate", "ci_low", "ci_high", "p", "se")


def _columns(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """40 clients x 1-9 sessions and 7 indicator columns.

    Column 0 complete, 1-2 the same 10 % missing, 3 its own 30 % missing, 4 flat within clients, 5 present for 3
    clients only, 6 tied values.
    """
    rng = np.random.default_rng(seed)
    sizes = rng.integers(2, 10, size=40)
    sizes[3] = 1  # a client with one session carries no within-client information
    clients = np.repeat([f"c{i:02d}" for i in range(40)], sizes)
    order = np.concatenate([np.arange(1, k + 1) for k in sizes]).astype(float)
    n = len(clients)
    y = 30 + 0.3 * order + rng.normal(size=n)
    x = rng.normal(size=(n, 7)) + 0.2 * y[:, None]
    shared = rng.random(n) < 0.1
    x[shared, 1:3] = np.nan
    x[rng.random(n) < 0.3, 3] = np.nan
    x[:, 4] = pd.Series(rng.normal(size=40)).to_numpy()[pd.factorize(clients)[0]]
    x[~np.isin(clients, ["c00", "c01", "c02"]), 5] = np.nan
    x[:, 6] = np.round(x[:, 6])
    return x, y, clients, order


def _assert_same(got, ref) -> None:
    for field in FIELDS:
        a, b = getattr(got, field), getattr(ref, field)
        assert (a is None) == (b is None), field
        if a is not None:
            assert a == pytest.approx(b, abs=1e-9), field
    assert (got.n_sessions, got.n_clients, got.df, got.note) == (ref.n_sessions, ref.n_clients, ref.df, ref.note)


@pytest.mark.parametrize("trend", ["session_order", "spline"])
def test_columns_at_once_equal_ordered_within_column_by_column(trend):
    x, y, clients, order = _columns()
    got = ordered_within_columns(x, y, clients, order, trend=trend, min_clients=5)
    for j, w in enumerate(got):
        m = np.isfinite(x[:, j])
        _assert_same(w, ordered_within(x[m, j], y[m], clients[m], order[m], trend=trend, min_clients=5))
    assert got[0].estimate is not None and got[3].estimate is not None
    assert got[4].estimate is None and "no within-client variation" in got[4].note
    assert got[5].estimate is None and "too few clients" in got[5].note


def test_an_unknown_position_refuses_the_columns_it_touches_and_only_those():
    x, y, clients, order = _columns(1)
    order[5] = np.nan  # a contributing session of column 0
    x[5, 3] = np.nan  # ... which column 3 does not use
    got = ordered_within_columns(x, y, clients, order, min_clients=5)
    assert got[0].ci_method == "refused" and "neither a date nor an order" in got[0].note
    assert got[3].ci_method == "cluster" and got[3].estimate is not None
    m = np.isfinite(x[:, 3])
    _assert_same(got[3], ordered_within(x[m, 3], y[m], clients[m], order[m], min_clients=5))
    only = ordered_within_columns(x, y, clients, order, min_clients=5, refusals_only=True)
    assert only[0].ci_method == "refused" and only[3] is None


def _row_by_row(staged, options) -> pd.DataFrame:
    """The estimate table the way it was computed before the columns-at-once path: a row frame per key."""
    column = {ind: j for j, ind in enumerate(staged.indicators)}
    measure = {m: i for i, m in enumerate(staged.measures)}

    def raw(key: tuple) -> pd.DataFrame:
        at = (staged.measure == measure[tuple(key[2:])]) & ~np.isnan(staged.x[:, column[tuple(key[:2])]])
        return pd.DataFrame({"x": staged.x[at, column[tuple(key[:2])]], "y": staged.y[at],
                             "client_id": staged.client[at], "s": staged.s[at], "d": staged.d[at],
                             "o": staged.order[at]})

    agg = pair_sums(staged, need_days="days_since_first" in options.covariates, ranks=options.spearman_within)
    return estimate_table(agg, levels=options.levels, min_n=options.min_n, covariates=options.covariates,
                          ci=options.ci, bootstrap=options.bootstrap, seed=options.seed, raw_rows=raw)


@pytest.mark.parametrize("covariates", [("session_order",), ("spline",), ("session_number",),
                                        ("days_since_first", "client_trend")])
@pytest.mark.parametrize("undated", [False, True])
def test_compare_estimates_equal_the_row_by_row_path(tmp_path, covariates, undated):
    from bench.bench_duckdb_scale import _sync_wide, fill_database

    con = db.connect(tmp_path / "scale.duckdb")
    try:
        fill_database(con, 600, seed=5)
        _sync_wide(con)
        if undated:  # a client whose order is unknown: every within estimate it contributes to is refused
            con.execute("UPDATE sessions SET recorded_on = NULL WHERE session_id ="
                        " (SELECT min(session_id) FROM research_self_report_scores)")
        options = CompareOptions(covariates=covariates, indicators=("we_rate", "talk_time_share", "question_rate"))
        staged = stage(con, options)
        got, ref = estimates(staged, options), _row_by_row(staged, options)
    finally:
        con.close()
    assert len(got) == len(ref) > 0 and list(got.columns) == list(ref.columns)
    numeric = [c for c in got.columns if pd.api.types.is_float_dtype(ref[c]) or pd.api.types.is_float_dtype(got[c])]
    for col in got.columns:
        if col in numeric:
            np.testing.assert_allclose(got[col].to_numpy(float), ref[col].to_numpy(float), rtol=0, atol=1e-9,
                                       err_msg=col)
        else:
            assert got[col].tolist() == ref[col].tolist(), col
    within = got[got["level"] == "within"]
    assert (within["ci_method"] == "none: refused").any() == undated
    assert within["estimate"].notna().any() != undated  # the undated client contributes to every key
