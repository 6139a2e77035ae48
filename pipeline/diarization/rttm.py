"""RTTM files and the diarization error rate.

RTTM ``SPEAKER`` lines have ten space-separated fields::

    SPEAKER <uri> <channel> <onset_s> <duration_s> <NA> <NA> <speaker> <NA> <NA>

Only ``SPEAKER`` lines are read; other record types and blank lines are skipped.
"""

from __future__ import annotations

import math
from pathlib import Path

from pyannote.core import Annotation, Segment

from pipeline.errors import ConfigError
from pipeline.types import Diarization, SpeakerTurn

__all__ = ["read_rttm", "write_rttm", "to_annotation"]

_NUM_FIELDS = 10


def _make_diarization(turns: list[SpeakerTurn]) -> Diarization:
    ordered = tuple(sorted(turns))
    return Diarization(turns=ordered, speakers=tuple(sorted({t.speaker for t in ordered})))


def read_rttm(path: Path) -> Diarization:
    """Read the ``SPEAKER`` turns of a single-recording RTTM file.

    Parameters
    ----------
    path : Path
        RTTM file (UTF-8).

    Returns
    -------
    Diarization
        Turns sorted by (start_s, end_s, speaker); zero-length turns are kept.

    Raises
    ------
    ConfigError
        The file is missing, a line is malformed (bad field count, number, negative
        duration) or it holds more than one recording (uri).
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise ConfigError(f"cannot read RTTM file {path}: {e}") from e
    turns: list[SpeakerTurn] = []
    uris: set[str] = set()
    for lineno, line in enumerate(text.splitlines(), start=1):
        fields = line.split()
        if not fields or fields[0] != "SPEAKER":
            continue
        if len(fields) < _NUM_FIELDS - 1:
            raise ConfigError(
                f"{path}:{lineno}: SPEAKER line has {len(fields)} fields, expected {_NUM_FIELDS}: {line!r}"
            )
        try:
            onset_s = float(fields[3])
            duration_s = float(fields[4])
        except ValueError as e:
            raise ConfigError(f"{path}:{lineno}: onset/duration not numbers: {line!r}") from e
        if not (math.isfinite(onset_s) and math.isfinite(duration_s)) or onset_s < 0 or duration_s < 0:
            raise ConfigError(
                f"{path}:{lineno}: onset={fields[3]!r} duration={fields[4]!r} must be finite and >= 0"
            )
        uris.add(fields[1])
        turns.append(SpeakerTurn(start_s=onset_s, end_s=onset_s + duration_s, speaker=fields[7]))
    if len(uris) > 1:
        raise ConfigError(f"{path}: RTTM holds several recordings {sorted(uris)!r}; expected one")
    return _make_diarization(turns)


def write_rttm(diarization: Diarization, path: Path, uri: str) -> None:
    """Write ``diarization`` as RTTM ``SPEAKER`` lines (times rounded to the millisecond).

    Parameters
    ----------
    diarization : Diarization
    path : Path
        Destination; overwritten if it exists.
    uri : str
        Recording identifier (no whitespace).

    Raises
    ------
    ConfigError
        ``uri`` is empty or contains whitespace, or a speaker label contains whitespace.
    """
    if not uri or any(c.isspace() for c in uri):
        raise ConfigError(f"RTTM uri must be non-empty without whitespace; got {uri!r}")
    lines = []
    for turn in sorted(diarization.turns):
        if not turn.speaker or any(c.isspace() for c in turn.speaker):
            raise ConfigError(f"RTTM speaker label must be non-empty without whitespace; got {turn.speaker!r}")
        lines.append(
            f"SPEAKER {uri} 1 {turn.start_s:.3f} {turn.end_s - turn.start_s:.3f} "
            f"<NA> <NA> {turn.speaker} <NA> <NA>\n"
        )
    Path(path).write_text("".join(lines), encoding="utf-8")


def to_annotation(diarization: Diarization, *, uri: str = "recording") -> Annotation:
    """Convert to a pyannote.core ``Annotation`` (one track per turn)."""
    annotation = Annotation(uri=uri)
    for index, turn in enumerate(diarization.turns):
        annotation[Segment(turn.start_s, turn.end_s), index] = turn.speaker
    return annotation
