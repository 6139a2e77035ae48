"""Shared fixtures: generated signals, fakes for the model stages, paths to real material."""

from __future__ import annotations

import contextlib
import importlib.resources
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

import pipeline  # noqa: F401  (offline environment first)
from pipeline.types import Diarization, SpeakerTurn, Transcript, Word

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
SAMPLE_AUDIO = ROOT / "sample_audio"


def shared_path(*parts: str) -> Path:
    """A file under ../shared, or skip the test (a user's clone has no ../shared)."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"{path} not available (../shared is for development only)")
    return path


def pyannote_sample() -> Path:
    return Path(str(importlib.resources.files("pyannote.audio") / "sample" / "sample.wav"))


def tone(duration_s: float, *, rate: int = 16_000, freq: float = 220.0, level: float = 0.3, seed: int = 0,
         channels: int = 1) -> np.ndarray:
    """A voiced-like test signal (harmonic tone with seeded noise), shape (n,) or (n, channels)."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(duration_s * rate)) / rate
    x = sum(np.sin(2 * np.pi * freq * k * t) / k for k in range(1, 6)) * level / 2
    x = (x + 0.005 * rng.standard_normal(len(t))).astype(np.float32)
    return np.repeat(x[:, None], channels, axis=1) if channels > 1 else x


def write_consent(audio: Path, *, session_id: str = "s1", client_id: str = "c1", scope: str = "research") -> Path:
    path = audio.with_name(audio.name + ".consent.json")
    path.write_text(json.dumps({"session_id": session_id, "client_id": client_id, "scope": scope,
                                "consented_on": "2026-01-01", "consented_by": ["client", "therapist"]}))
    return path


@pytest.fixture
def tone_wav(tmp_path: Path) -> Path:
    path = tmp_path / "tone.wav"
    sf.write(path, tone(3.0), 16_000)
    return path


class FakeTranscriber:
    """Returns fixed words; records that it was called."""

    name = "fake"
    model_name = "fake-asr"

    def __init__(self, words: tuple[Word, ...]) -> None:
        self.words = words
        self.calls = 0

    def transcribe(self, samples: np.ndarray, *, progress=None) -> Transcript:
        self.calls += 1
        if progress is not None:
            progress(1.0)
        return Transcript(self.words, "en", 0.99, "fake", "fake-asr")


class FakeDiarizer:
    model_name = "fake-diarizer"

    def __init__(self, turns: tuple[SpeakerTurn, ...]) -> None:
        self.turns = turns

    def diarize(self, samples: np.ndarray, *, num_speakers: int | None = None, hook=None) -> Diarization:
        return Diarization(self.turns, tuple(sorted({t.speaker for t in self.turns})))


def words_from(text: str, start_s: float, end_s: float) -> tuple[Word, ...]:
    """Spread a sentence's words evenly over a span."""
    tokens = text.split()
    step = (end_s - start_s) / len(tokens)
    return tuple(Word(start_s + i * step, start_s + (i + 1) * step, tok, 0.9) for i, tok in enumerate(tokens))


THERAPIST_1 = "How have you been since we last met? What would you like to focus on today?"
CLIENT_1 = "I have been okay I think. My sister and I had a fight and we did not talk for days."
THERAPIST_2 = "That sounds hard. Let's look at what happened and what you need from her?"
CLIENT_2 = "I don't know. I guess I want us to be close again."


@pytest.fixture
def dialogue() -> tuple[tuple[Word, ...], tuple[SpeakerTurn, ...]]:
    """A four-turn dialogue: words and diarization, with a 3 s switching gap before the last turn."""
    words = (words_from(THERAPIST_1, 0.5, 5.0) + words_from(CLIENT_1, 5.6, 11.0)
             + words_from(THERAPIST_2, 11.4, 15.0) + words_from(CLIENT_2, 18.0, 21.0))
    turns = (SpeakerTurn(0.5, 5.0, "SPEAKER_01"), SpeakerTurn(5.6, 11.0, "SPEAKER_00"),
             SpeakerTurn(11.4, 15.0, "SPEAKER_01"), SpeakerTurn(18.0, 21.0, "SPEAKER_00"))
    return words, turns


@pytest.fixture(scope="session")
def prefect_harness():
    """A temporary Prefect server for the whole test session (flows run for real)."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=180):
        yield


@contextlib.contextmanager
def prefect_server(tmp_path: Path):
    """A real ``prefect server start`` on a free loopback port with its own PREFECT_HOME.

    Yields the environment (``PREFECT_API_URL`` set) for subprocesses that must reach it.
    """
    import os
    import signal
    import socket
    import subprocess
    import sys
    import time
    import urllib.request

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "PREFECT_HOME": str(tmp_path / "prefect-home"),
           "PREFECT_API_URL": f"http://127.0.0.1:{port}/api"}
    prefect = str(Path(sys.executable).with_name("prefect"))
    server = subprocess.Popen([prefect, "server", "start", "--host", "127.0.0.1", "--port", str(port)],
                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        for _ in range(180):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/api/health", timeout=2)
                break
            except OSError:
                time.sleep(1)
        yield env
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=60)


@pytest.fixture
def fakes(monkeypatch, dialogue):
    """The session flow's model loaders replaced by fakes returning the ``dialogue`` fixture."""
    import pipeline.engine.sequence as sf_mod

    words, turns = dialogue
    t, d = FakeTranscriber(words), FakeDiarizer(turns)
    monkeypatch.setattr(sf_mod, "get_transcriber", lambda options: t)
    monkeypatch.setattr(sf_mod, "get_diarizer", lambda options: d)
    return t, d


@pytest.fixture
def recording(tmp_path):
    """A 22 s tone recording (no consent sidecar yet)."""
    import soundfile as sf

    path = tmp_path / "session one.wav"
    sf.write(path, tone(22.0), 16_000)
    return path


@pytest.fixture
def analysis(dialogue):
    """A SessionAnalysis of the ``dialogue`` fixture (session s1, client c1, therapist t1, research scope)."""
    import datetime as dt

    from pipeline.analysis.session import SessionMeta, analyse
    from pipeline.privacy.consent import parse_consent
    from pipeline.types import Audio, Diarization, Transcript

    words, turns = dialogue
    audio = Audio(np.zeros(16_000 * 22, dtype=np.float32), 16_000, "ab" * 32, "x.wav", "WAV", 16_000, 1)
    meta = SessionMeta("s1", "c1", "t1", dt.date(2026, 1, 2))
    consent = parse_consent({"session_id": "s1", "client_id": "c1", "scope": "research",
                             "consented_on": "2026-01-01", "consented_by": ["client"]}, source="test")
    return analyse(audio, Transcript(words, "en", 0.99, "fake", "fake-asr"),
                   Diarization(turns, ("SPEAKER_00", "SPEAKER_01")), meta=meta, consent=consent,
                   diarization_model="fake")
