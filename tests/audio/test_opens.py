"""How often checking and decoding a recording opens it, counted by strace (skipped where strace is absent).

``check_audio`` (header and SHA-256, the precheck's) reads the file through one handle, and ``load_audio``
handed that check opens it once more, to decode: 2 opens, where a WAV took 3 and a FLAC 5 (a header parser
each for WAV and AU, libsndfile's header, the hash, the decoder).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys

import pytest
import soundfile as sf
from conftest import ROOT, tone

_CHECK_THEN_DECODE = """
import sys
from pipeline.audio.decode import check_audio, load_audio
checked = check_audio(sys.argv[1])
audio = load_audio(sys.argv[1], checked=checked)
assert audio.sha256 == checked.sha256 and audio.duration_s > 1.9
"""
_DECODE_ALONE = """
import sys
from pipeline.audio.decode import load_audio
assert load_audio(sys.argv[1]).duration_s > 1.9
"""


def _opens(log: str, path: str) -> int:
    pattern = re.compile(r'openat\([^,]+, "' + re.escape(path) + r'", [^)]*\) = \d+')
    return sum(1 for line in log.splitlines() if pattern.search(line))


def _traced_opens(tmp_path, code: str, path) -> int:
    strace = shutil.which("strace")
    if strace is None:
        pytest.skip("strace not installed (.ci/run installs it)")
    log = tmp_path / "strace.log"
    run = subprocess.run([strace, "-f", "-qq", "-e", "trace=openat", "-o", str(log), sys.executable, "-c", code,
                          str(path)], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert run.returncode == 0, run.stderr[-3000:]
    return _opens(log.read_text(), str(path))


@pytest.mark.parametrize(("fmt", "subtype"), [("wav", "PCM_16"), ("flac", "PCM_16"), ("ogg", "VORBIS"),
                                              ("au", "PCM_16"), ("mp3", None)])
def test_a_checked_recording_is_opened_twice(tmp_path, fmt, subtype):
    path = tmp_path / f"rec.{fmt}"
    sf.write(path, tone(2.0, rate=44_100, channels=2), 44_100, format=fmt.upper(), subtype=subtype)
    assert _traced_opens(tmp_path, _CHECK_THEN_DECODE, path) == 2


def test_an_unchecked_recording_is_checked_through_one_handle_too(tmp_path):
    path = tmp_path / "rec.flac"
    sf.write(path, tone(2.0), 16_000)
    assert _traced_opens(tmp_path, _DECODE_ALONE, path) == 2


def test_the_counter_reads_successful_openat_lines_of_that_path_only():
    log = "\n".join(['1 openat(AT_FDCWD, "/t/r.flac", O_RDONLY|O_NONBLOCK|O_CLOEXEC) = 3',
                     '1 openat(AT_FDCWD, "/t/r.flac", O_RDONLY|O_CLOEXEC) = -1 EACCES (Permission denied)',
                     '1 openat(AT_FDCWD, "/t/r.flac.consent.json", O_RDONLY|O_CLOEXEC) = 4',
                     '2 openat(AT_FDCWD, "/t/r.flac", O_RDONLY) = 5'])
    assert _opens(log, "/t/r.flac") == 2
