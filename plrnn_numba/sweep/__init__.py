"""Parameter sweeps into xarray Datasets: local, in a process pool, or on a dask cluster.

>>> from plrnn_numba.sweep import sweep
>>> ds = sweep(train_once, {"alpha": [0.05, 0.1, 0.2]}, seeds=5,
...            store="runs/alpha.store", out="runs/alpha.nc")          # doctest: +SKIP

* :func:`sweep` runs ``fn(**point, **fixed, seed=...)`` over the Cartesian
  product of the grid (and seeds), and merges the returned named scalars and
  arrays into one Dataset whose coordinates are the grid.
* Backends: ``"processes"`` (default; one single-threaded worker per core),
  ``"serial"``, ``"dask"`` (a LocalCluster, or ``scheduler="tcp://host:8786"``).
  The result is the same on every backend and worker count: seeds are fixed
  per point, and the result is assembled by point, not by arrival order.
* Fault tolerance: with ``store=`` every finished point is saved atomically;
  run the same call again after Ctrl-C or a killed process and only the
  missing points are computed.  A point that raises is recorded (``error``
  variable, NaN outputs) and the sweep goes on; so is a point that kills its
  worker process twice (retried once in a fresh worker), with the exit code
  or signal in ``error``.  ``retry_failed=True`` computes failed points
  again.  Workers end within a second or so when the calling process dies,
  however it dies.
* :func:`strip_run_info` removes what differs between runs (wall times,
  creation time, backend) for comparisons.

See ``docs/sweeps.md`` for running on a cluster, resuming, and plotting.
"""

from ._backends import MAX_ATTEMPTS, WORKER_ENV, WorkerFailure, limit_worker_threads, watch_parent
from ._core import RUN_ATTRS, SWEEP_BACKENDS, SweepInterrupted, callable_name, describe_fixed, strip_run_info, sweep
from ._grid import RESERVED_NAMES, SEED_MODES, Grid, Point, derived_seed, make_grid, point_key
from ._results import InconsistentOutputError, SweepOutputError, normalize_outputs
from ._store import Store, StoreExistsError, StoreLockedError, StoreMismatchError

__all__ = [
    "sweep",
    "SWEEP_BACKENDS",
    "strip_run_info",
    "RUN_ATTRS",
    "RESERVED_NAMES",
    "SEED_MODES",
    "WORKER_ENV",
    "SweepOutputError",
    "InconsistentOutputError",
    "WorkerFailure",
    "SweepInterrupted",
    "StoreExistsError",
    "StoreMismatchError",
    "StoreLockedError",
    "MAX_ATTEMPTS",
    "Grid",
    "Point",
    "Store",
    "make_grid",
    "point_key",
    "derived_seed",
    "normalize_outputs",
    "callable_name",
    "describe_fixed",
    "limit_worker_threads",
    "watch_parent",
]
