"""``alliance code``: MI process codes and MITI summaries for a transcript file (no audio, no database).

The coder is the one ``alliance process`` uses (``pipeline/codes``); its agreement with expert coders on
held-out AnnoMI transcripts is printed beside the results (docs/process_codes.md).
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import sys
from pathlib import Path

from pipeline.analysis.transcript_readers import FORMATS
from pipeline.cli import output

COLUMNS = ("conversation", "index", "role", "start_s", "end_s", "text", "code", "code_probability", "subtype",
           "subtype_probability", "coder_version")


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``code`` subcommand."""
    p = subparsers.add_parser(
        "code", help="code a transcript file with MI behaviour codes (no audio needed)",
        description="Code every utterance of a transcript with the therapist's main behaviour (question, "
        "reflection, therapist input, other, with subtypes) or the client's talk type (change, neutral, sustain), "
        "and print the MITI 4.2.1 session summaries against their published thresholds. Input: CSV or JSON rows "
        "with a role (or speaker) and text, AnnoMI CSV (every transcript in it), WhisperX JSON, ELAN EAF or Praat "
        "TextGrid. Codes are process signals for supervision and research, not verdicts; the coder's agreement "
        "with experts is printed beside them.")
    p.add_argument("transcript", type=Path, metavar="TRANSCRIPT", help="the transcript file")
    p.add_argument("--format", choices=FORMATS, default="auto", dest="transcript_format",
                   help="input format (default: from the extension and contents)")
    p.add_argument("--therapist-speaker", metavar="LABEL",
                   help="which speaker label is the therapist (first, second or a label such as SPEAKER_00); "
                   "default: the labels when they are roles, else the pipeline's role rule")
    p.add_argument("--out", type=Path, metavar="CSV", help="write one row per coded utterance (owner-only)")
    p.add_argument("--json", action="store_true", help="print one JSON object per conversation instead of text")
    p.set_defaults(handler=_cmd_code)


def _cmd_code(args: argparse.Namespace) -> int:
    from pipeline.analysis.transcript_readers import read_for_coding
    from pipeline.codes.apply import code_transcript
    from pipeline.codes.context import CodingUtterance
    from pipeline.engine.runtime import get_process_coder

    conversations = read_for_coding(args.transcript, fmt=args.transcript_format,
                                    therapist_speaker=args.therapist_speaker)
    coder, encoder = get_process_coder()
    results = [code_transcript(c.name, [CodingUtterance(u.role, u.text, u.start_s, u.end_s) for u in c.utterances],
                               coder, encoder) for c in conversations]
    if args.out is not None:
        _write_csv(args.out, results)
    agreement = coder.card.get("test_agreement", {})
    # a file named after a client never reaches the terminal: a conversation named after its file (every
    # format but AnnoMI's, whose conversations are its transcript ids) is printed as "the transcript"
    neutral = {name: "the transcript" for name in output.file_spellings(args.transcript)}
    for conv, result in zip(conversations, results, strict=True):
        shown = output.without_names(result.name, neutral) or ""
        if args.json:
            print(json.dumps(_as_json(conv, result, agreement, shown), sort_keys=True))
        else:
            _print_text(conv, result, agreement, shown)
    if args.out is not None and not args.json:
        print(f"codes: {args.out}")
    return 0


def _as_json(conv, result, agreement: dict, shown: str) -> dict:
    from collections import Counter

    return {
        "conversation": shown,
        "coder_version": result.coder_version,
        "roles": {"method": conv.role_method, "confidence": round(conv.role_confidence, 3)},
        "utterances": len(result.codes),
        "codes": dict(Counter(f"{c.code}/{c.subtype}" if c.subtype else c.code for c in result.codes)),
        "summary": {k: (None if v is None else round(v, 4)) for k, v in result.summary.items()},
        "agreement_with_experts": agreement,
    }


def _print_text(conv, result, agreement: dict, shown: str) -> None:
    from pipeline.codes.summary import THRESHOLDS, against_threshold

    print(f"{shown}: {len(result.codes)} utterances coded (coder {result.coder_version}; roles "
          f"{conv.role_method}, confidence {conv.role_confidence:.2f})")
    for key, value in result.summary.items():
        if value is None:
            shown = "not measured" + (" (needs times)" if key.endswith("per_10min") else " (no such codes)")
        else:
            shown = f"{value:.2f}"
        t = THRESHOLDS.get(key)
        ref = f"   [{against_threshold(key, value)}; fair {t.fair:g}, good {t.good:g}: {t.source}]" \
            if t and value is not None else ""
        print(f"  {key:<28} {shown}{ref}")
    if agreement:
        print("  agreement with experts on held-out AnnoMI transcripts (gold text): "
              + "; ".join(f"{k} {v}" for k, v in sorted(agreement.items())))
    print("  Process signals for supervision and research, not verdicts on the therapist or the client.")


def _write_csv(path: Path, results) -> None:
    from pipeline.csv_safety import csv_safe_row
    from pipeline.private_files import write_private

    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(csv_safe_row(list(COLUMNS)))
    for r in results:
        for c in r.codes:
            u = r.utterances[c.index]
            w.writerow(csv_safe_row([r.name, c.index, c.role, u.start_s, u.end_s, u.text, c.code,
                                     round(c.probability, 4), c.subtype, None if c.subtype_probability is None
                                     else round(c.subtype_probability, 4), r.coder_version]))
    write_private(path, buf.getvalue().encode("utf-8"))


if __name__ == "__main__":  # pragma: no cover
    sys.exit("run it as `alliance code`")
