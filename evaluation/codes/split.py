"""The committed, transcript-grouped split of AnnoMI for the process coders (docs/process_codes.md, plan).

    python -m evaluation.codes.split [--annomi ../shared/data/annomi] [--out evaluation/data/process_codes_split.json]

Deterministic: the same AnnoMI files give the same split byte for byte. The test split holds every
transcript with two or more annotators on some utterance (so expert-expert agreement is measured on the same
transcripts as the coders) plus a seeded random draw per MI-quality stratum up to 27 transcripts (about 20 %,
with the corpus's share of low-quality MI). The other 106 transcripts are train/dev, cut into five
quality-stratified groups for cross-validation (model selection uses only these).
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import random
from collections import defaultdict
from pathlib import Path

SEED = 20261207
N_TEST = 27
N_FOLDS = 5
DEFAULT_ANNOMI = Path(__file__).resolve().parents[3] / "shared" / "data" / "annomi"
DEFAULT_OUT = Path(__file__).resolve().parents[1] / "data" / "process_codes_split.json"


def file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def make_split(annomi: Path) -> dict:
    simple = annomi / "AnnoMI-simple.csv"
    full = annomi / "AnnoMI-full.csv"
    with simple.open(newline="", encoding="utf-8") as f:
        quality = {row["transcript_id"]: row["mi_quality"] for row in csv.DictReader(f)}
    annotators: dict[tuple[str, str], set[str]] = defaultdict(set)
    with full.open(newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            annotators[(row["transcript_id"], row["utterance_id"])].add(row["annotator_id"])
    multi = sorted({t for (t, _), a in annotators.items() if len(a) > 1}, key=int)
    rng = random.Random(SEED)
    by_quality: dict[str, list[str]] = defaultdict(list)
    for t in sorted(quality, key=int):
        if t not in multi:
            by_quality[quality[t]].append(t)
    n_low_total = sum(1 for q in quality.values() if q == "low")
    want_low = round(N_TEST * n_low_total / len(quality))
    test = list(multi)
    for q, want in (("low", want_low), ("high", N_TEST - want_low)):
        have = sum(1 for t in test if quality[t] == q)
        pool = by_quality[q]
        rng.shuffle(pool)
        test += pool[: max(0, want - have)]
    test = sorted(test, key=int)
    rest = [t for t in sorted(quality, key=int) if t not in test]
    folds: dict[str, int] = {}
    for q in ("high", "low"):
        members = [t for t in rest if quality[t] == q]
        rng.shuffle(members)
        for i, t in enumerate(members):
            folds[t] = i % N_FOLDS
    return {
        "seed": SEED,
        "source": {"AnnoMI-simple.csv": file_sha256(simple), "AnnoMI-full.csv": file_sha256(full)},
        "test": test,
        "multi_annotator_transcripts": multi,
        "train_dev_folds": {t: folds[t] for t in sorted(folds, key=int)},
        "quality": {t: quality[t] for t in sorted(quality, key=int)},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--annomi", type=Path, default=DEFAULT_ANNOMI)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    split = make_split(args.annomi)
    args.out.write_text(json.dumps(split, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    n_low = sum(1 for t in split["test"] if split["quality"][t] == "low")
    print(f"test: {len(split['test'])} transcripts ({n_low} low-quality); train/dev: {len(split['train_dev_folds'])}")
    print(f"wrote {args.out} sha256 {file_sha256(args.out)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
