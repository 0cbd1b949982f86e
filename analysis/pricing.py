"""Implicit pricing: ``max_j |A_j . r|`` over a whole dictionary, block by block.

The matrix is never held: each block (runs of point sets, however scattered) is scored by one call of a
fused numba kernel. Safe screening works on cells (one point set with all its fold labelings, or a few
sets): a cell is skipped when ``c score(r_ref) + max_j ||A_j - mean A_j|| * ||r - c r_ref||`` is below the
caller's threshold, a sphere test around a multiple ``c`` (1, or the best one: ``_kernels.sphere_bounds``) of
the residual ``r_ref`` at which the cell was last scored (valid for centred residuals, ``sum(r) = 0``; the
skipped bounds still enter ``bound``). Cells scored at
the last residual of the previous beta carry over along a path (a sequential rule). The test
needs ``||r - r_ref||`` small against the cell's slack: at small beta, where a few percent of all
columns score within 10% of beta, it skips little unless the residual has nearly stopped moving.
The per-cell state (maximum, norm: float32 rounded up, so still bounds; the reference: int32) is 12 bytes a
cell, and a scorer returns the per-cell arrays of each block already reduced.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np
from tqdm.auto import tqdm

from . import _kernels
from .dictionary import Dictionary

log = logging.getLogger(__name__)

COLUMNS_PER_BLOCK = 1 << 14   # columns per call of the scorer, at most
MERGE_EVERY = 64              # blocks merged into the screen together (one scatter of their cells)
COLUMNS_PER_CELL = 16         # screening granularity: one point set (all its fold labelings) or a few


@dataclass
class Screen:
    """Per-cell state kept between pricing passes: a bound of the best score at a reference residual, the
    largest centred column norm (both float32, rounded up), and which stored residual was the reference."""

    block_max: np.ndarray
    block_norm: np.ndarray
    block_ref: np.ndarray
    refs: list = field(default_factory=list)


@dataclass
class PricingResult:
    max_score: float
    bound: float
    ids: np.ndarray
    scores: np.ndarray
    n_evaluated: int
    n_degenerate: int
    n_blocks_skipped: int                 # screening cells skipped
    screen: Screen
    complete: bool = True
    n_repeated: int = 0        # of n_degenerate: exactly dependent because points repeat (no column)
    max_scores: np.ndarray | None = None     # against residuals (K, N): the exact maximum of each


@dataclass(frozen=True)
class _Cells:
    """Cells of ``D``, family by family: cell ``first[f] + i`` holds sets ``i p .. min((i + 1) p, n_sets) - 1``
    of family ``f`` (``p = sets_per_cell[f]``), all its labelings. Nothing per cell is stored."""

    first: np.ndarray
    sets_per_cell: np.ndarray
    n_sets: np.ndarray
    n_labelings: np.ndarray

    @property
    def size(self) -> int:
        return int(self.first[-1])

    def blocks(self, runs: np.ndarray, starts: np.ndarray) -> list[tuple[int, np.ndarray, np.ndarray, int]]:
        """Blocks of cell runs ``runs[starts[g]:starts[g + 1]]`` (one family each) as ``(family, first sets, numbers
        of sets, sets per cell)``, one entry of the arrays per run."""
        fi = np.searchsorted(self.first, runs[:, 0], side="right") - 1
        p = self.sets_per_cell[fi]
        first = (runs[:, 0] - self.first[fi]) * p
        count = np.minimum((runs[:, 1] - self.first[fi]) * p, self.n_sets[fi]) - first
        return [(int(fi[lo]), first[lo:hi], count[lo:hi], int(p[lo])) for lo, hi in zip(starts[:-1], starts[1:])]

    def columns(self, mask: np.ndarray) -> int:
        """Number of columns in the cells where ``mask`` is true."""
        total = 0
        for fi, (lo, hi) in enumerate(zip(self.first[:-1], self.first[1:])):
            n = int(np.count_nonzero(mask[lo:hi]))
            if n:
                short = int(self.sets_per_cell[fi]) * int(hi - lo) - int(self.n_sets[fi])   # the last cell's lack
                n = n * int(self.sets_per_cell[fi]) - (short if mask[hi - 1] else 0)
            total += n * int(self.n_labelings[fi])
        return total


def _cells(D: Dictionary) -> _Cells:
    per = np.array([max(1, min(COLUMNS_PER_CELL, COLUMNS_PER_BLOCK) // f.n_labelings) for f in D.families],
                   dtype=np.int64)
    n_sets = np.array([f.n_sets for f in D.families], dtype=np.int64)
    first = np.concatenate([[0], np.cumsum(-(-n_sets // per))]).astype(np.int64)
    return _Cells(first, per, n_sets, np.array([f.n_labelings for f in D.families], dtype=np.int64))


def _sphere_bounds(screen: Screen, refs: np.ndarray) -> np.ndarray:
    """A sphere bound of every cell (float32, rounded up; infinite where never scored or not a number): the smaller
    of ``max + norm * ||r - r_ref||`` and the bound around the best multiple of ``r_ref``, in one compiled loop over
    the cells (``_kernels.sphere_bounds``; ``refs`` from ``_ref_geometry``)."""
    est = np.empty(screen.block_max.size, dtype=np.float32)
    _kernels.sphere_bounds(screen.block_max, screen.block_norm, screen.block_ref, refs, est)
    return est


def gamma64(n: int) -> float:
    """``gamma_n = n u / (1 - n u)``, Higham's bound of ``n`` float64 roundings (``u = 2^-53``)."""
    return n * 2.0 ** -53 / (1 - n * 2.0 ** -53)


def _ref_geometry(r: np.ndarray, refs) -> np.ndarray:
    """``(||r - q||, ||q||, p, ||r - p q||, x)`` of each stored residual ``q`` (``p = r . q / ||q||^2`` as rounded, 0
    for ``q = 0``), then ``(0, ||r||, 1, 0, 0)`` for ``r`` itself. ``x = 8 gamma_(N+2) ||r|| ||q||`` bounds twice the
    cross term ``|q . (r - p q)|`` that the rounding of ``p`` leaves (``|p - r.q/||q||^2| ||q||^2 <= 4 gamma_(N+2)
    ||r|| ||q||``), which ``||r - c q||^2 = ||r - p q||^2 + (c - p)^2 ||q||^2 - 2 (c - p) q . (r - p q)`` contains."""
    gamma = gamma64(r.size + 2)
    norm_r = float(np.linalg.norm(r))
    out = np.zeros((len(refs) + 1, 5))
    for i, q in enumerate(refs):
        a2 = float(q @ q)
        p = float(r @ q) / a2 if a2 > 0 else 0.0
        out[i] = np.linalg.norm(r - q), np.sqrt(a2), p, np.linalg.norm(r - p * q), 8 * gamma * norm_r * np.sqrt(a2)
    out[-1] = 0.0, norm_r, 1.0, 0.0, 0.0
    return out


def _aranges(starts, counts, step: int = 1) -> np.ndarray:
    """``starts[i] + step * arange(counts[i])`` for every ``i``, concatenated (int64, no Python loop)."""
    counts = np.asarray(counts, dtype=np.int64)
    before = np.cumsum(counts) - counts
    return np.repeat(np.asarray(starts, dtype=np.int64) - step * before, counts) + step * np.arange(int(counts.sum()))


def _runs(cells: _Cells, need: np.ndarray) -> np.ndarray:
    """The runs ``[c0, c1)`` (rows of an int64 array) of needed cells, family by family, each within one family."""
    out = [np.empty((0, 2), dtype=np.int64)]
    for fi in range(cells.first.size - 1):
        lo, hi = int(cells.first[fi]), int(cells.first[fi + 1])
        edges = np.flatnonzero(np.diff(need[lo:hi].view(np.int8), prepend=np.int8(0), append=np.int8(0)))
        out.append(lo + edges.reshape(-1, 2))
    return np.concatenate(out).astype(np.int64)


def _plan_blocks(cells: _Cells, runs: np.ndarray, est: np.ndarray | None = None):
    """Runs of needed cells grouped into blocks of one family and at most ``COLUMNS_PER_BLOCK`` columns (runs cut
    where needed), each block scored by one call of the kernel however scattered its cells: ``(runs, starts)``,
    block ``g`` made of rows ``starts[g]:starts[g + 1]``. With ``est`` (per cell), blocks by decreasing maximum of
    ``est``, each family's runs taken in that order; else in the order of the cells."""
    if not len(runs):
        return runs, np.zeros(1, dtype=np.int64)
    fi = np.searchsorted(cells.first, runs[:, 0], side="right") - 1
    order = np.lexsort((-_block_max(est, runs), fi)) if est is not None else np.argsort(runs[:, 0], kind="stable")
    runs, fi = runs[order], fi[order]
    n = runs[:, 1] - runs[:, 0]
    per = np.maximum(1, COLUMNS_PER_BLOCK // (cells.sets_per_cell * cells.n_labelings))[fi]   # cells per block
    end = np.cumsum(n)
    seg = np.concatenate([[0], end[:-1]])                  # cells before each run, restarted at each family
    seg -= np.maximum.accumulate(np.where(np.diff(fi, prepend=-1) != 0, seg, 0))
    g0, g1 = seg // per, (seg + n - 1) // per                # the blocks each run falls in
    pieces = g1 - g0 + 1
    row = np.repeat(np.arange(n.size), pieces)
    g = _aranges(g0, pieces)
    lo = np.maximum(seg[row], g * per[row]) - seg[row]
    hi = np.minimum(seg[row] + n[row], (g + 1) * per[row]) - seg[row]
    out = np.stack([runs[row, 0] + lo, runs[row, 0] + hi], axis=1)
    starts = np.flatnonzero(np.diff(fi[row], prepend=-1) | np.diff(g, prepend=-1))
    if est is not None:
        rank = np.argsort(-np.maximum.reduceat(_block_max(est, out), starts), kind="stable")
        sizes = np.diff(np.append(starts, row.size))[rank]
        take = _aranges(starts[rank], sizes)
        out, starts = out[take], np.cumsum(sizes) - sizes
    return out, np.append(starts, row.size).astype(np.int64)


def _block_max(v: np.ndarray, plan: np.ndarray) -> np.ndarray:
    """``max v[c0:c1]`` of each block ``[c0, c1)`` of ``plan`` (non-empty, disjoint, any order), by one ``reduceat``
    over the span of the blocks only (between two blocks it also reduces their gap: linear in the span)."""
    order = np.argsort(plan[:, 0], kind="stable")
    lo = int(plan[order[0], 0])
    part = v[lo: int(plan[order[-1], 1])]
    out = np.empty(len(plan), dtype=v.dtype)
    out[order] = np.maximum.reduceat(part, (plan[order] - lo).ravel()[:-1])[::2]   # the last block: to the end
    return out


def _merge_top(ids, scores, new_ids, new_scores, top_k):
    ids = np.concatenate([ids, new_ids])
    scores = np.concatenate([scores, new_scores])
    if scores.size > top_k:
        keep = np.argpartition(-scores, top_k - 1)[:top_k]
        ids, scores = ids[keep], scores[keep]
    return ids, scores


class Block(NamedTuple):
    """Summary of one scored block, all ``price`` merges: per cell (one residual only), an upper bound of its
    best score and (when asked) of its largest centred column norm, float32 rounded up; the counts of valid,
    degenerate (of which exactly dependent through repeated points) and negative-offset columns, the
    columns above the threshold, the ids and exact scores of the best ``top_k`` columns above ``keep``, and
    the exact best score of the block."""

    cell_max: np.ndarray
    cell_norm: np.ndarray
    n_valid: int
    n_degenerate: int
    n_repeated: int
    n_negative: int
    n_found: int
    ids: np.ndarray
    scores: np.ndarray
    best: float
    bests: np.ndarray | None = None       # with residuals R (K, N): the exact best score of each


def score_blocks(D: Dictionary, r: np.ndarray, blocks, want_norms, threshold: float | None = None,
                 keep: float | None = None, top_k: int = 256, exact: float | None = None, prescreen: bool = True):
    """``Block`` summaries of blocks ``(family, first set, count[, sets per cell])`` of ``D`` against ``r``, in this
    process (cells of one set when not given; no per-cell arrays for residuals ``r`` (K, N)):
    scores ``|A_j . r|`` (``max_q |A_j . r_q|`` for residuals ``r`` (K, N)) by ``_kernels.score_block_multi``
    (codes -1 degenerate, -3 repeated points, -2 negative offset), reduced to what ``price`` merges; ``keep``
    (default ``threshold``) selects the returned columns.
    With ``prescreen``, the kernel's float32 pre-screen (exact scores above ``exact``, default ``keep``, exact
    maximum, upper bounds within ``_kernels._bound32``'s radius elsewhere: so a column kept between ``keep`` and a
    higher ``exact`` may carry such a bound) unless every score is needed (no ``keep`` and ``top_k > 1``)."""
    keep = threshold if keep is None else keep
    exact = keep if exact is None else exact
    floor = np.nan if not prescreen else exact if exact is not None else np.inf if top_k <= 1 else np.nan
    _kernels.start_threads()
    R = np.ascontiguousarray(r, dtype=float).reshape(-1, D.n_points)
    X = D.X if D.X.flags.aligned else np.array(D.X)        # unpickled from a Dask frame, X may be unaligned
    multi = np.ndim(r) == 2
    keep64, threshold64 = (np.nan if v is None else float(v) for v in (keep, threshold))
    for (fi, start, count, *per), wn in zip(blocks, want_norms):
        f = D.families[fi]
        start, count = np.atleast_1d(start), np.atleast_1d(count)
        s, norms, bests = _kernels.score_block_multi(X, R, f.labels, D.bias, f.k, start, count, D.binom, D.tol,
                                                     bool(wn), floor)
        cell_max, cell_norm, (n_ok, n_neg, n_rep, found), pick, ids = _kernels.summarise_block(
            s, norms, start.astype(np.int64), count.astype(np.int64), per[0] if per else 1, f.offset, not multi,
            bool(wn) and not multi, keep64, threshold64)
        s = s.ravel()
        if pick.size > top_k:
            top = np.argpartition(-s[pick], top_k - 1)[:top_k]
            pick, ids = pick[top], ids[top]
        yield Block(cell_max, cell_norm, int(n_ok), int(s.size - n_ok - n_neg), int(n_rep), int(n_neg), int(found),
                    ids, s[pick], float(bests.max()), bests if multi else None)


def price(D: Dictionary, r, top_k: int = 256, threshold: float | None = None,
          screen: Screen | None = None, stop_after: int | None = None,
          progress: bool = False, scorer=None, collect: float | None = None) -> PricingResult:
    """Score every column of ``D`` against the residual ``r``: ``|A_j . r|``.

    Returns the largest scores (only those above ``threshold`` when given), the exact maximum
    over evaluated columns and a rigorous bound over all of them (skipped cells included).
    Residuals ``r`` (K, N), each divided by its threshold: scores are ``max_q |A_j . r_q|``, ``max_scores``
    the exact maximum of each residual (column parameters computed once for all), no cell is skipped and
    ``screen`` is left as it was.
    ``stop_after`` (partial pricing, with ``threshold``): visit blocks by decreasing screening
    bound and stop once that many violating columns are found; the result is then marked
    ``complete=False`` and its ``bound`` is infinite. ``collect`` (below ``threshold``) also returns
    the columns scoring above it among those evaluated (near-violators); screening still uses ``threshold``.

    Three stages: the screening plan (which cells must be evaluated, grouped into blocks, in which
    order), the evaluation of those blocks by ``scorer`` (``score_blocks`` in this process by default;
    any callable with its signature yielding one ``Block`` per block in order, e.g. one that runs on
    other processes (``analysis.parallel``), given ``scorer.batch`` blocks per call), and the merge of
    their summaries into the result; a complete pass checks that evaluated, degenerate, negative-offset
    and screened columns add up to the whole dictionary.
    """
    r = np.ascontiguousarray(r, dtype=float)
    multi = r.ndim == 2
    if r.shape[-1:] != (D.n_points,) or r.ndim > 2 or not r.size:
        raise ValueError(f"residual has shape {r.shape}, expected ({D.n_points},) or (K, {D.n_points})")
    scorer = score_blocks if scorer is None else scorer
    batch = max(1, int(getattr(scorer, "batch", 1)))
    cells = _cells(D)
    nc = cells.size
    if screen is None or len(screen.block_max) != nc:
        screen = Screen(np.full(nc, np.inf, dtype=np.float32), np.full(nc, np.inf, dtype=np.float32),
                        np.full(nc, -1, dtype=np.int32))
    centred = not multi and abs(r.sum()) <= 1e-9 * (1.0 + np.abs(r).sum())
    geometry = None                                   # several residuals: no screening
    if not multi:
        geometry = _ref_geometry(r, screen.refs)
        screen.refs.append(r.copy())
    ref_now = len(screen.refs) - 1

    # 1. the plan: cells whose sphere bound cannot exceed the threshold are skipped
    screening = threshold is not None and centred
    est = _sphere_bounds(screen, geometry) if screening else None
    # compared in float64: against a Python float NumPy would round the threshold to float32, maybe up
    skip = est <= np.float64(threshold) if screening else np.zeros(nc, dtype=bool)
    runs = _runs(cells, ~skip)
    by_bound = stop_after is not None and screening and len(runs)      # by decreasing bound
    plan, groups = _plan_blocks(cells, runs, est if by_bound else None)
    bound = float(np.max(est, where=skip, initial=0.0)) if screening else 0.0
    n_skip = int(skip.sum())
    keep = threshold if collect is None or threshold is None else min(collect, threshold)

    # 2. evaluation in batches, 3. merge
    ids = np.empty(0, dtype=np.int64)
    scores = np.empty(0)
    max_score = 0.0
    max_scores = np.zeros(r.shape[0] if multi else 1)
    n_eval = n_degen = n_repeat = n_negative = n_found = 0
    bar = tqdm(total=D.n_candidates, desc="pricing", unit="col", unit_scale=True,
               disable=not progress, leave=False)
    n_skip_cols = cells.columns(skip)
    bar.update(n_skip_cols)
    complete = True
    n_groups = groups.size - 1
    run_norm = _block_max(screen.block_norm, plan) if n_groups and not multi else None   # its cells are set once
    held: list = []                                   # blocks merged, not yet written to the screen
    found_ids: list = []                              # their columns, not yet merged into the best top_k

    def flush():
        """Write the held blocks' cells to the screen (consecutive plan rows: one scatter each) and merge their
        columns into the best ``top_k``."""
        nonlocal ids, scores
        if held and not multi:
            rows = plan[held[0][0]: held[-1][1]]
            at = _aranges(rows[:, 0], rows[:, 1] - rows[:, 0])
            screen.block_max[at] = np.concatenate([b.cell_max for _, _, _, b in held])
            screen.block_ref[at] = ref_now
            wn = [w for _, _, w, _ in held]
            if any(wn):
                mask = np.repeat(wn, [b.cell_max.size for _, _, _, b in held])
                screen.block_norm[at[mask]] = np.concatenate([b.cell_norm for _, _, w, b in held if w])
        if found_ids:
            ids, scores = _merge_top(ids, scores, *map(np.concatenate, zip(*found_ids)), top_k)
        held.clear()
        found_ids.clear()

    for lo in range(0, n_groups, batch):
        if stop_after is not None and n_found >= stop_after:
            complete = False
            break
        g = groups[lo: lo + batch + 1]
        blocks = cells.blocks(plan[g[0]: g[-1]], g - g[0])
        want = [False] * len(blocks) if multi else \
            np.isinf(np.maximum.reduceat(run_norm[g[0]: g[-1]], g[:-1] - g[0])).tolist()
        done = scorer(D, r, blocks, want, threshold, keep, top_k)
        n_ids = 0
        for pos, (a, z, wn, b) in enumerate(zip(g[:-1], g[1:], want, done)):
            if pos and stop_after is not None and n_found >= stop_after:
                complete = False
                break
            held.append((a, z, wn, b))
            n_degen += b.n_degenerate
            n_repeat += b.n_repeated
            n_negative += b.n_negative
            n_eval += b.n_valid
            best = b.best
            max_score = max(max_score, best)
            max_scores = np.maximum(max_scores, b.bests if multi else best)
            bound = max(bound, best)
            n_found += b.n_found
            if b.ids.size:
                found_ids.append((b.ids, b.scores))
                n_ids += b.ids.size
            if len(held) == MERGE_EVERY or n_ids > 4 * top_k:
                flush()
                n_ids = 0
            bar.update(b.n_valid + b.n_degenerate + b.n_negative)
        flush()
        if not complete:
            break
    covered = n_eval + n_degen + n_negative + n_skip_cols
    if complete and covered != D.n_candidates:        # a scorer never drops blocks silently
        raise RuntimeError(f"pricing pass covered {covered:,} of {D.n_candidates:,} columns")
    bar.close()
    if not complete:
        bound = np.inf
    rank = np.argsort(-scores, kind="stable")
    log.debug("priced %s columns (%d cells skipped): max %.6g, bound %.6g", f"{n_eval:,}", n_skip, max_score, bound)
    return PricingResult(max_score, bound, ids[rank], scores[rank], n_eval, n_degen, n_skip, screen, complete,
                         n_repeat, max_scores if multi else None)
