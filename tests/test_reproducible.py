"""A study is a function of its seeds: inputs that do not depend on the embedding cache's history, the same cell
twice gives the same numbers, and a fold that bends no training point is not counted as a fold."""
import json
from dataclasses import asdict

import numpy as np
import pandas as pd


def test_study_inputs_do_not_depend_on_what_the_cache_held(tmp_path):
    """Seed 0's vectors (adjectives, the packaged MiniLM) in a fresh workspace and in one where the default run's
    200 texts and then seed 1 were embedded first are bitwise equal: batched encodings differed in their last bits
    (up to 2.7e-7), which flipped the Lasso between columns equal on the data and moved the trained networks."""
    from data.corpora import load_corpus
    from data.store import Store
    from embeddings.cache import embed_texts
    from embeddings.encoders import load_encoder
    from flows.study import StudyConfig, prepare
    arrays = []
    for name, seeds in (("fresh", (0,)), ("used", (1, 0))):
        cfg = StudyConfig(max_points=80, workspace=str(tmp_path / name))
        if name == "used":                        # what `lookingglass run` leaves in the cache
            texts = load_corpus("adjectives", max_points=200, seed=0).frame["text"].tolist()
            embed_texts(load_encoder("all-MiniLM-L6-v2", device="cpu"), texts, Store(cfg.workspace), progress=False)
        paths = [prepare.fn(asdict(cfg), "adjectives", "all-MiniLM-L6-v2", s) for s in seeds]
        arrays.append(np.load(paths[-1]))
    assert list(arrays[0]["texts"]) == list(arrays[1]["texts"])
    assert np.array_equal(arrays[0]["vectors"], arrays[1]["vectors"])


def test_the_same_cell_twice_gives_the_same_numbers():
    from flows.study import StudyConfig, run_cell
    rng = np.random.default_rng(1)
    V = rng.normal(size=(36, 4))
    y = np.abs(V[:, 0] - 0.3) + 0.1 * rng.normal(size=36)
    train = np.arange(36) < 28
    c = StudyConfig(depths=(2, 3), epochs=100, network_seeds=(0,), width=6, n_boot=20, n_null=20,
                    stability_resamples=2)
    runs = [run_cell(V, y, train, "pca", 0, c) for _ in range(2)]
    for r in runs:
        r.pop("wall_s")
    assert json.dumps(runs[0], sort_keys=True, default=str) == json.dumps(runs[1], sort_keys=True, default=str)


def _parallel(a, b) -> bool:
    a, b = a - a.mean(), b - b.mean()
    return np.linalg.matrix_rank(np.column_stack([a, b]), tol=1e-9 * max(np.abs(a).max(), 1.0)) < 2


def test_a_fold_that_bends_no_training_point_counts_as_its_plane():
    """The pls1 case: a reflection whose offset puts its kink on the outermost point equals the plane on the data
    (checked here against the columns themselves), so it is neither a fold nor a mirror plane."""
    from analysis.geometry import feature_values
    from analysis.symmetry import bending, mirror_planes
    from flows.study import _kinds
    X = np.linspace(-1.794, 2.016, 30)[:, None]
    a = 1.85847
    flat, bent = a - X.min(), 1.0                 # kink on the lowest point; kink inside the data
    feats = pd.DataFrame({"id": ["f", "g"], "kind": ["reflection", "reflection"], "w": [[-1.0], [-1.0]],
                          "b": [a, a], "offsets": [(flat,), (bent,)], "coef": [-0.3, 0.2]})
    plane = feature_values(X, np.array([[1.0]]), np.array([-a]))[:, 0]
    cols = [feature_values(X, np.array(r.w)[None], np.array([r.b]), np.array([r.offsets]))[:, 0]
            for r in feats.itertuples()]
    assert _parallel(cols[0], plane) and not _parallel(cols[1], plane)
    assert bending(feats, X).tolist() == [[False], [True]]
    assert _kinds(feats, X) == {"kinds": {"plane": 1, "reflection": 1}, "n_fold": 1}
    assert [p["id"] for p in mirror_planes(feats, 3, X=X)] == ["g"]
    assert [p["id"] for p in mirror_planes(feats, 3)] == ["f", "g"]
