"""Statistics checked against independent computations; comparison, flags, trajectories, export."""

from __future__ import annotations

import datetime as dt
import math

import duckdb
import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from pipeline.cli.main import main
from pipeline.errors import ComparisonError, ExportError
from pipeline.research.compare import CompareOptions, correlation_table, discrepancy_flags, run_comparison
from pipeline.research.correlation import benjamini_hochberg, correlate, correlate_within
from pipeline.research.export import export
from pipeline.research.self_report.importer import import_file
from pipeline.research.self_report.instruments import BUILTIN
from pipeline.storage import db
from tests.conftest import shared_path

# A small hand-made fixture: 8 paired values with a tie in x.
X = [0.12, 0.30, 0.25, 0.40, 0.30, 0.55, 0.20, 0.61]
Y = [31.0, 35.0, 33.5, 36.0, 38.0, 39.0, 30.0, 37.5]


def test_pearson_matches_scipy_including_the_fisher_ci():
    got = correlate(X, Y, method="pearson")
    ref = sps.pearsonr(X, Y)
    ci = ref.confidence_interval(0.95)
    assert got.estimate == pytest.approx(ref.statistic, abs=1e-12)
    assert got.p == pytest.approx(ref.pvalue, rel=1e-9)
    assert (got.ci_low, got.ci_high) == (pytest.approx(ci.low, abs=1e-9), pytest.approx(ci.high, abs=1e-9))
    assert got.n == 8 and got.df == 6


def test_spearman_matches_scipy_and_the_hand_ci():
    got = correlate(X, Y, method="spearman")
    ref = sps.spearmanr(X, Y)
    assert got.estimate == pytest.approx(ref.statistic, abs=1e-12)
    assert got.p == pytest.approx(ref.pvalue, rel=1e-9)
    se = math.sqrt(1.06 / (8 - 3))  # Fieller, Hartley & Pearson (1957)
    z = math.atanh(ref.statistic)
    assert got.ci_low == pytest.approx(math.tanh(z - 1.959964 * se), abs=1e-6)
    assert got.ci_high == pytest.approx(math.tanh(z + 1.959964 * se), abs=1e-6)


def test_within_client_correlation_equals_the_slope_test_with_client_dummies():
    rng = np.random.default_rng(7)
    clients = np.repeat(["a", "b", "c", "d", "e"], [3, 4, 2, 5, 3])
    level = {"a": 0.0, "b": 5.0, "c": -3.0, "d": 2.0, "e": 8.0}
    x = rng.normal(size=len(clients)) + np.array([level[c] for c in clients])
    y = 0.5 * x + rng.normal(size=len(clients)) - 2 * np.array([level[c] for c in clients])
    got = correlate_within(x, y, clients, method="pearson")
    # independent: OLS y ~ x + client dummies; the t of x and df = N - k - 1 give r and p
    dummies = (clients[:, None] == np.unique(clients)[None, :]).astype(float)
    design = np.column_stack([x, dummies])
    beta, res, *_ = np.linalg.lstsq(design, y, rcond=None)
    n, k = len(y), 5
    df = n - k - 1
    sigma2 = float(res[0]) / df
    se_b = math.sqrt(sigma2 * np.linalg.inv(design.T @ design)[0, 0])
    t = beta[0] / se_b
    assert got.df == df and got.n == n
    assert got.estimate == pytest.approx(t / math.sqrt(t * t + df), abs=1e-10)
    assert got.p == pytest.approx(2 * sps.t.sf(abs(t), df), rel=1e-8)
    # CI: Fisher z with N - k + 1 in the place of n
    z = math.atanh(got.estimate)
    assert got.ci_low == pytest.approx(math.tanh(z - 1.959964 / math.sqrt(n - k + 1 - 3)), abs=1e-6)
    # between-client structure is removed: the pooled correlation is opposite in sign here
    assert correlate(x, y, method="pearson").estimate < 0 < got.estimate


def test_within_drops_clients_with_one_session_and_says_when_too_few():
    got = correlate_within([1, 2, 3, 4], [2, 1, 4, 3], ["a", "b", "c", "d"], method="pearson")
    assert got.estimate is None and "two or more" in got.note and got.n == 0
    flat = correlate([1, 2, 3, 4, 5], [2, 2, 2, 2, 2], method="pearson")
    assert flat.estimate is None and "no variation" in flat.note


def test_benjamini_hochberg_matches_scipy():
    p = [0.01, 0.04, 0.03, 0.2, 0.5, 0.001, 0.049]
    assert benjamini_hochberg(p) == pytest.approx(list(sps.false_discovery_control(p, method="bh")))
    assert benjamini_hochberg([0.02, None, 0.04]) == [pytest.approx(0.04), None, pytest.approx(0.04)]


def test_correlation_table_between_uses_client_means():
    # 6 clients x 2 sessions; between = correlation of the client means
    rows = []
    for c in range(6):
        for s in range(2):
            rows.append({"session_id": f"s{c}{s}", "client_id": f"c{c}", "x": X[c] + 0.1 * s, "y": Y[c] - s,
                         "name": "we_rate", "role_label": "client", "instrument": "srs", "scale": "total",
                         "timepoint": ""})
    pairs = pd.DataFrame(rows)
    table = correlation_table(pairs, min_n=4)
    between = table[table["level"] == "between"].iloc[0]
    means = pairs.groupby("client_id")[["x", "y"]].mean()
    assert between["n"] == 6 and between["pearson_r"] == pytest.approx(sps.pearsonr(means.x, means.y).statistic)
    assert between["spearman_rho"] == pytest.approx(sps.spearmanr(means.x, means.y).statistic)
    within = table[table["level"] == "within"].iloc[0]
    assert within["n"] == 12 and within["n_clients"] == 6
    assert within["pearson_r"] == pytest.approx(-1.0)  # within every client x goes up and y down
    assert list(table["pearson_q"]) == pytest.approx(benjamini_hochberg(list(table["pearson_p"])))


# ----------------------------------------------------------------------------------------------------
# end to end on a small database


def _db(tmp_path) -> str:
    """4 clients x 3 sessions with indicators, SRS after each session and ORS before."""
    path = tmp_path / "a.duckdb"
    con = db.connect(path)
    rng = np.random.default_rng(3)
    srs_rows, ors_rows = ["session_id,relationship,goals,approach,overall"], ["session_id,individually,"
                                                                             "interpersonally,socially,overall"]
    for c in range(4):
        for s in range(3):
            sid = f"c{c}s{s}"
            con.execute("INSERT INTO sessions (session_id, client_id, therapist_id, recorded_on, audio_sha256,"
                        " duration_s, pipeline_version, run_id, processed_at) VALUES (?, ?, 't1', ?, ?, 600, '0.1.0',"
                        " 'r1', now())", [sid, f"c{c}", dt.date(2026, 1, 1 + 7 * s + c), sid * 8])
            con.execute("INSERT INTO consents VALUES (?, ?, 'research', DATE '2026-01-01', 'client', 'test', 'r1')",
                        [sid, f"c{c}"])
            silences = 6.0 if sid == "c1s2" else float(rng.integers(0, 3))
            share = 0.15 if sid == "c2s1" else 0.5 + 0.05 * rng.standard_normal()
            for name, role, value in (("long_silence_count", None, silences), ("talk_time_share", "client", share),
                                      ("talk_time_share", "therapist", 1 - share),
                                      ("we_rate", "client", 1.0 + c * 0.3 + 0.2 * s), ("duration", None, 600.0)):
                con.execute("INSERT INTO indicators VALUES (?, ?, ?, ?, 'x', 'r1')", [sid, name, role, value])
            srs = [9.5, 9.5, 9.5, 9.5] if sid == "c1s2" else [7, 7, 7, 7] if sid == "c3s0" else \
                [round(8 + 0.4 * s + 0.1 * c, 1)] * 4
            srs_rows.append(sid + "," + ",".join(map(str, srs)))
            ors_rows.append(sid + "," + ",".join([str(4 + 2 * s)] * 4))
    (tmp_path / "srs.csv").write_text("\n".join(srs_rows) + "\n")
    (tmp_path / "ors.csv").write_text("\n".join(ors_rows) + "\n")
    for inst in ("srs", "ors"):
        report = import_file(con, tmp_path / f"{inst}.csv", instrument=inst, instruments=BUILTIN)
        assert not report.issues
    con.close()
    return str(path)


def test_run_comparison_stores_results_flags_and_trajectories(tmp_path):
    path = _db(tmp_path)
    con = db.connect(path)
    result = run_comparison(con, options=CompareOptions(instruments=("srs",), min_n=4, trajectories="all"))
    stored = con.execute("SELECT count(*), count(DISTINCT comparison_id) FROM comparison_results").fetchone()
    assert stored == (len(result.results), 1)
    assert "duration" not in set(result.results["indicator"])  # not a process indicator
    assert set(result.results["level"]) == {"between", "within"}
    row = result.results.query("indicator == 'we_rate' and level == 'within'").iloc[0]
    assert row["n"] == 12 and row["n_clients"] == 4
    # the within estimate equals an independent computation on the stored view
    v = con.execute("SELECT client_id, indicator_value, score FROM session_indicators_self_report "
                    "WHERE indicator = 'we_rate' AND instrument = 'srs'").df()
    ref = correlate_within(v.indicator_value, v.score, v.client_id, method="spearman")
    assert row["spearman_rho"] == pytest.approx(ref.estimate)
    assert result.flags.empty  # no indicator has supported evidence about the alliance: nothing is read as strain
    traj = result.trajectories
    assert set(traj["series"]) == {"indicator", "self_report"}
    con.close()


def test_trajectories_mark_reliable_change_against_the_clients_baseline(tmp_path):
    con = db.connect(_db(tmp_path))
    result = run_comparison(con, options=CompareOptions(instruments=("ors",), min_n=4))
    ors = result.trajectories.query("name == 'ors.total' and client_id == 'c0'").sort_values("occasion")
    assert list(ors["value"]) == [16.0, 24.0, 32.0]
    assert list(ors["baseline"]) == [16.0] * 3
    assert list(ors["reliable_change"]) == ["no_reliable_change", "improved", "improved"]  # ORS: 5 points
    ind = result.trajectories.query("series == 'indicator'")
    assert ind["reliable_change"].isna().all()  # no criterion for indicators
    con.close()


def test_flags_read_only_signals_with_supported_evidence(tmp_path, monkeypatch):
    """Were long silences shown to signal strain, the flags would follow; the mechanism is kept for that day."""
    from pipeline.research import compare

    supported = tuple(s for s in compare.STRAIN_CANDIDATES if s.name == "long_silence_count")
    monkeypatch.setattr(compare, "STRAIN_SIGNALS", supported)
    con = db.connect(_db(tmp_path))
    result = run_comparison(con, options=CompareOptions(instruments=("srs",), min_n=4))
    flags = {(f.session_id, f.flag) for f in result.flags.itertuples()}
    assert ("c1s2", "strain_but_rated_high") in flags      # 6 long silences, SRS 38
    assert ("c3s0", "rated_low_without_strain") in flags   # SRS 28 < 36, nothing unusual
    con.close()


def test_discrepancy_flags_ignore_ties_at_zero():
    ind = pd.DataFrame({"session_id": [f"s{i}" for i in range(6)], "client_id": "c", "name": "long_silence_count",
                        "role_label": "session", "speaker_role": None, "value": [0, 0, 0, 0, 0, 0.0]})
    scores = pd.DataFrame({"session_id": [f"s{i}" for i in range(6)], "client_id": "c", "instrument": "srs",
                           "scale": "total", "timepoint": None, "value": [38, 39, 37, 40, 36, 39.0],
                           "kind": "alliance", "concern_below": 36.0})
    from pipeline.research.compare import STRAIN_CANDIDATES

    assert discrepancy_flags(ind, scores, signals=STRAIN_CANDIDATES).empty


def test_compare_errors_name_the_problem(tmp_path):
    con = db.connect(_db(tmp_path))
    with pytest.raises(ComparisonError, match="'nope'"):
        run_comparison(con, options=CompareOptions(instruments=("nope",)))
    with pytest.raises(ComparisonError, match="we_rate:nobody"):
        run_comparison(con, options=CompareOptions(indicators=("we_rate:nobody",)))
    con.close()
    empty = db.connect(tmp_path / "empty.duckdb")
    with pytest.raises(ComparisonError, match="import-self-report"):
        run_comparison(empty)
    empty.close()


def test_cli_compare_prints_the_table_with_the_caveat(tmp_path, capsys):
    path = _db(tmp_path)
    assert main(["compare", "--db", path, "--instrument", "srs", "--indicator", "we_rate:client",
                 "--min-n", "4"]) == 0
    out = capsys.readouterr().out
    assert "| we_rate:client | srs.total | between | 12 | 4 |" in out  # sessions, then clients
    assert "| we_rate:client | srs.total | within | 12 | 4 |" in out
    assert "not causal" in out or "CI includes 0" in out or "correction" in out
    assert "Associations, not effects" in out


def test_export_parquet_partitioned_and_csv(tmp_path, capsys):
    path = _db(tmp_path)
    con = db.connect(path)
    run_comparison(con, options=CompareOptions(min_n=4))
    out = tmp_path / "export"
    f = export(con, "session_indicators_self_report", out_dir=out, fmt="parquet")
    assert f.partition_by == ("client_id",) and (out / "session_indicators_self_report" / "client_id=c0").is_dir()
    back = duckdb.sql(f"SELECT count(*) FROM read_parquet('{out}/session_indicators_self_report/**/*.parquet',"
                      " hive_partitioning = true)").fetchone()[0]
    assert back == f.rows > 0
    c = export(con, "comparison_results", out_dir=out, fmt="csv")
    assert len(pd.read_csv(c.path)) == c.rows and (out / "comparison_results.schema.json").is_file()
    with pytest.raises(ExportError, match="exists"):
        export(con, "comparison_results", out_dir=out, fmt="csv")
    with pytest.raises(ExportError, match="'no_such_view'"):
        export(con, "no_such_view", out_dir=out, fmt="csv")
    with pytest.raises(ExportError, match="'zzz'"):
        export(con, "comparison_results", out_dir=out, fmt="parquet", partition_by=("zzz",), overwrite=True)
    con.close()
    assert main(["export", "--role", "admin", "--db", path, "--out", str(tmp_path / "e2"), "--format", "csv"]) == 0
    assert "client_trajectories" in capsys.readouterr().out


def test_mibot_worked_example_runs_on_the_real_data(tmp_path, capsys):
    shared_path("data", "mibot", "data.csv")
    from bench import mibot_compare as mod

    assert mod.main(["--work-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "loaded 106 MIBot transcripts" in out and "no problems found" in out
    con = duckdb.connect(str(tmp_path / "mibot.duckdb"), read_only=True)
    # the text indicators agree with the dataset's own word counts
    bad = con.execute("SELECT count(*) FROM indicators WHERE name = 'word_count' AND value <= 0").fetchone()[0]
    assert bad == 0
    assert con.execute("SELECT count(DISTINCT client_id) FROM session_indicators_self_report").fetchone()[0] == 106
    # every compared indicator comes from the text-only path, for every conversation, with its markers
    for ind in mod.INDICATORS:
        name, role = ind.split(":")
        n = con.execute("SELECT count(value) FROM indicators WHERE name = ? AND speaker_role = ?", [name, role])
        assert n.fetchone()[0] == 106, ind
    assert con.execute("SELECT count(DISTINCT session_id) FROM markers").fetchone()[0] == 106
    con.close()


def test_estimates_from_the_wide_table_equal_those_from_the_long_indicators_table(tmp_path):
    """The comparison reads indicators_wide and sums in numpy: recompute it from the long table.

    Every within-client estimate again from the long ``indicators`` table (pairs joined in SQL; the default
    estimate by within.ordered_within, the repeated-measures correlation from within.client_moments).
    """
    from bench.bench_duckdb_scale import _sync_wide, fill_database
    from pipeline.research.within import client_moments, ordered_within, rmcorr

    con = db.connect(tmp_path / "scale.duckdb")
    try:
        fill_database(con, 400, seed=3)
        _sync_wide(con)
        result = run_comparison(con, options=CompareOptions(instruments=("srs",), include_contradicted=True))
        pairs = con.execute(
            "WITH s AS (SELECT session_id, client_id, row_number() OVER (PARTITION BY client_id ORDER BY recorded_on,"
            " session_id) AS sn FROM research_sessions)"
            " SELECT i.name, coalesce(i.speaker_role, 'session') AS role, s.client_id, i.value AS x, r.value AS y,"
            " s.sn FROM indicators i JOIN s USING (session_id) JOIN research_self_report_scores r USING (session_id)"
            " WHERE r.instrument = 'srs' AND i.value IS NOT NULL AND i.name NOT IN ('duration', 'role_confidence')"
        ).df()
    finally:
        con.close()
    within = result.results[result.results["level"] == "within"]
    assert len(within) == pairs.groupby(["name", "role"]).ngroups > 50
    checked = 0
    for (name, role), g in pairs.groupby(["name", "role"]):
        row = within[(within["indicator"] == name) & (within["speaker_role"].fillna("session") == role)].iloc[0]
        ref = ordered_within(g["x"], g["y"], g["client_id"], g["sn"], trend="session_order", min_clients=5)
        assert row["estimate"] == pytest.approx(ref.estimate, abs=1e-9)
        assert row["estimate_ci_low"] == pytest.approx(ref.ci_low, abs=1e-9)
        assert (row["n_sessions"], row["n_clients"]) == (ref.n_sessions, ref.n_clients)
        r = rmcorr(client_moments(g["x"], g["y"], g["client_id"])[1])[0]
        assert row["pearson_r"] == pytest.approx(r, abs=1e-9)
        checked += 1
    assert checked == len(within)


def test_a_second_indicator_for_one_wide_column_is_refused(tmp_path):
    from pipeline.errors import StorageError
    from pipeline.storage.wide import indicator_columns, sync_indicators_wide

    con = db.connect(tmp_path / "w.duckdb")
    try:
        con.execute("INSERT INTO sessions (session_id, client_id, therapist_id, audio_sha256, duration_s,"
                    " pipeline_version, run_id, processed_at) VALUES ('s1', 'c1', 't1', 'a', 1, 'v', 'r1', now())")
        con.execute("INSERT INTO indicators (session_id, name, speaker_role, value, unit, run_id)"
                    " VALUES ('s1', 'pace', 'client', 1.0, 'x', 'r1')")
        sync_indicators_wide(con)
        assert indicator_columns(con) == [("pace_client", "pace", "client")]
        con.execute("INSERT INTO sessions (session_id, client_id, therapist_id, audio_sha256, duration_s,"
                    " pipeline_version, run_id, processed_at) VALUES ('s2', 'c1', 't1', 'b', 1, 'v', 'r2', now())")
        con.execute("INSERT INTO indicators (session_id, name, speaker_role, value, unit, run_id)"
                    " VALUES ('s2', 'pace_client', NULL, 2.0, 'x', 'r2')")
        with pytest.raises(StorageError, match="would share the indicators_wide column 'pace_client'"):
            sync_indicators_wide(con)
    finally:
        con.close()
