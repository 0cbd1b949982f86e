"""Typed records that cross packages: a Lasso fit (``FitResult``) and a training comparison (``TrainingResult``).

The pipeline writes them (``flows.pipeline``), the store keeps their ``to_dict`` form as JSON, the
reports read them back through ``from_dict``: the one place that accepts the older stored shapes
(``rel_gap`` for ``relative_gap``, ``curve`` for ``curves``, a flat single-run network result).
"""
from __future__ import annotations

from dataclasses import dataclass, field, fields

import numpy as np

# Keys a stored fit carries beside its record: its depth (the store's key) and its tables.
_FIT_TABLES = ("depth", "features", "path")


def fit_metrics(model, X, y, train: np.ndarray, classes: bool) -> dict:
    """R^2 and MSE of ``model.predict`` on the train and test splits (each of >= 2 points), plus the sign
    accuracy ``mean(sign(f(x)) == y)`` for classes."""
    from sklearn.metrics import mean_squared_error, r2_score
    out = {}
    for name, mask in (("train", train), ("test", ~train)):
        if mask.sum() < 2:
            continue
        pred = model.predict(X[mask])
        out[f"{name}_r2"] = float(r2_score(y[mask], pred))
        out[f"{name}_mse"] = float(mean_squared_error(y[mask], pred))
        if classes:
            out[f"{name}_accuracy"] = float(np.mean(np.sign(pred) == y[mask]))
    return out


def _optional(value, kind):
    return None if value is None else kind(value)


@dataclass
class FitResult:
    """One Lasso fit ``min 1/2 ||A z + xi - y||^2 + beta ||z||_1`` at its selected ``beta``: objective, certificate,
    metrics, timings; ``extra`` holds what later steps add (e.g. ``symmetry``). Its features and beta path
    are tables the store keeps beside it."""

    beta: float | None
    beta_max: float | None
    objective: float | None
    intercept: float | None
    n_candidates: int | None
    certificate: dict = field(default_factory=dict)
    metrics: dict = field(default_factory=dict)
    timings: dict = field(default_factory=dict)
    extra: dict = field(default_factory=dict)

    @classmethod
    def from_estimator(cls, model, metrics: dict, wall_s: float) -> FitResult:
        """The record of a fitted ``analysis.ReflectionLasso`` (``wall_s``: the fit's wall time)."""
        return cls(beta=float(model.beta_), beta_max=float(model.beta_max_), objective=float(model.objective_),
                   intercept=float(model.intercept_), n_candidates=int(model.n_candidates_),
                   certificate=dict(model.certificate_), metrics=dict(metrics),
                   timings={**getattr(model, "timings_", {}), "wall_s": float(wall_s)})

    def to_dict(self) -> dict:
        """JSON-able dict: the fields, with ``extra``'s keys at the top level."""
        return {**{f.name: getattr(self, f.name) for f in fields(self) if f.name != "extra"}, **self.extra}

    @classmethod
    def from_dict(cls, d: dict) -> FitResult:
        """The record of a ``to_dict`` form or a stored fit (``depth``, ``features`` and ``path`` are left out)."""
        named = {f.name for f in fields(cls)} - {"extra"}
        return cls(beta=_optional(d.get("beta"), float), beta_max=_optional(d.get("beta_max"), float),
                   objective=_optional(d.get("objective"), float), intercept=_optional(d.get("intercept"), float),
                   n_candidates=_optional(d.get("n_candidates"), int), certificate=dict(d.get("certificate") or {}),
                   metrics=dict(d.get("metrics") or {}), timings=dict(d.get("timings") or {}),
                   extra={k: v for k, v in d.items() if k not in named and k not in _FIT_TABLES})


@dataclass
class TrainingRun:
    """One architecture and width trained over seeds: best objective ``F``, ``relative_gap`` ``(F - F*) / |F*|``
    to the Lasso objective ``F*`` (and ``gap_to_lower_bound``), times, and the objective curve of each seed;
    ``status`` "ok" or "diverged" (no objective then)."""

    status: str
    architecture: str | None = None
    width: int | None = None
    optimizer: str | None = None
    best_objective: float | None = None
    relative_gap: float | None = None
    gap_to_lower_bound: float | None = None
    wall_time_s: float | None = None
    time_to_1pct_s: float | None = None
    best_seed: int | None = None
    epochs: int | None = None
    seeds: list | None = None
    curves: list | None = None
    emergence: dict | None = None
    extra: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        """JSON-able dict (``seeds``, ``curves`` and ``emergence`` only when present, ``extra`` at the top)."""
        out = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "extra"}
        for key in ("seeds", "curves", "emergence"):
            if out[key] is None:
                del out[key]
        return {**out, **self.extra}

    @classmethod
    def from_dict(cls, d: dict) -> TrainingRun:
        """The run of a ``to_dict`` form, also of the older ``rel_gap`` and single ``curve`` spellings."""
        d = dict(d)
        if "relative_gap" not in d and "rel_gap" in d:
            d["relative_gap"] = d.pop("rel_gap")
        if "curves" not in d and d.get("curve") is not None:
            d["curves"] = [d.pop("curve")]
        names = {f.name for f in fields(cls)} - {"extra"}
        return cls(**{k: v for k, v in d.items() if k in names and k != "status"},
                   status=str(d.get("status") or ("ok" if d.get("best_objective") is not None else "diverged")),
                   extra={k: v for k, v in d.items() if k not in names and k != "depth"})


@dataclass
class TrainingResult:
    """The networks of one depth trained at the Lasso's ``beta`` on ``n_points`` points of dimension ``dim``,
    against the Lasso (``lasso``: its ``objective``, ``wall_time_s``, ``lower_bound``); ``status`` "ok" when a
    run converged; ``emergence`` of the best parallel network; ``extra`` the rest."""

    depth: int
    status: str
    runs: list[TrainingRun] = field(default_factory=list)
    beta: float | None = None
    n_points: int | None = None
    dim: int | None = None
    bias: bool | None = None
    lasso: dict = field(default_factory=dict)
    emergence: dict | None = None
    extra: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        """JSON-able dict (the runs as dicts, ``extra`` at the top level)."""
        out = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in ("runs", "extra")}
        return {**out, "runs": [r.to_dict() for r in self.runs], **self.extra}

    @classmethod
    def from_dict(cls, d: dict) -> TrainingResult:
        """The result of a ``to_dict`` form or of an older stored shape: a flat result (one run's keys at the top,
        ``lasso_objective``), ``rel_gap`` or ``curve`` in its runs, a whole-function ``symmetry`` score (dropped:
        issue 13 found it measured extrapolation)."""
        runs = [TrainingRun.from_dict(r) for r in d.get("runs") or [] if isinstance(r, dict)]
        flat = not runs and "best_objective" in d
        if flat:
            runs = [TrainingRun.from_dict({k: v for k, v in d.items()
                                           if k not in ("lasso_objective", "symmetry", "emergence")})]
        lasso = dict(d["lasso"]) if isinstance(d.get("lasso"), dict) else {}
        if "objective" not in lasso and d.get("lasso_objective") is not None:
            lasso["objective"] = d["lasso_objective"]
        top = {"depth", "status", "runs", "beta", "n_points", "dim", "bias", "lasso", "emergence", "symmetry",
               "lasso_objective"}
        run_keys = {f.name for f in fields(TrainingRun)} | {"rel_gap", "curve"} | set(runs[0].extra if flat else ())
        status = d.get("status") or ("ok" if any(r.status == "ok" for r in runs) else "diverged")
        return cls(depth=int(d["depth"]), status=str(status), runs=runs, beta=_optional(d.get("beta"), float),
                   n_points=_optional(d.get("n_points"), int), dim=_optional(d.get("dim"), int),
                   bias=_optional(d.get("bias"), bool), lasso=lasso, emergence=d.get("emergence"),
                   extra={k: v for k, v in d.items() if k not in top and not (flat and k in run_keys)})

    def best_run(self) -> TrainingRun | None:
        """The run of least best objective, None when none has one."""
        ok = [r for r in self.runs if r.best_objective is not None and np.isfinite(r.best_objective)]
        return min(ok, key=lambda r: r.best_objective) if ok else None

