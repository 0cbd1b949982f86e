"""HTML reports of lookingglass runs: one self-contained page per run and an index of runs.

Public API:

- ``build_report(bundle, out_path, max_planes=12) -> Path``: the report of one run bundle, the
  dict returned by ``data.store.Store.load_run(run_id)`` (sections appear only where the bundle
  has data, so a failed or unfinished run gets a report of what exists and its error).
- ``build_index(runs, out_path, report_paths=None) -> Path``: the index page of a runs table
  (``Store.list_runs()``, one row per run with ``run_id``, ``status`` and any key numbers),
  linking each run id found in ``report_paths`` (run id -> report file).
- ``publish(store, out_dir, run_ids=None) -> dict[str, Path]``: rebuild the reports of the given
  runs (all when None) from a store into ``out_dir/<run_id>.html`` and ``out_dir/index.html``.

Pages are Jinja2 templates with autoescaping; plotly.js is inlined once per page and the
figures and point texts travel as one escaped JSON document, so a page opens offline and the
untrusted corpus texts appear literally and run nothing. Selected features refer to training
points by their ``idx`` in the bundle's points table.
"""
from .html import build_index, build_report, publish, report_path

__all__ = ["build_report", "build_index", "publish", "report_path"]
