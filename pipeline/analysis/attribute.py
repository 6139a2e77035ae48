"""Attribute each recognised word to a diarization speaker and rebuild turns.

The rule (whisperX's order, without mutation): a word goes to the speaker whose diarization turns
overlap the word's span the most (summed over that speaker's turns, so overlapped speech is handled);
a word overlapping no turn goes to the speaker of the nearest turn in time. Turns are then runs of
consecutive words by one speaker.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from pipeline.types import AttributedWord, Diarization, Turn, Word


def assign_words(words: Sequence[Word], diarization: Diarization) -> tuple[AttributedWord, ...]:
    """Give each word the speaker it overlaps most.

    Parameters
    ----------
    words : sequence of Word
        ASR words in time order.
    diarization : Diarization
        Speaker turns (may overlap).

    Returns
    -------
    tuple of AttributedWord
        Same length and order as ``words``; ``speaker`` is None only when the diarization is empty.
    """
    turns = diarization.turns
    if not turns:
        return tuple(AttributedWord(w.start_s, w.end_s, w.text, w.probability, None) for w in words)
    starts = np.array([t.start_s for t in turns])  # shape: (n_turns,)
    ends = np.array([t.end_s for t in turns])
    speakers = sorted({t.speaker for t in turns})
    speaker_index = np.array([speakers.index(t.speaker) for t in turns])
    out: list[AttributedWord] = []
    for w in words:
        overlap = np.clip(np.minimum(ends, w.end_s) - np.maximum(starts, w.start_s), 0.0, None)
        per_speaker = np.bincount(speaker_index, weights=overlap, minlength=len(speakers))
        if per_speaker.max() > 0:
            best = speakers[int(per_speaker.argmax())]
        else:
            mid = 0.5 * (w.start_s + w.end_s)
            distance = np.maximum(starts - mid, 0.0) + np.maximum(mid - ends, 0.0)
            best = turns[int(distance.argmin())].speaker
        out.append(AttributedWord(w.start_s, w.end_s, w.text, w.probability, best))
    return tuple(out)


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
