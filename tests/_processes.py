"""The process table as the fault tests read it: processes of a test (by a folder in their command line or
environment) and a short `ps` listing."""
import os
import re
import subprocess
import time


def project_processes(marker: str) -> list[str]:
    """``pid cmdline`` of every process but this one whose command line or environment names ``marker``."""
    out = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        if int(pid) == os.getpid():
            continue
        try:
            with open(f"/proc/{pid}/environ", "rb") as f:
                env = f.read()
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmd = f.read()
        except OSError:
            continue
        if marker.encode() in env or marker.encode() in cmd:
            shown = cmd.replace(b"\0", b" ").decode(errors="replace")[:150]
            out.append(f"{pid} {shown}")
    return out


def process_table() -> str:
    """The Python, uvicorn and Prefect lines of ``ps`` (pid, parent, memory, age, command)."""
    ps = subprocess.run(["ps", "-eo", "pid,ppid,rss,etime,args"], capture_output=True, text=True).stdout
    lines = ps.splitlines()
    return "\n".join([lines[0]] + [line[:160] for line in lines[1:] if re.search(r"python|uvicorn|prefect", line)])


def wait_gone(marker: str, timeout: float = 10) -> list[str]:
    """``project_processes(marker)`` once it is empty or ``timeout`` seconds have passed."""
    deadline = time.monotonic() + timeout
    while (left := project_processes(marker)) and time.monotonic() < deadline:
        time.sleep(0.2)
    return left
