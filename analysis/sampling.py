"""``candidates="sampled"``: dictionary columns drawn at random and improved by local search.

For dictionaries too large to price (large d or N), columns of the geometric-algebra dictionary
(docs/MATH.md section 3: a family ``l``, ``k`` training points, a fold labeling) are drawn at random
and improved by swapping one defining point at a time while the pricing score ``|A_j . r|``
grows. Nothing is certified: the best column may never be drawn.

Seeds (``neurons``: the unit features ``(W, b, C)`` of trained parallel networks) are offered every
round as columns themselves (key ``N<depth>:seed<i>``, kind "neuron") and snapped to the dictionary
(docs/MATH.md section 3): the ``d + L - 2`` training points nearest the neuron's level sets
``w.x + b = s . c``, each labelled by its nearest level set, define a dictionary column. With
the neurons as columns, the sampled Lasso's objective is at most the network's (the network is a
feasible point of the Lasso over those columns, AM-GM), provided its search ends with no violation.
"""
from __future__ import annotations

import logging
from typing import NamedTuple

import numpy as np

from .dictionary import column_id, kind_of, label_text, level_alphabet, points_per_feature
from .features import FoldFeatures
from .geometry import DEGENERATE_TOL, feature_values, fold_parameters, lift, normalize_parameters
from .lasso import Proposal

log = logging.getLogger(__name__)


class Seeds(NamedTuple):
    """Columns offered every round: the trained neurons as they are (the first ``n_trained``), then snapped."""

    keys: list
    features: FoldFeatures
    A: np.ndarray
    n_trained: int


class Sampler:
    """Random columns of the depth-``depth`` dictionary on ``X`` and a local search on ``|A_j . r|``."""

    def __init__(self, X, depth: int, bias: bool = True, random_state=None, neurons: FoldFeatures | None = None):
        self.X = np.asarray(X, dtype=float)
        self.depth, self.bias = int(depth), bool(bias)
        N, d = self.X.shape
        self.families = []
        for level in range(2, self.depth + 1):
            k = points_per_feature(d, level, self.bias)
            if 1 <= k <= N:
                self.families.append((level, k, np.array(level_alphabet(level - 2), dtype=float)))
        if not self.families:
            raise ValueError(f"no dictionary family fits {N} points in d={d} at depth {depth}")
        self.rng = np.random.default_rng(random_state)
        self.info: dict[str, dict] = {}
        self.seeds = self._seed(neurons) if neurons is not None else None
        self.searched = {"random_draws_per_round": None, "local_search_steps": None,
                         "trained_neurons": 0 if self.seeds is None else self.seeds.n_trained,
                         "snapped_neurons": 0 if self.seeds is None else len(self.seeds.keys) - self.seeds.n_trained}

    def _seed(self, neurons: FoldFeatures) -> Seeds:
        """Columns of the trained neurons (features on ``X``'s coordinates, at most ``depth - 2`` offsets)
        as they are, rescaled to ``||w|| = 1`` (zero ones dropped), and snapped to the dictionary."""
        N, d = self.X.shape
        neurons = neurons.with_offsets(self.depth - 2)
        norm = np.linalg.norm(neurons.W, axis=1)
        live = neurons[norm > 0]
        norm = norm[norm > 0]
        trained = FoldFeatures(live.W / norm[:, None], live.b / norm, live.C / norm[:, None])
        keys = [f"N{self.depth}:seed{i}" for i in range(trained.n)]
        for key, w, bb, c in zip(keys, trained.W, trained.b, trained.C):
            self.info[key] = {"id": key, "kind": "neuron", "depth": self.depth, "points": (), "labels": (),
                              "w": w.tolist(), "b": float(bb), "offsets": tuple(float(x) for x in c)}
        fam = len(self.families) - 1
        level, k, alphabet = self.families[fam]
        snapped = FoldFeatures.empty(d, self.depth - 2)
        if level == self.depth and k <= N:
            values = alphabet @ trained.C.T if self.depth > 2 else np.zeros((1, trained.n))   # (labels, m): s . c
            T = self.X @ trained.W.T + trained.b                                        # (N, m): w.x + b
            gap = np.abs(T[:, None, :] - values[None, :, :])                            # (N, labels, m)
            lab, dist = gap.argmin(axis=1), gap.min(axis=1)
            P = np.argsort(dist, axis=0)[:k].T                                          # (m, k)
            L = alphabet[np.take_along_axis(lab.T, P, axis=1)]                          # (m, k, depth-2)
            Ws, bs, Cs, valid = fold_parameters(self.X[P], L if self.depth > 2 else None, self.bias)
            idx = np.flatnonzero(valid)
            snapped = FoldFeatures(Ws[idx], bs[idx], Cs[idx].reshape(len(idx), self.depth - 2))
            keys += [self._register(fam, P[i], L[i], Ws[i], bs[i], Cs[i]) for i in idx]
        features = FoldFeatures.concat([trained, snapped])
        return Seeds(keys, features, features.values(self.X), trained.n)

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
        ``(A (N, m), keys, features, scores)``; keys are dictionary ids in text form."""
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
        rows = [(row[0], self._register(*row[1:7]), row[4], row[5], row[6], row[7]) for row in rows]
        if self.seeds is not None:
            sf, sA = self.seeds.features, self.seeds.A
            rows += [(float(abs(r @ sA[:, i])), key, sf.W[i], sf.b[i], sf.C[i], sA[:, i])
                     for i, key in enumerate(self.seeds.keys)]
        self.searched.update(random_draws_per_round=int(n_samples), local_search_steps=int(n_steps))
        rows.sort(key=lambda t: -t[0])
        keys, picked = set(), []
        for row in rows:
            if row[1] not in keys:
                keys.add(row[1])
                picked.append(row)
            if len(picked) == keep:
                break
        if not picked:
            return np.empty((len(self.X), 0)), [], FoldFeatures.empty(self.X.shape[1], self.depth - 2), np.empty(0)
        features = FoldFeatures(np.array([p[2] for p in picked]), np.array([p[3] for p in picked]),
                                np.array([p[4] for p in picked]).reshape(len(picked), self.depth - 2))
        log.debug("sampled %d columns, best score %.6g", n_samples, picked[0][0])
        return np.column_stack([p[5] for p in picked]), [p[1] for p in picked], features, \
            np.array([p[0] for p in picked])

    def _register(self, fam, points, labels, w, b, c) -> str:
        """Text id (the dictionary's form) of a sampled column; records its explanation."""
        level = self.families[fam][0]
        order = np.argsort(points)
        S = np.asarray(labels)[order].astype(int)
        nonzero = S.ravel()[S.ravel() != 0]
        if nonzero.size and nonzero[0] < 0:              # canonical up to the global sign
            S = -S
        pts = tuple(int(p) for p in np.asarray(points)[order])
        key = column_id(level, pts, S)
        self.info.setdefault(key, {"id": key, "kind": kind_of(level, S), "depth": level, "points": pts,
                                   "labels": label_text(S), "w": np.asarray(w).tolist(),
                                   "b": float(b), "offsets": tuple(float(x) for x in c[: level - 2])})
        return key


class SampledSource:
    """Candidate source for ``lasso.column_generation``: each pass adds the sampled columns with
    ``|A_j . r| > threshold`` among the ``keep`` best of ``sampler.propose``; its bound is the best score met
    (sampled or already in the working set), a lower bound of the dictionary's: never a certificate."""

    def __init__(self, sampler: Sampler, n_samples: int, keep: int):
        self.sampler, self.n_samples, self.keep = sampler, n_samples, keep

    def propose(self, ws, residual, beta: float, threshold: float, partial: bool) -> Proposal:
        A, keys, features, scores = self.sampler.propose(residual, self.n_samples, keep=self.keep)
        found = float(max(scores.max(initial=0.0), np.abs(residual @ ws.A).max(initial=0.0)))
        viol = scores > threshold
        added = ws.add(A[:, viol], [k for k, v in zip(keys, viol) if v], features[viol], "sampled")
        return Proposal(added, found)
