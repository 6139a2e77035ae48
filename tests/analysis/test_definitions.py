"""Every indicator: a definition, its accuracy and its evidence apart; the data dictionary agrees; no alarm."""

from __future__ import annotations

import re
from pathlib import Path

from conftest import FakeDiarizer, FakeTranscriber  # noqa: F401  (fixtures' module on the path)

from evaluation import data_dictionary
from pipeline.analysis.definitions import (
    ACCURACY_KINDS,
    EVIDENCE_STATUSES,
    definitions,
    evidence_of,
    listed_moment_kinds,
    moment_detectors,
)
from pipeline.analysis.indicators import MARKERS_VERSION
from pipeline.report import derive

ROOT = Path(__file__).resolve().parents[2]


def test_every_produced_indicator_has_a_definition(analysis):
    names = {i.name for i in analysis.measures.indicators}
    assert names and names <= set(definitions())


def test_data_dictionary_and_definitions_name_the_same_indicators():
    text = (ROOT / "docs" / "data_dictionary.md").read_text(encoding="utf-8")
    body = text.split(data_dictionary.BEGIN)[0]
    in_tables = {n for line in body.splitlines() if line.startswith("| `")
                 for n in re.findall(r"`([a-z0-9_]+)`", line.split("|")[1])}
    assert in_tables == set(definitions())
    assert f"markers version {MARKERS_VERSION}" in text.splitlines()[0]


def test_generated_grade_section_is_current():
    assert data_dictionary.current() == data_dictionary.section(), "run: python -m evaluation.data_dictionary"


def test_accuracy_and_evidence_are_two_facts_each_with_its_figure_and_source():
    for d in definitions().values():
        assert d.accuracy.kind in ACCURACY_KINDS and d.evidence.status in EVIDENCE_STATUSES, d.name
        if d.accuracy.kind != "not_measured":  # a figure and where it comes from, not an assertion
            assert any(ch.isdigit() for ch in d.accuracy.figure) and d.accuracy.source, d.name
        assert d.evidence.note and d.evidence.source, d.name
        if d.evidence.status != "none_yet":
            assert any(ch.isdigit() for ch in d.evidence.note), d.name


def test_the_single_word_validated_is_gone_and_the_grades_are_honest():
    """Old code: one ``grade`` per indicator, ``validated`` for talk share, silences and "we" per 100 words."""
    import json

    raw = json.loads((ROOT / "pipeline" / "analysis" / "indicator_definitions.json").read_text(encoding="utf-8"))
    assert all("grade" not in row for row in raw["indicators"])
    assert "validated" not in ACCURACY_KINDS + EVIDENCE_STATUSES
    # well measured against synthetic truth, but nothing known about the alliance
    for name in ("talk_time_share", "long_silence_count", "we_rate", "mean_switching_gap"):
        d = definitions()[name]
        assert (d.accuracy.kind, d.evidence.status) == ("synthetic_truth", "none_yet"), name
    # the pre-registered validation found nulls: nothing is supported (change this only with new evidence)
    assert not [n for n, d in definitions().items() if d.evidence.status == "supported"]
    # labels from one language-model family are not expert codes
    assert definitions()["collaborative_we_rate"].accuracy.kind == "model_labels"


def test_only_precise_detectors_are_listed_and_no_contradicted_marker_alarms():
    for kind, d in moment_detectors().items():
        assert d.listed == (d.n is not None and d.n >= 10 and (d.precision or 0) >= 0.70), kind
    assert set(derive.REVIEW_KINDS) <= set(listed_moment_kinds())
    contradicted = {n for n, d in definitions().items() if d.evidence.status == "contradicted"}
    assert contradicted == {"rupture_candidate_rate", "rupture_withdrawal_count", "rupture_confrontation_count",
                            "topic_shift_rate"}  # contradicted ones stay contradicted
    # the cues behind contradicted indicators are never shown to clinicians as events
    assert {"topic_shift", "minimal_response", "deflection", "complaint", "rupture_candidate"} <= derive.UNLISTED_KINDS


def test_definitions_are_stored_once_per_markers_version(tmp_path, analysis):
    from pipeline.storage import db

    with db.open(tmp_path / "d.duckdb") as con:
        db.write_session(con, analysis, run_id="r1", pipeline_version="t")
        db.write_session(con, analysis, run_id="r2", pipeline_version="t")
        rows = con.execute("SELECT count(*), count(DISTINCT name), min(markers_version) FROM indicator_definitions"
                           ).fetchone()
    assert rows == (len(definitions()), len(definitions()), MARKERS_VERSION)


def test_comparison_reads_as_strain_only_indicators_with_supported_evidence():
    """Old code: talk share, silences and client latency were strain signals because they were well measured."""
    from pipeline.research.compare import STRAIN_CANDIDATES, STRAIN_SIGNALS

    assert all(evidence_of(s.name) == "supported" for s in STRAIN_SIGNALS)
    assert STRAIN_SIGNALS == ()  # today none has supported evidence
    assert all(s.name in definitions() for s in STRAIN_CANDIDATES)  # no indicator that does not exist


def test_definitions_table_stores_both_grades_and_migration_0010_keeps_old_rows(tmp_path):
    """A database written before 0010 (one ``grade`` column) is upgraded: no ``validated`` left, rows kept."""
    import duckdb

    from pipeline.storage import db
    from pipeline.storage.migrate import available_migrations

    path = tmp_path / "old.duckdb"
    con = duckdb.connect(str(path))
    con.execute("CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name VARCHAR NOT NULL,"
                " applied_at TIMESTAMPTZ NOT NULL DEFAULT now())")
    for version, name, sql in available_migrations():
        if version < 10:
            con.execute(sql)
            con.execute("INSERT INTO schema_migrations (version, name) VALUES (?, ?)", [version, name])
    con.execute("INSERT INTO indicator_definitions VALUES"
                " ('talk_time_share', 'each', 'ratio', 'share', '1.2.0', 'validated', 'DER 2.4 %', 'truth', 'r0'),"
                " ('topic_shift_rate', 'client', 'per 100', 'shifts', '1.2.0', 'contradicted', 'p 0.02', 'x', 'r0'),"
                " ('gone_indicator', 'each', 'count', 'old', '1.1.0', 'validated', 'old figure 1', 'truth', 'r0')")
    con.close()
    with db.open(path) as con:
        cols = [r[0] for r in con.execute("DESCRIBE indicator_definitions").fetchall()]
        rows = {r[0]: r[1:] for r in con.execute(
            "SELECT name, accuracy, accuracy_figure, evidence, markers_version FROM indicator_definitions"
            " WHERE markers_version <> ?", [MARKERS_VERSION]).fetchall()}
        words = con.execute("SELECT count(*) FROM indicator_definitions WHERE accuracy = 'validated'"
                            " OR evidence = 'validated'").fetchone()[0]
    assert "grade" not in cols and {"accuracy", "accuracy_figure", "evidence", "evidence_note"} <= set(cols)
    assert rows["talk_time_share"][0::2] == ("synthetic_truth", "none_yet")
    assert rows["topic_shift_rate"][2] == "contradicted"
    assert rows["gone_indicator"] == ("not_measured", "old figure 1", "none_yet", "1.1.0")  # unknown name: kept
    assert words == 0
