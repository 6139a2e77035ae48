"""Evaluation code (not installed): renders with exact truth, WER and DER, for bench/ and tests."""
