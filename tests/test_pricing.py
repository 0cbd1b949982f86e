import os
import time

import numpy as np
import pytest

from analysis.dictionary import Dictionary
from analysis.pricing import price


def _setup(d, depth, bias=True, N=14, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(N, d))
    r = rng.normal(size=N)
    r -= r.mean()
    D = Dictionary(X, depth, bias)
    A, ids = D.materialize()
    return D, A, ids, r


@pytest.mark.parametrize("d,depth,bias", [(1, 3, True), (1, 4, True), (2, 2, True), (2, 3, True),
                                          (2, 3, False), (3, 3, True), (4, 2, True)])
def test_pricing_equals_brute_force(d, depth, bias):
    D, A, ids, r = _setup(d, depth, bias, N=10 if depth == 4 else 14)
    brute = np.abs(A.T @ r)
    res = price(D, r, top_k=7)
    assert res.complete and res.n_evaluated == len(ids)
    assert np.isclose(res.max_score, brute.max(), rtol=1e-12)
    assert np.allclose(res.scores, np.sort(brute)[::-1][:7], rtol=1e-12)
    pos = {c: i for i, c in enumerate(ids)}
    assert np.allclose(brute[[pos[c] for c in res.ids]], res.scores, rtol=1e-12)


def test_threshold_returns_exactly_the_violators():
    D, A, ids, r = _setup(2, 3)
    brute = np.abs(A.T @ r)
    top = np.sort(brute)[::-1]
    t = (top[20] + top[21]) / 2
    res = price(D, r, top_k=10**6, threshold=t)
    assert set(res.ids.tolist()) == set(ids[brute > t].tolist())


def test_screening_is_safe_and_skips_blocks(monkeypatch):
    monkeypatch.setattr("analysis.pricing.COLUMNS_PER_BLOCK", 64)
    D, A, ids, r = _setup(2, 3, N=16, seed=3)
    first = price(D, r, top_k=5)
    rng = np.random.default_rng(1)
    for eps in [1e-4, 1e-2, 0.3]:
        r2 = r + eps * (rng.normal(size=r.size))
        r2 -= r2.mean()
        brute = np.abs(A.T @ r2)
        t = 0.9 * brute.max()
        res = price(D, r2, top_k=10**6, threshold=t, screen=first.screen)
        assert set(res.ids.tolist()) == set(ids[brute > t].tolist())
        assert res.bound >= brute.max() - 1e-12
        if eps == 1e-4:
            assert res.n_blocks_skipped > 0
        first = res


def _per_cell(D, ids, values):
    """The largest of ``values`` (one per column ``ids``) in each screening cell of ``D``."""
    from analysis.pricing import _cells
    cells = _cells(D)
    offsets = np.array([f.offset for f in D.families])
    fam = np.searchsorted(offsets, ids, side="right") - 1
    sets = (ids - offsets[fam]) // cells.n_labelings[fam]
    out = np.zeros(cells.size)
    np.maximum.at(out, cells.first[fam] + sets // cells.sets_per_cell[fam], values)
    return out


def test_the_screen_bounds_every_cell_and_skipped_cells_stay_below_the_bound(monkeypatch):
    """Float32 per-cell maxima and centred norms (rounded up) bound the brute-force ones and are tight; the cells a
    pass skips score (brute force, at the new residual) at most its bound and the threshold."""
    monkeypatch.setattr("analysis.pricing.COLUMNS_PER_BLOCK", 64)
    D, A, ids, r = _setup(2, 3, N=16, seed=3)       # families of 1 and 12 labelings: cells of 16 and of 1 set(s)
    first = price(D, r, top_k=5)
    best = _per_cell(D, ids, np.abs(A.T @ r))
    norm = _per_cell(D, ids, np.linalg.norm(A - A.mean(axis=0), axis=0))
    for got, ref in ((first.screen.block_max, best), (first.screen.block_norm, norm)):
        assert got.dtype == np.float32 and np.all(got >= ref)
        assert np.all(got <= ref * (1 + 2.0 ** -22) + 1e-300)
    rng = np.random.default_rng(1)
    skipped = 0
    for eps in [1e-4, 1e-3]:
        r2 = r + eps * rng.normal(size=r.size)
        r2 -= r2.mean()
        t = 0.9 * np.abs(A.T @ r2).max()
        res = price(D, r2, top_k=10**6, threshold=t, screen=first.screen)
        skip = res.screen.block_ref < len(res.screen.refs) - 1
        assert np.count_nonzero(skip) == res.n_blocks_skipped
        assert np.all(_per_cell(D, ids, np.abs(A.T @ r2))[skip] <= min(res.bound, t))
        skipped += res.n_blocks_skipped
        first = res
    assert skipped > 0


def test_a_float32_bound_just_above_the_threshold_is_not_skipped():
    """Cells whose float32 bound exceeds the threshold by less than float32 resolves are evaluated, not skipped
    (the comparison is in float64; the threshold itself rounds to that bound in float32)."""
    from analysis.pricing import Screen, _cells
    D, A, ids, r = _setup(2, 3, N=12, seed=2)
    v, t = np.float32(1 + 2.0 ** -23), 1.0000001
    assert np.float32(t) == v and t < float(v)
    n = _cells(D).size
    screen = Screen(np.full(n, v), np.zeros(n, dtype=np.float32), np.zeros(n, dtype=np.int32), [r.copy()])
    res = price(D, r, top_k=10**6, threshold=t, screen=screen)
    assert res.n_blocks_skipped == 0 and res.n_evaluated + res.n_degenerate == D.n_candidates


def test_partial_pricing_stops_early(monkeypatch):
    monkeypatch.setattr("analysis.pricing.COLUMNS_PER_BLOCK", 64)
    D, A, ids, r = _setup(2, 3, N=16, seed=5)
    brute = np.abs(A.T @ r)
    t = np.quantile(brute, 0.5)
    res = price(D, r, top_k=1000, threshold=t, stop_after=10)
    assert not res.complete and res.bound == np.inf
    assert 10 <= len(res.ids) < (brute > t).sum()
    assert np.all(res.scores > t)


def test_pricing_rejects_wrong_residual_shape():
    D, *_ = _setup(1, 2)
    with pytest.raises(ValueError, match="residual"):
        price(D, np.zeros(3))


def _raw(d, depth, scale, shift, r_scale, N=14, seed=0):
    """Raw (uncentred) data at a scale and offset, and a raw residual of another scale."""
    rng = np.random.default_rng(seed)
    X = shift + scale * rng.normal(size=(N, d))
    return Dictionary(X, depth), r_scale * rng.normal(size=N)


@pytest.mark.parametrize("scale,shift,r_scale", [(1e-6, 0.0, 1e-30), (1.0, 0.0, 1.0), (1e6, 0.0, 1e30), (1.0, 1e4, 1.0),
                                                 (1e-3, 1e3, 1e3), (1e3, -1e6, 1e-3), (1e-2, 0.0, 1e-6)])
@pytest.mark.parametrize("d,depth", [(1, 3), (2, 3), (1, 4), (3, 2)])
def test_float32_prescreen_is_exact_above_the_floor_and_an_upper_bound_below(d, depth, scale, shift, r_scale):
    """Against the float64 kernel (itself checked against the materialised dictionary above). At extreme
    scales the raw data's columns may all be degenerate (the tolerance is not scale-free; the solver prices
    in a centred, scaled frame), and far from the origin the bound is too loose to spare any column."""
    from analysis._kernels import score_block
    D, r = _raw(d, depth, scale, shift, r_scale, N={1: 40, 2: 14, 3: 20}[d] if depth < 4 else 10)
    looser = n_valid = 0
    for f in D.families:
        args = (D.X, r, f.labels, D.bias, f.k, 0, f.n_sets, D.binom, D.tol, True)
        ref, ref_norms, ref_best = score_block(*args)
        valid = ref >= 0
        n_valid += valid.sum()
        for floor in (np.inf, np.quantile(ref[valid], 0.9) if valid.any() else 0.0):
            got, norms, best = score_block(*args, floor)
            assert best == ref_best                                   # the maximum is the float64 one
            assert np.array_equal(got < 0, ~valid) and np.array_equal(got[~valid], ref[~valid])
            assert np.all(got[valid] >= ref[valid])                   # upper bounds ...
            assert np.all(norms[valid] >= ref_norms[valid])
            above = valid & (got >= floor)
            assert np.array_equal(got[above], ref[above])             # ... and exact where it matters
            assert np.all(got[valid & (ref >= floor)] == ref[valid & (ref >= floor)])
            looser += np.count_nonzero(got[valid] > ref[valid])
            if shift == 0.0 and valid.any():                         # the bound is tight enough to screen
                assert np.median((got - ref)[valid]) <= 1e-4 * ref[valid].max()
                assert np.median((norms - ref_norms)[valid]) <= 1e-2 * ref_norms[valid].max()
    assert looser > 0 or shift != 0.0 or n_valid < 1000             # the float32 path did run


@pytest.mark.parametrize("scale,shift,r_scale", [(1e-2, 0.0, 1e-6), (1.0, 1e4, 1.0), (1e2, 0.0, 1e6)])
def test_prescreened_pricing_equals_float64_pricing_and_brute_force(scale, shift, r_scale):
    from functools import partial

    from analysis.pricing import score_blocks
    D, r = _raw(2, 3, scale, shift, r_scale, N=16, seed=2)
    A, ids = D.materialize()
    brute = np.abs(A.T @ r)
    top = np.sort(brute)[::-1]
    f64 = partial(score_blocks, prescreen=False)
    for t, top_k in ((None, 1), ((top[30] + top[31]) / 2, 10**6), ((top[3] + top[4]) / 2, 2)):
        a, b = price(D, r, top_k=top_k, threshold=t), price(D, r, top_k=top_k, threshold=t, scorer=f64)
        assert a.max_score == b.max_score and a.bound == b.bound
        assert np.array_equal(a.ids, b.ids) and np.array_equal(a.scores, b.scores)
        assert np.isclose(a.max_score, brute.max(), rtol=1e-12)
        if t is not None:
            assert set(a.ids.tolist()) <= set(ids[brute > t].tolist()) and len(a.ids) == min(top_k, (brute > t).sum())
        pos = {c: i for i, c in enumerate(ids)}
        assert np.allclose(brute[[pos[c] for c in a.ids]], a.scores, rtol=1e-12)


@pytest.mark.parametrize("scale,shift,r_scales", [(1e-6, 0.0, (1e-30, 1.0, 1e3)),
                                                  (1.0, 0.0, (1.0, 1e-8, 1e8, 0.5, 3.0, 1e-3)),   # 4 + 2
                                                  (1e6, 0.0, (1e30, 1e25)), (1.0, 1e4, (1.0, 1e-3)),
                                                  (1e3, -1e6, (1e-3, 1e3, 1.0, 2.0)), (1e-2, 0.0, (1e-6, 1e6))])
@pytest.mark.parametrize("d,depth", [(1, 3), (2, 3), (3, 2)])
def test_multi_residual_kernel_equals_single_residual_calls(d, depth, scale, shift, r_scales):
    """Residuals of very different magnitudes in one batch (the float32 pass sums four at a time, then one by
    one): each one's maximum equals, to the bit, the one of a call with that residual alone (float64 and float32
    pre-screened), every entry bounds every residual's score from above, and entries reaching the floor are the
    exact maximum over the residuals."""
    from analysis._kernels import score_block, score_block_multi
    D, _ = _raw(d, depth, scale, shift, 1.0, N={1: 40, 2: 14, 3: 20}[d])
    rng = np.random.default_rng(4)
    R = np.array([s * rng.normal(size=D.n_points) for s in r_scales])
    for f in D.families:
        args = (f.labels, D.bias, f.k, 0, f.n_sets, D.binom, D.tol, True)
        single = [score_block(D.X, r, *args) for r in R]
        ref = np.max([s for s, _, _ in single], axis=0)
        valid = ref >= 0
        for floor in (np.nan, np.inf, np.quantile(ref[valid], 0.9) if valid.any() else 0.0):
            got, norms, best = score_block_multi(D.X, R, *args, floor)
            alone = [score_block(D.X, r, *args, floor)[2] for r in R]
            assert np.array_equal(best, [b for *_, b in single]) and np.array_equal(best, alone)
            assert np.array_equal(got < 0, ~valid) and np.array_equal(got[~valid], ref[~valid])
            assert np.all(got[valid] >= ref[valid]) and np.all(norms[valid] >= single[0][1][valid])
            exact = valid & (got >= floor) if not np.isnan(floor) else valid
            assert np.array_equal(got[exact], ref[exact])


def test_pricing_several_residuals_equals_brute_force():
    """``price`` with residuals (K, N): the exact maximum of each, the ids above the threshold of the maximum
    over residuals, and a bound over all columns; float32 pre-screened or not."""
    from functools import partial

    from analysis.pricing import score_blocks
    D, A, ids, r = _setup(2, 3, N=16, seed=6)
    rng = np.random.default_rng(2)
    R = np.array([r, 1e-3 * rng.normal(size=r.size), 1e3 * rng.normal(size=r.size)])
    R -= R.mean(axis=1, keepdims=True)
    brute = np.abs(A.T @ R.T)                                    # (columns, K)
    t = np.quantile(brute.max(axis=1), 0.97)
    for scorer in (None, partial(score_blocks, prescreen=False)):
        res = price(D, R, top_k=10**6, threshold=t, scorer=scorer)
        assert res.complete and res.n_evaluated == len(ids)
        assert np.allclose(res.max_scores, brute.max(axis=0), rtol=1e-12)
        assert np.array_equal(res.max_scores, [price(D, q, top_k=1).max_score for q in R])
        assert set(res.ids.tolist()) == set(ids[brute.max(axis=1) > t].tolist())
        assert res.bound >= brute.max() * (1 - 1e-12)


def test_the_first_pass_floors_keep_the_best_batch_the_maximum_and_fill_the_cache():
    """The estimator's first pass: its floor (a sampled order statistic) is at most the dictionary's ``BATCH + 1``-th
    best score, so the pass at that floor returns the brute-force best ``BATCH`` columns and the exact maximum; its
    cache floor (a sampled quantile) leaves more columns above it than the cache holds, so the cache still fills
    with the brute-force best, while three quarters of the columns score below it."""
    from analysis.estimator import BATCH, _first_floors
    from analysis.lasso import DictionaryPricing
    D, A, ids, r = _setup(2, 3, N=24, seed=4)
    brute = np.abs(A.T @ r)
    assert brute.size > 4 * BATCH
    source = DictionaryPricing(D, cache_size=brute.size // 8)
    floor, cache_floor = _first_floors(D, r, source.cache.size / D.n_candidates)
    top = np.sort(brute)[::-1]
    assert top[4 * BATCH] < floor <= top[BATCH]              # high, and below the best BATCH + 1
    assert top[brute.size // 8] >= cache_floor >= top[brute.size // 2]
    res = source.first_pass(r, floor, BATCH, cache_floor)
    assert np.isclose(res.max_score, top[0], rtol=1e-12) and res.complete
    assert np.allclose(res.scores, top[:BATCH], rtol=1e-12)
    pos = {c: i for i, c in enumerate(ids)}
    assert np.allclose(brute[[pos[c] for c in res.ids]], res.scores, rtol=1e-12)
    assert len(source.cache) == source.cache.size
    assert np.allclose(np.sort(brute[[pos[c] for c in source.cache.ids]]), np.sort(top[: source.cache.size]))


def test_sphere_bounds_round_up_the_float64_value():
    """The compiled sphere bounds against numpy: ``max + norm * dist`` in float64, then float32 at or above it, at
    most three float32 steps; infinite for cells never scored, an infinite norm at distance 0, or past float32."""
    from analysis._kernels import sphere_bounds
    rng = np.random.default_rng(0)
    n = 10_000
    bmax = (rng.random(n) * 10.0 ** rng.integers(-48, 38, n)).astype(np.float32)
    bnorm = (rng.random(n) * 10.0 ** rng.integers(-48, 38, n)).astype(np.float32)
    bnorm[:50] = np.inf
    ref = rng.integers(-1, 4, n).astype(np.int32)
    dists = np.array([1e-3, 0.0, 7.3, 1e10])
    est = np.empty(n, dtype=np.float32)
    sphere_bounds(bmax, bnorm, ref, np.stack([dists] + [0 * dists] * 4, axis=1), est)   # no scaling
    with np.errstate(invalid="ignore", over="ignore"):
        e = bnorm.astype(float) * dists[ref] + bmax.astype(float)     # (raised by 2^-30 and 2^-40: < a float32 step)
        cast = e.astype(np.float32)
    inf = (ref < 0) | np.isnan(e)
    assert np.all(np.isinf(est[inf])) and np.all(est[~inf] >= e[~inf])
    steps = cast.copy()
    for _ in range(3):
        steps = np.nextafter(steps, np.float32(np.inf))
    assert np.all(est[~inf] <= steps[~inf]) and np.count_nonzero(est[~inf] == cast[~inf]) > n // 10
    assert np.any(est[~inf] < 1e-38) and np.any(np.isinf(est[~inf]))           # subnormal, and beyond float32
    assert np.any(ref[:50] == 1) and np.isinf(est[:50][ref[:50] == 1]).all()    # inf x 0


@pytest.mark.parametrize("ordered", [False, True])
def test_the_plan_covers_the_needed_cells_once_in_blocks_of_one_family(monkeypatch, ordered):
    """Blocks of scattered runs: every needed cell exactly once, one family and at most ``COLUMNS_PER_BLOCK`` columns
    a block (or one cell), by decreasing bound when ordered; the kernel scores a block's runs as one call would
    score each alone."""
    from analysis._kernels import score_block
    from analysis.pricing import _block_max, _cells, _plan_blocks, _runs
    monkeypatch.setattr("analysis.pricing.COLUMNS_PER_BLOCK", 64)
    D = Dictionary(np.random.default_rng(0).normal(size=(16, 2)), 3)
    cells = _cells(D)
    need = np.random.default_rng(1).random(cells.size) < 0.3
    need[-1] = True                                                     # a block ends at the last cell
    est = np.random.default_rng(4).random(cells.size).astype(np.float32)
    runs = _runs(cells, need)
    plan, starts = _plan_blocks(cells, runs, est if ordered else None)
    covered = np.zeros(cells.size, dtype=int)
    tops = []
    for lo, hi in zip(starts[:-1], starts[1:]):
        fam = np.searchsorted(cells.first, plan[lo:hi].ravel() - [0, 1] * (hi - lo), side="right") - 1
        cell_cols = cells.sets_per_cell[fam[0]] * cells.n_labelings[fam[0]]
        assert lo < hi and np.all(fam == fam[0]) and np.all(plan[lo:hi, 0] < plan[lo:hi, 1])
        assert (plan[lo:hi, 1] - plan[lo:hi, 0]).sum() * cell_cols <= max(64, cell_cols)
        for c0, c1 in plan[lo:hi].tolist():
            covered[c0:c1] += 1
        tops.append(max(est[c0:c1].max() for c0, c1 in plan[lo:hi].tolist()))
    assert covered.max() == 1 and np.array_equal(covered == 1, need)
    assert not ordered or np.all(np.diff(tops) <= 0)
    r = np.random.default_rng(5).normal(size=16)
    for fi, first, count, _ in cells.blocks(plan, starts)[:20]:
        f = D.families[fi]
        args = (f.labels, D.bias, f.k)
        got = score_block(D.X, r, *args, first, count, D.binom, D.tol, True)
        alone = [score_block(D.X, r, *args, a, n, D.binom, D.tol, True) for a, n in zip(first, count)]
        assert np.array_equal(got[0], np.concatenate([s for s, *_ in alone]))
        assert np.array_equal(got[1], np.concatenate([s for _, s, _ in alone])) and got[2] == max(b for *_, b in alone)
    v = np.random.default_rng(2).random(cells.size).astype(np.float32)
    shuffled = plan[np.random.default_rng(3).permutation(len(plan))]
    assert np.array_equal(_block_max(v, shuffled), [v[a:b].max() for a, b in shuffled.tolist()])


def _up32_reference(v):
    """The smallest float32 >= each float64 ``v`` (NumPy: the cast, one step up where it rounded down)."""
    with np.errstate(over="ignore"):
        out = v.astype(np.float32)
    return np.nextafter(out, np.float32(np.inf), out=out, where=out < v)


def test_the_cache_stores_its_scores_with_float32_radii_rounded_up():
    """``lasso._store_scores`` (a full scoring of the cache kept as a sphere reference): the values in their slot,
    the radii as the smallest float32 at or above each (exact float32 values kept, infinite past float32, at every
    magnitude), the other slots untouched, and the positions whose value and radius exceed the threshold."""
    from analysis.lasso import _store_scores
    rng = np.random.default_rng(3)
    n = 20_000
    e = rng.random(n) * 10.0 ** rng.integers(-45, 39, n)
    e[:100] = e[:100].astype(np.float32)                        # already float32: unchanged
    e[100:110] = [0.0, 3.5e38, 1e300, np.finfo(np.float32).max, 1e-46, 1e-40, 1.0, 2.0 ** -149, 7.0, 1e-30]
    v = rng.normal(size=n) * 10.0 ** rng.integers(-3, 3, n)
    V, E = np.full((n, 4), 5.0), np.full((n, 4), 6.0, dtype=np.float32)
    where = _store_scores(V, E, 2, v, e, 1.0)
    assert np.array_equal(V[:, 2], v) and E.dtype == np.float32 and np.array_equal(E[:, 2], _up32_reference(e))
    assert np.all(E[:, 2].astype(float) >= e) and np.array_equal(E[:100, 2], e[:100])
    assert np.all(V[:, [0, 1, 3]] == 5.0) and np.all(E[:, [0, 1, 3]] == 6.0)
    assert np.array_equal(where, np.flatnonzero(np.abs(v) + e > 1.0)) and 0 < where.size < n


@pytest.mark.parametrize("scale", [1e-6, 1.0, 1e6, 1e30, 3.4e38])
def test_block_summary_equals_numpy_and_rounds_cells_up(scale):
    """``_kernels.summarise_block`` against NumPy on the same scores: per-cell maxima and norms as float32 upper
    bounds (the smallest ones), codes counted, the picked columns and their ids; runs of sets cut into cells."""
    from analysis._kernels import summarise_block
    rng = np.random.default_rng(int(np.log10(scale) + 40))
    starts, counts, per, n_lab, offset = np.array([3, 40, 7]), np.array([5, 1, 9]), 2, 4, 1000
    s = rng.uniform(0, scale, size=(counts.sum(), n_lab)) * (1 + rng.uniform(-1e-7, 1e-7, (counts.sum(), n_lab)))
    coded = rng.random(s.shape) < 0.3
    s[coded] = rng.choice([-1.0, -2.0, -3.0], size=int(coded.sum()))
    s[0, :] = -2.0                                         # a cell whose first set has no valid column
    norms = rng.uniform(0, 3 * scale, size=s.shape)
    keep, threshold = 0.5 * scale, 0.8 * scale
    cm, cn, tally, pick, ids = summarise_block(s, norms, starts, counts, per, offset, True, True, keep, threshold)
    at = np.cumsum(counts) - counts
    cuts = np.concatenate([np.arange(a, a + c, per) for a, c in zip(at, counts)])
    assert np.array_equal(cm, _up32_reference(np.maximum.reduceat(s.max(axis=1, initial=0.0), cuts)))
    assert np.array_equal(cn, _up32_reference(np.maximum.reduceat(norms.max(axis=1, initial=0.0), cuts)))
    assert np.all(cm.astype(float) >= np.maximum.reduceat(s.max(axis=1, initial=0.0), cuts))
    flat = s.ravel()
    sets = np.concatenate([np.arange(a, a + c) for a, c in zip(starts, counts)])
    assert list(tally) == [np.count_nonzero(flat >= 0), np.count_nonzero(flat == -2), np.count_nonzero(flat == -3),
                           np.count_nonzero(flat > threshold)]
    assert np.array_equal(pick, np.flatnonzero(flat > keep))
    assert np.array_equal(ids, offset + sets[pick // n_lab] * n_lab + pick % n_lab)
    _, no_norm, _, pick_all, _ = summarise_block(s, norms, starts, counts, per, offset, True, False, np.nan, np.nan)
    assert no_norm.size == 0 and np.array_equal(pick_all, np.flatnonzero(flat >= 0))
    s[1, 2] = np.nan                                      # NaN kept (the screen then never skips that cell)
    assert np.isnan(summarise_block(s, norms, starts, counts, per, offset, True, True, keep, threshold)[0][0])


def test_other_running_threads_are_counted_now_not_averaged():
    """``start_threads`` picks OpenMP's wait policy from the threads running at that moment: two busy processes
    started a moment ago count, though the 1-minute load average has barely moved."""
    import subprocess
    import sys

    from analysis._kernels import _others_running
    busy = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(2)]
    try:
        time.sleep(0.5)
        assert _others_running() >= 1.0
    finally:
        for p in busy:
            p.kill()
            p.wait()


def test_threads_starting_the_pool_together_on_a_busy_machine():
    """Two fits in two threads (the pipeline fits its depths so) start numba's pool at once on a busy machine (here
    said busy), so the passive wait policy is set and removed around it: once, without a race (the second thread's
    removal raised KeyError and failed a default run)."""
    import subprocess
    import sys
    code = ("import os, threading, time\nfrom analysis import _kernels\n"
            "_kernels._others_running = lambda: (time.sleep(0.1), 1e9)[1]\n"  # as slow as its 5 readings
            "errors = []\ndef go():\n    try:\n        _kernels.start_threads()\n"
            "    except Exception as e:\n        errors.append(e)\n"
            "ts = [threading.Thread(target=go) for _ in range(4)]\n[t.start() for t in ts]\n[t.join() for t in ts]\n"
            "assert not errors and 'OMP_WAIT_POLICY' not in os.environ, errors\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600,
                          env={**os.environ, "PYTHONPATH": os.getcwd()})
    assert done.returncode == 0, done.stderr[-2000:]
