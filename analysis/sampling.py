"""``candidates="sampled"``: dictionary columns drawn at random and improved by local search.

For dictionaries too large to price (large d or N), columns of the geometric-algebra dictionary
(docs/MATH.md section 3: a family ``l``, ``k`` training points, a fold labeling) are drawn at random
and improved by swapping one defining point at a time while the pricing score ``|A_j . r|``
grows. Nothing is certified: the best column may never be drawn.
"""
from __future__ import annotations

import logging

import numpy as np

from .dictionary import kind_of, level_alphabet
from .geometry import DEGENERATE_TOL, feature_values, lift, normalize_parameters

log = logging.getLogger(__name__)

_SIGN = {0: "0", 1: "+", -1: "-"}


class Sampler:
    """Random columns of the depth-``depth`` dictionary on ``X`` and a local search on ``|A_j . r|``."""

    def __init__(self, X, depth: int, bias: bool = True, random_state=None):
        self.X = np.asarray(X, dtype=float)
        self.depth, self.bias = int(depth), bool(bias)
        N, d = self.X.shape
        self.families = []
        for level in range(2, self.depth + 1):
            k = d + level - 2 - (0 if self.bias else 1)
            if 1 <= k <= N:
                self.families.append((level, k, np.array(level_alphabet(level - 2), dtype=float)))
        if not self.families:
            raise ValueError(f"no dictionary family fits {N} points in d={d} at depth {depth}")
        self.rng = np.random.default_rng(random_state)
        self.info: dict[str, dict] = {}

    def _evaluate(self, fam: int, P, L):
        """Parameters, columns and validity of point sets ``P`` (m, k) with fold labels ``L`` (m, k, l-2)."""
        level = self.families[fam][0]
        _, sv, Vt = np.linalg.svd(lift(self.X[P], L, self.bias))      # the lifted cross product's direction
        W, b, C, valid = normalize_parameters(Vt[:, -1], self.X.shape[1], self.bias)
        valid &= sv[:, -1] > DEGENERATE_TOL * sv[:, 0]
        C = np.concatenate([C, np.zeros((len(P), self.depth - level))], axis=1)
        return W, b, C, valid, feature_values(self.X, W, b, C)

    def _draw(self, fam: int, m: int):
        N = len(self.X)
        _, k, alphabet = self.families[fam]
        P = np.argsort(self.rng.random((m, N)), axis=1)[:, :k] if k < N else np.tile(np.arange(N), (m, 1))
        return P, alphabet[self.rng.integers(len(alphabet), size=(m, k))]

    def propose(self, r, n_samples: int = 2000, n_steps: int = 30, keep: int = 256):
        """The ``keep`` best distinct columns found against the centred residual ``r`` (the best tenth
        of ``n_samples`` random columns, each improved by ``n_steps`` tries of swapping one point):
        ``(A (N, m), keys, W, b, C, scores)``; keys are dictionary ids in text form."""
        r = np.asarray(r, dtype=float)
        out = []
        share = np.array([k for _, k, _ in self.families], dtype=float)
        counts = self.rng.multinomial(n_samples, share / share.sum())
        for fam, m in enumerate(counts):
            if m == 0:
                continue
            P, L = self._draw(fam, m)
            W, b, C, valid, A = self._evaluate(fam, P, L)
            score = np.where(valid, np.abs(r @ A), -1.0)
            top = np.argsort(-score)[: max(keep, m // 10)]          # local search on the best tenth
            P, L, W, b, C, A, score = P[top], L[top], W[top], b[top], C[top], A[:, top], score[top]
            m, (N, k) = len(top), (len(self.X), P.shape[1])
            for _ in range(n_steps if k < N else 0):
                Q = P.copy()
                pos = self.rng.integers(k, size=m)
                Q[np.arange(m), pos] = self.rng.integers(N, size=m)
                distinct = np.array([len(set(q)) == k for q in Q])
                W2, b2, C2, valid2, A2 = self._evaluate(fam, Q, L)
                s2 = np.where(valid2 & distinct, np.abs(r @ A2), -1.0)
                up = s2 > score
                P[up], W[up], b[up], C[up], A[:, up], score[up] = Q[up], W2[up], b2[up], C2[up], A2[:, up], s2[up]
            out.append((fam, P, L, W, b, C, A, score))
        rows = [(s, fam, P[i], L[i], W[i], b[i], C[i], A[:, i])
                for fam, P, L, W, b, C, A, score in out for i, s in enumerate(score) if s >= 0]
        rows.sort(key=lambda t: -t[0])
        keys, picked = [], []
        for row in rows:
            key = self._register(row[1], row[2], row[3], row[4], row[5], row[6])
            if key not in keys:
                keys.append(key)
                picked.append(row)
            if len(keys) == keep:
                break
        if not picked:
            return np.empty((len(self.X), 0)), [], np.empty((0, self.X.shape[1])), np.empty(0), \
                np.empty((0, self.depth - 2)), np.empty(0)
        A = np.column_stack([p[7] for p in picked])
        W = np.array([p[4] for p in picked])
        C = np.array([p[6] for p in picked]).reshape(len(picked), self.depth - 2)
        log.debug("sampled %d columns, best score %.6g", n_samples, picked[0][0])
        return A, keys, W, np.array([p[5] for p in picked]), C, np.array([p[0] for p in picked])

    def _register(self, fam, points, labels, w, b, c) -> str:
        """Text id (the dictionary's form) of a sampled column; records its explanation."""
        level = self.families[fam][0]
        order = np.argsort(points)
        S = np.asarray(labels)[order].astype(int)
        nonzero = S.ravel()[S.ravel() != 0]
        if nonzero.size and nonzero[0] < 0:              # canonical up to the global sign
            S = -S
        pts = tuple(int(p) for p in np.asarray(points)[order])
        text = tuple("".join(_SIGN[s] for s in row) for row in S)
        key = f"L{level}:{'-'.join(map(str, pts))}" + (":" + ",".join(text) if level > 2 else "")
        self.info.setdefault(key, {"id": key, "kind": kind_of(level, S), "depth": level, "points": pts,
                                   "labels": text, "w": np.asarray(w).tolist(),
                                   "b": float(b), "offsets": tuple(float(x) for x in c[: level - 2])})
        return key
