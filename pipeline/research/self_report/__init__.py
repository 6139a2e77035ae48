"""Client self-report measures: instruments, validation, scoring and import into DuckDB."""
