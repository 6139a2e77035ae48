"""Worked example on real data: MIBot transcripts and self-report -> text-only path -> comparison table.

MIBot (../shared/data/mibot, CC BY-SA 4.0): 106 typed conversations between smokers and a GPT-4o
motivational-interviewing chatbot, with per-participant readiness rulers (before, after, a week later)
and the 10-item CARE empathy scale. Each conversation goes through the product's text-only path
(:func:`pipeline.analysis.text_only.measure_transcript` with the spaCy model of
:func:`pipeline.engine.runtime.get_nlp`; one client per participant, the bot is the "therapist", each run
of messages by one speaker is one utterance,
times are synthetic so the time-based indicators are left out); its words, turns, speaker turns, markers and
indicators are stored with the columns ``alliance process`` writes. The self-report goes to a long CSV, and
then the *product's* commands run on it:

    alliance import-self-report SELF_REPORT.csv --instrument-config bench/mibot_instruments.toml --db DB
    alliance compare --level between --indicator ... --include-contradicted --db DB

    .venv/bin/python -m bench.mibot_compare [--db /tmp/mibot.duckdb] [--work-dir /tmp/mibot]

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
MIBOT = ROOT.parent / "shared" / "data" / "mibot"
INSTRUMENTS = ROOT / "bench" / "mibot_instruments.toml"
ROLE = {"counsellor": "therapist", "client": "client"}
TIMEPOINTS = {"Pre": "pre", "Post": "post", "WeekLater": "week_later"}
#: Compared indicators (names as stored by the text-only path). Left out: backchannel rates (2 of 106 chats
#: have any: typed chat has no "mm-hm"), talk_time_share (time-based, dropped with synthetic times) and
#: self-disclosure (the bot never discloses).
INDICATORS = (
    "we_rate:therapist", "collaborative_we_rate:therapist", "question_rate:therapist",
    "open_question_share:therapist", "alliance_work_rate:therapist",
    "we_rate:client", "word_count:client", "minimal_response_rate:client", "deflection_rate:client",
    "rupture_candidate_rate:client",
)


def session_id(participant: str) -> str:
    return f"mibot-{participant[:12]}"


def read_mibot(doc: dict) -> tuple:
    """A MIBot transcript as text-only utterances: one per run of messages by the same speaker (a volley)."""
    from pipeline.analysis.text_only import utterances_from_rows

    rows: list[dict[str, str]] = []
    for u in doc["utterances"]:
        if rows and rows[-1]["role"] == u["speaker"]:
            rows[-1]["text"] += " " + u["text"]
        else:
            rows.append({"role": u["speaker"], "text": u["text"]})
    return utterances_from_rows(rows)


def session_frames(ts, run_id: str) -> dict:
    """The rows of one measured transcript, with the columns ``pipeline.storage.db.write_session`` writes."""
    import pandas as pd

    sid, role = ts.session_id, ts.roles.role_of
    return {
        "words": pd.DataFrame({
            "session_id": sid, "word_index": range(len(ts.words)), "speaker_label": [w.speaker for w in ts.words],
            "speaker_role": [role(w.speaker) for w in ts.words], "start_s": [w.start_s for w in ts.words],
            "end_s": [w.end_s for w in ts.words], "text": [w.text for w in ts.words], "probability": None,
            "run_id": run_id}),
        "turns": pd.DataFrame({
            "session_id": sid, "turn_index": [t.index for t in ts.turns],
            "speaker_label": [t.speaker for t in ts.turns], "speaker_role": [role(t.speaker) for t in ts.turns],
            "start_s": [t.start_s for t in ts.turns], "end_s": [t.end_s for t in ts.turns],
            "text": [t.text for t in ts.turns], "word_count": [t.word_count for t in ts.turns], "run_id": run_id}),
        "speaker_turns": pd.DataFrame({
            "session_id": sid, "speaker_label": [t.speaker for t in ts.diarization.turns],
            "speaker_role": [role(t.speaker) for t in ts.diarization.turns],
            "start_s": [t.start_s for t in ts.diarization.turns], "end_s": [t.end_s for t in ts.diarization.turns],
            "run_id": run_id}),
        "markers": pd.DataFrame({
            "session_id": sid, "kind": [m.kind for m in ts.measures.markers],
            "speaker_role": [m.speaker_role for m in ts.measures.markers],
            "start_s": [m.start_s for m in ts.measures.markers], "end_s": [m.end_s for m in ts.measures.markers],
            "value": [m.value for m in ts.measures.markers], "detail": [m.detail for m in ts.measures.markers],
            "run_id": run_id}),
        "indicators": pd.DataFrame({
            "session_id": sid, "name": [i.name for i in ts.measures.indicators],
            "speaker_role": [i.speaker_role for i in ts.measures.indicators],
            "value": [i.value for i in ts.measures.indicators], "unit": [i.unit for i in ts.measures.indicators],
            "run_id": run_id}),
    }


def load_transcripts(con, folder: Path, *, run_id: str, nlp=None) -> int:
    """Measure every transcript with the text-only path and store it; return the number of sessions.

    Each conversation goes through :func:`pipeline.analysis.text_only.measure_transcript` (synthetic times, so the
    time-based indicators are left out). A session needs a :class:`SessionAnalysis` for
    ``db.write_session`` (audio hash, ASR transcript, consent record), which a typed chat does not have,
    so the rows are written here with the same columns, one transaction for the whole dataset.
    """
    import pandas as pd

    from pipeline import PIPELINE_VERSION
    from pipeline.analysis.indicators import MARKERS_VERSION
    from pipeline.analysis.text_only import measure_transcript
    from pipeline.storage.db import SESSION_TABLES, insert_frame, transaction

    sessions: list[dict] = []
    frames: dict[str, list] = {}
    for path in sorted(folder.glob("*.json")):
        raw = path.read_bytes()
        doc = json.loads(raw)
        pid = doc["participant_id"]
        sid = session_id(pid)
        ts = measure_transcript(read_mibot(doc), session_id=sid, nlp=nlp)
        sessions.append(dict(session_id=sid, client_id=f"p-{pid[:12]}", therapist_id="mibot-v6.3a", recorded_on=None,
                             audio_sha256=hashlib.sha256(raw).hexdigest(), duration_s=ts.duration_s, language="en",
                             pipeline_version=PIPELINE_VERSION, run_id=run_id, num_speakers=2,
                             role_method=ts.roles.method, role_confidence=ts.roles.confidence,
                             role_evidence=ts.roles.evidence, therapist_label=ts.roles.therapist,
                             client_label=ts.roles.client, markers_version=MARKERS_VERSION,
                             source_format=f"text:mibot-json ({ts.timing} times)"))
        for table, frame in session_frames(ts, run_id).items():
            frames.setdefault(table, []).append(frame)
    out = {"sessions": pd.DataFrame(sessions).assign(processed_at=pd.Timestamp.now(tz="UTC"))}
    # MIBot's participants consented to research use when the dataset was collected; the date recorded
    # here is the import's, the source says where consent was given
    out["consents"] = pd.DataFrame({
        "session_id": [s["session_id"] for s in sessions], "client_id": [s["client_id"] for s in sessions],
        "scope": "research", "consented_on": pd.Timestamp.now(tz="UTC").date(), "consented_by": "client",
        "source": "MIBot public research dataset (consent collected by its authors)", "run_id": run_id})
    out |= {table: pd.concat(parts, ignore_index=True) for table, parts in frames.items()}
    with transaction(con):
        for table in SESSION_TABLES:
            con.execute(f"DELETE FROM {table} WHERE session_id LIKE 'mibot-%'")
        for table, frame in out.items():
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
    from pipeline.cli import main as cli
    from pipeline.storage import db

    work = args.work_dir or Path(tempfile.mkdtemp(prefix="mibot-"))
    work.mkdir(parents=True, exist_ok=True)
    db_path = args.db or work / "mibot.duckdb"
    if db_path.exists():
        db_path.unlink()
    con = db.connect(db_path)
    run_id = db.new_run_id()
    db.start_run(con, run_id=run_id, pipeline_version="bench", models={}, command="bench/mibot_compare.py")
    from pipeline.engine.runtime import get_nlp

    n = load_transcripts(con, MIBOT / "transcripts", run_id=run_id, nlp=get_nlp())
    db.finish_run(con, run_id=run_id, status="finished")
    con.close()
    sr = work / "mibot_self_report.csv"
    n_values = write_self_report(MIBOT / "data.csv", sr)
    print(f"loaded {n} MIBot transcripts as sessions; wrote {n_values} self-report values to {sr}\n")
    commands = [
        ["import-self-report", str(sr), "--instrument-config", str(INSTRUMENTS.relative_to(ROOT)), "--db",
         str(db_path)],
        ["compare", "--level", "between", *[a for i in INDICATORS for a in ("--indicator", i)],
         "--include-contradicted", "--db", str(db_path)],
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
