"""The Lasso with a free intercept, exact on a working set, by column generation over a dictionary.

``min_{z, xi} 1/2 ||A z + xi 1 - y||^2 + beta ||z||_1`` (docs/MATH.md section 2). Centring the columns
and ``y`` removes ``xi``. Column generation prices the whole dictionary implicitly
(``analysis.pricing.price``), caches the most violating distinct columns and re-solves, until
``max_j |A_j . r| <= beta (1 + tol)`` over every column. The restricted problem over the cache is
solved on working subsets that scale with the support (support plus the strongest violators), each
exactly: feature-sign search from the warm start (coordinate descent first when it stalls), which
ends on a basic solution (linearly independent support) solving the KKT linear system exactly.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

import numpy as np
import scipy.linalg
from numba import njit, prange
from threadpoolctl import ThreadpoolController
from tqdm.auto import tqdm

from ._kernels import BIG32, _bound32, _column_dot, _fused_dot, _up32, prescreen32
from .features import FoldFeatures
from .pricing import COLUMNS_PER_BLOCK, price, score_blocks

log = logging.getLogger(__name__)

KKT_TOL = 1e-10          # restricted solves: |A_j . r| <= beta (1 + KKT_TOL) + rounding on the working set
SAME_COLUMN_TOL = 1e-10  # centred columns closer than this (relative) are one column
NEAR_COLUMN_COS = 0.999  # violators this correlated with one already picked wait for the next pass
NEAR_VIOLATION = 0.03    # pricing passes also add the columns they meet within this fraction of beta
CACHE_FLOOR = 0.3        # complete passes cache their best columns above this fraction of beta (NearCache)
PATH_CACHE_FLOOR = 0.7   # the same for the shared passes of a path (price_many), which score in float64 only
                         # above it (N = 180 paths, 20 betas to 1e-3: CPU 96.9 -> 66.3 s noise, 101.4 -> 62.3 s
                         # sign, loaded 2 cores; the same passes and objectives as at 0.3)
CACHE_RATIO = 2.0        # partial passes re-score the cache when the last complete pass scored <= this x beta
CACHE_TOP_K = 1024       # violators a partial pass over the cache adds, at most (4096 held twice the atoms for
                         # the same time: N=300 sign path 189k -> 82k atoms, peak RSS 3.0 -> 2.5 GB)
SPHERE_FULL = 0.5         # the cache is scored in full (its scores kept) when its bound keeps more than this
                          # fraction of it
SPHERE_REFS = 4           # residuals whose cache scores are kept (NearCache.violators)
_BLAS = ThreadpoolController()   # small dense algebra runs on one BLAS thread: threads that spin while
                                 # numba prices, or on a shared machine, made it 10-100x slower


def objective(A, z, xi, y, beta) -> float:
    """``1/2 ||A z + xi - y||^2 + beta ||z||_1``."""
    return _penalised(y - (A @ z if len(z) else 0.0) - xi, z, beta)


def _penalised(r, z, beta) -> float:
    """``1/2 ||r||^2 + beta ||z||_1`` for the residual ``r`` of coefficients ``z``."""
    return 0.5 * float(r @ r) + beta * float(np.abs(z).sum())


def dual_objective(lam, y) -> float:
    """``D(lam) = lam . y - 1/2 ||lam||^2`` (feasible when ``sum(lam) = 0`` and ``|A_j . lam| <= beta``)."""
    return float(lam @ y - 0.5 * lam @ lam)


def beta_grid(beta_max: float, beta: float, n: int) -> np.ndarray:
    """``n`` betas on a geometric grid from ``beta_max`` down to ``beta``."""
    return np.geomspace(beta_max, beta, int(n)) if n > 1 else np.array([float(beta)])


@njit(cache=True)
def _cd_sweeps(A, norms2, beta, z, r, idx, max_sweeps, tol):
    """Cyclic coordinate descent on ``1/2 ||r||^2 + beta ||z||_1`` over the columns ``idx``; returns sweeps."""
    n = A.shape[0]
    for sweep in range(max_sweeps):
        worst = 0.0
        for j in idx:
            if norms2[j] == 0.0:
                continue
            g = norms2[j] * z[j]
            for i in range(n):
                g += A[i, j] * r[i]
            zn = 0.0
            if g > beta:
                zn = (g - beta) / norms2[j]
            elif g < -beta:
                zn = (g + beta) / norms2[j]
            dz = zn - z[j]
            if dz != 0.0:
                for i in range(n):
                    r[i] -= A[i, j] * dz
                z[j] = zn
                step = abs(dz) * np.sqrt(norms2[j])
                if step > worst:
                    worst = step
        if worst <= tol:
            return sweep + 1
    return max_sweeps


def _coordinate_descent(Ac, yc, beta, z, tol, max_sweeps=5_000):
    """Coordinate descent to ``tol`` (largest change of ``A_j z_j``): active sweeps, then a full check."""
    norms2 = np.einsum("ij,ij->j", Ac, Ac)
    r = yc - Ac @ z
    every = np.arange(Ac.shape[1])
    for _ in range(100):
        _cd_sweeps(Ac, norms2, beta, z, r, every, 1, tol)
        active = np.flatnonzero(z)
        _cd_sweeps(Ac, norms2, beta, z, r, active, max_sweeps, tol)
        before = z.copy()
        _cd_sweeps(Ac, norms2, beta, z, r, every, 1, tol)
        if np.array_equal(np.flatnonzero(before), np.flatnonzero(z)):
            break
    return z


def _make_basic(Ac, z):
    """Move along null directions of the support (same fit, same l1 norm) until it is independent."""
    for _ in range(Ac.shape[1] + 1):
        S = np.flatnonzero(z)
        if S.size == 0:
            return z
        sv = np.linalg.svd(Ac[:, S], compute_uv=False)     # the rank alone first: 2.5x cheaper at 300 x 150
        if sv.size == S.size and np.all(sv > sv[0] * 1e-10):
            return z
        v = np.linalg.svd(Ac[:, S], full_matrices=S.size > Ac.shape[0])[2][-1]
        z[S] = _to_zero(z[S], v if v @ np.sign(z[S]) >= 0 else -v)   # l1 changes by -t s.v <= 0
    return z


def _to_zero(z, v):
    """``z - t v`` for the least ``t > 0`` at which a coefficient reaches zero (set exactly); ``None`` if none does."""
    t = np.where(v * z > 0, z / np.where(v == 0, 1.0, v), np.inf)
    k = int(np.argmin(t))
    if not np.isfinite(t[k]):
        return None
    p = z - t[k] * v
    p[k] = 0.0
    return p


def _spd_solve(G, rhs):
    """``G^-1 rhs`` by Cholesky, or ``None`` when ``G`` is (numerically) singular."""
    try:
        L = scipy.linalg.cho_factor(G, lower=True, check_finite=False)
    except np.linalg.LinAlgError:
        return None
    if np.diag(L[0]).min(initial=np.inf) ** 2 <= 1e-13 * np.diag(G).max(initial=0.0):
        return None
    return scipy.linalg.cho_solve(L, rhs, check_finite=False)


def _rounding(absA, yc, S, zS):
    """Rigorous bound on the rounding error of ``g = A^T (y - A_S z_S)`` computed in floating point:
    ``gamma_{N+|S|+1} |A|^T (|y| + |A_S| |z_S|)`` with ``gamma_n = n u / (1 - n u)`` (Higham, Accuracy and
    Stability, 3.5: ``|fl(Mx) - Mx| <= gamma_n |M| |x|``, once for the residual and once for ``A^T r``)."""
    n = absA.shape[0] + S.size + 1
    u = np.finfo(float).eps / 2
    return n * u / (1 - n * u) * (absA.T @ (np.abs(yc) + absA[:, S] @ np.abs(zS)))


def _pivot(AS, z, sign):
    """The entering column (last, ``z = 0``) lies in the span of the support (first): step along the null
    direction ``v`` of ``AS`` (same fit) with ``v_last sign > 0`` until a support coefficient reaches zero
    (a basis exchange; the l1 norm falls by ``(|g_last| / beta - 1) beta t`` at KKT); ``None`` if none does."""
    v = np.linalg.svd(AS, full_matrices=False)[2][-1]
    return _to_zero(z, -v if v[-1] * sign > 0 else v)


def _feature_sign(Ac, yc, beta, z, max_iter: int | None = None):
    """Feature-sign search (Lee et al. 2007) from ``z``: on the support with its signs fixed, step to
    the KKT solution with a line search over sign changes; activate the worst violator when the
    support is optimal (KKT to ``KKT_TOL`` plus the rounding of ``g``, ``_rounding``). Exact and basic when
    it returns; ``None`` if the steps stop decreasing the objective. Steps solve the support's Gram system
    by Cholesky; an entering column in the span of the support is a basis exchange (``_pivot``); another
    (near) dependent support falls back to least squares and is made basic before the next step."""
    def value(AS, x):
        r = yc - AS @ x
        return 0.5 * r @ r + beta * np.abs(x).sum()

    if not Ac.shape[1]:
        return z
    absA = np.abs(Ac)
    stalls, dependent = 0, True
    for _ in range(max_iter or 500 + 4 * Ac.shape[1]):
        if dependent:
            z = _make_basic(Ac, z)
        S = np.flatnonzero(z)
        s = np.sign(z[S])
        AS = Ac[:, S]
        g = Ac.T @ (yc - AS @ z[S])
        slack = KKT_TOL * beta + _rounding(absA, yc, S, z[S])
        if np.all(np.abs(g[S] - beta * s) <= slack[S]):
            g[S] = 0.0
            j = int(np.argmax(np.abs(g) - slack))
            if abs(g[j]) <= beta + slack[j]:
                return _make_basic(Ac, z)
            S, s = np.append(S, j), np.append(s, np.sign(g[j]))
            AS = Ac[:, S]
        cur = z[S]
        GS, rhs = AS.T @ AS, AS.T @ yc - beta * s
        x = _spd_solve(GS, rhs)
        dependent = x is None
        pivot = _pivot(AS, cur, s[-1]) if dependent and cur[-1] == 0 else None
        if pivot is not None:                            # the entering column is in the support's span
            points, dependent = [pivot], False
        else:
            if dependent:
                x = np.linalg.lstsq(GS, rhs, rcond=None)[0]
            cross = np.flatnonzero((cur != 0) & (np.sign(x) != np.sign(cur)))
            points = [x]
            for k in cross:                              # where coefficient k changes sign
                p = cur + cur[k] / (cur[k] - x[k]) * (x - cur)
                p[k] = 0.0
                points.append(p)
        values = [value(AS, p) for p in points]
        best = int(np.argmin(values))
        now = value(AS, cur)
        if values[best] > now + 1e-15 * abs(now):
            return None
        stalls = stalls + 1 if values[best] >= now - 1e-15 * abs(now) else 0
        if stalls >= 3:
            return None
        z = z.copy()
        z[S] = points[best]
    return None


def solve_restricted(A, y, beta: float, z0=None, tol: float = 1e-5):
    """Exact Lasso with free intercept on a small matrix ``A`` (N, m): ``(z, xi)``, basic and polished.

    Feature-sign search from a warm start ``z0``, which ends on an exact KKT point with an
    independent support; else (or if it stalls) coordinate descent on the centred problem to
    ``tol`` (relative) first, repeated with a tighter descent tolerance while the search stalls,
    from zero if the warm start keeps stalling, and last from the interior-point solution.
    """
    with _BLAS.limit(limits=1, user_api="blas"):
        return _solve_restricted(A, y, beta, z0, tol)


def _solve_restricted(A, y, beta, z0, tol):
    A = np.asarray(A, dtype=float)
    y = np.asarray(y, dtype=float)
    mean_A, mean_y = A.mean(axis=0), y.mean()
    Ac = np.asfortranarray(A - mean_A)
    yc = y - mean_y
    scale = max(float(np.linalg.norm(yc)), 1e-300)
    if z0 is not None:                                   # a warm start: the exact search at once
        exact = _feature_sign(Ac, yc, beta, np.array(z0, dtype=float))
        if exact is not None:
            return exact, float(mean_y - mean_A @ exact)
    for start in ([] if z0 is None else [np.array(z0, dtype=float)]) + [np.zeros(A.shape[1])]:
        z = start                                        # a warm start first, then from zero
        for attempt in range(4):
            z = _coordinate_descent(Ac, yc, beta, z, tol * scale * 1000.0 ** (-attempt))
            exact = _feature_sign(Ac, yc, beta, z)
            if exact is not None:
                return exact, float(mean_y - mean_A @ exact)
    # Rare (supports of rank N-1 among thousands of near-parallel atoms): an interior-point solve of
    # the small restricted problem, made basic, then one more exact search from there.
    log.info("restricted Lasso: feature-sign search stalled; solving the %d atoms with Clarabel", A.shape[1])
    z = cvxpy_lasso(A, y, beta)[0]
    z = _make_basic(Ac, np.where(significant(z), z, 0.0))
    exact = _feature_sign(Ac, yc, beta, z)
    if exact is None:
        log.warning("restricted Lasso: returning the interior-point solution (not polished to a KKT point)")
    z = z if exact is None else exact
    return z, float(mean_y - mean_A @ z)


def significant(z) -> np.ndarray:
    """Mask of the coefficients of an interior-point solution that are not numerical dust (> 1e-9 max)."""
    z = np.asarray(z, dtype=float)
    return np.abs(z) > 1e-9 * np.abs(z).max(initial=0.0)


def cvxpy_lasso(A, y, beta: float, eps: float = 1e-12):
    """Reference: the same Lasso through cvxpy + Clarabel at tight tolerances: ``(z, xi)``. Solved in units where
    the centred target and every centred column have norm 1 (``u_j = z_j ||A_j - mean|| / ||y - mean||``, the
    penalty weighted to match), so the solver's absolute tolerances mean the same at any scale of X and y."""
    import cvxpy as cp

    A = np.asarray(A, dtype=float)
    y = np.asarray(y, dtype=float)
    mean_A, mean_y = A.mean(axis=0), y.mean()
    Ac, yc = A - mean_A, y - mean_y
    norms, s = np.linalg.norm(Ac, axis=0), float(np.linalg.norm(yc))
    live = np.flatnonzero(norms > 1e-12 * np.maximum(1.0, np.abs(A).max(axis=0, initial=0.0)))   # as WorkingSet.add
    z = np.zeros(A.shape[1])
    if s > 0 and live.size:
        u = cp.Variable(live.size)
        weight = beta / (s * norms[live])
        problem = cp.Problem(cp.Minimize(0.5 * cp.sum_squares(Ac[:, live] / norms[live] @ u - yc / s)
                                         + cp.sum(cp.multiply(weight, cp.abs(u)))))
        problem.solve(solver=cp.CLARABEL, tol_gap_abs=eps, tol_gap_rel=eps, tol_feas=eps, tol_ktratio=eps,
                      max_iter=500)
        if u.value is None:
            raise RuntimeError(f"cvxpy/Clarabel failed: {problem.status}")
        z[live] = np.asarray(u.value, dtype=float) * s / norms[live]
    return z, float(mean_y - mean_A @ z)


class WorkingSet:
    """Distinct columns of a restricted problem: one atom per column on the data (centred, up to sign).

    Each atom keeps its column, the parameters ``(w, b, offsets)`` of its representative, a key
    (a dictionary column id, or a label for continuum and sampled features), its source, and the
    keys of every equivalent column met (``members``, with the sign relating their centred columns).
    """

    def __init__(self, n_points: int, dim: int, n_offsets: int, seed: int = 0):
        g = np.random.default_rng(seed).normal(size=(2, n_points))
        self._g = g - g.mean(axis=1, keepdims=True)
        self._g /= np.linalg.norm(self._g, axis=1, keepdims=True)
        self.A = np.empty((n_points, 0))
        self.W = np.empty((0, dim))
        self.b = np.empty(0)
        self.C = np.empty((0, n_offsets))
        self.keys: list = []
        self.sources: list[str] = []
        self.members: list[list[tuple[object, float]]] = []
        self._hash = np.empty(0)
        self._sign = np.empty(0)
        self._index: dict = {}

    def __len__(self) -> int:
        return len(self.keys)

    def __contains__(self, key) -> bool:
        return key in self._index

    def add(self, A, keys, features: FoldFeatures, source: str = "dictionary") -> int:
        """Add columns ``A`` (N, k) with their keys and ``FoldFeatures``; returns the number of new atoms."""
        if not len(keys):
            return 0
        A = np.asarray(A, dtype=float).reshape(self.A.shape[0], -1)
        features = features.with_offsets(self.C.shape[1])
        Ac = A - A.mean(axis=0)
        norms = np.linalg.norm(Ac, axis=0)
        signs = np.where(self._g[0] @ Ac >= 0, 1.0, -1.0)
        canon = Ac * signs
        hashes = self._g[1] @ canon
        fresh: list[int] = []
        atom_of: dict[int, int] = {}                      # batch column -> its new atom
        by_hash = np.argsort(self._hash, kind="stable")   # atoms met so far, by hash
        sorted_hash = self._hash[by_hash]
        tols = SAME_COLUMN_TOL * norms
        lo = np.searchsorted(sorted_hash, hashes - tols)
        hi = np.searchsorted(sorted_hash, hashes + tols, side="right")
        constant = norms <= 1e-12 * np.maximum(1.0, np.abs(A).max(axis=0, initial=0.0))
        order = np.argsort(hashes, kind="stable")         # equal columns meet as neighbours
        close = np.zeros(order.size, dtype=bool)          # the previous column by hash is within tol
        close[order[1:]] = np.diff(hashes[order]) <= tols[order[1:]]
        for j in order:
            key = keys[j]
            if key in self._index:
                continue
            if constant[j]:
                self._index[key] = -1                     # constant on the data: the intercept's job
                continue
            tol = tols[j]
            atom = next((i for i in np.sort(by_hash[lo[j]: hi[j]])
                         if np.linalg.norm(self._canonical(i) - canon[:, j]) <= tol), None) if lo[j] < hi[j] else None
            if atom is None and close[j]:
                for i in reversed(fresh):
                    if hashes[j] - hashes[i] > tol:
                        break
                    if np.linalg.norm(canon[:, i] - canon[:, j]) <= tol:
                        atom = atom_of[i]
                        break
            if atom is not None:
                rep_sign = self._sign[atom] if atom < len(self.keys) else signs[fresh[atom - len(self.keys)]]
                self.members[atom].append((key, float(signs[j] * rep_sign)))
                self._index[key] = atom
                continue
            atom_of[j] = self._index[key] = len(self.keys) + len(fresh)
            self.members.append([(key, 1.0)])
            fresh.append(j)
        if fresh:
            self.keys += [keys[j] for j in fresh]
            self.sources += [source] * len(fresh)
            self._sign = np.concatenate([self._sign, signs[fresh]])
            self._hash = np.concatenate([self._hash, hashes[fresh]])
            self.A = self._grow(self.A, A[:, fresh])
            self.W = np.vstack([self.W, features.W[fresh]])
            self.b = np.concatenate([self.b, features.b[fresh]])
            self.C = np.vstack([self.C, features.C[fresh]])
        return len(fresh)

    def _canonical(self, atom: int) -> np.ndarray:
        """The atom's column centred, with the sign that makes its product with the first random direction >= 0
        (computed again from ``A``, as ``add`` computed it: not stored, it would double the working set's memory)."""
        a = self.A[:, atom]
        return (a - a.mean()) * self._sign[atom]

    @staticmethod
    def _grow(M, new):
        """``[M, new]`` as a view of a buffer of doubling capacity (appending costs amortised O(new))."""
        n = M.shape[1] + new.shape[1]
        base = M.base if M.base is not None and M.base.ndim == 2 else M
        if base.shape[1] < n:
            base = np.empty((M.shape[0], max(n, 2 * base.shape[1])))
            base[:, : M.shape[1]] = M
        base[:, M.shape[1]: n] = new
        return base[:, :n]

    def locate(self, key) -> tuple[int, float]:
        """``(atom, sign)`` of a column added before (atom -1: constant on the data)."""
        atom = self._index[key]
        return atom, (dict(self.members[atom])[key] if atom >= 0 else 0.0)

    def equivalents(self, atom: int) -> list:
        """Keys of the other columns equal to this atom's on the data (up to sign and a constant)."""
        return [k for k, _ in self.members[atom] if k != self.keys[atom]]


@dataclass
class Solution:
    """A Lasso solution on a working set: ``coef`` per atom, the intercept and its diagnostics."""

    coef: np.ndarray
    intercept: float
    beta: float
    objective: float
    residual: np.ndarray
    bound: float = np.nan                 # rigorous upper bound of max_j |A_j . r| over the dictionary
    n_passes: int = 0
    history: list = field(default_factory=list)

    @property
    def dictionary_ratio(self) -> float:
        return self.bound / self.beta

    def duality_gap(self, y) -> float:
        """``P(z, xi) - D(r / rho)`` with ``rho = max(1, max_j |A_j . r| / beta)``."""
        return self.objective - dual_objective(self.residual / max(1.0, self.dictionary_ratio), y)


def solution(ws: WorkingSet, y, beta: float, z) -> Solution:
    """The solution with coefficients ``z`` on the atoms of ``ws`` and its best intercept."""
    nz = np.flatnonzero(z)                               # the support: a few hundred of up to 10^5 atoms
    Az = ws.A[:, nz] @ z[nz] if nz.size else np.zeros_like(y)
    xi = float(y.mean() - Az.mean())
    r = y - Az - xi
    return Solution(z, xi, beta, _penalised(r, z, beta), r)


def solve_working_set(ws: WorkingSet, y, beta: float, z0=None, subset=None) -> Solution:
    """The exact restricted Lasso over the atoms of ``ws`` (or only those of ``subset``, the rest at zero)."""
    z0 = None if z0 is None else np.concatenate([z0, np.zeros(len(ws) - len(z0))])
    if subset is None:
        return solution(ws, y, beta, solve_restricted(ws.A, y, beta, z0)[0])
    z = np.zeros(len(ws))
    z[subset] = solve_restricted(ws.A[:, subset], y, beta, None if z0 is None else z0[subset])[0]
    return solution(ws, y, beta, z)


def add_dictionary_columns(ws: WorkingSet, D, ids) -> int:
    """Add dictionary columns ``ids`` (valid ones) to the working set; returns the number of new atoms."""
    ids = np.asarray([i for i in np.asarray(ids, dtype=np.int64) if int(i) not in ws], dtype=np.int64)
    if not ids.size:
        return 0
    features, valid = D.params(ids)
    features = features[valid]
    return ws.add(features.values(D.X), [int(i) for i in ids[valid]], features, "dictionary")


def _pick(ws: WorkingSet, candidates, scores, k: int) -> np.ndarray:
    """Up to ``k`` of the ``candidates`` atoms by decreasing score, skipping any whose centred column is
    within ``NEAR_COLUMN_COS`` of one already picked (near-duplicates enter one per pass)."""
    order = candidates[np.argsort(-scores, kind="stable")][: 2 * k]
    C = ws.A[:, order] - ws.A[:, order].mean(axis=0)
    C /= np.linalg.norm(C, axis=0)
    G = np.abs(C.T @ C)
    taken = np.zeros(order.size, dtype=bool)
    for i in range(order.size):
        if taken.sum() >= k:
            break
        taken[i] = not np.any(G[i, taken] > NEAR_COLUMN_COS)
    return order[taken]


@dataclass
class Proposal:
    """Columns a candidate source added to the working set, its bound of ``max_j |A_j . r|`` (over every
    candidate when ``complete``; else a partial pass) and statistics for ``history``."""

    added: int
    bound: float
    complete: bool = True
    stats: dict = field(default_factory=dict)


@njit(cache=True, fastmath=True, parallel=True)
def _scores_of(X, r, W, b, C, want_norms):
    """``A_j . r`` of the columns with parameters ``(W, b, C)`` and, when ``want_norms``, their centred norms
    ``||A_j - mean(A_j)||``, by the pricing kernel's dot."""
    XT = np.ascontiguousarray(X.T)
    n = W.shape[0]
    out, norms = np.zeros(n), np.zeros(n)
    n_chunks = min(n, 64)
    for ch in prange(n_chunks):
        u = np.empty(X.shape[0])
        for j in range(n * ch // n_chunks, n * (ch + 1) // n_chunks):
            dot, norm = _column_dot(XT, r, W[j], b[j], C[j], u, want_norms)
            out[j], norms[j] = dot, norm
    return out, norms


@njit(cache=True, fastmath=True, parallel=True)
def _dots32(X, r, W, b, C, floor, prescreen):
    """``(v, e)`` with ``|v_j - A_j . r| <= e_j`` for the columns ``(W, b, C)``: with ``prescreen`` (d <= 3, at most
    two fold offsets, finite ``r``), the float32 dot of ``r`` scaled by a power of two to ``max |r_i| <= 1`` and
    ``_kernels._bound32``'s rigorous bound of its error, kept where ``|v_j| + e_j < floor``; elsewhere the float64 dot
    of ``_scores_of`` and ``e_j = 0``. So every ``|A_j . r| >= floor`` is exact (the pricing kernel's pre-screen)."""
    n_pts, d = X.shape
    n, m = W.shape[0], C.shape[1]
    XT = np.ascontiguousarray(X.T)
    f32, scales, Rsum, Q, xmax, _, g_sum, tiny, tiny_sum, R32, XT32 = prescreen32(XT, r.reshape(1, -1), m, prescreen)
    scale, r32, n_pad = scales[0], R32[0], XT32.shape[1]
    x0 = XT32[0]
    x1 = XT32[1] if d > 1 else XT32[0]
    x2 = XT32[2] if d > 2 else XT32[0]
    v, e = np.zeros(n), np.zeros(n)
    n_chunks = min(n, 64)
    for ch in prange(n_chunks):
        u = np.empty(n_pts)
        err = np.empty(1)
        for j in range(n * ch // n_chunks, n * (ch + 1) // n_chunks):
            w, c = W[j], C[j]
            if f32 and abs(b[j]) + c.sum() < BIG32:
                dot32, _, _ = _fused_dot(x0, x1, x2, r32, np.float32(w[0]), np.float32(w[1]) if d > 1 else
                                         np.float32(0.0), np.float32(w[2]) if d > 2 else np.float32(0.0),
                                         np.float32(b[j]), np.float32(c[0]) if m > 0 else np.float32(0.0),
                                         np.float32(c[1]) if m > 1 else np.float32(0.0), d, m, n_pad, False)
                _bound32(w, b[j], c, Rsum, Q, xmax, g_sum, tiny, err)
                rad = (err[0] + tiny_sum) / scale
                val = np.float64(dot32) / scale
                if abs(val) + rad < floor:
                    v[j], e[j] = val, rad
                    continue
            v[j] = _column_dot(XT, r, w, b[j], c, u, False)[0]
    return v, e


@njit(cache=True, parallel=True)
def _sphere_out(V, E, slots, c, norms, e, threshold):
    """Positions ``j`` with ``|sum_k c_k V[j, s_k]| + sum_k |c_k| E[j, s_k] + norms_j e > threshold``, ``s = slots``."""
    out = np.zeros(norms.size, dtype=np.bool_)
    for j in prange(norms.size):
        dot, rad = 0.0, norms[j] * e
        for k in range(slots.size):
            dot += c[k] * V[j, slots[k]]
            rad += abs(c[k]) * E[j, slots[k]]
        out[j] = abs(dot) + rad > threshold
    return np.flatnonzero(out)


@njit(cache=True, parallel=True)
def _store_scores(V, E, slot, v, e, threshold):
    """``V[:, slot] = v`` and ``E[:, slot]`` the float32 upper bounds of ``e`` (``_kernels._up32``; no fastmath: the
    rounding is tested), in one pass; the positions ``j`` with ``|v_j| + e_j > threshold``."""
    out = np.zeros(v.size, dtype=np.bool_)
    for j in prange(v.size):
        V[j, slot] = v[j]
        E[j, slot] = _up32(e[j])
        out[j] = abs(v[j]) + e[j] > threshold
    return np.flatnonzero(out)


class NearCache:
    """The ``size`` best-scoring columns of the last complete pricing pass (and of the cache before it, when it
    was used), kept as ids; their parameters and centred norms are computed on first use (a fit that certifies at
    that pass never pays for them). Re-scoring them costs one dot per column, like the pricing kernel's, in float32
    where a rigorous error bound keeps the column below the threshold (``_dots32``); ``violators`` re-scores
    only those that a bound from its last full scorings cannot exclude.

    ``collect`` wraps a ``pricing.price`` scorer so that one pass also hands over, per block, up to ``cap``
    columns above ``floor`` (set only around complete passes); ``refill`` keeps the best ``size`` of those and
    of the old cache at the pass's residual."""

    def __init__(self, D, size: int):
        self.D, self.size = D, int(size)
        self.cap = max(256, -(-8 * self.size * COLUMNS_PER_BLOCK // max(D.n_candidates, 1)))
        self.ids = np.empty(0, dtype=np.int64)
        self._made = None                  # (ids, W, b, C, centred norms) of the last cache whose parameters were made
        self.floor: float | None = None
        self._parts: list = []
        self._held = 0
        # full scorings at the last SPHERE_REFS residuals (oldest first): (ids, residuals, their slots in V and E),
        # V[j, slot] within E[j, slot] (float32, rounded up) of A_j . r (``_dots32``)
        self._refs = (None, [], [])
        self._V = self._E = None

    def __len__(self) -> int:
        return self.ids.size

    def _params(self):
        """``(W, b, C, norms)`` of ``ids`` (invalid columns dropped), reusing those of the last cache made."""
        if self._made is not None and self._made[0] is self.ids:
            return self._made[1:]
        ids, D = self.ids, self.D
        W, b, C = np.empty((ids.size, D.dim)), np.empty(ids.size), np.empty((ids.size, D.depth - 2))
        norms = np.empty(ids.size)
        keep = np.ones(ids.size, dtype=bool)
        new = np.arange(ids.size)
        if self._made is not None and self._made[0].size:
            before = self._made[0]
            pos = np.minimum(np.searchsorted(before, ids), before.size - 1)
            old = before[pos] == ids
            W[old], b[old], C[old], norms[old] = (a[pos[old]] for a in self._made[1:])
            new = np.flatnonzero(~old)
        zero = np.zeros(D.n_points)
        for lo in range(0, new.size, 1 << 20):           # in chunks: parameters of millions of columns
            at = new[lo: lo + (1 << 20)]
            features, keep[at] = D.params(ids[at])
            W[at], b[at], C[at] = features.W, features.b, features.C
            norms[at] = _scores_of(D.X, zero, W[at], b[at], C[at], True)[1]
        self.ids = ids[keep]
        self._made = (self.ids, W[keep], b[keep], C[keep], norms[keep])
        return self._made[1:]

    def features(self, where) -> FoldFeatures:
        """The ``FoldFeatures`` of the cached columns at positions ``where``."""
        W, b, C, _ = self._params()
        return FoldFeatures(W[where], b[where], C[where])

    def scores(self, r, where=None):
        """``|A_j . r|`` of the cached columns (or of those at positions ``where``), in float64."""
        return np.abs(self._dots(r, where, 0.0)[0])

    def _dots(self, r, where, floor: float):
        """``_dots32`` of the cached columns (or of those at ``where``): exact at every ``|A_j . r| >= floor``."""
        W, b, C, _ = self._params()
        if where is not None:
            W, b, C = W[where], b[where], C[where]
        r = np.ascontiguousarray(r, dtype=float)
        return _dots32(self.D.X, r, W, b, C, float(floor), bool(floor > 0 and np.isfinite(r).all()))

    def violators(self, r, threshold: float) -> tuple[np.ndarray, np.ndarray]:
        """Positions and scores of every cached column with ``|A_j . r| > threshold``. With ``r = sum_i c_i r_i + e``
        (``r_i`` the last ``SPHERE_REFS`` residuals scored in full, ``e`` orthogonal to them; all centred),
        ``|A_j . r| <= |sum_i c_i v_ij| + sum_i |c_i| e_ij + ||A_j - mean(A_j)|| ||e||`` (``|v_ij - A_j . r_i| <=
        e_ij``, ``_dots32``): only columns this bound cannot exclude are scored, or all of them (kept) when that is
        most of the cache (``SPHERE_FULL``)."""
        r = np.asarray(r, dtype=float)
        norms = self._params()[3]
        ids, R, slots = self._refs
        if ids is self.ids and R:
            M = np.array(R).T                            # (N, refs): the residuals scored in full
            Q, T = np.linalg.qr(M)
            c = scipy.linalg.solve_triangular(T, Q.T @ r) if np.all(np.abs(np.diag(T)) > 1e-12 * np.abs(T).max()) \
                else np.linalg.lstsq(M, r, rcond=None)[0]
            e = float(np.linalg.norm(r - M @ c))
            where = _sphere_out(self._V, self._E, np.array(slots, dtype=np.int64), c, norms, e, float(threshold))
            if where.size <= SPHERE_FULL * self.ids.size:
                v, err = self._dots(r, where, threshold)
                hit = np.abs(v) + err > threshold        # exact there (err = 0)
                return where[hit], np.abs(v[hit])
        v, err = self._dots(r, None, threshold)
        if ids is not self.ids:
            R, slots = [], []
            self._V = np.empty((self.ids.size, SPHERE_REFS))
            self._E = np.empty((self.ids.size, SPHERE_REFS), dtype=np.float32)
        slot = len(slots) if len(slots) < SPHERE_REFS else slots[0]
        where = _store_scores(self._V, self._E, slot, v, err, float(threshold))
        self._refs = (self.ids, (R + [r.copy()])[-SPHERE_REFS:], (slots + [slot])[-SPHERE_REFS:])
        return where, np.abs(v[where])

    def collect(self, scorer):
        """A scorer like ``scorer`` that also keeps, while ``floor`` is set, the columns above it: exact above the
        caller's ``keep``, below it maybe the float32 pre-screen's upper bounds (they only rank the cache)."""
        def wrapped(D, r, blocks, want_norms, threshold=None, keep=None, top_k: int = 256, exact=None):
            if self.floor is None:
                yield from scorer(D, r, blocks, want_norms, threshold, keep, top_k, exact)
                return
            low = self.floor if keep is None else min(self.floor, keep)
            for blk in scorer(D, r, blocks, want_norms, threshold, low, max(top_k, self.cap), keep):
                above = blk.scores > self.floor
                self._hold(blk.ids[above], blk.scores[above])
                sel = np.flatnonzero(blk.scores > keep) if keep is not None else np.arange(blk.ids.size)
                if sel.size > top_k:
                    sel = sel[np.argpartition(-blk.scores[sel], top_k - 1)[:top_k]]
                yield blk._replace(ids=blk.ids[sel], scores=blk.scores[sel])
        wrapped.batch = getattr(scorer, "batch", 1)
        return wrapped

    def _hold(self, ids, scores) -> None:
        self._parts.append((ids, scores))
        self._held += ids.size
        if self._held > 2 * self.size:
            self._parts = [self._best(*map(np.concatenate, zip(*self._parts)))]
            self._held = self._parts[0][0].size

    def _best(self, ids, scores):
        if ids.size > self.size:
            keep = np.argpartition(-scores, self.size - 1)[: self.size]
            ids, scores = ids[keep], scores[keep]
        return ids, scores

    def drop_collected(self) -> None:
        self._parts, self._held = [], 0

    def refill(self, r, rescore: bool = True) -> None:
        """The new cache: the best ``size`` of the columns collected by the pass at ``r`` and, when it was used
        (its parameters computed) and ``rescore`` (the pass skipped cells), of the old cache re-scored at ``r``."""
        parts, self._parts, self._held = self._parts, [], 0
        used = rescore and self._made is not None and self._made[0] is self.ids and self.ids.size
        ids = np.concatenate([p[0] for p in parts] + ([self.ids] if used else []))
        scores = np.concatenate([p[1] for p in parts] + ([self.scores(r)] if used else []))
        ids, first = np.unique(ids, return_index=True)
        self.ids = np.sort(self._best(ids, scores[first])[0])


class DictionaryPricing:
    """Candidate source: the dictionary ``D`` priced by ``pricing.price``, screening warm-started across calls.

    A pass adds violators, strongest first. A complete pass also refills a ``NearCache`` of the best-scoring
    columns (``cache_size``; default an eighth of the dictionary, 4,096 to 8.4M). While columns keep entering,
    passes are partial: when the last complete pass scored at most ``CACHE_RATIO`` x beta (along a path: the
    previous beta's certifying pass), the cache is re-scored (where its sphere test cannot exclude a violator) and
    up to ``CACHE_TOP_K`` of its violators enter; once it holds no violator, or when the residual is still far
    (a single small beta), a partial pass over the dictionary adds ``top_k`` violators in the order of the
    screening bounds (it is complete, and certifies, when it meets fewer). A residual already priced by a
    complete pass is certified without pricing again (beta_max). Without ``cache`` (a single beta, where
    collecting it cost more than it saved: N=300 at 0.1 beta_max) nothing is collected. ``scorer`` evaluates the blocks
    (``price``'s; e.g. ``analysis.parallel.BlockScorer`` on other processes or a cluster)."""

    def __init__(self, D, screen=None, top_k: int = 1024, progress: bool = False, scorer=None,
                 cache_size: int | None = None, cache: bool = True):
        self.D, self.screen, self.top_k, self.progress, self.use_cache = D, screen, top_k, progress, cache
        self.cache = NearCache(D, cache_size or min(max(4096, D.n_candidates // 8), 1 << 23))
        self.scorer = self.cache.collect(score_blocks if scorer is None else scorer)
        self._last = (None, np.inf)        # residual and bound of the last complete pass

    def first_pass(self, residual, threshold: float, top_k: int, cache_floor: float = 0.0):
        """A complete pass at ``residual`` (no screening state yet) that fills the cache with columns above
        ``cache_floor``: ``price``'s result."""
        return self._price(residual, threshold, top_k, cache_floor, None)

    def _price(self, residual, threshold, top_k, floor, stop_after, collect=None):
        self.cache.floor = floor if self.use_cache else None
        try:
            res = price(self.D, residual, top_k=top_k, threshold=threshold, screen=self.screen, stop_after=stop_after,
                        progress=self.progress and stop_after is None, scorer=self.scorer, collect=collect)
        finally:
            self.cache.floor = None
        self.screen = res.screen
        if res.complete:
            if self.use_cache:
                self.cache.refill(residual)
            self._last = (np.array(residual, dtype=float), res.bound)
        else:
            self.cache.drop_collected()
        return res

    def certified(self, residual, threshold: float) -> float | None:
        """The bound of the last complete pass when it was at ``residual`` and certifies ``threshold``, else None."""
        last_r, last_bound = self._last
        return last_bound if last_bound <= threshold and np.array_equal(residual, last_r) else None

    def cache_violators(self, ws: WorkingSet, residual, threshold: float) -> tuple[int, int]:
        """Add up to ``CACHE_TOP_K`` cached columns above ``threshold`` at ``residual``, strongest first (every
        one of them is found: ``NearCache.violators``): ``(atoms added, violators met)``."""
        if not len(self.cache):
            return 0, 0
        where, s = self.cache.violators(residual, threshold)
        where = where[np.argsort(-s, kind="stable")]
        where = where[[int(i) not in ws for i in self.cache.ids[where]]]
        take = where[: CACHE_TOP_K]                     # their parameters are the cache's: no D.params again
        features = self.cache.features(take)
        return ws.add(features.values(self.D.X), [int(i) for i in self.cache.ids[take]], features), where.size

    def price_many(self, ws: WorkingSet, residuals, thresholds):
        """One complete pass at ``residuals`` (K, N), each divided by its threshold (``pricing.price`` with
        several residuals); ``bounds[q]`` below is the exact maximum of ``|A_j . r_q|``.
        The cache is refilled by the scores ``max_q |A_j . r_q| / threshold_q`` above ``PATH_CACHE_FLOOR``, so it
        holds every violator (the pass scores in float64 only the columns above that floor: at 0.3 nearly all of
        them at small beta, the kernel's CPU 5.4x that at 0.7 for 7 random residuals, N = 180);
        without a cache, when some residual violates, the columns above ``1 - NEAR_VIOLATION`` of one of the
        thresholds (the best ``top_k``) enter ``ws``: ``(bounds, pricing result, new columns for the failing
        betas: violators in the cache, or atoms added)``."""
        thresholds = np.asarray(thresholds, dtype=float)
        R = np.asarray(residuals, dtype=float) / thresholds[:, None]
        self.cache.floor = PATH_CACHE_FLOOR if self.use_cache else None
        try:
            res = price(self.D, R, top_k=self.top_k, threshold=1.0, screen=self.screen, progress=self.progress,
                        scorer=self.scorer, collect=1 - NEAR_VIOLATION)
        finally:
            self.cache.floor = None
        self.screen = res.screen
        bounds = res.max_scores * thresholds
        if self.use_cache:                              # it evaluated every column: the old cache's above the floor
            self.cache.refill(R, rescore=False)
        self._last = (np.array(residuals[-1], dtype=float), bounds[-1])
        if not np.any(bounds > thresholds):
            return bounds, res, 0
        if self.use_cache:                              # the cache holds them: each failing beta takes its own
            return bounds, res, int(np.count_nonzero(res.scores > 1.0))
        return bounds, res, add_dictionary_columns(ws, self.D, res.ids)

    def propose(self, ws: WorkingSet, residual, beta: float, threshold: float, partial: bool) -> Proposal:
        bound = self.certified(residual, threshold)
        if bound is not None:                                                # certified by the last pass
            return Proposal(0, bound, True, {"evaluated": 0, "cells_skipped": 0, "cache_violators": 0})
        if partial and len(self.cache) and self._last[1] <= CACHE_RATIO * beta:
            added, n_viol = self.cache_violators(ws, residual, threshold)
            if added:
                return Proposal(added, np.inf, False, {"evaluated": 0, "cells_skipped": 0, "cache_violators": n_viol})
        res = self._price(residual, threshold, self.top_k, CACHE_FLOOR * beta, self.top_k if partial else None,
                          beta * (1 - NEAR_VIOLATION))
        return Proposal(add_dictionary_columns(ws, self.D, res.ids), res.bound, res.complete,
                        {"evaluated": res.n_evaluated, "cells_skipped": res.n_blocks_skipped, "cache_violators": 0})


def column_generation(source, y, beta: float, ws: WorkingSet, z0=None, tol: float = 1e-6, batch: int = 64,
                      max_iter: int = 200, progress: bool = False) -> Solution:
    """Lasso over every candidate of ``source``: re-solve on the atoms of ``ws`` and add the violating columns
    the source proposes until its complete bound gives ``max_j |A_j . r| <= beta (1 + tol)`` (or it adds none,
    or ``max_iter`` passes).

    ``source.propose(ws, r, beta, threshold, partial) -> Proposal`` adds columns to ``ws`` (``DictionaryPricing``,
    ``sampling.SampledSource``, ``certificate.ContinuumSource``); passes are partial while columns keep entering.
    ``ws`` caches the distinct columns met; the restricted problem over all of it is solved exactly by an inner
    loop on a working subset, the support plus the strongest violating atoms, ``max(2 |support|, batch)`` atoms
    in all (celer's rule): atoms at zero drop out, near-duplicates enter one per round (every source).
    """
    with _BLAS.limit(limits=1, user_api="blas"):
        y = np.asarray(y, dtype=float)
        threshold, history = beta * (1 + tol), []
        bar = tqdm(total=None, desc=f"column generation beta={beta:.4g}", unit="pass", disable=not progress,
                   leave=False)
        z = np.zeros(0) if z0 is None else np.asarray(z0, dtype=float)
        partial = True
        for it in range(1, max_iter + 1):
            t0 = time.perf_counter()
            sol, work, rounds = _solve_cache(ws, y, beta, threshold, z, batch)
            z = sol.coef
            t1 = time.perf_counter()
            step = source.propose(ws, sol.residual, beta, threshold, partial)
            t2 = time.perf_counter()
            ratio = step.bound / beta
            support = int(np.count_nonzero(z))
            history.append({"beta": beta, "pass": it, "objective": sol.objective, "ratio": ratio, "added": step.added,
                            "atoms": len(ws), "working_set": len(work), "support": support, "rounds": rounds,
                            **step.stats, "complete": step.complete, "solve_s": t1 - t0, "price_s": t2 - t1})
            log.log(logging.INFO if progress else logging.DEBUG,         # INFO for verbose fits only
                    "pass %d: objective %.12g, %s, %d atoms added (%d cached, working set %d, support %d)%s",
                    it, sol.objective, f"ratio {ratio:.9f}" if step.complete else "partial", step.added, len(ws),
                    len(work), support, "".join(f", {k.replace('_', ' ')} {v:,}" for k, v in step.stats.items()))
            bar.update(1)
            bar.set_postfix(ratio=f"{ratio:.6f}", support=support)
            certified = step.complete and step.bound <= threshold
            if certified or (step.added == 0 and step.complete) or it == max_iter:
                if not certified:
                    log.warning("column generation stopped at ratio %.9f (%s)", ratio,
                                "no new column" if step.added == 0 else f"max_iter={max_iter} passes")
                sol.bound = step.bound
                break
            partial = step.added > 0
        bar.close()
        sol.n_passes, sol.history = it, history
        return sol


def path_generation(source: DictionaryPricing, y, betas, ws: WorkingSet, z0=None, tol: float = 1e-6,
                    group: int = 4, batch: int = 64, max_iter: int = 200) -> list[Solution]:
    """The Lasso at each of the descending ``betas``, certified by complete passes that price several betas each.

    Each pass takes the next ``group`` betas and those the last pass did not certify. Each of them is solved on
    ``ws`` and the cache only (restricted solve, then the cache's violators, until it holds none), warm-started
    from its own last solution or the previous beta's; then ONE complete pass prices all their residuals
    (``DictionaryPricing.price_many``): a beta with ``max_j |A_j . r| <= beta (1 + tol)`` over the whole
    dictionary is certified (its restricted optimum is the Lasso optimum); the others go on to the next pass,
    their violators now in the refilled cache (without a cache: added to ``ws``). A beta whose re-solve finds
    no new column (its residual unchanged), or that stays uncertified after ``max_iter`` passes, is finished
    by ``column_generation`` alone. ``history`` rows: ``shared`` the betas priced by the row's pass,
    ``certified_by`` the number of the pass (along the path) that certified the beta (0: the previous one, at
    the same residual; -1: not this row), ``price_s`` the pass's time divided among its betas. ``group`` = 4
    measured best (N=120, 20 betas to 1e-3 beta_max, sign target: CPU 23.0 s; 23.4 at 3, 29.5 at 6, 44.8 at
    20, against 26.2 s with one pass per beta).
    """
    with _BLAS.limit(limits=1, user_api="blas"):
        y = np.asarray(y, dtype=float)
        betas = [float(b) for b in betas]
        sols: list[Solution | None] = [None] * len(betas)
        hist: list[list] = [[] for _ in betas]
        z = np.zeros(0) if z0 is None else np.asarray(z0, dtype=float)
        pending, fresh, n_pass = [], 0, 0

        def finish(i, n_pass):
            """Beta ``i`` by ``column_generation`` alone; the number of the last pass."""
            sol = column_generation(source, y, betas[i], ws, sols[i].coef, tol, batch, max_iter)
            hist[i] += [{**h, "pass": len(hist[i]) + h["pass"], "shared": 1, "certified_by": -1} for h in sol.history]
            if sol.bound <= betas[i] * (1 + tol):          # by its own last pass, or the last one
                n_pass += 1 if hist[i][-1]["evaluated"] else 0
                hist[i][-1]["certified_by"] = n_pass
            sols[i] = sol
            return n_pass

        while pending or fresh < len(betas):
            pending += list(range(fresh, min(fresh + group, len(betas))))
            fresh = max(fresh, pending[-1] + 1)
            for i in list(pending):                      # restricted solves: the working set and the cache
                before = sols[i]
                warm = before if before is not None else sols[i - 1] if i else None
                sols[i] = _solve_with_cache(source, ws, y, betas[i], tol, z if warm is None else warm.coef, batch,
                                            hist[i])
                if before is not None and np.array_equal(sols[i].residual, before.residual):
                    hist[i][-1].update(ratio=np.inf, added=0, complete=False, evaluated=0, cells_skipped=0, shared=0,
                                       certified_by=-1, price_s=0.0)
                    n_pass = finish(i, n_pass)           # the cache held none of its violators
                    pending.remove(i)
            if not pending:
                continue
            done = {i: b for i in pending if (b := source.certified(sols[i].residual, betas[i] * (1 + tol)))
                    is not None}
            priced = [i for i in pending if i not in done]
            t0 = time.perf_counter()
            res, added = None, 0
            if priced:
                n_pass += 1
                bounds, res, added = source.price_many(ws, [sols[i].residual for i in priced],
                                                       [betas[i] * (1 + tol) for i in priced])
                done.update(zip(priced, bounds))
            share = (time.perf_counter() - t0) / max(len(priced), 1)
            for i in pending:
                sols[i].bound = float(done[i])
                ok, p = sols[i].bound <= betas[i] * (1 + tol), i in priced
                hist[i][-1].update(ratio=sols[i].bound / betas[i], added=0 if ok else added, complete=True,
                                   evaluated=res.n_evaluated if p else 0,
                                   cells_skipped=res.n_blocks_skipped if p else 0,
                                   shared=len(priced) if p else 0, certified_by=(n_pass if p else 0) if ok else -1,
                                   price_s=share if p else 0.0)
            pending = [i for i in pending if sols[i].bound > betas[i] * (1 + tol)]
            for i in [i for i in pending if not added or len(hist[i]) >= max_iter]:
                n_pass = finish(i, n_pass)
                pending.remove(i)
        for i, sol in enumerate(sols):
            sol.n_passes, sol.history = len(hist[i]), hist[i]
        return sols


def _solve_with_cache(source, ws, y, beta, tol, z, batch, history) -> Solution:
    """The exact restricted Lasso over ``ws`` after adding the cache's violators until none is left; one row
    appended to ``history``."""
    threshold = beta * (1 + tol)
    t0 = time.perf_counter()
    n_viol = rounds = 0
    while True:
        sol, work, r = _solve_cache(ws, y, beta, threshold, z, batch)
        rounds += r
        z = sol.coef
        added, met = source.cache_violators(ws, sol.residual, threshold)
        n_viol += met
        if not added:
            break
    history.append({"beta": beta, "pass": len(history) + 1, "objective": sol.objective, "atoms": len(ws),
                    "working_set": len(work), "support": int(np.count_nonzero(sol.coef)), "rounds": rounds,
                    "cache_violators": n_viol, "solve_s": time.perf_counter() - t0})
    return sol


def _solve_cache(ws: WorkingSet, y, beta: float, threshold: float, z, batch: int):
    """Exact restricted Lasso over every atom of ``ws``, by exact solves on working subsets (support plus
    the strongest violators) until no atom violates; ``(solution, last subset, rounds)``. When the violators are
    all in the subset just solved (its solve held them within its rounding slack, wider than ``threshold`` on
    ill-conditioned data) it stops there: the pricing that follows reports the ratio, never certifying it."""
    sol = solution(ws, y, beta, np.concatenate([z, np.zeros(len(ws) - len(z))]))
    work = np.flatnonzero(sol.coef)
    for rounds in range(10 * len(ws) + 2):
        support = np.flatnonzero(sol.coef)
        score = np.abs(sol.residual @ ws.A)
        viol = np.setdiff1d(np.flatnonzero(score > threshold), support)
        if rounds and (not viol.size or np.isin(viol, work).all()):
            break
        work = np.union1d(support, _pick(ws, viol, score[viol], max(2 * support.size, batch) - support.size))
        sol = solve_working_set(ws, y, beta, sol.coef, work)
    return sol, work, rounds
