"""The analysis steps of a pipeline run, against a store passed in (``data.store.Store``'s methods).

Each reads the run's reduced points (and fits), computes, writes its record (``analysis.records``) and marks
its step: ``fit_run`` (the Lasso of one depth over its beta path), ``symmetry_run`` (each fit about its
mirror planes) and ``train_run`` (the networks of one depth against the fit). No Prefect and no DuckDB here:
``flows.pipeline`` wraps each function in one Prefect task and owns the store.
"""
from __future__ import annotations

import logging
import time

import numpy as np

logger = logging.getLogger(__name__)

STABILITY_RESAMPLES = 8    # subsample refits per fit for the stability of its planes
SYMMETRY_PLANES = 12      # mirror planes scored per run: the largest of every fit's


def run_points(store, run_id: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(X, y, train mask)`` of a reduced run."""
    pts = store.get_points(run_id)
    return np.array(pts["coords"].tolist(), dtype=float), pts["target"].to_numpy(float), \
        (pts["split"] == "train").to_numpy()


def fit_run(store, run_id: str, depth: int, **lasso) -> float:
    """Fit ``ReflectionLasso(depth=depth, **lasso)`` on the training points, store its ``FitResult`` (with train
    and test metrics), features and path, record its wall time, mark step ``fit:<depth>``; returns the objective."""
    from .estimator import ReflectionLasso
    from .records import FitResult, fit_metrics

    X, y, train = run_points(store, run_id)
    classes = store.get_run(run_id)["info"]["corpus"].get("task") == "classification"
    model = ReflectionLasso(depth=depth, **lasso)
    logger.info("depth %d: fitting the Lasso on %d training points", depth, int(train.sum()))
    start = time.perf_counter()
    model.fit(X[train], y[train])
    wall = time.perf_counter() - start
    result = FitResult.from_estimator(model, fit_metrics(model, X, y, train, classes), wall)
    store.put_fit(run_id, depth, result.to_dict(), model.features_, getattr(model, "path_", None))
    store.update_run(run_id, timings={f"fit:{depth}": wall})
    store.mark_step(run_id, f"fit:{depth}")
    logger.info("depth %d: objective %.6g at beta %.4g, %d features (%.1f s); %s", depth, model.objective_,
                model.beta_, len(model.features_), wall, model.certificate_.get("statement", ""))
    return float(model.objective_)


def symmetry_run(store, run_id: str, n_planes: int = SYMMETRY_PLANES, random_state=None, refit: dict | None = None,
                 n_resamples: int = STABILITY_RESAMPLES) -> None:
    """Score every depth's fitted function about the mirror planes its features predict (the ``n_planes`` largest
    of every fit's, nested ones included) on the training points, against random planes through training points
    and against the shallower depth (``analysis.symmetry.fit_symmetry``); refit each depth's estimator
    (``ReflectionLasso(depth, **refit)`` at the fit's beta) on ``n_resamples`` subsamples to measure how stable its
    planes and their defining texts are (``analysis.stability.fit_stability``; none when 0); rewrite each fit with its
    ``symmetry`` and ``stability`` entries, record the wall time and mark step "symmetry"."""
    from .records import FitResult
    from .stability import fit_stability
    from .symmetry import fit_symmetry

    start = time.perf_counter()
    X, y, train = run_points(store, run_id)
    fits = {int(f["depth"]): f for f in store.get_fits(run_id)}
    symmetry = fit_symmetry(fits, X[train], n_planes, random_state=random_state)
    if not symmetry:
        logger.info("symmetry: no mirror plane of a fold feature has enough training points mirrored near data")
    params = {k: v for k, v in (refit or {}).items() if k not in ("beta", "n_betas", "beta_min_ratio", "betas")}
    stability = fit_stability(fits, X[train], y[train], params, n_resamples, random_state=random_state) \
        if n_resamples else {}
    for depth, fit in fits.items():
        result = FitResult.from_dict(fit)
        result.extra.update({k: v[depth] for k, v in (("symmetry", symmetry), ("stability", stability)) if depth in v})
        store.put_fit(run_id, depth, result.to_dict(), fit["features"], fit["path"])
    store.update_run(run_id, timings={"symmetry": time.perf_counter() - start})
    store.mark_step(run_id, "symmetry")


def train_run(store, run_id: str, depth: int, **training) -> None:
    """Train the networks of ``depth`` at the stored fit's beta and compare them with its objective
    (``analysis.training.compare_with_lasso(..., **training)``); store the ``TrainingResult``, record the wall
    time, mark step ``train:<depth>``."""
    from .records import FitResult
    from .training import compare_with_lasso

    X, y, train = run_points(store, run_id)
    stored = next(f for f in store.get_fits(run_id) if int(f["depth"]) == depth)
    fit = FitResult.from_dict(stored)
    start = time.perf_counter()
    result = compare_with_lasso(X[train], y[train], depth, fit.beta, fit.objective,
                                lower_bound=fit.certificate.get("lower_bound"), features=stored["features"],
                                lasso_time_s=fit.timings.get("wall_s"), progress=False, **training)
    store.put_network(run_id, depth, result.to_dict())
    store.update_run(run_id, timings={f"train:{depth}": time.perf_counter() - start})
    store.mark_step(run_id, f"train:{depth}")
