"""Start-up of a single `alliance process`: what a refusal costs, and what a whole run spends outside its flow.

Every measurement runs the real command (``python -m pipeline.cli.main``) in a fresh process on the demo
session, in a fresh data folder (database, reports and Prefect's home side by side), and times it from
outside. Rows:

- ``refusal``: the recording has no consent record (median of 3); answered before any Prefect server or model.
- ``process, new data folder``: the first run in a folder (Prefect's home is created and migrated), with
  Prefect's server started in the background while the models load (the default).
- ``process, background server``: a second run in the same folder (``--force``): the steady state.
- ``process, Prefect's temporary server``: the same, ``ALLIANCE_PREFECT_SERVER=temporary``: Prefect starts its
  server when the flow is called, after the imports and with nothing overlapping (the behaviour before).
- ``process, long-lived server``: ``alliance server`` started once beforehand, ``PREFECT_API_URL`` set.
- ``no server``: whether Prefect 3 runs a flow with no API at all (ephemeral mode off, no URL).

``in flow`` is the session flow's own time (the outcome's ``wall_s``); ``start-up`` is the rest, split with
``ALLIANCE_STARTUP_TIMINGS=1`` (the command then prints its phases to stderr) into: checks (interpreter, CLI,
database, consent and skip test), imports (Prefect, torch, pyannote, Whisper), models (loaded before the
flow, in every row), waiting for the background server, and Prefect around the flow (creating the flow and
task runs, sending logs; with ``temporary`` also starting Prefect's own server), and exit (stopping the
server, flushing Prefect's log lines, unloading).
Prints JSON and a Markdown table. About 4-5 minutes on 2 CPU cores.

    .venv/bin/python -m bench.bench_startup [--audio sample_audio/demo_session.flac] [--skip temporary,...]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "sample_audio" / "demo_session.flac"
IDS = ["--session-id", "demo-001", "--client-id", "demo-client", "--therapist-id", "demo-therapist"]
ROWS = ("refusal", "cold", "background", "temporary", "long-lived", "no-server")


def offline_env(**extra: str) -> dict[str, str]:
    """The environment without a Prefect home or API URL (each command finds its own), plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if k not in ("PREFECT_HOME", "PREFECT_API_URL")}
    env.update(extra)
    return env


def alliance_run(args: list[str], env: dict[str, str]) -> dict:
    """Run `alliance ARGS` in a fresh interpreter; its exit code, wall time and start-up phases."""
    started = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "pipeline.cli.main", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**env, "ALLIANCE_STARTUP_TIMINGS": "1"}, cwd=ROOT)
    stdout: list[str] = []
    reader = threading.Thread(target=lambda: stdout.extend(proc.stdout), daemon=True)
    reader.start()
    stderr, phases, printed_at = [], {}, None
    for line in proc.stderr:  # the phases line is printed just before the command exits
        stderr.append(line)
        if line.startswith("startup-timings "):
            phases, printed_at = json.loads(line.split(" ", 1)[1]), time.perf_counter() - started
    # wait4, not Popen.wait: the kernel's peak resident set of this one process (its own threads included; the
    # background Prefect server it may start is another process and is not counted)
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    reader.join(timeout=60)
    total = time.perf_counter() - started
    row = {"exit": proc.returncode, "total_s": round(total, 2), "in_flow_s": phases.pop("in_flow_s", None),
           "peak_rss_mb": round(usage.ru_maxrss / 1024), "load_avg_1m": round(os.getloadavg()[0], 2),
           "tail": "".join(stdout + stderr)[-400:] if proc.returncode not in (0, 3) else ""}
    if phases and printed_at is not None:
        timed = ("imports_s", "models_s", "server_s", "flow_s")
        # before the timed phases: interpreter, CLI import, database/consent/skip checks; after: exit (stopping
        # the background server, flushing Prefect's logs, unloading)
        phases["checks_s"] = round(printed_at - sum(phases.get(k) or 0 for k in timed), 2)
        phases["exit_s"] = round(total - printed_at, 2)
        row["phases"] = phases
    return row


def _folder(base: Path, name: str, audio: Path, consent: bool = True) -> Path:
    folder = base / name
    folder.mkdir()
    shutil.copy(audio, folder / audio.name)
    sidecar = audio.with_name(audio.name + ".consent.json")
    if consent and sidecar.is_file():
        shutil.copy(sidecar, folder / sidecar.name)
    return folder


def _process(folder: Path, audio: Path, env: dict[str, str], *extra: str) -> dict:
    return alliance_run(["process", str(folder / audio.name), *IDS, "--db", str(folder / "alliance.duckdb"),
                      "--reports-dir", str(folder / "reports"), *extra], env)


def _long_lived_server(folder: Path) -> tuple[subprocess.Popen, str, float]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    started = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "pipeline.cli.main", "server", "--db",
                             str(folder / "alliance.duckdb"), "--port", str(port)], env=offline_env(), cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    url = f"http://127.0.0.1:{port}/api"
    for _ in range(1800):
        try:
            urllib.request.urlopen(url + "/health", timeout=2)
            break
        except OSError:
            if proc.poll() is not None:
                raise RuntimeError("alliance server exited") from None
            time.sleep(0.1)
    return proc, url, round(time.perf_counter() - started, 2)


NO_SERVER = """
import pipeline, time
from prefect import flow

@flow
def hello() -> int:
    return 1

started = time.perf_counter()
try:
    hello()
    print("ran", round(time.perf_counter() - started, 2))
except Exception as e:
    print("error", type(e).__name__, str(e).splitlines()[0][:160])
"""


def bench(audio: Path, skip: set[str]) -> dict:
    base = Path(tempfile.mkdtemp(prefix="bench-startup-"))
    rows: dict[str, dict] = {}
    try:
        if "refusal" not in skip:
            folder = _folder(base, "refusal", audio, consent=False)
            runs = [_process(folder, audio, offline_env()) for _ in range(3)]
            rows["refusal"] = {**runs[0], "total_s": statistics.median(r["total_s"] for r in runs),
                               "all_s": [r["total_s"] for r in runs]}
        folder = _folder(base, "data", audio)
        if "cold" not in skip:
            rows["cold"] = _process(folder, audio, offline_env())
        if "background" not in skip:
            rows["background"] = _process(folder, audio, offline_env(), "--force")
        if "temporary" not in skip:
            rows["temporary"] = _process(folder, audio, offline_env(ALLIANCE_PREFECT_SERVER="temporary"), "--force")
        if "long-lived" not in skip:
            server, url, ready_s = _long_lived_server(folder)
            try:
                rows["long-lived"] = {**_process(folder, audio, offline_env(PREFECT_API_URL=url), "--force"),
                                      "server_start_s": ready_s}
            finally:
                os.killpg(server.pid, signal.SIGINT)
                try:
                    server.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    os.killpg(server.pid, signal.SIGKILL)
        if "no-server" not in skip:
            out = subprocess.run([sys.executable, "-c", NO_SERVER], capture_output=True, text=True, cwd=ROOT,
                                 env=offline_env(PREFECT_SERVER_ALLOW_EPHEMERAL_MODE="false",
                                          PREFECT_HOME=str(base / "no-server-home")), timeout=300)
            rows["no-server"] = {"result": (out.stdout.strip() or out.stderr.strip()[-300:])}
    finally:
        shutil.rmtree(base, ignore_errors=True)
    for row in rows.values():
        if row.get("in_flow_s") is not None:
            row["start_up_s"] = round(row["total_s"] - row["in_flow_s"], 2)
    import soundfile as sf

    return {"audio": str(audio.relative_to(ROOT) if audio.is_relative_to(ROOT) else audio),
            "audio_s": round(sf.info(str(audio)).duration, 1), "cpus": os.cpu_count(),
            "machine": platform.processor() or platform.machine(), "python": platform.python_version(),
            "rows": rows}


LABELS = {
    "refusal": "refusal (no consent record; median of 3)",
    "cold": "`alliance process`, new data folder (Prefect home created), background server",
    "background": "`alliance process --force`, same folder, background server (default)",
    "temporary": "`alliance process --force`, Prefect's temporary server (`ALLIANCE_PREFECT_SERVER=temporary`)",
    "long-lived": "`alliance process --force` with `alliance server` running (`PREFECT_API_URL`)",
}


def fmt(v: float | None) -> str:
    return "-" if v is None else f"{v:.1f}"


def markdown(doc: dict) -> str:
    loads = [r["load_avg_1m"] for r in doc["rows"].values() if "load_avg_1m" in r]
    lines = [f"Audio: `{doc['audio']}` ({doc['audio_s']} s); {doc['cpus']} CPU cores; 1-minute load average "
             f"during the runs {min(loads, default=0):.1f}-{max(loads, default=0):.1f}.", "",
             "| run | exit | whole command (s) | in flow (s) | start-up (s) | of which: checks / imports / models "
             "/ waiting for the server / Prefect around the flow / exit (s) | peak RSS (MB) |",
             "|---|---:|---:|---:|---:|---|---:|"]
    for key, label in LABELS.items():
        row = doc["rows"].get(key)
        if row is None:
            continue
        p = row.get("phases") or {}
        split = " / ".join(fmt(p.get(k)) for k in ("checks_s", "imports_s", "models_s", "server_s")) if p else "-"
        if p:
            split += f" / {fmt(p['flow_s'] - row['in_flow_s'])} / {fmt(p.get('exit_s'))}"
        lines.append(f"| {label} | {row['exit']} | {fmt(row['total_s'])} | {fmt(row.get('in_flow_s'))} | "
                     f"{fmt(row.get('start_up_s'))} | {split} | {row.get('peak_rss_mb', '-')} |")
    if "long-lived" in doc["rows"]:
        lines.append(f"\n`alliance server` itself took {doc['rows']['long-lived']['server_start_s']:.1f} s to "
                     "answer (paid once, not per run).")
    if "no-server" in doc["rows"]:
        lines.append(f"\nPrefect 3.9.1 with no API (`PREFECT_SERVER_ALLOW_EPHEMERAL_MODE=false`, no "
                     f"`PREFECT_API_URL`): `{doc['rows']['no-server']['result']}`.")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--audio", type=Path, default=DEMO)
    parser.add_argument("--skip", default="", help=f"comma-separated rows to skip: {', '.join(ROWS)}")
    parser.add_argument("--json", type=Path, help="also write the JSON here")
    args = parser.parse_args(argv)
    doc = bench(args.audio.resolve(), {s.strip() for s in args.skip.split(",") if s.strip()})
    text = json.dumps(doc, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n", encoding="utf-8")
    print()
    print(markdown(doc))
    return 0


if __name__ == "__main__":
    sys.exit(main())
