"""The Prefect flow end to end: a tiny transformers model built from a config (no download), a small
CSV corpus, depths 2 and 3, PCA to 2; the cache on a second run, resume after a failure, Dask, and the
CLI's one-line errors for bad input (each leaving the store untouched). The session's Prefect test harness."""
import fcntl
import hashlib
import json
import os

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from data.store import Store
from flows.cli import app
from flows.config import RunConfig
from tests._tiny_bert import WORDS

runner = CliRunner()
pytestmark = pytest.mark.usefixtures("prefect_harness")


@pytest.fixture(scope="module")
def corpus_csv(tmp_path_factory):
    """36 texts of three words with a numeric score."""
    rng = np.random.default_rng(0)
    texts = [" ".join(rng.choice(WORDS, 3, replace=False)) for _ in range(36)]
    path = tmp_path_factory.mktemp("corpus") / "words.csv"
    pd.DataFrame({"text": texts, "score": rng.uniform(-1, 1, len(texts)).round(3)}).to_csv(path, index=False)
    return path


@pytest.fixture
def config(tmp_path, tiny_bert, corpus_csv):
    return RunConfig(corpus=str(corpus_csv), text_column="text", target="score", max_points=30, seed=1,
                     model=str(tiny_bert), device="cpu", depths=(2, 3), n_betas=3, beta_min_ratio=0.2,
                     widths=(4,), epochs=40, network_seeds=(0,), workspace=str(tmp_path / "ws"), lock_timeout=5,
                     stability_resamples=2)


def run(cfg, run_id=None):
    from flows.pipeline import run_pipeline
    return run_pipeline(cfg, run_id=run_id)


def train_points(bundle):
    pts = bundle["points"]
    train = (pts["split"] == "train").to_numpy()
    return np.array(pts["coords"].tolist())[train], pts["target"].to_numpy()[train]


def test_run_lands_in_the_store_with_fits_networks_and_a_report(config, monkeypatch):
    from analysis import ReflectionLasso
    from embeddings import load_encoder
    parsed, post_init = [], RunConfig.__post_init__
    monkeypatch.setattr(RunConfig, "__post_init__", lambda self: (parsed.append(1), post_init(self))[1])
    outcome = run(config)
    assert outcome.error is None, outcome.error
    assert len(parsed) == 1                     # the flow parses its config once; every task gets that object
    monkeypatch.undo()
    bundle = Store(config.workspace, read_only=True).load_run(outcome.run_id)
    assert bundle["run"]["status"] == "completed"
    assert set(bundle["run"]["info"]["signal"]) == {"full_r2", "reduced_r2", "kept"}   # 6 test points: probed
    assert RunConfig.from_dict(bundle["run"]["config"]) == config
    assert RunConfig.load(os.path.join(config.workspace, "runs", outcome.run_id, "config.toml")) == config
    pts = bundle["points"]
    assert len(pts) == 30 and (pts["split"] == "test").sum() == 6
    assert [f["depth"] for f in bundle["fits"]] == [2, 3] and [n["depth"] for n in bundle["networks"]] == [2, 3]
    report = open(outcome.report, encoding="utf-8").read()
    assert outcome.report.endswith(f"{outcome.run_id}.html") and outcome.run_id in report
    from prefect.artifacts import Artifact
    artifact = Artifact.get("lookingglass-report")
    assert outcome.run_id in artifact.data and outcome.report in artifact.data
    # the reduction: the coordinates are the standardised PCA of the training embeddings (independent PCA)
    vectors = load_encoder(config.model, device="cpu").encode(pts["text"].tolist(), progress=False).astype(float)
    train = (pts["split"] == "train").to_numpy()
    centred = vectors - vectors[train].mean(0)
    _, _, vt = np.linalg.svd(centred[train], full_matrices=False)
    coords = np.array(pts["coords"].tolist())
    for k in range(2):
        assert abs(np.corrcoef(centred @ vt[k], coords[:, k])[0, 1]) > 1 - 1e-6
    # each stored fit is the Lasso of its depth on the stored training points, at the stored beta
    X, y = train_points(bundle)
    for fit in bundle["fits"]:
        ref = ReflectionLasso(depth=fit["depth"], beta=fit["beta"], bias=True).fit(X, y)
        assert fit["objective"] == pytest.approx(ref.objective_, rel=1e-7)
        assert fit["certificate"]["dictionary_ratio"] == pytest.approx(ref.certificate_["dictionary_ratio"])
        assert len(fit["path"]) == config.n_betas
    for net in bundle["networks"]:
        assert net["lasso"]["objective"] == pytest.approx(bundle["fits"][net["depth"] - 2]["objective"])
        assert {r["architecture"] for r in net["runs"]} == {"parallel", "fc"}
        assert "emergence" in net  # compared with the Lasso's own features
    # every depth's function is scored about the same fold planes (depth 3 selected fold features)
    n_planes = {len([r for r in f["features"].itertuples() if any(c > 0 for c in r.offsets)]) for f in bundle["fits"]}
    if max(n_planes):
        for fit in bundle["fits"]:
            assert -1 <= fit["symmetry"]["min"] <= fit["symmetry"]["mean"] <= 1
            assert fit["symmetry"]["planes"] == bundle["fits"][0]["symmetry"]["planes"] >= 1
    # the stability step refits each depth on the configured number of subsamples
    for fit in bundle["fits"]:
        if len(fit["features"]):
            assert fit["stability"]["n_resamples"] == 2 == len(fit["stability"]["resamples"])


def test_second_identical_run_takes_embeddings_from_the_cache(config):
    config = config.replace(stability_resamples=0)
    first, second = run(config), run(config)
    assert first.error is None and second.error is None
    assert first.run_id != second.run_id
    store = Store(config.workspace, read_only=True)
    emb = [store.get_run(o.run_id)["info"]["embeddings"] for o in (first, second)]
    assert emb[0]["embedded"] == 30 and emb[0]["cached"] == 0
    assert emb[1]["embedded"] == 0 and emb[1]["cached"] == 30
    assert any("30 distinct texts from the cache, 0 embedded now" in line for line in second.summary)
    coords = [np.array(store.get_points(o.run_id)["coords"].tolist()) for o in (first, second)]
    np.testing.assert_array_equal(coords[0], coords[1])
    # stability_resamples=0: no subsample refits, and the report says nothing of stability
    assert not any("stability" in fit for o in (first, second) for fit in store.get_fits(o.run_id))
    assert "across resamples" not in open(first.report, encoding="utf-8").read().lower()
    # the CLI lists both runs and rebuilds a report
    listed = runner.invoke(app, ["runs", "--workspace", config.workspace, "--json"])
    assert listed.exit_code == 0, listed.output
    assert [(r["run_id"], r["status"]) for r in json.loads(listed.output)] == [(first.run_id, "completed"),
                                                                           (second.run_id, "completed")]
    os.remove(first.report)
    rebuilt = runner.invoke(app, ["report", first.run_id, "--workspace", config.workspace])
    assert rebuilt.exit_code == 0 and rebuilt.output.strip() == first.report and os.path.isfile(first.report)
    unknown = runner.invoke(app, ["report", "no-such-run", "--workspace", config.workspace])
    assert unknown.exit_code == 2 and "no run 'no-such-run'" in unknown.output


def test_failure_is_recorded_with_a_report_and_the_run_resumes(config, monkeypatch):
    from prefect import task

    import flows.pipeline as pipeline

    @task(name="train")
    def broken(*args):
        raise RuntimeError("the GPU caught fire")

    original = pipeline.train_step
    monkeypatch.setattr(pipeline, "train_step", broken)
    failed = run(config)
    assert isinstance(failed.error, RuntimeError)
    store = Store(config.workspace, read_only=True)
    record = store.get_run(failed.run_id)
    assert record["status"] == "failed" and "the GPU caught fire" in record["error"]
    assert store.completed_steps(failed.run_id) == {"corpus", "embed", "reduce", "fit:2", "fit:3", "symmetry"}
    report = os.path.join(config.workspace, "reports", f"{failed.run_id}.html")
    assert "the GPU caught fire" in open(report, encoding="utf-8").read()
    objectives = [f["objective"] for f in store.load_run(failed.run_id)["fits"]]

    @task
    def must_not_run(*args):
        raise AssertionError("a completed step ran again")

    monkeypatch.setattr(pipeline, "train_step", original)
    monkeypatch.setattr(pipeline, "reduce_step", must_not_run)
    monkeypatch.setattr(pipeline, "fit_step", must_not_run)
    monkeypatch.setattr(pipeline, "symmetry_step", must_not_run)
    result = runner.invoke(app, ["run", "--resume", failed.run_id, "--workspace", config.workspace])
    assert result.exit_code == 0, result.output
    assert result.output.strip().splitlines()[-1] == report
    bundle = store.load_run(failed.run_id)
    assert bundle["run"]["status"] == "completed" and bundle["run"]["error"] is None
    assert [f["objective"] for f in bundle["fits"]] == objectives
    assert [n["depth"] for n in bundle["networks"]] == [2, 3]



def test_dask_cluster_runs_the_tasks(config):
    from distributed import Client, LocalCluster, get_task_stream
    with LocalCluster(n_workers=1, threads_per_worker=2, processes=False, dashboard_address=None) as cluster, \
            Client(cluster) as client, get_task_stream(client) as stream:
        outcome = run(config.replace(dask_address=cluster.scheduler_address))
    assert outcome.error is None, outcome.error
    assert len(stream.data) >= 4                       # fit:2, fit:3, train:2, train:3 ran on the cluster
    bundle = Store(config.workspace, read_only=True).load_run(outcome.run_id)
    assert bundle["run"]["status"] == "completed" and len(bundle["fits"]) == 2 and len(bundle["networks"]) == 2


def store_state(workspace):
    """Digest of the store file (None when there is none) and the run folders."""
    path = os.path.join(workspace, "lookingglass.duckdb")
    digest = hashlib.sha256(open(path, "rb").read()).hexdigest() if os.path.exists(path) else None
    runs = os.path.join(workspace, "runs")
    return digest, sorted(os.listdir(runs)) if os.path.isdir(runs) else []


def cli_run(cfg, *extra):
    args = ["run", "--corpus", cfg.corpus, "--text-column", cfg.text_column or "", "--target", cfg.target or "",
            "--max-points", cfg.max_points, "--model", cfg.model, "--no-networks", "--depths", "2",
            "--workspace", cfg.workspace, "--lock-timeout", 1, *extra]
    return runner.invoke(app, [str(a) for a in args])


def assert_input_error(result, *fragments):
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.output
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])


@pytest.mark.parametrize("case", ["missing file", "missing column", "empty text", "non-numeric target",
                                  "single class", "too few points", "unknown model"])
def test_bad_input_is_one_line_and_leaves_the_store_untouched(config, tmp_path, case, monkeypatch):
    from huggingface_hub import constants
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    Store(config.workspace)                              # an existing (empty) store must stay as it is
    before = store_state(config.workspace)
    frame = pd.read_csv(config.corpus)
    bad = tmp_path / "bad.csv"
    cfg, fragments = config, ()
    if case == "missing file":
        cfg, fragments = config.replace(corpus=str(tmp_path / "nope.csv")), ("nope.csv",)
    elif case == "missing column":
        cfg, fragments = config.replace(target="valence"), ("valence",)
    elif case == "empty text":
        frame.loc[3, "text"] = "   "
        frame.to_csv(bad, index=False)
        cfg, fragments = config.replace(corpus=str(bad)), ("bad.csv", "empty")
    elif case == "non-numeric target":
        frame = frame.astype({"score": object})
        frame.loc[5, "score"] = "high"
        frame.to_csv(bad, index=False)
        cfg, fragments = config.replace(corpus=str(bad), task="regression"), ("bad.csv", "'high'")
    elif case == "single class":
        frame.assign(score="pos").to_csv(bad, index=False)
        cfg, fragments = config.replace(corpus=str(bad)), ("one class",)
    elif case == "too few points":
        frame.head(3).to_csv(bad, index=False)
        cfg, fragments = config.replace(corpus=str(bad)), ("bad.csv", "fewer than")
    elif case == "unknown model":
        cfg, fragments = config.replace(model="no-such-org/no-such-model-lg"), ("offline", "folder")
    assert_input_error(cli_run(cfg, *(["--task", cfg.task] if cfg.task != "auto" else [])), *fragments)
    assert store_state(config.workspace) == before


def test_locked_store_is_reported_and_left_untouched(config):
    Store(config.workspace)
    before = store_state(config.workspace)
    with open(os.path.join(config.workspace, "lookingglass.lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        result = cli_run(config)
    assert_input_error(result, "locked")
    assert store_state(config.workspace) == before


def test_corrupted_store_is_reported_and_left_untouched(config):
    os.makedirs(config.workspace)
    with open(os.path.join(config.workspace, "lookingglass.duckdb"), "wb") as f:
        f.write(b"this is not a database" * 100)
    before = store_state(config.workspace)
    assert_input_error(cli_run(config), "lookingglass.duckdb", "corrupted")
    assert store_state(config.workspace) == before

