"""The Prefect flow ``study``: do the paper's claims hold on language-model embeddings?

A grid over corpora x models x reductions x seeds; each cell is one mapped task (so a Dask task
runner spreads them): reduce (fitted on the training split), measure the target signal kept (a
linear probe on the full vectors vs the reduced points), fit the Lasso of every depth, score
symmetry about the fits' own mirror planes against chance and against the shallower depth
(``analysis.symmetry``), refit every depth on subsamples to measure how stable its planes' defining texts are
(``analysis.stability``), train networks of every depth and compare their neurons with the Lasso's
planes and with chance (``analysis.emergence``). Reductions: ``pca``, ``pls`` (supervised, d =
``n_components``) and ``pls1``, the exact track: a 1-D PLS projection, where every depth's Lasso
is the proven network optimum (docs/MATH.md section 4), fitted at ``exact_depths``. A model may name
a hidden layer, ``name@layer`` (transformers pooling), for a layer sweep. Claims are pooled over
cells (mean of per-cell effects, interval from the per-cell intervals as normal errors) into one
verdict each: supported / not supported / cannot tell.
"""
from __future__ import annotations

import logging
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from . import _prefect_env

_prefect_env.configure(os.environ.get(_prefect_env.WORKSPACE_VAR, "workspace"))

import numpy as np  # noqa: E402
from prefect import flow, task  # noqa: E402
from prefect.cache_policies import NO_CACHE  # noqa: E402

logger = logging.getLogger(__name__)

REDUCTIONS = ("pca", "pls", "pls1", "random")


@dataclass
class StudyConfig:
    """The grid and the per-cell budget; the defaults finish in minutes on 2 cores."""

    corpora: tuple = ("adjectives",)
    models: tuple = ("all-MiniLM-L6-v2",)
    reductions: tuple = ("pca", "pls", "pls1")
    depths: tuple = (2, 3)
    exact_depths: tuple = (2, 3, 4)
    seeds: tuple = (0, 1)
    n_components: int = 2
    max_points: int = 80
    test_size: float = 0.25
    beta_ratio: float = 0.05
    width: int = 32
    network_seeds: tuple = (0, 1)
    epochs: int = 1500
    n_boot: int = 200
    n_null: int = 200
    stability_resamples: int = 8
    workspace: str = "workspace"
    dask: bool = False

    def __post_init__(self):
        bad = [r for r in self.reductions if r not in REDUCTIONS]
        if bad:
            raise ValueError(f"study: reductions must be among {', '.join(REDUCTIONS)}; got {bad[0]!r}")
        if not self.corpora or not self.models or not self.seeds:
            raise ValueError("study: corpora, models and seeds must each name at least one")
        if min(self.depths, default=2) < 2 or min(self.exact_depths, default=2) < 2:
            raise ValueError("study: depths must be integers >= 2")
        if not 0 < self.beta_ratio < 1:
            raise ValueError(f"study: beta_ratio must lie in (0, 1); got {self.beta_ratio}")


def _model(spec: str) -> dict:
    """``name`` or ``name@layer`` as ``load_encoder`` options."""
    name, _, layer = spec.partition("@")
    if layer and not layer.lstrip("-").isdigit():
        raise ValueError(f"study: model {spec!r}: the layer after @ must be an integer")
    return {"name_or_folder": name, **({"layer": int(layer), "kind": "transformers"} if layer else {})}


class _Alone:
    """An encoder that encodes each text alone on one torch thread, cached under its own fingerprint.

    Batched vectors differ in their last bits with the batch a text met (padding) and the thread count (MiniLM:
    up to 2.7e-7, 8 of 80 cached vectors in a rerun), which moved the study between reruns: the Lasso's pick
    among columns equal on the data, and the trained networks. Alone, a text's vector is a function of the text.
    """

    def __init__(self, encoder):
        self.encoder, self.dim, self.name = encoder, encoder.dim, encoder.name
        self.fingerprint = f"{encoder.fingerprint}:alone"

    def encode(self, texts, batch_size: int = 1, progress: bool = False):
        import torch
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            return self.encoder.encode(texts, batch_size=1, progress=progress)
        finally:
            torch.set_num_threads(threads)


@task(name="study-data", cache_policy=NO_CACHE)
def prepare(cfg: dict, corpus: str, model: str, seed: int) -> str:
    """Load and split ``corpus`` with ``seed``, embed it with ``model`` (each text alone, through the store's
    cache: ``_Alone``); the arrays are written to ``<workspace>/study/data-<hash>.npz`` and its path returned."""
    import hashlib

    from data.corpora import load_corpus
    from data.store import Store
    from embeddings.cache import embed_texts
    from embeddings.encoders import load_encoder
    c = StudyConfig(**cfg)
    data = load_corpus(corpus, max_points=c.max_points, seed=seed, test_size=c.test_size,
                       min_points=c.n_components + max(c.depths))
    encoder = load_encoder(**_model(model), device="cpu")
    vectors, _ = embed_texts(_Alone(encoder), data.frame["text"].tolist(), Store(c.workspace), batch_size=1,
                             progress=False)
    key = hashlib.sha256(f"{corpus}|{model}|{seed}|{c.max_points}|{c.test_size}".encode()).hexdigest()[:16]
    path = Path(c.workspace) / "study" / f"data-{key}.npz"
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, vectors=vectors.astype(float), target=data.frame["target"].to_numpy(float),
             train=(data.frame["split"] == "train").to_numpy(), texts=data.frame["text"].to_numpy(str))
    return str(path)


def _kinds(features, X) -> dict:
    """``kinds`` (counts per kind) and ``n_fold`` (features with a fold offset), a fold that bends no training
    point counted as the plane it equals on the data (``analysis.symmetry.bending``): the Lasso's pick between
    equal columns is decided by rounding, so it is no finding."""
    from analysis.symmetry import bending
    bent = bending(features, X).any(axis=1) if len(features) else np.zeros(0, dtype=bool)
    kinds = np.where(bent, features["kind"].to_numpy(str), "plane") if len(features) else np.zeros(0, dtype=str)
    names, counts = np.unique(kinds, return_counts=True)
    return {"kinds": {str(k): int(v) for k, v in zip(names, counts)}, "n_fold": int(bent.sum())}


def run_cell(vectors, y, train, reduction: str, seed: int, c: StudyConfig) -> dict:
    """One cell: reduction, signal kept, a Lasso per depth, symmetry against chance and depth, trained networks."""
    import torch
    from sklearn.metrics import r2_score

    from analysis import ReflectionLasso, evaluate_features
    from analysis.emergence import emergence
    from analysis.network import ParallelAbsNet
    from analysis.stability import plane_stability, pooled_same
    from analysis.symmetry import mirror_planes, summarize, symmetry_table
    from analysis.training import relative_gap
    from analysis.training import train as train_net
    from embeddings.reduce import Reduction, signal_kept
    torch.set_num_threads(1)
    start = time.perf_counter()
    k = 1 if reduction == "pls1" else c.n_components
    method = "pls" if reduction.startswith("pls") else reduction
    red = Reduction(method, n_components=k, random_state=seed).fit(vectors[train],
                                                                   y[train] if method == "pls" else None)
    Z = red.transform(vectors)
    X, yt = Z[train], y[train]
    out = {"reduction": reduction, "d": k, "seed": int(seed), "n_train": int(train.sum()),
           "signal": signal_kept(vectors, y, train, Z), "depths": {}}
    fits = {}
    for depth in (c.exact_depths if k == 1 else c.depths):
        est = ReflectionLasso(depth=int(depth), n_betas=4, beta_min_ratio=c.beta_ratio, random_state=seed).fit(X, yt)
        fits[int(depth)] = est
        out["depths"][int(depth)] = {
            "objective": float(est.objective_), "beta": float(est.beta_), "n_features": int(len(est.features_)),
            **_kinds(est.features_, X),
            "exact": bool(est.certificate_.get("exact")),
            "test_r2": float(r2_score(y[~train], est.predict(Z[~train])))}
        if c.stability_resamples and len(est.features_):
            stab = plane_stability(est, X, yt, est.features_, est.beta_, c.stability_resamples, random_state=seed)
            out["depths"][int(depth)]["stability"] = pooled_same(stab)
    planes = [p for depth, est in fits.items() for p in mirror_planes(est.features_, depth, 12, X)]
    if planes:
        funcs = {d: (lambda P, e=e: evaluate_features(e.features_, e.intercept_, P)) for d, e in fits.items()}
        table, null = symmetry_table(funcs, X, planes, n_null=c.n_null, n_boot=c.n_boot, random_state=seed)
        if len(table):
            for key, summ in (("symmetry_all", summarize(table, null)),
                              ("symmetry_own", summarize(table, null, own_only=True)),
                              ("multilevel", summarize(table, null, level=2))):
                for depth, row in summ.items():
                    out["depths"][depth][key] = row
    for depth, est in fits.items():
        res = train_net(ParallelAbsNet(k, depth, c.width), X, yt, est.beta_, max_epochs=c.epochs,
                        seeds=c.network_seeds, progress=False)
        row = out["depths"][depth]
        row["training_objective"] = float(res.best_objective)
        row["training_gap"] = float(relative_gap(res.best_objective, est.objective_))
        summary = emergence(res.nets, X, est.features_, random_state=seed).summary
        row["emergence"] = {key: v for key, v in summary.items()
                            if not isinstance(v, (list, dict)) or key.endswith("_ci")}
    out["wall_s"] = time.perf_counter() - start
    return out


@task(name="study-cell", cache_policy=NO_CACHE)
def cell_task(cfg: dict, data_path: str, corpus: str, model: str, reduction: str, seed: int) -> dict:
    """``run_cell`` on the prepared arrays; failures come back as an ``error`` entry, not a failed study."""
    c = StudyConfig(**cfg)
    arrays = np.load(data_path)
    head = {"corpus": corpus, "model": model, "reduction": reduction, "seed": int(seed)}
    try:
        return {**head, **run_cell(arrays["vectors"], arrays["target"], arrays["train"], reduction, seed, c)}
    except Exception as err:  # noqa: BLE001 - one cell's failure is reported in the study, the rest stands
        logger.warning("study cell %s failed: %s", head, err)
        return {**head, "error": f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"}


def _pooled(effects, intervals, chance: float = 0.0) -> dict:
    """Mean effect over cells and a 95 % interval from the per-cell intervals read as normal errors."""
    from analysis.symmetry import verdict
    e = np.asarray(effects, dtype=float)
    if not e.size:
        return {"n": 0, "effect": None, "lo": None, "hi": None, "verdict": "cannot tell"}
    se = np.asarray([(hi - lo) / 3.92 for lo, hi in intervals], dtype=float)
    half = 1.96 * np.sqrt(np.sum(se ** 2)) / e.size
    mean = float(e.mean())
    return {"n": int(e.size), "effect": mean, "lo": mean - half, "hi": mean + half,
            "verdict": verdict(mean - half, mean + half, chance)}


def claims(cells: list[dict]) -> list[dict]:
    """The paper's claims pooled over the study's cells, each with its verdict and interval."""
    ok = [c for c in cells if "error" not in c]
    rows = [(c, d, r) for c in ok for d, r in c["depths"].items()]
    out = []

    def add(name, meaning, items, chance=0.0):
        out.append({"claim": name, "meaning": meaning,
                    **_pooled([e for e, _ in items], [i for _, i in items], chance)})

    add("Deeper fits are more symmetric than the shallower depth about the same mirror planes",
        "mean difference in symmetry score (deeper minus shallower), paired over the mirrored points",
        [(r["symmetry_all"]["diff"], (r["symmetry_all"]["diff_lo"], r["symmetry_all"]["diff_hi"]))
         for _, _, r in rows if "diff" in r.get("symmetry_all", {})])
    add("Fits are mirror-symmetric about their own fold planes beyond chance",
        "mean score about the fit's own planes minus the 95th percentile of a mean over as many random planes "
        "through training points (the interval is the score's; the null's spread is in its percentile)",
        [(r["symmetry_own"]["mean"] - r["symmetry_own"]["null_q95"],
          (r["symmetry_own"]["lo"] - r["symmetry_own"]["null_q95"],
           r["symmetry_own"]["hi"] - r["symmetry_own"]["null_q95"]))
         for _, _, r in rows if "symmetry_own" in r])
    add("Multilevel symmetry: depth-4 fits are symmetric about their nested mirror planes beyond chance",
        "as above, on the nested planes within each side (1-D exact track)",
        [(r["multilevel"]["mean"] - r["multilevel"]["null_q95"],
          (r["multilevel"]["lo"] - r["multilevel"]["null_q95"], r["multilevel"]["hi"] - r["multilevel"]["null_q95"]))
         for _, _, r in rows if "multilevel" in r])
    add("Trained networks' hyperplanes pass through training points more often than chance",
        "contribution-weighted share of neurons through a training point minus the 5 % chance level",
        [(r["emergence"]["share_through_point"] - 0.05,
          tuple(v - 0.05 for v in r["emergence"]["share_through_point_ci"]))
         for _, _, r in rows if np.isfinite(r.get("emergence", {}).get("share_through_point", np.nan))])
    add("Trained networks' hyperplanes land on the Lasso's planes more often than chance",
        "contribution-weighted share on a Lasso plane minus the share of random planes that do",
        [(r["emergence"]["weighted_share_on_predicted"] - r["emergence"]["chance_on_predicted"],
          tuple(v - r["emergence"]["chance_on_predicted"] for v in r["emergence"]["weighted_share_on_predicted_ci"]))
         for _, _, r in rows if np.isfinite(r.get("emergence", {}).get("weighted_share_on_predicted", np.nan))])
    add("The Lasso's planes are defined by the same texts across resamples, more often than for a permuted target",
        "share of (plane, subsample) pairs, among those that kept the plane's defining texts, whose refit selects a "
        "plane of the same texts, minus that share for a randomly permuted target (Wilson interval)",
        [(r["stability"]["share"] - r["stability"]["permuted"],
          (r["stability"]["lo"] - r["stability"]["permuted"], r["stability"]["hi"] - r["stability"]["permuted"]))
         for _, _, r in rows if (r.get("stability") or {}).get("permuted") is not None])
    for exact, name in ((True, "Where the Lasso is the proven network optimum (1-D, or certified), no trained network "
                               "beats it"),
                        (False, "Where the dictionary Lasso is a restriction (d >= 2), it is at least as good as "
                                "gradient training")):
        gaps = [r["training_gap"] for _, _, r in rows if "training_gap" in r and r["exact"] == exact]
        out.append({"claim": name, "meaning": "median relative gap of the best trained network above the Lasso "
                                              "objective, [min, max] over (cell, depth); supported when no gap is "
                                              "below -0.1 %",
                    "n": len(gaps), "effect": float(np.median(gaps)) if gaps else None,
                    "lo": float(np.min(gaps)) if gaps else None, "hi": float(np.max(gaps)) if gaps else None,
                    "verdict": "cannot tell" if not gaps else "supported" if min(gaps) >= -1e-3 else "not supported"})
    return out


@flow(name="lookingglass-study")
def study(config: dict) -> dict:
    """Prepare every (corpus, model, seed), run every cell as a mapped task, pool the claims, write the report."""
    c = StudyConfig(**config)
    start = time.perf_counter()
    keys = [(corpus, model, seed) for corpus in c.corpora for model in c.models for seed in c.seeds]
    data = {key: prepare(config, *key) for key in keys}     # one at a time: torch's thread count is global
    grid = [(key, r) for key in keys for r in c.reductions]
    futures = cell_task.map([config] * len(grid), [data[k] for k, _ in grid], [k[0] for k, _ in grid],
                            [k[1] for k, _ in grid], [r for _, r in grid], [k[2] for k, _ in grid])
    cells = [f.result() for f in futures]
    result = {"config": asdict(c), "cells": cells, "claims": claims(cells), "wall_s": time.perf_counter() - start}
    from reports.study import build_study_report
    path = build_study_report(result, Path(c.workspace) / "reports" / "study.html")
    result["report"] = str(path.resolve())
    return result


def run_study(c: StudyConfig) -> dict:
    """Run the study flow (on a local Dask cluster with ``dask``); returns its result with the report path."""
    _prefect_env.start_server(c.workspace)       # ends with this process (flows._watchdog)
    if c.dask:
        from prefect_dask import DaskTaskRunner
        runner = DaskTaskRunner(cluster_kwargs={"n_workers": min(2, os.cpu_count() or 1), "threads_per_worker": 1,
                                                "processes": True, "dashboard_address": None})
        return study.with_options(task_runner=runner)(asdict(c))
    return study(asdict(c))
