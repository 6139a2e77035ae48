"""Thin Prefect flows: they compose the plain functions of ``pipeline``."""

import pipeline  # noqa: F401  (sets the offline, telemetry-off environment before Prefect starts)
