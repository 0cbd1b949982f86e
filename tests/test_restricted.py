"""The restricted side's shortcuts against their direct computations: cache violators entering with the cache's
parameters, the working set's vectorised merging."""
import numpy as np

from analysis.dictionary import Dictionary
from analysis.features import FoldFeatures
from analysis.lasso import DictionaryPricing, WorkingSet, add_dictionary_columns


def test_cache_violators_enter_as_the_dictionary_columns_themselves():
    """Violators added from the cache's parameters are the dictionary's columns (``D.columns``), with the same
    keys, atoms and order as adding those ids through ``add_dictionary_columns``."""
    rng = np.random.default_rng(4)
    X = rng.normal(size=(12, 2))
    D = Dictionary(X, 3)
    src = DictionaryPricing(D, cache_size=600)
    r = rng.normal(size=12)
    r -= r.mean()
    src.first_pass(r, 0.0, 8)
    r2 = r + 0.3 * rng.normal(size=12)
    r2 -= r2.mean()
    threshold = np.quantile(src.cache.scores(r2), 0.9)
    ws = WorkingSet(12, 2, 1)
    added, met = src.cache_violators(ws, r2, threshold)
    assert added == len(ws) > 0 and met >= 60
    keys = [k for k in ws.keys]
    assert np.allclose(ws.A, D.columns(keys), rtol=0, atol=1e-12)
    where, s = src.cache.violators(r2, threshold)
    ref = WorkingSet(12, 2, 1)
    add_dictionary_columns(ref, D, src.cache.ids[where[np.argsort(-s, kind="stable")]])
    assert ref.keys == ws.keys and np.array_equal(ref.A, ws.A)


def test_working_set_merges_near_equal_columns_within_and_across_batches():
    """Columns equal up to sign, a constant and 1e-13 noise are one atom (in one batch and against earlier
    batches); distinct ones are not: the atom of each key against brute-force grouping of the centred columns."""
    rng = np.random.default_rng(7)
    N = 9
    base = rng.normal(size=(N, 40))
    pick = rng.integers(0, 40, 300)
    cols = base[:, pick] * rng.choice([-1.0, 1.0], 300) + rng.normal(size=300) + 1e-13 * rng.normal(size=(N, 300))
    cols[:, :3] = 2.5                                       # constant on the data
    pick[:3] = -1
    ws = WorkingSet(N, 1, 0)
    for lo, hi in [(0, 120), (120, 121), (121, 300)]:
        ws.add(cols[:, lo:hi], list(range(lo, hi)), FoldFeatures.of(np.ones((hi - lo, 1))))
    assert len(ws) == np.unique(pick[3:]).size
    atom = np.array([ws.locate(k)[0] for k in range(300)])
    assert np.all(atom[:3] == -1)
    for p in np.unique(pick[3:]):
        assert np.unique(atom[pick == p]).size == 1
    assert np.unique(atom[3:]).size == np.unique(pick[3:]).size
