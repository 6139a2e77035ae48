"""The MI process codes in the report and summary.

MITI summaries against their thresholds, the utterances behind each code, and the coder's agreement with experts
beside them (pipeline/codes, docs/process_codes.md).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from pipeline.codes.apply import SUMMARY_INDICATORS
from pipeline.codes.summary import THRESHOLDS, against_threshold

CODE_LABELS = {
    "question": "Questions", "reflection": "Reflections", "therapist_input": "Information and advice",
    "other": "Other therapist talk", "change": "Change talk (client)", "neutral": "Neutral (client)",
    "sustain": "Sustain talk (client)",
}
SUMMARY_LABELS = {
    "reflection_question_ratio": "Reflection-to-question ratio (R:Q)",
    "complex_reflection_pct": "Complex reflections (% of reflections)",
    "open_question_pct": "Open questions (% of questions)",
    "change_talk_share": "Change-talk share CT/(CT+ST) (client)",
    "question_per_10min": "Questions per 10 min",
    "reflection_per_10min": "Reflections per 10 min",
    "therapist_input_per_10min": "Information and advice per 10 min",
    "change_talk_per_10min": "Change talk per 10 min",
    "sustain_talk_per_10min": "Sustain talk per 10 min",
}


def _value(key: str, value: float | None) -> str:
    if value is None:
        return "not measured"
    if key.endswith("_pct"):
        return f"{value:.0f} %"
    if key == "change_talk_share":
        return f"{100 * value:.0f} %"
    return f"{value:.2f}" if key == "reflection_question_ratio" else f"{value:.1f}"


def miti_rows(indicators: Mapping[tuple[str, str | None], float | None]) -> list[dict]:
    """One row per summary: label, shown value, where it stands against the published threshold, reference."""
    rows = []
    for key, (name, role, _unit) in SUMMARY_INDICATORS.items():
        value = indicators.get((name, role))
        t = THRESHOLDS.get(key)
        rows.append({"key": key, "name": name, "label": SUMMARY_LABELS[key], "value": _value(key, value),
                     "standing": against_threshold(key, value),
                     "reference": f"fair {t.fair:g}, good {t.good:g} ({t.source})" if t else "no published threshold"})
    return rows


def utterances_by_code(codes: Sequence, clock: Callable[[float], str]) -> list[dict]:
    """The coded turns grouped by code, in time order within each (what each count in the summary stands for)."""
    groups: dict[str, list[dict]] = {}
    for c in codes:
        groups.setdefault(c.code, []).append({
            "at": "" if c.start_s is None else clock(c.start_s), "role": c.speaker_role, "text": c.text,
            "subtype": c.subtype or "", "probability": f"{c.probability:.2f}"})
    return [{"code": k, "label": CODE_LABELS.get(k, k), "items": groups[k]} for k in CODE_LABELS if k in groups]


def agreement_line() -> str:
    """The coder's measured agreement with experts on held-out transcripts (from its model card)."""
    from pipeline.codes.coder import read_card

    try:
        a = read_card().get("test_agreement") or {}
    except Exception:  # noqa: BLE001 - a missing card only removes the figure, never the report
        return "The coder's agreement with experts is not available (model card missing)."
    if not a:
        return "The coder's agreement with experts has not been measured."
    return (f"Agreement with expert MI coders on held-out AnnoMI transcripts (gold text): therapist codes "
            f"macro-F1 {a['therapist_macro_f1']:.2f}, kappa {a['therapist_kappa']:.2f} (two experts with each other: "
            f"{a['expert_vs_expert_therapist_kappa']:.2f}); client talk macro-F1 {a['client_macro_f1']:.2f}, kappa "
            f"{a['client_kappa']:.2f} (experts: {a['expert_vs_expert_client_kappa']:.2f}). From a recording, "
            "transcription errors lower it (docs/process_codes.md).")


def markdown_lines(indicators: Mapping[tuple[str, str | None], float | None], coded: bool) -> list[str]:
    """The summary's MI section."""
    lines = ["## MI behaviour codes (MITI 4.2.1 summaries)", ""]
    if not coded:
        return lines + ["This session was not coded (processed before markers 1.5.0, or coding was off).", ""]
    lines += ["| Summary | This session | Against the threshold | Reference |", "|---|---:|---|---|"]
    for r in miti_rows(indicators):
        lines.append(f"| {r['label']} | {r['value']} | {r['standing'] or '-'} | {r['reference']} |")
    return lines + ["", agreement_line() + " Codes are process signals for supervision, not verdicts.", ""]
