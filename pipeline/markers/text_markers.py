"""The text-level marker suite: events (``Marker``) and per-session indicators from words and turns.

Called by :func:`pipeline.analysis.indicators.measure_session`; works the same on recognised speech and on
transcripts (:mod:`pipeline.analysis.text_only`). The indicators are defined in ``docs/data_dictionary.md``.
Markers that need a parse (collaborative "we", topic shift) are computed only when a spaCy pipeline
is passed; without one their indicators are None.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from pipeline.lexicons import load_lexicon, normalise_token
from pipeline.markers.alliance_work import (
    AllianceOptions,
    TextEvent,
    client_questions,
    rupture_candidates,
    therapist_alliance_work,
)
from pipeline.markers.backchannels import BackchannelOptions, conversational_turns, find_backchannels
from pipeline.markers.dialogue import Language, Utterance, build_utterances, question_sentences, quote
from pipeline.markers.pacing import OverlapOptions, count_syllables, find_overlaps
from pipeline.markers.silences import SilenceOptions, find_silences, speaking_time_s
from pipeline.markers.style_matching import StyleMatchingOptions, measure_style_matching
from pipeline.markers.topic import TopicOptions, analyse_probes
from pipeline.markers.we_collab import find_collaborative_we
from pipeline.types import ROLES, AttributedWord, Diarization, Indicator, Marker, RoleAssignment


@dataclass(frozen=True)
class TextMarkerOptions:
    """Parameters of the text-level markers (each family's options; defaults documented there)."""

    backchannels: BackchannelOptions = field(default_factory=BackchannelOptions)
    overlaps: OverlapOptions = field(default_factory=OverlapOptions)
    topic: TopicOptions = field(default_factory=TopicOptions)
    alliance: AllianceOptions = field(default_factory=AllianceOptions)
    style: StyleMatchingOptions = field(default_factory=StyleMatchingOptions)


def _ratio(a: float, b: float) -> float | None:
    return a / b if b > 0 else None


def _mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


#: Strain cues that already have a marker kind of their own (see :mod:`pipeline.markers.topic`).
DUPLICATE_CUE_KINDS = frozenset({"minimal_response", "deflection", "topic_shift"})


def _event_marker(e: TextEvent, extra: dict[str, object] | None = None) -> Marker:
    detail: dict[str, object] = {"quote": quote(e.quote)}
    if e.subtype is not None:
        detail["type"] = e.subtype
    detail.update(dict(e.extra))
    if extra:
        detail.update(extra)
    return Marker(e.kind, e.turn.role, e.turn.start_s, e.turn.end_s, e.value, json.dumps(detail))


def measure_text_markers(
    words: Sequence[AttributedWord],
    diarization: Diarization,
    roles: RoleAssignment,
    *,
    duration_s: float,
    nlp: Language | None = None,
    options: TextMarkerOptions = TextMarkerOptions(),
) -> tuple[tuple[Marker, ...], tuple[Indicator, ...]]:
    """Compute the text-level markers and indicators of one session.

    Parameters
    ----------
    words : sequence of AttributedWord
        Words with their speakers, in time order.
    diarization : Diarization
        Speaker turns (overlaps, silences after probes, speaking time).
    roles : RoleAssignment
    duration_s : float
        Length of the session, seconds (turns per minute).
    nlp : Language, optional
        A loaded spaCy pipeline with a parser; without it, collaborative "we" and topic shift are None.
    options : TextMarkerOptions

    Returns
    -------
    (markers, indicators) : tuple of Marker, tuple of Indicator
    """
    role_of = roles.role_of
    utts = build_utterances(words, roles)
    backchannels = find_backchannels(utts, diarization=diarization, options=options.backchannels)
    turns = conversational_turns(utts, backchannels)
    probes = analyse_probes(turns, nlp=nlp, options=options.topic)
    silences = find_silences(diarization, options=SilenceOptions(min_silence_s=options.alliance.long_silence_s))
    overlaps = find_overlaps(diarization, options=options.overlaps)
    work = therapist_alliance_work(turns, options=options.alliance)
    cquestions = client_questions(turns)
    ruptures = rupture_candidates(turns, probes, silences, client_speaker=roles.client, options=options.alliance)
    we_events = find_collaborative_we(utts, nlp) if nlp is not None else None
    talk = speaking_time_s(diarization)
    pron = load_lexicon("pronouns")
    we_set, i_set, you_set = (frozenset(pron[k]) for k in ("first_person_plural", "first_person_singular",
                                                            "second_person"))

    markers: list[Marker] = []
    by_index = {u.index: u for u in utts}
    for idx in sorted(backchannels):
        u: Utterance = by_index[idx]
        markers.append(Marker("backchannel", u.role, u.start_s, u.end_s, 1.0, json.dumps({"quote": quote(u.text)})))
    for o in overlaps:
        markers.append(Marker("overlap", role_of(o.by), o.start_s, o.end_s, round(o.end_s - o.start_s, 3),
                              json.dumps({"type": "interruption" if o.interruption else "overlap",
                                          "over": role_of(o.over)})))
    if we_events is not None:
        for ev in we_events:
            if ev.token.collaborative:
                markers.append(Marker("collaborative_we", ev.utterance.role, ev.start_s, ev.end_s, 1.0,
                                      json.dumps({"quote": quote(ev.utterance.text), "token": ev.token.text,
                                                  "cue": ev.token.cue})))
    for p in probes:
        if p.reply is None:
            continue
        base = {"quote": quote(p.reply.text), "probe": quote(p.question)}
        if p.minimal:
            markers.append(Marker("minimal_response", "client", p.reply.start_s, p.reply.end_s, 1.0, json.dumps(base)))
        if p.deflection:
            markers.append(Marker("deflection", "client", p.reply.start_s, p.reply.end_s, 1.0,
                                  json.dumps(base | {"phrase": p.deflection})))
        if p.topic_shift:
            markers.append(Marker("topic_shift", "client", p.reply.start_s, p.reply.end_s,
                                  float(p.similarity or 0.0), json.dumps(base)))
    markers += [_event_marker(e) for e in (*work, *cquestions)]
    # Strain cues are stored under what they detect (a silence after a question, deference, a complaint, a
    # rejected suggestion), with what they may indicate (withdrawal or confrontation) in the detail; cues with
    # their own marker kind (minimal response, deflection, topic shift) are not stored twice.
    for e in ruptures:
        detects = str(dict(e.extra).get("marker", "strain_cue"))
        if detects in DUPLICATE_CUE_KINDS:
            continue
        markers.append(_event_marker(replace(e, kind=detects, subtype=None), {"may_indicate": e.subtype}))

    ind: list[Indicator] = [
        Indicator("turns_per_minute", None, _ratio(60.0 * len(turns), duration_s), "turns/min"),
        Indicator("overlap_count", None, float(len(overlaps)), "count"),
        Indicator("interruption_count", None, float(sum(o.interruption for o in overlaps)), "count"),
    ]
    evaluated = [p for p in probes if p.reply is not None]
    open_probes = [p for p in evaluated if p.open]
    shift_probes = [p for p in evaluated if p.similarity is not None]
    for role in ROLES:
        other = "client" if role == "therapist" else "therapist"
        r_words = [normalise_token(w.text) for w in words if role_of(w.speaker) == role]
        r_words = [w for w in r_words if w]
        n_we = sum(w in we_set for w in r_words)
        n_i = sum(w in i_set for w in r_words)
        n_you = sum(w in you_set for w in r_words)
        other_words = sum(1 for w in words if role_of(w.speaker) == other)
        n_bc = sum(1 for i in backchannels if by_index[i].role == role)
        r_turns = [t for t in turns if t.role == role]
        speak_s = sum(v for s, v in talk.items() if role_of(s) == role)
        syll = float(sum(count_syllables(w.text) for w in words if role_of(w.speaker) == role))
        n_q = sum(len(question_sentences(t.text)) for t in r_turns)
        ind += [
            Indicator("we_i_ratio", role, _ratio(n_we, n_i), "ratio"),
            Indicator("we_you_ratio", role, _ratio(n_we, n_you), "ratio"),
            Indicator("backchannel_count", role, float(n_bc), "count"),
            Indicator("backchannel_rate", role, _ratio(100.0 * n_bc, other_words), "per 100 words of the other"),
            Indicator("turn_count", role, float(len(r_turns)), "turns"),
            Indicator("turns_per_minute", role, _ratio(60.0 * len(r_turns), duration_s), "turns/min"),
            Indicator("mean_turn_words", role, _mean([t.word_count for t in r_turns]), "words"),
            Indicator("mean_turn_duration", role, _mean([t.end_s - t.start_s for t in r_turns]), "s"),
            Indicator("syllable_count", role, syll, "syllables"),
            Indicator("articulation_rate", role, _ratio(syll, speak_s), "syllables/s"),
            Indicator("overlap_count", role, float(sum(1 for o in overlaps if role_of(o.by) == role)), "count"),
            Indicator("interruption_count", role,
                      float(sum(1 for o in overlaps if o.interruption and role_of(o.by) == role)), "count"),
            Indicator("question_count", role, float(n_q), "count"),
            Indicator("question_rate", role, _ratio(100.0 * n_q, len(r_turns)), "per 100 turns"),
        ]
        if we_events is None:
            n_collab: float | None = None
        else:
            n_collab = float(sum(1 for e in we_events if e.token.collaborative and e.utterance.role == role))
        ind += [
            Indicator("collaborative_we_count", role, n_collab, "count"),
            Indicator("collaborative_we_rate", role,
                      None if n_collab is None else _ratio(100.0 * n_collab, len(r_words)), "per 100 words"),
            Indicator("collaborative_we_share", role, None if n_collab is None else _ratio(n_collab, n_we), "ratio"),
        ]
    ind += _therapist_indicators(probes, work, turns)
    ind += _client_indicators(evaluated, open_probes, shift_probes, ruptures, turns, nlp is not None)
    ind += measure_style_matching(words, turns, roles, options=options.style)
    return tuple(sorted(markers, key=lambda m: (m.start_s, m.kind))), tuple(ind)


def _therapist_indicators(probes, work, turns) -> list[Indicator]:
    n_turns = sum(1 for t in turns if t.role == "therapist")
    count = {k: float(sum(1 for e in work if e.kind == k)) for k in
             ("process_talk", "agenda_setting", "session_summary", "self_disclosure")}
    invites = float(sum(1 for e in work if e.kind == "session_summary" and e.subtype == "invites_correction"))
    levels = [e.value for e in work if e.kind == "self_disclosure"]
    n_open = float(sum(p.open for p in probes))
    return [
        Indicator("open_question_count", "therapist", n_open, "count"),
        Indicator("open_question_share", "therapist", _ratio(n_open, len(probes)), "ratio"),
        Indicator("process_talk_count", "therapist", count["process_talk"], "count"),
        Indicator("agenda_setting_count", "therapist", count["agenda_setting"], "count"),
        Indicator("session_summary_count", "therapist", count["session_summary"], "count"),
        Indicator("summary_invites_correction_count", "therapist", invites, "count"),
        Indicator("self_disclosure_count", "therapist", count["self_disclosure"], "count"),
        Indicator("self_disclosure_max_intimacy", "therapist", max(levels) if levels else None, "level 1-3"),
        Indicator("alliance_work_rate", "therapist",
                  _ratio(100.0 * (count["process_talk"] + count["agenda_setting"] + count["session_summary"]),
                         n_turns), "per 100 turns"),
    ]


def _client_indicators(evaluated, open_probes, shift_probes, ruptures, turns, parsed: bool) -> list[Indicator]:
    n_min = float(sum(p.minimal for p in evaluated))
    n_def = float(sum(bool(p.deflection) for p in evaluated))
    n_shift = float(sum(p.topic_shift for p in shift_probes))
    n_turns = sum(1 for t in turns if t.role == "client")
    subtypes = [e.subtype for e in ruptures]
    silence_after = float(sum(1 for e in ruptures if dict(e.extra).get("marker") == "silence_after_probe"))
    return [
        Indicator("minimal_response_count", "client", n_min, "count"),
        Indicator("minimal_response_rate", "client", _ratio(n_min, len(open_probes)), "per open question"),
        Indicator("deflection_count", "client", n_def, "count"),
        Indicator("deflection_rate", "client", _ratio(n_def, len(open_probes)), "per open question"),
        Indicator("topic_shift_count", "client", n_shift if parsed else None, "count"),
        Indicator("topic_shift_rate", "client", _ratio(n_shift, len(shift_probes)) if parsed else None,
                  "per probe"),
        Indicator("silence_after_probe_count", "client", silence_after, "count"),
        Indicator("rupture_withdrawal_count", "client", float(subtypes.count("withdrawal")), "count"),
        Indicator("rupture_confrontation_count", "client", float(subtypes.count("confrontation")), "count"),
        Indicator("rupture_candidate_rate", "client", _ratio(100.0 * len(ruptures), n_turns), "per 100 turns"),
    ]
