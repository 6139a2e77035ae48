"""Keyed pseudonyms and the columns a researcher never gets: the study key, ids to pseudonyms, text and links out.

Pseudonyms are HMAC-SHA-256 of the id with the study key: stable within a study, unlinkable across studies.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from pathlib import Path

import pandas as pd

from pipeline.errors import ConfigError
from pipeline.storage.encryption import read_key_file

STUDY_KEY_FILE_ENV = "ALLIANCE_STUDY_KEY_FILE"

#: Column -> pseudonym prefix.
ID_COLUMNS = {"session_id": "S", "client_id": "C", "therapist_id": "T", "administration_id": "A",
              "comparison_id": "K", "import_id": "I"}
#: Columns that would link two studies' exports of the same database (every row of a run shares its id):
#: never given to a researcher.
LINK_COLUMNS = frozenset({"run_id"})
#: Durations are given in whole seconds: a duration to the millisecond would match a session across studies.
DURATION_COLUMNS = frozenset({"duration_s"})
#: Columns that may hold free text or quotes: never given to a researcher.
TEXT_COLUMNS = frozenset({"text", "detail", "message", "quote", "note", "source_path", "command", "role_evidence"})



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
            "(create one with `alliance study keygen STUDY.key`; a study key is not a database key)"
        )
    return read_key_file(path, what="study key").encode("ascii")


def pseudonym(value: str, *, kind: str, key: bytes) -> str:
    """Keyed pseudonym of an id (``kind`` is a column name of :data:`ID_COLUMNS`)."""
    digest = hmac.new(key, f"{kind}:{value}".encode(), hashlib.sha256).hexdigest()
    return f"{ID_COLUMNS[kind]}-{digest[:16]}"


def pseudonymise(frame: pd.DataFrame, *, key: bytes) -> pd.DataFrame:
    """A copy of ``frame`` without text and run-id columns, durations in whole seconds, ids as pseudonyms."""
    out = frame.drop(columns=[c for c in frame.columns if c in TEXT_COLUMNS or c in LINK_COLUMNS])
    for column in out.columns:
        if column in DURATION_COLUMNS:
            out[column] = pd.to_numeric(out[column], errors="coerce").round(0).astype("Int64")
    for column in out.columns:
        if column in ID_COLUMNS:
            # one HMAC per distinct id, not per row (100k sessions: 8.6M indicator rows, ~100k ids)
            values = out[column]
            mapping = {v: pseudonym(str(v), kind=column, key=key) for v in values.dropna().unique()}
            out[column] = values.map(mapping).astype(object).where(values.notna(), None)
    return out
