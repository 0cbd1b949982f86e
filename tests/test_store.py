import fcntl
import multiprocessing
import os
import threading
import time

import numpy as np
import pandas as pd
import pytest

from data.store import Store, StoreCorruptError, StoreError, StoreLockedError, UnknownRunError

FORK = multiprocessing.get_context("fork")


def _corpus(n=30, seed=0):
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"id": [str(i) for i in range(n)], "text": [f"text <b>{i}</b> ünïcode" for i in range(n)],
                         "target": rng.normal(size=n), "label": [None] * n,
                         "split": np.where(np.arange(n) % 5 == 0, "test", "train")})


def _points(n=30, dims=2, seed=0):
    rng = np.random.default_rng(seed)
    return _corpus(n, seed).assign(idx=np.arange(n), coords=list(rng.normal(size=(n, dims))))


def _features(k=3, seed=0):
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"id": [f"L3:{i}-{i + 1}-{i + 2}:0+-" for i in range(k)],
                         "kind": ["fold", "plane", "reflection"][:k], "depth": [3, 2, 3][:k],
                         "points": [(i, i + 1, i + 2) for i in range(k)], "labels": [("0", "+", "-")] * k,
                         "w": [list(rng.normal(size=2)) for _ in range(k)], "b": rng.normal(size=k),
                         "offsets": [(float(i),) for i in range(k)], "coef": rng.normal(size=k),
                         "source": ["dictionary"] * k, "equivalents": [[f"e{i}"] * i for i in range(k)],
                         "note": [{"extra": i} for i in range(k)]})


def _path(m=4):
    return pd.DataFrame({"beta": np.geomspace(1, 0.01, m), "objective": np.linspace(2, 1, m),
                         "n_features": np.arange(1, m + 1), "dictionary_ratio": np.ones(m),
                         "duality_gap": np.full(m, 1e-9)})


def _result(depth, objective):
    return {"beta": 0.1, "beta_max": 1.5, "objective": objective, "intercept": -0.25, "n_candidates": 100 * depth,
            "certificate": {"scope": "dictionary", "exact": False, "lower_bound": float("nan")},
            "metrics": {"train_r2": 0.9}, "timings": {"fit_s": 0.5}, "solver": "restricted"}


def _full_run(store, depth_objectives=((3, 0.7), (2, 1.3)), n=30):
    run_id = store.create_run({"corpus": "adjectives", "model": "mini", "depths": [2, 3]})
    store.put_points(run_id, _points(n))
    for depth, obj in depth_objectives:
        store.put_fit(run_id, depth, _result(depth, obj), _features(), _path())
        store.mark_step(run_id, f"fit:{depth}")
    return run_id


def test_corpus_round_trip_is_idempotent_and_content_addressed(store):
    df = _corpus()
    cid = store.add_corpus(df, {"name": "toy", "task": "regression", "seed": 1})
    assert store.add_corpus(df, {"name": "other"}) == cid
    back, provenance = store.get_corpus(cid)
    pd.testing.assert_frame_equal(back, df, check_dtype=False)
    assert provenance == {"name": "toy", "task": "regression", "seed": 1}
    changed = df.assign(target=df["target"].where(df.index != 7, 0.5))
    assert store.add_corpus(changed, {}) != cid
    rows = pd.read_parquet(store.export("corpus_rows", store.workspace / "export"))
    assert len(rows) == 2 * len(df)


def test_embeddings_round_trip_fast_and_exact(store):
    X = np.random.default_rng(0).normal(size=(10_000, 384)).astype(np.float32)
    hashes = [f"{i:064x}" for i in range(len(X))]
    t0 = time.perf_counter()
    store.put_embeddings("model-a", hashes, X)
    put_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    got = store.get_embeddings("model-a", hashes[::-1])
    get_s = time.perf_counter() - t0
    assert np.array_equal(np.stack([got[h] for h in hashes]), X) and got[hashes[3]].dtype == np.float32
    assert put_s < 2.5 and get_s < 1.5, (put_s, get_s)  # measured about 0.3 s and 0.06 s

    assert store.get_embeddings("model-b", hashes[:5]) == {}
    part = store.get_embeddings("model-a", hashes[:3] + ["f" * 64])
    assert sorted(part) == sorted(hashes[:3])
    store.put_embeddings("model-a", [hashes[0], "new", "new"], np.ones((3, 384)))
    again = store.get_embeddings("model-a", [hashes[0], "new"])
    assert np.array_equal(again[hashes[0]], X[0]) and np.array_equal(again["new"], np.ones(384, np.float32))
    with pytest.raises(ValueError, match="holds 384-dimensional vectors, got 3"):
        store.put_embeddings("model-a", ["x"], np.ones((1, 3)))
    with pytest.raises(ValueError, match=r"2 hashes need a \(2, dim\) array, got shape \(3, 4\)"):
        store.put_embeddings("model-a", ["x", "y"], np.ones((3, 4)))


def test_run_status_timestamps_and_merges(store):
    run_id = store.create_run({"corpus": "vader", "seed": np.int64(3)})
    run = store.get_run(run_id)
    assert run["status"] == "created" and run["config"] == {"corpus": "vader", "seed": 3}
    assert run["created_at"].endswith("Z") and run["started_at"] is None and run["finished_at"] is None
    assert {"python", "numpy", "torch", "lookingglass"} <= set(run["versions"])
    store.update_run(run_id, status="running", timings={"load": 1.0}, info={"corpus": {"name": "vader"}})
    store.update_run(run_id, timings={"embed": 2.0}, info={"model": {"name": "mini"}})
    store.update_run(run_id, status="failed", error="boom")
    run = store.get_run(run_id)
    assert run["timings"] == {"load": 1.0, "embed": 2.0}
    assert run["info"] == {"corpus": {"name": "vader"}, "model": {"name": "mini"}}
    assert run["status"] == "failed" and run["error"] == "boom" and run["finished_at"] >= run["started_at"]
    store.update_run(run_id, status="running")
    run = store.get_run(run_id)
    assert run["error"] is None and run["finished_at"] is None
    with pytest.raises(ValueError, match="status 'done' is not one of: created, running, completed, failed"):
        store.update_run(run_id, status="done")
    with pytest.raises(StoreError, match=f"run '{run_id}' already exists"):
        store.create_run({}, run_id)
    with pytest.raises(ValueError, match="must be letters, digits"):
        store.create_run({}, "../evil")


def test_unknown_run_is_a_clear_error(store):
    for call in (lambda: store.update_run("nope", status="running"), lambda: store.mark_step("nope", "embed"),
                 lambda: store.put_points("nope", _points()), lambda: store.load_run("nope"),
                 lambda: store.completed_steps("nope")):
        with pytest.raises(UnknownRunError, match="no run 'nope'"):
            call()


def test_load_run_bundle_round_trips_every_part(store):
    run_id = _full_run(store)
    store.put_reduction(run_id, {"kind": "pca", "components": np.eye(2)[:1], "explained_variance_ratio": [0.6]})
    store.put_network(run_id, 3, {"status": "ok", "width": 64, "curves": [[1.0, 0.5], [0.9]], "rel_gap": np.inf})
    store.put_network(run_id, 2, {"status": "diverged", "width": 8})
    store.update_run(run_id, status="completed")
    bundle = store.load_run(run_id)
    assert list(bundle) == ["run", "points", "reduction", "fits", "networks"]
    assert {"run_id", "status", "config", "created_at", "finished_at", "timings", "versions", "error",
            "info"} <= set(bundle["run"])
    pts, expected = bundle["points"], _points()
    assert list(pts.columns) == ["idx", "id", "text", "target", "label", "split", "coords"]
    assert pts["text"].tolist() == expected["text"].tolist() and np.allclose(pts["target"], expected["target"])
    assert np.array_equal(np.array(pts["coords"].tolist()), np.stack(expected["coords"]))
    assert bundle["reduction"] == {"kind": "pca", "components": [[1.0, 0.0]], "explained_variance_ratio": [0.6]}
    assert [f["depth"] for f in bundle["fits"]] == [2, 3]
    fit = bundle["fits"][1]
    assert fit["objective"] == 0.7 and fit["n_candidates"] == 300 and fit["solver"] == "restricted"
    assert fit["certificate"]["scope"] == "dictionary" and np.isnan(fit["certificate"]["lower_bound"])
    pd.testing.assert_frame_equal(fit["features"], _features(), check_dtype=False)
    assert fit["features"]["points"][1] == (1, 2, 3) and fit["features"]["w"][0] == _features()["w"][0]
    pd.testing.assert_frame_equal(fit["path"], _path(), check_dtype=False)
    assert [n["depth"] for n in bundle["networks"]] == [2, 3]
    assert bundle["networks"][1]["curves"] == [[1.0, 0.5], [0.9]] and bundle["networks"][1]["rel_gap"] == np.inf


def test_put_fit_replaces_and_resume_sees_steps(store):
    run_id = _full_run(store)
    store.put_fit(run_id, 2, _result(2, 1.1), _features(2), None)
    fits = {f["depth"]: f for f in store.load_run(run_id)["fits"]}
    assert fits[2]["objective"] == 1.1 and len(fits[2]["features"]) == 2 and fits[2]["path"] is None
    assert len(fits[3]["features"]) == 3 and len(fits[3]["path"]) == 4
    features = pd.read_parquet(store.export("features", store.workspace / "f.parquet"))
    assert sorted(features.groupby("fit_depth").size().items()) == [(2, 2), (3, 3)]
    store.mark_step(run_id, "fit:2")
    assert store.completed_steps(run_id) == {"fit:2", "fit:3"}
    empty = pd.DataFrame(columns=list(_features().columns))
    store.put_fit(run_id, 4, _result(4, 0.5), empty)
    assert store.load_run(run_id)["fits"][2]["features"].empty


def test_list_runs_summarises_each_run(store):
    a = _full_run(store)
    b = store.create_run({"corpus": "afinn", "model": "other"})
    store.update_run(b, info={"corpus": {"name": "afinn-165"}})
    runs = store.list_runs()
    assert runs["run_id"].tolist() == [a, b]
    assert {"run_id", "status", "created", "corpus", "model", "n_points", "dims", "depths", "objectives"} <= set(runs)
    first, second = runs.iloc[0], runs.iloc[1]
    assert (first["corpus"], first["model"], first["n_points"], first["dims"]) == ("adjectives", "mini", 30, 2)
    assert first["depths"] == [2, 3] and first["objectives"] == {2: 1.3, 3: 0.7}
    assert second["corpus"] == "afinn-165" and pd.isna(second["n_points"]) and second["depths"] == []


def test_a_failed_write_leaves_earlier_content_intact(store, monkeypatch):
    run_id = _full_run(store)
    before = store.load_run(run_id)
    real = Store._insert

    def failing(con, table, rows, on_conflict=False):
        if table == "paths":
            raise RuntimeError("disk on fire")
        real(con, table, rows, on_conflict)

    monkeypatch.setattr(Store, "_insert", staticmethod(failing))
    with pytest.raises(RuntimeError, match="disk on fire"):
        store.put_fit(run_id, 2, _result(2, 99.0), _features(1), _path(2))
    monkeypatch.undo()
    after = store.load_run(run_id)
    assert [f["objective"] for f in after["fits"]] == [f["objective"] for f in before["fits"]] == [1.3, 0.7]
    pd.testing.assert_frame_equal(after["fits"][0]["features"], before["fits"][0]["features"])
    with pytest.raises(TypeError, match="cannot store a value of type object as JSON"):
        store.put_network(run_id, 2, {"status": "ok", "model": object()})
    assert store.load_run(run_id)["networks"] == []


def _killed_writer(workspace, run_id):
    store = Store(workspace)
    with store._session(write=True) as con:
        con.execute("DELETE FROM points WHERE run_id = ?", [run_id])
        con.execute("INSERT INTO runs (run_id, status) VALUES ('half-written', 'running')")
        os._exit(1)  # killed in the middle of the transaction


def test_a_killed_writer_leaves_earlier_runs_intact(store):
    run_id = _full_run(store)
    proc = FORK.Process(target=_killed_writer, args=(store.workspace, run_id))
    proc.start()
    proc.join(30)
    assert proc.exitcode == 1
    reopened = Store(store.workspace, lock_timeout=5)
    assert reopened.list_runs()["run_id"].tolist() == [run_id]
    assert len(reopened.load_run(run_id)["points"]) == 30
    reopened.mark_step(run_id, "report")


def _writer(workspace, tag, n_runs, barrier):
    store = Store(workspace, lock_timeout=60)
    barrier.wait()
    for i in range(n_runs):
        run_id = store.create_run({"writer": tag, "i": i}, f"{tag}-{i}")
        store.put_points(run_id, _points(20 + i, seed=i))
        store.put_fit(run_id, 2, _result(2, float(i)), _features(), _path())
        store.mark_step(run_id, "fit:2")


def test_concurrent_writers_serialise_and_never_corrupt(store):
    barrier = FORK.Barrier(3)
    procs = [FORK.Process(target=_writer, args=(store.workspace, tag, 5, barrier)) for tag in ("p", "q")]
    for p in procs:
        p.start()
    thread = threading.Thread(target=_writer, args=(store.workspace, "t", 5, barrier))
    thread.start()
    thread.join(120)
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    runs = store.list_runs().set_index("run_id")
    assert sorted(runs.index) == sorted(f"{t}-{i}" for t in "pqt" for i in range(5))
    for run_id, run in runs.iterrows():
        i = int(run_id.split("-")[1])
        assert run["n_points"] == 20 + i and run["objectives"] == {2: float(i)}
        assert store.completed_steps(run_id) == {"fit:2"}


def _hold_lock(lock_path, seconds, ready):
    with open(lock_path, "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        ready.set()
        time.sleep(seconds)


def test_a_second_writer_waits_then_fails_clearly(store):
    ready = FORK.Event()
    holder = FORK.Process(target=_hold_lock, args=(store.lock_path, 2.0, ready))
    holder.start()
    assert ready.wait(10)
    held_since = time.perf_counter()
    with pytest.raises(StoreLockedError) as e:
        Store(store.workspace, lock_timeout=0.3).create_run({})
    assert time.perf_counter() - held_since >= 0.3
    assert "\n" not in str(e.value) and str(store.lock_path) in str(e.value) and "locked" in str(e.value)
    patient = Store(store.workspace, lock_timeout=20)
    run_id = patient.create_run({})
    assert time.perf_counter() - held_since >= 1.9
    holder.join(10)
    assert patient.list_runs()["run_id"].tolist() == [run_id]


def _hold_database(path, ready, done):
    import duckdb
    con = duckdb.connect(str(path))
    ready.set()
    done.wait(20)
    con.close()


def test_a_database_held_by_another_program_is_a_lock_error(store):
    ready, done = FORK.Event(), FORK.Event()
    holder = FORK.Process(target=_hold_database, args=(store.path, ready, done))
    holder.start()
    try:
        assert ready.wait(10)
        with pytest.raises(StoreLockedError, match="is held open by another program"):
            store.list_runs()
    finally:
        done.set()
        holder.join(10)
    assert store.list_runs().empty


def test_a_corrupted_file_is_named_and_left_alone(workspace):
    path = workspace / "lookingglass.duckdb"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(StoreCorruptError) as e:
        Store(workspace)
    assert str(path) in str(e.value) and "\n" not in str(e.value)
    assert path.read_bytes() == b"this is not a database" * 100


def test_damaged_blocks_are_reported_as_corruption(store):
    X = np.random.default_rng(1).normal(size=(3000, 384)).astype(np.float32)
    store.put_embeddings("m", [str(i) for i in range(len(X))], X)
    size = store.path.stat().st_size
    with open(store.path, "r+b") as f:
        for start in range(size // 4, size, size // 8):
            f.seek(start)
            f.write(os.urandom(4096))
    with pytest.raises(StoreCorruptError, match="corrupted or not a lookingglass store"):
        Store(store.workspace).get_embeddings("m", [str(i) for i in range(len(X))])


def test_read_only_store_reads_but_refuses_writes(store, tmp_path):
    run_id = _full_run(store)
    reader = Store(store.workspace, read_only=True)
    assert reader.load_run(run_id)["fits"][0]["depth"] == 2
    with pytest.raises(StoreError, match="opened read-only"):
        reader.create_run({})
    with pytest.raises(StoreError, match="no store at"):
        Store(tmp_path / "nowhere", read_only=True)


def test_every_table_exports_to_parquet(store):
    run_id = _full_run(store)
    store.put_embeddings("m", ["a", "b"], np.eye(2, 3))
    assert set(store.tables()) >= {"corpora", "embeddings", "runs", "points", "fits", "features", "networks"}
    for table in store.tables():
        df = pd.read_parquet(store.export(table, store.workspace / "export"))
        assert isinstance(df, pd.DataFrame)
    points = pd.read_parquet(store.workspace / "export" / "points.parquet")
    assert (points["run_id"] == run_id).all() and len(points) == 30
    assert np.allclose(np.stack(points["coords"]), np.stack(_points()["coords"]))
    emb = pd.read_parquet(store.workspace / "export" / "embeddings.parquet")
    assert np.array_equal(np.stack(emb.sort_values("text_hash")["vector"]), np.eye(2, 3))
    with pytest.raises(ValueError, match="no table 'nope' in the store; tables are: meta, corpora"):
        store.export("nope", store.workspace / "x.parquet")


def test_get_fits_is_the_bundles_fits(store):
    import pandas as pd
    run = store.create_run({"corpus": "x"})
    feats = pd.DataFrame({"id": ["L2:0-1"], "kind": ["plane"], "depth": [2], "points": [(0, 1)], "labels": [()],
                          "w": [[1.0, 0.0]], "b": [0.5], "offsets": [()], "coef": [0.3], "source": ["dictionary"],
                          "equivalents": [[]]})
    store.put_fit(run, 2, {"beta": 0.1, "objective": 1.5, "symmetry": {"mean": 0.2}}, feats)
    fits = store.get_fits(run)
    bundle = store.load_run(run)["fits"]
    assert len(fits) == 1 and fits[0]["symmetry"] == {"mean": 0.2} and fits[0]["objective"] == 1.5
    assert fits[0]["features"].equals(bundle[0]["features"])
    with pytest.raises(LookupError):
        store.get_fits("no-such-run")


WRITER_TIMEOUT = 1.2      # a waiter gives up after this long without progress of the queue ahead of it


def _queued_writer(workspace, tag, start_at, hold, order):
    """A writer arriving at ``start_at`` (time.time) that keeps the lock ``hold`` seconds, logging its turn."""
    store = Store(workspace, lock_timeout=WRITER_TIMEOUT)
    time.sleep(max(0.0, start_at - time.time()))
    with store._session(write=True):
        order.put((tag, time.time()))
        time.sleep(hold)


def test_writers_queue_first_come_first_served_and_all_get_their_turn(store):
    # each holds the lock 0.5 s (0.7 s below lock_timeout: a loaded machine's slow opens fit); the last waits
    # ~2.5 s in all, over twice lock_timeout, yet never gives up
    order = FORK.Queue()
    t0 = time.time() + 1.5
    procs = [FORK.Process(target=_queued_writer, args=(store.workspace, i, t0 + 0.1 * i, 0.5, order))
             for i in range(6)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert [p.exitcode for p in procs] == [0] * 6
    turns = [order.get(timeout=5) for _ in procs]
    assert [tag for tag, _ in turns] == list(range(6))
    assert turns[-1][1] - t0 > 2 * WRITER_TIMEOUT


def test_a_lock_left_by_a_killed_process_is_taken_over_with_a_log_line(store, caplog):
    run_id = store.create_run({})
    # a ticket older than any new one whose owner is gone (nobody holds its flock), as a SIGKILL leaves it
    (store.queue_path / f"{1:020d}-4242-1-w").touch()
    caplog.set_level("WARNING", logger="data.store")
    start = time.perf_counter()
    Store(store.workspace, lock_timeout=0.5).mark_step(run_id, "reduce")
    assert time.perf_counter() - start < 0.5
    assert store.completed_steps(run_id) == {"reduce"}
    assert any("took over the store lock" in r.getMessage() and "pid 4242" in r.getMessage() for r in caplog.records)
    assert not list(store.queue_path.iterdir())


def _damage(path, seed=0):
    """Stray bytes over every used part of the file after its header blocks."""
    size = path.stat().st_size
    rng = np.random.default_rng(seed)
    with open(path, "r+b") as f:
        for start in range(3 * 4096 * 2, size, 4096 * 4):
            f.seek(start)
            f.write(rng.bytes(4096))


def test_a_damaged_store_is_never_written_and_says_how_to_recover(store, tmp_path):
    run_id = _full_run(store)
    X = np.random.default_rng(1).normal(size=(3000, 64)).astype(np.float32)
    store.put_embeddings("m", [str(i) for i in range(len(X))], X)
    backup = store.backup()
    _damage(store.path)
    damaged = store.path.read_bytes()
    for attempt in (lambda: Store(store.workspace), lambda: Store(store.workspace, read_only=True),
                    lambda: store.create_run({}), lambda: store.mark_step(run_id, "x"), store.list_runs):
        with pytest.raises(StoreCorruptError) as e:
            attempt()
        assert "lookingglass export" in str(e.value) and str(store.backup_dir) in str(e.value)
        assert "\n" not in str(e.value)
    assert store.path.read_bytes() == damaged and not os.path.exists(f"{store.path}.wal")
    # the backup is the store as it was before the damage
    restored = tmp_path / "restored"
    restored.mkdir()
    (restored / "lookingglass.duckdb").write_bytes(backup.read_bytes())
    again = Store(restored, read_only=True)
    assert again.list_runs()["run_id"].tolist() == [run_id] and len(again.get_embeddings("m", ["0", "1"])) == 2


def _readable(path):
    """Table -> rows of a DuckDB file read directly, or None for a table that cannot be read."""
    import duckdb
    con = duckdb.connect(str(path), read_only=True)
    out = {}
    for (name,) in con.execute("SELECT table_name FROM duckdb_tables()").fetchall():
        try:
            out[name] = con.sql(f"SELECT * FROM {name}").fetchall()
        except duckdb.Error:
            out[name] = None
    con.close()
    return out


def test_export_saves_every_readable_table_of_a_damaged_store(store, tmp_path):
    import duckdb
    _full_run(store)
    good = store.path.read_bytes()
    # damage one block at a time until the file opens but some table cannot be read
    for offset in range(12288 + 100, len(good), 262144):
        store.path.write_bytes(good[:offset] + bytes(64) + good[offset + 64:])
        try:
            readable = _readable(store.path)
        except duckdb.Error:
            continue
        if None in readable.values():
            break
    else:
        pytest.skip("no single damaged block leaves this DuckDB file openable with a table unreadable")
    damaged = store.path.read_bytes()
    with pytest.raises(StoreCorruptError):
        store.list_runs()
    exported = Store(store.workspace, read_only=True, check=False).export_all(tmp_path / "export")
    assert store.path.read_bytes() == damaged
    assert set(exported) == set(readable)
    for table, rows in readable.items():
        if rows is None:
            assert isinstance(exported[table], str) and exported[table]
        else:
            assert len(pd.read_parquet(exported[table])) == len(rows)


def test_a_store_cut_short_is_reported_by_every_reader(store):
    _full_run(store)
    store.put_embeddings("m", [str(i) for i in range(2000)],
                         np.random.default_rng(2).normal(size=(2000, 64)).astype(np.float32))
    os.truncate(store.path, store.path.stat().st_size // 2)
    with pytest.raises(StoreCorruptError, match="lookingglass export"):
        Store(store.workspace, read_only=True).list_runs()


def test_backups_are_copies_and_only_the_newest_are_kept(store):
    _full_run(store)
    copies = [store.backup(keep=2) for _ in range(3)]
    assert sorted(store.backup_dir.glob("*.duckdb")) == copies[1:]
    assert copies[-1].read_bytes() == store.path.read_bytes()


def _exit_now():
    os._exit(0)


def test_status_follows_the_runs_process(store):
    from data.store import run_process
    child = FORK.Process(target=_exit_now)
    child.start()
    child.join(10)
    gone = {**run_process(), "pid": child.pid}
    me = run_process()
    dead = store.create_run({}, "dead", status="running", info={"process": gone})
    alive = store.create_run({}, "alive", status="running", info={"process": me})
    done = store.create_run({}, "done", status="running", info={"process": gone}, steps=("corpus",))
    store.update_run(done, status="completed")
    unreported = store.create_run({}, "unreported", status="running", info={"process": gone})
    store.update_run(unreported, status="completed")
    store.mark_step(done, "report")
    shown = dict(zip(store.list_runs()["run_id"], store.list_runs()["status"]))
    assert shown == {"dead": "interrupted", "alive": "running", "done": "completed", "unreported": "interrupted"}
    assert {r: store.get_run(r)["status"] for r in shown} == shown
    assert store.completed_steps(done) == {"corpus", "report"}
    # a run whose process lives cannot be taken over by another process; a dead one can
    with pytest.raises(StoreError, match="still running"):
        store.update_run(alive, status="running", info={"process": gone})
    store.update_run(dead, status="running", info={"process": me})
    assert store.get_run(dead)["status"] == "running"


def test_halted_writes_are_refused_outside_the_halting_thread(store):
    from data.store import StoreHaltedError, halt_writes, resume_writes
    run_id = store.create_run({})
    errors = []

    def write():
        try:
            store.mark_step(run_id, "late")
        except StoreHaltedError as e:
            errors.append(e)

    halt_writes()
    try:
        worker = threading.Thread(target=write)
        worker.start()
        worker.join(10)
        store.mark_step(run_id, "mine")
    finally:
        resume_writes()
    assert len(errors) == 1 and store.completed_steps(run_id) == {"mine"}
    write()
    assert store.completed_steps(run_id) == {"mine", "late"}


def test_the_data_layer_imports_nothing_from_flows():
    """data/ is below flows/: the store (process liveness included) loads without the flows package."""
    import subprocess
    import sys
    code = ("import sys, data.store as s; s.process_alive(s.run_process()); "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('flows', 'prefect')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONPATH": os.path.dirname(os.path.dirname(os.path.abspath(__file__)))})
    assert out.stdout.strip() == "[]"
