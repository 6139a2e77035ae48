"""alliance-pipeline: consented session recordings in, alliance-process indicators out.

Indicators are process signals for reflection, never diagnoses or clinical judgements.
"""

from pipeline.offline import apply_offline_environment

apply_offline_environment()

__version__ = "0.1.0"
#: Stored with every session; a session is keyed by its audio's SHA-256 and this version.
PIPELINE_VERSION = __version__
