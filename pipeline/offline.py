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


#: Prefect's home (its SQLite database of flow runs and logs, settings, the temporary server's files) sits
#: in the data folder, next to the database, owner-only: not in the user's ~/.prefect, shared by every
#: project and kept after a withdrawal.
PREFECT_HOME_NAME = ".alliance-prefect"


def prefect_home_for(db_path: str | os.PathLike[str]) -> str:
    """The Prefect home of a database: ``<database's folder>/.alliance-prefect``."""
    return os.path.join(os.path.dirname(os.path.abspath(db_path)), PREFECT_HOME_NAME)


def use_prefect_home(db_path: str | os.PathLike[str]) -> str | None:
    """Point Prefect at the database's folder (``PREFECT_HOME``, mode 0700), before Prefect is imported.

    Left alone when the user set ``PREFECT_HOME`` or ``PREFECT_API_URL`` (a long-lived server has its own
    home) or when Prefect is already imported (its settings are read then: a test harness, a notebook).
    Returns the home used, or None when left alone.
    """
    import sys

    if "prefect" not in sys.modules and os.path.isdir(prefect_home_for(db_path)):
        from pipeline.prefect_auth import configure_client

        configure_client(prefect_home_for(db_path))  # `alliance server`'s secret for a loopback PREFECT_API_URL
    if os.environ.get("PREFECT_HOME") or os.environ.get("PREFECT_API_URL") or "prefect" in sys.modules:
        return None
    home = prefect_home_for(db_path)
    try:
        from pipeline.private_files import private_dir

        private_dir(home)
    except OSError:
        return None  # a folder that cannot be written: the database check reports it in one line
    os.environ["PREFECT_HOME"] = home
    return home


def apply_offline_environment() -> None:
    """Set the telemetry-off and offline variables in this process (inherited by children)."""
    for key, value in FORCED_ENV.items():
        os.environ[key] = value
    for key, value in DEFAULT_ENV.items():
        os.environ.setdefault(key, value)
