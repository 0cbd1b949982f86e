"""Pricing on other processes: the blocks of a pass scored by a pool of workers, streamed back in order.

``BlockScorer`` is a ``pricing.price`` scorer. It follows joblib's configuration, the scikit-learn way: ``n_jobs``
loky processes on this machine (joblib's reusable executor), or, under ``joblib.parallel_config(backend="dask")`` with
a ``dask.distributed.Client``, the workers of that cluster. The dictionary (X, labelings, binomial table) is scattered
to every Dask worker once per fit and each pass scatters its residual once; a task scores consecutive blocks, at most
``TASK_WORK`` column-point products (a few tenths of a second on one core, so a task's overhead of a few milliseconds
stays near 1% of its work), fewer in the first tasks of a pass (a partial pass often stops after a few blocks) and in
its last ones (load balance), and returns the ``pricing.Block`` summaries of its blocks packed in seven arrays
(``_pack``: a few frames to serialise, not five per block; per screening cell the maximum and, when asked, the
centred-norm maximum, float32 rounded up, none against several residuals; counts, the best ids above the threshold),
never a score array. A task lost with its worker is re-run by Dask; ``price`` checks that the columns of a complete
pass add up to the whole dictionary.
"""
from __future__ import annotations

import logging
import sys
from collections import deque
from concurrent.futures import CancelledError
from itertools import islice

import joblib
import numba
import numpy as np
from joblib.externals.loky import get_reusable_executor
from joblib.parallel import get_active_backend

from .pricing import COLUMNS_PER_BLOCK, Block, score_blocks

TASK_WORK = 1e9            # column x point products per task: ~0.1-0.3 s on one core (float32 pre-screen)
GUIDED = 2                 # a task takes at most 1/(GUIDED x workers) of the blocks left (load balance)
TAIL = 8                   # the last tasks of a pass are at least 1/TAIL of a full one
IN_FLIGHT_PER_WORKER = 2   # tasks submitted ahead per worker while results stream back
RESCATTERS = 3             # times a pass sends its data again after a lost worker took the last copy
log = logging.getLogger(__name__)
_NONE32, _NONE64 = np.empty(0, dtype=np.float32), np.empty(0, dtype=np.int64)


def dask_client():
    """The ``dask.distributed.Client`` of an active ``joblib.parallel_config(backend="dask")``, else None."""
    backend, _ = get_active_backend()
    return getattr(backend, "client", None) if type(backend).__name__ == "DaskDistributedBackend" else None


def parallel_scorer(D, n_jobs=None):
    """A ``BlockScorer`` for ``D`` when pricing runs on other processes (a Dask backend, or more than
    one job by joblib's rules: ``n_jobs=None`` is 1 outside a ``parallel_config``), else None."""
    if dask_client() is None and joblib.effective_n_jobs(n_jobs) <= 1:
        return None
    return BlockScorer(D, n_jobs)


def _score_task(D, r, blocks, want_norms, threshold, keep, top_k, exact) -> tuple:
    """``score_blocks`` of some blocks on a worker, with one numba thread (workers share the cores), packed."""
    numba.set_num_threads(1)
    return _pack(list(score_blocks(D, r, blocks, want_norms, threshold, keep, top_k, exact)))


def _pack(done: list) -> tuple:
    """A task's ``Block`` summaries as seven arrays (a few frames to serialise, not five per block): per block the
    sizes of its four arrays and its counts, its best score(s); then each array field concatenated."""
    ints = np.array([(b.cell_max.size, b.cell_norm.size, b.ids.size, b.n_valid, b.n_degenerate, b.n_repeated,
                      b.n_negative, b.n_found) for b in done], dtype=np.int64).reshape(-1, 8)
    cat = [np.concatenate([getattr(b, name) for b in done] or [empty]) for name, empty in
           (("cell_max", _NONE32), ("cell_norm", _NONE32), ("ids", _NONE64), ("scores", np.empty(0)))]
    bests = np.stack([b.bests for b in done]) if done and done[0].bests is not None else None
    return ints, np.array([b.best for b in done]), *cat, bests


def _unpack(packed: tuple) -> list:
    """The ``Block`` summaries of ``_pack`` (views of its arrays)."""
    ints, best, *cat, bests = packed
    parts = [np.split(a, np.cumsum(ints[:, i])[:-1]) for i, a in zip((0, 1, 2, 2), cat)]   # scores: as ids
    return [Block(cm, cn, *map(int, row[3:]), ids, s, float(b), None if bests is None else bests[i])
            for i, (row, b, cm, cn, ids, s) in enumerate(zip(ints, best, *parts))]


class BlockScorer:
    """Scores the blocks of each pass on a pool of workers; one instance per fit (per dictionary)."""

    batch = sys.maxsize    # a whole pass per call: results stream back while the workers stay busy

    def __init__(self, D, n_jobs=None):
        self.dictionary = D
        self.client = dask_client()
        if self.client is not None:
            self.n_workers = max(1, sum(self.client.ncores().values()))
        else:
            self.n_workers = joblib.effective_n_jobs(n_jobs)
            self._executor = get_reusable_executor(max_workers=self.n_workers)
        self._D = self._share(D)
        self.blocks_per_task = max(1, int(TASK_WORK // (COLUMNS_PER_BLOCK * D.n_points)))
        self.n_tasks = 0
        self._warm_up()

    def _share(self, x):
        """``x`` on every Dask worker (scattered, unhashed), or ``x`` itself for local processes."""
        return self.client.scatter(x, broadcast=True, hash=False) if self.client is not None else x

    def _submit(self, *args, worker=None):
        if self.client is None:
            return self._executor.submit(_score_task, *args)
        return self.client.submit(_score_task, *args, pure=False, **({} if worker is None else {"workers": worker}))

    def _warm_up(self) -> None:
        """Load (or compile) the numba kernels once in every worker process before the first pass."""
        tiny = (self._D, np.zeros(self.dictionary.n_points), [(0, 0, 1)], [True], None, None, 1, None)
        workers = list(self.client.scheduler_info()["workers"]) if self.client is not None else [None] * self.n_workers
        for f in [self._submit(*tiny, worker=[w] if w else None) for w in workers]:
            f.result()

    def _task_ranges(self, n_blocks: int):
        """Block ranges ``[lo, hi)`` of the tasks of a pass of ``n_blocks``. The first round gives each worker
        one block and each round doubles that, so a partial pass that stops after a few blocks has not queued
        (nor, for the tasks already running, paid for) much more than it used; then guided self-scheduling: at
        most ``blocks_per_task`` and ``1 / (GUIDED * workers)`` of the blocks left, at least ``1 / TAIL`` of a
        full task, so the last tasks are short and the workers finish a pass together."""
        lo, size, least = 0, 1, max(1, self.blocks_per_task // TAIL)
        while lo < n_blocks:
            for _ in range(self.n_workers):
                guided = max(least, (n_blocks - lo) // (GUIDED * self.n_workers))
                hi = min(n_blocks, lo + min(size, self.blocks_per_task, guided))
                yield lo, hi
                lo = hi
                if lo == n_blocks:
                    return
            size *= 2

    def __call__(self, D, r, blocks, want_norms, threshold=None, keep=None, top_k: int = 256, exact=None):
        """``pricing.Block`` summaries of ``blocks`` against ``r``, in order, computed by the workers."""
        if D is not self.dictionary:
            raise ValueError("BlockScorer: priced a different dictionary than the one it was built for")
        shared = self._share(r)
        ranges = self._task_ranges(len(blocks))
        pending: deque = deque()                         # (future, first block, end block), in block order
        rescatters = 0

        def submit(lo, hi):
            self.n_tasks += 1
            return self._submit(self._D, shared, blocks[lo:hi], want_norms[lo:hi], threshold, keep, top_k,
                                exact), lo, hi
        try:
            while True:
                for lo, hi in islice(ranges, IN_FLIGHT_PER_WORKER * self.n_workers - len(pending)):
                    pending.append(submit(lo, hi))
                if not pending:
                    return
                try:
                    done = pending[0][0].result()
                except CancelledError:
                    # Dask cancels the tasks whose scattered inputs died with their last holder (a worker lost
                    # before the broadcast reached the others): send the dictionary and residual again, resubmit
                    if self.client is None or rescatters == RESCATTERS:
                        raise
                    rescatters += 1
                    log.warning("a lost worker took the pass's scattered data with it; sending it again (%d of %d)",
                                rescatters, RESCATTERS)
                    for f, *_ in pending:
                        f.cancel()
                    self._D, shared = self._share(D), self._share(r)
                    pending = deque(submit(lo, hi) for _, lo, hi in pending)
                    continue
                pending.popleft()
                yield from _unpack(done)
        finally:                                         # a partial pass stopped early: drop what is queued
            for f, *_ in pending:
                f.cancel()
