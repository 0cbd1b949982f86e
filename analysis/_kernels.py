"""Numba kernels: lexicographic combinations, lifted cross products and fused column pricing.

One column is a set of k training points (a combination, by lexicographic rank) with a fold
labeling; its parameters are the generalized cross product of the lifted points
``[x_i; 1; -s_i]``, normalised to ``||w|| = 1`` and ``c >= 0`` (``geometry.normalize_parameters``
is the numpy twin used for the reference tests).
"""
from __future__ import annotations

import os
import threading
import time

import numpy as np
from numba import njit, prange

VALID, DEGENERATE, NEGATIVE, REPEATED = 1, 0, -1, 2     # status of one column (``_lifted_params``)


def binomial_table(n: int, k: int) -> np.ndarray:
    """``T[a, j] = C(a, j)`` for ``a <= n``, ``j <= k`` (int64; exact for the sizes we enumerate)."""
    T = np.zeros((n + 1, k + 1), dtype=np.int64)
    T[:, 0] = 1
    for a in range(1, n + 1):
        for j in range(1, min(a, k) + 1):
            T[a, j] = T[a - 1, j - 1] + T[a - 1, j]
    return T


@njit(cache=True)
def _unrank(rank, n, k, binom, out):
    """Write the combination of lexicographic ``rank`` among C(n, k) into ``out[:k]``."""
    x = 0
    for i in range(k):
        c = x
        while True:
            cnt = binom[n - 1 - c, k - 1 - i]
            if rank < cnt:
                break
            rank -= cnt
            c += 1
        out[i] = c
        x = c + 1


@njit(cache=True, inline='always')
def _next_comb(a, n, k):
    """Advance ``a`` to the next combination in lexicographic order; False after the last."""
    i = k - 1
    while i >= 0 and a[i] == n - k + i:
        i -= 1
    if i < 0:
        return False
    a[i] += 1
    for j in range(i + 1, k):
        a[j] = a[j - 1] + 1
    return True


@njit(cache=True)
def _same(M, i, j, lo, hi):
    for t in range(lo, hi):
        if M[i, t] != M[j, t]:
            return False
    return True


@njit(cache=True)
def _repeats_force_rank_deficiency(M, k, n_point_cols):
    """Exact test that the lifted rows ``M[:k] = [x_i, 1, -s_i]`` are dependent because points repeat:
    a group of ``g`` equal points with ``l`` distinct labels spans at most ``1 + min(g, l, m + 1) - 1``
    dimensions; if these bounds sum to less than ``k``, the rows are dependent (no rounding involved)."""
    width = M.shape[1]
    m = width - n_point_cols
    bound = 0
    seen = np.zeros(k, dtype=np.bool_)
    for i in range(k):
        if seen[i]:
            continue
        size = 0
        n_lab = 0
        for j in range(i, k):
            if seen[j] or not _same(M, i, j, 0, n_point_cols):
                continue
            seen[j] = True
            size += 1
            new = True
            for q in range(i, j):
                if _same(M, i, q, 0, n_point_cols) and _same(M, q, j, n_point_cols, width):
                    new = False
                    break
            if new:
                n_lab += 1
        bound += 1 + min(size - 1, m, n_lab - 1)
    return bound < k


@njit(cache=True)
def _lifted_params(X, pts, labels, lab, bias, tol, M, minor, piv, v, w, c):
    """Parameters of one column into ``w``, ``c``; returns ``(status, b)``: ``VALID``, ``DEGENERATE``
    (``||w|| <= tol`` times the Hadamard bound of the lifted points: rank-deficient to tolerance),
    ``REPEATED`` (repeated points make the lifted points exactly dependent: provably no column) or ``NEGATIVE``
    (the signs cannot make every ``c >= 0``: not a feature of this depth)."""
    k = pts.shape[0]
    d = X.shape[1]
    m = labels.shape[2]
    width = k + 1
    hadamard = 1.0
    for i in range(k):
        s = 0.0
        for t in range(d):
            M[i, t] = X[pts[i], t]
            s += M[i, t] * M[i, t]
        col = d
        if bias:
            M[i, col] = 1.0
            s += 1.0
            col += 1
        for l in range(m):
            M[i, col + l] = -labels[lab, i, l]
            s += M[i, col + l] * M[i, col + l]
        hadamard *= np.sqrt(s)
    for i in range(width):
        for row in range(k):
            jj = 0
            for j in range(width):
                if j != i:
                    minor[row, jj] = M[row, j]
                    jj += 1
        sgn = 1.0 if i % 2 == 0 else -1.0
        v[i] = sgn * _lu(minor, k, piv)
    nw = 0.0
    for t in range(d):
        nw += v[t] * v[t]
    nw = np.sqrt(nw)
    if not nw > tol * hadamard:
        return (REPEATED if _repeats_force_rank_deficiency(M, k, width - m) else DEGENERATE), 0.0
    b = v[d] / nw if bias else 0.0
    off = d + (1 if bias else 0)
    ctol = 1e-12 * (1.0 + abs(b))
    sign = 1.0
    for l in range(m):
        cl = v[off + l] / nw
        if abs(cl) > ctol:
            if cl < 0:
                sign = -1.0
            break
    for t in range(d):
        w[t] = sign * v[t] / nw
    b *= sign
    for l in range(m):
        cl = sign * v[off + l] / nw
        if cl < -ctol:
            return NEGATIVE, 0.0
        c[l] = max(cl, 0.0)
    return VALID, b


@njit(cache=True, parallel=True)
def params_for(X, points, labs, labels, bias, tol):
    """Parameters ``(W, b, C, valid)`` of the columns given by point sets and labeling indices (in 64 chunks, each
    with its own scratch, on numba's threads)."""
    n = points.shape[0]
    k = points.shape[1]
    d = X.shape[1]
    m = labels.shape[2]
    W = np.zeros((n, d))
    B = np.zeros(n)
    C = np.zeros((n, m))
    valid = np.zeros(n, dtype=np.bool_)
    n_chunks = min(n, 64)
    for ch in prange(n_chunks):
        M = np.empty((max(k, 1), k + 1))
        minor = np.empty((max(k, 1), max(k, 1)))
        piv = np.empty(max(k, 1), dtype=np.int64)
        v = np.empty(k + 1)
        for j in range(n * ch // n_chunks, n * (ch + 1) // n_chunks):
            status, b = _lifted_params(X, points[j], labels, labs[j], bias, tol, M, minor, piv, v, W[j], C[j])
            valid[j] = status == VALID
            B[j] = b
    return W, B, C, valid


@njit(cache=True, parallel=True)
def unrank_many(ranks, n, k, binom):
    """Point sets (len(ranks), k) of the given lexicographic ranks."""
    out = np.empty((ranks.shape[0], k), dtype=np.int64)
    for j in prange(ranks.shape[0]):
        _unrank(ranks[j], n, k, binom, out[j])
    return out


@njit(cache=True, fastmath=True)
def _column_values(XT, w, b, c, u):
    """``u = phi(x_i)`` for one column (``XT`` is X transposed), in passes (any d and depth)."""
    d, n_pts = XT.shape
    for i in range(n_pts):
        u[i] = b
    for t in range(d):
        wt = w[t]
        for i in range(n_pts):
            u[i] += wt * XT[t, i]
    for l in range(c.shape[0]):
        cl = c[l]
        for i in range(n_pts):
            u[i] = abs(u[i]) - cl
    for i in range(n_pts):
        u[i] = abs(u[i])


@njit(cache=True, fastmath=True, inline='always')
def _fold2(s, m, c0, c1):
    """``| |s| - c0 | - c1 |`` truncated to the first ``m`` offsets."""
    if m >= 1:
        s = abs(s) - c0
    if m >= 2:
        s = abs(s) - c1
    return abs(s)


@njit(cache=True, fastmath=True, inline='always')
def _fused_dot(x0, x1, x2, r, w0, w1, w2, b, c0, c1, d, m, n, moments):
    """``(sum_i r_i phi_i, sum_i phi_i, sum_i phi_i^2)`` over the first ``n`` points, one vectorised pass (d <= 3,
    m <= 2 fold offsets), in the arguments' precision (float64, or float32 for the pre-screen); the moments are
    zero unless ``moments``."""
    acc = w0 - w0                  # zero of the arguments' type (w is a unit vector: finite)
    s1 = acc
    s2 = acc
    if d == 1:
        for i in range(n):
            a = _fold2(b + w0 * x0[i], m, c0, c1)
            acc += r[i] * a
            if moments:
                s1 += a
                s2 += a * a
    elif d == 2:
        for i in range(n):
            a = _fold2(b + w0 * x0[i] + w1 * x1[i], m, c0, c1)
            acc += r[i] * a
            if moments:
                s1 += a
                s2 += a * a
    else:
        for i in range(n):
            a = _fold2(b + w0 * x0[i] + w1 * x1[i] + w2 * x2[i], m, c0, c1)
            acc += r[i] * a
            if moments:
                s1 += a
                s2 += a * a
    return acc, s1, s2


@njit(cache=True, fastmath=True, inline='always')
def _column_dot(XT, r, w, b, c, u, want_norm):
    """``(sum_i r_i phi_i, ||phi - mean phi||)`` for one column (norm 0 unless ``want_norm``).

    One fused vectorised loop for d <= 3 and at most two fold offsets (LLVM unswitches the
    loop-invariant branches), passes over ``u`` otherwise.
    """
    d, n_pts = XT.shape
    m = c.shape[0]
    acc = 0.0
    s1 = 0.0
    s2 = 0.0
    if d > 3 or m > 2:
        _column_values(XT, w, b, c, u)
        for i in range(n_pts):
            acc += r[i] * u[i]
            s1 += u[i]
            s2 += u[i] * u[i]
    else:
        c0 = c[0] if m > 0 else 0.0
        c1 = c[1] if m > 1 else 0.0
        w0 = w[0]
        w1 = w[1] if d > 1 else 0.0
        w2 = w[2] if d > 2 else 0.0
        x0 = XT[0]
        x1 = XT[1] if d > 1 else XT[0]
        x2 = XT[2] if d > 2 else XT[0]
        acc, s1, s2 = _fused_dot(x0, x1, x2, r, w0, w1, w2, b, c0, c1, d, m, n_pts, want_norm)
    nrm = np.sqrt(max(s2 - s1 * s1 / n_pts, 0.0)) if want_norm else 0.0
    return acc, nrm


@njit(cache=True)
def _lu(A, k, piv):
    """In-place LU with partial pivoting of ``A[:k, :k]``; returns the determinant."""
    det = 1.0
    for col in range(k):
        p = col
        best = abs(A[col, col])
        for row in range(col + 1, k):
            if abs(A[row, col]) > best:
                best = abs(A[row, col])
                p = row
        piv[col] = p
        if best == 0.0:
            return 0.0
        if p != col:
            for j in range(k):
                tmp = A[col, j]
                A[col, j] = A[p, j]
                A[p, j] = tmp
            det = -det
        det *= A[col, col]
        for row in range(col + 1, k):
            A[row, col] /= A[col, col]
            for j in range(col + 1, k):
                A[row, j] -= A[row, col] * A[col, j]
    return det


@njit(cache=True)
def _lu_solve(A, k, piv, rhs):
    """Solve ``A x = rhs`` in place with the factors of ``_lu``."""
    for col in range(k):
        p = piv[col]
        if p != col:
            tmp = rhs[col]
            rhs[col] = rhs[p]
            rhs[p] = tmp
    for row in range(k):
        for j in range(row):
            rhs[row] -= A[row, j] * rhs[j]
    for row in range(k - 1, -1, -1):
        for j in range(row + 1, k):
            rhs[row] -= A[row, j] * rhs[j]
        rhs[row] /= A[row, row]


@njit(cache=True)
def _single_fold_setup(X, pts, bias, F, piv, Finv, rn0, rn1):
    """Invert ``F = [x_i, 1]`` (square) for one point set into ``Finv``; returns det F.
    ``rn0``/``rn1`` get the lifted row norms for a zero / non-zero label."""
    k = pts.shape[0]
    d = X.shape[1]
    for i in range(k):
        s = 0.0
        for t in range(d):
            F[i, t] = X[pts[i], t]
            s += F[i, t] * F[i, t]
        if bias:
            F[i, d] = 1.0
            s += 1.0
        rn0[i] = np.sqrt(s)
        rn1[i] = np.sqrt(s + 1.0)
    det = _lu(F, k, piv)
    if det != 0.0:
        for j in range(k):
            for i in range(k):
                Finv[i, j] = 1.0 if i == j else 0.0
            _lu_solve(F, k, piv, Finv[:, j])
    return det


@njit(cache=True, inline='always')
def _single_fold_batch(Finv, det, rn0, rn1, S, d, bias, tol, H, P, W, B, C, ok):
    """Depth-3 columns ``w.x_i + b = s_i c`` of one point set, for every labeling ``s`` (``S[:, lab]``) at
    once, labelings innermost so the loops vectorise: ``(w, b) = F^-1 s / ||.||``, ``c = 1 / ||.||``.

    The cross product of the lifted points is ``det F (F^-1 s, 1)``, so the degeneracy test is the one of
    ``_lifted_params``. ``ok[lab]`` False: ask ``_lifted_params`` (``F`` singular, e.g. a repeated point,
    can still give a feature with ``c = 0``).
    """
    k, n_lab = S.shape
    for lab in range(n_lab):
        H[lab] = 1.0
        C[lab] = 0.0
    for i in range(k):
        for lab in range(n_lab):
            H[lab] *= rn0[i] if S[i, lab] == 0.0 else rn1[i]
    for t in range(k):
        for lab in range(n_lab):
            P[t, lab] = 0.0
        for i in range(k):
            f = Finv[t, i]
            for lab in range(n_lab):
                P[t, lab] += f * S[i, lab]
    for t in range(d):
        for lab in range(n_lab):
            C[lab] += P[t, lab] * P[t, lab]
    for lab in range(n_lab):
        nw = np.sqrt(C[lab])
        ok[lab] = det != 0.0 and abs(det) * nw > tol * H[lab]
        H[lab] = nw if ok[lab] else 1.0                 # the norm from here on
        C[lab] = 1.0 / H[lab]
        B[lab] = P[d, lab] / H[lab] if bias else 0.0
    for t in range(d):
        for lab in range(n_lab):
            W[t, lab] = P[t, lab] / H[lab]


U32 = 2.0 ** -24            # unit roundoff of float32
TINY32 = 2.0 ** -120       # per-operation absolute error allowance for float32 underflow (64 x FLT_MIN)
PAD32 = 64                 # float32 point arrays padded to a multiple of this (the vector loop's step)
BIG32 = 1e15               # float32 evaluation only below this magnitude of |x|, |b|, c (no overflow)


@njit(cache=True, fastmath=True, inline='always')
def _column_values32(x0, x1, x2, w0, w1, w2, b, c0, c1, d, m, u):
    """``u_i = phi_i`` in float32 for every (padded) point, the values ``_fused_dot`` sums."""
    for i in range(u.shape[0]):
        u[i] = _fold2(b + w0 * x0[i] + w1 * x1[i] + w2 * x2[i], m, c0, c1)


@njit(cache=True, fastmath=True, inline='always')
def _moments32(u, n_pts):
    """``(sum_i u_i, sum_i u_i^2)`` over the first ``n_pts`` values ``u`` (``_column_values32``) in float32."""
    s1 = np.float32(0.0)
    s2 = np.float32(0.0)
    for i in range(n_pts):
        s1 += u[i]
        s2 += u[i] * u[i]
    return s1, s2


@njit(cache=True, inline='always')
def _gamma32(n):
    """``gamma_n = n u / (1 - n u)``, Higham's bound of ``n`` float32 roundings."""
    return n * U32 / (1.0 - n * U32)


@njit(cache=True, inline='always')
def _bound32(w, b, c, R, Q, xmax, g_sum, tiny, err):
    """Rigorous bounds ``err[k]`` of ``|float32 sum - exact sum|`` for one column and each residual ``k``
    (``_fused_dot`` or ``_column_values32`` then a dot, on data cast to float32), and ``max_i h_i``.

    With ``h_i = |b| + sum_t |w_t x_ti| + sum_l c_l`` (a bound of every intermediate of ``phi_i``) and any
    evaluation order: the casts, ``b + w.x`` and the folds cost ``gamma_(2d+2m+6) h_i``, the products and the
    sum ``gamma_N sum |r_i| h_i``; so ``g_sum (R (|b| + sum c) + sum_t |w_t| Q_t)`` with ``R = sum |r_i|``,
    ``Q_t = sum |r_i x_ti|`` and ``g_sum = 2 gamma_(N+2d+2m+8)`` (factor 2: safety, and the float64
    rounding), plus underflow: ``tiny (2d+2m+8 + max h + sum_t max |x_t|)`` per point (``|r_i| <= 1``).
    """
    off = abs(b)
    for l in range(c.shape[0]):
        off += c[l]
    hmax = off
    for t in range(w.shape[0]):
        hmax += abs(w[t]) * xmax[t]
    for k in range(R.shape[0]):
        s = R[k] * off
        for t in range(w.shape[0]):
            s += abs(w[t]) * Q[k, t]
        err[k] = g_sum * s + tiny * hmax
    return hmax


@njit(cache=True, inline='always')
def _norm_bound32(s1, s2, e_phi, n_pts):
    """Upper bound of the centred norm ``||phi - mean phi||`` from float32 moments (``_fused_dot``):
    ``||phi - mean|| <= ||phi32 - mean32|| + ||phi32 - phi||``, the first from ``s2 - s1^2 / n`` with the
    sums' relative errors (``gamma_(n+1)``, doubled) taken against it."""
    g = 2.0 * _gamma32(n_pts + 1)
    var = s2 / (1.0 - g) - s1 * s1 / ((1.0 + g) * (1.0 + g) * n_pts) + TINY32 * n_pts     # (+ underflow)
    return np.sqrt(max(var, 0.0)) + np.sqrt(n_pts) * e_phi


@njit(cache=True)
def sphere_bounds(block_max, block_norm, block_ref, refs, est):
    """``est[c] >=`` a bound of the scores at ``r`` of cell ``c`` (``m = block_max[c]``, ``n = block_norm[c]`` bounds
    of its scores and centred norms at the reference residual ``q``: ``refs[block_ref[c]] = (||r - q||, ||q||, p, e,
    x)``, ``r = p q + e`` with ``e`` orthogonal to ``q`` as a length, ``x`` from ``pricing._ref_geometry``):
    ``min(m + n ||r - q||, c m + n ||r - c q||)`` with the best scale ``c >= 0`` (where ``||q|| > 0``):
    ``|A_j . r| <= c |A_j . q| + ||A_j - mean A_j|| ||r - c q||`` for every ``c``, minimised by
    ``c = p - m e / (||q|| sqrt(n^2 ||q||^2 - m^2))``. Rounding: ``||r - q||`` is raised by ``2^-30`` of itself;
    ``||r - c q||`` is taken as ``sqrt(e^2 + ||q||^2 (c - p)^2) + sqrt(|c - p| x)`` (``x`` bounds twice the rounded
    ``p``'s cross term ``2 q . (r - p q)``) raised by ``2^-30`` of ``||r|| + c ||q||``; the value by ``2^-40`` of itself
    (float64 evaluation). Cast to float32 and, where the cast rounded down, raised by ``f (1 + 2^-23) + 2^-149`` (at
    least one float32 step, at most three); infinite where ``block_ref[c] < 0`` or the value is not a number (an
    infinite norm at distance 0). One loop over the cells (no fastmath: NaN tested, float32 rounding kept)."""
    up = np.float32(1.0 + 2.0 ** -23)
    tiny = np.float32(2.0 ** -149)
    for i in range(est.size):
        ref = block_ref[i]
        dist, a, p, e, x = refs[max(ref, 0)]
        m, n = np.float64(block_max[i]), np.float64(block_norm[i])
        v = n * (dist * (1.0 + 2.0 ** -30)) + m
        if a > 0.0 and n * a > m:
            c = max(0.0, p - m * e / (a * np.sqrt((n * a - m) * (n * a + m))))
            length = (np.sqrt(e * e + a * a * (c - p) * (c - p)) + np.sqrt(abs(c - p) * x)
                      + 2.0 ** -30 * (np.sqrt(e * e + a * a * p * p) + c * a))
            v = min(v, c * m + n * length)
        v *= 1.0 + 2.0 ** -40
        f = np.float32(v)
        if np.float64(f) < v:
            f = f * up + tiny
        est[i] = np.float32(np.inf) if ref < 0 or np.isnan(v) else f


def score_block(X, r, labels, bias, k, start, count, binom, tol, want_norms, floor=np.nan):
    """``score_block_multi`` for one residual ``r``: ``(scores, norms, best)``, ``best`` the largest score."""
    scores, norms, best = score_block_multi(X, np.ascontiguousarray(r, dtype=np.float64).reshape(1, -1), labels,
                                            bias, k, start, count, binom, tol, want_norms, floor)
    return scores, norms, best[0]


def score_block_multi(X, R, labels, bias, k, start, count, binom, tol, want_norms, floor=np.nan):
    """``max_q |A_j . R_q|`` over the residuals ``R`` (K, N) for the columns of combinations ``start ..
    start+count-1`` and every labeling, each column's parameters computed once for all K residuals; ``start`` and
    ``count`` may be arrays: runs of combinations scored in one call, their rows concatenated in order.

    Returns ``scores`` (count, n_lab), -1 where the point set is degenerate, -3 where repeated points
    make it exactly so, -2 where its signs give a negative fold offset (no feature); with ``want_norms``
    the centred column norms ``||A_j - mean(A_j)||`` (zeros otherwise); and the largest score of each
    residual (K,). With residuals divided by their thresholds, a score <= 1 certifies every one.

    ``floor`` (not NaN, d <= 3, at most two fold offsets): float32 pre-screen. A column is first scored in
    float32 with a rigorous error bound per residual (``_bound32``); against each residual whose upper bound
    reaches ``floor`` or the largest float64 score of that residual met so far in its chunk, it is scored again
    in float64 (the same value as alone and without ``floor``), and its entry is the largest of those scores and
    the other residuals' upper bounds; its norm is an upper bound from the float32 pass (``_norm_bound32``,
    moments summed in the dot's loop). So every score ``>= floor`` and each residual's maximum are exact, and
    every entry is at least the column's score. (Scoring again against every residual when one needed it cost
    the passes of a path about a fifth more: each chunk's first columns set new bests, residual by residual.)
    """
    # tested here: under fastmath (no NaN nor infinity assumed) the kernel's own isnan / isfinite fold away
    prescreen = not np.isnan(floor) and bool(np.isfinite(R).all())
    starts = np.atleast_1d(np.asarray(start, dtype=np.int64))
    ends = np.cumsum(np.atleast_1d(np.asarray(count, dtype=np.int64)))
    return _score_block_multi(X, R, labels, bias, k, starts, ends, binom, tol, want_norms,
                              float(floor) if prescreen else np.inf, prescreen)


@njit(cache=True, fastmath=True)
def prescreen32(XT, R, m, prescreen):
    """The float32 pre-screen's set-up for residuals ``R`` (K, N) against points ``XT`` (d, N), ``m`` fold offsets:
    ``(f32, scale, Rsum, Q, xmax, ops, g_sum, tiny, tiny_sum, r32, XT32)``. ``f32``: it applies (``prescreen``,
    d <= 3, m <= 2, some r != 0, points below ``BIG32``); each residual scaled by a power of two to max |r| <= 1
    (exact), the sums ``sum |r|`` and ``sum |r| |x_t|`` of the scaled residuals, ``max |x_t|``, the roundings of one
    point's term (and the casts) and the constants of ``_bound32``; residuals and points as float32, zero-padded to a
    multiple of ``PAD32`` (r = 0 there: no scalar remainder loop)."""
    d, n_pts = XT.shape
    K = R.shape[0]
    rmax = np.zeros(K)
    for q in range(K):
        rmax[q] = np.abs(R[q]).max() if n_pts else 0.0
    xmax = np.zeros(d)
    for t in range(d):
        xmax[t] = np.abs(XT[t]).max() if n_pts else 0.0
    f32 = (prescreen and d <= 3 and m <= 2 and n_pts > 0 and rmax.max() > 0.0
           and xmax.max() < BIG32)
    scale = np.ones(K)
    Rs = np.empty((K, n_pts))
    Rsum = np.zeros(K)
    Q = np.zeros((K, d))
    for q in range(K):
        if f32 and rmax[q] > 0.0:
            scale[q] = 2.0 ** -np.ceil(np.log2(rmax[q]))
        Rs[q] = R[q] * scale[q]
        Rsum[q] = np.abs(Rs[q]).sum()
        for t in range(d):
            Q[q, t] = (np.abs(Rs[q]) * np.abs(XT[t])).sum()
    n_pad = -(-n_pts // PAD32) * PAD32 if f32 else 0
    ops = 2 * d + 2 * m + 8
    g_sum = 2.0 * _gamma32(n_pad + ops)
    tiny = 2.0 * TINY32 * max(n_pad, 1)
    tiny_sum = tiny * (ops + xmax.sum())
    r32 = np.zeros((K, n_pad), dtype=np.float32)
    r32[:, :n_pts] = Rs[:, :n_pad]
    XT32 = np.zeros((d, n_pad), dtype=np.float32)
    XT32[:, :n_pts] = XT[:, :n_pad]
    return f32, scale, Rsum, Q, xmax, ops, g_sum, tiny, tiny_sum, r32, XT32


@njit(parallel=True, cache=True, fastmath=True)
def _score_block_multi(X, R, labels, bias, k, starts, ends, binom, tol, want_norms, floor, prescreen):
    """``score_block_multi`` (``prescreen``: the float32 pre-screen against ``floor``); row ``j`` of run ``i``
    (``ends[i-1] <= j < ends[i]``) is combination ``starts[i] + j - ends[i-1]``."""
    n_pts, d = X.shape
    count = ends[-1] if ends.size else 0
    K = R.shape[0]
    XT = np.ascontiguousarray(X.T)
    n_lab = labels.shape[0]
    m = labels.shape[2]
    scores = np.empty((count, n_lab))
    norms = np.zeros((count, n_lab))
    n_chunks = min(count, 64)
    best = np.zeros((max(n_chunks, 1), K))
    f32, scale, Rsum, Q, xmax, ops, g_sum, tiny, tiny_sum, r32, XT32 = prescreen32(XT, R, m, prescreen)
    n_pad = XT32.shape[1]
    g_phi = 2.0 * _gamma32(ops)
    x0 = XT32[0]
    x1 = XT32[1] if d > 1 else XT32[0]
    x2 = XT32[2] if d > 2 else XT32[0]
    single = m == 1 and k == d + (1 if bias else 0)
    S = np.ascontiguousarray(labels[:, :, 0].T) if single else np.zeros((k, n_lab))
    for ch in prange(n_chunks):
        lo = count * ch // n_chunks
        hi = count * (ch + 1) // n_chunks
        if lo >= hi:
            continue
        pts = np.empty(k, dtype=np.int64)
        run = np.searchsorted(ends, lo, side="right")
        _unrank(starts[run] + lo - (ends[run - 1] if run else 0), n_pts, k, binom, pts)
        M = np.empty((max(k, 1), k + 1))
        minor = np.empty((max(k, 1), max(k, 1)))
        v = np.empty(k + 1)
        w = np.empty(d)
        c = np.empty(m)
        u = np.empty(n_pts)
        u32 = np.empty(n_pad, dtype=np.float32)
        err = np.empty(K)
        upper = np.empty(K)
        piv = np.empty(k, dtype=np.int64)
        Ml = np.empty((max(k, 1), k + 1))
        piv2 = np.empty(max(k, 1), dtype=np.int64)
        Finv = np.empty((max(k, 1), max(k, 1)))
        rn0 = np.empty(k)
        rn1 = np.empty(k)
        H = np.empty(n_lab)
        P = np.empty((k, n_lab))
        Wb = np.empty((d, n_lab))
        Bb = np.empty(n_lab)
        Cb = np.empty(n_lab)
        ok = np.zeros(n_lab, dtype=np.bool_)
        top = np.zeros(K)
        for j in range(lo, hi):
            if single:
                det = _single_fold_setup(X, pts, bias, M, piv, Finv, rn0, rn1)
                _single_fold_batch(Finv, det, rn0, rn1, S, d, bias, tol, H, P, Wb, Bb, Cb, ok)
            for lab in range(n_lab):
                status = VALID
                if single and ok[lab]:
                    for t in range(d):
                        w[t] = Wb[t, lab]
                    b = Bb[lab]
                    c[0] = Cb[lab]
                else:
                    status, b = _lifted_params(X, pts, labels, lab, bias, tol, Ml, minor, piv2, v, w, c)
                if status != VALID:
                    scores[j, lab] = -1.0 if status == DEGENERATE else -3.0 if status == REPEATED else -2.0
                    continue
                bounded = False
                if f32 and abs(b) + c.sum() < BIG32:
                    w0 = np.float32(w[0])
                    w1 = np.float32(w[1]) if d > 1 else np.float32(0.0)
                    w2 = np.float32(w[2]) if d > 2 else np.float32(0.0)
                    c0f = np.float32(c[0]) if m > 0 else np.float32(0.0)
                    c1f = np.float32(c[1]) if m > 1 else np.float32(0.0)
                    b32 = np.float32(b)
                    hmax = _bound32(w, b, c, Rsum, Q, xmax, g_sum, tiny, err)
                    if K == 1:     # the moments in the same pass, over the real points only (r is 0 beyond)
                        dot32, s1, s2 = _fused_dot(x0, x1, x2, r32[0], w0, w1, w2, b32, c0f, c1f, d, m,
                                                   n_pts if want_norms else n_pad, want_norms)
                        upper[0] = (abs(np.float64(dot32)) + (err[0] + tiny_sum)) / scale[0]
                    else:              # four residuals a loop: four independent sums, which vectorise
                        _column_values32(x0, x1, x2, w0, w1, w2, b32, c0f, c1f, d, m, u32)
                        s1 = s2 = np.float32(0.0)
                        q = 0
                        while q < K:
                            step = 4 if q + 4 <= K else 1
                            a0 = a1 = a2 = a3 = np.float32(0.0)
                            if step == 4:
                                r0, r1, r2, r3 = r32[q], r32[q + 1], r32[q + 2], r32[q + 3]
                                for i in range(n_pad):
                                    ui = u32[i]
                                    a0 += r0[i] * ui
                                    a1 += r1[i] * ui
                                    a2 += r2[i] * ui
                                    a3 += r3[i] * ui
                            else:
                                r0 = r32[q]
                                for i in range(n_pad):
                                    a0 += r0[i] * u32[i]
                            sums = (a0, a1, a2, a3)
                            for t in range(step):
                                upper[q + t] = (abs(np.float64(sums[t])) + (err[q + t] + tiny_sum)) / scale[q + t]
                            q += step
                        if want_norms:
                            s1, s2 = _moments32(u32, n_pts)
                    if want_norms:     # an upper bound of the norm, whether the column is scored again or not
                        e_phi = g_phi * hmax + TINY32 * (ops + hmax + xmax.sum())    # |phi32 - phi|
                        norms[j, lab] = _norm_bound32(np.float64(s1), np.float64(s2), e_phi, n_pts)
                    bounded = True                  # its norm bound is set
                most = 0.0
                for q in range(K):
                    if bounded and upper[q] < floor and upper[q] < top[q]:
                        most = max(most, upper[q])  # below the floor and this residual's best so far: the bound
                        continue
                    dot, nrm = _column_dot(XT, R[q], w, b, c, u, want_norms and q == 0 and not bounded)
                    if q == 0 and not bounded:
                        norms[j, lab] = nrm
                    top[q] = max(top[q], abs(dot))
                    most = max(most, abs(dot))
                scores[j, lab] = most
            if j + 1 < ends[run]:
                _next_comb(pts, n_pts, k)
            elif j + 1 < hi:
                while ends[run] <= j + 1:              # the next non-empty run
                    run += 1
                _unrank(starts[run], n_pts, k, binom, pts)
        best[ch] = top
    out = np.zeros(K)
    for ch in range(best.shape[0]):
        for q in range(K):
            out[q] = max(out[q], best[ch, q])
    return scores, norms, out


@njit(cache=True, inline='always')
def _up32(v):
    """The smallest float32 ``>= v`` for ``v >= 0`` (infinite beyond float32; NaN stays NaN)."""
    f = np.float32(v)
    if np.float64(f) < v:
        f = np.nextafter(f, np.float32(np.inf))
    return f


@njit(cache=True, inline='always')
def _max_nan(m, v):
    """``max(m, v)`` that keeps a NaN once met (as NumPy's ``max``)."""
    return v if m == m and not (v <= m) else m


@njit(cache=True)
def summarise_block(s, norms, starts, counts, per, offset, cells, want_norms, keep, threshold):
    """What ``pricing.price`` merges of one scored block (``s``, ``norms``: ``score_block_multi``'s, rows of runs of
    ``counts[i]`` sets from set ``starts[i]``, cells of ``per`` sets from each run's first): with ``cells``, per cell
    ``max(0, max s)`` and (``want_norms``) ``max(0, max norms)`` as float32 rounded up (NaN kept); the numbers of
    entries ``s >= 0``, ``s == -2``, ``s == -3`` and, among those picked (``s > keep``, or ``s >= 0`` when ``keep`` is
    NaN), above ``threshold`` (all when NaN); the picked entries' flat indices and column ids
    ``offset + set * n_lab + labeling``. No fastmath: NaN tested, rounding kept."""
    n_lab = s.shape[1]
    n_cells = 0
    for i in range(counts.size):
        n_cells += -(-counts[i] // per)
    cell_max = np.zeros(n_cells if cells else 0, dtype=np.float32)
    cell_norm = np.zeros(n_cells if cells and want_norms else 0, dtype=np.float32)
    tally = np.zeros(4, dtype=np.int64)              # valid, negative offset, repeated points, found
    pick = np.empty(s.size, dtype=np.int64)
    ids = np.empty(s.size, dtype=np.int64)
    n_pick = 0
    row = 0
    cell = 0
    by_keep = keep == keep
    for i in range(counts.size):
        for first in range(0, counts[i], per):
            m = 0.0
            nm = 0.0
            for j in range(first, min(first + per, counts[i])):
                for lab in range(n_lab):
                    v = s[row, lab]
                    m = _max_nan(m, v)
                    if want_norms:
                        nm = _max_nan(nm, norms[row, lab])
                    if v >= 0.0:
                        tally[0] += 1
                    elif v == -2.0:
                        tally[1] += 1
                    elif v == -3.0:
                        tally[2] += 1
                    if (v > keep) if by_keep else (v >= 0.0):
                        pick[n_pick] = row * n_lab + lab
                        ids[n_pick] = offset + (starts[i] + j) * n_lab + lab
                        n_pick += 1
                        if not (threshold == threshold) or v > threshold:
                            tally[3] += 1
                row += 1
            if cells:
                cell_max[cell] = _up32(m)
                if want_norms:
                    cell_norm[cell] = _up32(nm)
            cell += 1
    return cell_max, cell_norm, tally, pick[:n_pick].copy(), ids[:n_pick].copy()


_started = []
_starting = threading.Lock()


def _others_running(samples: int = 5, every: float = 0.02) -> float:
    """Threads of other processes running or runnable now: the median over ``samples`` readings of ``/proc/loadavg``'s
    runnable count, less this reading thread (the 1-minute load average where that file is missing, e.g. macOS)."""
    try:
        counts = []
        for i in range(samples):
            if i:
                time.sleep(every)
            with open("/proc/loadavg") as f:
                counts.append(int(f.read().split()[3].split("/")[0]) - 1)
        return float(np.median(counts))
    except (OSError, ValueError, IndexError):
        return os.getloadavg()[0]


def start_threads() -> None:
    """Start numba's thread pool (on the first call only), with ``OMP_WAIT_POLICY=PASSIVE`` when the machine is
    already oversubscribed (as many other threads running now as cores, ``_others_running``) and the user did not
    set it: GNU OpenMP reads it when numba loads it. Spinning threads took the cores of a loaded machine from the
    working ones (2 threads 5x slower per CPU second than 1 at load 6), while on a quiet one passive waits made a
    complete N=300 pass 2.3x slower (17.0 s against 7.3 s, 2 cores; one thread 13.4 s), both measured. The test is
    of the moment, not the 1-minute load average, which a process that just ended (a previous benchmark case, a
    previous fit) keeps above the cores for a minute. The variable is set only while the pool starts, so OpenMP
    runtimes loaded later (torch's) keep their default."""
    if _started:
        return
    with _starting:                                  # fits in several threads (the pipeline's depths) start it once
        if _started:
            return
        unset = "OMP_WAIT_POLICY" not in os.environ and _others_running() >= (os.cpu_count() or 1)
        if unset:
            os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
        try:
            X = np.zeros((1, 1))
            # floor passed: numba's cache never matches an omitted NaN default (nan != nan), it would compile again
            score_block(X, np.zeros(1), np.zeros((1, 1, 0)), True, 1, 0, 1, binomial_table(1, 1), 1e-9, False,
                        np.nan)
        finally:
            if unset:
                os.environ.pop("OMP_WAIT_POLICY", None)
        _started.append(True)
