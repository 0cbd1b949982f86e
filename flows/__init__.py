"""Prefect flows, schedules and the ``lookingglass`` command line.

``configure(workspace)`` points Prefect at ``<workspace>/.prefect``; call it before importing
``flows.pipeline`` (which imports Prefect), then ``run_pipeline(RunConfig(...))``::

    from flows import RunConfig, configure
    configure("workspace")
    from flows.pipeline import run_pipeline
    outcome = run_pipeline(RunConfig(corpus="vader", max_points=100, workspace="workspace"))
    print(outcome.report)
"""
from ._prefect_env import configure
from .config import RunConfig

__all__ = ["RunConfig", "configure"]
