"""Embeddings: text encoders with a content fingerprint, the store-backed vector cache, and reductions."""
from .cache import embed_texts, text_hash
from .encoders import Encoder, EncoderError, load_encoder
from .reduce import Reduction

__all__ = ["Encoder", "EncoderError", "Reduction", "embed_texts", "load_encoder", "text_hash"]
