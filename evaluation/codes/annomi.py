"""AnnoMI as coding material: transcripts as :class:`CodingUtterance` sequences with gold codes and subtypes.

Gold codes are ``AnnoMI-simple.csv``'s; subtypes come from ``AnnoMI-full.csv``, the row of the lowest-numbered
annotator whose main behaviour equals the gold one (docs/process_codes.md, section 1).
"""

from __future__ import annotations

import csv
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from pipeline.codes.context import CodingUtterance

DEFAULT_ANNOMI = Path(__file__).resolve().parents[3] / "shared" / "data" / "annomi"
SPLIT_PATH = Path(__file__).resolve().parents[1] / "data" / "process_codes_split.json"


def hms(stamp: str) -> float:
    h, m, s = (int(x) for x in stamp.split(":"))
    return 3600 * h + 60 * m + s


@dataclass(frozen=True)
class GoldUtterance:
    transcript: str
    utterance: int
    role: str
    text: str
    start_s: float
    code: str  # therapist main behaviour or client talk type
    subtype: str  # "" where none


@dataclass(frozen=True)
class Transcript:
    id: str
    quality: str
    utterances: tuple[GoldUtterance, ...]

    def coding_utterances(self) -> list[CodingUtterance]:
        return [CodingUtterance(u.role, u.text, u.start_s) for u in self.utterances]


SUBTYPE_COLUMN = {"question": "question_subtype", "reflection": "reflection_subtype",
                  "therapist_input": "therapist_input_subtype"}


def load_annomi(folder: Path = DEFAULT_ANNOMI) -> dict[str, Transcript]:
    full_rows: dict[tuple[str, str], list[dict[str, str]]] = defaultdict(list)
    with (folder / "AnnoMI-full.csv").open(newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            full_rows[(row["transcript_id"], row["utterance_id"])].append(row)
    by_transcript: dict[str, list[GoldUtterance]] = defaultdict(list)
    quality: dict[str, str] = {}
    with (folder / "AnnoMI-simple.csv").open(newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            t, u = row["transcript_id"], row["utterance_id"]
            role = row["interlocutor"]
            code = row["main_therapist_behaviour"] if role == "therapist" else row["client_talk_type"]
            subtype = ""
            if code in SUBTYPE_COLUMN:
                rows = sorted(full_rows[(t, u)], key=lambda r: int(r["annotator_id"]))
                match = [r for r in rows if r["main_therapist_behaviour"] == code]
                value = match[0][SUBTYPE_COLUMN[code]] if match else "n/a"
                subtype = "" if value == "n/a" else value
            by_transcript[t].append(GoldUtterance(t, int(u), role, row["utterance_text"], hms(row["timestamp"]),
                                                  code, subtype))
            quality[t] = row["mi_quality"]
    return {
        t: Transcript(t, quality[t], tuple(sorted(us, key=lambda x: x.utterance)))
        for t, us in sorted(by_transcript.items(), key=lambda kv: int(kv[0]))
    }


def annotator_pairs(folder: Path = DEFAULT_ANNOMI) -> list[tuple[str, int, str, str, str, str]]:
    """Utterances with two or more annotators, taking the two lowest annotator ids.

    Each row: (transcript, utterance, role, first annotator's code, second annotator's code, the two ids).
    """
    rows: dict[tuple[str, str], list[dict[str, str]]] = defaultdict(list)
    with (folder / "AnnoMI-full.csv").open(newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            rows[(row["transcript_id"], row["utterance_id"])].append(row)
    out = []
    for (t, u), rs in sorted(rows.items(), key=lambda kv: (int(kv[0][0]), int(kv[0][1]))):
        by_annotator = {}
        for r in rs:
            by_annotator.setdefault(int(r["annotator_id"]), r)
        if len(by_annotator) < 2:
            continue
        a, b = (by_annotator[k] for k in sorted(by_annotator)[:2])
        role = a["interlocutor"]
        col = "main_therapist_behaviour" if role == "therapist" else "client_talk_type"
        out.append((t, int(u), role, a[col], b[col], a["annotator_id"] + "," + b["annotator_id"]))
    return out
