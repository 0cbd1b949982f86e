"""The ``lookingglass`` CLI without Prefect: ``fit`` on CSV/Parquet/NPY, its one-line errors, config files."""
import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from flows.cli import app
from flows.config import RunConfig

runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def assert_input_error(result, *fragments):
    """Exit code 2, one line ``Error: ...`` naming every fragment, no traceback."""
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.output
    assert "Traceback" not in result.output
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])


@pytest.fixture
def points(tmp_path):
    """12 points in 2-D with a target that is not a function of one plane; as CSV, Parquet and NPY."""
    rng = np.random.default_rng(3)
    X = rng.normal(size=(12, 2))
    y = np.abs(X[:, 0] - 0.3) - 0.5 * np.abs(X[:, 1] + 0.2) + 0.05 * rng.normal(size=12)
    frame = pd.DataFrame({"a": X[:, 0], "b": X[:, 1], "y": y})
    frame.to_csv(tmp_path / "pts.csv", index=False)
    frame.to_parquet(tmp_path / "pts.parquet", index=False)
    np.save(tmp_path / "pts.npy", np.column_stack([X, y]))
    np.save(tmp_path / "x.npy", X)
    np.save(tmp_path / "y.npy", y)
    return tmp_path, X, y


def objective_from_features(out: dict, X: np.ndarray, y: np.ndarray) -> float:
    """``1/2 ||xi + sum_j z_j phi_j(X) - y||^2 + beta sum_j |z_j|`` with ``phi = |..||w.x + b| - c_1|..|``."""
    f = np.full(len(X), out["intercept"])
    for feat in out["features"]:
        phi = np.abs(X @ np.asarray(feat["w"]) + feat["b"])
        for c in feat["offsets"]:
            phi = np.abs(phi - c)
        f += feat["coef"] * phi
    return 0.5 * np.sum((f - y) ** 2) + out["beta"] * sum(abs(feat["coef"]) for feat in out["features"])


@pytest.mark.parametrize("depth", [2, 3])
def test_fit_json_objective_matches_its_features_for_every_format(points, depth):
    folder, X, y = points
    outs = []
    for args in (["pts.csv", "--target", "y"], ["pts.parquet", "--target", "y"], ["pts.npy", "--target", "2"],
                 ["x.npy", "--target-file", folder / "y.npy"]):
        result = invoke("fit", folder / args[0], *args[1:], "--depth", depth, "--beta", 0.05, "--json")
        assert result.exit_code == 0, result.output
        outs.append(json.loads(result.output))
    out = outs[0]
    assert out["beta"] == pytest.approx(0.05)
    assert out["features"], "a beta far below beta_max selects features"
    # the printed objective is the Lasso objective of the printed features on the file's points
    assert out["objective"] == pytest.approx(objective_from_features(out, X, y), rel=1e-8)
    assert {"dictionary_ratio", "duality_gap", "exact"} <= set(out["certificate"])
    for other in outs[1:]:                          # every reader hands the solver the same data
        assert other["objective"] == pytest.approx(out["objective"], rel=1e-9)


def test_fit_without_bias_selects_planes_through_the_origin(points):
    folder, X, y = points
    result = invoke("fit", folder / "pts.csv", "--target", "y", "--beta", 0.05, "--no-bias", "--json")
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert all(abs(f["b"]) < 1e-12 for f in out["features"])
    assert out["objective"] == pytest.approx(objective_from_features(out, X, y), rel=1e-8)


def test_fit_table_lists_the_selected_features(points):
    folder, _, _ = points
    result = invoke("fit", folder / "pts.csv", "--target", "y", "--depth", 2, "--beta", 0.05)
    assert result.exit_code == 0, result.output
    as_json = json.loads(invoke("fit", folder / "pts.csv", "--target", "y", "--depth", 2, "--beta", 0.05,
                                "--json").output)
    assert f"{len(as_json['features'])} features" in result.output
    for feat in as_json["features"]:
        assert feat["id"] in result.output


def test_fit_missing_file(tmp_path):
    assert_input_error(invoke("fit", tmp_path / "nope.csv", "--target", "y"), "nope.csv", "not found")


def test_fit_missing_column(points):
    folder, _, _ = points
    assert_input_error(invoke("fit", folder / "pts.csv", "--target", "score"), "pts.csv", "'score'", "columns: a, b, y")


def test_fit_non_numeric_target(points):
    folder, _, _ = points
    frame = pd.read_csv(folder / "pts.csv").astype({"y": object})
    frame.loc[4, "y"] = "high"
    frame.to_csv(folder / "bad.csv", index=False)
    assert_input_error(invoke("fit", folder / "bad.csv", "--target", "y"), "bad.csv", "row 5", "'high'")


def test_fit_non_numeric_feature_column(points):
    folder, _, _ = points
    pd.read_csv(folder / "pts.csv").assign(name="w").to_csv(folder / "named.csv", index=False)
    assert_input_error(invoke("fit", folder / "named.csv", "--target", "y"), "named.csv", "'name'", "row 1")


def test_fit_target_file_length_mismatch(points):
    folder, _, y = points
    np.save(folder / "short.npy", y[:-1])
    assert_input_error(invoke("fit", folder / "x.npy", "--target-file", folder / "short.npy"),
                       "short.npy", "11 targets for 12 points")


def test_fit_too_few_points_for_the_depth(tmp_path):
    pd.DataFrame({"a": [0.0, 1.0, 2.0], "b": [1.0, 0.0, 2.0], "y": [0.0, 1.0, 0.5]}).to_csv(tmp_path / "few.csv",
                                                                                      index=False)
    result = invoke("fit", tmp_path / "few.csv", "--target", "y", "--depth", 4)
    assert_input_error(result)
    assert "point" in result.output


def test_fit_unknown_format(tmp_path):
    (tmp_path / "pts.xlsx").write_text("x")
    assert_input_error(invoke("fit", tmp_path / "pts.xlsx", "--target", "y"), "pts.xlsx", ".csv")


def test_config_file_round_trip_and_override(tmp_path):
    cfg = RunConfig(corpus="vader", max_points=50, depths=(2, 3, 4), beta=0.02, bias=False, dask_address="tcp://h:1")
    path = cfg.save(tmp_path / "run.toml")
    assert RunConfig.load(path) == cfg
    from flows.cli import _build_config
    changed = _build_config(path, {"depths": "2,3", "bias": True, "model": None})
    assert changed == cfg.replace(depths=(2, 3), bias=True)


def test_config_errors_name_the_file_and_option(tmp_path):
    (tmp_path / "bad.toml").write_text('max_points = "many"\n')
    with pytest.raises(ValueError, match="bad.toml: option max_points must be an integer"):
        RunConfig.load(tmp_path / "bad.toml")
    (tmp_path / "typo.toml").write_text("max_pionts = 3\n")
    with pytest.raises(ValueError, match="typo.toml: unknown option.*max_pionts"):
        RunConfig.load(tmp_path / "typo.toml")


def test_run_rejects_a_bad_config_before_any_work(tmp_path):
    (tmp_path / "typo.toml").write_text("max_pionts = 3\n")
    result = invoke("run", "--config", tmp_path / "typo.toml", "--workspace", tmp_path / "ws")
    assert_input_error(result, "typo.toml", "max_pionts")
    assert not (tmp_path / "ws").exists()
    assert_input_error(invoke("run", "--depths", "2,x", "--workspace", tmp_path / "ws"), "--depths", "'x'")


def test_corpora_lists_the_builtins():
    result = invoke("corpora")
    assert result.exit_code == 0, result.output
    for name in ("adjectives", "vader", "afinn"):
        assert name in result.output


def test_runs_and_report_on_a_folder_without_a_store(tmp_path):
    assert_input_error(invoke("runs", "--workspace", tmp_path), str(tmp_path), "no lookingglass store")
    assert_input_error(invoke("report", "some-run", "--workspace", tmp_path), "no lookingglass store")


def test_runs_and_export_on_a_damaged_store(tmp_path):
    from data.store import Store
    ws = tmp_path / "ws"
    store = Store(ws)
    run_id = store.create_run({"corpus": "x"})
    assert invoke("runs", "--workspace", ws).exit_code == 0
    exported = invoke("export", tmp_path / "out", "--workspace", ws)
    assert exported.exit_code == 0, exported.output
    assert pd.read_parquet(tmp_path / "out" / "runs.parquet")["run_id"].tolist() == [run_id]
    with open(store.path, "r+b") as f:                      # the catalog block damaged
        f.seek(12288 + 100)
        f.write(bytes(64))
    damaged = store.path.read_bytes()
    for args in (["runs"], ["report", run_id], ["run", "--resume", run_id]):
        assert_input_error(invoke(*args, "--workspace", ws), "lookingglass.duckdb", "corrupted",
                           "lookingglass export", "backups")
    result = invoke("export", tmp_path / "out2", "--workspace", ws)
    if result.exit_code == 2:                               # the catalog itself is gone: only the backup helps
        assert_input_error(result, "cannot be opened at all", "backups")
    else:                                                   # the readable tables are saved, the others named
        assert result.exit_code == 1 and "NOT READABLE" in result.output and "Traceback" not in result.output
    assert store.path.read_bytes() == damaged


def test_resume_is_refused_while_the_run_lives_and_once_it_is_completed(tmp_path):
    from data.store import Store, run_process
    ws = tmp_path / "ws"
    store = Store(ws)
    config = RunConfig(workspace=str(ws)).to_dict()
    live = store.create_run(config, "live", status="running", info={"process": run_process()})
    assert_input_error(invoke("run", "--resume", live, "--workspace", ws), "still running",
                       f"pid {run_process()['pid']}")
    done = store.create_run(config, "done", status="running", info={"process": run_process()})
    store.update_run(done, status="completed")
    store.mark_step(done, "report")
    assert_input_error(invoke("run", "--resume", done, "--workspace", ws), "completed", "nothing to resume")
    assert_input_error(invoke("run", "--resume", "nope", "--workspace", ws), "no run 'nope'")


def test_tracebacks_only_with_debug(tmp_path):
    quiet = invoke("fit", tmp_path / "nope.csv", "--target", "y")
    assert_input_error(quiet, "nope.csv")
    loud = invoke("--debug", "fit", tmp_path / "nope.csv", "--target", "y")
    assert loud.exit_code == 2 and "Traceback" in loud.output
    assert loud.output.strip().splitlines()[-1] == quiet.output.strip()
