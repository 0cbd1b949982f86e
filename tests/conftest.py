"""Shared fixtures: a fresh workspace with an empty store."""
import pytest


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
