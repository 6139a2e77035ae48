"""Discrepancy flags: sessions where process signals of strain and the client's alliance rating disagree."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from pipeline.analysis.definitions import evidence_of


@dataclass(frozen=True)
class StrainSignal:
    """An indicator read as a possible sign of strain when it is extreme in ``direction``."""

    name: str
    speaker_role: str | None
    direction: str  # "high" or "low"
    meaning: str


#: Indicators that might be read as strain once evidence supports it (their direction and meaning).
STRAIN_CANDIDATES: tuple[StrainSignal, ...] = (
    StrainSignal("long_silence_count", None, "high", "many long silences"),
    StrainSignal("long_silence_total", None, "high", "much long silence"),
    StrainSignal("mean_switching_gap", "client", "high", "client slow to respond"),
    StrainSignal("talk_time_share", "client", "low", "client little talk time"),
)
#: Process signals of strain (an indicator missing from the database is skipped): only candidates whose
#: *evidence* about the alliance or outcome is ``supported``. How well a number is measured (its accuracy) is
#: not evidence that it signals strain; today no indicator has supported evidence, so this is empty and no
#: discrepancy is flagged.
STRAIN_SIGNALS: tuple[StrainSignal, ...] = tuple(s for s in STRAIN_CANDIDATES if evidence_of(s.name) == "supported")


def discrepancy_flags(ind: pd.DataFrame, scores: pd.DataFrame, *, strain_quantile: float = 0.8,
                      rating_quantile: float = 0.8, min_sessions: int = 5,
                      signals: Sequence[StrainSignal] = STRAIN_SIGNALS) -> pd.DataFrame:
    """Sessions where process signals and the client's alliance rating disagree.

    A session has a *strain signal* when one of :data:`STRAIN_SIGNALS` is at or beyond the
    ``strain_quantile`` of all sessions in its strain direction and strictly beyond the median. An
    alliance rating (instruments of kind ``alliance``) is *high* when the score is at or above the
    instrument's ``concern_below`` (SRS: 36), or without one, at or above the ``rating_quantile`` of the
    sample; *low* below the cutoff, or at or below the ``1 - rating_quantile`` quantile.

    Flags: ``strain_but_rated_high`` (a strain signal and a high rating), ``rated_low_without_strain``
    (a low rating and no strain signal). Needs at least ``min_sessions`` sessions per signal/measure.
    With no strain signal (no indicator with supported evidence: today) nothing is flagged.

    Parameters
    ----------
    ind : DataFrame
        session_id, name, role_label, value.
    scores : DataFrame
        session_id, client_id, instrument, scale, timepoint, value, kind, concern_below.
    signals : sequence of StrainSignal
        The indicators read as strain (default :data:`STRAIN_SIGNALS`: those with supported evidence).

    Returns
    -------
    DataFrame
        Columns as table ``discrepancy_flags`` (without comparison_id).
    """
    def arr(frame: pd.DataFrame, col: str, dtype=object) -> np.ndarray:
        return np.asarray(frame[col].to_numpy(), dtype=dtype)

    alliance = scores[(scores["kind"] == "alliance") & scores["session_id"].notna()]
    return flag_rows(arr(ind, "session_id"), arr(ind, "name"), arr(ind, "role_label"), arr(ind, "value", float),
                  {c: arr(alliance, c) for c in ("session_id", "client_id", "instrument", "scale")}
                  | {"timepoint": np.asarray(alliance["timepoint"].fillna("").to_numpy(), dtype=object)}
                  | {"value": arr(alliance, "value", float), "concern_below": arr(alliance, "concern_below", float)},
                  strain_quantile=strain_quantile, rating_quantile=rating_quantile, min_sessions=min_sessions,
                  signals=signals)


FLAG_COLUMNS = ["session_id", "client_id", "instrument", "scale", "timepoint", "score", "rating", "flag",
                "strain_signals", "detail"]


def flag_rows(sid: np.ndarray, name: np.ndarray, role_label: np.ndarray, value: np.ndarray,
           alliance: dict[str, np.ndarray], *, strain_quantile: float, rating_quantile: float,
           min_sessions: int, signals: Sequence[StrainSignal]) -> pd.DataFrame:
    """:func:`discrepancy_flags` over arrays.

    Indicator rows as four arrays, the alliance scores as a dict of columns (timepoint '' for none).
    """
    if not len(alliance["session_id"]) or not signals:
        return pd.DataFrame(columns=FLAG_COLUMNS)
    hits = []
    checked = []
    for sig in signals:
        role = "session" if sig.speaker_role is None else sig.speaker_role
        at = (name == sig.name) & (role_label == role)
        v = pd.Series(value[at], index=pd.Index(sid[at], dtype=object))
        if not v.index.is_unique:
            v = v.groupby(level=0).mean()
        if len(v) < min_sessions:
            continue
        checked.append(v.index.to_numpy())
        vals, med = v.to_numpy(), float(v.median())
        if sig.direction == "high":
            sel = (vals >= np.quantile(vals, strain_quantile)) & (vals > med)
        else:
            sel = (vals <= np.quantile(vals, 1 - strain_quantile)) & (vals < med)
        hits.append((sig, role, dict(zip(v.index[sel], vals[sel], strict=True))))
    checked_ids = pd.Index(np.concatenate(checked) if checked else [], dtype=object)
    hit_ids = pd.Index([k for _, _, h in hits for k in h], dtype=object)

    def text(session: str) -> str:
        return "; ".join(f"{sig.name}:{role}={h[session]:.3g} ({sig.meaning})" for sig, role, h in hits
                         if session in h)

    out = []
    keys = pd.MultiIndex.from_arrays([alliance["instrument"], alliance["scale"], alliance["timepoint"]])
    code, groups = pd.factorize(keys, sort=True)
    for gi, (inst, scale, tp) in enumerate(groups):
        idx = np.flatnonzero(code == gi)
        idx = idx[pd.Index(alliance["session_id"][idx], dtype=object).isin(checked_ids)]
        if len(idx) < min_sessions:
            continue
        val = alliance["value"][idx]
        cutoff = alliance["concern_below"][idx]
        cutoff = cutoff[~np.isnan(cutoff)]
        if len(cutoff):
            c = float(cutoff[0])
            high, low = val >= c, val < c
            rule = f"cutoff {c:g}"
        else:
            hi_q, lo_q = np.quantile(val, rating_quantile), np.quantile(val, 1 - rating_quantile)
            high, low = val >= hi_q, val <= lo_q
            rule = f"sample quantiles {1 - rating_quantile:.2f}/{rating_quantile:.2f} ({lo_q:g}/{hi_q:g})"
        sessions = alliance["session_id"][idx]
        has = pd.Index(sessions, dtype=object).isin(hit_ids)
        tp_out = tp or None
        for rows, rating, flag, detail, signals in (
                (high & has, "high", "strain_but_rated_high", f"rated high by {rule}", True),
                (low & ~has, "low", "rated_low_without_strain", f"rated low by {rule}; no strain signal", False)):
            if rows.any():
                out.append(pd.DataFrame({
                    "session_id": sessions[rows], "client_id": alliance["client_id"][idx][rows], "instrument": inst,
                    "scale": scale, "timepoint": tp_out, "score": val[rows], "rating": rating, "flag": flag,
                    "strain_signals": [text(x) for x in sessions[rows]] if signals else None, "detail": detail}))
    return pd.concat(out, ignore_index=True)[FLAG_COLUMNS] if out else pd.DataFrame(columns=FLAG_COLUMNS)
