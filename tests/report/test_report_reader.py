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


# --- the quality verdict comes first ------------------------------------------------------------------------


def _quality(flags):
    return {"speech_s": 100.0, "speech_share": 0.8, "snr_db": 20.0, "overlap_share": 0.02,
            "mean_word_probability": 0.9, "asr_segments_dropped": 0, "words_dropped_outside_speech": 0,
            "role_confidence": 0.9, "flags": flags}


def _flag(code):
    return {"code": code, "message": f"{code} message", "distrust": f"what {code} spoils"}


@pytest.mark.parametrize(("codes", "start"), [
    ((), "Good recording: the numbers below can be read as measured"),
    (("hallucinations_dropped",), "Good recording"),
    (("noisy",), "Usable with care (noisy)"),
    (("noisy", "narrowband"), "Usable with care"),
    (("low_speech",), "Poor recording (low speech)"),
    (("uncertain_roles",), "Poor recording"),
    (("noisy", "narrowband", "heavy_overlap"), "Poor recording"),
])
def test_verdict_is_one_plain_sentence_first_with_the_numbers_folded(con, codes, start):
    data = replace(load_report_data(con, "s1"), quality=_quality([_flag(c) for c in codes]))
    html = unescape(render_html(data))
    verdict = html.index('id="quality-verdict"')
    assert html.index('id="quality-heading"') < verdict < html.index('id="miti"')
    sentence = html[verdict:html.index("</p>", verdict)]
    assert start in sentence
    for c in codes:
        if c != "hallucinations_dropped":
            assert f"what {c} spoils" in sentence  # names what not to rely on
    details = html.index('<details id="quality-details"')
    assert verdict < details < html.index("Speech 100 s") < html.index("</details>", details)


def test_verdict_without_stored_quality(con):
    data = replace(load_report_data(con, "s1"), quality=None)
    html = unescape(render_html(data))
    assert "Recording quality unknown" in html


# --- all indicators, grouped by family, exploratory ones folded --------------------------------------------


def test_all_indicators_means_every_stored_indicator(con):
    from pipeline.analysis.definitions import definitions

    data = load_report_data(con, "s1")
    html = unescape(render_html(data))
    table = html[html.index('id="table-heading"'):html.index('id="grade-legend"')]
    names = {n for n, _ in data.indicators}
    assert len(names) > 40
    for name in names:
        assert f'data-indicator="{name}"' in table
    defs = definitions()
    for family in {defs[n].family for n in names if n in defs}:
        assert f"<h3>{family}</h3>" in table
    # exploratory ones (accuracy not measured, evidence not supported) sit inside a folded <details>
    folded = [n for n in names if n in data.grades and data.grades[n][0] == "not_measured"
              and data.grades[n][1] != "supported"]
    assert folded
    for name in folded:
        pos = table.index(f'data-indicator="{name}"')
        assert table.rfind('<details class="exploratory">', 0, pos) > table.rfind("</details>", 0, pos)
    talk = table.index('data-indicator="talk_time_share"')
    assert table.rfind('<details class="exploratory">', 0, talk) <= table.rfind("</details>", 0, talk)
