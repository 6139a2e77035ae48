"""Where the realistic bench's word errors are: backchannels, overlapped speech, spelled letters, the rest.

``python -m bench.asr_error_kinds bench/results/realistic-beam5.transcripts.json [--out asr-error-kinds]``

Reads a transcript cache written by ``python -m bench.bench_realistic ... --transcripts PATH`` (no decoding) and,
for every render and ASR configuration in it, aligns the Whisper-normalised reference with the hypothesis
(kaldialign, the alignment ``bench.bench_realistic`` scores with) and sorts each error by the reference word it
falls on:

- ``backchannel``: a word of a backchannel utterance of the truth ("yeah", "right" said under a turn);
- ``overlap``: a word said while the other speaker talks (its time placed evenly within its utterance; single-stream
  ASR hears one voice);
- ``spelled``: an inserted single letter other than "a" and "i" (flite reads "Mm-hmm" as letters, which a beam
  transcribes as "M-M-H-N-M": an artefact of the synthetic voices, not of real speech);
- ``other``: every other substitution, deletion or insertion.

It explains the gap to issue #21's targets; it is not a second score: ``bench.bench_realistic`` gives the WER.
Writes ``bench/results/<out>.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.bench_realistic import _canon_whisper, render_of
from bench.render_long import RENDERS_DIR
from bench.results_io import RESULTS, write_results
from evaluation.synthetic import read_truth, truth_paths

KINDS = ("backchannel", "overlap", "spelled", "other")


def _reference(truth: Any) -> tuple[list[str], list[str]]:
    """The normalised reference words and, per word, the kind an error on it counts as.

    The truth times utterances, not words: a word's time is placed evenly within its utterance, and it counts as
    overlapped when that time lies inside another speaker's utterance.
    """
    utts = list(truth.utterances)
    words, kinds = [], []
    for u in utts:
        others = [(v.start_s, v.end_s) for v in utts if v.role != u.role]
        tokens = _canon_whisper(u.text).split()
        for k, w in enumerate(tokens):
            t = u.start_s + (k + 0.5) / len(tokens) * (u.end_s - u.start_s)
            words.append(w)
            kinds.append("backchannel" if "backchannel" in u.tags
                         else "overlap" if any(a <= t <= b for a, b in others) else "other")
    return words, kinds


def error_kinds(truth: Any, hypothesis_text: str) -> dict[str, Any]:
    """Counts of errors by kind for one transcript against its truth, and the reference length."""
    import kaldialign

    ref, ref_kind = _reference(truth)
    hyp = _canon_whisper(hypothesis_text).split()
    counts: Counter[str] = Counter()
    i = 0
    for a, b in kaldialign.align(ref, hyp, "*"):
        if a == "*":
            counts["spelled" if len(b) == 1 and b.isalpha() and b not in ("a", "i") else "other"] += 1
            continue
        if a != b:
            counts[ref_kind[i]] += 1
        i += 1
    return {"ref_words": len(ref), "errors": sum(counts.values()), **{k: counts[k] for k in KINDS}}


def run(cache_path: Path) -> list[dict[str, Any]]:
    entries = json.loads(cache_path.read_text())
    rows = []
    for key, entry in sorted(entries.items()):
        audio_name, front_end, stage, options = key.split("|", 3)
        truth_json, _ = truth_paths(RENDERS_DIR / audio_name)
        if not truth_json.is_file():
            continue  # the real sample: no utterance tags
        beam = "beam_size=1" if "beam_size=1," in options else "beam_size=5" if "beam_size=5," in options else "?"
        backend = options.split("backend='", 1)[1].split("'", 1)[0] if "backend='" in options else "?"
        text = " ".join(w[2] for w in entry["transcript"]["words"])
        session, condition = render_of(audio_name)
        rows.append({"render": audio_name, "session": session, "condition": condition, "front_end": front_end,
                     "asr": f"{backend} {beam}", **error_kinds(read_truth(truth_json), text)})
    return rows


def pooled(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for condition in dict.fromkeys(r["condition"] for r in rows):
        for asr in dict.fromkeys(r["asr"] for r in rows):
            sel = [r for r in rows if r["condition"] == condition and r["asr"] == asr and r["front_end"] == "none"]
            if sel:
                out.append({"condition": condition, "asr": asr, "sessions": len(sel),
                            **{k: sum(r[k] for r in sel) for k in ("ref_words", "errors", *KINDS)}})
    return out


def markdown(pool: Sequence[dict[str, Any]], source: str) -> str:
    lines = [f"Word errors by kind (`python -m bench.asr_error_kinds {source}`; Whisper normaliser; pooled over the "
             "sessions in the cache). Each kind's column is its share of the reference words (points of WER).", "",
             "| condition | ASR | sessions | ref words | WER | backchannel | overlap | spelled letters | other | "
             "WER without backchannels and spelled letters |", "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for p in pool:
        n = p["ref_words"]
        rest = (p["errors"] - p["backchannel"] - p["spelled"]) / n
        lines.append(f"| {p['condition']} | {p['asr']} | {p['sessions']} | {n} | {100 * p['errors'] / n:.1f} % | "
                     + " | ".join(f"{100 * p[k] / n:.1f}" for k in KINDS) + f" | {100 * rest:.1f} % |")
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("transcripts", type=Path, help="a transcript cache of bench.bench_realistic --transcripts")
    ap.add_argument("--out", default="asr-error-kinds", help="stem of the JSON/Markdown under bench/results/")
    args = ap.parse_args(argv)
    if not args.transcripts.is_file():
        print(f"{args.transcripts} not found: run bench.bench_realistic with --transcripts first")
        return 0
    rows = run(args.transcripts)
    pool = pooled(rows)
    md = markdown(pool, str(args.transcripts))
    write_results(args.out, {"source": str(args.transcripts), "rows": rows, "pooled": pool}, md, results=RESULTS)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
