"""Corpora and the store: where texts come from and where every result is kept."""
from .corpora import Corpus, CorpusError, list_corpora, load_corpus

__all__ = ["Corpus", "CorpusError", "list_corpora", "load_corpus"]
