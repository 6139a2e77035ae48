"""Self-report instruments: item keys, ranges, subscales, reverse keying and the prorating rule.

Three instruments are built in (SRS, ORS, WAI-SR); others are declared in a TOML or JSON file
(:func:`load_instruments`). Scoring is a pure function of the answered items (:func:`score`).

Prorating rule (the same for every instrument, with per-scale limits)
---------------------------------------------------------------------
A scale (the total or a subscale) with ``k`` items of which ``m`` are missing is scored only if
``m <= max_missing`` for that scale; its score is then the mean of the answered (reverse-keyed where
declared) items times ``k`` for ``scoring = "sum"``, or that mean for ``scoring = "mean"``. With more
missing items the scale score is NULL and the reason is recorded. A value equal to one of the
instrument's declared ``missing_codes`` (e.g. 0 = "does not apply") counts as missing; any other value
outside ``[min, max]`` is an error, never coerced.
"""

from __future__ import annotations

import json
import math
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from pipeline.errors import InstrumentConfigError

Kind = Literal["alliance", "outcome", "empathy", "other"]
Scoring = Literal["sum", "mean"]

#: Name of the whole-instrument scale.
TOTAL = "total"
#: Scale scores (and changes between them) are rounded to this many decimals: item values are decimals as
#: marked on the form, and binary floating point must not turn a 5-point change into 4.999999999999998.
SCORE_DECIMALS = 9


@dataclass(frozen=True)
class Scale:
    """A scored set of items.

    Attributes
    ----------
    name : str
        ``"total"`` or the subscale's name.
    items : tuple of str
        Item keys, in instrument order.
    max_missing : int
        Most missing items for which the scale is still scored (prorated).
    """

    name: str
    items: tuple[str, ...]
    max_missing: int = 0


@dataclass(frozen=True)
class Instrument:
    """A self-report instrument's published structure.

    Attributes
    ----------
    key : str
        Short identifier used on the command line and in the database (``srs``).
    name, source : str
        Full name and the reference its structure is taken from.
    kind : {"alliance", "outcome", "empathy", "other"}
        ``alliance`` measures take part in discrepancy flags (``empathy``: client-rated empathy such as CARE,
        related to the alliance but not an alliance measure).
    items : tuple of str
        Item keys in instrument order (CSV column names in the wide format).
    min_value, max_value : float
        Inclusive response range of every item.
    scales : tuple of Scale
        The total (if scored) and subscales.
    reverse_keyed : tuple of str
        Items scored as ``min_value + max_value - value``.
    missing_codes : tuple of float
        Values meaning "not answered / does not apply": stored raw, scored as missing.
    scoring : {"sum", "mean"}
    concern_below : float or None
        Total below this flags a possible concern (SRS: 36; for outcome measures, the clinical cutoff).
    reliable_change : float or None
        Smallest change in the total counted as reliable (ORS: 5).
    """

    key: str
    name: str
    source: str
    kind: Kind
    items: tuple[str, ...]
    min_value: float
    max_value: float
    scales: tuple[Scale, ...]
    reverse_keyed: tuple[str, ...] = ()
    missing_codes: tuple[float, ...] = ()
    scoring: Scoring = "sum"
    concern_below: float | None = None
    reliable_change: float | None = None
    notes: str = ""

    def scale(self, name: str) -> Scale:
        for s in self.scales:
            if s.name == name:
                return s
        raise InstrumentConfigError(f"instrument {self.key!r} has no scale {name!r}; "
                                    f"scales: {[s.name for s in self.scales]}")

    def to_json(self) -> str:
        """The definition as JSON (stored with every import so scores stay interpretable)."""
        return json.dumps({
            "key": self.key, "name": self.name, "source": self.source, "kind": self.kind,
            "items": list(self.items), "min": self.min_value, "max": self.max_value,
            "subscales": {s.name: list(s.items) for s in self.scales if s.name != TOTAL},
            "max_missing": {s.name: s.max_missing for s in self.scales},
            "total": any(s.name == TOTAL for s in self.scales),
            "reverse_keyed": list(self.reverse_keyed), "missing_codes": list(self.missing_codes),
            "scoring": self.scoring, "concern_below": self.concern_below,
            "reliable_change": self.reliable_change, "notes": self.notes,
        }, sort_keys=True)


@dataclass(frozen=True)
class ScaleScore:
    """One scale's score for one administration (``value`` None when too many items are missing)."""

    scale: str
    value: float | None
    n_items: int
    n_answered: int
    prorated: bool
    note: str


SRS = Instrument(
    key="srs", name="Session Rating Scale (SRS v3.0)",
    source="Duncan, Miller, Sparks, Claud, Reynolds, Brown & Johnson (2003), J. Brief Therapy 3(1):3-12",
    kind="alliance", items=("relationship", "goals", "approach", "overall"), min_value=0, max_value=10,
    scales=(Scale(TOTAL, ("relationship", "goals", "approach", "overall"), 0),),
    concern_below=36.0,
    notes="four 10 cm visual analogue lines scored 0-10; total 0-40; below 36 flags a possible alliance concern; "
          "not prorated (a missing line leaves no total)",
)

ORS = Instrument(
    key="ors", name="Outcome Rating Scale (ORS)",
    source="Miller, Duncan, Brown, Sparks & Claud (2003), J. Brief Therapy 2(2):91-100",
    kind="outcome", items=("individually", "interpersonally", "socially", "overall"), min_value=0, max_value=10,
    scales=(Scale(TOTAL, ("individually", "interpersonally", "socially", "overall"), 0),),
    concern_below=25.0, reliable_change=5.0,
    notes="four 10 cm visual analogue lines scored 0-10; total 0-40; adult clinical cutoff 25; reliable change "
          "5 points; not prorated",
)

_WAI_TASK = ("q1", "q2", "q10", "q12")
_WAI_BOND = ("q3", "q5", "q7", "q9")
_WAI_GOAL = ("q4", "q6", "q8", "q11")

WAI_SR = Instrument(
    key="wai-sr", name="Working Alliance Inventory, short revised (WAI-SR, client form)",
    source="Hatcher & Gillaspy (2006), Psychotherapy Research 16(1):12-25 (item key as in their Table/Appendix: "
           "task 1, 2, 10, 12; bond 3, 5, 7, 9; goal 4, 6, 8, 11)",
    kind="alliance", items=tuple(f"q{i}" for i in range(1, 13)), min_value=1, max_value=5,
    scales=(Scale(TOTAL, tuple(f"q{i}" for i in range(1, 13)), 2), Scale("task", _WAI_TASK, 1),
            Scale("bond", _WAI_BOND, 1), Scale("goal", _WAI_GOAL, 1)),
    notes="12 items, 1 (seldom) to 5 (always), no reverse-keyed items; subscale sums 4-20, total 12-60; "
          "a subscale is prorated with at most 1 of its 4 items missing, the total with at most 2 of 12. "
          "Check the item order of the form you administer; declare a custom instrument if it differs",
)

BUILTIN: Mapping[str, Instrument] = {i.key: i for i in (SRS, ORS, WAI_SR)}


def score(instrument: Instrument, answers: Mapping[str, float | None]) -> tuple[ScaleScore, ...]:
    """Score one administration.

    Parameters
    ----------
    instrument : Instrument
    answers : mapping of item key to raw value
        Absent keys, ``None`` and declared missing codes count as missing. Values must already be
        validated (inside the range or a missing code).

    Returns
    -------
    tuple of ScaleScore
        One per scale, in the instrument's order.

    Raises
    ------
    InstrumentConfigError
        An answer names an item the instrument does not have.
    """
    unknown = sorted(set(answers) - set(instrument.items))
    if unknown:
        raise InstrumentConfigError(f"instrument {instrument.key!r} has no items {unknown}")
    keyed = {k: item_score(instrument, k, v) for k, v in answers.items()}
    out = []
    for sc in instrument.scales:
        vals = [keyed[i] for i in sc.items if keyed.get(i) is not None]
        missing = len(sc.items) - len(vals)
        if missing > sc.max_missing:
            out.append(ScaleScore(sc.name, None, len(sc.items), len(vals), False,
                                  f"{missing} of {len(sc.items)} items missing (at most {sc.max_missing} allowed)"))
            continue
        mean = math.fsum(vals) / len(vals)
        if instrument.scoring == "sum":
            value = math.fsum(vals) if not missing else mean * len(sc.items)
        else:
            value = mean
        value = round(value, SCORE_DECIMALS)  # 3.4 + 3.5 + ... as the decimal the client marked, not 13.900000000000002
        note = f"prorated: {missing} of {len(sc.items)} items missing" if missing else ""
        out.append(ScaleScore(sc.name, value, len(sc.items), len(vals), missing > 0, note))
    return tuple(out)


def item_score(instrument: Instrument, item: str, value: float | None) -> float | None:
    """The scored value of one item: None for missing, reverse-keyed where declared."""
    if value is None or (isinstance(value, float) and math.isnan(value)) or value in instrument.missing_codes:
        return None
    if item in instrument.reverse_keyed:
        return instrument.min_value + instrument.max_value - value
    return float(value)


# ----------------------------------------------------------------------------------------------------
# custom instruments from a config file


@dataclass(frozen=True)
class _Spec:
    raw: Mapping[str, object] = field(repr=False)
    where: str

    def get(self, name: str, kind: type | tuple[type, ...], default: object = ...) -> object:
        if name not in self.raw:
            if default is ...:
                raise InstrumentConfigError(f"{self.where}: {name!r} is required")
            return default
        value = self.raw[name]
        if not isinstance(value, kind) or isinstance(value, bool) and kind is not bool:
            raise InstrumentConfigError(f"{self.where}: {name!r} = {value!r} has the wrong type")
        return value


def parse_instrument(raw: Mapping[str, object], *, where: str = "instrument") -> Instrument:
    """Build an :class:`Instrument` from a config mapping.

    Keys: ``key``, ``name``, ``source``, ``kind`` (alliance/outcome/empathy/other, default other), ``items``
    (list), ``min``, ``max``, ``subscales`` (table name -> items), ``total`` (bool, default true),
    ``max_missing`` (table scale -> int, default 0), ``reverse_keyed``, ``missing_codes``, ``scoring``
    (sum/mean), ``concern_below``, ``reliable_change``, ``notes``.

    Raises
    ------
    InstrumentConfigError
        A key is missing, has the wrong type, or the structure is inconsistent (the message names it).
    """
    s = _Spec(raw, where)
    allowed = {"key", "name", "source", "kind", "items", "min", "max", "subscales", "total", "max_missing",
               "reverse_keyed", "missing_codes", "scoring", "concern_below", "reliable_change", "notes"}
    extra = sorted(set(raw) - allowed)
    if extra:
        raise InstrumentConfigError(f"{where}: unknown keys {extra}; allowed: {sorted(allowed)}")
    key = str(s.get("key", str))
    where = f"instrument {key!r}"
    s = _Spec(raw, where)
    if not key or not key.replace("-", "").replace("_", "").isalnum():
        raise InstrumentConfigError(f"{where}: key must be letters, digits, '-' or '_'")
    if key in BUILTIN:
        raise InstrumentConfigError(f"{where}: {key!r} is a built-in instrument; choose another key")
    items = tuple(str(i) for i in s.get("items", list))
    if not items or len(set(items)) != len(items):
        raise InstrumentConfigError(f"{where}: items must be a non-empty list without repeats, got {list(items)}")
    lo, hi = float(s.get("min", (int, float))), float(s.get("max", (int, float)))
    if not lo < hi:
        raise InstrumentConfigError(f"{where}: min {lo} must be below max {hi}")
    subscales = dict(s.get("subscales", dict, {}))
    max_missing = dict(s.get("max_missing", dict, {}))
    names = ([TOTAL] if s.get("total", bool, True) else []) + list(subscales)
    if not names:
        raise InstrumentConfigError(f"{where}: no total and no subscales: nothing to score")
    for name, members in subscales.items():
        if name == TOTAL or not isinstance(members, list) or not members or set(members) - set(items):
            raise InstrumentConfigError(f"{where}: subscale {name!r} must list some of the items {list(items)}, "
                                        f"got {members!r}")
    bad_mm = {k: v for k, v in max_missing.items() if k not in names or not isinstance(v, int) or v < 0}
    if bad_mm:
        raise InstrumentConfigError(f"{where}: max_missing {bad_mm} must name scales {names} with integers >= 0")
    scales = tuple(Scale(n, items if n == TOTAL else tuple(subscales[n]), int(max_missing.get(n, 0)))
                   for n in names)
    for sc in scales:
        if sc.max_missing >= len(sc.items):
            raise InstrumentConfigError(f"{where}: max_missing {sc.max_missing} for {sc.name!r} leaves no item")
    reverse = tuple(str(i) for i in s.get("reverse_keyed", list, []))
    if set(reverse) - set(items):
        raise InstrumentConfigError(f"{where}: reverse_keyed {sorted(set(reverse) - set(items))} are not items")
    codes = tuple(float(c) for c in s.get("missing_codes", list, []))
    kind = str(s.get("kind", str, "other"))
    scoring = str(s.get("scoring", str, "sum"))
    if kind not in ("alliance", "outcome", "empathy", "other") or scoring not in ("sum", "mean"):
        raise InstrumentConfigError(f"{where}: kind {kind!r} (alliance/outcome/empathy/other) or scoring {scoring!r} "
                                    "(sum/mean) is not allowed")
    concern = s.get("concern_below", (int, float), None)
    rc = s.get("reliable_change", (int, float), None)
    return Instrument(key=key, name=str(s.get("name", str, key)), source=str(s.get("source", str, "")),
                      kind=kind, items=items, min_value=lo, max_value=hi, scales=scales, reverse_keyed=reverse,
                      missing_codes=codes, scoring=scoring, concern_below=None if concern is None else float(concern),
                      reliable_change=None if rc is None else float(rc), notes=str(s.get("notes", str, "")))


def load_instruments(path: Path | str) -> dict[str, Instrument]:
    """Read custom instruments from TOML (``[[instrument]]`` tables) or JSON (``{"instrument": [...]}``).

    Raises
    ------
    InstrumentConfigError
        The file is missing, unreadable, not TOML/JSON, or an instrument in it is invalid.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise InstrumentConfigError(f"cannot read instrument config {path}: {e}") from e
    try:
        data = json.loads(text) if path.suffix.lower() == ".json" else tomllib.loads(text)
    except (json.JSONDecodeError, tomllib.TOMLDecodeError) as e:
        raise InstrumentConfigError(f"instrument config {path} is not valid {path.suffix.lstrip('.')}: {e}") from e
    entries = data.get("instrument") if isinstance(data, dict) else None
    if isinstance(entries, dict):
        entries = [entries]
    if not isinstance(entries, list) or not entries:
        raise InstrumentConfigError(f"instrument config {path} must hold one or more 'instrument' tables")
    out: dict[str, Instrument] = {}
    for n, entry in enumerate(entries, 1):
        if not isinstance(entry, dict):
            raise InstrumentConfigError(f"{path}: instrument #{n} is not a table")
        inst = parse_instrument(entry, where=f"{path}: instrument #{n}")
        if inst.key in out:
            raise InstrumentConfigError(f"{path}: instrument {inst.key!r} is declared twice")
        out[inst.key] = inst
    return out


def resolve(keys: Sequence[str], custom: Mapping[str, Instrument]) -> dict[str, Instrument]:
    """Built-in and custom instruments available for an import (custom ones cannot shadow built-ins)."""
    known = {**BUILTIN, **custom}
    missing = [k for k in keys if k not in known]
    if missing:
        raise InstrumentConfigError(f"unknown instrument(s) {missing}; built in: {sorted(BUILTIN)}; "
                                    f"from config: {sorted(custom)}")
    return known
