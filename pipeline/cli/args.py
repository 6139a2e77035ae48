"""Arguments shared by the ``alliance`` commands: the database, the acting person and the viewer's role.

Access roles (README, "Privacy and security"): a *clinician* reads summaries and reports of their own
clients' sessions (``--therapist``); a *supervisor* reads any session's; an *admin* everything.
"""

from __future__ import annotations

import argparse
import datetime as dt

from pipeline.errors import AccessDeniedError

DEFAULT_DB = "alliance.duckdb"
VIEWER_ROLES = ("clinician", "supervisor", "admin")


def iso_date(text: str) -> dt.date:
    """An ISO date (YYYY-MM-DD) for argparse."""
    try:
        return dt.date.fromisoformat(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(f"{text!r} is not an ISO date (YYYY-MM-DD)") from e


def add_db_argument(p: argparse.ArgumentParser) -> None:
    p.add_argument("--db", default=DEFAULT_DB, metavar="PATH",
                   help=f"DuckDB database file (default: {DEFAULT_DB}; created if missing)")


def add_actor_argument(p: argparse.ArgumentParser) -> None:
    p.add_argument("--actor", metavar="NAME", help="who is acting, for the audit log (default: $ALLIANCE_ACTOR "
                   "or the operating-system user)")


def add_viewer_arguments(p: argparse.ArgumentParser) -> None:
    """``--role`` and ``--therapist`` for commands that show a session's content."""
    p.add_argument("--role", choices=VIEWER_ROLES, default="clinician",
                   help="clinician (default: only sessions of --therapist), supervisor or admin (any session)")
    p.add_argument("--therapist", metavar="ID", help="the clinician's therapist id (required for --role clinician)")
    add_actor_argument(p)


def check_viewer(con, session_id: str, args: argparse.Namespace) -> None:  # noqa: ANN001
    """Refuse a clinician who is not the session's therapist (the message does not reveal whose it is)."""
    from pipeline.storage.db import require_session

    session = require_session(con, session_id)
    if args.role == "clinician":
        if not args.therapist:
            raise AccessDeniedError("a clinician must name themselves with --therapist ID "
                                    "(or use --role supervisor)")
        if session["therapist_id"] != args.therapist:
            raise AccessDeniedError(f"session {session_id!r} is not a session of therapist {args.therapist!r}")
