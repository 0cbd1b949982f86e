"""The Prefect flow ``pipeline``: load -> embed -> reduce -> fit each depth over a beta path -> train -> report.

The flow parses its config dict once (``RunConfig``) and hands that object to every task. Each task is
one call to a Prefect-free step function of the packages (``data.runs``, ``embeddings.runs``,
``analysis.runs``, ``reports.publish``) on the store it opens; tasks pass run ids, paths and
fingerprints, never arrays: vectors, points, fits and network results live in the store
(``data.store.Store``) under one ``run_id``. The load step creates the
run (status "running", with this process's pid) before anything is embedded, and only then its
folder ``runs/<run_id>/`` (corpus snapshot, ``config.toml``). A step already completed for a run
(``Store.completed_steps``) is skipped, so ``pipeline(config, run_id=...)`` resumes an
interrupted run from any step. A failure marks the run failed with its error and still writes the
report of what exists; an interruption (KeyboardInterrupt, SIGTERM in the CLI) halts every other
store write, marks the run "interrupted" and writes its report. The "report" step is marked once
the report of a completed run exists. The store is backed up (``Store.backup``) before each run.
"""
from __future__ import annotations

import importlib
import logging
import os
import secrets
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from . import _prefect_env

_prefect_env.configure(os.environ.get(_prefect_env.WORKSPACE_VAR, "workspace"))

from prefect import flow, task  # noqa: E402
from prefect.artifacts import create_markdown_artifact  # noqa: E402
from prefect.cache_policies import NO_CACHE  # noqa: E402

from .config import RunConfig, reports_dir, run_dir  # noqa: E402
from .inputs import load_run_corpus  # noqa: E402

logger = logging.getLogger(__name__)

REPORT_ARTIFACT = "lookingglass-report"
# what the steps import first (about 13 s of CPU here): imported while Prefect's server starts
PRELOAD = ("sentence_transformers", "analysis.training", "analysis.estimator", "reports")


def _store(cfg: RunConfig, read_only: bool = False):
    """The run's store (every call opens and closes the file under its lock)."""
    from data.store import Store
    return Store(cfg.workspace, read_only=read_only, lock_timeout=cfg.lock_timeout)


def _transient(task, task_run, state) -> bool:
    """Retry only what may pass on a second try (not bad input: ValueError, LookupError, OSError)."""
    try:
        state.result()
    except (ValueError, LookupError, OSError, TypeError):
        return False
    except Exception:  # noqa: BLE001 - anything else (e.g. CUDA out of memory) may be transient
        return True
    return False


@task(name="load", cache_policy=NO_CACHE)
def load_step(cfg: RunConfig, run_id: str, prefect: dict) -> str:
    """Load, sample and split the corpus, keep it in the store and create the run (``data.runs.start_run``)."""
    from data.runs import start_run
    return start_run(_store(cfg), load_run_corpus(cfg), cfg.to_dict(), run_id, prefect)


def _corpus_file(cfg: RunConfig, run_id: str) -> str:
    """``runs/<run_id>/corpus.parquet`` (written from the store when missing) and ``config.toml``."""
    from data.runs import corpus_snapshot
    folder = run_dir(cfg.workspace, run_id)
    path = corpus_snapshot(_store(cfg, read_only=True), run_id, folder)
    cfg.save(folder / "config.toml")
    return str(path)


@task(name="embed", retries=2, retry_delay_seconds=5, retry_condition_fn=_transient, cache_policy=NO_CACHE)
def embed_step(cfg: RunConfig, run_id: str, corpus_path: str) -> str:
    """Embed the corpus texts through the store's cache (``embeddings.runs.embed_run``); returns the fingerprint."""
    from embeddings.encoders import load_encoder
    from embeddings.runs import embed_run
    return embed_run(_store(cfg), run_id, corpus_path, load_encoder(cfg.model, **cfg.encoder_options()), cfg.batch_size)


@task(name="reduce", cache_policy=NO_CACHE)
def reduce_step(cfg: RunConfig, run_id: str, corpus_path: str, fingerprint: str) -> None:
    """Fit the reduction on the training split and store every point (``embeddings.runs.reduce_run``)."""
    from embeddings.reduce import Reduction
    from embeddings.runs import reduce_run
    reduce_run(_store(cfg), run_id, corpus_path, fingerprint, Reduction(**cfg.reduction_options()))


@task(name="fit", cache_policy=NO_CACHE)
def fit_step(cfg: RunConfig, run_id: str, depth: int) -> float:
    """Fit the Lasso of ``depth`` over the beta path (``analysis.runs.fit_run``), on the run's Dask cluster if any;
    returns the objective."""
    from analysis.runs import fit_run

    from .cluster import pricing_cluster
    with pricing_cluster(cfg.dask_address, use_dask=cfg.dask):
        return fit_run(_store(cfg), run_id, depth, **cfg.lasso_options())


@task(name="symmetry", cache_policy=NO_CACHE)
def symmetry_step(cfg: RunConfig, run_id: str) -> None:
    """Score every depth's fit about its mirror planes and refit it on subsamples (``analysis.runs.symmetry_run``)."""
    from analysis.runs import symmetry_run
    symmetry_run(_store(cfg), run_id, random_state=cfg.seed, refit=cfg.lasso_options(),
                 n_resamples=cfg.stability_resamples)


@task(name="train", cache_policy=NO_CACHE)
def train_step(cfg: RunConfig, run_id: str, depth: int) -> None:
    """Train the networks of ``depth`` against the fit (``analysis.runs.train_run``)."""
    from analysis.runs import train_run
    train_run(_store(cfg), run_id, depth, **cfg.training_options())


@task(name="report", cache_policy=NO_CACHE)
def report_step(cfg: RunConfig, run_id: str) -> str:
    """Write the run's HTML report and the workspace index (``reports.publish``); returns the report path."""
    from reports import publish
    return str(Path(publish(_store(cfg, read_only=True), reports_dir(cfg.workspace), [run_id])[run_id]).resolve())


def _artifact(run_id: str, report: str, status: str, error: str | None) -> None:
    lines = [f"# lookingglass run `{run_id}`: {status}", "", f"[Report]({Path(report).as_uri()})", "",
             f"`{report}`"]
    if error:
        lines += ["", f"Error: `{error}`"]
    create_markdown_artifact("\n".join(lines), key=REPORT_ARTIFACT, description=f"report of run {run_id}")


def _completed_steps(cfg: RunConfig, run_id: str) -> set[str] | None:
    """Steps done for an existing run, None when the run does not exist yet."""
    from data.store import UnknownRunError
    if not (Path(cfg.workspace) / "lookingglass.duckdb").exists():
        return None
    try:
        return _store(cfg, read_only=True).completed_steps(run_id)
    except UnknownRunError:
        return None


def new_run_id() -> str:
    """``YYYYmmdd-HHMMSS-xxxxxx`` (UTC, random suffix)."""
    return f"{datetime.now(UTC):%Y%m%d-%H%M%S}-{secrets.token_hex(3)}"


def _flow_run() -> dict:
    """The Prefect flow run executing this run: id, name, deployment and start time (UTC, ISO)."""
    from prefect.runtime import deployment, flow_run
    return {"flow_run_id": flow_run.id, "flow_run_name": flow_run.name, "deployment_id": deployment.id,
            "started_at": f"{datetime.now(UTC):%Y-%m-%dT%H:%M:%S}Z"}


@flow(name="lookingglass-pipeline")
def pipeline(config: dict, run_id: str | None = None) -> str:
    """Run (or resume) one lookingglass run from a ``RunConfig`` dict; returns the report path.

    Steps: load (creates the run) -> embed -> reduce -> fit each depth -> symmetry -> train -> report.
    """
    from data.store import halt_writes, run_process
    cfg = RunConfig.from_dict(config)          # parsed once per flow run; the tasks get this object
    run_id = run_id or new_run_id()
    prefect = _flow_run()
    done = _completed_steps(cfg, run_id)
    if done is None:
        logger.info("run %s: new, workspace %s", run_id, Path(cfg.workspace).resolve())
        if (Path(cfg.workspace) / "lookingglass.duckdb").exists():
            _store(cfg).backup()
        load_step(cfg, run_id, prefect)
        done = {"corpus"}
    else:
        logger.info("run %s: resuming, steps done: %s", run_id, ", ".join(sorted(done)) or "none")
        store = _store(cfg)
        store.backup()
        store.update_run(run_id, status="running", info={"prefect": prefect, "process": run_process()})
    corpus_path = _corpus_file(cfg, run_id)
    try:
        if "embed" in done:
            fingerprint = _store(cfg, read_only=True).get_run(run_id)["info"]["model"]["fingerprint"]
        else:
            fingerprint = embed_step(cfg, run_id, corpus_path)
        if "reduce" not in done:
            reduce_step(cfg, run_id, corpus_path, fingerprint)
        fits = {d: fit_step.submit(cfg, run_id, d) for d in cfg.depths if f"fit:{d}" not in done}
        trains = [train_step.submit(cfg, run_id, d, wait_for=[fits[d]] if d in fits else [])
                  for d in cfg.depths if cfg.networks and f"train:{d}" not in done]
        for future in fits.values():
            future.result()
        if "symmetry" not in done:
            symmetry_step(cfg, run_id)
        for future in trains:
            future.result()
    except BaseException as err:
        interrupted = not isinstance(err, Exception)
        if interrupted:
            halt_writes()          # the other tasks can no longer change what the report shows
        message = _one_line(err) if not interrupted else f"interrupted ({_one_line(err)})"
        logger.error("run %s %s: %s", run_id, "stopped" if interrupted else "failed", message)
        _store(cfg).update_run(run_id, status="interrupted" if interrupted else "failed", error=message)
        try:
            report = report_step(cfg, run_id)
            _artifact(run_id, report, "interrupted" if interrupted else "failed", message)
        except Exception as report_err:  # noqa: BLE001 - the run's own error is the one raised
            report = None
            logger.error("no report for run %s: %s", run_id, _one_line(report_err))
        if interrupted and _on_interrupt is not None:
            _on_interrupt(run_id, report, err)
        raise
    _store(cfg).update_run(run_id, status="completed")
    report = report_step(cfg, run_id)
    _store(cfg).mark_step(run_id, "report")        # from here on the run shows "completed"
    _artifact(run_id, report, "completed", None)
    logger.info("run %s completed; report %s", run_id, report)
    return report


# Called (by the CLI) once an interrupted run has recorded its end and report, before Prefect waits for
# the tasks still running: the CLI prints the outcome and ends the process there.
_on_interrupt = None


def _one_line(err: BaseException) -> str:
    """``Type: first line of the message``."""
    lines = str(err).strip().splitlines()
    return f"{type(err).__name__}: {lines[0]}" if lines else type(err).__name__


def task_runner(cfg: RunConfig):
    """A ``DaskTaskRunner`` for ``--dask-address`` or ``--dask`` (a local cluster), else None (threads)."""
    if not (cfg.dask or cfg.dask_address):
        return None
    from prefect_dask import DaskTaskRunner
    if cfg.dask_address:
        return DaskTaskRunner(address=cfg.dask_address)
    return DaskTaskRunner(cluster_kwargs={"n_workers": min(2, os.cpu_count() or 1), "threads_per_worker": 1,
                                          "processes": True, "dashboard_address": None})


@dataclass
class Outcome:
    """What a run left: its id, report path (None when there is none), error and summary lines (none without a run)."""

    run_id: str
    report: str | None
    error: BaseException | None
    summary: list[str]


def run_pipeline(cfg: RunConfig, run_id: str | None = None) -> Outcome:
    """Run the pipeline flow on one configuration and summarise the run from the store.

    The steps (load, embed, reduce, fit each depth over its beta path, train, report) run as Prefect
    tasks, on Dask when ``cfg.dask`` is set; each fit solves ``min 1/2 ||A z + xi - y||^2 + beta ||z||_1``
    (``analysis.ReflectionLasso``) on the training points.

    Parameters
    ----------
    cfg : RunConfig
        The whole configuration (corpus, encoder, reduction, Lasso, networks, workspace).
    run_id : str or None, default=None
        Id of the run in the store; None makes a new one (``new_run_id``).

    Returns
    -------
    Outcome
        ``run_id``, ``report`` (path of the HTML report, None when none was written), ``error`` (the
        run's exception, None on success: it is returned, never raised; an interruption propagates)
        and ``summary`` (lines saying what the run holds).

    See Also
    --------
    flows.cli.run : the same from the command line (``lookingglass run``).
    analysis.ReflectionLasso : the estimator each fit step runs.

    Examples
    --------
    >>> import tempfile
    >>> from flows import RunConfig, configure
    >>> workspace = tempfile.mkdtemp()
    >>> _ = configure(workspace)                  # before Prefect is imported
    >>> from flows.pipeline import run_pipeline
    >>> config = RunConfig(corpus="vader", max_points=20, depths=(2,), n_betas=2, networks=False,
    ...                    workspace=workspace)
    >>> outcome = run_pipeline(config)
    >>> outcome.error is None, outcome.report.endswith(".html")
    (True, True)
    >>> outcome.summary[0] == f"run {outcome.run_id}: completed"
    True
    """
    from data.store import resume_writes
    from reports import report_path
    run_id = run_id or new_run_id()
    import prefect.server.api.server  # noqa: F401 - before the preload: the two threads never import at once
    preload = _preload()
    _prefect_env.start_server(cfg.workspace)
    preload.join()
    runner = task_runner(cfg)
    flow_ = pipeline.with_options(task_runner=runner) if runner is not None else pipeline
    try:
        flow_(cfg.to_dict(), run_id=run_id)
        error = None
    except Exception as err:  # noqa: BLE001 - reported to the caller
        error = err
    finally:
        resume_writes()
    report = report_path(reports_dir(cfg.workspace), run_id).resolve()
    return Outcome(run_id, str(report) if report.exists() else None, error, summarize(cfg, run_id))


def _preload() -> threading.Thread:
    """Import ``PRELOAD`` in a background thread, started while the Prefect server starts (a subprocess the main
    thread only polls): the steps then find their libraries loaded. A module that fails to import is left to the
    step that needs it, which reports the error."""
    def work():
        for name in PRELOAD:
            try:
                importlib.import_module(name)
            except Exception as err:  # noqa: BLE001 - the step importing it says what is wrong
                logger.debug("preload of %s failed: %s", name, err)
    thread = threading.Thread(target=work, name="lookingglass-preload", daemon=True)
    thread.start()
    return thread


def summarize(cfg: RunConfig, run_id: str) -> list[str]:
    """Lines saying what a run holds: corpus, embeddings (from the cache or computed), fits, networks."""
    from analysis.records import FitResult, TrainingResult
    from data.store import StoreError
    try:
        bundle = _store(cfg, read_only=True).load_run(run_id)
    except StoreError as err:
        logger.debug("no summary of run %s: %s", run_id, err)
        return []
    info = bundle["run"].get("info") or {}
    corpus, emb = info.get("corpus") or {}, info.get("embeddings") or {}
    lines = [f"run {run_id}: {bundle['run']['status']}"]
    if corpus:
        lines.append(f"corpus {corpus.get('name')}: {corpus.get('n_points')} points "
                     f"({corpus.get('n_train')} train, {corpus.get('n_test')} test)")
    if emb:
        lines.append(f"embeddings ({emb.get('name')}): {emb.get('cached')} distinct texts from the cache, "
                     f"{emb.get('embedded')} embedded now")
    for stored in bundle["fits"]:
        fit = FitResult.from_dict(stored)
        lines.append(f"depth {stored['depth']}: objective {fit.objective:.6g} at beta {fit.beta:.4g}, "
                     f"{len(stored['features'])} features; "
                     f"dictionary ratio {fit.certificate.get('dictionary_ratio', float('nan')):.6g}")
    for net in map(TrainingResult.from_dict, bundle["networks"]):
        best = net.best_run()
        if best is not None and best.relative_gap is not None:
            lines.append(f"depth {net.depth} networks: best relative gap to the Lasso {best.relative_gap:.3g}")
    return lines
