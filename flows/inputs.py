"""A run's inputs checked before Prefect, a server or a model starts: options, corpus and model.

``check_inputs(cfg)`` loads the corpus exactly as the pipeline's load step will (same sample,
same split) and finds the model's folder (``embeddings.encoders.resolve_model``: a folder with
``config.json`` or ``modules.json``, the packaged MiniLM, or a Hugging Face snapshot), without
importing Prefect, torch or transformers, so bad input ends within seconds.
"""
from __future__ import annotations

from .config import RunConfig


def load_run_corpus(cfg: RunConfig):
    """The run's corpus: ``data.corpora.load_corpus`` with the run's options (enough points for the fit)."""
    from data.corpora import load_corpus
    return load_corpus(cfg.corpus, text_column=cfg.text_column, target=cfg.target, task=cfg.task,
                       max_points=cfg.max_points, seed=cfg.seed, test_size=cfg.test_size,
                       min_points=cfg.n_components + max(cfg.depths))


def check_inputs(cfg: RunConfig) -> None:
    """Raise the one-line error of a bad corpus, column, target or model (ValueError, LookupError, OSError)."""
    load_run_corpus(cfg)
    from embeddings.encoders import resolve_model
    resolve_model(cfg.model)
