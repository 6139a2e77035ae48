"""The calibration benchmark runs (a few replications) and its rule picks the code's default on the stored run."""

from __future__ import annotations

import json
from pathlib import Path

from bench import calibration
from pipeline.research.compare import DEFAULT_CI, DEFAULT_COVARIATES

ROOT = Path(__file__).resolve().parents[2]


def test_a_short_run_covers_every_scenario_and_method():
    doc = calibration.run(reps=3, boot=49, check=1, log=False)
    assert [s["name"] for s in doc["scenarios"]] == [s.name for s in calibration.SCENARIOS]
    assert all(len(s["methods"]) == len(calibration.METHODS) for s in doc["scenarios"])
    assert doc["statsmodels_check"]["max_abs_difference_p_or_estimate"] < 0.05
    assert "| scenario |" in calibration.markdown(doc)


def test_the_stored_calibration_chooses_the_code_default():
    doc = json.loads((ROOT / "bench" / "calibration.json").read_text())
    sel = calibration.select_default(doc)
    assert sel["chosen"] == calibration.method_name(DEFAULT_CI, tuple(DEFAULT_COVARIATES))
    assert sel["worst_null_rate"][sel["chosen"]] <= 0.07
    assert doc["reps"] >= 300


def test_annomi_hedges_g_uses_welch_for_interval_and_p():
    from scipy import stats

    from bench.annomi_markers import hedges_g

    hi = [1.0, 2.0, 2.5, 3.0, 4.0, 3.5, 2.0, 5.0]
    lo = [0.5, 1.0, 1.5, 0.2]
    g, low, high, p = hedges_g(hi, lo)
    ref = stats.ttest_ind(hi, lo, equal_var=False)
    assert abs(p - ref.pvalue) < 1e-12
    ci = ref.confidence_interval(0.95)
    n1, n2 = len(hi), len(lo)
    sp = (((n1 - 1) * stats.tvar(hi) + (n2 - 1) * stats.tvar(lo)) / (n1 + n2 - 2)) ** 0.5
    j = 1 - 3 / (4 * (n1 + n2) - 9)
    assert abs(low - j * ci.low / sp) < 1e-9
    assert abs(high - j * ci.high / sp) < 1e-9 and low < g < high
