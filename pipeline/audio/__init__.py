"""Audio in: decode, validate at the boundary, down-mix and resample to 16 kHz (`decode`)."""
