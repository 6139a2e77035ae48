"""Render scripted two-person sessions with flite and write their exact truth.

A :class:`Script` is a list of :class:`ScriptLine` (who speaks, what, and how much
silence comes before it). :func:`render_session` synthesises every line with the
Debian ``flite`` binary, trims each utterance to its speech, places the utterances on
one timeline, adds a seeded noise floor and writes 16-bit PCM. It returns a
:class:`SessionTruth`: where every utterance starts and ends (to the sample), and
every silence between utterances, classified as a *switch* (the speaker changes) or a
*pause* (the same speaker goes on).

Voices: use flite's voices built from recordings of real speakers (``slt`` female;
``awb``, ``rms``, ``kal16`` male). A speaker-embedding diarizer can tell these apart;
it cannot tell formant-synthesised voices (espeak-ng) apart (see ``shared/MODELS.md``).

What the truth does not hold
----------------------------
Pauses *inside* one flite utterance (at commas, sentence ends, "...") are part of the
utterance span, not silences of the truth. Measured on flite 2.2 (frames of 10 ms
below -45 dBFS, 16 kHz): ``slt``, ``awb`` and ``rms`` pause 0.05 to 0.22 s at commas,
full stops, question marks and ellipses; ``kal16`` pauses longer, up to 0.42 s.
None comes near 0.5 s, so a downstream silence threshold of 1 to 2 s only ever finds
the scripted gaps. Leading and trailing silence of each flite output (about 0.2 s)
is trimmed away before placement.

Times are float seconds from the start of the file (``*_s``); each is also given as a
sample index (``*_sample``) so that nothing is lost to rounding.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import soundfile as sf
import soxr

from pipeline.diarization import rttm
from pipeline.errors import AllianceError, ConfigError
from pipeline.types import ROLES, SAMPLE_RATE_HZ, Diarization, Role, Span, SpeakerTurn

__all__ = [
    "ScriptLine",
    "Script",
    "TruthUtterance",
    "TruthSilence",
    "TruthOverlap",
    "SessionTruth",
    "ScriptError",
    "SynthesizerError",
    "load_script",
    "script_from_annomi",
    "read_annomi_rows",
    "render_session",
    "write_truth",
    "read_truth",
    "write_rttm",
    "silences_and_overlaps",
    "truth_paths",
]

TRUTH_FORMAT_VERSION = 1
SilenceKind = Literal["switch", "pause"]

_VOICE_NAME = re.compile(r"^[a-z0-9_]+$")
_SCRIPT_KEYS = {"session_id", "voices", "lines", "tail_s", "description"}
_LINE_KEYS = {"role", "text", "gap_before_s", "overlap_s", "tags"}
_TRIM_FRAME_S = 0.005
_TRIM_BELOW_PEAK_DB = 40.0
_PEAK_LIMIT = 0.9


class ScriptError(ConfigError):
    """A dialogue script is malformed; the message names the line and the bad value."""

    code = "script"


class SynthesizerError(AllianceError):
    """flite is missing, does not know a voice, or produced no speech for a line."""

    code = "synthesizer"


# --------------------------------------------------------------------------- script


@dataclass(frozen=True)
class ScriptLine:
    """One utterance of a dialogue script.

    Attributes
    ----------
    role : {"therapist", "client"}
    text : str
        What is said; must contain at least one letter or digit.
    gap_before_s : float
        Silence in seconds between the end of everything said so far and the start of
        this line (>= 0). For the first line it is the lead-in from the file start.
    overlap_s : float
        Start this line this many seconds *before* the end of everything said so far
        (>= 0; a line has either a gap or an overlap, not both). The overlapped part
        is mixed, and reported in :attr:`SessionTruth.overlaps`.
    tags : tuple of str
        Free labels carried into the truth (e.g. ``"backchannel"``, ``"deflection"``).
    """

    role: Role
    text: str
    gap_before_s: float
    overlap_s: float = 0.0
    tags: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.role not in ROLES:
            raise ScriptError(f"role={self.role!r} is not one of {ROLES}")
        if not isinstance(self.text, str) or not re.search(r"\w", self.text):
            raise ScriptError(f"text={self.text!r} has nothing to say (no letter or digit)")
        for name in ("gap_before_s", "overlap_s"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ScriptError(f"{name}={value!r} is not a number")
            if not math.isfinite(value) or value < 0:
                raise ScriptError(f"{name}={value!r} must be a finite number >= 0")
        if self.gap_before_s > 0 and self.overlap_s > 0:
            raise ScriptError(
                f"gap_before_s={self.gap_before_s!r} and overlap_s={self.overlap_s!r}: "
                "a line has a gap or an overlap, not both"
            )
        if not all(isinstance(t, str) and t for t in self.tags):
            raise ScriptError(f"tags={self.tags!r} must be non-empty strings")


@dataclass(frozen=True)
class Script:
    """A dialogue to render.

    Attributes
    ----------
    session_id : str
    lines : tuple of ScriptLine
        In speaking order (by start time).
    voices : dict
        flite voice name per role, e.g. ``{"therapist": "slt", "client": "awb"}``.
        Never mutated; :func:`load_script` builds a fresh dict.
    tail_s : float
        Silence after the last line, in seconds.
    """

    session_id: str
    lines: tuple[ScriptLine, ...]
    voices: Mapping[Role, str] = field(hash=False)
    tail_s: float = 0.5

    def __post_init__(self) -> None:
        if not isinstance(self.session_id, str) or not self.session_id.strip():
            raise ScriptError(f"session_id={self.session_id!r} must be a non-empty string")
        if not self.lines:
            raise ScriptError(f"script {self.session_id!r} has no lines")
        if self.lines[0].overlap_s > 0:
            raise ScriptError(f"line 0: overlap_s={self.lines[0].overlap_s!r}, but nothing precedes it")
        for role in sorted({line.role for line in self.lines}):
            voice = self.voices.get(role)
            if not isinstance(voice, str) or not _VOICE_NAME.match(voice):
                raise ScriptError(f"voices[{role!r}]={voice!r}: give a flite voice name such as 'slt'")
        if not math.isfinite(self.tail_s) or self.tail_s < 0:
            raise ScriptError(f"tail_s={self.tail_s!r} must be a finite number >= 0")


def _line_from_json(index: int, raw: object) -> ScriptLine:
    if not isinstance(raw, dict):
        raise ScriptError(f"line {index}: expected an object, got {raw!r}")
    unknown = set(raw) - _LINE_KEYS
    if unknown:
        raise ScriptError(f"line {index}: unknown keys {sorted(unknown)} (allowed: {sorted(_LINE_KEYS)})")
    missing = {"role", "text", "gap_before_s"} - set(raw)
    if missing:
        raise ScriptError(f"line {index}: missing keys {sorted(missing)}")
    try:
        return ScriptLine(
            role=raw["role"],
            text=raw["text"],
            gap_before_s=raw["gap_before_s"],
            overlap_s=raw.get("overlap_s", 0.0),
            tags=tuple(raw.get("tags", ())),
        )
    except ScriptError as e:
        raise ScriptError(f"line {index}: {e}") from e


def load_script(path: str | Path) -> Script:
    """Read a :class:`Script` from JSON.

    The file holds ``{"session_id": str, "voices": {role: voice}, "lines": [{"role",
    "text", "gap_before_s", optional "overlap_s", optional "tags"}], optional
    "tail_s", optional "description"}``. Unknown keys are errors (they are usually typos).

    Raises
    ------
    ScriptError
        The file is missing, not JSON, or any field is invalid (the message names it).
    """
    path = Path(path)
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as e:
        raise ScriptError(f"script file {str(path)!r} does not exist") from e
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ScriptError(f"script file {str(path)!r} is not valid JSON: {e}") from e
    if not isinstance(raw, dict):
        raise ScriptError(f"script file {str(path)!r}: top level must be an object")
    unknown = set(raw) - _SCRIPT_KEYS
    if unknown:
        raise ScriptError(f"script file {str(path)!r}: unknown keys {sorted(unknown)}")
    lines = raw.get("lines")
    if not isinstance(lines, list):
        raise ScriptError(f"script file {str(path)!r}: 'lines' must be a list, got {lines!r}")
    voices = raw.get("voices")
    if not isinstance(voices, dict):
        raise ScriptError(f"script file {str(path)!r}: 'voices' must be an object, got {voices!r}")
    bad_roles = set(voices) - set(ROLES)
    if bad_roles:
        raise ScriptError(f"script file {str(path)!r}: voices for unknown roles {sorted(bad_roles)}")
    return Script(
        session_id=raw.get("session_id", ""),
        lines=tuple(_line_from_json(i, line) for i, line in enumerate(lines)),
        voices=dict(voices),
        tail_s=raw.get("tail_s", 0.5),
    )


# --------------------------------------------------------------------------- AnnoMI


def read_annomi_rows(csv_path: str | Path, transcript_id: int | str) -> list[dict[str, str]]:
    """Rows of one AnnoMI transcript (``AnnoMI-simple.csv`` layout), in utterance order."""
    wanted = str(transcript_id)
    with open(csv_path, newline="", encoding="utf-8") as f:
        rows = [row for row in csv.DictReader(f) if row.get("transcript_id") == wanted]
    rows.sort(key=lambda r: int(r.get("utterance_id") or 0))
    return rows


def _clean_annomi_text(text: str) -> str:
    # AnnoMI marks interrupted speech with leading/trailing "-" and "--"; flite would
    # read them as pauses or words. Bracketed notes ("[laughs]") are not speech.
    text = re.sub(r"\[[^\]]*\]", " ", text)
    text = re.sub(r"\s*-{2,}\s*", ", ", text)
    text = text.strip().strip("-").strip()
    return re.sub(r"\s+", " ", text)


def script_from_annomi(
    transcript_rows: Iterable[Mapping[str, str]],
    *,
    voices: Mapping[Role, str],
    gap_s: float,
    long_silence_every: int | None = None,
    long_silence_s: float = 5.0,
    seed: int = 0,
    session_id: str | None = None,
) -> Script:
    """Build a :class:`Script` from AnnoMI-style rows.

    Parameters
    ----------
    transcript_rows : iterable of mappings
        Each with ``interlocutor`` ("therapist" or "client") and ``utterance_text``; the
        first row's ``transcript_id``, when present, names the session.
    voices : mapping role -> flite voice
    gap_s : float
        Mean silence before each line, seconds. Each gap is drawn uniformly from
        ``[0.5 * gap_s, 1.5 * gap_s]`` with ``seed`` (switches and pauses alike).
    long_silence_every : int, optional
        Every n-th kept line (n, 2n, ...) gets ``long_silence_s`` of silence before
        it instead, tagged ``"long_silence_before"``.
    seed : int
        Seeds the gap jitter; same rows and seed give the same script.
    session_id : str, optional
        Defaults to ``annomi-<transcript_id>``.

    Rows whose text has no letter or digit after cleaning (interruption dashes,
    bracketed notes) are dropped; the original AnnoMI timing is not used.
    """
    if not math.isfinite(gap_s) or gap_s < 0:
        raise ScriptError(f"gap_s={gap_s!r} must be a finite number >= 0")
    if long_silence_every is not None and long_silence_every < 1:
        raise ScriptError(f"long_silence_every={long_silence_every!r} must be >= 1")
    rng = np.random.default_rng(seed)
    lines: list[ScriptLine] = []
    first_id: str | None = None
    for i, row in enumerate(transcript_rows):
        if first_id is None:
            first_id = str(row.get("transcript_id", "x"))
        role = row.get("interlocutor")
        if role not in ROLES:
            raise ScriptError(f"row {i}: interlocutor={role!r} is not one of {ROLES}")
        text = _clean_annomi_text(row.get("utterance_text") or "")
        gap = float(gap_s * rng.uniform(0.5, 1.5))
        if not re.search(r"\w", text):
            continue
        tags: tuple[str, ...] = ()
        if long_silence_every is not None and (len(lines) + 1) % long_silence_every == 0:
            gap, tags = long_silence_s, ("long_silence_before",)
        lines.append(ScriptLine(role=role, text=text, gap_before_s=round(gap, 4), tags=tags))
    return Script(
        session_id=session_id or f"annomi-{first_id}",
        lines=tuple(lines),
        voices=dict(voices),
    )


# --------------------------------------------------------------------------- truth


@dataclass(frozen=True)
class TruthUtterance:
    """Where one script line sits in the rendered file."""

    index: int
    role: Role
    voice: str
    start_s: float
    end_s: float
    start_sample: int
    end_sample: int
    text: str
    tags: tuple[str, ...] = ()

    @property
    def span(self) -> Span:
        return Span(self.start_s, self.end_s)


@dataclass(frozen=True)
class TruthSilence:
    """A gap with no speech between two consecutive utterances.

    ``kind`` is ``"switch"`` when the speaker after the gap differs from the speaker
    who spoke last before it, ``"pause"`` when it is the same speaker.
    """

    start_s: float
    end_s: float
    start_sample: int
    end_sample: int
    kind: SilenceKind
    before_index: int
    after_index: int
    before_role: Role
    after_role: Role

    @property
    def duration_s(self) -> float:
        return self.end_s - self.start_s


@dataclass(frozen=True)
class TruthOverlap:
    """A stretch where two utterances sound at once."""

    start_s: float
    end_s: float
    first_index: int
    second_index: int

    @property
    def duration_s(self) -> float:
        return self.end_s - self.start_s


@dataclass(frozen=True)
class SessionTruth:
    """Exact truth of a rendered session.

    Attributes
    ----------
    utterances : tuple of TruthUtterance
        One per script line, in script order.
    silences : tuple of TruthSilence
        Every gap of positive length between the end of all speech so far and the next
        utterance (lead-in and tail excluded). Pauses inside one flite utterance are
        not included (see the module docstring).
    overlaps : tuple of TruthOverlap
    """

    session_id: str
    audio_file: str
    sample_rate_hz: int
    n_samples: int
    seed: int
    noise_floor_dbfs: float
    synthesizer: str
    utterances: tuple[TruthUtterance, ...]
    silences: tuple[TruthSilence, ...]
    overlaps: tuple[TruthOverlap, ...]

    @property
    def duration_s(self) -> float:
        return self.n_samples / self.sample_rate_hz

    def as_diarization(self) -> Diarization:
        """The truth as a :class:`~pipeline.types.Diarization` whose speakers are the roles."""
        turns = tuple(sorted(SpeakerTurn(u.start_s, u.end_s, u.role) for u in self.utterances))
        return Diarization(turns=turns, speakers=tuple(sorted({u.role for u in self.utterances})))


def silences_and_overlaps(
    utterances: Sequence[TruthUtterance], sample_rate_hz: int
) -> tuple[tuple[TruthSilence, ...], tuple[TruthOverlap, ...]]:
    """Gaps and overlaps between utterances given in start order.

    A gap runs from the end of all speech so far (the latest end, which may belong to
    an earlier utterance than the previous one) to the next start; it is a ``"pause"``
    when the utterance that ended last and the next one have the same role, else a
    ``"switch"``. Zero-length gaps are not silences. An utterance starting before the
    latest end overlaps the utterance that ends latest.
    """
    silences: list[TruthSilence] = []
    overlaps: list[TruthOverlap] = []
    last: TruthUtterance | None = None  # the utterance that ends latest so far
    for u in utterances:
        if last is not None:
            if u.start_sample > last.end_sample:
                silences.append(
                    TruthSilence(
                        start_s=last.end_s,
                        end_s=u.start_s,
                        start_sample=last.end_sample,
                        end_sample=u.start_sample,
                        kind="pause" if u.role == last.role else "switch",
                        before_index=last.index,
                        after_index=u.index,
                        before_role=last.role,
                        after_role=u.role,
                    )
                )
            elif u.start_sample < last.end_sample:
                end_sample = min(u.end_sample, last.end_sample)
                overlaps.append(
                    TruthOverlap(u.start_s, end_sample / sample_rate_hz, last.index, u.index)
                )
        if last is None or u.end_sample > last.end_sample:
            last = u
    return tuple(silences), tuple(overlaps)


def write_truth(truth: SessionTruth, path: str | Path) -> None:
    """Write the truth as JSON (``duration_s`` of silences and overlaps included for readers)."""
    doc = {
        "format_version": TRUTH_FORMAT_VERSION,
        "session_id": truth.session_id,
        "audio_file": truth.audio_file,
        "sample_rate_hz": truth.sample_rate_hz,
        "n_samples": truth.n_samples,
        "duration_s": truth.duration_s,
        "seed": truth.seed,
        "noise_floor_dbfs": truth.noise_floor_dbfs,
        "synthesizer": truth.synthesizer,
        "utterances": [
            {**_asdict_shallow(u), "tags": list(u.tags)} for u in truth.utterances
        ],
        "silences": [
            {**_asdict_shallow(s), "duration_s": round(s.duration_s, 7)} for s in truth.silences
        ],
        "overlaps": [
            {**_asdict_shallow(o), "duration_s": round(o.duration_s, 7)} for o in truth.overlaps
        ],
    }
    Path(path).write_text(json.dumps(doc, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


def _asdict_shallow(obj: object) -> dict[str, object]:
    return {name: getattr(obj, name) for name in obj.__dataclass_fields__}  # type: ignore[attr-defined]


def read_truth(path: str | Path) -> SessionTruth:
    """Read what :func:`write_truth` wrote.

    Raises
    ------
    ScriptError
        The file is missing, not JSON, or of another format version.
    """
    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as e:
        raise ScriptError(f"truth file {str(path)!r} cannot be read: {e}") from e
    if doc.get("format_version") != TRUTH_FORMAT_VERSION:
        raise ScriptError(
            f"truth file {str(path)!r}: format_version={doc.get('format_version')!r}, "
            f"expected {TRUTH_FORMAT_VERSION}"
        )
    drop = {"duration_s"}
    return SessionTruth(
        session_id=doc["session_id"],
        audio_file=doc["audio_file"],
        sample_rate_hz=doc["sample_rate_hz"],
        n_samples=doc["n_samples"],
        seed=doc["seed"],
        noise_floor_dbfs=doc["noise_floor_dbfs"],
        synthesizer=doc["synthesizer"],
        utterances=tuple(
            TruthUtterance(**{**u, "tags": tuple(u["tags"])}) for u in doc["utterances"]
        ),
        silences=tuple(
            TruthSilence(**{k: v for k, v in s.items() if k not in drop}) for s in doc["silences"]
        ),
        overlaps=tuple(
            TruthOverlap(**{k: v for k, v in o.items() if k not in drop}) for o in doc["overlaps"]
        ),
    )


def write_rttm(truth: SessionTruth, path: str | Path, *, uri: str | None = None) -> None:
    """Write one RTTM ``SPEAKER`` row per utterance (the product's RTTM writer); the speaker label is the role.

    ``uri`` (the RTTM file id) defaults to the session id.
    """
    uri = uri or truth.session_id
    if re.search(r"\s", uri):
        raise ScriptError(f"uri={uri!r} must not contain whitespace (RTTM is space-separated)")
    rttm.write_rttm(truth.as_diarization(), Path(path), uri)


# --------------------------------------------------------------------------- rendering


def _flite_binary() -> str:
    binary = shutil.which("flite")
    if binary is None:
        raise SynthesizerError(
            "the 'flite' binary is not on PATH; install it with `apt-get install flite`"
        )
    return binary


def _flite_voices(binary: str) -> frozenset[str]:
    out = subprocess.run([binary, "-lv"], capture_output=True, text=True, check=False).stdout
    # "Voices available: kal awb_time kal16 awb rms slt"
    return frozenset(out.split(":", 1)[-1].split())


def flite_version() -> str:
    """The installed flite's version string, or ``"none"`` when flite is not on PATH (render cache keys)."""
    binary = shutil.which("flite")
    if binary is None:
        return "none"
    out = subprocess.run([binary, "--version"], capture_output=True, text=True, check=False).stdout
    match = re.search(r"version:\s*(\S+)", out)
    return match.group(1) if match else "flite"


def _synthesize(binary: str, voice: str, text: str, workdir: Path) -> tuple[np.ndarray, int]:
    """One flite call; returns float64 samples in [-1, 1] and flite's sample rate."""
    wav = workdir / "line.wav"
    wav.unlink(missing_ok=True)
    proc = subprocess.run(
        [binary, "-voice", voice, "-t", text, "-o", str(wav)],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0 or not wav.exists():
        raise SynthesizerError(
            f"flite failed for voice={voice!r} text={text!r}: rc={proc.returncode} {proc.stderr.strip()}"
        )
    samples, rate = sf.read(wav, dtype="float64", always_2d=True)
    return samples.mean(axis=1), int(rate)


def _trim(samples: np.ndarray, sample_rate_hz: int) -> np.ndarray:
    """Cut leading and trailing frames quieter than 40 dB below the loudest frame.

    Frames are 5 ms; returns a view, empty when the input is silent.
    """
    frame = max(1, int(round(_TRIM_FRAME_S * sample_rate_hz)))
    n_frames = len(samples) // frame
    if n_frames == 0:
        return samples[:0]
    # shape: (n_frames,)
    rms = np.sqrt(np.mean(samples[: n_frames * frame].reshape(n_frames, frame) ** 2, axis=1))
    peak = rms.max()
    if peak <= 0:
        return samples[:0]
    loud = np.flatnonzero(rms >= peak * 10 ** (-_TRIM_BELOW_PEAK_DB / 20))
    return samples[loud[0] * frame : (loud[-1] + 1) * frame]


def _set_level(samples: np.ndarray, sample_rate_hz: int, level_dbfs: float) -> np.ndarray:
    """Scale so the RMS of the speech frames is ``level_dbfs``, keeping the peak <= 0.9."""
    frame = max(1, int(round(_TRIM_FRAME_S * sample_rate_hz)))
    n_frames = len(samples) // frame
    rms = np.sqrt(np.mean(samples[: n_frames * frame].reshape(n_frames, frame) ** 2, axis=1))
    active = rms[rms >= rms.max() * 10 ** (-_TRIM_BELOW_PEAK_DB / 20)]
    active_rms = float(np.sqrt(np.mean(active**2)))
    gain = 10 ** (level_dbfs / 20) / active_rms
    gain = min(gain, _PEAK_LIMIT / float(np.max(np.abs(samples))))
    return samples * gain


def render_session(
    script: Script,
    out_wav: str | Path,
    *,
    sample_rate_hz: int = SAMPLE_RATE_HZ,
    noise_floor_dbfs: float = -55.0,
    speech_level_dbfs: float = -23.0,
    seed: int = 0,
) -> SessionTruth:
    """Synthesise ``script`` into one mono 16-bit file and return its exact truth.

    Parameters
    ----------
    script : Script
    out_wav : path
        Output file; the suffix picks the format (``.wav``, ``.flac``, anything
        libsndfile knows). Written as 16-bit PCM, mono.
    sample_rate_hz : int
        Output rate; flite output at another rate is resampled with soxr.
    noise_floor_dbfs : float
        RMS of the seeded white noise added everywhere, so silences are not digital zero.
    speech_level_dbfs : float
        RMS of the speech frames of each utterance after levelling (peaks kept <= 0.9).
    seed : int
        Seeds the noise. flite itself is deterministic, so the same script, options and
        seed give a byte-identical file.

    Returns
    -------
    SessionTruth
        Utterance spans are the trimmed speech of each line, to the sample.

    Raises
    ------
    SynthesizerError
        flite is not installed, does not know a voice, or says nothing for a line.
    ScriptError
        An overlap would start a line before the file start or before the previous line.
    """
    binary = _flite_binary()
    known = _flite_voices(binary)
    for role, voice in sorted(script.voices.items()):
        if voice not in known:
            raise SynthesizerError(
                f"flite has no voice {voice!r} (for {role}); available: {sorted(known)}"
            )
    if sample_rate_hz <= 0:
        raise ConfigError(f"sample_rate_hz={sample_rate_hz!r} must be positive")

    pieces: list[tuple[int, np.ndarray]] = []
    utterances: list[TruthUtterance] = []
    cursor = 0  # sample index where all speech so far has ended
    with tempfile.TemporaryDirectory(prefix="flite-") as tmp:
        for index, line in enumerate(script.lines):
            voice = script.voices[line.role]
            raw, rate = _synthesize(binary, voice, line.text, Path(tmp))
            if rate != sample_rate_hz:
                raw = soxr.resample(raw, rate, sample_rate_hz, quality="HQ")
            speech = _trim(raw, sample_rate_hz)
            if len(speech) == 0:
                raise SynthesizerError(f"line {index}: flite produced no speech for text={line.text!r}")
            speech = _set_level(speech, sample_rate_hz, speech_level_dbfs)
            start = cursor + round(line.gap_before_s * sample_rate_hz) - round(line.overlap_s * sample_rate_hz)
            if utterances and start < utterances[-1].start_sample:
                raise ScriptError(
                    f"line {index}: overlap_s={line.overlap_s!r} starts it before line {index - 1} starts"
                )
            end = start + len(speech)
            pieces.append((start, speech))
            utterances.append(
                TruthUtterance(
                    index=index,
                    role=line.role,
                    voice=voice,
                    start_s=start / sample_rate_hz,
                    end_s=end / sample_rate_hz,
                    start_sample=start,
                    end_sample=end,
                    text=line.text,
                    tags=line.tags,
                )
            )
            cursor = max(cursor, end)

    n_samples = cursor + round(script.tail_s * sample_rate_hz)
    mix = np.zeros(n_samples, dtype=np.float64)
    for start, speech in pieces:
        mix[start : start + len(speech)] += speech
    rng = np.random.default_rng(seed)
    mix += rng.standard_normal(n_samples) * 10 ** (noise_floor_dbfs / 20)
    pcm = np.clip(np.round(mix * 32767.0), -32768, 32767).astype(np.int16)
    out_wav = Path(out_wav)
    sf.write(out_wav, pcm, sample_rate_hz, subtype="PCM_16")

    silences, overlaps = silences_and_overlaps(utterances, sample_rate_hz)
    return SessionTruth(
        session_id=script.session_id,
        audio_file=out_wav.name,
        sample_rate_hz=sample_rate_hz,
        n_samples=n_samples,
        seed=seed,
        noise_floor_dbfs=noise_floor_dbfs,
        synthesizer=flite_version(),
        utterances=tuple(utterances),
        silences=silences,
        overlaps=overlaps,
    )


def truth_paths(audio_path: str | Path) -> tuple[Path, Path]:
    """``(<stem>.truth.json, <stem>.rttm)`` next to ``audio_path``."""
    audio_path = Path(audio_path)
    return (
        audio_path.with_name(audio_path.stem + ".truth.json"),
        audio_path.with_name(audio_path.stem + ".rttm"),
    )


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m evaluation.synthetic SCRIPT.json OUT.flac``: audio, truth JSON and RTTM."""
    parser = argparse.ArgumentParser(prog="python -m evaluation.synthetic", description=main.__doc__)
    parser.add_argument("script", type=Path)
    parser.add_argument("out", type=Path, help="output audio (.flac or .wav)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--noise-floor-dbfs", type=float, default=-55.0)
    args = parser.parse_args(argv)
    try:
        script = load_script(args.script)
        truth = render_session(script, args.out, seed=args.seed, noise_floor_dbfs=args.noise_floor_dbfs)
    except AllianceError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    truth_json, rttm = truth_paths(args.out)
    write_truth(truth, truth_json)
    write_rttm(truth, rttm)
    print(
        f"{args.out}: {truth.duration_s:.1f} s, {len(truth.utterances)} utterances, "
        f"{len(truth.silences)} silences; truth in {truth_json.name}, {rttm.name}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
