"""Process codes in the product: the shipped coder on real AnnoMI text, ``alliance code``, the stored table."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from pipeline.codes.coder import ARTEFACT_DIR, ARTEFACT_NAME

SHARED = Path(__file__).resolve().parents[3] / "shared"
ANNOMI = SHARED / "data" / "annomi" / "AnnoMI-simple.csv"

pytestmark = pytest.mark.skipif(not (ARTEFACT_DIR / ARTEFACT_NAME).is_file(), reason="no shipped coder artefact")


@pytest.fixture(scope="module")
def coder_and_encoder():
    from pipeline.engine.runtime import get_process_coder

    return get_process_coder()


def test_card_records_data_split_and_held_out_agreement(coder_and_encoder) -> None:
    coder, _ = coder_and_encoder
    card = coder.card
    assert card["split"]["sha256"] and card["data"]["AnnoMI-simple.csv"]
    assert card["rebuild"].startswith("python -m evaluation.codes.select")
    agreement = card.get("test_agreement")
    assert agreement and {"therapist_macro_f1", "therapist_kappa", "client_macro_f1", "client_kappa"} <= set(agreement)


def test_codes_obvious_utterances(coder_and_encoder) -> None:
    from pipeline.codes.context import CodingUtterance

    coder, encoder = coder_and_encoder
    utts = [CodingUtterance("therapist", "What brings you in today?"),
            CodingUtterance("client", "My wife says I drink too much, but I don't think it's a problem."),
            CodingUtterance("therapist", "So she is worried, and you're not so sure it's a problem."),
            CodingUtterance("client", "I really want to cut down, I know it would be better for my health.")]
    codes = coder.code(utts, encoder)
    assert [c.code for c in codes][0] == "question" and codes[0].subtype == "open"
    assert codes[2].code == "reflection"
    assert codes[3].code == "change"
    assert all(0.0 < c.probability <= 1.0 for c in codes)


@pytest.mark.skipif(not ANNOMI.is_file(), reason="../shared is for development only")
def test_alliance_code_on_an_annomi_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from pipeline.cli.main import main

    rows = [r for r in csv.DictReader(ANNOMI.open(newline="", encoding="utf-8")) if r["transcript_id"] in ("0", "1")]
    source = tmp_path / "two.csv"
    with source.open("w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    out = tmp_path / "codes.csv"
    assert main(["code", str(source), "--out", str(out), "--json"]) == 0
    printed = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    assert [p["conversation"] for p in printed] == ["transcript 0", "transcript 1"]
    assert set(printed[0]["summary"]) >= {"reflection_question_ratio", "change_talk_share"}
    coded = list(csv.DictReader(out.open(encoding="utf-8")))
    assert len(coded) == len(rows)
    assert {r["code"] for r in coded} <= {"question", "reflection", "therapist_input", "other", "change", "neutral",
                                          "sustain"}
    assert oct(out.stat().st_mode & 0o777) == "0o600"


def test_alliance_code_refuses_a_missing_file_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from pipeline.cli.main import main

    assert main(["code", str(tmp_path / "nope.csv")]) == 2
    err = capsys.readouterr().err
    assert "does not exist" in err and "Traceback" not in err
