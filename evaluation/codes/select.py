"""Model selection for the process coders by cross-validation inside train/dev (docs/process_codes.md, s. 3).

    python -m evaluation.codes.select [--out bench/results/codes_selection.json]

Never reads the test transcripts' labels or text: only transcripts in the split's ``train_dev_folds``.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
from sklearn.metrics import cohen_kappa_score, f1_score

from evaluation.codes.annomi import DEFAULT_ANNOMI, SPLIT_PATH, load_annomi
from evaluation.codes.cache import CachingEncoder
from pipeline.codes.coder import CoderOptions, UtteranceCoder
from pipeline.codes.context import contexts
from pipeline.codes.features import FeatureOptions

BASELINE_A = CoderOptions(FeatureOptions(embed=(), tfidf_words=True, tfidf_chars=False,
                                         tfidf_context=("previous",), surface=False), c=1.0, balanced=False)
BASELINE_B = CoderOptions(FeatureOptions(embed=("text", "previous", "previous2"), tfidf_words=False,
                                         tfidf_chars=False, tfidf_context=(), surface=False), c=1.0, balanced=False)
CONTEXT = CoderOptions(FeatureOptions())
CANDIDATES: dict[str, CoderOptions] = {
    "A tfidf utt+prev LR": BASELINE_A,
    "B minilm utt+2prev LR": BASELINE_B,
    "C context LR C=0.5": replace(CONTEXT, c=0.5),
    "C context LR C=2": CONTEXT,
    "C context LR C=8": replace(CONTEXT, c=8.0),
    "C context+prev LR C=2": replace(CONTEXT, features=replace(CONTEXT.features,
                                     embed=("text", "previous", "other_last", "own_last"))),
    "C context unbalanced C=2": replace(CONTEXT, balanced=False),
}


#: The candidates the shipped coder was selected from (the others were defined in the plan but not run: CPU time,
#: docs/process_codes.md, Results). ``--only`` with any names in CANDIDATES runs others.
SELECTED_FROM = ("A tfidf utt+prev LR", "B minilm utt+2prev LR", "C context LR C=0.5", "C context LR C=2")


def task_items(transcripts, ids, role):
    items, labels, groups = [], [], []
    for t in ids:
        tr = transcripts[t]
        ctx = contexts(tr.coding_utterances())
        for c, u in zip(ctx, tr.utterances, strict=True):
            if u.role == role:
                items.append(c)
                labels.append(u.code)
                groups.append(t)
    return items, np.array(labels), np.array(groups)


def cross_validate(options, items, labels, groups, folds, encoder):
    scores, kappas = [], []
    for k in sorted(set(folds.values())):
        test = np.array([folds[g] == k for g in groups])
        train_items = [i for i, m in zip(items, test, strict=True) if not m]
        test_items = [i for i, m in zip(items, test, strict=True) if m]
        coder = UtteranceCoder(options).fit(train_items, labels[~test], encoder)
        pred = coder.predict(test_items, encoder)
        scores.append(f1_score(labels[test], pred, average="macro"))
        kappas.append(cohen_kappa_score(labels[test], pred))
    return float(np.mean(scores)), float(np.std(scores)), float(np.mean(kappas))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--annomi", default=str(DEFAULT_ANNOMI))
    parser.add_argument("--out", default="bench/results/codes_selection.json")
    parser.add_argument("--only", nargs="*", default=None, help="candidate names (default: SELECTED_FROM)")
    parser.add_argument("--tasks", nargs="+", default=["therapist", "client"], choices=["therapist", "client"])
    parser.add_argument("--resume", action="store_true", help="keep the results already in --out")
    args = parser.parse_args(argv)

    split = json.loads(SPLIT_PATH.read_text())
    folds = split["train_dev_folds"]
    transcripts = load_annomi(Path(args.annomi))
    encoder = CachingEncoder()
    results = []
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if args.resume and out.is_file():
        results = json.loads(out.read_text())
    done = {(r["task"], r["candidate"]) for r in results}
    for role in args.tasks:
        items, labels, groups = task_items(transcripts, sorted(folds, key=int), role)
        for name, options in CANDIDATES.items():
            if name not in (args.only or SELECTED_FROM) or (role, name) in done:
                continue
            t0 = time.perf_counter()
            f1, sd, kappa = cross_validate(options, items, labels, groups, folds, encoder)
            row = {"task": role, "candidate": name, "cv_macro_f1": round(f1, 4), "sd": round(sd, 4),
                   "cv_kappa": round(kappa, 4), "seconds": round(time.perf_counter() - t0, 1)}
            print(json.dumps(row), flush=True)
            results.append(row)
            out.write_text(json.dumps(results, indent=1) + "\n")  # kept after each candidate
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
