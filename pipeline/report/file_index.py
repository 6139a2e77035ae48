"""Which hashed file belongs to which session: an owner-only index for the roles allowed to know.

Report, summary and transcript files are named ``session-HASH.EXT`` so that no id reaches a file name. A
clinician looking for last week's report, or a supervisor collecting a batch's files, needs the way back:
:func:`file_index` lists the files recorded in ``report_files`` (only those still on disk) with their
session, client, therapist and date, for a clinician only their own therapist's sessions, for a supervisor
or admin every session. Researchers get none: the index joins ids to clinical files, which is what their
pseudonymous view withholds.

The index names session ids, so it is itself a session file: the caller records its path for every
session it lists (kind ``file_index``), and erasing any of those sessions deletes it (no list of ids
outlives a withdrawal). Written owner-only (0600) as TSV.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass
from pathlib import Path

import duckdb

from pipeline.csv_safety import csv_safe
from pipeline.errors import AccessDeniedError
from pipeline.private_files import write_private

#: Roles that may see an index, and the columns of the TSV.
INDEX_ROLES = ("clinician", "supervisor", "admin")
COLUMNS = ("session_id", "client_id", "therapist_id", "recorded_on", "kind", "path")


@dataclass(frozen=True)
class IndexRow:
    session_id: str
    client_id: str
    therapist_id: str
    recorded_on: dt.date | None
    kind: str
    path: str


def file_index(con: duckdb.DuckDBPyConnection, *, role: str, therapist: str | None = None) -> list[IndexRow]:
    """The session files ``role`` may see (clinician: ``therapist``'s sessions), oldest session first.

    Raises
    ------
    AccessDeniedError
        A researcher, an unknown role, or a clinician without ``therapist``.
    """
    if role not in INDEX_ROLES:
        raise AccessDeniedError(f"role {role!r} gets no file index (it joins ids to clinical files); one of "
                                f"{', '.join(INDEX_ROLES)}")
    if role == "clinician" and not therapist:
        raise AccessDeniedError("a clinician must name themselves with --therapist ID (or use --role supervisor)")
    rows = con.execute(
        "SELECT DISTINCT s.session_id, s.client_id, s.therapist_id, s.recorded_on, f.kind, f.path "
        "FROM report_files f JOIN sessions s USING (session_id) "
        "WHERE f.kind <> 'file_index' AND (? IS NULL OR s.therapist_id = ?) "
        "ORDER BY s.recorded_on NULLS LAST, s.session_id, f.kind, f.path",
        [therapist if role == "clinician" else None] * 2).fetchall()
    return [IndexRow(*r) for r in rows if Path(r[5]).is_file()]


def index_name(role: str, therapist: str | None) -> str:
    """``files-all.tsv`` (supervisor, admin) or ``files-HASH.tsv`` (a clinician; HASH from the therapist id)."""
    if role == "clinician" and therapist:
        return f"files-{hashlib.sha256(therapist.encode('utf-8')).hexdigest()[:16]}.tsv"
    return "files-all.tsv"


def to_tsv(rows: list[IndexRow]) -> str:
    """Tab-separated with a header; cells a spreadsheet would run as formulas get a leading ``'``."""
    def cell(value: object) -> str:
        text = "" if value is None else value.isoformat() if isinstance(value, dt.date) else str(value)
        return str(csv_safe(" ".join(text.split())))

    lines = ["\t".join(COLUMNS)]
    lines += ["\t".join(cell(getattr(r, c)) for c in COLUMNS) for r in rows]
    return "\n".join(lines) + "\n"


def write_index(rows: list[IndexRow], path: Path | str) -> Path:
    """Write the index owner-only (0600; a new folder 0700), never visible half-written."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)  # an existing folder keeps its mode
    return write_private(path, to_tsv(rows).encode("utf-8"))
