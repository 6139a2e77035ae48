"""Batch inputs: a manifest (CSV or YAML) or a folder of recordings with consent sidecars.

Manifest columns (CSV header or YAML list of mappings):

=================  ========  ==========================================================================
column             required  meaning
=================  ========  ==========================================================================
``audio``          yes       path of the recording, relative to the manifest's folder
``session_id``     yes       the session's identifier
``client_id``      yes       pseudonymous client id
``therapist_id``   yes       pseudonymous therapist id
``recorded_on``    no        ISO date of the session
``consent_scope``  no        ``clinical`` or ``research``; with ``consented_on``, the manifest row *is*
                             the consent record. Without them, the recording's sidecar is read.
``consented_on``   no        ISO date consent was given
``consented_by``   no        who consented, separated by ``;``
``therapist_speaker`` no     role override: ``first``, ``second`` or a diarization label
``num_speakers``   no        speakers for diarization (default 2)
``known_names``    no        names to redact from de-identified text, separated by ``;`` (never stored)
=================  ========  ==========================================================================

Every path must resolve inside the allowed folder (the manifest's folder unless given): a manifest cannot
make the pipeline read files elsewhere. Rows with problems become *failed* items with the reason; the
rest of the batch goes on. Ids (``session_id``, ``client_id``, ``therapist_id``, from a row or a folder
sidecar) follow the rules of :mod:`pipeline.ids` (code ``invalid_id``); a manifest whose header repeats a
column name (or a YAML mapping that repeats a key) is refused whole. In folder mode, anything named like
a recording that is not a regular file (a directory, a FIFO, a device) becomes a failed item
(``audio_not_a_file``), never opened and never silently skipped.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from pipeline.analysis.session import SessionMeta
from pipeline.audio.decode import not_a_file_reason
from pipeline.csv_cells import csv_error_message
from pipeline.errors import AllianceError, InvalidIdError
from pipeline.ids import validate_id

AUDIO_SUFFIXES = frozenset({".wav", ".flac", ".ogg", ".mp3", ".m4a", ".opus", ".aac", ".mp4"})
_MAX_MANIFEST_BYTES = 10 * 1024 * 1024
_MAX_FIELD_CHARS = 1_000
_REQUIRED = ("audio", "session_id", "client_id", "therapist_id")
_MAX_SIDECAR_BYTES = 64 * 1024


class ManifestError(AllianceError):
    """The manifest (or one of its rows) is invalid; the message names the row and the value."""

    code = "manifest"


@dataclass(frozen=True)
class BatchItem:
    """One recording to process, or the reason it cannot be (``problem``)."""

    source: str
    audio_path: Path | None
    meta: SessionMeta | None
    consent: dict[str, Any] | None
    problem: str | None = None
    #: The failure code of ``problem`` (``manifest``, ``invalid_id``, ``audio_not_a_file``).
    problem_code: str = "manifest"

    #: An opaque name for this recording in Prefect's records (no id, name or path enters them): random, so
    #: nothing left in Prefect after an erasure (the batch artifact's rows) can confirm a guessed session id
    #: (a hash of row and session id could be recomputed from a guess).
    handle: str = field(default_factory=lambda: secrets.token_hex(6), compare=False)
    #: The recording as the manifest row or folder named it (its ``audio`` cell, or the path under the folder):
    #: users name files after clients, so terminal output replaces it with a neutral handle (``item 3``).
    named: str | None = field(default=None, compare=False)
    #: Folder mode without a sidecar session id: the session id is the file's stem (printed as the handle).
    id_from_name: bool = field(default=False, compare=False)

    def names(self) -> tuple[str, ...]:
        """Every spelling of the recording's name this item could print (path, cell, file name, stem)."""
        found = [self.named, self.source if self.meta is None or self.problem else None]
        if self.audio_path is not None:
            found += [str(self.audio_path), self.audio_path.name]
            sid = self.meta.session_id if self.meta is not None else None
            if self.id_from_name or self.audio_path.stem != sid:  # a session id given stays (it is printed)
                found.append(self.audio_path.stem)
        return tuple(dict.fromkeys(n for n in found if n))


def is_inside(path: Path, root: Path) -> bool:
    """Whether ``path`` (links resolved) lies in the folder ``root``."""
    try:
        path.resolve().relative_to(root.resolve())
    except ValueError:
        return False
    return True


def _clean(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, list | tuple):
        value = ";".join(str(v) for v in value)
    text = str(value).strip()
    return text or None


def _item_from_row(index: int, row: dict[str, Any], *, base: Path, allowed_root: Path) -> BatchItem:
    label = f"row {index}"
    try:
        fields = {str(k).strip(): _clean(v) for k, v in row.items() if k is not None}
        too_long = [k for k, v in fields.items() if v is not None and len(v) > _MAX_FIELD_CHARS]
        if too_long:
            raise ManifestError(f"{label}: field {too_long[0]!r} is longer than {_MAX_FIELD_CHARS} characters")
        missing = [k for k in _REQUIRED if not fields.get(k)]
        if missing:
            raise ManifestError(f"{label}: missing {', '.join(missing)}")
        label = f"row {index} ({fields['audio']})"
        try:
            ids = {k: validate_id(k.removesuffix("_id"), fields[k]) for k in ("session_id", "client_id",
                                                                             "therapist_id")}
        except InvalidIdError as e:
            return BatchItem(label, None, None, None, problem=f"{label}: {e}", problem_code=e.code,
                             named=fields["audio"])
        fields.update(ids)
        audio = (base / fields["audio"]).resolve() if not Path(fields["audio"]).is_absolute() \
            else Path(fields["audio"]).resolve()
        if not is_inside(audio, allowed_root):
            raise ManifestError(f"{label}: path {fields['audio']!r} is outside the allowed folder {allowed_root}")
        recorded_on = None
        if fields.get("recorded_on"):
            try:
                recorded_on = dt.date.fromisoformat(fields["recorded_on"])
            except ValueError as e:
                raise ManifestError(f"{label}: recorded_on {fields['recorded_on']!r} is not an ISO date") from e
        num_speakers = 2
        if fields.get("num_speakers"):
            if not fields["num_speakers"].isdigit() or not 1 <= int(fields["num_speakers"]) <= 10:
                raise ManifestError(f"{label}: num_speakers {fields['num_speakers']!r} is not a number from 1 to 10")
            num_speakers = int(fields["num_speakers"])
        consent = None
        if fields.get("consent_scope") or fields.get("consented_on"):
            consent = {
                "session_id": fields["session_id"],
                "client_id": fields["client_id"],
                "scope": fields.get("consent_scope"),
                "consented_on": fields.get("consented_on"),
                "withdrawn_on": fields.get("withdrawn_on"),
            }
            if "consented_by" in fields:  # the column is there: an empty cell is an empty list (refused)
                consent["consented_by"] = [p.strip() for p in (fields["consented_by"] or "").split(";")
                                           if p.strip()]
        known = tuple(n.strip() for n in (fields.get("known_names") or "").split(";") if n.strip())
        meta = SessionMeta(fields["session_id"], fields["client_id"], fields["therapist_id"], recorded_on,
                           role_override=fields.get("therapist_speaker"), num_speakers=num_speakers,
                           known_names=known)
        return BatchItem(label, audio, meta, consent, named=fields["audio"])
    except ManifestError as e:
        return BatchItem(label, None, None, None, problem=str(e), named=_clean(row.get("audio")))


class _UniqueKeyLoader(yaml.SafeLoader):
    """PyYAML's safe loader, refusing a mapping that repeats a key (safe_load keeps the last silently)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen: set = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(None, None, f"the key {key!r} is repeated",
                                                        key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def read_manifest(path: Path, *, allowed_root: Path | None = None) -> list[BatchItem]:
    """Parse a CSV or YAML manifest into batch items (invalid rows become items with a ``problem``).

    Raises
    ------
    ManifestError
        The file itself cannot be read (too large, wrong encoding, not a table).
    """
    path = Path(path)
    root = Path(allowed_root) if allowed_root else path.parent
    if path.stat().st_size > _MAX_MANIFEST_BYTES:
        raise ManifestError(f"manifest {path.name} is larger than {_MAX_MANIFEST_BYTES} bytes")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as e:
        raise ManifestError(f"manifest {path.name} is not UTF-8 text ({e})") from e
    if path.suffix.lower() in (".yaml", ".yml"):
        try:
            rows = yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass
        except yaml.YAMLError as e:
            raise ManifestError(f"manifest {path.name} is not valid YAML ({e})") from e
        if isinstance(rows, dict) and "recordings" in rows:
            rows = rows["recordings"]
        if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
            raise ManifestError(f"manifest {path.name}: expected a list of mappings (or `recordings:` list)")
    else:
        reader = csv.DictReader(io.StringIO(text))
        try:
            reader.fieldnames  # noqa: B018 - reads the header line
        except csv.Error as e:
            raise ManifestError(csv_error_message(e, source=f"manifest {path.name}", line=1)) from None
        if not reader.fieldnames or "audio" not in [f.strip() for f in reader.fieldnames]:
            raise ManifestError(f"manifest {path.name}: the CSV header must include {', '.join(_REQUIRED)}")
        names = [f.strip() for f in reader.fieldnames]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:  # which of the two cells would count is anybody's guess: refuse, as the self-report import does
            raise ManifestError(f"manifest {path.name}: the header repeats the column(s) {repeated}; each column "
                                "may appear once")
        try:  # a cell over csv's limit or malformed CSV: one clear line, never a traceback (long fields under
            rows = list(reader)  # the limit are refused per row, below)
        except csv.Error as e:
            raise ManifestError(csv_error_message(e, source=f"manifest {path.name}", line=reader.reader.line_num)
                                ) from None
    items = [_item_from_row(i + 1, row, base=path.parent, allowed_root=root) for i, row in enumerate(rows)]
    return mark_duplicates(items)


def scan_folder(folder: Path) -> list[BatchItem]:
    """Every audio file in ``folder`` (recursively, sorted); metadata comes from its consent sidecar.

    A recording without a readable sidecar still becomes an item (it will be *refused* for consent);
    the sidecar must also give ``therapist_id`` for folder mode.
    """
    folder = Path(folder)
    items: list[BatchItem] = []
    for path in sorted(p for p in folder.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES):
        label = str(path.relative_to(folder))
        try:
            what, code = not_a_file_reason(path.stat().st_mode), "audio_not_a_file"
        except OSError as e:  # a dangling link, a file gone since the listing
            what, code = f"cannot be read ({e.strerror})", "audio_missing"
        if what is not None:  # reported, never opened (a FIFO would block) and never skipped silently
            items.append(BatchItem(label, path, None, None, problem=f"{label}: {what}, not a regular file",
                                   problem_code=code, named=label))
            continue
        sidecar = path.with_name(path.name + ".consent.json")
        raw: dict[str, Any] = {}
        if sidecar.is_file() and sidecar.stat().st_size <= _MAX_SIDECAR_BYTES:  # precheck refuses larger ones
            try:
                loaded = json.loads(sidecar.read_text(encoding="utf-8"))
                raw = loaded if isinstance(loaded, dict) else {}
            except (UnicodeDecodeError, json.JSONDecodeError):
                raw = {}
        row = {"audio": label, "session_id": raw.get("session_id") or path.stem,
               "client_id": raw.get("client_id") or "unknown", "therapist_id": raw.get("therapist_id") or "unknown",
               "recorded_on": raw.get("recorded_on"), "therapist_speaker": raw.get("therapist_speaker"),
               "num_speakers": raw.get("num_speakers"),
               "known_names": ";".join(map(str, raw["known_names"])) if isinstance(raw.get("known_names"), list)
               else raw.get("known_names")}
        item = _item_from_row(len(items) + 1, row, base=folder, allowed_root=folder)
        items.append(BatchItem(label, item.audio_path, item.meta, None, item.problem, item.problem_code,
                               named=label, id_from_name=not raw.get("session_id")))
    return mark_duplicates(items)


def mark_duplicates(items: list[BatchItem]) -> list[BatchItem]:
    """Give every repeat of a session id after the first a ``problem``."""
    seen: dict[str, str] = {}
    out = []
    for item in items:
        if item.meta is not None and item.problem is None:
            sid = item.meta.session_id
            if sid in seen:
                item = BatchItem(item.source, item.audio_path, item.meta, item.consent,
                                 problem=f"duplicate session id {sid!r} (also {seen[sid]})", named=item.named,
                                 id_from_name=item.id_from_name)
            else:
                seen[sid] = item.source
        out.append(item)
    return out


def load_batch(source: Path, *, allowed_root: Path | None = None) -> list[BatchItem]:
    """Items from a folder (scanned) or a manifest file (CSV/YAML)."""
    source = Path(source)
    if source.is_dir():
        return scan_folder(source)
    if not source.is_file():
        raise ManifestError(f"{source}: no such folder or manifest")
    return read_manifest(source, allowed_root=allowed_root)
