"""A recording refused in the checks answers before anything heavy is imported (README: "0.7 s").

The modules a refusal may not load are the ones whose import alone takes seconds on 2 cores: the models'
libraries, Prefect, and scikit-learn (the process coder's, 1.3 s). Checked in a fresh interpreter.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import soundfile as sf

ROOT = Path(__file__).resolve().parents[2]
HEAVY = ("torch", "prefect", "sklearn", "ctranslate2", "faster_whisper", "pyannote", "spacy", "transformers")

PROBE = """
import json, sys
from pipeline.cli.main import main
code = main(sys.argv[1:])
heavy = sorted({m.split(".")[0] for m in sys.modules} & set(json.loads(sys.stdin.read())))
print("HEAVY=" + json.dumps(heavy))
print("CODE=" + str(code))
"""


def test_a_refusal_imports_no_model_library_prefect_or_scikit_learn(tmp_path: Path) -> None:
    import numpy as np

    audio = tmp_path / "rec.wav"
    sf.write(audio, (0.1 * np.sin(np.arange(32000) / 10)).astype("float32"), 16000)  # no consent record
    out = subprocess.run([sys.executable, "-c", PROBE, "process", str(audio), "--session-id", "s1", "--client-id",
                          "c1", "--therapist-id", "t1", "--db", str(tmp_path / "a.duckdb"), "--quiet"],
                         input=json.dumps(HEAVY), capture_output=True, text=True, cwd=ROOT, timeout=120,
                         env={**__import__("os").environ, "PYTHONPATH": str(ROOT)})
    lines = dict(line.split("=", 1) for line in out.stdout.splitlines() if line.startswith(("HEAVY=", "CODE=")))
    assert lines.get("CODE") == "3", out.stdout + out.stderr  # refused: no consent
    assert json.loads(lines["HEAVY"]) == [], lines["HEAVY"]
