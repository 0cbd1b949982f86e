"""Scheduled runs: ``serve`` keeps a deployment of the pipeline running on a cron or interval schedule.

Schedules need a real Prefect server (the temporary server a plain ``pipeline(...)`` call starts
refuses them). ``serve`` uses the server at ``PREFECT_API_URL`` when it is set; otherwise it
starts ``prefect server start`` on a free local port with its SQLite database in
``<workspace>/.prefect`` and stops it on exit. For PostgreSQL set
``PREFECT_SERVER_DATABASE_CONNECTION_URL=postgresql+asyncpg://USER:PASSWORD@HOST:5432/DB``
(the managed server reads it), or run your own server and set ``PREFECT_API_URL``.

The managed server, and the flow runs served, end with ``serve``: on SIGINT or SIGTERM (the CLI
turns SIGTERM into KeyboardInterrupt) through the context managers, and on SIGKILL through the
watchdog (``flows._watchdog``).

Scheduled runs never interleave: the deployment has a concurrency limit of 1 with the
``ENQUEUE`` strategy (a run due while another runs waits for it) and the runner executes one
flow run at a time.
"""
from __future__ import annotations

import contextlib
import logging
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from . import _watchdog
from ._prefect_env import prefect_home
from .config import RunConfig

logger = logging.getLogger(__name__)

DEPLOYMENT = "lookingglass"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LocalServer:
    """A ``prefect server start`` subprocess on 127.0.0.1 with its database in ``home``; a context manager.

    Its output goes to ``home/server.log``. ``__enter__`` waits for ``/api/health`` (at most
    ``startup_timeout`` seconds) and ``__exit__`` stops the process.
    """

    def __init__(self, home: str | Path, port: int | None = None, startup_timeout: float = 120.0):
        self.home = Path(home)
        self.port = port or _free_port()
        self.startup_timeout = float(startup_timeout)
        self.process: subprocess.Popen | None = None

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api"

    @property
    def log_path(self) -> Path:
        return self.home / "server.log"

    def healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.api_url}/health", timeout=2) as response:
                return response.status == 200
        except (urllib.error.URLError, OSError):
            return False

    def __enter__(self) -> LocalServer:
        self.home.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "PREFECT_HOME": str(self.home), "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
        env.pop("PREFECT_API_URL", None)
        cmd = [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1",
               "--port", str(self.port), "--no-ui"]
        logger.info("starting a local Prefect server on %s (database in %s, log %s)", self.api_url,
                    self.home, self.log_path)
        with open(self.log_path, "ab") as log:
            # its own session: Ctrl-C reaches serve, which pauses the deployment and then stops the server
            self.process = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT,
                                            stdin=subprocess.DEVNULL, start_new_session=True)
        _watchdog.adopt(self.process.pid)   # ended with this process, also when it is killed
        deadline = time.monotonic() + self.startup_timeout
        while not self.healthy():
            if self.process.poll() is not None:
                self.process = None
                raise RuntimeError(f"the local Prefect server exited at startup; see {self.log_path}")
            if time.monotonic() > deadline:
                self.__exit__(None, None, None)
                raise TimeoutError(f"the local Prefect server did not answer within {self.startup_timeout:.0f} s; "
                                   f"see {self.log_path}")
            time.sleep(0.5)
        logger.info("local Prefect server ready at %s", self.api_url)
        return self

    def __exit__(self, *exc) -> None:
        if self.process is None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        logger.info("stopped the local Prefect server on %s", self.api_url)
        self.process = None


@contextlib.contextmanager
def _api(url: str):
    """``PREFECT_API_URL`` set to ``url`` in this process's settings and environment (for run subprocesses)."""
    from prefect.settings import PREFECT_API_URL, temporary_settings
    previous = os.environ.get("PREFECT_API_URL")
    os.environ["PREFECT_API_URL"] = url
    try:
        with temporary_settings({PREFECT_API_URL: url}):
            yield
    finally:
        if previous is None:
            os.environ.pop("PREFECT_API_URL", None)
        else:
            os.environ["PREFECT_API_URL"] = previous


def serve(config: RunConfig, cron: str | None = None, interval: float | None = None,
          name: str = DEPLOYMENT) -> None:
    """Serve the pipeline with ``config`` on a ``cron`` or ``interval`` (seconds) schedule until interrupted."""
    if (cron is None) == (interval is None):
        raise ValueError("give exactly one of --cron or --interval")
    if interval is not None and not interval > 0:
        raise ValueError(f"--interval must be a positive number of seconds, got {interval}")
    _watchdog.watch()
    with contextlib.ExitStack() as stack:
        url = os.environ.get("PREFECT_API_URL")
        if url:
            logger.info("using the Prefect server at PREFECT_API_URL=%s", url)
        else:
            url = stack.enter_context(LocalServer(prefect_home(config.workspace))).api_url
        stack.enter_context(_api(url))
        from prefect import serve as prefect_serve
        from prefect.client.schemas.objects import ConcurrencyLimitConfig, ConcurrencyLimitStrategy
        from prefect.flows import EntrypointType

        from .pipeline import pipeline
        deployment = pipeline.to_deployment(
            name=name, cron=cron, interval=interval, parameters={"config": config.to_dict()},
            concurrency_limit=ConcurrencyLimitConfig(limit=1, collision_strategy=ConcurrencyLimitStrategy.ENQUEUE),
            entrypoint_type=EntrypointType.MODULE_PATH,
            description=f"lookingglass pipeline on {config.corpus} with {config.model}, depths {list(config.depths)}")
        logger.info("serving deployment %s (%s) against %s; stop with Ctrl-C", name,
                    f"cron {cron!r}" if cron else f"every {interval:g} s", url)
        prefect_serve(deployment, limit=1)
