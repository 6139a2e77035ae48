"""The comparison as text: the Markdown table, readings, grades, the strain line and the caveat."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from pipeline.analysis.definitions import ACCURACY_WORDS, accuracy_of, evidence_of
from pipeline.research.compare.flags import STRAIN_SIGNALS, StrainSignal


def _ci(est: object, lo: object, hi: object) -> str:
    if est is None or pd.isna(est):
        return "-"
    if lo is None or pd.isna(lo):
        return f"{est:+.2f}"
    return f"{est:+.2f} [{lo:+.2f}, {hi:+.2f}]"


def _q(q: object) -> str:
    return "-" if q is None or pd.isna(q) else f"{q:.3f}"


def format_table(results: pd.DataFrame) -> str:
    """A Markdown table of the results, ordered by level, measure and indicator.

    ``estimate`` is the primary estimate (within: the mixed model's standardised within-client slope;
    between: Spearman rho of client means); the repeated-measures / client-mean correlations follow it.
    """
    lines = ["| indicator | measure | level | sessions | clients | estimate [95% CI] | q | Spearman rho [95% CI] "
             "(within: not adjusted for trend) | Pearson r [95% CI] (within: not adjusted for trend) | reading | "
             "accuracy | evidence |",
             "|---|---|---|---:|---:|---|---:|---|---|---|---|---|"]
    r = results.sort_values(["level", "instrument", "scale", "timepoint", "indicator", "speaker_role"],
                            na_position="first")
    for _, row in r.iterrows():
        role = row["speaker_role"] if isinstance(row["speaker_role"], str) else "session"
        measure = f"{row['instrument']}.{row['scale']}" + (f"@{row['timepoint']}" if isinstance(row["timepoint"], str)
                                                          else "")
        lines.append(f"| {row['indicator']}:{role} | {measure} | {row['level']} | {row['n_sessions']} | "
                     f"{row['n_clients']} | {_ci(row['estimate'], row['estimate_ci_low'], row['estimate_ci_high'])} | "
                     f"{_q(row['estimate_q'])} | "
                     f"{_ci(row['spearman_rho'], row['spearman_ci_low'], row['spearman_ci_high'])} | "
                     f"{_ci(row['pearson_r'], row['pearson_ci_low'], row['pearson_ci_high'])} | {reading(row)} | "
                     f"{grades(row['indicator'])} |")
    return "\n".join(lines)


def grades(name: str) -> str:
    """The two grades of an indicator as two table cells: how well it is measured | what it says about alliance."""
    status = evidence_of(name)
    return f"{ACCURACY_WORDS[accuracy_of(name)]} | {status.replace('_', ' ')}"


def strain_line(signals: Sequence[StrainSignal] = STRAIN_SIGNALS) -> str:
    """One line saying which indicators are read as strain, and why none are when none are."""
    if not signals:
        return ("Strain signals: none. No indicator has supported evidence about the alliance or outcome "
                "(docs/data_dictionary.md), so none is read as strain and no discrepancy is flagged.")
    return "Strain signals (supported evidence): " + ", ".join(
        f"{s.name}:{s.speaker_role or 'session'} {s.direction} ({s.meaning})" for s in signals) + "."


def reading(row: pd.Series) -> str:
    """A cautious one-phrase reading of a result row (from its primary estimate)."""
    est = row.get("estimate", row.get("spearman_rho"))
    if est is None or pd.isna(est):
        return row["note"] or "not estimable"
    lo, hi = row.get("estimate_ci_low", row.get("spearman_ci_low")), row.get("estimate_ci_high",
                                                                              row.get("spearman_ci_high"))
    q = row.get("estimate_q", row.get("spearman_q"))
    if lo is None or pd.isna(lo):
        return "no interval"
    if lo <= 0 <= hi:
        return "CI includes 0: no evidence either way" if hi - lo > 0.4 else "CI includes 0"
    if q is not None and not pd.isna(q) and q < 0.05:
        return "association (q < .05); not causal"
    return "CI excludes 0 but not after correction"


CAVEAT = ("Associations, not effects; the literature expects them to be small (text-based models predicted "
          "client-rated alliance at about rho = .15). Within clients the estimate is the standardised "
          "within-client slope with client means and the listed trend control removed (default session_order: "
          "one effect per session position, so a trend of any shape shared by indicator and score is removed; "
          "cluster-robust 95 % interval unless told otherwise); the within-client Spearman and Pearson columns are "
          "repeated-measures correlations not adjusted for trend, a description only. Between clients the "
          "estimate is Spearman rho of client means. Read the intervals, not the point estimates; "
          "q = Benjamini-Hochberg over every test of this run. Indicators are process signals for reflection, "
          "not clinical judgements.")
