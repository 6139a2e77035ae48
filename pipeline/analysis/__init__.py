"""Analysis: words to speakers, therapist vs client, indicators, the per-session composition, text-only path."""
