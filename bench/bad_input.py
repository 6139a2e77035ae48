"""Bad-input bench: every hostile input class of issues #12 and #24 through the real ``alliance`` entry point.

Usage: ``.venv/bin/python -m bench.bad_input [--json OUT.json] [--markdown OUT.md] [--no-batch]``.

Builds each case in a temporary folder and runs it through ``pipeline.cli.main.main([...])`` in this
process, with no model fakes: only cases that end before a model is needed (refusals and failures at the
id, consent and audio boundaries; one folder batch, which starts Prefect's local server but no model).
For each case: the end state (``processed``/``skipped``/``refused``/``failed`` from ``run_items`` where the
run recorded one; ``refused`` for a command refused at its arguments), the reason code (``run_items.
error_code``, or the ``[code]`` of the command's ``error:`` line, or ``usage`` for an argparse refusal), the
expected code, and the wall time. Prints JSON and a Markdown table; exits 1 if a case ended otherwise than
expected or printed a traceback.

Round 3 (issue 24) adds cases that are not one command: a check function builds and inspects the result
(the decoded samples of a phase-inverted file, a request to the local Prefect server without its secret,
what an erasure leaves); its return value is the case's code. The 10^6-line self-report case also records
the process's peak memory before and after it (``ru_maxrss``), since it is about memory.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import re
import signal
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: Longest a case may take before it is counted as hung.
CASE_TIMEOUT_S = 120


@dataclass
class Case:
    name: str
    klass: str
    argv: list[str]
    expected: str
    db: Path | None = None
    state: str = ""
    code: str = ""
    seconds: float = 0.0
    exit_code: int | None = None
    traceback: bool = False
    detail: str = ""
    check: Callable[[], str] | None = None

    @property
    def ok(self) -> bool:
        return self.code == self.expected and not self.traceback


class _Hung(BaseException):
    pass


def _alarm(signum: int, frame: object) -> None:
    raise _Hung()


def _tone(path: Path, seconds: float = 3.0) -> Path:  # distinct lengths: distinct audio (no duplicate refusal)
    import numpy as np
    import soundfile as sf

    t = np.arange(int(seconds * 16_000)) / 16_000
    sf.write(path, (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32), 16_000)
    return path


def _consent(audio: Path, session_id: str = "s1", **change: object) -> None:
    record: dict = {"session_id": session_id, "client_id": "c1", "therapist_id": "t1", "scope": "research",
                    "consented_on": "2026-01-01", "consented_by": ["client", "therapist"]}
    record.update(change)
    record = {k: v for k, v in record.items() if v is not ...}
    audio.with_name(audio.name + ".consent.json").write_text(json.dumps(record), encoding="utf-8")


def build(work: Path, *, batch: bool = True) -> list[Case]:
    """Write every case's inputs under ``work``; return the cases (not yet run)."""
    from evaluation.hostile_corpus import build_hostile_audio

    cases: list[Case] = []

    def process(name: str, klass: str, audio: Path, expected: str, *, session: str = "s1", client: str = "c1",
                therapist: str = "t1", extra: tuple[str, ...] = ()) -> Case:
        db = work / "db" / f"{len(cases):02d}.duckdb"
        case = Case(name, klass, ["process", str(audio), "--session-id", session, "--client-id", client,
                                  "--therapist-id", therapist, "--db", str(db), "--reports-dir",
                                  str(work / "reports"), *extra], expected, db)
        cases.append(case)
        return case

    # 1. resource exhaustion and non-files: the hostile-audio corpus, each with a valid consent sidecar
    audio_dir = work / "audio"
    for i, hc in enumerate(build_hostile_audio(audio_dir)):
        _consent(audio_dir / hc.name, f"a{i}")
        process(f"{hc.name}: {hc.what}", "audio", audio_dir / hc.name, hc.code, session=f"a{i}")

    # 2. identifiers (refused at the command's arguments, before the database is touched)
    good = _tone(work / "good.wav")
    _consent(good)
    for label, flag, value in [
        ("session id with U+202E right-to-left override", "session", "s\u202e1"),
        ("session id with a terminal escape (ESC[31m)", "session", "s\x1b[31m1"),
        ("session id with a newline", "session", "s\n1"),
        ("client id with a zero-width space", "client", "c\u200b1"),
        ("therapist id of 129 characters", "therapist", "t" * 129),
        ("therapist id of 100,000 characters", "therapist", "t" * 100_000),
        ("session id with leading space", "session", " s1"),
        ("empty session id", "session", ""),
    ]:
        kw = {"session": "s1", "client": "c1", "therapist": "t1", flag: value}
        process(label, "ids", good, "invalid_id", **kw)
    odd = work / "odd.wav"
    _tone(odd)
    _consent(odd, "a/b%c&d<e>", consented_by=[])  # a valid odd id reaches consent, which is refused
    process("session id a/b%c&d<e> (valid) whose consent has consented_by []", "ids", odd, "consent_invalid",
            session="a/b%c&d<e>")

    # 3. consent semantics
    for i, (label, change, extra, expected) in enumerate([
        ("consented_by: []", {"consented_by": []}, (), "consent_invalid"),
        ("consented_by: [therapist] (client not named)", {"consented_by": ["therapist"]}, (), "consent_invalid"),
        ("consented_on in the future (2099-01-01)", {"consented_on": "2099-01-01"}, (), "consent_invalid"),
        ("consented_on after the recording date", {"consented_on": "2026-02-01"}, ("--recorded-on", "2026-01-15"),
         "consent_invalid"),
        ("withdrawn_on: \"no\"", {"withdrawn_on": "no"}, (), "consent_invalid"),
        ("withdrawn_on: 2026-02-01", {"withdrawn_on": "2026-02-01"}, (), "consent_withdrawn"),
        ("consent sidecar id with U+202E", {"session_id": "c\u202e"}, (), "consent_invalid"),
    ]):
        audio = _tone(work / f"consent{i}.wav")
        _consent(audio, **change)
        process(label, "consent", audio, expected, extra=extra)
    process("no consent sidecar", "consent", _tone(work / "noconsent.wav"), "no_consent")
    pre = _tone(work / "prewithdrawn.wav")
    _consent(pre, "w1")
    withdrawn = process("withdrawal registered before processing, then the recording", "consent", pre,
                        "consent_withdrawn", session="w1")
    withdrawn.detail = "before:" + json.dumps(["consent", "withdraw", "--session", "w1", "--before-processing",
                                               "--db", str(withdrawn.db), "--actor", "bench"])

    # 4. manifests (refused whole before any server or model)
    m = work / "manifests"
    m.mkdir()
    (m / "repeated.csv").write_text("audio,session_id,client_id,therapist_id,session_id\ngood.wav,s1,c1,t1,s2\n")
    (m / "repeated.yaml").write_text("- {audio: good.wav, session_id: s1, client_id: c1, therapist_id: t1, "
                                     "session_id: s2}\n")
    for name in ("repeated.csv", "repeated.yaml"):
        cases.append(Case(f"manifest {name}: a column/key given twice", "manifest",
                          ["batch", str(m / name), "--db", str(work / "db" / f"m-{name}.duckdb")], "manifest",
                          work / "db" / f"m-{name}.duckdb"))

    # 5. the smaller ones
    cases.append(Case("audit --limit -5", "cli", ["audit", "--limit", "-5", "--db", str(work / "db" / "x.duckdb")],
                      "usage"))

    # 7. round 3 (issue 24)
    cases.extend(_round3(work, process))

    # 6. a folder batch: the hostile corpus with a FIFO and a directory named .wav (Prefect, no model)
    if batch:
        inbox = work / "inbox"
        for i, hc in enumerate(build_hostile_audio(inbox)):
            if (inbox / hc.name).is_file():
                _consent(inbox / hc.name, f"b{i}")
        db = work / "db" / "batch.duckdb"
        cases.append(Case("folder batch of the corpus (FIFO, directory named .wav, header lies)", "batch",
                          ["batch", str(inbox), "--db", str(db), "--reports-dir", str(work / "reports")],
                          "all as expected", db))
    return cases


def _stored_session(db: Path, session_id: str = "S1", client_id: str = "c1") -> Path:
    """A database holding one session row (no model needed)."""
    from pipeline.storage import db as storage

    con = storage.connect(db)
    con.execute("INSERT INTO sessions (session_id, client_id, therapist_id, recorded_on, audio_sha256, duration_s, "
                "pipeline_version, run_id, processed_at) VALUES (?, ?, 't1', DATE '2026-01-05', 'ab', 60.0, "
                "'0.1.0', 'r1', now())", [session_id, client_id])
    con.close()
    return db


def _round3(work: Path, process: Callable[..., Case]) -> list[Case]:
    """Issue 24's hostile cases (the ``process`` ones are appended by ``process`` itself)."""
    import numpy as np
    import soundfile as sf

    r3 = work / "round3"
    r3.mkdir()
    out: list[Case] = []
    # CSV: a cell over csv's 131,072-character limit (import-self-report and batch), and 10^6 lines (33 MB)
    sr_db = _stored_session(work / "db" / "r3-selfreport.duckdb", "s1")
    big_cell = r3 / "cell.csv"
    big_cell.write_text("session_id,relationship,goals,approach,overall\ns1," + "9" * 131_073 + ",9,9,9\n")
    out.append(Case("self-report CSV with a cell of 131,073 characters", "csv",
                    ["import-self-report", str(big_cell), "--instrument", "srs", "--db", str(sr_db)],
                    "self_report_import"))
    million = r3 / "million.csv"
    with million.open("w", encoding="utf-8") as f:
        f.write("session_id,instrument,item,value\n")
        f.writelines("s1,srs,relationship,9\n" for _ in range(1_000_000))
    out.append(Case(f"self-report CSV of 10^6 lines ({million.stat().st_size / 1e6:.0f} MB, under the 50 MB limit)",
                    "csv", ["import-self-report", str(million), "--db", str(sr_db), "--dry-run"],
                    "self_report_import", detail="rss"))
    manifest = r3 / "cell-manifest.csv"
    manifest.write_text("audio,session_id,client_id,therapist_id\n" + "x" * 131_073 + ".wav,s1,c1,t1\n")
    out.append(Case("manifest CSV with a cell of 131,073 characters", "csv",
                    ["batch", str(manifest), "--db", str(work / "db" / "r3-manifest.duckdb")], "manifest"))
    # audio: NaN samples (fails at decode), a phase-inverted stereo file (decoded from one channel)
    t = np.arange(3 * 16_000) / 16_000
    wave = (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)
    nan = wave.copy()
    nan[20_000] = np.nan
    sf.write(r3 / "nan.wav", nan, 16_000, subtype="FLOAT")
    _consent(r3 / "nan.wav", "r3nan")
    process("float WAV with a NaN sample at 1.25 s", "audio", r3 / "nan.wav", "audio_not_finite", session="r3nan")
    sf.write(r3 / "inverted.wav", np.stack([wave, -wave], axis=1), 16_000)

    def inverted() -> str:
        from pipeline.audio.decode import load_audio

        level = float(np.sqrt(np.mean(load_audio(r3 / "inverted.wav").samples ** 2)))
        return "decoded" if level > 0.1 else f"silent (rms {level:.3f})"

    out.append(Case("phase-inverted stereo WAV (down-mix cancels) decoded", "audio", ["<check>"], "decoded",
                    check=inverted))
    # ids: look-alike scripts in one id; a stored 'S1' and a new 's1'; consent without consented_by
    process("session id mixing Latin and Cyrillic letters (S\u0430m)", "ids", _tone(r3 / "mixed.wav"), "invalid_id",
            session="S\u0430m")
    clash_audio = _tone(r3 / "clash.wav", 3.1)
    _consent(clash_audio, "s1")
    clash = process("session id 's1' next to a stored 'S1' (case-insensitive disks, readers)", "ids", clash_audio,
                    "invalid_id")
    _stored_session(clash.db)
    noby = _tone(r3 / "noby.wav", 3.2)
    _consent(noby, "s1", consented_by=...)
    process("consent sidecar without consented_by", "consent", noby, "consent_invalid")
    # a database with a corrupt block in use
    damaged = _stored_session(work / "db" / "r3-damaged.duckdb", "d0")
    _damage(damaged)
    dmg_audio = _tone(r3 / "dmg.wav", 3.3)
    _consent(dmg_audio)
    out.append(Case("database with a corrupt data block", "database",
                    ["process", str(dmg_audio), "--session-id", "s1", "--client-id", "c1", "--therapist-id", "t1",
                     "--db", str(damaged), "--reports-dir", str(work / "reports")], "storage"))
    out.append(Case("request to the local Prefect API without its secret", "server", ["<check>"], "401",
                    check=_unauthenticated))
    out.append(Case("after erasure: the batch run's command line and handles", "erasure", ["<check>"],
                    "nothing names the session", check=lambda: _erasure_leftovers(work / "db" / "r3-erase.duckdb")))
    return out


def _damage(db: Path) -> None:
    """Fill run_items with 150,000 rows, then overwrite one of its data blocks (the catalogue still opens)."""
    import duckdb

    con = duckdb.connect(str(db))
    con.execute("INSERT INTO run_items (run_id, source_path, state, message, finished_at) "
                "SELECT 'r0', 'x' || range, 'failed', repeat('m', 40), now() FROM range(150000)")
    con.execute("CHECKPOINT")
    blocks = sorted({b for (b,) in con.execute("SELECT block_id FROM pragma_storage_info('run_items') "
                                               "WHERE column_name = 'message' AND block_id >= 0").fetchall()})
    con.close()
    with db.open("r+b") as f:
        f.seek(3 * 4096 + blocks[len(blocks) // 2] * 262_144 + 1000)
        f.write(os.urandom(2048))


def _unauthenticated() -> str:
    import urllib.error
    import urllib.request

    from flows.server import BackgroundServer

    server = BackgroundServer(None)
    try:
        server.wait_ready()
        request = urllib.request.Request(server.url + "/flow_runs/filter", data=b"{}", method="POST",
                                         headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=10) as r:
                return str(r.status)
        except urllib.error.HTTPError as e:
            return str(e.code)
    finally:
        server.stop()


def _erasure_leftovers(db: Path) -> str:
    import hashlib

    from pipeline.engine.manifest import BatchItem
    from pipeline.storage import db as storage
    from pipeline.storage.erasure import withdraw

    _stored_session(db, "anna-2026-01")
    con = storage.connect(db)
    storage.start_run(con, run_id="r1", pipeline_version="0", models={}, command="batch /data/anna/manifest.csv")
    storage.record_item(con, run_id="r1", source_path="/data/anna/anna-2026-01.wav", state="processed",
                        session_id="anna-2026-01")
    withdraw(con, session_id="anna-2026-01", actor="bench", run_id="w1", keep_audio=True)
    (command,) = con.execute("SELECT command FROM pipeline_runs WHERE run_id = 'r1'").fetchone()
    con.close()
    item = BatchItem("anna-2026-01.wav", None, None, None)
    guessed = hashlib.sha256(b"anna-2026-01.wav\x00").hexdigest()[:12]
    left = [what for what, found in (("command", "anna" in command), ("handle", item.handle == guessed)) if found]
    return "nothing names the session" if not left else f"left: {left}"


def _recorded(db: Path) -> list[tuple[str, str, str | None]]:
    import duckdb

    if not db.is_file():
        return []
    try:
        con = duckdb.connect(str(db), read_only=True)
    except duckdb.Error:
        return []
    try:
        return con.execute("SELECT source_path, state, error_code FROM run_items ORDER BY finished_at").fetchall()
    except duckdb.Error:  # a damaged database (the case that damaged it): nothing recorded can be read
        return []
    finally:
        con.close()


def run_case(case: Case, call: Callable[[list[str]], int]) -> Case:
    """Run one case through ``call`` (``pipeline.cli.main.main``) and fill in its end state."""
    out, err = io.StringIO(), io.StringIO()
    previous = signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(CASE_TIMEOUT_S)
    started = time.perf_counter()
    rss_before = _peak_rss_mb()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            if case.check is not None:
                case.code = case.check()
                case.state = "checked"
                case.exit_code = 0
            elif case.detail.startswith("before:"):
                call(json.loads(case.detail.removeprefix("before:")))
            try:
                case.exit_code = call(case.argv)
            except SystemExit as e:  # argparse
                case.exit_code = int(e.code or 0)
    except _Hung:
        case.state, case.code = "hung", f"over {CASE_TIMEOUT_S} s"
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    case.seconds = round(time.perf_counter() - started, 3)
    text = out.getvalue() + err.getvalue()
    case.traceback = "Traceback (most recent call last)" in text
    if case.state in ("hung", "checked"):
        return case
    if case.detail == "rss":
        case.detail = f"peak RSS {rss_before:.0f} MB before, {_peak_rss_mb():.0f} MB after; "
        rss_note = case.detail
    else:
        rss_note = ""
    rows = _recorded(case.db) if case.db else []
    if case.klass == "batch":
        return _batch_result(case, rows, text)
    if rows:
        _, case.state, code = rows[-1]
        case.code = code or ""
    else:
        case.state = "refused" if case.exit_code else "processed"
        found = re.findall(r"\[([a-z_]+)\]\s*$", err.getvalue().strip())
        case.code = found[-1] if found else ("usage" if case.exit_code == 2 else "")
    lines = [ln for ln in err.getvalue().strip().splitlines() if ln.startswith(("error", "usage:", "alliance"))]
    case.detail = rss_note + (lines[-1] if lines else text.strip().splitlines()[-1] if text.strip() else "")[:160]
    return case


def _peak_rss_mb() -> float:
    """Peak resident memory of this process so far (Linux ru_maxrss is in KiB)."""
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _batch_result(case: Case, rows: list, text: str) -> Case:
    from evaluation.hostile_corpus import build_hostile_audio

    with tempfile.TemporaryDirectory() as names:
        expected = {c.name: c.code for c in build_hostile_audio(Path(names))}
    got = {Path(p).name: (s, c) for p, s, c in rows}
    wrong = {n: got.get(n) for n, code in expected.items() if got.get(n) != ("failed", code)}
    case.state = f"{sum(1 for s, _ in got.values() if s == 'failed')} of {len(expected)} failed"
    case.code = "all as expected" if not wrong and len(got) == len(expected) else f"unexpected: {wrong}"
    case.detail = ", ".join(f"{n}: {c}" for n, (_, c) in sorted(got.items()))[:400]
    return case


def markdown(cases: list[Case]) -> str:
    lines = ["| case | class | end state | reason code | expected | seconds |", "|---|---|---|---|---|---:|"]
    for c in cases:
        mark = "" if c.ok else " **(!)**"
        name = c.name.replace("|", "\\|").replace("\n", " ")
        lines.append(f"| {name} | {c.klass} | {c.state} | `{c.code}`{mark} | `{c.expected}` | {c.seconds:.2f} |")
    return "\n".join(lines)


def run(work: Path, *, batch: bool = True) -> list[Case]:
    """Build and run every case under ``work``."""
    os.environ.setdefault("PREFECT_HOME", str(work / "prefect-home"))  # never the user's Prefect home
    from pipeline.cli.main import main

    (work / "db").mkdir(parents=True, exist_ok=True)
    return [run_case(c, main) for c in build(work, batch=batch)]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", type=Path, help="also write the JSON here")
    ap.add_argument("--markdown", type=Path, help="also write the Markdown table here")
    ap.add_argument("--no-batch", action="store_true", help="skip the folder batch (it starts Prefect's server)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="bad-input-") as tmp:
        cases = run(Path(tmp), batch=not args.no_batch)
    doc = {"cases": [{"case": c.name, "class": c.klass, "end_state": c.state, "reason_code": c.code,
                      "expected": c.expected, "ok": c.ok, "exit_code": c.exit_code, "traceback": c.traceback,
                      "seconds": c.seconds, "detail": c.detail} for c in cases],
           "all_ok": all(c.ok for c in cases), "total_seconds": round(sum(c.seconds for c in cases), 2)}
    table = markdown(cases)
    print(json.dumps(doc, indent=1, ensure_ascii=True))
    print()
    print(table)
    if args.json:
        args.json.write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
    if args.markdown:
        args.markdown.write_text(table + "\n", encoding="utf-8")
    return 0 if doc["all_ok"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
