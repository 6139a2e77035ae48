"""Render a long two-speaker session (real AnnoMI dialogue, flite voices) with exact truth, cached.

Whole AnnoMI counselling transcripts are spoken one after another (therapist and client voices kept
throughout) until the target length is reached: audio (FLAC, 16 kHz, 16-bit), truth JSON and RTTM, as
:mod:`evaluation.synthetic` writes them. Gaps between lines are drawn around ``gap_s``; every
``long_silence_every``-th line of a transcript is preceded by ``long_silence_s`` of silence.

Rendering is done in pieces of a few dozen lines (:func:`evaluation.synthetic.render_session` holds a whole
script in memory as float64, about 2 GB for 90 minutes) and streamed into one file; the utterances of
each piece are shifted by the piece's sample offset, so the truth stays exact to the sample. The last
piece is cut after the last utterance that ends (plus a 0.5 s tail) within the target length.

Renders are cached under ``bench/.renders/`` keyed by every parameter (and the flite version), so a
re-run reuses them::

    .venv/bin/python -m bench.render_long --minutes 1 10 60 90
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import hashlib
import json
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from evaluation.synthetic import (
    Script,
    SessionTruth,
    TruthUtterance,
    flite_version,
    read_annomi_rows,
    read_truth,
    render_session,
    script_from_annomi,
    silences_and_overlaps,
    truth_paths,
    write_rttm,
    write_truth,
)
from pipeline.types import SAMPLE_RATE_HZ

ROOT = Path(__file__).resolve().parents[1]

#: Bump when the rendering recipe changes, so cached renders are not reused.
RENDER_VERSION = 1
RENDERS_DIR = ROOT / "bench" / ".renders"
ANNOMI_CSV = ROOT.parent / "shared" / "data" / "annomi" / "AnnoMI-simple.csv"
TAIL_S = 0.5


@dataclass(frozen=True)
class LongSpec:
    """Every parameter of a long render (also the cache key).

    Attributes
    ----------
    minutes : float
        Target length; the render ends at or just below it (the last line that fits, then ``TAIL_S``).
    therapist_voice, client_voice : str
        flite voices built from real speakers (``awb`` male, ``slt`` female: the diarizer tells them apart,
        see ``/work/shared/MODELS.md``).
    gap_s : float
        Mean silence before each line (drawn from ``[0.5, 1.5] * gap_s``).
    long_silence_every : int
        Every n-th line of each transcript gets ``long_silence_s`` of silence before it.
    long_silence_s : float
    quality : str
        AnnoMI ``mi_quality`` of the transcripts used (``high``, ``low`` or ``any``), in transcript-id order.
    seed : int
        Seeds the gap jitter and the noise floor.
    noise_floor_dbfs : float
    """

    minutes: float
    therapist_voice: str = "awb"
    client_voice: str = "slt"
    gap_s: float = 0.6
    long_silence_every: int = 30
    long_silence_s: float = 5.0
    quality: str = "high"
    seed: int = 0
    noise_floor_dbfs: float = -55.0

    def key(self, csv_path: Path, flite_version: str) -> str:
        """Short hash of the spec, the recipe version, the CSV (name and size) and the flite version."""
        doc = {**dataclasses.asdict(self), "render_version": RENDER_VERSION, "csv": csv_path.name,
               "csv_bytes": csv_path.stat().st_size, "flite": flite_version}
        return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()[:10]


@dataclass(frozen=True)
class LongRender:
    """Paths of a finished render and how it was made."""

    audio: Path
    truth: Path
    rttm: Path
    meta: Path
    duration_s: float
    render_s: float
    cached: bool


def transcript_ids(csv_path: Path, quality: str = "high") -> list[str]:
    """AnnoMI transcript ids of the given ``mi_quality`` (``any``: all), in numeric order."""
    with open(csv_path, newline="", encoding="utf-8") as f:
        ids = {row["transcript_id"] for row in csv.DictReader(f)
               if quality == "any" or row.get("mi_quality") == quality}
    return sorted(ids, key=int)


def dedupe_utterances(rows: list[dict[str, str]]) -> list[dict[str, str]]:
    """One row per utterance (``AnnoMI-full.csv`` repeats utterances once per annotator)."""
    seen: set[str] = set()
    out = []
    for r in rows:
        if r.get("utterance_id") not in seen:
            seen.add(r.get("utterance_id", ""))
            out.append(r)
    return out


def _noise(n: int, noise_floor_dbfs: float, *, seed: int) -> np.ndarray:
    """``n`` samples of 16-bit white noise at the noise floor (as render_session adds it)."""
    noise = np.random.default_rng(seed).standard_normal(n) * 10 ** (noise_floor_dbfs / 20)
    return np.clip(np.round(noise * 32767.0), -32768, 32767).astype(np.int16)


def render_long(spec: LongSpec, *, csv_path: Path = ANNOMI_CSV, out_dir: Path = RENDERS_DIR,
                chunk_lines: int = 40, force: bool = False, log: bool = True) -> LongRender:
    """Render (or reuse) the long session of ``spec``.

    Parameters
    ----------
    spec : LongSpec
    csv_path : Path
        AnnoMI CSV (``AnnoMI-simple.csv``; ``AnnoMI-full.csv`` works too, its per-annotator duplicates
        are dropped).
    out_dir : Path
        Cache folder; files are ``long-<minutes>min-<key>.{flac,truth.json,rttm,render.json}``.
    chunk_lines : int
        Most lines rendered per piece (pieces near the end are smaller, to waste little rendering).
    force : bool
        Render again even when cached.
    log : bool
        Print progress to stderr.

    Returns
    -------
    LongRender

    Raises
    ------
    evaluation.synthetic.SynthesizerError
        flite is missing or fails.
    ValueError
        The AnnoMI transcripts of this quality are too short for the target length.
    """
    flite = flite_version()
    key = spec.key(csv_path, flite)
    out_dir.mkdir(parents=True, exist_ok=True)
    audio = out_dir / f"long-{spec.minutes:g}min-{key}.flac"
    truth_json, rttm = truth_paths(audio)
    meta = audio.with_name(audio.stem + ".render.json")
    if not force and truth_json.is_file() and audio.is_file() and meta.is_file():
        done = json.loads(meta.read_text())
        return LongRender(audio, truth_json, rttm, meta, done["duration_s"], done["render_s"], True)

    t0 = time.perf_counter()
    sr = SAMPLE_RATE_HZ
    target = round(spec.minutes * 60 * sr)
    tail = round(TAIL_S * sr)
    voices = {"therapist": spec.therapist_voice, "client": spec.client_voice}
    session_id = audio.stem
    utterances: list[TruthUtterance] = []
    offset = 0  # samples written so far
    synthesizer = "flite"
    used: list[str] = []
    partial = audio.with_suffix(".partial.flac")
    finished = False
    try:
        with sf.SoundFile(partial, "w", samplerate=sr, channels=1, format="FLAC", subtype="PCM_16") as out, \
                tempfile.TemporaryDirectory(prefix="render-long-") as tmp:
            for tid in transcript_ids(csv_path, spec.quality):
                rows = dedupe_utterances(read_annomi_rows(csv_path, tid))
                script = script_from_annomi(rows, voices=voices, gap_s=spec.gap_s,
                                            long_silence_every=spec.long_silence_every,
                                            long_silence_s=spec.long_silence_s, seed=spec.seed + int(tid),
                                            session_id=session_id)
                lines = [dataclasses.replace(x, tags=(*x.tags, f"annomi-{tid}")) for x in script.lines]
                used.append(tid)
                i = 0
                while i < len(lines):
                    # size the piece by what is left to render, from the seconds per line so far
                    per_line = offset / sr / len(utterances) if utterances else 5.0
                    want = int((target - offset) / sr / per_line) + 2
                    n = max(4, min(chunk_lines, want))
                    piece = Script(session_id=session_id, lines=tuple(lines[i:i + n]), voices=voices, tail_s=0.0)
                    wav = Path(tmp) / "piece.wav"
                    t = render_session(piece, wav, seed=spec.seed * 100_003 + len(utterances),
                                       noise_floor_dbfs=spec.noise_floor_dbfs)
                    synthesizer = t.synthesizer
                    pcm, _ = sf.read(wav, dtype="int16")
                    shifted = [dataclasses.replace(
                        u, index=len(utterances) + k, start_sample=u.start_sample + offset,
                        end_sample=u.end_sample + offset, start_s=(u.start_sample + offset) / sr,
                        end_s=(u.end_sample + offset) / sr) for k, u in enumerate(t.utterances)]
                    if offset + len(pcm) + tail >= target:
                        # stop before or after the line that crosses the target, whichever ends nearer to it
                        n_in = sum(u.end_sample + tail <= target for u in shifted)
                        under = (shifted[n_in - 1].end_sample if n_in else offset) + tail
                        over = shifted[n_in].end_sample + tail if n_in < len(shifted) else under
                        if over - target < target - under or (n_in == 0 and not utterances):
                            n_in += 1
                        keep = shifted[:n_in]
                        cut = keep[-1].end_sample - offset if keep else 0
                        out.write(pcm[:cut])
                        out.write(_noise(tail, spec.noise_floor_dbfs, seed=spec.seed))
                        utterances.extend(keep)
                        offset += cut + tail
                        finished = True
                        break
                    out.write(pcm)
                    utterances.extend(shifted)
                    offset += len(pcm)
                    i += n
                    if log:
                        print(f"\r{offset / sr / 60:6.2f} of {spec.minutes:g} min rendered "
                              f"({time.perf_counter() - t0:.0f} s)", end="", file=sys.stderr, flush=True)
                if finished:
                    break
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    if log:
        print(file=sys.stderr)
    if not finished:
        partial.unlink(missing_ok=True)
        raise ValueError(f"AnnoMI ({spec.quality}) transcripts give only {offset / sr / 60:.1f} min; "
                         f"asked for {spec.minutes:g}")
    silences, overlaps = silences_and_overlaps(utterances, sr)
    truth = SessionTruth(session_id=session_id, audio_file=audio.name, sample_rate_hz=sr, n_samples=offset,
                         seed=spec.seed, noise_floor_dbfs=spec.noise_floor_dbfs, synthesizer=synthesizer,
                         utterances=tuple(utterances), silences=silences, overlaps=overlaps)
    partial.replace(audio)
    write_truth(truth, truth_json)
    write_rttm(truth, rttm)
    render_s = time.perf_counter() - t0
    meta.write_text(json.dumps({"spec": dataclasses.asdict(spec), "key": key, "render_version": RENDER_VERSION,
                                "csv": str(csv_path), "flite": flite, "annomi_transcripts": used,
                                "duration_s": truth.duration_s, "utterances": len(utterances),
                                "long_silences": sum(s.duration_s >= 2.0 for s in silences),
                                "render_s": round(render_s, 2)}, indent=1) + "\n")
    return LongRender(audio, truth_json, rttm, meta, truth.duration_s, render_s, False)


def check_render(render: LongRender) -> dict[str, float]:
    """Audio and truth lengths of a render (they must agree to the sample).

    Returns
    -------
    dict
        ``audio_samples``, ``truth_samples``, ``last_utterance_end_s``, ``duration_s``.
    """
    truth = read_truth(render.truth)
    info = sf.info(str(render.audio))
    return {"audio_samples": info.frames, "truth_samples": truth.n_samples,
            "last_utterance_end_s": truth.utterances[-1].end_s, "duration_s": truth.duration_s}


def main(argv: list[str] | None = None) -> int:
    """Render the requested lengths (or report the cached renders) and print one JSON line each."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, nargs="+", default=[1.0], help="target lengths (default: 1)")
    ap.add_argument("--therapist-voice", default="awb", help="flite voice of the therapist (default awb)")
    ap.add_argument("--client-voice", default="slt", help="flite voice of the client (default slt)")
    ap.add_argument("--gap-s", type=float, default=0.6, help="mean gap before each line, s (default 0.6)")
    ap.add_argument("--long-silence-every", type=int, default=30,
                    help="every n-th line of a transcript follows a long silence (default 30)")
    ap.add_argument("--long-silence-s", type=float, default=5.0, help="long silence, s (default 5)")
    ap.add_argument("--quality", choices=["high", "low", "any"], default="high",
                    help="AnnoMI mi_quality of the transcripts used (default high)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--csv", type=Path, default=ANNOMI_CSV, help=f"AnnoMI CSV (default {ANNOMI_CSV})")
    ap.add_argument("--out-dir", type=Path, default=RENDERS_DIR, help="cache folder (default bench/.renders)")
    ap.add_argument("--force", action="store_true", help="render again even when cached")
    args = ap.parse_args(argv)
    for minutes in args.minutes:
        spec = LongSpec(minutes=minutes, therapist_voice=args.therapist_voice, client_voice=args.client_voice,
                        gap_s=args.gap_s, long_silence_every=args.long_silence_every,
                        long_silence_s=args.long_silence_s, quality=args.quality, seed=args.seed)
        r = render_long(spec, csv_path=args.csv, out_dir=args.out_dir, force=args.force)
        print(json.dumps({"minutes": minutes, "audio": str(r.audio), "truth": str(r.truth), "rttm": str(r.rttm),
                          "duration_s": round(r.duration_s, 3), "render_s": round(r.render_s, 2),
                          "cached": r.cached, **check_render(r)}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())


_dedupe = dedupe_utterances  # the old private name, still imported by bench/bench_realistic.py (another branch)
