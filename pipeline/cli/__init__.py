"""The ``alliance`` command line: one module per command family, shared arguments in ``args``."""
