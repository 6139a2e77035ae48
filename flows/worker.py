"""The Prefect process worker for this project's deployments: ``python -m flows.worker --pool local``.

The same command as ``prefect worker start`` (every argument is passed on), with one difference: a single
SIGTERM stops it cleanly wherever it was started. Prefect's worker handles SIGTERM by sending itself SIGINT
(``prefect.utilities.processutils.setup_signal_handlers_worker``) and stops on the ``KeyboardInterrupt`` that
SIGINT raises; a second SIGTERM sends SIGKILL. Python raises ``KeyboardInterrupt`` on SIGINT only where the
process did not inherit SIGINT as ignored (Python's ``signal`` documentation), and a process started in the
background of a non-interactive shell (``cmd &`` in a script, CI, a test harness) inherits it ignored: there
the first SIGTERM is swallowed and only the second one ends the worker, with SIGKILL. Restoring Python's
default SIGINT handler before Prefect's CLI starts makes the first SIGTERM stop the worker (exit 0).
"""

from __future__ import annotations

import signal
import sys

import pipeline  # noqa: F401  (offline, telemetry-off environment first)


def restore_sigint() -> None:
    """SIGINT raises ``KeyboardInterrupt`` again, even where it was inherited as ignored."""
    signal.signal(signal.SIGINT, signal.default_int_handler)


def main(argv: list[str] | None = None) -> int:
    """``prefect worker start ARGV...`` in this process, with SIGINT restored first."""
    restore_sigint()
    from prefect.cli import app

    sys.argv = ["prefect", "worker", "start", *(sys.argv[1:] if argv is None else argv)]
    result = app()
    return result if isinstance(result, int) else 0


if __name__ == "__main__":  # pragma: no cover - run as a process by the worker test
    sys.exit(main())
