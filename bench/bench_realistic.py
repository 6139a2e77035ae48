r"""Realistic bench: the pipeline on rooms, noise, overlapping speech and codecs, scored against exact truth.

Two-speaker sessions of real AnnoMI dialogue are rendered with flite (one clip per line, cached), placed on a
timeline with long silences, interruptions and listener backchannels (:func:`evaluation.realistic.plan_timeline`;
the truth holds every utterance with its true times, so the truth RTTM contains the overlaps), then degraded per
condition (:mod:`evaluation.realistic`): simulated rooms (pyroomacoustics, RT60 0.4-0.8 s, the speakers at
different distances from one microphone, a quieter client), HVAC noise with clicks and door slams, babble from
other flite voices, a phone line (AMR-NB, the GSM-AMR mobile codec, with AGC) and low-bit-rate mp3. Plus the one
real recording available offline: pyannote's 30 s two-speaker sample with its RTTM and STM references.

Per condition, ASR configuration and word-attribution method (``--attribution``, each on the same ASR and
diarization output): DER (no collar), WER (strict normaliser, and Whisper's English normaliser), word attribution
(word -> speaker -> role against the truth role), attribution inside overlapped speech, the backchannel marker
and the listener-turn marker against the truth's backchannels (and every short nested diarization turn, for
comparison), long-silence (>= 2 s) F1, overlap detection (overlapping turns of the diarization against the truth's
overlapped speech: precision/recall by duration), roles, the median error of utterance-onset word starts, words
the ASR put in non-speech, quality flags, and wall times (ASR, diarization, analysis run one after the other; RTF
is their sum over the audio length).

    .venv/bin/python -m bench.bench_realistic                      # default: 2 sessions x 8 conditions + sample
    .venv/bin/python -m bench.bench_realistic --asr greedy beam5 vad moonshine --sessions 1 \\
        --conditions clean room-near room-far phone-amr               # the ASR comparison on a subset
    .venv/bin/python -m bench.bench_realistic --attribution max-overlap overlap-aware   # attribution before/after

Renders are cached under ``bench/.renders/realistic-*`` keyed by every parameter. Writes
``bench/results/realistic.json`` and ``.md`` (``--out`` changes the stem). Exits 0 with a message when the AnnoMI
CSV (``../shared``) or flite is missing.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

from bench.render_accuracy import silence_scores, summarise_silences
from bench.render_long import RENDERS_DIR, _dedupe
from bench.results_io import write_results
from evaluation import realistic as rl
from evaluation.metrics import normalise_text
from evaluation.synthetic import (
    Script,
    ScriptLine,
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
from pipeline.analysis.attribute import METHODS
from pipeline.audio.enhance import METHODS as ENHANCE_METHODS
from pipeline.audio.enhance import STAGES as ENHANCE_STAGES
from pipeline.types import SAMPLE_RATE_HZ

ROOT = Path(__file__).resolve().parents[1]
ANNOMI_CSV = ROOT.parent / "shared" / "data" / "annomi" / "AnnoMI-full.csv"
RESULTS = ROOT / "bench" / "results"
#: Bump when the recipe changes, so cached renders are not reused.
RENDER_VERSION = 2  # 2: babble of 6 talkers (1: 2 talkers, intelligible: it was transcribed)
SR = SAMPLE_RATE_HZ
SPEECH_LEVEL_DBFS = -23.0
NOISE_FLOOR_DBFS = -55.0
BACKCHANNELS = ("yeah", "right", "okay", "I see", "sure")
VOICES = ("awb", "slt", "rms", "kal16")
BABBLE_TALKERS = 6


@dataclass(frozen=True)
class SessionSpec:
    """An AnnoMI transcript spoken by two flite voices, cut at about ``target_s`` seconds."""

    transcript_id: str
    therapist_voice: str
    client_voice: str
    target_s: float = 150.0
    babble_transcript_id: str = "104"
    seed: int = 0


SESSIONS = (SessionSpec("46", "awb", "slt"), SessionSpec("131", "slt", "rms"))


@dataclass(frozen=True)
class Condition:
    """How a session is recorded.

    ``room``: ``(length, width, height)`` m, RT60 s, therapist and client distances from the microphone in m.
    ``client_gain_db``: the client's level relative to the therapist's (before the room). ``noise``: ``hvac`` or
    ``babble`` at ``snr_db`` (active speech over noise); ``transients_per_min``: clicks and door slams.
    ``codec``: ``amr_nb`` (phone line, AGC, 8 kHz), ``mulaw`` or ``mp3``/``opus`` at ``bit_rate``.
    ``overlap_share``: target share of overlapped speech in the timeline.
    """

    name: str
    room: tuple[tuple[float, float, float], float, float, float] | None = None
    client_gain_db: float = 0.0
    noise: str | None = None
    snr_db: float | None = None
    transients_per_min: float = 0.0
    codec: str | None = None
    bit_rate: int | None = None
    overlap_share: float = 0.06


ROOM_NEAR = ((4.0, 3.5, 2.7), 0.4, 1.0, 1.3)
ROOM_FAR = ((6.0, 5.0, 3.0), 0.8, 1.0, 3.5)
CONDITIONS = (
    Condition("clean"),
    Condition("room-near", room=ROOM_NEAR, client_gain_db=-4.0),
    Condition("room-far", room=ROOM_FAR, client_gain_db=-4.0),
    Condition("hvac-15db", room=ROOM_NEAR, client_gain_db=-4.0, noise="hvac", snr_db=15.0, transients_per_min=3.0),
    Condition("babble-10db", room=ROOM_NEAR, client_gain_db=-4.0, noise="babble", snr_db=10.0),
    Condition("phone-amr", room=ROOM_NEAR, client_gain_db=-4.0, codec="amr_nb", bit_rate=12200),
    Condition("mp3-16k", room=ROOM_NEAR, client_gain_db=-4.0, codec="mp3", bit_rate=16000),
    Condition("overlap-rich", room=ROOM_NEAR, client_gain_db=-4.0, overlap_share=0.14),
)
CONDITION_BY_NAME = {c.name: c for c in CONDITIONS}

#: ASR configurations of the comparison (names on the command line).
ASR_CONFIGS: dict[str, dict[str, Any]] = {
    "greedy": {"beam_size": 1},  # the product default until issue #21 (beam 5 since)
    "beam5": {"beam_size": 5},  # the product default
    "vad": {"vad_filter": True, "beam_size": 1},
    "batched": {"batch_size": 8, "beam_size": 1},
    "refine": {"refine_beam_size": 5, "beam_size": 1},
    "moonshine": {"backend": "moonshine"},
    "rover": {"backend": "rover"},  # beam5 + greedy + moonshine, ROVER (pipeline/asr/combine.py)
    # greedy per diarized turn, previous turn as prompt (pipeline/asr/per_turn.py)
    "perturn": {"per_turn": True, "beam_size": 1},
    "perturn-noprompt": {"per_turn": False, "beam_size": 1},  # the same windows, each decoded without a prompt
}


def _key(*parts: Any) -> str:
    doc = json.dumps([dataclasses.asdict(p) if dataclasses.is_dataclass(p) else p for p in parts], sort_keys=True)
    return hashlib.sha256(doc.encode()).hexdigest()[:10]


# --------------------------------------------------------------------------- rendering


def _clip(voice: str, text: str, flite: str) -> np.ndarray:
    """One line spoken by ``voice``, trimmed and levelled as render_session does it (cached as FLAC)."""
    folder = RENDERS_DIR / "realistic-clips"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{_key(voice, text, flite, SPEECH_LEVEL_DBFS)}.flac"
    if not path.is_file():
        with tempfile.TemporaryDirectory(prefix="realistic-") as tmp:
            wav = Path(tmp) / "clip.wav"
            script = Script("clip", (ScriptLine(role="therapist", text=text, gap_before_s=0.0),),
                            voices={"therapist": voice}, tail_s=0.0)
            render_session(script, wav, noise_floor_dbfs=-300.0, speech_level_dbfs=SPEECH_LEVEL_DBFS)
            pcm, _ = sf.read(wav, dtype="int16")
            sf.write(path.with_suffix(".partial.flac"), pcm, SR, subtype="PCM_16")
            path.with_suffix(".partial.flac").replace(path)
    return sf.read(path, dtype="float64")[0]


def _lines(tid: str) -> list[tuple[str, str]]:
    rows = _dedupe(read_annomi_rows(ANNOMI_CSV, tid))
    if not rows:
        raise ValueError(f"AnnoMI transcript {tid} is not in {ANNOMI_CSV}")
    script = script_from_annomi(rows, voices={"therapist": "awb", "client": "slt"}, gap_s=0.6)
    return [(x.role, x.text) for x in script.lines]


def render_of(audio_name: str) -> tuple[str, str]:
    """``(session, condition)`` of an audio file named by :func:`render_condition`, as the bench's rows name them.

    ``realistic-46-room-far-<hash>.flac`` -> ``("annomi-46", "room-far")``; any other file is pyannote's real
    sample, ``("pyannote-sample", "real-sample")``.
    """
    parts = Path(audio_name).stem.split("-")
    if parts[0] != "realistic":
        return "pyannote-sample", "real-sample"
    return f"annomi-{parts[1]}", "-".join(parts[2:-1])


def render_condition(spec: SessionSpec, cond: Condition, *, force: bool = False) -> tuple[Path, Path, dict]:
    """Render (or reuse) one session in one condition: ``(audio, truth_json, meta)``."""
    flite = flite_version()
    key = _key(spec, cond, RENDER_VERSION, flite, ANNOMI_CSV.name, ANNOMI_CSV.stat().st_size)
    audio = RENDERS_DIR / f"realistic-{spec.transcript_id}-{cond.name}-{key}.flac"
    truth_json, rttm = truth_paths(audio)
    meta_path = audio.with_name(audio.stem + ".render.json")
    if not force and audio.is_file() and truth_json.is_file() and meta_path.is_file():
        return audio, truth_json, json.loads(meta_path.read_text())
    t0 = time.perf_counter()
    voices = {"therapist": spec.therapist_voice, "client": spec.client_voice}
    dialogue, clips, spoken = [], [], 0.0
    for role, text in _lines(spec.transcript_id):
        if spoken >= spec.target_s * 0.8:  # about 20 % of the session is gaps
            break
        clip = _clip(voices[role], text, flite)
        dialogue.append(rl.Clip(role, text, len(clip)))
        clips.append(clip)
        spoken += len(clip) / SR
    bc_clips = {role: [(t, _clip(voices[role], t, flite)) for t in BACKCHANNELS] for role in voices}
    backchannels = {role: [rl.Clip(role, t, len(c)) for t, c in v] for role, v in bc_clips.items()}
    placements = rl.plan_timeline(dialogue, backchannels, sr=SR, seed=spec.seed + int(spec.transcript_id),
                                  target_overlap_share=cond.overlap_share)
    n = max(p.end_sample for p in placements) + SR // 2
    by_text = {(r, t): c for r, v in bc_clips.items() for t, c in v}
    audio_of = [clips[p.clip_index] if p.clip_index >= 0 else by_text[(p.role, p.text)] for p in placements]
    tracks = {}
    for role in voices:
        mine = [k for k, p in enumerate(placements) if p.role == role]
        tracks[role] = rl.place([placements[k] for k in mine], [audio_of[k] for k in mine], n)
    rng = np.random.default_rng(1000 + spec.seed + int(spec.transcript_id))
    info: dict[str, Any] = {}
    noise_rir = None
    if cond.room is not None:
        dim, rt60, d_t, d_c = cond.room
        rirs, measured = rl.room_impulse_responses(dim, rt60, [d_t, d_c, 1.5], sr=SR)
        info["rt60_measured_s"] = round(measured, 3)
        tracks = {"therapist": rl.reverberate(tracks["therapist"], rirs[0]),
                  "client": rl.reverberate(tracks["client"], rirs[1])}
        noise_rir = rirs[2]
    tracks["client"] = tracks["client"] * 10 ** (cond.client_gain_db / 20)
    speech = tracks["therapist"] + tracks["client"]
    speech *= 10 ** (SPEECH_LEVEL_DBFS / 20) / np.sqrt(rl.active_power(tracks["therapist"], SR))
    info["client_minus_therapist_db"] = round(10 * np.log10(
        rl.active_power(tracks["client"], SR) / rl.active_power(tracks["therapist"], SR)), 2)
    mix = speech
    if cond.noise is not None:
        if cond.noise == "hvac":
            noise = rl.hvac_noise(n, SR, rng)
        elif cond.noise == "babble":
            # BABBLE_TALKERS streams, the voices not in the session taking turns, each a different run of lines
            others = [v for v in VOICES if v not in voices.values()]
            pool_lines = _lines(spec.babble_transcript_id)
            streams = []
            for k in range(BABBLE_TALKERS):
                lines = [pool_lines[(k * 6 + j) % len(pool_lines)] for j in range(6)]
                streams.append(np.concatenate([_clip(others[k % len(others)], t, flite) for _, t in lines]))
            noise = rl.babble_noise(streams, n, rng)
            if noise_rir is not None:
                noise = rl.reverberate(noise, noise_rir)
        else:
            raise ValueError(f"unknown noise {cond.noise!r}")
        mix, scaled = rl.mix_at_snr(speech, noise, cond.snr_db, SR)
        info["snr_measured_db"] = round(rl.measure_snr_db(speech, scaled, SR), 2)
    if cond.transients_per_min:
        bursts, events = rl.transient_noise(n, SR, rng, per_minute=cond.transients_per_min, peak=0.3)
        mix = mix + bursts
        info["transients"] = [dataclasses.asdict(e) for e in events]
    mix = mix + rng.standard_normal(n) * 10 ** (NOISE_FLOOR_DBFS / 20)
    if cond.codec in ("amr_nb", "mulaw"):
        mix = rl.telephone(mix, SR, codec=cond.codec, bit_rate=cond.bit_rate or 12200)
    elif cond.codec in ("mp3", "opus"):
        mix = rl.lossy_codec(mix, SR, codec=cond.codec, bit_rate=cond.bit_rate or 16000)
    peak = float(np.max(np.abs(mix)))
    if peak > 0.99:
        mix *= 0.99 / peak
        info["peak_limited_db"] = round(20 * np.log10(0.99 / peak), 2)
    pcm = np.clip(np.round(mix * 32767), -32768, 32767).astype(np.int16)
    utterances = tuple(
        TruthUtterance(index=k, role=p.role, voice=voices[p.role], start_s=p.start_sample / SR,
                       end_s=p.end_sample / SR, start_sample=p.start_sample, end_sample=p.end_sample, text=p.text,
                       tags=p.tags)
        for k, p in enumerate(placements))
    silences, overlaps = silences_and_overlaps(utterances, SR)
    truth = SessionTruth(session_id=audio.stem, audio_file=audio.name, sample_rate_hz=SR, n_samples=n,
                         seed=spec.seed, noise_floor_dbfs=NOISE_FLOOR_DBFS, synthesizer=flite,
                         utterances=utterances, silences=silences, overlaps=overlaps)
    partial = audio.with_name(audio.stem + ".partial.flac")
    sf.write(partial, pcm, SR, subtype="PCM_16")
    partial.replace(audio)
    write_truth(truth, truth_json)
    write_rttm(truth, rttm)
    meta = {"session": dataclasses.asdict(spec), "condition": dataclasses.asdict(cond), "key": key,
            "render_version": RENDER_VERSION, "flite": flite, "duration_s": round(n / SR, 2),
            "utterances": len(utterances), "backchannels": sum(p.clip_index < 0 for p in placements),
            "interruptions": sum("interruption" in p.tags for p in placements),
            "overlap_share": round(rl.overlap_share(placements, SR), 4),
            "long_silences": sum(s.duration_s >= 2.0 for s in silences), **info,
            "render_s": round(time.perf_counter() - t0, 2)}
    meta_path.write_text(json.dumps(meta, indent=1) + "\n")
    return audio, truth_json, meta


# --------------------------------------------------------------------------- the real sample


def pyannote_sample() -> tuple[Path, SessionTruth, list[tuple[float, float, str]]]:
    """The real sample pyannote ships: audio, its STM as a truth (speakers as labels), and its RTTM turns."""
    import pyannote.audio

    folder = Path(pyannote.audio.__file__).parent / "sample"
    utts = []
    for k, line in enumerate((folder / "sample.stm").read_text().splitlines()):
        _, _, spk, start, end, text = line.split(" ", 5)
        s, e = float(start), float(end)
        utts.append(TruthUtterance(k, spk, "real", s, e, round(s * SR), round(e * SR), text.strip()))
    rttm = []
    for line in (folder / "sample.rttm").read_text().splitlines():
        f = line.split()
        rttm.append((float(f[3]), float(f[3]) + float(f[4]), f[7]))
    info = sf.info(str(folder / "sample.wav"))
    n = round(info.frames * SR / info.samplerate)
    silences, overlaps = silences_and_overlaps(utts, SR)
    truth = SessionTruth("pyannote-sample", "sample.wav", SR, n, 0, float("nan"), "real recording", tuple(utts),
                         silences, overlaps)
    return folder / "sample.wav", truth, rttm


# --------------------------------------------------------------------------- scoring


def _intersect_s(a: Sequence[tuple[float, float]], b: Sequence[tuple[float, float]]) -> float:
    total, j = 0.0, 0
    a, b = sorted(a), sorted(b)
    for s, e in a:
        while j < len(b) and b[j][1] <= s:
            j += 1
        k = j
        while k < len(b) and b[k][0] < e:
            total += max(0.0, min(e, b[k][1]) - max(s, b[k][0]))
            k += 1
    return total


def _by_speaker(turns: Sequence[tuple[float, float, str]]) -> dict[str, list[tuple[float, float]]]:
    out: dict[str, list[tuple[float, float]]] = {}
    for s, e, spk in turns:
        out.setdefault(spk, []).append((s, e))
    return out


def _canon(text: str) -> str:
    """:func:`evaluation.metrics.normalise_text`, then "ok" spelled "okay" (Whisper writes "OK" for AnnoMI's "okay")."""
    return " ".join("okay" if w == "ok" else w for w in normalise_text(text).split())


def _canon_whisper(text: str) -> str:
    """Whisper's English normaliser, then "ok" spelled "okay" as :func:`_canon` does."""
    from evaluation.metrics import whisper_normalise_text

    return " ".join("okay" if w == "ok" else w for w in whisper_normalise_text(text).split())


def _whisper_wers(truth: SessionTruth, transcript: Any) -> dict[str, Any]:
    """WER (and without backchannels) under Whisper's English normaliser; None without openai-whisper."""
    from evaluation.metrics import word_error_rate

    try:
        hyp = _canon_whisper(" ".join(w.text for w in transcript.words))
    except ImportError:
        return {"wer_whisper": None, "wer_whisper_without_backchannels": None, "n_ref_words_whisper": 0}
    ref_all = _canon_whisper(" ".join(u.text for u in truth.utterances))
    ref_no_bc = _canon_whisper(" ".join(u.text for u in truth.utterances if "backchannel" not in u.tags))
    return {"wer_whisper": word_error_rate(ref_all, hyp), "n_ref_words_whisper": len(ref_all.split()),
            "wer_whisper_without_backchannels": word_error_rate(ref_no_bc, hyp)}


def attributed_wers(truth: SessionTruth, analysis: Any, label_to_truth: dict[str, str]) -> dict[str, Any]:
    """cpWER, tcpWER (collar 5 s) and WER per role of the words the pipeline kept, against the truth utterances.

    Per role: ``wer_therapist``, ``wer_client`` (on the real sample, per truth speaker). Each word counts for
    the speaker the pipeline gave it; texts under Whisper's normaliser (the strict one without openai-whisper).
    See :func:`evaluation.realistic.speaker_attributed_wers`.
    """
    try:
        _canon_whisper("ok")
        normalise = _canon_whisper
    except ImportError:
        normalise = _canon
    ref = [rl.Segment(u.role, u.start_s, u.end_s, u.text) for u in truth.utterances]
    hyp = [rl.Segment(w.speaker or "unknown", w.start_s, w.end_s, w.text) for w in analysis.words]
    res = rl.speaker_attributed_wers(ref, hyp, normalise=normalise, role_of=label_to_truth)
    by = res.pop("wer_by_speaker", {})
    for spk, v in by.items():
        res[f"wer_{spk}"], res[f"wer_{spk}_errors"], res[f"wer_{spk}_length"] = v["wer"], v["errors"], v["length"]
    return res


def backchannel_scores(truth: SessionTruth, analysis: Any, *, tolerance_s: float = 0.3,
                       max_nested_s: float = 1.5) -> dict[str, Any]:
    """The backchannel marker, and short nested diarization turns, against the truth's backchannels.

    Truth backchannels: the utterances the timeline inserted as backchannels (tag ``backchannel``, all spoken in
    overlap) and the dialogue lines that are backchannels by the marker's lexicon (at most ``max_words`` tokens,
    all in ``lexicons/backchannels.json``: AnnoMI's own "Mm-hmm.", "Yeah."). A detected ``backchannel`` marker
    matches an unmatched truth one of the same role whose span it overlaps (within ``tolerance_s``) and with
    which it shares a token (so another speaker's word misattributed at that moment does not count).

    The product's ``listener_turn`` markers (:mod:`pipeline.markers.listener_turns`: short diarization turns
    nested in the other's turn, markers 1.4.0) are matched the same way by role and time only (they usually
    carry no words). For comparison (not a product marker): every diarization turn of at most ``max_nested_s``
    lying wholly inside another speaker's turn, without the listener turns' word condition, matched by role
    (through the analysis's roles) and time only.
    """
    from pipeline.lexicons import load_lexicon, normalise_token

    lex = load_lexicon("backchannels")
    vocab, max_words = frozenset(lex["tokens"]), int(lex["max_words"])

    def lexical(text: str) -> bool:
        toks = [t for t in (normalise_token(x) for x in text.split()) if t]
        return bool(toks) and len(toks) <= max_words and all(t in vocab for t in toks)

    if any(u.role not in ("therapist", "client") for u in truth.utterances):
        return {}  # the real sample: speakers, not roles
    def tokens(text: str) -> set[str]:
        return {t for t in (normalise_token(x) for x in text.split()) if t}

    def matches(found: Sequence[tuple[str | None, float, float, set[str] | None]]) -> tuple[int, int]:
        free = list(true)
        hits = inserted_hits = 0
        for role, start, end, toks in found:
            match = next((u for u in free if u.role == role and start <= u.end_s + tolerance_s
                          and u.start_s - tolerance_s <= end and (toks is None or toks & tokens(u.text))), None)
            if match is not None:
                free.remove(match)
                hits += 1
                inserted_hits += "backchannel" in match.tags
        return hits, inserted_hits

    true = [u for u in truth.utterances if "backchannel" in u.tags or lexical(u.text)]
    markers = [(m.speaker_role, m.start_s, m.end_s, tokens(json.loads(m.detail).get("quote", "")))
               for m in analysis.measures.markers if m.kind == "backchannel"]
    turns = analysis.diarization.turns
    nested = [(analysis.roles.role_of(t.speaker), t.start_s, t.end_s, None) for t in turns
              if t.end_s - t.start_s <= max_nested_s
              and any(o.speaker != t.speaker and o.start_s <= t.start_s and t.end_s <= o.end_s for o in turns)]
    listener = [(m.speaker_role, m.start_s, m.end_s, None) for m in analysis.measures.markers
                if m.kind == "listener_turn"]
    hits, inserted_hits = matches(markers)
    nested_hits, nested_inserted_hits = matches(nested)
    listener_hits, listener_inserted_hits = matches(listener)
    return {"backchannels_true": len(true), "backchannels_inserted": sum("backchannel" in u.tags for u in true),
            "backchannels_detected": len(markers), "backchannels_matched": hits,
            "backchannels_inserted_matched": inserted_hits, "nested_turns": len(nested),
            "nested_turns_matched": nested_hits, "nested_turns_inserted_matched": nested_inserted_hits,
            "listener_turns": len(listener), "listener_turns_matched": listener_hits,
            "listener_turns_inserted_matched": listener_inserted_hits}


def score(truth: SessionTruth, transcript: Any, analysis: Any, *, ref_turns: Sequence[tuple[float, float, str]],
          label_to_truth: dict[str, str] | None = None, min_silence_s: float = 2.0) -> dict[str, Any]:
    """Every score of one analysed recording against its truth.

    ``ref_turns`` are the reference speaker turns for DER and overlap (the truth utterances for renders, the RTTM
    for the real sample). Words are mapped to truth speakers by ``label_to_truth`` (diarization label -> truth
    speaker; default: the analysis's roles, whose names are the truth speakers of a render).
    """
    from evaluation.metrics import diarization_error_rate, word_error_rate
    from pipeline.types import Diarization, SpeakerTurn

    utts = sorted(truth.utterances, key=lambda u: (u.start_s, u.index))
    ref_dia = Diarization(tuple(sorted(SpeakerTurn(s, e, k) for s, e, k in ref_turns)),
                          tuple(sorted({k for *_, k in ref_turns})))
    dia = analysis.diarization
    if label_to_truth is None:
        label_to_truth = {lab: analysis.roles.role_of(lab) for lab in dia.speakers}
    hyp = _canon(" ".join(w.text for w in transcript.words))
    ref_all = _canon(" ".join(u.text for u in truth.utterances))
    ref_no_bc = _canon(" ".join(u.text for u in truth.utterances if "backchannel" not in u.tags))
    out: dict[str, Any] = {
        "der": diarization_error_rate(ref_dia, dia),
        "wer": word_error_rate(ref_all, hyp),
        "wer_without_backchannels": word_error_rate(ref_no_bc, hyp),
        "n_ref_words": len(ref_all.split()),
    }
    out.update(_whisper_wers(truth, transcript))
    out.update(attributed_wers(truth, analysis, label_to_truth))
    out.update(backchannel_scores(truth, analysis))
    # word attribution, and attribution inside overlapped speech (owner decided by the word's text)
    truth_ov = rl.overlap_regions(_by_speaker([(u.start_s, u.end_s, u.role) for u in utts]))
    correct = counted = ov_correct = ov_counted = ov_words = 0
    for w in analysis.words:
        mid = 0.5 * (w.start_s + w.end_s)
        covering = [u for u in utts if u.start_s <= mid <= u.end_s]
        if not covering:
            continue
        in_ov = any(s <= mid <= e for s, e in truth_ov)
        if in_ov:
            ov_words += 1
            token = normalise_text(w.text)
            owners = {u.role for u in covering if token and token in normalise_text(u.text).split()}
            if len(owners) == 1:
                ov_counted += 1
                ov_correct += label_to_truth.get(w.speaker) == owners.pop()
            continue
        counted += 1
        correct += label_to_truth.get(w.speaker) == covering[0].role
    out.update({"attribution": correct / counted if counted else None, "attribution_n": counted,
                "overlap_attribution": ov_correct / ov_counted if ov_counted else None,
                "overlap_attribution_n": ov_counted, "overlap_words": ov_words})
    # overlap detection: the diarization's overlapping turns against the reference's overlapped speech
    ref_ov = rl.overlap_regions(_by_speaker(list(ref_turns)))
    det_ov = rl.overlap_regions(_by_speaker([(t.start_s, t.end_s, t.speaker) for t in dia.turns]))
    inter = _intersect_s(ref_ov, det_ov)
    ref_ov_s, det_ov_s = sum(e - s for s, e in ref_ov), sum(e - s for s, e in det_ov)
    out.update({"overlap_true_s": ref_ov_s, "overlap_detected_s": det_ov_s,
                "overlap_recall": inter / ref_ov_s if ref_ov_s else None,
                "overlap_precision": inter / det_ov_s if det_ov_s else None})
    # long silences
    t_sil = [(s.start_s, s.end_s) for s in truth.silences if s.duration_s >= min_silence_s]
    d_sil = [(m.start_s, m.end_s) for m in analysis.measures.markers if m.kind == "long_silence"]
    sil = summarise_silences(silence_scores(t_sil, d_sil))
    out.update({"silence_f1": sil["f1"] if t_sil else None, "silence_f1_onset": sil["f1_onset_tol"] if t_sil else None,
                "silences_true": len(t_sil), "silences_detected": len(d_sil)})
    # roles (renders only): every label with words got the truth role most of its words have
    if truth.utterances[0].role in ("therapist", "client"):
        votes: dict[str, dict[str, int]] = {}
        for w in analysis.words:
            mid = 0.5 * (w.start_s + w.end_s)
            owner = next((u.role for u in utts if u.start_s <= mid <= u.end_s), None)
            if owner and w.speaker:
                votes.setdefault(w.speaker, {}).setdefault(owner, 0)
                votes[w.speaker][owner] += 1
        out["roles_ok"] = bool(votes) and all(analysis.roles.role_of(lab) == max(v, key=v.get)
                                              for lab, v in votes.items())
    else:
        out["roles_ok"] = None
    # word-start error at utterance onsets: the first word of each utterance that starts in the clear
    errors = []
    words = transcript.words
    starts = np.array([w.start_s for w in words]) if words else np.zeros(0)
    for u in utts:
        first = normalise_text(u.text).split()[:1]
        if not first or any(s < u.start_s < e for s, e in truth_ov) or "backchannel" in u.tags:
            continue
        idx = np.flatnonzero(np.abs(starts - u.start_s) <= 1.0)
        match = [i for i in idx if normalise_text(words[i].text) == first[0]]
        if match:
            errors.append(min(abs(words[i].start_s - u.start_s) for i in match))
    out["onset_error_median_s"] = float(np.median(errors)) if errors else None
    out["onset_error_p90_s"] = float(np.percentile(errors, 90)) if errors else None
    out["onset_n"] = len(errors)
    # words in non-speech: no truth utterance within 0.2 s of the word (raw ASR, and after the speech gate)
    spans = sorted((u.start_s - 0.2, u.end_s + 0.2) for u in utts)

    def outside(ws: Sequence[Any]) -> int:
        return int(sum(_intersect_s([(w.start_s, w.end_s)], spans) == 0 for w in ws))

    out["invented_words_raw"] = outside(transcript.words)
    out["invented_words_kept"] = outside(analysis.words)
    q = analysis.quality
    if q is not None:
        out["quality_flags"] = [getattr(f, "code", str(f)) for f in q.flags]
        out["est_snr_db"] = q.snr_db
        out["est_overlap_share"] = q.overlap_share
    return out


def best_mapping(words: Sequence[Any], truth: SessionTruth) -> dict[str, str]:
    """Diarization label -> truth speaker by majority of the label's words (the real sample has no roles)."""
    votes: dict[str, dict[str, int]] = {}
    for w in words:
        mid = 0.5 * (w.start_s + w.end_s)
        owner = next((u.role for u in truth.utterances if u.start_s <= mid <= u.end_s), None)
        if owner and w.speaker:
            votes.setdefault(w.speaker, {}).setdefault(owner, 0)
            votes[w.speaker][owner] += 1
    return {lab: max(v, key=v.get) for lab, v in votes.items()}


# --------------------------------------------------------------------------- running


def _analyse_and_score(item: dict[str, Any], audio: Any, transcript: Any, diarization: Any, method: str,
                       nlp: Any, options: Any) -> dict[str, Any]:
    """Analyse one transcript + diarization as the product does and score it (``error`` when a gate refused it)."""
    from pipeline.analysis.session import SessionMeta, analyse
    from pipeline.engine.runtime import DIARIZATION_MODEL_NAME
    from pipeline.errors import AllianceError
    from pipeline.privacy.consent import parse_consent

    meta = SessionMeta(item["audio"].stem, "bench-client", "bench-therapist")
    consent = parse_consent({"session_id": meta.session_id, "client_id": meta.client_id,
                             "scope": "research", "consented_on": "2026-01-01", "consented_by": ["client"]},
                            source="bench")
    t = time.perf_counter()
    try:
        analysis = analyse(audio, transcript, diarization, meta=meta, consent=consent, nlp=nlp,
                           diarization_model=DIARIZATION_MODEL_NAME, options=options.indicators, attribution=method)
    except AllianceError as e:
        return {"error": f"{type(e).__name__}: {e}"}
    analysis_s = time.perf_counter() - t
    truth = item["truth"]
    mapping = best_mapping(analysis.words, truth) if item.get("real") else None
    scores = score(truth, transcript, analysis, ref_turns=item["ref_turns"], label_to_truth=mapping,
                   min_silence_s=options.indicators.silences.min_silence_s)
    return {"analysis_s": round(analysis_s, 2), **scores}


class TranscriptCache:
    """Transcripts of one run by (recording, front end, ASR options), each with the wall and CPU seconds it took.

    A combination's parts (``rover``) are looked up here, so a part that is also a configuration of the run
    (``greedy``, ``beam5``, ``moonshine``) is decoded once and its seconds count for both. With ``path`` (the
    bench's ``--transcripts``) entries of an earlier run are reused, seconds included, and every entry is written
    back at the end (so ROVER weights can be chosen without decoding again: ``bench/tune_rover.py``).
    """

    def __init__(self, path: Path | None = None) -> None:
        self.path = path
        self.entries: dict[str, dict[str, Any]] = {}
        if path is not None and path.is_file():
            self.entries = json.loads(path.read_text())

    def get(self, key: str, load: Any, samples: np.ndarray, **kwargs: Any) -> tuple[Any, float, float]:
        """The cached transcript, or ``load()``'s transcriber run on ``samples`` (only the run is timed)."""
        from pipeline.types import Transcript, Word

        if key not in self.entries:
            transcriber = load()
            t, c = time.perf_counter(), time.process_time()
            tr = transcriber.transcribe(samples, **kwargs)
            self.entries[key] = {"wall_s": time.perf_counter() - t, "cpu_s": time.process_time() - c,
                                 "transcript": {**dataclasses.asdict(tr), "words": [
                                     [w.start_s, w.end_s, w.text, w.probability] for w in tr.words]}}
        e = self.entries[key]
        tr = dict(e["transcript"])
        tr["words"] = tuple(Word(*w) for w in tr["words"])
        return Transcript(**tr), e["wall_s"], e["cpu_s"]

    def save(self) -> None:
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.path.write_text(json.dumps(self.entries) + "\n")


def _transcribe(name: str, samples: np.ndarray, diarization: Any, key: str, cache: TranscriptCache,
                load_s: dict[str, float]) -> tuple[Any, float, float]:
    """One ASR configuration on one recording: ``(transcript, wall s, CPU s)``; a combination's are its parts' sum."""
    from pipeline.asr.combine import combine_transcripts, rover_parts
    from pipeline.asr.transcribe import TranscribeOptions

    config = dict(ASR_CONFIGS[name])
    per_turn = config.pop("per_turn", None)  # True: prompted with the previous turn, False: not prompted
    opts = dataclasses.replace(TranscribeOptions(), **config)
    if per_turn is not None:
        return cache.get(f"{key}|per-turn prompt={per_turn}|{opts!r}", lambda: _per_turn(opts, per_turn, load_s),
                         samples, turns=diarization.turns)
    if opts.backend != "rover":
        return cache.get(f"{key}|{opts!r}", lambda: _transcriber(opts, load_s), samples)
    parts = rover_parts(opts)
    got = [cache.get(f"{key}|{o!r}", lambda o=o: _transcriber(o, load_s), samples) for o, _ in parts]
    t, c = time.perf_counter(), time.process_time()
    combined = combine_transcripts([g[0] for g in got], [conf for _, conf in parts],
                                   duration_s=samples.shape[0] / SR)
    return (combined, sum(g[1] for g in got) + time.perf_counter() - t,
            sum(g[2] for g in got) + time.process_time() - c)


def _transcriber(opts: Any, load_s: dict[str, float]) -> Any:
    from pipeline.engine.runtime import get_transcriber

    t = time.perf_counter()
    out = get_transcriber(opts)
    load_s.setdefault(repr(opts), time.perf_counter() - t)
    return out


_PER_TURN: dict[Any, Any] = {}


def _per_turn(opts: Any, prompt: bool, load_s: dict[str, float]) -> Any:
    from models.store import require
    from pipeline.asr.per_turn import TurnTranscriber

    if (opts, prompt) not in _PER_TURN:
        t = time.perf_counter()
        _PER_TURN[(opts, prompt)] = TurnTranscriber.load(require("whisper-base-ct2"), options=opts,
                                                          prompt=prompt)
        load_s[f"per-turn prompt={prompt} {opts!r}"] = time.perf_counter() - t
    return _PER_TURN[(opts, prompt)]


def run(items: Sequence[dict[str, Any]], asr_names: Sequence[str], *, attributions: Sequence[str] = ("overlap-aware",),
        front_ends: Sequence[str] = ("none",), enhance_stage: str = "asr", log: bool = True,
        transcripts: Path | None = None) -> list[dict[str, Any]]:
    """Diarize each recording once, transcribe it with every front end and ASR configuration, analyse and score.

    Each transcript is analysed once per word-attribution method (``attributions``, names of
    :data:`pipeline.analysis.attribute.METHODS`), on the same ASR and diarization output. ``front_ends``: names of
    :data:`pipeline.audio.enhance.METHODS`, applied to the input of ``enhance_stage`` (``asr``: diarization runs
    once on the recording as decoded; ``diarization`` or ``both``: once per front end). The analysis (quality
    flags, prosody) always reads the recording as decoded, as the product does.
    """
    from pipeline.audio.decode import load_audio
    from pipeline.audio.enhance import EnhanceOptions, inputs_for_stages
    from pipeline.audio.room import estimate_room
    from pipeline.engine.runtime import PipelineOptions, get_diarizer, get_nlp

    options = PipelineOptions()
    t0 = time.perf_counter()
    diarizer, nlp = get_diarizer(options.diarize), get_nlp()
    load_s = {"diarizer_and_nlp": time.perf_counter() - t0}
    cache = TranscriptCache(transcripts)
    rows = []
    for item in items:
        audio = load_audio(item["audio"], options=options.audio)
        room = estimate_room(audio.samples)
        room_cols = {"rt60_est_s": room.rt60_s, "early_drop_db": room.early_drop_db, "room_decays": room.decays}
        diarized: dict[int, tuple[Any, float, float]] = {}  # by the identity of the diarization's input
        for front_end in front_ends:
            t = time.perf_counter()
            asr_in, diar_in = inputs_for_stages(audio.samples,
                                                EnhanceOptions(method=front_end, apply_to=enhance_stage))
            enhance_s = time.perf_counter() - t
            if id(diar_in) not in diarized:
                t, c = time.perf_counter(), time.process_time()
                diarized[id(diar_in)] = (diarizer.diarize(diar_in, num_speakers=2), time.perf_counter() - t,
                                         time.process_time() - c)
            diarization, diar_s, diar_cpu_s = diarized[id(diar_in)]
            key = f"{Path(item['audio']).name}|{front_end}|{enhance_stage}"
            for name in asr_names:
                transcript, asr_s, asr_cpu_s = _transcribe(name, asr_in, diarization, key, cache, load_s)
                head = {**item["row"], "front_end": front_end, "asr": name}
                for method in attributions:
                    row = _analyse_and_score(item, audio, transcript, diarization, method, nlp, options)
                    if "error" not in row:
                        total = enhance_s + asr_s + diar_s + row["analysis_s"]
                        row.update(audio_s=round(audio.duration_s, 2), enhance_s=round(enhance_s, 2),
                                   asr_s=round(asr_s, 2), diarization_s=round(diar_s, 2),
                                   asr_cpu_s=round(asr_cpu_s, 2), diarization_cpu_s=round(diar_cpu_s, 2),
                                   rtf=round(total / audio.duration_s, 3))
                    rows.append({**head, "attribution_method": method, **room_cols, **row})
                    if log and "error" not in row:
                        print(f"{head['session']} {head['condition']} {front_end} {name} {method}: "
                              f"WER {row['wer']:.3f} WER-W {_f(row.get('wer_whisper'))} cpWER {_f(row.get('cpwer'))} "
                              f"DER {row['der']:.3f} attr {_f(row['attribution'])} RT60 est {_f(room.rt60_s, 2)} "
                              f"RTF {row['rtf']:.3f} (enhance {enhance_s:.0f} s, asr {asr_s:.0f} s, "
                              f"diar {diar_s:.0f} s; CPU asr {asr_cpu_s:.0f} s, diar {diar_cpu_s:.0f} s)",
                              file=sys.stderr, flush=True)
        cache.save()  # after each recording: a run stopped half-way keeps what it decoded, and its rows
        if transcripts is not None:
            transcripts.with_suffix(".rows.json").write_text(json.dumps(rows, default=str) + "\n")
    return [{**r, "load_s": {k: round(v, 2) for k, v in load_s.items()}} for r in rows]


def pool(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Pool rows of one condition and ASR config: WER by reference words, DER by speech, the rest by counts."""
    def wavg(key: str, weight: str) -> float | None:
        pairs = [(r[key], r[weight]) for r in rows if r.get(key) is not None and r.get(weight)]
        tot = sum(w for _, w in pairs)
        return sum(v * w for v, w in pairs) / tot if tot else None

    def counts(key: str) -> float | None:
        length = sum(r.get(f"{key}_length") or 0 for r in rows)
        return sum(r.get(f"{key}_errors") or 0 for r in rows) / length if length else None

    audio = sum(r["audio_s"] for r in rows)
    rt60 = [r["rt60_est_s"] for r in rows if r.get("rt60_est_s") is not None]
    out = {"n": len(rows), "audio_s": audio, "wer": wavg("wer", "n_ref_words"),
           "cpwer": counts("cpwer"), "tcpwer": counts("tcpwer"), "wer_therapist": counts("wer_therapist"),
           "wer_client": counts("wer_client"), "rt60_est_s": float(np.mean(rt60)) if rt60 else None,
           "enhance_s": sum(r.get("enhance_s", 0.0) for r in rows),
           "wer_without_backchannels": wavg("wer_without_backchannels", "n_ref_words"), "der": wavg("der", "audio_s"),
           "wer_whisper": wavg("wer_whisper", "n_ref_words_whisper"),
           "wer_whisper_without_backchannels": wavg("wer_whisper_without_backchannels", "n_ref_words_whisper"),
           "attribution": wavg("attribution", "attribution_n"),
           "overlap_attribution": wavg("overlap_attribution", "overlap_attribution_n"),
           "overlap_attribution_n": sum(r["overlap_attribution_n"] for r in rows),
           "silence_f1": wavg("silence_f1", "silences_true"),
           "silence_f1_onset": wavg("silence_f1_onset", "silences_true"),
           "overlap_recall": wavg("overlap_recall", "overlap_true_s"),
           "overlap_precision": wavg("overlap_precision", "overlap_detected_s"),
           "overlap_true_s": sum(r["overlap_true_s"] for r in rows),
           "roles_ok": (f"{sum(bool(r['roles_ok']) for r in rows)}/{len(rows)}"
                        if rows[0].get("roles_ok") is not None else "–"),
           "onset_error_median_s": wavg("onset_error_median_s", "onset_n"),
           "invented_words_raw": sum(r["invented_words_raw"] for r in rows),
           "invented_words_kept": sum(r["invented_words_kept"] for r in rows),
           "asr_s": sum(r["asr_s"] for r in rows), "diarization_s": sum(r["diarization_s"] for r in rows),
           "asr_cpu_s": sum(r.get("asr_cpu_s") or 0.0 for r in rows),
           "diarization_cpu_s": sum(r.get("diarization_cpu_s") or 0.0 for r in rows),
           "analysis_s": sum(r["analysis_s"] for r in rows)}
    for k in ("backchannels_true", "backchannels_inserted", "backchannels_detected", "backchannels_matched",
              "backchannels_inserted_matched", "nested_turns", "nested_turns_matched", "nested_turns_inserted_matched",
              "listener_turns", "listener_turns_matched", "listener_turns_inserted_matched"):
        out[k] = sum(r.get(k, 0) for r in rows)
    out["rtf"] = (out["enhance_s"] + out["asr_s"] + out["diarization_s"] + out["analysis_s"]) / audio if audio else None
    cpu = out["asr_cpu_s"] + out["diarization_cpu_s"]
    out["cpu_per_audio_s"] = cpu / audio if audio and cpu else None
    out["flags"] = sorted({f for r in rows for f in r.get("quality_flags", [])})
    return out


def _f(x: Any, nd: int = 3, pct: bool = False) -> str:
    if x is None:
        return "–"
    if isinstance(x, float):
        return f"{100 * x:.1f} %" if pct else f"{x:.{nd}f}"
    return str(x)


def _backchannel_cell(p: dict[str, Any], prefix: str = "backchannels") -> str:
    """``recall / precision (recall of the inserted ones; counts)``, or – when not measured.

    ``prefix``: ``backchannels`` (the lexical marker), ``listener_turns`` (the listener-turn marker) or
    ``nested_turns`` (every short diarization turn inside another's, for comparison).
    """
    key = "backchannels_detected" if prefix == "backchannels" else prefix
    true, det, hit = p.get("backchannels_true"), p.get(key), p.get(f"{prefix}_matched")
    if not true and not det:
        return "–"
    ins = p.get("backchannels_inserted") or 0
    r = f"{hit / true:.2f}" if true else "–"
    pr = f"{hit / det:.2f}" if det else "–"
    ri = f"{p[f'{prefix}_inserted_matched'] / ins:.2f}" if ins else "–"
    return f"{r} / {pr} ({ri}; {hit}/{true} true, {det} found)"


#: Issue #21's word error rate targets (Whisper normaliser) per condition; conditions without one have none.
WER_TARGETS = {"clean": 0.10, "room-near": 0.15, "room-far": 0.20, "hvac-15db": 0.20, "phone-amr": 0.22,
               "mp3-16k": 0.22}


def comparison_markdown(pooled: Sequence[dict[str, Any]]) -> list[str]:
    """Per condition: each ASR configuration's WER and cpWER against the first (the baseline) and the target.

    Only rows without a front end and with the overlap-aware attribution (the product's) are compared; empty when
    fewer than two ASR configurations ran.
    """
    rows = [p for p in pooled if p.get("front_end", "none") == "none"
            and p.get("attribution_method", "overlap-aware") == "overlap-aware"]
    configs = list(dict.fromkeys(p["asr"] for p in rows))
    if len(configs) < 2:
        return []
    base = configs[0]
    lines = ["", f"Comparison against `{base}` (Whisper-normalised WER / cpWER; change in points; issue #21's "
             "target where it sets one; CPU s per audio second of ASR + diarization):", "",
             "| condition | target WER | " + " | ".join(f"{c} WER / cpWER" for c in configs) + " | "
             + " | ".join(f"{c} - {base} (WER / cpWER)" for c in configs[1:]) + " | "
             + " | ".join(f"{c} CPU s / audio s" for c in configs) + " |",
             "|---|---:|" + "---|" * (2 * len(configs) - 1 + len(configs))]
    for condition in dict.fromkeys(p["condition"] for p in rows):
        by = {p["asr"]: p for p in rows if p["condition"] == condition}
        target = WER_TARGETS.get(condition)
        cells = [f"{_f(by[c].get('wer_whisper'), pct=True)} / {_f(by[c].get('cpwer'), pct=True)}"
                 + (" (met)" if target is not None and by[c].get("wer_whisper") is not None
                    and by[c]["wer_whisper"] <= target else "") if c in by else "–" for c in configs]
        deltas = []
        for c in configs[1:]:
            a, b = by.get(base, {}), by.get(c, {})
            pair = [(b.get(k), a.get(k)) for k in ("wer_whisper", "cpwer")]
            deltas.append(" / ".join(f"{100 * (x - y):+.1f}" if x is not None and y is not None else "–"
                                     for x, y in pair))
        cpu = [_f(by[c].get("cpu_per_audio_s"), 3) if c in by else "–" for c in configs]
        lines.append(f"| {condition} | {_f(target, pct=True)} | " + " | ".join(cells) + " | " + " | ".join(deltas)
                     + " | " + " | ".join(cpu) + " |")
    return lines


def markdown(doc: dict[str, Any]) -> str:
    head = ("| condition | front end | ASR | attribution method | audio s | WER (without backchannels) | "
            "WER Whisper normaliser (without bc.) | cpWER | tcpWER | WER therapist / client | DER | attribution | "
            "attr. in overlap (n) | "
            "backchannel marker R / P (inserted R) | listener turns R / P (inserted R) | "
            "nested diar. turns R / P (inserted R) | "
            "silence F1 (onset ≤0.25 s) | overlap R / P | roles | onset err med s | words in non-speech raw/kept | "
            "RT60 est. s | enhance s | ASR s | diar s | RTF | CPU s per audio s (ASR + diar.) | flags |")
    lines = [f"Machine: {doc['machine']}. Render/scoring recipe v{RENDER_VERSION}; sessions: "
             f"{', '.join(doc['sessions'])}.", "", head, "|" + "|".join(["---"] * (head.count("|") - 1)) + "|"]
    for p in doc["pooled"]:
        lines.append(
            f"| {p['condition']} | {p.get('front_end', 'none')} | {p['asr']} | "
            f"{p.get('attribution_method', 'max-overlap')} | {p['audio_s']:.0f} | "
            f"{_f(p['wer'], pct=True)} ({_f(p['wer_without_backchannels'], pct=True)}) | "
            f"{_f(p.get('wer_whisper'), pct=True)} ({_f(p.get('wer_whisper_without_backchannels'), pct=True)}) | "
            f"{_f(p.get('cpwer'), pct=True)} | {_f(p.get('tcpwer'), pct=True)} | "
            f"{_f(p.get('wer_therapist'), pct=True)} / {_f(p.get('wer_client'), pct=True)} | "
            f"{_f(p['der'], pct=True)} | {_f(p['attribution'], pct=True)} | "
            f"{_f(p['overlap_attribution'], pct=True)} ({p['overlap_attribution_n']}) | {_backchannel_cell(p)} | "
            f"{_backchannel_cell(p, 'listener_turns')} | {_backchannel_cell(p, 'nested_turns')} | "
            f"{_f(p['silence_f1'], 2)} ({_f(p['silence_f1_onset'], 2)}) | "
            f"{_f(p['overlap_recall'], 2)} / {_f(p['overlap_precision'], 2)} | {p['roles_ok']} | "
            f"{_f(p['onset_error_median_s'], 2)} | {p['invented_words_raw']}/{p['invented_words_kept']} | "
            f"{_f(p.get('rt60_est_s'), 2)} | {p.get('enhance_s', 0.0):.0f} | "
            f"{p['asr_s']:.0f} | {p['diarization_s']:.0f} | {_f(p['rtf'], 3)} | {_f(p.get('cpu_per_audio_s'), 3)} | "
            f"{', '.join(p['flags']) or '–'} |")
    lines += comparison_markdown(doc["pooled"])
    lines += ["", "Renders (per session): achieved overlap share, measured RT60, measured SNR, client level "
              "relative to therapist.", "", "| session | condition | audio s | overlap share | RT60 s | SNR dB | "
              "client dB | backchannels / interruptions |", "|---|---|---:|---:|---:|---:|---:|---|"]
    for r in doc["renders"]:
        lines.append(f"| {r['session']} | {r['condition']} | {r['duration_s']:.0f} | "
                     f"{100 * r['overlap_share']:.1f} % | "
                     f"{r.get('rt60_measured_s', '–')} | {r.get('snr_measured_db', '–')} | "
                     f"{r.get('client_minus_therapist_db', '–')} | {r['backchannels']} / {r['interruptions']} |")
    return "\n".join(lines) + "\n"


def _machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    cores = subprocess.run(["nproc"], capture_output=True, text=True).stdout.strip()
    return f"{cpu}, {cores} cores ({platform.machine()}), Python {platform.python_version()}"


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sessions", type=int, default=len(SESSIONS), help=f"1 to {len(SESSIONS)} (default all)")
    ap.add_argument("--conditions", nargs="+", default=[c.name for c in CONDITIONS],
                    choices=[c.name for c in CONDITIONS], metavar="NAME", help="default: all")
    ap.add_argument("--asr", nargs="+", default=["greedy", "beam5"], choices=list(ASR_CONFIGS),
                    help="ASR configurations, the first the baseline of the comparison table (default: greedy, the "
                         "default before issue #21, and beam5, the product default since)")
    ap.add_argument("--attribution", nargs="+", default=["overlap-aware"], choices=list(METHODS),
                    help="word -> speaker methods, each scored on the same ASR and diarization output "
                         "(default: overlap-aware, the product default; max-overlap: before issue #14)")
    ap.add_argument("--front-end", nargs="+", default=["none"], choices=list(ENHANCE_METHODS),
                    help="front ends before the stage --enhance-stage names, each on the same recording "
                         "(default: none, the product default; wpe, denoise, wpe+denoise)")
    ap.add_argument("--enhance-stage", default="asr", choices=list(ENHANCE_STAGES),
                    help="which stage's input the front end changes (default: asr; diarization runs once)")
    ap.add_argument("--no-sample", action="store_true", help="skip pyannote's real 30 s sample")
    ap.add_argument("--session-ids", nargs="+", choices=[s.transcript_id for s in SESSIONS], metavar="ID",
                    help="only these AnnoMI sessions (overrides --sessions), e.g. 131 to check weights chosen on 46")
    ap.add_argument("--transcripts", type=Path,
                    help="JSON cache of every transcript with its seconds: reused when present, written at the end")
    ap.add_argument("--render-only", action="store_true")
    ap.add_argument("--force", action="store_true", help="render again even when cached")
    ap.add_argument("--out", default="realistic", help="stem of the JSON/Markdown under bench/results/")
    ap.add_argument("--markdown-from", type=Path, help="only rewrite the Markdown of an earlier JSON result")
    args = ap.parse_args(argv)
    if args.markdown_from:
        md = markdown(json.loads(args.markdown_from.read_text()))
        args.markdown_from.with_suffix(".md").write_text(md)
        print(md)
        return 0
    if not ANNOMI_CSV.is_file() or shutil.which("flite") is None:
        print(f"needs {ANNOMI_CSV} (../shared) and the flite binary: nothing to do")
        return 0
    items, renders = [], []
    t0 = time.perf_counter()
    specs = [s for s in SESSIONS if s.transcript_id in args.session_ids] if args.session_ids \
        else list(SESSIONS[: args.sessions])
    for spec in specs:
        for name in args.conditions:
            audio, truth_json, meta = render_condition(spec, CONDITION_BY_NAME[name], force=args.force)
            truth = read_truth(truth_json)
            renders.append({**{k: v for k, v in meta.items() if k not in ("session", "condition")},
                            "session": f"annomi-{spec.transcript_id}", "condition": name})
            items.append({"audio": audio, "truth": truth,
                          "ref_turns": [(u.start_s, u.end_s, u.role) for u in truth.utterances],
                          "row": {"session": f"annomi-{spec.transcript_id}", "condition": name}})
            print(f"rendered {audio.name}: {meta['duration_s']:.0f} s, overlap {100 * meta['overlap_share']:.1f} %",
                  file=sys.stderr, flush=True)
    render_s = time.perf_counter() - t0
    if not args.no_sample:
        wav, truth, rttm = pyannote_sample()
        items.append({"audio": wav, "truth": truth, "ref_turns": rttm, "real": True,
                      "row": {"session": "pyannote-sample", "condition": "real-sample"}})
    if args.render_only:
        print(json.dumps(renders, indent=1))
        return 0
    t = time.perf_counter()
    rows = run(items, args.asr, attributions=args.attribution, front_ends=args.front_end,
               enhance_stage=args.enhance_stage, transcripts=args.transcripts)
    run_s = time.perf_counter() - t
    pooled = []
    for name in [*args.conditions, "real-sample"]:
        for front_end in args.front_end:
            for asr in args.asr:
                for method in args.attribution:
                    sel = [r for r in rows if r["condition"] == name and r["front_end"] == front_end
                           and r["asr"] == asr and r["attribution_method"] == method and "error" not in r]
                    if sel:
                        pooled.append({"condition": name, "front_end": front_end, "asr": asr,
                                       "attribution_method": method, **pool(sel)})
    doc = {"machine": _machine(), "sessions": [f"annomi-{s.transcript_id} ({s.therapist_voice}/{s.client_voice})"
                                               for s in specs],
           "conditions": [dataclasses.asdict(CONDITION_BY_NAME[c]) for c in args.conditions],
           "asr": {a: ASR_CONFIGS[a] for a in args.asr}, "attribution_methods": list(args.attribution),
           "front_ends": list(args.front_end), "enhance_stage": args.enhance_stage,
           "render_s": round(render_s, 1), "run_s": round(run_s, 1),
           "renders": renders, "rows": rows, "pooled": pooled}
    md = markdown(doc)
    write_results(args.out, doc, md, results=RESULTS)
    print(f"render {render_s:.0f} s, pipeline {run_s:.0f} s; wrote {RESULTS / args.out}.json/.md", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
