"""Accuracy of the markers on rendered sessions with exact truth (real AnnoMI dialogue, flite voices).

K sessions (default 6) are rendered with :mod:`evaluation.synthetic` from different AnnoMI transcripts (high- and
low-quality MI), each with its own pair of flite voices built from real speakers, jittered gaps around
``gap_s``, a few medium gaps just under the 2 s threshold (distractors) and several inserted long silences
(2.25 to 6 s, about half of them right after a therapist's question). Renders are cached under
``bench/.renders/accuracy-*`` (keyed by every render parameter, the CSV and the flite version).

The real pipeline then runs on each (default :class:`pipeline.engine.runtime.PipelineOptions`, models loaded once) and
the markers are scored against the truth, per session and pooled:

- long silences (>= ``min_silence_s``, 2 s): precision, recall and F1, where a detected silence matches a true
  one when they overlap (one-to-one, largest overlap first); onset/offset errors of the matches; and F1 counting
  only matches whose onset is within 0.25 s;
- switching gaps: true floor transfers (:func:`pipeline.markers.silences.floor_transfers` on the truth) matched to
  detected ones whose start is within 1 s; ``|detected offset - true offset|``;
- speech rate per role (words/min; truth words are the tokens of the script text, truth time the union of the
  role's utterances), with the word-count and speaking-time errors behind it;
- "we" counts per role (:func:`pipeline.markers.we_language.find_we_tokens` on the truth words with true roles
  against the pipeline's ``we_count``);
- roles, word-to-speaker attribution, WER and DER (from ``bench/bench_session.py``).

Targets are printed with pass/fail; nothing here is tuned to meet them. Prints JSON, then a Markdown table::

    .venv/bin/python -m bench.render_accuracy [--sessions 4] [--max-utterances 36] [--markdown FILE]

Exits 0 with a message when ``../shared`` (the AnnoMI CSV) or the ``flite`` binary is absent.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import math
import platform
import re
import shutil
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bench.bench_session import score_against_truth, truth_role_lookup
from bench.render_long import RENDERS_DIR, _dedupe
from evaluation.metrics import normalise_text
from evaluation.synthetic import (
    Script,
    SessionTruth,
    flite_version,
    read_annomi_rows,
    read_truth,
    render_session,
    script_from_annomi,
    truth_paths,
    write_rttm,
    write_truth,
)
from pipeline.lexicons import normalise_token
from pipeline.markers.silences import floor_transfers, speaking_time_s
from pipeline.markers.we_language import find_we_tokens
from pipeline.types import ROLES, AttributedWord

ROOT = Path(__file__).resolve().parents[1]
BENCH = Path(__file__).resolve().parent

SHARED = ROOT.parent / "shared"
ANNOMI_CSV = SHARED / "data" / "annomi" / "AnnoMI-full.csv"
#: Bump when the rendering recipe changes, so cached renders are not reused.
RENDER_VERSION = 1
ONSET_TOLERANCE_S = 0.25
TRANSFER_TOLERANCE_S = 1.0
TARGETS = {
    "silence_f1_onset_0.25s": 0.95,
    "role_accuracy": 1.0,
    "attribution_accuracy": 0.95,
    "we_count_abs_rel_error": 0.05,
}


# --------------------------------------------------------------------------- rendering


@dataclass(frozen=True)
class RenderSpec:
    """Every parameter of one rendered session (also its cache key).

    Attributes
    ----------
    transcript_id : str
        AnnoMI transcript.
    quality : str
        Its ``mi_quality`` (``high``/``low``), for the report; checked against the CSV.
    therapist_voice, client_voice : str
        flite voices from real speakers (``awb``, ``rms``, ``kal16`` male; ``slt`` female).
    max_utterances : int
        Keep the first n spoken lines (caps the audio at about 3 to 4 minutes).
    gap_s : float
        Mean gap before each line (drawn from ``[0.5, 1.5] * gap_s``).
    n_long_silences : int
        Lines preceded by a long silence; about half right after a therapist's question when there are such lines.
    n_pauses : int
        Lines of several sentences split in two with a long silence between (a *pause*: the same speaker goes on).
    long_silence_min_s, long_silence_max_s : float
        The ``n_long_silences + n_pauses`` long silences are spread evenly over this range (then shuffled).
    n_medium_gaps : int
        Lines preceded by a gap of ``medium_gap_s`` (distractors under the 2 s threshold).
    medium_gap_s : tuple of float
        Range of the medium gaps.
    seed : int
        Seeds the gap jitter, the choice of lines and the noise floor.
    """

    transcript_id: str
    quality: str
    therapist_voice: str
    client_voice: str
    max_utterances: int = 32
    gap_s: float = 0.6
    n_long_silences: int = 6
    long_silence_min_s: float = 2.25
    long_silence_max_s: float = 6.0
    n_pauses: int = 1
    n_medium_gaps: int = 3
    medium_gap_s: tuple[float, float] = (1.2, 1.6)
    seed: int = 0
    noise_floor_dbfs: float = -55.0

    def key(self, csv_path: Path, flite_version: str) -> str:
        doc = {**dataclasses.asdict(self), "render_version": RENDER_VERSION, "csv": csv_path.name,
               "csv_bytes": csv_path.stat().st_size, "flite": flite_version}
        return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()[:10]


#: Sessions in the order used (``--sessions K`` takes the first K): high and low MI quality alternate, each with
#: another voice pair (one male-male pair). Transcripts with "we" from both roles where possible.
DEFAULT_SPECS: tuple[RenderSpec, ...] = (
    RenderSpec("46", "high", "awb", "slt"),
    RenderSpec("131", "low", "slt", "rms"),
    RenderSpec("104", "high", "kal16", "slt"),
    RenderSpec("53", "low", "rms", "awb"),
    RenderSpec("0", "high", "slt", "kal16"),
    RenderSpec("17", "low", "awb", "rms"),
)


def build_script(spec: RenderSpec, rows: Sequence[dict[str, str]]) -> Script:
    """The AnnoMI lines of ``spec`` with its long silences and medium gaps put in (deterministic)."""
    voices = {"therapist": spec.therapist_voice, "client": spec.client_voice}
    base = script_from_annomi(rows, voices=voices, gap_s=spec.gap_s, seed=spec.seed + int(spec.transcript_id),
                              session_id=f"accuracy-{spec.transcript_id}")
    lines = list(base.lines[: spec.max_utterances])
    rng = np.random.default_rng(spec.seed * 7919 + int(spec.transcript_id))
    eligible = list(range(2, len(lines)))
    after_q = [i for i in eligible if lines[i].role == "client" and lines[i - 1].role == "therapist"
               and lines[i - 1].text.rstrip().endswith("?")]
    n_long = min(spec.n_long_silences, len(eligible))
    n_q = min(math.ceil(n_long / 2), len(after_q))
    chosen_q = [int(i) for i in rng.choice(after_q, size=n_q, replace=False)] if n_q else []
    rest = [i for i in eligible if i not in chosen_q]
    chosen_other = [int(i) for i in rng.choice(rest, size=n_long - n_q, replace=False)] if n_long > n_q else []
    splittable = [i for i in eligible if i not in chosen_q + chosen_other
                  and len(re.split(r"(?<=[.?!])\s+", lines[i].text.strip())) >= 2]
    n_pause = min(spec.n_pauses, len(splittable))
    chosen_pause = [int(i) for i in rng.choice(splittable, size=n_pause, replace=False)] if n_pause else []
    n_all = n_long + n_pause
    durations = np.linspace(spec.long_silence_min_s, spec.long_silence_max_s, n_all) if n_all else []
    durations = [float(d) for d in rng.permutation(durations)]
    pause_s = dict(zip(chosen_pause, durations[n_long:], strict=True))
    for i, d in zip(sorted(chosen_q + chosen_other), durations[:n_long], strict=True):
        tags = ("long_silence_before",) + (("after_therapist_question",) if i in after_q else ())
        lines[i] = dataclasses.replace(lines[i], gap_before_s=round(d, 4), tags=lines[i].tags + tags)
    free = [i for i in eligible if i not in chosen_q + chosen_other]
    n_med = min(spec.n_medium_gaps, len(free))
    for i in (int(i) for i in rng.choice(free, size=n_med, replace=False)) if n_med else ():
        gap = float(rng.uniform(*spec.medium_gap_s))
        lines[i] = dataclasses.replace(lines[i], gap_before_s=round(gap, 4),
                                       tags=lines[i].tags + ("medium_gap_before",))
    out = []
    for i, line in enumerate(lines):
        if i not in pause_s:
            out.append(line)
            continue
        # split at the sentence boundary nearest the middle; the second half follows a long pause
        parts = re.split(r"(?<=[.?!])\s+", line.text.strip())
        cut = min(range(1, len(parts)), key=lambda k: abs(len(" ".join(parts[:k])) - len(line.text) / 2))
        out.append(dataclasses.replace(line, text=" ".join(parts[:cut])))
        out.append(dataclasses.replace(line, text=" ".join(parts[cut:]), gap_before_s=round(pause_s[i], 4),
                                       tags=line.tags + ("long_silence_before", "split_pause")))
    return Script(session_id=base.session_id, lines=tuple(out), voices=voices, tail_s=0.5)


@dataclass(frozen=True)
class Rendered:
    spec: RenderSpec
    audio: Path
    truth: Path
    render_s: float
    cached: bool


def render(spec: RenderSpec, *, csv_path: Path = ANNOMI_CSV, out_dir: Path = RENDERS_DIR,
           force: bool = False) -> Rendered:
    """Render (or reuse) one session: ``accuracy-<tid>-<key>.{flac,truth.json,rttm,render.json}``."""
    flite = flite_version()
    key = spec.key(csv_path, flite)
    out_dir.mkdir(parents=True, exist_ok=True)
    audio = out_dir / f"accuracy-{spec.transcript_id}-{key}.flac"
    truth_json, rttm = truth_paths(audio)
    meta = audio.with_name(audio.stem + ".render.json")
    if not force and audio.is_file() and truth_json.is_file() and meta.is_file():
        return Rendered(spec, audio, truth_json, json.loads(meta.read_text())["render_s"], True)
    t0 = time.perf_counter()
    rows = _dedupe(read_annomi_rows(csv_path, spec.transcript_id))
    if not rows:
        raise ValueError(f"AnnoMI transcript {spec.transcript_id} is not in {csv_path}")
    if rows[0].get("mi_quality") != spec.quality:
        raise ValueError(f"AnnoMI transcript {spec.transcript_id} is {rows[0].get('mi_quality')!r} quality, "
                         f"not {spec.quality!r}")
    script = build_script(spec, rows)
    partial = audio.with_name(audio.stem + ".partial.flac")
    truth = render_session(script, partial, seed=spec.seed, noise_floor_dbfs=spec.noise_floor_dbfs)
    truth = dataclasses.replace(truth, audio_file=audio.name)
    partial.replace(audio)
    write_truth(truth, truth_json)
    write_rttm(truth, rttm)
    render_s = time.perf_counter() - t0
    meta.write_text(json.dumps({"spec": dataclasses.asdict(spec), "key": key, "render_version": RENDER_VERSION,
                                "csv": str(csv_path), "flite": flite, "duration_s": truth.duration_s,
                                "render_s": round(render_s, 2)}, indent=1) + "\n")
    return Rendered(spec, audio, truth_json, render_s, False)


# --------------------------------------------------------------------------- matching and metrics (pure)


def match_intervals(true: Sequence[tuple[float, float]],
                    detected: Sequence[tuple[float, float]]) -> list[tuple[int, int]]:
    """One-to-one matches ``(i_true, j_detected)`` of intervals that overlap (by a positive length).

    Pairs are taken greedily by largest overlap (ties: earlier true, then earlier detected); returned sorted.
    """
    cands = []
    for i, (ts, te) in enumerate(true):
        for j, (ds, de) in enumerate(detected):
            ov = min(te, de) - max(ts, ds)
            if ov > 0:
                cands.append((-ov, i, j))
    used_t: set[int] = set()
    used_d: set[int] = set()
    pairs = []
    for _, i, j in sorted(cands):
        if i not in used_t and j not in used_d:
            used_t.add(i)
            used_d.add(j)
            pairs.append((i, j))
    return sorted(pairs)


def match_events(true_at: Sequence[float], detected_at: Sequence[float], *,
                 tolerance_s: float) -> list[tuple[int, int]]:
    """One-to-one matches ``(i_true, j_detected)`` of time points at most ``tolerance_s`` apart, nearest first."""
    cands = sorted((abs(d - t), i, j) for i, t in enumerate(true_at) for j, d in enumerate(detected_at)
                   if abs(d - t) <= tolerance_s)
    used_t: set[int] = set()
    used_d: set[int] = set()
    pairs = []
    for _, i, j in cands:
        if i not in used_t and j not in used_d:
            used_t.add(i)
            used_d.add(j)
            pairs.append((i, j))
    return sorted(pairs)


def _ratio(num: float, den: float) -> float | None:
    return num / den if den else None


def detection_scores(n_true: int, n_detected: int, n_matched: int) -> dict[str, float | None]:
    """Precision, recall and F1 from counts (None where undefined; F1 is ``2m / (n_true + n_detected)``)."""
    return {"precision": _ratio(n_matched, n_detected), "recall": _ratio(n_matched, n_true),
            "f1": _ratio(2 * n_matched, n_true + n_detected)}


def silence_scores(true: Sequence[tuple[float, float]], detected: Sequence[tuple[float, float]], *,
                   onset_tolerance_s: float = ONSET_TOLERANCE_S) -> dict[str, Any]:
    """Counts, matches and signed errors (detected - true) of silences; see :func:`summarise_silences`."""
    pairs = match_intervals(true, detected)
    onset = [detected[j][0] - true[i][0] for i, j in pairs]
    offset = [detected[j][1] - true[i][1] for i, j in pairs]
    return {"n_true": len(true), "n_detected": len(detected), "pairs": pairs, "onset_errors_s": onset,
            "offset_errors_s": offset, "n_matched_onset_ok": sum(abs(e) <= onset_tolerance_s for e in onset)}


def summarise_errors(errors: Sequence[float]) -> dict[str, float | None]:
    """Median, 90th percentile and maximum of absolute errors (None for none)."""
    if not len(errors):
        return {"median": None, "p90": None, "max": None}
    a = np.abs(np.asarray(errors, dtype=float))
    return {"median": float(np.median(a)), "p90": float(np.percentile(a, 90)), "max": float(a.max())}


def summarise_silences(s: dict[str, Any], *, onset_tolerance_s: float = ONSET_TOLERANCE_S) -> dict[str, Any]:
    """Precision/recall/F1 by overlap, F1 with onsets within tolerance, onset/offset error summaries."""
    m = len(s["pairs"])
    out: dict[str, Any] = {"n_true": s["n_true"], "n_detected": s["n_detected"], "n_matched": m,
                           **detection_scores(s["n_true"], s["n_detected"], m)}
    out["f1_onset_tol"] = _ratio(2 * s["n_matched_onset_ok"], s["n_true"] + s["n_detected"])
    out["onset_share_within_tol"] = _ratio(s["n_matched_onset_ok"], m)
    out["onset_abs_error_s"] = summarise_errors(s["onset_errors_s"])
    out["offset_abs_error_s"] = summarise_errors(s["offset_errors_s"])
    out["onset_mean_signed_error_s"] = float(np.mean(s["onset_errors_s"])) if m else None
    out["offset_mean_signed_error_s"] = float(np.mean(s["offset_errors_s"])) if m else None
    return out


def transfer_scores(true: Sequence[tuple[float, float]], detected: Sequence[tuple[float, float]], *,
                    tolerance_s: float = TRANSFER_TOLERANCE_S) -> dict[str, Any]:
    """Match floor transfers ``(at_s, offset_s)`` by ``at_s``; ``|detected offset - true offset|`` per match."""
    pairs = match_events([t[0] for t in true], [d[0] for d in detected], tolerance_s=tolerance_s)
    return {"n_true": len(true), "n_detected": len(detected), "pairs": pairs,
            "offset_errors_s": [abs(detected[j][1] - true[i][1]) for i, j in pairs]}


def relative_error(detected: float | None, true: float | None) -> float | None:
    """``(detected - true) / true``; None when either is None or the truth is 0."""
    if detected is None or true is None or true == 0:
        return None
    return (detected - true) / true


# --------------------------------------------------------------------------- truth-side measures


def truth_words(truth: SessionTruth) -> list[AttributedWord]:
    """Whitespace tokens (with a letter or digit) of every truth utterance, with its role as the speaker."""
    out = []
    for u in truth.utterances:
        for tok in u.text.split():
            if re.search(r"\w", tok):
                out.append(AttributedWord(u.start_s, u.end_s, tok, 1.0, u.role))
    return out


def truth_role_measures(truth: SessionTruth) -> dict[str, dict[str, float]]:
    """Per role: words, speaking time (union of its utterances), words/min and "we" count of the truth."""
    words = truth_words(truth)
    talk = speaking_time_s(truth.as_diarization())
    we = find_we_tokens(words)
    out = {}
    for role in ROLES:
        n = sum(w.speaker == role for w in words)
        t = talk.get(role, 0.0)
        out[role] = {"words": n, "speaking_time_s": t, "speech_rate": 60.0 * n / t if t else None,
                     "we_count": sum(w.speaker == role for w in we)}
    return out


# --------------------------------------------------------------------------- pipeline


def run_pipeline(rendered: Sequence[Rendered], options: Any = None, *, log: bool = True) -> list[dict[str, Any]]:
    """Analyse each rendered session with the real models (loaded once); returns the analyses and timings."""
    from concurrent.futures import ThreadPoolExecutor

    from pipeline.analysis.session import SessionMeta, analyse
    from pipeline.audio.decode import load_audio
    from pipeline.engine.runtime import DIARIZATION_MODEL_NAME, PipelineOptions, get_diarizer, get_nlp, get_transcriber
    from pipeline.privacy.consent import parse_consent

    options = options or PipelineOptions()
    t0 = time.perf_counter()
    transcriber, diarizer, nlp = get_transcriber(options.transcribe), get_diarizer(options.diarize), get_nlp()
    load_s = time.perf_counter() - t0
    out = []
    for r in rendered:
        t = time.perf_counter()
        audio = load_audio(r.audio, options=options.audio)
        meta = SessionMeta(r.audio.stem, "bench-client", "bench-therapist")
        consent = parse_consent({"session_id": meta.session_id, "client_id": meta.client_id, "scope": "research",
                                 "consented_on": "2026-01-01", "consented_by": ["client"]}, source="bench")
        if options.overlap_stages:
            with ThreadPoolExecutor(2) as pool:
                ft = pool.submit(transcriber.transcribe, audio.samples)
                fd = pool.submit(diarizer.diarize, audio.samples, num_speakers=meta.num_speakers)
                transcript, diarization = ft.result(), fd.result()
        else:
            transcript = transcriber.transcribe(audio.samples)
            diarization = diarizer.diarize(audio.samples, num_speakers=meta.num_speakers)
        analysis = analyse(audio, transcript, diarization, meta=meta, consent=consent, nlp=nlp,
                           diarization_model=DIARIZATION_MODEL_NAME, options=options.indicators)
        secs = time.perf_counter() - t
        if log:
            print(f"{r.audio.name}: {audio.duration_s:.0f} s analysed in {secs:.0f} s", file=sys.stderr, flush=True)
        out.append({"rendered": r, "analysis": analysis, "analysis_s": secs, "audio_s": audio.duration_s})
    return [{**o, "load_models_s": load_s} for o in out]


# --------------------------------------------------------------------------- scoring


def evaluate_session(truth: SessionTruth, analysis: Any, *, min_silence_s: float = 2.0) -> dict[str, Any]:
    """Every score of one analysed session against its truth (raw material for pooling included)."""
    role_of = analysis.roles.role_of
    # silences
    t_sil = [s for s in truth.silences if s.duration_s >= min_silence_s]
    d_sil = [m for m in analysis.measures.markers if m.kind == "long_silence"]
    sil = silence_scores([(s.start_s, s.end_s) for s in t_sil], [(m.start_s, m.end_s) for m in d_sil])
    tags = {u.index: u.tags for u in truth.utterances}
    after_q = [k for k, s in enumerate(t_sil) if "after_therapist_question" in tags[s.after_index]]
    matched_t = {i for i, _ in sil["pairs"]}
    kinds_ok = sum(t_sil[i].kind == json.loads(d_sil[j].detail)["type"] for i, j in sil["pairs"])
    sil.update({"n_after_question": len(after_q), "n_after_question_found": len(set(after_q) & matched_t),
                "n_kind_ok": kinds_ok,
                "missed": [(round(t_sil[i].start_s, 2), round(t_sil[i].duration_s, 2))
                           for i in range(len(t_sil)) if i not in matched_t],
                "spurious": [(round(d_sil[j].start_s, 2), round(d_sil[j].end_s - d_sil[j].start_s, 2))
                             for j in range(len(d_sil)) if j not in {j for _, j in sil["pairs"]}]})
    # switching gaps (floor transfers); truth speakers are the roles
    t_tr = floor_transfers(truth.as_diarization())
    d_tr = floor_transfers(analysis.diarization)
    tr = transfer_scores([(x.at_s, x.offset_s) for x in t_tr], [(x.at_s, x.offset_s) for x in d_tr])
    tr["n_direction_ok"] = sum(t_tr[i].to_speaker == role_of(d_tr[j].to_speaker) for i, j in tr["pairs"])
    text_at = {round(u.start_s, 6): u.text for u in truth.utterances}
    matched_tr = {i for i, _ in tr["pairs"]}
    tr["missed"] = [(round(x.at_s, 2), round(x.offset_s, 2), text_at.get(round(x.at_s, 6), "")[:40])
                    for i, x in enumerate(t_tr) if i not in matched_tr]
    # per-role rate and "we"
    truth_roles = truth_role_measures(truth)
    we_truth, we_det = find_we_tokens(truth_words(truth)), find_we_tokens(analysis.words)
    ind = {(x.name, x.speaker_role): x.value for x in analysis.measures.indicators}
    roles: dict[str, dict[str, Any]] = {}
    for role in ROLES:
        tr_role = truth_roles[role]
        det = {"words": ind[("word_count", role)], "speaking_time_s": ind[("speaking_time", role)],
               "speech_rate": ind[("speech_rate", role)], "we_count": ind[("we_count", role)]}
        roles[role] = {"truth": tr_role, "detected": det,
                       **{f"{k}_rel_error": relative_error(det[k], tr_role[k]) for k in det},
                       "we_tokens_truth": _token_counts(w for w in we_truth if w.speaker == role),
                       "we_tokens_detected": _token_counts(w for w in we_det if role_of(w.speaker) == role)}
    # attribution (counts, for pooling) and the bench_session scores
    role_at = truth_role_lookup(truth)
    correct = counted = 0
    for w in analysis.words:
        owner = role_at(0.5 * (w.start_s + w.end_s))
        if owner is not None:
            counted += 1
            correct += owner == role_of(w.speaker)
    base = score_against_truth(truth, analysis, analysis.diarization)
    truth_speech_s = sum(speaking_time_s(truth.as_diarization()).values())
    return {"silences": sil, "transfers": tr, "roles": roles, "attribution_correct": correct,
            "attribution_counted": counted, "n_asr_words": len(analysis.words),
            "role_correct": base["role_correct"], "role_confidence": analysis.roles.confidence,
            "wer": base["wer"], "der": base["der"],
            "n_ref_words": len(normalise_text(" ".join(u.text for u in truth.utterances)).split()),
            "truth_speech_s": truth_speech_s}


def _token_counts(words: Any) -> dict[str, int]:
    return dict(sorted(Counter(normalise_token(w.text) for w in words).items()))


def _round_tree(obj: Any, nd: int = 3) -> Any:
    if isinstance(obj, float):
        return round(obj, nd)
    if isinstance(obj, dict):
        return {k: _round_tree(v, nd) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_round_tree(v, nd) for v in obj]
    return obj


def summarise(ev: dict[str, Any]) -> dict[str, Any]:
    """The reported numbers of one session (or of the pooled raw material)."""
    sil = summarise_silences(ev["silences"])
    sil.update({k: ev["silences"][k] for k in ("n_after_question", "n_after_question_found", "n_kind_ok")})
    for k in ("missed", "spurious"):
        if k in ev["silences"]:
            sil[k] = ev["silences"][k]
    tr = ev["transfers"]
    transfers = {"n_true": tr["n_true"], "n_detected": tr["n_detected"], "n_matched": len(tr["pairs"]),
                 "recall": _ratio(len(tr["pairs"]), tr["n_true"]),
                 "direction_ok_share": _ratio(tr["n_direction_ok"], len(tr["pairs"])),
                 "offset_abs_error_s": summarise_errors(tr["offset_errors_s"])}
    if "missed" in tr:
        transfers["missed_true"] = tr["missed"]
    return {"silences": sil, "switching_gaps": transfers, "roles": ev["roles"],
            "attribution_accuracy": _ratio(ev["attribution_correct"], ev["attribution_counted"]),
            "asr_words_outside_truth_utterances": ev["n_asr_words"] - ev["attribution_counted"],
            "role_correct": ev["role_correct"], "wer": ev["wer"], "der": ev["der"]}


def pool(evals: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Pool raw counts and errors over sessions (rates from summed words and time; WER/DER weighted)."""
    sil = {"n_true": 0, "n_detected": 0, "pairs": [], "onset_errors_s": [], "offset_errors_s": [],
           "n_matched_onset_ok": 0, "n_after_question": 0, "n_after_question_found": 0, "n_kind_ok": 0}
    tr = {"n_true": 0, "n_detected": 0, "pairs": [], "offset_errors_s": [], "n_direction_ok": 0}
    for ev in evals:
        for k in sil:
            sil[k] = sil[k] + ev["silences"][k]
        for k in tr:
            tr[k] = tr[k] + ev["transfers"][k]
    roles = {}
    for role in ROLES:
        t = {k: sum(ev["roles"][role]["truth"][k] for ev in evals) for k in ("words", "speaking_time_s", "we_count")}
        d = {k: sum(ev["roles"][role]["detected"][k] or 0.0 for ev in evals)
             for k in ("words", "speaking_time_s", "we_count")}
        t["speech_rate"] = _ratio(60.0 * t["words"], t["speaking_time_s"])
        d["speech_rate"] = _ratio(60.0 * d["words"], d["speaking_time_s"])
        per_session = [ev["roles"][role]["speech_rate_rel_error"] for ev in evals]
        per_session = [abs(x) for x in per_session if x is not None]
        roles[role] = {"truth": t, "detected": d, **{f"{k}_rel_error": relative_error(d[k], t[k]) for k in d},
                       "speech_rate_mean_abs_rel_error_per_session": _ratio(sum(per_session), len(per_session))}
    n_ref = sum(ev["n_ref_words"] for ev in evals)
    speech = sum(ev["truth_speech_s"] for ev in evals)
    return {"silences": sil, "transfers": tr, "roles": roles,
            "attribution_correct": sum(ev["attribution_correct"] for ev in evals),
            "attribution_counted": sum(ev["attribution_counted"] for ev in evals),
            "n_asr_words": sum(ev["n_asr_words"] for ev in evals),
            "role_correct": _ratio(sum(bool(ev["role_correct"]) for ev in evals), len(evals)),
            "wer": _ratio(sum(ev["wer"] * ev["n_ref_words"] for ev in evals), n_ref),
            "der": _ratio(sum(ev["der"] * ev["truth_speech_s"] for ev in evals), speech)}


def check_targets(pooled: dict[str, Any]) -> list[dict[str, Any]]:
    """Each target with the pooled value and pass/fail."""
    f1 = pooled["silences"]["f1_onset_tol"]
    attr = pooled["attribution_accuracy"]
    rows = [
        {"target": f"long-silence F1 (onset within {ONSET_TOLERANCE_S} s) >= {TARGETS['silence_f1_onset_0.25s']}",
         "value": f1, "pass": f1 is not None and f1 >= TARGETS["silence_f1_onset_0.25s"]},
        {"target": "roles correct in 100 % of sessions", "value": pooled["role_correct"],
         "pass": pooled["role_correct"] == 1.0},
        {"target": f"word attribution >= {TARGETS['attribution_accuracy']}", "value": attr,
         "pass": attr is not None and attr >= TARGETS["attribution_accuracy"]},
    ]
    for role in ROLES:
        e = pooled["roles"][role]["we_count_rel_error"]
        rows.append({"target": f"'we' count ({role}, pooled) within 5 %", "value": e,
                     "pass": e is not None and abs(e) <= TARGETS["we_count_abs_rel_error"]})
    return rows


# --------------------------------------------------------------------------- report


def _fmt(x: Any, nd: int = 2, pct: bool = False) -> str:
    if x is None:
        return "–"
    if isinstance(x, bool):
        return "yes" if x else "NO"
    if pct:
        return f"{100 * x:+.1f} %" if pct == "signed" else f"{100 * x:.1f} %"
    return f"{x:.{nd}f}" if isinstance(x, float) else str(x)


def markdown(report: dict[str, Any]) -> str:
    """Per-session and pooled tables, then the targets."""
    head = ("| session | MI | voices T/C | audio s | sil. true/det/match | P | R | F1 | F1 onset≤0.25 s | "
            "onset err med/max s | offset err med/max s | switch-gap err med/p90 s (n) | rate err T/C | "
            "'we' T/C (true→det) | roles | attribution | WER | DER |")
    lines = [head, "|" + "|".join(["---"] * (head.count("|") - 1)) + "|"]
    rows = [(s["session"], s) for s in report["sessions"]] + [("**pooled**", report["pooled"])]
    for name, s in rows:
        sil, sw, ro = s["silences"], s["switching_gaps"], s["roles"]
        we = " / ".join(f"{_fmt(ro[r]['truth']['we_count'], 0)}→{_fmt(ro[r]['detected']['we_count'], 0)}"
                        for r in ROLES)
        rate = " / ".join(_fmt(ro[r]["speech_rate_rel_error"], pct="signed") for r in ROLES)
        lines.append(
            f"| {name} | {s.get('mi_quality', '')} | {s.get('voices', '')} | {_fmt(s.get('audio_s'), 0)} | "
            f"{sil['n_true']}/{sil['n_detected']}/{sil['n_matched']} | {_fmt(sil['precision'])} | "
            f"{_fmt(sil['recall'])} | {_fmt(sil['f1'])} | {_fmt(sil['f1_onset_tol'])} | "
            f"{_fmt(sil['onset_abs_error_s']['median'])}/{_fmt(sil['onset_abs_error_s']['max'])} | "
            f"{_fmt(sil['offset_abs_error_s']['median'])}/{_fmt(sil['offset_abs_error_s']['max'])} | "
            f"{_fmt(sw['offset_abs_error_s']['median'])}/{_fmt(sw['offset_abs_error_s']['p90'])} "
            f"({sw['n_matched']}/{sw['n_true']}) | {rate} | {we} | {_fmt(s['role_correct'])} | "
            f"{_fmt(s['attribution_accuracy'], pct=True)} | {_fmt(s['wer'], 3)} | {_fmt(s['der'], 3)} |")
    lines += ["", "| target | value | pass |", "|---|---|---|"]
    for t in report["targets"]:
        lines.append(f"| {t['target']} | {_fmt(t['value'], 3)} | {'PASS' if t['pass'] else 'FAIL'} |")
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sessions", type=int, default=6, help=f"sessions to render and analyse (1 to "
                    f"{len(DEFAULT_SPECS)}; default 6)")
    ap.add_argument("--max-utterances", type=int, default=RenderSpec.max_utterances,
                    help=f"spoken lines kept per transcript (default {RenderSpec.max_utterances})")
    ap.add_argument("--markdown", type=Path, help="also write the Markdown tables to this file")
    ap.add_argument("--render-only", action="store_true", help="render (or reuse) the sessions and stop")
    ap.add_argument("--force", action="store_true", help="render again even when cached")
    args = ap.parse_args(argv)
    if not ANNOMI_CSV.is_file():
        print(f"{ANNOMI_CSV} not available (../shared is for development only): nothing to do")
        return 0
    if shutil.which("flite") is None:
        print("the 'flite' binary is not installed (apt-get install flite): nothing to do")
        return 0
    if not 1 <= args.sessions <= len(DEFAULT_SPECS):
        ap.error(f"--sessions must be 1 to {len(DEFAULT_SPECS)}")
    specs = [dataclasses.replace(s, max_utterances=args.max_utterances) for s in DEFAULT_SPECS[: args.sessions]]
    rendered = [render(s, force=args.force) for s in specs]
    if args.render_only:
        for r in rendered:
            t = read_truth(r.truth)
            print(json.dumps({"audio": str(r.audio), "duration_s": round(t.duration_s, 1), "cached": r.cached,
                              "render_s": round(r.render_s, 1), "utterances": len(t.utterances),
                              "long_silences": sum(s.duration_s >= 2 for s in t.silences)}))
        return 0

    from pipeline.engine.runtime import PipelineOptions

    options = PipelineOptions()
    min_sil = options.indicators.silences.min_silence_s
    runs = run_pipeline(rendered, options)
    sessions, evals = [], []
    for run in runs:
        r: Rendered = run["rendered"]
        truth = read_truth(r.truth)
        ev = evaluate_session(truth, run["analysis"], min_silence_s=min_sil)
        evals.append(ev)
        sessions.append({"session": f"annomi-{r.spec.transcript_id}", "mi_quality": r.spec.quality,
                         "voices": f"{r.spec.therapist_voice}/{r.spec.client_voice}", "audio": r.audio.name,
                         "audio_s": run["audio_s"], "render_cached": r.cached, "analysis_s": run["analysis_s"],
                         "role_confidence": ev["role_confidence"], **summarise(ev)})
    pooled = summarise(pool(evals))
    pooled["silences"]["onset_signed_errors_s"] = sorted(pool(evals)["silences"]["onset_errors_s"])
    pooled["audio_s"] = sum(s["audio_s"] for s in sessions)
    report = {
        "machine": f"{platform.machine()}, {subprocess.run(['nproc'], capture_output=True, text=True).stdout.strip()}"
                   f" cores, Python {platform.python_version()}",
        "options": {"pipeline": "PipelineOptions() defaults", "min_silence_s": min_sil,
                    "silence_match": "overlap, one-to-one (largest overlap first)",
                    "onset_tolerance_s": ONSET_TOLERANCE_S, "transfer_match_tolerance_s": TRANSFER_TOLERANCE_S,
                    "max_utterances": args.max_utterances},
        "load_models_s": runs[0]["load_models_s"] if runs else None,
        "sessions": sessions, "pooled": pooled,
    }
    report["targets"] = check_targets(report["pooled"])
    report = _round_tree(report)
    print(json.dumps(report, indent=1))
    md = markdown(report)
    print()
    print(md)
    if args.markdown:
        args.markdown.write_text(md, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
