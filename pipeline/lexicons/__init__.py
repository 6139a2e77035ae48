"""Versioned word lists used by the markers (data files, not literals in code)."""

from __future__ import annotations

import json
import re
from functools import cache
from importlib.resources import files
from typing import Any

_APOSTROPHES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u02bc": "'"})
_STRIP = re.compile(r"[^\w']+")


@cache
def load_lexicon(name: str) -> dict[str, Any]:
    """Load ``pipeline/lexicons/<name>.json`` (cached; treat the result as read-only)."""
    return json.loads(files(__package__).joinpath(f"{name}.json").read_text(encoding="utf-8"))


def normalise_token(text: str) -> str:
    """Lower-case, unify apostrophes, strip surrounding punctuation: ``"We're,"`` -> ``"we're"``."""
    return _STRIP.sub("", text.translate(_APOSTROPHES).lower()).strip("'")
