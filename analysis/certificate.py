"""Optimality certificates (docs/MATH.md sections 4-5): dictionary ratio, duality gap, continuum oracle.

The continuum oracle of a depth-2 network: for fixed ``w`` the best bias puts the hyperplane
through a training point ``x_k`` (or beyond every point, where, as ``sum(r) = 0``, the feature is
linear on the data and scores as at the outermost point), so
``rho_net = max_k max_{||w|| = 1} |r . |(X - 1 x_k^T) w|| / beta`` (anchor at the origin without bias).
For one anchor ``F(w) = sum_n r_n |v_n . w|`` is linear, ``w . u_c``, on each cell ``c`` of the
arrangement of the planes ``v_n . w = 0``, so ``max |F|`` over the sphere is ``||u_c||`` at
``u_c / ||u_c||`` when that lies in its cell, else on a cell boundary (one dimension lower).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from .features import FoldFeatures
from .geometry import feature_values
from .lasso import Proposal, dual_objective

log = logging.getLogger(__name__)

CELL_BUDGET = 3e8        # elementwise operations allowed for the d = 3 cell enumeration
_EPS = 1e-12


@dataclass
class Oracle:
    """Best neuron per anchor: ``values[k] = max_w |r . |(X - 1 x_k^T) w||``, attained at ``W[k]``."""

    values: np.ndarray
    W: np.ndarray
    anchors: np.ndarray       # training index of each anchor (-1: the origin, without bias)
    method: str               # "exact-arcs" | "cell-enumeration" | "search"

    @property
    def exact(self) -> bool:
        return self.method != "search"

    @property
    def best(self) -> int:
        return int(np.argmax(self.values))


def _score(V, r, W):
    """``|sum_n r_n |v_n . w||`` for each row ``w`` of ``W``."""
    return np.abs(np.abs(W @ V.T) @ r)


def _unit(a):
    n = np.linalg.norm(a, axis=-1, keepdims=True)
    return a / np.where(n > 0, n, 1.0)


def _arcs(V, r):
    """Exact ``max_{||w|| = 1} |sum_n r_n |v_n . w||`` for ``V`` (n, 2): ``(value, w)``.

    Breakpoints ``w . v_n = 0`` cut the half circle into arcs; on each arc the function is
    ``w . u`` (a sinusoid), maximal at an endpoint or at ``+-u / ||u||`` when inside the arc.
    """
    keep = np.linalg.norm(V, axis=1) > _EPS
    V, r = V[keep], r[keep]
    if not len(V):
        return 0.0, np.array([1.0, 0.0])
    t = np.sort(np.mod(np.arctan2(V[:, 1], V[:, 0]) + np.pi / 2, np.pi))
    ends = np.append(t, t[0] + np.pi)
    mid = 0.5 * (ends[:-1] + ends[1:])
    S = np.sign(np.column_stack([np.cos(mid), np.sin(mid)]) @ V.T)
    U = (S * r) @ V
    phi = np.arctan2(U[:, 1], U[:, 0])
    inside = np.zeros(len(U), dtype=bool)
    for shift in (0.0, np.pi):                           # +u and -u
        a = np.mod(phi + shift - ends[:-1], 2 * np.pi)
        inside |= a <= ends[1:] - ends[:-1]
    cand = np.concatenate([t, phi[inside]])
    W = np.column_stack([np.cos(cand), np.sin(cand)])
    vals = _score(V, r, W)
    i = int(np.argmax(vals))
    return float(vals[i]), W[i]


def _plane_basis(n):
    """Orthonormal basis (3, 2) of the plane orthogonal to ``n``."""
    return np.linalg.svd(n[None, :])[2][1:].T


def _cells3(V, r):
    """Exact maximum for ``V`` (n, 3) by cell enumeration: interior candidates of every cell (found
    around each vertex of the arrangement) and the maxima on every plane ``v_n . w = 0`` (arcs)."""
    norms = np.linalg.norm(V, axis=1)
    keep = norms > _EPS
    V, r, norms = V[keep], r[keep], norms[keep]
    n = len(V)
    if n == 0:
        return 0.0, np.array([1.0, 0.0, 0.0])
    cands = [V[:1] / norms[0]]
    for i in range(n):                                   # the boundary: one dimension lower
        Q = _plane_basis(V[i])
        _, w2 = _arcs(V @ Q, r)
        cands.append((Q @ w2)[None])
    i, j = np.triu_indices(n, 1)
    P = np.cross(V[i], V[j])
    pn = np.linalg.norm(P, axis=1)
    ok = pn > _EPS * norms[i] * norms[j]
    i, j, P = i[ok], j[ok], P[ok] / pn[ok, None]
    G = P @ V.T                                          # (vertices, n)
    on = np.abs(G) <= 1e-10 * norms
    at = np.arange(len(P))
    on[at, i] = on[at, j] = True                         # its own planes, whatever the rounding of a near-parallel pair
    generic = on.sum(axis=1) == 2
    S = np.where(on, 0.0, np.sign(G))                    # planes through p: their signs vary around it
    base = (S * r) @ V
    for si in (1.0, -1.0):
        for sj in (1.0, -1.0):
            u = (base[generic] + (si * r[i[generic]])[:, None] * V[i[generic]]
                 + (sj * r[j[generic]])[:, None] * V[j[generic]])
            cands.append(_unit(u))
    for v in np.flatnonzero(~generic):                   # several planes through one vertex
        p, through = P[v], np.flatnonzero(on[v])
        Q = _plane_basis(p)
        T = V[through] @ Q
        t = np.sort(np.mod(np.arctan2(T[:, 1], T[:, 0]) + np.pi / 2, 2 * np.pi))
        t = np.concatenate([t, np.mod(t + np.pi, 2 * np.pi)])
        t = np.sort(t)
        mid = 0.5 * (t + np.append(t[1:], t[0] + 2 * np.pi))
        s = np.tile(S[v], (len(mid), 1))
        s[:, through] = np.sign(np.column_stack([np.cos(mid), np.sin(mid)]) @ T.T)
        cands.append(_unit((s * r) @ V))
    W = np.concatenate(cands)
    vals = _score(V, r, W)
    k = int(np.argmax(vals))
    return float(vals[k]), W[k]


SEARCH_STARTS, SEARCH_STEPS = 32, 30


def _search(V, r, rng, n_starts: int = SEARCH_STARTS, n_steps: int = SEARCH_STEPS):
    """Local ascent from random directions and normals ``v_n``: finds violations, bounds nothing."""
    d = V.shape[1]
    normals = V[np.linalg.norm(V, axis=1) > _EPS]
    normals = normals[rng.permutation(len(normals))[:n_starts]]
    W = _unit(np.concatenate([rng.normal(size=(n_starts, d)), normals]))
    vals = _score(V, r, W)
    for _ in range(n_steps):
        F = np.abs(W @ V.T) @ r
        step = _unit(np.sign(F)[:, None] * ((np.sign(W @ V.T) * r) @ V))
        new = _score(V, r, step)
        better = new > vals * (1 + 1e-15)
        if not better.any():
            break
        W[better], vals[better] = step[better], new[better]
    k = int(np.argmax(vals))
    return float(vals[k]), W[k]


def cell_cost(n_points: int, dim: int, bias: bool = True) -> float:
    """Elementwise operations of the exact oracle: arcs ``~ n^2`` per anchor, cells ``~ n^3``."""
    anchors = n_points if bias else 1
    return anchors * float(n_points) ** (2 if dim <= 2 else 3) * (1 if dim <= 2 else 4)


def continuum_oracle(X, r, bias: bool = True, method: str = "auto", budget: float = CELL_BUDGET,
                     random_state=None) -> Oracle:
    """Best unit neuron ``|w . (x - x_k)|`` per anchor ``x_k`` against the residual ``r`` (depth 2).

    ``method``: "exact-arcs" (d = 2), "cell-enumeration" (d = 3, when ``cell_cost <= budget``),
    "search" (otherwise, over as many random anchors as ``budget`` allows; can only find
    violations); "auto" picks the exact one when feasible.
    """
    X = np.asarray(X, dtype=float)
    r = np.asarray(r, dtype=float)
    N, d = X.shape
    if method == "auto":
        method = {1: "exact-arcs", 2: "exact-arcs"}.get(d, "cell-enumeration")
        if d > 3 or cell_cost(N, d, bias) > budget * (10 if d == 2 else 1):   # arcs are vectorised
            method = "search"
    if (method == "exact-arcs" and d > 2) or (method == "cell-enumeration" and d != 3):
        raise ValueError(f"continuum method {method!r} is not available in d={d}")
    rng = np.random.default_rng(random_state)
    anchors = np.arange(N) if bias else np.array([-1])
    if method == "search":                               # a random subset of anchors within the budget
        per_anchor = 2 * SEARCH_STARTS * SEARCH_STEPS * N * d
        anchors = np.sort(rng.permutation(anchors)[: max(1, int(budget // per_anchor))])
    values, W = np.zeros(len(anchors)), np.zeros((len(anchors), d))
    for a, k in enumerate(anchors):
        V = X - X[k] if k >= 0 else X
        if d == 1:
            values[a], W[a] = abs(float(np.abs(V[:, 0]) @ r)), 1.0
        elif method == "exact-arcs":
            values[a], W[a] = _arcs(V, r)
        elif method == "cell-enumeration":
            values[a], W[a] = _cells3(V, r)
        else:
            values[a], W[a] = _search(V, r, rng)
    return Oracle(values, W, anchors, method)


def neuron_parameters(X, oracle: Oracle, which):
    """``(W, b)`` of the oracle's neurons ``which``: hyperplanes through their anchors."""
    which = np.atleast_1d(which)
    W = oracle.W[which]
    k = oracle.anchors[which]
    b = np.where(k >= 0, -np.einsum("ij,ij->i", W, np.asarray(X)[np.maximum(k, 0)]), 0.0)
    return W, b


class ContinuumSource:
    """Candidate source for ``lasso.column_generation`` (depth 2): each pass adds up to ``batch`` of the
    oracle's neurons with ``|A_j . r| > threshold``, strongest first; keeps the last oracle and each
    neuron's explanation (``info``, by key)."""

    def __init__(self, X, bias: bool, batch: int, random_state=None):
        self.X, self.bias, self.batch, self.random_state = np.asarray(X, dtype=float), bias, batch, random_state
        self.oracle, self.info = None, {}

    def propose(self, ws, residual, beta: float, threshold: float, partial: bool) -> Proposal:
        self.oracle = o = continuum_oracle(self.X, residual, self.bias, random_state=self.random_state)
        viol = np.flatnonzero(o.values > threshold)
        viol = viol[np.argsort(-o.values[viol])][: self.batch]
        W, b = neuron_parameters(self.X, o, viol)
        keys = [f"C:{int(k)}@{np.degrees(np.arctan2(w[1], w[0])):.10f}" for k, w in zip(o.anchors[viol], W)]
        for key, k, w, bb in zip(keys, o.anchors[viol], W, b):
            self.info[key] = {"id": key, "kind": "plane", "depth": 2, "points": (int(k),) if k >= 0 else (),
                              "labels": ("",) if k >= 0 else (), "w": w.tolist(), "b": float(bb), "offsets": ()}
        added = ws.add(feature_values(self.X, W, b), keys, FoldFeatures.of(W, b), "continuum")
        return Proposal(added, float(o.values.max(initial=0.0)))


def _skipped(n_degenerate: int, n_repeated: int) -> str:
    """What the dictionary skipped, in words: sets whose repeated points make the lifted points exactly
    dependent provably define no column; the others are rank-deficient only to tolerance and may hide
    an ill-conditioned column."""
    if not n_degenerate:
        return ""
    if n_repeated == n_degenerate:
        return (f" {n_degenerate:,} point sets with repeated points were skipped; they provably define no column "
                "(their lifted points are exactly dependent).")
    return (f" {n_degenerate:,} point sets were skipped as degenerate: {n_repeated:,} with repeated points (provably "
            f"no column), {n_degenerate - n_repeated:,} rank-deficient to tolerance (ill-conditioned ones could hide "
            "columns).")


def certify(X, y, objective: float, residual, beta: float, bound: float, depth: int, bias: bool,
            tol: float, scope: str = "dictionary", oracle: Oracle | None = None,
            columns: str = "dictionary", n_degenerate: int = 0, n_repeated: int = 0, span: str = "") -> dict:
    """The certificate of a fit (ARCHITECTURE.md "Estimator result"), JSON-serialisable.

    ``X`` are the points in the intrinsic coordinates the Lasso was solved in, ``beta`` and ``bound``
    in the same units: ``bound`` is a rigorous upper bound of ``max_j |A_j . r|`` over the candidates
    solved over, ``n_degenerate`` the point sets skipped as degenerate (counted, never silent), of which
    ``n_repeated`` are exactly rank-deficient because points repeat (provably no column);
    ``oracle`` the continuum oracle at ``residual`` (depth 2), when computed; ``columns`` says what
    was solved over ("dictionary", or "continuum": the dictionary plus the oracle's neurons);
    ``span`` a phrase on the data's affine hull when it is lower-dimensional.
    ``exact`` is claimed only where a proof covers every skipped set: in one intrinsic dimension,
    where no point set is degenerate (the w-part of a lifted cross product is ``det[1, -S] != 0``),
    or by an exact continuum oracle, which checks every neuron whatever the dictionary skipped.
    """
    X, y, r = np.asarray(X, dtype=float), np.asarray(y, dtype=float), np.asarray(residual, dtype=float)
    d = X.shape[1]
    ratio = float(bound / beta)
    gap = float(objective - dual_objective(r / max(1.0, ratio), y))
    cert = {"scope": scope, "exact": False, "dictionary_ratio": ratio, "duality_gap": gap, "tol": float(tol),
            "upper_bound": float(objective), "intrinsic_dim": int(d), "n_degenerate": int(n_degenerate),
            "n_repeated": int(n_repeated)}
    converged = ratio <= 1 + tol
    solved = f"(dictionary ratio {ratio:.9g}, duality gap {gap:.3g})"
    where = f" ({span})" if span else ""
    if scope == "sampled":
        cert["statement"] = (f"Lasso optimum over sampled candidates only {solved.replace('dictionary ', '')}: not "
                             "certified, the whole dictionary was not priced, so better features may exist.")
        return cert
    if not converged:
        cert["statement"] = (f"Not converged: some candidate still violates optimality {solved}; "
                             "this is only a feasible point of the Lasso.")
        return cert
    skipped = _skipped(n_degenerate, n_repeated)
    if oracle is not None:
        rho_net = float(oracle.values.max() / beta)
        cert.update(continuum_ratio=rho_net, continuum_method=oracle.method)
        if oracle.exact:
            lower = dual_objective(r / max(1.0, rho_net), y)
            cert.update(lower_bound=float(lower), gap=float(objective - lower))
            if rho_net <= 1 + tol:
                cert.update(scope="network", exact=True)
                cert["statement"] = (f"Global optimum of the infinite-width two-layer network{where}: no neuron "
                                     f"violates optimality by more than tol={tol:g} (continuum ratio {rho_net:.9g} by "
                                     f"{oracle.method}); the network optimum lies within {objective - lower:.3g} "
                                     "of this objective." + (f" (The oracle checks every neuron, so the "
                                     f"{n_degenerate:,} degenerate point sets the dictionary skipped do not matter.)"
                                     if n_degenerate else ""))
            else:
                over = ("plane dictionary and the continuum neurons added" if columns == "continuum"
                        else "plane dictionary")
                cert["statement"] = (f"Optimum of the {over} "
                                     f"{solved}{where}, a restriction here: some neuron off it improves the fit "
                                     f"(continuum ratio {rho_net:.6g} by {oracle.method}); the network optimum lies in "
                                     f"[{lower:.6g}, {objective:.6g}].{skipped}")
        else:
            cert["statement"] = (f"Optimum of the plane dictionary {solved}{where}; a search over neurons found "
                                 f"continuum ratio {rho_net:.6g}{' (a restriction)' if rho_net > 1 + tol else ''}. "
                                 f"Search can only find violations, so no lower bound on the network optimum is "
                                 f"certified.{skipped}")
        return cert
    if d == 1 and n_degenerate == n_repeated:
        lower = dual_objective(r / max(1.0, ratio), y)
        cert.update(scope="network", exact=True, lower_bound=float(lower), gap=float(objective - lower))
        cert["statement"] = (f"Global optimum of the depth-{depth} network training problem{where}: in 1-D the "
                             f"dictionary is exact {solved}.{skipped}")
        return cert
    cert["statement"] = (f"Optimum of the depth-{depth} dictionary {solved}{where}." + skipped
                         + (f" In d={d} the dictionary is a restriction of the network" if d > 1 else
                            " The skipped sets leave the 1-D proof of exactness incomplete")
                         + (" and no continuum check exists at depth >= 3" if depth >= 3 and d > 1 else "")
                         + ", so this objective is an upper bound on the network optimum, not proven equal.")
    return cert


def certify_constant(objective: float, dim: int, y_constant: bool, depth: int, tol: float, span: str = "",
                     sampled: bool = False, level: float = 0.0, beta: float = 0.0) -> dict:
    """The certificate of ``z = 0`` when ``beta_max = 0`` (no candidate correlates with ``y - mean(y)``).

    Exact for the network when every function is constant on the data (one distinct point) or ``y``
    is constant, and in one intrinsic dimension (the dictionary is exact there). With ``level > 0`` the computed
    ``beta_max`` was within the rounding of the scores: ``level`` bounds every score, so ``z = 0`` is certified for
    ``beta >= level`` only, and never claimed exact.
    """
    cert = {"scope": "sampled" if sampled else "dictionary", "exact": False,
            "dictionary_ratio": level / beta if level and beta else 0.0,
            "duality_gap": 0.0, "tol": float(tol), "upper_bound": float(objective), "intrinsic_dim": int(dim),
            "n_degenerate": 0, "n_repeated": 0}
    if level:
        cert["rounding_level"] = float(level)
        held = "" if not beta else "; it is the optimum at this beta" if beta >= level else \
            f"; nothing is certified at beta={beta:.3g}, below that level"
        over = "sampled candidates" if sampled else "dictionary"
        cert["statement"] = (f"The constant mean(y) is the optimum over the {over} for every beta >= {level:.3g}: "
                             "every candidate's score |A_j . (y - mean(y))| is within the rounding of its computation, "
                             f"below {level:.3g} (e.g. duplicated points whose targets average to mean(y)){held}.")
        return cert
    why = ("y is constant" if y_constant else f"{span or 'the points coincide'}: every feature is constant on them"
           if dim == 0 else "every candidate column is orthogonal to y - mean(y) (beta_max = 0)")
    if y_constant or dim == 0 or (dim == 1 and not sampled):
        cert.update(scope="network", exact=True, lower_bound=float(objective), gap=0.0)
        cert["statement"] = (f"Global optimum of the depth-{depth} network training problem for every beta: {why}, "
                             "so the best network is the constant mean(y).")
    else:
        cert["statement"] = (f"The constant mean(y) is the optimum over the "
                             f"{'sampled candidates' if sampled else 'dictionary'}"
                             f" for every beta: {why}; in d={dim} that does not prove that no neuron off it helps.")
    return cert
