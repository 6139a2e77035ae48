"""Process codes from audio: renders of held-out test transcripts through the product, coded and scored.

    python -m bench.bench_codes_audio [--conditions clean room-near room-far phone-amr] [--sessions 8]
        [--target-s 150] [--out bench/results/codes_audio.json] [--markdown bench/results/codes_audio.md]

Each test transcript (docs/process_codes.md, split) is spoken by two flite voices and recorded in each
condition of the realistic bench (``bench.bench_realistic.render_condition``, cut at about ``--target-s``), then
run through the product's own ``compute_session`` (transcription, diarization, attribution, roles, coding).
Utterance level: each expert utterance's time span takes the recognised words inside it (by word midpoint),
with the role the product gave most of them; the shipped coder codes that sequence and the code is scored
against the expert code. Session level: the MITI summaries of the product's own coded turns against the
expert-derived summaries of the rendered part, ICC(2,1) per condition. Needs ../shared/data/annomi and flite.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np
from sklearn.metrics import cohen_kappa_score, f1_score

from evaluation.codes.agreement import icc_2_1
from evaluation.codes.annomi import DEFAULT_ANNOMI, SPLIT_PATH, load_annomi
from evaluation.synthetic import read_truth
from pipeline.codes.coder import CLIENT_CODES, THERAPIST_CODES
from pipeline.codes.context import CodingUtterance
from pipeline.codes.summary import SUMMARY_NAMES, CodeCount, miti_summary

VOICE_PAIRS = (("awb", "slt"), ("slt", "rms"), ("rms", "awb"), ("kal16", "slt"))


def _norm(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "", text.lower())


def gold_for_truth(truth_utterances, gold_utterances):
    """Match each rendered line to its AnnoMI utterance in order (the renderer drops lines without words).

    Lines the timeline added (backchannels) match no utterance within the next four and get None.
    """
    out, j = [], 0
    for tu in truth_utterances:
        key = _norm(tu.text)
        k = j
        while k < min(len(gold_utterances), j + 4) and not (key and key in _norm(gold_utterances[k].text)):
            k += 1  # a few lines may have been dropped; a backchannel the timeline added matches none
        if k >= min(len(gold_utterances), j + 4):
            out.append(None)
            continue
        out.append(gold_utterances[k])
        j = k + 1
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--conditions", nargs="+", default=["clean", "room-near", "room-far", "phone-amr"])
    parser.add_argument("--sessions", type=int, default=8, help="first N test transcripts (by id)")
    parser.add_argument("--target-s", type=float, default=150.0)
    parser.add_argument("--annomi", type=Path, default=DEFAULT_ANNOMI)
    parser.add_argument("--out", type=Path, default=Path("bench/results/codes_audio.json"))
    parser.add_argument("--markdown", type=Path, default=Path("bench/results/codes_audio.md"))
    args = parser.parse_args(argv)
    if not (args.annomi / "AnnoMI-simple.csv").is_file():
        print(f"skipped: {args.annomi} not available", file=sys.stderr)
        return 0
    from bench.bench_realistic import CONDITION_BY_NAME, SessionSpec, render_condition
    from pipeline.analysis.session import SessionMeta
    from pipeline.engine.runtime import PipelineOptions, get_process_coder
    from pipeline.engine.sequence import compute_session
    from pipeline.privacy.consent import parse_consent

    split = json.loads(SPLIT_PATH.read_text())
    transcripts = load_annomi(args.annomi)
    test_ids = sorted(split["test"], key=int)[: args.sessions]
    coder, encoder = get_process_coder()
    options = PipelineOptions()
    rows, utterance_rows = [], []
    for k, tid in enumerate(test_ids):
        tv, cv = VOICE_PAIRS[k % len(VOICE_PAIRS)]
        spec = SessionSpec(tid, tv, cv, target_s=args.target_s)
        gold_utts = [u for u in transcripts[tid].utterances]
        for cond_name in args.conditions:
            audio, truth_json, _ = render_condition(spec, CONDITION_BY_NAME[cond_name])
            truth = read_truth(truth_json)
            gold = gold_for_truth(truth.utterances, gold_utts)
            meta = SessionMeta(f"codes-{tid}-{cond_name}", "bench-client", "bench-therapist")
            consent = parse_consent({"session_id": meta.session_id, "client_id": meta.client_id, "scope": "research",
                                     "consented_on": "2026-01-01", "consented_by": ["client", "therapist"]},
                                    source="bench")
            t0 = time.perf_counter()
            computed = compute_session(audio, meta, consent, options=options)
            wall = time.perf_counter() - t0
            a = computed.analysis
            if a is None or a.codes is None:
                rows.append({"transcript": tid, "condition": cond_name, "error": str(computed.outcome)})
                continue
            # utterance level: recognised words inside each expert utterance's span
            role_of = a.roles.role_of
            seq, keep = [], []
            for tu, g in zip(truth.utterances, gold, strict=True):
                ws = [w for w in a.words if tu.start_s <= (w.start_s + w.end_s) / 2 <= tu.end_s]
                roles = Counter(role_of(w.speaker) for w in ws if role_of(w.speaker))
                if not ws or not roles or g is None:
                    continue
                seq.append(CodingUtterance(roles.most_common(1)[0][0], " ".join(w.text for w in ws),
                                           tu.start_s, tu.end_s))
                keep.append((g, tu))
            codes = coder.code(seq, encoder)
            for c, (g, _) in zip(codes, keep, strict=True):
                utterance_rows.append({"transcript": tid, "condition": cond_name, "gold_role": g.role,
                                       "role": c.role, "gold": g.code, "code": c.code})
            rendered = [g for g in gold if g is not None]
            expert = miti_summary([CodeCount(g.code, g.subtype) for g in rendered], truth.duration_s)
            product = miti_summary([CodeCount(t.code.code, t.code.subtype) for t in a.codes.turns], a.duration_s)
            rows.append({"transcript": tid, "condition": cond_name, "audio_s": round(a.duration_s, 1),
                         "wall_s": round(wall, 1), "expert": expert, "product": product,
                         "lines": len(truth.utterances), "coded_turns": len(a.codes.turns)})
            print(f"{tid} {cond_name}: {len(a.codes.turns)} coded turns, {wall:.0f} s", file=sys.stderr, flush=True)
    result = {"conditions": args.conditions, "test_transcripts": test_ids, "target_s": args.target_s,
              "coder_version": coder.version, "per_condition": {}}
    for cond_name in args.conditions:
        ur = [r for r in utterance_rows if r["condition"] == cond_name]
        sr = [r for r in rows if r["condition"] == cond_name and "error" not in r]
        entry: dict = {"sessions": len(sr), "errors": [r for r in rows if r["condition"] == cond_name and "error" in r]}
        for task, labels in (("therapist", THERAPIST_CODES), ("client", CLIENT_CODES)):
            pairs = [(r["gold"], r["code"] if r["role"] == task else "(wrong role)") for r in ur
                     if r["gold_role"] == task]
            if pairs:
                g, p = zip(*pairs, strict=True)
                entry[task] = {"n": len(pairs), "macro_f1": round(f1_score(g, p, labels=list(labels), average="macro",
                                                                           zero_division=0), 4),
                               "kappa": round(cohen_kappa_score(g, p), 4)}
        entry["session_icc_2_1"] = {
            name: round(icc_2_1([np.nan if r["expert"][name] is None else r["expert"][name] for r in sr],
                                [np.nan if r["product"][name] is None else r["product"][name] for r in sr]), 4)
            for name in SUMMARY_NAMES}
        result["per_condition"][cond_name] = entry
    result["rows"] = rows
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1, default=str) + "\n")
    lines = [f"{len(test_ids)} test transcripts, about {args.target_s:.0f} s each, coder {coder.version}", "",
             "| condition | therapist macro-F1 | kappa | client macro-F1 | kappa | ICC R:Q | ICC %CR | ICC CT share |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for cond_name, e in result["per_condition"].items():
        t, c, icc = e.get("therapist", {}), e.get("client", {}), e["session_icc_2_1"]
        lines.append(f"| {cond_name} | {t.get('macro_f1', float('nan')):.3f} | {t.get('kappa', float('nan')):.3f} | "
                     f"{c.get('macro_f1', float('nan')):.3f} | {c.get('kappa', float('nan')):.3f} | "
                     f"{icc['reflection_question_ratio']:.3f} | {icc['complex_reflection_pct']:.3f} | "
                     f"{icc['change_talk_share']:.3f} |")
    md = "\n".join(lines) + "\n"
    args.markdown.write_text(md)
    print(md)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
