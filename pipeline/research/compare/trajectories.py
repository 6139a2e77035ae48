"""Per-client trajectories in SQL over the staged tables, with baseline and reliable change."""

from __future__ import annotations

import duckdb
import numpy as np
import pandas as pd

from pipeline.research.compare.options import RC_TOLERANCE
from pipeline.research.compare.staging import Staged, first_of_session


def trajectories_sql(series: str = "self_report") -> str:
    """Per-client series with the client's own baseline and reliable-change markers, over the staged tables.

    Occasion: the client's session number (research-scope sessions in date order) for a session's value; for
    a client-level score, the number of the client's sessions recorded on or before its date (0: before the
    first). The baseline is the first value of the series (by occasion, then date); the change from it is
    rounded to 9 decimals and compared with the instrument's reliable-change criterion (ORS: 5 points, higher =
    better) with a tolerance of 1e-9: ``improved``, ``deteriorated``, ``no_reliable_change``; NULL where no
    criterion exists (all indicators).
    """
    indicator_part = (
        " UNION ALL SELECT i.client_id, 'indicator', i.name, i.speaker_role, NULL, ss.session_number, i.session_id,"
        " ss.recorded_on, i.x, NULL FROM _cmp_ind i JOIN _cmp_sessions ss USING (session_id)"
        if series == "all" else "")
    return (
        "WITH v AS ("
        " SELECT r.client_id, 'self_report' AS series, r.instrument || '.' || r.scale AS name,"
        " NULL::VARCHAR AS speaker_role, nullif(r.timepoint, '') AS timepoint,"
        " coalesce(ss.session_number, (SELECT count(*) FROM _cmp_sessions c WHERE c.client_id = r.client_id"
        "  AND c.recorded_on <= r.on_date)) AS occasion, r.session_id, r.on_date, r.value,"
        " r.reliable_change AS criterion"
        " FROM _cmp_scores r LEFT JOIN _cmp_sessions ss USING (session_id)"
        f"{indicator_part})"
        " SELECT client_id, series, name, speaker_role, timepoint, occasion::INTEGER AS occasion, session_id,"
        " on_date, value, first_value(value) OVER w AS baseline,"
        " round(value - first_value(value) OVER w, 9) AS change_from_baseline,"
        " CASE WHEN criterion IS NULL THEN NULL"
        f" WHEN value - first_value(value) OVER w >= criterion - {RC_TOLERANCE} THEN 'improved'"
        f" WHEN value - first_value(value) OVER w <= -criterion + {RC_TOLERANCE} THEN 'deteriorated'"
        " ELSE 'no_reliable_change' END AS reliable_change"
        " FROM v WINDOW w AS (PARTITION BY client_id, series, name, speaker_role, timepoint"
        " ORDER BY occasion, on_date NULLS LAST, session_id ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)")



def stage_indicator_rows(con: duckdb.DuckDBPyConnection, staged: Staged) -> None:
    """Create ``_cmp_ind`` (session_id, client_id, name, speaker_role, x) for ``--trajectories all``.

    The staged values in long form: one row per session and indicator.
    """
    con.execute("CREATE OR REPLACE TEMP TABLE _cmp_ind (session_id VARCHAR, client_id VARCHAR, name VARCHAR,"
                " speaker_role VARCHAR, x DOUBLE)")
    first = first_of_session(staged)
    x = np.where(first[:, None], staged.x, np.nan)
    rows, cols = np.nonzero(~np.isnan(x))
    roles = np.array([r for _, r in staged.indicators], dtype=object)[cols]
    frame = pd.DataFrame({"session_id": staged.session_id[rows], "client_id": staged.client_id[rows],
                          "name": np.array([n for n, _ in staged.indicators], dtype=object)[cols],
                          "speaker_role": np.where(roles == "session", None, roles), "x": x[rows, cols]})
    con.register("_cmp_ind_frame", frame)
    try:
        con.execute("INSERT INTO _cmp_ind SELECT * FROM _cmp_ind_frame")
    finally:
        con.unregister("_cmp_ind_frame")
