"""Reports: escaping of untrusted texts, geometry shown (mirror images, planes, fitted values),
sections present only with data, failed runs, the index, and the size of a large report."""
from __future__ import annotations

import html
import json
import re
import time
from html.parser import HTMLParser

import numpy as np
import pandas as pd
import pytest

from analysis import evaluate_features
from analysis.geometry import fold_parameters, hyperplanes_through
from reports import build_index, build_report, publish, report_path
from reports.features import fold_levels, mirror_pairs
from reports.sections import report_context

XSS = ["<script>alert(1)</script>", "<img src=x onerror=alert(1)>", "</script><script>alert(2)</script>",
       "a & b <!-- c --> \u2028 done"]
WORDS = ("warm bright gloomy quiet brave awful lovely tired clever bitter calm eager fragile "
         "honest jolly lazy noble proud rude silly tender vivid weary zealous").split()


def make_bundle(n=60, d=2, n_features=6, seed=0, depths=(2, 3), status="completed", networks=True):
    """A synthetic but realistic run bundle: texts, coordinates, fits with planes, reflections
    and midpoints built from real geometry, paths, certificates and training curves."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    y = np.tanh(X[:, 0] - 0.5 * X[:, -1] ** 2 + 0.3)
    texts = [" ".join(rng.choice(WORDS, size=rng.integers(3, 30))) for _ in range(n)]
    texts[:len(XSS)] = XSS
    split = np.where(np.arange(n) % 5 == 4, "test", "train")
    points = pd.DataFrame({"idx": np.arange(n), "id": [f"t{i}" for i in range(n)], "text": texts, "target": y,
                           "label": np.where(y > 0, "pos", "neg"), "split": split, "coords": list(X)})
    Xt = X[split == "train"]                  # features index the training rows, as the fit saw them
    fits = []
    for depth in depths:
        rows = []
        while len(rows) < n_features:
            k = d if depth == 2 or len(rows) % 3 == 2 else d + 1
            # the first feature is defined by the untrusted texts (training rows 0..3) and others
            pool = np.arange(len(Xt)) if rows else np.r_[np.arange(min(k, len(XSS))),
                                                         rng.permutation(np.arange(len(XSS), len(Xt)))]
            pts = np.sort(pool[:k] if not rows else rng.choice(pool, size=k, replace=False))
            if k == d:
                w, b, ok = hyperplanes_through(Xt[pts])
                c, labels, kind, fam = (), ("",) * d, "plane", 2
            else:
                lab = rng.choice([0.0, 1.0, -1.0], size=(d + 1, 1))
                w, b, c, ok = fold_parameters(Xt[pts], lab)
                labels = tuple({0: "0", 1: "+", -1: "-"}[int(s)] for s in lab[:, 0])
                c, kind, fam = tuple(c), "reflection" if "0" in labels else "midpoint", 3
            if not ok or (fam == 3 and not c[0] > 1e-6):
                continue
            rows.append({"id": f"L{fam}:{'-'.join(map(str, pts))}", "kind": kind, "depth": fam,
                         "points": tuple(int(p) for p in pts), "labels": labels, "w": list(w), "b": float(b),
                         "offsets": c, "coef": float(rng.normal()), "source": "dictionary",
                         "equivalents": [] if len(rows) % 2 else ["L2:0-1"]})
        features = pd.DataFrame(rows)
        grid = np.geomspace(1.0, 1e-3, 12)
        fits.append({"depth": depth, "beta": 0.05, "beta_max": 1.0, "objective": 1.0 / depth, "intercept": 0.1,
                     "n_candidates": 1234 * depth, "features": features,
                     "path": pd.DataFrame({"beta": grid, "objective": 1 / (1 + 1 / grid), "n_features":
                                           np.minimum(np.arange(12), n_features), "dictionary_ratio": 1.0,
                                           "duality_gap": 1e-9}),
                     "certificate": {"scope": "dictionary", "exact": depth == 2, "dictionary_ratio": 1.0,
                                     "duality_gap": 1e-10, "tol": 1e-6, "lower_bound": 0.2, "upper_bound": 0.5,
                                     "gap": 0.3, "statement": f"Depth {depth}: optimum of the dictionary Lasso."},
                     "metrics": ({"train": {"r2": 0.9, "mse": 0.01}, "test": {"r2": 0.7, "mse": 0.05}} if depth == 2
                                 else {"train_r2": 0.95, "train_mse": 0.02, "test_r2": 0.75, "test_mse": 0.06}),
                     "timings": {"solve": 0.5, "certificate": 0.1}})
    # depth 2 as analysis.training.compare_with_lasso returns it (runs per architecture, curves per
    # run), depth 3 in the flat form of the store contract (curves per seed)
    nets = []
    for dd in depths if networks else ():
        curves = [list(1.0 / dd + np.exp(-np.arange(300) / s)) for s in (30, 60)]
        if dd == 2:
            nets.append({"depth": dd, "beta": 0.05, "n_points": n, "dim": d, "bias": True,
                         "lasso": {"objective": 1.0 / dd, "wall_time_s": 0.2, "lower_bound": 0.2},
                         "runs": [{"architecture": "parallel", "width": 16, "optimizer": "adam", "status": "ok",
                                   "best_objective": 1.01 / dd, "relative_gap": 0.01, "wall_time_s": 3.0,
                                   "time_to_1pct_s": 1.0, "best_seed": 0, "epochs": 300, "curve": curves[0]},
                                  {"architecture": "fc", "width": 16, "optimizer": "adam", "status": "diverged",
                                   "best_objective": None, "relative_gap": None}],
                         "emergence": {"share_on_predicted": 0.75, "median_angle_deg": 2.0}})
        else:
            nets.append({"depth": dd, "architecture": "parallel", "width": 16, "optimizer": "adam", "seeds": [0, 1],
                         "best_objective": 1.02 / dd, "lasso_objective": 1.0 / dd, "rel_gap": 0.02, "curves": curves,
                         "emergence": {"share": 0.5, "threshold_deg": 5.0}, "symmetry": {"score": 0.1 * dd},
                         "status": "ok"})
    run = {"run_id": f"run-{seed}", "status": status, "config": {"corpus": "adjectives", "depths": list(depths),
                                                                    "note": "</script><b>x</b>"},
           "created_at": "2026-01-01 10:00", "finished_at": None, "timings": {"embed": 1.5, "fit": 3.0},
           "versions": {"python": "3.11", "numpy": np.__version__}, "error": None,
           "info": {"corpus": {"name": "adjectives", "n": n}, "model": {"name": "all-MiniLM-L6-v2"},
                    "reduction": {"method": "pca", "d": d}}}
    return {"run": run, "points": points,
            "reduction": {"method": "pca", "explained_variance_ratio": list(0.3 * 0.6 ** np.arange(d))},
            "fits": fits, "networks": nets}


class Tags(HTMLParser):
    """Start tags and text of a page, as a browser's tokenizer sees them."""

    def __init__(self):
        super().__init__()
        self.tags, self.text, self.scripts = [], [], []
        self._in_script = False

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        self._in_script = tag == "script"

    def handle_endtag(self, tag):
        self._in_script = False

    def handle_data(self, data):
        (self.scripts if self._in_script else self.text).append(data)


def parse(path) -> Tags:
    p = Tags()
    p.feed(path.read_text(encoding="utf-8"))
    return p


def payload(page: Tags) -> dict:
    return json.loads(next(s for s in page.scripts if s.startswith('{"figures"')))


def test_untrusted_texts_appear_literally_and_run_nothing(tmp_path):
    out = build_report(make_bundle(), tmp_path / "r.html")
    page = parse(out)
    # the tokenizer sees exactly our three scripts (plotly.js, the JSON document, the renderer), no img
    assert [t for t, _ in page.tags if t in ("script", "img", "iframe", "object")] == ["script"] * 3
    assert page.tags[[t for t, _ in page.tags].index("script") + 1:] and \
        sum(1 for t, a in page.tags if t == "script" and a.get("type") == "application/json") == 1
    text = "".join(page.text)
    for bad in XSS[:3]:
        assert bad in text                      # shown literally in the features table / hover data
    raw = out.read_text(encoding="utf-8")
    assert "<img src=x" not in raw and raw.count("<script") == 3
    assert "&lt;img src=x onerror=alert(1)&gt;" in raw
    data = payload(page)
    hover = data["points"]["text"]
    # hover labels are HTML for plotly: the texts are entity-escaped there, so they display literally
    assert any(html.escape(XSS[0]) in h for h in hover) and not any(XSS[0] in h for h in hover)
    # "<" is \u003c-escaped inside the script element and restored by JSON.parse
    assert all("<br>" in h for h in hover) and "\\u003cbr\\u003e" in raw and "<br>" not in raw.split("lg-data")[1]
    assert "</script><b>x</b>" in text          # the run config, shown literally


def test_every_section_present_with_data(tmp_path):
    bundle = make_bundle(d=3)
    out = build_report(bundle, tmp_path / "r.html")
    raw = out.read_text(encoding="utf-8")
    for anchor in ("summary", "data", "depth-2", "depth-3", "comparison", "training"):
        assert f'id="{anchor}"' in raw
    figures = payload(parse(out))["figures"]
    assert set(figures) == {"data", "path2", "path3", "function2", "function3", "training0", "training1"}
    assert [t["name"] for t in figures["training0"]["data"]] == [
        "parallel width 16", "Lasso optimum 0.5", "certified lower bound 0.2"]
    # the flat depth-3 result reads as one run, named by its architecture and width
    assert [t["name"] for t in figures["training1"]["data"]] == [
        "parallel width 16 seed 0", "parallel width 16 seed 1", "Lasso optimum 0.33333", "certified lower bound 0.2"]
    assert "1 of 2 diverged" in raw and "emergence share" in raw
    assert "2-D slice through the data mean" in raw
    assert "Depth 3: optimum of the dictionary Lasso." in raw and "proven optimum" in raw and "restriction" in raw
    assert "explained variance" in raw and "58.8 %" in raw     # 0.3 + 0.18 + 0.108
    texts = bundle["points"].query("split == 'train'")["text"].to_numpy()
    f3 = bundle["fits"][1]["features"]
    for p in f3.iloc[0]["points"]:             # defining texts of a selected feature are in the table
        assert html.escape(texts[p][:40], quote=False) in raw


def test_heat_map_is_the_fitted_function_on_the_slice():
    bundle = make_bundle(n=40, d=3, n_features=5)
    fit = bundle["fits"][1]
    _, figures = report_context(bundle)
    heat = figures["function3"].data[0]
    X = np.asarray(bundle["points"]["coords"].tolist())
    gx, gy, z = np.asarray(heat.x), np.asarray(heat.y), np.asarray(heat.z)
    rng = np.random.default_rng(1)
    for i, j in rng.integers(0, len(gx), size=(20, 2)):
        x = X.mean(axis=0)
        x[0], x[1] = gx[j], gy[i]
        ref = fit["intercept"]
        for _, f in fit["features"].iterrows():    # phi = | |w.x + b| - c | written out
            u = np.dot(f["w"], x) + f["b"]
            ref += f["coef"] * (abs(abs(u) - f["offsets"][0]) if len(f["offsets"]) else abs(u))
        assert z[i, j] == pytest.approx(ref, rel=1e-5, abs=1e-5)


def test_fitted_values_one_dimensional_reflection_closed_form():
    # docs/MATH.md: in 1-D a depth-3 reflection about x_j through x_k is ||x - x_j| - |x_k - x_j||
    xj, xk = 0.3, 1.1
    feats = pd.DataFrame({"w": [[1.0], [1.0]], "b": [-xj, -0.5], "offsets": [(abs(xk - xj),), ()],
                          "coef": [2.0, -0.5]})
    x = np.linspace(-2, 3, 41)
    ref = 0.7 + 2.0 * np.abs(np.abs(x - xj) - abs(xk - xj)) - 0.5 * np.abs(x - 0.5)
    assert np.allclose(evaluate_features(feats, 0.7, x[:, None]), ref)


def test_one_dimensional_reflection_lines_at_mirror_and_zeros():
    # docs/MATH.md: the 1-D reflection about x_j through x_k has its mirror at x_j and zeros at x_k and 2 x_j - x_k
    bundle = make_bundle(n=30, d=1, n_features=1, depths=(3,), networks=False)
    X = np.asarray(bundle["points"].query("split == 'train'")["coords"].tolist())[:, 0]
    j, k = int(np.argsort(X)[10]), int(np.argsort(X)[13])
    w, b, c, ok = fold_parameters(X[[j, k]][:, None], np.array([[0.0], [1.0]]))
    bundle["fits"][0]["features"] = pd.DataFrame([{
        "id": "L3:r", "kind": "reflection", "depth": 3, "points": (j, k), "labels": ("0", "+"), "w": list(w),
        "b": float(b), "offsets": tuple(c), "coef": 1.0, "source": "dictionary", "equivalents": []}])
    _, figures = report_context(bundle)
    lines = {t.name: sorted({x for x in t.x if x is not None}) for t in figures["function3"].data if t.mode == "lines"}
    assert np.allclose(lines["fold (mirror) planes"], [X[j]])
    assert np.allclose(lines["zero sets of the features"], sorted([X[k], 2 * X[j] - X[k]]))


def test_fold_levels_are_the_mirror_planes_and_zero_sets():
    assert fold_levels(()) == ([], [0.0])
    assert fold_levels((0.4,)) == ([0.0], [-0.4, 0.4])
    mirrors, zeros = fold_levels((1.0, 0.25))
    assert mirrors == [-1.0, 0.0, 1.0]
    assert zeros == [-1.25, -0.75, 0.75, 1.25]
    # brute force: the zeros of | | u | - 1 | - 0.25 | on a fine grid
    u = np.linspace(-2, 2, 399_997)                  # no grid point lands on a zero
    g = np.abs(np.abs(u) - 1.0) - 0.25
    crossings = u[1:][np.sign(g[1:]) != np.sign(g[:-1])]
    assert np.allclose(crossings, zeros, atol=1e-4)
    assert fold_levels((0.2, 0.5)) == ([-0.2, 0.0, 0.2], [-0.7, 0.7])   # c2 > c1: inner zeros vanish


def test_mirror_pairs_match_householder_reflection_and_brute_force_nearest():
    rng = np.random.default_rng(3)
    X = rng.normal(size=(30, 3))
    pts = (2, 5, 11, 17)
    w, b, c, ok = fold_parameters(X[list(pts)], np.array([[0.0], [0.0], [1.0], [-1.0]]))
    assert ok
    pairs = mirror_pairs(w, b, ("0", "0", "+", "-"), pts, X)
    assert [p["source"] for p in pairs] == [11, 17]
    R = np.eye(3) - 2 * np.outer(w, w)
    for p in pairs:
        image = R @ X[p["source"]] - 2 * b * w
        assert np.allclose(p["image"], image)
        dists = [np.linalg.norm(image - x) if i != p["source"] else np.inf for i, x in enumerate(X)]
        assert p["nearest"] == int(np.argmin(dists)) and p["distance"] == pytest.approx(min(dists))
    # a point next to its own mirror maps onto its nearest other point, not onto itself
    w, b = np.array([1.0, 0.0, 0.0]), -X[11, 0] + 1e-3
    (p,) = mirror_pairs(w, b, ("+",), (11,), X)
    assert p["nearest"] != 11 and p["distance"] > 2e-3


def test_one_dimensional_midpoint_maps_its_points_onto_each_other(tmp_path):
    # a midpoint feature in 1-D: mirror at (x_j + x_k)/2, so x_j's image is x_k exactly
    bundle = make_bundle(n=30, d=1, n_features=4, depths=(3,), networks=False)
    train = bundle["points"].query("split == 'train'")
    X = np.asarray(train["coords"].tolist())[:, 0]
    j, k = 3, 8                                   # training rows; their idx differ (test rows interleave)
    w, b, c, ok = fold_parameters(X[[j, k]][:, None], np.array([[1.0], [-1.0]]))
    feat = {"id": f"L3:{j}-{k}:+,-", "kind": "midpoint", "depth": 3, "points": (j, k), "labels": ("+", "-"),
            "w": list(w), "b": float(b), "offsets": tuple(c), "coef": 9.0, "source": "dictionary", "equivalents": []}
    fit = bundle["fits"][0]
    fit["features"] = pd.concat([pd.DataFrame([feat]), fit["features"]], ignore_index=True)
    context, _ = report_context(bundle)
    top = context["depths"][0]["features"][0]
    assert top["id"] == feat["id"] and top["kind"] == "midpoint"
    assert [(m["source"], m["nearest"]) for m in top["mirrors"]] == [(j, k), (k, j)]
    assert all(m["distance"] < 1e-9 for m in top["mirrors"])
    ij, ik = train["idx"].iloc[j], train["idx"].iloc[k]
    assert (ij, ik) == (3, 10)
    assert [p["idx"] for p in top["points"]] == [ij, ik]
    assert [p["text"] for p in top["points"]] == [train["text"].iloc[j], train["text"].iloc[k]]
    assert [p["row"] for p in top["points"]] == [j, k]          # the training rows of the id L3:3-8
    text = " ".join("".join(parse(build_report(bundle, tmp_path / "r.html")).text).split())
    assert f"{j} #{ij} → {k} #{ik}" in text and f"{k} #{ik} → {j} #{ij}" in text
    assert "names its defining points by training row (0–23" in text
    assert "(#0–#29: the row of the run's corpus" in text


def test_depth_comparison_keeps_the_dictionary_gap_apart_from_the_network_gap(tmp_path):
    # the certificates of the default run: depth 2 brackets the network optimum (continuum oracle),
    # depth 3 only solves its dictionary, whose duality gap proves nothing about the network
    bundle = make_bundle(n=30, depths=(2, 3), networks=False)
    lower, upper = 11.265975662391277, 11.273403470441968
    bundle["fits"][0]["certificate"] = {
        "scope": "dictionary", "exact": False, "dictionary_ratio": 1.0, "duality_gap": 1.5e-13, "tol": 1e-6,
        "upper_bound": upper, "continuum_ratio": 1.0087, "continuum_method": "exact-arcs", "lower_bound": lower,
        "gap": upper - lower, "statement": "a restriction; the network optimum lies in [11.266, 11.2734]."}
    bundle["fits"][1]["certificate"] = {
        "scope": "dictionary", "exact": False, "dictionary_ratio": 1.0, "duality_gap": 4.440892098500626e-14,
        "tol": 1e-6, "upper_bound": 10.79, "statement": "an upper bound on the network optimum, not proven equal."}
    net = {"scope": "network", "exact": True, "dictionary_ratio": 1.0, "duality_gap": 2e-12, "tol": 1e-6,
           "upper_bound": 0.5, "lower_bound": 0.5 - 3e-9, "gap": 3e-9, "statement": "global optimum."}
    bundle["fits"].append({**bundle["fits"][0], "depth": 4, "certificate": net})
    context, _ = report_context(bundle)
    table = context["comparison"]
    col = {c: [row[i] for row in table["rows"]] for i, c in enumerate(table["columns"])}
    assert col["depth"] == ["2", "3", "4"]
    assert "gap" not in col and "exact" not in col
    assert col["proven network optimum"] == ["no", "no", "yes"]
    assert col["dictionary duality gap"] == ["1.50e-13", "4.44e-14", "2.00e-12"]
    assert col["certified gap to the network optimum"] == ["0.007428", "—", "3.00e-09"]
    assert float(col["certified gap to the network optimum"][0]) == pytest.approx(upper - lower, rel=1e-3)
    # the per-depth certificate numbers use the same names, and depth 3 states no network gap
    rows3 = dict(context["depths"][1]["certificate"]["rows"])
    assert rows3["dictionary duality gap"] == "4.44e-14" and "certified gap to the network optimum" not in rows3
    assert dict(context["depths"][0]["certificate"]["rows"])["certified lower bound on the network optimum"] == "11.27"
    raw = build_report(bundle, tmp_path / "r.html").read_text(encoding="utf-8")
    section = raw[raw.index('id="comparison"'):]
    assert "certified gap to the network optimum" in section and "it proves nothing about the network" in section


def test_failed_run_reports_what_exists(tmp_path):
    bundle = make_bundle(status="failed", depths=(2,), networks=False)
    bundle["run"]["error"] = "ValueError: corpus row 7 <b>bad</b>"
    out = build_report(bundle, tmp_path / "failed.html")
    raw = out.read_text(encoding="utf-8")
    assert "This run failed." in raw and "ValueError: corpus row 7 &lt;b&gt;bad&lt;/b&gt;" in raw
    assert 'id="depth-2"' in raw and 'id="training"' not in raw and 'id="comparison"' not in raw
    empty = {"run": {"run_id": "r0", "status": "running", "error": None}, "points": pd.DataFrame(),
             "reduction": None, "fits": [], "networks": []}
    raw = build_report(empty, tmp_path / "empty.html").read_text(encoding="utf-8")
    assert "This run is not finished (status: running)" in raw
    assert "<script" not in raw and "lg-plot" not in raw      # no figures: no plotly.js either
    with pytest.raises(ValueError, match="run bundle"):
        build_report({"points": None}, tmp_path / "x.html")


def test_index_lists_runs_links_reports_and_escapes(tmp_path):
    runs = pd.DataFrame({"run_id": ["a1", "b2"], "status": ["completed", "failed"],
                         "created": pd.to_datetime(["2026-01-01", "2026-01-02"]),
                         "corpus": ["adjectives", "<script>alert(3)</script>"], "n_points": [100, 2000],
                         "n_points_na": pd.array([5, None], dtype="Int64"), "objectives": [{2: 0.12345678}, {}],
                         "error": [None, "RuntimeError: " + "x" * 500]})
    (tmp_path / "reports").mkdir()
    out = build_index(runs, tmp_path / "index.html", {"a1": tmp_path / "reports" / "a1.html"})
    raw = out.read_text(encoding="utf-8")
    assert '<a href="reports/a1.html">a1</a>' in raw and 'href="b2' not in raw and "reports/b2" not in raw
    assert raw.index("b2") < raw.index("a1")                  # newest first
    assert "&lt;script&gt;alert(3)&lt;/script&gt;" in raw and "<script" not in raw
    assert "2: 0.1235" in raw and "2,000" in raw and "status-failed" in raw and "<NA>" not in raw
    assert "RuntimeError: xxx" in raw and "x" * 200 not in raw
    with pytest.raises(ValueError, match="run_id column"):
        build_index(pd.DataFrame({"id": [1]}), tmp_path / "i.html")


def test_publish_builds_reports_and_index_from_a_store(tmp_path):
    bundles = {"r1": make_bundle(n=20, seed=1, networks=False), "r2": make_bundle(n=20, seed=2, status="failed")}

    class FakeStore:
        def list_runs(self):
            return pd.DataFrame({"run_id": list(bundles), "status": [b["run"]["status"] for b in bundles.values()]})

        def load_run(self, run_id):
            return bundles[run_id]

    built = publish(FakeStore(), tmp_path / "out", ["r2"])
    assert built == {"r2": tmp_path / "out" / "r2.html"} and built["r2"].exists()
    index = (tmp_path / "out" / "index.html").read_text(encoding="utf-8")
    assert 'href="r2.html"' in index and 'href="r1.html"' not in index
    publish(FakeStore(), tmp_path / "out")
    assert 'href="r1.html"' in (tmp_path / "out" / "index.html").read_text(encoding="utf-8")
    with pytest.raises(ValueError, match="not usable as a report file name"):
        report_path(tmp_path, "../evil")


@pytest.mark.slow
def test_large_report_stays_under_10_mb(tmp_path):
    bundle = make_bundle(n=2000, d=5, n_features=100, seed=4)
    for i, t in enumerate(bundle["points"]["text"]):         # long texts: hover must be cut, not the page
        bundle["points"].loc[i, "text"] = t + " lorem" * 200 if i % 2 else t
    t0 = time.perf_counter()
    out = build_report(bundle, tmp_path / "big.html")
    seconds = time.perf_counter() - t0
    size = out.stat().st_size
    print(f"2,000 points, 2 x 100 features: {size / 1e6:.2f} MB in {seconds:.1f} s")
    assert size < 10e6
    data = payload(parse(out))
    assert max(len(re.sub("<[^>]+>", "", h)) for h in data["points"]["text"]) < 400
    assert len(data["points"]["x"]) == 2000
    assert sum(len(f["features"]) for f in bundle["fits"]) == 200


def test_reports_of_runs_in_a_real_store(tmp_path):
    from data.store import Store
    bundle = make_bundle(n=40, d=2, n_features=5)
    store = Store(tmp_path / "ws")
    done = store.create_run(bundle["run"]["config"], "done")
    store.update_run(done, status="running", info=bundle["run"]["info"])
    store.put_points(done, bundle["points"].assign(coords=[list(c) for c in bundle["points"]["coords"]]))
    store.put_reduction(done, bundle["reduction"])
    for fit in bundle["fits"]:
        store.put_fit(done, fit["depth"], {k: v for k, v in fit.items() if k not in ("features", "path", "depth")},
                      fit["features"], fit["path"])
    for net in bundle["networks"]:
        store.put_network(done, net["depth"], {k: v for k, v in net.items() if k != "depth"})
    store.update_run(done, status="completed")
    failed = store.create_run({"corpus": "vader"}, "failed-1")
    store.update_run(failed, status="failed", error="embed: model hub unreachable <offline>")
    built = publish(store, tmp_path / "ws" / "reports")
    assert set(built) == {"done", "failed-1"}
    def tables(b):          # what the feature tables show, before and after the store round trip
        return [[(f["id"], f["coef"], [p["text"] for p in f["points"]],
                  [(m["source"], m["nearest"]) for m in f["mirrors"]])
                 for f in d["features"]] for d in report_context(b)[0]["depths"]]
    assert tables(store.load_run(done)) == tables(bundle)
    raw = built["done"].read_text(encoding="utf-8")
    assert html.escape(XSS[1], quote=False) in raw and 'id="depth-3"' in raw and 'id="training"' in raw
    assert "embed: model hub unreachable &lt;offline&gt;" in built["failed-1"].read_text(encoding="utf-8")
    index = (tmp_path / "ws" / "reports" / "index.html").read_text(encoding="utf-8")
    assert 'href="done.html"' in index and 'href="failed-1.html"' in index and "adjectives" in index



def test_findings_and_mirror_planes_from_the_symmetry_step(tmp_path):
    """The symmetry step's summaries reach the findings with their verdicts; each own mirror plane lists the
    training texts on each side (counted against a direct sign count) and the ones nearest to it."""
    from analysis.symmetry import mirror_planes, summarize, symmetry_table
    bundle = make_bundle(n=80, seed=9, networks=False)
    pts = bundle["points"]
    train = (pts["split"] == "train").to_numpy()
    Xt = np.array(pts["coords"].tolist())[train]
    fits = {int(f["depth"]): f for f in bundle["fits"]}
    planes = [p for depth, f in fits.items() for p in mirror_planes(f["features"], depth, 4)]
    funcs = {d: (lambda P, f=f: evaluate_features(f["features"], f["intercept"], P)) for d, f in fits.items()}
    table, null = symmetry_table(funcs, Xt, planes, n_null=30, n_boot=30, min_support=1)
    own, overall = summarize(table, null, own_only=True), summarize(table, null)
    rows = table.drop(columns="boot")
    for f in bundle["fits"]:
        d = int(f["depth"])
        f["symmetry"] = {**overall[d], "own": own.get(d), "multilevel": None,
                         "table": rows[rows["depth"] == d].to_dict("records")}
    context, _ = report_context(bundle)
    verdicts = {f["claim"]: f["verdict"] for f in context["findings"]}
    assert verdicts["Depth 3's fit is mirror-symmetric about its own fold planes, beyond chance"] == \
        own[3]["above_chance"]
    assert verdicts["Depth 3 is more symmetric than the shallower depth about the same planes"] == \
        overall[3]["more_symmetric_than_shallower"]
    view = next(v for v in context["depths"] if v["depth"] == 3)
    own_rows = rows[(rows["depth"] == 3) & (rows["source_depth"] == 3)]
    assert len(view["planes"]) == len(own_rows) > 0
    for shown, (_, r) in zip(view["planes"], own_rows.iterrows()):
        t = Xt @ np.asarray(r["w"]) + r["b"]
        assert (shown["n_left"], shown["n_right"]) == (str(int((t < 0).sum())), str(int((t >= 0).sum())))
        nearest = int(np.flatnonzero(t >= 0)[np.argmin(t[t >= 0])])
        assert shown["right"][0]["row"] == nearest
    raw = build_report(bundle, tmp_path / "r.html").read_text()
    assert 'id="findings"' in raw and raw.index('id="findings"') < raw.index('id="summary"')
    assert "Mirror planes of this fit" in raw and "<details class=\"provenance\">" in raw


def test_stability_of_real_fits_in_words_in_the_feature_and_plane_tables(tmp_path):
    """Real fits of depths 2 and 3 with their stability entries: each feature's words recount the stored
    subsamples, each mirror plane is numbered as its feature in the features table, the finding pools the pairs."""
    from analysis import ReflectionLasso
    from analysis.stability import fit_stability, wilson
    from analysis.symmetry import fit_symmetry
    bundle = make_bundle(n=50, seed=4, networks=False)
    pts = bundle["points"]
    train = (pts["split"] == "train").to_numpy()
    Xt, yt = np.array(pts["coords"].tolist())[train], pts["target"].to_numpy(float)[train]
    for f in bundle["fits"]:
        est = ReflectionLasso(depth=f["depth"], n_betas=3, beta_min_ratio=0.1, random_state=0).fit(Xt, yt)
        f.update(features=est.features_, beta=est.beta_, intercept=est.intercept_)
    fits = {f["depth"]: f for f in bundle["fits"]}
    stability, symmetry = fit_stability(fits, Xt, yt, {"random_state": 0}, n_resamples=4), fit_symmetry(fits, Xt, 6)
    for f in bundle["fits"]:
        f.update(stability=stability[f["depth"]], symmetry=symmetry.get(f["depth"], {}))
    context, _ = report_context(bundle)
    for view, fit in zip(context["depths"], bundle["fits"]):
        stab = fit["stability"]
        for row, pts_, entry in zip(view["features"], fit["features"]["points"], stab["features"]):
            pts_ = sorted(int(p) for p in pts_)
            kept = [r for r in stab["resamples"] if set(pts_) <= set(r["rows"])]
            k = sum(pts_ in r["points"] for r in kept) + entry["same_by_equivalent"]   # (test_stability checks these)
            if kept:
                assert row["stability"]["same"].startswith(f"defined by the same texts in {k} of {len(kept)} resamples")
            for p in row["points"]:
                having = [r for r in stab["resamples"] if p["row"] in r["rows"]]
                n_def = sum(any(p["row"] in q for q in r["points"]) for r in having)
                assert p["stab"] == f"defines a plane in {n_def} of {len(having)}"
        own = [r for r in (fit["symmetry"] or {}).get("table", []) if r["source_depth"] == r["depth"] == fit["depth"]]
        assert len(view["planes"]) == len(own) and (fit["depth"] == 2 or own)
        for plane, r in zip(view["planes"], own):
            feature = fit["features"].iloc[int(plane["feature"]) - 1]       # numbered as the features table
            assert np.allclose(feature["w"], r["w"]) and feature["b"] == pytest.approx(r["b"])
            assert plane["stability"].startswith(view["features"][int(plane["feature"]) - 1]["stability"]["same"])
        k = sum(e["same_points"] or 0 for e in stab["features"])
        n = sum(e["same_points_of"] for e in stab["features"])
        finding = next(x for x in context["findings"] if x["claim"].startswith(f"Depth {fit['depth']}'s planes"))
        lo, _ = wilson(k, n)
        assert f"in {k} of {n} (plane, resample) pairs" in finding["evidence"]
        if stab["permuted"]["same_points"] is not None:
            assert (finding["verdict"] == "supported") == (lo > stab["permuted"]["same_points"])
    raw = build_report(bundle, tmp_path / "r.html").read_text()
    assert "across resamples" in raw and "defined by the same texts in" in raw
