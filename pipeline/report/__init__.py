"""The clinician's per-session process report: a self-contained HTML page (optionally PDF).

``load_report_data`` reads a session from the database, ``render_html`` turns it into HTML with inline
SVG figures, ``write_html_report`` does both and writes the file. Indicators are process signals for
reflection, not clinical judgements; the report says so.
"""

from pipeline.report.data import ReportData, load_report_data
from pipeline.report.render import (
    ReportError,
    ReportOptions,
    html_to_pdf,
    render_html,
    write_html_report,
    write_report,
)

__all__ = ["ReportData", "ReportError", "ReportOptions", "html_to_pdf", "load_report_data", "render_html",
           "write_html_report", "write_report"]
