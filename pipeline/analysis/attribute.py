"""Attribute each recognised word to a diarization speaker and rebuild turns.

The base rule (whisperX's order, without mutation): a word goes to the speaker whose diarization turns
overlap the word's span the most (summed over that speaker's turns); a word overlapping no turn goes to the
speaker of the nearest turn in time. Turns are then runs of consecutive words by one speaker.

Overlapped speech (``method="overlap-aware"``, the default). Single-stream ASR transcribes one voice where two
people talk at once, so the base rule misattributes words where two speakers' diarization turns overlap. A word
that overlaps turns of two speakers that overlap each other is decided instead by:

- **Nested turns** (one speaker's turn lies wholly inside the other's: a backchannel, a brief interjection): the
  word goes to the speaker of the enclosing turn, who holds the floor before and after, unless it is part of a
  standalone backchannel (its sentence, by the ASR's punctuation, is at most ``max_words`` tokens all in
  ``lexicons/backchannels.json``, e.g. "Yeah." or "I see."), which goes to the nested turn's speaker.
- **Staggered turns** (an interruption or a fast hand-over: one turn ends while the other starts): the speaker
  changes at a sentence end. Of the sentence-final words (ending in ``.``, ``?`` or ``!``) among the words that
  overlap both turns, and the word just before them, the one ending nearest to the middle of the two turns'
  overlap splits them: words up to it go to the earlier turn's speaker, later words to the later one's. Without
  a sentence end there, the base rule applies.

``method="max-overlap"`` is the base rule alone (the behaviour before issue #14).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from pipeline.errors import ConfigError
from pipeline.lexicons import load_lexicon, normalise_token
from pipeline.types import AttributedWord, Diarization, SpeakerTurn, Turn, Word

METHODS = ("overlap-aware", "max-overlap")
_SENTENCE_END = (".", "?", "!", "\u2026")


def assign_words(
    words: Sequence[Word], diarization: Diarization, *, method: str = "overlap-aware"
) -> tuple[AttributedWord, ...]:
    """Give each word a speaker: the one it overlaps most, refined inside overlapped speech.

    Parameters
    ----------
    words : sequence of Word
        ASR words in time order.
    diarization : Diarization
        Speaker turns (may overlap).
    method : {"overlap-aware", "max-overlap"}
        ``"max-overlap"``: the base rule only; ``"overlap-aware"``: the base rule, with the words inside two
        speakers' overlapping turns decided as the module docstring describes.

    Returns
    -------
    tuple of AttributedWord
        Same length and order as ``words``; ``speaker`` is None only when the diarization is empty.

    Raises
    ------
    ConfigError
        Unknown ``method``.
    """
    if method not in METHODS:
        raise ConfigError(f"method must be one of {METHODS}, got {method!r}")
    turns = diarization.turns
    if not turns:
        return tuple(AttributedWord(w.start_s, w.end_s, w.text, w.probability, None) for w in words)
    starts = np.array([t.start_s for t in turns])  # shape: (n_turns,)
    ends = np.array([t.end_s for t in turns])
    speakers = sorted({t.speaker for t in turns})
    speaker_index = np.array([speakers.index(t.speaker) for t in turns])
    chosen: list[str] = []
    pairs: list[tuple[int, int] | None] = []  # per word: (earlier turn, later turn) of two overlapping speakers
    for w in words:
        overlap = np.clip(np.minimum(ends, w.end_s) - np.maximum(starts, w.start_s), 0.0, None)
        per_speaker = np.bincount(speaker_index, weights=overlap, minlength=len(speakers))
        if per_speaker.max() > 0:
            chosen.append(speakers[int(per_speaker.argmax())])
        else:
            mid = 0.5 * (w.start_s + w.end_s)
            distance = np.maximum(starts - mid, 0.0) + np.maximum(mid - ends, 0.0)
            chosen.append(turns[int(distance.argmin())].speaker)
        pairs.append(_overlapping_pair(overlap, speaker_index, per_speaker, starts, ends)
                     if method == "overlap-aware" and np.count_nonzero(per_speaker) >= 2 else None)
    if method == "overlap-aware":
        chosen = _resolve_overlaps(words, turns, chosen, pairs)
    return tuple(AttributedWord(w.start_s, w.end_s, w.text, w.probability, speaker)
                 for w, speaker in zip(words, chosen, strict=True))


def _overlapping_pair(overlap: np.ndarray, speaker_index: np.ndarray, per_speaker: np.ndarray, starts: np.ndarray,
                      ends: np.ndarray) -> tuple[int, int] | None:
    """The word's most-overlapping turn of each of its two main speakers, (earlier, later), if they overlap."""
    top = np.argsort(per_speaker)[::-1][:2]
    a, b = (int(np.flatnonzero(speaker_index == s)[np.argmax(overlap[speaker_index == s])]) for s in top)
    if min(ends[a], ends[b]) - max(starts[a], starts[b]) <= 0:
        return None
    return (a, b) if (starts[a], -ends[a]) <= (starts[b], -ends[b]) else (b, a)


def _resolve_overlaps(words: Sequence[Word], turns: Sequence[SpeakerTurn], chosen: list[str],
                      pairs: list[tuple[int, int] | None]) -> list[str]:
    """Re-decide the words that lie in two speakers' overlapping turns (nested or staggered)."""
    out = list(chosen)
    ends_sentence = [w.text.strip().endswith(_SENTENCE_END) for w in words]
    standalone = _standalone_backchannels(words, ends_sentence)
    k = 0
    while k < len(words):
        pair = pairs[k]
        if pair is None:
            k += 1
            continue
        first, second = (turns[i] for i in pair)
        run_end = k
        while run_end + 1 < len(words) and pairs[run_end + 1] == pair:
            run_end += 1
        if second.end_s <= first.end_s:  # nested: the second turn lies inside the first
            for j in range(k, run_end + 1):
                out[j] = second.speaker if standalone[j] else first.speaker
        else:  # staggered: split at the sentence end nearest the middle of the turns' overlap
            middle = 0.5 * (second.start_s + first.end_s)
            cuts = [j for j in range(max(k - 1, 0), run_end + 1) if ends_sentence[j]]
            if cuts:
                cut = min(cuts, key=lambda j: abs(words[j].end_s - middle))
                for j in range(k, run_end + 1):
                    out[j] = first.speaker if j <= cut else second.speaker
        k = run_end + 1
    return out


def _standalone_backchannels(words: Sequence[Word], ends_sentence: Sequence[bool]) -> list[bool]:
    """Per word: its sentence (by punctuation) is a short run of backchannel tokens only ("Yeah.", "I see.")."""
    lex = load_lexicon("backchannels")
    vocab, max_words = frozenset(lex["tokens"]), int(lex["max_words"])
    out = [False] * len(words)
    start = 0
    for k in range(len(words)):
        if ends_sentence[k] or k == len(words) - 1:
            tokens = [t for t in (normalise_token(w.text) for w in words[start:k + 1]) if t]
            if tokens and len(tokens) <= max_words and all(t in vocab for t in tokens):
                out[start:k + 1] = [True] * (k + 1 - start)
            start = k + 1
    return out


def build_turns(words: Sequence[AttributedWord], *, unknown_speaker: str = "UNKNOWN") -> tuple[Turn, ...]:
    """Group consecutive words by the same speaker into turns.

    Returns
    -------
    tuple of Turn
        Indexed from 0 in time order; text is the words joined by single spaces.
    """
    turns: list[Turn] = []
    run: list[AttributedWord] = []

    def flush() -> None:
        if run:
            speaker = run[0].speaker or unknown_speaker
            text = " ".join(w.text for w in run)
            turns.append(Turn(len(turns), speaker, run[0].start_s, run[-1].end_s, text, len(run)))

    for w in words:
        if run and w.speaker != run[-1].speaker:
            flush()
            run = []
        run.append(w)
    flush()
    return tuple(turns)
