"""Mirror symmetry of fitted functions about fold planes, on the data support, against chance (docs/MATH.md section 3).

Score of ``f`` about ``H = {w.x + b = 0}`` on the support ``S`` (training points ``p`` whose mirror
image ``R_H p`` lies within ``radius`` of a training point, so ``f`` is compared where it was fitted):
``S_H(f) = 1 - mean_S |f(p) - f(R_H p)| / mean_U |f(u) - mean_U f|``, ``U = S u R_H S`` (1 when f is
constant there). ``S = 1`` for f symmetric about H; ``S = -1`` for f odd about H; always ``>= -1``.
The null: the same score about random hyperplanes through d training points, same support rule.
Intervals: percentile bootstrap over the support pairs (paired across depths, same resamples).
Multilevel (depth >= 4 features): within the side ``s (w.x + b) > 0`` the feature is again symmetric
about ``w.x + b = s c_1``; those nested planes are scored with the support kept on that side.
"""
from __future__ import annotations

import logging
from collections.abc import Callable

import numpy as np
import pandas as pd

from .geometry import hyperplanes_through, reflect

logger = logging.getLogger(__name__)


def _values(f: Callable, P: np.ndarray) -> np.ndarray:
    v = np.asarray(f(P), dtype=float).reshape(-1)
    if v.shape != (len(P),):
        raise ValueError(f"the fitted function must return one value per point, "
                         f"got shape {v.shape} for {len(P)} points")
    if not np.all(np.isfinite(v)):
        raise ValueError("the fitted function returned NaN or inf")
    return v


def _check_plane(X, w) -> np.ndarray:
    w = np.asarray(w, dtype=float).reshape(-1)
    if w.shape != (X.shape[1],) or not np.any(w):
        raise ValueError(f"the plane normal w must be a non-zero vector of length {X.shape[1]}, got {w}")
    return w


def _score(v: np.ndarray, vr: np.ndarray) -> float:
    """``1 - mean|v - vr| / mean|u - mean u|`` with ``u = (v, vr)``."""
    u = np.concatenate([v, vr])
    spread = np.mean(np.abs(u - u.mean())) if len(u) else 0.0
    if spread <= 1e-14 * max(np.max(np.abs(u), initial=0.0), 1.0):
        return 1.0
    return float(1.0 - np.mean(np.abs(v - vr)) / spread)


def nn_scale(X) -> float:
    """Median distance from a training point to its nearest other training point."""
    X = np.atleast_2d(np.asarray(X, dtype=float))
    D = np.sqrt(((X[:, None, :] - X[None, :, :]) ** 2).sum(-1))
    np.fill_diagonal(D, np.inf)
    return float(np.median(D.min(axis=1)))


def support(X, w, b: float, radius: float, within=None) -> np.ndarray:
    """Indices of training points whose mirror image across ``w.x + b = 0`` lies within ``radius`` of a
    training point; ``within = (w0, b0, s)`` also keeps both on the side ``s (w0.x + b0) > 0``."""
    X = np.atleast_2d(np.asarray(X, dtype=float))
    w = _check_plane(X, w)
    R = reflect(X, w, b)
    near = np.sqrt(((R[:, None, :] - X[None, :, :]) ** 2).sum(-1)).min(axis=1) <= radius
    if within is not None:
        w0, b0, s = within
        near &= (s * (X @ np.asarray(w0, dtype=float) + b0) > 0) & (s * (R @ np.asarray(w0, dtype=float) + b0) > 0)
    return np.flatnonzero(near)


def symmetry_score(f: Callable, X, w, b: float = 0.0, radius: float | None = None) -> float:
    """``S_H(f)`` on the support of radius ``radius`` (on every point of ``X`` when None); NaN on an empty support."""
    X = np.atleast_2d(np.asarray(X, dtype=float))
    w = _check_plane(X, w)
    idx = np.arange(len(X)) if radius is None else support(X, w, b, radius)
    if not idx.size:
        return float("nan")
    P = X[idx]
    v = _values(f, np.concatenate([P, reflect(P, w, b)]))
    return _score(v[: len(P)], v[len(P):])


def fold_planes(features) -> list[tuple[np.ndarray, float, float]]:
    """``(w, b, |coef|)`` of the features with a positive fold offset (their mirror planes),
    largest ``|coef|`` first."""
    rows = [(np.asarray(r.w, dtype=float), float(r.b), abs(float(r.coef)))
            for r in pd.DataFrame(features).itertuples() if np.any(np.asarray(r.offsets, dtype=float) > 0)]
    return sorted(rows, key=lambda t: -t[2])


def bending(features, X) -> np.ndarray:
    """``(m, n_offsets)``: whether fold level l of feature j bends the training data, i.e. ``|u_{l-1}| - c_l`` (``u_0 =
    w.x + b``) takes both signs on ``X`` beyond rounding; a level that bends none leaves the feature equal on the data
    to one with that offset removed (up to sign and a constant), so the Lasso's pick between them is arbitrary."""
    rows = pd.DataFrame(features)
    X = np.atleast_2d(np.asarray(X, dtype=float))
    width = max((len(np.atleast_1d(c)) for c in rows["offsets"]), default=0) if len(rows) else 0
    out = np.zeros((len(rows), width), dtype=bool)
    for j, r in enumerate(rows.itertuples()):
        u = X @ np.asarray(r.w, dtype=float) + float(r.b)
        for level, c in enumerate(np.atleast_1d(np.asarray(r.offsets, dtype=float))):
            u = np.abs(u) - c
            tol = 1e-9 * max(1.0, float(np.abs(u).max()), float(c))
            out[j, level] = bool(c > 0 and u.max() > tol and u.min() < -tol)
    return out


def mirror_planes(features, source_depth: int | None = None, max_planes: int | None = None, X=None) -> list[dict]:
    """The mirror planes a fit's features predict, largest ``|coef|`` first: level 1, ``w.x + b = 0`` of every
    feature with ``c_1 > 0``; level 2 (features with ``c_1, c_2 > 0``), ``w.x + b = s c_1`` within the side ``s``.
    With the training points ``X``, only folds that bend them (``bending``): level 1 when a level bends, level 2
    when levels 1 and 2 do."""
    frame = pd.DataFrame(features)
    bends = bending(frame, X) if X is not None and len(frame) else None
    rows = [(r, None if bends is None else bends[i]) for i, r in enumerate(frame.itertuples())
            if np.any(np.asarray(r.offsets, dtype=float) > 0) and (bends is None or bends[i].any())]
    rows.sort(key=lambda rb: -abs(float(rb[0].coef)))
    out = []
    for j, (r, bent) in enumerate(rows[:max_planes]):
        w, b, c = np.asarray(r.w, dtype=float), float(r.b), np.asarray(r.offsets, dtype=float)
        base = {"feature": j, "id": str(getattr(r, "id", j)), "source_depth": source_depth, "coef": float(r.coef)}
        out.append({**base, "w": w, "b": b, "level": 1, "within": None})
        if len(c) >= 2 and c[0] > 0 and c[1] > 0 and (bent is None or bent[:2].all()):
            out += [{**base, "w": w, "b": b - s * c[0], "level": 2, "within": (w, b, s)} for s in (1.0, -1.0)]
    return out


def random_planes(X, n: int, rng) -> tuple[np.ndarray, np.ndarray]:
    """``n`` hyperplanes through d distinct training points drawn uniformly (degenerate draws dropped)."""
    X = np.atleast_2d(np.asarray(X, dtype=float))
    N, d = X.shape
    idx = np.argsort(rng.random((n, N)), axis=1)[:, :d]
    W, b, valid = hyperplanes_through(X[idx])
    return W[valid], b[valid]


def symmetry_table(fits: dict, X, planes: list[dict], radius: float | None = None, n_null: int = 200,
                   n_boot: int = 200, min_support: int = 5, random_state=0) -> tuple[pd.DataFrame, dict]:
    """Every fit ``fits[depth] = f`` scored about every plane of ``planes`` (``mirror_planes`` rows) on its support.

    Per (depth, plane): ``n_support``, ``score`` with a bootstrap interval ``lo..hi``, the null (scores of the same
    f about ``n_null`` random planes through training points, same radius): its median, 95th percentile and the
    one-sided ``p_value`` ``(1 + #{null >= score}) / (1 + n_null)``; ``diff`` = score minus the next shallower fit's
    score about the same plane, with a paired interval. Planes with fewer than ``min_support`` support points are
    dropped. Returns the table (``boot`` holds each score's bootstrap draws) and the null scores per depth.
    """
    X = np.atleast_2d(np.asarray(X, dtype=float))
    radius = nn_scale(X) if radius is None else float(radius)
    depths = sorted(int(d) for d in fits)
    rng = np.random.default_rng(random_state)
    Wn, bn = random_planes(X, n_null, rng)
    null = {}
    for depth in depths:
        scores = np.array([symmetry_score(fits[depth], X, w, b, radius) for w, b in zip(Wn, bn)])
        null[depth] = scores[np.array([support(X, w, b, radius).size >= min_support for w, b in zip(Wn, bn)])]
    rows = []
    for i, pl in enumerate(planes):
        idx = support(X, pl["w"], pl["b"], radius, pl.get("within"))
        if idx.size < min_support:
            continue
        P = X[idx]
        R = reflect(P, pl["w"], pl["b"])
        draws = rng.integers(len(idx), size=(n_boot, len(idx)))
        prev = None
        for depth in depths:
            v = _values(fits[depth], np.concatenate([P, R]))
            v, vr = v[: len(P)], v[len(P):]
            score = _score(v, vr)
            boot = np.array([_score(v[k], vr[k]) for k in draws])
            nl = null[depth]
            row = {"depth": depth, "plane": i, "feature": pl.get("feature"), "id": pl.get("id"),
                   "source_depth": pl.get("source_depth"),
                   "level": pl.get("level", 1), "coef": pl.get("coef"), "w": np.asarray(pl["w"]).tolist(),
                   "b": float(pl["b"]), "n_support": int(idx.size), "score": score,
                   "lo": float(np.quantile(boot, 0.025)), "hi": float(np.quantile(boot, 0.975)),
                   "null_median": float(np.median(nl)) if nl.size else np.nan,
                   "null_q95": float(np.quantile(nl, 0.95)) if nl.size else np.nan,
                   "p_value": float((1 + np.sum(nl >= score - 1e-12)) / (1 + nl.size)), "boot": boot,
                   "diff": np.nan, "diff_lo": np.nan, "diff_hi": np.nan}
            if prev is not None:
                delta = boot - prev[1]
                row.update(diff=score - prev[0], diff_lo=float(np.quantile(delta, 0.025)),
                           diff_hi=float(np.quantile(delta, 0.975)))
            prev = (score, boot)
            rows.append(row)
    logger.info("symmetry of depths %s about %d planes (radius %.3g, %d null planes)", depths, len(planes), radius,
                len(Wn))
    return pd.DataFrame(rows), null


def verdict(lo: float, hi: float, threshold: float = 0.0) -> str:
    """"supported" when the interval lies above ``threshold``, "not supported" when at or below it,
    else "cannot tell"."""
    if not (np.isfinite(lo) and np.isfinite(hi)):
        return "cannot tell"
    return "supported" if lo > threshold else "not supported" if hi <= threshold else "cannot tell"


def summarize(table: pd.DataFrame, null: dict, level: int = 1, own_only: bool = False,
              random_state=0) -> dict:
    """Per depth, over the planes of ``level``: mean score with a bootstrap interval (the planes' draws averaged),
    the null's 95th percentile of a mean over as many random planes, the share of planes with ``p < 0.05``, the
    mean difference from the next shallower depth with its interval, and the two verdicts. ``own_only``: planes
    selected by that depth's own fit."""
    rng = np.random.default_rng(random_state)
    out = {}
    for depth, t in table[table["level"] == level].groupby("depth"):
        if own_only:
            t = t[t["source_depth"] == depth]
        if not len(t):
            continue
        boot = np.mean(np.stack(t["boot"].to_list()), axis=0)
        nl = null[depth]
        null_means = nl[rng.integers(len(nl), size=(1000, len(t)))].mean(axis=1) if len(nl) else np.array([np.nan])
        row = {"planes": int(len(t)), "mean": float(t["score"].mean()), "min": float(t["score"].min()),
               "lo": float(np.quantile(boot, 0.025)), "hi": float(np.quantile(boot, 0.975)),
               "null_mean": float(np.mean(null_means)), "null_q95": float(np.quantile(null_means, 0.95)),
               "share_above_null": float(np.mean(t["p_value"] < 0.05)),
               "median_support": float(t["n_support"].median())}
        row["above_chance"] = verdict(row["lo"], row["hi"], row["null_q95"])
        if t["diff"].notna().all():
            prev = table[(table["level"] == level) & (table["plane"].isin(t["plane"]))
                         & (table["depth"] < depth)]
            prev_boot = np.mean(np.stack(prev[prev["depth"] == prev["depth"].max()]["boot"].to_list()), axis=0)
            delta = boot - prev_boot
            row.update(diff=float(t["diff"].mean()), diff_lo=float(np.quantile(delta, 0.025)),
                       diff_hi=float(np.quantile(delta, 0.975)))
            row["more_symmetric_than_shallower"] = verdict(row["diff_lo"], row["diff_hi"])
        out[int(depth)] = row
    return out


def fit_symmetry(fits: dict, X, n_planes: int, random_state=None) -> dict[int, dict]:
    """The ``symmetry`` entry of each depth's fit: its fitted function scored about the mirror planes the fits'
    features predict (the ``n_planes`` largest of every fit's, nested ones included) on the support ``X``,
    against random planes and the shallower depth (``analysis.symmetry.symmetry_table``); ``fits`` maps a depth
    to its stored fit (``features``, ``intercept``). Empty when no plane has enough points mirrored near data."""
    from .estimator import evaluate_features
    planes = [p for depth, fit in sorted(fits.items()) for p in mirror_planes(fit["features"], depth, n_planes)]
    if not planes:
        return {}
    funcs = {depth: (lambda P, fit=fit: evaluate_features(fit["features"], fit["intercept"], P))
             for depth, fit in fits.items()}
    table, null = symmetry_table(funcs, X, planes, random_state=random_state)
    if not len(table):
        return {}
    overall, own, nested = summarize(table, null), summarize(table, null, own_only=True), summarize(table, null, 2)
    rows = table.drop(columns="boot").astype(object)
    rows = rows.where(rows.notna(), None)
    return {depth: {**overall.get(depth, {}), "own": own.get(depth), "multilevel": nested.get(depth),
                    "null_planes": int(len(null[depth])), "table": rows[rows["depth"] == depth].to_dict("records")}
            for depth in fits}
