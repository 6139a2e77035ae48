"""System combination of ASR hypotheses: ROVER word voting over Whisper greedy, Whisper beam 5 and Moonshine.

ROVER (Fiscus 1997, "A post-processing system to yield reduced word error rates: Recognizer Output Voting Error
Reduction"): the hypotheses of one recording are aligned into a word transition network, one slot per aligned
position, each hypothesis giving a word or nothing (a null arc, a deletion) to every slot; each slot then votes.

1. **Alignment** (:func:`align`): the first hypothesis is the network; every further one is aligned to the slots'
   current majority words by Levenshtein alignment (``kaldialign``, Kaldi's edit-distance alignment), on words
   compared case- and punctuation-blind (:func:`word_key`); a word aligned to no slot opens a new slot.
2. **Voting** (:func:`vote`): in each slot, a candidate (a word key, or the null arc) scores
   ``alpha * (hypotheses choosing it / hypotheses) + (1 - alpha) * confidence``, the confidence being the highest
   word probability among the hypotheses choosing it (Whisper's word probabilities; a hypothesis without word
   confidences, Moonshine, gives every word a fixed ``Hypothesis.confidence``), and ``null_confidence`` for the
   null arc. The best candidate wins, so a word two systems deleted can lose to nothing. A winning word keeps
   the text, times and probability of the hypothesis that gave it the highest confidence.

:class:`CombinedTranscriber` runs the parts (:func:`rover_parts`) one after the other on the whole recording and
combines them: ``TranscribeOptions(backend="rover")``. Measured on the realistic bench
(``docs/realistic_bench.md``, "System combination").
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from pipeline.asr.base import tidy_words
from pipeline.types import SAMPLE_RATE_HZ, Transcript, Word

__all__ = ["CombinedTranscriber", "Hypothesis", "RoverOptions", "align", "combine_words", "rover_parts", "vote",
           "word_key"]

NAME = "rover"
_EPS = -1  # kaldialign's gap symbol (word keys are numbered from 0)
_PUNCT = re.compile(r"[^\w']+")


@dataclass(frozen=True)
class RoverOptions:
    """How slots vote (see the module docstring).

    ``moonshine_confidence``, ``alpha`` and ``null_confidence`` were chosen on the realistic bench's session
    annomi-46 only (``bench/tune_rover.py``; session annomi-131 is the check).
    """

    alpha: float = 0.7
    null_confidence: float = 0.7
    moonshine_confidence: float = 0.6

    def __post_init__(self) -> None:
        for name in ("alpha", "null_confidence", "moonshine_confidence"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not 0.0 <= value <= 1.0:
                raise ValueError(f"{name}={value!r} must be a number in [0, 1]")


@dataclass(frozen=True)
class Hypothesis:
    """One system's words for the whole recording, in time order.

    ``confidence``: None uses each word's ``probability``; a number is used for every word instead (a system
    whose words carry no confidence of their own).
    """

    words: tuple[Word, ...]
    confidence: float | None = None

    def confidence_of(self, word: Word) -> float:
        return float(word.probability) if self.confidence is None else float(self.confidence)


def word_key(text: str) -> str:
    """What two systems' words are compared by: lower case without punctuation (``"Okay,"`` -> ``"okay"``)."""
    key = _PUNCT.sub("", text.lower()).strip("'")
    return key or text.strip().lower()


def align(hypotheses: Sequence[Hypothesis]) -> list[list[int | None]]:
    """The word transition network: slots in order, each with every hypothesis's word index or None (null arc).

    Each hypothesis after the first is aligned (minimum edit distance, ``kaldialign.align``) to the slots'
    representative words: the key most hypotheses gave the slot so far (ties: the earliest hypothesis's).
    """
    import kaldialign

    ids: dict[str, int] = {}

    def key_ids(h: Hypothesis) -> list[int]:
        return [ids.setdefault(word_key(w.text), len(ids)) for w in h.words]

    keys = [key_ids(h) for h in hypotheses]
    slots: list[list[int | None]] = []
    for k, hyp_keys in enumerate(keys):
        if k == 0:
            slots = [[i] for i in range(len(hyp_keys))]
            continue
        reps = [_representative(slot, keys) for slot in slots]
        merged: list[list[int | None]] = []
        s = w = 0
        for ref, hyp in kaldialign.align(reps, hyp_keys, _EPS):
            if ref == _EPS:  # a word no slot has: a new slot, null for the hypotheses before
                merged.append([None] * k + [w])
                w += 1
            elif hyp == _EPS:  # this hypothesis has nothing here
                merged.append([*slots[s], None])
                s += 1
            else:
                merged.append([*slots[s], w])
                s += 1
                w += 1
        slots = merged
    return slots


def _representative(slot: list[int | None], keys: list[list[int]]) -> int:
    counts: dict[int, int] = {}
    for h, i in enumerate(slot):
        if i is not None:
            counts[keys[h][i]] = counts.get(keys[h][i], 0) + 1
    return max(counts, key=lambda c: counts[c])  # dicts keep insertion order: ties go to the earliest


def vote(slot: Sequence[int | None], hypotheses: Sequence[Hypothesis], options: RoverOptions) -> Word | None:
    """The winning word of one slot, or None when the null arc wins."""
    n = len(hypotheses)
    best: dict[str, tuple[int, float, Word]] = {}  # key -> (votes, highest confidence, that word)
    nulls = 0
    for h, i in zip(hypotheses, slot, strict=True):
        if i is None:
            nulls += 1
            continue
        word = h.words[i]
        key, conf = word_key(word.text), h.confidence_of(word)
        votes, top, top_word = best.get(key, (0, -1.0, word))
        best[key] = (votes + 1, conf, word) if conf > top else (votes + 1, top, top_word)
    winner: Word | None = None
    score = (options.alpha * nulls / n + (1 - options.alpha) * options.null_confidence) if nulls else -1.0
    for votes, conf, word in best.values():
        s = options.alpha * votes / n + (1 - options.alpha) * conf
        if s > score:  # strictly: a tie keeps the null arc, then the earliest hypothesis's word
            winner, score = word, s
    return winner


def combine_words(hypotheses: Sequence[Hypothesis], options: RoverOptions | None = None) -> tuple[Word, ...]:
    """ROVER: align the hypotheses into slots and keep each slot's winning word (times from its hypothesis)."""
    options = options or RoverOptions()
    live = [h for h in hypotheses if h.words]
    if not live:
        return ()
    if len(live) < len(hypotheses):  # an empty hypothesis votes null in every slot
        live = [*live, *(h for h in hypotheses if not h.words)]
    return tuple(w for slot in align(live) if (w := vote(slot, live, options)) is not None)


# --------------------------------------------------------------------------- the transcriber


def rover_parts(options: Any, rover: RoverOptions | None = None) -> tuple[tuple[Any, float | None], ...]:
    """The systems combined for ``TranscribeOptions(backend="rover")``: (their options, fixed confidence or None).

    Whisper beam 5 first (the best single system of the realistic bench, so the network's first hypothesis),
    Whisper greedy, then Moonshine (whose words carry no confidence of their own: ``moonshine_confidence``).
    """
    rover = rover or RoverOptions()
    whisper = dataclasses.replace(options, backend="faster-whisper")
    return ((dataclasses.replace(whisper, beam_size=5), None), (dataclasses.replace(whisper, beam_size=1), None),
            (dataclasses.replace(options, backend="moonshine", beam_size=1), rover.moonshine_confidence))


def combine_transcripts(transcripts: Sequence[Transcript], confidences: Sequence[float | None], *,
                        duration_s: float, options: RoverOptions | None = None) -> Transcript:
    """One transcript from the parts' transcripts (same recording), words combined by :func:`combine_words`."""
    hyps = [Hypothesis(t.words, c) for t, c in zip(transcripts, confidences, strict=True)]
    first = transcripts[0]
    names = dict.fromkeys(t.model_name for t in transcripts)
    return Transcript(words=tidy_words(combine_words(hyps, options), duration_s=duration_s), language=first.language,
                      language_probability=first.language_probability, backend=NAME, model_name="+".join(names),
                      segments=sum(t.segments for t in transcripts),
                      segments_dropped=sum(t.segments_dropped for t in transcripts),
                      words_dropped=max((t.words_dropped for t in transcripts), default=0))


class CombinedTranscriber:
    """Transcriber: every part on the whole recording, one after the other, words combined by ROVER.

    Parameters
    ----------
    parts : sequence of (Transcriber, fixed confidence or None)
    rover : RoverOptions
    """

    name = NAME

    def __init__(self, parts: Sequence[tuple[Any, float | None]], *, rover: RoverOptions | None = None) -> None:
        if not parts:
            raise ValueError("a combination needs at least one part")
        self.parts, self.rover = tuple(parts), rover or RoverOptions()
        self.model_name = "+".join(dict.fromkeys(p.model_name for p, _ in self.parts))

    def transcribe(self, samples: np.ndarray, *, progress: Any = None) -> Transcript:
        """Transcribe with every part, then combine; ``progress`` sees each part's share in turn."""
        n = len(self.parts)
        transcripts = []
        for k, (part, _) in enumerate(self.parts):
            hook = None if progress is None else (lambda f, k=k: progress(min((k + f) / n, 1.0)))
            transcripts.append(part.transcribe(samples, progress=hook))
        return combine_transcripts(transcripts, [c for _, c in self.parts],
                                   duration_s=np.asarray(samples).shape[0] / SAMPLE_RATE_HZ, options=self.rover)
