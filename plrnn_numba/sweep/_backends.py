"""Where the points run: in this process, in a process pool, or on a dask cluster.

Every backend calls the same worker function, :func:`execute_point`, which
times the call, catches the function's exceptions (a failed point is a
result, not a crash) and normalises the outputs.  Results come back to the
calling process, which checks and merges them.

Threads.  Worker processes run one point at a time with one thread:
``NUMBA_NUM_THREADS``, ``OMP_NUM_THREADS``, ``OPENBLAS_NUM_THREADS`` (and the
other BLAS variables) are set to 1 in the environment the workers start with
(before they import numpy or numba), and :func:`limit_worker_threads` also
applies the limit at run time (``numba.set_num_threads(1)``, threadpoolctl
for BLAS libraries already loaded), which covers workers of an existing dask
cluster started elsewhere.  Parallelism comes from the points.

Faults (``processes`` backend).  The pool hands a point to a worker only when
that worker is free to start it, and knows which point every worker runs:

* a point whose call kills its worker (segfault, ``os._exit``, the OOM
  killer) is run once more in a fresh worker; if it kills that one too it
  becomes a failed point (``error`` says how the worker died) and the other
  points go on;
* each worker stores its own finished points in the sweep's store before it
  reports back, and defers ``SIGTERM`` while it does, so a point whose call
  returned is on disk whatever happens to the calling process next;
* each worker watches its parent (Linux: ``prctl(PR_SET_PDEATHSIG)``;
  elsewhere a thread that polls ``os.getppid()``) and ends when the parent
  dies, however it died, ``SIGKILL`` included.  Nothing is queued in a
  worker, so nothing is computed after the parent is gone.

The ``dask`` backend gets the same behaviour from dask itself: the nanny
replaces a worker that died, the scheduler runs its task again, and a task
that killed ``allowed-failures + 1`` workers fails with ``KilledWorker``,
which becomes a failed point.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import pickle
import signal
import socket
import sys
import threading
import time
import traceback
from collections import deque
from collections.abc import Callable, Iterator
from typing import NamedTuple

from .._interrupt import interrupt_behind
from ._results import SweepOutputError, normalize_outputs
from ._store import write_point

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

#: runs a point gets when its call kills the worker process: the first, and one retry in a fresh worker.
MAX_ATTEMPTS = 2

_MAX_ERROR_CHARS = 2000
_MAX_FAILED_STARTS = 3  # workers that die before loading the function: a broken set-up, not a point
_PARENT_POLL_SECONDS = 0.25  # the fallback parent watch (no prctl): how soon a worker notices
_TERMINATE_SECONDS = 5.0  # SIGTERM, then SIGKILL for workers that have not ended by then


class WorkerFailure(RuntimeError):
    """Worker processes could not run the sweep (could not start, or could not load the function).

    A point whose call kills its worker is not a ``WorkerFailure``: it is
    retried once and then recorded as a failed point.

    Parameters
    ----------
    message : str
        What went wrong.
    key : str, optional
        The key of the point concerned, when known (kept as ``key``).
    """

    def __init__(self, message: str, key: str | None = None):
        super().__init__(message)
        self.key = key


class Task(NamedTuple):
    """One point to compute: its store key, the function's keyword arguments, and what the record adds."""

    key: str
    kwargs: dict
    meta: dict


# ---------------------------------------------------------------------------- worker side
_worker_threads_limited = False


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


@contextlib.contextmanager
def _deferred_termination():
    """Hold back ``SIGTERM`` (parent died, sweep stopped) until the block ends, then act on it.

    Used in worker processes around storing a point whose call returned: the
    point is then either stored or was never finished, so a resume neither
    loses nor repeats it.  Outside this block ``SIGTERM`` keeps its default
    action and ends the worker at once, even inside compiled code that holds
    the GIL.  Only the main thread can install signal handlers: elsewhere
    (the serial backend in a thread) this does nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    pending: list[int] = []
    old = signal.signal(signal.SIGTERM, lambda signum, frame: pending.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)  # runs a handler still pending from the C level first
        if pending:
            signal.raise_signal(signal.SIGTERM)


def execute_point(
    fn: Callable,
    kwargs: dict,
    fixed: dict,
    key: str,
    dims: tuple[str, ...],
    *,
    meta: dict | None = None,
    commit: Callable[[dict], None] | None = None,
) -> dict:
    """Call ``fn(**kwargs, **fixed)`` and return the point's record.

    Parameters
    ----------
    fn, kwargs, fixed : callable, dict, dict
        The function and its arguments.
    key : str
        The point's key.
    dims : tuple of str
        The sweep's dimensions (outputs may not use them).
    meta : dict, optional
        Added to the record (the point's parameters and index).
    commit : callable, optional
        Called with the record of a point that returned or raised (not with
        an ``"invalid"`` one), with ``SIGTERM`` deferred from the moment the
        call returned until ``commit`` is done; the record then has
        ``_stored=True``.  Worker processes store their points with it.

    Returns
    -------
    dict
        ``status`` is ``"ok"`` (``outputs`` normalised), ``"error"`` (the
        function raised: ``error`` holds ``"Type: message"`` and
        ``traceback`` the traceback) or ``"invalid"`` (the function returned
        something a Dataset cannot hold: the sweep stops with that message).
    """
    rec = {"key": key, "host": socket.gethostname(), "pid": os.getpid(), "outputs": None, "error": "", "traceback": ""}
    t0 = time.perf_counter()
    try:
        result = fn(**kwargs, **fixed)
    except (Exception, SystemExit) as exc:  # a point that calls sys.exit() fails like one that raises
        interrupt = interrupt_behind(exc)
        if interrupt is not None:
            raise interrupt from None
        result, failure, tb = None, exc, traceback.format_exc()
    else:
        failure = tb = None
    wall = time.perf_counter() - t0
    with _deferred_termination() if commit is not None else contextlib.nullcontext():
        rec["wall_time"] = wall
        if failure is not None:
            msg = f"{type(failure).__name__}: {failure}"
            rec.update(status="error", error=msg[:_MAX_ERROR_CHARS], traceback=tb)
        else:
            try:
                rec["outputs"] = normalize_outputs(result, dims)
                rec["status"] = "ok"
            except SweepOutputError as exc:
                rec.update(status="invalid", error=str(exc))
        if meta:
            rec.update(meta)
        if commit is not None and rec["status"] != "invalid":
            commit(rec)
            rec["_stored"] = True
    return rec


def describe_exit(exitcode: int | None) -> str:
    """How a process ended, from its exit code: ``"killed by signal SIGSEGV (Segmentation fault)"``."""
    if exitcode is None:
        return "ended (exit status unknown)"
    if exitcode < 0:
        try:
            sig = signal.Signals(-exitcode)
        except ValueError:
            return f"killed by signal {-exitcode}"
        text = signal.strsignal(sig) if hasattr(signal, "strsignal") else None
        return f"killed by signal {sig.name}" + (f" ({text})" if text and text != sig.name else "")
    return f"exited with code {exitcode}"


def crashed_record(task: Task, error: str, *, wall_time: float = float("nan"), pid: int | None = None) -> dict:
    """The record of a point whose call killed the worker processes that ran it (status ``"error"``)."""
    return {
        "key": task.key,
        "host": socket.gethostname(),
        "pid": pid,
        "outputs": None,
        "status": "error",
        "error": error[:_MAX_ERROR_CHARS],
        "traceback": "",
        "wall_time": wall_time,
        "worker_died": True,
        **task.meta,
    }


# ---------------------------------------------------------------------------- parent-death watch
_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def _set_parent_death_signal(sig: int) -> bool:
    """Linux: have the kernel send ``sig`` to this process when its parent dies; False where unavailable."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        zero = ctypes.c_ulong(0)
        return libc.prctl(_PR_SET_PDEATHSIG, ctypes.c_ulong(int(sig)), zero, zero, zero) == 0
    except (OSError, AttributeError, TypeError):  # pragma: no cover - no libc or no prctl
        return False


def watch_parent(parent_pid: int | None = None, *, poll: float = _PARENT_POLL_SECONDS) -> str:
    """End this process with ``SIGTERM`` as soon as its parent process dies.

    Worker processes call this first thing, so that a sweep whose process
    was killed (``SIGKILL`` included, which runs no clean-up) leaves no
    workers computing points nobody will collect.

    Parameters
    ----------
    parent_pid : int, optional
        The process that started this one; default: the current parent.  If
        the parent is already gone, this process exits at once.
    poll : float
        Seconds between checks of the fallback watch.

    Returns
    -------
    str
        ``"prctl"`` (Linux: the kernel signals this process when the parent
        dies; no thread, no polling) or ``"poll"`` (a daemon thread compares
        ``os.getppid()`` with the parent's pid every ``poll`` seconds).
    """
    expected = os.getppid() if parent_pid is None else int(parent_pid)
    how = "prctl" if _set_parent_death_signal(signal.SIGTERM) else "poll"
    if os.getppid() != expected:  # the parent died before the watch was in place: nothing to work for
        os._exit(1)
    if how == "poll":

        def check() -> None:
            while os.getppid() == expected:
                time.sleep(poll)
            os.kill(os.getpid(), signal.SIGTERM)

        threading.Thread(target=check, name="plrnn_numba-sweep-parent-watch", daemon=True).start()
    return how


def _process_worker(conn, payload: bytes | None, dims: tuple[str, ...], parent_pid: int | None, points_dir) -> None:
    """Main function of a ``processes`` worker: load the function, then run the points it is sent, one at a time.

    The pickled function and fixed arguments are ``payload``, or (None) the
    first bytes the parent sends on ``conn``.

    Messages to the parent: ``("setup", error)`` if the function cannot be
    loaded, ``("ready", pid)`` once it is, then ``("result", record)`` per
    point.  ``None`` from the parent (or a closed pipe) ends the worker.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C goes to the process group: the parent stops the workers
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    watch_parent(parent_pid)
    limit_worker_threads()
    from .. import config

    config.check_blas_kernels_once(warn=False)  # the parent warned before starting the workers
    try:
        fn, fixed = pickle.loads(conn.recv_bytes() if payload is None else payload)
    except Exception as exc:
        with contextlib.suppress(OSError):
            conn.send(("setup", f"{type(exc).__name__}: {exc}"))
        return
    commit = functools.partial(write_point, points_dir) if points_dir is not None else None
    try:
        conn.send(("ready", os.getpid()))
        while True:
            task = conn.recv()
            if task is None:
                return
            key, kwargs, meta = task
            conn.send(("result", execute_point(fn, kwargs, fixed, key, dims, meta=meta, commit=commit)))
    except (EOFError, OSError):  # the parent closed the pipe or is gone
        return


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
        _put_environment(old)


def _put_environment(values: dict) -> None:
    """Set the environment variables in ``values`` (None: unset)."""
    for k, v in values.items():
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

    def run(self, tasks: list[Task]) -> Iterator[dict]:
        for task in tasks:
            yield execute_point(self.fn, task.kwargs, self.fixed, task.key, self.dims, meta=task.meta)


class _Slot:
    """A worker process of :class:`ProcessBackend`, its pipe, and the point it runs."""

    __slots__ = ("proc", "conn", "task", "reserved", "since", "since_wall")

    def __init__(self, proc, conn, reserved: Task | None = None):
        self.proc, self.conn = proc, conn
        self.task: Task | None = None  # the point it runs (None until it has loaded the function)
        self.reserved = reserved  # the point it runs first, once ready (a retry: it must run in a fresh worker)
        self.since = self.since_wall = 0.0


class ProcessBackend:
    """A pool of one-thread worker processes that run one point each at a time.

    Workers start with the ``spawn`` method by default: a fresh interpreter
    is safe whatever threads the caller has running (numba's, tqdm's, a
    GUI's), and reads the one-thread environment before importing numpy or
    numba.  The function and fixed arguments are sent once per worker; each
    point is sent to a worker when that worker is free (it has loaded the
    function, or returned its last result), over its own pipe, so the pool
    always knows which point a worker runs and no queue of points waits
    inside a worker (a killed sweep leaves nothing to be computed twice, and
    a worker that is slow to start holds up no point).  The next point goes
    out before the result just received is checked and stored, so a
    worker's idle time is one pipe round trip.

    A worker that dies is replaced at once.  Its point runs again in the
    fresh worker; if it kills that one too it is yielded as a failed point
    (:func:`crashed_record`) and the sweep goes on.

    Parameters
    ----------
    fn, fixed, dims
        The sweep function, its fixed arguments, the sweep's dimensions.
    workers : int
        Worker processes (at most one per point).
    start_method : {"spawn", "forkserver", "fork"}
        How workers start.
    points_dir : path, optional
        The store's ``points`` directory: workers write each finished point
        there themselves (records then carry ``_stored=True``).
    """

    name = "processes"

    def __init__(
        self,
        fn: Callable,
        fixed: dict,
        dims: tuple[str, ...],
        workers: int,
        start_method: str = "spawn",
        points_dir=None,
    ):
        self.payload = pickle_payload(fn, fixed)
        self.dims = dims
        self.workers = workers
        self.start_method = start_method
        self.points_dir = None if points_dir is None else str(points_dir)
        self._slots: list[_Slot] = []  # workers with a point
        self._retired: list = []  # processes told to stop, still finishing their shut-down
        self._failed_starts = 0
        self._started = 0
        self.unseen: list[str] = []  # after a stop: keys of points in flight, possibly stored by their worker

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            # Every result is in; the workers' interpreter shut-down (about 0.4 s with numba loaded)
            # finishes in the background instead of delaying the merge.
            for slot in list(self._slots):
                self._retire(slot)
            self._retired = []
        else:
            self._terminate()
        return False

    # ------------------------------------------------------------------ workers
    def _start(self, reserved: Task | None = None) -> None:
        """Start a worker; it gets ``reserved`` (or the next point) once it has loaded the function."""
        import multiprocessing

        ctx = multiprocessing.get_context(self.start_method)
        ours, theirs = ctx.Pipe(duplex=True)
        # forkserver: the worker's parent is the fork server, which exits when this process does
        parent = None if self.start_method == "forkserver" else os.getpid()
        # the function and its fixed arguments go through the worker's own pipe once it runs, not with the
        # start: a payload larger than the pipe's buffer would hold this process in proc.start(), where Ctrl-C
        # is ignored, until the new interpreter reads it (seconds under load), and lose the user's Ctrl-C
        proc = ctx.Process(
            target=_process_worker,
            args=(theirs, None, self.dims, parent, self.points_dir),
            name=f"plrnn_numba-sweep-worker-{self._started}",
        )
        from .. import config

        config.check_blas_kernels_once()  # here, once, rather than in every worker
        with worker_environment(), _children_ignore_sigint():
            proc.start()
        theirs.close()
        with contextlib.suppress(OSError):  # a worker that died at start-up is reported when its pipe is read
            ours.send_bytes(self.payload)
        self._started += 1
        self._slots.append(_Slot(proc, ours, reserved))

    def _feed(self, slot: _Slot, queue: deque) -> None:
        """Give a free worker its next point, or let it go when there is none."""
        task, slot.reserved = slot.reserved, None
        if task is None and queue:
            task = queue.popleft()
        if task is None:
            self._retire(slot)
        else:
            self._assign(slot, task)

    def _assign(self, slot: _Slot, task: Task) -> None:
        slot.task, slot.since, slot.since_wall = task, time.perf_counter(), time.time()
        try:
            slot.conn.send(tuple(task))
        except OSError:  # it died meanwhile: its sentinel reports that, and the point is run again
            pass

    def _retire(self, slot: _Slot) -> None:
        self._slots.remove(slot)
        with contextlib.suppress(OSError):
            slot.conn.send(None)
        slot.conn.close()
        self._retired.append(slot.proc)

    def _terminate(self) -> None:
        # points the workers were running: they may have stored them without this process seeing the result
        self.unseen = [s.task.key for s in self._slots if s.task is not None]
        procs = [s.proc for s in self._slots] + self._retired
        for slot in self._slots:
            slot.conn.close()
        self._slots, self._retired = [], []
        for p in procs:
            with contextlib.suppress(Exception):
                p.terminate()  # a worker storing a point finishes that first (see _deferred_termination)
        deadline = time.monotonic() + _TERMINATE_SECONDS
        for p in procs:
            with contextlib.suppress(Exception):
                p.join(timeout=max(0.0, deadline - time.monotonic()))
                if p.is_alive():  # the function installed its own SIGTERM handler
                    p.kill()
                    p.join(timeout=1)

    def _stored_by(self, slot: _Slot) -> dict | None:
        """The record of the slot's point if the dead worker stored it before it died, else None."""
        if self.points_dir is None or slot.task is None:
            return None
        path = os.path.join(self.points_dir, f"{slot.task.key}.pkl")
        try:
            if os.stat(path).st_mtime < slot.since_wall - 1.0:  # an older run's file (retry_failed)
                return None
            with open(path, "rb") as f:
                rec = pickle.load(f)
        except Exception:  # no file, or one being replaced
            return None
        if not isinstance(rec, dict) or rec.get("pid") != slot.proc.pid:
            return None
        rec["_stored"] = True
        return rec

    @staticmethod
    def _receive(slot: _Slot):
        """The worker's next message, or None if it is gone."""
        try:
            if slot.conn.poll():
                return slot.conn.recv()
        except (EOFError, OSError):
            pass
        return None  # woken by the process sentinel, or the pipe closed: it died

    def _bury(self, slot: _Slot, queue: deque, attempts: dict) -> Iterator[dict]:
        """A worker died: replace it, and run its point again or yield the point as failed."""
        self._slots.remove(slot)
        slot.conn.close()
        slot.proc.join(timeout=5)
        how = describe_exit(slot.proc.exitcode)
        task = slot.task
        if task is None:  # it died before it loaded the function: not a point's doing
            self._failed_starts += 1
            if self._failed_starts >= _MAX_FAILED_STARTS:
                raise WorkerFailure(
                    f"worker processes {how} while starting ({self._failed_starts} times), before they could load "
                    "the sweep function; their error output is above. In a script, call sweep() under "
                    "`if __name__ == '__main__':`, or use backend='serial'."
                )
            if slot.reserved is not None or queue:
                self._start(slot.reserved)
            return
        stored = self._stored_by(slot)
        if stored is not None:  # it died after storing its point (SIGTERM from outside): done, not to be repeated
            if queue:
                self._start()
            yield stored
            return
        runs = attempts.setdefault(task.key, [])
        runs.append((how, slot.proc.pid))
        if len(runs) < MAX_ATTEMPTS:
            self._start(task)  # once more, in a fresh worker
            return
        wall = time.perf_counter() - slot.since
        if queue:
            self._start()
        hows = [h for h, _ in runs]
        if len(set(hows)) == 1:
            what = f"was {how}" if how.startswith("killed") else how
        else:
            what = "died (" + ", then ".join(hows) + ")"
        pids = ", ".join(str(pid) for _, pid in runs)
        yield crashed_record(
            task,
            f"WorkerDied: the worker process running this point {what}, in {'both' if len(runs) == 2 else 'all'} "
            f"runs (it was retried in a fresh worker; pids {pids}). Call the function with these arguments in a "
            "separate Python process to debug it; retry_failed=True computes the point again",
            wall_time=wall,
            pid=slot.proc.pid,
        )

    # ------------------------------------------------------------------ run
    def run(self, tasks: list[Task]) -> Iterator[dict]:
        from multiprocessing.connection import wait

        if not tasks:
            return
        queue = deque(tasks)
        attempts: dict[str, list[tuple[str, int]]] = {}
        for _ in range(min(self.workers, len(queue))):
            self._start()
        # until every point is back; workers still starting when nothing is left to do are not waited for
        while queue or any(s.task is not None or s.reserved is not None for s in self._slots):
            watched = {}
            for slot in self._slots:
                watched[slot.conn] = watched[slot.proc.sentinel] = slot
            woken = []
            for obj in wait(list(watched)):
                if watched[obj] not in woken:
                    woken.append(watched[obj])
            for slot in woken:
                msg = self._receive(slot)
                if msg is None:
                    yield from self._bury(slot, queue, attempts)
                elif msg[0] == "result":
                    slot.task = None
                    self._feed(slot, queue)  # the next point goes out before this result is checked and stored
                    yield msg[1]
                elif msg[0] == "ready":
                    self._feed(slot, queue)
                else:  # "setup"
                    raise WorkerFailure(
                        "a worker process could not load the sweep function or its fixed arguments: "
                        f"{msg[1]}. Define the function at module level in an importable module "
                        "(scripts: under `if __name__ == '__main__':`), or use backend='serial'."
                    )
        for slot in list(self._slots):
            self._retire(slot)


def _fixed_arguments(fixed: dict) -> dict:
    return fixed


def _dask_task(fn: Callable, fixed: dict | None, key: str, kwargs: dict, dims: tuple[str, ...], meta: dict) -> dict:
    limit_worker_threads()
    return execute_point(fn, kwargs, fixed or {}, key, dims, meta=meta)


class DaskBackend:
    """A ``dask.distributed`` cluster: a LocalCluster started here, or an existing scheduler.

    A point whose call kills its worker is handled by dask: the nanny starts
    a fresh worker and the scheduler runs the point again; after
    ``distributed.scheduler.allowed-failures + 1`` dead workers (2 on the
    LocalCluster started here, which sets allowed-failures to 1; with dask's
    default of 3 elsewhere, 4) the task fails with ``KilledWorker``, which is
    yielded as a failed point.  The LocalCluster also sets
    ``worker-saturation`` to 1, so that its scheduler sends a worker a point
    only when the worker is free.

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
        self._exit_reports = False
        self._saved_environ: dict = {}

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
                config = {
                    "distributed.nanny.pre-spawn-environ": env,
                    # a point that killed two workers fails (KilledWorker) instead of killing more
                    "distributed.scheduler.allowed-failures": MAX_ATTEMPTS - 1,
                    # one point per one-thread worker at a time: none waits on a worker, none is blamed for
                    # the death of a worker it was only queued on
                    "distributed.scheduler.worker-saturation": 1.0,
                }
                # The nannies put `env` (and PYTHONHASHSEED, __DASK_PARENT_PID) into this process's environment
                # before they start a worker; give this process its own environment back once the workers run,
                # and again when the cluster closes: a nanny that restarts a dead worker sets `env` once more,
                # and a NUMBA_NUM_THREADS left behind makes numba refuse every later compilation here.
                self._saved_environ = {k: os.environ.get(k) for k in env}
                with dask.config.set(config), _children_ignore_sigint(), _restored_environment():
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
            self._exit_reports = self._register_exit_reporter()
        except BaseException:
            self._close()
            raise
        return self

    def _register_exit_reporter(self) -> bool:
        """Best effort: nannies that cannot load the plugin (no plrnn_numba there) only cost the exit codes."""
        try:
            from ._dask_plugin import ExitReporter

            register = getattr(self.client, "register_plugin", None)
            if register is not None:
                register(ExitReporter())
            else:  # pragma: no cover - distributed < 2023.9
                self.client.register_worker_plugin(ExitReporter(), nanny=True)
            return True
        except Exception:
            return False

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
            _put_environment(self._saved_environ)
        self.client = self.cluster = None

    def _exit_of(self, pid) -> str:
        """How the worker process ``pid`` died, from the nannies' reports (they may lag behind the scheduler)."""
        if self._exit_reports and pid is not None:
            from ._dask_plugin import TOPIC

            deadline = time.monotonic() + 3.0
            while True:
                with contextlib.suppress(Exception):
                    for _, msg in self.client.get_events(TOPIC):
                        if isinstance(msg, dict) and msg.get("pid") == pid:
                            code = msg.get("exitcode")
                            return "was killed by an unknown signal" if code is None else _was(describe_exit(code))
                if time.monotonic() > deadline:
                    break
                time.sleep(0.05)
        return "died (its nanny did not report the exit code; see the worker logs)"

    def _killed(self, task: Task, exc) -> dict:
        n = int(getattr(exc, "allowed_failures", MAX_ATTEMPTS - 1)) + 1
        last = getattr(exc, "last_worker", None)
        pid = getattr(last, "pid", None)
        address = getattr(last, "address", last)
        return crashed_record(
            task,
            f"WorkerDied: the dask worker process running this point {self._exit_of(pid)} (pid {pid}, {address}); "
            f"dask ran the point on {n} workers and every one died (distributed.scheduler.allowed-failures = "
            f"{n - 1}). Call the function with these arguments in a separate Python process to debug it; "
            "retry_failed=True computes the point again",
            pid=pid,
        )

    def run(self, tasks: list[Task]) -> Iterator[dict]:
        from distributed import as_completed

        try:
            from distributed import KilledWorker
        except ImportError:  # pragma: no cover - older distributed
            from distributed.scheduler import KilledWorker

        if not tasks:
            return
        client = self.client
        # The fixed arguments travel once, as the result of a task rather than scattered data: when the workers
        # holding them die (a point that kills its worker), the scheduler computes them again from that task
        # instead of cancelling every point that needs them.
        fixed = client.submit(_fixed_arguments, self.fixed, pure=False) if self.fixed else None
        # Enough in flight to hide the scheduler's round trip.  The points wait in the scheduler, not on the
        # workers (worker-saturation), and die with it when this process is killed (LocalCluster).
        window = max(32, 4 * self.workers)
        todo = iter(tasks)
        ac = as_completed(with_results=True, raise_errors=False)  # results are fetched in the background
        running: dict = {}

        def submit_one() -> bool:
            task = next(todo, None)
            if task is None:
                return False
            fut = client.submit(_dask_task, self.fn, fixed, task.key, task.kwargs, self.dims, task.meta, pure=False)
            running[fut.key] = task
            self._pending.append(fut)
            ac.add(fut)
            return True

        for _ in range(window):
            if not submit_one():
                break
        for fut, rec in ac:
            task = running.pop(fut.key)
            self._pending.remove(fut)
            if fut.status != "finished" or not isinstance(rec, dict):
                if isinstance(rec, tuple) and len(rec) == 3 and isinstance(rec[1], BaseException):
                    rec = rec[1]  # (type, exception, traceback) of a failed task
                if not isinstance(rec, KilledWorker):
                    raise WorkerFailure(
                        f"dask could not run {{point}}: {type(rec).__name__}: {rec} (could the function be loaded "
                        "on the workers? is its module importable there?)",
                        task.key,
                    )
                rec = self._killed(task, rec)
            yield rec
            submit_one()


def _was(how: str) -> str:
    return f"was {how}" if how.startswith("killed") else how
