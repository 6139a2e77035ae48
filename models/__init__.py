"""Model manifest, offline assembly, checksum verification and loading paths."""
