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


def test_the_step_functions_of_the_tasks_load_without_prefect():
    """Each task calls a package function; those packages (and the options RunConfig gives them) need no Prefect."""
    import subprocess
    import sys
    code = ("import sys, analysis.runs, data.runs, embeddings.runs, reports, flows.config; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] == 'prefect'))")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONPATH": root})
    assert out.stdout.strip() == "[]"


def test_each_options_dict_fits_the_function_its_step_calls():
    import inspect

    from analysis import ReflectionLasso
    from analysis.training import compare_with_lasso
    from embeddings.encoders import load_encoder
    from embeddings.reduce import Reduction
    cfg = RunConfig(corpus="vader", max_candidates=1000, beta=0.5, seed=3, epochs=7)
    inspect.signature(load_encoder).bind(cfg.model, **cfg.encoder_options())
    inspect.signature(compare_with_lasso).bind(None, None, 2, 0.1, 1.0, **cfg.training_options())
    assert Reduction(**cfg.reduction_options()).get_params()["random_state"] == 3
    params = ReflectionLasso(depth=2, **cfg.lasso_options()).get_params()
    assert (params["max_candidates"], params["beta"], params["random_state"]) == (1000, 0.5, 3)
    assert "max_candidates" not in RunConfig(corpus="vader").lasso_options()   # None: the estimator's default
