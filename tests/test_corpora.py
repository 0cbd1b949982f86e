import collections
import json
import re

import numpy as np
import pandas as pd
import pytest

from data import CorpusError, list_corpora, load_corpus
from data._sources import builtin_path


def test_adjectives_match_textblob_lexicon():
    xml = builtin_path("adjectives").read_text(encoding="utf-8")
    forms = collections.Counter(re.findall(r'<word form="([^"]*)"', xml))
    c = load_corpus("adjectives", test_size=0)
    assert c.provenance["n_raw"] == sum(forms.values()) == 2918
    assert len(c) == 2918 - c.provenance["n_duplicates_dropped"] > 2700
    assert c.task == "regression" and (c.frame["split"] == "train").all()
    assert c.frame["target"].between(-1, 1).all() and c.frame["target"].std() > 0.2
    from textblob.en import sentiment
    form = c.frame["text"].str.split(":").str[0]
    single = (form.map(forms) == 1) & ~form.str.endswith("ly")  # TextBlob derives -ly adverbs itself
    assert single.sum() > 800
    expected = form[single].map(lambda w: sentiment[w][None][0])
    assert np.allclose(c.frame.loc[single, "target"], expected)
    assert c.frame.loc[form == "abhorrent", "text"].item() == "abhorrent: offensive to the mind"
    subj = load_corpus("adjectives", target="subjectivity", test_size=0)
    assert subj.frame["target"].between(0, 1).all()
    assert np.allclose(subj.frame.loc[single, "target"], form[single].map(lambda w: sentiment[w][None][1]))


def test_vader_is_the_analyzer_lexicon():
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer
    lexicon = SentimentIntensityAnalyzer().lexicon
    c = load_corpus("vader")
    assert c.provenance["n_raw"] == 7520 and len(c) == len(lexicon) == 7506
    assert c.frame["target"].between(-4, 4).all()
    tokens = [line.split("\t")[0] for line in builtin_path("vader").read_text(encoding="utf-8").splitlines()]
    once = {t for t, k in collections.Counter(tokens).items() if k == 1}
    rows = c.frame[c.frame["text"].isin(once)]
    assert len(rows) > 7400
    assert np.allclose(rows["target"], rows["text"].map(lexicon))


def test_afinn_is_the_afinn_wordlist():
    from afinn import Afinn
    words = Afinn()._dict
    c = load_corpus("afinn", test_size=0.25, seed=3)
    assert len(c) == len(words) == 3382
    assert dict(zip(c.frame["text"], c.frame["target"])) == {w: float(v) for w, v in words.items()}
    assert (c.frame["target"] == c.frame["target"].round()).all()
    assert c.provenance["n_test"] == int(np.ceil(0.25 * 3382))


def test_list_corpora_sizes_match_loaded_corpora():
    listed = {c["name"]: c for c in list_corpora()}
    assert list(listed) == ["adjectives", "vader", "afinn"]
    for name, info in listed.items():
        assert info["size"] == load_corpus(name).provenance["n_raw"] and info["description"]


def _table(n=40, seed=0):
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"sentence": [f"text number {i}" for i in range(n)],
                         "score": np.round(rng.normal(size=n), 6),
                         "sentiment": np.where(np.arange(n) % 4 == 0, "pos", "neg"),
                         "other": range(n)})


def _write(df, path):
    suffix = path.suffix
    if suffix == ".csv":
        df.to_csv(path, index=False)
    elif suffix == ".tsv":
        df.to_csv(path, index=False, sep="\t")
    elif suffix == ".jsonl":
        path.write_text("".join(json.dumps(r) + "\n" for r in df.to_dict("records")))
    else:
        df.to_parquet(path)
    return path


@pytest.mark.parametrize("suffix", [".csv", ".tsv", ".jsonl", ".parquet"])
def test_tabular_formats_give_the_same_corpus(tmp_path, suffix):
    df = _table()
    path = _write(df, tmp_path / f"data{suffix}")
    c = load_corpus(str(path), text_column="sentence", target="score", seed=1)
    assert c.task == "regression" and c.name == "data" and len(c) == 40
    truth = dict(zip(df["sentence"], df["score"]))
    assert all(truth[t] == y for t, y in zip(c.frame["text"], c.frame["target"]))
    assert c.frame["id"].tolist() == [str(i) for i in range(40)] and c.frame["label"].isna().all()
    assert (c.frame["split"] == "test").sum() == 8
    assert c.provenance["kind"] == suffix[1:] and len(c.provenance["sha256"]) == 64
    csv = load_corpus(str(_write(df, tmp_path / "ref.csv")), text_column="sentence", target="score", seed=1)
    pd.testing.assert_frame_equal(c.frame, csv.frame)

    classes = load_corpus(str(path), text_column="sentence", target="sentiment", test_size=0.5)
    assert classes.task == "classification" and classes.provenance["classes"] == {"neg": -1, "pos": 1}
    assert ((classes.frame["label"] == "pos") == (classes.frame["target"] == 1)).all()
    assert set(classes.frame["target"]) == {-1.0, 1.0}


def test_two_valued_numeric_target_is_classification_in_order(tmp_path):
    df = pd.DataFrame({"text": [f"t{i}" for i in range(20)], "label": [1, 0] * 10})
    c = load_corpus(str(_write(df, tmp_path / "d.parquet")))
    assert c.task == "classification" and c.provenance["classes"] == {"0": -1, "1": 1}
    assert np.array_equal(c.frame["target"], np.where(df["label"] == 1, 1.0, -1.0))
    forced = load_corpus(str(tmp_path / "d.parquet"), task="regression")
    assert forced.task == "regression" and set(forced.frame["target"]) == {0.0, 1.0}


def test_folder_of_class_folders(tmp_path):
    for cls, n in (("negative", 6), ("positive", 9)):
        (tmp_path / "corpus" / cls).mkdir(parents=True)
        for i in range(n):
            (tmp_path / "corpus" / cls / f"{i}.txt").write_text(f"  a {cls} review {i}\n")
    (tmp_path / "corpus" / "negative" / "notes.md").write_text("ignored")
    c = load_corpus(str(tmp_path / "corpus"), test_size=0.34)
    assert c.task == "classification" and len(c) == 15
    assert c.provenance["classes"] == {"negative": -1, "positive": 1}
    row = c.frame.set_index("id").loc["positive/3.txt"]
    assert row["text"] == "a positive review 3" and row["target"] == 1 and row["label"] == "positive"
    assert c.frame.groupby(["label", "split"]).size().to_dict() == {
        ("negative", "test"): 2, ("negative", "train"): 4, ("positive", "test"): 4, ("positive", "train"): 5}


def test_save_to_disk_folder_with_class_labels(tmp_path):
    datasets = pytest.importorskip("datasets")
    features = datasets.Features({"sentence": datasets.Value("string"),
                                  "label": datasets.ClassLabel(names=["positive", "negative"])})
    ds = datasets.Dataset.from_dict({"sentence": [f"s{i}" for i in range(12)], "label": [i % 2 for i in range(12)]},
                                    features=features)
    ds.save_to_disk(str(tmp_path / "one"))
    datasets.DatasetDict({"train": ds, "validation": ds.select(range(4))}).save_to_disk(str(tmp_path / "dict"))
    c = load_corpus(str(tmp_path / "one"), text_column="sentence", test_size=0.5)
    assert c.provenance["kind"] == "hf_disk" and c.provenance["classes"] == {"positive": -1, "negative": 1}
    assert (c.frame["label"] == np.where(np.arange(12) % 2, "negative", "positive")).all()
    v = load_corpus(str(tmp_path / "dict"), text_column="sentence", hf_split="validation", test_size=0)
    assert v.frame["text"].tolist() == ["s0", "s1", "s2", "s3"]
    with pytest.raises(CorpusError, match=r"dict: no split 'test' \(option hf_split\); splits are: train, validation"):
        load_corpus(str(tmp_path / "dict"), text_column="sentence", hf_split="test")


def test_hub_dataset_offline_is_a_clear_error(monkeypatch):
    datasets = pytest.importorskip("datasets")
    import huggingface_hub
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(CorpusError) as e:
        load_corpus("hf:lookingglass-tests/no-such-dataset", text_column="text")
    msg = str(e.value)
    assert "\n" not in msg and "no-such-dataset" in msg and "offline" in msg and "save_to_disk" in msg


def test_sampling_is_deterministic_and_stratified(tmp_path):
    n = 500
    labels = np.where(np.arange(n) % 5 == 0, "rare", "common")
    path = _write(pd.DataFrame({"text": [f"t{i}" for i in range(n)], "label": labels}), tmp_path / "c.csv")
    a = load_corpus(str(path), max_points=101, seed=7)
    assert a.frame.equals(load_corpus(str(path), max_points=101, seed=7).frame)
    assert not a.frame["id"].equals(load_corpus(str(path), max_points=101, seed=8).frame["id"])
    counts = a.frame["label"].value_counts()
    assert len(a) == 101 and abs(counts["rare"] - 101 / 5) < 1
    test = a.frame[a.frame["split"] == "test"]["label"].value_counts()
    assert len(a.frame[a.frame["split"] == "test"]) == 21 and abs(test["rare"] - 21 * counts["rare"] / 101) < 1
    assert a.provenance["n_sampled_out"] == 399
    ids = a.frame["id"].astype(int)
    assert ids.is_monotonic_increasing

    reg = _write(_table(300), tmp_path / "r.csv")
    draws = [set(load_corpus(str(reg), text_column="sentence", target="score", max_points=30, seed=s).frame["id"])
             for s in range(40)]
    hits = collections.Counter(i for d in draws for i in d)
    assert len(hits) > 250  # uniform: 40 draws of 30 out of 300 reach most rows


def test_duplicates_are_dropped_and_counted(tmp_path):
    df = pd.DataFrame({"text": ["good", "bad", " good ", "fine", "bad", "ok"], "target": [1, -1, 5, 0.5, 7, 0.1]})
    c = load_corpus(str(_write(df, tmp_path / "d.csv")), test_size=0)
    assert c.frame["text"].tolist() == ["good", "bad", "fine", "ok"]
    assert c.frame["target"].tolist() == [1, -1, 0.5, 0.1]
    assert c.provenance["n_duplicates_dropped"] == 2 and c.provenance["n_raw"] == 6


def _bad(tmp_path, name, content):
    path = tmp_path / name
    path.write_text(content)
    return str(path)


@pytest.mark.parametrize("make, kwargs, message", [
    (lambda t: str(t / "missing.csv"), {}, r"corpus '.*missing\.csv' not found"),
    (lambda t: _bad(t, "a.csv", "text,score\nx,1\n"), {"target": "y"},
     r"a\.csv: no column 'y' \(option target\); columns are: text, score"),
    (lambda t: _bad(t, "a.csv", "body,target\nx,1\n"), {},
     r"a\.csv: no column 'text' \(option text_column\); columns are: body, target"),
    (lambda t: _bad(t, "a.csv", "text,target\nx,1\n   ,2\n,3\n"), {},
     r"a\.csv line 3: the text is empty or whitespace \(2 such rows\)"),
    (lambda t: _bad(t, "a.csv", "text,target\nx,1\ny,2\nz,abc\n"), {},
     r"a\.csv line 4: the target \('target'\) 'abc' is not a finite number"),
    (lambda t: _bad(t, "a.csv", "text,target\nx,1\ny,\n"), {}, r"a\.csv line 3: the target \('target'\) is missing"),
    (lambda t: _bad(t, "a.jsonl", '{"text": "x", "target": 1}\n\n{"text": "y", "target": "n/a"}\n'),
     {"task": "regression"}, r"a\.jsonl line 3: the target \('target'\) 'n/a' is not a finite number"),
    (lambda t: _bad(t, "a.jsonl", '{"text": "x", "target": 1}\n{"text": "y", \n'), {},
     r"a\.jsonl line 2: invalid JSON"),
    (lambda t: _bad(t, "a.csv", "text,label\nx,pos\ny,pos\n"), {},
     r"a\.csv: only one class \('pos'\) in 'label'; classification needs exactly two"),
    (lambda t: _bad(t, "a.csv", "text,label\nx,a\ny,b\nz,c\n"), {},
     r"a\.csv: 3 classes \('a', 'b', 'c'\) in 'label'; classification needs exactly two"),
    (lambda t: _bad(t, "a.csv", "text,target\n" + "".join(f"t{i},{i}\n" for i in range(10))), {"min_points": 9},
     r"a\.csv: 8 training points .* fewer than the 9 needed"),
    (lambda t: _bad(t, "a.json", "{}"), {}, r"a\.json: unsupported format '\.json'"),
    (lambda t: _bad(t, "a.parquet", "not parquet"), {}, r"a\.parquet: cannot read as Parquet"),
    (lambda t: "adjectives", {"target": "valence"},
     r"target 'valence' is not a target of the built-in corpus 'adjectives' \(choose from: polarity, subjectivity\)"),
    (lambda t: "vader", {"text_column": "word"}, r"text_column 'word' applies to files"),
    (lambda t: "afinn", {"task": "ordinal"}, r"task 'ordinal' is not one of: auto, regression, classification"),
    (lambda t: "afinn", {"max_points": 0}, r"max_points must be an integer >= 1, got 0"),
    (lambda t: "afinn", {"seed": -1}, r"seed must be an integer >= 0, got -1"),
    (lambda t: "afinn", {"test_size": 1.0}, r"test_size must be a fraction in \[0, 1\), got 1.0"),
    (lambda t: "afinn", {"task": "classification"},
     r"AFINN-en-165\.txt: 11 classes \('-5', '-4', .*, \.\.\.\) in 'valence'; classification needs exactly two"),
])
def test_bad_input_is_a_one_line_error(tmp_path, make, kwargs, message):
    with pytest.raises(CorpusError, match=message) as e:
        load_corpus(make(tmp_path), **kwargs)
    assert "\n" not in str(e.value)


def test_folder_errors_name_the_folder(tmp_path):
    (tmp_path / "flat").mkdir()
    (tmp_path / "flat" / "a.txt").write_text("x")
    with pytest.raises(CorpusError, match=r"flat: a folder corpus needs one sub-folder of \.txt files per class"):
        load_corpus(str(tmp_path / "flat"))
    (tmp_path / "one" / "pos").mkdir(parents=True)
    (tmp_path / "one" / "pos" / "a.txt").write_text("x")
    (tmp_path / "one" / "pos" / "b.txt").write_text("y")
    with pytest.raises(CorpusError, match=r"one: only one class \('pos'\)"):
        load_corpus(str(tmp_path / "one"))
    (tmp_path / "one" / "neg").mkdir()
    (tmp_path / "one" / "neg" / "c.txt").write_text(" \n")
    with pytest.raises(CorpusError, match=r"neg/c\.txt: the text is empty or whitespace"):
        load_corpus(str(tmp_path / "one"))


def test_byte_order_mark_is_not_part_of_the_first_column(tmp_path):
    (tmp_path / "bom.csv").write_bytes("text,target\nsun,1\nrain,-1\nfog,0.5\n".encode("utf-8-sig"))
    (tmp_path / "bom.jsonl").write_bytes('{"text": "sun", "target": 1}\n'.encode("utf-8-sig"))
    assert load_corpus(str(tmp_path / "bom.csv"), test_size=0).frame["text"].tolist() == ["sun", "rain", "fog"]
    assert load_corpus(str(tmp_path / "bom.jsonl"), test_size=0).frame["target"].tolist() == [1.0]
