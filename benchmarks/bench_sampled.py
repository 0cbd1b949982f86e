"""Sampled Lasso against gradient training past d = 3 (issue 13), side by side.

The built-in ``adjectives`` corpus (160 texts, all-MiniLM-L6-v2), PCA to d = 5 and d = 10, depth 2
and 3, beta = 0.05 beta_max: the best of two Adam-trained parallel networks (width 32), the sampled
Lasso alone, and the sampled Lasso seeded with those networks' neurons (as columns and snapped
to planes through training points). Seeded must end at or below the best network: printed as
``seeded <= network``. Objectives are comparable (same beta, docs/MATH.md section 1); times are noisy.
"""
from __future__ import annotations

import time

CASES = [(5, 2), (5, 3), (10, 2), (10, 3)]
N_POINTS, WIDTH, SEEDS, EPOCHS, N_SAMPLES = 160, 32, (0, 1), 3000, 2000


def _points(d: int):
    from data.corpora import load_corpus
    from embeddings.encoders import load_encoder
    from embeddings.reduce import Reduction
    corpus = load_corpus("adjectives", max_points=N_POINTS, seed=0, test_size=0.0)
    vectors = load_encoder(device="cpu").encode(corpus.frame["text"].tolist(), progress=False)
    return Reduction("pca", n_components=d).fit_transform(vectors), corpus.frame["target"].to_numpy(float)


def main() -> None:
    from analysis import ReflectionLasso
    from analysis.network import ParallelAbsNet
    from analysis.training import train
    print(f"{'d':>3} {'L':>2} {'beta':>8} {'network':>10} {'sampled':>10} {'seeded':>10} {'seeded<=net':>11} "
          f"{'net s':>6} {'sampled s':>9} {'seeded s':>8}")
    cache = {}
    for d, depth in CASES:
        if d not in cache:
            cache[d] = _points(d)
        X, y = cache[d]
        t0 = time.perf_counter()
        plain = ReflectionLasso(depth=depth, candidates="sampled", beta_min_ratio=0.05, n_samples=N_SAMPLES,
                                random_state=0).fit(X, y)
        t_plain = time.perf_counter() - t0
        beta = plain.beta_
        t0 = time.perf_counter()
        res = train(ParallelAbsNet(d, depth, WIDTH), X, y, beta, max_epochs=EPOCHS, seeds=SEEDS, progress=False)
        t_net = time.perf_counter() - t0
        W, b, C, _, _ = res.net.unit_features()
        t0 = time.perf_counter()
        seeded = ReflectionLasso(depth=depth, beta=beta, candidates="sampled", n_samples=N_SAMPLES, random_state=0,
                                 init_neurons=(W, b, C)).fit(X, y)
        t_seeded = time.perf_counter() - t0
        ok = seeded.objective_ <= res.best_objective * (1 + 1e-9)
        print(f"{d:>3} {depth:>2} {beta:>8.4g} {res.best_objective:>10.6g} {plain.objective_:>10.6g} "
              f"{seeded.objective_:>10.6g} {str(ok):>11} {t_net:>6.1f} {t_plain:>9.1f} {t_seeded:>8.1f}", flush=True)
    print("network: best of seeds", SEEDS, f"(Adam, width {WIDTH}, {EPOCHS} epochs); sampled: random draws and "
          "local search; seeded: the same plus the network's neurons as columns and snapped to training points")


if __name__ == "__main__":
    main()
