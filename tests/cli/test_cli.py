from __future__ import annotations

import subprocess
import sys

import pytest

from pipeline.cli.main import build_parser, main


@pytest.mark.parametrize("command", ["process", "summary", "models", "batch"])
def test_help_is_complete(command, capsys):
    with pytest.raises(SystemExit) as e:
        main([command, "--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert "--db" in out or command == "models"
    if command == "process":
        for flag in ("--session-id", "--client-id", "--therapist-id", "--recorded-on", "--asr-backend",
                     "--therapist-speaker", "--force"):
            assert flag in out


def test_bad_date_is_rejected(capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["process", "a.wav", "--session-id", "s", "--client-id", "c",
                                   "--therapist-id", "t", "--recorded-on", "02/11/2026"])
    assert "not an ISO date" in capsys.readouterr().err


def test_summary_of_unknown_session(tmp_path, capsys):
    from pipeline.storage import db

    db.connect(tmp_path / "a.duckdb").close()
    assert main(["summary", "nope", "--db", str(tmp_path / "a.duckdb")]) == 2
    assert "no session 'nope'" in capsys.readouterr().err


def test_console_script_is_installed():
    out = subprocess.run([sys.executable, "-m", "pipeline.cli.main", "--help"], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0 and "process" in out.stdout and "clinical judgements" in out.stdout


def test_device_option_reaches_both_models():
    from pipeline.engine.runtime import options_for_device
    from pipeline.errors import ConfigError

    o = options_for_device("cuda:1")
    assert o.transcribe.device == "cuda" and o.transcribe.resolved_compute_type == "float16"
    assert o.transcribe.device_index == 1 and options_for_device("cuda").transcribe.device_index == 0
    assert o.diarize.device == "cuda:1" and options_for_device("cpu").transcribe.resolved_compute_type == "int8"
    for bad in ("tpu", "cuda:x", "cpu:1", "cuda:-1"):
        with pytest.raises(ConfigError, match="device"):
            options_for_device(bad)


@pytest.mark.parametrize("language", ["EN!", "english", "e\u202en", ""])
def test_a_bad_language_is_one_error_line_and_exit_2(language, tone_wav, tmp_path, capsys):
    from conftest import write_consent

    write_consent(tone_wav)
    rc = main(["process", str(tone_wav), "--session-id", "s1", "--client-id", "c1", "--therapist-id", "t1",
               "--language", language, "--db", str(tmp_path / "a.duckdb")])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and err.startswith("error:") and "[config]" in err and len(err.splitlines()) == 1
    assert "Traceback" not in err


def test_language_auto_means_detection(capsys):
    from pipeline.cli.args import language_option

    assert language_option("auto") is None and language_option(" EN ") == "en"
