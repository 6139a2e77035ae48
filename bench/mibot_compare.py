"""Worked example on real data: MIBot transcripts and self-report -> indicators -> comparison table.

MIBot (../shared/data/mibot, CC BY-SA 4.0): 106 typed conversations between smokers and a GPT-4o
motivational-interviewing chatbot, with per-participant readiness rulers (before, after, a week later)
and the 10-item CARE empathy scale. There is no text-only path in the product yet, so this script loads
each transcript directly as a session (one client per participant; the bot is the "therapist"; no audio,
so every time is 0 and only text indicators exist), computes the text indicators available now (word
count, word share, "we" count and rate per role, with the product's lexicon), writes the self-report as
a long CSV, and then runs the *product's* commands on it:

    alliance import-self-report SELF_REPORT.csv --instrument-config bench/mibot_instruments.toml --db DB
    alliance compare --level between --indicator ... --db DB

    .venv/bin/python bench/mibot_compare.py [--db /tmp/mibot.duckdb] [--work-dir /tmp/mibot]

Exits 0 with a message when ../shared is absent.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import shlex
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
MIBOT = ROOT.parent / "shared" / "data" / "mibot"
INSTRUMENTS = ROOT / "bench" / "mibot_instruments.toml"
ROLE = {"counsellor": "therapist", "client": "client"}
TIMEPOINTS = {"Pre": "pre", "Post": "post", "WeekLater": "week_later"}
INDICATORS = ("we_rate:client", "we_rate:therapist", "word_count:client", "word_share:client")


def session_id(participant: str) -> str:
    return f"mibot-{participant[:12]}"


def load_transcripts(con, folder: Path, *, run_id: str) -> int:
    """Write sessions, turns, words and text indicators; return the number of sessions."""
    import pandas as pd

    from pipeline import PIPELINE_VERSION
    from pipeline.indicators import MARKERS_VERSION
    from pipeline.markers.we_language import find_we_tokens
    from pipeline.self_report.importer import insert_frame
    from pipeline.storage.db import transaction
    from pipeline.types import AttributedWord

    sessions, turns, words, indicators = [], [], [], []
    for path in sorted(folder.glob("*.json")):
        raw = path.read_bytes()
        doc = json.loads(raw)
        pid = doc["participant_id"]
        sid = session_id(pid)
        sessions.append(dict(session_id=sid, client_id=f"p-{pid[:12]}", therapist_id="mibot-v6.3a", recorded_on=None,
                             audio_sha256=hashlib.sha256(raw).hexdigest(), duration_s=0.0, language="en",
                             pipeline_version=PIPELINE_VERSION, run_id=run_id, role_method="given (typed chat)",
                             role_confidence=1.0, therapist_label="counsellor", client_label="client",
                             markers_version=MARKERS_VERSION, source_format="text:mibot-json"))
        by_role: dict[str, list[AttributedWord]] = {"therapist": [], "client": []}
        volley, turn, n_turns = None, None, 0
        for u in doc["utterances"]:
            role = ROLE[u["speaker"]]
            tokens = u["text"].split()
            if u["volley_number"] != volley:
                volley = u["volley_number"]
                turn = dict(session_id=sid, turn_index=n_turns,
                            speaker_label=u["speaker"], speaker_role=role, start_s=0.0, end_s=0.0, text="",
                            word_count=0, run_id=run_id)
                turns.append(turn)
                n_turns += 1
            turn["text"] = (turn["text"] + " " + u["text"]).strip()
            turn["word_count"] += len(tokens)
            for tok in tokens:
                by_role[role].append(AttributedWord(0.0, 0.0, tok, 1.0, u["speaker"]))
                words.append(dict(session_id=sid, word_index=0, speaker_label=u["speaker"],
                                  speaker_role=role, start_s=0.0, end_s=0.0, text=tok, probability=None, run_id=run_id))
        total = sum(len(v) for v in by_role.values())
        for role, ws in by_role.items():
            n_we = len(find_we_tokens(ws))
            indicators += [
                dict(session_id=sid, name="word_count", speaker_role=role, value=float(len(ws)), unit="words"),
                dict(session_id=sid, name="word_share", speaker_role=role, value=len(ws) / total if total else None,
                     unit="ratio"),
                dict(session_id=sid, name="we_count", speaker_role=role, value=float(n_we), unit="count"),
                dict(session_id=sid, name="we_rate", speaker_role=role, value=100.0 * n_we / len(ws) if ws else None,
                     unit="per 100 words"),
            ]
    frames = {
        "sessions": pd.DataFrame(sessions).assign(processed_at=pd.Timestamp.now(tz="UTC")),
        "turns": pd.DataFrame(turns),
        "words": pd.DataFrame(words),
        "indicators": pd.DataFrame(indicators).assign(run_id=run_id),
    }
    frames["words"]["word_index"] = frames["words"].groupby("session_id").cumcount()
    with transaction(con):
        for table in ("indicators", "words", "turns", "sessions"):
            con.execute(f"DELETE FROM {table} WHERE session_id LIKE 'mibot-%'")
        for table, frame in frames.items():
            insert_frame(con, table, frame)
    return len(sessions)


def write_self_report(data_csv: Path, out: Path) -> int:
    """data.csv (one row per participant) -> long CSV: session_id, timepoint, instrument, item, value."""
    n = 0
    with open(data_csv, newline="", encoding="utf-8") as f, open(out, "w", newline="", encoding="utf-8") as g:
        w = csv.writer(g)
        w.writerow(["session_id", "timepoint", "instrument", "item", "value"])
        for row in csv.DictReader(f):
            sid = session_id(row["ParticipantID"])
            for prefix, tp in TIMEPOINTS.items():
                for item in ("Importance", "Confidence", "Readiness"):
                    w.writerow([sid, tp, "readiness_rulers", item.lower(), row[f"{prefix}Ruler{item}"]])
                    n += 1
            for k in range(1, 11):
                w.writerow([sid, "post", "care", f"q{k}", row[f"CAREQ{k}"]])
                n += 1
    return n


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--db", type=Path, default=None, help="database to (re)create (default: a temporary one)")
    ap.add_argument("--work-dir", type=Path, default=None, help="where the self-report CSV goes (default: temp)")
    args = ap.parse_args(argv)
    if not (MIBOT / "data.csv").is_file():
        print(f"{MIBOT} not available (../shared is for development only): nothing to do")
        return 0
    from pipeline import cli
    from pipeline.storage import db

    work = args.work_dir or Path(tempfile.mkdtemp(prefix="mibot-"))
    work.mkdir(parents=True, exist_ok=True)
    db_path = args.db or work / "mibot.duckdb"
    if db_path.exists():
        db_path.unlink()
    con = db.connect(db_path)
    run_id = db.new_run_id()
    db.start_run(con, run_id=run_id, pipeline_version="bench", models={}, command="bench/mibot_compare.py")
    n = load_transcripts(con, MIBOT / "transcripts", run_id=run_id)
    db.finish_run(con, run_id=run_id, status="finished")
    con.close()
    sr = work / "mibot_self_report.csv"
    n_values = write_self_report(MIBOT / "data.csv", sr)
    print(f"loaded {n} MIBot transcripts as sessions; wrote {n_values} self-report values to {sr}\n")
    commands = [
        ["import-self-report", str(sr), "--instrument-config", str(INSTRUMENTS.relative_to(ROOT)), "--db",
         str(db_path)],
        ["compare", "--level", "between", *[a for i in INDICATORS for a in ("--indicator", i)], "--db", str(db_path)],
    ]
    for c in commands:
        print("$ alliance " + shlex.join(c))
        rc = cli.main(c)
        print()
        if rc not in (0, 1):
            return rc
    return 0


if __name__ == "__main__":
    sys.exit(main())
