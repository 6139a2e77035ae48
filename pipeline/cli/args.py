"""Arguments shared by the ``alliance`` commands: the database, the acting person and the viewer's role.

Access roles (README, "Privacy and security"): a *clinician* reads summaries and reports of their own
clients' sessions (``--therapist``); a *supervisor* reads any session's; an *admin* everything.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os

from pipeline.errors import AccessDeniedError

DEFAULT_DB = "alliance.duckdb"
#: Environment variable giving the default of ``--db`` (the key files have theirs: ``ALLIANCE_DB_KEY_FILE``,
#: ``ALLIANCE_STUDY_KEY_FILE``).
DB_ENV = "ALLIANCE_DB"
VIEWER_ROLES = ("clinician", "supervisor", "admin")


def _whole_number(text: str, *, minimum: int) -> int:
    try:
        value = int(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from e
    if value < minimum:
        raise argparse.ArgumentTypeError(f"{value} is not at least {minimum}" if minimum else f"{value} is negative")
    return value


def positive_int(text: str) -> int:
    """An integer >= 1 for argparse (``--limit``, counts)."""
    return _whole_number(text, minimum=1)


def non_negative_int(text: str) -> int:
    """An integer >= 0 for argparse (``--link-window-days``)."""
    return _whole_number(text, minimum=0)


def iso_date(text: str) -> dt.date:
    """An ISO date (YYYY-MM-DD) for argparse."""
    try:
        return dt.date.fromisoformat(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(f"{text!r} is not an ISO date (YYYY-MM-DD)") from e


def default_db() -> str:
    """The default of ``--db``: ``$ALLIANCE_DB`` if set (and not empty), else ``alliance.duckdb``."""
    return os.environ.get(DB_ENV) or DEFAULT_DB


def add_db_argument(p: argparse.ArgumentParser) -> None:
    p.add_argument("--db", default=default_db(), metavar="PATH",
                   help=f"DuckDB database file (default: ${DB_ENV}, else {DEFAULT_DB}; created if missing)")


def add_actor_argument(p: argparse.ArgumentParser) -> None:
    p.add_argument("--actor", metavar="NAME", help="who is acting, for the audit log (default: $ALLIANCE_ACTOR "
                   "or the operating-system user)")


def add_viewer_arguments(p: argparse.ArgumentParser) -> None:
    """``--role`` and ``--therapist`` for commands that show a session's content."""
    p.add_argument("--role", choices=VIEWER_ROLES, default="clinician",
                   help="clinician (default: only sessions of --therapist), supervisor or admin (any session)")
    p.add_argument("--therapist", metavar="ID", help="the clinician's therapist id (required for --role clinician)")
    add_actor_argument(p)


def denied(con, session_ids: list[str], args: argparse.Namespace, reason: str) -> AccessDeniedError:
    """Record a refused access in the audit log (action ``denied``) and return the error to raise.

    The audit row holds who asked (``--actor``), the role claimed, the session ids and the reason. A
    connection that cannot write (read-only) still refuses; the refusal is then not logged.
    """
    import duckdb

    from pipeline.storage import audit

    try:
        audit.record(con, action="denied", actor=audit.current_actor(getattr(args, "actor", None)),
                     role=getattr(args, "role", None), session_ids=session_ids, detail=reason)
    except duckdb.Error:
        pass
    return AccessDeniedError(reason)


def check_viewer(con, session_id: str, args: argparse.Namespace) -> None:
    """Refuse a clinician who is not the session's therapist (the message does not reveal whose it is).

    Every refusal is written to the audit log (action ``denied``).
    """
    from pipeline.storage.db import require_session

    session = require_session(con, session_id)
    if args.role == "clinician":
        if not args.therapist:
            raise denied(con, [session_id], args, "a clinician must name themselves with --therapist ID "
                                                  "(or use --role supervisor)")
        if session["therapist_id"] != args.therapist:
            raise denied(con, [session_id], args,
                         f"session {session_id!r} is not a session of therapist {args.therapist!r}")


def add_language_argument(p: argparse.ArgumentParser) -> None:
    """``--language``: the recordings' language (default en, the lexicons' language), or ``auto`` to detect it."""
    p.add_argument("--language", default="en", metavar="CODE",
                   help="language of the recordings (default: en, the language the marker word lists support; "
                   "'auto' detects it over detected speech, but text markers only have English word lists)")


def language_option(value: str) -> str | None:
    """The ``TranscribeOptions.language`` for a ``--language`` value (``auto`` -> None: detect)."""
    return None if value.strip().lower() == "auto" else value.strip().lower()

