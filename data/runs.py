"""A run's start in the store: its corpus kept and the run created, and the corpus snapshot file.

``start_run`` is the pipeline's load step without Prefect (``flows.pipeline.load_step`` calls it); the
store's API is docs/STORE_CONTRACT.md.
"""
from __future__ import annotations

import os
from pathlib import Path

from .corpora import Corpus
from .store import Store, run_process


def start_run(store: Store, corpus: Corpus, config: dict, run_id: str, prefect: dict) -> str:
    """Keep ``corpus`` in the store and create run ``run_id`` (status "running", step "corpus" done, this
    process recorded for liveness, ``prefect`` the flow run executing it); returns the corpus id."""
    corpus_id = store.add_corpus(corpus.frame, corpus.provenance)
    store.create_run(config, run_id, status="running", steps=("corpus",),
                     info={"corpus": {"corpus_id": corpus_id, **corpus.provenance}, "prefect": prefect,
                           "process": run_process()})
    return corpus_id


def corpus_snapshot(store: Store, run_id: str, folder: str | os.PathLike) -> Path:
    """``folder/corpus.parquet``: the run's corpus (text, target, split), written from the store when missing."""
    path = Path(folder) / "corpus.parquet"
    if not path.is_file():
        frame, _ = store.get_corpus(store.get_run(run_id)["info"]["corpus"]["corpus_id"])
        frame.to_parquet(path.with_suffix(".parquet.part"), index=False)
        os.replace(path.with_suffix(".parquet.part"), path)
    return path
