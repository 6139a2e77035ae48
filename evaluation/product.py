"""The product's own stage sequence, for benches: what they time and score is what ``alliance process`` runs.

:func:`compute` is :func:`pipeline.engine.sequence.compute_session` (decode, transcription || diarization
with the prosody frames, analysis with NER de-identification) on a bench recording with a research-scope
consent made up for it; :func:`load_models` loads (and times) every model that sequence uses, so a bench can
report model loading apart from compute.
"""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path
from typing import Any

BENCH_CLIENT, BENCH_THERAPIST = "bench-client", "bench-therapist"


def bench_meta(session_id: str, *, num_speakers: int = 2) -> Any:
    """A :class:`~pipeline.analysis.session.SessionMeta` for a bench recording (pseudonymous bench ids)."""
    from pipeline.analysis.session import SessionMeta

    return SessionMeta(session_id, BENCH_CLIENT, BENCH_THERAPIST, dt.date(2026, 1, 1), num_speakers=num_speakers)


def bench_consent(meta: Any) -> Any:
    """A research-scope consent record matching ``meta`` (benches process renders of public data)."""
    from pipeline.privacy.consent import parse_consent

    return parse_consent({"session_id": meta.session_id, "client_id": meta.client_id, "scope": "research",
                          "consented_on": "2026-01-01", "consented_by": ["client", "therapist"]}, source="bench")


def load_models(options: Any) -> float:
    """Load every model :func:`compute` uses into the runtime's per-process cache; return the seconds taken."""
    from pipeline.engine import sequence

    started = time.perf_counter()
    sequence.get_transcriber(options.transcribe)
    sequence.get_diarizer(options.diarize)
    sequence.get_nlp()
    sequence.get_ner_nlp()
    return time.perf_counter() - started


def compute(audio: Path, options: Any, *, session_id: str | None = None, num_speakers: int = 2) -> Any:
    """:func:`~pipeline.engine.sequence.compute_session` of ``audio``: a ``Computed`` with ``timings``.

    Raises
    ------
    RuntimeError
        The recording ended failed (the message gives the stage and code): a bench row must not silently
        score nothing.
    """
    from pipeline.engine import sequence

    meta = bench_meta(session_id or Path(audio).stem, num_speakers=num_speakers)
    computed = sequence.compute_session(Path(audio), meta, bench_consent(meta), options=options)
    if computed.analysis is None:
        o = computed.outcome
        raise RuntimeError(f"{Path(audio).name}: failed at {o.stage if o else '?'} "
                           f"({o.error_code if o else '?'}): {o.message if o else ''}")
    return computed
