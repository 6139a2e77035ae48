"""Speech recognition with word timestamps: one interface, two Whisper backends.

``faster-whisper`` runs a CTranslate2 model folder; ``openai-whisper`` runs the same weights converted
losslessly by :func:`models.ct2_whisper.convert_ct2_to_openai`. Both decode at temperature 0 (greedy, or a
deterministic beam search), with word timestamps, and return a :class:`~pipeline.types.Transcript` whose
words are cleaned the same way by :func:`tidy_words`. What the two share (pieces, decoding windows, the
re-decoding of repetitive windows, progress) is :class:`WhisperTranscriber`; each backend supplies only how
it decodes a piece or clips of it, and detects the language.

Models are loaded once by :func:`load_transcriber` and passed to the stages that need them.
Nothing here downloads anything.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Literal, Protocol

import numpy as np

from models.ct2_whisper import alignment_heads_dump, alignment_heads_for, model_name_for
from pipeline.asr.base import (
    MIN_WORD_DURATION_S,
    UNDETERMINED_LANGUAGE,
    Heard,
    ProgressHook,
    Recogniser,
    tidy_words,
)
from pipeline.asr.features import install_blockwise_features
from pipeline.audio.decode import frame_rms_dbfs
from pipeline.errors import ConfigError, ModelError, ModelMissingError
from pipeline.types import SAMPLE_RATE_HZ, Transcript, Word

__all__ = [
    "MIN_WORD_DURATION_S",
    "UNDETERMINED_LANGUAGE",
    "FasterWhisperTranscriber",
    "OpenAIWhisperTranscriber",
    "ProgressHook",
    "TranscribeOptions",
    "Transcriber",
    "WhisperTranscriber",
    "load_transcriber",
    "piece_bounds",
    "tidy_words",
]

Backend = Literal["faster-whisper", "openai-whisper", "moonshine", "rover"]
BACKENDS: tuple[Backend, ...] = ("faster-whisper", "openai-whisper", "moonshine", "rover")
DEVICES = ("cpu", "cuda")
CT2_COMPUTE_TYPES = (
    "default", "auto", "int8", "int8_float32", "int8_float16", "int8_bfloat16",
    "int16", "float16", "bfloat16", "float32",
)  # fmt: skip
_LANGUAGE_RE = re.compile(r"^[a-z]{2,3}$")
PIECE_SEARCH_S = 15.0  # how far before a nominal cut the quietest point is looked for
PIECE_FRAME_S = 0.1  # the energy frame in which the cut is placed


@dataclass(frozen=True)
class TranscribeOptions:
    """How to run speech recognition.

    Attributes
    ----------
    backend : {"faster-whisper", "openai-whisper", "moonshine", "rover"}
        ``moonshine``: Moonshine base text per Silero-VAD region, word times by forced alignment with the
        Whisper model (:mod:`pipeline.asr.moonshine`; English only, CPU only; ``beam_size`` and
        ``condition_on_previous_text`` do not apply). ``rover``: Whisper beam 5, Whisper greedy and Moonshine on
        the whole recording, words combined by ROVER voting (:mod:`pipeline.asr.combine`; needs the Moonshine
        files too; ``beam_size`` does not apply).
    language : str or None
        Language code. Default ``"en"``, the language the marker lexicons support, so a noisy first
        minute cannot switch them off. None detects it: faster-whisper over up to four 30 s windows of
        detected speech (its Silero VAD), openai-whisper from the first 30 s.
    beam_size : int
        1 is greedy decoding; larger values run a (still deterministic) beam search. Default 5: on the realistic
        bench it lowered the word error rate against greedy in every degraded condition (rooms, ventilation
        noise, babble, phone, mp3, overlap, the real sample) within the compute budget
        (docs/realistic_bench.md, "Beam 5 as the default"). Words it emits in digital silence are dropped
        (:func:`pipeline.asr.base.words_heard`).
    compute_type : str
        CTranslate2 compute type (faster-whisper only). The default ``"int8"`` is the CPU choice; on
        ``device="cuda"`` it is replaced by ``"float16"`` (see :attr:`resolved_compute_type`); pass
        ``"int8_float16"`` to run int8 on a GPU.
    cpu_threads : int
        Threads used on CPU. For openai-whisper this sets torch's process-wide thread count.
    device : {"cpu", "cuda"}
    device_index : int
        Which CUDA device (``cuda:N``); ignored on CPU.
    vad_filter : bool
        faster-whisper only: skip non-speech found by its bundled Silero VAD before decoding.
        Off by default. Measured (base, int8): on a 30 s two-speaker clip with 6 s of leading silence it
        cut compute by about 30 % but raised WER from 0.185 to 0.210 and the mean error of utterance
        onsets from 0.09 to 0.13 s; on speech-dense audio (jfk) it added about 20 % compute. It does
        stop the words Whisper invents on pure noise.
    condition_on_previous_text : bool
        Feed the previous window's text as a prompt. Off by default: on the same clip it made faster-whisper
        repeat a sentence at the end (WER 0.185 -> 0.247) and no transcript got better.
    max_compression_ratio : float
        The hallucination guard (gzip ratio; Whisper's own threshold, 2.4). Whisper computes the ratio over a
        whole 30 s decoding window, so a window in which a sentence is said twice looks like a repetition loop:
        a window above the threshold is re-decoded segment by segment (each segment's span alone), and only a
        clip whose own text still compresses above it is dropped and counted (``Transcript.segments_dropped``).
        A sentence said twice is kept (``bench/bench_gates.py``, ``docs/gates.md``). Segments with a high
        no-speech probability and a low average log-probability are already skipped by both backends.
    refine_beam_size : int or None
        faster-whisper sequential decoding only: after greedy decoding, re-decode the low-confidence stretches
        (segments whose average token log-probability is below ``refine_below_logprob``, merged with 0.2 s of
        context) with a beam of this size, and keep the words of whichever pass had the higher average
        log-probability there: "greedy, beam where unsure". None (default): off.
    refine_below_logprob : float
        The confidence below which a greedy segment is re-decoded (default -0.5).
    batch_size : int or None
        faster-whisper only. None: sequential decoding of 30 s windows (faster-whisper's ``WhisperModel.transcribe``).
        A number: faster-whisper's ``BatchedInferencePipeline``, which cuts the recording at pauses found by its
        bundled Silero VAD into chunks of up to 30 s and decodes ``batch_size`` chunks at a time; non-speech
        between chunks is not decoded and ``piece_s`` and ``vad_filter`` do not apply.
    piece_s : float or None
        None (the default) hands the whole recording to the backend in one call. A number cuts longer
        recordings into pieces of at most that many seconds, each cut at the quietest 0.1 s within the last
        ``PIECE_SEARCH_S`` seconds before it (see :func:`piece_bounds`), and transcribes them one by one.
        faster-whisper does not need it: its log-mel features are computed here in blocks
        (:mod:`pipeline.asr.features`; one-shot, they peaked at 4.9 GB on 90 minutes). openai-whisper
        computes its features of the whole input at once on torch (roughly 20 MB per audio minute at
        peak): set ``piece_s`` (e.g. 600) to bound that on long recordings. Cutting costs a little: on a
        60-minute render, 600 s pieces took 7 % longer and raised WER from 0.089 to 0.095 (faster-whisper).
    """

    backend: Backend = "faster-whisper"
    language: str | None = "en"
    beam_size: int = 5
    compute_type: str = "int8"
    cpu_threads: int = 2
    device: str = "cpu"
    device_index: int = 0
    vad_filter: bool = False
    condition_on_previous_text: bool = False
    max_compression_ratio: float = 2.4
    batch_size: int | None = None
    refine_beam_size: int | None = None
    refine_below_logprob: float = -0.5
    piece_s: float | None = None

    def __post_init__(self) -> None:
        if self.backend not in BACKENDS:
            raise ConfigError(f"backend={self.backend!r} is not one of {BACKENDS}")
        if self.language is not None and not (isinstance(self.language, str) and _LANGUAGE_RE.match(self.language)):
            raise ConfigError(f"language={self.language!r} is not a lower-case language code such as 'en' (or None)")
        _require_positive_int("beam_size", self.beam_size)
        _require_positive_int("cpu_threads", self.cpu_threads)
        if self.compute_type not in CT2_COMPUTE_TYPES:
            raise ConfigError(f"compute_type={self.compute_type!r} is not one of {CT2_COMPUTE_TYPES}")
        if self.device not in DEVICES:
            raise ConfigError(f"device={self.device!r} is not one of {DEVICES}")
        if isinstance(self.device_index, bool) or not isinstance(self.device_index, int) or self.device_index < 0:
            raise ConfigError(f"device_index={self.device_index!r} must be an integer >= 0")
        if not (isinstance(self.max_compression_ratio, int | float) and self.max_compression_ratio > 0):
            raise ConfigError(f"max_compression_ratio={self.max_compression_ratio!r} must be a number > 0")
        for name in ("vad_filter", "condition_on_previous_text"):
            if not isinstance(getattr(self, name), bool):
                raise ConfigError(f"{name}={getattr(self, name)!r} is not a bool")
        if self.piece_s is not None and (isinstance(self.piece_s, bool) or not isinstance(self.piece_s, int | float)
                                         or not PIECE_SEARCH_S * 2 <= self.piece_s < float("inf")):
            raise ConfigError(f"piece_s={self.piece_s!r} must be a number of seconds >= {PIECE_SEARCH_S * 2:g}")
        if self.refine_beam_size is not None:
            _require_positive_int("refine_beam_size", self.refine_beam_size)
            if self.backend != "faster-whisper" or self.batch_size is not None or self.piece_s is not None:
                raise ConfigError("refine_beam_size needs backend='faster-whisper' with sequential decoding of the "
                                  "whole recording (no batch_size, no piece_s)")
        if not (isinstance(self.refine_below_logprob, int | float) and not isinstance(self.refine_below_logprob, bool)
                and -10 < self.refine_below_logprob < 0):
            raise ConfigError(f"refine_below_logprob={self.refine_below_logprob!r} must be a number in (-10, 0)")
        if self.batch_size is not None:
            _require_positive_int("batch_size", self.batch_size)
            if self.backend != "faster-whisper":
                raise ConfigError(f"batch_size needs backend='faster-whisper', not {self.backend!r}")
        if self.vad_filter and self.backend != "faster-whisper":
            raise ConfigError(f"vad_filter=True needs backend='faster-whisper', not {self.backend!r}")

    @property
    def resolved_compute_type(self) -> str:
        """The CTranslate2 compute type actually used: ``"float16"`` for the default on CUDA."""
        if self.device == "cuda" and self.compute_type == "int8":
            return "float16"
        return self.compute_type


def _require_positive_int(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{name}={value!r} must be an integer >= 1")


class Transcriber(Protocol):
    """A loaded speech recogniser."""

    name: str
    """Backend name, ``"faster-whisper"`` or ``"openai-whisper"``."""
    model_name: str
    """Model identity, e.g. ``"whisper-base"``; the same for both backends on the same weights."""

    def transcribe(self, samples: np.ndarray) -> Transcript:
        """Recognise the words in ``samples`` (float32 mono 16 kHz, shape (n,)).

        The transcribers here (:class:`~pipeline.asr.base.Recogniser`) also take an optional keyword ``progress``
        (a :data:`ProgressHook`); it is not part of the protocol, so simple fakes need not take it.
        """
        ...


# --------------------------------------------------------------------------- pieces and windows


def piece_bounds(samples: np.ndarray, *, piece_s: float, sample_rate_hz: int = SAMPLE_RATE_HZ,
                 search_s: float = PIECE_SEARCH_S, frame_s: float = PIECE_FRAME_S) -> tuple[tuple[int, int], ...]:
    """Cut a recording into consecutive pieces of at most ``piece_s`` seconds, each cut in a quiet place.

    Parameters
    ----------
    samples : np.ndarray, shape (n,)
        Mono audio.
    piece_s : float
        Longest piece, in seconds.
    sample_rate_hz : int
    search_s : float
        Each cut is placed in the last ``search_s`` seconds before the nominal end of its piece, in the
        centre of the ``frame_s`` frame with the least energy there (in conversation, nearly always a pause).
    frame_s : float

    Returns
    -------
    tuple of (start, end) sample indices
        Half-open, consecutive, covering ``0 .. n``; one piece ``((0, n),)`` when the audio is short enough.
        Empty for empty audio.
    """
    n = int(samples.shape[0])
    piece, search = int(piece_s * sample_rate_hz), int(search_s * sample_rate_hz)
    frame_ms = frame_s * 1000
    frame = max(1, int(sample_rate_hz * frame_ms / 1000))  # as frame_rms_dbfs frames it
    if not search < piece:
        raise ConfigError(f"piece_s={piece_s!r} must be longer than search_s={search_s!r}")
    bounds: list[tuple[int, int]] = []
    start = 0
    while n - start > piece:
        lo = start + piece - search
        level_dbfs = frame_rms_dbfs(samples[lo : start + piece], sample_rate_hz=sample_rate_hz, frame_ms=frame_ms)
        cut = lo + int(np.argmin(level_dbfs)) * frame + frame // 2
        bounds.append((start, cut))
        start = cut
    if n > start:
        bounds.append((start, n))
    return tuple(bounds)


def merge_regions(spans: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """Sorted ``(start, end)`` spans with overlapping or touching ones merged."""
    out: list[tuple[float, float]] = []
    for a, b in sorted(spans):
        if out and a <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        else:
            out.append((a, b))
    return out


def _windows(segments: Iterable[Any]) -> Iterable[list[Any]]:
    """faster-whisper's segments grouped by the decoding window they came from (their ``seek``)."""
    window: list[Any] = []
    for segment in segments:
        if window and getattr(segment, "seek", None) != getattr(window[0], "seek", None):
            yield window
            window = []
        window.append(segment)
    if window:
        yield window


def _segment_clips(window: list[Any], *, duration_s: float, pad_s: float = 0.2) -> list[float]:
    """Flat ``[start, end, start, end, ...]`` of each segment's span widened by ``pad_s``, never overlapping."""
    clips: list[float] = []
    for segment in sorted(window, key=lambda s: s.start):
        lo = max(0.0, segment.start - pad_s, clips[-1] if clips else 0.0)
        hi = min(duration_s, segment.end + pad_s)
        if hi - lo >= 2 * MIN_WORD_DURATION_S:
            clips += [round(lo, 3), round(hi, 3)]
    return clips


def _pieces(samples: np.ndarray, piece_s: float | None) -> tuple[tuple[int, int], ...]:
    return ((0, samples.shape[0]),) if piece_s is None else piece_bounds(samples, piece_s=piece_s)


# --------------------------------------------------------------------------- what both Whisper backends share


class WhisperTranscriber(Recogniser):
    """A Whisper backend: the recording decoded piece by piece, each piece's segments window by window.

    Holds the loop the two Whisper backends share: the language (given, or detected once and held), the pieces
    (``TranscribeOptions.piece_s``), the segments grouped by decoding window, a repetitive window re-decoded
    segment by segment (:meth:`_redecode`), words offset by their piece, progress per window where the backend
    decodes while its segments are read (``streams_windows``). A backend supplies :meth:`_decode` (a piece's
    segments), :meth:`_decode_clips` (the segments of clips of a piece, decoded alone), :meth:`_detect_language`
    and may revise a piece's words afterwards (:meth:`_revise`). Segments have ``start``, ``end``, ``seek``,
    ``compression_ratio`` and ``words`` (each with ``start``, ``end``, ``word``, ``probability``).

    Parameters
    ----------
    model : the loaded model
    model_name : str
    options : TranscribeOptions
    """

    streams_windows = False
    """True where a window's segments come as it is decoded, so a progress call per window means progress."""

    def __init__(self, model: Any, *, model_name: str, options: TranscribeOptions) -> None:
        self._model = model
        self.model_name = model_name
        self.options = options

    def _recognise(self, samples: np.ndarray, progress: ProgressHook | None) -> Heard:
        opts = self.options
        duration_s = samples.size / SAMPLE_RATE_HZ
        language, probability = ((opts.language, 1.0) if opts.language is not None
                                 else self._detect_language(samples))  # held for the whole session
        heard = Heard(language, probability, [])
        for start, end in ((0, samples.size),) if opts.batch_size else _pieces(samples, opts.piece_s):
            piece, offset_s = samples[start:end], start / SAMPLE_RATE_HZ
            decoded: list[Any] = []
            for window in _windows(self._decode(piece, language=language)):  # may decode while iterating
                heard.segments += len(window)
                if getattr(window[0], "compression_ratio", 0.0) > opts.max_compression_ratio:  # one per window
                    window, dropped = self._redecode(piece, window, language=language)
                    heard.segments_dropped += dropped
                heard.words.extend(Word(w.start + offset_s, w.end + offset_s, w.word, w.probability)
                                   for segment in window for w in getattr(segment, "words", None) or ())
                decoded.extend(window)
                if progress is not None and window and self.streams_windows:
                    progress(min((offset_s + window[-1].end) / duration_s, 1.0))
            heard.words, dropped = self._revise(samples, heard.words, decoded, language=language)
            heard.segments_dropped += dropped
        return heard

    def _redecode(self, piece: np.ndarray, window: list[Any], *, language: str) -> tuple[list[Any], int]:
        """Re-decode a repetitive window segment by segment; drop only clips that are repetitive on their own.

        Whisper computes the compression ratio over a whole 30 s window, so a window in which a sentence is said
        twice (real speech) reads as a repetition loop. Each segment's span is decoded alone (no context from
        the window): a sentence said twice decodes as itself twice, each clip compressing like ordinary text; a
        loop within one clip still compresses better than ``max_compression_ratio`` and is dropped. Returns
        the kept segments and how many were dropped.
        """
        clips = _segment_clips(window, duration_s=piece.size / SAMPLE_RATE_HZ)
        if not clips:
            return [], len(window)
        kept, dropped = [], 0
        for segment in self._decode_clips(piece, clips, language=language):
            if getattr(segment, "compression_ratio", 0.0) > self.options.max_compression_ratio:  # the clip's own
                dropped += 1
            else:
                kept.append(segment)
        return kept, dropped

    def _revise(self, samples: np.ndarray, words: list[Word], decoded: list[Any], *,
                language: str) -> tuple[list[Word], int]:
        """A piece's words after a second look (none here), and how many segments that dropped."""
        return words, 0

    def _decode(self, piece: np.ndarray, *, language: str) -> Iterable[Any]:
        """The segments of one piece, in order."""
        raise NotImplementedError

    def _decode_clips(self, piece: np.ndarray, clips: list[float], *, language: str) -> Iterable[Any]:
        """The segments of the clips ``[start, end, start, end, ...]`` (seconds) of ``piece``, each decoded alone."""
        raise NotImplementedError

    def _detect_language(self, samples: np.ndarray) -> tuple[str, float]:
        """The language spoken and its probability."""
        raise NotImplementedError


# --------------------------------------------------------------------------- faster-whisper


class FasterWhisperTranscriber(WhisperTranscriber):
    """Transcriber on a loaded ``faster_whisper.WhisperModel``.

    Parameters
    ----------
    model : faster_whisper.WhisperModel
    model_name : str
    options : TranscribeOptions
    """

    name = "faster-whisper"
    streams_windows = True  # its segments are a generator: decoding happens while they are read

    @classmethod
    def load(cls, ct2_dir: Path, *, options: TranscribeOptions) -> FasterWhisperTranscriber:
        """Load a CTranslate2 Whisper folder.

        Raises
        ------
        ModelMissingError
            If the folder or its ``model.bin``, ``config.json`` or ``tokenizer.json`` is missing.
        ModelError
            If CTranslate2 cannot load it, or the language is not supported by the model.
        ConfigError
            If ``device="cuda"`` and no CUDA device is visible to CTranslate2.
        """
        import ctranslate2
        from faster_whisper import WhisperModel

        model_name = model_name_for(ct2_dir)  # raises ModelMissingError for a missing folder
        for required in ("tokenizer.json", "config.json"):  # without tokenizer.json it would try a hub
            if not (Path(ct2_dir) / required).is_file():
                raise ModelMissingError(f"{Path(ct2_dir) / required} is missing from the CTranslate2 Whisper folder")
        if options.device == "cuda" and ctranslate2.get_cuda_device_count() <= options.device_index:
            raise ConfigError(f"device='cuda:{options.device_index}' but CTranslate2 sees "
                              f"{ctranslate2.get_cuda_device_count()} CUDA device(s)")
        try:
            model = WhisperModel(
                str(ct2_dir),
                device=options.device,
                device_index=options.device_index,
                compute_type=options.resolved_compute_type,
                cpu_threads=options.cpu_threads,
                local_files_only=True,
            )
        except (RuntimeError, ValueError, OSError) as e:
            raise ModelError(f"faster-whisper could not load {ct2_dir}: {e}") from e
        install_blockwise_features(model)  # the same features, in bounded memory on long recordings
        if options.language is not None and options.language not in model.supported_languages:
            raise ModelError(f"language={options.language!r} is not supported by {model_name} at {ct2_dir}")
        return cls(model, model_name=model_name, options=options)

    def _revise(self, samples: np.ndarray, words: list[Word], decoded: list[Any], *,
                language: str) -> tuple[list[Word], int]:
        """With ``refine_beam_size``: the low-confidence segments re-decoded with a beam (:meth:`_refine`)."""
        opts = self.options
        if not opts.refine_beam_size:
            return words, 0
        unsure = [(s.start, s.end, s.avg_logprob) for s in decoded if s.avg_logprob < opts.refine_below_logprob]
        return self._refine(samples, words, unsure, language=language) if unsure else (words, 0)

    def _refine(self, samples: np.ndarray, words: list[Word], unsure: list[tuple[float, float, float]], *,
                language: str) -> tuple[list[Word], int]:
        """Re-decode the unsure stretches with a beam; keep, per stretch, the pass with the higher confidence."""
        opts = self.options
        regions = merge_regions([(max(0.0, a - 0.2), b + 0.2) for a, b, _ in unsure])
        greedy_lp = {r: min(lp for a, b, lp in unsure if r[0] <= a and b <= r[1]) for r in regions}
        clips = [t for r in regions for t in r]
        segments = self._decode_clips(samples, clips, language=language, beam_size=opts.refine_beam_size)
        better: dict[tuple[float, float], list[Word]] = {}
        score: dict[tuple[float, float], list[float]] = {}
        dropped = 0
        for seg in segments:
            if seg.compression_ratio > opts.max_compression_ratio:
                dropped += 1
                continue
            mid = 0.5 * (seg.start + seg.end)
            region = next((r for r in regions if r[0] <= mid <= r[1]), None)
            if region is None:
                continue
            better.setdefault(region, []).extend(Word(w.start, w.end, w.word, w.probability) for w in seg.words or ())
            score.setdefault(region, []).append(seg.avg_logprob)
        keep = [r for r in regions if r in better and min(score[r]) > greedy_lp[r]]
        if not keep:
            return words, dropped

        def inside(w: Word) -> bool:
            mid = 0.5 * (w.start_s + w.end_s)
            return any(a <= mid <= b for a, b in keep)

        out = [w for w in words if not inside(w)] + [w for r in keep for w in better[r] if inside(w)]
        return sorted(out, key=lambda w: w.start_s), dropped

    def _decode(self, piece: np.ndarray, *, language: str) -> Iterable[Any]:
        opts = self.options
        if opts.batch_size:
            segments, _ = self._batched().transcribe(
                piece, language=language, beam_size=opts.beam_size, temperature=0.0, word_timestamps=True,
                condition_on_previous_text=opts.condition_on_previous_text, batch_size=opts.batch_size)
            return segments
        segments, _ = self._model.transcribe(piece, language=language, beam_size=opts.beam_size, temperature=0.0,
                                             word_timestamps=True, vad_filter=opts.vad_filter,
                                             condition_on_previous_text=opts.condition_on_previous_text)
        return segments

    def _decode_clips(self, piece: np.ndarray, clips: list[float], *, language: str,
                      beam_size: int | None = None) -> Iterable[Any]:
        segments, _ = self._model.transcribe(piece, language=language, beam_size=beam_size or self.options.beam_size,
                                             temperature=0.0, word_timestamps=True, clip_timestamps=clips,
                                             condition_on_previous_text=False)
        return segments

    def _detect_language(self, samples: np.ndarray) -> tuple[str, float]:
        """Detected over speech (its Silero VAD regions, up to four 30 s windows)."""
        language, probability, _ = self._model.detect_language(audio=samples, vad_filter=True,
                                                               language_detection_segments=4)
        return language, float(probability)

    def _batched(self) -> Any:
        from faster_whisper import BatchedInferencePipeline

        return BatchedInferencePipeline(self._model)


# --------------------------------------------------------------------------- openai-whisper


class OpenAIWhisperTranscriber(WhisperTranscriber):
    """Transcriber on a loaded ``whisper.Whisper`` model (alignment heads already set).

    ``progress`` is only called once, with 1.0, at the end (openai-whisper has no hook).

    Parameters
    ----------
    model : whisper.Whisper
    model_name : str
    options : TranscribeOptions
    """

    name = "openai-whisper"

    @classmethod
    def load(cls, checkpoint: Path, *, ct2_dir: Path, options: TranscribeOptions) -> OpenAIWhisperTranscriber:
        """Load a converted checkpoint and set its alignment heads from the CT2 ``config.json``.

        Sets torch's process-wide CPU thread count to ``options.cpu_threads``.

        Raises
        ------
        ModelMissingError
            If the checkpoint or the CT2 folder is missing.
        ModelError
            If the checkpoint cannot be loaded or does not match the CT2 model.
        ConfigError
            If ``device="cuda"`` and torch sees no CUDA device.
        """
        import torch

        try:
            import whisper
        except ImportError as e:
            raise ConfigError("the openai-whisper backend needs the openai-whisper package: "
                              "pip install 'alliance-pipeline[openai-whisper]' (`make setup` installs it)") from e
        if not Path(checkpoint).is_file():
            raise ModelMissingError(
                f"openai-whisper checkpoint not found: {checkpoint} "
                "(create it with models.ct2_whisper.convert_ct2_to_openai)"
            )
        if options.device == "cuda" and torch.cuda.device_count() <= options.device_index:
            raise ConfigError(f"device='cuda:{options.device_index}' but torch sees "
                              f"{torch.cuda.device_count()} CUDA device(s)")
        model_name = model_name_for(ct2_dir)
        heads = alignment_heads_for(ct2_dir)
        torch.set_num_threads(options.cpu_threads)
        try:
            torch_device = f"cuda:{options.device_index}" if options.device == "cuda" else "cpu"
            model = whisper.load_model(str(checkpoint), device=torch_device)
            model.set_alignment_heads(alignment_heads_dump(heads))
        except (RuntimeError, ValueError, KeyError, OSError) as e:
            raise ModelError(f"openai-whisper could not load {checkpoint} with heads from {ct2_dir}: {e}") from e
        if options.language is not None and not _supports(model, options.language):
            raise ModelError(f"language={options.language!r} is not supported by {model_name} at {checkpoint}")
        return cls(model, model_name=model_name, options=options)

    def _decode(self, piece: np.ndarray, *, language: str) -> Iterable[Any]:
        return self._segments(piece, language=language,
                              condition_on_previous_text=self.options.condition_on_previous_text)

    def _decode_clips(self, piece: np.ndarray, clips: list[float], *, language: str) -> Iterable[Any]:
        return self._segments(piece, language=language, condition_on_previous_text=False, clip_timestamps=clips)

    def _segments(self, piece: np.ndarray, **kwargs: Any) -> list[SimpleNamespace]:
        """``whisper.Whisper.transcribe``'s segments (and their words) as attribute namespaces."""
        opts = self.options
        result = self._model.transcribe(piece, task="transcribe", temperature=0.0,
                                        beam_size=opts.beam_size if opts.beam_size > 1 else None,
                                        word_timestamps=True, fp16=opts.device == "cuda", verbose=None, **kwargs)
        return [SimpleNamespace(**{**s, "words": [SimpleNamespace(**w) for w in s.get("words") or ()]})
                for s in result["segments"]]

    def _detect_language(self, samples: np.ndarray) -> tuple[str, float]:
        """The language detected in the first 30 s ("en" for an English-only model)."""
        import whisper

        if not self._model.is_multilingual:
            return "en", 1.0
        mel = whisper.log_mel_spectrogram(whisper.pad_or_trim(samples), self._model.dims.n_mels)
        mel = mel.to(self._model.device)  # shape: (n_mels, 3000)
        if self.options.device == "cuda":
            mel = mel.half()
        _, probabilities = self._model.detect_language(mel)
        language = max(probabilities, key=probabilities.get)
        return language, float(probabilities[language])


def _supports(model: Any, language: str) -> bool:
    from whisper.tokenizer import LANGUAGES

    return language in LANGUAGES if model.is_multilingual else language == "en"


# --------------------------------------------------------------------------- loading


def load_transcriber(*, ct2_dir: Path, openai_checkpoint: Path | None, options: TranscribeOptions,
                     moonshine_dir: Path | None = None) -> Transcriber:
    """Load the backend that ``options.backend`` names.

    Parameters
    ----------
    ct2_dir : Path
        CTranslate2 Whisper folder (``model.bin``, ``config.json``, ``tokenizer.json``...). Both
        backends read it: faster-whisper runs it, openai-whisper takes its name and alignment heads.
    openai_checkpoint : Path or None
        Checkpoint made by :func:`models.ct2_whisper.convert_ct2_to_openai`; needed for openai-whisper.
    options : TranscribeOptions
    moonshine_dir : Path or None
        Folder with Moonshine's ``encoder_model.ort``, ``decoder_model_merged.ort`` and ``tokenizer.json``;
        needed for ``backend="moonshine"`` (which also aligns with the Whisper model in ``ct2_dir``) and
        ``backend="rover"``.

    Returns
    -------
    Transcriber

    Raises
    ------
    ConfigError
        If openai-whisper is asked for without a checkpoint, or CUDA is asked for and absent.
    ModelMissingError, ModelError
        If the model files are missing or cannot be loaded.
    """
    if options.backend == "faster-whisper":
        return FasterWhisperTranscriber.load(Path(ct2_dir), options=options)
    if options.backend == "rover":
        from pipeline.asr.combine import CombinedTranscriber, rover_parts

        parts = [(load_transcriber(ct2_dir=ct2_dir, openai_checkpoint=None, options=o, moonshine_dir=moonshine_dir), c)
                 for o, c in rover_parts(options)]
        return CombinedTranscriber(parts)
    if options.backend == "moonshine":
        from pipeline.asr.moonshine import MoonshineTranscriber

        if moonshine_dir is None:
            raise ConfigError("backend='moonshine' needs moonshine_dir (model 'moonshine-base-ort')")
        return MoonshineTranscriber.load(Path(moonshine_dir), ct2_dir=Path(ct2_dir), options=options)
    if openai_checkpoint is None:
        raise ConfigError("backend='openai-whisper' needs openai_checkpoint (see convert_ct2_to_openai)")
    return OpenAIWhisperTranscriber.load(Path(openai_checkpoint), ct2_dir=Path(ct2_dir), options=options)
