"""The embedding steps of a pipeline run, against a store passed in (``data.store.Store``'s methods).

``embed_run`` embeds the run's texts through the store's cache; ``reduce_run`` fits the reduction on the
training split, stores every point's coordinates and the reduction, and records the target signal the
reduction keeps. ``flows.pipeline`` wraps each in one Prefect task.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from .cache import embed_texts, text_hash
from .reduce import Reduction, signal_kept

__all__ = ["embed_run", "reduce_run"]


def embed_run(store, run_id: str, corpus_path, encoder, batch_size: int = 64) -> str:
    """Embed the texts of ``corpus_path`` (the run's corpus snapshot) through the store's cache, record the
    model and the cache statistics in the run's info, mark step "embed"; returns the encoder's fingerprint."""
    texts = pd.read_parquet(corpus_path, columns=["text"])["text"].tolist()
    _, stats = embed_texts(encoder, texts, store, batch_size=batch_size, progress=True)
    model = {"name": encoder.name, "kind": encoder.kind, "dim": encoder.dim, "fingerprint": encoder.fingerprint}
    store.update_run(run_id, info={"model": model, "embeddings": {**model, "n_texts": len(texts), **stats}})
    store.mark_step(run_id, "embed")
    return encoder.fingerprint


def reduce_run(store, run_id: str, corpus_path, fingerprint: str, reduction: Reduction) -> None:
    """Fit ``reduction`` on the training split's cached vectors (and targets), store every point's coordinates
    and the reduction's parameters, record its summary and (with >= 2 test points) the signal it keeps (a linear
    probe on the full vectors vs the reduced points, run info ``signal``), mark step "reduce"."""
    frame = pd.read_parquet(corpus_path)
    hashes = [text_hash(t) for t in frame["text"]]
    cached = store.get_embeddings(fingerprint, hashes)
    if len(cached) < len(set(hashes)):
        raise RuntimeError(f"run {run_id}: {len(set(hashes)) - len(cached)} embeddings are missing from the cache "
                           f"(fingerprint {fingerprint})")
    vectors = np.stack([cached[h] for h in hashes])
    train = (frame["split"] == "train").to_numpy()
    y = frame["target"].to_numpy(float)
    points = reduction.fit(vectors[train], y[train]).transform(vectors)
    store.put_points(run_id, frame.assign(idx=np.arange(len(frame)), coords=points.tolist()))
    params = reduction.to_dict()
    store.put_reduction(run_id, params)
    info = {"reduction": {k: v for k, v in params.items() if np.ndim(v) == 0 or k == "explained_variance_ratio"}}
    if (~train).sum() >= 2:
        info["signal"] = signal_kept(vectors, y, train, points)
    store.update_run(run_id, info=info)
    store.mark_step(run_id, "reduce")
