"""Scikit-learn estimators of the Lasso equivalent to a deep absolute-value network.

``ReflectionLasso`` solves ``min 1/2 ||A z + xi - y||^2 + beta ||z||_1`` over the geometric-algebra
dictionary of a depth-L network (docs/MATH.md), certifies the result (section 5) and rebuilds the
network (``to_torch``). ``ReflectionLassoClassifier`` maps two classes to -1/+1.
"""
from __future__ import annotations

import logging
import time

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from . import lasso
from .certificate import certify, certify_constant, continuum_oracle, neuron_parameters
from .dictionary import Dictionary, n_candidates, points_per_feature
from .geometry import feature_values, pad_offsets
from .preprocess import check_target, frame
from .parallel import parallel_scorer
from .pricing import price
from .sampling import Sampler

log = logging.getLogger(__name__)

CANDIDATES = ("dictionary", "continuum", "sampled")
SOLVERS = ("column-generation", "cvxpy")
BATCH = 256                   # columns added per pricing pass
CVXPY_MAX_COLUMNS = 300_000
FEATURE_COLUMNS = ["id", "kind", "depth", "points", "labels", "w", "b", "offsets", "coef", "source", "equivalents"]


def evaluate_features(features: pd.DataFrame, intercept: float, X) -> np.ndarray:
    """``f(x) = intercept + sum_j coef_j phi_j(x)`` at the rows of ``X`` from a ``features_`` table."""
    X = np.atleast_2d(np.asarray(X, dtype=float))
    if not len(features):
        return np.full(len(X), float(intercept))
    W = np.asarray(features["w"].tolist(), dtype=float).reshape(len(features), X.shape[1])
    C = pad_offsets(features["offsets"])
    return float(intercept) + feature_values(X, W, features["b"].to_numpy(float), C) @ features["coef"].to_numpy(float)


class _ReflectionLassoBase(BaseEstimator):
    """Parameters, fitting and certificate shared by the regressor and the classifier."""

    def __init__(self, depth=2, beta=None, bias=True, candidates="dictionary", path=None, tol=1e-6,
                 max_candidates=100_000_000, max_iter=100, solver="column-generation", n_samples=2000,
                 random_state=None, verbose=False, init_neurons=None, n_jobs=None):
        self.depth = depth
        self.beta = beta
        self.bias = bias
        self.candidates = candidates
        self.path = path
        self.tol = tol
        self.max_candidates = max_candidates
        self.max_iter = max_iter
        self.solver = solver
        self.n_samples = n_samples
        self.random_state = random_state
        self.verbose = verbose
        self.init_neurons = init_neurons
        self.n_jobs = n_jobs

    # --- validation -------------------------------------------------------------------------
    def _check_params(self, d: int) -> None:
        name = type(self).__name__
        if not isinstance(self.depth, (int, np.integer)) or self.depth < 2:
            raise ValueError(f"{name}: depth must be an integer >= 2, got {self.depth!r}")
        if self.beta is not None and not (np.isfinite(self.beta) and self.beta > 0):
            raise ValueError(f"{name}: beta must be a positive finite number or None, got {self.beta!r}")
        if self.candidates not in CANDIDATES:
            raise ValueError(f"{name}: candidates must be one of {CANDIDATES}, got {self.candidates!r}")
        if self.solver not in SOLVERS:
            raise ValueError(f"{name}: solver must be one of {SOLVERS}, got {self.solver!r}")
        if self.solver == "cvxpy" and self.candidates != "dictionary":
            raise ValueError(f"{name}: solver='cvxpy' needs candidates='dictionary', got {self.candidates!r}")
        if self.candidates == "continuum" and (self.depth != 2 or d > 2):
            raise ValueError(f"{name}: candidates='continuum' needs depth=2 and 2-D points (spanning at most 2 "
                             f"dimensions: the exact continuum oracle), got depth={self.depth}, intrinsic d={d}; "
                             "use candidates='dictionary'")
        if not (np.isfinite(self.tol) and self.tol > 0):
            raise ValueError(f"{name}: tol must be a positive number, got {self.tol!r}")
        if not isinstance(self.max_iter, (int, np.integer)) or self.max_iter < 1:
            raise ValueError(f"{name}: max_iter must be an integer >= 1, got {self.max_iter!r}")
        if self.n_jobs is not None and (not isinstance(self.n_jobs, (int, np.integer)) or self.n_jobs == 0):
            raise ValueError(f"{name}: n_jobs must be None or a non-zero integer (-1: every core), got {self.n_jobs!r}")

    def _betas(self, beta_max: float) -> tuple[float, np.ndarray]:
        """``(beta_, grid)``: the final beta and the descending betas solved (the path).

        A single beta is solved directly, however small: a warm-started internal path to it (glmnet's
        way) was 1.7x slower at N = 150, 5e-4 beta_max and 1.7-3x at N = 60, 2.4e-3 beta_max (issue 9),
        since every beta of a path needs its own complete, certifying pricing pass while a direct solve
        finds most of its columns in cheap partial passes."""
        path = self.path
        if isinstance(path, tuple) and len(path) == 2 and float(path[1]) <= 1 and float(path[0]) == int(path[0]):
            n, ratio = int(path[0]), float(path[1])
            beta = float(self.beta) if self.beta is not None else ratio * beta_max
            grid = np.append(lasso.beta_grid(beta_max, ratio * beta_max, n), beta)
        elif path is None or np.ndim(path) == 0:
            beta = float(self.beta) if self.beta is not None else 0.1 * beta_max
            grid = lasso.beta_grid(beta_max, beta, 1 if path is None else int(path))
        else:
            grid = np.asarray(path, dtype=float)
            if grid.ndim != 1 or not np.all(np.isfinite(grid) & (grid > 0)):
                raise ValueError(f"{type(self).__name__}: path must be a number of betas, (n, min_ratio) or an "
                                 f"array of positive betas, got {path!r}")
            beta = float(self.beta) if self.beta is not None else float(grid.min())
            grid = np.append(grid, beta)
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
            neurons = None if self.init_neurons is None else F.features_to_internal(*self.init_neurons)
            self._sampler = Sampler(X, self.depth, self.bias, self.random_state, neurons=neurons)
            A, keys, W, b, C, scores = self._sampler.propose(rc, self.n_samples, keep=BATCH)
            ws.add(A, keys, W, b, C, "sampled")
            self.beta_max_ = float(scores.max(initial=0.0))
        else:
            self._dictionary = D = Dictionary(X, self.depth, self.bias)
            self._matrix = None
            self._scorer = parallel_scorer(D, self.n_jobs)   # None: price in this process
            probe = np.random.default_rng(0).integers(D.n_candidates, size=min(512, D.n_candidates))
            floor = 0.5 * float(np.abs(rc @ D.columns(probe[D.valid(probe)])).max(initial=0.0))
            res = price(D, rc, top_k=BATCH, threshold=floor, progress=self.verbose,   # floor <= beta_max
                        scorer=self._scorer)
            lasso.add_dictionary_columns(ws, D, res.ids)
            self._screen = res.screen
            self._n_degenerate = res.n_degenerate, res.n_repeated     # the first pass prices every block
            self.beta_max_ = float(res.max_score)
        timings["beta_max_s"] = time.perf_counter() - t0
        if self.beta_max_ <= 0:
            return self._fit_constant(X_user, y, t_start, timings)
        self.beta_max_ = F.beta_to_user(self.beta_max_)
        self.beta_, grid = self._betas(self.beta_max_)
        self._beta_int = self.beta_ / F.scale
        log.info("%s: N=%d, d=%d, depth %d, %s candidates, beta_max %.6g, beta %.6g, %d betas",
                 type(self).__name__, N, d, self.depth, f"{self.n_candidates_:,}", self.beta_max_, self.beta_,
                 len(grid))
        t0 = time.perf_counter()
        rows, history, z, final = [], [], None, None
        for beta_user, beta in zip(grid, grid / F.scale):
            sol = self._solve(X, y, beta, ws, z)
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
        final, oracle = self._certify_solution(X, y, final, ws)
        self._scorer = None                               # releases the workers' copy of the dictionary
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
        self.history_ = pd.DataFrame(history)
        timings["total_s"] = time.perf_counter() - t_start
        self.timings_ = timings
        log.info("%s: objective %.10g with %d features; %s", type(self).__name__, self.objective_,
                 len(self.features_), self.certificate_["statement"])
        return self

    def _fit_constant(self, X, y, t_start, timings):
        """``beta_max = 0``: no feature correlates with ``y - mean(y)``; ``z = 0`` for every beta."""
        self.beta_max_, self.beta_ = 0.0, float(self.beta) if self.beta is not None else 0.0
        rc = y - y.mean()
        self.intercept_, self.objective_ = float(y.mean()), 0.5 * float(rc @ rc)
        self.path_ = pd.DataFrame([{"beta": self.beta_, "objective": self.objective_, "n_features": 0,
                                    "dictionary_ratio": 0.0, "duality_gap": 0.0}])
        self.features_ = pd.DataFrame([], columns=FEATURE_COLUMNS)
        self.coef_ = np.zeros(0)
        self._W, self._b, self._C = np.zeros((0, X.shape[1])), np.zeros(0), np.zeros((0, self.depth - 2))
        self.certificate_ = certify_constant(self.objective_, self._frame.dim, np.ptp(y) == 0, self.depth, self.tol,
                                             self._frame.describe(X.shape[1]), self.candidates == "sampled")
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
            sol.bound = price(self._dictionary, sol.residual, top_k=1, scorer=self._scorer).bound
            return sol
        if self.candidates == "sampled":
            return self._solve_sampled(y, beta, ws, z0)
        sol = lasso.column_generation(self._dictionary, y, beta, ws, z0, tol=self.tol,
                                      max_iter=self.max_iter, screen=self._screen, progress=self.verbose,
                                      scorer=self._scorer)
        self._screen = sol.screen
        return sol

    def _solve_sampled(self, y, beta, ws, z0):
        """Column generation where pricing is replaced by sampling and local search (not certified)."""
        threshold = beta * (1 + self.tol)
        sol = lasso.solve_working_set(ws, y, beta, z0)
        for it in range(1, self.max_iter + 1):
            A, keys, W, b, C, scores = self._sampler.propose(sol.residual, self.n_samples, keep=BATCH)
            found = float(max(scores.max(initial=0.0), np.abs(sol.residual @ ws.A).max(initial=0.0)))
            viol = scores > threshold
            added = ws.add(A[:, viol], [k for k, v in zip(keys, viol) if v], W[viol], b[viol], C[viol], "sampled")
            log.info("sampled round %d: objective %.10g, best sampled ratio %.6g, %d added", it, sol.objective,
                     found / beta, added)
            if added == 0 or it == self.max_iter:
                sol.bound, sol.n_passes = found, it
                return sol
            sol = lasso.solve_working_set(ws, y, beta, sol.coef)
        return sol

    def _certify_solution(self, X, y, sol, ws):
        """Continuum oracle where it applies (depth 2, d >= 2); ``candidates='continuum'`` adds its neurons."""
        if self.depth != 2 or X.shape[1] < 2 or self.candidates == "sampled":
            return sol, None
        oracle = continuum_oracle(X, sol.residual, self.bias, random_state=self.random_state)
        if self.candidates != "continuum":
            return sol, oracle
        threshold = self._beta_int * (1 + self.tol)
        self._continuum = {}
        for it in range(1, self.max_iter + 1):
            viol = np.flatnonzero(oracle.values > threshold)
            log.info("continuum round %d: objective %.12g, continuum ratio %.9f", it, sol.objective,
                     oracle.values.max() / self._beta_int)
            if not viol.size:
                break
            viol = viol[np.argsort(-oracle.values[viol])][:BATCH]
            W, b = neuron_parameters(X, oracle, viol)
            keys = []
            for k, w, bb in zip(oracle.anchors[viol], W, b):
                key = f"C:{int(k)}@{np.degrees(np.arctan2(w[1], w[0])):.10f}"
                keys.append(key)
                self._continuum[key] = {"id": key, "kind": "plane", "depth": 2,
                                        "points": (int(k),) if k >= 0 else (), "labels": ("",) if k >= 0 else (),
                                        "w": w.tolist(), "b": float(bb), "offsets": ()}
            if ws.add(feature_values(X, W, b), keys, W, b, np.zeros((len(keys), 0)), "continuum") == 0:
                log.warning("continuum: the oracle's neurons are already columns; stopping")
                break
            n_passes = sol.n_passes
            sol = lasso.solve_working_set(ws, y, self._beta_int, sol.coef)
            sol.n_passes = n_passes + it
            oracle = continuum_oracle(X, sol.residual, self.bias)
        sol.bound = price(self._dictionary, sol.residual, top_k=1, scorer=self._scorer).bound
        return sol, oracle

    def _explain(self, keys) -> list[dict]:
        out = {}
        ids = [k for k in keys if isinstance(k, (int, np.integer))]
        if ids:
            out.update({int(i): e for i, e in zip(ids, self._dictionary.explain(np.array(ids, dtype=np.int64)))})
        for k in keys:
            if not isinstance(k, (int, np.integer)):
                out[k] = (self._sampler.info if self.candidates == "sampled" else self._continuum)[k]
        return [out[k] if isinstance(k, str) else out[int(k)] for k in keys]

    def _set_result(self, sol, ws) -> None:
        """Selected features, largest first, mapped to the user's coordinates."""
        z = np.zeros(len(ws))
        z[: len(sol.coef)] = sol.coef
        sel = np.flatnonzero(z)
        sel = sel[np.argsort(-np.abs(z[sel]), kind="stable")]
        W, b, C, coef = self._frame.features_to_user(ws.W[sel], ws.b[sel], ws.C[sel], z[sel])
        rows = []
        for i, (atom, info) in enumerate(zip(sel, self._explain([ws.keys[a] for a in sel]))):
            others = ws.equivalents(atom)
            row = {c: info[c] for c in ("id", "kind", "depth", "points", "labels")}
            row.update(w=W[i].tolist(), b=float(b[i]), offsets=tuple(float(c) for c in C[i, : len(info["offsets"])]),
                       coef=float(coef[i]), source=ws.sources[atom],
                       equivalents=[e["id"] for e in self._explain(others)])
            rows.append(row)
        self.features_ = pd.DataFrame(rows, columns=FEATURE_COLUMNS)
        self.coef_ = coef
        self.intercept_ = float(sol.intercept)
        self.objective_ = float(sol.objective)
        self._W, self._b, self._C = W, b, C

    # --- use --------------------------------------------------------------------------------
    def _decision(self, X) -> np.ndarray:
        check_is_fitted(self, "coef_")
        X = validate_data(self, X, reset=False, dtype=np.float64)
        return self.intercept_ + feature_values(X, self._W, self._b, self._C) @ self.coef_

    def to_torch(self, dtype=None):
        """The parallel absolute-value network of this solution (docs/MATH.md section 6), a ``torch.nn.Module``."""
        import torch

        from .network import ParallelAbsNet

        check_is_fitted(self, "coef_")
        return ParallelAbsNet.from_features(self._W, self._b, self._C, self.coef_, self.intercept_, self.depth,
                                            bias=self.bias, dtype=torch.float64 if dtype is None else dtype)


class ReflectionLasso(RegressorMixin, _ReflectionLassoBase):
    """The exact Lasso of a depth-``depth`` absolute-value network: ``min 1/2 ||A z + xi - y||^2 + beta ||z||_1``.

    ``candidates``: "dictionary" (every column, priced implicitly), "continuum" (depth 2, d = 2:
    the dictionary plus the continuum oracle's neurons, the network's global optimum) or "sampled"
    (random columns improved by local search; not certified). ``beta=None`` is ``0.1 * beta_max``;
    ``path`` (a number of betas, ``(n, min_ratio)`` or an array) solves a descending beta grid.
    Besides the attributes of ARCHITECTURE.md, ``history_`` lists the pricing passes of every beta solved
    (column ``beta``; one row per pass: restricted-solve and pricing seconds, atoms cached, working set,
    support, columns evaluated, screening cells skipped, complete).
    ``init_neurons=(W, b, C)`` (with "sampled"): trained neurons offered every round as columns and snapped
    to the dictionary (``analysis.sampling``); ``certificate_["searched"]`` says what was searched.
    ``n_jobs`` pricing processes (joblib's rules); under ``joblib.parallel_config(backend="dask")``
    the pricing passes run on the Dask cluster's workers (``analysis.parallel``).
    """

    def fit(self, X, y):
        return self._fit(X, y)

    def predict(self, X) -> np.ndarray:
        """``f(x) = intercept_ + sum_j coef_j phi_j(x)``."""
        return self._decision(X)


class ReflectionLassoClassifier(ClassifierMixin, _ReflectionLassoBase):
    """Two classes mapped to -1/+1 and fitted by ``ReflectionLasso``; predicts the sign."""

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
        self._fit(X, np.where(y == classes[1], 1.0, -1.0))
        self.classes_ = classes
        return self

    def decision_function(self, X) -> np.ndarray:
        """``f(x)``: positive for ``classes_[1]``."""
        return self._decision(X)

    def predict(self, X) -> np.ndarray:
        positive = self.decision_function(X) > 0
        return self.classes_[positive.astype(int)]
