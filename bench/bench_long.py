r"""Speed, memory and accuracy of the session pipeline on long rendered sessions (1 to 90 minutes).

For each length, a two-speaker session of real AnnoMI dialogue is rendered with exact truth
(:mod:`bench.render_long`, cached under ``bench/.renders/``). Each (length, configuration) then runs the
pipeline stages in a fresh Python process, so that its peak memory is its own: model loading, decoding,
ASR, diarization (overlapped in two threads or one after the other), markers, the DuckDB write and the
summary + HTML report. The stages are the plain functions the Prefect session flow wraps (no Prefect
server: its start-up, about 10 s, is not counted).

Prints one JSON object (machine info, one row per run, naive/ours ratios) to stdout and a Markdown table
to stderr (or ``--markdown FILE``). Configurations:

==================  ==========================================================================
ours                the defaults (PipelineOptions()): faster-whisper int8, segmentation step
                    0.25, ASR and diarization overlapped
ours-sequential     the same, ASR then diarization
naive               openai-whisper (float32) on the whole file at once + pyannote's defaults
                    (segmentation step 0.1, one embedding per chunk and speaker), sequential
ours-seg0.1         ours with segmentation step 0.1 (pyannote's default)
ours-seg0.5         ours with segmentation step 0.5
==================  ==========================================================================

Only Whisper base is in ``models/manifest.toml``, so no model-size variants are offered.

Examples::

    .venv/bin/python -m bench.bench_long --minutes 1 --configs ours            # smoke test, ~1 min
    .venv/bin/python -m bench.bench_long --minutes 10 60 90 --configs ours ours-sequential \
        --markdown bench/results/long.md > bench/results/long.json
    .venv/bin/python -m bench.bench_long --minutes 10 --configs naive ours-seg0.1 ours-seg0.5
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from bench.render_long import RENDERS_DIR, LongSpec, render_long

ROOT = Path(__file__).resolve().parents[1]
BENCH = Path(__file__).resolve().parent

#: name -> ASR backend, overlap ASR and diarization, diarization segmentation step (None = ours),
#: embedding scope (None = ours, "file")
CONFIGS: dict[str, dict[str, Any]] = {
    "ours": {"backend": "faster-whisper", "overlap": True, "segmentation_step": None},
    "ours-sequential": {"backend": "faster-whisper", "overlap": False, "segmentation_step": None},
    "naive": {"backend": "openai-whisper", "overlap": False, "segmentation_step": 0.1,
              "embedding_scope": "chunk"},
    "ours-seg0.1": {"backend": "faster-whisper", "overlap": True, "segmentation_step": 0.1},
    "ours-seg0.5": {"backend": "faster-whisper", "overlap": True, "segmentation_step": 0.5},
}
STAGES = ("import_s", "load_models_s", "decode_s", "asr_s", "diarization_s", "asr_and_diarization_s",
          "markers_s", "duckdb_connect_s", "duckdb_write_s", "report_s")


def _rss_mb() -> int:
    """Peak resident memory of this process so far, MB (ru_maxrss is in KiB on Linux)."""
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)


def pipeline_options(config: dict[str, Any], *, device: str = "cpu"):  # -> PipelineOptions (lazy: torch)
    """The :class:`~pipeline.engine.runtime.PipelineOptions` of one configuration of :data:`CONFIGS` on ``device``."""
    from pipeline.engine.runtime import PipelineOptions, options_for_device

    opts = options_for_device(device, PipelineOptions())
    opts = dataclasses.replace(opts, overlap_stages=config["overlap"],
                               transcribe=dataclasses.replace(opts.transcribe, backend=config["backend"]))
    if config.get("segmentation_step") is not None:
        opts = dataclasses.replace(opts, diarize=dataclasses.replace(
            opts.diarize, segmentation_step=config["segmentation_step"]))
    if config.get("embedding_scope") is not None:
        opts = dataclasses.replace(opts, diarize=dataclasses.replace(
            opts.diarize, embedding_scope=config["embedding_scope"]))
    return opts


def run_stages(audio_path: Path, truth_path: Path, config: dict[str, Any], *, work_dir: Path,
               device: str = "cpu") -> dict[str, Any]:
    """Run every stage of one session once, in this process, and score it against the truth.

    Parameters
    ----------
    audio_path, truth_path : Path
        A render of :func:`render_long.render_long`.
    config : dict
        One value of :data:`CONFIGS`.
    work_dir : Path
        Where the DuckDB file and the reports go.
    device : str
        ``cpu``, ``cuda`` or ``cuda:N`` (:func:`pipeline.engine.runtime.options_for_device`).

    Returns
    -------
    dict
        Stage times (``*_s``; in a sequential run ``asr_and_diarization_s`` is their sum), ``total_s``
        (from model loading to the report, imports excluded), ``rtf`` and ``rtf_without_model_load`` (compute
        over audio length), ``peak_rss_mb`` and ``peak_rss_mb_after`` (the peak so far after each stage),
        the options used, and the accuracy of :func:`bench_session.score_against_truth`.
    """
    times: dict[str, float] = {}
    peaks: dict[str, int] = {}

    def mark(stage: str, since: float) -> float:
        now = time.perf_counter()
        times[stage] = now - since
        peaks[stage] = _rss_mb()
        return now

    t = time.perf_counter()
    import torch
    from bench.bench_session import score_against_truth

    import pipeline  # noqa: F401
    from evaluation.synthetic import read_truth
    from pipeline import PIPELINE_VERSION
    from pipeline.analysis.session import SessionMeta, analyse
    from pipeline.audio.decode import load_audio
    from pipeline.engine.runtime import (
        DIARIZATION_MODEL_NAME,
        get_diarizer,
        get_nlp,
        get_transcriber,
        models_description,
    )
    from pipeline.privacy.consent import parse_consent
    from pipeline.report import write_html_report
    from pipeline.report.summary import load_summary, render_markdown
    from pipeline.storage import db
    t = mark("import_s", t)

    opts = pipeline_options(config, device=device)
    t0 = t
    transcriber, diarizer, nlp = get_transcriber(opts.transcribe), get_diarizer(opts.diarize), get_nlp()
    t = mark("load_models_s", t)
    audio = load_audio(audio_path, options=opts.audio)
    t = mark("decode_s", t)
    meta = SessionMeta(session_id=audio_path.stem, client_id="bench-client", therapist_id="bench-therapist",
                       recorded_on=dt.date(2026, 1, 1))

    def asr():
        s = time.perf_counter()
        out = transcriber.transcribe(audio.samples)
        times["asr_s"] = time.perf_counter() - s
        return out

    def diarize():
        s = time.perf_counter()
        out = diarizer.diarize(audio.samples, num_speakers=meta.num_speakers)
        times["diarization_s"] = time.perf_counter() - s
        return out

    if opts.overlap_stages:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(2) as pool:
            ft, fd = pool.submit(asr), pool.submit(diarize)
            transcript, diarization = ft.result(), fd.result()
    else:
        transcript = asr()
        peaks["asr_s"] = _rss_mb()
        diarization = diarize()
    t = mark("asr_and_diarization_s", t)
    peaks.setdefault("asr_s", peaks["asr_and_diarization_s"])
    peaks["diarization_s"] = peaks["asr_and_diarization_s"]

    consent = parse_consent({"session_id": meta.session_id, "client_id": meta.client_id, "scope": "research",
                             "consented_on": "2026-01-01", "consented_by": ["client"]}, source="bench")
    result = analyse(audio, transcript, diarization, meta=meta, consent=consent, nlp=nlp,
                     diarization_model=DIARIZATION_MODEL_NAME, options=opts.indicators)
    t = mark("markers_s", t)
    db_path = work_dir / "bench.duckdb"
    con = db.connect(db_path)
    t = mark("duckdb_connect_s", t)
    run_id = db.new_run_id()
    db.start_run(con, run_id=run_id, pipeline_version=PIPELINE_VERSION, models=models_description(opts),
                 command="bench_long")
    db.write_session(con, result, run_id=run_id, pipeline_version=PIPELINE_VERSION)
    t = mark("duckdb_write_s", t)
    summary = load_summary(con, meta.session_id)
    (work_dir / "summary.md").write_text(render_markdown(summary), encoding="utf-8")
    write_html_report(con, meta.session_id, work_dir / "report.html")
    con.close()
    t = mark("report_s", t)
    total = t - t0

    s = time.perf_counter()
    scores = score_against_truth(read_truth(truth_path), result, diarization)
    scoring_s = time.perf_counter() - s
    d = audio.duration_s
    return {
        "audio": audio_path.name,
        "audio_s": round(d, 1),
        "asr_backend": opts.transcribe.backend,
        "asr_compute_type": (opts.transcribe.resolved_compute_type if opts.transcribe.backend == "faster-whisper"
                             else "float32"),
        "asr_cpu_threads": opts.transcribe.cpu_threads,
        "torch_threads": torch.get_num_threads(),
        "diarization_segmentation_step": opts.diarize.segmentation_step,
        "overlap_stages": opts.overlap_stages,
        **{k: round(v, 2) for k, v in times.items()},
        "total_s": round(total, 2),
        "rtf": round(total / d, 4),
        "rtf_without_model_load": round((total - times["load_models_s"]) / d, 4),
        "peak_rss_mb": _rss_mb(),
        "peak_rss_mb_after": peaks,
        "n_words": len(result.words),
        "n_speaker_turns": len(diarization.turns),
        **scores,
        "scoring_s": round(scoring_s, 2),
    }


def run_in_subprocess(audio: Path, truth: Path, config_name: str, *, timeout_s: float | None,
                      device: str = "cpu") -> dict[str, Any]:
    """Run :func:`run_stages` in a fresh interpreter; add its wall time and peak RSS as the OS saw them.

    A failure or timeout gives a row with ``error`` instead of the measurements.
    """
    cmd = [sys.executable, "-m", "bench.bench_long", "--one", json.dumps({"audio": str(audio), "truth": str(truth),
                                                           "config": config_name, "device": device})]
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        started = time.perf_counter()
        load = os.getloadavg()[0]
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, text=True, cwd=ROOT)
        timer = threading.Timer(timeout_s, proc.kill) if timeout_s else None
        if timer:
            timer.start()
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        if timer:
            timer.cancel()
        wall = time.perf_counter() - started
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    base = {"config": config_name, "process_wall_s": round(wall, 2),
            "process_peak_rss_mb": round(usage.ru_maxrss / 1024), "process_cpu_s": round(usage.ru_utime
                                                                                          + usage.ru_stime, 1),
            "loadavg_1min_at_start": round(load, 2)}
    if proc.returncode != 0:
        why = "timeout" if proc.returncode < 0 and timeout_s and wall >= timeout_s else f"rc={proc.returncode}"
        return {**base, "error": f"{why}: {stderr.strip()[-2000:]}"}
    return {**base, **json.loads(stdout.strip().splitlines()[-1])}


def machine_info(*, with_torch: bool = True) -> dict[str, Any]:
    """CPU model, cores, RAM, torch threads (``with_torch``), package versions, git commit, load average."""
    from importlib import metadata

    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    mem_kb = next(int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines()
                  if line.startswith("MemTotal"))
    versions = {}
    for pkg in ("torch", "faster-whisper", "ctranslate2", "openai-whisper", "pyannote.audio", "spacy", "duckdb",
                "numpy"):
        try:
            versions[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            versions[pkg] = None
    git = subprocess.run(["git", "-C", str(ROOT), "describe", "--always", "--dirty"], capture_output=True,
                         text=True, check=False).stdout.strip()
    return {"cpu_model": cpu, "cpu_count": os.cpu_count(), "cpus_usable": len(os.sched_getaffinity(0)),
            "ram_gb": round(mem_kb / 1024**2, 1), "torch_threads": _torch_threads() if with_torch else None,
            "python": platform.python_version(), "platform": platform.platform(), "versions": versions,
            "git": git, "loadavg": [round(x, 2) for x in os.getloadavg()],
            "whisper_models_in_manifest": whisper_models(),
            "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds")}


def _torch_threads() -> int:
    import torch

    return torch.get_num_threads()


def whisper_models() -> list[str]:
    """Whisper entries of ``models/manifest.toml`` (the only sizes a benchmark can use offline)."""
    from models.store import load_manifest

    return sorted(k for k in load_manifest() if k.startswith("whisper"))


def ratios(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Naive / ours for every length where both ran without error."""
    out = []
    by = {(r["minutes"], r["config"]): r for r in rows if "error" not in r}
    for (minutes, name), naive in sorted(by.items()):
        ours = by.get((minutes, "ours"))
        if name != "naive" or ours is None:
            continue
        out.append({"minutes": minutes,
                    "total_s": round(naive["total_s"] / ours["total_s"], 2),
                    "rtf_without_model_load": round(naive["rtf_without_model_load"]
                                                    / ours["rtf_without_model_load"], 2),
                    "peak_rss_mb": round(naive["peak_rss_mb"] / ours["peak_rss_mb"], 2)})
    return out


def markdown(doc: dict[str, Any]) -> str:
    """The runs and ratios as Markdown tables."""
    m = doc["machine"]
    lines = [f"Machine: {m['cpu_model']}, {m['cpus_usable']} usable cores, {m['ram_gb']} GB RAM, torch threads "
             f"{m['torch_threads']}, Python {m['python']}, git {m['git']}, {m['date']}", "",
             "Stage times in s; load = loading the models; RTF = (total - load) / audio length; words ok = word "
             "attribution accuracy; silences = recall of the truth's silences of 2 s or more; loadavg = the "
             "machine's 1-minute load average when the run started (it should be near 0).", "",
             "| min | config | audio s | load | decode | ASR | diar. | ASR+diar. wall | markers | DuckDB | report "
             "| total s | RTF | peak MB | WER | DER | words ok | roles | silences | loadavg |",
             "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|---:|"]
    for r in doc["runs"]:
        if "error" in r:
            lines.append(f"| {r['minutes']:g} | {r['config']} | error: {r['error'][:80]!r} |")
            continue
        db_s = r["duckdb_connect_s"] + r["duckdb_write_s"]
        sil = (f"{r['long_silence_recall']:.2f} of {r['long_silences_true']}"
               if r["long_silence_recall"] is not None else "-")
        lines.append(
            f"| {r['minutes']:g} | {r['config']} | {r['audio_s']:.0f} | {r['load_models_s']:.1f} | {r['decode_s']:.1f}"
            f" | {r['asr_s']:.1f} | {r['diarization_s']:.1f} | {r['asr_and_diarization_s']:.1f}"
            f" | {r['markers_s']:.1f} | {db_s:.1f} | {r['report_s']:.1f} | {r['total_s']:.1f}"
            f" | {r['rtf_without_model_load']:.3f} | {r['peak_rss_mb']} | {r['wer']:.3f} | {r['der']:.3f}"
            f" | {r['attribution_accuracy']} | {'ok' if r['role_correct'] else 'WRONG'} | {sil}"
            f" | {r['loadavg_1min_at_start']} |")
    if doc["ratios"]:
        lines += ["", "| min | naive/ours total | naive/ours RTF (no load) | naive/ours peak MB |",
                  "|---:|---:|---:|---:|"]
        lines += [f"| {x['minutes']:g} | {x['total_s']} | {x['rtf_without_model_load']} | {x['peak_rss_mb']} |"
                  for x in doc["ratios"]]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Render the lengths, run every (length, config) in its own process, print JSON and Markdown."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, nargs="+", default=[1.0],
                    help="session lengths in minutes (default: 1), e.g. --minutes 1 10 60 90")
    ap.add_argument("--configs", nargs="+", default=["ours"], choices=sorted(CONFIGS),
                    help="configurations to run on every length (default: ours)")
    ap.add_argument("--markdown", type=Path, help="write the Markdown table here (default: stderr)")
    ap.add_argument("--timeout-min", type=float, default=None,
                    help="kill a run after this many minutes (the row gets an error)")
    ap.add_argument("--renders-dir", type=Path, default=RENDERS_DIR, help="render cache (default bench/.renders)")
    ap.add_argument("--render-only", action="store_true", help="only render (or find) the sessions")
    ap.add_argument("--device", default="cpu",
                    help="cpu (default), cuda or cuda:N: the whole pipeline on that device (float16 on CUDA)")
    ap.add_argument("--one", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)

    if args.one:  # the worker: one (length, config) in this fresh process
        job = json.loads(args.one)
        with tempfile.TemporaryDirectory(prefix="bench-long-") as tmp:
            row = run_stages(Path(job["audio"]), Path(job["truth"]), CONFIGS[job["config"]], work_dir=Path(tmp),
                             device=job.get("device", "cpu"))
        print(json.dumps(row))
        return 0

    renders = {}
    for minutes in args.minutes:
        r = render_long(LongSpec(minutes=minutes), out_dir=args.renders_dir)
        renders[minutes] = r
        print(f"render {minutes:g} min: {r.audio.name} ({r.duration_s:.0f} s audio, "
              f"{'cached' if r.cached else f'rendered in {r.render_s:.0f} s'})", file=sys.stderr, flush=True)
    if args.render_only:
        return 0
    rows = []
    for minutes in args.minutes:
        r = renders[minutes]
        for name in args.configs:
            print(f"run {minutes:g} min, {name} ...", file=sys.stderr, flush=True)
            row = {"minutes": minutes, **run_in_subprocess(
                r.audio, r.truth, name, timeout_s=args.timeout_min * 60 if args.timeout_min else None,
                device=args.device),
                "render_s": round(r.render_s, 1)}
            rows.append(row)
            done = row.get("error") or f"total {row['total_s']} s, peak {row['peak_rss_mb']} MB"
            print(f"  -> {done}", file=sys.stderr, flush=True)
    doc = {"machine": machine_info(), "device": args.device, "configs": {n: CONFIGS[n] for n in args.configs},
           "runs": rows, "ratios": ratios(rows)}
    print(json.dumps(doc, indent=1))
    table = markdown(doc)
    if args.markdown:
        args.markdown.parent.mkdir(parents=True, exist_ok=True)
        args.markdown.write_text(table, encoding="utf-8")
    else:
        print("\n" + table, file=sys.stderr)
    return 0 if all("error" not in r for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
