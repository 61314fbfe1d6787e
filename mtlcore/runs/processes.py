"""Which host we are on, whether a process is alive, and how to stop one."""
from __future__ import annotations

import os
import signal
import socket
import time


def host_name() -> str:
    return socket.gethostname()


def worker_name(pid: int | None = None) -> str:
    """How a worker is named in the store: ``host:pid``."""
    return f"{host_name()}:{os.getpid() if pid is None else pid}"


def pid_alive(pid: int) -> bool:
    """True if process ``pid`` exists on this host and is not a zombie.

    A killed child stays a zombie until its parent reaps it, and
    ``os.kill(pid, 0)`` still succeeds on a zombie, so on Linux we also read
    its state from /proc.
    """
    if pid <= 0:
        return False
    if os.name == "nt":
        return True  # on Windows os.kill(pid, 0) would end the process: rely on heartbeats there
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, but owned by someone else
        return True
    except OSError:
        return False
    try:
        with open(f"/proc/{pid}/stat") as stat:
            # "pid (name) STATE ...": the name may hold spaces, so split after ")".
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True  # no /proc (macOS): trust os.kill


def stop_process(pid: int, timeout: float = 10.0) -> None:
    """SIGTERM ``pid`` (a worker then stops its run cleanly), SIGKILL after ``timeout`` s."""
    for sig, wait in ((signal.SIGTERM, timeout), (getattr(signal, "SIGKILL", signal.SIGTERM), 5.0)):
        try:
            os.kill(pid, sig)
        except OSError:
            return
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            _reap(pid)
            if not pid_alive(pid):
                return
            time.sleep(0.05)


def _reap(pid: int) -> None:
    """Collect the exit status of ``pid`` if it is our child (so it does not linger as a zombie)."""
    try:
        os.waitpid(pid, os.WNOHANG)
    except (ChildProcessError, OSError, AttributeError):
        pass
