"""The ``lookingglass`` command line: ``run``, ``study``, ``fit``, ``report``, ``runs``, ``export``, ``corpora``,
``serve``.

Bad input ends with one line ``Error: ...`` on stderr and exit code 2, within seconds: options,
corpus and model are checked (``flows.inputs``) before Prefect is imported or a server starts. A
run that fails for another reason prints its error and the report of what exists, exit code 1.
SIGINT or SIGTERM stops a run at once: it is recorded as interrupted with its report, then the
process exits (130 or 143). Tracebacks are shown only with ``lookingglass --debug``.
"""
import functools
import inspect
import json
import logging
import os
import signal
import sys
import typing
from dataclasses import fields
from datetime import UTC
from pathlib import Path

import numpy as np
import pandas as pd
import typer

from . import _watchdog
from ._prefect_env import PACKAGES, configure
from .config import RunConfig, field_types, reports_dir

logger = logging.getLogger(__name__)

app = typer.Typer(help="What a deep absolute-value network looks for in language-model embeddings.",
                  no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)

HELP = {
    "corpus": "built-in corpus (adjectives, vader, afinn), a CSV/TSV/JSONL/Parquet file, a folder of class "
              "sub-folders, a save_to_disk folder or hf:NAME",
    "text_column": "text column of a file corpus",
    "target": "target column (or built-in target, e.g. polarity)",
    "task": "auto, regression or classification",
    "max_points": "number of texts sampled (with --seed)",
    "seed": "seed of sampling, split, reduction and sampled candidates",
    "test_size": "fraction of points held out",
    "model": "sentence-transformers or transformers model: a name or a local folder",
    "encoder_kind": "auto, sentence-transformers or transformers",
    "pooling": "transformers pooling: mean, cls or last",
    "layer": "transformers hidden layer (negative counts from the end)",
    "batch_size": "embedding batch size",
    "device": "cpu, cuda or auto (embeddings and networks)",
    "reduction": "pca, pls (supervised, fitted on the training split) or random (projection)",
    "n_components": "reduced dimension d",
    "standardize": "standardise the reduced coordinates",
    "depths": "network depths to fit, comma separated (e.g. 2,3)",
    "n_betas": "number of betas on the regularisation path",
    "beta_min_ratio": "smallest beta of the path as a fraction of beta_max",
    "beta": "final beta (default: the end of the path)",
    "bias": "first-layer biases",
    "candidates": "dictionary, continuum or sampled",
    "max_candidates": "largest dictionary enumerated",
    "stability_resamples": "subsample refits measuring how stable each fit's planes are (0: none)",
    "networks": "also train the networks in PyTorch",
    "widths": "network widths, comma separated",
    "epochs": "maximum training epochs",
    "network_seeds": "training seeds, comma separated",
    "dask": "run the tasks on a local Dask cluster",
    "dask_address": "run the tasks, and the fits' pricing, on the Dask scheduler at this address (tcp://host:port)",
    "n_jobs": "processes pricing each fit on this machine (-1: every core; default: one process)",
    "workspace": "folder of the store, reports and Prefect's database",
    "lock_timeout": "seconds to wait for the store while another run writes",
}


class InputError(ValueError):
    """Bad input from the command line: reported as one line with exit code 2."""


_debug = False


@app.callback()
def main(debug: bool = typer.Option(False, "--debug", help="show tracebacks (Python's and Prefect's)")):
    """What a deep absolute-value network looks for in language-model embeddings."""
    global _debug
    _debug = debug


class _NoTraceback(logging.Filter):
    """Drop the traceback of a log record (the message stays): tracebacks are for ``--debug``."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.exc_info, record.exc_text, record.stack_info = None, None, None
        if isinstance(record.msg, str) and "Traceback (most recent call last)" in record.msg:
            record.msg, record.args = record.msg.split("Traceback (most recent call last)")[0].rstrip(), ()
        return True


def _fail(message: str, code: int = 2) -> typing.NoReturn:
    typer.echo(f"Error: {message}", err=True)
    raise typer.Exit(code)


def _input_errors() -> tuple[type[BaseException], ...]:
    """Exception types that mean bad input (the store's lock and corruption errors included)."""
    from data import store
    return (ValueError, LookupError, OSError, store.StoreLockedError, store.StoreCorruptError)


def _one_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return text[0] if text else type(err).__name__


def _guard(func):
    """Turn bad-input exceptions raised by a command into ``Error: ...`` and exit code 2."""
    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except typer.Exit:
            raise
        except _input_errors() as err:
            if _debug:
                import traceback
                traceback.print_exc()
            _fail(_one_line(err))
    return wrapper


def _config_options(func):
    """Give ``func`` (which takes ``**options``) one ``--option`` per RunConfig field, all defaulting to None."""
    kinds = field_types()
    params = [p for p in inspect.signature(func).parameters.values() if p.kind is not p.VAR_KEYWORD]
    for f in fields(RunConfig):
        flag = "--" + f.name.replace("_", "-")
        kind = str if typing.get_origin(kinds[f.name]) is tuple else kinds[f.name]   # lists: comma separated
        decls = [f"{flag}/--no-{flag[2:]}"] if kind is bool else [flag]
        default = ",".join(map(str, f.default)) if isinstance(f.default, tuple) else f.default
        shown = "" if default is None else f" \\[default: {default}]"
        params.append(inspect.Parameter(
            f.name, inspect.Parameter.KEYWORD_ONLY, annotation=kind | None,
            default=typer.Option(None, *decls, help=HELP[f.name] + shown, show_default=False)))

    @functools.wraps(func)
    def wrapper(**kwargs):
        return func(**kwargs)
    wrapper.__signature__ = inspect.Signature(params)
    wrapper.__annotations__ = {p.name: p.annotation for p in params}
    return wrapper


def _build_config(config_file: Path | None, options: dict) -> RunConfig:
    """``config_file`` (or the defaults) with the options given on the command line applied."""
    kinds = field_types()
    given = {}
    for name, value in options.items():
        if value is None or name not in kinds:
            continue
        if isinstance(value, str) and typing.get_origin(kinds[name]) is tuple:
            value = [v.strip() for v in value.split(",") if v.strip()]
            value = [int(v) if v.lstrip("-").isdigit() else _bad_list(name, v) for v in value]
        given[name] = value
    base = RunConfig.load(config_file) if config_file is not None else RunConfig()
    return base.replace(**given)


def _bad_list(name: str, value: str) -> typing.NoReturn:
    raise InputError(f"--{name.replace('_', '-')}: {value!r} is not an integer (give e.g. 2,3)")


def _prefect_logging(workspace: str) -> None:
    """Configure Prefect for ``workspace`` and import it: its console handler then shows our packages' INFO logs."""
    configure(workspace)
    import prefect.main  # noqa: F401 - sets up logging (PREFECT_LOGGING_EXTRA_LOGGERS)
    for name in PACKAGES:
        logging.getLogger(name).setLevel(logging.INFO)
    if not _debug:
        for name in ("", "prefect", *PACKAGES):
            for handler in logging.getLogger(name).handlers:
                if not any(isinstance(f, _NoTraceback) for f in handler.filters):
                    handler.addFilter(_NoTraceback())


def _stop_on_sigterm() -> None:
    """SIGTERM raises KeyboardInterrupt("SIGTERM") in the main thread, as Ctrl-C does."""
    def handler(signum, frame):
        raise KeyboardInterrupt(signal.Signals(signum).name)
    signal.signal(signal.SIGTERM, handler)


def _exit_interrupted(run_id: str, report: str | None, err: BaseException) -> typing.NoReturn:
    """The end of an interrupted run: its summary and one line, then exit at once (128 + the signal)."""
    from .pipeline import summarize
    code = _signal_code(err)
    try:
        for line in summarize(_current_config, run_id):
            typer.echo(line)
        typer.echo(f"Error: run {run_id} interrupted ({str(err) or 'SIGINT'})"
                   + (f"; report of what exists: {report}" if report else ""), err=True)
        sys.stdout.flush()
        sys.stderr.flush()
    finally:
        os._exit(code)   # the tasks still running in threads can no longer write (Store halt_writes)


_current_config: RunConfig | None = None


def _signal_code(err: BaseException) -> int:
    """128 + the signal behind an interruption (Prefect's TerminationSignal carries it; else SIGTERM or SIGINT)."""
    signum = getattr(err, "signal", None)
    return 128 + int(signum if isinstance(signum, int) else
                     signal.SIGTERM if "SIGTERM" in str(err) else signal.SIGINT)


@app.command()
@_guard
@_config_options
def run(config: Path | None = typer.Option(None, "--config", help="TOML file of a run (written beside each "
                                              "report as runs/<run_id>/config.toml); options given here override it"),
        resume: str | None = typer.Option(None, "--resume", help="resume this run id with its stored config"),
        **options):
    ("Run the pipeline (load, embed, reduce, fit each depth over a beta path, train, report); "
     "prints the report path.")   # one line: the command list shows the docstring as written
    if resume is not None:
        extra = sorted(k for k, v in options.items() if v is not None and k != "workspace")
        if extra or config is not None:
            raise InputError("--resume uses the run's stored config; give only --workspace "
                             f"(got {', '.join(extra) or '--config'})")
        cfg = _resumable(resume, options.get("workspace") or RunConfig.workspace)
    else:
        cfg = _build_config(config, options)
        from .inputs import check_inputs
        check_inputs(cfg)
    global _current_config
    _current_config = cfg
    _prefect_logging(cfg.workspace)
    from . import pipeline
    from .pipeline import run_pipeline
    _stop_on_sigterm()
    _watchdog.watch()          # whatever the run starts (server, Dask cluster) ends with it, even on SIGKILL
    pipeline._on_interrupt = _exit_interrupted
    try:
        outcome = run_pipeline(cfg, run_id=resume)
    except KeyboardInterrupt as err:             # while Prefect or the run started
        _fail(f"interrupted ({str(err) or 'SIGINT'}) while the run started", code=_signal_code(err))
    finally:
        pipeline._on_interrupt = None
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
    for line in outcome.summary:
        typer.echo(line)
    if outcome.error is None:
        typer.echo(outcome.report)
    elif not outcome.summary and isinstance(outcome.error, _input_errors()):
        raise outcome.error                              # bad input: no run was created
    else:
        if _debug:
            import traceback
            traceback.print_exception(outcome.error)
        _fail(f"run {outcome.run_id} failed: {type(outcome.error).__name__}: {_one_line(outcome.error)}"
              + (f"; report of what exists: {outcome.report}" if outcome.report else ""), code=1)


def _resumable(run_id: str, workspace: str) -> RunConfig:
    """The stored config of a run that may be resumed: not running elsewhere, not completed."""
    from data.store import Store
    _workspace_exists(Path(workspace))
    with Store(workspace, read_only=True) as store:
        record = store.get_run(run_id)
    process = (record["info"] or {}).get("process") or {}
    if record["status"] == "running":
        raise InputError(f"run {run_id} is still running (pid {process.get('pid')} on {process.get('host')}); "
                         f"resume it once that process has ended")
    if record["status"] == "completed":
        raise InputError(f"run {run_id} is completed; nothing to resume (see `lookingglass report {run_id}`)")
    return RunConfig.from_dict({**record["config"], "workspace": workspace}, source=f"run {run_id}")


def _csv(value: str, name: str, kind=str) -> tuple:
    items = tuple(v.strip() for v in value.split(",") if v.strip())
    if kind is int:
        items = tuple(int(v) if v.lstrip("-").isdigit() else _bad_list(name, v) for v in items)
    return items


@app.command()
@_guard
def study(corpora: str = typer.Option("adjectives", "--corpora", help="corpora, comma separated"),
          models: str = typer.Option("all-MiniLM-L6-v2", "--models",
                                     help="models, comma separated; name@layer for a transformers hidden layer"),
          reductions: str = typer.Option("pca,pls,pls1", "--reductions",
                                         help="pca, pls, pls1 (exact 1-D track), random"),
          depths: str = typer.Option("2,3", "--depths", help="depths in d >= 2, comma separated"),
          seeds: str = typer.Option("0,1", "--seeds", help="data seeds (sample, split, reduction)"),
          max_points: int = typer.Option(80, "--max-points", help=HELP["max_points"]),
          epochs: int = typer.Option(1500, "--epochs", help=HELP["epochs"]),
          dask: bool = typer.Option(False, "--dask/--no-dask", help=HELP["dask"]),
          workspace: Path = typer.Option(Path(RunConfig.workspace), "--workspace", help=HELP["workspace"])):
    ("Run the study grid (corpora x models x reductions x seeds, every depth); "
     "prints the verdicts and the report path.")   # one line, as above
    _prefect_logging(str(workspace))
    from .study import StudyConfig, run_study
    cfg = StudyConfig(corpora=_csv(corpora, "corpora"), models=_csv(models, "models"),
                      reductions=_csv(reductions, "reductions"), depths=_csv(depths, "depths", int),
                      seeds=_csv(seeds, "seeds", int), max_points=max_points, epochs=epochs, dask=dask,
                      workspace=str(workspace))
    result = run_study(cfg)
    for c in result["claims"]:
        typer.echo(f"{c['verdict']:>13}: {c['claim']} (effect {c['effect']}, interval [{c['lo']}, {c['hi']}], "
                   f"n = {c['n']} cell x depth)")
    typer.echo(result["report"])


def read_points(path: Path, target: str | None, target_file: Path | None) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """``(X, y, column names)`` from a CSV, Parquet or NPY file; errors name the file, column or row."""
    if not path.is_file():
        raise InputError(f"{path}: file not found")
    suffix = path.suffix.lower()
    if suffix == ".npy":
        try:
            data = np.load(path, allow_pickle=False)
        except ValueError as err:
            raise InputError(f"{path}: not a numeric .npy array ({err})") from None
        if data.ndim != 2:
            raise InputError(f"{path}: expected a 2-D array, got shape {data.shape}")
        frame = pd.DataFrame(data, columns=[str(i) for i in range(data.shape[1])])
    elif suffix in (".csv", ".tsv", ".txt"):
        frame = pd.read_csv(path, sep="\t" if suffix == ".tsv" else ",")
    elif suffix in (".parquet", ".pq"):
        frame = pd.read_parquet(path)
    else:
        raise InputError(f"{path}: unknown format {suffix!r} (use .csv, .tsv, .parquet or .npy)")
    if target_file is not None:
        if target is not None:
            raise InputError("give --target or --target-file, not both")
        y_raw, source = _read_target_file(target_file), str(target_file)
        if len(y_raw) != len(frame):
            raise InputError(f"{target_file}: {len(y_raw)} targets for {len(frame)} points in {path}")
    else:
        if target is None:
            raise InputError(f"{path}: give --target (a column{' index' if suffix == '.npy' else ''}) or --target-file")
        if target not in frame.columns:
            raise InputError(f"{path}: no column {target!r} (columns: {', '.join(map(str, frame.columns))})")
        y_raw, source = frame.pop(target), f"{path} column {target!r}"
    y = _numeric(pd.Series(np.asarray(y_raw)), source)
    for column in frame.columns:
        _numeric(frame[column], f"{path} column {column!r}")
    if frame.shape[1] == 0:
        raise InputError(f"{path}: no feature columns besides the target")
    return frame.to_numpy(dtype=float), y, [str(c) for c in frame.columns]


def _read_target_file(path: Path) -> np.ndarray:
    if not path.is_file():
        raise InputError(f"{path}: file not found")
    if path.suffix.lower() == ".npy":
        y = np.load(path, allow_pickle=False)
    else:
        y = pd.read_csv(path, header=None).to_numpy()
    if y.ndim == 2 and 1 in y.shape:
        y = y.reshape(-1)
    if y.ndim != 1:
        raise InputError(f"{path}: expected one target per point, got shape {y.shape}")
    return y


def _numeric(values: pd.Series, source: str) -> np.ndarray:
    """``values`` as finite floats; the first bad value is an error naming its row."""
    numbers = pd.to_numeric(values, errors="coerce").to_numpy(dtype=float)
    bad = np.flatnonzero(~np.isfinite(numbers))
    if len(bad):
        raise InputError(f"{source}: row {bad[0] + 1} value {values.iloc[bad[0]]!r} is not a finite number")
    return numbers


def _jsonable(value):
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, np.ndarray)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


@app.command()
@_guard
def fit(points: Path = typer.Argument(..., help="CSV, TSV, Parquet or NPY file of points (one row each)"),
        target: str | None = typer.Option(None, "--target", help="target column (for NPY: its column index)"),
        target_file: Path | None = typer.Option(None, "--target-file", help="targets in a separate NPY or CSV file"),
        depth: int = typer.Option(2, "--depth", help="network depth L"),
        beta: float | None = typer.Option(None, "--beta", help="regularisation (default: the estimator's)"),
        bias: bool = typer.Option(True, "--bias/--no-bias", help="first-layer biases"),
        candidates: str = typer.Option("dictionary", "--candidates", help="dictionary, continuum or sampled"),
        max_candidates: int | None = typer.Option(None, "--max-candidates", help="largest dictionary enumerated"),
        seed: int = typer.Option(0, "--seed", help="seed of sampled candidates"),
        n_jobs: int | None = typer.Option(None, "--n-jobs", help=HELP["n_jobs"]),
        dask_address: str | None = typer.Option(None, "--dask-address", help="price on the Dask scheduler at "
                                                   "this address (tcp://host:port)"),
        as_json: bool = typer.Option(False, "--json", help="print JSON: objective, certificate and features")):
    """Fit the Lasso of a depth-L absolute-value network to POINTS and print the selected features."""
    X, y, columns = read_points(points, target, target_file)
    from analysis import ReflectionLasso

    from .cluster import pricing_cluster
    model = ReflectionLasso(depth=depth, beta=beta, bias=bias, candidates=candidates, random_state=seed,
                            verbose=sys.stderr.isatty(),  # progress bars on a terminal, none in pipes
                            n_jobs=n_jobs, **({} if max_candidates is None else {"max_candidates": max_candidates}))
    with pricing_cluster(dask_address):
        model.fit(X, y)
    features = model.features_
    if as_json:
        out = {"objective": model.objective_, "beta": model.beta_, "intercept": model.intercept_,
               "n_candidates": model.n_candidates_, "columns": columns, "certificate": model.certificate_,
               "features": features.to_dict(orient="records")}
        typer.echo(json.dumps(_jsonable(out), indent=2))
        return
    typer.echo(f"objective {model.objective_:.10g} at beta {model.beta_:.6g}, intercept {model.intercept_:.6g}, "
               f"{len(features)} features of {model.n_candidates_} candidates")
    typer.echo(model.certificate_.get("statement", ""))
    if len(features):
        shown = features[[c for c in ("id", "kind", "depth", "points", "coef", "w", "b", "offsets") if c in features]]
        with pd.option_context("display.max_rows", None, "display.width", 160, "display.precision", 4):
            typer.echo(shown.to_string(index=False))


@app.command()
@_guard
def report(run_id: str = typer.Argument(..., help="run id (see `lookingglass runs`)"),
           workspace: Path = typer.Option(Path(RunConfig.workspace), "--workspace", help=HELP["workspace"])):
    """Rebuild the HTML report of a run (and the workspace index); prints its path."""
    from data.store import Store
    from reports import publish
    _workspace_exists(workspace)
    with Store(workspace, read_only=True) as store:
        if run_id not in set(store.list_runs()["run_id"].astype(str)):
            raise InputError(f"no run {run_id!r} in {workspace} (see `lookingglass runs`)")
        path = publish(store, reports_dir(workspace), [run_id])[run_id]
    typer.echo(Path(path).resolve())


def _workspace_exists(workspace: Path) -> None:
    if not (workspace / "lookingglass.duckdb").is_file():
        raise InputError(f"{workspace}: no lookingglass store here (run `lookingglass run --workspace {workspace}`)")


@app.command()
@_guard
def runs(workspace: Path = typer.Option(Path(RunConfig.workspace), "--workspace", help=HELP["workspace"]),
         as_json: bool = typer.Option(False, "--json", help="print JSON records")):
    """List the runs of a workspace."""
    from data.store import Store
    _workspace_exists(workspace)
    with Store(workspace, read_only=True) as store:
        table = store.list_runs()
    if as_json:
        typer.echo(table.to_json(orient="records", date_format="iso"))
    elif table.empty:
        typer.echo(f"no runs in {workspace}")
    else:
        with pd.option_context("display.max_rows", None, "display.width", 200, "display.max_colwidth", 40):
            typer.echo(table.to_string(index=False))


@app.command()
@_guard
def export(folder: Path | None = typer.Argument(None, help="where to write <table>.parquet "
                                                   "(default: WORKSPACE/export-<UTC time>)"),
           workspace: Path = typer.Option(Path(RunConfig.workspace), "--workspace", help=HELP["workspace"])):
    """Write every readable table of the store to Parquet (also from a damaged store, which is left untouched)."""
    from datetime import datetime

    from data.store import Store, StoreCorruptError
    _workspace_exists(workspace)
    folder = folder or workspace / f"export-{datetime.now(UTC):%Y%m%d-%H%M%S}"
    store = Store(workspace, read_only=True, check=False)      # a damaged store too
    try:
        results = store.export_all(folder)
    except StoreCorruptError as err:
        raise StoreCorruptError(f"{store.path} cannot be opened at all, no table can be read "
                                f"({str(err).split('(', 1)[-1].split(')')[0]}); copy back the newest "
                                f"{store.backup_dir}/*.duckdb (README, \"Recovering a damaged store\")") from None
    failed = {t: e for t, e in results.items() if not isinstance(e, Path)}
    for table, result in results.items():
        typer.echo(f"{table}: {result if table not in failed else 'NOT READABLE: ' + result}")
    if failed:
        _fail(f"{len(failed)} of {len(results)} tables could not be read ({', '.join(failed)}); "
              f"the others are in {folder}", code=1)
    typer.echo(folder.resolve())


@app.command()
@_guard
def corpora():
    """List the built-in corpora."""
    from data.corpora import list_corpora
    table = pd.DataFrame(list_corpora())
    with pd.option_context("display.width", 200, "display.max_colwidth", 80):
        typer.echo(table.to_string(index=False))


@app.command()
@_guard
@_config_options
def serve(cron: str | None = typer.Option(None, "--cron", help='cron schedule, e.g. "0 3 * * *"'),
          interval: float | None = typer.Option(None, "--interval", help="schedule every SECONDS"),
          config: Path | None = typer.Option(None, "--config", help="TOML file of the run to schedule"),
          name: str = typer.Option("lookingglass", "--name", help="deployment name"),
          **options):
    """Serve the pipeline as a scheduled Prefect deployment; scheduled runs never overlap.

    Uses the Prefect server at PREFECT_API_URL when set, otherwise starts a local one with SQLite in
    WORKSPACE/.prefect (set PREFECT_SERVER_DATABASE_CONNECTION_URL=postgresql+asyncpg://... for PostgreSQL).
    """
    cfg = _build_config(config, options)
    from .inputs import check_inputs
    check_inputs(cfg)
    _prefect_logging(cfg.workspace)
    from .serve import serve as serve_pipeline
    _stop_on_sigterm()
    try:
        serve_pipeline(cfg, cron=cron, interval=interval, name=name)
    except KeyboardInterrupt as err:
        typer.echo(f"stopped ({str(err) or 'SIGINT'})", err=True)
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


if __name__ == "__main__":
    app()
