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

Run ids are dropped and durations (``duration_s``) given in whole seconds, and comparison and import ids
are pseudonymised too, so rows exported to two studies cannot be joined on them. Dates (``recorded_on``)
are kept: trajectories need them. They are quasi-identifiers; a study that
must hide them can drop the column in its export.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import duckdb
import pandas as pd

from pipeline.errors import ConfigError
from pipeline.research.pseudonyms import (  # noqa: F401  (load_study_key, pseudonym: re-exported for callers)
    load_study_key,
    pseudonym,
    pseudonymise,
)
from pipeline.storage.duck import connect_memory


@dataclass(frozen=True)
class ResearchRelation:
    """A relation researchers may read: its SQL over the database.

    A callable builds SQL whose columns follow the data (the wide tables).
    """

    name: str
    description: str
    sql: str | Callable[[duckdb.DuckDBPyConnection], str]

    def sql_for(self, con: duckdb.DuckDBPyConnection) -> str:
        return self.sql(con) if callable(self.sql) else self.sql


def _session_wide(con: duckdb.DuckDBPyConnection) -> str:
    from pipeline.research.dataset import session_wide_sql

    return session_wide_sql(con, duplicates="latest")


def _indicators_wide(con: duckdb.DuckDBPyConnection) -> str:
    return "SELECT w.* FROM indicators_wide w WHERE w.session_id IN (SELECT session_id FROM research_sessions)"


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
    ResearchRelation("comparison_runs", "one row per comparison run: when, how many tests, correction (no "
                     "options or command line)",
                     "SELECT comparison_id, created_at, n_tests, correction, pipeline_version FROM comparison_runs"),
    ResearchRelation("discrepancy_flags", "sessions where process signals and ratings disagree",
                     f"SELECT * FROM discrepancy_flags WHERE session_id IN {_RESEARCH}"),
    ResearchRelation("client_trajectories", "per-client series with baseline and reliable change",
                     f"SELECT * FROM client_trajectories WHERE client_id IN {_RESEARCH_CLIENTS}"),
    ResearchRelation("indicators_wide", "one row per session, one column per indicator and role "
                     "(talk_time_share_client; session-level: bare name)", _indicators_wide),
    ResearchRelation("session_wide", "one row per session: keys, session_number, days_since_first, every indicator "
                     "and the self-report scores linked within 3 days (sr_<instrument>_<scale>, sr_..._link_days); "
                     "a session with two scores of a measure shows the latest import's", _session_wide),
    ResearchRelation("self_report_items", "item values and item scores of research-scope administrations",
                     "SELECT * FROM research_self_report_items"),
    ResearchRelation("self_report_instruments", "the instrument definitions each import scored with",
                     "SELECT * FROM research_self_report_instruments"),
)


def research_relations(con: duckdb.DuckDBPyConnection, *, key: bytes,
                       names: Sequence[str] | None = None) -> dict[str, tuple[pd.DataFrame, list[str]]]:
    """Research relations (all, or ``names``) as pseudonymised frames with the names of their DATE columns.

    ``indicators_wide`` is brought up to date first when the connection can write.
    """
    chosen = [r for r in RELATIONS if names is None or r.name in names]
    if any(not isinstance(r.sql, str) for r in chosen):
        _sync_wide(con)
    out = {}
    for r in chosen:
        rel = con.sql(r.sql_for(con))
        dates = [c for c, t in zip(rel.columns, rel.types, strict=True) if str(t) == "DATE"]
        out[r.name] = (pseudonymise(rel.df(), key=key), dates)
    return out


def _sync_wide(con: duckdb.DuckDBPyConnection) -> None:
    from pipeline.storage.wide import sync_indicators_wide

    try:
        sync_indicators_wide(con)
    except duckdb.Error:  # a read-only connection: the table is as the last writer left it
        pass


def relations_in(sql: str) -> list[str]:
    """The research relations a query names (as whole words); all of them when it names none."""
    import re

    named = [r.name for r in RELATIONS if re.search(rf"\b{re.escape(r.name)}\b", sql, flags=re.IGNORECASE)]
    return named or [r.name for r in RELATIONS]


def research_sandbox(con: duckdb.DuckDBPyConnection, *, key: bytes,
                     names: Sequence[str] | None = None) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB of the pseudonymised research relations (all, or ``names``), sealed off from files."""
    box = research_database(con, key=key, names=names)
    box.execute("SET enable_external_access = false")
    box.execute("SET lock_configuration = true")
    return box


def research_database(con: duckdb.DuckDBPyConnection, *, key: bytes,
                      names: Sequence[str] | None = None) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB holding only the pseudonymised research relations (the export writes from it).

    DATE columns (``recorded_on``, ``on_date``, ...) stay DATE (pandas would make them timestamps).
    """
    frames = research_relations(con, key=key, names=names)
    box = connect_memory()
    for name, (frame, dates) in frames.items():
        box.register(f"_frame_{name}", frame)
        cast = f" REPLACE ({', '.join(f'CAST({d} AS DATE) AS {d}' for d in dates)})" if dates else ""
        box.execute(f"CREATE TABLE {name} AS SELECT *{cast} FROM _frame_{name}")
        box.unregister(f"_frame_{name}")
    return box


def check_relation(name: str) -> None:
    """Raise ConfigError unless ``name`` is a research relation."""
    known = [r.name for r in RELATIONS]
    if name not in known:
        raise ConfigError(f"{name!r} is not available to researchers; research relations: {', '.join(known)}")


def run_research_query(db_path, sql: str, *, key: bytes, actor: str) -> pd.DataFrame:
    """A researcher's own query (``alliance query``), run in the sealed sandbox of the relations it names.

    The audit log keeps the query's SHA-256 and length only: its text may quote ids or free text.

    Raises
    ------
    ConfigError
        The query failed in the sandbox (syntax, an unknown relation, a file or network access).
    StorageError
        The database cannot be opened.
    """
    import hashlib

    from pipeline.storage import audit, db

    with db.open(db_path, create=False) as con:
        box = research_sandbox(con, key=key, names=relations_in(sql))  # only the relations the query names
        digest = hashlib.sha256(sql.encode("utf-8", "surrogatepass")).hexdigest()
        audit.record(con, action="query", actor=actor, role="researcher",
                     detail=f"sql sha256 {digest} ({len(sql)} chars)")
    try:
        return box.execute(sql).df()
    except duckdb.Error as e:
        raise ConfigError(f"query failed: {e}") from e
    finally:
        box.close()
