"""bench/validation_run.py: the pre-registered loading rules and statistics, on small hand-made inputs."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from bench import validation_run as vr


def test_detokenise_joins_split_apostrophes_and_removes_space_before_punctuation():
    assert vr.detokenise("i ' m fine , thanks ! that ' s it ?") == "i'm fine, thanks! that's it?"
    assert vr.detokenise("do n't") == "do n't"   # only the pre-registered rule: \w ' \w
    assert vr.detokenise("don ' t ; ok :") == "don't; ok:"


def test_chat_log_split_keeps_a_newline_inside_a_turn():
    assert vr.split_chat_log("- a b\n- c\nd\n- e") == ["a b", "c\nd", "e"]


def test_benjamini_hochberg_matches_scipy():
    p = [0.01, 0.04, 0.03, 0.2, 0.5, 0.001]
    assert vr.benjamini_hochberg(p) == pytest.approx(list(stats.false_discovery_control(p)))


def test_centred_within_ranks_equals_per_group_rankdata():
    rng = np.random.default_rng(0)
    x = rng.integers(0, 4, 300).astype(float)
    g = rng.integers(0, 40, 300)
    slow = np.empty(300)
    for k in np.unique(g):
        r = stats.rankdata(x[g == k])
        slow[g == k] = r - r.mean()
    assert vr.centred_within_ranks(x, g) == pytest.approx(slow)


def test_hedges_g_and_welch_interval():
    high, low = np.array([1.0, 2, 3, 4, 5]), np.array([0.0, 1, 2])
    g = vr.hedges_g_welch(high, low)
    sp = np.sqrt((4 * 2.5 + 2 * 1.0) / 6)
    j = 1 - 3 / (4 * 8 - 9)
    assert g["g"] == pytest.approx(j * 2.0 / sp)
    se = np.sqrt(2.5 / 5 + 1.0 / 3)
    t = stats.t.ppf(0.975, g["welch_df"])
    assert (g["ci_low"], g["ci_high"]) == pytest.approx((j * (2 - t * se) / sp, j * (2 + t * se) / sp))


def test_cluster_bootstrap_is_seeded_and_p_is_two_sided():
    rng = np.random.default_rng(1)
    x = rng.normal(size=400)
    y = x + rng.normal(size=400)
    clusters = [str(i // 4) for i in range(400)]
    a = vr.cluster_bootstrap(x, y, clusters, lambda u, v, _g: vr.spearman_rho(u, v), n_boot=200)
    b = vr.cluster_bootstrap(x, y, clusters, lambda u, v, _g: vr.spearman_rho(u, v), n_boot=200)
    assert a == b and a["p"] == 0.0 and 0 < a["ci_low"] < vr.spearman_rho(x, y) < a["ci_high"]
    null = vr.cluster_bootstrap(x, rng.normal(size=400), clusters, lambda u, v, _g: vr.spearman_rho(u, v),
                                n_boot=200)
    assert null["p"] > 0.05


def test_grade_follows_the_decision_rules():
    def row(i, est, p, pred="+", effect="rho", rb=None, blind=True):
        return {"id": i, "family": "E", "testable": True, "estimate": est, "p": p, "predicted": pred,
                "effect": effect, "rank_biserial": rb, "blind": blind}

    rows = [row("v", 0.3, 0.001), row("c", -0.3, 0.002), row("e", 0.1, 0.4),
            row("g", 0.5, 0.001, effect="g", rb=-0.1), row("nb", 0.3, 0.001, blind=False),
            {"id": "n", "family": "E", "testable": False}]
    vr.grade(rows)
    assert [r["grade"] for r in rows] == ["validated", "contradicted", "exploratory", "exploratory", "validated",
                                          "not testable"]
    assert rows[3]["grade_note"] == "g and rank-biserial r disagree in sign" and rows[4]["grade_note"] == "not blind"


def test_skips_cleanly_without_data(tmp_path, capsys):
    assert vr.main(["--validation", str(tmp_path), "--annomi", str(tmp_path), "--json", str(tmp_path / "o.json"),
                    "--md", str(tmp_path / "o.md")]) == 0
    assert "skipped" in capsys.readouterr().out
    assert not (tmp_path / "o.json").exists()
