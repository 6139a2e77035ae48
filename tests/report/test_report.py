"""The clinician report: data loading, edge cases, the CLI, and rendering in headless Chromium."""

from __future__ import annotations

import datetime as dt
import re
import subprocess
from dataclasses import replace
from html import unescape
from pathlib import Path

import numpy as np
import pytest
from conftest import words_from

from pipeline.analysis.session import SessionMeta, analyse
from pipeline.cli.main import main
from pipeline.privacy.consent import parse_consent
from pipeline.report import ReportError, derive, load_report_data, render_html, write_html_report, write_report
from pipeline.report.data import SpeechSpan, TurnRow, load_history, load_self_report
from pipeline.report.render import chromium_args
from pipeline.report.summary import DISCLAIMER
from pipeline.storage import db
from pipeline.types import Audio, Diarization, SpeakerTurn, Transcript

CHROMIUM = Path("/usr/bin/chromium")
needs_chromium = pytest.mark.skipif(not CHROMIUM.exists(), reason="/usr/bin/chromium not installed")


def make_analysis(words, turns, *, session_id="s1", client_id="c1", recorded_on=dt.date(2026, 1, 2),
                  duration_s=22.0, sha="ab"):
    # samples at 1 Hz: the duration is all the analysis reads from the audio (no 90-minute arrays)
    audio = Audio(np.zeros(int(duration_s), dtype=np.float32), 1, sha * 32, "x.wav", "WAV", 16_000, 1)
    meta = SessionMeta(session_id, client_id, "t1", recorded_on)
    consent = parse_consent({"session_id": session_id, "client_id": client_id, "scope": "research",
                             "consented_on": "2026-01-01", "consented_by": ["client"]}, source="test")
    return analyse(audio, Transcript(tuple(words), "en", 0.99, "fake", "fake-asr"),
                   Diarization(tuple(turns), ("SPEAKER_00", "SPEAKER_01")), meta=meta, consent=consent,
                   diarization_model="fake")


@pytest.fixture
def con(tmp_path, dialogue):
    """A database holding the four-turn dialogue as session s1 (client c1)."""
    c = db.connect(tmp_path / "r.duckdb")
    db.write_session(c, make_analysis(*dialogue), run_id="r1", pipeline_version="0.1.0")
    yield c
    c.close()


def long_dialogue(duration_s: float):
    """Alternating therapist/client turns of about 9 s with 1 s gaps (a 4 s silence after every fifth question)."""
    words, turns = [], []
    t, k = 0.5, 0
    while t + 10 < duration_s:
        therapist = k % 2 == 0
        text = ("What would help us most today?" if therapist else "I think we could talk about my week")
        words += words_from(text, t, t + 8.5)
        turns.append(SpeakerTurn(t, t + 8.5, "SPEAKER_01" if therapist else "SPEAKER_00"))
        t += 9.5 + (4.0 if k % 10 == 8 else 0.0)
        k += 1
    return words, turns


# --- data loading -------------------------------------------------------------------------------------------


def test_load_report_data_reads_the_session(con):
    data = load_report_data(con, "s1")
    assert data.session["session_id"] == "s1" and data.duration_s == pytest.approx(22.0)
    assert len(data.turns) == 4 and [t.speaker_role for t in data.turns] == ["therapist", "client"] * 2
    assert len(data.speech) == 4 and data.speech == tuple(sorted(data.speech))
    kinds = {m.kind for m in data.markers}
    assert {"long_silence", "we_language"} <= kinds  # later marker versions add more kinds
    assert data.indicators[("talk_time_share", "client")] > 0
    assert len(data.history) == 1 and data.history[0].is_current and data.earlier == ()
    assert data.self_report.scores == ()


def test_unknown_session_is_a_clear_error(con):
    from pipeline.errors import SessionNotFoundError

    with pytest.raises(SessionNotFoundError, match="nope"):
        load_report_data(con, "nope")


def test_history_holds_earlier_sessions_of_the_same_client_only(con, dialogue):
    words, turns = dialogue
    # an earlier session, a later one, and another client's session
    for sid, client, day, sha in (("s0", "c1", dt.date(2025, 12, 1), "cd"), ("s2", "c1", dt.date(2026, 2, 1), "ef"),
                                  ("x1", "c2", dt.date(2025, 11, 1), "01")):
        few = [w for w in words if w.start_s < 16]  # a different talk-time share from s1
        db.write_session(con, make_analysis(few, turns[:3], session_id=sid, client_id=client, recorded_on=day,
                                            sha=sha), run_id="r", pipeline_version="0.1.0")
    history = load_history(con, "s1")
    assert [h.session_id for h in history] == ["s0", "s1"]
    data = load_report_data(con, "s1")
    t = derive.trend(data.history, "talk_time_share", "client", "share")
    s0 = con.execute("SELECT value FROM indicators WHERE session_id = 's0' AND name = 'talk_time_share' "
                     "AND speaker_role = 'client'").fetchone()[0]
    assert t.n_earlier == 1 and t.baseline == pytest.approx(s0) and t.current == data.indicators[
        ("talk_time_share", "client")]
    html = render_html(data)
    assert "median of the client's 1 earlier session" in html and 'id="first-session"' not in html
    assert html.count("<svg") >= 1 + 2 + 1  # timeline, sparklines, we-language


def test_history_without_recorded_on_falls_back_to_processing_order(tmp_path, dialogue):
    c = db.connect(tmp_path / "h.duckdb")
    db.write_session(c, make_analysis(*dialogue, session_id="a", recorded_on=None, sha="aa"), run_id="r",
                     pipeline_version="0.1.0")
    db.write_session(c, make_analysis(*dialogue, session_id="b", recorded_on=None, sha="bb"), run_id="r",
                     pipeline_version="0.1.0")
    assert [h.session_id for h in load_history(c, "b")] == ["a", "b"]
    assert [h.session_id for h in load_history(c, "a")] == ["a"]


# --- derived values ----------------------------------------------------------------------------------------


def test_overlaps_and_union():
    speech = (SpeechSpan(0.0, 5.0, "therapist"), SpeechSpan(4.0, 8.0, "client"), SpeechSpan(6.0, 7.0, "therapist"),
              SpeechSpan(10.0, 12.0, "client"))
    assert [(i.start_s, i.end_s) for i in derive.overlaps(speech)] == [(4.0, 5.0), (6.0, 7.0)]
    assert [(i.start_s, i.end_s) for i in derive.speech_union(speech)] == [(0.0, 8.0), (10.0, 12.0)]


def test_question_gaps_measured_on_the_diarization(con):
    data = load_report_data(con, "s1")
    gaps = derive.question_gaps(data.turns, data.speech)
    # both therapist turns end with "?": 5.0 -> 5.6 and 15.0 -> 18.0 in the diarization
    assert [round(g.gap_s, 2) for g in gaps] == [0.6, 3.0]
    assert gaps[1].responder == "client" and gaps[1].question.endswith("need from her?")
    assert gaps[1].reply.startswith("I don't know")


def test_question_overlapped_by_the_reply_has_a_negative_gap():
    turns = (TurnRow(0.0, 4.0, "therapist", "And then what?", 3), TurnRow(3.5, 6.0, "client", "I left.", 2))
    speech = (SpeechSpan(0.0, 4.0, "therapist"), SpeechSpan(3.5, 6.0, "client"))
    (gap,) = derive.question_gaps(turns, speech)
    assert gap.gap_s == pytest.approx(-0.5)


def test_events_carry_quotes_and_ids(con):
    data = load_report_data(con, "s1")
    evs = derive.events(data)
    assert [e.event_id for e in evs] == [f"ev{i}" for i in range(len(evs))]
    we = [e for e in evs if e.kind == "we_language"]
    assert we and all(e.quote for e in we)
    assert any("Let's" in e.quote for e in we)
    (silence,) = [e for e in evs if e.kind == "long_silence"]
    assert silence.start_s == pytest.approx(15.0) and "switching gap" in silence.note
    assert "therapist" in silence.quote and "client" in silence.quote


@pytest.mark.parametrize(("duration_s", "expected"), [(22.0, None), (20 * 60.0, None), (45 * 60.0, 30.0),
                                                      (90 * 60.0, 30.0), (4 * 3600.0, 120.0)])
def test_timeline_aggregates_long_sessions(duration_s, expected):
    assert derive.timeline_bin_s(duration_s) == expected


def test_binned_share():
    share = derive.binned_share([derive.Interval(0.0, 45.0)], duration_s=90.0, bin_s=30.0)
    assert share == pytest.approx([1.0, 0.5, 0.0])


# --- the HTML and its edge cases ----------------------------------------------------------------------------


def _assert_self_contained(html: str) -> None:
    assert "Content-Security-Policy" in html and "default-src 'none'" in unescape(html)
    assert not re.search(r"""(?:src|href)\s*=\s*["']?(?:https?:)?//""", html, re.I)
    assert not re.search(r"url\(\s*['\"]?(?:https?:)?//", html, re.I)
    assert "<link" not in html and "@import" not in html


def test_first_short_session_report(con, tmp_path):
    out = write_html_report(con, "s1", tmp_path / "out" / "s1.html")
    html = out.read_text()
    _assert_self_contained(html)
    assert DISCLAIMER in unescape(html) and "not clinical judgements" in html
    assert 'id="first-session"' in html and "no baseline yet" in html
    assert 'id="no-self-report"' in html
    assert "This recording is short" in html and 'id="role-warning"' not in html
    assert 'id="timeline-ev0"' in html  # event points carry ids the script wires up
    assert html.count('aria-labelledby="') >= 3 and "Timeline as text" in html
    assert "Silences after therapist questions" in html and "need from her?" in html
    if not derive.REVIEW_KINDS:  # no detector reached the precision bar: said plainly, with what was measured
        assert 'id="no-validated-detector"' in html and "precision" in html


def test_low_role_confidence_is_a_prominent_warning(tmp_path, dialogue):
    c = db.connect(tmp_path / "low.duckdb")
    a = make_analysis(*dialogue)
    db.write_session(c, replace(a, roles=replace(a.roles, confidence=0.3)), run_id="r", pipeline_version="0.1.0")
    html = render_html(load_report_data(c, "s1"))
    assert 'id="role-warning"' in html and 'role="alert"' in html and "0.30" in html
    # the warning comes before any indicator
    assert html.index('id="role-warning"') < html.index('id="glance"')


def test_ninety_minute_session_stays_readable(tmp_path):
    words, turns = long_dialogue(90 * 60.0)
    c = db.connect(tmp_path / "long.duckdb")
    db.write_session(c, make_analysis(words, turns, duration_s=90 * 60.0), run_id="r", pipeline_version="0.1.0")
    data = load_report_data(c, "s1")
    assert len(data.speech) > 500
    html = render_html(data)
    _assert_self_contained(html)
    assert "This is a long session (1:30:00)" in html and "how much of each 0:30" in html
    timeline = html[html.index('<figure id="timeline"'):html.index("</figure>", html.index('<figure id="timeline"'))]
    assert len(timeline) < 1_500_000
    assert "This recording is short" not in html
    assert "Questions followed by 2 s or more" in html and re.search(r"All \d+ questions", html)
    n_events = len(derive.events(data))
    assert f'id="timeline-ev{n_events - 1}"' in html


def test_no_self_report_scores_for_the_client(con):
    sr = load_self_report(con, "s1")
    assert sr.scores == () and sr.note is None  # the migrated tables are empty
    assert 'id="no-self-report"' in render_html(load_report_data(con, "s1"))


def test_self_report_from_the_import_tables(con):
    """Scores come through the migration's ``self_report_scores_long`` view."""
    con.execute("INSERT INTO self_report_imports (import_id, source_path, source_sha256, file_format, instruments, "
                "lines_read, values_read, values_accepted, values_rejected, administrations, pipeline_version, "
                "imported_at) VALUES ('i1', 'x.csv', '00', 'wide', 'srs', 2, 4, 4, 0, 1, '0.1.0', now())")
    con.execute("INSERT INTO self_report_instruments (import_id, instrument, name, kind, scoring, definition) "
                "VALUES ('i1', 'srs', 'Session Rating Scale', 'alliance', 'sum', '{}')")
    con.execute("INSERT INTO self_report_administrations (administration_id, import_id, instrument, client_id, "
                "session_id, n_items, n_answered, status) VALUES ('a1', 'i1', 'srs', 'c1', 's1', 4, 4, 'scored'), "
                "('a2', 'i1', 'srs', 'c1', NULL, 4, 4, 'scored')")  # a2: not linked to a session, left out
    con.execute("INSERT INTO self_report_scores (administration_id, import_id, instrument, scale, value, n_items, "
                "n_answered, prorated) VALUES ('a1', 'i1', 'srs', 'total', 34, 4, 4, false), "
                "('a2', 'i1', 'srs', 'total', 12, 4, 4, false)")
    sr = load_self_report(con, "s1")
    assert [(s.session_id, s.instrument, s.scale, s.score) for s in sr.scores] == [("s1", "srs", "total", 34.0)]
    html = render_html(load_report_data(con, "s1"))
    assert "SRS total" in html and "34.0" in html and 'id="no-self-report"' not in html


def test_session_without_markers_or_questions(tmp_path):
    words = words_from("I am fine thanks", 0.5, 3.0) + words_from("Good to hear that", 3.5, 6.0)
    turns = (SpeakerTurn(0.5, 3.0, "SPEAKER_00"), SpeakerTurn(3.5, 6.0, "SPEAKER_01"))
    c = db.connect(tmp_path / "tiny.duckdb")
    db.write_session(c, make_analysis(words, turns, duration_s=7.0), run_id="r", pipeline_version="0.1.0")
    html = render_html(load_report_data(c, "s1"))
    assert "No marker events in this session." in html
    assert "No therapist turn in this session ends with a question mark." in html


# --- CLI ------------------------------------------------------------------------------------------------------


def test_cli_report_html_and_md(con, tmp_path, capsys):
    path = Path(con.execute("SELECT file FROM pragma_database_list WHERE name = current_database()").fetchone()[0])
    con.close()
    assert main(["report", "s1", "--db", str(path), "--therapist", "t1", "--out", str(tmp_path / "a.html")]) == 0
    assert (tmp_path / "a.html").read_text().startswith("<!DOCTYPE html>")
    assert main(["report", "s1", "--db", str(path), "--therapist", "t1", "--format", "md",
                 "--out", str(tmp_path / "a.md")]) == 0
    assert (tmp_path / "a.md").read_text().startswith("# Session process summary: s1")
    assert main(["report", "nope", "--db", str(path), "--therapist", "t1", "--out", str(tmp_path / "b.html")]) == 2
    assert "no session 'nope'" in capsys.readouterr().err


def test_pdf_without_chromium_is_a_clear_error(con, tmp_path, monkeypatch):
    monkeypatch.setenv("ALLIANCE_CHROMIUM", str(tmp_path / "no-such-chromium"))
    with pytest.raises(ReportError, match="apt-get install chromium"):
        write_report(con, "s1", tmp_path / "a.pdf", fmt_name="pdf")
    assert not (tmp_path / "a.pdf").exists()


# --- headless Chromium --------------------------------------------------------------------------------------

#: Chromium's own background requests (update check, account list) that no switch turns off; they are
#: blocked by --host-resolver-rules and are not the page's. Anything else requested is a failure.
BROWSER_BACKGROUND = re.compile(r"^https?://(update\.googleapis\.com/service/update2/|accounts\.google\.com/ListAccounts"
                                r"|clients2\.google\.com/time/|redirector\.gvt1\.com/edgedl/chrome/dict/|www\.google\.com/async/)")


def _run_chromium(tmp_path: Path, page: Path, *extra: str, url_suffix: str = "") -> subprocess.CompletedProcess:
    profile = tmp_path / f"profile-{len(list(tmp_path.glob('profile-*')))}"
    cmd = chromium_args(str(CHROMIUM), profile) + ["--enable-logging=stderr", "--v=1", "--window-size=1200,2400",
                                                   *extra, page.resolve().as_uri() + url_suffix]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)


def _console(log: str) -> list[str]:
    return [line for line in log.splitlines() if ":CONSOLE" in line]


def _requests(log: str) -> list[str]:
    return re.findall(r"NotifyBeforeURLRequest: (\S+)", log)


@needs_chromium
def test_logging_catches_console_errors_and_requests(tmp_path):
    """The browser checks below can fail: a page with an error and a request is caught by both."""
    page = tmp_path / "bad.html"
    page.write_text('<!DOCTYPE html><html><body><img src="http://127.0.0.1:9/x.png">'
                    '<script>console.error("control-error")</script></body></html>')
    proc = _run_chromium(tmp_path, page, "--dump-dom")
    assert any("control-error" in line for line in _console(proc.stderr))
    assert "http://127.0.0.1:9/x.png" in _requests(proc.stderr)


@needs_chromium
def test_report_renders_in_headless_chromium(con, tmp_path):
    page = write_html_report(con, "s1", tmp_path / "s1.html")
    n_events = len(derive.events(load_report_data(con, "s1")))

    proc = _run_chromium(tmp_path, page, "--dump-dom")
    dom = proc.stdout
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert _console(proc.stderr) == []  # no console errors, warnings or CSP violations
    page_requests = [u for u in _requests(proc.stderr) if not BROWSER_BACKGROUND.match(u)]
    assert page_requests == []
    assert f'data-report-ready="{n_events}"' in dom and 'data-report-error="' not in dom  # the script ran
    assert 'id="timeline-ev0"' in dom and 'class="figure-svg"' in dom and 'role="button"' in dom

    # a link to an event selects it through its timeline point's click handler
    proc = _run_chromium(tmp_path, page, "--dump-dom", url_suffix="#ev1")
    detail = proc.stdout[proc.stdout.index('id="event-detail"'):]
    detail = detail[:detail.index("</div>")]
    event = derive.events(load_report_data(con, "s1"))[1]
    assert event.label in unescape(detail) and unescape(event.quote)[:20] in unescape(detail)
    assert 'data-event="ev1" aria-current="true"' in proc.stdout
    assert _console(proc.stderr) == []

    shot = tmp_path / "s1.png"
    proc = _run_chromium(tmp_path, page, f"--screenshot={shot}")
    assert shot.is_file() and shot.stat().st_size > 10_000, proc.stderr[-2000:]
    from PIL import Image

    with Image.open(shot) as im:
        rgb = np.asarray(im.convert("RGB")).astype(int)
    # the timeline is visible: therapist blue (#0072B2) and client orange (#E69F00) pixels on screen
    blue = (np.abs(rgb - (0, 114, 178)).sum(axis=2) < 30).sum()
    orange = (np.abs(rgb - (230, 159, 0)).sum(axis=2) < 30).sum()
    assert blue > 500 and orange > 200


@needs_chromium
def test_pdf_has_pages(con, tmp_path):
    pdf = write_report(con, "s1", tmp_path / "s1.pdf", fmt_name="pdf")
    data = pdf.read_bytes()
    assert data.startswith(b"%PDF")
    assert len(re.findall(rb"/Type\s*/Page(?![a-zA-Z])", data)) > 0


def test_report_leads_with_the_miti_summary_and_the_turns_behind_each_code(tmp_path, dialogue):
    """Show the MITI table against thresholds, the agreement with experts and each code's turns.

    Without codes the section says the session was not coded.
    """
    from pipeline.codes.coder import ARTEFACT_DIR, ARTEFACT_NAME

    c = db.connect(tmp_path / "codes.duckdb")
    db.write_session(c, make_analysis(*dialogue), run_id="r1", pipeline_version="0.1.0")
    html = write_html_report(c, "s1", tmp_path / "plain.html").read_text()
    assert 'id="miti"' in html and "was not coded" in html
    if not (ARTEFACT_DIR / ARTEFACT_NAME).is_file():
        pytest.skip("no shipped coder artefact")
    from pipeline.engine.runtime import get_process_coder

    coder, encoder = get_process_coder()
    audio = Audio(np.zeros(22, dtype=np.float32), 1, "cd" * 32, "x.wav", "WAV", 16_000, 1)
    meta = SessionMeta("s2", "c1", "t1", dt.date(2026, 1, 3))
    consent = parse_consent({"session_id": "s2", "client_id": "c1", "scope": "research",
                             "consented_on": "2026-01-01", "consented_by": ["client"]}, source="test")
    words, turns = dialogue
    coded = analyse(audio, Transcript(tuple(words), "en", 0.99, "fake", "fake-asr"),
                    Diarization(tuple(turns), ("SPEAKER_00", "SPEAKER_01")), meta=meta, consent=consent,
                    diarization_model="fake", coder=coder, encoder=encoder)
    assert coded.codes is not None and len(coded.codes.turns) == len([t for t in coded.turns if t.text.strip()])
    db.write_session(c, coded, run_id="r2", pipeline_version="0.1.0")
    html = unescape(write_html_report(c, "s2", tmp_path / "coded.html").read_text())
    assert 'id="miti-table"' in html and "Reflection-to-question ratio" in html and "MITI 4.2.1" in html
    assert "Agreement with expert MI coders" in html and "<details" in html
    assert html.index('id="miti"') < html.index('id="glance"')
    stored = c.execute("SELECT count(*) FROM coded_utterances WHERE session_id = 's2'").fetchone()[0]
    assert stored == len(coded.codes.turns)
    c.close()
