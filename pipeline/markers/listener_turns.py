"""Listener turns: short diarization turns lying wholly inside the other speaker's turn.

A listener's "mm-hmm" or "yeah" spoken while the other person goes on talking is usually *not transcribed*:
single-stream Whisper transcribes the voice holding the floor, so the lexical backchannel marker
(:mod:`pipeline.markers.backchannels`) misses it. The diarization still sees it, as a short turn of the
listener nested in the speaker's turn. This module counts those turns from the diarization alone.

Definition
----------
A diarization turn of speaker B is a *listener turn* when

1. it lasts at most ``max_s`` (default 1.5 s); and
2. it lies wholly inside one turn of another speaker A (``A.start_s <= B.start_s`` and ``B.end_s <= A.end_s``):
   B spoke while A held the floor, and A went on talking; and
3. when words are given: every word attributed to B whose midpoint lies in the turn is made of
   backchannel tokens only (``lexicons/backchannels.json``: "mm-hmm", "yeah", "right", "I see", ...). A
   transcribed interjection of B ("wait, no") is not a listener turn; an untranscribed turn (the usual case)
   or a transcribed backchannel is. With the default word attribution (``overlap-aware``) the words inside a
   nested turn already go to the floor holder unless they form a standalone backchannel, so this condition
   rarely removes a turn of a recording; it matters for transcripts with given times (each utterance is a
   turn) and for the ``max-overlap`` attribution (on the renders it removed none).

Relation to the backchannel marker
----------------------------------
Listener turns do not change ``backchannel_count`` / ``backchannel_rate``, which stay lexical. The two
overlap where the ASR did transcribe a backchannel in overlap (it is then both); a backchannel between the
other's utterances that is not spoken in overlap is only a backchannel; an untranscribed one is only a
listener turn.

Caveats
-------
Measured on renders of real AnnoMI dialogue with inserted backchannels (``docs/realistic_bench.md``, clean,
far room, phone line, overlap-rich): listener turns found 57 % of all truth backchannels and 77 % of those
spoken in overlap (79-100 % except over the phone line, 42 %), precision 0.85 (0.81-0.95 per condition). On
real recordings a short nested turn may also be laughter, a cough, a sigh or noise the diarizer gave to the
listener; there is no labelled real data yet, so the indicators are exploratory.

Indicators per role
-------------------
``listener_turn_count`` (count) and ``listener_turn_rate``: 60 x count / the *other* role's speaking time
(union of its diarization turns, s), i.e. listener turns per minute of the other's speech, the only time in
which they can occur (None when the other role did not speak).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

from pipeline.errors import ConfigError
from pipeline.lexicons import load_lexicon, normalise_token
from pipeline.markers.dialogue import quote
from pipeline.markers.silences import speaking_time_s
from pipeline.types import ROLES, AttributedWord, Diarization, Indicator, Marker, RoleAssignment, SpeakerTurn


@dataclass(frozen=True)
class ListenerTurnOptions:
    """Parameters of the listener turns (module docstring).

    Attributes
    ----------
    max_s : float
        Longest diarization turn counted as a listener turn, seconds (inclusive).
    """

    max_s: float = 1.5

    def __post_init__(self) -> None:
        if not self.max_s > 0:
            raise ConfigError(f"max_s must be > 0, got {self.max_s!r}")


@dataclass(frozen=True, order=True)
class ListenerTurn:
    """A short turn of ``speaker`` nested in a turn of ``over`` (the speaker holding the floor).

    Attributes
    ----------
    start_s, end_s : float
        The nested diarization turn, seconds.
    speaker : str
        Diarization label of the listener.
    over : str
        Diarization label of the speaker whose turn encloses it.
    text : str
        The listener's transcribed words in the turn (usually empty: the ASR did not transcribe them).
    """

    start_s: float
    end_s: float
    speaker: str
    over: str
    text: str = ""

    @property
    def duration_s(self) -> float:
        return self.end_s - self.start_s


def _enclosing_turn(turn: SpeakerTurn, turns: Sequence[SpeakerTurn]) -> SpeakerTurn | None:
    """The longest turn of another speaker that wholly contains ``turn`` (None if there is none)."""
    around = [o for o in turns if o.speaker != turn.speaker and o.start_s <= turn.start_s and turn.end_s <= o.end_s]
    return max(around, key=lambda o: (o.end_s - o.start_s, -o.start_s)) if around else None


def _own_words(turn: SpeakerTurn, words: Sequence[AttributedWord]) -> list[AttributedWord]:
    """Words attributed to the turn's speaker whose midpoint lies in the turn, in time order."""
    return sorted((w for w in words if w.speaker == turn.speaker
                   and turn.start_s <= (w.start_s + w.end_s) / 2 <= turn.end_s), key=lambda w: w.start_s)


def find_listener_turns(
    diarization: Diarization,
    words: Sequence[AttributedWord] | None = None,
    *,
    options: ListenerTurnOptions = ListenerTurnOptions(),
) -> tuple[ListenerTurn, ...]:
    """Short diarization turns lying wholly inside another speaker's turn (module docstring).

    Parameters
    ----------
    diarization : Diarization
        Speaker turns; turns of different speakers may overlap.
    words : sequence of AttributedWord, optional
        Words with their speakers. When given, a nested turn in which the listener has a transcribed word
        that is not a backchannel token is left out (an interjection); without words every nested turn counts.
    options : ListenerTurnOptions

    Returns
    -------
    tuple of ListenerTurn
        In time order.
    """
    vocab = frozenset(load_lexicon("backchannels")["tokens"])
    turns = diarization.turns
    out: list[ListenerTurn] = []
    for t in turns:
        if t.end_s - t.start_s > options.max_s:
            continue
        around = _enclosing_turn(t, turns)
        if around is None:
            continue
        own = _own_words(t, words) if words is not None else []
        tokens = [tok for tok in (normalise_token(w.text) for w in own) if tok]
        if not all(tok in vocab for tok in tokens):
            continue
        out.append(ListenerTurn(t.start_s, t.end_s, t.speaker, around.speaker, " ".join(w.text for w in own)))
    return tuple(sorted(out))


def measure_listener_turns(
    words: Sequence[AttributedWord],
    diarization: Diarization,
    roles: RoleAssignment,
    *,
    options: ListenerTurnOptions = ListenerTurnOptions(),
) -> tuple[tuple[Marker, ...], tuple[Indicator, ...]]:
    """Listener-turn markers and per-role indicators of one session.

    Parameters
    ----------
    words : sequence of AttributedWord
    diarization : Diarization
    roles : RoleAssignment
        Maps diarization labels to roles: a turn counts for the role of its speaker (the listener).
    options : ListenerTurnOptions

    Returns
    -------
    (markers, indicators) : tuple of Marker, tuple of Indicator
        Markers of kind ``listener_turn`` (role: the listener; value: the turn's duration in s; detail JSON
        ``over``: the role holding the floor, ``quote``: the listener's transcribed words, usually empty), in
        time order. Indicators for each role in (therapist, client): ``listener_turn_count`` (count) and
        ``listener_turn_rate`` (per minute of the other role's speaking time; None when it is 0).
    """
    role_of = roles.role_of
    found = find_listener_turns(diarization, words, options=options)
    markers = tuple(Marker("listener_turn", role_of(t.speaker), t.start_s, t.end_s, round(t.duration_s, 3),
                           json.dumps({"over": role_of(t.over), "quote": quote(t.text)})) for t in found)
    talk = speaking_time_s(diarization)
    ind: list[Indicator] = []
    for role in ROLES:
        other = "client" if role == "therapist" else "therapist"
        n = sum(1 for t in found if role_of(t.speaker) == role)
        other_s = sum(v for s, v in talk.items() if role_of(s) == other)
        ind += [
            Indicator("listener_turn_count", role, float(n), "count"),
            Indicator("listener_turn_rate", role, 60.0 * n / other_s if other_s > 0 else None,
                      "per min of the other's speech"),
        ]
    return markers, tuple(ind)
