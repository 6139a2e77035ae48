"""Score the shipped process coder on the held-out AnnoMI test transcripts, once (docs/process_codes.md).

    python -m bench.bench_codes [--out bench/results/codes.json] [--markdown bench/results/codes.md]

Reads the committed split, loads the shipped artefact (SHA-256 checked against its card) and scores the test
transcripts' gold text: macro-F1, kappa, per-class precision/recall, confusion matrices, subtypes, bootstrap
intervals over transcripts; the two baselines refitted on train/dev and scored on the same split; expert-expert
agreement on the multi-annotator utterances beside the coder's; MITI session summaries (ICC(2,1) against the
expert-derived values) and high vs low MI quality from the summaries (AUC). Needs ../shared/data/annomi.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import (
    cohen_kappa_score,
    confusion_matrix,
    f1_score,
    precision_recall_fscore_support,
    roc_auc_score,
)

from evaluation.codes.agreement import bootstrap_by_group, icc_2_1
from evaluation.codes.annomi import DEFAULT_ANNOMI, SPLIT_PATH, annotator_pairs, load_annomi
from evaluation.codes.cache import CachingEncoder
from evaluation.codes.select import BASELINE_A, BASELINE_B, task_items
from pipeline.codes.coder import CLIENT_CODES, SUBTYPES, THERAPIST_CODES, UtteranceCoder, load_coder
from pipeline.codes.context import contexts
from pipeline.codes.summary import SUMMARY_NAMES, CodeCount, miti_summary

LABELS = {"therapist": list(THERAPIST_CODES), "client": list(CLIENT_CODES)}


def _scores(gold, pred, groups, labels) -> dict:
    gold, pred = np.asarray(gold), np.asarray(pred)
    p, r, f, n = precision_recall_fscore_support(gold, pred, labels=labels, zero_division=0)

    def macro(idx):
        return f1_score(gold[idx], pred[idx], labels=labels, average="macro", zero_division=0)

    def kappa(idx):
        return cohen_kappa_score(gold[idx], pred[idx])

    return {
        "n": int(gold.size),
        "macro_f1": round(float(macro(np.arange(gold.size))), 4),
        "macro_f1_ci95": [round(v, 4) for v in bootstrap_by_group(groups, macro)],
        "kappa": round(float(kappa(np.arange(gold.size))), 4),
        "kappa_ci95": [round(v, 4) for v in bootstrap_by_group(groups, kappa)],
        "accuracy": round(float((gold == pred).mean()), 4),
        "per_class": {lab: {"precision": round(float(p[i]), 3), "recall": round(float(r[i]), 3),
                            "f1": round(float(f[i]), 3), "support": int(n[i])} for i, lab in enumerate(labels)},
        "confusion": {"labels": labels, "rows_gold_cols_pred": confusion_matrix(gold, pred, labels=labels).tolist()},
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--annomi", type=Path, default=DEFAULT_ANNOMI)
    parser.add_argument("--out", type=Path, default=Path("bench/results/codes.json"))
    parser.add_argument("--markdown", type=Path, default=Path("bench/results/codes.md"))
    parser.add_argument("--record-in-card", action="store_true",
                        help="write the held-out agreement into the shipped model card (done once, after scoring)")
    args = parser.parse_args(argv)
    if not (args.annomi / "AnnoMI-simple.csv").is_file():
        print(f"skipped: {args.annomi} not available (../shared is for development only)", file=sys.stderr)
        return 0
    split = json.loads(SPLIT_PATH.read_text())
    test_ids, train_ids = sorted(split["test"], key=int), sorted(split["train_dev_folds"], key=int)
    transcripts = load_annomi(args.annomi)
    encoder = CachingEncoder()
    coder = load_coder()
    started = time.perf_counter()
    result: dict = {"coder_version": coder.version, "artefact_sha256": coder.card["artefact_sha256"],
                    "split_sha256": coder.card["split"]["sha256"], "test_transcripts": len(test_ids)}

    # utterance level, gold text: the shipped coder, end to end through ProcessCoder.code
    coded = {t: coder.code(transcripts[t].coding_utterances(), encoder) for t in test_ids}
    t_code = time.perf_counter() - started
    for task in ("therapist", "client"):
        gold, pred, groups = [], [], []
        for t in test_ids:
            for u, c in zip(transcripts[t].utterances, coded[t], strict=True):
                if u.role == task:
                    gold.append(u.code)
                    pred.append(c.code)
                    groups.append(t)
        result[task] = {"coder": _scores(gold, pred, groups, LABELS[task])}
        items, labels, g = task_items(transcripts, train_ids, task)
        test_items, test_labels, test_groups = task_items(transcripts, test_ids, task)
        for name, options in (("baseline A: TF-IDF utterance + previous, LR", BASELINE_A),
                              ("baseline B: frozen MiniLM utterance + two previous, LR", BASELINE_B)):
            base = UtteranceCoder(options).fit(items, labels, encoder)
            result[task][name] = _scores(test_labels, base.predict(test_items, encoder), test_groups, LABELS[task])
    # subtypes: conditional on the gold main code, and end to end (gold code+subtype vs predicted code+subtype)
    subtypes = {}
    for code, labels in SUBTYPES.items():
        gold, cond, e2e_gold, e2e_pred, groups = [], [], [], [], []
        sub_coder = coder.subtypes[code]
        for t in test_ids:
            tr = transcripts[t]
            ctx = contexts(tr.coding_utterances())
            idx = [i for i, u in enumerate(tr.utterances) if u.code == code and u.subtype]
            if idx:
                cond += sub_coder.predict([ctx[i] for i in idx], encoder)
                gold += [tr.utterances[i].subtype for i in idx]
                groups += [t] * len(idx)
                e2e_gold += [tr.utterances[i].subtype for i in idx]
                e2e_pred += [coded[t][i].subtype if coded[t][i].code == code else "(other code)" for i in idx]
        subtypes[code] = {
            "conditional_on_gold_code": _scores(gold, cond, groups, list(labels)),
            "end_to_end_recall_of_gold_subtype": round(float(np.mean(np.array(e2e_gold) == np.array(e2e_pred))), 4),
        }
    result["subtypes"] = subtypes

    # experts against each other on the multi-annotator utterances, and the coder against each expert
    pairs = annotator_pairs(args.annomi)
    by_key = {(t, u.utterance): c for t in test_ids for u, c in zip(transcripts[t].utterances, coded[t], strict=True)}
    experts = {}
    for task in ("therapist", "client"):
        rows = [p for p in pairs if p[2] == task and (p[0], p[1]) in by_key]
        a = [p[3] for p in rows]
        b = [p[4] for p in rows]
        m = [by_key[(p[0], p[1])].code for p in rows]
        experts[task] = {
            "utterances": len(rows),
            "expert_vs_expert": {"kappa": round(cohen_kappa_score(a, b), 4),
                                 "macro_f1": round(f1_score(a, b, labels=LABELS[task], average="macro",
                                                            zero_division=0), 4),
                                 "agreement": round(float(np.mean(np.array(a) == np.array(b))), 4)},
            "coder_vs_first_expert": {"kappa": round(cohen_kappa_score(a, m), 4)},
            "coder_vs_second_expert": {"kappa": round(cohen_kappa_score(b, m), 4)},
        }
    result["experts"] = experts

    # session summaries: coder-derived vs expert-derived, per test transcript
    def summary_of(tr, codes):
        duration = max(u.start_s for u in tr.utterances) - min(u.start_s for u in tr.utterances)
        return miti_summary(codes, duration if duration > 0 else None)

    expert_s = {t: summary_of(transcripts[t], [CodeCount(u.code, u.subtype) for u in transcripts[t].utterances])
                for t in test_ids}
    coder_s = {t: summary_of(transcripts[t], [CodeCount(c.code, c.subtype) for c in coded[t]]) for t in test_ids}
    result["session_icc_2_1"] = {
        name: {"icc": round(icc_2_1([np.nan if expert_s[t][name] is None else expert_s[t][name] for t in test_ids],
                                    [np.nan if coder_s[t][name] is None else coder_s[t][name] for t in test_ids]),
                            4),
               "sessions": int(sum(expert_s[t][name] is not None and coder_s[t][name] is not None
                                   for t in test_ids))}
        for name in SUMMARY_NAMES}

    # high vs low MI quality from the five summaries (train on train/dev coder-derived summaries via the shipped
    # coder: it was fitted on them, so their summaries are optimistic; the test AUC is what counts)
    features = ("reflection_question_ratio", "complex_reflection_pct", "open_question_pct", "change_talk_share",
                "question_per_10min")

    def matrix(ids, summaries):
        x = np.array([[np.nan if summaries[t][f] is None else summaries[t][f] for f in features] for t in ids])
        return x

    train_s = {t: summary_of(transcripts[t], [CodeCount(c.code, c.subtype)
                                              for c in coder.code(transcripts[t].coding_utterances(), encoder)])
               for t in train_ids}
    x_train, x_test = matrix(train_ids, train_s), matrix(test_ids, coder_s)
    med = np.nanmedian(x_train, axis=0)
    x_train = np.where(np.isnan(x_train), med, x_train)
    x_test = np.where(np.isnan(x_test), med, x_test)
    mu, sd = x_train.mean(0), x_train.std(0) + 1e-9
    y_train = np.array([transcripts[t].quality == "high" for t in train_ids])
    y_test = np.array([transcripts[t].quality == "high" for t in test_ids])
    clf = LogisticRegression(class_weight="balanced", max_iter=1000).fit((x_train - mu) / sd, y_train)
    score = clf.predict_proba((x_test - mu) / sd)[:, 1]
    auc = roc_auc_score(y_test, score)
    rng = np.random.default_rng(20261207)
    boots = []
    for _ in range(1000):
        i = rng.integers(0, len(test_ids), len(test_ids))
        if y_test[i].all() or not y_test[i].any():
            continue
        boots.append(roc_auc_score(y_test[i], score[i]))
    result["quality_auc"] = {"auc": round(float(auc), 4), "ci95": [round(float(v), 4) for v in
                                                                   np.percentile(boots, [2.5, 97.5])],
                             "test_high": int(y_test.sum()), "test_low": int((~y_test).sum()),
                             "features": list(features)}
    result["seconds"] = {"coding_test_transcripts": round(t_code, 1),
                         "total": round(time.perf_counter() - started, 1)}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    if args.record_in_card:
        record_in_card(result)
    md = markdown(result)
    args.markdown.write_text(md)
    print(md)
    return 0


def record_in_card(r: dict) -> None:
    """Put the held-out agreement (the accuracy the product shows beside the codes) into the model card."""
    from pipeline.codes.coder import ARTEFACT_DIR, CARD_NAME, read_card

    card = read_card()
    if card["artefact_sha256"] != r["artefact_sha256"]:
        raise SystemExit("the card describes another artefact: not recorded")
    card["test_agreement"] = {
        "therapist_macro_f1": r["therapist"]["coder"]["macro_f1"], "therapist_kappa": r["therapist"]["coder"]["kappa"],
        "client_macro_f1": r["client"]["coder"]["macro_f1"], "client_kappa": r["client"]["coder"]["kappa"],
        "expert_vs_expert_therapist_kappa": r["experts"]["therapist"]["expert_vs_expert"]["kappa"],
        "expert_vs_expert_client_kappa": r["experts"]["client"]["expert_vs_expert"]["kappa"],
        "session_icc_2_1": {k: v["icc"] for k, v in r["session_icc_2_1"].items()},
        "source": "python -m bench.bench_codes (held-out AnnoMI test transcripts, gold text; docs/process_codes.md)",
    }
    (ARTEFACT_DIR / CARD_NAME).write_text(json.dumps(card, indent=1, sort_keys=True) + "\n", encoding="utf-8")


def markdown(r: dict) -> str:
    lines = [f"Coder {r['coder_version']} (artefact sha256 {r['artefact_sha256'][:12]}), "
             f"{r['test_transcripts']} held-out test transcripts, gold text.", "",
             "| task | model | macro-F1 [95 % CI] | kappa [95 % CI] | accuracy | n |", "|---|---|---|---|---:|---:|"]
    for task in ("therapist", "client"):
        for name, s in r[task].items():
            lines.append(f"| {task} | {name} | {s['macro_f1']:.3f} [{s['macro_f1_ci95'][0]:.3f}, "
                         f"{s['macro_f1_ci95'][1]:.3f}] | {s['kappa']:.3f} [{s['kappa_ci95'][0]:.3f}, "
                         f"{s['kappa_ci95'][1]:.3f}] | {s['accuracy']:.3f} | {s['n']} |")
    lines += ["", "| task | class | precision | recall | F1 | support |", "|---|---|---:|---:|---:|---:|"]
    for task in ("therapist", "client"):
        for lab, v in r[task]["coder"]["per_class"].items():
            lines.append(f"| {task} | {lab} | {v['precision']:.3f} | {v['recall']:.3f} | {v['f1']:.3f} | "
                         f"{v['support']} |")
    for task in ("therapist", "client"):
        c = r[task]["coder"]["confusion"]
        lines += ["", f"Confusion ({task}; rows gold, columns coder): " + ", ".join(c["labels"])]
        lines += ["    " + " ".join(f"{v:5d}" for v in row) for row in c["rows_gold_cols_pred"]]
    lines += ["", "| subtype family | macro-F1 given the gold code | kappa | end-to-end recall |",
              "|---|---:|---:|---:|"]
    for code, s in r["subtypes"].items():
        c = s["conditional_on_gold_code"]
        lines.append(f"| {code} | {c['macro_f1']:.3f} | {c['kappa']:.3f} | "
                     f"{s['end_to_end_recall_of_gold_subtype']:.3f} |")
    lines += ["", "| task | multi-annotator utterances | expert vs expert kappa | coder vs expert 1 | "
              "coder vs expert 2 |", "|---|---:|---:|---:|---:|"]
    for task, e in r["experts"].items():
        lines.append(f"| {task} | {e['utterances']} | {e['expert_vs_expert']['kappa']:.3f} | "
                     f"{e['coder_vs_first_expert']['kappa']:.3f} | {e['coder_vs_second_expert']['kappa']:.3f} |")
    lines += ["", "| session summary | ICC(2,1) coder vs experts | sessions |", "|---|---:|---:|"]
    for name, v in r["session_icc_2_1"].items():
        lines.append(f"| {name} | {v['icc']:.3f} | {v['sessions']} |")
    q = r["quality_auc"]
    lines += ["", f"High vs low MI quality from the coder's summaries: AUC {q['auc']:.3f} "
              f"[{q['ci95'][0]:.3f}, {q['ci95'][1]:.3f}] ({q['test_high']} high, {q['test_low']} low "
              "test transcripts)."]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
