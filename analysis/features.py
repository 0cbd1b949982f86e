"""Fold features as one value: ``phi_j(x) = | ... | |w_j.x + b_j| - c_j1 | ... - c_jm |`` (docs/MATH.md section 3).

``FoldFeatures(W, b, C)`` holds m features: ``W`` (m, d), ``b`` (m,), ``C`` (m, n_offsets) with
``C >= 0`` the fold offsets. Features of mixed depths share one ``C``, padded with 0 (a zero offset
leaves a feature unchanged, ``||u| - 0| = |u|``), so a feature of depth l has ``n_offsets >= l - 2``.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .geometry import feature_values


def _offsets(C, n: int) -> np.ndarray:
    """Offsets as an (n, width) float array: None is no offset, ragged rows are padded with 0."""
    if C is None:
        return np.zeros((n, 0))
    if isinstance(C, np.ndarray) and C.ndim == 2:
        rows = C.astype(float)
    else:
        rows = [np.atleast_1d(np.asarray(c, dtype=float)).reshape(-1) for c in C]
        out = np.zeros((len(rows), max((len(r) for r in rows), default=0)))
        for i, r in enumerate(rows):
            out[i, : len(r)] = r
        rows = out
    if len(rows) != n:
        raise ValueError(f"fold features: W, b and C must have one row per feature, got {n} and {len(rows)} offsets")
    return rows


@dataclass(frozen=True, eq=False)
class FoldFeatures:
    """m fold features ``(W (m, d), b (m,), C (m, n_offsets))``; build one with ``FoldFeatures.of``."""

    W: np.ndarray
    b: np.ndarray
    C: np.ndarray

    @classmethod
    def of(cls, W, b=None, C=None) -> FoldFeatures:
        """Features from arrays (or another ``FoldFeatures``): ``b`` None is 0, ``C`` None is no offset,
        ragged ``C`` (one sequence of offsets per feature) is padded with 0; rows must agree."""
        if isinstance(W, FoldFeatures):
            return W
        W = np.asarray(W, dtype=float)
        W = W.reshape(1, -1) if W.ndim == 1 else W
        if W.ndim != 2:
            raise ValueError(f"fold features: W must be 2-D (features x dimensions), got shape {W.shape}")
        b = np.zeros(len(W)) if b is None else np.asarray(b, dtype=float).reshape(-1)
        if len(b) != len(W):
            raise ValueError(f"fold features: W and b must have one row per feature, got {len(W)} and {len(b)}")
        return cls(W, b, _offsets(C, len(W)))

    @classmethod
    def empty(cls, dim: int, n_offsets: int = 0) -> FoldFeatures:
        """No feature in R^dim."""
        return cls(np.zeros((0, dim)), np.zeros(0), np.zeros((0, n_offsets)))

    @classmethod
    def concat(cls, parts) -> FoldFeatures:
        """The features of ``parts`` in order (all of one dimension), offsets padded to the widest."""
        parts = list(parts)
        width = max(p.C.shape[1] for p in parts)
        return cls(np.vstack([p.W for p in parts]), np.concatenate([p.b for p in parts]),
                   np.vstack([p.with_offsets(width).C for p in parts]))

    @property
    def n(self) -> int:
        """Number of features m."""
        return len(self.W)

    @property
    def dim(self) -> int:
        """Input dimension d."""
        return self.W.shape[1]

    @property
    def depth(self) -> int:
        """Depth of the deepest feature the offsets can hold: ``n_offsets + 2``."""
        return self.C.shape[1] + 2

    def __getitem__(self, rows) -> FoldFeatures:
        """The features at ``rows`` (an index array, boolean mask or slice)."""
        if isinstance(rows, (int, np.integer)):
            rows = [rows]
        return FoldFeatures(self.W[rows], self.b[rows], self.C[rows])

    def values(self, X) -> np.ndarray:
        """``phi_j(x_n)`` at the rows of ``X``, an (n, m) array."""
        return feature_values(X, self.W, self.b, self.C)

    def with_offsets(self, width: int) -> FoldFeatures:
        """The same features with ``width`` offset columns: zero-padded, or trailing all-zero columns dropped
        (dropping a non-zero offset would change a feature: a ValueError)."""
        have = self.C.shape[1]
        if width >= have:
            return self if width == have else FoldFeatures(self.W, self.b, np.pad(self.C, ((0, 0), (0, width - have))))
        if np.any(self.C[:, width:] != 0):
            raise ValueError(f"fold features: features have {have} non-zero fold offsets, more than a "
                             f"depth-{width + 2} network holds ({width})")
        return FoldFeatures(self.W, self.b, self.C[:, :width])
