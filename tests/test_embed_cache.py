"""The embedding cache: only texts missing from the store are encoded, with a fake and the real store."""
import hashlib
import logging
import unicodedata

import numpy as np
import pytest

from data.store import Store
from embeddings.cache import embed_texts, text_hash


class CountingEncoder:
    """Deterministic 4-dimensional vectors from the text's md5; records every text it encodes."""

    name = "counting"
    dim = 4

    def __init__(self, fingerprint="fp-a"):
        self.fingerprint = fingerprint
        self.encoded = []

    def encode(self, texts, batch_size=64, progress=True):
        self.encoded.extend(texts)
        return np.array([self.vector(t) for t in texts], dtype=np.float32).reshape(len(texts), self.dim)

    @staticmethod
    def vector(text):
        return np.frombuffer(hashlib.md5(text.encode()).digest(), dtype=np.uint32)[:4] / 2.0 ** 32


class DictStore:
    """The two cache methods of data.store.Store, in memory."""

    def __init__(self):
        self.rows = {}

    def get_embeddings(self, fingerprint, text_hashes):
        return {h: self.rows[fingerprint, h] for h in text_hashes if (fingerprint, h) in self.rows}

    def put_embeddings(self, fingerprint, text_hashes, vectors):
        for h, v in zip(text_hashes, np.asarray(vectors, dtype=np.float32)):
            self.rows.setdefault((fingerprint, h), v)


TEXTS = ["good", "bad", "not bad at all", "good", "très bien"]


def _expected(texts):
    return np.array([CountingEncoder.vector(t) for t in texts], dtype=np.float32)


def test_text_hash_is_sha256_of_utf8():
    assert text_hash("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"  # FIPS 180-2
    assert text_hash("") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    nfc, nfd = "café", unicodedata.normalize("NFD", "café")
    assert text_hash(nfc) == hashlib.sha256(b"caf\xc3\xa9").hexdigest() != text_hash(nfd)


@pytest.mark.parametrize("make_store", [lambda tmp: DictStore(), lambda tmp: Store(tmp / "ws")], ids=["fake", "store"])
def test_second_call_embeds_nothing(tmp_path, make_store, caplog):
    store, encoder = make_store(tmp_path), CountingEncoder()
    vectors, stats = embed_texts(encoder, TEXTS, store, progress=False)
    assert stats == {"cached": 0, "embedded": 4}
    assert sorted(encoder.encoded) == sorted(set(TEXTS))  # the duplicate "good" is encoded once
    np.testing.assert_array_equal(vectors, _expected(TEXTS))

    encoder.encoded.clear()
    with caplog.at_level(logging.INFO, logger="embeddings.cache"):
        again, stats = embed_texts(encoder, TEXTS[::-1], store, progress=False)
    assert encoder.encoded == [] and stats == {"cached": 4, "embedded": 0}
    np.testing.assert_array_equal(again, _expected(TEXTS[::-1]))
    assert "took 4 embeddings from the cache, embedded 0 new" in caplog.text

    mixed, stats = embed_texts(encoder, ["bad", "new text", "good"], store, progress=False)
    assert encoder.encoded == ["new text"] and stats == {"cached": 2, "embedded": 1}
    np.testing.assert_array_equal(mixed, _expected(["bad", "new text", "good"]))


def test_real_store_keeps_cache_across_instances(tmp_path):
    embed_texts(CountingEncoder(), TEXTS, Store(tmp_path), progress=False)
    encoder = CountingEncoder()
    vectors, stats = embed_texts(encoder, TEXTS, Store(tmp_path), progress=False)
    assert encoder.encoded == [] and stats["cached"] == 4
    np.testing.assert_array_equal(vectors, _expected(TEXTS))


def test_fingerprints_do_not_share_vectors():
    store = DictStore()
    embed_texts(CountingEncoder("fp-a"), TEXTS, store, progress=False)
    other = CountingEncoder("fp-b")
    _, stats = embed_texts(other, TEXTS, store, progress=False)
    assert stats == {"cached": 0, "embedded": 4} and len(other.encoded) == 4


def test_empty_input_and_bad_cache():
    store, encoder = DictStore(), CountingEncoder()
    vectors, stats = embed_texts(encoder, [], store, progress=False)
    assert vectors.shape == (0, 4) and stats == {"cached": 0, "embedded": 0}
    with pytest.raises(TypeError, match="text 1 is NoneType"):
        embed_texts(encoder, ["a", None], store, progress=False)
    store.rows["fp-a", text_hash("x")] = np.zeros(3, dtype=np.float32)
    with pytest.raises(ValueError, match=r"\(3,\) vector .* 4-dimensional"):
        embed_texts(encoder, ["x"], store, progress=False)
