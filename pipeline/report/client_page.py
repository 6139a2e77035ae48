"""The per-client page: each stored indicator's trend across the client's sessions (``alliance report --client``).

Pure functions over a DuckDB connection and :mod:`pipeline.report.data` values. Rows are grouped by family as
in the session report (:mod:`pipeline.report.indicator_table`); exploratory indicators (accuracy not measured,
no supported evidence) are folded and listed as values only, without a sparkline.
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb
import jinja2

from pipeline import PIPELINE_VERSION
from pipeline.analysis.definitions import definitions
from pipeline.errors import SessionNotFoundError
from pipeline.report import derive, figures
from pipeline.report.data import HistoryPoint, load_history
from pipeline.report.indicator_table import OTHER_FAMILY, UNIT_FORMATS
from pipeline.report.summary import DISCLAIMER, INDICATOR_ROWS, format_value, grade_cells, load_grades

CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'"
ROLE_ORDER = {"therapist": 0, "client": 1, None: 2}


@dataclass(frozen=True)
class ClientPage:
    client_id: str
    history: tuple[HistoryPoint, ...]
    grades: dict[str, tuple[str, str]]


def load_client_page(con: duckdb.DuckDBPyConnection, client_id: str, *, therapist_id: str | None = None
                     ) -> ClientPage:
    """The client's sessions, oldest first (only ``therapist_id``'s when given), with their indicators.

    Raises
    ------
    SessionNotFoundError
        No stored session of this client (visible to this therapist); the message does not say which.
    """
    rows = con.execute(
        "SELECT session_id, therapist_id FROM sessions WHERE client_id = ? "
        "ORDER BY coalesce(recorded_on, CAST(processed_at AS DATE)), processed_at, session_id", [client_id]).fetchall()
    visible = [sid for sid, tid in rows if therapist_id is None or tid == therapist_id]
    if not visible:
        raise SessionNotFoundError("no stored session of this client is visible to you")
    last = visible[-1]  # the same order as load_history: its history holds every visible session
    history = tuple(h for h in load_history(con, last) if h.session_id in set(visible))
    markers_version = con.execute("SELECT markers_version FROM sessions WHERE session_id = ?", [last]).fetchone()[0]
    return ClientPage(client_id, history, load_grades(con, markers_version))


def _format(name: str, value: float | None) -> str:
    d = definitions().get(name)
    how = next((h for n, _label, h in INDICATOR_ROWS if n == name), UNIT_FORMATS.get(d.unit if d else "", "f2"))
    return format_value(value, how)


def client_context(page: ClientPage) -> dict:
    """Everything the client template needs, figures rendered to SVG."""
    defs = definitions()
    labels = {n: label for n, label, _how in INDICATOR_ROWS}
    keys = sorted({k for h in page.history for k in h.indicators},
                  key=lambda k: (k[0] not in defs, list(defs).index(k[0]) if k[0] in defs else 0, k[0],
                                 ROLE_ORDER.get(k[1], 3)))
    families: dict[str, dict[str, list[dict]]] = {}
    for i, (name, role) in enumerate(keys):
        d = defs.get(name)
        acc_kind, ev_status = page.grades.get(name) or ((d.accuracy.kind, d.evidence.status) if d else
                                                         ("not_measured", "none_yet"))
        accuracy, evidence = grade_cells({name: (acc_kind, ev_status)}, name)
        exploratory = acc_kind == "not_measured" and ev_status != "supported"
        label = labels.get(name, name.replace("_", " ").capitalize())
        t = derive.trend(page.history, name, role, label)
        n_values = sum(v is not None for v in t.values)
        series = ", ".join(f"{sid}: {_format(name, v)}" for sid, v in zip(t.session_ids, t.values, strict=True))
        row = {"name": name, "role": role or "session", "label": label, "latest": _format(name, t.current),
               "n": n_values, "accuracy": accuracy, "evidence": evidence, "series": series,
               "svg": figures.trend_sparkline(t, prefix=f"c{i}") if n_values >= 2 and not exploratory else None}
        group = families.setdefault(d.family if d else OTHER_FAMILY, {"shown": [], "folded": []})
        group["folded" if exploratory else "shown"].append(row)
    order = sorted(families, key=lambda f: (not f.startswith("Foundation"), f == OTHER_FAMILY))
    return {"client_id": page.client_id, "csp": CSP, "disclaimer": DISCLAIMER, "pipeline_version": PIPELINE_VERSION,
            "sessions": [{"id": h.session_id, "recorded_on": h.recorded_on} for h in page.history],
            "groups": [{"family": f, **families[f]} for f in order]}


def render_client_html(page: ClientPage) -> str:
    env = jinja2.Environment(loader=jinja2.PackageLoader("pipeline.report", "templates"),
                             autoescape=jinja2.select_autoescape(["html", "j2"]), undefined=jinja2.StrictUndefined,
                             trim_blocks=True, lstrip_blocks=True)
    return env.get_template("client.html.j2").render(**client_context(page))
