"""Scikit-learn estimators of the Lasso equivalent to a deep absolute-value network.

``ReflectionLasso`` solves ``min 1/2 ||A z + xi - y||^2 + beta ||z||_1`` over the geometric-algebra
dictionary of a depth-L network (docs/MATH.md), certifies the result (section 5) and rebuilds the
network (``to_torch``). ``ReflectionLassoClassifier`` maps two classes to -1/+1.
"""
from __future__ import annotations

import logging
import time
import warnings

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_random_state
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from . import lasso
from ._memory import held_memory
from .certificate import ContinuumSource, certify, certify_constant, continuum_oracle
from .dictionary import Dictionary, n_candidates, points_per_feature
from .features import FoldFeatures
from .parallel import parallel_scorer
from .preprocess import check_target, frame
from .pricing import gamma64, price
from .sampling import SampledSource, Sampler

log = logging.getLogger(__name__)

CANDIDATES = ("dictionary", "continuum", "sampled")
SOLVERS = ("column-generation", "cvxpy")
BATCH = 256                   # columns added per pricing pass
PROBE = 64 * BATCH            # random columns scored before the first pass, for its floors (``_first_floors``)
CVXPY_MAX_COLUMNS = 300_000
PATH_GROUP = 4                # betas of a path certified by one complete pricing pass (lasso.path_generation)
FEATURE_COLUMNS = ["id", "kind", "depth", "points", "labels", "w", "b", "offsets", "coef", "source", "equivalents"]


def evaluate_features(features: pd.DataFrame, intercept: float, X) -> np.ndarray:
    """``f(x) = intercept + sum_j coef_j phi_j(x)`` at the rows of ``X`` from a ``features_`` table."""
    X = np.atleast_2d(np.asarray(X, dtype=float))
    if not len(features):
        return np.full(len(X), float(intercept))
    W = np.asarray(features["w"].tolist(), dtype=float).reshape(len(features), X.shape[1])
    phi = FoldFeatures.of(W, features["b"].to_numpy(float), features["offsets"]).values(X)
    return float(intercept) + phi @ features["coef"].to_numpy(float)


def _first_floors(D: Dictionary, rc: np.ndarray, cache_fraction: float) -> tuple[float, float]:
    """The first pass's float32 floor: the ``BATCH + 1``-th best ``|A_j . rc|`` over ``PROBE`` distinct random
    columns (0 if fewer), at most the dictionary's ``BATCH + 1``-th best, so its best ``BATCH`` score above it and
    it scores in float64 only the columns whose float32 bound reaches the floor (a few percent, not a quarter);
    and its cache's floor, the probe's quantile with twice ``cache_fraction`` of it above (0 when that is all),
    so the cache still fills with the best columns while most of the dictionary is scored in float32 only."""
    ids = np.unique(np.random.default_rng(0).integers(D.n_candidates, size=min(PROBE, D.n_candidates)))
    s = np.concatenate([np.abs(rc @ D.columns(c[D.valid(c)])) for c in np.array_split(ids, -(-ids.size // 2048))])
    s.sort()
    floor = float(s[s.size - BATCH - 1]) if s.size > BATCH else 0.0
    above = int(np.ceil(2 * cache_fraction * s.size))
    return floor, min(floor, float(s[s.size - above - 1])) if above < s.size else 0.0


def _rounding_level(y, rc, l1: float, rel: float) -> float:
    """A bound of the rounding error of a computed score ``A_j . rc`` with ``||A_j||_1 <= l1`` and the column's values
    computed to ``rel`` relative accuracy: the mean's ``gamma_N max|y|``, the dot's ``2 gamma_N max|rc|`` and
    ``rel max|rc|``, each times ``l1``. ``beta_max`` within it for its own column (``rel = 2^-40``) is zero: ``y -
    mean(y)`` is orthogonal to every column (e.g. duplicated points whose conflicting targets average to the mean).
    In intrinsic coordinates (unit-size data) ``|A_nj| <= 2^(depth - 1)``, so ``l1 = N 2^(depth - 1)`` with ``rel =
    2^-30`` (point sets near the degeneracy tolerance) bounds the rounding of every score."""
    top, r = float(np.abs(y).max()), float(np.abs(rc).max())
    return l1 * (gamma64(y.size) * (top + 2 * r) + rel * r)


def _is_int(v) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_))


def _is_real(v) -> bool:
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, (bool, np.bool_))


def _describe(v) -> str:
    """A short text of a bad value: its repr, cut at 80 characters."""
    text = repr(v)
    return text if len(text) <= 80 else text[:77] + "..."


class _ReflectionLassoBase(BaseEstimator):
    """Parameters, fitting and certificate shared by the regressor and the classifier."""

    def __init__(self, depth=2, *, beta=None, bias=True, candidates="dictionary", n_betas=1, beta_min_ratio=None,
                 betas=None, tol=1e-6, max_candidates=100_000_000, max_iter=100, solver="column-generation",
                 n_samples=2000, random_state=None, verbose=False, init_neurons=None, n_jobs=None, path=None):
        self.depth = depth
        self.beta = beta
        self.bias = bias
        self.candidates = candidates
        self.n_betas = n_betas
        self.beta_min_ratio = beta_min_ratio
        self.betas = betas
        self.tol = tol
        self.max_candidates = max_candidates
        self.max_iter = max_iter
        self.solver = solver
        self.n_samples = n_samples
        self.random_state = random_state
        self.verbose = verbose
        self.init_neurons = init_neurons
        self.n_jobs = n_jobs
        self.path = path

    # --- validation -------------------------------------------------------------------------
    def _check_params(self, d: int) -> None:
        """Every parameter checked (one line naming it and what to give); sets the path solved (``_path_spec``)."""
        name = type(self).__name__

        def bad(param, want, value):
            raise ValueError(f"{name}: {param} must be {want}, got {value!r}")

        if not _is_int(self.depth) or self.depth < 2:
            bad("depth", "an integer >= 2", self.depth)
        if self.beta is not None and not (_is_real(self.beta) and np.isfinite(self.beta) and self.beta > 0):
            bad("beta", "a positive finite number or None", self.beta)
        if not isinstance(self.bias, (bool, np.bool_)):
            bad("bias", "True or False", self.bias)
        if not isinstance(self.candidates, str) or self.candidates not in CANDIDATES:
            bad("candidates", f"one of {CANDIDATES}", self.candidates)
        if not isinstance(self.solver, str) or self.solver not in SOLVERS:
            bad("solver", f"one of {SOLVERS}", self.solver)
        if self.solver == "cvxpy" and self.candidates != "dictionary":
            bad("candidates", "'dictionary' with solver='cvxpy'", self.candidates)
        if self.candidates == "continuum" and (self.depth != 2 or d > 2):
            raise ValueError(f"{name}: candidates='continuum' needs depth=2 and 2-D points (spanning at most 2 "
                             f"dimensions: the exact continuum oracle), got depth={self.depth}, intrinsic d={d}; "
                             "use candidates='dictionary'")
        if not (_is_real(self.tol) and np.isfinite(self.tol) and self.tol > 0):
            bad("tol", "a positive number", self.tol)
        for param in ("max_iter", "max_candidates", "n_samples"):
            if not _is_int(getattr(self, param)) or getattr(self, param) < 1:
                bad(param, "an integer >= 1", getattr(self, param))
        if not (isinstance(self.verbose, (bool, np.bool_)) or (_is_int(self.verbose) and self.verbose >= 0)):
            bad("verbose", "True, False or an integer >= 0", self.verbose)
        try:
            seedable = check_random_state(self.random_state) is not None
        except ValueError:
            seedable = False
        if not seedable:
            bad("random_state", "None, an integer in [0, 2**32) or a numpy.random.RandomState", self.random_state)
        if self.n_jobs is not None and (not _is_int(self.n_jobs) or self.n_jobs == 0):
            bad("n_jobs", "None or a non-zero integer (-1: every core)", self.n_jobs)
        self._neurons = self._check_init_neurons(name)
        self._path_spec = self._check_path(name)

    def _seed(self) -> int:
        """The seed of this fit's generator: an integer ``random_state`` as given; None (numpy's global
        RandomState) and a RandomState draw one (scikit-learn's rules); called once per fit, where it is used."""
        if _is_int(self.random_state):
            return int(self.random_state)
        return int(check_random_state(self.random_state).randint(2**31 - 1))

    def _check_init_neurons(self, name: str) -> FoldFeatures | None:
        """``init_neurons`` checked (the only place) and converted to ``FoldFeatures`` in the user's coordinates."""
        if self.init_neurons is None:
            return None
        if self.candidates != "sampled":
            raise ValueError(f"{name}: init_neurons needs candidates='sampled', got candidates={self.candidates!r}")
        shapes = "(W, b, C) with W of shape (k, n_features), b of length k and C k rows of depth-2 offsets"
        given = self.init_neurons
        try:
            neurons = given if isinstance(given, FoldFeatures) else FoldFeatures.of(*given)
            ok = (neurons.dim == self.n_features_in_ and neurons.depth <= self.depth
                  and all(np.isfinite(a).all() for a in (neurons.W, neurons.b, neurons.C)))
        except (TypeError, ValueError):
            ok = False
        if not ok:
            raise ValueError(f"{name}: init_neurons must be {shapes} (n_features={self.n_features_in_}, "
                             f"depth={self.depth}), got {_describe(self.init_neurons)}")
        return neurons

    def _check_path(self, name: str) -> tuple[int, float | None, np.ndarray | None]:
        """``(n_betas, beta_min_ratio, betas)`` checked; the deprecated ``path=`` translated, with a FutureWarning."""
        n, ratio, betas = self.n_betas, self.beta_min_ratio, self.betas
        if self.path is not None:
            if n != 1 or ratio is not None or betas is not None:
                raise ValueError(f"{name}: path is deprecated and cannot be combined with n_betas, beta_min_ratio "
                                 f"or betas; give only those, got path={self.path!r}")
            path = self.path
            if np.ndim(path) == 0:
                n, advice = path, f"n_betas={path!r}"
            elif (isinstance(path, (tuple, list)) and len(path) == 2 and _is_int(path[0]) and _is_real(path[1])
                  and path[1] <= 1):
                n, ratio = path
                advice = f"n_betas={path[0]!r}, beta_min_ratio={path[1]!r}"
            else:                          # every other sequence, (2.0, 1.0) and (3, 2.0) included, lists betas
                betas, advice = path, f"betas={np.ravel(path).tolist()!r}"
            warnings.warn(f"{name}: path= is deprecated and will be removed in the next release; write {advice} "
                          "instead", FutureWarning, stacklevel=5)
        if not _is_int(n) or n < 1:
            raise ValueError(f"{name}: n_betas must be an integer >= 1, got {n!r}")
        if ratio is not None and not (_is_real(ratio) and 0 < ratio <= 1):
            raise ValueError(f"{name}: beta_min_ratio must be a number in (0, 1] or None, got {ratio!r}")
        if betas is not None:
            if n != 1 or ratio is not None:
                raise ValueError(f"{name}: give either betas or n_betas/beta_min_ratio, got betas={betas!r} with "
                                 f"n_betas={n!r}, beta_min_ratio={ratio!r}")
            try:
                betas = np.asarray(betas, dtype=float)
            except (TypeError, ValueError):
                betas = np.array([np.nan])
            if betas.ndim != 1 or not betas.size or not np.all(np.isfinite(betas) & (betas > 0)):
                raise ValueError(f"{name}: betas must be a non-empty 1-D array of positive finite numbers, "
                                 f"got {self.betas if self.path is None else self.path!r}")
        return int(n), None if ratio is None else float(ratio), betas

    def _betas(self, beta_max: float) -> tuple[float, np.ndarray]:
        """``(beta_, grid)``: the final beta and the descending betas solved (the path).

        A single beta is solved directly, however small: there, partial passes over the dictionary find
        violators cheaply, while an internal path pays complete passes shared by its betas
        (``lasso.path_generation``; N = 120, sign target, 5e-4 beta_max: 6.1 s CPU direct, against 20.7 and
        23.7 s CPU for internal paths of 6 and 10 betas)."""
        n, ratio, betas = self._path_spec
        if betas is not None:
            beta = float(self.beta) if self.beta is not None else float(betas.min())
            grid = np.append(betas, beta)
        elif ratio is not None:
            beta = float(self.beta) if self.beta is not None else ratio * beta_max
            grid = np.append(lasso.beta_grid(beta_max, ratio * beta_max, n), beta)
        else:
            beta = float(self.beta) if self.beta is not None else 0.1 * beta_max
            grid = lasso.beta_grid(beta_max, beta, n)
        return beta, np.unique(grid)[::-1]

    # --- fitting ----------------------------------------------------------------------------
    def _fit(self, X, y):
        t_start = time.perf_counter()
        X, y = validate_data(self, X, y, y_numeric=True, dtype=np.float64)
        y = check_target(y, type(self).__name__)
        self._frame = F = frame(X, self.bias)       # solved in intrinsic coordinates (analysis.preprocess)
        X_user, X = X, F.transform(X)
        N, d = X.shape
        self._check_params(d)
        need = points_per_feature(d, self.depth, self.bias)
        if d and N < need and np.ptp(y) > 0:
            raise ValueError(f"{type(self).__name__}: a depth-{self.depth} feature in d={d}"
                             f"{' (the dimension the points span)' if d < X_user.shape[1] else ''}"
                             f"{'' if self.bias else ' without bias'} is fixed by {need} points, got n_samples={N}; "
                             "add points or lower depth")
        self.n_candidates_ = n_candidates(N, d, self.depth, self.bias) if d else 0
        if self.candidates != "sampled" and self.n_candidates_ > self.max_candidates:
            raise ValueError(f"{type(self).__name__}: the depth-{self.depth} dictionary on {N} points in d={d} has "
                             f"{self.n_candidates_:,} candidate columns, more than max_candidates="
                             f"{self.max_candidates:,}; raise max_candidates or use candidates='sampled'")
        if self.solver == "cvxpy" and self.n_candidates_ > CVXPY_MAX_COLUMNS:
            raise ValueError(f"{type(self).__name__}: solver='cvxpy' materialises the dictionary; "
                             f"{self.n_candidates_:,} columns exceed {CVXPY_MAX_COLUMNS:,}")
        timings = {}
        rc = y - y.mean()
        if d == 0 or np.ptp(y) == 0:                # every feature is constant on the data, or y is
            return self._fit_constant(X_user, y, t_start, timings)
        ws = lasso.WorkingSet(N, d, self.depth - 2, seed=0)
        t0 = time.perf_counter()
        self._n_degenerate = 0, 0
        if self.candidates == "sampled":
            neurons = None if self._neurons is None else F.features_to_internal(self._neurons)
            self._sampler = Sampler(X, self.depth, self.bias, self._seed(), neurons=neurons)
            A, keys, features, scores = self._sampler.propose(rc, self.n_samples, keep=BATCH)
            ws.add(A, keys, features, "sampled")
            self._source = SampledSource(self._sampler, self.n_samples, BATCH)
            self.beta_max_ = float(scores.max(initial=0.0))
            l1_best = float(np.abs(A[:, np.argmax(scores)]).sum()) if scores.size else 0.0
        else:
            self._dictionary = D = Dictionary(X, self.depth, self.bias)
            self._matrix = None
            scorer = parallel_scorer(D, self.n_jobs)         # None: price in this process
            n_betas, _, betas = self._path_spec
            self._source = lasso.DictionaryPricing(D, progress=self.verbose, scorer=scorer,   # a cache along paths
                                                   cache=n_betas > 1 or (betas is not None and len(betas) > 1))
            floor, cache_floor = _first_floors(D, rc, self._source.cache.size / D.n_candidates)
            res = self._source.first_pass(rc, floor, BATCH, cache_floor)   # its best BATCH are above the floor
            lasso.add_dictionary_columns(ws, D, res.ids)
            self._n_degenerate = res.n_degenerate, res.n_repeated     # the first pass prices every block
            self.beta_max_ = float(res.max_score)
            l1_best = float(np.abs(D.columns(res.ids[:1])).sum()) if res.ids.size else 0.0
        timings["beta_max_s"] = time.perf_counter() - t0
        if self.beta_max_ <= _rounding_level(y, rc, l1_best, 2.0 ** -40):   # zero, or the best score is rounding
            level = self.beta_max_ + _rounding_level(y, rc, N * 2.0 ** (self.depth - 1), 2.0 ** -30)   # any score's
            return self._fit_constant(X_user, y, t_start, timings, F.beta_to_user(level) if self.beta_max_ else 0.0)
        self.beta_max_ = F.beta_to_user(self.beta_max_)
        self.beta_, grid = self._betas(self.beta_max_)
        self._beta_int = self.beta_ / F.scale
        level = logging.INFO if self.verbose else logging.DEBUG        # the pipeline logs its own summary
        log.log(level, "%s: N=%d, d=%d, depth %d, %s candidates, beta_max %.6g, beta %.6g, %d betas",
                type(self).__name__, N, d, self.depth, f"{self.n_candidates_:,}", self.beta_max_, self.beta_,
                len(grid))
        t0 = time.perf_counter()
        rows, history, z, final = [], [], None, None
        grouped = len(grid) > 1 and self.solver != "cvxpy" and isinstance(self._source, lasso.DictionaryPricing)
        sols = lasso.path_generation(self._source, y, grid / F.scale, ws, tol=self.tol, group=PATH_GROUP,
                                     max_iter=self.max_iter) if grouped else []
        for i, (beta_user, beta) in enumerate(zip(grid, grid / F.scale)):
            sol = sols[i] if grouped else self._solve(X, y, beta, ws, z)
            z = sol.coef
            rows.append({"beta": float(beta_user), "objective": sol.objective,
                         "n_features": int(np.count_nonzero(z)), "dictionary_ratio": sol.dictionary_ratio,
                         "duality_gap": sol.duality_gap(y)})
            history += [{**h, "beta": float(beta_user)} for h in sol.history]
            if beta == self._beta_int:
                final = sol
        timings["solve_s"] = time.perf_counter() - t0
        self.path_ = pd.DataFrame(rows)
        t0 = time.perf_counter()
        final, oracle = self._continuum(X, y, final, ws)
        self._source = None                               # releases the workers' copy of the dictionary
        timings["certificate_s"] = time.perf_counter() - t0
        self._set_result(final, ws)
        scope = {"sampled": "sampled"}.get(self.candidates, "dictionary")
        self.certificate_ = certify(X, y, final.objective, final.residual, self._beta_int, final.bound, self.depth,
                                    self.bias, self.tol, scope, oracle,
                                    columns="continuum" if self.candidates == "continuum" else "dictionary",
                                    n_degenerate=self._n_degenerate[0], n_repeated=self._n_degenerate[1],
                                    span=F.describe(X_user.shape[1]))
        self.certificate_["n_passes"] = int(final.n_passes)
        if self.candidates == "sampled":
            self.certificate_["searched"] = dict(self._sampler.searched)
        self.n_iter_ = max(1, int(final.n_passes))   # pricing passes at beta_ (scikit-learn's n_iter_)
        self._warn_unconverged()
        self.history_ = pd.DataFrame(history)
        timings["total_s"] = time.perf_counter() - t_start
        self.timings_ = timings
        log.log(level, "%s: objective %.10g with %d features; %s", type(self).__name__, self.objective_,
                len(self.features_), self.certificate_["statement"])
        return self

    def _warn_unconverged(self) -> None:
        """A ConvergenceWarning when the fit stops before its optimality test: some candidate (a dictionary
        column, a sampled one, or with candidates='continuum' a neuron) still has ``|A_j . r| > beta (1 + tol)``."""
        cert, limit = self.certificate_, 1 + self.tol
        ratios = {"dictionary" if self.candidates != "sampled" else "sampled": cert["dictionary_ratio"]}
        if self.candidates == "continuum" and "continuum_ratio" in cert:
            ratios["continuum"] = cert["continuum_ratio"]
        unconverged = {k: v for k, v in ratios.items() if not v <= limit}
        if unconverged:
            said = ", ".join(f"{k} ratio {v:.9g}" for k, v in unconverged.items())
            advice = f"raise max_iter={self.max_iter}" if self.n_iter_ >= self.max_iter else (
                "no pass found a new column: the violators are in the working set, but the restricted solve cannot "
                "bring their scores under beta in float64 (ill-conditioned at this beta, e.g. near-duplicate points, "
                "or data far from the origin without bias); a larger beta may converge")
            warnings.warn(f"{type(self).__name__}: stopped unconverged after {self.n_iter_} passes ({said} > 1 + "
                          f"tol={self.tol:g}); the result is a feasible point, not the Lasso optimum: {advice}",
                          ConvergenceWarning, stacklevel=4)

    def _fit_constant(self, X, y, t_start, timings, level: float = 0.0):
        """``beta_max = 0``: no feature correlates with ``y - mean(y)``; ``z = 0`` for every beta (every beta above
        ``level`` when the computed ``beta_max`` was not zero but within the rounding of the scores)."""
        self.beta_max_, self.beta_ = 0.0, float(self.beta) if self.beta is not None else 0.0
        rc = y - y.mean()
        self.intercept_, self.objective_ = float(y.mean()), 0.5 * float(rc @ rc)
        self.path_ = pd.DataFrame([{"beta": self.beta_, "objective": self.objective_, "n_features": 0,
                                    "dictionary_ratio": 0.0, "duality_gap": 0.0}])
        self.features_ = pd.DataFrame([], columns=FEATURE_COLUMNS)
        self.coef_ = np.zeros(0)
        self._features = FoldFeatures.empty(X.shape[1], self.depth - 2)
        self.certificate_ = certify_constant(self.objective_, self._frame.dim, np.ptp(y) == 0, self.depth, self.tol,
                                             self._frame.describe(X.shape[1]), self.candidates == "sampled",
                                             level, self.beta_)
        self.history_ = pd.DataFrame()
        self.n_iter_ = 1
        timings.update(solve_s=0.0, certificate_s=0.0, total_s=time.perf_counter() - t_start)
        self.timings_ = timings
        return self

    def _solve(self, X, y, beta, ws, z0):
        """The Lasso at ``beta`` over the candidates of this mode, warm-started on ``ws``."""
        if self.solver == "cvxpy":
            if self._matrix is None:                     # materialised once per fit, reused along the path
                self._matrix = self._dictionary.materialize(max_columns=CVXPY_MAX_COLUMNS)
            A, ids = self._matrix
            z, _ = lasso.cvxpy_lasso(A, y, beta)
            keep = np.flatnonzero(lasso.significant(z))
            lasso.add_dictionary_columns(ws, self._dictionary, ids[keep])
            coef = np.zeros(len(ws))
            for i, zi in zip(ids[keep], z[keep]):
                atom, sign = ws.locate(int(i))
                if atom >= 0:
                    coef[atom] += sign * zi
            sol = lasso.solution(ws, y, beta, coef)
            sol.bound = self._dictionary_bound(sol)
            return sol
        return lasso.column_generation(self._source, y, beta, ws, z0, tol=self.tol, max_iter=self.max_iter,
                                       progress=self.verbose)

    def _dictionary_bound(self, sol) -> float:
        """``max_j |A_j . r|`` over the dictionary at the residual of ``sol`` (one complete pricing pass)."""
        return price(self._dictionary, sol.residual, top_k=1, scorer=self._source.scorer).bound

    def _continuum(self, X, y, sol, ws):
        """The continuum oracle at the solution where it applies (depth 2, d >= 2, not sampled), as
        ``(solution, oracle)``; ``candidates='continuum'`` first adds its neurons by column generation."""
        if self.depth != 2 or X.shape[1] < 2 or self.candidates == "sampled":
            return sol, None
        if self.candidates != "continuum":
            return sol, continuum_oracle(X, sol.residual, self.bias, random_state=self._seed())
        source = ContinuumSource(X, self.bias, BATCH, random_state=self._seed())
        cont = lasso.column_generation(source, y, self._beta_int, ws, sol.coef, tol=self.tol,
                                       max_iter=self.max_iter, progress=self.verbose)
        cont.n_passes += sol.n_passes - 1                # its first pass re-solves the dictionary's solution
        cont.bound = self._dictionary_bound(cont)
        self._continuum_info = source.info
        return cont, source.oracle

    def _explain(self, keys) -> list[dict]:
        out = {}
        ids = [k for k in keys if isinstance(k, (int, np.integer))]
        if ids:
            out.update({int(i): e for i, e in zip(ids, self._dictionary.explain(np.array(ids, dtype=np.int64)))})
        for k in keys:
            if not isinstance(k, (int, np.integer)):
                out[k] = (self._sampler.info if self.candidates == "sampled" else self._continuum_info)[k]
        return [out[k] if isinstance(k, str) else out[int(k)] for k in keys]

    def _set_result(self, sol, ws) -> None:
        """Selected features, largest first, mapped to the user's coordinates."""
        z = np.zeros(len(ws))
        z[: len(sol.coef)] = sol.coef
        sel = np.flatnonzero(z)
        sel = sel[np.argsort(-np.abs(z[sel]), kind="stable")]
        features, coef = self._frame.features_to_user(FoldFeatures(ws.W[sel], ws.b[sel], ws.C[sel]), z[sel])
        rows = []
        for i, (atom, info) in enumerate(zip(sel, self._explain([ws.keys[a] for a in sel]))):
            others = ws.equivalents(atom)
            row = {c: info[c] for c in ("id", "kind", "depth", "points", "labels")}
            row.update(w=features.W[i].tolist(), b=float(features.b[i]),
                       offsets=tuple(float(c) for c in features.C[i, : len(info["offsets"])]),
                       coef=float(coef[i]), source=ws.sources[atom],
                       equivalents=[e["id"] for e in self._explain(others)])
            rows.append(row)
        self.features_ = pd.DataFrame(rows, columns=FEATURE_COLUMNS)
        self.coef_ = coef
        self.intercept_ = float(sol.intercept)
        self.objective_ = float(sol.objective)
        self._features = features

    # --- use --------------------------------------------------------------------------------
    def _decision(self, X) -> np.ndarray:
        check_is_fitted(self, "coef_")
        X = validate_data(self, X, reset=False, dtype=np.float64)
        return self.intercept_ + self._features.values(X) @ self.coef_

    def to_torch(self, dtype=None):
        """The parallel absolute-value network of this solution (docs/MATH.md section 6), a ``torch.nn.Module``."""
        import torch

        from .network import ParallelAbsNet

        check_is_fitted(self, "coef_")
        f = self._features
        return ParallelAbsNet.from_features(f.W, f.b, f.C, self.coef_, self.intercept_, self.depth,
                                            bias=self.bias, dtype=torch.float64 if dtype is None else dtype)


class ReflectionLasso(RegressorMixin, _ReflectionLassoBase):
    """The exact Lasso of a depth-``depth`` absolute-value network: ``min 1/2 ||A z + xi - y||^2 + beta ||z||_1``.

    Parameters
    ----------
    depth : int, default=2
        Depth L >= 2 of the network; the dictionary holds the features of the families 2..L
        (planes, reflections, midpoints, folds; docs/MATH.md section 3).
    beta : float or None, default=None
        The final regularisation, > 0 (``beta_``). None: ``0.1 * beta_max`` with ``n_betas`` alone,
        ``beta_min_ratio * beta_max`` when ``beta_min_ratio`` is given, the smallest of ``betas`` when
        those are given. A given beta is added to the path.
    bias : bool, default=True
        Whether the neurons have biases (the dictionary's features ``|w.x + b|`` rather than ``|w.x|``).
    candidates : {"dictionary", "continuum", "sampled"}, default="dictionary"
        "dictionary": every column, priced implicitly (certified over the dictionary). "continuum"
        (depth 2, points spanning at most 2 dimensions): the dictionary plus the continuum oracle's
        neurons, the network's global optimum. "sampled": random columns improved by local search
        (not certified).
    n_betas : int, default=1
        Number of betas of the path: a geometric grid from ``beta_max`` down to ``beta`` (or down to
        ``beta_min_ratio * beta_max``), each solve warm-started from the previous one.
    beta_min_ratio : float in (0, 1] or None, default=None
        End of the grid as a fraction of ``beta_max``; None: the grid ends at ``beta``.
    betas : array-like of positive floats or None, default=None
        An explicit path, instead of ``n_betas``/``beta_min_ratio``.
    tol : float, default=1e-6
        Optimality tolerance: a fit is converged when every candidate has ``|A_j . r| <= beta (1 + tol)``.
    max_candidates : int, default=100_000_000
        Largest dictionary priced (``candidates`` other than "sampled"); a larger one is an error.
    max_iter : int, default=100
        Most pricing (or sampling, or continuum) passes per beta; reaching it unconverged warns.
    solver : {"column-generation", "cvxpy"}, default="column-generation"
        "cvxpy" solves the materialised dictionary (a reference for small problems).
    n_samples : int, default=2000
        Columns drawn per round with ``candidates="sampled"``.
    random_state : None, int or numpy.random.RandomState, default=None
        Seed of the sampler and of the continuum oracle's directions (scikit-learn's rules).
    verbose : bool or int, default=False
        Progress bars of the pricing passes.
    init_neurons : tuple (W, b, C), analysis.features.FoldFeatures or None, default=None
        With ``candidates="sampled"``: trained neurons (W of shape (k, n_features), b of length k,
        C k rows of at most ``depth - 2`` offsets) offered every round as columns and snapped to the
        dictionary (``analysis.sampling``).
    n_jobs : int or None, default=None
        Pricing processes (joblib's rules: None is 1 outside a ``joblib.parallel_config``, -1 every core);
        under ``joblib.parallel_config(backend="dask")`` the pricing passes run on the Dask cluster's
        workers (``analysis.parallel``), with the same result and certificate.
    path : deprecated
        The former path parameter, kept for one release with a FutureWarning: an integer n is
        ``n_betas=n``; a pair ``(n, r)`` with an *integer* n and ``r <= 1`` is ``n_betas=n,
        beta_min_ratio=r``; every other sequence, ``(2.0, 1.0)`` included, is ``betas``.

    Attributes
    ----------
    coef_ : ndarray of shape (n_features_selected,)
        Coefficients of the selected features, largest ``|coef|`` first.
    intercept_ : float
        The unpenalised offset ``xi``.
    objective_ : float
        ``1/2 ||A z + xi - y||^2 + beta_ ||z||_1`` at the solution.
    beta_ : float
        The beta solved last (the final one).
    beta_max_ : float
        Smallest beta with ``z = 0`` optimal, ``max_j |A_j . (y - mean(y))|``.
    n_candidates_ : int
        Number of columns of the dictionary.
    features_ : pandas.DataFrame
        One row per selected feature: id, kind, depth, points, labels, w, b, offsets, coef, source,
        equivalents (ARCHITECTURE.md "Estimator result").
    certificate_ : dict
        What the solution is proven to be (scope, exact, dictionary_ratio, duality_gap, statement...).
    path_ : pandas.DataFrame
        One row per beta of the path: beta, objective, n_features, dictionary_ratio, duality_gap.
    history_ : pandas.DataFrame
        The pricing passes of every beta solved (column ``beta``; one row per pass: restricted-solve and
        pricing seconds, atoms cached, working set, support, columns evaluated, screening cells skipped,
        complete).
    n_iter_ : int
        Pricing passes at ``beta_``.
    timings_ : dict
        Seconds spent: beta_max_s, solve_s, certificate_s, total_s.
    n_features_in_ : int
        Number of input coordinates.

    See Also
    --------
    ReflectionLassoClassifier : the same Lasso on two classes mapped to -1/+1.
    analysis.network.ParallelAbsNet : the network a solution rebuilds (``to_torch``).

    Notes
    -----
    ``min_{z, xi} 1/2 ||A z + xi - y||^2 + beta ||z||_1`` over the columns ``A_j`` of the depth-L
    dictionary equals training the infinite-width absolute-value network with weight decay; a solution
    is optimal iff ``max_j |A_j . r| <= beta`` at its residual r (docs/MATH.md sections 2 and 5). A fit
    that stops with a ratio above ``1 + tol`` raises a ConvergenceWarning.

    Examples
    --------
    >>> import numpy as np
    >>> from analysis import ReflectionLasso
    >>> X = np.array([[-2.0, -2.0], [1.0, 2.0], [0.0, 1.0]])
    >>> y = np.array([-1.0, 1.0, -1.0])
    >>> model = ReflectionLasso(depth=2, beta=0.1).fit(X, y)
    >>> model.certificate_["scope"], model.certificate_["exact"]
    ('dictionary', False)
    >>> exact = ReflectionLasso(depth=2, beta=0.1, candidates="continuum").fit(X, y)
    >>> exact.certificate_["exact"], bool(exact.objective_ < model.objective_)
    (True, True)
    >>> rng = np.random.default_rng(0)
    >>> X = rng.uniform(-1, 1, size=(12, 2))
    >>> deep = ReflectionLasso(depth=3, n_betas=4, beta_min_ratio=0.1).fit(X, np.abs(X[:, 0]))
    >>> len(deep.path_), bool(np.isclose(deep.beta_, 0.1 * deep.beta_max_))
    (4, True)
    >>> deep.predict(X[:2]).shape
    (2,)
    """

    def fit(self, X, y):
        with held_memory():                       # freed arrays stay with the process while it fits (_memory)
            return self._fit(X, y)

    def predict(self, X) -> np.ndarray:
        """``f(x) = intercept_ + sum_j coef_j phi_j(x)``."""
        return self._decision(X)


class ReflectionLassoClassifier(ClassifierMixin, _ReflectionLassoBase):
    """Two classes mapped to -1/+1 and fitted by ``ReflectionLasso``; predicts ``classes_[f(x) > 0]``.

    Parameters
    ----------
    depth, beta, bias, candidates, n_betas, beta_min_ratio, betas, tol, max_candidates, max_iter, \
solver, n_samples, random_state, verbose, init_neurons, path
        As in `ReflectionLasso`: the Lasso is solved on the targets ``-1`` (``classes_[0]``) and
        ``+1`` (``classes_[1]``).

    Attributes
    ----------
    classes_ : ndarray of shape (2,)
        The two classes, sorted.
    coef_, intercept_, objective_, beta_, beta_max_, n_candidates_, features_, certificate_, path_, \
history_, n_iter_, timings_, n_features_in_
        As in `ReflectionLasso`.

    See Also
    --------
    ReflectionLasso : the regressor, the same Lasso on real targets.

    Notes
    -----
    ``min 1/2 ||A z + xi - t||^2 + beta ||z||_1`` with ``t_i = +1`` for ``classes_[1]`` and ``-1``
    otherwise; ``decision_function`` is ``f(x) = xi + sum_j z_j phi_j(x)``.

    Examples
    --------
    >>> import numpy as np
    >>> from analysis import ReflectionLassoClassifier
    >>> X = np.random.default_rng(4).normal(size=(12, 2))
    >>> labels = np.where(np.abs(X[:, 0]) > 0.6, "far", "near")
    >>> clf = ReflectionLassoClassifier(depth=2, beta=0.05).fit(X, labels)
    >>> clf.classes_.tolist()
    ['far', 'near']
    >>> bool(clf.score(X, labels) > 0.9), clf.certificate_["dictionary_ratio"] <= 1 + clf.tol
    (True, True)
    """

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_class = False
        return tags

    def fit(self, X, y):
        X, y = validate_data(self, X, y, dtype=np.float64)
        check_classification_targets(y)
        classes = np.unique(y)
        if len(classes) != 2:
            raise ValueError(f"{type(self).__name__}: Only binary classification is supported, got "
                             f"{len(classes)} class{'es' if len(classes) != 1 else ''}: {classes[:5]!r}")
        with held_memory():
            self._fit(X, np.where(y == classes[1], 1.0, -1.0))
        self.classes_ = classes
        return self

    def decision_function(self, X) -> np.ndarray:
        """``f(x)``: positive for ``classes_[1]``."""
        return self._decision(X)

    def predict(self, X) -> np.ndarray:
        positive = self.decision_function(X) > 0
        return self.classes_[positive.astype(int)]
