"""Benchmark scripts (not installed): run from the project root as ``python -m bench.NAME``."""
