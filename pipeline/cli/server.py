"""``alliance server``: a long-lived local Prefect server, so single runs skip Prefect's start-up.

Every ``alliance process`` otherwise starts Prefect's API server for itself (in the background, while the
models load: see ``flows/server.py``). On a machine that processes recordings all day, start it once:

    alliance server --db /data/alliance.duckdb            # keep it running (a terminal, a service)
    export PREFECT_API_URL=http://127.0.0.1:4200/api      # in the shells that run alliance

The server listens on loopback only, answers only clients that send the secret kept in its owner-only
folder (Prefect's basic auth, ``pipeline/prefect_auth.py``), keeps its records in the database's folder
(``.alliance-prefect``, owner-only) and has telemetry off like every command.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

from pipeline.cli.args import add_db_argument


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "server", help="run a long-lived local Prefect server (single runs then skip its start-up)",
        description="Run Prefect's API server on 127.0.0.1 with its records next to the database (DB's folder, "
        ".alliance-prefect, owner-only) until Ctrl-C. Then set PREFECT_API_URL in the shells that run "
        "`alliance process` / `alliance batch`: they use this server instead of starting one each time, and "
        "`consent withdraw` deletes flow runs through it. Needed by `alliance batch --engine dask`.")
    add_db_argument(p)
    p.add_argument("--port", type=int, default=4200, help="loopback port (default 4200)")
    p.set_defaults(handler=_cmd_server)


def _cmd_server(args: argparse.Namespace) -> int:
    from pipeline.offline import prefect_home_for
    from pipeline.prefect_auth import CLIENT_ENV, SERVER_ENV, auth_file, ensure_auth_string
    from pipeline.private_files import private_dir

    home = str(private_dir(prefect_home_for(args.db)))
    env = {k: v for k, v in os.environ.items() if k not in ("PREFECT_API_URL", CLIENT_ENV)}
    env["PREFECT_HOME"] = home
    env[SERVER_ENV] = ensure_auth_string(home)  # basic auth: only who can read the owner-only folder gets in
    url = f"http://127.0.0.1:{args.port}/api"
    print(f"Prefect server for {Path(args.db).resolve().parent} on {url} (records in {home}; clients must "
          f"authenticate with the secret in {auth_file(home)}).\n"
          f"In the shells that run alliance:  export PREFECT_API_URL={url}\n"
          "(alliance commands for this database read the secret themselves; other Prefect clients: "
          f"export PREFECT_API_AUTH_STRING=\"$(cat {auth_file(home)})\")\nCtrl-C stops it.", flush=True)
    prefect = str(Path(sys.executable).with_name("prefect"))
    command = [prefect if os.path.exists(prefect) else "prefect", "server", "start", "--host", "127.0.0.1",
               "--port", str(args.port)]
    proc = subprocess.Popen(command, env=env)
    try:
        return proc.wait()
    except KeyboardInterrupt:
        proc.terminate()
        proc.wait(timeout=30)
        return 0
