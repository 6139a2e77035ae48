"""What the plausibility gates and the hallucination guard cost on speech, and what they stop on non-speech.

``python -m bench.bench_gates [--json PATH] [--markdown PATH]``: for each recording, ASR and diarization run
once with the guards on and once off (the repetition guard at an infinite threshold, the words-outside-speech
guard with an infinite margin), in the same process; WER against the reference and the words each guard
dropped are reported. The gates never change the diarization, so DER is the same by construction (it is
reported once). Recordings: the demo session (exact truth), pyannote's shipped 30 s two-speaker sample
(its STM reference), jfk.flac (../shared, when present), and two generated non-speech cases: white noise,
and jfk's 11 s inside 90 s of low noise.
"""

from __future__ import annotations

import argparse
import json
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


def cases(work: Path) -> list[tuple[str, Path, str | None]]:
    """(name, audio, reference text or None for non-speech)."""
    from evaluation.synthetic import read_truth

    out = []
    demo = ROOT / "sample_audio" / "demo_session.flac"
    truth = read_truth(ROOT / "sample_audio" / "demo_session.truth.json")
    out.append(("demo session (205 s, two voices)", demo, " ".join(u.text for u in truth.utterances)))
    sample, ref = _pyannote_sample()
    out.append(("pyannote sample (30 s, real)", sample, ref))
    rng = np.random.default_rng(0)
    noise = work / "noise.wav"
    sf.write(noise, (0.05 * rng.standard_normal(RATE * 30)).astype(np.float32), RATE)
    out.append(("white noise (30 s, -26 dBFS)", noise, None))
    jfk = SHARED / "data" / "audio" / "jfk.flac"
    if jfk.is_file():
        out.append(("jfk.flac (11 s, real)", jfk, JFK_TEXT))
        x = _mono16k(jfk)
        few = (0.003 * rng.standard_normal(RATE * 90)).astype(np.float32)
        few[RATE * 40:RATE * 40 + x.size] += x
        sf.write(work / "few.wav", few, RATE)
        out.append(("jfk inside 90 s of low noise", work / "few.wav", JFK_TEXT))
    return out


def run(work: Path) -> dict:
    from evaluation.metrics import word_error_rate
    from pipeline.analysis.quality import QualityOptions, require_speech, words_in_speech
    from pipeline.audio.decode import load_audio
    from pipeline.engine.runtime import PipelineOptions, get_diarizer, get_transcriber
    from pipeline.errors import NoSpeechError

    options = PipelineOptions()
    on = get_transcriber(options.transcribe)
    off = get_transcriber(replace(options.transcribe, max_compression_ratio=1e9))
    diarizer = get_diarizer(options.diarize)
    rows = []
    for name, path, ref in cases(work):
        audio = load_audio(path)
        t0 = time.perf_counter()
        tr_on = on.transcribe(audio.samples)
        tr_off = off.transcribe(audio.samples)
        diar = diarizer.diarize(audio.samples, num_speakers=2)
        row = {"case": name, "audio_s": round(audio.duration_s, 1), "speech_s": None, "end_state": "stored",
               "words_no_guard": len(tr_off.words), "segments_dropped_repetition": tr_on.segments_dropped,
               "words_dropped_outside_speech": 0, "words_kept": 0}
        try:
            row["speech_s"] = round(require_speech(diar), 1)
            kept, dropped = words_in_speech(tr_on.words, diarization=diar)
            row["words_dropped_outside_speech"], row["words_kept"] = dropped, len(kept)
        except NoSpeechError as e:
            row["end_state"] = f"failed: {e.code}"
            kept = ()
        if ref is not None:
            text_off = " ".join(w.text for w in tr_off.words)
            row["wer_no_guard"] = round(word_error_rate(ref, text_off), 4)
            row["wer_guarded"] = round(word_error_rate(ref, " ".join(w.text for w in kept)), 4)
        lenient = QualityOptions(word_margin_s=1e9)
        if row["end_state"] == "stored":
            assert words_in_speech(tr_on.words, diarization=diar, options=lenient)[1] == 0
        row["seconds"] = round(time.perf_counter() - t0, 1)
        rows.append(row)
    return {"rows": rows, "options": {"max_compression_ratio": options.transcribe.max_compression_ratio,
                                      **QualityOptions().__dict__}}


def markdown(doc: dict) -> str:
    out = ["| recording | audio s | speech s | end state | words (no guard) | repetition segments dropped | "
           "words dropped outside speech | WER no guard | WER guarded |",
           "|---|---:|---:|---|---:|---:|---:|---:|---:|"]
    for r in doc["rows"]:
        fmt = lambda v: "n/a" if v is None else f"{v:.3f}" if isinstance(v, float) else str(v)  # noqa: E731
        out.append(f"| {r['case']} | {r['audio_s']} | {fmt(r['speech_s'])} | {r['end_state']} | "
                   f"{r['words_no_guard']} | "
                   f"{r['segments_dropped_repetition']} | {r['words_dropped_outside_speech']} | "
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
