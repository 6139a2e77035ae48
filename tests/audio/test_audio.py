"""Boundary validation of recordings, on generated signals."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
from conftest import tone

from pipeline.audio.decode import AudioOptions, load_audio
from pipeline.errors import (
    AudioEmptyError,
    AudioMissingError,
    AudioSilentError,
    AudioTooShortError,
    AudioUnreadableError,
    ConfigError,
)


@pytest.mark.parametrize("fmt, subtype", [("wav", "PCM_16"), ("flac", "PCM_16"), ("ogg", "VORBIS"), ("mp3", None)])
def test_formats_decode_to_16k_mono(tmp_path, fmt, subtype):
    path = tmp_path / f"x.{fmt}"
    sf.write(path, tone(2.0, rate=44_100, channels=2), 44_100, format=fmt.upper(), subtype=subtype)
    audio = load_audio(path)
    assert audio.sample_rate_hz == 16_000 and audio.samples.ndim == 1 and audio.samples.dtype == np.float32
    assert audio.duration_s == pytest.approx(2.0, abs=0.06)
    assert audio.source_channels == 2 and audio.source_sample_rate_hz == 44_100
    assert len(audio.sha256) == 64


def test_8k_telephone_audio_is_upsampled(tmp_path):
    path = tmp_path / "tel.wav"
    sf.write(path, tone(2.0, rate=8_000), 8_000)
    assert load_audio(path).duration_s == pytest.approx(2.0, abs=0.01)


def test_same_bytes_same_key(tmp_path, tone_wav):
    copy = tmp_path / "copy name with spaces é.wav"
    copy.write_bytes(tone_wav.read_bytes())
    assert load_audio(copy).sha256 == load_audio(tone_wav).sha256


def test_missing(tmp_path):
    with pytest.raises(AudioMissingError, match="nope.wav"):
        load_audio(tmp_path / "nope.wav")


def test_zero_bytes(tmp_path):
    (tmp_path / "empty.wav").write_bytes(b"")
    with pytest.raises(AudioEmptyError, match="0 bytes"):
        load_audio(tmp_path / "empty.wav")


def test_not_audio(tmp_path):
    path = tmp_path / "notes.wav"
    path.write_text("this is a text file, not a recording\n" * 20)
    with pytest.raises(AudioUnreadableError, match="notes.wav"):
        load_audio(path)


def test_truncated_wav(tmp_path, tone_wav):
    data = tone_wav.read_bytes()
    path = tmp_path / "cut.wav"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(AudioUnreadableError, match="truncated"):
        load_audio(path)


def test_truncated_flac(tmp_path):
    full = tmp_path / "full.flac"
    sf.write(full, tone(3.0), 16_000)
    path = tmp_path / "cut.flac"
    path.write_bytes(full.read_bytes()[:600])
    with pytest.raises((AudioUnreadableError, AudioEmptyError, AudioTooShortError)):
        load_audio(path)


def test_wrong_extension_is_decoded_by_content(tmp_path):
    path = tmp_path / "really_flac.wav"
    sf.write(path, tone(2.0), 16_000, format="FLAC")
    assert load_audio(path).source_format == "FLAC"


def test_header_only_wav_is_empty(tmp_path):
    path = tmp_path / "header.wav"
    sf.write(path, np.zeros(0, dtype=np.float32), 16_000)
    with pytest.raises(AudioEmptyError):
        load_audio(path)


def test_too_short(tmp_path):
    path = tmp_path / "short.wav"
    sf.write(path, tone(0.3), 16_000)
    with pytest.raises(AudioTooShortError, match="0.30 s"):
        load_audio(path)


def test_silent(tmp_path):
    path = tmp_path / "silence.wav"
    rng = np.random.default_rng(0)
    sf.write(path, (1e-4 * rng.standard_normal(16_000 * 5)).astype(np.float32), 16_000)
    with pytest.raises(AudioSilentError, match="silent"):
        load_audio(path)


def test_digital_zero_is_silent(tmp_path):
    path = tmp_path / "zeros.wav"
    sf.write(path, np.zeros(16_000 * 5, dtype=np.float32), 16_000)
    with pytest.raises(AudioSilentError):
        load_audio(path)


def test_clipped_audio_is_accepted_and_bounded(tmp_path):
    path = tmp_path / "clipped.wav"
    sf.write(path, np.clip(tone(2.0, level=3.0), -1, 1), 16_000)
    audio = load_audio(path)
    assert np.abs(audio.samples).max() <= 1.0


def test_options_validated():
    with pytest.raises(ConfigError, match="-1"):
        AudioOptions(min_duration_s=-1)


# --------------------------------------------------------------------------------------------- round 3


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nan_or_infinite_samples_fail_at_decode_with_their_own_code(tmp_path, bad):
    from pipeline.errors import AudioNonFiniteError

    samples = tone(3.0)
    samples[16_000 * 2] = bad
    path = tmp_path / "broken.wav"
    sf.write(path, samples, 16_000, subtype="FLOAT")
    with pytest.raises(AudioNonFiniteError, match=r"broken.wav: NaN or infinite samples \(first at 2.00 s\)") as e:
        load_audio(path)
    assert e.value.code == "audio_not_finite"


@pytest.mark.parametrize("fmt, subtype", [("wav", "PCM_16"), ("flac", "PCM_16")])
def test_phase_inverted_stereo_is_not_silent_one_channel_is_used(tmp_path, fmt, subtype):
    left = tone(3.0, rate=44_100)
    path = tmp_path / f"inverted.{fmt}"
    sf.write(path, np.stack([left, -left], axis=1), 44_100, format=fmt.upper(), subtype=subtype)
    audio = load_audio(path)  # the down-mix is all zeros: it used to be refused as silent
    reference = tmp_path / "left.wav"
    sf.write(reference, left, 44_100, subtype=subtype)
    mono = load_audio(reference).samples
    assert audio.source_channels == 2 and np.max(np.abs(audio.samples - mono)) < 1e-3


def test_ordinary_stereo_is_still_the_mean_of_its_channels(tmp_path):
    rng = np.random.default_rng(1)
    left, right = tone(3.0), (0.2 * rng.standard_normal(48_000)).astype(np.float32)
    path = tmp_path / "two.wav"
    sf.write(path, np.stack([left, right], axis=1), 16_000, subtype="FLOAT")
    assert np.allclose(load_audio(path).samples, np.clip((left + right) / 2, -1, 1), atol=1e-6)
