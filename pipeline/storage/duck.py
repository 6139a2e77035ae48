"""How the package makes every DuckDB connection: no extension is ever installed or loaded behind its back.

A foreign file (a SQLite database passed as ``--db``) or a query needing an extension would otherwise make
DuckDB fetch one over the network.
"""

from __future__ import annotations

import duckdb

SAFE_CONFIG = {"autoinstall_known_extensions": False, "autoload_known_extensions": False}


def connect_memory(**config: object) -> duckdb.DuckDBPyConnection:
    """An in-memory connection with :data:`SAFE_CONFIG` (plus ``config``)."""
    return duckdb.connect(config={**SAFE_CONFIG, **config})
