from __future__ import annotations

from pipeline.report.index import write_therapist_indexes
from pipeline.report.summary import report_stem
from pipeline.storage import db


def test_index_lists_sessions_with_links_and_disclaimer(tmp_path, analysis):
    con = db.connect(tmp_path / "a.duckdb")
    db.write_session(con, analysis, run_id="r1", pipeline_version="0.1.0")
    reports = tmp_path / "reports"
    reports.mkdir()
    (reports / f"{report_stem('s1')}.html").write_text("<html></html>")
    (path,) = write_therapist_indexes(con, reports)
    html = path.read_text()
    assert path.name == f"{report_stem('t1', kind='index')}.html"
    assert f'href="{report_stem("s1")}.html"' in html and "c1" in html and "not clinical judgements" in html
    assert "default-src 'none'" in html  # self-contained: no external requests
    assert (path.stat().st_mode & 0o777) == 0o600  # owner-only even outside the CLI's umask (a deployment)
    assert write_therapist_indexes(con, reports, therapist_ids=["nobody"])[0].read_text().count("<tr>") == 1


def test_report_stems_are_opaque_and_unique_per_exact_id():
    ids = ["X 1", "X/1", "X_1", "x_1", "../etc", "Anna Smith", "a" * 5000, "<script>"]
    stems = [report_stem(i) for i in ids]
    assert len(set(stems)) == len(ids)
    for i, stem in zip(ids, stems, strict=True):
        assert stem.startswith("session-") and len(stem) == len("session-") + 16
        assert all(c.isalnum() or c == "-" for c in stem) and i not in stem
    assert report_stem("X 1") == report_stem("X 1") != report_stem("X 1", kind="index")


def test_index_gives_each_sessions_miti_summaries(tmp_path, analysis):
    """The supervisor's page per therapist shows R:Q, % complex reflections and change-talk share per session."""
    from dataclasses import replace

    from pipeline.types import Indicator

    coded = replace(analysis, measures=replace(analysis.measures, indicators=analysis.measures.indicators + (
        Indicator("mi_reflection_question_ratio", "therapist", 1.5, "ratio"),
        Indicator("mi_complex_reflection_pct", "therapist", 40.0, "%"),
        Indicator("mi_change_talk_share", "client", 0.25, "share"))))
    con = db.connect(tmp_path / "a.duckdb")
    db.write_session(con, coded, run_id="r1", pipeline_version="0.1.0")
    (path,) = write_therapist_indexes(con, tmp_path / "reports")
    html = path.read_text()
    assert "R:Q" in html and ">1.50<" in html and ">40 %<" in html and ">25 %<" in html
