"""Speaker diarization: pyannote.audio 4 ``SpeakerDiarization``, fully offline.

Segmentation is pyannote segmentation-3.0 (powerset, 10 s windows); speaker embeddings are
CAM++ (:mod:`pipeline.diarization.campplus`); clustering is pyannote's agglomerative
clustering with centroid linkage on cosine distance. Every file is given by path; nothing
is downloaded.

Usage
-----
>>> diarizer = load_diarizer(segmentation_path=..., embedding_path=...,
...                          campplus_module_path=..., options=DiarizeOptions())
>>> diarization = diarizer.diarize(audio.samples)
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from pipeline.diarization.campplus import load_campplus_embedding
from pipeline.errors import AllianceError, AudioEmptyError, ConfigError, ModelError, ModelMissingError, StageError
from pipeline.types import SAMPLE_RATE_HZ, Diarization, SpeakerTurn

with warnings.catch_warnings():
    # pyannote.audio warns on import that torchcodec is unusable; audio is passed in memory
    warnings.filterwarnings("ignore", message=r"\s*torchcodec is not installed correctly")
    from pyannote.audio import Model
    from pyannote.audio.core.plda import PLDA
    from pyannote.audio.pipelines import SpeakerDiarization
    from pyannote.audio.telemetry import metrics as _telemetry

__all__ = ["DiarizeOptions", "Diarizer", "check_device", "closest_centroids", "load_diarizer", "Hook"]

#: pyannote's progress callback: ``hook(step_name, artefact, *, file, total=None, completed=None)``.
Hook = Callable[..., Any]

_STAGE = "diarize"


def _is_int(value: object) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def _check_count(name: str, value: object, *, optional: bool) -> None:
    if value is None and optional:
        return
    if not _is_int(value) or value < 1:
        raise ConfigError(f"{name} must be an integer >= 1{' or None' if optional else ''}; got {value!r}")


def check_device(device: object) -> torch.device:
    """``device`` parsed as a torch device of type ``cpu`` or ``cuda``; anything else is a ConfigError."""
    if not isinstance(device, str):
        raise ConfigError(f"device must be a string such as 'cpu' or 'cuda:0'; got {device!r}")
    try:
        parsed = torch.device(device)
    except (RuntimeError, ValueError) as e:
        raise ConfigError(f"device {device!r} is not a torch device name: {e}") from e
    if parsed.type not in ("cpu", "cuda"):
        raise ConfigError(f"device must be 'cpu' or 'cuda[:N]'; got {device!r}")
    return parsed


@dataclass(frozen=True)
class DiarizeOptions:
    """Settings of the diarizer; validated on construction.

    Attributes
    ----------
    num_speakers : int or None
        Exact number of speakers (2 for a therapy session). None estimates it from the
        clustering threshold, within ``min_speakers``/``max_speakers``. When set, the bounds
        are ignored by the clustering (but must contain it).
    min_speakers, max_speakers : int or None
        Bounds on the estimated number of speakers (used when ``num_speakers`` is None).
    segmentation_step : float
        Step of the 10 s segmentation window as a fraction of its length, in (0, 1].
        Default 0.25 (75 % overlap): measured as accurate as pyannote's 0.1 on the pyannote
        sample (DER 5.6 %) and the 205 s demo session (3.3 %) at about 40 % of its time;
        0.5 is faster again but clustered a 30 s recording wrongly (DER 45 %) with
        ``num_speakers=2``.
    clustering_threshold : float
        Cosine-distance threshold of the centroid-linkage agglomerative clustering, in (0, 2].
        Only decides the number of speakers when ``num_speakers`` is None.
    min_cluster_size : int
        Clusters with fewer (chunk, speaker) embeddings are merged into larger ones.
    embedding_batch_size, segmentation_batch_size : int
        How many (chunk, speaker) rows / chunks go through the networks at once. pyannote
        sends each chunk once per local speaker (3 rows); the embedding runs the network
        once per distinct chunk in a batch, so keep ``embedding_batch_size`` a multiple of 3.
        On 2 CPU cores 3 to 12 was fastest and smallest; 1 is twice as slow, 32 uses 0.7 GB more.
    device : str
        ``"cpu"``, ``"cuda"`` or ``"cuda:N"``.
    embedding_scope : {"file", "chunk"}
        ``"file"`` (default): CAM++ frame features computed once per recording and pooled per
        (chunk, speaker); ``"chunk"``: pyannote's own path, every chunk embedded separately (about 4x the
        embedding work at step 0.25). See :func:`_file_level_pipeline_class` for the measured trade-off.
    """

    num_speakers: int | None = 2
    min_speakers: int | None = None
    max_speakers: int | None = None
    segmentation_step: float = 0.25
    clustering_threshold: float = 0.7
    min_cluster_size: int = 12
    embedding_batch_size: int = 12
    segmentation_batch_size: int = 8
    device: str = "cpu"
    embedding_scope: str = "file"

    def __post_init__(self) -> None:
        if self.embedding_scope not in ("file", "chunk"):
            raise ConfigError(f"embedding_scope must be 'file' or 'chunk', got {self.embedding_scope!r}")
        _check_count("num_speakers", self.num_speakers, optional=True)
        _check_count("min_speakers", self.min_speakers, optional=True)
        _check_count("max_speakers", self.max_speakers, optional=True)
        low = self.min_speakers if self.min_speakers is not None else 1
        high = self.max_speakers if self.max_speakers is not None else math.inf
        if low > high:
            raise ConfigError(
                f"min_speakers={self.min_speakers!r} is greater than max_speakers={self.max_speakers!r}"
            )
        if self.num_speakers is not None and not (low <= self.num_speakers <= high):
            raise ConfigError(
                f"num_speakers={self.num_speakers!r} is outside "
                f"[min_speakers={self.min_speakers!r}, max_speakers={self.max_speakers!r}]"
            )
        step = self.segmentation_step
        if not isinstance(step, (int, float)) or isinstance(step, bool) or not (0.0 < step <= 1.0):
            raise ConfigError(f"segmentation_step must be a fraction in (0, 1]; got {step!r}")
        threshold = self.clustering_threshold
        if (
            not isinstance(threshold, (int, float))
            or isinstance(threshold, bool)
            or not (0.0 < threshold <= 2.0)
        ):
            raise ConfigError(f"clustering_threshold must be in (0, 2]; got {threshold!r}")
        _check_count("min_cluster_size", self.min_cluster_size, optional=False)
        if self.min_cluster_size > 20:
            raise ConfigError(f"min_cluster_size must be <= 20 (pyannote's range); got {self.min_cluster_size!r}")
        _check_count("embedding_batch_size", self.embedding_batch_size, optional=False)
        _check_count("segmentation_batch_size", self.segmentation_batch_size, optional=False)
        check_device(self.device)


class _UnusedPLDA(PLDA):
    """Placeholder for the PLDA that ``SpeakerDiarization.__init__`` always loads.

    pyannote 4 calls ``get_plda(plda)`` unconditionally and rejects None, but only VBx
    clustering uses it. Agglomerative clustering never calls it; if anything ever does,
    it fails loudly instead of silently using a wrong transform.
    """

    def __init__(self) -> None:  # no files: deliberately skips PLDA.__init__
        pass

    def __call__(self, embeddings: np.ndarray) -> np.ndarray:
        raise StageError(_STAGE, "PLDA is not available offline (only agglomerative clustering is supported)")


def _file_level_pipeline_class() -> type:
    """``SpeakerDiarization`` whose embedding step computes CAM++ frame features once per recording.

    pyannote embeds every 10 s chunk separately: at a segmentation step of 0.25 each second of audio goes
    through the embedding network four times (82 % of diarization time on a 10-minute session). Here the
    network's frame features (everything before its statistics pooling) are computed once for the whole
    recording, in 30 s blocks with 3 s of context (kept in half precision), and each (chunk, speaker)
    embedding pools the chunk's frames with that speaker's segmentation mask, exactly as the per-chunk path
    pools its own frames. The difference: filterbanks are mean-normalised per block instead of per chunk,
    and a chunk's edge frames see the audio beyond the chunk. Other embedding models, or
    ``exclude_overlap``, use pyannote's path.
    """
    from pyannote.audio.pipelines import SpeakerDiarization

    from pipeline.diarization.campplus import CampplusEmbedding

    class FileLevelEmbeddingDiarization(SpeakerDiarization):
        def get_embeddings(self, file, binary_segmentations, exclude_overlap=False, hook=None):
            model = getattr(self._embedding, "model_", None)
            if exclude_overlap or not isinstance(model, CampplusEmbedding) or "waveform" not in file:
                return super().get_embeddings(file, binary_segmentations, exclude_overlap=exclude_overlap,
                                              hook=hook)
            data = np.nan_to_num(binary_segmentations.data, nan=0.0).astype(np.float32)
            num_chunks = data.shape[0]
            window = binary_segmentations.sliding_window
            rate = model.hparams.sample_rate
            hop = 2 * rate // 100  # samples per pooling frame
            chunk_samples = int(round(window.duration * rate))
            num_frames = -(-(1 + (chunk_samples - 400) // (hop // 2)) // 2)
            starts = [int(round(window[c].start * rate)) // hop for c in range(num_chunks)]
            device = self._embedding.device
            batch = 16  # chunks per pooling batch: weighted pooling holds (batch, speakers, 512, frames)
            out = np.empty((num_chunks, data.shape[2], model.dimension), dtype=np.float32)
            if hook is not None:
                hook("embeddings", None, total=-(-num_chunks // batch), completed=0)
            with torch.inference_mode():
                features = model.file_features(file["waveform"].to(device))
                for i, lo in enumerate(range(0, num_chunks, batch), 1):
                    hi = min(num_chunks, lo + batch)
                    masks = torch.from_numpy(data[lo:hi].transpose(0, 2, 1).copy()).to(device)
                    out[lo:hi] = model.chunk_embeddings(features, start_frames=starts[lo:hi],
                                                        num_frames=num_frames, masks=masks).cpu().numpy()
                    if hook is not None:
                        hook("embeddings", out[lo:hi], total=-(-num_chunks // batch), completed=i)
            return out

    return FileLevelEmbeddingDiarization


class _HookFailed(Exception):
    """Carries an exception raised by the caller's hook through pyannote unchanged."""


def _wrap_hook(hook: Hook | None) -> Hook | None:
    if hook is None:
        return None

    def wrapped(*args: Any, **kwargs: Any) -> Any:
        try:
            return hook(*args, **kwargs)
        except Exception as e:
            raise _HookFailed() from e

    return wrapped


class Diarizer:
    """A loaded diarization pipeline. Build it with :func:`load_diarizer`.

    Attributes
    ----------
    options : DiarizeOptions
    """

    def __init__(self, pipeline: SpeakerDiarization, options: DiarizeOptions) -> None:
        self._pipeline = pipeline
        self.options = options

    def diarize(
        self,
        samples: np.ndarray,
        *,
        num_speakers: int | None = None,
        hook: Hook | None = None,
    ) -> Diarization:
        """Find who speaks when.

        Parameters
        ----------
        samples : np.ndarray, shape (n_samples,), float32 or float64
            Mono audio at 16 kHz in [-1, 1]. Not modified (a float32 copy is used).
        num_speakers : int, optional
            Exact number of speakers for this recording; None uses ``options.num_speakers``
            (and ``options.min_speakers``/``max_speakers`` when that is None too).
        hook : callable, optional
            Passed to pyannote as its progress hook: called as
            ``hook(step_name, artefact, file=..., total=..., completed=...)`` for the steps
            ``segmentation``, ``speaker_counting``, ``embeddings``, ``discrete_diarization``.
            Exceptions it raises propagate unchanged.

        Returns
        -------
        Diarization
            Overlap-aware turns (two speakers may talk at once), sorted by
            (start_s, end_s, speaker); labels ``SPEAKER_00``, ``SPEAKER_01``, ... in
            pyannote's cluster order. Empty when nobody speaks.

        Raises
        ------
        AudioEmptyError
            ``samples`` has no samples.
        ConfigError
            ``samples`` is not a 1-D float array of finite values, or ``num_speakers`` is invalid.
        StageError
            pyannote failed.
        """
        waveform = _as_waveform(samples)
        if num_speakers is not None:
            _check_count("num_speakers", num_speakers, optional=False)
            bounds: dict[str, int | None] = {"num_speakers": int(num_speakers)}
        else:
            opts = self.options
            bounds = {
                "num_speakers": opts.num_speakers,
                "min_speakers": opts.min_speakers,
                "max_speakers": opts.max_speakers,
            }
        file = {"waveform": waveform, "sample_rate": SAMPLE_RATE_HZ, "uri": "recording"}
        try:
            output = self._pipeline(file, hook=_wrap_hook(hook), **bounds)
        except _HookFailed as e:
            raise e.__cause__ from None  # type: ignore[misc]
        except AllianceError:
            raise
        except Exception as e:  # any pyannote/torch failure is a stage failure
            raise StageError(_STAGE, f"pyannote speaker diarization failed: {type(e).__name__}: {e}") from e
        annotation = output.speaker_diarization
        turns = sorted(
            SpeakerTurn(start_s=float(segment.start), end_s=float(segment.end), speaker=str(label))
            for segment, _, label in annotation.itertracks(yield_label=True)
        )
        speakers = tuple(sorted({t.speaker for t in turns}))
        return Diarization(turns=tuple(turns), speakers=speakers,
                           speaker_distance=closest_centroids(getattr(output, "speaker_embeddings", None),
                                                              list(annotation.labels()), speakers))


def closest_centroids(centroids: np.ndarray | None, labels: list[str], speakers: tuple[str, ...]) -> float | None:
    """Smallest cosine distance between the centroids of two speakers that have turns (None if under two).

    ``centroids`` (shape (n_labels, dim)) are pyannote's ``speaker_embeddings``, one row per label of its
    annotation in ``labels`` order; rows that are all zero or not finite (speakers pyannote padded in) are
    skipped.
    """
    if centroids is None:
        return None
    rows = [np.asarray(centroids[i], dtype=np.float64) for i, label in enumerate(labels)
            if label in speakers and i < len(centroids)]
    rows = [r for r in rows if np.all(np.isfinite(r)) and np.linalg.norm(r) > 0]
    if len(rows) < 2:
        return None
    unit = np.stack([r / np.linalg.norm(r) for r in rows])  # shape: (n_speakers, dim)
    distance = 1.0 - unit @ unit.T
    return round(float(distance[np.triu_indices(len(rows), 1)].min()), 4)


def _as_waveform(samples: np.ndarray) -> torch.Tensor:
    """Validate ``samples`` and return a private float32 (1, n_samples) tensor."""
    if not isinstance(samples, np.ndarray):
        raise ConfigError(f"samples must be a numpy array; got {type(samples).__name__}")
    if samples.ndim != 1:
        raise ConfigError(f"samples must be 1-D (mono); got shape {samples.shape}")
    if not np.issubdtype(samples.dtype, np.floating):
        raise ConfigError(f"samples must be float in [-1, 1]; got dtype {samples.dtype}")
    if samples.size == 0:
        raise AudioEmptyError("samples is empty: nothing to diarize")
    if not np.all(np.isfinite(samples)):
        raise ConfigError("samples contain NaN or infinite values")
    copy = np.array(samples, dtype=np.float32, copy=True)
    return torch.from_numpy(copy).unsqueeze(0)


def load_diarizer(
    *,
    segmentation_path: Path,
    embedding_path: Path,
    campplus_module_path: Path,
    options: DiarizeOptions,
) -> Diarizer:
    """Build the offline diarization pipeline from local model files.

    Also turns pyannote's usage telemetry off for the process (it would otherwise
    send a request per call unless ``PYANNOTE_METRICS_ENABLED=0`` is set).

    Parameters
    ----------
    segmentation_path : Path
        pyannote segmentation-3.0 checkpoint (``pytorch_model.bin``).
    embedding_path : Path
        CAM++ state dict (``campplus_cn_en_common.pt``).
    campplus_module_path : Path
        ``camplusplus.py`` defining ``CAMPPlus``.
    options : DiarizeOptions

    Returns
    -------
    Diarizer

    Raises
    ------
    ModelMissingError
        A model file does not exist.
    ModelError
        A model file cannot be loaded.
    ConfigError
        ``options.device`` names a CUDA device that is not available.
    """
    if not isinstance(options, DiarizeOptions):
        raise ConfigError(f"options must be DiarizeOptions; got {type(options).__name__}")
    device = check_device(options.device)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(f"device={options.device!r} but CUDA is not available")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ConfigError(
                f"device={options.device!r} but only {torch.cuda.device_count()} CUDA device(s) exist"
            )
    _telemetry.set_telemetry_metrics(False)

    segmentation_path = Path(segmentation_path)
    if not segmentation_path.is_file():
        raise ModelMissingError(f"segmentation checkpoint not found: {segmentation_path}")
    try:
        segmentation = Model.from_pretrained(segmentation_path, map_location=torch.device("cpu"))
    except Exception as e:  # corrupt or wrong checkpoint
        raise ModelError(f"cannot load segmentation checkpoint {segmentation_path}: {e}") from e
    if segmentation is None:
        raise ModelError(f"cannot load segmentation checkpoint {segmentation_path}")
    embedding = load_campplus_embedding(weights_path=embedding_path, module_path=campplus_module_path)

    try:
        pipeline_class = _file_level_pipeline_class() if options.embedding_scope == "file" else SpeakerDiarization
        pipeline = pipeline_class(
            segmentation=segmentation,
            segmentation_step=float(options.segmentation_step),
            embedding=embedding,
            embedding_exclude_overlap=False,
            plda=_UnusedPLDA(),
            clustering="AgglomerativeClustering",
            embedding_batch_size=int(options.embedding_batch_size),
            segmentation_batch_size=int(options.segmentation_batch_size),
        )
        pipeline.instantiate(
            {
                "segmentation": {"min_duration_off": 0.0},
                "clustering": {
                    "method": "centroid",
                    "threshold": float(options.clustering_threshold),
                    "min_cluster_size": int(options.min_cluster_size),
                },
            }
        )
        pipeline.to(device)
    except AllianceError:
        raise
    except Exception as e:
        raise ModelError(f"cannot build pyannote SpeakerDiarization: {type(e).__name__}: {e}") from e
    return Diarizer(pipeline, options)
