"""Where the points run: in this process, in a process pool, or on a dask cluster.

Every backend calls the same worker function, :func:`execute_point`, which
times the call, catches the function's exceptions (a failed point is a
result, not a crash) and normalises the outputs.  Results come back to the
calling process, which stores them: the store directory only has to exist
where ``sweep`` runs, not on the cluster's machines.

Threads.  Worker processes run one point at a time with one thread:
``NUMBA_NUM_THREADS``, ``OMP_NUM_THREADS``, ``OPENBLAS_NUM_THREADS`` (and the
other BLAS variables) are set to 1 in the environment the workers start with
(before they import numpy or numba), and :func:`limit_worker_threads` also
applies the limit at run time (``numba.set_num_threads(1)``, threadpoolctl
for BLAS libraries already loaded), which covers workers of an existing dask
cluster started elsewhere.  Parallelism comes from the points.
"""

from __future__ import annotations

import contextlib
import logging
import os
import pickle
import signal
import socket
import sys
import time
import traceback
from collections.abc import Callable, Iterator

from ._results import SweepOutputError, normalize_outputs

#: environment of worker processes: one thread for numba, OpenMP and every BLAS.
WORKER_ENV = {
    "NUMBA_NUM_THREADS": "1",
    "OMP_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "BLIS_NUM_THREADS": "1",
    "VECLIB_MAXIMUM_THREADS": "1",
    "NUMEXPR_NUM_THREADS": "1",
}

_MAX_ERROR_CHARS = 2000


class WorkerFailure(RuntimeError):
    """Worker processes could not run the sweep (could not start, load the function, or died).

    ``key`` is the key of the point concerned, when known.
    """

    def __init__(self, message: str, key: str | None = None):
        super().__init__(message)
        self.key = key


# ---------------------------------------------------------------------------- worker side
_worker_threads_limited = False
_WORKER: dict = {"fn": None, "fixed": None, "dims": (), "setup_error": None}


def limit_worker_threads() -> None:
    """One thread for numba and BLAS in this (worker) process; idempotent."""
    global _worker_threads_limited
    if _worker_threads_limited:
        return
    _worker_threads_limited = True
    os.environ.update(WORKER_ENV)  # for libraries loaded from now on
    from .. import config

    config.set_num_threads(1)
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(1)  # libraries already loaded
    except Exception:  # pragma: no cover - threadpoolctl is a dependency; never fail a sweep over it
        pass


def execute_point(fn: Callable, kwargs: dict, fixed: dict, key: str, dims: tuple[str, ...]) -> dict:
    """Call ``fn(**kwargs, **fixed)`` and return the point's record.

    The record's ``status`` is ``"ok"`` (``outputs`` normalised), ``"error"``
    (the function raised: ``error`` holds ``"Type: message"`` and
    ``traceback`` the traceback) or ``"invalid"`` (the function returned
    something a Dataset cannot hold: the sweep stops with that message).
    """
    rec = {"key": key, "host": socket.gethostname(), "pid": os.getpid(), "outputs": None, "error": "", "traceback": ""}
    t0 = time.perf_counter()
    try:
        result = fn(**kwargs, **fixed)
    except (Exception, SystemExit) as exc:  # a point that calls sys.exit() fails like one that raises
        rec["wall_time"] = time.perf_counter() - t0
        msg = f"{type(exc).__name__}: {exc}"
        rec.update(status="error", error=msg[:_MAX_ERROR_CHARS], traceback=traceback.format_exc())
        return rec
    rec["wall_time"] = time.perf_counter() - t0
    try:
        rec["outputs"] = normalize_outputs(result, dims)
    except SweepOutputError as exc:
        rec.update(status="invalid", error=str(exc))
        return rec
    rec["status"] = "ok"
    return rec


def _init_process_worker(payload: bytes, dims: tuple[str, ...]) -> None:
    # Ctrl-C goes to the whole process group; the parent handles it and stops the workers.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    limit_worker_threads()
    try:
        fn, fixed = pickle.loads(payload)
    except Exception as exc:
        _WORKER["setup_error"] = f"{type(exc).__name__}: {exc}"
        return
    _WORKER.update(fn=fn, fixed=fixed, dims=dims, setup_error=None)


def _process_task(key: str, kwargs: dict) -> dict:
    if _WORKER["setup_error"] is not None:
        return {"key": key, "status": "setup", "error": _WORKER["setup_error"]}
    return execute_point(_WORKER["fn"], kwargs, _WORKER["fixed"], key, _WORKER["dims"])


def _dask_task(fn: Callable, fixed: dict | None, key: str, kwargs: dict, dims: tuple[str, ...]) -> dict:
    limit_worker_threads()
    return execute_point(fn, kwargs, fixed or {}, key, dims)


# ---------------------------------------------------------------------------- helpers
@contextlib.contextmanager
def _restored_environment(keys=None):
    """Put the environment variables ``keys`` (default: all) back as they were on exit."""
    old = dict(os.environ) if keys is None else {k: os.environ.get(k) for k in keys}
    try:
        yield
    finally:
        if keys is None:
            for k in set(os.environ) - set(old):
                os.environ.pop(k, None)
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            elif os.environ.get(k) != v:
                os.environ[k] = v


@contextlib.contextmanager
def worker_environment():
    """Temporarily set :data:`WORKER_ENV` in this process, so child processes start with it."""
    with _restored_environment(WORKER_ENV):
        os.environ.update(WORKER_ENV)
        yield


@contextlib.contextmanager
def _children_ignore_sigint():
    """Start child processes with Ctrl-C ignored (the parent stops them); main thread only.

    The ignored disposition is inherited through fork and exec, so the
    workers do not print their own KeyboardInterrupt tracebacks.  This
    process ignores Ctrl-C only while the children start.
    """
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    old = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, old)


def _main_is_importable() -> bool:
    main = sys.modules.get("__main__")
    return bool(getattr(main, "__file__", None))


def pickle_payload(fn: Callable, fixed: dict) -> bytes:
    """Pickle the function and fixed arguments for worker processes.

    Functions importable by name (defined at module level, or in a script
    that spawned workers re-import) are pickled by reference; others
    (lambdas, closures, functions typed in a notebook) with cloudpickle
    when it is installed (it comes with dask).
    """
    by_reference_ok = getattr(fn, "__module__", None) != "__main__" or _main_is_importable()
    if by_reference_ok:
        try:
            payload = pickle.dumps((fn, fixed), protocol=pickle.HIGHEST_PROTOCOL)
            return payload
        except Exception as exc:
            first = exc
    else:
        first = None
    try:
        import cloudpickle
    except ImportError:
        raise TypeError(
            f"the sweep function or its fixed arguments cannot be sent to worker processes ({first}); define the "
            "function at module level in an importable file, install cloudpickle, or use backend='serial'"
        ) from None
    try:
        return cloudpickle.dumps((fn, fixed), protocol=pickle.HIGHEST_PROTOCOL)
    except Exception as exc:
        raise TypeError(
            f"the sweep function or its fixed arguments cannot be sent to worker processes ({exc}); define the "
            "function at module level and pass picklable fixed arguments, or use backend='serial'"
        ) from None


def default_workers() -> int:
    """Cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - macOS, Windows
        return os.cpu_count() or 1


# ---------------------------------------------------------------------------- backends
class SerialBackend:
    """Points one after the other in the calling process (its thread settings unchanged)."""

    name = "serial"

    def __init__(self, fn: Callable, fixed: dict, dims: tuple[str, ...]):
        self.fn, self.fixed, self.dims = fn, fixed, dims
        self.workers = 1

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def run(self, tasks: list[tuple[str, dict]]) -> Iterator[dict]:
        for key, kwargs in tasks:
            yield execute_point(self.fn, kwargs, self.fixed, key, self.dims)


class ProcessBackend:
    """A :class:`concurrent.futures.ProcessPoolExecutor` with one-thread workers.

    Workers start with the ``spawn`` method by default: a fresh interpreter
    is safe whatever threads the caller has running (numba's, tqdm's, a
    GUI's), and reads the one-thread environment before importing numpy or
    numba.  The function and fixed arguments are sent once per worker (in the
    initializer), each task carries only the point's keyword arguments.
    """

    name = "processes"

    def __init__(self, fn: Callable, fixed: dict, dims: tuple[str, ...], workers: int, start_method: str = "spawn"):
        self.payload = pickle_payload(fn, fixed)
        self.dims = dims
        self.workers = workers
        self.start_method = start_method
        self.pool = None

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if self.pool is not None:
            if exc_type is None:
                # Every result is in; the workers' interpreter shut-down (about 0.4 s with numba loaded)
                # finishes in the background instead of delaying the merge.
                self.pool.shutdown(wait=False)
                self.pool = None
            else:
                self._terminate()
        return False

    def _terminate(self) -> None:
        pool, self.pool = self.pool, None
        procs = list((getattr(pool, "_processes", None) or {}).values())
        pool.shutdown(wait=False, cancel_futures=True)
        for p in procs:
            with contextlib.suppress(Exception):
                p.terminate()
        for p in procs:
            with contextlib.suppress(Exception):
                p.join(timeout=5)

    def run(self, tasks: list[tuple[str, dict]]) -> Iterator[dict]:
        import multiprocessing
        from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
        from concurrent.futures.process import BrokenProcessPool

        if not tasks:
            return
        n = max(1, min(self.workers, len(tasks)))
        window = 4 * n
        todo = iter(tasks)
        pending: dict = {}

        def fill():
            while len(pending) < window:
                item = next(todo, None)
                if item is None:
                    return
                pending[self.pool.submit(_process_task, *item)] = item[0]

        ctx = multiprocessing.get_context(self.start_method)
        # Workers are started lazily by submit(); the first `window` submissions start all of them,
        # so the one-thread environment is in place for each start.
        with worker_environment():
            self.pool = ProcessPoolExecutor(
                max_workers=n, mp_context=ctx, initializer=_init_process_worker, initargs=(self.payload, self.dims)
            )
            fill()
        while pending:
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for fut in done:
                key = pending.pop(fut)
                try:
                    rec = fut.result()
                except BrokenProcessPool as exc:
                    raise WorkerFailure(
                        "a worker process died (killed, out of memory, or crashed in compiled code) while the sweep "
                        f"was running {{point}} or another one in flight ({exc})",
                        key,
                    ) from None
                if rec["status"] == "setup":
                    raise WorkerFailure(
                        "a worker process could not load the sweep function or its fixed arguments: "
                        f"{rec['error']}. Define the function at module level in an importable module "
                        "(scripts: under `if __name__ == '__main__':`), or use backend='serial'"
                    )
                yield rec
            fill()


class DaskBackend:
    """A ``dask.distributed`` cluster: a LocalCluster started here, or an existing scheduler.

    Parameters
    ----------
    scheduler : str, distributed.Client or Cluster, optional
        Address such as ``"tcp://host:8786"``, or an existing client or
        cluster (not closed at the end).  ``None`` starts a LocalCluster of
        ``workers`` one-thread worker processes and closes it at the end.
    connect_timeout : float
        Seconds to wait for the scheduler.
    cluster_kwargs : dict, optional
        Extra arguments for ``distributed.LocalCluster``.
    """

    name = "dask"

    def __init__(
        self,
        fn: Callable,
        fixed: dict,
        dims: tuple[str, ...],
        workers: int,
        scheduler=None,
        connect_timeout: float = 10.0,
        cluster_kwargs: dict | None = None,
    ):
        self.fn, self.fixed, self.dims = fn, fixed, dims
        self.workers = workers
        self.scheduler = scheduler
        self.connect_timeout = connect_timeout
        self.cluster_kwargs = dict(cluster_kwargs or {})
        self.client = None
        self.cluster = None
        self._own_client = False
        self._pending: list = []

    def __enter__(self):
        try:
            import dask
            import distributed
        except ImportError:
            raise ImportError(
                "backend='dask' needs dask.distributed: pip install 'dask[distributed]' (or 'plrnn_numba[dask]')"
            ) from None
        try:
            if self.scheduler is None:
                env = dict(dask.config.get("distributed.nanny.pre-spawn-environ", {}) or {})
                env.update(WORKER_ENV)
                kwargs = {
                    "n_workers": self.workers,
                    "threads_per_worker": 1,
                    "processes": True,
                    "dashboard_address": None,
                    "silence_logs": logging.ERROR,
                    **self.cluster_kwargs,
                }
                # The nannies put `env` (and PYTHONHASHSEED, __DASK_PARENT_PID) into this process's environment
                # before they start a worker; give this process its own environment back once the workers run.
                with (
                    dask.config.set({"distributed.nanny.pre-spawn-environ": env}),
                    _children_ignore_sigint(),
                    _restored_environment(),
                ):
                    self.cluster = distributed.LocalCluster(**kwargs)
                self.client = distributed.Client(self.cluster, timeout=self.connect_timeout)
                self._own_client = True
            elif isinstance(self.scheduler, distributed.Client):
                self.client = self.scheduler
            else:
                target = self.scheduler
                try:
                    self.client = distributed.Client(target, timeout=self.connect_timeout)
                except Exception as exc:  # OSError, TimeoutError, or garbage from a non-dask server
                    raise ConnectionError(
                        f"could not connect to the dask scheduler at {target!r} within {self.connect_timeout:g} s "
                        f"({type(exc).__name__}: {exc}). Start one with `dask scheduler` and workers with "
                        "`dask worker tcp://HOST:8786 --nworkers -1 --nthreads 1`, check the address and "
                        "firewall, or run without scheduler= to use a local cluster"
                    ) from None
                self._own_client = True
            self.workers = sum(self.client.nthreads().values()) or self.workers
        except BaseException:
            self._close()
            raise
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is not None and self._pending and self.client is not None:
            with contextlib.suppress(Exception):
                self.client.cancel(self._pending, force=True)
        self._close()
        return False

    def _close(self) -> None:
        if self.client is not None and self._own_client:
            with contextlib.suppress(Exception):
                self.client.close()
        if self.cluster is not None:
            with contextlib.suppress(Exception):
                self.cluster.close()
        self.client = self.cluster = None

    def run(self, tasks: list[tuple[str, dict]]) -> Iterator[dict]:
        from distributed import as_completed

        if not tasks:
            return
        client = self.client
        fixed = client.scatter([self.fixed], broadcast=True, hash=False)[0] if self.fixed else None
        window = max(32, 4 * self.workers)  # enough in flight to hide the scheduler's round trip
        todo = iter(tasks)
        ac = as_completed(with_results=True, raise_errors=False)  # results are fetched in the background
        keys: dict = {}

        def submit_one() -> bool:
            item = next(todo, None)
            if item is None:
                return False
            fut = client.submit(_dask_task, self.fn, fixed, item[0], item[1], self.dims, pure=False)
            keys[fut.key] = item[0]
            self._pending.append(fut)
            ac.add(fut)
            return True

        for _ in range(window):
            if not submit_one():
                break
        for fut, rec in ac:
            key = keys.pop(fut.key)
            self._pending.remove(fut)
            if fut.status != "finished" or not isinstance(rec, dict):
                if isinstance(rec, tuple) and len(rec) == 3 and isinstance(rec[1], BaseException):
                    rec = rec[1]  # (type, exception, traceback) of a failed task
                raise WorkerFailure(
                    f"dask could not run {{point}}: {type(rec).__name__}: {rec} (a worker died, or the function "
                    "could not be loaded on the workers: is its module importable there?)",
                    key,
                )
            yield rec
            submit_one()
