"""Shared fixtures: the session's environment and Prefect harness, a tiny BERT, a headless browser, and a
fresh workspace with an empty store.

The environment defaults (offline model hubs, Prefect analytics off, a patient Prefect server start) are
set here, before any test module imports a library that reads them.
"""
import os
import sys

for _key, _value in {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false",
                     "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "DO_NOT_TRACK": "1",
                     "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120"}.items():
    os.environ.setdefault(_key, _value)

import pytest  # noqa: E402

from flows import configure  # noqa: E402 - imports no Prefect
from flows._prefect_env import WORKSPACE_VAR  # noqa: E402


@pytest.fixture(scope="session", autouse=True)
def prefect_home(tmp_path_factory):
    """Prefect's home for the whole session, in a temporary folder: tests never touch a user's Prefect database."""
    if "prefect" in sys.modules:
        pytest.fail("prefect was imported while collecting the tests, before its home was set: import "
                    "flows.pipeline or prefect inside the tests that need it", pytrace=False)
    return configure(tmp_path_factory.mktemp("prefect-home"))


@pytest.fixture(scope="session")
def prefect_harness(prefect_home):
    """One temporary Prefect database and server for every flow run of the session."""
    import prefect.main  # noqa: F401 - logging set up here, on the real stderr rather than a CliRunner stream
    from prefect.testing.utilities import prefect_test_harness
    with prefect_test_harness(server_startup_timeout=120):
        yield


@pytest.fixture(autouse=True)
def _restore_environment(prefect_home, monkeypatch):
    """``configure`` (called by ``lookingglass run``) writes to os.environ: undo it after each test."""
    for key in (WORKSPACE_VAR, "PREFECT_HOME"):
        monkeypatch.setenv(key, os.environ[key])


@pytest.fixture(scope="session")
def tiny_bert(tmp_path_factory):
    """The folder of a tiny random BERT with its WordPiece tokenizer (``tests._tiny_bert``)."""
    from tests._tiny_bert import build_tiny_bert
    return build_tiny_bert(tmp_path_factory.mktemp("tiny-bert"))


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    """Headless Chromium (``tests._browser``) for the tests of one module; mark them ``needs_chromium``."""
    from tests._browser import Browser
    b = Browser(tmp_path_factory.mktemp("chromium-profile"))
    yield b
    b.close()


@pytest.fixture
def workspace(tmp_path):
    """An empty workspace folder."""
    path = tmp_path / "workspace"
    path.mkdir()
    return path


@pytest.fixture
def store(workspace):
    """A new store in ``workspace``."""
    from data.store import Store
    return Store(workspace, lock_timeout=30)
