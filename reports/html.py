"""Self-contained HTML pages: one report per run and the index of a workspace's runs.

Pages are rendered by Jinja2 with autoescaping; figures and point texts travel as one JSON
document inside ``<script type="application/json">`` with ``<``, ``>`` and ``&`` escaped, and
plotly.js is inlined once, so a page opens offline and untrusted texts never run.
"""
from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import plotly.io as pio
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from markupsafe import Markup
from plotly.offline import get_plotlyjs

from . import plots
from .sections import fmt, report_context, shorten, when

log = logging.getLogger(__name__)

ENV = Environment(loader=PackageLoader("reports", "templates"), autoescape=select_autoescape(["html"]),
                  undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
ENV.filters["fmt"] = fmt
ENV.filters["when"] = when
PLOT_CONFIG = {"displaylogo": False, "displayModeBar": "hover", "responsive": True,
               "modeBarButtonsToRemove": ["lasso2d", "select2d"],
               "toImageButtonOptions": {"format": "svg"}}
RUN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
_SCRIPT_ESCAPES = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}


def script_json(text: str) -> Markup:
    """JSON text made safe inside a ``<script>`` element (no ``</script>``, ``<!--`` or ``&``)."""
    return Markup(re.sub("[<>&\u2028\u2029]", lambda m: _SCRIPT_ESCAPES[m.group()], text))


def _payload(figures: dict, points: dict | None) -> Markup:
    """The page's JSON document: figures (without their point data), shared points, plot config."""
    figs = ",".join(f"{json.dumps(k)}:{pio.to_json(fig.update_layout(template=plots.TEMPLATE), validate=False)}"
                    for k, fig in figures.items())
    points_json = json.dumps(points, allow_nan=False, separators=(",", ":"))
    return script_json(f'{{"figures":{{{figs}}},"points":{points_json},"config":{json.dumps(PLOT_CONFIG)}}}')


def _write(out_path, text: str) -> Path:
    """Write ``text`` atomically (a temporary file replaced in one step)."""
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_path.with_name(f".{out_path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, out_path)
    return out_path


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")


def build_report(bundle: dict, out_path, max_planes: int = 12) -> Path:
    """Write the report of one run bundle (``Store.load_run``) to ``out_path``; planes are drawn for
    the ``max_planes`` largest features of each depth (all are listed in the tables)."""
    if not isinstance(bundle, dict) or "run" not in bundle:
        raise ValueError("build_report needs a run bundle (Store.load_run) with a 'run' entry")
    context, figures = report_context(bundle, max_planes=max_planes)
    page = ENV.get_template("report.html").render(
        **context, generated=_now(), plotlyjs=Markup(get_plotlyjs()) if figures else None,
        payload=_payload(figures, context["payload_points"]) if figures else None)
    path = _write(out_path, page)
    log.info("wrote report of run %s to %s (%.1f MB)", context["run_id"], path, path.stat().st_size / 1e6)
    return path


def build_index(runs: pd.DataFrame, out_path, report_paths: Mapping[str, os.PathLike] | None = None) -> Path:
    """Write the index page: one row per run of ``runs`` (``Store.list_runs``) with its status and
    key numbers, linked to its report where ``report_paths`` has one."""
    if "run_id" not in runs.columns:
        raise ValueError(f"build_index needs a runs table with a run_id column, got columns {list(runs.columns)}")
    out_path = Path(out_path)
    report_paths = report_paths or {}
    if "created" in runs.columns:
        runs = runs.sort_values("created", ascending=False, kind="stable")
    columns = [c for c in runs.columns if c not in ("run_id", "status")]
    rows = []
    for _, run in runs.iterrows():
        rid = str(run["run_id"])
        link = report_paths.get(rid)
        rows.append({"run_id": rid, "status": str(run.get("status", "unknown")),
                     "href": Path(os.path.relpath(link, out_path.parent)).as_posix() if link else None,
                     "cells": [_cell(run[c]) for c in columns]})
    page = ENV.get_template("index.html").render(columns=columns, rows=rows, generated=_now())
    path = _write(out_path, page)
    log.info("wrote index of %d runs to %s", len(rows), path)
    return path


def _cell(value) -> str:
    """A runs-table value as short text (dicts as ``key: value`` lists, long texts cut)."""
    if isinstance(value, dict):
        return ", ".join(f"{k}: {fmt(v)}" for k, v in value.items()) or "—"
    if isinstance(value, (list, tuple, np.ndarray)):
        return ", ".join(fmt(v) for v in value) or "—"
    if pd.api.types.is_scalar(value) and pd.isna(value):
        return "—"
    if isinstance(value, (pd.Timestamp, datetime)):
        return when(value)
    return shorten(fmt(value), 160)


def report_path(out_dir, run_id: str) -> Path:
    """``out_dir/<run_id>.html``; run ids with characters unsafe in file names are refused."""
    if not RUN_ID.match(str(run_id)):
        raise ValueError(f"run id {run_id!r} is not usable as a report file name (letters, digits, . _ - only)")
    return Path(out_dir) / f"{run_id}.html"


def publish(store, out_dir, run_ids=None) -> dict[str, Path]:
    """Rebuild the reports of ``run_ids`` (all runs when None) from ``store`` into ``out_dir`` and
    the index ``out_dir/index.html`` linking every run with a report there; returns run id -> path."""
    runs = store.list_runs()
    wanted = [str(r) for r in (runs["run_id"] if run_ids is None else run_ids)]
    built = {rid: build_report(store.load_run(rid), report_path(out_dir, rid)) for rid in wanted}
    existing = {str(r): report_path(out_dir, r) for r in runs["run_id"] if report_path(out_dir, r).exists()}
    build_index(runs, Path(out_dir) / "index.html", existing)
    return built
