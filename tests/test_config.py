"""RunConfig: a saved config names the same workspace from any folder."""
from __future__ import annotations

import os

from flows.config import RunConfig


def test_saved_config_names_the_same_workspace_from_another_folder(tmp_path, monkeypatch):
    project, other = tmp_path / "project", tmp_path / "other"
    project.mkdir()
    other.mkdir()
    monkeypatch.chdir(project)
    cfg = RunConfig(corpus="vader", workspace="ws")
    assert cfg.workspace == str(project / "ws")
    path = cfg.save(project / "ws" / "runs" / "r1" / "config.toml")
    assert f'workspace = "{project / "ws"}"' in path.read_text(encoding="utf-8")
    monkeypatch.chdir(other)
    loaded = RunConfig.load(path)
    assert loaded == cfg and loaded.workspace == str(project / "ws")
    # a relative workspace given later (an option) is taken from the folder the user is in
    assert loaded.replace(workspace="ws").workspace == str(other / "ws")
    assert RunConfig(workspace="~/lg").workspace == os.path.join(os.path.expanduser("~"), "lg")
