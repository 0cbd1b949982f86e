"""The geometric-algebra dictionary of a depth-L absolute-value network (docs/MATH.md section 3).

A column of family ``l`` (2 <= l <= L) is fixed by ``k = d + l - 2`` training points (``d + l - 3``
without bias), each with a fold label (a vector of ``l - 2`` signs in {-1, 0, +1} whose non-zero
entries come first) saying on which level set ``w.x_i + b = s_i . c`` it lies. The depth-L
dictionary is the union of families 2..L (a zero fold offset lowers the depth). Columns are
numbered ``offset(l) + rank(points) * n_labelings(l) + labeling`` with lexicographic ranks of the
point sets, so any column can be rebuilt and explained from its integer id.
"""
from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from . import _kernels
from .features import FoldFeatures
from .geometry import DEGENERATE_TOL

_SIGN = {0: "0", 1: "+", -1: "-"}
MAX_LABELINGS = 10**7


class DictionaryTooLarge(ValueError):
    """Raised when a dictionary is asked to be materialised past its budget."""


def level_alphabet(m: int) -> list[tuple[int, ...]]:
    """Fold labels of one point: sign vectors of length m whose non-zero entries come first."""
    out = [(0,) * m]
    for j in range(1, m + 1):
        out += [s + (0,) * (m - j) for s in itertools.product((1, -1), repeat=j)]
    return out


def labelings(k: int, m: int, bias: bool = True) -> np.ndarray:
    """Labelings of k points with fold labels of length m, one per column up to a global sign.

    Kept: the first non-zero entry is +1 (the global flip gives the same feature) and the
    label matrix ``[1, S]`` (``S`` without bias) has full column rank, else ``w = 0``.
    """
    if m == 0:
        return np.zeros((1, k, 0))
    alphabet = np.array(level_alphabet(m), dtype=float)
    if len(alphabet) ** k > MAX_LABELINGS:
        raise DictionaryTooLarge(
            f"{len(alphabet)}^{k} fold labelings of {k} points at {m} levels are too many to enumerate; "
            "use candidates='sampled' for this dimension and depth")
    grid = np.stack(np.meshgrid(*[np.arange(len(alphabet))] * k, indexing="ij"), -1).reshape(-1, k)
    S = alphabet[grid]                                   # (n, k, m)
    flat = S.reshape(len(S), -1)
    first = flat[np.arange(len(flat)), np.argmax(flat != 0, axis=1)]
    S = S[first > 0]
    B = np.concatenate([np.ones(S.shape[:2] + (1,)), S], axis=2) if bias else S
    return S[np.linalg.matrix_rank(B) == B.shape[2]]


def points_per_feature(dim: int, depth: int, bias: bool = True) -> int:
    """Training points that fix a feature of this depth: ``d + l - 2`` (one fewer without bias)."""
    return dim + depth - 2 - (0 if bias else 1)


def column_id(depth: int, points, labels) -> str:
    """The text id of a column: ``L<depth>:<points joined by ->`` and, past depth 2, ``:<one label per point>``
    with each label its signs as ``+``, ``-``, ``0`` (e.g. ``L3:0-4:+,0``); ``labels`` (k, depth-2) in {-1, 0, 1}."""
    text = f"L{depth}:{'-'.join(str(int(p)) for p in points)}"
    if depth > 2:
        text += ":" + ",".join(label_text(labels))
    return text


def label_text(labels) -> tuple[str, ...]:
    """Each point's fold label as text, ``(+1, 0) -> "+0"``."""
    return tuple("".join(_SIGN[int(s)] for s in row) for row in np.asarray(labels))


def n_labelings(k: int, m: int, bias: bool = True) -> int:
    """Number of fold labelings of ``k`` points at ``m`` levels (``Dictionary.labelings``); past an
    enumeration of ``7^7`` at ``m >= 2``, the upper bound ``(|alphabet|^k - 1) / 2``."""
    if m == 0:
        return 1
    if m == 1:                                           # non-zero up to sign, minus the constant one
        return (3 ** k - 1) // 2 - (1 if bias else 0)
    size = len(level_alphabet(m))
    return len(labelings(k, m, bias)) if size ** k <= 7 ** 7 else (size ** k - 1) // 2


def n_candidates(n_points: int, dim: int, depth: int, bias: bool = True) -> int:
    """Size of the depth-``depth`` dictionary: ``sum_l C(N, k_l) * n_labelings(l)``."""
    total = 0
    for level in range(2, depth + 1):
        k = points_per_feature(dim, level, bias)
        if 0 <= k <= n_points:
            total += math.comb(n_points, k) * n_labelings(k, level - 2, bias)
    return total


@dataclass(frozen=True)
class Family:
    """Columns of one depth ``l``: ``n_sets`` point sets of size ``k`` times ``labels``."""

    depth: int
    k: int
    labels: np.ndarray
    n_sets: int
    offset: int

    @property
    def n_labelings(self) -> int:
        return len(self.labels)

    @property
    def n_columns(self) -> int:
        return self.n_sets * self.n_labelings


def kind_of(depth: int, labels: np.ndarray) -> str:
    """plane (depth 2), reflection (a point on the mirror), midpoint (none on it), fold (deeper)."""
    if depth == 2:
        return "plane"
    if depth == 3:
        return "reflection" if np.any(labels[:, 0] == 0) else "midpoint"
    return "fold"


class Dictionary:
    """Every candidate feature of a depth-``depth`` network on training points ``X`` (N, d)."""

    def __init__(self, X, depth: int = 2, bias: bool = True, tol: float = DEGENERATE_TOL):
        X = np.ascontiguousarray(X, dtype=float)
        if X.ndim != 2:
            raise ValueError(f"X must be 2-D (points x dimensions), got shape {X.shape}")
        if depth < 2:
            raise ValueError(f"depth must be >= 2, got {depth}")
        self.X, self.depth, self.bias, self.tol = X, int(depth), bool(bias), float(tol)
        self.n_points, self.dim = X.shape
        fams, offset = [], 0
        for level in range(2, self.depth + 1):
            k = points_per_feature(self.dim, level, self.bias)
            if k > self.n_points:
                continue
            labels = labelings(k, level - 2, self.bias)
            n_sets = int(_kernels.binomial_table(self.n_points, k)[self.n_points, k]) if k >= 0 else 0
            fam = Family(level, k, np.ascontiguousarray(labels, dtype=float), n_sets, offset)
            fams.append(fam)
            offset += fam.n_columns
        self.families: tuple[Family, ...] = tuple(fams)
        self.n_candidates = offset

    def __repr__(self) -> str:
        return (f"Dictionary(N={self.n_points}, d={self.dim}, depth={self.depth}, bias={self.bias}, "
                f"n_candidates={self.n_candidates:,})")

    @cached_property
    def binom(self) -> np.ndarray:
        return _kernels.binomial_table(self.n_points, max([f.k for f in self.families] + [0]))

    def _locate(self, ids):
        ids = np.asarray(ids, dtype=np.int64).ravel()
        if ids.size and (ids.min() < 0 or ids.max() >= self.n_candidates):
            raise IndexError(f"column ids must lie in [0, {self.n_candidates})")
        starts = np.array([f.offset for f in self.families], dtype=np.int64)
        fam = np.searchsorted(starts, ids, side="right") - 1
        return ids, fam

    def _family_params(self, fam: Family, local: np.ndarray):
        ranks, labs = np.divmod(local, fam.n_labelings)
        _kernels.start_threads()                     # numba's pool, under this machine's wait policy
        pts = _kernels.unrank_many(ranks, self.n_points, fam.k, self.binom)
        W, b, C, valid = _kernels.params_for(self.X, pts, labs, fam.labels, self.bias, self.tol)
        return pts, labs, W, b, C, valid

    def params(self, ids) -> tuple[FoldFeatures, np.ndarray]:
        """``(features, valid)`` of the given columns: ``FoldFeatures`` with ``depth - 2`` offsets, (m,) validity."""
        ids, fam = self._locate(ids)
        W = np.zeros((ids.size, self.dim))
        b = np.zeros(ids.size)
        C = np.zeros((ids.size, self.depth - 2))
        valid = np.zeros(ids.size, dtype=bool)
        for i, f in enumerate(self.families):
            sel = fam == i
            if sel.any():
                _, _, W[sel], b[sel], Cf, valid[sel] = self._family_params(f, ids[sel] - f.offset)
                C[sel, : f.depth - 2] = Cf
        return FoldFeatures(W, b, C), valid

    def valid(self, ids) -> np.ndarray:
        return self.params(ids)[1]

    def columns(self, ids, X=None) -> np.ndarray:
        """Feature values of the given columns at ``X`` (the training points by default)."""
        return self.params(ids)[0].values(self.X if X is None else X)

    def explain(self, ids) -> list[dict]:
        """One dict per column: id text, kind, depth, points, labels, w, b, offsets, valid."""
        ids, fam = self._locate(ids)
        out = [None] * ids.size
        for i, f in enumerate(self.families):
            where = np.flatnonzero(fam == i)
            if not where.size:
                continue
            pts, labs, W, b, C, valid = self._family_params(f, ids[where] - f.offset)
            for j, pos in enumerate(where):
                lab = f.labels[labs[j]].astype(int)
                points = tuple(int(p) for p in pts[j])
                out[pos] = {
                    "id": column_id(f.depth, points, lab), "column": int(ids[pos]), "kind": kind_of(f.depth, lab),
                    "depth": f.depth, "points": points, "labels": label_text(lab), "w": W[j].tolist(),
                    "b": float(b[j]), "offsets": tuple(float(c) for c in C[j]), "valid": bool(valid[j]),
                }
        return out

    def materialize(self, max_columns: int = 300_000):
        """The whole matrix ``A`` (N, M) of valid columns and their ids; small dictionaries only."""
        if self.n_candidates > max_columns:
            raise DictionaryTooLarge(
                f"dictionary has {self.n_candidates:,} candidate columns, more than max_columns={max_columns:,}")
        ids = np.arange(self.n_candidates, dtype=np.int64)
        features, valid = self.params(ids)
        return features[valid].values(self.X), ids[valid]
