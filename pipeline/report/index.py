"""Index pages: one HTML page per therapist listing their sessions with links to the session reports."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb

from pipeline.private_files import write_private
from pipeline.report.render import _environment
from pipeline.report.summary import DISCLAIMER, report_stem

_QUERY = """
SELECT s.session_id, s.client_id, s.recorded_on, s.duration_s, s.role_confidence, s.processed_at,
       max(i.value) FILTER (WHERE i.name = 'talk_time_share' AND i.speaker_role = 'client') AS client_share,
       max(i.value) FILTER (WHERE i.name = 'long_silence_count' AND i.speaker_role IS NULL) AS silences,
       max(i.value) FILTER (WHERE i.name = 'mi_reflection_question_ratio') AS rq,
       max(i.value) FILTER (WHERE i.name = 'mi_complex_reflection_pct') AS cr,
       max(i.value) FILTER (WHERE i.name = 'mi_change_talk_share') AS ct
FROM sessions s LEFT JOIN indicators i USING (session_id)
WHERE s.therapist_id = ?
GROUP BY ALL
ORDER BY s.recorded_on DESC NULLS LAST, s.processed_at DESC
"""


def write_therapist_indexes(con: duckdb.DuckDBPyConnection, reports_dir: Path,
                            *, therapist_ids: list[str] | None = None) -> list[Path]:
    """Write ``index-<therapist>.html`` into ``reports_dir`` for each therapist (all by default).

    Links point to ``<session_id>.html`` beside the index when that file exists.
    """
    reports_dir = Path(reports_dir)
    reports_dir.mkdir(parents=True, exist_ok=True)
    if therapist_ids is None:
        therapist_ids = [r[0] for r in con.execute("SELECT DISTINCT therapist_id FROM sessions ORDER BY 1").fetchall()]
    template = _environment().get_template("index.html.j2")
    written = []
    for therapist in therapist_ids:
        rows = []
        found = con.execute(_QUERY, [therapist]).fetchall()
        for sid, client, recorded_on, duration_s, conf, _processed_at, share, silences, rq, cr, ct in found:
            report = f"{report_stem(sid)}.html"
            rows.append({
                "session_id": sid, "client_id": client, "recorded_on": recorded_on,
                "length": f"{int(duration_s // 60)}:{int(duration_s % 60):02d}",
                "client_share": "n/a" if share is None else f"{100 * share:.0f} %",
                "silences": "n/a" if silences is None else f"{silences:.0f}",
                # MITI 4.2.1 summaries from the MI coder (n/a: not coded, or no question/reflection/CT or ST)
                "rq": "n/a" if rq is None else f"{rq:.2f}",
                "cr": "n/a" if cr is None else f"{cr:.0f} %",
                "ct": "n/a" if ct is None else f"{100 * ct:.0f} %",
                "role_confidence": "n/a" if conf is None else f"{conf:.2f}",
                "low_confidence": conf is None or conf < 0.5,
                "report": report if (reports_dir / report).is_file() else None,
            })
        path = reports_dir / f"{report_stem(therapist, kind='index')}.html"
        html = template.render(therapist_id=therapist, sessions=rows, disclaimer=DISCLAIMER,
                               written_at=dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"))
        write_private(path, html.encode("utf-8"))  # owner-only: it joins session and client ids
        written.append(path)
    return written
