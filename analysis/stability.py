"""How stable a fit's selected planes and their defining texts are across subsamples of the training points.

``B`` seeded subsamples ``I_b`` (a share ``fraction`` of the N points, without replacement: the estimator rejects
duplicates) are refitted with the same estimator at ``beta m / N`` (the loss is a sum over the m points, so the
penalty per point is unchanged). For a feature j of the full fit with defining points ``P_j`` and plane
``n_j.x = t_j`` (unit normal; for a fold feature its mirror plane; ``t`` measured from the data's centroid):
``same_j = #{b : P_j in I_b, P_j = P'_k(b) or A_j = +-A'_k + c on I_b for a selected k} / #{b : P_j in I_b}``
(the same texts, or an equivalent column: one equal to j's on the subsample up to sign and a constant, e.g. a
plane through other collinear points, or a fold that bends none of the kept points),
``near_j = #{b : a selected k of the same family has angle(n_j, +-n'_k) <= alpha, |t_j -+ t'_k| <= delta} / B``,
and per defining text p, ``#{b : p defines a selected feature of fit b} / #{b : p in I_b}``; Wilson 95 % intervals.
Chance: ``near`` for random planes through d training points; per text, a random kept point defining a selected
feature; and every share again on a permuted target (subsamples overlap, so even noise repeats its planes).
"""
from __future__ import annotations

import logging

import numpy as np
import pandas as pd
from sklearn.base import clone

from .features import FoldFeatures
from .symmetry import nn_scale, random_planes

logger = logging.getLogger(__name__)
SAME_COLUMN = 1e-7     # centred unit columns closer than this (up to sign) are one column on the subsample


def wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float] | tuple[None, None]:
    """Wilson score interval of a proportion ``k / n`` (``(None, None)`` when ``n = 0``)."""
    if n <= 0:
        return None, None
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return float(max(0.0, centre - half)), float(min(1.0, centre + half))


def _planes(features: pd.DataFrame, centre: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Unit normals ``n`` and offsets ``t = n.centre + b / ||w||`` (signed distance of the centroid)."""
    if not len(features):
        return np.zeros((0, len(centre))), np.zeros(0)
    W = np.asarray(features["w"].tolist(), dtype=float).reshape(len(features), len(centre))
    norms = np.linalg.norm(W, axis=1)
    return W / norms[:, None], (W @ centre + features["b"].to_numpy(float)) / norms


def near(n, t, N, T, angle_tol: float, offset_tol: float) -> np.ndarray:
    """Which planes ``(N_k, T_k)`` lie within ``angle_tol`` degrees and ``offset_tol`` of ``n.x = t`` (either
    orientation)."""
    cos = N @ n
    s = np.where(cos >= 0, 1.0, -1.0)
    return (np.abs(cos) >= np.cos(np.radians(angle_tol)) - 1e-12) & (np.abs(t - s * T) <= offset_tol)


def _columns(features: pd.DataFrame, X) -> np.ndarray:
    """Centred unit columns of ``features`` on the points ``X``, (n, K); a column constant on them stays zero."""
    if not len(features):
        return np.zeros((len(X), 0))
    W = np.asarray(features["w"].tolist(), dtype=float).reshape(len(features), X.shape[1])
    A = FoldFeatures.of(W, features["b"].to_numpy(float), features["offsets"] if "offsets" in features else None
                        ).values(X)
    scale = np.linalg.norm(A, axis=0)
    A = A - A.mean(axis=0)
    norm = np.linalg.norm(A, axis=0)
    return np.divide(A, norm, out=np.zeros_like(A), where=norm > 1e-9 * scale)


def _equivalent(u, V) -> bool:
    """Whether the centred unit column ``u`` equals one of the columns ``V`` up to sign."""
    if not u.any() or not V.size:
        return False
    return bool(np.minimum(np.linalg.norm(V - u[:, None], axis=0), np.linalg.norm(V + u[:, None], axis=0)).min()
                <= SAME_COLUMN)


def _family(features: pd.DataFrame) -> np.ndarray:
    return features["depth"].to_numpy(int) if len(features) else np.zeros(0, int)


def plane_stability(estimator, X, y, features: pd.DataFrame, beta: float, n_resamples: int = 8,
                    fraction: float = 0.8, angle_tol: float = 10.0, offset_tol: float | None = None,
                    n_null: int = 200, permuted: bool = True, random_state=0) -> dict:
    """Refit ``clone(estimator)`` at ``beta m / N`` on ``n_resamples`` subsamples of ``(X, y)`` (the points the
    full fit saw) and measure, per selected feature of ``features`` (the full fit's ``features_``), the module's
    shares with Wilson intervals and chance levels. ``offset_tol`` defaults to the median nearest-neighbour
    distance of ``X`` (data units). Returns ``features`` (one entry per full-fit feature, in its order), the
    settings, the chance levels, ``resamples`` (each subsample's rows and its selected features' ids and points,
    in rows of ``X``) and, with ``permuted``, ``permuted``: the mean shares of the same procedure on a randomly
    permuted ``y`` (fitted at ``beta``), the reference a target unrelated to the texts gets."""
    X = np.atleast_2d(np.asarray(X, dtype=float))
    y = np.asarray(y, dtype=float).reshape(-1)
    N = len(X)
    m = int(round(fraction * N))
    if not 0 < fraction < 1 or m < 2 or n_resamples < 1:
        raise ValueError(f"plane_stability: need 0 < fraction < 1 with at least 2 points kept and n_resamples >= 1, "
                         f"got fraction={fraction}, N={N}, n_resamples={n_resamples}")
    offset_tol = nn_scale(X) if offset_tol is None else float(offset_tol)
    centre = X.mean(axis=0)
    rng = np.random.default_rng(random_state)
    Wn, bn = random_planes(X, n_null, rng)
    null_n, null_t = _planes(pd.DataFrame({"w": list(Wn), "b": bn}), centre)
    model = clone(estimator).set_params(beta=float(beta) * m / N, n_betas=1, beta_min_ratio=None, betas=None,
                                        path=None, verbose=False)
    resamples = []
    for _ in range(n_resamples):
        rows = np.sort(rng.choice(N, size=m, replace=False))
        fit = clone(model).fit(X[rows], y[rows])
        f = fit.features_
        resamples.append({"rows": rows.tolist(), "ids": f["id"].tolist(),
                          "points": [sorted(int(rows[p]) for p in pts) for pts in f["points"]],
                          "family": _family(f).tolist(), "planes": _planes(f, centre), "columns": _columns(f, X[rows])})
    full_n, full_t = _planes(features, centre)
    families = _family(features)
    chance_near = {}
    for fam in set(families.tolist()):
        shares = []
        for r in resamples:
            sel = np.asarray(r["family"]) == fam
            N_b, T_b = r["planes"][0][sel], r["planes"][1][sel]
            shares.append(np.mean([near(n, t, N_b, T_b, angle_tol, offset_tol).any()
                                   for n, t in zip(null_n, null_t)]) if len(null_t) and sel.any() else 0.0)
        chance_near[fam] = float(np.mean(shares))
    defining = [set(p for pts in r["points"] for p in pts) for r in resamples]
    kept = [set(r["rows"]) for r in resamples]
    out = []
    for j, f in enumerate(features.itertuples()):
        pts = sorted(int(p) for p in f.points)
        fam = int(families[j])
        with_all = [b for b, r in enumerate(resamples) if set(pts) <= kept[b]]
        by_points = [pts in resamples[b]["points"] for b in with_all] if pts else []
        by_column = [not hit and _equivalent(_columns(features.iloc[[j]], X[resamples[b]["rows"]])[:, 0],
                                             resamples[b]["columns"]) for b, hit in zip(with_all, by_points)]
        same = sum(by_points) + sum(by_column)
        sel = [np.asarray(r["family"]) == fam for r in resamples]
        hits = sum(bool(near(full_n[j], full_t[j], r["planes"][0][s], r["planes"][1][s], angle_tol,
                             offset_tol).any()) for r, s in zip(resamples, sel))
        texts = []
        for p in pts:
            having = [b for b in range(n_resamples) if p in kept[b]]
            k = sum(p in defining[b] for b in having)
            texts.append({"point": p, "defines": k, "of": len(having), "ci": list(wilson(k, len(having)))})
        out.append({"id": str(f.id), "family": fam, "points": pts,
                    "same_points": same if pts else None, "same_points_of": len(with_all) if pts else 0,
                    "same_by_equivalent": int(sum(by_column)) if pts else 0,
                    "dropped": n_resamples - len(with_all),
                    "same_points_ci": list(wilson(same, len(with_all))) if pts else [None, None],
                    "near_plane": int(hits), "near_plane_of": n_resamples,
                    "near_plane_ci": list(wilson(hits, n_resamples)), "chance_near_plane": chance_near[fam],
                    "texts": texts})
    chance_text = float(np.mean([len(defining[b]) / m for b in range(n_resamples)]))
    logger.info("stability of %d features over %d subsamples of %d/%d points (angle %.3g deg, offset %.3g)",
                len(out), n_resamples, m, N, angle_tol, offset_tol)
    result = {"n_resamples": int(n_resamples), "fraction": float(fraction), "n_kept": m, "n_points": N,
              "beta": float(beta) * m / N, "angle_tol": float(angle_tol), "offset_tol": offset_tol,
              "chance_text": chance_text, "features": out,
              "resamples": [{k: v for k, v in r.items() if k not in ("planes", "columns")} for r in resamples]}
    if permuted:
        yp = rng.permutation(y)
        ref = plane_stability(estimator, X, yp, clone(model).set_params(beta=float(beta)).fit(X, yp).features_, beta,
                              n_resamples, fraction, angle_tol, offset_tol, n_null, False, rng)
        result["permuted"] = {"features": len(ref["features"]), **mean_shares(ref)}
    return result


def mean_shares(out: dict) -> dict:
    """Mean over features of the same-points and near-plane shares, and over defining texts of their share."""
    fs = out["features"]
    same = [f["same_points"] / f["same_points_of"] for f in fs if f["same_points_of"]]
    texts = [t["defines"] / t["of"] for f in fs for t in f["texts"] if t["of"]]
    return {"same_points": float(np.mean(same)) if same else None,
            "near_plane": float(np.mean([f["near_plane"] / f["near_plane_of"] for f in fs])) if fs else None,
            "texts": float(np.mean(texts)) if texts else None}


def pooled_same(out: dict) -> dict | None:
    """The (plane, subsample) pairs that kept a plane's defining points: ``k`` of ``n`` reselect them, the
    share with its Wilson interval (pooled over planes, so somewhat optimistic), and the permuted target's mean
    share; None when no pair kept its points."""
    k = sum(f["same_points"] or 0 for f in out["features"])
    n = sum(f["same_points_of"] for f in out["features"])
    if not n:
        return None
    lo, hi = wilson(k, n)
    return {"k": int(k), "n": int(n), "planes": len(out["features"]), "share": k / n, "lo": lo, "hi": hi,
            "permuted": (out.get("permuted") or {}).get("same_points")}


def fit_stability(fits: dict, X, y, params: dict, n_resamples: int = 8, random_state=0) -> dict[int, dict]:
    """The ``stability`` entry of each depth's stored fit (``features``, ``beta``): ``plane_stability`` of
    ``ReflectionLasso(depth, **params)`` on the points ``(X, y)`` the fit saw. Fits without features are left out,
    and so is a depth whose refits the estimator rejects (e.g. a subsample too small for its features), with a
    warning: the measure is then missing, the run goes on."""
    from .estimator import ReflectionLasso
    out = {}
    for depth, fit in sorted(fits.items()):
        if fit.get("beta") is None or not len(fit["features"]):
            continue
        try:
            out[int(depth)] = plane_stability(ReflectionLasso(depth=int(depth), **params), X, y, fit["features"],
                                              fit["beta"], n_resamples=n_resamples, random_state=random_state)
        except ValueError as err:
            logger.warning("stability of depth %s left out: %s", depth, err)
    return out
