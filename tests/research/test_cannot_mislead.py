"""Issue #13: numbers the comparison must not get wrong, the mixed model, the wide tables and the dataset export.

Each test of a wrong number fails on the code before the fix (named in its docstring).
"""

from __future__ import annotations

import datetime as dt
import math

import duckdb
import numpy as np
import pandas as pd
import pytest

from pipeline.cli.main import main
from pipeline.errors import ComparisonError
from pipeline.research.compare import CompareOptions, correlation_table, run_comparison
from pipeline.research.self_report.importer import import_file
from pipeline.research.self_report.instruments import BUILTIN
from pipeline.research.within import client_moments, mixedlm_within, rmcorr, within_estimate
from pipeline.storage import db
from pipeline.storage.wide import sync_indicators_wide
from tests.research.test_compare import _db

TODAY = dt.date(2026, 6, 1)


def _sessions_db(path, sessions, *, markers="1.2.0"):
    """Sessions (research consent) with two indicators each: ``(session_id, client_id, recorded_on)``."""
    con = db.connect(path)
    for n, (sid, cid, day) in enumerate(sessions):
        con.execute("INSERT INTO sessions (session_id, client_id, therapist_id, recorded_on, audio_sha256, duration_s,"
                    " pipeline_version, run_id, processed_at, markers_version) VALUES (?, ?, 't1', ?, ?, 600, '0.1.0',"
                    " 'r1', now(), ?)", [sid, cid, day, sid * 8, markers])
        con.execute("INSERT INTO consents VALUES (?, ?, 'research', DATE '2026-01-01', 'client', 'test', 'r1')",
                    [sid, cid])
        for name, role, value in (("we_rate", "client", 1.0 + n % 3), ("talk_time_share", "client", 0.4 + 0.01 * n)):
            con.execute("INSERT INTO indicators VALUES (?, ?, ?, ?, 'x', 'r1')", [sid, name, role, value])
    return con


def _write(tmp_path, name, text):
    p = tmp_path / name
    p.write_text(text)
    return p


# ----------------------------------------------------------------------------------------------------
# wrong numbers


def test_ors_gain_of_exactly_five_points_is_reliable_change(tmp_path):
    """13.9 -> 18.9 is a 5-point gain. Before: stored as 4.999999999999998 and labelled no_reliable_change."""
    con = _sessions_db(tmp_path / "a.duckdb", [("s1", "c1", dt.date(2026, 1, 5)), ("s2", "c1", dt.date(2026, 1, 12))])
    csv = _write(tmp_path, "ors.csv", "session_id,individually,interpersonally,socially,overall\n"
                                      "s1,3.4,3.5,3.5,3.5\ns2,4.7,4.7,4.7,4.8\n")
    assert not import_file(con, csv, instrument="ors", instruments=BUILTIN, today=TODAY).issues
    assert [v for (v,) in con.execute("SELECT value FROM self_report_scores ORDER BY value").fetchall()] == [13.9, 18.9]
    result = run_comparison(con, options=CompareOptions(min_n=4))
    ors = result.trajectories.query("name == 'ors.total'").sort_values("occasion")
    assert list(ors["change_from_baseline"]) == [0.0, 5.0]
    assert list(ors["reliable_change"]) == ["no_reliable_change", "improved"]
    stored = con.execute("SELECT change_from_baseline, reliable_change FROM client_trajectories WHERE occasion = 2"
                         ).fetchone()
    assert stored == (5.0, "improved")
    con.close()


def test_reimport_without_date_column_is_a_duplicate_and_compare_never_averages(tmp_path):
    """A re-import without the date column is a duplicate.

    Before: the second SRS of session s1 was stored, compare averaged 28.4 and 38.0 to 33.2, and
    session_indicators_self_report doubled the session's rows.
    """
    con = _sessions_db(tmp_path / "a.duckdb", [("s1", "c1", dt.date(2026, 1, 5))])
    first = _write(tmp_path, "a.csv", "session_id,date,relationship,goals,approach,overall\n"
                                      "s1,2026-01-05,7.1,7.1,7.1,7.1\n")
    again = _write(tmp_path, "b.csv", "session_id,relationship,goals,approach,overall\ns1,9.5,9.5,9.5,9.5\n")
    assert not import_file(con, first, instrument="srs", instruments=BUILTIN, today=TODAY).issues
    report = import_file(con, again, instrument="srs", instruments=BUILTIN, today=TODAY)
    assert {i.code for i in report.issues} == {"already_imported"}
    assert con.execute("SELECT count(*) FROM self_report_scores").fetchone()[0] == 1
    assert con.execute("SELECT count(*) FROM session_indicators_self_report").fetchone()[0] == 2  # 2 indicators

    # a database that already holds both (written before the check): compare refuses, never averages
    imp = con.execute("SELECT import_id FROM self_report_administrations").fetchone()[0]
    con.execute("INSERT INTO self_report_administrations (administration_id, import_id, instrument, client_id,"
                " session_id, n_items, n_answered, status) VALUES ('old-2', ?, 'srs', 'c1', 's1', 4, 4, 'scored')",
                [imp + "z"])
    con.execute("INSERT INTO self_report_instruments SELECT ? || 'z', instrument, name, source, kind, scoring,"
                " concern_below, reliable_change, definition FROM self_report_instruments WHERE import_id = ?",
                [imp, imp])
    con.execute("INSERT INTO self_report_scores VALUES ('old-2', ?, 'srs', 'total', 38.0, 4, 4, false, NULL)",
                [imp + "z"])
    assert con.execute("SELECT n_scores, scores_by_import FROM self_report_duplicates").fetchone() == (2, [28.4, 38.0])
    with pytest.raises(ComparisonError, match=r"more than one score.*28\.4.*38"):
        run_comparison(con, options=CompareOptions(min_n=1))
    con.close()


def test_duplicates_latest_uses_the_latest_import_not_the_mean(tmp_path):
    path = _db(tmp_path)
    con = db.connect(path)
    imp = con.execute("SELECT max(import_id) FROM self_report_imports WHERE instruments = 'srs'").fetchone()[0]
    later = imp + "z"
    con.execute("INSERT INTO self_report_instruments SELECT ?, instrument, name, source, kind, scoring, concern_below,"
                " reliable_change, definition FROM self_report_instruments WHERE import_id = ?", [later, imp])
    con.execute("INSERT INTO self_report_administrations (administration_id, import_id, instrument, client_id,"
                " session_id, n_items, n_answered, status) VALUES ('late', ?, 'srs', 'c0', 'c0s0', 4, 4, 'scored')",
                [later])
    con.execute("INSERT INTO self_report_scores VALUES ('late', ?, 'srs', 'total', 10.0, 4, 4, false, NULL)", [later])
    with pytest.raises(ComparisonError, match="--duplicates latest"):
        run_comparison(con, options=CompareOptions(instruments=("srs",), min_n=4))
    result = run_comparison(con, options=CompareOptions(instruments=("srs",), min_n=4, duplicates="latest"))
    srs = result.trajectories.query("session_id == 'c0s0'")
    assert list(srs["value"]) == [10.0]
    con.close()


def test_self_report_dated_a_year_from_its_session_is_rejected_with_the_distance(tmp_path):
    """Before: a session_id line dated 2025-01-05 was linked to the 2026-01-05 session without comment."""
    con = _sessions_db(tmp_path / "a.duckdb", [("s1", "c1", dt.date(2026, 1, 5)), ("s2", "c1", dt.date(2026, 1, 12))])
    csv = _write(tmp_path, "srs.csv", "session_id,date,relationship,goals,approach,overall\n"
                                      "s1,2025-01-05,9,9,9,9\ns2,2026-01-13,9,9,9,9\n")
    report = import_file(con, csv, instrument="srs", instruments=BUILTIN, today=TODAY)
    issue = next(i for i in report.issues if i.line == 2)
    assert issue.code == "date_far_from_session" and "365 days" in issue.message
    assert con.execute("SELECT session_id, link_rule, link_distance_days FROM self_report_administrations"
                       ).fetchall() == [("s2", "session_id", 1)]
    con.close()


def test_linking_window_links_the_nearest_session_and_stores_the_distance(tmp_path):
    sessions = [("s1", "c1", dt.date(2026, 1, 5)), ("s2", "c1", dt.date(2026, 1, 12)),
                ("s3", "c2", dt.date(2026, 1, 6))]
    con = _sessions_db(tmp_path / "a.duckdb", sessions)
    csv = _write(tmp_path, "srs.csv", "client_id,date,relationship,goals,approach,overall\n"
                                      "c1,2026-01-07,9,9,9,9\nc2,2026-01-11,8,8,8,8\n")
    import_file(con, csv, instrument="srs", instruments=BUILTIN, today=TODAY)
    got = con.execute("SELECT client_id, session_id, link_rule, link_distance_days FROM self_report_administrations"
                      " ORDER BY client_id").fetchall()
    assert got == [("c1", "s1", "client_date", 2), ("c2", None, None, None)]  # c2: 5 days > 3: client-level
    con.close()
    con = _sessions_db(tmp_path / "b.duckdb", sessions)
    import_file(con, csv, instrument="srs", instruments=BUILTIN, today=TODAY, link_window_days=7)
    got = con.execute("SELECT session_id, link_distance_days FROM self_report_administrations ORDER BY client_id")
    assert got.fetchall() == [("s1", 2), ("s3", 5)]
    assert con.execute("SELECT link_window_days FROM self_report_imports").fetchone()[0] == 7
    con.close()


@pytest.mark.parametrize("cell", ["1_0", "1e1", "\u0665", "\u0661\u0660", "5..0", "1.2.3", "0x5", "inf", "nan",
                                  "\"5,0\"", "--5", "5 0"])
def test_only_plain_ascii_numerals_are_numbers(tmp_path, cell):
    """Before: float() read 1_0 and 1e1 as 10 and Arabic-Indic digits as numbers."""
    con = _sessions_db(tmp_path / "a.duckdb", [("s1", "c1", dt.date(2026, 1, 5))])
    csv = _write(tmp_path, "srs.csv", f"session_id,relationship,goals,approach,overall\ns1,{cell},9,9,9\n")
    report = import_file(con, csv, instrument="srs", instruments=BUILTIN, today=TODAY)
    assert [(i.field, i.code) for i in report.issues] == [("relationship", "not_a_number")]
    con.close()


@pytest.mark.parametrize("cell, value", [("5", 5.0), ("+5", 5.0), ("7.5", 7.5), ("0", 0.0), (".5", 0.5)])
def test_plain_numerals_still_parse(tmp_path, cell, value):
    con = _sessions_db(tmp_path / "a.duckdb", [("s1", "c1", dt.date(2026, 1, 5))])
    csv = _write(tmp_path, "srs.csv", f"session_id,relationship,goals,approach,overall\ns1,{cell},9,9,9\n")
    assert not import_file(con, csv, instrument="srs", instruments=BUILTIN, today=TODAY).issues
    assert con.execute("SELECT raw_value FROM self_report_items WHERE item = 'relationship'").fetchone()[0] == value
    con.close()


def test_dates_with_non_ascii_digits_are_rejected(tmp_path):
    con = _sessions_db(tmp_path / "a.duckdb", [("s1", "c1", dt.date(2026, 1, 5))])
    csv = _write(tmp_path, "srs.csv", "client_id,date,relationship,goals,approach,overall\n"
                                      "c1,\u0662\u0660\u0662\u0666-01-05,9,9,9,9\n")
    report = import_file(con, csv, instrument="srs", instruments=BUILTIN, today=TODAY)
    assert {i.code for i in report.issues} == {"bad_date"}
    con.close()


def test_within_rows_count_only_clients_that_contribute():
    """Before: n_clients of a within row counted clients with one session (they contribute nothing)."""
    rows = []
    for c in range(8):
        for s in range(3 if c < 5 else 1):
            rows.append({"client_id": f"c{c}", "x": float((c * 7 + s * 3) % 5), "y": float((c * 3 + s * 5) % 7),
                         "name": "we_rate", "role_label": "client", "instrument": "srs", "scale": "total",
                         "timepoint": "", "session_number": s + 1.0})
    table = correlation_table(pd.DataFrame(rows), min_n=4)
    within = table.query("level == 'within'").iloc[0]
    assert (within["n_clients"], within["n_sessions"], within["n"]) == (5, 15, 15)
    between = table.query("level == 'between'").iloc[0]
    assert (between["n_clients"], between["n_sessions"]) == (8, 18)


# ----------------------------------------------------------------------------------------------------
# mixed model, trends, metadata


def _panel(seed=0, k=40, m=6, trend=0.0, effect=0.0, between=0.0):
    rng = np.random.default_rng(seed)
    cl = np.repeat(np.arange(k), m)
    s = np.tile(np.arange(1.0, m + 1), k)
    means = rng.multivariate_normal([0, 0], [[1, between], [between, 1]], size=k)
    xw = rng.standard_normal(k * m)
    x = means[cl, 0] + xw + trend * s
    y = means[cl, 1] + effect * xw + rng.standard_normal(k * m) + trend * s
    return x, y, cl, s


@pytest.mark.parametrize("covariates", [(), ("session_number",), ("session_number", "days_since_first")])
def test_closed_form_within_slope_is_statsmodels_mixedlm(covariates):
    x, y, cl, s = _panel(seed=4, effect=0.3, between=-0.7)
    days = s * 7 + np.random.default_rng(1).integers(0, 3, len(s))
    _, mom = client_moments(x, y, cl, s, days)
    ours = within_estimate(mom, covariates=covariates, ci="model")
    fit = mixedlm_within(x, y, cl, session_number=s, days_since_first=days, covariates=covariates)
    assert ours.estimate == pytest.approx(fit["estimate"], abs=1e-8)
    assert ours.se == pytest.approx(fit["se"], rel=0.02)  # REML residual variance vs the within fit's
    # with therapists (clients nested in them) the within coefficient is the same
    nested = mixedlm_within(x, y, cl, therapists=cl % 4, session_number=s, days_since_first=days,
                            covariates=covariates)
    assert nested["estimate"] == pytest.approx(fit["estimate"], abs=1e-6) and nested["therapist_var"] is not None


def test_without_covariates_the_within_slope_is_the_rmcorr():
    x, y, cl, s = _panel(seed=2, effect=0.4)
    _, mom = client_moments(x, y, cl, s)
    r, *_ = rmcorr(mom)
    assert within_estimate(mom, covariates=()).estimate == pytest.approx(r, abs=1e-12)


def test_cluster_robust_interval_matches_an_independent_sandwich():
    x, y, cl, s = _panel(seed=5, effect=0.2)
    _, mom = client_moments(x, y, cl, s)
    got = within_estimate(mom, covariates=("session_number",), ci="cluster")
    # independent: demean within client, OLS, CR1 sandwich by hand
    frame = pd.DataFrame({"c": cl, "x": x, "y": y, "s": s})
    d = frame[["x", "y", "s"]] - frame.groupby("c")[["x", "y", "s"]].transform("mean")
    xm = d[["x", "s"]].to_numpy()
    beta = np.linalg.lstsq(xm, d["y"].to_numpy(), rcond=None)[0]
    e = d["y"].to_numpy() - xm @ beta
    bread = np.linalg.inv(xm.T @ xm)
    meat = sum(np.outer(xm[cl == g].T @ e[cl == g], xm[cl == g].T @ e[cl == g]) for g in np.unique(cl))
    n, g, p = len(y), 40, 2
    var = (bread @ meat @ bread)[0, 0] * g / (g - 1) * (n - 1) / (n - p - g)
    scale = math.sqrt((d["x"] ** 2).sum() / (d["y"] ** 2).sum())
    assert got.estimate == pytest.approx(beta[0] * scale, abs=1e-10)
    assert got.se == pytest.approx(math.sqrt(var) * scale, rel=1e-8)
    assert got.df == 39


def test_a_shared_trend_is_not_read_as_a_within_client_association():
    x, y, cl, s = _panel(seed=3, trend=0.5)
    _, mom = client_moments(x, y, cl, s)
    naive = within_estimate(mom, covariates=())
    adjusted = within_estimate(mom, covariates=("session_number",))
    detrended = within_estimate(mom, covariates=("client_trend",))
    assert naive.ci_low > 0.2  # the trend alone makes x and y "move together"
    assert adjusted.ci_low < 0 < adjusted.ci_high and detrended.ci_low < 0 < detrended.ci_high
    assert detrended.n_clients == 40


def test_bootstrap_interval_is_reproducible_and_covers_the_estimate():
    x, y, cl, s = _panel(seed=6, effect=0.3)
    _, mom = client_moments(x, y, cl, s)
    a = within_estimate(mom, ci="bootstrap", bootstrap=199, rng=np.random.default_rng(1))
    b = within_estimate(mom, ci="bootstrap", bootstrap=199, rng=np.random.default_rng(1))
    assert a == b and a.ci_low < a.estimate < a.ci_high and a.p < 0.05


def test_every_row_names_its_method_covariates_counts_and_versions(tmp_path):
    from pipeline.analysis.indicators import MARKERS_VERSION

    con = db.connect(_db(tmp_path))
    con.execute("UPDATE sessions SET markers_version = ?", [MARKERS_VERSION])
    result = run_comparison(con, options=CompareOptions(instruments=("srs",), min_n=4))
    stored = con.execute("SELECT level, n_sessions, n_clients, method, covariates, ci_method, markers_version,"
                         " lexicons_version, estimate, note FROM comparison_results WHERE indicator = 'talk_time_share'"
                         " AND speaker_role = 'client' ORDER BY level").fetchall()
    between, within = stored
    assert between[:3] == ("between", 12, 4) and "client means" in between[3]
    assert within[:3] == ("within", 12, 4) and "session position" in within[3] and within[4] == "session_order"
    assert "not adjusted for trend" in within[3]
    assert "cluster-robust" in within[5] and within[6] == MARKERS_VERSION and "pronouns 1.0.0" in within[7]
    assert within[8] is not None and "only 4 clients" in within[9]
    # we_rate rises by exactly 0.2 a session in every client: nothing is left once session position is adjusted for
    we = result.results.query("indicator == 'we_rate' and level == 'within'").iloc[0]
    assert pd.isna(we["estimate"]) and "no within-client variation" in we["note"]
    assert result.markers_version == MARKERS_VERSION
    con.close()


def test_mixed_markers_versions_are_refused_unless_allowed(tmp_path):
    con = db.connect(_db(tmp_path))
    con.execute("UPDATE sessions SET markers_version = CASE WHEN client_id = 'c0' THEN '1.1.0' ELSE '1.2.0' END")
    with pytest.raises(ComparisonError, match=r"1\.1\.0 \(3 sessions\), 1\.2\.0 \(9 sessions\).*allow-mixed"):
        run_comparison(con, options=CompareOptions(instruments=("srs",), min_n=4))
    result = run_comparison(con, options=CompareOptions(instruments=("srs",), min_n=4, allow_mixed_versions=True))
    assert set(result.results["markers_version"]) == {"1.1.0 + 1.2.0"}
    con.close()


def test_cli_compare_options_model_ci_and_days(tmp_path, capsys):
    path = _db(tmp_path)
    assert main(["compare", "--db", path, "--instrument", "srs", "--indicator", "we_rate:client", "--min-n", "4",
                 "--level", "within", "--ci", "model", "--covariate", "days_since_first"]) == 0
    out = capsys.readouterr().out
    assert "| we_rate:client | srs.total | within | 12 | 4 |" in out
    con = duckdb.connect(path, read_only=True)
    assert con.execute("SELECT covariates, ci_method FROM comparison_results").fetchone() == (
        "days_since_first", "model-based (statsmodels MixedLM, REML, Wald z)")
    con.close()


# ----------------------------------------------------------------------------------------------------
# the whole table, the researcher view, the dataset


def test_indicators_wide_has_every_indicator_one_row_per_session_and_follows_rewrites(tmp_path):
    con = db.connect(_db(tmp_path))
    sync_indicators_wide(con)
    n_pairs = con.execute("SELECT count(*) FROM (SELECT DISTINCT name, speaker_role FROM indicators)").fetchone()[0]
    cols = [c for (c,) in con.execute("SELECT column_name FROM information_schema.columns"
                                      " WHERE table_name = 'indicators_wide'").fetchall()]
    assert len(cols) == 2 + n_pairs and {"talk_time_share_client", "talk_time_share_therapist",
                                         "long_silence_count", "we_rate_client"} <= set(cols)
    assert con.execute("SELECT count(*), count(DISTINCT session_id) FROM indicators_wide").fetchone() == (12, 12)
    long = con.execute("SELECT value FROM indicators WHERE session_id = 'c2s1' AND name = 'talk_time_share'"
                       " AND speaker_role = 'client'").fetchone()[0]
    assert con.execute("SELECT talk_time_share_client FROM indicators_wide WHERE session_id = 'c2s1'"
                       ).fetchone()[0] == long
    # a re-written session (new run id, a new indicator) and an erased one
    con.execute("UPDATE sessions SET run_id = 'r2' WHERE session_id = 'c0s0'")
    con.execute("INSERT INTO indicators VALUES ('c0s0', 'new_marker', 'therapist', 4.5, 'count', 'r2')")
    con.execute("DELETE FROM sessions WHERE session_id = 'c3s2'")
    assert sync_indicators_wide(con) == 2
    assert con.execute("SELECT new_marker_therapist, run_id FROM indicators_wide WHERE session_id = 'c0s0'"
                       ).fetchone() == (4.5, "r2")
    assert con.execute("SELECT count(*) FROM indicators_wide").fetchone()[0] == 11
    assert sync_indicators_wide(con) == 0
    con.close()


def test_researcher_query_reaches_session_wide_pseudonymised(tmp_path, capsys, monkeypatch):
    path = _db(tmp_path)
    key = tmp_path / "study.key"
    assert main(["db", "keygen", str(key)]) == 0
    capsys.readouterr()
    assert main(["query", "--db", path, "--study-key-file", str(key), "--csv",
                 "SELECT session_id, client_id, recorded_on, session_number, we_rate_client, sr_srs_total,"
                 " sr_ors_total, sr_srs_link_days FROM session_wide ORDER BY client_id, session_number"]) == 0
    frame = pd.read_csv(pd.io.common.StringIO(capsys.readouterr().out))
    assert len(frame) == 12 and frame["session_id"].str.startswith("S-").all()
    assert frame["client_id"].str.startswith("C-").all() and "c0" not in set(frame["client_id"])
    assert set(frame["session_number"]) == {1, 2, 3} and frame["sr_srs_total"].notna().all()
    for rel in ("self_report_items", "self_report_instruments", "indicators_wide"):
        assert main(["query", "--db", path, "--study-key-file", str(key), "--csv", f"SELECT * FROM {rel}"]) == 0
        out = capsys.readouterr().out
        assert "c0s0" not in out and len(out.splitlines()) > 1


def test_dataset_export_reads_back_with_pandas_and_polars(tmp_path, capsys):
    polars = pytest.importorskip("polars")
    import pyarrow.parquet as pq

    path = _db(tmp_path)
    con = db.connect(path)
    con.execute("INSERT INTO indicator_definitions (name, speaker_roles, unit, definition, markers_version, accuracy,"
                " accuracy_figure, accuracy_source, evidence, evidence_note, evidence_source, run_id) VALUES"
                " ('we_rate', 'therapist,client', 'per 100 words', 'we per 100 words', 'unknown', 'synthetic_truth',"
                " 'test figure', 'test', 'none_yet', 'not tested', 'test', 'r1')")
    con.close()
    key = tmp_path / "study.key"
    assert main(["db", "keygen", str(key)]) == 0
    out = tmp_path / "ds"
    assert main(["export", "--db", path, "--dataset", str(out), "--study-key-file", str(key)]) == 0
    assert "12 sessions" in capsys.readouterr().out
    frame = pd.read_parquet(out / "sessions.parquet")
    pl_frame = polars.read_parquet(out / "sessions.parquet")
    assert len(frame) == pl_frame.height == 12 and list(frame.columns) == pl_frame.columns
    schema = pq.read_schema(out / "sessions.parquet")
    assert str(schema.field("recorded_on").type) == "date32[day]"
    assert str(pl_frame.schema["recorded_on"]) == "Date"
    assert {"talk_time_share_client", "talk_time_share_therapist", "long_silence_count", "sr_srs_total",
            "sr_ors_total", "sr_srs_link_days", "session_number", "days_since_first"} <= set(frame.columns)
    assert frame["session_id"].str.startswith("S-").all()
    book = pd.read_csv(out / "codebook.csv")
    assert list(book.columns) == ["variable", "label", "unit", "definition", "accuracy", "accuracy_detail",
                                  "evidence", "evidence_detail", "markers_version"]
    assert list(book["variable"]) == list(frame.columns)
    graded = book.set_index("variable")
    assert graded.loc["we_rate_client", ["accuracy", "evidence"]].tolist() == ["synthetic_truth", "none_yet"]
    assert "test figure" in graded.loc["we_rate_client", "accuracy_detail"]
    assert graded.loc["talk_time_share_client", ["accuracy", "evidence"]].tolist() == ["not_measured", "none_yet"]
    assert not book.isin(["validated", "exploratory"]).any().any()  # the retired single grade is gone
    assert polars.read_csv(out / "codebook.csv").height == len(book)
    # the SRS of c1s2 (38) sits beside that session's indicators
    con = duckdb.connect(path, read_only=True)
    raw = con.execute("SELECT recorded_on FROM sessions WHERE session_id = 'c1s2'").fetchone()[0]
    con.close()
    assert frame.loc[frame["recorded_on"] == raw, "sr_srs_total"].tolist() == [38.0]
    # admin: ids as stored; existing files need --overwrite
    assert main(["export", "--db", path, "--dataset", str(out), "--role", "admin"]) == 2
    assert main(["export", "--db", path, "--dataset", str(out), "--role", "admin", "--overwrite"]) == 0
    assert "c0s0" in set(pd.read_parquet(out / "sessions.parquet")["session_id"])
