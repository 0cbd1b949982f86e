"""Mirror symmetry of fitted functions about fold planes, and how it changes with depth (docs/MATH.md section 3).

Score of ``f`` about ``H = {w.x + b = 0}`` on points ``P = X`` and their mirror images ``R_H X``:
``S = 1 - mean_P |f(p) - f(R_H p)| / mean_P |f(p) - mean_P f|`` (1 when f is constant on P).
``S = 1`` for f symmetric about H; ``S = -1`` for f odd about H on a symmetric point set.
"""
from __future__ import annotations

import logging
from typing import Callable

import numpy as np
import pandas as pd

from .geometry import reflect

logger = logging.getLogger(__name__)


def _values(f: Callable, P: np.ndarray) -> np.ndarray:
    v = np.asarray(f(P), dtype=float).reshape(-1)
    if v.shape != (len(P),):
        raise ValueError(f"the fitted function must return one value per point, got shape {v.shape} for {len(P)} points")
    if not np.all(np.isfinite(v)):
        raise ValueError("the fitted function returned NaN or inf")
    return v


def symmetry_score(f: Callable, X, w, b: float = 0.0) -> float:
    """``1 - mean|f(p) - f(R_H p)| / mean|f(p) - mean f|`` over ``p`` in ``X`` and its mirror images across ``w.x + b = 0``."""
    X = np.atleast_2d(np.asarray(X, dtype=float))
    w = np.asarray(w, dtype=float).reshape(-1)
    if w.shape != (X.shape[1],) or not np.any(w):
        raise ValueError(f"the plane normal w must be a non-zero vector of length {X.shape[1]}, got {w}")
    P = np.concatenate([X, reflect(X, w, b)])
    v = _values(f, P)
    asym = np.mean(np.abs(v - np.concatenate([v[len(X):], v[: len(X)]])))
    spread = np.mean(np.abs(v - v.mean()))
    return 1.0 if spread == 0 else float(1.0 - asym / spread)


def fold_planes(features) -> list[tuple[np.ndarray, float, float]]:
    """``(w, b, |coef|)`` of the features with a positive fold offset (their mirror planes), largest ``|coef|`` first."""
    rows = [(np.asarray(r.w, dtype=float), float(r.b), abs(float(r.coef)))
            for r in pd.DataFrame(features).itertuples() if np.any(np.asarray(r.offsets, dtype=float) > 0)]
    return sorted(rows, key=lambda t: -t[2])


def _reflection_lasso_fit(X, y, beta, depth):
    from .estimator import ReflectionLasso

    est = ReflectionLasso(depth=depth, beta=beta).fit(X, y)
    return est.predict, [(w, b) for w, b, _ in fold_planes(est.features_)]


def depth_symmetry(X, y, beta: float, depths=(2, 3, 4), fit: Callable | None = None,
                   planes=None, decimals: int = 8) -> pd.DataFrame:
    """Symmetry scores of the fits of each depth on the same data about the same fold planes.

    ``fit(X, y, beta, depth) -> (f, planes)`` returns the fitted function (arrays in, one value per
    row out) and its fold planes ``[(w, b), ...]`` (default: ``ReflectionLasso`` and the mirror planes
    of its fold features). Every fit is scored on the union of all fits' planes (or on ``planes``
    when given). One row per (depth, plane): depth, plane, source_depth, w, b, score.
    """
    X = np.atleast_2d(np.asarray(X, dtype=float))
    depths = [int(d) for d in depths]
    if not depths or min(depths) < 2:
        raise ValueError(f"depths must be integers >= 2, got {depths}")
    fit = _reflection_lasso_fit if fit is None else fit
    fits, union, seen = {}, [], set()
    for depth in depths:
        f, own = fit(X, y, beta, depth)
        fits[depth] = f
        for w, b in own:
            w = np.asarray(w, dtype=float)
            key = tuple(np.round(np.r_[w, b] * np.sign(w[np.argmax(np.abs(w))]), decimals))
            if key not in seen:
                seen.add(key)
                union.append((w, float(b), depth))
    if planes is not None:
        union = [(np.asarray(w, dtype=float), float(b), None) for w, b in planes]
    if not union:
        raise ValueError(f"no fold planes to score: the fits of depths {depths} selected none; pass planes=[(w, b), ...]")
    rows = [{"depth": depth, "plane": i, "source_depth": src, "w": w.tolist(), "b": b,
             "score": symmetry_score(f, X, w, b)}
            for depth, f in fits.items() for i, (w, b, src) in enumerate(union)]
    logger.info("symmetry of depths %s about %d fold planes", depths, len(union))
    return pd.DataFrame(rows)
