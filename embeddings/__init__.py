"""Embeddings: text encoders with a content fingerprint, the store-backed vector cache, and reductions.

The names below are imported on first use (PEP 562), so checking a model folder
(``embeddings.encoders.resolve_model``) does not load scikit-learn or torch.
"""
import importlib

_HOME = {"embed_texts": "cache", "text_hash": "cache", "Encoder": "encoders", "EncoderError": "encoders",
         "load_encoder": "encoders", "Reduction": "reduce"}

__all__ = sorted(_HOME)


def __getattr__(name: str):
    if name not in _HOME:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f".{_HOME[name]}", __name__), name)
