"""Embedding through the store's cache: vectors are keyed by (encoder fingerprint, sha256 of the text).

A re-run with the same model embeds only the texts it has not seen. The store is anything with
``get_embeddings(fingerprint, text_hashes) -> {hash: vector}`` and
``put_embeddings(fingerprint, text_hashes, vectors)`` (``data.store.Store``).
"""
from __future__ import annotations

import hashlib
import logging

import numpy as np

from .encoders import check_texts

__all__ = ["embed_texts", "text_hash"]

logger = logging.getLogger(__name__)


def text_hash(text: str) -> str:
    """sha256 hex digest of the UTF-8 bytes of ``text``."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def embed_texts(encoder, texts, store, batch_size: int = 64, progress: bool = True) -> tuple[np.ndarray, dict]:
    """``(vectors, stats)``: float32 ``(len(texts), encoder.dim)`` vectors, cached ones taken from ``store``.

    Only distinct texts missing from the cache are encoded, then added to it.
    ``stats = {"cached": distinct texts found in the cache, "embedded": distinct texts encoded now}``.
    """
    texts = check_texts(texts)
    hashes = [text_hash(t) for t in texts]
    first = dict(zip(hashes, texts))  # distinct texts by hash, in order of first appearance
    found = store.get_embeddings(encoder.fingerprint, list(first))
    wrong = next((h for h, v in found.items() if np.shape(v) != (encoder.dim,)), None)
    if wrong is not None:
        raise ValueError(f"the cache holds a {np.shape(found[wrong])} vector for text hash {wrong} under fingerprint "
                         f"{encoder.fingerprint}; {encoder.name} gives {encoder.dim}-dimensional vectors")
    missing = [h for h in first if h not in found]
    if missing:
        new = encoder.encode([first[h] for h in missing], batch_size=batch_size, progress=progress)
        store.put_embeddings(encoder.fingerprint, missing, new)
        found.update(zip(missing, new))
    stats = {"cached": len(first) - len(missing), "embedded": len(missing)}
    logger.info("took %d embeddings from the cache, embedded %d new", stats["cached"], stats["embedded"])
    vectors = np.array([found[h] for h in hashes], dtype=np.float32).reshape(len(texts), encoder.dim)
    return vectors, stats
