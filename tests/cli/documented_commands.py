"""Every ``alliance`` command printed in README.md and docs/*.md, collected, and what the tests do with each.

:func:`documented` reads the shell blocks (fenced ``sh``/``bash``/``shell`` or without a language) and the
inline code spans of the documents. :data:`HOW` is the maintained list: every command printed in a shell
block has an entry (a test fails on a new one without, and on an entry no document prints any more) saying
whether it is run on the test database as printed (``RUN``), run with the real models (``MODELS``,
integration) or only parsed, with the reason (anything else).

A printed command is a synopsis: ``[...]`` is optional, ``a|b`` alternatives, capitals placeholders.
:func:`forms` turns it into the *minimal* form (no optional part) and the *full* form (every optional part,
first alternatives), :data:`PLACEHOLDERS` fills in the placeholders.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOCUMENTS = (ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")))
SHELL_LANGUAGES = ("sh", "bash", "shell", "console", "")

#: How each command printed in a shell block is checked. RUN: the minimal form runs on the test database
#: (exit 0), the full form parses. MODELS: the same with the real models (integration test).
RUN, MODELS = "run", "models"
HOW: dict[str, str] = {
    # README quick start
    "alliance process RECORDING.flac --session-id S12 --client-id C7 --therapist-id T3 [--recorded-on 2026-11-02] "
    "[--db alliance.duckdb] [--reports-dir reports] [--asr-backend faster-whisper|openai-whisper|moonshine|rover] "
    "[--asr-beam-size 5] [--language en|auto|CODE] [--num-speakers 2] "
    "[--therapist-speaker first|second|SPEAKER_01] [--force]": MODELS,
    "alliance summary S12 --therapist T3 [--db alliance.duckdb]": RUN,
    "alliance summary S12 --role supervisor": RUN,
    "alliance report S12 --therapist T3": RUN,
    "alliance export-transcript S12 --format vtt --therapist T3": RUN,
    "alliance models [--prepare]": MODELS,
    # README self-report and comparison
    "alliance import-self-report ratings.csv --instrument srs [--db alliance.duckdb] [--dry-run] "
    "[--report problems.csv]": RUN,
    "alliance compare [--instrument srs] [--scale total] [--indicator we_rate:client] "
    "[--level between|within|both] [--min-n 5] [--include-contradicted]": RUN,
    "alliance export [VIEW ...] --out exports/ [--format parquet|csv] [--partition-by COL | --no-partition]": RUN,
    "alliance import-self-report /tmp/mibot2/mibot_self_report.csv --instrument-config bench/mibot_instruments.toml "
    "--db /tmp/mibot2/mibot.duckdb": "parsed: run by bench.mibot_compare on ../shared/data/mibot",
    "alliance compare --level between --indicator we_rate:therapist --indicator collaborative_we_rate:therapist "
    "--indicator question_rate:therapist --indicator open_question_share:therapist --indicator "
    "alliance_work_rate:therapist --indicator we_rate:client --indicator word_count:client --indicator "
    "minimal_response_rate:client --indicator deflection_rate:client --indicator rupture_candidate_rate:client "
    "--include-contradicted --db /tmp/mibot2/mibot.duckdb":
        "parsed: run by bench.mibot_compare on ../shared/data/mibot",
    # README clinician report, batch, Dask
    "alliance report S12 --therapist T3 [--format html|pdf|md] [--out PATH] [--db alliance.duckdb]": RUN,
    "alliance report S12 --therapist T3 --audio RECORDING.flac --audio-playback-consented":
        "parsed: needs the session's own recording (tests/report/test_report_reader.py runs it on a real file)",
    "alliance report --client C7 --therapist T3 [--out PATH] [--db alliance.duckdb]": RUN,
    "alliance batch FOLDER_OR_MANIFEST [--db alliance.duckdb] [--reports-dir reports] [--workers N] "
    "[--wait SECONDS] [--engine threads|dask] [--dask-address tcp://HOST:PORT]": MODELS,
    "alliance batch inbox/manifest.csv --engine dask --workers 2":
        "parsed: needs `prefect server start` and a Dask cluster (tests/engine/test_batch_dask.py runs it)",
    "alliance batch inbox/manifest.csv --engine dask --dask-address tcp://scheduler:8786":
        "parsed: needs a Dask scheduler at that address",
    # docs/exports.md
    "alliance export-transcript SESSION --therapist ID --format FORMAT [--out FILE]": RUN,
    "alliance export-transcript SESSION --therapist ID --format all [--out FOLDER]": RUN,
    "alliance export-transcript --index --therapist ID [--out FILE]": RUN,
    "alliance export-transcript --client ID --therapist ID --format FORMAT [--out FOLDER]": RUN,
    "alliance export-transcript --index --role supervisor": RUN,
    "alliance export-transcript --index --therapist T17": RUN,
    "alliance export-transcript sess-0417 --format all --role supervisor --out sess-0417-files/": RUN,
    "alliance export-transcript sess-0417 --format eaf --role supervisor --out session.eaf "
    "--media recordings/0417.flac": RUN,
    # docs/gates.md
    "alliance process one-slt.wav --session-id S-one-slt --client-id C1 --therapist-id T1 --db a.duckdb "
    "--reports-dir reports": "parsed: the one-voice render bench.bench_gates makes "
                             "(tests/engine/test_gates_integration.py runs the same refusal with the real models)",
    "alliance export-transcript --run RUN_ID --therapist ID --format FORMAT [--out FOLDER]": RUN,
    "alliance export-transcript sess-0417 --format vtt --out session.vtt --therapist T17": RUN,
    "alliance export-transcript sess-0417 --format srt --out session.srt --therapist T17": RUN,
    "alliance export-transcript sess-0417 --format json --role supervisor": RUN,
    "alliance export-transcript sess-0417 --format textgrid --role supervisor --out session.TextGrid": RUN,
    "alliance export-transcript --run run-20261102T210000Z-1a2b3c4d --format rttm --role admin --out rttm/": RUN,
    "alliance export-transcript --client C-5e0c1a9d2b7f4e31 --format eaf --role researcher "
    "--study-key-file study.key --out coding/": RUN,
    # README MI behaviour codes
    "alliance code session.csv --out codes.csv [--format auto] [--therapist-speaker first|second|SPEAKER_01] "
    "[--json]": RUN,
    "alliance code ../shared/data/annomi/AnnoMI-simple.csv --json":
        "parsed: reads ../shared (tests/codes/test_codes_product.py codes AnnoMI rows with alliance code)",
    # docs/research_dataset.md
    "alliance export --dataset study/ --study-key-file STUDY.key --db alliance.duckdb": RUN,
    "alliance export --dataset study/ --role admin --db alliance.duckdb": RUN,
}

#: Placeholders and example values -> what the test database holds (the printed ids S12, C7, T3 are real
#: there). ``{C7_PSEUDONYM}`` is the client's pseudonym under the test study key.
PLACEHOLDERS = {
    "SESSION": "S12", "SESSION_ID": "S12", "FORMAT": "json", "FILE": "out/file.json", "FOLDER": "out/",
    "RUN_ID": "run-20261102T210000Z-1a2b3c4d", "VIEW": "sessions", "COL": "client_id", "PATH": "out/report.html",
    "N": "1", "SECONDS": "0", "CODE": "en", "sess-0417": "S12", "T17": "T3",
    "C-5e0c1a9d2b7f4e31": "{C7_PSEUDONYM}", "RECORDING.flac": "RECORDING.flac",
    "FOLDER_OR_MANIFEST": "manifest.csv", "tcp://HOST:PORT": "tcp://127.0.0.1:8786",
}
#: Placeholders that follow an option: ``--client ID`` is a client, ``--therapist ID`` a therapist.
OPTION_PLACEHOLDERS = {("--client", "ID"): "C7", ("--therapist", "ID"): "T3", ("--session", "ID"): "S12"}


@dataclass(frozen=True)
class Documented:
    document: str
    line: int
    text: str   # the command as printed, continuation lines joined, comment and `.venv/bin/` removed
    inline: bool


def _normalise(command: str) -> str:
    command = re.sub(r"^(\S*/)?alliance\b", "alliance", command.strip())
    return re.sub(r"\s+", " ", command)


def documented() -> list[Documented]:
    """Every ``alliance`` command in the shell blocks and inline code of README.md and docs/*.md."""
    found: list[Documented] = []
    for doc in DOCUMENTS:
        name = doc.relative_to(ROOT).as_posix()
        lines = doc.read_text(encoding="utf-8").splitlines()
        in_block, shell, pending, start = False, False, "", 0
        for number, raw in enumerate(lines, 1):
            fence = re.match(r"^\s*```(\w*)", raw)
            if fence:
                in_block = not in_block
                shell = in_block and fence.group(1) in SHELL_LANGUAGES
                continue
            if in_block and shell:
                text = re.sub(r"\s#\s.*$", "", raw).rstrip()  # a trailing comment
                if pending:
                    pending += " " + text.rstrip("\\").strip()
                else:
                    pending, start = text.rstrip("\\").strip(), number
                if text.endswith("\\"):
                    continue
                if re.match(r"^(\S*/)?alliance\s", pending):
                    found.append(Documented(name, start, _normalise(pending), inline=False))
                pending = ""
            elif not in_block:
                for span in re.findall(r"`((?:\S*/)?alliance [^`]+)`", raw):
                    found.append(Documented(name, number, _normalise(span.replace("\\|", "|")), inline=True))
    return found


def _drop_optional(text: str) -> str:
    while True:
        new = re.sub(r"\s*\[[^\[\]]*\]", "", text)
        if new == text:
            return new
        text = new


def _take_optional(text: str) -> str:
    def first(m: re.Match) -> str:
        return " " + m.group(1).split(" | ")[0].strip()

    while True:
        new = re.sub(r"\s*\[([^\[\]]*)\]", first, text)
        if new == text:
            return new
        text = new


def _fill(text: str, values: dict[str, str]) -> list[str]:
    out: list[str] = []
    for token in shlex.split(text):
        if out and (out[-1], token) in OPTION_PLACEHOLDERS:
            token = OPTION_PLACEHOLDERS[(out[-1], token)]
        token = PLACEHOLDERS.get(token, token)
        if "|" in token and not token.startswith("tcp:"):
            token = token.split("|")[0]  # alternatives: the first
        out.append(token.format(**values))
    return out[1:]  # without "alliance"


def forms(text: str, values: dict[str, str]) -> tuple[list[str], list[str]]:
    """The minimal and the full argument lists of a printed command (placeholders filled in)."""
    return _fill(_drop_optional(text), values), _fill(_take_optional(text), values)


def inline_words(text: str) -> tuple[list[str], list[str]]:
    """An inline span's command words (``consent withdraw``) and the options it names (``--session``)."""
    text = re.sub(r"\b([a-z][a-z-]*)(?:[|/][a-z][a-z-]*)+", r"\1", text)  # process|batch, summary/report
    tokens = text.replace("[", " ").replace("]", " ").replace("|", " ").split()[1:]
    words = []
    for t in tokens:
        if t.startswith("-") or not re.fullmatch(r"[a-z][a-z-]*", t):
            break
        words.append(t)
    return words, [t.split("=")[0] for t in tokens if t.startswith("--")]
