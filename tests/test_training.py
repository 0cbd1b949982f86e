import json

import numpy as np
import pandas as pd
import pytest
import torch
from test_network import solve_lasso, warm_net

from analysis.network import FCAbsNet, ParallelAbsNet
from analysis.records import TrainingResult
from analysis.training import BelowGlobalOptimum, TrainingDiverged, compare_with_lasso, stationarity, train

# docs/MATH.md section 4: the plane dictionary is a restriction here.
X2 = np.array([[-2.0, -2.0], [1.0, 2.0], [0.0, 1.0]])
Y2 = np.array([-1.0, 1.0, -1.0])


def _instance(seed, n=8):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, 1)), rng.normal(size=n)


@pytest.mark.parametrize("depth", [2, 3, 4])
def test_warm_start_from_the_1d_lasso_is_stationary(depth):
    """In 1-D the Lasso optimum is the network's global optimum: no direction descends."""
    X, y = _instance(depth, n=7)
    sol = solve_lasso(X, y, depth, 0.1)
    st = stationarity(warm_net(sol, depth), X, y, 0.1)
    assert st["objective"] == pytest.approx(sol["objective"], rel=1e-9)
    assert st["smooth_gradient_norm"] < 1e-8
    assert st["min_directional_derivative"] > -1e-6


def test_stationarity_sees_an_unbalanced_network():
    """Same function, first layer scaled up and outer weights down: the penalty can still drop."""
    X, y = _instance(0)
    sol = solve_lasso(X, y, 2, 0.1)
    net = warm_net(sol, 2)
    with torch.no_grad():
        net.W.mul_(1.2), net.b.mul_(1.2), net.alpha.div_(1.2)
    st = stationarity(net, X, y, 0.1)
    assert st["objective"] > sol["objective"] + 1e-4
    assert st["smooth_gradient_norm"] > 1e-3 and st["min_directional_derivative"] < -1e-3


def test_2d_plane_dictionary_is_a_restriction_that_training_beats():
    """docs/MATH.md section 4 example: Lasso 0.6221, not stationary for the network, training reaches 0.1364."""
    sol = solve_lasso(X2, Y2, 2, 0.1)
    assert sol["objective"] == pytest.approx(0.6221, abs=1e-4)
    net = warm_net(sol, 2)
    assert stationarity(net, X2, Y2, 0.1)["min_directional_derivative"] < -0.1
    warm = train(net, X2, Y2, 0.1, optimizer="lbfgs", max_epochs=50, progress=False)
    assert warm.best_objective < sol["objective"] - 0.4
    report = compare_with_lasso(X2, Y2, 2, 0.1, sol["objective"], lower_bound=0.0701, widths=(8,), seeds=(0, 1, 2),
                                architectures=("parallel",), optimizer="lbfgs", max_epochs=100,
                                plateau=(20, 1e-9), progress=False)
    run = report.runs[0]
    assert run.best_objective == pytest.approx(0.1364, abs=1e-4)
    assert run.relative_gap < -0.7 and run.gap_to_lower_bound > 0
    with pytest.raises(BelowGlobalOptimum, match="lower_bound"):
        compare_with_lasso(X2, Y2, 2, 0.1, sol["objective"], lower_bound=0.3, widths=(8,), seeds=(0,),
                           architectures=("parallel",), optimizer="lbfgs", max_epochs=100, progress=False)


@pytest.mark.parametrize("seed,depth", [(0, 2), (1, 2), (2, 3), (3, 3)])
def test_random_1d_instances_never_beat_the_lasso(seed, depth):
    X, y = _instance(100 + seed)
    beta = 0.05
    sol = solve_lasso(X, y, depth, beta)
    features = pd.DataFrame({"w": list(sol["W"]), "b": sol["b"], "offsets": list(sol["C"]), "coef": sol["coef"]})
    report = compare_with_lasso(X, y, depth, beta, sol["objective"], widths=(6,), seeds=(0, 1), max_epochs=500,
                                features=features, progress=False)   # raises BelowGlobalOptimum otherwise
    assert [r.architecture for r in report.runs] == ["parallel", "fc"] and report.status == "ok"
    par = report.runs[0]
    assert par.status == "ok" and par.relative_gap >= -1e-6
    assert (par.time_to_1pct_s is None) == (par.relative_gap > 0.01)
    assert par.seeds == [0, 1] and min(map(min, par.curves)) == pytest.approx(par.best_objective, rel=1e-12)
    em = report.emergence                     # over both seeds' networks, 6 neurons each
    assert (em["n_networks"], em["n_neurons"]) == (2, 12) and 0 <= em["share_on_predicted"] <= 1
    assert len(em["weighted_share_on_predicted_per_network"]) == 2
    assert "symmetry" not in report.to_dict()     # the whole-function score measured extrapolation (issue 13)
    assert TrainingResult.from_dict(json.loads(json.dumps(report.to_dict()))) == report
    # started at the optimum, Adam moves around it but never below it
    res = train(warm_net(sol, depth), X, y, beta, lr=1e-3, max_epochs=200, progress=False)
    assert sol["objective"] * (1 - 1e-9) <= res.best_objective <= sol["objective"] * (1 + 1e-12)


def test_a_wrong_1d_bound_fails_loudly():
    X, y = _instance(7)
    sol = solve_lasso(X, y, 2, 0.1)
    with pytest.raises(BelowGlobalOptimum, match="below the proven lasso_objective"):
        compare_with_lasso(X, y, 2, 0.1, 1.5 * sol["objective"], widths=(8,), seeds=(0,),
                           architectures=("parallel",), max_epochs=1500, progress=False)


def test_training_lowers_the_objective_reproducibly():
    X, y = _instance(11, n=12)
    net = ParallelAbsNet(1, 3, 8)
    start = net.objective(X, y, 0.1).item()
    a = train(net, X, y, 0.1, seeds=(3,), max_epochs=300, progress=False)
    b = train(net, X, y, 0.1, seeds=(3,), max_epochs=300, progress=False)
    assert a.best_objective == b.best_objective
    assert a.net.objective(X, y, 0.1).item() == pytest.approx(a.best_objective, rel=1e-12)
    assert a.curve[0] > a.best_objective and len(a.curve) == a.runs[0].epochs
    assert net.objective(X, y, 0.1).item() == start            # the given net is not modified
    lb = train(FCAbsNet(1, 3, 8, seed=0), X, y, 0.1, optimizer="lbfgs", max_epochs=30, progress=False)
    assert lb.status == "ok" and lb.best_objective < lb.runs[0].curve[0]


def test_plateau_target_and_summary():
    X, y = _instance(5)
    res = train(ParallelAbsNet(1, 2, 4, seed=0), X, y, 0.1, max_epochs=100_000, plateau=(5, 1e-2),
                target=1e6, seeds=(0, 1), progress=False)
    assert all(r.epochs < 100_000 for r in res.runs)
    assert [n.objective(X, y, 0.1).item() for n in res.nets] == pytest.approx([r.best_objective for r in res.runs],
                                                                            rel=1e-12)   # each seed at its best
    assert res.net is res.nets[int(np.argmin([r.best_objective for r in res.runs]))]
    assert res.time_to_target_s is not None and res.time_to_target_s <= res.wall_time_s
    never = train(ParallelAbsNet(1, 2, 4, seed=0), X, y, 0.1, max_epochs=20, target=1e-9, progress=False)
    assert never.time_to_target_s is None
    summary = json.loads(json.dumps(res.to_dict()))
    assert summary["status"] == "ok" and len(summary["runs"]) == 2 and "net" not in summary and "nets" not in summary


def test_divergence_is_reported_not_returned():
    X, y = _instance(6)
    with pytest.raises(TrainingDiverged, match="diverged"):
        train(ParallelAbsNet(1, 3, 4, seed=0, dtype=torch.float32), X, y, 0.1, lr=1e30, max_epochs=50,
              progress=False)
    report = compare_with_lasso(X, y, 3, 0.1, 1.0, widths=(4,), seeds=(0,), architectures=("fc",), lr=1e30,
                                max_epochs=50, dtype=torch.float32, progress=False)
    assert report.runs[0].status == "diverged" and report.runs[0].best_objective is None


def test_bad_options_are_rejected():
    X, y = _instance(0)
    net = ParallelAbsNet(1, 2, 2)
    with pytest.raises(ValueError, match="lr"):
        train(net, X, y, 0.1, lr=0.0)
    with pytest.raises(ValueError, match="beta"):
        train(net, X, y, -1.0)
    with pytest.raises(ValueError, match="optimizer"):
        train(net, X, y, 0.1, optimizer="sgd")
    with pytest.raises(ValueError, match="NaN"):
        train(net, np.full((8, 1), np.nan), y, 0.1)
    with pytest.raises(ValueError, match="rows"):
        train(net, X, y[:-1], 0.1)
    with pytest.raises(ValueError, match="depth"):
        compare_with_lasso(X, y, 1, 0.1, 1.0)
    with pytest.raises(ValueError, match="width"):
        compare_with_lasso(X, y, 2, 0.1, 1.0, widths=(0,))
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA"):
            train(net, X, y, 0.1, device="cuda")


def test_reflection_lasso_to_torch_is_a_stationary_warm_start():
    estimator = pytest.importorskip("analysis.estimator")
    X, y = _instance(21, n=7)
    est = estimator.ReflectionLasso(depth=3, beta=0.1).fit(X, y)
    assert est.objective_ == pytest.approx(solve_lasso(X, y, 3, 0.1)["objective"], rel=1e-7)
    net = est.to_torch()
    assert isinstance(net, ParallelAbsNet)
    st = stationarity(net, X, y, 0.1)
    assert st["objective"] == pytest.approx(est.objective_, rel=1e-9)
    assert st["smooth_gradient_norm"] < 1e-7 and st["min_directional_derivative"] > -1e-6
