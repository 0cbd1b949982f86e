"""Pricing on a Dask cluster (LocalCluster, 2 worker processes): the same fit as in one process."""
import os
import signal

import joblib
import numpy as np
import pytest

from analysis import ReflectionLasso, parallel
from analysis.dictionary import Dictionary
from analysis.pricing import price
from tests.test_pricing import _per_cell

distributed = pytest.importorskip("distributed")


def _data(N=30, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.uniform(-2, 2, size=(N, 2))
    return X, np.sin(2 * X[:, 0]) + np.abs(X[:, 1]) + 0.1 * rng.normal(size=N)


@pytest.fixture(scope="module")
def client():
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                                  silence_logs=40) as cluster, distributed.Client(cluster) as c:
        yield c


@pytest.fixture(scope="module")
def local_fit():
    X, y = _data()
    return X, y, ReflectionLasso(depth=3).fit(X, y)


def _same_fit(a, b):
    assert b.objective_ == pytest.approx(a.objective_, rel=1e-9, abs=0)
    for key, value in a.certificate_.items():
        if isinstance(value, float):
            assert b.certificate_[key] == pytest.approx(value, rel=1e-9, abs=1e-12), key
        else:
            assert b.certificate_[key] == value, key
    assert sorted(b.features_["id"]) == sorted(a.features_["id"])
    assert a.certificate_["dictionary_ratio"] <= 1 + 1e-6


def test_cluster_fit_equals_local_fit_and_runs_on_the_workers(client, local_fit):
    X, y, local = local_fit
    with distributed.get_task_stream(client) as stream, joblib.parallel_config(backend="dask"):
        remote = ReflectionLasso(depth=3).fit(X, y)
    _same_fit(local, remote)
    # the same passes, each covering the same columns
    cols = ["pass", "evaluated", "cells_skipped", "complete", "added"]
    assert remote.history_[cols].equals(local.history_[cols])
    workers = set(client.scheduler_info()["workers"])
    tasks = [t for t in stream.data if str(t["key"]).startswith("_score_task")]
    assert len(tasks) >= 2 + int(remote.certificate_["n_passes"])  # warm-up on each worker, then every pass
    assert {t["worker"] for t in tasks} == workers


def _small_dictionary_on_the_cluster(monkeypatch, columns_per_block):
    """A depth-3 dictionary of 24 points in blocks of ``columns_per_block``, a residual, and its cluster scorer."""
    monkeypatch.setattr("analysis.pricing.COLUMNS_PER_BLOCK", columns_per_block)
    X, y = _data(24, seed=3)
    D = Dictionary(X, 3)
    with joblib.parallel_config(backend="dask"):
        return D, y - y.mean(), parallel.parallel_scorer(D)


def test_parallel_price_equals_local_price_with_screening_and_partial_passes(client, monkeypatch):
    D, r, scorer = _small_dictionary_on_the_cluster(monkeypatch, 512)
    assert scorer is not None and scorer.client is client
    A, ids = D.materialize()
    full, full_p = price(D, r, top_k=40), price(D, r, top_k=40, scorer=scorer)
    assert full_p.max_score == full.max_score and np.array_equal(full_p.scores, full.scores)
    assert full_p.n_evaluated + full_p.n_degenerate == D.n_candidates
    t = 0.6 * full.max_score
    r2 = r + 1e-3 * np.random.default_rng(1).normal(size=r.size)
    r2 -= r2.mean()
    for kwargs in ({"threshold": t}, {"threshold": 0.3 * t, "stop_after": 50}):
        a = price(D, r2, top_k=10**6, screen=full.screen, **kwargs)
        b = price(D, r2, top_k=10**6, screen=full_p.screen, scorer=scorer, **kwargs)
        assert (a.complete, a.n_evaluated, a.n_blocks_skipped) == (b.complete, b.n_evaluated, b.n_blocks_skipped)
        assert set(a.ids.tolist()) == set(b.ids.tolist()) and a.bound == b.bound
        for name in ("block_max", "block_norm", "block_ref"):          # the same cells skipped, the same state
            assert np.array_equal(getattr(a.screen, name), getattr(b.screen, name)), name
        if b.complete:                        # the cells it skipped score below its bound and the threshold
            skip = b.screen.block_ref < len(b.screen.refs) - 1
            assert b.n_blocks_skipped == np.count_nonzero(skip) > 0
            assert np.all(_per_cell(D, ids, np.abs(A.T @ r2))[skip] <= min(b.bound, t))
    assert a.complete is False and scorer.n_tasks > 0


def test_a_partial_pass_sends_few_blocks_and_a_complete_one_all_in_order(client, monkeypatch):
    D, r, scorer = _small_dictionary_on_the_cluster(monkeypatch, 256)
    sent, submit = [], scorer._submit

    def counted(*args, **kwargs):
        sent.append((args[2][0], len(args[2])))
        return submit(*args, **kwargs)

    monkeypatch.setattr(scorer, "_submit", counted)
    full = price(D, r, top_k=10, scorer=scorer)
    n_blocks = D.n_candidates // 256
    firsts = [b for b, _ in sent]
    assert firsts == sorted(firsts) and sum(n for _, n in sent) >= n_blocks > 50     # every block, once, in order
    assert [n for _, n in sent[:2]] == [1, 1] and max(n for _, n in sent) <= scorer.blocks_per_task
    sent.clear()
    res = price(D, r, top_k=10**6, threshold=0.5 * full.max_score, stop_after=1, scorer=scorer)
    assert not res.complete
    # it stopped after two blocks: at most three rounds of tasks were sent (1, 2 and 4 blocks per worker)
    assert sum(n for _, n in sent) <= 7 * scorer.n_workers


def test_cli_fit_prices_on_the_cluster_or_local_processes(client, local_fit, tmp_path):
    import json

    import pandas as pd
    from typer.testing import CliRunner

    from flows.cli import app
    X, y, local = local_fit
    pd.DataFrame({"a": X[:, 0], "b": X[:, 1], "y": y}).to_csv(tmp_path / "pts.csv", index=False)
    base = ["fit", str(tmp_path / "pts.csv"), "--target", "y", "--depth", "3", "--json"]
    address = client.scheduler.address
    with distributed.get_task_stream(client) as stream:
        on_cluster = CliRunner().invoke(app, base + ["--dask-address", address])
    assert on_cluster.exit_code == 0, on_cluster.output
    assert any(str(t["key"]).startswith("_score_task") for t in stream.data)
    on_processes = CliRunner().invoke(app, base + ["--n-jobs", "2"])
    assert on_processes.exit_code == 0, on_processes.output
    for result in (on_cluster, on_processes):
        assert json.loads(result.output)["objective"] == pytest.approx(local.objective_, rel=1e-9, abs=0)


def test_a_pass_that_loses_blocks_is_an_error(monkeypatch):
    from analysis.pricing import score_blocks
    monkeypatch.setattr("analysis.pricing.COLUMNS_PER_BLOCK", 64)
    X, y = _data(12)

    def lossy(D, r, blocks, want_norms, threshold, keep, top_k):    # drops the last block of every call
        yield from list(score_blocks(D, r, blocks, want_norms, threshold, keep, top_k))[:-1]

    lossy.batch = 4
    with pytest.raises(RuntimeError, match="covered"):
        price(Dictionary(X, 3), y - y.mean(), scorer=lossy)


def test_a_worker_killed_during_a_fit_does_not_change_the_result(client, local_fit, monkeypatch):
    X, y, local = local_fit
    calls, killed = [0], []
    score = parallel.BlockScorer.__call__

    def kill_one_worker_mid_pass(self, *args):
        calls[0] += 1
        for i, block in enumerate(score(self, *args)):
            if calls[0] == 2 and i == 0:                 # the second pass, with tasks queued on both workers
                busy = {w: ts for w, ts in client.processing().items() if ts}
                victim = max(busy, key=lambda w: len(busy[w])) if busy else next(iter(client.processing()))
                pid = client.run(os.getpid, workers=[victim])[victim]
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
            yield block

    monkeypatch.setattr(parallel.BlockScorer, "__call__", kill_one_worker_mid_pass)
    with joblib.parallel_config(backend="dask"):
        remote = ReflectionLasso(depth=3).fit(X, y)
    assert killed and killed[0] not in client.run(os.getpid).values()
    _same_fit(local, remote)


def test_a_pass_whose_scattered_data_was_lost_sends_it_again(client, local_fit, monkeypatch, caplog):
    """Dask cancels the tasks whose scattered inputs died with their only holder: the pass scatters the dictionary
    and the residual again and resubmits, and the fit is the local one."""
    X, y, local = local_fit
    submit, cancelled = parallel.BlockScorer._submit, []

    def lose_one(self, *args, worker=None):
        future = submit(self, *args, worker=worker)
        if worker is None and self.n_tasks == 3 and not cancelled:    # a task of the first pass after the warm-up
            future.cancel()
            cancelled.append(future)
        return future

    monkeypatch.setattr(parallel.BlockScorer, "_submit", lose_one)
    caplog.set_level("WARNING", logger="analysis.parallel")
    with joblib.parallel_config(backend="dask"):
        remote = ReflectionLasso(depth=3).fit(X, y)
    assert cancelled and "sending it again (1 of 3)" in caplog.text
    _same_fit(local, remote)


@pytest.mark.parametrize("multi", [False, True])
def test_a_task_packs_its_block_summaries_without_loss(multi):
    """``parallel._unpack(_pack(blocks))`` gives back every field of every block (none lost or shifted), with
    blocks that return no column, per-cell norms or not, and several residuals."""
    from analysis.pricing import score_blocks
    X, y = _data(N=16)
    D = Dictionary(X, 3)
    blocks = [(fi, np.array([s, s + 3]), np.array([2, 1]), 2) for fi, f in enumerate(D.families)
              for s in range(0, f.n_sets - 3, 4)]
    r = y - y.mean()
    r = np.stack([r, -0.5 * r + 1e-3]) if multi else r
    threshold = 0.97 * price(D, r, top_k=1).max_score
    want = [i % 2 == 0 for i in range(len(blocks))]
    done = list(score_blocks(D, r, blocks, want, threshold, None, 5))
    assert any(b.ids.size == 0 for b in done) and any(b.ids.size for b in done)
    back = parallel._unpack(parallel._pack(done))
    assert len(back) == len(done)
    for a, b in zip(done, back):
        for x, z in zip(a, b):
            assert (x is None and z is None) or np.array_equal(np.asarray(x), np.asarray(z))
