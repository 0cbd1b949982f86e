"""The store: one DuckDB file per workspace holding corpora, the embedding cache and every run.

``Store(workspace)`` opens ``<workspace>/lookingglass.duckdb``. Each call opens the file, does
its work in one transaction and closes it, under a lock file ``<workspace>/lookingglass.lock``
(``flock``: shared for readers, exclusive for writers). So processes and threads take turns, an
interrupted write leaves earlier content intact, and nothing holds the file between calls.

Waiters queue first come, first served (a ticket file each in ``<workspace>/lookingglass.queue``,
locked while its owner lives); ``lock_timeout`` bounds how long the queue may stand still, not
the time spent behind other writers, and a ticket left by a killed process is taken over with a
log line. Every write session (and every ``Store(...)``) first checks the file: when its size or
time differs from what the last write recorded (``lookingglass.duckdb.ok``), every table is read
through, and a damaged file raises ``StoreCorruptError`` (with the way to recover) before anything
is written. ``backup()`` copies the file under the lock; ``export_all()`` writes every readable
table to Parquet, also from a damaged file. The API is docs/STORE_CONTRACT.md.
"""
from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import platform
import re
import shutil
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ._liveness import alive, start_time

__all__ = ["Store", "StoreError", "StoreLockedError", "StoreCorruptError", "StoreHaltedError", "UnknownRunError",
           "STATUSES", "halt_writes", "resume_writes", "run_process"]

logger = logging.getLogger(__name__)

SCHEMA_VERSION = "1"
STATUSES = ("created", "running", "completed", "failed", "interrupted")
RUN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
CORPUS_COLUMNS = ("id", "text", "target", "label", "split")
POINT_COLUMNS = ("idx",) + CORPUS_COLUMNS + ("coords",)
FIT_KEYS = ("beta", "beta_max", "objective", "intercept", "n_candidates", "certificate", "metrics", "timings")

# Typed columns of the features and path tables; other columns of those frames go to `extra` (JSON).
FEATURE_TYPES = {"id": pa.string(), "kind": pa.string(), "depth": pa.int32(), "points": pa.list_(pa.int64()),
                 "labels": pa.list_(pa.string()), "w": pa.list_(pa.float64()), "b": pa.float64(),
                 "offsets": pa.list_(pa.float64()), "coef": pa.float64(), "source": pa.string(),
                 "equivalents": pa.list_(pa.string())}
FEATURE_TUPLES = ("points", "labels", "offsets")
PATH_TYPES = {"beta": pa.float64(), "objective": pa.float64(), "n_features": pa.int64(),
              "dictionary_ratio": pa.float64(), "duality_gap": pa.float64()}


def _sql(t: pa.DataType) -> str:
    if pa.types.is_list(t):
        return _sql(t.value_type) + "[]"
    return {pa.string(): "VARCHAR", pa.int32(): "INTEGER", pa.int64(): "BIGINT", pa.float64(): "DOUBLE"}[t]


def _typed(types: dict) -> str:
    return ", ".join(f"{name} {_sql(t)}" for name, t in types.items())


TABLES = {
    "meta": "key VARCHAR PRIMARY KEY, value VARCHAR",
    "corpora": "corpus_id VARCHAR PRIMARY KEY, name VARCHAR, task VARCHAR, n_points INTEGER, provenance VARCHAR, "
               "created_at TIMESTAMP",
    "corpus_rows": "corpus_id VARCHAR, row INTEGER, id VARCHAR, text VARCHAR, target DOUBLE, label VARCHAR, "
                   "split VARCHAR",
    "embeddings": "fingerprint VARCHAR, text_hash VARCHAR, vector FLOAT[], created_at TIMESTAMP, "
                  "PRIMARY KEY (fingerprint, text_hash)",
    "runs": "run_id VARCHAR PRIMARY KEY, status VARCHAR, config VARCHAR, created_at TIMESTAMP, started_at TIMESTAMP, "
            "finished_at TIMESTAMP, timings VARCHAR, versions VARCHAR, error VARCHAR, info VARCHAR",
    "steps": "run_id VARCHAR, step VARCHAR, done_at TIMESTAMP, PRIMARY KEY (run_id, step)",
    "points": "run_id VARCHAR, idx INTEGER, id VARCHAR, text VARCHAR, target DOUBLE, label VARCHAR, split VARCHAR, "
              "coords DOUBLE[]",
    "reductions": "run_id VARCHAR PRIMARY KEY, params VARCHAR",
    "fits": "run_id VARCHAR, depth INTEGER, beta DOUBLE, beta_max DOUBLE, objective DOUBLE, intercept DOUBLE, "
            "n_candidates BIGINT, certificate VARCHAR, metrics VARCHAR, timings VARCHAR, extra VARCHAR, "
            "feature_columns VARCHAR, path_columns VARCHAR, created_at TIMESTAMP, PRIMARY KEY (run_id, depth)",
    "features": f"run_id VARCHAR, fit_depth INTEGER, rank INTEGER, {_typed(FEATURE_TYPES)}, extra VARCHAR",
    "paths": f"run_id VARCHAR, fit_depth INTEGER, step INTEGER, {_typed(PATH_TYPES)}, extra VARCHAR",
    "networks": "run_id VARCHAR, depth INTEGER, status VARCHAR, result VARCHAR, created_at TIMESTAMP, "
                "PRIMARY KEY (run_id, depth)",
}
# whether a run's report step is marked (a completed run shows "completed" only then)
_REPORTED = "EXISTS (SELECT 1 FROM steps s WHERE s.run_id = r.run_id AND s.step = 'report')"
# DuckDB errors that mean the file itself is damaged (the base class carries "Corrupt database file").
_DAMAGE = (duckdb.IOException, duckdb.SerializationException, duckdb.InternalException, duckdb.FatalException)


class StoreError(RuntimeError):
    """A store operation that cannot be done; the message names the store file."""


class StoreLockedError(StoreError):
    """Another writer held the store past ``lock_timeout``."""


class StoreCorruptError(StoreError):
    """The store file is damaged or not a lookingglass store."""


class StoreHaltedError(StoreError):
    """A write from another thread after :func:`halt_writes` (an interrupted run stops writing)."""


class UnknownRunError(StoreError, LookupError):
    """No run with this id in the store."""


_halted_for: int | None = None   # the one thread allowed to write after halt_writes()
_THREADS = threading.RLock()      # one store session at a time per process (see Store._session)


def halt_writes() -> None:
    """Refuse store writes from every thread but this one (until :func:`resume_writes`): an interrupted
    run records its end and its report while its other tasks can no longer change the store."""
    global _halted_for
    _halted_for = threading.get_ident()


def resume_writes() -> None:
    """Lift :func:`halt_writes`."""
    global _halted_for
    _halted_for = None


def run_process() -> dict:
    """This process as a run records it (pid, host, start time), for :func:`process_alive`."""
    return {"pid": os.getpid(), "host": socket.gethostname(), "start_time": start_time(os.getpid())}


def process_alive(process: dict | None) -> bool | None:
    """Whether a run's recorded process still runs; None when it cannot be told (no record, another host,
    no ``/proc``)."""
    if not process or process.get("host") != socket.gethostname() or not os.path.isdir("/proc"):
        return None
    return alive(int(process["pid"]), process.get("start_time"))


def shown_status(status: str, info: dict | None, reported: bool) -> str:
    """The status a run shows: a "running" (or "created") run whose process is gone is "interrupted", and
    so is a "completed" one whose process ended before its report was written."""
    process = (info or {}).get("process")
    if process is None or status not in ("created", "running", "completed") or (status == "completed" and reported):
        return status
    return "interrupted" if process_alive(process) is False else status


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def _iso(t: datetime | None) -> str | None:
    return None if t is None else t.isoformat(timespec="seconds") + "Z"


def _default(o):
    """JSON for numpy values, arrays, tuples, sets, paths, timestamps and small frames."""
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, (np.ndarray, set, frozenset, tuple)):
        return list(o.tolist() if isinstance(o, np.ndarray) else o)
    if isinstance(o, (datetime, pd.Timestamp)):
        return o.isoformat()
    if isinstance(o, Path):
        return str(o)
    if isinstance(o, pd.DataFrame):
        return o.to_dict("records")
    raise TypeError(f"cannot store a value of type {type(o).__name__} as JSON")


def _dumps(obj) -> str | None:
    return None if obj is None else json.dumps(obj, default=_default)


def _one(con, sql: str, params=()) -> tuple | None:
    """The first row of a query, fully consumed (DuckDB refuses new work on a half-read result)."""
    rows = con.execute(sql, params).fetchall()
    return rows[0] if rows else None


def _loads(text: str | None):
    return None if text is None else json.loads(text)


def _plain(v):
    """A cell as a plain Python value for Arrow: arrays and tuples become lists, NaN stays NaN."""
    if isinstance(v, np.ndarray):
        return v.tolist()
    if isinstance(v, (tuple, list)):
        return [_plain(x) for x in v]
    if isinstance(v, np.generic):
        return v.item()
    return v


def _missing(v) -> bool:
    return v is None or v is pd.NA or (isinstance(v, float) and np.isnan(v))


def _rectangular(values, dtype) -> np.ndarray | None:
    """``values`` as a 2-D array when every row has the same length, else None."""
    if isinstance(values, np.ndarray):
        return values.astype(dtype, copy=False) if values.ndim == 2 else None
    try:
        block = np.asarray(list(values), dtype=dtype)
    except (ValueError, TypeError):
        return None
    return block if block.ndim == 2 and len(block) else None


def _array(values, t: pa.DataType) -> pa.Array:
    """An Arrow array of type ``t`` (missing cells null, NaN kept in float columns); a rectangular
    float list column goes through one numpy block."""
    if pa.types.is_list(t) and pa.types.is_floating(t.value_type):
        block = _rectangular(values, t.value_type.to_pandas_dtype())
        if block is not None:
            offsets = pa.array(np.arange(len(block) + 1) * block.shape[1], pa.int32())
            return pa.ListArray.from_arrays(offsets, pa.array(block.ravel(), t.value_type))
    keep_nan = pa.types.is_floating(t)
    return pa.array([None if not keep_nan and _missing(v) else _plain(v) for v in values], t)


def _versions() -> dict:
    out = {"python": platform.python_version()}
    for package in ("lookingglass", "numpy", "torch", "scikit-learn", "duckdb"):
        try:
            out[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            out[package] = None
    return out


def _frame_table(df: pd.DataFrame, types: dict, keys: dict, order: str) -> pa.Table:
    """Arrow rows of a features or path frame: key columns, the typed columns, the rest as JSON."""
    n = len(df)
    cols = {k: pa.array([v] * n, t) for k, (v, t) in keys.items()}
    cols[order] = pa.array(range(n), pa.int32())
    for name, t in types.items():
        cols[name] = _array(df[name] if name in df.columns else [None] * n, t)
    rest = [c for c in df.columns if c not in types]
    extra = [_dumps({c: _plain(row[c]) for c in rest}) for _, row in df[rest].iterrows()] if rest else [None] * n
    cols["extra"] = pa.array(extra, pa.string())
    return pa.table(cols)


def _frame_rows(table: pa.Table, columns: list[str], tuples: tuple = ()) -> pd.DataFrame:
    """Inverse of ``_frame_table`` for the rows of one fit: the frame with its original columns."""
    data = {c: table.column(c).to_pylist() for c in table.column_names}
    extra = [_loads(e) or {} for e in data.pop("extra")]
    for c in columns:
        if c not in data:
            data[c] = [e.get(c) for e in extra]
        elif c in tuples:
            data[c] = [None if v is None else tuple(v) for v in data[c]]
    return pd.DataFrame({c: data[c] for c in columns}, columns=columns)


def content_hash(df: pd.DataFrame) -> str:
    """Content hash of a corpus frame (its five columns, in order)."""
    payload = json.dumps([[None if _missing(v) else _plain(v) for v in df[c].tolist()] for c in CORPUS_COLUMNS],
                         default=_default)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


class Store:
    """The workspace's DuckDB store: corpora, the embedding cache and every run's results.

    Every method opens ``<workspace>/lookingglass.duckdb``, works in one transaction and closes
    it, under the lock file ``<workspace>/lookingglass.lock`` (shared for reads, exclusive for
    writes), so processes and threads share one store safely. The methods and the run bundle are
    specified in docs/STORE_CONTRACT.md.

    Parameters
    ----------
    workspace : str or path-like
        The workspace folder (created when missing, except read-only).
    read_only : bool, default False
        Refuse writes; the store must exist.
    lock_timeout : float, default 600.0
        Seconds a writer waits for the lock before ``StoreLockedError``.

    Attributes
    ----------
    workspace : Path
        The workspace folder.
    path : Path
        The DuckDB file.
    lock_path : Path
        The lock file.
    read_only : bool
    lock_timeout : float

    Examples
    --------
    >>> import tempfile
    >>> from data.store import Store
    >>> store = Store(tempfile.mkdtemp())
    >>> store.create_run({"corpus": "vader"}, run_id="demo")
    'demo'
    >>> store.update_run("demo", status="completed")
    >>> store.list_runs()[["run_id", "status"]].to_dict("records")
    [{'run_id': 'demo', 'status': 'completed'}]
    >>> store.load_run("demo")["run"]["config"]
    {'corpus': 'vader'}
    """

    def __init__(self, workspace: str | os.PathLike, read_only: bool = False, lock_timeout: float = 600.0,
                 check: bool = True):
        """Open (or, unless ``read_only``, create) the workspace's store; ``check=False`` skips the integrity
        check and schema on opening (for ``export_all`` of a damaged file)."""
        self.workspace = Path(workspace)
        self.path = self.workspace / "lookingglass.duckdb"
        self.lock_path = self.workspace / "lookingglass.lock"
        self.queue_path = self.workspace / "lookingglass.queue"
        self.stamp_path = self.workspace / "lookingglass.duckdb.ok"
        self.backup_dir = self.workspace / "backups"
        self.read_only = read_only
        self.lock_timeout = float(lock_timeout)
        if read_only and not self.path.exists():
            raise StoreError(f"no store at {self.path}")
        self.workspace.mkdir(parents=True, exist_ok=True)
        if check:
            with self._session(write=not read_only) as con:
                self._schema(con)

    def __repr__(self) -> str:
        return f"Store({str(self.workspace)!r}{', read_only=True' if self.read_only else ''})"

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc) -> None:
        """Nothing to close: every call opens and closes the file."""

    # -- file, lock and transaction ---------------------------------------------------------
    @contextmanager
    def _lock(self, exclusive: bool) -> Iterator[None]:
        """``flock`` on the lock file, taken in ticket order (a new descriptor per call, so threads exclude
        each other too). A reader waits for older writers, a writer for every older ticket."""
        self.queue_path.mkdir(exist_ok=True)
        ticket = self._ticket(exclusive)
        fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            started = time.monotonic()
            ahead, deadline, waited = None, started + self.lock_timeout, False
            while True:
                now_ahead = self._ahead(ticket[1], exclusive)
                if now_ahead != ahead:                   # the queue moved: the timeout starts again
                    ahead, deadline = now_ahead, time.monotonic() + self.lock_timeout
                if not ahead:
                    try:
                        fcntl.flock(fd, (fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH) | fcntl.LOCK_NB)
                        break
                    except BlockingIOError:
                        pass
                if time.monotonic() >= deadline:
                    raise StoreLockedError(
                        f"{self.path} is locked by another writer (no progress for {self.lock_timeout:g} s on "
                        f"{self.lock_path}); wait for the other run or raise lock_timeout") from None
                if not waited and time.monotonic() - started > 1:
                    logger.info("waiting for the store lock %s", self.lock_path)
                    waited = True
                time.sleep(0.02)
            yield
        finally:
            os.close(fd)
            os.unlink(ticket[1])
            os.close(ticket[0])

    def _ticket(self, exclusive: bool) -> tuple[int, Path]:
        """A locked ticket file ``<time_ns>-<pid>-<thread>-<r|w>`` in the queue (locked before it is visible)."""
        name = f"{time.time_ns():020d}-{os.getpid()}-{threading.get_ident()}-{'w' if exclusive else 'r'}"
        temp = self.queue_path / f".{name}"
        fd = os.open(temp, os.O_RDWR | os.O_CREAT, 0o644)
        fcntl.flock(fd, fcntl.LOCK_EX)
        os.rename(temp, self.queue_path / name)
        return fd, self.queue_path / name

    def _ahead(self, ticket: Path, exclusive: bool) -> tuple[str, ...]:
        """Live tickets older than ``ticket`` that it waits for; tickets of dead processes are removed."""
        out = []
        for name in sorted(os.listdir(self.queue_path)):
            if name >= ticket.name:
                break
            if name.startswith(".") or not (exclusive or name.endswith("-w")):
                continue
            try:
                fd = os.open(self.queue_path / name, os.O_RDWR)
            except FileNotFoundError:
                continue                                   # its owner just finished
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                out.append(name)                           # its owner lives
                continue
            finally:
                os.close(fd)
            try:
                os.unlink(self.queue_path / name)
                logger.warning("took over the store lock %s: its holder (pid %s) is gone", self.lock_path,
                               name.split("-")[1])
            except FileNotFoundError:
                pass
        return tuple(out)

    @contextmanager
    def _session(self, write: bool) -> Iterator[duckdb.DuckDBPyConnection]:
        """A connection under the lock, on a checked file; for writers one transaction, rolled back on any error.

        Threads of one process take turns (``_THREADS``, before the file lock, so the two locks are always
        taken in one order): DuckDB's Python client shares one database instance per file and process, and
        connections opened and closed by several threads at once raced on it under load (seen as
        "Table Function with name python_arrow_scan does not exist")."""
        if write and self.read_only:
            raise StoreError(f"{self.path} is opened read-only")
        if write and _halted_for not in (None, threading.get_ident()):
            raise StoreHaltedError(f"{self.path}: writes are halted (the run was interrupted)")
        with _THREADS, self._lock(exclusive=write):
            self._check()
            try:
                con = duckdb.connect(str(self.path), read_only=not write)
            except duckdb.Error as e:
                raise self._translate(e) from None
            try:
                if write:
                    con.execute("BEGIN TRANSACTION")
                yield con
                if write:
                    con.execute("COMMIT")
            except duckdb.Error as e:
                self._rollback(con, write)
                translated = self._translate(e)
                if translated is e:
                    raise
                raise translated from None
            except BaseException:
                self._rollback(con, write)
                raise
            finally:
                con.close()
            if write:
                self._stamp()

    def _state(self) -> dict | None:
        """Size and modification time of the store file and its write-ahead log (None: no file yet)."""
        try:
            st = self.path.stat()
        except FileNotFoundError:
            return None
        wal = Path(f"{self.path}.wal")
        return {"size": st.st_size, "mtime_ns": st.st_mtime_ns,
                "wal": wal.stat().st_size if wal.exists() else None}

    def _stamp(self) -> None:
        """Record the file's state as known good (written atomically)."""
        temp = self.stamp_path.with_name(f".{self.stamp_path.name}.{os.getpid()}.{threading.get_ident()}")
        temp.write_text(json.dumps(self._state()))
        os.replace(temp, self.stamp_path)

    @contextmanager
    def _as_is(self) -> Iterator[tuple[duckdb.DuckDBPyConnection, list[str]]]:
        """A read-only connection to the file as it is (unchecked) and the names of its tables."""
        try:
            con = duckdb.connect(str(self.path), read_only=True)
        except duckdb.Error as e:
            raise self._translate(e) from None
        try:
            yield con, [r[0] for r in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()]
        except duckdb.Error as e:
            raise self._translate(e) from None
        finally:
            con.close()

    def _check(self) -> None:
        """Read every table through when the file changed since the last recorded write (a crash, another
        program, damage); a damaged file raises ``StoreCorruptError`` and is not touched."""
        state = self._state()
        if state is None:
            return
        try:
            if json.loads(self.stamp_path.read_text()) == state:
                return
        except (OSError, ValueError):
            pass
        start = time.perf_counter()
        with self._as_is() as (con, names):
            for name in names:
                for _ in con.sql(f'SELECT * FROM "{name}"').to_arrow_reader(65536):
                    pass
        logger.info("checked %s: %d tables read through in %.2f s", self.path, len(names),
                    time.perf_counter() - start)
        self._stamp()

    @staticmethod
    def _rollback(con, write: bool) -> None:
        if write:
            try:
                con.execute("ROLLBACK")
            except duckdb.Error:
                pass  # the transaction is already gone with the failed statement

    def _translate(self, e: duckdb.Error) -> Exception:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        if isinstance(e, duckdb.IOException) and "could not set lock" in first.lower():
            return StoreLockedError(f"{self.path} is held open by another program ({first})")
        if isinstance(e, _DAMAGE) or type(e) is duckdb.Error:
            return StoreCorruptError(
                f"{self.path} is corrupted or not a lookingglass store ({first}); nothing was written to it. "
                f"Recover: `lookingglass export --workspace {self.workspace}` saves every readable table as "
                f"Parquet, then move the file away and copy back the latest {self.backup_dir}/*.duckdb "
                f"(README, \"Recovering a damaged store\")")
        return e

    def _schema(self, con) -> None:
        known = _one(con, "SELECT count(*) FROM duckdb_tables() WHERE table_name = 'meta'")[0]
        row = _one(con, "SELECT value FROM meta WHERE key = 'schema_version'") if known else None
        if row is None:
            if self.read_only:
                raise StoreCorruptError(f"{self.path} is not a lookingglass store (no schema)")
            for name, columns in TABLES.items():
                con.execute(f"CREATE TABLE IF NOT EXISTS {name} ({columns})")
            con.execute("INSERT OR REPLACE INTO meta VALUES ('schema_version', ?)", [SCHEMA_VERSION])
            logger.info("created store %s", self.path)
        elif row[0] != SCHEMA_VERSION:
            raise StoreError(f"{self.path} has store schema {row[0]}, this lookingglass reads schema {SCHEMA_VERSION}")

    @staticmethod
    def _require_run(con, run_id: str) -> None:
        if _one(con, "SELECT 1 FROM runs WHERE run_id = ?", [run_id]) is None:
            raise UnknownRunError(f"no run '{run_id}' in the store")

    # -- corpora ----------------------------------------------------------------------------
    def add_corpus(self, df: pd.DataFrame, provenance: dict) -> str:
        """Keep a corpus frame; returns its content hash (a second add of the same rows is a no-op)."""
        missing = [c for c in CORPUS_COLUMNS if c not in df.columns]
        if missing:
            raise ValueError(f"add_corpus: the frame lacks columns {missing} (has {list(df.columns)})")
        cid = content_hash(df)
        rows = pa.table({"corpus_id": pa.array([cid] * len(df), pa.string()),
                         "row": pa.array(range(len(df)), pa.int32()),
                         "id": _array(df["id"].astype(str), pa.string()), "text": _array(df["text"], pa.string()),
                         "target": _array(df["target"].astype(float), pa.float64()),
                         "label": _array(df["label"], pa.string()), "split": _array(df["split"], pa.string())})
        meta = [cid, provenance.get("name"), provenance.get("task"), len(df), _dumps(provenance), _now()]
        with self._session(write=True) as con:
            if _one(con, "SELECT 1 FROM corpora WHERE corpus_id = ?", [cid]):
                return cid
            con.execute("INSERT INTO corpora VALUES (?, ?, ?, ?, ?, ?)", meta)
            self._insert(con, "corpus_rows", rows)
        logger.info("stored corpus %s (%d rows)", cid, len(df))
        return cid

    def get_corpus(self, corpus_id: str) -> tuple[pd.DataFrame, dict]:
        """``(frame, provenance)`` of a stored corpus."""
        with self._session(write=False) as con:
            meta = _one(con, "SELECT provenance FROM corpora WHERE corpus_id = ?", [corpus_id])
            if meta is None:
                raise LookupError(f"no corpus '{corpus_id}' in {self.path}")
            df = con.execute("SELECT id, text, target, label, split FROM corpus_rows WHERE corpus_id = ? "
                             "ORDER BY row", [corpus_id]).df()
        return df, _loads(meta[0])

    # -- embedding cache --------------------------------------------------------------------
    def get_embeddings(self, fingerprint: str, text_hashes: list[str]) -> dict[str, np.ndarray]:
        """Cached float32 vectors of ``text_hashes`` under ``fingerprint`` (absent hashes are left out)."""
        wanted = pa.table({"text_hash": pa.array(list(dict.fromkeys(text_hashes)), pa.string())})
        with self._session(write=False) as con:
            con.register("wanted", wanted)
            got = con.sql("SELECT e.text_hash, e.vector FROM embeddings e JOIN wanted w USING (text_hash) "
                          "WHERE e.fingerprint = ?", params=[fingerprint]).to_arrow_table()
        if got.num_rows == 0:
            return {}
        vectors = got.column("vector").combine_chunks()
        block = np.asarray(vectors.flatten(), dtype=np.float32).reshape(got.num_rows, -1)
        return dict(zip(got.column("text_hash").to_pylist(), block))

    def put_embeddings(self, fingerprint: str, text_hashes: list[str], vectors: np.ndarray) -> None:
        """Add vectors to the cache (stored as float32); hashes already cached keep their vector."""
        vectors = np.asarray(vectors, dtype=np.float32)
        if vectors.ndim != 2 or len(vectors) != len(text_hashes):
            raise ValueError(f"put_embeddings: {len(text_hashes)} hashes need a ({len(text_hashes)}, dim) array, "
                             f"got shape {vectors.shape}")
        if not np.isfinite(vectors).all():
            raise ValueError("put_embeddings: vectors contain NaN or infinity")
        if not len(vectors):
            return
        first = {h: i for i, h in reversed(list(enumerate(text_hashes)))}
        keep = sorted(first.values())
        rows = pa.table({"fingerprint": pa.array([fingerprint] * len(keep), pa.string()),
                         "text_hash": pa.array([text_hashes[i] for i in keep], pa.string()),
                         "vector": _array(vectors[keep], pa.list_(pa.float32())),
                         "created_at": pa.array([_now()] * len(keep), pa.timestamp("us"))})
        with self._session(write=True) as con:
            dim = _one(con, "SELECT len(vector) FROM embeddings WHERE fingerprint = ? LIMIT 1",
                              [fingerprint])
            if dim is not None and dim[0] != vectors.shape[1]:
                raise ValueError(f"put_embeddings: fingerprint {fingerprint} holds {dim[0]}-dimensional vectors, "
                                 f"got {vectors.shape[1]}")
            self._insert(con, "embeddings", rows, on_conflict=True)

    # -- runs -------------------------------------------------------------------------------
    def create_run(self, config: dict, run_id: str | None = None, *, status: str = "created",
                   info: dict | None = None, steps: tuple[str, ...] = ()) -> str:
        """A new run (status "created" unless given, with ``info`` and ``steps`` marked done, in one transaction);
        ``run_id`` defaults to ``YYYYmmdd-HHMMSS-xxxxxx`` (UTC)."""
        run_id = run_id or f"{_now():%Y%m%d-%H%M%S}-{uuid.uuid4().hex[:6]}"
        if not RUN_ID.match(run_id):
            raise ValueError(f"run id {run_id!r} must be letters, digits, '.', '_' or '-'")
        if status not in STATUSES:
            raise ValueError(f"status '{status}' is not one of: {', '.join(STATUSES)}")
        now = _now()
        row = [run_id, status, _dumps(config), now, now if status == "running" else None, _dumps({}),
               _dumps(_versions()), _dumps(info or {})]
        with self._session(write=True) as con:
            if _one(con, "SELECT 1 FROM runs WHERE run_id = ?", [run_id]):
                raise StoreError(f"run '{run_id}' already exists in {self.path}")
            con.execute("INSERT INTO runs (run_id, status, config, created_at, started_at, timings, versions, info) "
                        "VALUES (?, ?, ?, ?, ?, ?, ?, ?)", row)
            for step in steps:
                con.execute("INSERT INTO steps VALUES (?, ?, ?)", [run_id, str(step), now])
        logger.info("created run %s", run_id)
        return run_id

    def update_run(self, run_id: str, *, status: str | None = None, timings: dict | None = None,
                   error: str | None = None, info: dict | None = None) -> None:
        """Set the status (and its timestamps), set the error, merge ``timings`` and ``info`` into the run's.

        "running" stamps ``started_at`` and clears ``error`` and ``finished_at`` (a new attempt) and is
        refused while the process recorded in the run's ``info["process"]`` still runs (unless it is the one
        ``info`` names); "completed", "failed" and "interrupted" stamp ``finished_at``.
        """
        if status is not None and status not in STATUSES:
            raise ValueError(f"status '{status}' is not one of: {', '.join(STATUSES)}")
        with self._session(write=True) as con:
            row = _one(con, "SELECT timings, info FROM runs WHERE run_id = ?", [run_id])
            if row is None:
                raise UnknownRunError(f"no run '{run_id}' in {self.path}")
            sets, values = [], []
            if status == "running":
                process = (_loads(row[1]) or {}).get("process")
                if process != (info or {}).get("process", process) and process_alive(process):
                    raise StoreError(f"run '{run_id}' is still running (pid {process['pid']} on "
                                     f"{process['host']}); stop it first")
            if status is not None:
                sets.append("status = ?")
                values.append(status)
                if status == "running":
                    sets += ["started_at = ?", "finished_at = NULL", "error = NULL"]
                    values.append(_now())
                elif status in ("completed", "failed", "interrupted"):
                    sets.append("finished_at = ?")
                    values.append(_now())
            if error is not None:
                sets.append("error = ?")
                values.append(str(error))
            for name, new, old in (("timings", timings, row[0]), ("info", info, row[1])):
                if new is not None:
                    sets.append(f"{name} = ?")
                    values.append(_dumps({**(_loads(old) or {}), **new}))
            if sets:
                con.execute(f"UPDATE runs SET {', '.join(sets)} WHERE run_id = ?", values + [run_id])

    def get_run(self, run_id: str) -> dict:
        """The run record: run_id, status, config, timestamps (ISO, UTC), timings, versions, error, info."""
        with self._session(write=False) as con:
            return self._run(con, run_id)

    def _run(self, con, run_id: str) -> dict:
        row = _one(con, f"SELECT run_id, status, config, created_at, started_at, finished_at, timings, versions, "
                        f"error, info, {_REPORTED} FROM runs r WHERE run_id = ?", [run_id])
        if row is None:
            raise UnknownRunError(f"no run '{run_id}' in {self.path}")
        info = _loads(row[9])
        return {"run_id": row[0], "status": shown_status(row[1], info, row[10]), "config": _loads(row[2]),
                "created_at": _iso(row[3]), "started_at": _iso(row[4]), "finished_at": _iso(row[5]),
                "timings": _loads(row[6]), "versions": _loads(row[7]), "error": row[8], "info": info}

    def completed_steps(self, run_id: str) -> set[str]:
        """Steps marked done for ``run_id`` ("corpus", "embed", "reduce", "fit:2", "train:2", ...)."""
        with self._session(write=False) as con:
            self._require_run(con, run_id)
            return {r[0] for r in con.execute("SELECT step FROM steps WHERE run_id = ?", [run_id]).fetchall()}

    def mark_step(self, run_id: str, step: str) -> None:
        """Record ``step`` as done for ``run_id`` (idempotent)."""
        with self._session(write=True) as con:
            self._require_run(con, run_id)
            con.execute("INSERT INTO steps VALUES (?, ?, ?) ON CONFLICT DO NOTHING", [run_id, str(step), _now()])

    def list_runs(self) -> pd.DataFrame:
        """One row per run, oldest first: run_id, status, created, finished, corpus, model, n_points, dims,
        depths, objectives (depth -> Lasso objective), error."""
        with self._session(write=False) as con:
            t = con.sql(f"""
                SELECT r.run_id, r.status, r.created_at AS created, r.finished_at AS finished, r.config, r.info,
                       {_REPORTED} AS reported, p.n_points, p.dims, f.depths, f.objectives, r.error
                FROM runs r
                LEFT JOIN (SELECT run_id, count(*) AS n_points, max(len(coords)) AS dims FROM points
                           GROUP BY run_id) p USING (run_id)
                LEFT JOIN (SELECT run_id, list(depth ORDER BY depth) AS depths,
                                  list(objective ORDER BY depth) AS objectives FROM fits GROUP BY run_id) f
                       USING (run_id)
                ORDER BY r.created_at, r.run_id""").to_arrow_table()
        col = {c: t.column(c).to_pylist() for c in t.column_names}
        config = [_loads(c) or {} for c in col["config"]]
        info = [_loads(i) or {} for i in col["info"]]
        depths = [d or [] for d in col["depths"]]
        return pd.DataFrame({
            "run_id": col["run_id"],
            "status": [shown_status(*x) for x in zip(col["status"], info, col["reported"])],
            "created": pd.to_datetime(col["created"]), "finished": pd.to_datetime(col["finished"]),
            "corpus": [(i.get("corpus") or {}).get("name") or c.get("corpus") for c, i in zip(config, info)],
            "model": [(i.get("model") or {}).get("name") or c.get("model") for c, i in zip(config, info)],
            "n_points": pd.array(col["n_points"], "Int64"), "dims": pd.array(col["dims"], "Int64"),
            "depths": depths, "objectives": [dict(zip(d, o or [])) for d, o in zip(depths, col["objectives"])],
            "error": col["error"]})

    # -- results of a run -------------------------------------------------------------------
    def put_points(self, run_id: str, df: pd.DataFrame) -> None:
        """The run's points (replacing earlier ones): idx, id, text, target, label, split, coords."""
        missing = [c for c in POINT_COLUMNS if c not in df.columns]
        if missing:
            raise ValueError(f"put_points: the frame lacks columns {missing} (has {list(df.columns)})")
        rows = pa.table({"run_id": pa.array([run_id] * len(df), pa.string()),
                         "idx": _array(df["idx"].astype(int), pa.int32()),
                         "id": _array(df["id"].astype(str), pa.string()), "text": _array(df["text"], pa.string()),
                         "target": _array(df["target"].astype(float), pa.float64()),
                         "label": _array(df["label"], pa.string()), "split": _array(df["split"], pa.string()),
                         "coords": _array(df["coords"], pa.list_(pa.float64()))})
        with self._session(write=True) as con:
            self._require_run(con, run_id)
            con.execute("DELETE FROM points WHERE run_id = ?", [run_id])
            self._insert(con, "points", rows)

    def get_points(self, run_id: str) -> pd.DataFrame:
        """The run's points ordered by idx; coords as lists of floats."""
        with self._session(write=False) as con:
            return self._points(con, run_id)

    @staticmethod
    def _points(con, run_id: str) -> pd.DataFrame:
        t = con.sql("SELECT idx, id, text, target, label, split, coords FROM points WHERE run_id = ? "
                    "ORDER BY idx", params=[run_id]).to_arrow_table()
        df = t.drop_columns(["coords"]).to_pandas()
        df["coords"] = t.column("coords").to_pylist()
        return df

    def put_reduction(self, run_id: str, params: dict) -> None:
        """The run's reduction parameters (``Reduction.to_dict()``), replacing earlier ones."""
        text = _dumps(params)
        with self._session(write=True) as con:
            self._require_run(con, run_id)
            con.execute("INSERT OR REPLACE INTO reductions VALUES (?, ?)", [run_id, text])

    def get_reduction(self, run_id: str) -> dict | None:
        with self._session(write=False) as con:
            row = _one(con, "SELECT params FROM reductions WHERE run_id = ?", [run_id])
        return None if row is None else _loads(row[0])

    def put_fit(self, run_id: str, depth: int, result: dict, features: pd.DataFrame,
                path: pd.DataFrame | None = None) -> None:
        """The Lasso fit of ``depth`` with its features and beta path, replacing an earlier one."""
        depth = int(depth)
        keys = {"run_id": (run_id, pa.string()), "fit_depth": (depth, pa.int32())}
        feats = _frame_table(features, FEATURE_TYPES, keys, "rank")
        steps = _frame_table(path, PATH_TYPES, keys, "step") if path is not None else None
        scalars = [None if result.get(k) is None else float(result[k]) for k in FIT_KEYS[:4]]
        n_candidates = None if result.get("n_candidates") is None else int(result["n_candidates"])
        extra = {k: v for k, v in result.items() if k not in FIT_KEYS}
        row = [run_id, depth, *scalars, n_candidates, *(_dumps(result.get(k)) for k in FIT_KEYS[5:]),
               _dumps(extra), _dumps([str(c) for c in features.columns]),
               None if path is None else _dumps([str(c) for c in path.columns]), _now()]
        with self._session(write=True) as con:
            self._require_run(con, run_id)
            for table in ("fits", "features", "paths"):
                col = "depth" if table == "fits" else "fit_depth"
                con.execute(f"DELETE FROM {table} WHERE run_id = ? AND {col} = ?", [run_id, depth])
            con.execute(f"INSERT INTO fits VALUES ({', '.join('?' * len(row))})", row)
            self._insert(con, "features", feats)
            if steps is not None:
                self._insert(con, "paths", steps)
        logger.info("stored fit of run %s depth %d (%d features)", run_id, depth, len(features))

    @staticmethod
    def _insert(con, table: str, rows: pa.Table, on_conflict: bool = False) -> None:
        """Insert Arrow ``rows`` into ``table`` by column name (skipping existing keys with ``on_conflict``)."""
        con.register("new_rows", rows)
        con.execute(f"INSERT INTO {table} BY NAME SELECT * FROM new_rows"
                    + (" ON CONFLICT DO NOTHING" if on_conflict else ""))
        con.unregister("new_rows")

    def get_fits(self, run_id: str) -> list[dict]:
        """The run's fits by depth, as in ``load_run(run_id)["fits"]`` (without reading points)."""
        with self._session(write=False) as con:
            self._require_run(con, run_id)
            return self._fits(con, run_id)

    def _fits(self, con, run_id: str) -> list[dict]:
        fits = con.execute("SELECT depth, beta, beta_max, objective, intercept, n_candidates, certificate, metrics, "
                           "timings, extra, feature_columns, path_columns FROM fits WHERE run_id = ? "
                           "ORDER BY depth", [run_id]).fetchall()
        feats = con.sql("SELECT * EXCLUDE (run_id) FROM features WHERE run_id = ? ORDER BY fit_depth, rank",
                        params=[run_id]).to_arrow_table()
        paths = con.sql("SELECT * EXCLUDE (run_id) FROM paths WHERE run_id = ? ORDER BY fit_depth, step",
                        params=[run_id]).to_arrow_table()
        out = []
        for depth, *values, extra, feature_columns, path_columns in fits:
            fit = {"depth": depth, **dict(zip(FIT_KEYS[:5], values[:5])),
                   **{k: _loads(v) for k, v in zip(FIT_KEYS[5:], values[5:])}, **(_loads(extra) or {})}
            mine = feats.filter(pc.equal(feats.column("fit_depth"), depth))
            fit["features"] = _frame_rows(mine, _loads(feature_columns), FEATURE_TUPLES)
            mine = paths.filter(pc.equal(paths.column("fit_depth"), depth))
            fit["path"] = None if path_columns is None else _frame_rows(mine, _loads(path_columns))
            out.append(fit)
        return out

    def put_network(self, run_id: str, depth: int, result: dict) -> None:
        """Non-convex training results of ``depth`` (a JSON-able dict), replacing earlier ones."""
        text = _dumps(result)
        with self._session(write=True) as con:
            self._require_run(con, run_id)
            con.execute("INSERT OR REPLACE INTO networks VALUES (?, ?, ?, ?, ?)",
                        [run_id, int(depth), result.get("status"), text, _now()])

    def load_run(self, run_id: str) -> dict:
        """The run bundle: run record, points, reduction, fits (by depth) and networks (by depth)."""
        with self._session(write=False) as con:
            run = self._run(con, run_id)
            reduction = _one(con, "SELECT params FROM reductions WHERE run_id = ?", [run_id])
            networks = con.execute("SELECT depth, result FROM networks WHERE run_id = ? ORDER BY depth",
                                   [run_id]).fetchall()
            return {"run": run, "points": self._points(con, run_id),
                    "reduction": None if reduction is None else _loads(reduction[0]),
                    "fits": self._fits(con, run_id),
                    "networks": [{"depth": d, **_loads(r)} for d, r in networks]}

    # -- tables -----------------------------------------------------------------------------
    def tables(self) -> list[str]:
        """Names of the store's tables."""
        return list(TABLES)

    def export(self, table: str, path: str | os.PathLike) -> Path:
        """Write ``table`` to a Parquet file at ``path``
        (a folder or a path without suffix gets ``<table>.parquet``)."""
        if table not in TABLES:
            raise ValueError(f"no table '{table}' in the store; tables are: {', '.join(TABLES)}")
        path = Path(path)
        if path.is_dir() or not path.suffix:
            path = path / f"{table}.parquet"
        path.parent.mkdir(parents=True, exist_ok=True)
        with self._session(write=False) as con:
            data = con.sql(f"SELECT * FROM {table}").to_arrow_table()
        pq.write_table(data, path)
        logger.info("exported %s (%d rows) to %s", table, data.num_rows, path)
        return path

    def export_all(self, folder: str | os.PathLike) -> dict[str, Path | str]:
        """Every table to ``folder/<table>.parquet``, each as far as it can be read (also from a damaged file,
        which is opened read-only and left untouched); returns table -> path, or the error of a table that
        could not be read."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        out: dict[str, Path | str] = {}
        with _THREADS, self._lock(exclusive=False), self._as_is() as (con, names):
            for name in names:
                try:
                    data = con.sql(f'SELECT * FROM "{name}"').to_arrow_table()
                except duckdb.Error as e:
                    out[name] = str(e).strip().splitlines()[0]
                    continue
                pq.write_table(data, folder / f"{name}.parquet")
                out[name] = folder / f"{name}.parquet"
        return out

    def backup(self, keep: int = 2) -> Path:
        """Copy the (checked) store file to ``backups/lookingglass-<UTC time>.duckdb`` under the write lock,
        keeping the newest ``keep`` copies; returns the copy."""
        self.backup_dir.mkdir(exist_ok=True)
        target = self.backup_dir / f"lookingglass-{_now():%Y%m%d-%H%M%S-%f}.duckdb"
        with _THREADS, self._lock(exclusive=True):
            self._check()
            if Path(f"{self.path}.wal").exists():  # fold a crashed writer's log into the file first
                con = duckdb.connect(str(self.path))
                con.execute("CHECKPOINT")
                con.close()
                self._stamp()
            shutil.copyfile(self.path, f"{target}.part")
            os.replace(f"{target}.part", target)
        for old in sorted(self.backup_dir.glob("lookingglass-*.duckdb"))[:-keep]:
            old.unlink()
        logger.info("backed up %s to %s", self.path, target)
        return target
