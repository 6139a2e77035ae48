"""Fit the chosen process coders on all train/dev transcripts and write the shipped artefact and model card.

    python -m evaluation.codes.train [--selection bench/results/codes_selection.json]

The candidate per task is the one with the highest mean cross-validated macro-F1 in the selection file
(``python -m evaluation.codes.select``); one within 0.005 of it that comes earlier in ``CANDIDATES`` (simpler)
wins instead (docs/process_codes.md, section 3). Subtype coders use the therapist task's candidate. Only
train/dev transcripts are read. Writes ``pipeline/codes/artefacts/process_coder.joblib`` and its card.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import sklearn

from evaluation.codes.annomi import DEFAULT_ANNOMI, SPLIT_PATH, load_annomi
from evaluation.codes.cache import CachingEncoder
from evaluation.codes.select import CANDIDATES, SELECTED_FROM, task_items
from evaluation.codes.split import file_sha256
from pipeline.codes.coder import SUBTYPES, ProcessCoder, UtteranceCoder, options_dict, save_coder
from pipeline.codes.context import contexts

CODER_VERSION = "codes-1.0.0"
TIE = 0.005


def choose(selection: list[dict], task: str) -> str:
    rows = [r for r in selection if r["task"] == task and r["candidate"] in SELECTED_FROM]
    best = max(r["cv_macro_f1"] for r in rows)
    order = list(CANDIDATES)
    near = sorted((r for r in rows if r["cv_macro_f1"] >= best - TIE), key=lambda r: order.index(r["candidate"]))
    return near[0]["candidate"]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--annomi", type=Path, default=DEFAULT_ANNOMI)
    parser.add_argument("--selection", type=Path, default=Path("bench/results/codes_selection.json"))
    parser.add_argument("--out", type=Path, default=None, help="artefact folder (default: the package's)")
    args = parser.parse_args(argv)
    selection = json.loads(args.selection.read_text())
    split = json.loads(SPLIT_PATH.read_text())
    train_ids = sorted(split["train_dev_folds"], key=int)
    transcripts = load_annomi(args.annomi)
    encoder = CachingEncoder()
    chosen = {task: choose(selection, task) for task in ("therapist", "client")}
    started = time.perf_counter()
    coders = {}
    for task in ("therapist", "client"):
        items, labels, _ = task_items(transcripts, train_ids, task)
        coders[task] = UtteranceCoder(CANDIDATES[chosen[task]]).fit(items, labels, encoder)
    subtypes = {}
    for code in SUBTYPES:
        items, labels = [], []
        for t in train_ids:
            tr = transcripts[t]
            for c, u in zip(contexts(tr.coding_utterances()), tr.utterances, strict=True):
                if u.code == code and u.subtype:
                    items.append(c)
                    labels.append(u.subtype)
        subtypes[code] = UtteranceCoder(CANDIDATES[chosen["therapist"]]).fit(items, labels, encoder)
    seconds = round(time.perf_counter() - started, 1)
    from models.store import load_manifest

    encoder_files = {f.name: f.sha256 for f in load_manifest()["minilm-l6-v2"].files}
    card = {
        "version": CODER_VERSION,
        "task": "MI behaviour codes per utterance: therapist main behaviour (+ subtypes), client talk type",
        "data": {"corpus": "AnnoMI (public domain), expert codes of AnnoMI-simple.csv", **split["source"]},
        "split": {"file": "evaluation/data/process_codes_split.json", "sha256": file_sha256(SPLIT_PATH),
                  "train_dev_transcripts": len(train_ids), "test_transcripts": len(split["test"])},
        "chosen": {task: {"candidate": name, "options": options_dict(CANDIDATES[name])}
                   for task, name in chosen.items()},
        "cross_validation": [r for r in selection],
        "encoder": {"model": "all-MiniLM-L6-v2 (frozen)", "files_sha256": encoder_files},
        "versions": {"scikit-learn": sklearn.__version__, "python": platform.python_version()},
        "fit_seconds": seconds,
        "rebuild": "python -m evaluation.codes.select && python -m evaluation.codes.train",
        "intended_use": "process signals for supervision and research on English counselling talk; not a "
                        "verdict on a therapist or client; trained on demonstration MI sessions (AnnoMI)",
    }
    path = save_coder(ProcessCoder(coders["therapist"], coders["client"], subtypes, card), args.out or
                      Path(__file__).resolve().parents[2] / "pipeline" / "codes" / "artefacts")
    print(json.dumps({"chosen": chosen, "artefact": str(path), "sha256": file_sha256(path),
                      "fit_seconds": seconds}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
