"""Where the benches write: ``bench/results/<stem>.json`` (the figures) and ``<stem>.md`` (the table the docs cite)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"


def write_results(stem: str, doc: Any, md: str, *, results: Path = RESULTS) -> None:
    """Write ``doc`` as JSON and ``md`` as Markdown under ``results``, and print the Markdown."""
    results.mkdir(parents=True, exist_ok=True)
    (results / f"{stem}.json").write_text(json.dumps(doc, indent=1, default=str) + "\n")
    (results / f"{stem}.md").write_text(md)
    print(md)
