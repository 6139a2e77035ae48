"""A generated batch with good and bad recordings and their expected end states.

Speech comes from excerpts of the shipped demo session (different spans, so different audio hashes);
everything is generated at test time, nothing binary is committed.
"""

from __future__ import annotations

import csv
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr
from conftest import SAMPLE_AUDIO

RATE = 16_000


@dataclass(frozen=True)
class Expected:
    name: str
    session_id: str
    state: str
    code: str | None = None


def _demo() -> tuple[np.ndarray, list[tuple[float, float, str]]]:
    from evaluation.synthetic import read_truth

    samples, rate = sf.read(SAMPLE_AUDIO / "demo_session.flac", dtype="float32")
    assert rate == RATE
    truth = read_truth(SAMPLE_AUDIO / "demo_session.truth.json")
    return samples, [(u.start_s, u.end_s, u.role) for u in truth.utterances]


def _excerpt(samples: np.ndarray, start_s: float, length_s: float) -> np.ndarray:
    return samples[int(start_s * RATE): int((start_s + length_s) * RATE)]


def _third_voice(folder: Path) -> np.ndarray | None:
    """About 6 s of a third speaker from flite's ``rms`` voice, or None without flite."""
    flite = shutil.which("flite")
    if flite is None:
        return None
    out = folder / "_third.wav"
    text = "I am the client's sister. I came along today because she asked me to, and I hope that is all right."
    subprocess.run([flite, "-voice", "rms", "-t", text, "-o", str(out)], check=True, capture_output=True)
    audio, rate = sf.read(out, dtype="float32")
    out.unlink()
    audio = soxr.resample(audio, rate, RATE) if rate != RATE else audio
    return (audio * (0.07 / (np.sqrt(np.mean(audio**2)) + 1e-9))).astype(np.float32)  # about -23 dBFS


def build_batch(folder: Path, *, outside: Path, n_extra_good: int = 4, excerpt_s: float = 20.0) -> list[Expected]:
    """Write recordings and ``manifest.csv`` into ``folder``; return the expected end state of each row."""
    folder.mkdir(parents=True, exist_ok=True)
    samples, utterances = _demo()
    rows: list[dict[str, str]] = []
    expected: list[Expected] = []

    def add(name: str, sid: str, state: str, code: str | None = None, *, consent: bool = True,
            audio_field: str | None = None) -> None:
        row = {"audio": audio_field or name, "session_id": sid, "client_id": f"client-{sid}",
               "therapist_id": "t-1", "recorded_on": "2026-10-01",
               "consent_scope": "research" if consent else "", "consented_on": "2026-09-30" if consent else "",
               "consented_by": "client;therapist" if consent else ""}
        rows.append(row)
        expected.append(Expected(audio_field or name, sid, state, code))

    def good(name: str, sid: str, audio: np.ndarray, rate: int = RATE, **kw: object) -> None:
        sf.write(folder / name, audio, rate, **kw)
        add(name, sid, "processed")

    offset = iter(np.arange(0.0, 180.0, 9.0))
    for i in range(n_extra_good):
        good(f"good_{i}.flac", f"good-{i}", _excerpt(samples, next(offset), excerpt_s))
    x = _excerpt(samples, next(offset), excerpt_s)
    good("telephone 8k.wav", "tel-8k", soxr.resample(x, RATE, 8_000), 8_000)
    x = _excerpt(samples, next(offset), excerpt_s)
    good("stereo_48k.wav", "stereo-48k", np.repeat(soxr.resample(x, RATE, 48_000)[:, None], 2, axis=1), 48_000)
    x = _excerpt(samples, next(offset), excerpt_s)
    good("clipped.wav", "clipped", np.clip(x * 12.0, -1.0, 1.0))
    x = _excerpt(samples, next(offset), excerpt_s)
    good("séance ünïcode name.ogg", "unicode", x, format="OGG", subtype="VORBIS")
    noise = (10 ** (-55 / 20) * np.random.default_rng(1).standard_normal(RATE * 45)).astype(np.float32)
    next(offset)  # keeps the later excerpts where they were
    # both voices speak in it (therapist 8 s, client 5 s): a span where one barely speaks is refused as one voice
    good("long_silence_first.flac", "long-silence", np.concatenate([noise, _excerpt(samples, 30.5, 15.0)]))
    one = np.concatenate([samples[int(s * RATE): int(e * RATE)] for s, e, r in utterances if r == "therapist"][:8])
    sf.write(folder / "one_speaker.wav", one, RATE)  # one voice is not a session (docs/gates.md)
    add("one_speaker.wav", "one-speaker", "failed", "single_speaker")
    third = _third_voice(folder)
    if third is not None:  # two demo voices, then a third speaker (flite's rms voice)
        good("three_speakers.wav", "three-speakers",
             np.concatenate([_excerpt(samples, next(offset), 12.0), np.zeros(RATE // 2, np.float32), third]))
    x = _excerpt(samples, next(offset), excerpt_s)
    sf.write(folder / "flac_named.wav", x, RATE, format="FLAC")
    add("flac_named.wav", "wrong-ext", "processed")

    # bad ones
    (folder / "zero.wav").write_bytes(b"")
    add("zero.wav", "zero", "failed", "audio_empty")
    sf.write(folder / "full.wav", _excerpt(samples, 3.0, 10.0), RATE)
    (folder / "truncated.wav").write_bytes((folder / "full.wav").read_bytes()[: 100_000])
    (folder / "full.wav").unlink()
    add("truncated.wav", "truncated", "failed", "audio_truncated")
    (folder / "notes.mp3").write_text("meeting notes, not audio\n" * 50)
    add("notes.mp3", "not-audio", "failed", "audio_unreadable")
    sf.write(folder / "silence.wav", np.zeros(RATE * 10, dtype=np.float32), RATE)
    add("silence.wav", "silence", "failed", "audio_silent")
    sf.write(folder / "short.wav", _excerpt(samples, 5.0, 0.3), RATE)
    add("short.wav", "short", "failed", "audio_too_short")
    add("vanished.wav", "vanished", "failed", "audio_missing")  # listed, never there (or deleted mid-batch)
    outside.mkdir(parents=True, exist_ok=True)
    sf.write(outside / "elsewhere.wav", _excerpt(samples, 7.0, 5.0), RATE)
    add("elsewhere.wav", "outside", "failed", "manifest", audio_field=f"../{outside.name}/elsewhere.wav")
    sf.write(folder / "dup.wav", _excerpt(samples, 11.0, excerpt_s), RATE)
    add("dup.wav", "good-0", "failed", "manifest")  # same session id as the first good one
    sf.write(folder / "no_consent.wav", _excerpt(samples, 13.0, excerpt_s), RATE)
    add("no_consent.wav", "no-consent", "refused", "no_consent", consent=False)

    with (folder / "manifest.csv").open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return expected
