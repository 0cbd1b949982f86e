"""Prefect's environment for a workspace, set before ``prefect`` is first imported.

Prefect reads its settings when it is imported, so every entry point (the CLI, the tests)
calls :func:`configure` first: Prefect's home (its SQLite database, local storage) then lives
in ``<workspace>/.prefect`` and runs never write into the user's own Prefect profile.
Variables the user has set are kept.
"""
from __future__ import annotations

import fcntl
import logging
import os
import sys
from pathlib import Path

from . import _watchdog

logger = logging.getLogger(__name__)

WORKSPACE_VAR = "LOOKINGGLASS_WORKSPACE"
PACKAGES = ("analysis", "data", "embeddings", "flows", "reports")

DEFAULTS = {
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "DO_NOT_TRACK": "1",
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120",
    "PREFECT_LOGGING_LEVEL": "INFO",
    "PREFECT_SERVER_LOGGING_LEVEL": "WARNING",
    "PREFECT_LOGGING_EXTRA_LOGGERS": ",".join(PACKAGES),
    "PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW": "ignore",
    "TOKENIZERS_PARALLELISM": "false",
}


def prefect_home(workspace: str | Path) -> Path:
    """``<workspace>/.prefect``: where Prefect keeps its database for this workspace."""
    return Path(workspace).expanduser().resolve() / ".prefect"


def configure(workspace: str | Path) -> Path:
    """Point ``PREFECT_HOME`` at the workspace and set quiet defaults; returns the home.

    ``LOOKINGGLASS_WORKSPACE`` records the workspace for processes started later (Dask workers,
    the served flow), which import ``flows.pipeline`` and so call this again with it.
    Must run before ``prefect`` is imported; if it already was (with another home), the
    existing settings stay in force and a warning says so.
    """
    home = prefect_home(workspace)
    home.mkdir(parents=True, exist_ok=True)
    os.environ[WORKSPACE_VAR] = str(Path(workspace).expanduser().resolve())
    if "prefect" in sys.modules and os.environ.get("PREFECT_HOME") != str(home):
        logger.warning("prefect was imported before the workspace was set; PREFECT_HOME stays %s",
                       os.environ.get("PREFECT_HOME", "~/.prefect"))
    else:
        os.environ["PREFECT_HOME"] = str(home)
    for key, value in DEFAULTS.items():
        os.environ.setdefault(key, value)
    return home


def start_server(workspace: str | Path) -> str | None:
    """Start Prefect's temporary server now, unless ``PREFECT_API_URL`` names one; returns its API URL.

    Starts on one workspace take turns (a lock file in its Prefect home: two servers migrating one
    SQLite database at once race), and the watchdog (``flows._watchdog``) ends the server with
    this process, also when it is killed.
    """
    from prefect.server.api.server import SubprocessASGIServer
    from prefect.settings import PREFECT_API_URL
    if PREFECT_API_URL.value():
        return None
    server = SubprocessASGIServer()
    if not server.running:
        _watchdog.watch()
        with open(prefect_home(workspace) / "server-start.lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            server.start()
        _watchdog.adopt(server.server_process.pid)
    return server.api_url
