"""What the plausibility gates and the hallucination guard cost on speech, and what they stop on what is not speech.

``python -m bench.bench_gates [--json PATH] [--markdown PATH]``: for each recording, ASR runs once with the
repetition guard and once without it (an infinite threshold), and diarization once held to two speakers (the
pipeline's default) and once free (pyannote's own speaker count); then the gates run in the order
:func:`pipeline.analysis.session.analyse` runs them (no speech, words outside speech, not language, one voice).
Reported per recording: pyannote's own speaker count, the share of the smaller of the two forced clusters and
the cosine distance between their CAM++ centroids (the one-voice gate), the median word probability (the
not-language gate), what the repetition guard re-decoded and dropped, the end state and WER against the
reference. Recordings: the demo session (exact truth), pyannote's shipped 30 s two-speaker sample (its STM
reference) and the same reversed, jfk.flac (../shared, when present) alone and inside 90 s of low noise, white
noise, and flite renders (voices built from real speakers; ``flite`` must be installed): one voice speaking
alone (four voices, and one reversed), two and three voices in conversation, a conversation repeating its
two lines three times, the conversation under six-voice babble at 10 dB SNR and over a phone line, and six
voices talking at once (babble alone).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
RATE = 16_000
JFK_TEXT = ("And so my fellow Americans, ask not what your country can do for you, ask what you can do for "
            "your country.")


def _pyannote_sample() -> tuple[Path, str]:
    import pyannote.audio

    folder = Path(pyannote.audio.__file__).parent / "sample"
    ref = " ".join(line.split(" ", 5)[5].strip() for line in (folder / "sample.stm").read_text().splitlines()
                   if line.strip())
    return folder / "sample.wav", ref


def _mono16k(path: Path) -> np.ndarray:
    x, sr = sf.read(path, dtype="float32", always_2d=True)
    return soxr.resample(x.mean(axis=1), sr, RATE).astype(np.float32)


MONOLOGUE = (
    "I want to tell you about my week, because a lot happened and I have not had time to think about it.",
    "On Monday my sister called and we argued again about our mother, and I felt guilty for hours afterwards.",
    "Then at work my manager asked me to stay late, and I said yes even though I was already exhausted.",
    "We have this family habit of never saying no, and I think I learned it from my father.",
    "By Thursday I could not sleep, and I kept going over the same conversation in my head.",
    "I know this sounds small, but it felt like everything was piling up at once and I was losing control.",
    "On the weekend I finally went for a long walk by the river and that helped a little.",
)
CONVERSATION = (
    ("slt", "How was your week since we last met?"),
    ("awb", "Honestly it was hard, my sister called and we argued again."),
    ("slt", "What did the argument feel like for you?"),
    ("awb", "I felt guilty for hours, like I always do after we talk."),
    ("slt", "You said always. Does that happen often?"),
    ("awb", "Yes, most times. I think I learned it from my father."),
    ("slt", "That sounds like a heavy thing to carry on your own."),
    ("awb", "It is. By Thursday I could not sleep at all."),
)
THREE_VOICES = (
    ("slt", "How was your week since we last met?"),
    ("awb", "Honestly it was hard, my sister called and we argued again."),
    ("rms", "I was there too, and I think it was not as bad as he says."),
    ("slt", "What did the argument feel like for each of you?"),
    ("awb", "I felt guilty for hours, like I always do after we talk."),
    ("rms", "And I felt that nobody listened to me at all."),
    ("slt", "It sounds like both of you were hurting in different ways."),
    ("rms", "Maybe. We never talk about it calmly."),
)
#: A clean 20 s conversation that says its two lines three times (one 30 s window reads as a repetition loop).
REPEATED = (("slt", "Can you tell me what happened on Monday?"),
            ("awb", "My sister called me and we argued again.")) * 3


def have_flite() -> bool:
    return shutil.which("flite") is not None


def render_lines(lines: tuple[tuple[str, str], ...], *, gap_s: float = 0.6) -> np.ndarray:
    """``(voice, text)`` lines spoken one after another by flite, ``gap_s`` of silence around each; 16 kHz mono."""
    import tempfile

    gap = np.zeros(int(gap_s * RATE), np.float32)
    out = [gap]
    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "line.wav"
        for voice, text in lines:
            subprocess.run(["flite", "-voice", voice, "-t", text, "-o", str(wav)], check=True, capture_output=True)
            x, sr = sf.read(wav, dtype="float32", always_2d=True)
            out += [soxr.resample(x.mean(axis=1), sr, RATE).astype(np.float32), gap]
    return np.concatenate(out)


def _write(work: Path, name: str, x: np.ndarray) -> Path:
    path = work / f"{name}.wav"
    sf.write(path, np.asarray(x, dtype=np.float32), RATE)
    return path


def cases(work: Path) -> list[tuple[str, Path, str | None, int | None]]:
    """(name, audio, reference text or None for non-speech, number of voices or None for non-speech)."""
    from evaluation.realistic import babble_noise, mix_at_snr, telephone
    from evaluation.synthetic import read_truth

    out = []
    demo = ROOT / "sample_audio" / "demo_session.flac"
    truth = read_truth(ROOT / "sample_audio" / "demo_session.truth.json")
    out.append(("demo session (205 s, two voices)", demo, " ".join(u.text for u in truth.utterances), 2))
    sample, ref = _pyannote_sample()
    out.append(("pyannote sample (30 s, real)", sample, ref, 2))
    out.append(("pyannote sample reversed", _write(work, "reversed", _mono16k(sample)[::-1]), None, None))
    rng = np.random.default_rng(0)
    noise = work / "noise.wav"
    sf.write(noise, (0.05 * rng.standard_normal(RATE * 30)).astype(np.float32), RATE)
    out.append(("white noise (30 s, -26 dBFS)", noise, None, None))
    jfk = SHARED / "data" / "audio" / "jfk.flac"
    if jfk.is_file():
        out.append(("jfk.flac (11 s, real)", jfk, JFK_TEXT, 1))
        x = _mono16k(jfk)
        few = (0.003 * rng.standard_normal(RATE * 90)).astype(np.float32)
        few[RATE * 40:RATE * 40 + x.size] += x
        sf.write(work / "few.wav", few, RATE)
        out.append(("jfk inside 90 s of low noise", work / "few.wav", JFK_TEXT, 1))
    if not have_flite():
        return out
    monologue_text = " ".join(MONOLOGUE)
    for voice in ("slt", "awb", "rms", "kal16"):
        x = render_lines(tuple((voice, t) for t in MONOLOGUE))
        out.append((f"one voice, {voice} ({x.size / RATE:.0f} s)", _write(work, f"one-{voice}", x), monologue_text, 1))
        if voice == "slt":
            out.append(("one voice reversed", _write(work, "one-reversed", x[::-1]), None, None))
    conversation = render_lines(CONVERSATION)
    conv_text = " ".join(t for _, t in CONVERSATION)
    out.append((f"two voices, slt + awb ({conversation.size / RATE:.0f} s)", _write(work, "two", conversation),
                conv_text, 2))
    swap = {"slt": "kal16", "awb": "rms"}
    x = render_lines(tuple((swap[v], t) for v, t in CONVERSATION))
    out.append((f"two voices, kal16 + rms ({x.size / RATE:.0f} s)", _write(work, "two-b", x), conv_text, 2))
    x = render_lines(THREE_VOICES)
    out.append((f"three voices ({x.size / RATE:.0f} s)", _write(work, "three", x),
                " ".join(t for _, t in THREE_VOICES), 3))
    x = render_lines(REPEATED)
    out.append((f"two voices repeating two lines x3 ({x.size / RATE:.0f} s)", _write(work, "repeated", x),
                " ".join(t for _, t in REPEATED), 2))
    streams = [render_lines(tuple((v, t) for t in MONOLOGUE[k:] + MONOLOGUE[:k]), gap_s=0.2)
               for k, v in enumerate(("slt", "awb", "rms", "kal16", "kal", "awb"))]
    babble = babble_noise(streams, conversation.size, np.random.default_rng(1))
    mix, _ = mix_at_snr(conversation, babble, 10.0, RATE)
    out.append(("two voices in 6-voice babble, 10 dB", _write(work, "two-babble", 0.9 * mix / np.abs(mix).max()),
                conv_text, 2))
    out.append(("two voices over a phone line (AMR-NB)", _write(work, "two-phone", telephone(conversation, RATE)),
                conv_text, 2))
    out.append(("six voices at once (babble, 30 s)", _write(work, "babble", 0.3 * babble_noise(
        streams, 30 * RATE, np.random.default_rng(2))), None, None))
    return out


def _clusters(diarizer, samples: np.ndarray) -> dict:
    """Pyannote's own speaker count (free), and the two forced clusters' smaller share and centroid distance."""
    free = diarizer.diarize(samples, num_speakers=None)
    forced = diarizer.diarize(samples, num_speakers=2)
    seconds = {k: sum(t.end_s - t.start_s for t in forced.turns if t.speaker == k) for k in forced.speakers}
    total = sum(seconds.values())
    return {"free": free, "forced": forced, "speakers_free": len(free.speakers),
            "second_share": round(min(seconds.values()) / total, 2) if len(seconds) == 2 and total else None,
            "centroid_distance": forced.speaker_distance}


def run(work: Path) -> dict:
    from evaluation.metrics import word_error_rate
    from pipeline.analysis.quality import (
        QualityOptions,
        require_language,
        require_speech,
        require_two_voices,
        words_in_speech,
    )
    from pipeline.audio.decode import load_audio
    from pipeline.engine.runtime import PipelineOptions, get_diarizer, get_transcriber
    from pipeline.errors import NoSpeechError, SingleSpeakerError

    options = PipelineOptions()
    on = get_transcriber(options.transcribe)
    off = get_transcriber(replace(options.transcribe, max_compression_ratio=1e9))
    diarizer = get_diarizer(replace(options.diarize, num_speakers=None))
    rows = []
    for name, path, ref, voices in cases(work):
        audio = load_audio(path)
        t0 = time.perf_counter()
        tr_on = on.transcribe(audio.samples)
        tr_off = off.transcribe(audio.samples)
        c = _clusters(diarizer, audio.samples)
        diar = c["forced"]
        row = {"case": name, "audio_s": round(audio.duration_s, 1), "voices": voices, "speech_s": None,
               "speakers_free": c["speakers_free"], "second_share": c["second_share"],
               "centroid_distance": c["centroid_distance"], "median_word_probability": None,
               "end_state": "stored", "words_no_guard": len(tr_off.words), "words_guarded": len(tr_on.words),
               "segments_dropped_repetition": tr_on.segments_dropped,
               "words_dropped_outside_speech": 0, "words_kept": 0}
        kept: tuple = ()
        try:
            row["speech_s"] = round(require_speech(diar), 1)
            kept, dropped = words_in_speech(tr_on.words, diarization=diar)
            row["words_dropped_outside_speech"], row["words_kept"] = dropped, len(kept)
            row["median_word_probability"] = round(require_language(kept, options=QualityOptions(
                min_median_word_probability=0.0)), 2)
            require_language(kept)
            require_two_voices(diar)
        except (NoSpeechError, SingleSpeakerError) as e:
            row["end_state"] = f"failed: {e.code}"
        if ref is not None:
            row["wer_no_guard"] = round(word_error_rate(ref, " ".join(w.text for w in tr_off.words)), 4)
            row["wer_guarded"] = round(word_error_rate(ref, " ".join(w.text for w in kept)), 4)
        row["seconds"] = round(time.perf_counter() - t0, 1)
        rows.append(row)
        print(json.dumps(row), flush=True)
    return {"rows": rows, "options": {"max_compression_ratio": options.transcribe.max_compression_ratio,
                                      **QualityOptions().__dict__}}


def markdown(doc: dict) -> str:
    out = ["| recording | audio s | voices | pyannote's count | smaller cluster | centroid distance | "
           "median word p | words (no guard) | words | repetition segments dropped | words dropped outside "
           "speech | end state | WER no guard | WER guarded |",
           "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|"]
    for r in doc["rows"]:
        fmt = lambda v: "n/a" if v is None else f"{v:.3f}" if isinstance(v, float) else str(v)  # noqa: E731
        voices = "-" if r["voices"] is None else r["voices"]
        out.append(f"| {r['case']} | {r['audio_s']} | {voices} | {r['speakers_free']} | {fmt(r['second_share'])} | "
                   f"{fmt(r['centroid_distance'])} | {fmt(r['median_word_probability'])} | {r['words_no_guard']} | "
                   f"{r['words_guarded']} | {r['segments_dropped_repetition']} | "
                   f"{r['words_dropped_outside_speech']} | {r['end_state']} | "
                   f"{fmt(r.get('wer_no_guard'))} | {fmt(r.get('wer_guarded'))} |")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path)
    parser.add_argument("--markdown", type=Path)
    parser.add_argument("--work-dir", type=Path, default=ROOT / "bench" / ".renders" / "gates")
    args = parser.parse_args(argv)
    args.work_dir.mkdir(parents=True, exist_ok=True)
    doc = run(args.work_dir)
    table = markdown(doc)
    print(json.dumps(doc, indent=1))
    print(table)
    if args.json:
        args.json.write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
    if args.markdown:
        args.markdown.write_text(table + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
