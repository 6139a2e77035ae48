"""The markers and lexicons versions a comparison row names."""

from __future__ import annotations

import json
from collections.abc import Sequence


def lexicons_version() -> str:
    """The shipped word lists and their versions, e.g. ``alliance_work 1.0.0, backchannels 1.0.0, ...``."""
    from importlib.resources import files

    out = []
    for entry in sorted(files("pipeline.lexicons").iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".json"):
            version = json.loads(entry.read_text(encoding="utf-8")).get("version", "?")
            out.append(f"{entry.name[:-5]} {version}")
    return ", ".join(out)


def lexicons_for(markers_versions: Sequence[str]) -> str:
    from pipeline.analysis.indicators import MARKERS_VERSION

    if list(markers_versions) == [MARKERS_VERSION]:
        return lexicons_version()
    return "as shipped with markers " + " and ".join(markers_versions)
