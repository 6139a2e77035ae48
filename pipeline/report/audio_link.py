"""The optional audio player of the HTML report: a link to a local recording, checked before it is written.

The recording is never embedded: the page holds only a relative path (from the report's folder) in an
``<audio>`` element. The stored consent record says ``clinical`` or ``research`` scope and who consented, not
whether the recording may be replayed from a report, so the link is written only when

- the person making the report confirms that playback was consented (``playback_consented``, the CLI's
  ``--audio-playback-consented``),
- a consent record is stored for the session and no withdrawal is recorded,
- the file's SHA-256 equals the session's ``audio_sha256`` (the right recording, never another client's).

Error messages never name the file (file names may identify people).
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import quote

import duckdb

from pipeline.audio.decode import sha256_of
from pipeline.errors import AllianceError, AudioError
from pipeline.storage.db import require_session


class AudioLinkError(AllianceError):
    """The recording cannot be linked from the report (no confirmed consent, wrong file, unreadable)."""

    code = "audio_link"


def relative_href(audio_path: Path, report_path: Path) -> str:
    """The ``src`` of the ``<audio>`` element: the recording's path relative to the report's folder, URL-quoted."""
    rel = os.path.relpath(audio_path.resolve(), report_path.resolve().parent)
    return quote(Path(rel).as_posix())


def audio_href(con: duckdb.DuckDBPyConnection, session_id: str, audio_path: Path | str, report_path: Path | str, *,
               playback_consented: bool) -> str:
    """Check that the recording may be linked (module docstring) and return its relative link.

    Raises
    ------
    AudioLinkError
        Playback not confirmed, no consent stored, consent withdrawn, a different or unreadable file.
    SessionNotFoundError
        No session has this id.
    """
    session = require_session(con, session_id)
    if not playback_consented:
        raise AudioLinkError("--audio needs --audio-playback-consented: the stored consent (scope and who "
                             "consented) does not say whether the recording may be played from a report, so "
                             "confirm that the client agreed to it")
    if con.execute("SELECT count(*) FROM consents WHERE session_id = ?", [session_id]).fetchone()[0] == 0:
        raise AudioLinkError("no consent record is stored for this session: the recording is not linked")
    if con.execute("SELECT count(*) FROM consent_withdrawals WHERE session_id = ?", [session_id]).fetchone()[0]:
        raise AudioLinkError("consent for this session was withdrawn: the recording is not linked")
    path = Path(audio_path)
    try:
        digest = sha256_of(path)
    except (AudioError, OSError) as e:
        reason = getattr(e, "code", None) or type(e).__name__
        raise AudioLinkError(f"the file given to --audio cannot be read ({reason}): the recording is not linked") from e
    if digest != session["audio_sha256"]:
        raise AudioLinkError("the file given to --audio is not this session's recording (its SHA-256 differs from "
                             "the one stored when the session was processed): not linked")
    return relative_href(path, Path(report_path))
