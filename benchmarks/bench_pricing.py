"""Throughput of the pricing kernel (issues 9 and 10): columns priced per second, float64 vs float32 pre-screen.

d = 2, depth 3, a centred random residual; blocks of ``pricing.COLUMNS_PER_BLOCK`` columns spread evenly over
the dictionary (a fraction of it at N = 1,000). Both variants run back to back in the same process on the
same blocks: the float64 kernel (``prescreen=False``, the old path) and the float32 pre-screen with the floor
at 0.97 of the sample's maximum (a certifying pass near the optimum: ``keep`` is ``beta (1 - 3%)``). "norms"
is the first pass of a fit (screening norms wanted), "scores" every later one. Columns/s are per wall second
and per CPU second (the machine is shared: the load is printed with each row).
"""
from __future__ import annotations

import os
import resource
import time

import numba
import numpy as np

from analysis.dictionary import Dictionary
from analysis.pricing import COLUMNS_PER_BLOCK, score_blocks

CASES = ((300, 8), (1000, 1000))     # (N, every how many blocks one is priced)
FLOOR = 0.97


def _cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def _blocks(D: Dictionary, every: int) -> list[tuple[int, int, int]]:
    out = []
    for fi, f in enumerate(D.families):
        per = max(1, COLUMNS_PER_BLOCK // f.n_labelings)
        out += [(fi, s, min(per, f.n_sets - s)) for s in range(0, f.n_sets, per)][::every]
    return out


def _run(D, r, blocks, norms, floor, prescreen):
    """Wall and CPU seconds of one sweep over ``blocks``, and its largest score."""
    t0, c0 = time.perf_counter(), _cpu()
    best = max(b.best for b in score_blocks(D, r, blocks, [norms] * len(blocks), floor, floor, 1, prescreen))
    return time.perf_counter() - t0, _cpu() - c0, best


def main() -> None:
    print(f"{'N':>5} {'thr':>3} {'pass':>6} {'columns':>11} {'f64 Mcol/s':>10} {'/cpu-s':>7} "
          f"{'f32 Mcol/s':>10} {'/cpu-s':>7} {'ratio cpu':>9} {'load':>5}")
    for n, every in CASES:
        rng = np.random.default_rng(0)
        X = rng.normal(size=(n, 2))
        r = rng.normal(size=n)
        r -= r.mean()
        D = Dictionary(X, 3)
        blocks = _blocks(D, every)
        cols = sum(c * D.families[fi].n_labelings for fi, _, c in blocks)
        _run(D, r, blocks[:2], False, 0.0, True)                       # compile / load
        top = _run(D, r, blocks, False, None, False)[2]
        for threads in (1, 2):
            numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
            for norms in (False, True):
                old = _run(D, r, blocks, norms, FLOOR * top, False)
                new = _run(D, r, blocks, norms, FLOOR * top, True)
                assert new[2] == old[2] == top, (new[2], old[2], top)
                print(f"{n:>5} {threads:>3} {'norms' if norms else 'scores':>6} {cols:>11,} "
                      f"{cols / old[0] / 1e6:>10.2f} {cols / old[1] / 1e6:>7.2f} "
                      f"{cols / new[0] / 1e6:>10.2f} {cols / new[1] / 1e6:>7.2f} {old[1] / new[1]:>9.2f} "
                      f"{os.getloadavg()[0]:>5.1f}", flush=True)
    numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)


if __name__ == "__main__":
    main()
