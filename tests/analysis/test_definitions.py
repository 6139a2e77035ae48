"""Every indicator has a definition and an evidence grade; the data dictionary agrees; nothing unvalidated alarms."""

from __future__ import annotations

import re
from pathlib import Path

from conftest import FakeDiarizer, FakeTranscriber  # noqa: F401  (fixtures' module on the path)

from evaluation import data_dictionary
from pipeline.analysis.definitions import GRADES, definitions, listed_moment_kinds, moment_detectors
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


def test_grades_are_known_and_evidence_given():
    for d in definitions().values():
        assert d.grade in GRADES and d.evidence
        if d.grade != "exploratory":
            assert any(ch.isdigit() for ch in d.evidence), d.name  # a figure, not an assertion


def test_only_precise_detectors_are_listed_and_no_contradicted_marker_alarms():
    for kind, d in moment_detectors().items():
        assert d.listed == (d.n is not None and d.n >= 10 and (d.precision or 0) >= 0.70), kind
    assert set(derive.REVIEW_KINDS) <= set(listed_moment_kinds())
    contradicted = {n for n, d in definitions().items() if d.grade == "contradicted"}
    assert contradicted >= {"rupture_candidate_rate", "rupture_withdrawal_count", "topic_shift_rate"}
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


def test_comparison_reads_only_validated_indicators_as_strain():
    from pipeline.analysis.definitions import grade_of
    from pipeline.research.compare import STRAIN_SIGNALS

    assert STRAIN_SIGNALS and all(grade_of(s.name) == "validated" for s in STRAIN_SIGNALS)
    assert "rupture_candidate_rate" not in {s.name for s in STRAIN_SIGNALS}
    assert all(s.name in definitions() for s in STRAIN_SIGNALS)  # no indicator that does not exist
