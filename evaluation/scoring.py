"""Accuracy of an analysed session against a render's exact truth (shared by the benches and the tests).

:func:`score_against_truth`: WER, DER, roles, word attribution, long silences, for a
:class:`~pipeline.analysis.session.SessionAnalysis` (which holds its diarization).
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable
from itertools import accumulate
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from evaluation.synthetic import SessionTruth
    from pipeline.analysis.session import SessionAnalysis
    from pipeline.types import Diarization


def truth_role_lookup(truth: SessionTruth) -> Callable[[float], str | None]:
    """A function giving the role of the first truth utterance (in script order) that contains a time.

    Binary search over the utterance starts, so it stays fast on sessions of thousands of utterances.
    """
    utts = sorted(truth.utterances, key=lambda u: (u.start_s, u.index))
    starts = [u.start_s for u in utts]
    reach = list(accumulate((u.end_s for u in utts), max))  # latest end among the first k utterances

    def role_at(t: float) -> str | None:
        best = None
        j = bisect_right(starts, t) - 1
        while j >= 0 and reach[j] >= t:
            if utts[j].end_s >= t and (best is None or utts[j].index < best.index):
                best = utts[j]
            j -= 1
        return best.role if best is not None else None

    return role_at


def score_against_truth(truth: SessionTruth, result: SessionAnalysis, diarization: Diarization | None = None) -> dict:
    """Accuracy of one analysed session against its rendered truth.

    Returns
    -------
    dict
        ``wer`` (all truth text against all recognised words), ``der`` (no collar), ``role_correct``
        (every diarization label that owns words got the role most of its words have in the truth),
        ``attribution_accuracy`` (share of words inside a truth utterance whose role is that utterance's),
        ``long_silence_recall`` (truth silences of 2 s or more with a ``long_silence`` marker starting
        within 0.25 s), ``long_silences_found``, ``long_silences_true``.
    """
    from evaluation.metrics import diarization_error_rate, word_error_rate

    diarization = diarization if diarization is not None else result.diarization

    ref = " ".join(u.text for u in truth.utterances)
    hyp = " ".join(w.text for w in result.words)
    role_at = truth_role_lookup(truth)
    correct = counted = 0
    majority: dict[str, dict[str, int]] = {}
    for w in result.words:
        owner = role_at(0.5 * (w.start_s + w.end_s))
        if owner is None:
            continue
        counted += 1
        correct += owner == result.roles.role_of(w.speaker)
        if w.speaker is not None:
            votes = majority.setdefault(w.speaker, {})
            votes[owner] = votes.get(owner, 0) + 1
    roles_ok = bool(majority) and all(result.roles.role_of(label) == max(v, key=v.get)
                                      for label, v in majority.items())
    truth_long = [s for s in truth.silences if s.duration_s >= 2.0]
    found = [m for m in result.measures.markers if m.kind == "long_silence"]
    hits = sum(any(abs(m.start_s - s.start_s) <= 0.25 for m in found) for s in truth_long)
    return {
        "wer": round(word_error_rate(ref, hyp), 4),
        "der": round(diarization_error_rate(truth.as_diarization(), diarization), 4),
        "role_correct": roles_ok,
        "attribution_accuracy": round(correct / counted, 4) if counted else None,
        "long_silence_recall": round(hits / len(truth_long), 3) if truth_long else None,
        "long_silences_found": len(found),
        "long_silences_true": len(truth_long),
    }
