"""The documentation is part of the product: the README's Python examples run as pasted, the column
ids the docs show are ids the dictionary produces, and every reference points inside the repository."""
from __future__ import annotations

import doctest
import importlib
import math
import re
from pathlib import Path

import numpy as np
import pytest

from analysis.dictionary import Dictionary

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", ROOT / "ARCHITECTURE.md", *sorted((ROOT / "docs").glob("*.md"))]
PYTHON_FILES = [p for d in ("analysis", "data", "embeddings", "flows", "reports", "benchmarks", "tests")
                for p in sorted((ROOT / d).rglob("*.py")) if p.name != "test_docs.py"]
# anything shaped like a dictionary column id: L<family>:<points>[:<labels>]
ID_LIKE = re.compile(r"(?<![\w<])L(\d+):(\d+(?:-\d+)*)(?::([^\s`'\")]*))?")


def readme_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(encoding="utf-8"), re.S)


def test_readme_has_the_examples_this_file_runs():
    blocks = readme_blocks()
    assert len(blocks) == 2 and "ReflectionLasso" in blocks[0] and "run_pipeline" in blocks[1]


def test_readme_estimator_example_runs_as_pasted_and_says_what_it_finds(capsys):
    namespace: dict = {}
    exec(compile(readme_blocks()[0], "README.md", "exec"), namespace)
    model, exact, deep = namespace["model"], namespace["exact"], namespace["deep"]
    # the comments of the example: a restriction with continuum ratio about 10, then the exact optimum
    assert not model.certificate_["exact"] and 9.5 < model.certificate_["continuum_ratio"] < 10.5
    assert exact.certificate_["exact"] is True and exact.objective_ < model.objective_
    assert len(deep.path_) == 8 and len(deep.features_) > 0
    assert deep.predict(namespace["X_test"]).shape == (10,)
    assert "True" in capsys.readouterr().out


@pytest.mark.slow
def test_readme_pipeline_example_runs_as_pasted(prefect_harness, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(compile(readme_blocks()[1], "README.md", "exec"), namespace)
    outcome = namespace["outcome"]
    assert outcome.error is None, outcome.error
    assert Path(outcome.report).is_file() and Path(outcome.report).is_relative_to(tmp_path / "workspace")


def documented_ids() -> list[tuple[str, str]]:
    found = []
    for path in DOCS:
        for m in ID_LIKE.finditer(path.read_text(encoding="utf-8")):
            found.append((path.name, m.group(0)))
    return found


def lex_rank(points: list[int], n: int) -> int:
    """Rank of a sorted point set among the k-subsets of range(n) in lexicographic order."""
    rank, prev, k = 0, -1, len(points)
    for i, c in enumerate(points):
        rank += sum(math.comb(n - 1 - j, k - 1 - i) for j in range(prev + 1, c))
        prev = c
    return rank


def explain_point_set(X, family: int, points: list[int]) -> list[dict]:
    """``Dictionary.explain`` of every column of ``family`` defined by ``points`` (all their labelings)."""
    D = Dictionary(X, depth=family)
    fam = next(f for f in D.families if f.depth == family)
    first = fam.offset + lex_rank(points, len(X)) * fam.n_labelings
    entries = D.explain(np.arange(first, first + fam.n_labelings))
    assert all(list(e["points"]) == points for e in entries)
    return entries


def test_documented_column_ids_are_ids_the_dictionary_writes():
    ids = documented_ids()
    assert {"L2:3-8", "L3:4-17-22:0,+,-"} <= {i for _, i in ids}
    for source, text in ids:
        family, points = ID_LIKE.fullmatch(text).group(1, 2)
        family, points = int(family), [int(p) for p in points.split("-")]
        dim = len(points) - family + 2                   # d + l - 2 points with bias
        X = np.random.default_rng(0).normal(size=(max(points) + 1, dim))
        written = {e["id"]: e for e in explain_point_set(X, family, points)}
        assert text in written, f"{source}: {text!r} is not the text form of a column (e.g. {next(iter(written))!r})"
        if text == "L3:4-17-22:0,+,-":                   # as the README reads it
            assert written[text]["kind"] == "reflection" and written[text]["labels"] == ("0", "+", "-")


def test_math_references_name_sections_that_exist():
    math = (ROOT / "docs" / "MATH.md").read_text(encoding="utf-8")
    sections = {int(n) for n in re.findall(r"^## (\d+)\.", math, re.M)}
    assert sections == set(range(1, max(sections) + 1))
    for path in PYTHON_FILES + DOCS:
        text = path.read_text(encoding="utf-8")
        bare = re.findall(r"(?<![\w/])MATH\.md", text)
        assert not bare or path.name == "MATH.md", f"{path.relative_to(ROOT)}: cite docs/MATH.md, not MATH.md"
        for m in re.finditer(r"MATH\.md,? sections? (\d+)(?:\s*(?:-|,|and)\s*(\d+))?", text):
            for n in filter(None, m.groups()):
                assert int(n) in sections, f"{path.relative_to(ROOT)}: {m.group(0)!r} names no section of docs/MATH.md"


def test_doc_links_resolve_inside_the_repository():
    for path in DOCS:
        text = path.read_text(encoding="utf-8")
        assert "shared/docs" not in text, f"{path.name} points outside the repository"
        targets = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text)            # markdown links
        targets += re.findall(r"`((?:[\w.-]+/)*[\w.-]+\.md)`", text)           # `FILE.md` in code spans
        for target in targets:
            if "://" in target:
                continue
            resolved = (path.parent / target).resolve()
            if not resolved.exists():                                          # names relative to the root
                resolved = (ROOT / target).resolve()
            assert resolved.exists() and resolved.is_relative_to(ROOT), f"{path.name}: {target} does not resolve"


NUMPYDOC = [("analysis.estimator", "ReflectionLasso"), ("analysis.estimator", "ReflectionLassoClassifier"),
            ("data.corpora", "load_corpus"), ("data.store", "Store"), ("embeddings.encoders", "load_encoder")]


@pytest.mark.parametrize("module, name", NUMPYDOC)
def test_numpydoc_pages_have_their_sections_and_their_examples_run(module, name):
    check_numpydoc_page(module, name)


@pytest.mark.parametrize("name", ["ReflectionLasso", "ReflectionLassoClassifier"])
def test_estimator_pages_state_the_math_and_where_to_look(name):
    doc = getattr(importlib.import_module("analysis.estimator"), name).__doc__
    for section in ("See Also", "Notes"):
        assert f"\n    {section}\n    {'-' * len(section)}\n" in doc, f"{name}: no {section} section"
    notes = doc.split("    Notes\n    -----\n")[1]
    assert "beta ||z||_1" in notes


@pytest.mark.slow
def test_run_pipeline_page_has_its_sections_and_its_example_runs(prefect_harness, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    check_numpydoc_page("flows.pipeline", "run_pipeline")


def check_numpydoc_page(module: str, name: str) -> None:
    """The object's docstring has the numpydoc sections of its kind, and its examples (at least 3) pass."""
    obj = getattr(importlib.import_module(module), name)
    doc = obj.__doc__
    for section in ("Parameters", "Returns" if callable(obj) and not isinstance(obj, type) else "Attributes",
                    "Examples"):
        assert f"\n    {section}\n    {'-' * len(section)}\n" in doc, f"{module}.{name}: no {section} section"
    tests = [t for t in doctest.DocTestFinder(recurse=False).find(obj, name, globs={}) if t.examples]
    assert tests, f"{module}.{name}: no examples"
    runner = doctest.DocTestRunner(optionflags=doctest.NORMALIZE_WHITESPACE)
    for t in tests:
        runner.run(t)
    result = runner.summarize(verbose=False)
    assert result.failed == 0 and result.attempted >= 3
