"""Where a deployment's relative paths point: the explicit data folder ``ALLIANCE_DATA_DIR``, never the checkout.

A Prefect process worker runs a deployment's flow in the working directory ``prefect.yaml`` sets (the code
checkout, for the entrypoint to import): a relative ``db_path`` such as the default ``alliance.duckdb`` would
put clinical data into the project's own folder. In a deployment run, ``source``, ``db_path``,
``reports_dir`` and ``allowed_root`` given relative are resolved against ``ALLIANCE_DATA_DIR`` (absolute,
outside the code checkout); without it they are refused with a message saying so. Absolute paths are used
as given. Runs started in-process (``alliance batch``, tests) keep the caller's working directory.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from pipeline.engine.manifest import is_inside
from pipeline.errors import ConfigError

#: The environment variable naming a deployment's data folder (set it where the worker starts).
DATA_DIR_ENV = "ALLIANCE_DATA_DIR"

#: The code checkout (the folder holding ``flows/`` and ``prefect.yaml``).
CODE_ROOT = Path(__file__).resolve().parents[1]


def in_deployment() -> bool:
    """Whether this flow run was started from a deployment (a worker), not called in-process."""
    from prefect.runtime import deployment

    return deployment.id is not None




def resolve_data_paths(paths: Mapping[str, str | None], *, env: Mapping[str, str] | None = None,
                       code_root: Path = CODE_ROOT) -> dict[str, str | None]:
    """``paths`` (parameter name to path) with each relative one under ``ALLIANCE_DATA_DIR``.

    Raises
    ------
    ConfigError
        A path is relative and ``ALLIANCE_DATA_DIR`` is not set, not absolute, or inside the code checkout.
    """
    env = os.environ if env is None else env
    relative = {name: value for name, value in paths.items() if value and not Path(value).is_absolute()}
    if not relative:
        return dict(paths)
    listed = ", ".join(f"{name}={value!r}" for name, value in relative.items())
    data = (env.get(DATA_DIR_ENV) or "").strip()
    if not data:
        raise ConfigError(
            f"this deployment run's {listed} is relative and {DATA_DIR_ENV} is not set: a relative path would "
            f"land in the worker's working directory (the code checkout). Set {DATA_DIR_ENV} to the data folder "
            "(an absolute path outside the checkout) where the worker starts, or pass absolute paths")
    root = Path(data)
    if not root.is_absolute():
        raise ConfigError(f"{DATA_DIR_ENV} must be an absolute path, got {data!r}")
    if is_inside(root, code_root):
        raise ConfigError(f"{DATA_DIR_ENV} {data} is inside the code checkout {code_root}: keep data outside it")
    return {name: str(root / value) if name in relative else value for name, value in paths.items()}
