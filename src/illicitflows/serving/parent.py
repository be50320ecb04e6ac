"""A worker process that ends with the server that started it.

``bentoml serve`` runs a supervisor (circus) that starts the worker in a session of its own;
when the supervisor is killed (``kill -9``, a crash) the worker used to live on, holding the
listening socket, so the next ``illicitflows serve`` failed with "Address already in use".
On Linux the worker asks the kernel for SIGTERM when its parent dies (``PR_SET_PDEATHSIG``):
it then shuts down as if stopped, and its audit writer, whose pipe closes, commits the batch
in hand and exits. Elsewhere this does nothing.
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import sys

#: Set by ``illicitflows serve`` to its own pid (the supervisor's, after ``execve``).
SERVER_PID_ENV = "ILLICITFLOWS_SERVER_PID"
_PR_SET_PDEATHSIG = 1
log = logging.getLogger(__name__)


def end_with_parent(sig: int = signal.SIGTERM) -> bool:
    """Have the kernel send ``sig`` to this process when its parent dies; if the parent is
    already gone (another than the server's pid, when known), send it now. Whether it could
    be set (Linux only)."""
    if not sys.platform.startswith("linux"):
        return False
    expected = int(os.environ.get(SERVER_PID_ENV) or os.getppid())
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(_PR_SET_PDEATHSIG, int(sig), 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), os.strerror(ctypes.get_errno()))
    except (OSError, AttributeError) as error:
        log.warning("cannot ask to end with the server process: %s", error)
        return False
    if os.getppid() != expected:  # the parent died before the request took effect
        os.kill(os.getpid(), sig)
    return True
