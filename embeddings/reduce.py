"""Linear reduction of embeddings, fitted on the training split and kept as plain parameters.

``Reduction`` maps ``x`` in R^dim to ``z = (x - mean_) @ components_.T / scale_`` in R^k:

- ``method="pca"``: the rows of ``components_`` are the top-k right singular vectors of the
  centred training matrix (sign: largest-magnitude loading positive);
- ``method="random"``: Gaussian random projection, ``components_[i, j] ~ N(0, 1/k)`` drawn with
  ``random_state``;
- ``method="pls"`` (supervised, needs the training targets): the rows of ``components_`` are the x
  rotations of a k-component PLS regression of the targets on the centred (unscaled) training
  vectors, so ``z`` are its x scores (sklearn ``PLSRegression(scale=False).transform``);
- ``standardize=True``: ``scale_`` is the standard deviation of each coordinate on the training
  split, so every coordinate has zero mean and unit variance there (otherwise ``scale_ = 1``).

``to_dict()`` / ``from_dict()`` keep every parameter as plain lists (JSON), so texts embedded
later can be projected into the same coordinates.
"""
from __future__ import annotations

import logging
import numbers

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

__all__ = ["METHODS", "Reduction", "signal_kept"]

logger = logging.getLogger(__name__)

METHODS = ("pca", "random", "pls")
ARRAYS = ("mean", "components", "scale", "explained_variance", "explained_variance_ratio")


class Reduction(TransformerMixin, BaseEstimator):
    """PCA, Gaussian random projection or PLS to ``n_components`` coordinates, optionally standardised.

    Fitted attributes: ``mean_`` (dim,), ``components_`` (k, dim), ``scale_`` (k,),
    ``n_features_in_``, ``n_samples_``; for PCA ``explained_variance_`` (k,) and
    ``explained_variance_ratio_`` (k,: share of the total training variance), None for "random".
    """

    def __init__(self, method: str = "pca", n_components: int = 2, standardize: bool = True,
                 random_state: int | None = 0):
        self.method = method
        self.n_components = n_components
        self.standardize = standardize
        self.random_state = random_state

    def fit(self, X, y=None) -> Reduction:
        """Fit the mean, the directions and the scales on the training vectors ``X`` (n_train, dim)
        (and, for PLS, their targets ``y``)."""
        X = _matrix(X, "fit")
        n, dim = X.shape
        k = self.n_components
        if self.method not in METHODS:
            raise ValueError(f"Reduction: method must be one of {', '.join(METHODS)}; got {self.method!r}")
        if not isinstance(k, numbers.Integral) or isinstance(k, bool) or not 1 <= k <= min(n, dim):
            raise ValueError(f"Reduction: n_components must be an integer in 1..min(n_train, dim) = "
                             f"1..{min(n, dim)} for {n} training vectors of dimension {dim}; got {k!r}")
        if self.random_state is not None and not isinstance(self.random_state, numbers.Integral):
            raise ValueError(f"Reduction: random_state must be an integer or None; got {self.random_state!r}")
        self.mean_ = X.mean(axis=0)
        centred = X - self.mean_
        if self.method == "pca":
            _, s, vt = np.linalg.svd(centred, full_matrices=False)
            components = vt[:k] * np.sign(vt[np.arange(k), np.abs(vt[:k]).argmax(axis=1)])[:, None]
            variance = s ** 2 / max(n - 1, 1)
            total = variance.sum()
            self.explained_variance_ = variance[:k]
            self.explained_variance_ratio_ = variance[:k] / total if total > 0 else np.zeros(k)
        elif self.method == "pls":
            from sklearn.cross_decomposition import PLSRegression
            y = _targets(y, n)
            components = PLSRegression(n_components=k, scale=False).fit(centred, y).x_rotations_.T
            self.explained_variance_ = self.explained_variance_ratio_ = None
        else:
            components = np.random.default_rng(self.random_state).standard_normal((k, dim)) / np.sqrt(k)
            self.explained_variance_ = self.explained_variance_ratio_ = None
        self.components_ = components
        self.scale_ = np.ones(k)
        if self.standardize:
            scale = (centred @ components.T).std(axis=0)
            flat = np.flatnonzero(scale <= 1e-10 * np.sqrt(np.mean(np.sum(centred ** 2, axis=1))))
            if flat.size:
                raise ValueError(f"Reduction: coordinate {flat[0]} has zero variance on the {n} training vectors "
                                 f"(their rank is below n_components={k}); lower n_components or set "
                                 "standardize=False")
            self.scale_ = scale
        self.n_features_in_, self.n_samples_ = dim, n
        if self.explained_variance_ratio_ is not None:
            logger.info("PCA to %d components keeps %.1f%% of the variance of %d training vectors (dim %d)",
                        k, 100 * self.explained_variance_ratio_.sum(), n, dim)
        else:
            logger.info("%s projection of %d training vectors from dim %d to %d", self.method, n, dim, k)
        return self

    def transform(self, X) -> np.ndarray:
        """``(X - mean_) @ components_.T / scale_``: the (n, n_components) coordinates of ``X``."""
        check_is_fitted(self, "components_")
        X = _matrix(X, "transform")
        if X.shape[1] != self.n_features_in_:
            raise ValueError(f"Reduction.transform: vectors have dimension {X.shape[1]}, the reduction was fitted "
                             f"on dimension {self.n_features_in_}")
        return (X - self.mean_) @ self.components_.T / self.scale_

    def to_dict(self) -> dict:
        """Options and fitted parameters as plain Python values (lists of floats), JSON-serialisable."""
        check_is_fitted(self, "components_")
        out = {**self.get_params(), "n_features_in": int(self.n_features_in_), "n_samples": int(self.n_samples_)}
        out["random_state"] = None if self.random_state is None else int(self.random_state)
        for key in ARRAYS:
            value = getattr(self, key + "_")
            out[key] = None if value is None else value.tolist()
        return out

    @classmethod
    def from_dict(cls, params: dict) -> Reduction:
        """The fitted ``Reduction`` saved by :meth:`to_dict`."""
        missing = [key for key in (*cls._get_param_names(), "n_features_in", "n_samples", *ARRAYS)
                   if key not in params]
        if missing:
            raise ValueError(f"Reduction.from_dict: missing keys {', '.join(missing)}")
        self = cls(**{key: params[key] for key in cls._get_param_names()})
        k, dim = int(params["n_components"]), int(params["n_features_in"])
        shapes = {"mean": (dim,), "components": (k, dim), "scale": (k,), "explained_variance": (k,),
                  "explained_variance_ratio": (k,)}
        for key in ARRAYS:
            value = params[key]
            if value is not None:
                value = np.asarray(value, dtype=float)
                if value.shape != shapes[key]:
                    raise ValueError(f"Reduction.from_dict: {key} has shape {value.shape}, expected {shapes[key]}")
            elif key in ("mean", "components", "scale"):
                raise ValueError(f"Reduction.from_dict: {key} is missing")
            setattr(self, key + "_", value)
        self.n_features_in_, self.n_samples_ = dim, int(params["n_samples"])
        return self


def _matrix(X, where: str) -> np.ndarray:
    X = np.asarray(X, dtype=float)
    if X.ndim != 2 or X.shape[0] == 0:
        raise ValueError(f"Reduction.{where}: expected a non-empty 2-D array (n_texts, dim); got shape {X.shape}")
    if not np.isfinite(X).all():
        raise ValueError(f"Reduction.{where}: vectors contain NaN or infinity")
    return X


def _targets(y, n: int) -> np.ndarray:
    if y is None:
        raise ValueError("Reduction.fit: method='pls' is supervised; pass the training targets y")
    y = np.asarray(y, dtype=float).reshape(-1)
    if y.shape != (n,) or not np.isfinite(y).all() or np.ptp(y) == 0:
        raise ValueError(f"Reduction.fit: y must hold {n} finite, non-constant targets (one per training vector)")
    return y


def signal_kept(vectors, y, train, reduced) -> dict:
    """How much target signal a reduction keeps: the test R^2 of a linear probe (ridge, penalty chosen by
    leave-one-out on the training split) on the full vectors and on the reduced points, same split."""
    from sklearn.linear_model import RidgeCV
    from sklearn.metrics import r2_score
    y, train = np.asarray(y, dtype=float), np.asarray(train, dtype=bool)
    if train.all() or (~train).sum() < 2:
        raise ValueError("signal_kept: needs at least 2 test points (train is False there)")
    out = {}
    for name, Z in (("full_r2", _matrix(vectors, "signal_kept")), ("reduced_r2", np.asarray(reduced, dtype=float))):
        probe = RidgeCV(alphas=np.logspace(-3, 4, 22)).fit(Z[train], y[train])
        out[name] = float(r2_score(y[~train], probe.predict(Z[~train])))
    out["kept"] = out["reduced_r2"] / out["full_r2"] if out["full_r2"] > 0 else None
    return out
