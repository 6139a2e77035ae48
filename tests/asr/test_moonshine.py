"""The Moonshine backend: options, region windows, and (integration) the real model on pyannote's sample."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from evaluation.metrics import word_error_rate
from pipeline.asr.moonshine import Region, windows
from pipeline.asr.transcribe import TranscribeOptions, load_transcriber
from pipeline.errors import ConfigError
from pipeline.types import SAMPLE_RATE_HZ

SR = SAMPLE_RATE_HZ


def test_moonshine_is_a_backend_and_needs_its_folder(tmp_path: Path) -> None:
    options = TranscribeOptions(backend="moonshine")
    with pytest.raises(ConfigError, match="moonshine_dir"):
        load_transcriber(ct2_dir=tmp_path, openai_checkpoint=None, options=options)
    with pytest.raises(ConfigError, match="English only"):
        load_transcriber(ct2_dir=tmp_path, openai_checkpoint=None, moonshine_dir=tmp_path,
                         options=TranscribeOptions(backend="moonshine", language="de"))


def test_windows_group_consecutive_regions_within_thirty_seconds() -> None:
    regions = (Region(0, 5 * SR), Region(6 * SR, 20 * SR), Region(21 * SR, 29 * SR), Region(31 * SR, 40 * SR),
               Region(70 * SR, 71 * SR))
    groups = windows(regions)
    assert groups == [[regions[0], regions[1], regions[2]], [regions[3]], [regions[4]]]
    assert windows(()) == []


@pytest.mark.integration
def test_moonshine_on_pyannotes_sample_gives_timed_words_in_speech() -> None:
    import pyannote.audio
    import soundfile as sf

    from models.store import require

    folder = Path(pyannote.audio.__file__).parent / "sample"
    samples, _ = sf.read(folder / "sample.wav", dtype="float32")
    ref = " ".join(line.split(" ", 5)[5] for line in (folder / "sample.stm").read_text().splitlines())
    transcriber = load_transcriber(ct2_dir=require("whisper-base-ct2"), openai_checkpoint=None,
                                   moonshine_dir=require("moonshine-base-ort"),
                                   options=TranscribeOptions(backend="moonshine", cpu_threads=1))
    seen: list[float] = []
    transcript = transcriber.transcribe(samples, progress=seen.append)
    assert (transcript.backend, transcript.model_name, transcript.language) == ("moonshine", "moonshine-base", "en")
    assert word_error_rate(ref, " ".join(w.text for w in transcript.words)) < 0.2
    starts = np.array([w.start_s for w in transcript.words])
    assert np.all(np.diff(starts) >= 0) and starts[0] > 6.0  # nobody speaks in the first 6.5 s
    assert seen[-1] == 1.0
