"""The per-session composition of stages, as plain functions with the models passed in.

Prefect flows (``flows/``) wrap these; tests call them directly with fakes.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from pipeline.analysis.attribute import assign_words, build_turns
from pipeline.analysis.indicators import IndicatorOptions, SessionMeasures, measure_session
from pipeline.analysis.quality import (
    QualityOptions,
    SessionQuality,
    check_plausible,
    measure_quality,
    require_language,
    require_speech,
    require_two_voices,
    words_in_speech,
)
from pipeline.analysis.roles import assign_roles
from pipeline.markers.dialogue import Language
from pipeline.markers.prosody import SpeakerFrames
from pipeline.privacy.consent import Consent
from pipeline.privacy.deid import deidentify_many
from pipeline.types import AttributedWord, Audio, Diarization, RoleAssignment, Transcript, Turn

if TYPE_CHECKING:  # the coder's modules import scikit-learn (about 1.3 s): only when a session is coded
    from pipeline.codes.apply import CodedSession
    from pipeline.codes.coder import ProcessCoder
    from pipeline.codes.features import Encoder


@dataclass(frozen=True)
class SessionMeta:
    """What the user says about a recording (CLI flags or a manifest row)."""

    session_id: str
    client_id: str
    therapist_id: str
    recorded_on: dt.date | None = None
    role_override: str | None = None
    num_speakers: int | None = 2
    #: Names to redact from de-identified text (client, partner, children...): used in memory, never stored.
    known_names: tuple[str, ...] = ()


@dataclass(frozen=True)
class SessionAnalysis:
    """Everything derived from one recording, ready to be written in one transaction."""

    meta: SessionMeta
    consent: Consent
    audio_sha256: str
    duration_s: float
    source_format: str
    source_sample_rate_hz: int
    source_channels: int
    transcript: Transcript
    diarization: Diarization
    diarization_model: str
    words: tuple[AttributedWord, ...]
    turns: tuple[Turn, ...]
    roles: RoleAssignment
    measures: SessionMeasures
    #: Each turn's text with direct identifiers replaced by typed placeholders (:mod:`pipeline.privacy.deid`).
    deidentified_turns: tuple[str, ...] = ()
    #: Quality measures and flags (:mod:`pipeline.analysis.quality`); None only for hand-built analyses.
    quality: SessionQuality | None = None
    #: MI process codes of the turns (:mod:`pipeline.codes`); None when no coder was given.
    codes: CodedSession | None = None


def analyse(
    audio: Audio,
    transcript: Transcript,
    diarization: Diarization,
    *,
    meta: SessionMeta,
    consent: Consent,
    diarization_model: str,
    options: IndicatorOptions = IndicatorOptions(),
    nlp: Language | None = None,
    ner_nlp: Language | None = None,
    quality: QualityOptions = QualityOptions(),  # noqa: B008 - frozen options
    attribution: str = "overlap-aware",
    prosody_frames: Mapping[str, SpeakerFrames] | None = None,
    coder: ProcessCoder | None = None,
    encoder: Encoder | None = None,
) -> SessionAnalysis:
    """Gate, attribute words, rebuild turns, decide roles, measure the session and de-identify its turns.

    ``nlp`` is an optional loaded spaCy pipeline for the markers that need a parse; ``ner_nlp`` one with
    NER for de-identification (without it only patterns, name cues and ``meta.known_names`` apply).
    ``attribution`` is the word -> speaker method of :func:`pipeline.analysis.attribute.assign_words`.
    ``prosody_frames``: the speakers' prosody frames if already computed from this audio and diarization
    (:func:`pipeline.markers.prosody.diarization_frames`, e.g. while transcription was still running).
    ``coder`` and ``encoder``: the MI process coder and its sentence encoder (:mod:`pipeline.codes`); with
    both, every turn is coded and the MITI summaries join the indicators.

    Raises
    ------
    NoSpeechError
        No speech detected, no recognised word inside detected speech, or words whose confidence says the
        speech is not language (nothing may be stored).
    SingleSpeakerError
        One voice split in two by the diarizer: not a two-person conversation (nothing is stored).
    ImplausibleValueError
        An impossible value (a speaker with words but no speaking time, an impossible speech rate).
    """
    require_speech(diarization, options=quality)
    kept, dropped = words_in_speech(transcript.words, diarization=diarization, options=quality)
    require_language(kept, options=quality)
    require_two_voices(diarization, expected=meta.num_speakers, options=quality)
    words = assign_words(kept, diarization, method=attribution)
    turns = build_turns(words)
    roles = assign_roles(turns, override=meta.role_override)
    measures = measure_session(words, diarization, roles, duration_s=audio.duration_s, options=options,
                               nlp=nlp, samples=audio.samples, prosody_frames=prosody_frames)
    check_plausible(measures.indicators, options=quality)
    codes = None
    if coder is not None and encoder is not None:
        from pipeline.codes.apply import code_turns, summary_indicators

        codes = code_turns(turns, roles, coder, encoder)
        measures = replace(measures, indicators=measures.indicators
                           + tuple(summary_indicators(codes, audio.duration_s)))
    session_quality = measure_quality(audio.samples, duration_s=audio.duration_s, transcript=transcript,
                                      diarization=diarization, words=words, roles=roles, words_dropped=dropped,
                                      options=quality)
    redactions = deidentify_many([t.text for t in turns], nlp=ner_nlp, known_names=meta.known_names)
    return SessionAnalysis(
        meta=meta,
        consent=consent,
        audio_sha256=audio.sha256,
        duration_s=audio.duration_s,
        source_format=audio.source_format,
        source_sample_rate_hz=audio.source_sample_rate_hz,
        source_channels=audio.source_channels,
        transcript=transcript,
        diarization=diarization,
        diarization_model=diarization_model,
        words=words,
        turns=turns,
        roles=roles,
        measures=measures,
        deidentified_turns=tuple(r.text for r in redactions),
        quality=session_quality,
        codes=codes,
    )
