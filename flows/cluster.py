"""Where a fit prices its dictionary: this machine, or the Dask cluster the run is using.

``ReflectionLasso`` follows joblib's configuration (``analysis.parallel``); this context supplies
it: a ``dask.distributed.Client`` to ``dask_address``, or, inside a Dask worker (``run --dask``
or ``--dask-address``, where Prefect's tasks run on the cluster), the worker's own client,
seceding from the worker's thread pool while the pricing tasks run.
"""
from __future__ import annotations

from contextlib import contextmanager


@contextmanager
def pricing_cluster(dask_address: str | None = None, use_dask: bool = False):
    """Within this context a fit prices on the Dask cluster at ``dask_address`` (or of the worker running
    this code when ``use_dask`` or ``dask_address`` is set); without either, nothing changes."""
    if not (dask_address or use_dask):
        yield None
        return
    import distributed
    import joblib
    try:
        distributed.get_worker()
        inside = True
    except ValueError:
        inside = False
    if inside:
        with distributed.worker_client() as client, joblib.parallel_config(backend="dask", client=client):
            yield client
    elif dask_address:
        try:
            client = distributed.Client(dask_address, set_as_default=False, timeout="15s")
        except OSError as err:
            raise OSError(f"dask_address {dask_address}: {err}") from None
        with client, joblib.parallel_config(backend="dask", client=client):
            yield client
    else:
        yield None
