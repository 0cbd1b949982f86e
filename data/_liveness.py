"""Whether a process still runs, from ``/proc`` (standard library only).

A process is identified by its pid and its start time (clock ticks after boot), so a recycled pid is
never taken for the process that had it. Used by the store (is a run's recorded process alive?) and by
``flows/_watchdog.py``, which runs as a standard-library script and loads this file by its path.
"""
from __future__ import annotations

import os


def _stat(pid: int | str) -> list[bytes] | None:
    """The fields of ``/proc/PID/stat`` after the command name (state first), None when there is no such process."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return None
    return stat[stat.rindex(b")") + 2:].split()


def start_time(pid: int) -> int | None:
    """When process ``pid`` started (clock ticks after boot), None when there is no such process."""
    fields = _stat(pid)
    return None if fields is None else int(fields[19])


def alive(pid: int, started: int | None) -> bool:
    """Whether the process ``pid`` that started at ``started`` still runs (a zombie counts as gone)."""
    fields = _stat(pid)
    return fields is not None and fields[0] != b"Z" and (started is None or int(fields[19]) == started)


def descendants(root: int) -> dict[int, int]:
    """``{pid: start time}`` of every live descendant of ``root``."""
    children: dict[int, list[tuple[int, int]]] = {}
    for entry in filter(str.isdigit, os.listdir("/proc")):
        fields = _stat(entry)
        if fields is not None:
            children.setdefault(int(fields[1]), []).append((int(entry), int(fields[19])))
    out, todo = {}, [root]
    while todo:
        for pid, started in children.get(todo.pop(), ()):
            if pid not in out:
                out[pid] = started
                todo.append(pid)
    return out
