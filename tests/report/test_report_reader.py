"""The report a clinician reads (issue 24 item 5): verdict first, all indicators, events once, transcript, audio."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from html import unescape

import pytest
from test_report import make_analysis, needs_chromium

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


# --- transcript view with time-coded anchors ---------------------------------------------------------------


def test_transcript_view_shows_deidentified_turns_folded_and_events_link_to_them(con):
    con.execute("UPDATE turns_deidentified SET text = '[PERSON] said hello' WHERE session_id = 's1' AND turn_index = 0")
    data = load_report_data(con, "s1")
    assert len(data.transcript) == len(data.turns) and data.transcript[0].text == "[PERSON] said hello"
    assert [t.speaker_role for t in data.transcript] == [t.speaker_role for t in data.turns]
    html = unescape(render_html(data))
    section = html[html.index('id="transcript"'):html.index('id="we-heading"')]
    assert '<details id="transcript-details">' in section  # folded by default (no "open")
    for t in data.transcript:
        assert f'<li id="turn-{t.turn_index}" data-t="{t.start_s:.2f}">' in section
    assert "[PERSON] said hello" in section and ">0:11</a>" in section  # third turn starts at 11.4 s
    events = html[html.index('id="events-heading"'):html.index('id="transcript"')]
    links = re.findall(r'<a class="tc" href="#(turn-\d+)" data-t="([\d.]+)"', events)
    assert len(links) == len(derive.events(data)) and links
    assert all(f'id="{anchor}"' in section for anchor, _ in links)
    # without a recording the page has no player and the CSP still blocks media
    assert "<audio" not in html and "media-src" not in html


# --- the audio player: a local file, linked, only with confirmed consent -----------------------------------


@pytest.fixture
def recording(con, tmp_path):
    """A real 22 s WAV whose SHA-256 is stored as the session's."""
    import hashlib

    import numpy as np
    import soundfile as sf

    path = tmp_path / "audio" / "rec.wav"
    path.parent.mkdir()
    t = np.arange(22 * 8000) / 8000
    sf.write(path, (0.1 * np.sin(2 * np.pi * 220 * t)).astype(np.float32), 8000)
    con.execute("UPDATE sessions SET audio_sha256 = ? WHERE session_id = 's1'",
                [hashlib.sha256(path.read_bytes()).hexdigest()])
    return path


def test_audio_link_needs_confirmed_consent_and_the_right_file(con, recording, tmp_path):
    from pipeline.report.audio_link import AudioLinkError, audio_href

    out = tmp_path / "reports" / "r.html"
    with pytest.raises(AudioLinkError, match="--audio-playback-consented"):
        audio_href(con, "s1", recording, out, playback_consented=False)
    other = tmp_path / "audio" / "other.wav"
    other.write_bytes(recording.read_bytes() + b"\0")
    with pytest.raises(AudioLinkError, match="not this session's recording") as e:
        audio_href(con, "s1", other, out, playback_consented=True)
    assert "other.wav" not in str(e.value)
    with pytest.raises(AudioLinkError, match="cannot be read"):
        audio_href(con, "s1", tmp_path / "missing.wav", out, playback_consented=True)
    assert audio_href(con, "s1", recording, out, playback_consented=True) == "../audio/rec.wav"
    con.execute("DELETE FROM consents WHERE session_id = 's1'")
    with pytest.raises(AudioLinkError, match="no consent record"):
        audio_href(con, "s1", recording, out, playback_consented=True)


def test_report_with_audio_links_the_file_and_allows_only_file_media(con, recording, tmp_path):
    from pipeline.report import ReportOptions

    html = render_html(load_report_data(con, "s1"), ReportOptions(audio_href="../audio/rec.wav"))
    assert '<audio id="recording" controls preload="metadata" src="../audio/rec.wav">' in html
    assert "media-src file:" in unescape(html) and "default-src 'none'" in unescape(html)
    assert "base64" not in html.split("<audio", 1)[1][:300]  # linked, not embedded
    assert "play and read from" in html


def test_cli_report_audio(con, recording, tmp_path, capsys):
    from pipeline.cli.main import main

    dbp = con.execute("SELECT path FROM duckdb_databases() WHERE database_name = current_database()").fetchone()[0]
    con.close()
    out = tmp_path / "reports" / "r.html"
    base = ["report", "s1", "--db", dbp, "--role", "supervisor", "--out", str(out), "--audio", str(recording)]
    assert main(base) == 2
    err = capsys.readouterr().err
    assert "--audio-playback-consented" in err and "Traceback" not in err and "rec.wav" not in err
    assert not out.exists()
    assert main([*base, "--audio-playback-consented"]) == 0
    assert 'src="../audio/rec.wav"' in out.read_text()
    assert main([*base, "--audio-playback-consented", "--format", "md", "--out", str(tmp_path / "r.md")]) == 2
    assert "only written into the HTML report" in capsys.readouterr().err


@needs_chromium
def test_player_and_transcript_in_headless_chromium(con, recording, tmp_path):
    """The CSP lets the linked file play, a #turn- link opens the transcript there and seeks the player."""
    from test_report import BROWSER_BACKGROUND, _console, _requests, _run_chromium

    from pipeline.report import ReportOptions, write_html_report
    from pipeline.report.audio_link import audio_href

    out = tmp_path / "reports" / "r.html"
    href = audio_href(con, "s1", recording, out, playback_consented=True)
    page = write_html_report(con, "s1", out, ReportOptions(audio_href=href))
    proc = _run_chromium(tmp_path, page, "--dump-dom", "--virtual-time-budget=5000", url_suffix="#turn-2")
    dom = proc.stdout
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert _console(proc.stderr) == []  # no CSP violation, no script error
    assert [u for u in _requests(proc.stderr) if not BROWSER_BACKGROUND.match(u) and not u.startswith("file:")] == []
    assert 'data-report-error="' not in dom and 'data-audio-error="' not in dom
    assert 'data-audio-s="22.00"' in dom  # the recording's metadata loaded through media-src file:
    assert 'data-audio-at="11.40"' in dom  # the third turn (11.4 s) set the player's time
    assert '<details id="transcript-details" open="">' in dom


# --- the per-client page: trends across sessions -----------------------------------------------------------


def test_client_page_shows_each_indicator_across_sessions(tmp_path, dialogue, capsys):
    import datetime as dt

    from pipeline.cli.main import main
    from pipeline.report.client_page import load_client_page, render_client_html

    dbp = tmp_path / "c.duckdb"
    c = db.connect(dbp)
    for k, (sid, day) in enumerate((("s1", 2), ("s2", 9), ("s3", 16))):
        db.write_session(c, make_analysis(*dialogue, session_id=sid, recorded_on=dt.date(2026, 1, day),
                                          sha=f"{k}f"), run_id=f"r{k}", pipeline_version="0.1.0")
    c.execute("UPDATE sessions SET therapist_id = 't2' WHERE session_id = 's3'")
    page = load_client_page(c, "c1")
    assert [h.session_id for h in page.history] == ["s1", "s2", "s3"]
    html = unescape(render_client_html(page))
    assert "default-src 'none'" in html and "<script" not in html
    row = html[html.index('data-indicator="talk_time_share" data-role="client"'):]
    row = row[:row.index("</tr>")]
    assert "<svg" in row and "s1: " in row and "s3: " in row  # a sparkline over the three sessions
    assert '<details class="exploratory">' in html
    # a clinician sees only their own sessions of the client
    assert [h.session_id for h in load_client_page(c, "c1", therapist_id="t1").history] == ["s1", "s2"]
    c.close()
    out = tmp_path / "reports" / "client.html"
    assert main(["report", "--client", "c1", "--therapist", "t1", "--db", str(dbp), "--out", str(out)]) == 0
    assert "2 sessions" in capsys.readouterr().out and "s3: " not in unescape(out.read_text())
    assert main(["report", "--client", "c9", "--therapist", "t1", "--db", str(dbp), "--out", str(out)]) == 2
    assert main(["report", "s1", "--client", "c1", "--role", "supervisor", "--db", str(dbp)]) == 2
    err = capsys.readouterr().err
    assert "either SESSION_ID or --client" in err and "Traceback" not in err


def test_markdown_summary_opens_its_quality_section_with_the_verdict(con):
    from pipeline.report.summary import load_summary, render_markdown

    summary = load_summary(con, "s1")
    md = render_markdown(replace(summary, quality=_quality([_flag("noisy")])))
    section = md[md.index("## Recording quality"):]
    assert section.index("**Usable with care (noisy)") < section.index("Speech 100 s")
