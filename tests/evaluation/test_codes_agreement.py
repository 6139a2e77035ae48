"""The coder benches' agreement statistics against published worked examples."""

import numpy as np
import pytest

from evaluation.codes.agreement import bootstrap_by_group, icc_2_1, icc_2_1_matrix

# Shrout & Fleiss (1979), Table 2: 6 targets rated by 4 judges; ICC(2,1) = .29
SHROUT_FLEISS = np.array([[9, 2, 5, 8], [6, 1, 3, 2], [8, 4, 6, 8], [7, 1, 2, 6], [10, 5, 6, 9], [6, 2, 4, 7]], float)


def test_icc_2_1_matches_shrout_and_fleiss() -> None:
    assert icc_2_1_matrix(SHROUT_FLEISS) == pytest.approx(0.29, abs=0.005)


def test_icc_penalises_a_constant_offset_and_ignores_missing_rows() -> None:
    a = np.arange(10.0)
    assert icc_2_1(a, a) == pytest.approx(1.0)
    assert icc_2_1(a, a + 5) < 0.6  # absolute agreement: an offset is disagreement
    assert icc_2_1([*a, np.nan], [*a, 3.0]) == pytest.approx(1.0)


def test_bootstrap_resamples_whole_groups() -> None:
    groups = ["a"] * 5 + ["b"] * 5
    values = np.array([1.0] * 5 + [3.0] * 5)
    lo, hi = bootstrap_by_group(groups, lambda idx: float(values[idx].mean()), n=200)
    assert lo == pytest.approx(1.0) and hi == pytest.approx(3.0)
