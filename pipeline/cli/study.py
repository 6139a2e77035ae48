"""``alliance study keygen STUDY.key``: a study's pseudonym key (not a database key).

A *study key* makes the keyed pseudonyms a researcher sees (``export``, ``query``, ``export-transcript
--role researcher``): stable within a study, unlinkable across studies. It is read from
``--study-key-file`` or ``ALLIANCE_STUDY_KEY_FILE``. A *database key* (``alliance db keygen``,
``ALLIANCE_DB_KEY_FILE``) encrypts the database file; the two are never interchangeable.
"""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    s = sub.add_parser("study", help="a research study's pseudonym key",
                       description="`keygen STUDY.key` writes a new 256-bit study key readable by you only. "
                       "Researchers pass it with --study-key-file or ALLIANCE_STUDY_KEY_FILE; it makes the "
                       "pseudonyms of one study. It is not a database key (`alliance db keygen`, which encrypts "
                       "the database file).")
    ssub = s.add_subparsers(dest="study_command", required=True, metavar="ACTION")
    k = ssub.add_parser("keygen", help="write a new study key file (mode 0600)")
    k.add_argument("key_file", metavar="STUDY_KEYFILE", help="the file to create (never overwritten)")
    k.set_defaults(handler=_cmd_study_keygen)


def _cmd_study_keygen(args: argparse.Namespace) -> int:
    from pipeline.research.pseudonyms import STUDY_KEY_FILE_ENV
    from pipeline.storage.encryption import generate_key_file

    path = generate_key_file(args.key_file)
    print(f"New study key written to {path} (mode 0600): the pseudonyms of one study. Keep it with the study; "
          f"another key gives unlinkable pseudonyms.\n  export {STUDY_KEY_FILE_ENV}={path.resolve()}")
    return 0
