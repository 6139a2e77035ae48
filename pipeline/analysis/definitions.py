"""Every indicator's definition and evidence grade, from ``indicator_definitions.json`` (versioned data).

Grades: ``validated`` (measured against ground truth or an external criterion; the figure is in
``evidence``), ``exploratory`` (defined, not yet validated) and ``contradicted`` (evidence against what
its name suggests). Nothing graded ``contradicted`` is shown to clinicians as a warning sign; the report
shows the grade beside every value. ``docs/data_dictionary.md`` is checked against this file by a test.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib.resources import files
from typing import Literal

Grade = Literal["validated", "exploratory", "contradicted"]
GRADES: tuple[str, ...] = ("validated", "exploratory", "contradicted")


@dataclass(frozen=True)
class IndicatorDefinition:
    """One indicator: roles it is measured for, unit, definition, and its evidence grade with the evidence."""

    name: str
    roles: str
    unit: str
    definition: str
    convention: str
    family: str
    time_based: bool
    grade: Grade
    evidence: str
    source: str


@cache
def _document() -> dict:
    return json.loads(files("pipeline.analysis").joinpath("indicator_definitions.json").read_text("utf-8"))


def definitions_version() -> str:
    """The version of the definitions file (follows the markers version)."""
    return str(_document()["version"])


@cache
def definitions() -> dict[str, IndicatorDefinition]:
    """Every indicator's definition, by name."""
    out = {}
    for row in _document()["indicators"]:
        if row["grade"] not in GRADES:
            raise ValueError(f"indicator {row['name']!r}: grade {row['grade']!r} is not one of {GRADES}")
        out[row["name"]] = IndicatorDefinition(**row)
    return out


def grade_of(name: str) -> Grade:
    """The evidence grade of an indicator (``exploratory`` for a name without a definition)."""
    d = definitions().get(name)
    return d.grade if d is not None else "exploratory"


@dataclass(frozen=True)
class MomentDetector:
    """A marker kind that points at a moment: what it detects, what it may indicate, and its measured precision.

    ``listed`` is true only when the held-out precision on the labelled moments reached the bar
    (docs/validation.md section 6); only listed detectors appear under "Moments to review".
    """

    kind: str
    detects: str
    may_indicate: str
    listed: bool
    precision: float | None
    n: int | None
    evidence: str


@cache
def moment_detectors() -> dict[str, MomentDetector]:
    """Every moment detector, by marker kind (``moment_detectors.json``)."""
    doc = json.loads(files("pipeline.analysis").joinpath("moment_detectors.json").read_text("utf-8"))
    return {kind: MomentDetector(kind=kind, **row) for kind, row in doc["detectors"].items()}


def listed_moment_kinds() -> tuple[str, ...]:
    """Marker kinds the report may list to clinicians under "Moments to review"."""
    return tuple(k for k, d in moment_detectors().items() if d.listed)
