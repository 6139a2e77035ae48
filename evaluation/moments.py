"""Candidate moments for labelling: rupture/avoidance candidates and therapist alliance work, from AnnoMI.

``python -m evaluation.moments`` writes, under ``evaluation/data/``:

- ``moments_rupture.jsonl``: every client turn the text markers flag (rupture candidates, deflections,
  minimal responses, topic shifts) plus a fixed random sample of unflagged client replies to therapist
  questions (so recall can be estimated), each with its context (three turns before, three after);
- ``moments_alliance.jsonl``: therapist turns flagged as alliance work (process talk, agenda setting,
  summaries, self-disclosure, a sample of collaborative "we") plus a sample of unflagged therapist turns;
- ``moments_detections.jsonl``: what each detector said about each moment, kept apart so the labellers
  are blind to it.

The split (``dev`` to tune rules, ``held_out`` to report) is fixed here by transcript, before any label
exists: a transcript is held out when SHA-256 of its id, as an integer, is divisible by 3.
"""

from __future__ import annotations

import argparse
import bisect
import hashlib
import json
import random
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CSV = ROOT.parent / "shared" / "data" / "annomi" / "AnnoMI-simple.csv"
OUT = ROOT / "evaluation" / "data"

RUPTURE_KINDS = ("rupture_candidate", "deflection", "minimal_response", "topic_shift")
ALLIANCE_KINDS = ("process_talk", "agenda_setting", "session_summary", "self_disclosure", "collaborative_we")
SEED = 20261130


def split_of(transcript_id: str) -> str:
    """``held_out`` for about a third of the transcripts (by hash of the id), else ``dev``."""
    return "held_out" if int(hashlib.sha256(transcript_id.encode()).hexdigest(), 16) % 3 == 0 else "dev"


def _context(utts, k: int, before: int = 3, after: int = 3) -> dict:
    def turn(i: int) -> dict:
        return {"role": utts[i].role, "text": utts[i].text}

    return {"before": [turn(i) for i in range(max(0, k - before), k)], "target": turn(k),
            "after": [turn(i) for i in range(k + 1, min(len(utts), k + 1 + after))]}


def _measure_all(csv_path: Path):
    from pipeline.analysis.text_only import measure_transcript, place_words, read_annomi
    from pipeline.engine.runtime import get_nlp

    nlp = get_nlp()
    for tr in read_annomi(csv_path):
        session = measure_transcript(tr.utterances, session_id=f"annomi-{tr.transcript_id}", nlp=nlp)
        _, _, spans = place_words(tr.utterances)
        starts = [s.start_s for s in spans]
        yield tr, session, starts


def collect(csv_path: Path, *, n_unflagged_client: int = 80, n_collab_we: int = 60,
            n_unflagged_therapist: int = 40) -> dict[str, list[dict]]:
    """The three record lists (see the module docstring)."""
    rng = random.Random(SEED)
    rupture, alliance, detections = [], [], []
    unflagged_client, unflagged_therapist, collab = [], [], []
    for tr, session, starts in _measure_all(csv_path):
        utts = tr.utterances
        flagged: dict[int, list[dict]] = {}
        for m in session.measures.markers:
            if m.kind not in RUPTURE_KINDS + ALLIANCE_KINDS:
                continue
            k = bisect.bisect_right(starts, m.start_s + 1e-6) - 1
            detail = json.loads(m.detail) if m.detail else {}
            flagged.setdefault(k, []).append({"kind": m.kind, "type": detail.get("type"),
                                              "marker": detail.get("marker")})
        for k, u in enumerate(utts):
            kinds = {d["kind"] for d in flagged.get(k, [])}
            base = {"transcript_id": tr.transcript_id, "utterance_index": k, "split": split_of(tr.transcript_id)}
            after_question = k > 0 and utts[k - 1].role == "therapist" and "?" in utts[k - 1].text
            if u.role == "client" and kinds & set(RUPTURE_KINDS):
                rupture.append({**base, **_context(utts, k)})
                detections.append({**base, "set": "rupture", "detections": flagged[k]})
            elif u.role == "client" and after_question:
                unflagged_client.append({**base, **_context(utts, k)})
            if u.role == "therapist" and kinds & {"process_talk", "agenda_setting", "session_summary",
                                                  "self_disclosure"}:
                alliance.append({**base, **_context(utts, k, before=2, after=1)})
                detections.append({**base, "set": "alliance", "detections": flagged[k]})
            elif u.role == "therapist" and "collaborative_we" in kinds:
                collab.append(({**base, **_context(utts, k, before=2, after=1)},
                               {**base, "set": "alliance", "detections": flagged[k]}))
            elif u.role == "therapist" and not kinds:
                unflagged_therapist.append({**base, **_context(utts, k, before=2, after=1)})
    for rec in rng.sample(unflagged_client, min(n_unflagged_client, len(unflagged_client))):
        rupture.append(rec)
        detections.append({k: rec[k] for k in ("transcript_id", "utterance_index", "split")}
                          | {"set": "rupture", "detections": []})
    for rec, det in rng.sample(collab, min(n_collab_we, len(collab))):
        alliance.append(rec)
        detections.append(det)
    for rec in rng.sample(unflagged_therapist, min(n_unflagged_therapist, len(unflagged_therapist))):
        alliance.append(rec)
        detections.append({k: rec[k] for k in ("transcript_id", "utterance_index", "split")}
                          | {"set": "alliance", "detections": []})
    # labellers see moments in a shuffled order with opaque ids
    for name, records in (("rupture", rupture), ("alliance", alliance)):
        rng.shuffle(records)
        for i, rec in enumerate(records):
            rec["moment_id"] = f"{name[0]}{i:04d}"
    ids = {(r["transcript_id"], r["utterance_index"], s): r["moment_id"]
           for s, recs in (("rupture", rupture), ("alliance", alliance)) for r in recs}
    for d in detections:
        d["moment_id"] = ids[(d["transcript_id"], d["utterance_index"], d["set"])]
    return {"moments_rupture": rupture, "moments_alliance": alliance, "moments_detections": detections}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--csv", type=Path, default=DEFAULT_CSV)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    if not args.csv.is_file():
        print(f"AnnoMI not found at {args.csv}: nothing written")
        return 0
    args.out.mkdir(parents=True, exist_ok=True)
    for name, records in collect(args.csv).items():
        with (args.out / f"{name}.jsonl").open("w", encoding="utf-8") as fh:
            for rec in records:
                fh.write(json.dumps(rec, ensure_ascii=False) + "\n")
        print(f"{name}: {len(records)} records")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
