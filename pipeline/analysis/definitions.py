"""Every indicator's definition and its two grades, from ``indicator_definitions.json`` (versioned data).

Two separate facts, never one word:

- ``accuracy``: how well the number is measured. ``kind`` is ``synthetic_truth`` (against renders with exact
  truth), ``expert_codes`` (against human experts' codes or transcripts), ``realistic_bench`` (against the truth
  of degraded renders, docs/realistic_bench.md), ``model_labels`` (against language-model annotation passes, not
  human experts) or ``not_measured``; ``figure`` and ``source`` say what was measured and where.
- ``evidence``: what the number is known to say about the alliance or outcome. ``status`` is ``supported``
  (shown to move with alliance or outcome ratings), ``none_yet`` or ``contradicted`` (evidence against what its
  name suggests); ``note`` gives the figures and ``source`` where they are.

A well-measured number is not thereby an alliance sign: only ``supported`` evidence lets a comparison read an
indicator as strain (today none has it). ``docs/data_dictionary.md`` is checked against this file by a test.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib.resources import files
from typing import Literal

AccuracyKind = Literal["synthetic_truth", "expert_codes", "realistic_bench", "model_labels", "not_measured"]
ACCURACY_KINDS: tuple[str, ...] = ("synthetic_truth", "expert_codes", "realistic_bench", "model_labels",
                                   "not_measured")
EvidenceStatus = Literal["supported", "none_yet", "contradicted"]
EVIDENCE_STATUSES: tuple[str, ...] = ("supported", "none_yet", "contradicted")

#: Plain words for each accuracy kind and evidence status (report, summary, codebook, compare).
ACCURACY_WORDS: dict[str, str] = {
    "synthetic_truth": "measured against synthetic truth",
    "expert_codes": "measured against expert codes",
    "realistic_bench": "measured on the realistic bench",
    "model_labels": "measured against language-model labels (not human experts)",
    "not_measured": "accuracy not measured",
}
EVIDENCE_WORDS: dict[str, str] = {
    "supported": "supported: shown to move with alliance or outcome ratings",
    "none_yet": "no evidence yet about alliance or outcome",
    "contradicted": "contradicted: evidence against what its name suggests",
}


@dataclass(frozen=True)
class Accuracy:
    """How well an indicator's number is measured: the kind of reference, the figure, where it is reported."""

    kind: AccuracyKind
    figure: str
    source: str


@dataclass(frozen=True)
class Evidence:
    """What an indicator is known to say about the alliance or outcome, with the figures and their source."""

    status: EvidenceStatus
    note: str
    source: str


@dataclass(frozen=True)
class IndicatorDefinition:
    """One indicator: roles it is measured for, unit, definition, and its accuracy and evidence apart."""

    name: str
    roles: str
    unit: str
    definition: str
    convention: str
    family: str
    time_based: bool
    accuracy: Accuracy
    evidence: Evidence


@cache
def _document() -> dict:
    return json.loads(files("pipeline.analysis").joinpath("indicator_definitions.json").read_text("utf-8"))


def definitions_version() -> str:
    """The version of the definitions file (follows the markers version)."""
    return str(_document()["version"])


def _definition(row: dict) -> IndicatorDefinition:
    acc, ev = row["accuracy"], row["evidence"]
    if acc["kind"] not in ACCURACY_KINDS:
        raise ValueError(f"indicator {row['name']!r}: accuracy {acc['kind']!r} is not one of {ACCURACY_KINDS}")
    if ev["status"] not in EVIDENCE_STATUSES:
        raise ValueError(f"indicator {row['name']!r}: evidence {ev['status']!r} is not one of {EVIDENCE_STATUSES}")
    return IndicatorDefinition(**{**row, "accuracy": Accuracy(**acc), "evidence": Evidence(**ev)})


@cache
def definitions() -> dict[str, IndicatorDefinition]:
    """Every indicator's definition, by name.

    Raises
    ------
    ValueError
        An accuracy kind or evidence status outside the vocabularies above.
    """
    return {row["name"]: _definition(row) for row in _document()["indicators"]}


def accuracy_of(name: str) -> AccuracyKind:
    """How an indicator's accuracy is known (``not_measured`` for a name without a definition)."""
    d = definitions().get(name)
    return d.accuracy.kind if d is not None else "not_measured"


def evidence_of(name: str) -> EvidenceStatus:
    """What is known about an indicator and the alliance or outcome (``none_yet`` without a definition)."""
    d = definitions().get(name)
    return d.evidence.status if d is not None else "none_yet"


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
