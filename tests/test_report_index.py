from __future__ import annotations

from pipeline.report.index import write_therapist_indexes
from pipeline.storage import db


def test_index_lists_sessions_with_links_and_disclaimer(tmp_path, analysis):  # noqa: F811
    con = db.connect(tmp_path / "a.duckdb")
    db.write_session(con, analysis, run_id="r1", pipeline_version="0.1.0")
    reports = tmp_path / "reports"
    reports.mkdir()
    (reports / "s1.html").write_text("<html></html>")
    (path,) = write_therapist_indexes(con, reports)
    html = path.read_text()
    assert path.name == "index-t1.html"
    assert 'href="s1.html"' in html and "c1" in html and "not clinical judgements" in html
    assert "default-src 'none'" in html  # self-contained: no external requests
    assert write_therapist_indexes(con, reports, therapist_ids=["nobody"])[0].read_text().count("<tr>") == 1
