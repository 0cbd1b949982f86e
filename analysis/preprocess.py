"""Data preparation at the estimator boundary: the Lasso is solved in intrinsic coordinates.

``x_int = U^T (x - mu) / s``: centred (``mu`` the mean; 0 without bias, where translations change
the problem), isotropically scaled (``s`` the largest centred norm) and projected on the affine
hull (the linear span without bias) of the data, ``U`` an orthonormal basis of it (docs/MATH.md
sections 8-9). The Lasso of docs/MATH.md section 2 is unchanged by the translation and the rotation,
and an isotropic scale maps columns ``A -> s A`` (the same point sets give the same features), so solving at
``beta_int = beta / s`` gives ``z_int = s z`` and the same objective. Every tolerance downstream
(degenerate point sets, identical columns, screening) then acts on data of unit size. A feature
``(w, b, c)`` found there is, in the user's coordinates, ``(U w, s b - (U w).mu, s c)`` with values
``s phi``; its coefficient is ``z_int / s``.

On the data, a network in R^d equals one in the affine hull (the component of ``w`` orthogonal to
it only adds to ``||w||``), so points on a line get the exact 1-D dictionary in any ``d``.
Duplicate points are kept as rows: the Lasso over every row is the user's problem verbatim. A point
set with a repeated point either has exactly dependent lifted points (pricing skips and counts it,
``n_repeated`` in the certificate) or ties fold offsets (``s.c = s'.c`` at that point: at depth 3
``c = 0``, a plane of the distinct points), a valid feature in any case.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .features import FoldFeatures

RANK_TOL = 1e-10     # singular values below RANK_TOL * the largest: the data do not extend that way


@dataclass(frozen=True)
class Frame:
    """The map ``x -> U^T (x - mu) / s`` to intrinsic coordinates and back for features."""

    mu: np.ndarray       # (d,) centre (zero without bias)
    scale: float         # s > 0
    U: np.ndarray        # (d, r) orthonormal columns spanning the data (r = 0: all points coincide)

    @property
    def dim(self) -> int:
        """Intrinsic dimension ``r`` of the data (affine without bias: linear)."""
        return self.U.shape[1]

    def transform(self, X) -> np.ndarray:
        """``U^T (x - mu) / s`` for the rows of ``X``."""
        return ((np.asarray(X, dtype=float) - self.mu) / self.scale) @ self.U

    def beta_to_user(self, beta):
        """``beta_user = s beta_int`` (columns are ``s`` times larger in the user's units)."""
        return self.scale * np.asarray(beta, dtype=float) if np.ndim(beta) else self.scale * float(beta)

    def features_to_user(self, features: FoldFeatures, coef) -> tuple[FoldFeatures, np.ndarray]:
        """Internal features (in R^r) and their coefficients as user features (in R^d) and coefficients:
        the same function of ``x``, with ``||w|| = 1`` (renormalised against rounding)."""
        coef = np.asarray(coef, dtype=float)
        Wu = features.W @ self.U.T
        n = np.linalg.norm(Wu, axis=1)
        n = np.where(n > 0, n, 1.0)
        bu = (self.scale * features.b - Wu @ self.mu) / n
        return FoldFeatures(Wu / n[:, None], bu, self.scale * features.C / n[:, None]), coef * n / self.scale

    def features_to_internal(self, features: FoldFeatures) -> FoldFeatures:
        """User features as internal ones, the same function on the data's hull: ``w.x + b = s (U^T w).x'
        + (w.mu + b)`` at ``x = mu + s U x'``, renormalised to ``||w'|| = 1``."""
        Wi = self.scale * features.W @ self.U
        n = np.linalg.norm(Wi, axis=1)
        n = np.where(n > 0, n, 1.0)
        return FoldFeatures(Wi / n[:, None], (features.W @ self.mu + features.b) / n, features.C / n[:, None])

    def describe(self, d: int) -> str:
        """One phrase for the certificate when the data span fewer than ``d`` dimensions."""
        if self.dim == d:
            return ""
        where = {0: "a single point", 1: "a line", 2: "a plane"}.get(self.dim, f"a {self.dim}-dimensional subspace")
        return f"the points span {where} in R^{d}" + ("" if self.mu.any() or not self.dim else " through the origin")


def frame(X, bias: bool = True) -> Frame:
    """The intrinsic frame of the training points ``X`` (N, d): directions whose singular value is below
    ``RANK_TOL`` times the largest, or below the rounding of ``X`` itself (``~ eps max|X|``, large for data
    far from the origin), are not directions of the data."""
    X = np.asarray(X, dtype=float)
    N, d = X.shape
    mu = X.mean(axis=0) if bias else np.zeros(d)
    Xc = X - mu
    size = float(np.sqrt((Xc ** 2).sum(axis=1)).max(initial=0.0))
    if not size > 0:
        return Frame(mu, 1.0, np.zeros((d, 0)))
    _, sv, Vt = np.linalg.svd(Xc / size, full_matrices=False)
    noise = 64 * np.finfo(float).eps * np.sqrt(N * d) * np.abs(X).max() / size   # rounding of the input itself
    rank = int(np.sum(sv > max(RANK_TOL * sv[0], noise)))
    U = np.eye(d) if rank == d else Vt[:rank].T
    size = float(np.sqrt(((Xc @ U) ** 2).sum(axis=1)).max())
    return Frame(mu, size, U)


def check_target(y, name: str) -> np.ndarray:
    """``y`` as finite floats (booleans and integers are numbers)."""
    y = np.asarray(y)
    if y.dtype.kind not in "biuf":
        raise ValueError(f"{name}: y must be numeric (bool, int or float), got dtype {y.dtype}; "
                         "map labels to numbers or use ReflectionLassoClassifier")
    y = y.astype(float)
    if not np.all(np.isfinite(y)):
        raise ValueError(f"{name}: y has {int(np.sum(~np.isfinite(y)))} non-finite values (NaN or infinity), "
                         f"first at row {int(np.flatnonzero(~np.isfinite(y))[0])}; drop or impute them")
    return y
