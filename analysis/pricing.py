"""Implicit pricing: ``max_j |A_j . r|`` over a whole dictionary, block by block.

The matrix is never held: each block of point sets is scored by a fused numba kernel. Safe
screening skips a block when ``score(r_ref) + max_j ||A_j - mean A_j|| * ||r - r_ref||`` (a bound
valid for centred residuals, ``sum(r) = 0``) is below the caller's threshold, so certification
passes late in column generation touch few blocks; the skipped bounds still enter ``bound``.
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

COLUMNS_PER_BLOCK = 1 << 14


@dataclass
class Screen:
    """Per-block state kept between pricing passes: best score at a reference residual, the
    largest centred column norm, and which stored residual was the reference."""

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
    n_blocks_skipped: int
    screen: Screen
    complete: bool = True


def _blocks(D: Dictionary):
    out = []
    for fi, f in enumerate(D.families):
        per = max(1, COLUMNS_PER_BLOCK // f.n_labelings)
        out += [(fi, s, min(per, f.n_sets - s)) for s in range(0, f.n_sets, per)]
    return out


def _merge_top(ids, scores, new_ids, new_scores, top_k):
    ids = np.concatenate([ids, new_ids])
    scores = np.concatenate([scores, new_scores])
    if scores.size > top_k:
        keep = np.argpartition(-scores, top_k - 1)[:top_k]
        ids, scores = ids[keep], scores[keep]
    return ids, scores


class Block(NamedTuple):
    """Summary of one scored block: its best score, largest centred column norm (nan unless asked),
    valid and degenerate columns, columns above the threshold, and the ids and scores of the best
    ``top_k`` of those."""

    best: float
    norm: float
    n_valid: int
    n_degenerate: int
    n_found: int
    ids: np.ndarray
    scores: np.ndarray


def score_blocks(D: Dictionary, r: np.ndarray, blocks, want_norms, threshold: float | None = None,
                 top_k: int = 256):
    """``Block`` summaries of blocks ``(family, first set, count)`` of ``D`` against ``r``, in this process:
    scores ``|A_j . r|`` (``_kernels.score_block``; degenerate columns excluded), reduced to what ``price`` merges."""
    for (fi, start, count), wn in zip(blocks, want_norms):
        f = D.families[fi]
        s, norms = _kernels.score_block(D.X, r, f.labels, D.bias, f.k, start, count, D.binom, D.tol, bool(wn))
        s = s.ravel()
        ok = s >= 0
        pick = np.flatnonzero(s > threshold) if threshold is not None else np.flatnonzero(ok)
        found = pick.size
        if found > top_k:
            pick = pick[np.argpartition(-s[pick], top_k - 1)[:top_k]]
        yield Block(float(s.max(initial=0.0)), float(np.max(norms, initial=0.0)) if wn else np.nan,
                    int(ok.sum()), int(s.size - ok.sum()), found, f.offset + start * f.n_labelings + pick, s[pick])


def price(D: Dictionary, r, top_k: int = 256, threshold: float | None = None,
          screen: Screen | None = None, stop_after: int | None = None,
          progress: bool = False, scorer=None) -> PricingResult:
    """Score every column of ``D`` against the residual ``r``: ``|A_j . r|``.

    Returns the largest scores (only those above ``threshold`` when given), the exact maximum
    over evaluated columns and a rigorous bound over all of them (skipped blocks included).
    ``stop_after`` (partial pricing, with ``threshold``): visit blocks by decreasing screening
    bound and stop once that many violating columns are found; the result is then marked
    ``complete=False`` and its ``bound`` is infinite.

    Three stages: the screening plan (which blocks must be evaluated, in which order), the
    evaluation of those blocks by ``scorer`` (``score_blocks`` in this process by default; any
    callable with its signature yielding one ``Block`` per block in order, e.g. one that runs on
    other processes (``analysis.parallel``), given ``scorer.batch`` blocks per call), and the merge
    of their summaries into the result; a complete pass checks that evaluated, degenerate and
    screened columns add up to the whole dictionary.
    """
    r = np.ascontiguousarray(r, dtype=float)
    if r.shape != (D.n_points,):
        raise ValueError(f"residual has shape {r.shape}, expected ({D.n_points},)")
    scorer = score_blocks if scorer is None else scorer
    batch = max(1, int(getattr(scorer, "batch", 1)))
    blocks = _blocks(D)
    if screen is None or len(screen.block_max) != len(blocks):
        nb = len(blocks)
        screen = Screen(np.full(nb, np.inf), np.full(nb, np.inf), np.full(nb, -1, dtype=np.int64))
    centred = abs(r.sum()) <= 1e-9 * (1.0 + np.abs(r).sum())
    dists = np.array([np.linalg.norm(r - ref) for ref in screen.refs] + [0.0])
    screen.refs.append(r.copy())
    ref_now = len(screen.refs) - 1

    # 1. the plan: blocks whose screening bound cannot exceed the threshold are skipped
    known = screen.block_ref >= 0
    est = np.full(len(blocks), np.inf)
    est[known] = screen.block_max[known] + screen.block_norm[known] * dists[screen.block_ref[known]]
    order = np.arange(len(blocks))
    if stop_after is not None and threshold is not None and centred:
        order = np.argsort(-est, kind="stable")
    skip = np.zeros(len(blocks), dtype=bool)
    if threshold is not None and centred:
        skip = est <= threshold
    todo = order[~skip[order]]
    bound = float(est[skip].max(initial=0.0))
    n_skip = int(skip.sum())

    # 2. evaluation in batches, 3. merge
    ids = np.empty(0, dtype=np.int64)
    scores = np.empty(0)
    max_score = 0.0
    n_eval = n_degen = n_found = 0
    bar = tqdm(total=D.n_candidates, desc="pricing", unit="col", unit_scale=True,
               disable=not progress, leave=False)
    n_skip_cols = sum(blocks[bi][2] * D.families[blocks[bi][0]].n_labelings for bi in np.flatnonzero(skip))
    bar.update(n_skip_cols)
    complete = True
    for lo in range(0, len(todo), batch):
        if stop_after is not None and n_found >= stop_after:
            complete = False
            break
        chunk = todo[lo: lo + batch]
        want = [not np.isfinite(screen.block_norm[bi]) for bi in chunk]
        done = scorer(D, r, [blocks[bi] for bi in chunk], want, threshold, top_k)
        for pos, (bi, wn, b) in enumerate(zip(chunk, want, done)):
            if pos and stop_after is not None and n_found >= stop_after:
                complete = False
                break
            n_degen += b.n_degenerate
            n_eval += b.n_valid
            max_score = max(max_score, b.best)
            bound = max(bound, b.best)
            screen.block_max[bi], screen.block_ref[bi] = b.best, ref_now
            if wn:
                screen.block_norm[bi] = b.norm
            n_found += b.n_found
            if b.ids.size:
                ids, scores = _merge_top(ids, scores, b.ids, b.scores, top_k)
            bar.update(b.n_valid + b.n_degenerate)
        if not complete:
            break
    if complete and n_eval + n_degen + n_skip_cols != D.n_candidates:   # a scorer never drops blocks silently
        raise RuntimeError(f"pricing pass covered {n_eval + n_degen + n_skip_cols:,} of {D.n_candidates:,} columns")
    bar.close()
    if not complete:
        bound = np.inf
    rank = np.argsort(-scores, kind="stable")
    log.debug("priced %s columns (%d blocks skipped): max %.6g, bound %.6g", f"{n_eval:,}", n_skip, max_score, bound)
    return PricingResult(max_score, bound, ids[rank], scores[rank], n_eval, n_degen, n_skip, screen, complete)
