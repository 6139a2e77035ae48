"""What a researcher may see: research-scope sessions, no text, pseudonyms instead of ids.

A researcher never reads the database itself. :func:`research_relations` builds, from a writable or
read-only connection, pandas frames of the research relations below, each restricted to research-scope
consent, with every text column dropped and ``session_id``, ``client_id``, ``therapist_id`` and
``administration_id`` replaced by keyed pseudonyms:

``pseudonym = PREFIX-`` + the first 16 hex digits of HMAC-SHA-256(study key, ``kind:value``)

so the same person maps to the same pseudonym within one study (one key) and cannot be linked across
studies with different keys, nor reversed without the key. :func:`research_sandbox` loads those frames
into a fresh in-memory DuckDB with external access switched off and the configuration locked: the SQL
a researcher runs there cannot reach the database file, other files or the network.

Dates (``recorded_on``) are kept: trajectories need them. They are quasi-identifiers; a study that
must hide them can drop the column in its export.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pandas as pd

from pipeline.errors import ConfigError
from pipeline.storage.encryption import read_key_file

STUDY_KEY_FILE_ENV = "ALLIANCE_STUDY_KEY_FILE"

#: Column -> pseudonym prefix.
ID_COLUMNS = {"session_id": "S", "client_id": "C", "therapist_id": "T", "administration_id": "A"}
#: Columns that may hold free text or quotes: never given to a researcher.
TEXT_COLUMNS = frozenset({"text", "detail", "message", "quote", "note", "source_path", "command", "role_evidence"})


@dataclass(frozen=True)
class ResearchRelation:
    name: str
    description: str
    sql: str


_RESEARCH = "(SELECT session_id FROM research_sessions)"
_RESEARCH_CLIENTS = "(SELECT client_id FROM research_sessions)"

RELATIONS: tuple[ResearchRelation, ...] = (
    ResearchRelation("sessions", "one row per research-scope session", "SELECT * FROM research_sessions"),
    ResearchRelation("indicators", "indicators in long format (research-scope sessions)",
                     "SELECT * FROM research_indicators"),
    ResearchRelation("markers", "marker events with times, without quotes", "SELECT * FROM research_markers"),
    ResearchRelation("turns", "de-identified turns: direct identifiers replaced by [PERSON], [PLACE], ...",
                     "SELECT t.session_id, r.client_id, u.turn_index, u.speaker_role, u.start_s, u.end_s,"
                     " t.text AS text_deidentified, t.run_id FROM turns_deidentified t"
                     " JOIN turns u USING (session_id, turn_index) JOIN research_sessions r USING (session_id)"),
    ResearchRelation("self_report_scores", "self-report scale scores of research-scope sessions and clients",
                     "SELECT * FROM research_self_report_scores"),
    ResearchRelation("comparison_results", "indicator x measure correlations (aggregates)",
                     "SELECT * FROM comparison_results"),
    ResearchRelation("discrepancy_flags", "sessions where process signals and ratings disagree",
                     f"SELECT * FROM discrepancy_flags WHERE session_id IN {_RESEARCH}"),
    ResearchRelation("client_trajectories", "per-client series with baseline and reliable change",
                     f"SELECT * FROM client_trajectories WHERE client_id IN {_RESEARCH_CLIENTS}"),
)


def load_study_key(path: Path | str | None = None) -> bytes:
    """The study key from ``path`` or ``ALLIANCE_STUDY_KEY_FILE`` (same format as a database key file).

    Raises
    ------
    ConfigError
        No key file is given or set.
    """
    path = path or os.environ.get(STUDY_KEY_FILE_ENV)
    if not path:
        raise ConfigError(
            f"researcher access needs a study key: pass --study-key-file or set {STUDY_KEY_FILE_ENV} "
            "(create one with `alliance db keygen STUDY.key`)"
        )
    return read_key_file(path).encode("ascii")


def pseudonym(value: str, *, kind: str, key: bytes) -> str:
    """Keyed pseudonym of an id (``kind`` is a column name of :data:`ID_COLUMNS`)."""
    digest = hmac.new(key, f"{kind}:{value}".encode(), hashlib.sha256).hexdigest()
    return f"{ID_COLUMNS[kind]}-{digest[:16]}"


def pseudonymise(frame: pd.DataFrame, *, key: bytes) -> pd.DataFrame:
    """A copy of ``frame`` without text columns and with id columns replaced by pseudonyms."""
    out = frame.drop(columns=[c for c in frame.columns if c in TEXT_COLUMNS])
    for column in out.columns:
        if column in ID_COLUMNS:
            # one HMAC per distinct id, not per row (100k sessions: 8.6M indicator rows, ~100k ids)
            values = out[column]
            mapping = {v: pseudonym(str(v), kind=column, key=key) for v in values.dropna().unique()}
            out[column] = values.map(mapping).astype(object).where(values.notna(), None)
    return out


def research_relations(con: duckdb.DuckDBPyConnection, *, key: bytes) -> dict[str, pd.DataFrame]:
    """Every research relation as a pseudonymised frame."""
    return {r.name: pseudonymise(con.execute(r.sql).df(), key=key) for r in RELATIONS}


def research_sandbox(con: duckdb.DuckDBPyConnection, *, key: bytes) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB holding only the pseudonymised research relations, sealed off from files."""
    box = research_database(con, key=key)
    box.execute("SET enable_external_access = false")
    box.execute("SET lock_configuration = true")
    return box


def research_database(con: duckdb.DuckDBPyConnection, *, key: bytes) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB holding only the pseudonymised research relations (the export writes from it)."""
    frames = research_relations(con, key=key)
    box = duckdb.connect(config={"autoinstall_known_extensions": False, "autoload_known_extensions": False})
    for name, frame in frames.items():
        box.register(f"_frame_{name}", frame)
        box.execute(f"CREATE TABLE {name} AS SELECT * FROM _frame_{name}")
        box.unregister(f"_frame_{name}")
    return box


def check_relation(name: str) -> None:
    """Raise ConfigError unless ``name`` is a research relation."""
    known = [r.name for r in RELATIONS]
    if name not in known:
        raise ConfigError(f"{name!r} is not available to researchers; research relations: {', '.join(known)}")
