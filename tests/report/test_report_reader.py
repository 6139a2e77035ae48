"""The report a clinician reads (issue 24 item 5): verdict first, all indicators, events once, transcript, audio."""

from __future__ import annotations

import json
from dataclasses import replace
from html import unescape

import pytest
from test_report import make_analysis

from pipeline.report import derive, load_report_data, render_html
from pipeline.report.data import MarkerRow
from pipeline.storage import db


@pytest.fixture
def con(tmp_path, dialogue):
    c = db.connect(tmp_path / "r.duckdb")
    db.write_session(c, make_analysis(*dialogue), run_id="r1", pipeline_version="0.1.0")
    yield c
    c.close()


# --- events: each collaborative "we" once -------------------------------------------------------------------


def test_collaborative_we_is_listed_once_with_a_note(con):
    data = load_report_data(con, "s1")
    we = next(m for m in data.markers if m.kind == "we_language")
    collab = MarkerRow(we.start_s, we.end_s, "collaborative_we", we.speaker_role, 1.0,
                       json.dumps({"quote": "Let's look", "token": we.detail, "cue": "modal"}))
    data = replace(data, markers=tuple(sorted((*data.markers, collab))))
    evs = derive.events(data)
    at_token = [e for e in evs if e.start_s == we.start_s and e.speaker_role == we.speaker_role
                and e.kind in ("we_language", "collaborative_we")]
    assert [e.kind for e in at_token] == ["collaborative_we"]
    assert at_token[0].label and at_token[0].note and "cue: modal" in at_token[0].note
    assert all(e.label and e.note for e in evs)
    # a "we" that is not collaborative is still listed as "we"-language
    others = [m for m in data.markers if m.kind == "we_language" and m.start_s != we.start_s]
    assert sum(e.kind == "we_language" for e in evs) == len(others)
