"""Text corpora with a numeric target: cleaned, deduplicated, sampled and split, with provenance.

``load_corpus(source)`` reads a built-in lexicon (``adjectives``, ``vader``, ``afinn``), a CSV,
TSV, JSONL or Parquet file, a folder of class sub-folders, a Hugging Face ``save_to_disk``
folder or ``hf:NAME[:CONFIG]``, and returns a :class:`Corpus` whose frame has one row per text:
``id, text, target, label, split``. Regression targets are floats; two classes map to -1/+1.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ._sources import BUILTINS, CorpusError, Raw, builtin_frame, read_source

__all__ = ["Corpus", "CorpusError", "list_corpora", "load_corpus"]

logger = logging.getLogger(__name__)

TASKS = ("auto", "regression", "classification")


@dataclass
class Corpus:
    """A loaded corpus: ``frame`` (id, text, target, label, split), ``provenance``, ``task``, ``name``."""

    name: str
    frame: pd.DataFrame
    provenance: dict
    task: str

    def __len__(self) -> int:
        return len(self.frame)


def list_corpora() -> list[dict]:
    """The built-in corpora: name, description, size (raw entries) and targets."""
    return [{"name": name, "description": spec.description, "size": len(builtin_frame(name)),
             "targets": list(spec.targets)} for name, spec in BUILTINS.items()]


def load_corpus(source: str = "adjectives", *, text_column: str | None = None, target: str | None = None,
                max_points: int | None = None, seed: int = 0, test_size: float = 0.2, task: str = "auto",
                min_points: int = 0, hf_split: str = "train") -> Corpus:
    """Load, clean, sample and split a corpus.

    Texts are stripped; an empty or whitespace text is an error naming its row. Duplicate texts
    keep their first occurrence (the number dropped is in the provenance, and so is the number of
    dropped copies whose target differs from the kept one, ``n_conflicting_duplicates``, with a warning).

    Parameters
    ----------
    source : str, default "adjectives"
        A built-in corpus (``"adjectives"``, ``"vader"``, ``"afinn"``: see :func:`list_corpora`),
        a CSV, TSV, JSONL or Parquet file, a folder with one sub-folder of ``.txt`` files per class
        (two classes), a Hugging Face ``save_to_disk`` folder, or ``"hf:NAME[:CONFIG]"`` (online).
    text_column : str, optional
        The column holding the texts in a file or dataset (guessed when there is one text column).
    target : str, optional
        The target column, or a built-in corpus's target (e.g. ``"subjectivity"``); by default
        the first of the corpus's targets.
    max_points : int, optional
        Size of a uniform sample drawn with ``seed`` (stratified by class); all texts when None.
    seed : int, default 0
        Seed of the sample and of the train/test split.
    test_size : float, default 0.2
        Fraction of the sampled texts held out as ``split == "test"`` (stratified), in [0, 1).
    task : {"auto", "regression", "classification"}, default "auto"
        ``"auto"`` picks classification for a target with exactly two distinct values or
        non-numeric values, regression otherwise.
    min_points : int, default 0
        Training points the caller needs; fewer is an error saying how many there are.
    hf_split : str, default "train"
        The split of a Hugging Face dataset to read.

    Returns
    -------
    Corpus
        ``name``, ``task``, ``provenance`` (source, file hash or package version, counts of
        duplicates dropped and points sampled, seed) and ``frame``: one row per text with columns
        ``id`` (str), ``text``, ``target`` (float; -1/+1 for two classes), ``label`` (the class
        name, or None for regression) and ``split`` ("train" or "test").

    Raises
    ------
    CorpusError
        A one-line message naming the file, row or option at fault.

    Examples
    --------
    >>> from data import load_corpus
    >>> corpus = load_corpus("vader", max_points=50, seed=0)
    >>> len(corpus), corpus.task, corpus.provenance["target"]
    (50, 'regression', 'valence')
    >>> list(corpus.frame.columns)
    ['id', 'text', 'target', 'label', 'split']
    >>> corpus.frame["split"].value_counts().to_dict()
    {'train': 40, 'test': 10}
    """
    _check_options(max_points, seed, test_size, task, min_points)
    raw = read_source(str(source), text_column=text_column, target=target, hf_split=hf_split)
    n_raw = len(raw.frame)
    if n_raw == 0:
        raise CorpusError(f"{raw.origin}: the corpus has no rows")
    texts = _texts(raw)
    task, y, labels, classes = _targets(raw, task)
    first = ~texts.duplicated().to_numpy()
    kept = pd.Series(y, index=texts.index).groupby(texts.to_numpy()).transform("first").to_numpy()
    conflicting = np.flatnonzero(~first & (kept != y))
    if len(conflicting):
        logger.warning("%s: %d duplicate texts carry another target than their first copy (kept); the first: "
                       "%r", raw.where(conflicting[0]), len(conflicting), texts.iloc[conflicting[0]][:80])
    rows = np.flatnonzero(first)
    rng = np.random.default_rng(seed)
    strata = labels[rows] if labels is not None else None
    if max_points is not None and max_points < len(rows):
        rows = rows[_subset(len(rows), strata, max_points, rng)]
        strata = labels[rows] if labels is not None else None
    split = np.full(len(rows), "train", dtype=object)
    if test_size > 0:
        split[_subset(len(rows), strata, int(np.ceil(test_size * len(rows))), rng, keep_one=True)] = "test"
    frame = pd.DataFrame({"id": raw.frame["id"].to_numpy()[rows], "text": texts.to_numpy()[rows],
                          "target": y[rows],
                          "label": labels[rows] if labels is not None else np.full(len(rows), None, object),
                          "split": split})
    _check_sizes(raw, frame, task, min_points, max_points)
    n_train = int((frame["split"] == "train").sum())
    provenance = {**raw.provenance, "source": str(source), "name": raw.name, "target": raw.target, "task": task,
                  "n_raw": n_raw, "n_duplicates_dropped": int(n_raw - first.sum()),
                  "n_conflicting_duplicates": len(conflicting),
                  "n_sampled_out": int(first.sum() - len(frame)), "n_points": len(frame), "n_train": n_train,
                  "n_test": len(frame) - n_train, "max_points": max_points, "seed": seed, "test_size": test_size}
    if classes is not None:
        provenance["classes"] = {classes[0]: -1, classes[1]: 1}
    logger.info("corpus %s: %d rows, %d duplicate texts dropped, %d points (%d train, %d test), %s",
                raw.name, n_raw, provenance["n_duplicates_dropped"], len(frame), n_train,
                provenance["n_test"], task)
    return Corpus(name=raw.name, frame=frame, provenance=provenance, task=task)


def _check_options(max_points, seed, test_size, task, min_points) -> None:
    if task not in TASKS:
        raise CorpusError(f"task '{task}' is not one of: {', '.join(TASKS)}")
    for name, value, low in (("max_points", max_points, 1), ("seed", seed, 0), ("min_points", min_points, 0)):
        if name == "max_points" and value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
            raise CorpusError(f"{name} must be an integer >= {low}, got {value!r}")
    if isinstance(test_size, bool) or not isinstance(test_size, (int, float)) or not 0 <= test_size < 1:
        raise CorpusError(f"test_size must be a fraction in [0, 1), got {test_size!r}")


def _texts(raw: Raw) -> pd.Series:
    """Stripped texts; the first missing, empty or whitespace text is an error naming its row."""
    texts = raw.frame["text"].map(lambda t: str(t).strip() if isinstance(t, str) or pd.notna(t) else "")
    empty = np.flatnonzero((texts == "").to_numpy())
    if len(empty):
        raise CorpusError(f"{raw.where(empty[0])}: the text is empty or whitespace "
                          f"({len(empty)} such row{'s' if len(empty) > 1 else ''})")
    return texts


def _targets(raw: Raw, task: str) -> tuple[str, np.ndarray, np.ndarray | None, list[str] | None]:
    """``(task, y, labels, classes)``: floats for regression; -1/+1, labels and class order for classes."""
    values = raw.frame["target"].map(lambda v: v.strip() if isinstance(v, str) else v)
    missing = np.flatnonzero((values.isna() | (values == "")).to_numpy())
    if len(missing):
        raise CorpusError(f"{raw.where(missing[0])}: the target ('{raw.target}') is missing")
    numbers = pd.to_numeric(values, errors="coerce").astype(float).to_numpy()
    numeric = ~np.isnan(numbers)
    if task == "auto":
        two = numeric.all() and len(np.unique(numbers)) == 2
        task = raw.task or ("classification" if two or not numeric.any() else "regression")
    if task == "regression":
        bad = np.flatnonzero(~np.isfinite(numbers))
        if len(bad):
            raise CorpusError(f"{raw.where(bad[0])}: the target ('{raw.target}') "
                              f"{values.iloc[bad[0]]!r} is not a finite number")
        return task, numbers, None, None
    if raw.classes is None and numeric.all():
        labels = np.array([f"{x:g}" for x in numbers], dtype=object)
        classes = sorted(set(labels), key=float)
    else:
        labels = values.astype(str).to_numpy(dtype=object)
        present = set(labels)
        classes = [c for c in raw.classes if c in present] if raw.classes else sorted(present)
    if len(classes) != 2:
        shown = ", ".join(f"'{c}'" for c in classes[:8]) + (", ..." if len(classes) > 8 else "")
        raise CorpusError(f"{raw.origin}: {'only one class' if len(classes) == 1 else f'{len(classes)} classes'} "
                          f"({shown}) in '{raw.target}'; classification needs exactly two")
    return task, np.where(labels == classes[1], 1.0, -1.0), labels, classes


def _subset(n: int, strata: np.ndarray | None, size: int, rng: np.random.Generator,
            keep_one: bool = False) -> np.ndarray:
    """Sorted positions of a uniform random subset of ``size`` of ``n`` rows, stratified by ``strata``.

    Each class gets its share ``size * n_c / n`` rounded by largest remainder; ``keep_one``
    leaves at least one row of every class outside the subset (so the training split has them all).
    """
    if strata is None:
        return np.sort(rng.choice(n, size, replace=False))
    classes, inverse = np.unique(strata, return_inverse=True)
    counts = np.bincount(inverse)
    quota = counts * size / n
    take = np.floor(quota).astype(int)
    take[np.argsort(take - quota, kind="stable")[:size - take.sum()]] += 1
    if keep_one:
        take = np.minimum(take, counts - 1)
    return np.sort(np.concatenate([rng.choice(np.flatnonzero(inverse == k), t, replace=False)
                                   for k, t in enumerate(take)]))


def _check_sizes(raw: Raw, frame: pd.DataFrame, task: str, min_points: int, max_points: int | None) -> None:
    train = frame[frame["split"] == "train"]
    if task == "classification":
        missing = sorted(set(frame["label"]) - set(train["label"]))
        if missing:
            raise CorpusError(f"{raw.origin}: class '{missing[0]}' has too few points for a training split "
                              f"(lower test_size or raise max_points)")
    if len(train) < min_points:
        hint = f" (max_points={max_points})" if max_points is not None else ""
        raise CorpusError(f"{raw.origin}: {len(train)} training points after cleaning{hint} and the test split, "
                          f"fewer than the {min_points} needed; give a larger corpus or max_points, or a "
                          f"smaller depth or test_size")
