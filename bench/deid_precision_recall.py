r"""Precision and recall of :mod:`pipeline.privacy.deid` on the hand-labelled AnnoMI utterances.

Usage: ``.venv/bin/python -m bench.deid_precision_recall [--errors]``. Reads
``tests/data/deid_labelled.jsonl`` (see ``deid_labelled.README.md`` beside it) and runs
:func:`pipeline.privacy.deid.deidentify_many` with the spaCy NER pipeline and without it (patterns and name
cues only; no known names: the set has no per-client name lists). Prints JSON, then a Markdown table.

Measures, per split (``dev``: the transcripts the rules were iterated on; ``heldout``: never looked at
while iterating; ``all``):

- **span level, any overlap**: recall = gold spans touched by a predicted span; precision = predicted
  spans touching a gold span. Recall per *gold* label, precision per *predicted* label; ``typed_recall``
  counts a gold span only when a touching predicted span has the same label.
- **token level**: tokens are ``\w+`` runs; a token is gold (predicted) when it overlaps a gold
  (predicted) span. Recall per gold label, precision per predicted label.

``--errors`` adds the missed gold spans and the unmatched predicted spans to the JSON.
Exits 0 with a message when the labelled file is absent.
"""

from __future__ import annotations

import json
import re
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "tests" / "data" / "deid_labelled.jsonl"
SPLITS = ("dev", "heldout", "all")


def load_rows(path: Path = DATA) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _ratio(num: int, den: int) -> float | None:
    return round(num / den, 3) if den else None


def score(rows: list[dict], preds: list[list[tuple[int, int, str]]]) -> dict:
    """Span- and token-level figures of predictions ``(start, end, label)`` against ``rows[i]["spans"]``."""
    span_gold = defaultdict(lambda: [0, 0, 0])  # label -> [gold, touched, touched with same label]
    span_pred = defaultdict(lambda: [0, 0])  # label -> [predicted, touching gold]
    tok_gold = defaultdict(lambda: [0, 0])  # label -> [gold tokens, predicted among them]
    tok_pred = defaultdict(lambda: [0, 0])  # label -> [predicted tokens, gold among them]
    for row, pred in zip(rows, preds, strict=True):
        gold = [(s["start"], s["end"], s["label"]) for s in row["spans"]]
        for gs, ge, gl in gold:
            touching = [p for p in pred if p[0] < ge and gs < p[1]]
            for key in (gl, "ALL"):
                span_gold[key][0] += 1
                span_gold[key][1] += bool(touching)
                span_gold[key][2] += any(p[2] == gl for p in touching)
        for ps, pe, pl in pred:
            hit = any(g[0] < pe and ps < g[1] for g in gold)
            for key in (pl, "ALL"):
                span_pred[key][0] += 1
                span_pred[key][1] += hit
        for m in re.finditer(r"\w+", row["text"]):
            g = next((x[2] for x in gold if x[0] < m.end() and m.start() < x[1]), None)
            p = next((x[2] for x in pred if x[0] < m.end() and m.start() < x[1]), None)
            if g:
                for key in (g, "ALL"):
                    tok_gold[key][0] += 1
                    tok_gold[key][1] += p is not None
            if p:
                for key in (p, "ALL"):
                    tok_pred[key][0] += 1
                    tok_pred[key][1] += g is not None
    labels = sorted((set(span_gold) | set(span_pred)) - {"ALL"}) + ["ALL"]
    out = {}
    for lab in labels:
        g, p, tg, tp = span_gold[lab], span_pred[lab], tok_gold[lab], tok_pred[lab]
        out[lab] = {
            "gold_spans": g[0], "pred_spans": p[0],
            "span_recall": _ratio(g[1], g[0]), "span_precision": _ratio(p[1], p[0]),
            "typed_recall": _ratio(g[2], g[0]),
            "gold_tokens": tg[0], "token_recall": _ratio(tg[1], tg[0]), "token_precision": _ratio(tp[1], tp[0]),
        }
    return out


def errors(rows: list[dict], preds: list[list[tuple[int, int, str]]]) -> dict:
    missed, spurious = [], []
    for row, pred in zip(rows, preds, strict=True):
        key = f'{row["transcript_id"]}/{row["utterance_index"]}'
        for s in row["spans"]:
            if not any(p[0] < s["end"] and s["start"] < p[1] for p in pred):
                missed.append({"id": key, "split": row["split"], "label": s["label"],
                               "text": row["text"][s["start"]:s["end"]]})
        for ps, pe, pl in pred:
            if not any(s["start"] < pe and ps < s["end"] for s in row["spans"]):
                spurious.append({"id": key, "split": row["split"], "label": pl, "text": row["text"][ps:pe]})
    return {"missed": missed, "spurious": spurious}


def evaluate(rows: list[dict], nlp, *, with_errors: bool = False) -> dict:
    from pipeline.privacy.deid import deidentify_many

    reds = deidentify_many([r["text"] for r in rows], nlp=nlp)
    preds = [[(s.start, s.end, s.label) for s in red.spans] for red in reds]
    out: dict = {}
    for split in SPLITS:
        idx = [i for i, r in enumerate(rows) if split == "all" or r["split"] == split]
        out[split] = score([rows[i] for i in idx], [preds[i] for i in idx])
    if with_errors:
        out["errors"] = errors(rows, preds)
    return out


def markdown(results: dict) -> str:
    lines = ["| mode | split | label | gold spans | span R | span P | typed R | token R | token P |",
             "|---|---|---|---:|---:|---:|---:|---:|---:|"]
    for mode, res in results.items():
        for split in SPLITS:
            labels = list(res[split]) if split == "all" else ["ALL"]
            for lab in labels:
                m = res[split][lab]
                cells = [m[k] for k in ("span_recall", "span_precision", "typed_recall", "token_recall",
                                        "token_precision")]
                lines.append(f"| {mode} | {split} | {lab} | {m['gold_spans']} | "
                             + " | ".join("–" if c is None else f"{c:.3f}" for c in cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not DATA.exists():
        print(f"skipped: {DATA} not found (nothing to measure)")
        return 0
    rows = load_rows()
    results: dict = {}
    try:
        from pipeline.privacy.deid import get_ner_nlp

        nlp = get_ner_nlp()
    except Exception as e:  # noqa: BLE001 - report and measure the pattern-only mode
        print(f"spaCy NER pipeline unavailable ({e}); measuring without nlp only", file=sys.stderr)
        nlp = None
    if nlp is not None:
        results["with nlp"] = evaluate(rows, nlp, with_errors="--errors" in argv)
    results["without nlp"] = evaluate(rows, None, with_errors="--errors" in argv)
    print(json.dumps({"n_utterances": len(rows),
                      "n_with_identifiers": sum(bool(r["spans"]) for r in rows), **results}, indent=1))
    print()
    print(markdown({k: {s: v[s] for s in SPLITS} for k, v in results.items()}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
