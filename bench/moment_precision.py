"""Precision of the moment detectors on the labelled AnnoMI moments (docs/validation.md section 6).

``python -m bench.moment_precision [--json PATH] [--markdown PATH]``: reads ``evaluation/data/`` (moments,
detections, labels of passes A and B), prints agreement (Cohen's kappa), then per detector its precision
against the consensus reference (A and B agree) with a Wilson 95 % CI, on the held-out and dev parts, and
the same against A alone and B alone; recall is estimated from the random sample of unflagged replies.
"""

from __future__ import annotations

import argparse
import json
import math
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "evaluation" / "data"
RUPTURE = ("withdrawal", "confrontation")
ALLIANCE = ("process_talk", "agenda_setting", "session_summary", "self_disclosure", "collaborative_we")
#: what each rupture-side detector claims (marker kinds and rupture-candidate triggers)
RUPTURE_DETECTORS = ("topic_shift", "minimal_response", "deflection", "deference", "complaint",
                     "rejecting_intervention", "any_rupture_candidate")
BAR, MIN_N = 0.70, 10


def _read(name: str) -> list[dict]:
    with (DATA / name).open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def wilson(k: int, n: int, z: float = 1.96) -> tuple[float | None, float | None]:
    if n == 0:
        return None, None
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return round(max(0.0, centre - half), 3), round(min(1.0, centre + half), 3)


def kappa(a: list[str], b: list[str]) -> float | None:
    n = len(a)
    if n == 0:
        return None
    po = sum(x == y for x, y in zip(a, b, strict=True)) / n
    ca, cb = Counter(a), Counter(b)
    pe = sum(ca[k] * cb[k] for k in set(ca) | set(cb)) / (n * n)
    return None if pe == 1 else round((po - pe) / (1 - pe), 3)


def identical_counts(la: dict, lb: dict, r_ids: list[str], a_ids: list[str]) -> dict[str, list[int]]:
    """How often passes A and B wrote the same thing: ``[identical, of]`` per comparison.

    ``rupture_records``: every field of the rupture record (label, repair stage, confidence) identical;
    ``rupture_label``: the 3-class label; ``rupture_label_and_repair``; ``alliance_records``: the same set of
    alliance-work labels and the same confidence. Near-identical records, confidence included, are what one
    annotator (or one model family) reading a moment twice produces; the kappa is not inter-rater agreement.
    """
    def same(ids: list[str], fields: tuple[str, ...]) -> list[int]:
        def key(lab: dict) -> tuple:
            return tuple(sorted(lab[f]) if isinstance(lab[f], list) else lab[f] for f in fields)

        return [sum(key(la[i]) == key(lb[i]) for i in ids), len(ids)]

    return {"rupture_records": same(r_ids, ("label", "repair", "confidence")),
            "rupture_label": same(r_ids, ("label",)),
            "rupture_label_and_repair": same(r_ids, ("label", "repair")),
            "alliance_records": same(a_ids, ("labels", "confidence"))}


def _detected_kinds(det: dict) -> set[str]:
    kinds = set()
    for d in det["detections"]:
        kinds.add(d["kind"])
        if d["kind"] == "rupture_candidate":
            kinds.add("any_rupture_candidate")
            if d.get("marker"):
                kinds.add(d["marker"])
    return kinds


def analyse() -> dict:
    moments = {m["moment_id"]: m for m in _read("moments_rupture.jsonl") + _read("moments_alliance.jsonl")}
    dets = {d["moment_id"]: d for d in _read("moments_detections.jsonl")}
    la = {x["moment_id"]: x for x in _read("labels_rupture_passA.jsonl") + _read("labels_alliance_passA.jsonl")}
    lb = {x["moment_id"]: x for x in _read("labels_rupture_passB.jsonl") + _read("labels_alliance_passB.jsonl")}
    r_ids = sorted(m for m in moments if m.startswith("r"))
    a_ids = sorted(m for m in moments if m.startswith("a"))
    agreement = {"rupture_label": kappa([la[i]["label"] for i in r_ids], [lb[i]["label"] for i in r_ids]),
                 "rupture_any": kappa([str(la[i]["label"] in RUPTURE) for i in r_ids],
                                      [str(lb[i]["label"] in RUPTURE) for i in r_ids])}
    for cat in ALLIANCE:
        agreement[cat] = kappa([str(cat in la[i]["labels"]) for i in a_ids],
                               [str(cat in lb[i]["labels"]) for i in a_ids])
    identical = identical_counts(la, lb, r_ids, a_ids)

    def truth(ref: str, mid: str, claim: str) -> bool:
        def one(lab: dict) -> bool:
            if mid.startswith("r"):
                return lab["label"] in RUPTURE if claim == "rupture" else lab["label"] == claim
            return claim in lab["labels"]
        if ref == "A":
            return one(la[mid])
        if ref == "B":
            return one(lb[mid])
        return one(la[mid]) and one(lb[mid])

    rows = []
    detectors = [(k, "rupture", r_ids) for k in RUPTURE_DETECTORS] + [(k, k, a_ids) for k in ALLIANCE]
    for kind, claim, ids in detectors:
        for split in ("held_out", "dev", "all"):
            chosen = [i for i in ids if kind in _detected_kinds(dets[i]) and (split == "all"
                                                                           or moments[i]["split"] == split)]
            row = {"detector": kind, "claims": claim, "split": split, "n": len(chosen)}
            for ref in ("consensus", "A", "B"):
                k = sum(truth(ref, i, claim) for i in chosen)
                row[f"precision_{ref}"] = round(k / len(chosen), 3) if chosen else None
                row[f"ci_{ref}"] = wilson(k, len(chosen))
            rows.append(row)
    # recall of "any rupture" from the unflagged random sample (80 of the unflagged client replies)
    unflagged = [i for i in r_ids if not dets[i]["detections"]]
    flagged = [i for i in r_ids if dets[i]["detections"]]
    per_ref = {}
    for ref in ("consensus", "A", "B"):
        tp = sum(truth(ref, i, "rupture") for i in flagged)
        fn_sample = sum(truth(ref, i, "rupture") for i in unflagged)
        per_ref[ref] = {"ruptures_among_flagged": tp, "ruptures_in_unflagged_sample": fn_sample,
                        "unflagged_sample": len(unflagged)}
    repair = Counter(la[i]["repair"] for i in r_ids if truth("consensus", i, "rupture"))
    return {"moments": {"rupture": len(r_ids), "alliance": len(a_ids)},
            "labels": {"A": Counter(la[i]["label"] for i in r_ids), "B": Counter(lb[i]["label"] for i in r_ids)},
            "agreement_kappa": agreement, "identical": identical, "precision": rows, "recall_sample": per_ref,
            "repair_consensus_ruptures_passA": repair, "bar": {"precision": BAR, "min_n": MIN_N}}


def markdown(doc: dict) -> str:
    out = ["| detector | claims | held-out n | precision (consensus) [95 % CI] | A | B | dev n | dev precision "
           "(consensus) | listed |", "|---|---|---:|---|---:|---:|---:|---:|---|"]
    by = {(r["detector"], r["split"]): r for r in doc["precision"]}
    for det, split in by:
        if split != "held_out":
            continue
        h, d = by[(det, "held_out")], by[(det, "dev")]
        listed = h["n"] >= MIN_N and (h["precision_consensus"] or 0) >= BAR
        ci = h["ci_consensus"]
        fmt = lambda v: "n/a" if v is None else f"{v:.2f}"  # noqa: E731
        out.append(f"| `{det}` | {h['claims']} | {h['n']} | {fmt(h['precision_consensus'])} "
                   f"[{fmt(ci[0])}, {fmt(ci[1])}] | {fmt(h['precision_A'])} | {fmt(h['precision_B'])} | {d['n']} | "
                   f"{fmt(d['precision_consensus'])} | {'yes' if listed else 'no'} |")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path)
    parser.add_argument("--markdown", type=Path)
    args = parser.parse_args(argv)
    if not (DATA / "labels_rupture_passA.jsonl").is_file():
        print("no labels in evaluation/data: nothing to measure")
        return 0
    doc = analyse()
    text = json.dumps(doc, indent=1, default=dict)
    print(text)
    table = markdown(doc)
    print(table)
    if args.json:
        args.json.write_text(text + "\n", encoding="utf-8")
    if args.markdown:
        args.markdown.write_text(table + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
