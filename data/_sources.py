"""Readers that turn a corpus source into raw rows ``id, text, target`` with provenance.

Sources: the built-in lexicons (read at run time from their installed packages), CSV, TSV,
JSONL and Parquet files, a folder with one sub-folder of ``.txt`` files per class, a Hugging
Face ``save_to_disk`` folder and a Hugging Face Hub dataset (``hf:NAME`` or ``hf:NAME:CONFIG``).
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from importlib import metadata, resources
from pathlib import Path

import pandas as pd
from tqdm.auto import tqdm

logger = logging.getLogger(__name__)


class CorpusError(ValueError):
    """A corpus source or option that cannot be used; the message names the file, row or option."""


@dataclass
class Raw:
    """Rows of a source before cleaning: ``frame`` has columns ``id``, ``text``, ``target``."""

    name: str
    origin: str
    frame: pd.DataFrame
    provenance: dict
    where: Callable[[int], str]
    target: str
    task: str | None = None
    classes: list[str] | None = field(default=None)


@dataclass(frozen=True)
class Builtin:
    """A lexicon shipped inside an installed package: ``parse(path)`` gives ``text`` and targets."""

    description: str
    package: str
    resource: str
    targets: tuple[str, ...]
    parse: Callable[[Path], pd.DataFrame]
    unit: str = "line"


def _adjectives(path: Path) -> pd.DataFrame:
    rows = [w.attrib for w in ET.parse(path).getroot().iter("word")]
    text = [f"{r['form']}: {r['sense'].strip()}" if r.get("sense", "").strip() else r["form"] for r in rows]
    return pd.DataFrame({"text": text,
                         "polarity": [r["polarity"] for r in rows],
                         "subjectivity": [r["subjectivity"] for r in rows]})


def _valence_list(path: Path) -> pd.DataFrame:
    """A tab-separated word list whose first two fields are the token and its valence."""
    rows = [line.split("\t") for line in path.read_text(encoding="utf-8").splitlines() if line]
    return pd.DataFrame({"text": [r[0] for r in rows], "valence": [r[1] for r in rows]})


BUILTINS: dict[str, Builtin] = {
    "adjectives": Builtin("TextBlob's English sentiment lexicon: adjective senses as 'word: gloss', "
                          "polarity in [-1, 1] and subjectivity in [0, 1]",
                          "textblob", "en/en-sentiment.xml", ("polarity", "subjectivity"), _adjectives,
                          unit="entry"),
    "vader": Builtin("VADER lexicon: words, emoticons and slang with mean human valence in [-4, 4]",
                     "vaderSentiment", "vader_lexicon.txt", ("valence",), _valence_list),
    "afinn": Builtin("AFINN-165: English words with integer valence in [-5, 5]",
                     "afinn", "data/AFINN-en-165.txt", ("valence",), _valence_list),
}


def builtin_path(name: str) -> Path:
    spec = BUILTINS[name]
    return Path(str(resources.files(spec.package).joinpath(spec.resource)))


@cache
def builtin_frame(name: str) -> pd.DataFrame:
    """The parsed lexicon (cached; callers copy before changing it)."""
    return BUILTINS[name].parse(builtin_path(name))


def sha256_files(paths: list[Path], root: Path | None = None) -> str:
    """SHA-256 over the files' relative names (when ``root`` is given) and bytes."""
    h = hashlib.sha256()
    for p in paths:
        if root is not None:
            h.update(str(p.relative_to(root)).encode() + b"\0")
        h.update(p.read_bytes())
    return h.hexdigest()


def read_source(source: str, *, text_column: str | None, target: str | None, hf_split: str) -> Raw:
    """Dispatch on the source: built-in name, ``hf:`` dataset, folder or file."""
    if source in BUILTINS:
        return _read_builtin(source, text_column, target)
    if source.startswith("hf:"):
        return _read_hf_hub(source, text_column, target, hf_split)
    path = Path(source).expanduser()
    if not path.exists():
        raise CorpusError(f"corpus '{source}' not found: no such file or folder, not a built-in corpus "
                          f"({', '.join(BUILTINS)}), and not a Hugging Face dataset (give hf:NAME)")
    if path.is_dir():
        if (path / "dataset_dict.json").exists() or (path / "state.json").exists():
            return _read_hf_disk(path, text_column, target, hf_split)
        return _read_folder(path, text_column, target)
    readers = {".csv": _read_csv, ".tsv": _read_csv, ".tab": _read_csv, ".jsonl": _read_jsonl,
               ".ndjson": _read_jsonl, ".parquet": _read_parquet, ".pq": _read_parquet}
    reader = readers.get(path.suffix.lower())
    if reader is None:
        raise CorpusError(f"{path}: unsupported format '{path.suffix}' (use .csv, .tsv, .jsonl, .parquet, "
                          f"a folder of class sub-folders or a Hugging Face save_to_disk folder)")
    table, where = reader(path)
    text_column, target = _pick_columns(list(table.columns), str(path), text_column, target)
    return Raw(name=path.stem, origin=str(path), frame=_frame(table, text_column, target, range(len(table))),
               provenance={"kind": path.suffix.lower().lstrip("."), "path": str(path.resolve()),
                           "sha256": sha256_files([path]), "text_column": text_column},
               where=where, target=target)


def _frame(table: pd.DataFrame, text_column: str, target: str, ids) -> pd.DataFrame:
    return pd.DataFrame({"id": [str(i) for i in ids], "text": list(table[text_column]),
                         "target": list(table[target])})


def _pick_columns(columns: list[str], origin: str, text_column: str | None,
                  target: str | None) -> tuple[str, str]:
    """Check the chosen columns exist (defaults: ``text``; ``target`` else ``label``)."""
    text_column = text_column or "text"
    target = target or next((c for c in ("target", "label") if c in columns), "target")
    for option, column in (("text_column", text_column), ("target", target)):
        if column not in columns:
            raise CorpusError(f"{origin}: no column '{column}' (option {option}); "
                              f"columns are: {', '.join(map(str, columns))}")
    return text_column, target


def _read_builtin(name: str, text_column: str | None, target: str | None) -> Raw:
    spec = BUILTINS[name]
    if text_column is not None:
        raise CorpusError(f"text_column '{text_column}' applies to files; the built-in corpus '{name}' "
                          f"has fixed texts")
    target = target or spec.targets[0]
    if target not in spec.targets:
        raise CorpusError(f"target '{target}' is not a target of the built-in corpus '{name}' "
                          f"(choose from: {', '.join(spec.targets)})")
    path = builtin_path(name)
    table = builtin_frame(name)
    return Raw(name=name, origin=str(path), frame=_frame(table, "text", target, range(len(table))),
               provenance={"kind": "builtin", "description": spec.description, "path": str(path),
                           "package": spec.package, "package_version": metadata.version(spec.package),
                           "sha256": sha256_files([path])},
               where=lambda i: f"{path} {spec.unit} {i + 1}", target=target, task="regression")


def _read_csv(path: Path) -> tuple[pd.DataFrame, Callable[[int], str]]:
    sep = "," if path.suffix.lower() == ".csv" else "\t"
    try:
        table = pd.read_csv(path, sep=sep, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    except UnicodeDecodeError as e:
        raise CorpusError(f"{path}: not UTF-8 text ({e.reason} at byte {e.start})") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as e:
        raise CorpusError(f"{path}: cannot parse as {'CSV' if sep == ',' else 'TSV'}: "
                          f"{str(e).strip().splitlines()[-1]}") from None
    return table, lambda i: f"{path} line {i + 2}"


def _read_jsonl(path: Path) -> tuple[pd.DataFrame, Callable[[int], str]]:
    records, lines = [], []
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as e:
        raise CorpusError(f"{path}: not UTF-8 text ({e.reason} at byte {e.start})") from None
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as e:
            raise CorpusError(f"{path} line {number}: invalid JSON ({e.msg})") from None
        if not isinstance(record, dict):
            raise CorpusError(f"{path} line {number}: expected a JSON object, got {type(record).__name__}")
        records.append(record)
        lines.append(number)
    if not records:
        raise CorpusError(f"{path}: no JSON records")
    return pd.DataFrame.from_records(records), lambda i: f"{path} line {lines[i]}"


def _read_parquet(path: Path) -> tuple[pd.DataFrame, Callable[[int], str]]:
    try:
        table = pd.read_parquet(path)
    except Exception as e:  # pyarrow raises several types for a bad file
        raise CorpusError(f"{path}: cannot read as Parquet ({str(e).splitlines()[0]})") from None
    return table, lambda i: f"{path} row {i}"


def _read_folder(path: Path, text_column: str | None, target: str | None) -> Raw:
    if text_column is not None or target is not None:
        raise CorpusError(f"{path}: a folder corpus takes its texts from the files and its classes from the "
                          f"sub-folder names; do not give text_column or target")
    classes = sorted(p for p in path.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not classes:
        raise CorpusError(f"{path}: a folder corpus needs one sub-folder of .txt files per class; found none")
    files = []
    for folder in classes:
        found = sorted(folder.glob("*.txt"))
        if not found:
            raise CorpusError(f"{folder}: no .txt files in this class folder")
        files += found
    texts = []
    for f in tqdm(files, desc=f"reading {path.name}", unit="file", disable=None):
        try:
            texts.append(f.read_text(encoding="utf-8"))
        except UnicodeDecodeError as e:
            raise CorpusError(f"{f}: not UTF-8 text ({e.reason} at byte {e.start})") from None
    ids = [str(f.relative_to(path)) for f in files]
    frame = pd.DataFrame({"id": ids, "text": texts, "target": [f.parent.name for f in files]})
    return Raw(name=path.name, origin=str(path), frame=frame,
               provenance={"kind": "folder", "path": str(path.resolve()), "sha256": sha256_files(files, path)},
               where=lambda i: str(files[i]), target="folder", task="classification")


def _from_hf(ds, name: str, origin: str, text_column: str | None, target: str | None,
             provenance: dict) -> Raw:
    """Rows of a ``datasets.Dataset``; a ClassLabel target keeps its class names and order."""
    import datasets

    text_column, target = _pick_columns(ds.column_names, origin, text_column, target)
    table = ds.select_columns([text_column, target]).to_pandas()
    feature = ds.features[target]
    classes = None
    if isinstance(feature, datasets.ClassLabel):
        classes = list(feature.names)
        table[target] = [feature.int2str(int(v)) for v in table[target]]
    return Raw(name=name, origin=origin, frame=_frame(table, text_column, target, range(len(table))),
               provenance={**provenance, "text_column": text_column,
                           "datasets_version": metadata.version("datasets")},
               where=lambda i: f"{origin} row {i}", target=target,
               task="classification" if classes else None, classes=classes)


def _read_hf_disk(path: Path, text_column: str | None, target: str | None, hf_split: str) -> Raw:
    import datasets

    try:
        ds = datasets.load_from_disk(str(path))
    except Exception as e:  # datasets raises several types for a damaged folder
        raise CorpusError(f"{path}: cannot load as a Hugging Face save_to_disk folder "
                          f"({str(e).splitlines()[0]})") from None
    if isinstance(ds, datasets.DatasetDict):
        if hf_split not in ds:
            raise CorpusError(f"{path}: no split '{hf_split}' (option hf_split); splits are: {', '.join(ds)}")
        ds = ds[hf_split]
    files = sorted(p for p in path.rglob("*") if p.is_file())
    return _from_hf(ds, path.name, str(path), text_column, target,
                    {"kind": "hf_disk", "path": str(path.resolve()), "split": hf_split,
                     "sha256": sha256_files(files, path)})


def _read_hf_hub(source: str, text_column: str | None, target: str | None, hf_split: str) -> Raw:
    import datasets

    name, _, config = source[3:].partition(":")
    offline = any(os.environ.get(v, "0").lower() not in ("0", "", "false", "no")
                  for v in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"))
    logger.info("loading Hugging Face dataset %s (config %s, split %s)", name, config or "default", hf_split)
    try:
        ds = datasets.load_dataset(name, config or None, split=hf_split)
    except Exception as e:  # network, missing dataset, bad config or split
        hint = (" (offline: HF_HUB_OFFLINE is set and the dataset is not cached)" if offline else "")
        raise CorpusError(f"cannot load Hugging Face dataset '{name}'{hint}: {str(e).splitlines()[0]}; "
                          f"save it with Dataset.save_to_disk on a connected machine and give that folder") from None
    return _from_hf(ds, name, source, text_column, target,
                    {"kind": "hf_hub", "dataset": name, "config": config or None, "split": hf_split,
                     "dataset_version": str(ds.info.version) if ds.info.version else None})
