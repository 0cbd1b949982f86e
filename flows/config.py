"""``RunConfig``: every option of a pipeline run, saved to and loaded from TOML.

A run stores its config (in the store and as ``runs/<run_id>/config.toml`` in the workspace), so
``lookingglass run --config config.toml`` repeats it exactly, from any folder: the workspace is kept as
an absolute path (a relative one is resolved against the current folder when the config is made).
``None`` means "the library's default" and is left out of the TOML file (TOML has no null).
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
import tomllib
import types
import typing
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any


@dataclass
class RunConfig:
    """All options of ``lookingglass run``; field docs are the CLI help."""

    # corpus
    corpus: str = "adjectives"
    text_column: str | None = None
    target: str | None = None
    task: str = "auto"
    max_points: int = 200
    seed: int = 0
    test_size: float = 0.2
    # encoder
    model: str = "all-MiniLM-L6-v2"
    encoder_kind: str = "auto"
    pooling: str | None = None
    layer: int | None = None
    batch_size: int = 64
    device: str = "auto"
    # reduction
    reduction: str = "pca"
    n_components: int = 2
    standardize: bool = True
    # Lasso
    depths: tuple[int, ...] = (2, 3)
    n_betas: int = 6
    beta_min_ratio: float = 0.05
    beta: float | None = None
    bias: bool = True
    candidates: str = "dictionary"
    max_candidates: int | None = None
    stability_resamples: int = 8
    # networks
    networks: bool = True
    widths: tuple[int, ...] = (16,)
    epochs: int = 2000
    network_seeds: tuple[int, ...] = (0, 1)
    # execution
    dask: bool = False
    dask_address: str | None = None
    n_jobs: int | None = None
    workspace: str = "workspace"
    lock_timeout: float = 600.0

    def __post_init__(self):
        types_ = field_types()
        for f in fields(self):
            value = getattr(self, f.name)
            if value is None and f.default is not None:
                raise ValueError(f"option {f.name} needs a value")
            setattr(self, f.name, None if value is None else _coerce(f.name, value, types_[f.name]))
        # absolute, so a saved config.toml names the same store from any folder
        self.workspace = os.path.abspath(os.path.expanduser(self.workspace))
        _check(self)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict (tuples as lists)."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}

    @classmethod
    def from_dict(cls, values: dict[str, Any], source: str = "config") -> RunConfig:
        """Build from a dict; an unknown key is an error naming it and ``source``."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"{source}: unknown option(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        try:
            return cls(**values)
        except ValueError as err:
            raise ValueError(f"{source}: {err}") from None

    def replace(self, **changes: Any) -> RunConfig:
        """A copy with ``changes`` applied (``None`` values ignored: "not given")."""
        given = {k: v for k, v in changes.items() if v is not None}
        return RunConfig.from_dict({**self.to_dict(), **given}, source="options")

    # -- the options of each package function a pipeline step calls (flows.pipeline) --------
    def encoder_options(self) -> dict[str, Any]:
        """Keyword options of ``embeddings.encoders.load_encoder(self.model, ...)``."""
        return {"kind": self.encoder_kind, "pooling": self.pooling, "layer": self.layer, "device": self.device}

    def reduction_options(self) -> dict[str, Any]:
        """Keyword options of ``embeddings.reduce.Reduction``."""
        return {"method": self.reduction, "n_components": self.n_components, "standardize": self.standardize,
                "random_state": self.seed}

    def lasso_options(self) -> dict[str, Any]:
        """Keyword options of ``analysis.ReflectionLasso`` besides ``depth`` (``max_candidates`` only when given)."""
        return {"beta": self.beta, "bias": self.bias, "candidates": self.candidates, "n_betas": self.n_betas,
                "beta_min_ratio": self.beta_min_ratio, "random_state": self.seed, "n_jobs": self.n_jobs,
                **({} if self.max_candidates is None else {"max_candidates": self.max_candidates})}

    def training_options(self) -> dict[str, Any]:
        """Keyword options of ``analysis.training.compare_with_lasso`` that the run sets."""
        return {"widths": self.widths, "seeds": self.network_seeds, "max_epochs": self.epochs, "bias": self.bias,
                "device": self.device}

    @classmethod
    def load(cls, path: str | Path) -> RunConfig:
        """Read a TOML file written by :meth:`save` (or by hand)."""
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"config file not found: {path}")
        try:
            values = tomllib.loads(path.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
            raise ValueError(f"{path}: not valid TOML ({err})") from None
        return cls.from_dict(values, source=str(path))

    def save(self, path: str | Path) -> Path:
        """Write the config as TOML; ``RunConfig.load(path) == self``."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(to_toml(self.to_dict()), encoding="utf-8")
        return path


def field_types() -> dict[str, Any]:
    """Each option's type without ``| None`` (``None`` is allowed where the field's default is None)."""
    out = {}
    for name, hint in typing.get_type_hints(RunConfig).items():
        if isinstance(hint, types.UnionType):
            (hint,) = [a for a in typing.get_args(hint) if a is not type(None)]
        out[name] = hint
    return out


def _coerce(name: str, value: Any, hint) -> Any:
    """``value`` converted to the type ``hint`` (ints stay exact, lists become tuples)."""
    if typing.get_origin(hint) is tuple:
        if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__"):
            value = [value]
        return tuple(_coerce(name, v, typing.get_args(hint)[0]) for v in value)
    if hint is bool:
        if isinstance(value, bool):
            return value
        raise ValueError(f"option {name} must be true or false, got {value!r}")
    if hint is int:
        if isinstance(value, bool) or not (isinstance(value, int) or (isinstance(value, float) and value.is_integer())):
            raise ValueError(f"option {name} must be an integer, got {value!r}")
        return int(value)
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"option {name} must be a number, got {value!r}")
        return float(value)
    if not isinstance(value, str):
        raise ValueError(f"option {name} must be a string, got {value!r}")
    return value


def _check(c: RunConfig) -> None:
    if c.max_points < 2:
        raise ValueError(f"max_points must be >= 2, got {c.max_points}")
    if not 0 <= c.test_size < 1:
        raise ValueError(f"test_size must be in [0, 1), got {c.test_size}")
    if not c.depths or min(c.depths) < 2:
        raise ValueError(f"depths must be integers >= 2, got {list(c.depths)}")
    if c.n_components < 1:
        raise ValueError(f"n_components must be >= 1, got {c.n_components}")
    if c.n_betas < 1:
        raise ValueError(f"n_betas must be >= 1, got {c.n_betas}")
    if not 0 < c.beta_min_ratio <= 1:
        raise ValueError(f"beta_min_ratio must be in (0, 1], got {c.beta_min_ratio}")
    if c.beta is not None and not (c.beta > 0 and math.isfinite(c.beta)):
        raise ValueError(f"beta must be a positive number, got {c.beta}")
    if c.stability_resamples < 0:
        raise ValueError(f"stability_resamples must be >= 0 (0: no stability refits), got {c.stability_resamples}")
    if c.n_jobs == 0:
        raise ValueError("n_jobs must be a non-zero integer (-1: every core), got 0")
    if not c.lock_timeout >= 0:
        raise ValueError(f"lock_timeout must be >= 0 seconds, got {c.lock_timeout}")
    if c.batch_size < 1 or c.epochs < 1 or not c.widths or min(c.widths) < 1:
        raise ValueError("batch_size, epochs and widths must be >= 1")


def run_dir(workspace: str | Path, run_id: str) -> Path:
    """``<workspace>/runs/<run_id>`` (created): the run's corpus snapshot and ``config.toml``."""
    path = Path(workspace) / "runs" / run_id
    path.mkdir(parents=True, exist_ok=True)
    return path


def reports_dir(workspace: str | Path) -> Path:
    """``<workspace>/reports``: one HTML page per run and ``index.html``."""
    return Path(workspace) / "reports"


def to_toml(values: dict[str, Any]) -> str:
    """Flat TOML for str, bool, int, float and lists of those; ``None`` values are left out."""
    lines = []
    for key, value in values.items():
        if value is not None:
            lines.append(f"{key} = {_toml_value(value)}")
    return "\n".join(lines) + "\n"


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return repr(v) if math.isfinite(v) else ("nan" if math.isnan(v) else ("inf" if v > 0 else "-inf"))
    if isinstance(v, str):
        return json.dumps(v).replace("\x7f", "\\u007f")   # a TOML basic string
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    raise TypeError(f"cannot write {type(v).__name__} to TOML: {v!r}")
