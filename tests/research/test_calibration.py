"""The calibration benchmark runs (a few replications) and its rule picks the code's default on the stored run."""

from __future__ import annotations

import json
from pathlib import Path

from bench import calibration
from pipeline.research.compare import DEFAULT_CI, DEFAULT_COVARIATES

ROOT = Path(__file__).resolve().parents[2]


def test_a_short_run_covers_every_candidate_and_the_grid_has_every_shape_and_design():
    grid = calibration.cells()
    assert {c.shape for c in grid} == set(calibration.SHAPES) == {"none", "linear", "saturating", "step", "u_shaped"}
    assert {c.design.clients for c in grid} == {10, 20, 40} and {c.phi for c in grid} >= {0.0, 0.8}
    assert any(c.ceiling for c in grid) and any(not c.null for c in grid) and any(c.shuffled for c in grid)
    small = (grid[0], next(c for c in grid if not c.null), next(c for c in grid if c.shuffled))
    doc = calibration.run(reps=2, check=1, log=False, grid=small)
    assert [c["name"] for c in doc["cells"]] == [c.name for c in small]
    assert all(set(c["rate"]) == set(calibration.CANDIDATES) for c in doc["cells"])
    assert doc["statsmodels_check"]["max_abs_difference_p"] < 1e-6
    assert "| candidate |" in calibration.markdown(doc)


def test_the_stored_calibration_and_the_code_default():
    """The rule fixed before the run chose no candidate (stated in the doc); the default is the deviation.

    The default is the only candidate whose false-positive rate is <= .07 under every trend shape.
    """
    doc = json.loads((ROOT / "bench" / "calibration.json").read_text())
    assert doc["reps"] >= 100 and len(doc["cells"]) == len(calibration.cells())
    sel = calibration.select_default(doc)
    assert sel["chosen"] is None
    default = DEFAULT_COVARIATES[0]
    assert DEFAULT_CI == "cluster" and default == "session_order"
    holds = [n for n in doc["candidates"] if max(sel["fpr_by_shape"][n].values()) <= 0.07]
    assert holds == [default]
    text = (ROOT / "docs" / "research_calibration.md").read_text()
    assert "Deviation, decided after seeing the results" in text and "none eligible" in text
    confirm = json.loads((ROOT / "bench" / "calibration_confirm.json").read_text())
    assert confirm["reps"] >= 1000 and {c["name"] for c in confirm["cells"]} == {
        "saturating 20x3-20 phi0.8", "none 20x3-20 phi0.8"}


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
