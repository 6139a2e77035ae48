"""Load the verified models once per process and hand them to the stages.

Loading is the only place where model files are touched; analysis functions receive loaded models.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np

from pipeline.analysis.indicators import MARKERS_VERSION, IndicatorOptions
from pipeline.asr.transcribe import TranscribeOptions, Transcriber, load_transcriber
from pipeline.audio.decode import AudioOptions
from pipeline.audio.enhance import EnhanceOptions
from pipeline.diarization.diarize import DiarizeOptions, Diarizer, check_device, load_diarizer
from pipeline.errors import ConfigError
from pipeline.types import Diarization, Transcript

DIARIZATION_MODEL_NAME = "pyannote/segmentation-3.0 + CAM++ (3D-Speaker), pyannote.audio SpeakerDiarization"


@dataclass(frozen=True)
class PipelineOptions:
    """Every option of a session run (frozen, hashable: also the key of the model cache)."""

    audio: AudioOptions = field(default_factory=AudioOptions)
    transcribe: TranscribeOptions = field(default_factory=TranscribeOptions)
    diarize: DiarizeOptions = field(default_factory=DiarizeOptions)
    #: Front end before ASR and/or diarization (dereverberation, denoiser); off by default.
    enhance: EnhanceOptions = field(default_factory=EnhanceOptions)
    indicators: IndicatorOptions = field(default_factory=IndicatorOptions)
    #: Run transcription and diarization of a session at the same time (two threads).
    overlap_stages: bool = True
    #: Keep the source recording after a successful run (False: delete it once stored and summarised).
    keep_audio: bool = True
    #: Code every turn with the MI process coder (pipeline/codes) and store the MITI summaries.
    process_codes: bool = True


def options_for_device(device: str, base: PipelineOptions | None = None) -> PipelineOptions:
    """``base`` (default options) with transcription and diarization on ``device``.

    ``device`` is ``cpu``, ``cuda`` or ``cuda:N``. On CUDA the faster-whisper backend computes in float16
    and openai-whisper uses fp16.

    Raises
    ------
    ConfigError
        ``device`` is not a device name.
    """
    from dataclasses import replace

    base = base or PipelineOptions()
    parsed = check_device(device)
    if parsed.type == "cpu" and parsed.index is not None:
        raise ConfigError(f"device={device!r} is not 'cpu', 'cuda' or 'cuda:N'")
    return replace(base, transcribe=replace(base.transcribe, device=parsed.type, device_index=parsed.index or 0),
                   diarize=replace(base.diarize, device=device))


class SerialTranscriber:
    """A loaded transcriber shared by the threads of one process, used by one thread at a time.

    Sessions processed in parallel threads then pipeline through the models (one session's
    transcription overlaps another's diarization) while each model is loaded once per process.
    """

    def __init__(self, inner: Transcriber) -> None:
        self._inner, self._lock = inner, threading.Lock()
        self.name, self.model_name = inner.name, inner.model_name

    def transcribe(self, samples: np.ndarray, *, progress=None) -> Transcript:
        with self._lock:
            return self._inner.transcribe(samples, progress=progress)


class SerialDiarizer:
    """A loaded diarizer used by one thread at a time (see :class:`SerialTranscriber`)."""

    def __init__(self, inner: Diarizer) -> None:
        self._inner, self._lock = inner, threading.Lock()
        self.options = inner.options

    def diarize(self, samples: np.ndarray, *, num_speakers: int | None = None, hook=None) -> Diarization:
        with self._lock:
            return self._inner.diarize(samples, num_speakers=num_speakers, hook=hook)


_LOAD_LOCK = threading.Lock()


def get_transcriber(options: TranscribeOptions) -> SerialTranscriber:
    """The transcriber for these options, loaded once per process from the verified model cache."""
    with _LOAD_LOCK:
        return _load_transcriber(options)


def get_diarizer(options: DiarizeOptions) -> SerialDiarizer:
    """The diarizer for these options, loaded once per process from the verified model cache."""
    with _LOAD_LOCK:
        return _load_diarizer(options)


@lru_cache(maxsize=2)
def _load_transcriber(options: TranscribeOptions) -> SerialTranscriber:
    from models.store import require

    ct2_dir = require("whisper-base-ct2")
    checkpoint = moonshine_dir = None
    if options.backend == "openai-whisper":
        checkpoint = require("whisper-base-openai") / "whisper-base.pt"
    if options.backend in ("moonshine", "rover"):
        moonshine_dir = require("moonshine-base-ort")
    return SerialTranscriber(load_transcriber(ct2_dir=ct2_dir, openai_checkpoint=checkpoint, options=options,
                                              moonshine_dir=moonshine_dir))


@lru_cache(maxsize=2)
def _load_diarizer(options: DiarizeOptions) -> SerialDiarizer:
    from models.store import require

    seg = require("pyannote-segmentation-3.0")
    emb = require("campplus-embedding")
    return SerialDiarizer(load_diarizer(
        segmentation_path=seg / "pytorch_model.bin",
        embedding_path=emb / "campplus_cn_en_common.pt",
        campplus_module_path=emb / "camplusplus.py",
        options=options,
    ))


@lru_cache(maxsize=1)
def get_nlp() -> Any:
    """The spaCy English pipeline (pinned registry package), loaded once per process."""
    import spacy

    from models.store import load_manifest, require_python_package

    name = require_python_package(load_manifest()["spacy-en-core-web-sm"])
    return spacy.load(name, exclude=["ner"])


@lru_cache(maxsize=1)
def get_process_coder() -> tuple[Any, Any]:
    """The MI process coder shipped with the package and its frozen sentence encoder, loaded once per process."""
    import transformers

    from pipeline.codes.coder import load_coder
    from pipeline.codes.encoder import load_encoder

    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()
    return load_coder(), load_encoder()


def models_description(options: PipelineOptions) -> dict[str, str]:
    """What a run used, stored in ``pipeline_runs.models``."""
    t = options.transcribe
    d = options.diarize
    return {
        "asr": _asr_description(t),
        "diarization": f"{DIARIZATION_MODEL_NAME}, segmentation_step={d.segmentation_step}, "
        f"clustering_threshold={d.clustering_threshold}",
        "markers": f"markers {MARKERS_VERSION} (pipeline/lexicons/*.json), spaCy en_core_web_sm 3.8.0",
        "process_codes": _coder_description() if options.process_codes else "off",
    }


def _asr_description(t: Any) -> str:
    """The recogniser as run: a beam only where the backend has one (rover fixes its parts' beams)."""
    if t.backend == "moonshine":
        return f"moonshine-base (per speech region; word times by whisper-base, compute_type={t.resolved_compute_type})"
    if t.backend == "rover":
        return (f"rover (whisper-base beam_size=5 + whisper-base beam_size=1 + moonshine-base, "
                f"compute_type={t.resolved_compute_type})")
    return f"whisper-base ({t.backend}, compute_type={t.resolved_compute_type}, beam_size={t.beam_size})"


def _coder_description() -> str:
    from pipeline.codes.coder import read_card

    try:
        card = read_card()
    except Exception as e:  # noqa: BLE001 - described, not raised: the run reports the stage error
        return f"process coder unavailable ({e})"
    return f"process coder {card.get('version')} (sha256 {card.get('artefact_sha256', '')[:12]}), all-MiniLM-L6-v2"
