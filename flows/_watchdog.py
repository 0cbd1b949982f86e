"""A watchdog process that ends a process's children when that process dies, SIGKILL included.

``watch()`` starts ``python flows/_watchdog.py PID`` (standard library only, its own session so
Ctrl-C does not reach it) with the read end of a pipe as its stdin; this process keeps the write
end. When this process ends in any way the kernel closes the pipe, the watchdog reads end-of-file
and sends SIGTERM (then, after ``GRACE`` seconds, SIGKILL) to every process it knew as a descendant:
the ones ``adopt(pid)`` named (the temporary Prefect server) and the ones it found by walking
``/proc`` every ``SCAN`` seconds (Dask workers, served flow runs). A process is identified by its
pid and start time, so a recycled pid is never signalled (``data._liveness``).
"""
from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import time

SCAN = 0.5
GRACE = 3.0

if __name__ == "__main__":       # a standard-library script: data/_liveness.py by its path, not the data package
    import importlib.util

    _spec = importlib.util.spec_from_file_location(
        "_liveness", os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "data", "_liveness.py"))
    _liveness = importlib.util.module_from_spec(_spec)
    _spec.loader.exec_module(_liveness)
    alive, descendants, start_time = _liveness.alive, _liveness.descendants, _liveness.start_time
else:
    from data._liveness import alive, descendants, start_time

_pipe: int | None = None
_owner: int | None = None


def watch() -> None:
    """Start this process's watchdog (once per process; forked children start their own)."""
    global _pipe, _owner
    if _owner == os.getpid() or not os.path.isdir("/proc"):
        return
    read, write = os.pipe()   # both ends non-inheritable: only the watchdog's stdin keeps the read end
    subprocess.Popen([sys.executable, os.path.abspath(__file__), str(os.getpid())], stdin=read,
                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
                     env={k: v for k, v in os.environ.items() if k != "PYTHONSTARTUP"})
    os.close(read)
    _pipe, _owner = write, os.getpid()


def adopt(pid: int) -> None:
    """Have the watchdog end ``pid`` with this process (no-op without a watchdog)."""
    started = start_time(pid)
    if _pipe is not None and _owner == os.getpid() and started is not None:
        os.write(_pipe, f"{pid} {started}\n".encode())


def _end(known: dict[int, int]) -> None:
    """SIGTERM to the live ones of ``known``, SIGKILL to those still alive after ``GRACE`` seconds."""
    for sig, wait in ((signal.SIGTERM, GRACE), (signal.SIGKILL, 0.0)):
        targets = {p: s for p, s in known.items() if alive(p, s)}
        for pid in targets:
            try:
                os.kill(pid, sig)
            except OSError:
                pass
        deadline = time.monotonic() + wait
        while wait and time.monotonic() < deadline and any(alive(p, s) for p, s in targets.items()):
            time.sleep(0.05)


def _main(parent: int) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    known: dict[int, int] = {}
    buffer = b""
    while True:
        ready, _, _ = select.select([0], [], [], SCAN)
        if ready:
            data = os.read(0, 4096)
            if not data:
                break
            buffer += data
            *lines, buffer = buffer.split(b"\n")
            for line in lines:
                pid, started = map(int, line.split())
                known[pid] = started
        if alive(parent, None):
            known.update(descendants(parent))
    known.pop(os.getpid(), None)               # the watchdog is one of them
    _end(known)


if __name__ == "__main__":
    _main(int(sys.argv[1]))
