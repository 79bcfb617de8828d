"""The :func:`sweep` driver: grid -> points -> backend -> store -> one Dataset."""

from __future__ import annotations

import contextlib
import functools
import hashlib
import inspect
import json
import math
import multiprocessing
import numbers
import os
import time
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np
import xarray as xr

from .. import io
from ..io import _sanitize_attrs
from ._backends import DaskBackend, ProcessBackend, SerialBackend, Task, WorkerFailure, default_workers
from ._grid import check_fixed, check_signature, make_grid
from ._results import InconsistentOutputError, Schema, SweepOutputError, build_dataset
from ._store import Store, _stable

#: where sweep points run (``backend=`` of :func:`sweep` and ``--backend`` of the sweep scripts).
SWEEP_BACKENDS = ("processes", "serial", "dask")

#: attributes that describe one run rather than the result (differ between runs of the same sweep).
RUN_ATTRS = (
    "created",
    "history",
    "host",
    "backend",
    "workers",
    "scheduler",
    "store",
    "n_computed",
    "n_resumed",
    "sweep_seconds",
    "startup_seconds",
    "compute_seconds",
)

_HASH_ABOVE = 16  # fixed arrays with more elements are recorded by shape, dtype and hash


class SweepInterrupted(KeyboardInterrupt):
    """A sweep was stopped by Ctrl-C (``KeyboardInterrupt``); says what was kept and how to go on.

    A subclass of ``KeyboardInterrupt``, so code that catches that still
    does.  The keyword arguments are kept as attributes of the same names.

    Parameters
    ----------
    message : str
        What was kept and how to go on.
    n_done : int
        Points finished (stored or resumed).
    n_points : int
        All points of the sweep.
    store : pathlib.Path or None
        The store directory, or None.
    """

    def __init__(self, message: str, *, n_done: int, n_points: int, store: Path | None):
        super().__init__(message)
        self.n_done, self.n_points, self.store = n_done, n_points, store


def callable_name(fn: Callable) -> str:
    """``module.qualname`` of a function (partials: the wrapped function and its bound arguments).

    Parameters
    ----------
    fn : callable
        A function, a ``functools.partial`` of one, or a compiled kernel (named by its Python function).

    Returns
    -------
    str
        The name recorded in a sweep's manifest.
    """
    if isinstance(fn, functools.partial):
        bound = _stable(io.to_json({"args": fn.args, "keywords": fn.keywords}))
        return f"functools.partial({callable_name(fn.func)}, {bound})"
    inner = getattr(fn, "py_func", None)  # numba dispatchers, LazyKernel
    target = inner if inner is not None else fn
    qual = getattr(target, "__qualname__", None) or getattr(target, "__name__", None) or type(target).__qualname__
    mod = getattr(target, "__module__", None)
    return f"{mod}.{qual}" if mod else str(qual)


def _source_sha1(fn: Callable) -> str | None:
    try:
        src = inspect.getsource(fn.func if isinstance(fn, functools.partial) else fn)
    except (OSError, TypeError):
        return None
    return hashlib.sha1(src.encode()).hexdigest()


def _describe_value(v):
    if isinstance(v, (xr.DataArray, xr.Dataset)):
        ds = v.to_dataset(name="_") if isinstance(v, xr.DataArray) else v
        h = hashlib.sha1()
        for name in sorted(map(str, ds.variables)):
            h.update(name.encode())
            h.update(np.ascontiguousarray(ds[name].values).tobytes())
        return {"type": type(v).__name__, "sizes": dict(ds.sizes), "sha1": h.hexdigest()}
    if isinstance(v, np.ndarray) and v.size > _HASH_ABOVE:
        digest = hashlib.sha1(np.ascontiguousarray(v).tobytes()).hexdigest()
        return {"type": "ndarray", "shape": list(v.shape), "dtype": str(v.dtype), "sha1": digest}
    return json.loads(_stable(io.to_json(v)))


def describe_fixed(fixed: Mapping) -> dict:
    """JSON-compatible record of the fixed arguments (large arrays by shape, dtype and SHA-1).

    Parameters
    ----------
    fixed : dict
        The sweep's fixed keyword arguments.

    Returns
    -------
    dict
        One JSON-compatible description per argument.
    """
    if not isinstance(fixed, Mapping):
        raise TypeError(f"fixed must be a dict of keyword arguments; got {type(fixed).__name__}")
    return {str(k): _describe_value(v) for k, v in fixed.items()}


def strip_run_info(ds: xr.Dataset) -> xr.Dataset:
    """``ds`` without what differs between runs of the same sweep.

    Drops the ``wall_time`` variable and the :data:`RUN_ATTRS` attributes,
    so that two runs (other backend, other worker count, resumed or not) can
    be compared with ``xarray.testing.assert_identical``.

    Parameters
    ----------
    ds : xarray.Dataset
        A result of :func:`sweep`.

    Returns
    -------
    xarray.Dataset
        A copy without them.
    """
    if not isinstance(ds, xr.Dataset):
        raise TypeError(f"strip_run_info expects the xarray.Dataset returned by sweep(); got {type(ds).__name__}")
    out = ds.drop_vars("wall_time", errors="ignore")
    out.attrs = {k: v for k, v in ds.attrs.items() if k not in RUN_ATTRS}
    return out


def _choose_backend(backend, scheduler) -> str:
    if scheduler is not None and not (
        isinstance(scheduler, str) or hasattr(scheduler, "submit") or hasattr(scheduler, "scheduler_address")
    ):
        raise TypeError(
            "scheduler must be the address of a dask scheduler ('tcp://host:8786'), a distributed.Client or a "
            f"dask cluster; got {type(scheduler).__name__} {scheduler!r:.60}"
        )
    if backend is None:
        return "dask" if scheduler is not None else "processes"
    if backend not in SWEEP_BACKENDS:
        raise ValueError(f"backend must be one of {SWEEP_BACKENDS}; got {backend!r}")
    if scheduler is not None and backend != "dask":
        raise ValueError(f"scheduler= is only used with backend='dask' (got backend={backend!r}); drop one of them")
    return backend


def _workers(workers) -> int:
    if workers is None:
        return default_workers()
    if isinstance(workers, bool) or not isinstance(workers, (int, np.integer)) or workers < 1:
        raise ValueError(f"workers must be a positive integer (or None for all cores); got {workers!r}")
    return int(workers)


def _check_bool(value, name: str) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False; got {type(value).__name__} {value!r:.60}")
    return bool(value)


def _check_path(value, name: str):
    if value is not None and not isinstance(value, (str, os.PathLike)):
        kind = type(value).__name__
        raise TypeError(f"{name} must be a path (str or pathlib.Path) or None; got {kind} {value!r:.60}")
    return value


def _check_mapping(value, name: str, *, nested: bool = False) -> dict:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        example = "{'alpha': {'long_name': ..., 'units': '1'}}" if nested else "{'key': value}"
        raise TypeError(f"{name} must be a dict such as {example}; got {type(value).__name__} {value!r:.60}")
    if nested:
        for k, v in value.items():
            if not isinstance(v, Mapping):
                raise TypeError(
                    f"{name}[{k!r}] must be a dict of attributes such as {{'long_name': ..., 'units': ...}}; "
                    f"got {type(v).__name__} {v!r:.60}"
                )
    return dict(value)


def _check_arguments(
    *,
    store,
    out,
    resume,
    progress,
    retry_failed,
    name,
    connect_timeout,
    start_method,
    cluster_kwargs,
    backend,
    scheduler,
) -> None:
    """The plain-typed arguments of :func:`sweep`, checked before anything runs."""
    _check_path(store, "store")
    _check_path(out, "out")
    if store is not None and out is not None and Path(store).resolve() == Path(out).resolve():
        raise ValueError(f"store and out are the same path ({out}); the store is a directory next to the result file")
    _check_bool(resume, "resume")
    _check_bool(progress, "progress")
    if _check_bool(retry_failed, "retry_failed") and store is None:
        raise ValueError(
            "retry_failed=True needs store=: failed points are only remembered in a store (without one every "
            "sweep computes every point)"
        )
    if name is not None and not isinstance(name, str):
        raise TypeError(f"name must be a string (the Dataset's title); got {type(name).__name__} {name!r:.60}")
    if (
        isinstance(connect_timeout, bool)
        or not isinstance(connect_timeout, numbers.Real)
        or not math.isfinite(connect_timeout)
        or connect_timeout <= 0
    ):
        raise ValueError(f"connect_timeout must be a positive number of seconds; got {connect_timeout!r}")
    methods = multiprocessing.get_all_start_methods()
    if start_method not in ("spawn", "forkserver", "fork") or start_method not in methods:
        raise ValueError(f"start_method must be one of {methods} on this platform; got {start_method!r}")
    if cluster_kwargs is not None:
        _check_mapping(cluster_kwargs, "cluster_kwargs")
        if backend != "dask" or scheduler is not None:
            raise ValueError(
                "cluster_kwargs= configures the LocalCluster that backend='dask' starts when no scheduler= is "
                "given; drop it (or the scheduler=)"
            )


def _kept_note(store: Store | None, n_done: int) -> str:
    if store is None:
        return " (no store= was given, so finished points were not kept: pass store= to make sweeps resumable)"
    return f" The {n_done} finished point(s) are kept in the store {store.path}."


def sweep(
    fn: Callable,
    grid: Mapping,
    *,
    seeds=None,
    backend: str | None = None,
    scheduler=None,
    store=None,
    out=None,
    resume: bool = True,
    progress: bool = True,
    workers: int | None = None,
    fixed: Mapping | None = None,
    name: str | None = None,
    seed_mode: str = "value",
    retry_failed: bool = False,
    coord_attrs: Mapping | None = None,
    var_attrs: Mapping | None = None,
    attrs: Mapping | None = None,
    connect_timeout: float = 10.0,
    start_method: str = "spawn",
    cluster_kwargs: Mapping | None = None,
) -> xr.Dataset:
    """Run ``fn`` on every point of a parameter grid and collect the results in one Dataset.

    Parameters
    ----------
    fn : callable
        ``fn(**point, **fixed[, seed=...]) -> dict`` of named outputs: numbers,
        strings, NumPy arrays (dimensions ``<name>_dim0, ...``) or
        ``xarray.DataArray`` (their own dims, 1-D coords and attrs); an
        ``xarray.Dataset`` also works.  Every point must return the same names
        and shapes.  For the ``processes`` and ``dask`` backends ``fn`` must be
        picklable: define it at module level (in a script, keep the call under
        ``if __name__ == "__main__":``).
    grid : dict
        Parameter name -> list of values (numbers, strings or booleans).  The
        sweep runs their Cartesian product; the names become the first
        dimensions of the result, in this order.
    seeds : int or list of int, optional
        Adds a last dimension ``seed``: an int ``n`` means seeds ``0..n-1``.
        The function is called with ``seed=``; see ``seed_mode``.
    backend : {"processes", "serial", "dask"}, optional
        ``processes`` (default): a process pool on this machine, one
        single-threaded worker per core.  ``serial``: in this process.
        ``dask``: a ``dask.distributed`` cluster (default when ``scheduler``
        is given).
    scheduler : str or distributed.Client, optional
        Dask scheduler address (``"tcp://host:8786"``) or client.  Without it
        ``backend="dask"`` starts a LocalCluster of ``workers`` processes and
        closes it at the end.
    store : path, optional
        Directory that keeps every finished point (one file each, written
        atomically).  A sweep that was interrupted or killed resumes from it:
        run the same call again and only the missing points are computed.
        Refused if it was written for a different function, grid, seeds or
        fixed arguments.
    out : path, optional
        Write the result to this netCDF file (:func:`plrnn_numba.io.save`).
    resume : bool
        Use the points already in ``store``.  ``False`` refuses a store that
        holds finished points (so that old results are never mixed in by
        accident).
    progress : bool
        Show a tqdm progress bar with the estimated time left.
    workers : int, optional
        Worker processes (default: the cores this process may use).
    fixed : dict, optional
        Keyword arguments passed unchanged to every call (recorded in the
        attributes as JSON; large arrays by shape and SHA-1).
    name : str, optional
        Title of the Dataset and label of the progress bar.
    seed_mode : {"value", "per_point"}
        ``"value"``: ``fn`` gets the seed coordinate itself, so every grid
        point sees the same seeds (common random numbers, the usual choice
        when comparing settings).  ``"per_point"``: ``fn`` gets an independent
        seed drawn by ``numpy.random.SeedSequence`` from the seed and the
        point's grid values.  Either way the same on every backend and run.
    retry_failed : bool
        On resume, compute again the points that failed (raised, or killed
        their worker process twice).  Needs ``store``.
    coord_attrs, var_attrs : dict, optional
        ``name -> attrs`` (e.g. ``{"alpha": {"long_name": ..., "units": "1"}}``)
        for the sweep coordinates and for the outputs.
    attrs : dict, optional
        Extra Dataset attributes.
    connect_timeout : float
        Seconds to wait for a dask scheduler before giving up.
    start_method : {"spawn", "forkserver", "fork"}
        How the ``processes`` backend starts workers (``spawn``: safe
        everywhere, about the cost of ``import plrnn_numba`` per worker).
    cluster_kwargs : dict, optional
        Extra arguments for ``distributed.LocalCluster``.

    Returns
    -------
    xarray.Dataset
        Coordinates: the grid parameters (then ``seed``).  Variables: each
        output with its own dims appended, ``error`` (the exception raised at
        a point as ``"Type: message"``, or ``"WorkerDied: ..."`` with the
        exit code or signal when the call killed its worker process twice;
        ``""`` if none; the outputs of such a point are NaN) and
        ``wall_time`` (seconds per call).  Attributes:
        provenance (versions, function, grid, fixed arguments and seeds as
        JSON, creation time, host, backend) and timing: ``startup_seconds``
        (until the first result came back, less its run time: pool or
        cluster start, worker imports), ``compute_seconds`` (first to last
        result), ``sweep_seconds`` (the whole call).  :data:`RUN_ATTRS` lists
        the attributes that differ between runs of the same sweep.

    Raises
    ------
    TypeError, ValueError
        Bad arguments (the message names the argument); raised before
        anything runs.
    SweepOutputError
        ``fn`` returned something a Dataset cannot hold (a function, an
        object, complex numbers); the sweep stops at once.
    InconsistentOutputError
        Two points returned different names or shapes; the sweep stops.
    WorkerFailure
        Worker processes could not start or could not load ``fn``.  (A
        point whose call kills its worker is retried once in a fresh worker,
        then recorded as failed; the sweep goes on.)
    ConnectionError
        The dask scheduler could not be reached within ``connect_timeout``.
    StoreExistsError
        ``resume=False`` and ``store`` holds finished points (a ``FileExistsError``).
    StoreMismatchError
        ``store`` belongs to a different sweep (a ``ValueError``).
    StoreLockedError
        Another running sweep uses ``store`` (a ``RuntimeError``).
    SweepInterrupted
        Ctrl-C (a ``KeyboardInterrupt``); the message says what was kept.

    Whatever stops a sweep, the points finished so far stay in ``store``.
    Worker processes end with the calling process however it dies
    (``SIGKILL`` included); with the ``processes`` backend a point whose
    call returned is stored by its worker before anything else happens and
    nothing is queued in a worker, so a resume computes no point twice.

    Examples
    --------
    >>> def f(a, b, seed):
    ...     rng = np.random.default_rng(seed)
    ...     return {"y": a * b + rng.normal(), "curve": np.arange(3) * a}
    >>> ds = sweep(f, {"a": [1, 2], "b": [0.5, 1.0]}, seeds=3, backend="serial", progress=False)
    >>> ds["y"].dims, ds["curve"].dims
    (('a', 'b', 'seed'), ('a', 'b', 'seed', 'curve_dim0'))
    """
    t_start = time.perf_counter()
    if not callable(fn):
        raise TypeError(f"fn must be callable; got {type(fn).__name__}")
    backend = _choose_backend(backend, scheduler)
    _check_arguments(
        store=store,
        out=out,
        resume=resume,
        progress=progress,
        retry_failed=retry_failed,
        name=name,
        connect_timeout=connect_timeout,
        start_method=start_method,
        cluster_kwargs=cluster_kwargs,
        backend=backend,
        scheduler=scheduler,
    )
    coord_attrs = _check_mapping(coord_attrs, "coord_attrs", nested=True)
    var_attrs = _check_mapping(var_attrs, "var_attrs", nested=True)
    attrs = _check_mapping(attrs, "attrs")
    g = make_grid(grid, seeds, seed_mode)
    fixed = check_fixed(fixed, g)
    check_signature(fn, g, fixed)
    n_workers = _workers(workers)  # checked whatever the backend
    if backend == "serial":
        n_workers = 1
    points = g.points()
    by_key = {p.key: p for p in points}
    fn_name = callable_name(fn)
    fixed_desc = describe_fixed(fixed)
    grid_desc = g.describe()
    manifest = {
        "function": fn_name,
        "grid": grid_desc["grid"],
        "seeds": g.seeds,
        "seed_mode": g.seed_mode,
        "fixed": fixed_desc,
        "source_sha1": _source_sha1(fn),
        "versions": io.versions(),
    }

    st = Store(store) if store is not None else None
    records: dict[str, dict] = {}
    bar = None
    n_resumed = 0
    startup = float("nan")
    t_first = t_last = 0.0
    schema = Schema()
    runner = None
    try:
        if st is not None:
            st.open(manifest, resume=resume)
            records = st.load(by_key)
            if retry_failed:
                records = {k: r for k, r in records.items() if r["status"] == "ok"}
            n_resumed = len(records)
        for p in points:
            rec = records.get(p.key)
            if rec is not None and rec["status"] == "ok":
                try:
                    schema.check(rec["outputs"], p)
                except InconsistentOutputError as exc:
                    raise InconsistentOutputError(
                        f"the points stored in {st.path} disagree: {exc}. Remove the store to start over."
                    ) from None
        todo = [
            Task(p.key, p.kwargs(), {"point": dict(p.params), "index": p.index, "format_version": 1})
            for p in points
            if p.key not in records
        ]

        if backend == "serial":
            runner = SerialBackend(fn, fixed, g.dims)
        elif backend == "processes":
            # the workers store their own points: a point whose call returned is on disk even if this process
            # is killed before it hears of it
            points_dir = st.points_dir if st is not None else None
            runner = ProcessBackend(fn, fixed, g.dims, n_workers, start_method=start_method, points_dir=points_dir)
        else:
            runner = DaskBackend(
                fn, fixed, g.dims, n_workers, scheduler, connect_timeout=connect_timeout, cluster_kwargs=cluster_kwargs
            )
        if progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=len(points), initial=len(records), desc=name or "sweep", unit="pt", dynamic_ncols=True)
        n_failed = sum(r["status"] != "ok" for r in records.values())
        t_backend = time.perf_counter()
        with runner if todo else contextlib.nullcontext(runner):  # nothing to compute: start no workers
            n_workers = runner.workers
            for full in runner.run(todo):
                stored = full.pop("_stored", False)
                p = by_key[full["key"]]
                t_last = time.perf_counter()
                if np.isnan(startup) and np.isfinite(full["wall_time"]):  # not a point that killed its worker
                    t_first = t_last
                    startup = t_first - t_backend - full["wall_time"]
                rec = full
                if rec["status"] == "invalid":
                    raise SweepOutputError(
                        f"{rec['error']} (at point {p.label()}); the sweep was stopped." + _kept_note(st, len(records))
                    )
                if rec["status"] == "ok":
                    try:
                        schema.check(rec["outputs"], p)
                    except InconsistentOutputError as exc:
                        note = ""
                        if st is not None:
                            note = f" The refused result is kept in {st.reject(full, stored=stored)}."
                        raise InconsistentOutputError(
                            f"{exc}. The sweep was stopped.{note}" + _kept_note(st, len(records))
                        ) from None
                else:
                    n_failed += 1
                if st is not None and not stored:
                    st.save(full)
                records[p.key] = full
                if bar is not None:
                    bar.update(1)
                    if n_failed:
                        bar.set_postfix(failed=n_failed, refresh=False)
    except (SweepOutputError, InconsistentOutputError):
        if st is not None:
            _recheck_unseen(st, schema, getattr(runner, "unseen", ()), by_key, records)
        raise
    except WorkerFailure as exc:
        label = f"point ({by_key[exc.key].label()})" if exc.key in by_key else "a point"
        raise WorkerFailure(str(exc).replace("{point}", label) + _kept_note(st, len(records)), exc.key) from None
    except KeyboardInterrupt as exc:
        if isinstance(exc, SweepInterrupted):
            raise
        n = len(records)
        if st is not None:
            n = max(n, st.count())  # workers may have stored points in flight that this process never saw
            msg = (
                f"sweep interrupted: {n} of {len(points)} points are stored in {st.path}; call sweep() again with "
                f"the same arguments (resume=True) to compute the other {len(points) - n}"
            )
        else:
            msg = f"sweep interrupted: {n} of {len(points)} points were finished and are lost (no store= was given)"
        raise SweepInterrupted(
            msg, n_done=n, n_points=len(points), store=Path(st.path) if st is not None else None
        ) from None
    finally:
        if bar is not None:
            bar.close()
        if st is not None:
            st.close()

    ds = build_dataset(g, points, records)
    _decorate(ds, g, coord_attrs, var_attrs)
    n_failed = int(sum(records[p.key]["status"] != "ok" for p in points))
    prov = io.provenance(
        "plrnn_numba.sweep.sweep",
        {
            "function": fn_name,
            "grid": grid_desc["grid"],
            "seeds": g.seeds,
            "seed_mode": g.seed_mode,
            "fixed": fixed_desc,
            "retry_failed": bool(retry_failed),
        },
        seeds=g.seeds,
    )
    prov.update(
        {
            "title": name or f"sweep of {fn_name}",
            "function": fn_name,
            "grid": io.to_json(grid_desc["grid"]),
            "fixed": io.to_json(fixed_desc),
            "seed_mode": g.seed_mode,
            "n_points": len(points),
            "n_failed": n_failed,
            "backend": backend,
            "workers": int(n_workers),
            "scheduler": _scheduler_label(scheduler),
            "store": str(Path(st.path).resolve()) if st is not None else "None",
            "n_computed": len(points) - n_resumed,
            "n_resumed": n_resumed,
            "startup_seconds": float(startup),
            "compute_seconds": float(t_last - t_first),
            "sweep_seconds": time.perf_counter() - t_start,
        }
    )
    prov.update(attrs)
    ds.attrs = _sanitize_attrs(prov)  # as netCDF will hold them, so that the saved file reads back identical
    if n_failed:
        first = next(records[p.key] for p in points if records[p.key]["status"] != "ok")
        warnings.warn(
            f"{n_failed} of {len(points)} sweep points failed: raised, or killed their worker process (their "
            f"outputs are NaN; see the 'error' variable). First: {first['error']}",
            RuntimeWarning,
            stacklevel=2,
        )
    if out is not None:
        io.save(ds, out)
    return ds


def _recheck_unseen(st: Store, schema: Schema, keys, by_key: dict, records: dict) -> None:
    """After a sweep stopped on bad outputs: check the points its workers stored but it never saw.

    Workers of the ``processes`` backend store a point before the calling
    process checks it, and the next point goes out before that check; a
    point refused by the check stops the sweep while others are in flight.
    Those that disagree with the checked ones are moved to ``rejected/``, so
    that a resume recomputes them instead of refusing the store.
    """
    for key in keys:
        if key in records or key not in by_key:
            continue
        rec = st.load([key]).get(key)
        if rec is None or rec.get("status") != "ok":
            continue
        try:
            schema.check(rec["outputs"], by_key[key])
        except InconsistentOutputError:
            st.reject(rec, stored=True)


def _scheduler_label(scheduler) -> str:
    if scheduler is None:
        return "None"
    if isinstance(scheduler, str):
        return scheduler
    return str(getattr(getattr(scheduler, "scheduler", None), "address", None) or type(scheduler).__name__)


def _decorate(ds: xr.Dataset, g, coord_attrs, var_attrs) -> None:
    coord_attrs = {k: _sanitize_attrs(dict(v)) for k, v in coord_attrs.items()}
    var_attrs = {k: _sanitize_attrs(dict(v)) for k, v in var_attrs.items()}
    for n in g.names:
        ds.coords[n] = (n, g.coords()[n], {"long_name": f"sweep parameter {n}", **coord_attrs.pop(n, {})})
    if g.seeds is not None:
        long_name = (
            "random seed (passed to the function as seed=)"
            if g.seed_mode == "value"
            else "random seed (the function got a per-point seed derived from it with numpy SeedSequence)"
        )
        ds.coords["seed"] = ("seed", g.coords()["seed"], {"long_name": long_name, **coord_attrs.pop("seed", {})})
    for n, a in coord_attrs.items():
        if n in ds.coords:
            ds.coords[n].attrs.update(a)
        else:
            warnings.warn(f"coord_attrs names {n!r}, which is not a coordinate of the result", stacklevel=3)
    for n, a in var_attrs.items():
        if n in ds.data_vars:
            ds[n].attrs.update(a)
        else:
            warnings.warn(f"var_attrs names {n!r}, which the function did not return", stacklevel=3)
