"""Evidence check of the MI codes on MIBot self-report (docs/process_codes.md section 7, plan committed first).

    python -m bench.codes_mibot [--out bench/results/codes_mibot.json]

Codes every MIBot conversation with the shipped coder (consecutive utterances of one speaker form one turn;
MIBot's own automatic labels are not read), computes the client's change-talk share CT/(CT+ST), and tests the two
pre-registered one-sided Spearman hypotheses E1 (readiness after - before) and E2 (a week later - before), Holm
over the two. Needs ../shared/data/mibot.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path

import numpy as np
from scipy.stats import spearmanr
from statsmodels.stats.multitest import multipletests

from evaluation.codes.cache import CachingEncoder
from pipeline.codes.coder import load_coder
from pipeline.codes.context import CodingUtterance
from pipeline.codes.summary import CodeCount, miti_summary

MIBOT = Path(__file__).resolve().parents[2] / "shared" / "data" / "mibot"


def turns(path: Path) -> list[CodingUtterance]:
    out: list[CodingUtterance] = []
    for u in json.loads(path.read_text(encoding="utf-8"))["utterances"]:
        role = "therapist" if u["speaker"] == "counsellor" else "client"
        if out and out[-1].role == role:
            out[-1] = CodingUtterance(role, out[-1].text + " " + u["text"])
        else:
            out.append(CodingUtterance(role, u["text"]))
    return out


def _num(x: str) -> float:
    try:
        return float(x)
    except (TypeError, ValueError):
        return float("nan")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mibot", type=Path, default=MIBOT)
    parser.add_argument("--out", type=Path, default=Path("bench/results/codes_mibot.json"))
    args = parser.parse_args(argv)
    if not (args.mibot / "data.csv").is_file():
        print(f"skipped: {args.mibot} not available", file=sys.stderr)
        return 0
    coder, encoder = load_coder(), CachingEncoder()
    ratings = {r["ParticipantID"]: r for r in csv.DictReader((args.mibot / "data.csv").open(encoding="utf-8"))}
    rows = []
    for path in sorted((args.mibot / "transcripts").glob("*.json")):
        pid = path.stem
        if pid not in ratings:
            continue
        codes = coder.code(turns(path), encoder)
        s = miti_summary([CodeCount(c.code, c.subtype) for c in codes], None)
        r = ratings[pid]
        rows.append({"participant": pid[:12], "ct_share": s["change_talk_share"],
                     "d_post": _num(r["PostRulerReadiness"]) - _num(r["PreRulerReadiness"]),
                     "d_week": _num(r["WeekLaterRulerReadiness"]) - _num(r["PreRulerReadiness"])})
    tests = {}
    for name, key in (("E1", "d_post"), ("E2", "d_week")):
        pairs = [(x["ct_share"], x[key]) for x in rows if x["ct_share"] is not None and np.isfinite(x[key])]
        a, b = zip(*pairs, strict=True)
        res = spearmanr(a, b, alternative="greater")
        tests[name] = {"outcome": key, "n": len(pairs), "rho": round(float(res.statistic), 4),
                       "p_one_sided": round(float(res.pvalue), 4)}
    reject, p_holm, _, _ = multipletests([t["p_one_sided"] for t in tests.values()], alpha=0.05, method="holm")
    for (_name, t), rj, ph in zip(tests.items(), reject, p_holm, strict=True):
        t["p_holm"], t["holds"] = round(float(ph), 4), bool(rj)
    out = {"conversations": len(rows), "coder_version": coder.version, "tests": tests, "rows": rows}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=1) + "\n")
    for name, t in tests.items():
        print(f"{name}: change-talk share vs {t['outcome']}: Spearman rho {t['rho']:+.3f}, n {t['n']}, "
              f"one-sided p {t['p_one_sided']:.4f}, Holm p {t['p_holm']:.4f}: {'holds' if t['holds'] else 'null'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
