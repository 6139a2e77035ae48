"""Every stored indicator of a session, grouped by family, with its accuracy and evidence apart.

Families and definitions come from :mod:`pipeline.analysis.definitions`; the two grades from the database
rows for the session's markers version (``grades``), falling back to the definitions file. Indicators whose
accuracy is ``not_measured`` and whose evidence is not ``supported`` are exploratory: the report folds them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from pipeline.analysis.definitions import definitions
from pipeline.report.summary import INDICATOR_ROWS, format_value, grade_cells

#: Family of stored indicators the definitions do not know (names added later or removed since).
OTHER_FAMILY = "Other stored indicators"
#: Formats by unit for indicators outside :data:`INDICATOR_ROWS`.
UNIT_FORMATS = {"count": "int", "words": "int", "turns": "int", "syllables": "int", "s": "s2"}
ROLES = ("therapist", "client", None)


@dataclass(frozen=True)
class IndicatorRow:
    name: str
    label: str
    unit: str
    definition: str
    therapist: str
    client: str
    session: str
    accuracy: str
    evidence: str
    exploratory: bool


@dataclass(frozen=True)
class IndicatorGroup:
    family: str
    shown: tuple[IndicatorRow, ...]
    folded: tuple[IndicatorRow, ...]


def _format(name: str, unit: str, value: float | None) -> str:
    how = next((h for n, _label, h in INDICATOR_ROWS if n == name), UNIT_FORMATS.get(unit, "f2"))
    return format_value(value, how)


def indicator_groups(indicators: Mapping[tuple[str, str | None], float | None],
                     grades: Mapping[str, tuple[str, str]] | None) -> tuple[IndicatorGroup, ...]:
    """Every indicator name stored for the session, one row each, grouped by family.

    The foundation family comes first, then the others in the order of the definitions file, unknown names
    last; within a family rows keep the definitions' order (unknown names sorted).
    """
    defs = definitions()
    labels = {n: label for n, label, _how in INDICATOR_ROWS}
    names = sorted({n for n, _role in indicators}, key=lambda n: (n not in defs, list(defs).index(n)
                                                                  if n in defs else 0, n))
    families: dict[str, list[IndicatorRow]] = {}
    for name in names:
        d = defs.get(name)
        unit = d.unit if d else ""
        stored = dict(grades or {})
        if name not in stored and d is not None:
            stored[name] = (d.accuracy.kind, d.evidence.status)
        acc_kind, ev_status = stored.get(name, ("not_measured", "none_yet"))
        accuracy, evidence = grade_cells(stored, name)
        values = [_format(name, unit, indicators[(name, r)]) if (name, r) in indicators else "" for r in ROLES]
        row = IndicatorRow(name, labels.get(name, name.replace("_", " ").capitalize()), unit,
                           d.definition if d else "", *values, accuracy, evidence,
                           acc_kind == "not_measured" and ev_status != "supported")
        families.setdefault(d.family if d else OTHER_FAMILY, []).append(row)
    order = sorted(families, key=lambda f: (not f.startswith("Foundation"), f == OTHER_FAMILY))
    return tuple(IndicatorGroup(f, tuple(r for r in families[f] if not r.exploratory),
                                tuple(r for r in families[f] if r.exploratory)) for f in order)
