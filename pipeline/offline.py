"""Keep every run offline and private.

Imported first by the package (``pipeline/__init__.py``), so every entry point (CLI, flows, tests,
benchmarks) sets these before pyannote.audio, onnxruntime, Hugging Face or Prefect are imported.
Telemetry switches are forced, not defaulted: a clinical tool must not phone home.
"""

from __future__ import annotations

import os

#: Forced on every run (see ../shared/MODELS.md for who phones home and how each is stopped).
FORCED_ENV = {
    "PYANNOTE_METRICS_ENABLED": "0",  # pyannote.audio 4 usage metrics
    "HF_HUB_OFFLINE": "1",  # never reach a model hub
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "ORT_DISABLE_TELEMETRY": "1",  # onnxruntime >= 1.29 telemetry
    "DO_NOT_TRACK": "1",  # Prefect (and other tools honouring the convention)
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",  # Prefect server telemetry
    "PREFECT_CLOUD_ENABLE_ORCHESTRATION_TELEMETRY": "false",
    "PREFECT_SERVER_UI_SHOW_PROMOTIONAL_CONTENT": "false",
}

#: Defaults a user may override.
DEFAULT_ENV = {
    # The first start of Prefect's temporary server on a fresh home took ~17 s on 2 cores (limit 20 s).
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "180",
    "TOKENIZERS_PARALLELISM": "false",
}


def apply_offline_environment() -> None:
    """Set the telemetry-off and offline variables in this process (inherited by children)."""
    for key, value in FORCED_ENV.items():
        os.environ[key] = value
    for key, value in DEFAULT_ENV.items():
        os.environ.setdefault(key, value)
