"""Geometric algebra of the dictionary: cross products, hyperplanes, folds, reflections.

Conventions (docs/MATH.md sections 2-3): a feature of depth l is ``(w, b, c_1..c_{l-2})`` with
``||w|| = 1`` and ``c >= 0``; ``phi(x) = | ... | |w.x + b| - c_1 | ... - c_{l-2} |``.
All functions are vectorised over leading axes.
"""
from __future__ import annotations

import numpy as np

DEGENERATE_TOL = 1e-9


def cross_product(V: np.ndarray) -> np.ndarray:
    """Generalized cross product of k-1 vectors in R^k: ``c . x = det[x; a_1; ...; a_{k-1}]``.

    ``V`` has shape (..., k-1, k); returns (..., k). ``||c||`` is the (k-1)-volume they span.
    """
    V = np.asarray(V, dtype=float)
    *lead, rows, k = V.shape
    if rows != k - 1:
        raise ValueError(f"cross_product needs k-1 vectors in R^k, got {rows} vectors in R^{k}")
    out = np.empty((*lead, k))
    for i in range(k):
        minor = np.delete(V, i, axis=-1)
        out[..., i] = (-1) ** i * (np.linalg.det(minor) if rows else 1.0)
    return out


def lift(P: np.ndarray, labels: np.ndarray | None = None, bias: bool = True) -> np.ndarray:
    """Lifted points ``[x_i; 1; -s_i]`` (``[x_i; -s_i]`` without bias) of shape (..., k, d+bias+m)."""
    P = np.asarray(P, dtype=float)
    parts = [P]
    if bias:
        parts.append(np.ones(P.shape[:-1] + (1,)))
    if labels is not None and np.shape(labels)[-1]:
        parts.append(-np.broadcast_to(labels, P.shape[:-1] + (np.shape(labels)[-1],)).astype(float))
    return np.concatenate(parts, axis=-1)


def normalize_parameters(v: np.ndarray, d: int, bias: bool, H: np.ndarray | float = 1.0,
                         tol: float = DEGENERATE_TOL):
    """Split a lifted cross product ``v`` into unit-normal parameters ``(w, b, c, valid)``.

    ``valid`` is False for (nearly) degenerate sets, ``||w|| <= tol * H`` with ``H`` the
    Hadamard bound of the lifted points, and for sign patterns that cannot make every ``c >= 0``.
    """
    v = np.asarray(v, dtype=float)
    w = v[..., :d]
    b = v[..., d] if bias else np.zeros(v.shape[:-1])
    c = v[..., d + int(bias):]
    nw = np.linalg.norm(w, axis=-1)
    valid = nw > tol * np.asarray(H)
    scale = np.where(valid, 1.0 / np.where(valid, nw, 1.0), 0.0)
    w, b, c = w * scale[..., None], b * scale, c * scale[..., None]
    ctol = 1e-12 * (1.0 + np.abs(b))
    if c.shape[-1]:
        big = np.abs(c) > ctol[..., None]
        first = np.argmax(big, axis=-1)
        lead_c = np.take_along_axis(c, first[..., None], axis=-1)[..., 0]
        sign = np.where(big.any(axis=-1) & (lead_c < 0), -1.0, 1.0)
        w, b, c = w * sign[..., None], b * sign, c * sign[..., None]
        valid &= np.all(c >= -ctol[..., None], axis=-1)
        c = np.maximum(c, 0.0)
    return w, b, c, valid


def fold_parameters(P: np.ndarray, labels: np.ndarray | None = None, bias: bool = True,
                    tol: float = DEGENERATE_TOL):
    """Parameters ``(w, b, c, valid)`` of the fold feature through points ``P`` (..., k, d) on the
    level sets ``w.x_i + b = s_i . c`` given by ``labels`` (..., k, m): the cross product of the
    lifted points. With ``m = 0`` this is the hyperplane through the points."""
    P = np.asarray(P, dtype=float)
    M = lift(P, labels, bias)
    H = np.prod(np.linalg.norm(M, axis=-1), axis=-1)
    return normalize_parameters(cross_product(M), P.shape[-1], bias, H, tol)


def hyperplanes_through(P: np.ndarray, bias: bool = True, tol: float = DEGENERATE_TOL):
    """Unit-normal hyperplanes ``(w, b, valid)`` through d points (through d-1 points and the
    origin without bias); ``P`` has shape (..., k, d)."""
    w, b, _, valid = fold_parameters(P, None, bias, tol)
    return w, b, valid


def feature_values(X: np.ndarray, W: np.ndarray, b: np.ndarray, C: np.ndarray | None = None) -> np.ndarray:
    """``phi_j(x_n) = | ... | |w_j.x_n + b_j| - c_j1 | ... - c_jm |`` as an (n, m_features) array."""
    X = np.atleast_2d(np.asarray(X, dtype=float))
    U = X @ np.asarray(W, dtype=float).T + np.asarray(b, dtype=float)
    if C is not None and np.size(C):                  # no feature or no fold offset: nothing to fold
        for c in np.asarray(C, dtype=float).reshape(len(U.T), -1).T:
            U = np.abs(U) - c
    return np.abs(U)


def signed_distance(X: np.ndarray, w: np.ndarray, b: float) -> np.ndarray:
    """Signed distance ``(w.x + b) / ||w||`` of points to the hyperplane ``w.x + b = 0``."""
    w = np.asarray(w, dtype=float)
    return (np.asarray(X, dtype=float) @ w + b) / np.linalg.norm(w)


def reflect(X: np.ndarray, w: np.ndarray, b: float) -> np.ndarray:
    """Mirror images ``R_H x = x - 2 (w.x + b) w / ||w||^2`` across ``H = {w.x + b = 0}``."""
    w = np.asarray(w, dtype=float)
    X = np.asarray(X, dtype=float)
    return X - 2.0 * np.outer(X @ w + b, w) / (w @ w) if X.ndim == 2 else X - 2.0 * (X @ w + b) * w / (w @ w)
