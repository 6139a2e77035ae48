"""Issue 22 items 1 and 7: the report says only what is known and what its figures show.

Each test fails on the code before the change: the summary and report showed one word ("validated") per
indicator; "Timeline as text" counted marker families the figure does not draw; sparklines autoscaled two
nearly equal sessions into a steep rise.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import replace
from html import unescape

import pytest

from pipeline.report import derive, figures, load_report_data, render_html
from pipeline.report.data import HistoryPoint, MarkerRow
from pipeline.report.summary import load_summary, render_markdown
from pipeline.storage import db
from tests.report.test_report import make_analysis


@pytest.fixture
def con(tmp_path, dialogue):
    c = db.connect(tmp_path / "r.duckdb")
    db.write_session(c, make_analysis(*dialogue), run_id="r1", pipeline_version="0.1.0")
    yield c
    c.close()


def test_summary_and_report_show_accuracy_and_evidence_apart(con):
    md = render_markdown(load_summary(con, "s1"))
    assert "| Indicator | Therapist | Client | Accuracy | Evidence about alliance |" in md
    row = next(line for line in md.splitlines() if line.startswith("| Talk-time share |"))
    assert row.endswith("| synthetic truth | none yet |")
    assert "not thereby a sign of the alliance" in md
    html = unescape(render_html(load_report_data(con, "s1")))
    assert "<th>Accuracy</th><th>Evidence about alliance</th>" in html
    legend = html[html.index('id="grade-legend"'):]
    assert "not thereby a sign of the alliance" in legend[:2000]
    for text in (md, html):
        assert not re.search(r"\bvalidated\b(?!\s+(?:detector|against))", text.replace("no-validated-detector", ""))


def test_timeline_text_counts_only_what_the_figure_draws(con):
    data = load_report_data(con, "s1")
    hidden = (MarkerRow(6.0, 6.5, "topic_shift", "client", None, '{"quote": "anyway"}'),
              MarkerRow(7.0, 7.2, "backchannel", "therapist", None, None))
    data = replace(data, markers=tuple(sorted(data.markers + hidden, key=lambda m: m.start_s)))
    html = unescape(render_html(data))
    text = re.search(r'<p id="timeline-text">(.*?)</p>', html, re.S).group(1)
    assert "Topic shift" not in text and "Backchannel" not in text and "all listed" not in text
    for label, n in _counts(derive.events(data)).items():
        assert f"{label} {n}" in text


def _counts(evs):
    out: dict[str, int] = {}
    for e in evs:
        out[e.label] = out.get(e.label, 0) + 1
    return out


def test_sparklines_use_a_fixed_scale_per_indicator_and_show_the_usual_range():
    # two nearly equal talk shares: the fixed 0-100 % scale keeps the line nearly level
    lo, hi = figures.sparkline_limits([0.50, 0.51], baseline=0.50, scale=(0.0, 1.0))
    assert lo <= 0.0 and hi >= 1.0
    # a value outside the scale widens it rather than being cut off
    assert figures.sparkline_limits([0.5, 14.0], baseline=None, scale=(0.0, 5.0))[1] >= 14.0
    # the usual range: all earlier values with fewer than 4, the middle half with more
    assert derive.usual_range([1.0]) is None
    assert derive.usual_range([2.0, 1.0, 3.0]) == (1.0, 3.0)
    assert derive.usual_range([1.0, 2.0, 3.0, 4.0, 100.0]) == (2.0, 4.0)


def test_report_cards_draw_the_usual_range_band(con, dialogue):
    words, turns = dialogue
    for sid, day, sha in (("s0", dt.date(2025, 12, 1), "cd"), ("sm", dt.date(2025, 12, 15), "ce")):
        db.write_session(con, make_analysis(words, turns, session_id=sid, recorded_on=day, sha=sha),
                         run_id="r", pipeline_version="0.1.0")
    data = load_report_data(con, "s1")
    assert [h.session_id for h in data.history] == ["s0", "sm", "s1"]
    assert all(isinstance(h, HistoryPoint) for h in data.history)
    html = render_html(data)
    assert 'id="spark0-usual"' in html and "usual range" in html


def test_legend_says_what_the_stored_evidence_is():
    from pipeline.report.summary import grade_legend

    assert "No indicator has supported evidence" in " ".join(grade_legend({"we_rate": ("synthetic_truth",
                                                                                       "none_yet")}))
    text = " ".join(grade_legend({"x_rate": ("expert_codes", "supported"), "we_rate": ("synthetic_truth",
                                                                                      "none_yet")}))
    assert "Supported evidence about the alliance or outcome: x_rate." in text and "No indicator" not in text


def test_long_session_timeline_text_describes_binned_shares_not_stretches(tmp_path):
    from tests.report.test_report import long_dialogue

    words, turns = long_dialogue(30 * 60.0)
    c = db.connect(tmp_path / "long.duckdb")
    db.write_session(c, make_analysis(words, turns, duration_s=30 * 60.0), run_id="r", pipeline_version="0.1.0")
    html = unescape(render_html(load_report_data(c, "s1")))
    c.close()
    text = re.search(r'<p id="timeline-text">(.*?)</p>', html, re.S).group(1)
    assert "share of each 0:30 spoken by each person" in text and "stretches" not in text
