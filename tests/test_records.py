"""The typed records: written through the store and read back equal; older stored shapes still read."""
import json
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from analysis.records import FitResult, TrainingResult, TrainingRun, fit_metrics


def _model(slope=2.0):
    """A fitted-estimator stand-in: ``f(x) = slope * x_0`` with the attributes a ReflectionLasso exposes."""
    return SimpleNamespace(beta_=0.1, beta_max_=1.5, objective_=0.25, intercept_=-0.5, n_candidates_=40,
                           certificate_={"scope": "dictionary", "exact": False, "lower_bound": 0.2},
                           timings_={"solve": 0.3}, predict=lambda X: slope * np.asarray(X)[:, 0])


def test_fit_metrics_match_their_definitions():
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(12, 2)), np.sign(rng.normal(size=12))
    train = np.arange(12) < 8
    out = fit_metrics(_model(), X, y, train, classes=True)
    for name, mask in (("train", train), ("test", ~train)):
        pred, target = 2.0 * X[mask, 0], y[mask]
        mse = np.mean((pred - target) ** 2)
        assert out[f"{name}_mse"] == pytest.approx(mse)
        assert out[f"{name}_r2"] == pytest.approx(1 - mse / np.var(target))
        assert out[f"{name}_accuracy"] == pytest.approx(np.mean(np.sign(pred) == target))
    only_train = fit_metrics(_model(), X, y, np.arange(12) < 11, classes=False)   # one test point: no test metrics
    assert set(only_train) == {"train_r2", "train_mse"}


def test_fit_record_round_trips_through_the_store(store):
    run_id = store.create_run({"corpus": "adjectives", "depths": [2]})
    record = FitResult.from_estimator(_model(), {"train_r2": 0.9}, wall_s=1.25)
    assert record.timings == {"solve": 0.3, "wall_s": 1.25} and record.n_candidates == 40
    features = pd.DataFrame({"id": ["L2:0-1:+"], "kind": ["plane"], "depth": [2], "points": [(0, 1)],
                             "labels": [("+",)], "w": [[1.0, 0.0]], "b": [0.5], "offsets": [()], "coef": [1.5],
                             "source": ["dictionary"], "equivalents": [[]]})
    store.put_fit(run_id, 2, record.to_dict(), features)
    (stored,) = store.get_fits(run_id)
    assert FitResult.from_dict(stored) == record and stored["depth"] == 2 and len(stored["features"]) == 1
    record.extra["symmetry"] = {"mean": 0.4, "table": [{"depth": 2, "score": 0.4}]}   # what a later step adds
    store.put_fit(run_id, 2, record.to_dict(), stored["features"], stored["path"])
    again = FitResult.from_dict(store.get_fits(run_id)[0])
    assert again == record and again.to_dict()["symmetry"]["mean"] == 0.4


def _result():
    runs = [TrainingRun(status="ok", architecture="parallel", width=8, optimizer="adam", best_objective=0.26,
                        relative_gap=0.04, wall_time_s=2.0, best_seed=1, epochs=90, seeds=[0, 1],
                        curves=[[1.0, 0.3], [0.9, 0.26]], emergence={"share_on_predicted": 0.5}),
            TrainingRun(status="diverged", architecture="fc", width=8, optimizer="adam")]
    return TrainingResult(depth=3, status="ok", runs=runs, beta=0.1, n_points=20, dim=2, bias=True,
                          lasso={"objective": 0.25, "wall_time_s": 1.0, "lower_bound": 0.2},
                          emergence={"share_on_predicted": 0.5})


def test_training_record_round_trips_through_the_store(store):
    run_id = store.create_run({"corpus": "adjectives", "depths": [3]})
    record = _result()
    store.put_network(run_id, 3, record.to_dict())
    (stored,) = store.load_run(run_id)["networks"]
    assert TrainingResult.from_dict(stored) == record
    assert TrainingResult.from_dict(json.loads(json.dumps(record.to_dict()))) == record
    assert record.best_run() is record.runs[0]
    assert "curves" not in record.runs[1].to_dict()       # a diverged run keeps no curves


def test_older_network_shapes_still_read(store):
    run_id = store.create_run({"corpus": "adjectives", "depths": [2, 3]})
    # flat: one run's keys at the top, `rel_gap`, `lasso_objective`
    store.put_network(run_id, 3, {"architecture": "parallel", "width": 16, "seeds": [0, 1], "best_objective": 0.34,
                                  "lasso_objective": 0.33, "rel_gap": 0.02, "curves": [[1.0, 0.34], [1.1, 0.35]],
                                  "emergence": {"share": 0.5}, "symmetry": {"score": 0.3}, "status": "ok"})
    # runs with a single `curve` and `rel_gap`
    store.put_network(run_id, 2, {"beta": 0.05, "lasso": {"objective": 0.5}, "runs": [
        {"architecture": "parallel", "width": 8, "status": "ok", "best_objective": 0.51, "rel_gap": 0.03,
         "curve": [0.9, 0.51]},
        {"architecture": "fc", "width": 8, "best_objective": None}]})
    two, three = map(TrainingResult.from_dict, store.load_run(run_id)["networks"])
    assert len(three.runs) == 1 and three.runs[0].relative_gap == 0.02 and three.runs[0].seeds == [0, 1]
    assert three.lasso == {"objective": 0.33} and three.extra == {}   # the old whole-function symmetry is dropped
    assert "symmetry" not in three.to_dict() and "symmetry" not in three.runs[0].to_dict()
    assert three.emergence == {"share": 0.5} and "emergence" not in three.runs[0].to_dict()
    assert [r.status for r in two.runs] == ["ok", "diverged"] and two.status == "ok"
    assert two.runs[0].curves == [[0.9, 0.51]] and two.best_run().relative_gap == 0.03
    assert TrainingResult.from_dict(three.to_dict()) == three     # read once, written in the current shape
