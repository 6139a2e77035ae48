"""Offline conversion of a CTranslate2 Whisper model into an openai-whisper checkpoint.

faster-whisper runs Whisper from a CTranslate2 (CT2) folder (``model.bin``, ``config.json``,
``tokenizer.json``, ``vocabulary.txt``). openai-whisper needs a PyTorch checkpoint
``{"dims": {...}, "model_state_dict": {...}}``. The weights are the same numbers under other names,
so the conversion is lossless: no tensor is re-quantised or cast (a float16 CT2 file gives a float16
checkpoint), and a file whose tensors are quantised (int8, int16) is refused.

CT2 ``model.bin`` layout (binary versions 4 to 6, all integers little-endian)
-------------------------------------------------------------------------------
::

    uint32   binary_version                  # 6 for files written by CTranslate2 >= 3.x
    string   spec_name                       # "WhisperSpec"
    uint32   spec_revision                   # 3
    uint32   num_variables
    num_variables times:
        string   name                        # e.g. "encoder/layer_0/self_attention/linear_0/weight"
        uint8    rank
        uint32   dims[rank]                  # row-major shape; rank 0 is a scalar
        uint8    dtype_id                    # 0 float32, 1 int8, 2 int16, 3 int32, 4 float16, 5 bfloat16
        uint32   num_bytes
        bytes    data[num_bytes]             # C-ordered values
    uint32   num_aliases
    num_aliases times:
        string   alias                       # e.g. "decoder/projection/weight"
        string   target                      # e.g. "decoder/embeddings/weight"

    string = uint16 length (bytes, including the terminating NUL), UTF-8 bytes, NUL

Quantised files keep int8/int16 ``.../weight`` tensors next to float32 ``.../weight_scale`` ones.
Small int8/int16 scalars (``decoder/pre_norm``, ``encoder/num_heads``...) are flags, not weights.

Name mapping (``N`` = layer index; CT2 linear weights are ``(out_features, in_features)``, as in torch)
------------------------------------------------------------------------------------------------------
=====================================================  =================================================
CT2                                                    openai-whisper
=====================================================  =================================================
``encoder/conv{1,2}/{weight,bias}``                    ``encoder.conv{1,2}.{weight,bias}``
``encoder/position_encodings/encodings``               ``encoder.positional_embedding``
``encoder/layer_N/self_attention/linear_0``            ``encoder.blocks.N.attn.{query,key,value}``
                                                       (fused rows q|k|v; the key has no bias, its slice
                                                       of the fused bias must be zero)
``encoder/layer_N/self_attention/linear_1``            ``encoder.blocks.N.attn.out``
``encoder/layer_N/self_attention/layer_norm``          ``encoder.blocks.N.attn_ln``
``encoder/layer_N/ffn/linear_{0,1}``                   ``encoder.blocks.N.mlp.{0,2}``
``encoder/layer_N/ffn/layer_norm``                     ``encoder.blocks.N.mlp_ln``
``encoder/layer_norm``                                 ``encoder.ln_post``
``decoder/embeddings/weight``                          ``decoder.token_embedding.weight``
``decoder/position_encodings/encodings``               ``decoder.positional_embedding``
``decoder/layer_N/self_attention/linear_0``            ``decoder.blocks.N.attn.{query,key,value}``
``decoder/layer_N/self_attention/linear_1``            ``decoder.blocks.N.attn.out``
``decoder/layer_N/self_attention/layer_norm``          ``decoder.blocks.N.attn_ln``
``decoder/layer_N/attention/linear_0``                 ``decoder.blocks.N.cross_attn.query``
``decoder/layer_N/attention/linear_1``                 ``decoder.blocks.N.cross_attn.{key,value}``
                                                       (fused rows k|v; the key has no bias)
``decoder/layer_N/attention/linear_2``                 ``decoder.blocks.N.cross_attn.out``
``decoder/layer_N/attention/layer_norm``               ``decoder.blocks.N.cross_attn_ln``
``decoder/layer_N/ffn/...``                            ``decoder.blocks.N.mlp...`` / ``mlp_ln``
``decoder/layer_norm``                                 ``decoder.ln``
=====================================================  =================================================

Layer norms are ``gamma`` (weight) and ``beta`` (bias). ``decoder/projection/weight`` is an alias of the
token embedding (openai-whisper ties them too).
"""

from __future__ import annotations

import base64
import gzip
import json
import os
import re
import struct
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np

from pipeline.errors import ModelError, ModelMissingError

__all__ = [
    "Ct2Model",
    "alignment_heads_dump",
    "alignment_heads_for",
    "convert_ct2_to_openai",
    "model_name_for",
    "read_ct2_model",
]

MODEL_FILE = "model.bin"
CONFIG_FILE = "config.json"
SUPPORTED_BINARY_VERSIONS = range(4, 7)
WHISPER_SPEC_NAME = "WhisperSpec"

# CT2 DataType enum (include/ctranslate2/types.h); None marks types numpy cannot hold directly.
_DTYPE_NAMES = ("float32", "int8", "int16", "int32", "float16", "bfloat16")
_NUMPY_DTYPES = {
    "float32": np.dtype("<f4"),
    "int8": np.dtype("i1"),
    "int16": np.dtype("<i2"),
    "int32": np.dtype("<i4"),
    "float16": np.dtype("<f2"),
    "bfloat16": np.dtype("<u2"),  # raw bits; widened to float32 exactly by _as_float
}
_FLOAT_DTYPES = frozenset({"float32", "float16", "bfloat16"})
# (n_text_layer, n_text_state) -> size name of the released Whisper models.
_SIZE_NAMES = {(4, 384): "tiny", (6, 512): "base", (12, 768): "small", (24, 1024): "medium", (32, 1280): "large"}
_ENGLISH_ONLY_VOCAB = 51864
_LARGE_V3_VOCAB = 51866
_LAYER_RE = re.compile(r"^(encoder|decoder)/layer_(\d+)/")


@dataclass(frozen=True)
class Ct2Model:
    """The variables of a CT2 ``model.bin``.

    Attributes
    ----------
    path : Path
        The file they were read from.
    binary_version, spec_revision : int
    spec_name : str
    arrays : dict[str, np.ndarray]
        Variable name -> values with their stored shape (bfloat16 held as raw ``uint16`` bits).
    dtypes : dict[str, str]
        Variable name -> CT2 dtype name (``"float16"``, ``"int8"``...).
    shapes : dict[str, tuple[int, ...]]
        Variable name -> stored shape (also known when the data was skipped).
    aliases : dict[str, str]
        Alias name -> name of the variable it stands for.
    """

    path: Path
    binary_version: int
    spec_name: str
    spec_revision: int
    arrays: dict[str, np.ndarray]
    dtypes: dict[str, str]
    shapes: dict[str, tuple[int, ...]]
    aliases: dict[str, str]


class _Reader:
    """Sequential little-endian reader over a binary file, raising ModelError on truncation."""

    def __init__(self, file: BinaryIO, path: Path) -> None:
        self._file = file
        self._path = path

    def take(self, num_bytes: int) -> bytearray:
        data = bytearray(num_bytes)  # writable, so torch.from_numpy does not warn
        if self._file.readinto(data) != num_bytes:
            raise ModelError(f"{self._path} is truncated: needed {num_bytes} bytes at offset {self._file.tell()}")
        return data

    def skip(self, num_bytes: int) -> None:
        self._file.seek(num_bytes, os.SEEK_CUR)

    def unpack(self, fmt: str) -> int:
        (value,) = struct.unpack("<" + fmt, self.take(struct.calcsize("<" + fmt)))
        return int(value)

    def string(self) -> str:
        length = self.unpack("H")
        raw = bytes(self.take(length))
        if length == 0 or raw[-1] != 0:
            raise ModelError(f"{self._path}: malformed string ending at offset {self._file.tell()}")
        return raw[:-1].decode("utf-8")

    def at_end(self) -> bool:
        return self._file.read(1) == b""


def read_ct2_model(model_bin: Path, *, scalars_only: bool = False) -> Ct2Model:
    """Parse a CTranslate2 ``model.bin`` (layout in the module docstring).

    Parameters
    ----------
    model_bin : Path
        Path of the ``model.bin`` file.
    scalars_only : bool
        If True, skip the data of every variable of rank >= 1: its array is then an empty
        placeholder of the right dtype (shape ``(0,)``), and its shape is still in ``shapes``.

    Returns
    -------
    Ct2Model
        Every variable as a numpy array, each in its own buffer.

    Raises
    ------
    ModelMissingError
        If the file does not exist.
    ModelError
        If the binary version is unsupported, the file is truncated or has trailing bytes,
        or a variable has an unknown dtype or a size that does not match its shape.
    """
    model_bin = Path(model_bin)
    if not model_bin.is_file():
        raise ModelMissingError(f"CTranslate2 model file not found: {model_bin}")
    with model_bin.open("rb") as f:
        reader = _Reader(f, model_bin)
        version = reader.unpack("I")
        if version not in SUPPORTED_BINARY_VERSIONS:
            raise ModelError(
                f"{model_bin}: CTranslate2 binary version {version} is not supported "
                f"(supported: {SUPPORTED_BINARY_VERSIONS.start} to {SUPPORTED_BINARY_VERSIONS.stop - 1})"
            )
        spec_name = reader.string()
        spec_revision = reader.unpack("I")
        arrays: dict[str, np.ndarray] = {}
        dtypes: dict[str, str] = {}
        shapes: dict[str, tuple[int, ...]] = {}
        for _ in range(reader.unpack("I")):
            name, dtype_name, shape, array = _read_variable(reader, model_bin, scalars_only=scalars_only)
            arrays[name], dtypes[name], shapes[name] = array, dtype_name, shape
        aliases = {}
        for _ in range(reader.unpack("I")):
            alias = reader.string()
            aliases[alias] = reader.string()
        if not reader.at_end():
            raise ModelError(f"{model_bin}: unexpected bytes after the last alias")
    return Ct2Model(model_bin, version, spec_name, spec_revision, arrays, dtypes, shapes, aliases)


def _read_variable(reader: _Reader, path: Path, *, scalars_only: bool) -> tuple[str, str, tuple[int, ...], np.ndarray]:
    name = reader.string()
    shape = tuple(reader.unpack("I") for _ in range(reader.unpack("B")))
    dtype_id = reader.unpack("B")
    if dtype_id >= len(_DTYPE_NAMES):
        raise ModelError(f"{path}: variable {name!r} has unknown dtype id {dtype_id}")
    dtype_name = _DTYPE_NAMES[dtype_id]
    num_bytes = reader.unpack("I")
    np_dtype = _NUMPY_DTYPES[dtype_name]
    expected = int(np.prod(shape, dtype=np.int64)) * np_dtype.itemsize
    if num_bytes != expected:
        raise ModelError(
            f"{path}: variable {name!r} holds {num_bytes} bytes, but shape {shape} of {dtype_name} needs {expected}"
        )
    if scalars_only and shape:
        reader.skip(num_bytes)
        return name, dtype_name, shape, np.empty((0,), dtype=np_dtype)
    return name, dtype_name, shape, np.frombuffer(reader.take(num_bytes), dtype=np_dtype).reshape(shape)


# --------------------------------------------------------------------------- checks and dims


def _refuse_quantised(model: Ct2Model) -> None:
    """Raise ModelError if any weight tensor is not a float type (i.e. the file is quantised)."""
    for name, dtype_name in model.dtypes.items():
        is_tensor = len(model.shapes[name]) > 0
        if name.endswith("_scale") or (is_tensor and dtype_name not in _FLOAT_DTYPES):
            raise ModelError(
                f"{model.path} is quantised ({name!r} is {dtype_name}); an openai-whisper checkpoint "
                "needs float16 or float32 weights and converting back would not be lossless. "
                "Use a float16/float32 CTranslate2 conversion of the model."
            )


def _layer_count(model: Ct2Model, stack: str) -> int:
    indices = {int(m.group(2)) for n in model.arrays if (m := _LAYER_RE.match(n)) and m.group(1) == stack}
    if indices != set(range(len(indices))) or not indices:
        raise ModelError(f"{model.path}: {stack} layers are missing or not numbered 0..N-1: {sorted(indices)}")
    return len(indices)


def _require(model: Ct2Model, name: str) -> np.ndarray:
    try:
        return model.arrays[name]
    except KeyError:
        raise ModelError(f"{model.path}: variable {name!r} is missing (incomplete or not a Whisper model)") from None


def _dims(model: Ct2Model) -> dict[str, int]:
    """openai-whisper ``ModelDimensions`` fields, read off the tensor shapes and head counts."""
    conv1 = _require(model, "encoder/conv1/weight")  # shape: (n_audio_state, n_mels, 3)
    audio_pos = _require(model, "encoder/position_encodings/encodings")  # (n_audio_ctx, n_audio_state)
    embeddings = _require(model, "decoder/embeddings/weight")  # (n_vocab, n_text_state)
    text_pos = _require(model, "decoder/position_encodings/encodings")  # (n_text_ctx, n_text_state)
    return {
        "n_mels": int(conv1.shape[1]),
        "n_audio_ctx": int(audio_pos.shape[0]),
        "n_audio_state": int(conv1.shape[0]),
        "n_audio_head": int(_require(model, "encoder/num_heads")),
        "n_audio_layer": _layer_count(model, "encoder"),
        "n_vocab": int(embeddings.shape[0]),
        "n_text_ctx": int(text_pos.shape[0]),
        "n_text_state": int(embeddings.shape[1]),
        "n_text_head": int(_require(model, "decoder/num_heads")),
        "n_text_layer": _layer_count(model, "decoder"),
    }


# --------------------------------------------------------------------------- name mapping


def _as_float(model: Ct2Model, name: str) -> np.ndarray:
    """Return a variable's values in its own float dtype (bfloat16 widened exactly to float32)."""
    array = _require(model, name)
    if model.dtypes[name] == "bfloat16":
        return (array.astype(np.uint32) << 16).view(np.float32)
    return array


def _linear(model: Ct2Model, src: str, dst: str) -> dict[str, np.ndarray]:
    return {f"{dst}.weight": _as_float(model, f"{src}/weight"), f"{dst}.bias": _as_float(model, f"{src}/bias")}


def _layer_norm(model: Ct2Model, src: str, dst: str) -> dict[str, np.ndarray]:
    return {f"{dst}.weight": _as_float(model, f"{src}/gamma"), f"{dst}.bias": _as_float(model, f"{src}/beta")}


def _fused(model: Ct2Model, src: str, dsts: tuple[str, ...], no_bias: str) -> dict[str, np.ndarray]:
    """Split a fused projection (rows stacked in ``dsts`` order) into one linear per name.

    ``no_bias`` names the projection that has no bias in openai-whisper (the key); its slice of the
    fused bias must be all zeros, or the split would lose information.
    """
    weight = _as_float(model, f"{src}/weight")  # shape: (len(dsts) * n_state, n_state)
    bias = _as_float(model, f"{src}/bias")  # shape: (len(dsts) * n_state,)
    n_state = weight.shape[1]
    if weight.shape[0] != len(dsts) * n_state or bias.shape != (weight.shape[0],):
        raise ModelError(f"{model.path}: {src} has shape {weight.shape}, expected ({len(dsts)}*{n_state}, {n_state})")
    out: dict[str, np.ndarray] = {}
    for i, dst in enumerate(dsts):
        rows = slice(i * n_state, (i + 1) * n_state)
        out[f"{dst}.weight"] = weight[rows].copy()
        if dst == no_bias:
            if np.any(bias[rows] != 0):
                raise ModelError(f"{model.path}: {src} has a non-zero key bias, which openai-whisper cannot hold")
        else:
            out[f"{dst}.bias"] = bias[rows].copy()
    return out


def _encoder_layer(model: Ct2Model, i: int) -> dict[str, np.ndarray]:
    src, dst = f"encoder/layer_{i}", f"encoder.blocks.{i}"
    attn = (f"{dst}.attn.query", f"{dst}.attn.key", f"{dst}.attn.value")
    return {
        **_fused(model, f"{src}/self_attention/linear_0", attn, no_bias=attn[1]),
        **_linear(model, f"{src}/self_attention/linear_1", f"{dst}.attn.out"),
        **_layer_norm(model, f"{src}/self_attention/layer_norm", f"{dst}.attn_ln"),
        **_linear(model, f"{src}/ffn/linear_0", f"{dst}.mlp.0"),
        **_linear(model, f"{src}/ffn/linear_1", f"{dst}.mlp.2"),
        **_layer_norm(model, f"{src}/ffn/layer_norm", f"{dst}.mlp_ln"),
    }


def _decoder_layer(model: Ct2Model, i: int) -> dict[str, np.ndarray]:
    src, dst = f"decoder/layer_{i}", f"decoder.blocks.{i}"
    attn = (f"{dst}.attn.query", f"{dst}.attn.key", f"{dst}.attn.value")
    cross_kv = (f"{dst}.cross_attn.key", f"{dst}.cross_attn.value")
    return {
        **_fused(model, f"{src}/self_attention/linear_0", attn, no_bias=attn[1]),
        **_linear(model, f"{src}/self_attention/linear_1", f"{dst}.attn.out"),
        **_layer_norm(model, f"{src}/self_attention/layer_norm", f"{dst}.attn_ln"),
        **_linear(model, f"{src}/attention/linear_0", f"{dst}.cross_attn.query"),
        **_fused(model, f"{src}/attention/linear_1", cross_kv, no_bias=cross_kv[0]),
        **_linear(model, f"{src}/attention/linear_2", f"{dst}.cross_attn.out"),
        **_layer_norm(model, f"{src}/attention/layer_norm", f"{dst}.cross_attn_ln"),
        **_linear(model, f"{src}/ffn/linear_0", f"{dst}.mlp.0"),
        **_linear(model, f"{src}/ffn/linear_1", f"{dst}.mlp.2"),
        **_layer_norm(model, f"{src}/ffn/layer_norm", f"{dst}.mlp_ln"),
    }


def _state_dict(model: Ct2Model, dims: dict[str, int]) -> dict[str, np.ndarray]:
    """All openai-whisper parameters and persistent buffers, in a fixed order."""
    state: dict[str, np.ndarray] = {
        **_linear(model, "encoder/conv1", "encoder.conv1"),
        **_linear(model, "encoder/conv2", "encoder.conv2"),
        "encoder.positional_embedding": _as_float(model, "encoder/position_encodings/encodings"),
    }
    for i in range(dims["n_audio_layer"]):
        state.update(_encoder_layer(model, i))
    state.update(_layer_norm(model, "encoder/layer_norm", "encoder.ln_post"))
    state["decoder.token_embedding.weight"] = _as_float(model, "decoder/embeddings/weight")
    state["decoder.positional_embedding"] = _as_float(model, "decoder/position_encodings/encodings")
    for i in range(dims["n_text_layer"]):
        state.update(_decoder_layer(model, i))
    state.update(_layer_norm(model, "decoder/layer_norm", "decoder.ln"))
    return state


def _check_tied_projection(model: Ct2Model) -> None:
    """openai-whisper ties the output projection to the token embedding; CT2 must do the same."""
    target = model.aliases.get("decoder/projection/weight")
    if "decoder/projection/weight" in model.arrays:
        tied = np.array_equal(model.arrays["decoder/projection/weight"], model.arrays["decoder/embeddings/weight"])
    else:
        tied = target in (None, "decoder/embeddings/weight")
    if not tied:
        raise ModelError(f"{model.path}: output projection is not tied to the token embedding")


# --------------------------------------------------------------------------- public API


def convert_ct2_to_openai(ct2_dir: Path, out_path: Path) -> Path:
    """Convert a CT2 Whisper folder into an openai-whisper checkpoint, losslessly.

    The checkpoint keeps the tensors' dtype (float16 stays float16). The file is written to a
    temporary file next to ``out_path`` and renamed into place, so a reader never sees half a file.
    The same input always gives a byte-identical output.

    Parameters
    ----------
    ct2_dir : Path
        Folder holding the CT2 ``model.bin``.
    out_path : Path
        Where to write the checkpoint (parent folders are created).

    Returns
    -------
    Path
        ``out_path``, loadable by ``whisper.load_model(str(out_path), device="cpu")``.

    Raises
    ------
    ModelMissingError
        If ``ct2_dir/model.bin`` does not exist.
    ModelError
        If the file is not a float Whisper CT2 model (quantised, truncated, wrong spec, missing
        or misshapen tensors).
    """
    import torch  # heavy; only needed here

    model = read_ct2_model(Path(ct2_dir) / MODEL_FILE)
    if model.spec_name != WHISPER_SPEC_NAME:
        raise ModelError(f"{model.path} is a {model.spec_name!r} model, not {WHISPER_SPEC_NAME!r}")
    _refuse_quantised(model)
    _check_tied_projection(model)
    dims = _dims(model)
    state = {name: torch.from_numpy(array) for name, array in _state_dict(model, dims).items()}
    checkpoint = {"dims": dims, "model_state_dict": state}
    out_path = Path(out_path)
    _atomic_write(out_path, lambda f: torch.save(checkpoint, f))
    return out_path


def _atomic_write(out_path: Path, write: Callable[[BinaryIO], None]) -> None:
    """Write through ``write(file)`` into a temporary sibling of ``out_path``, then rename it."""
    out_path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{out_path.name}.", suffix=".tmp", dir=out_path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)  # a file object, not a name: torch.save then names its archive "archive"
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp_name, 0o644)  # mkstemp creates 0600; a checkpoint is not secret
        os.replace(tmp_name, out_path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise


def alignment_heads_for(ct2_dir: Path) -> np.ndarray:
    """Read the cross-attention heads used for word timing from the CT2 ``config.json``.

    Parameters
    ----------
    ct2_dir : Path
        Folder holding ``config.json`` (and ``model.bin``, read for the layer and head counts).

    Returns
    -------
    np.ndarray, shape (n_text_layer, n_text_head), bool
        True at ``[layer, head]`` for each alignment head.

    Raises
    ------
    ModelMissingError
        If ``config.json`` or ``model.bin`` is missing.
    ModelError
        If ``config.json`` has no ``alignment_heads`` or names a head outside the model.
    """
    n_layers, n_heads = _decoder_shape(Path(ct2_dir) / MODEL_FILE)
    config_path = Path(ct2_dir) / CONFIG_FILE
    if not config_path.is_file():
        raise ModelMissingError(f"CTranslate2 config not found: {config_path}")
    try:
        pairs = json.loads(config_path.read_text(encoding="utf-8"))["alignment_heads"]
    except (KeyError, json.JSONDecodeError) as e:
        raise ModelError(f"{config_path} has no readable 'alignment_heads': {e}") from e
    mask = np.zeros((n_layers, n_heads), dtype=bool)
    for pair in pairs or ():
        layer, head = (int(v) for v in pair)
        if not (0 <= layer < n_layers and 0 <= head < n_heads):
            raise ModelError(f"{config_path}: alignment head {pair} is outside {n_layers} layers x {n_heads} heads")
        mask[layer, head] = True
    if not mask.any():
        raise ModelError(f"{config_path}: 'alignment_heads' is empty")
    return mask


def alignment_heads_dump(mask: np.ndarray) -> bytes:
    """Encode an alignment-head mask the way ``Whisper.set_alignment_heads`` expects it.

    openai-whisper decodes ``np.frombuffer(gzip.decompress(base64.b85decode(dump)), dtype=bool)``
    and reshapes it to ``(n_text_layer, n_text_head)``.

    Parameters
    ----------
    mask : np.ndarray, shape (n_text_layer, n_text_head), bool

    Returns
    -------
    bytes
        base85 text of the gzip-compressed (fixed mtime, so deterministic) row-major mask bytes.
    """
    raw = np.ascontiguousarray(mask, dtype=bool).tobytes()
    return base64.b85encode(gzip.compress(raw, mtime=0))


def _decoder_shape(model_bin: Path) -> tuple[int, int]:
    """(n_text_layer, n_text_head) of a CT2 Whisper model."""
    model = read_ct2_model(model_bin, scalars_only=True)
    return _layer_count(model, "decoder"), int(_require(model, "decoder/num_heads"))


def model_name_for(ct2_dir: Path) -> str:
    """Name a CT2 Whisper model from its shapes (no tensor data is loaded).

    Parameters
    ----------
    ct2_dir : Path
        Folder holding ``model.bin``.

    Returns
    -------
    str
        ``"whisper-base"``, ``"whisper-tiny.en"``, ``"whisper-large-v3"``...; for a shape that matches no
        released size, ``"whisper-<layers>x<width>"``.

    Raises
    ------
    ModelMissingError, ModelError
        As :func:`read_ct2_model`.
    """
    model = read_ct2_model(Path(ct2_dir) / MODEL_FILE, scalars_only=True)
    n_vocab, n_state = _require_shape(model, "decoder/embeddings/weight")
    n_layers = _layer_count(model, "decoder")
    size = _SIZE_NAMES.get((n_layers, n_state), f"{n_layers}x{n_state}")
    if n_vocab == _ENGLISH_ONLY_VOCAB:
        size += ".en"
    elif n_vocab == _LARGE_V3_VOCAB and size == "large":
        size += "-v3"
    return f"whisper-{size}"


def _require_shape(model: Ct2Model, name: str) -> tuple[int, ...]:
    _require(model, name)
    return model.shapes[name]
