"""The sphere bound around the best multiple of a reference residual, against a materialised dictionary."""
from __future__ import annotations

import numpy as np
import pytest

from analysis.dictionary import Dictionary
from analysis.pricing import _cells, _ref_geometry, _sphere_bounds, price


def _cell_of(D, cells):
    """The cell of every materialised column (ids in order)."""
    out = []
    for fi, f in enumerate(D.families):
        p = int(cells.sets_per_cell[fi])
        out.append(cells.first[fi] + np.repeat(np.arange(f.n_sets) // p, f.n_labelings))
    return np.concatenate(out)


@pytest.mark.parametrize("scale, noise", [(0.3, 0.05), (1.0, 1e-3), (0.9, 0.3), (-0.5, 0.1), (0.0, 1.0)])
def test_scaled_sphere_bound_covers_every_column_and_is_never_weaker(scale, noise):
    """Per cell: the bound is at least every column's score at ``r`` (brute force), at most the plain sphere bound,
    and, for ``r`` near a multiple of the reference other than 1, far below it."""
    rng = np.random.default_rng(3)
    X = rng.normal(size=(13, 2))
    D = Dictionary(X, 3)
    A, ids = D.materialize()
    assert np.array_equal(ids, np.arange(D.n_candidates))
    q = rng.normal(size=13)
    q -= q.mean()
    r = scale * q + noise * rng.normal(size=13)
    r -= r.mean()
    first = price(D, q, top_k=1, threshold=0.0)                # scores every cell at q: its maxima and norms
    screen = first.screen
    est = _sphere_bounds(screen, _ref_geometry(r, screen.refs))
    cells = _cells(D)
    cell = _cell_of(D, cells)
    valid = np.abs(A).sum(axis=0) > 0
    scores = np.zeros(cells.size)
    np.maximum.at(scores, cell[valid], np.abs(A[:, valid].T @ r))
    assert np.all(est >= scores)
    plain = screen.block_max.astype(float) + screen.block_norm.astype(float) * np.linalg.norm(r - q)
    assert np.all(est <= np.nextafter(plain.astype(np.float32), np.float32(np.inf)))
    if abs(scale - 1) > 0.2 and noise < 0.2:
        assert np.median(est) < 0.8 * np.median(plain)


def test_price_skips_only_cells_that_cannot_violate_after_a_rescaled_residual():
    """A pass at ``r ~ 0.5 q`` with the screen of a pass at ``q``: the same violators as brute force, a rigorous
    bound, and most cells skipped (the plain sphere test, at distance ~||r||, would skip none)."""
    rng = np.random.default_rng(5)
    X = rng.normal(size=(16, 2))
    D = Dictionary(X, 3)
    A, ids = D.materialize()
    q = rng.normal(size=16)
    q -= q.mean()
    first = price(D, q, top_k=1, threshold=0.0)
    r = 0.5 * q + 1e-3 * rng.normal(size=16)
    r -= r.mean()
    brute = np.abs(A.T @ r)
    t = np.quantile(brute, 0.999)
    res = price(D, r, top_k=10**6, threshold=t, screen=first.screen)
    got = set(res.ids.tolist())                                 # ties at t: within rounding of the kernel's scores
    assert set(ids[brute > t + 1e-9].tolist()) <= got <= set(ids[brute > t - 1e-9].tolist())
    assert res.complete and res.bound >= brute.max() and res.n_blocks_skipped > 0.5 * _cells(D).size
