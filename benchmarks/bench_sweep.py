#!/usr/bin/env python
"""Benchmark: per-point overhead and parallel speed-up of the sweep backends.

1. Per-point overhead for a trivial function (returns one number) on each
   backend, with and without a store: a sweep of ``N`` points and a sweep of
   ``n0 = workers`` points are each timed end to end, several times;
   ``(median T_N - median T_n0) / (N - n0)`` is the cost per point once the
   pool runs, and ``median T_n0`` minus the serial time of ``n0`` points is
   the start-up (pool or cluster start, worker imports, shut-down).
2. Speed-up of ``processes`` (and ``dask``) over ``serial`` for a CPU-bound
   numba point of about 0.5 s: end to end, and without the start-up measured
   in part 1.

Usage::

    python benchmarks/bench_sweep.py [--quick] [--out docs/performance_sweep.md]

The point functions live in this file; worker processes import it as the
module ``bench_sweep`` (this folder is put on ``sys.path``), so every backend
pickles them by reference and the numba kernel loads from numba's cache.
This is a benchmark, not a test: timings depend on the machine and on what
else runs on it.
"""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common as C  # noqa: E402

if __name__ == "__main__":  # not again when workers import this file as the module bench_sweep
    C.limit_threads(1)  # before numpy / numba are imported
ROOT = C.add_repo_to_path()

import argparse  # noqa: E402
import datetime as dt  # noqa: E402
import statistics  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from pathlib import Path  # noqa: E402

import numba  # noqa: E402

GOAL_OVERHEAD_MS = 50.0
GOAL_SPEEDUP = 1.8


# ------------------------------------------------------------------ point functions
def trivial_point(i):
    """The cheapest possible point."""
    return {"x": float(i)}


@numba.njit(cache=True, nogil=True)
def _busy_kernel(n, seed):  # pragma: no cover - compiled
    # a chaotic logistic-map orbit: serial, CPU-bound, not vectorisable away
    x = 0.1 + 0.8 * ((seed * 0.6180339887) % 1.0)
    acc = 0.0
    for _ in range(n):
        x = 3.99 * x * (1.0 - x)
        acc += x
    return acc / n


def busy_point(i, n_iter):
    """A CPU-bound numba point (``n_iter`` logistic-map steps, ~0.5 s when calibrated)."""
    return {"mean": _busy_kernel(n_iter, i)}


# ------------------------------------------------------------------ measurements
def _busy_cpu_seconds() -> float:
    """CPU seconds all processes on the machine have used since boot (/proc/stat; NaN elsewhere)."""
    try:
        with open("/proc/stat") as f:
            fields = [int(v) for v in f.readline().split()[1:]]
    except (OSError, ValueError):
        return float("nan")
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def _own_cpu_seconds() -> float:
    """CPU seconds of this process and of its finished (reaped) children."""
    import resource

    a, b = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return a.ru_utime + a.ru_stime + b.ru_utime + b.ru_stime


def timed_sweep(fn, n, backend, *, workers, store=None, fixed=None, record=None) -> tuple[float, object]:
    """Time one sweep; with ``record`` (a list), append the cores other jobs used meanwhile."""
    from plrnn_numba.sweep import sweep

    busy0, own0 = _busy_cpu_seconds(), _own_cpu_seconds()
    t0 = time.perf_counter()
    ds = sweep(
        fn,
        {"i": list(range(n))},
        backend=backend,
        workers=workers,
        store=store,
        fixed=fixed,
        progress=False,
    )
    t = time.perf_counter() - t0
    # The pool's workers finish their interpreter shut-down after the sweep returned: wait until they are
    # reaped, so that their CPU time is in RUSAGE_CHILDREN and the next measurement starts on a quiet machine.
    import multiprocessing

    deadline = time.monotonic() + 10
    while multiprocessing.active_children() and time.monotonic() < deadline:
        time.sleep(0.01)
    if record is not None:
        span = time.perf_counter() - t0
        record.append(((_busy_cpu_seconds() - busy0) - (_own_cpu_seconds() - own0)) / span)
    return t, ds


def overhead(mod, backends, *, n_points, repeats, workers, with_store):
    """Per-point cost and start-up of each backend for ``mod.trivial_point``.

    From the sweep's own timing attributes: ``compute_seconds`` (first to
    last result) / (N - W) is the cost per point with the workers running
    (W = 1 for serial, else the worker count: the first W results come back together);
    ``startup_seconds`` is the time until the first result (less its run time).
    """
    rows = []
    timed_sweep(mod.trivial_point, 4, "serial", workers=1)  # first-call costs (lazy imports) out of the way
    for backend in backends:
        for store_on in (False, True) if with_store else (False,):
            per, start, total = [], [], []
            for _ in range(repeats):
                with tempfile.TemporaryDirectory() as tmp:
                    st = Path(tmp, "store") if store_on else None
                    t, ds = timed_sweep(mod.trivial_point, n_points, backend, workers=workers, store=st)
                w = 1 if backend == "serial" else workers
                per.append(ds.attrs["compute_seconds"] / (n_points - w))
                start.append(ds.attrs["startup_seconds"])
                total.append(t)
            rows.append(
                {
                    "backend": backend,
                    "store": store_on,
                    "per_point_ms": 1e3 * statistics.median(per),
                    "per_point_range": (1e3 * min(per), 1e3 * max(per)),
                    "startup": statistics.median(start),
                    "total": statistics.median(total),
                }
            )
            print(f"  {backend:9s} store={store_on!s:5s}: {rows[-1]['per_point_ms']:.3f} ms/point", flush=True)
    return rows


def calibrate(mod, target: float) -> tuple[int, float]:
    """Iterations of the busy kernel that take about ``target`` seconds here (compiles/loads first)."""
    mod._busy_kernel(1000, 0)
    n = 1_000_000
    while True:
        t0 = time.perf_counter()
        mod._busy_kernel(n, 0)
        t = time.perf_counter() - t0
        if t > 0.05:
            break
        n *= 4
    n = int(n * target / t)
    times = []
    for _ in range(3):
        t0 = time.perf_counter()
        mod._busy_kernel(n, 0)
        times.append(time.perf_counter() - t0)
    return n, statistics.median(times)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="fewer repeats and points")
    ap.add_argument("--workers", type=int, default=None, help="workers (default: usable cores)")
    ap.add_argument("--out", metavar="FILE", help="also write the markdown report to FILE")
    args = ap.parse_args(argv)

    import bench_sweep as mod  # this file as an importable module: workers pickle its functions by reference

    import plrnn_numba
    from plrnn_numba.sweep._backends import default_workers

    warnings.simplefilter("ignore", RuntimeWarning)
    workers = args.workers or default_workers()
    repeats = 2 if args.quick else 3
    n_trivial = 100 if args.quick else 300
    n_busy = 4 * workers if args.quick else 8 * workers
    backends = ["serial", "processes"]
    try:
        import distributed  # noqa: F401

        backends.append("dask")
    except ImportError:
        pass

    rep = C.Report()
    now = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    rep.add("## Sweep backends: per-point overhead and parallel speed-up")
    rep.add()
    rep.add(f"Generated by `benchmarks/bench_sweep.py` on {now}.")
    rep.add()
    rep.add(
        "How to read it. Once its workers run, a sweep spends on each point the function's time plus a fixed "
        "cost in the calling process (submitting, receiving and checking the result, the progress bar, the "
        "store file): that is `per point` below. Starting the workers costs a fresh interpreter and "
        "`import plrnn_numba` (numba and xarray, about 1.1 s on this machine) per worker, in parallel, and "
        "the first call of each numba kernel in each worker loads it from numba's cache (0.3-0.5 s, seen in "
        "the first points' `wall_time`). So the process pool pays off for points of a few tens of "
        "milliseconds or more and sweeps of a few seconds or more; `serial` is the choice for cheaper work. "
        "dask adds its scheduler's per-task cost (a few ms per task on these 2 shared cores; a bare "
        "`client.map` + `gather` of the same function measured about 3 ms per task) in exchange for running on "
        "many machines. The speed-up is given three ways: end to end (start-up included), without the "
        "start-up, and the steady pace between the first and the last result, which is what a long sweep sees."
    )
    rep.add()
    info = {"command": f"`{C.command_line()}`", **C.machine_info()}
    vers = C.versions(("numpy", "numba", "xarray", "dask", "distributed"))
    info.update(vers)
    info["plrnn_numba"] = f"{plrnn_numba.__version__} (git {C.git_revision()})"
    info["workers"] = f"{workers} (processes: spawn start method; every worker 1 numba/BLAS thread)"
    rep.add(C.key_value_list(info))
    rep.add()

    print(f"part 1: trivial points ({n_trivial} per sweep, {repeats} repeats)", flush=True)
    rows = overhead(mod, backends, n_points=n_trivial, repeats=repeats, workers=workers, with_store=True)
    rep.add(
        f"### Per-point overhead (trivial function)\n\nSweeps of N = {n_trivial} points of a function that "
        f"returns one number, {repeats} runs each, medians (range in brackets). `per point` = the sweep's "
        f"`compute_seconds` (first to last result) / (N - W), W = 1 for serial and the worker count otherwise (the "
        f"first W results come back together): what each point costs once the workers run "
        f"(dispatch, result transfer, output checks, progress and, with a store, one atomic pickle file per "
        f"point). `start-up` = the sweep's `startup_seconds` (until the first result came back, less its run "
        f"time: pool or cluster start, worker imports). `total` = the whole call, merge and shut-down included."
    )
    rep.add()
    table = []
    for r in rows:
        lo, hi = r["per_point_range"]
        table.append(
            [
                r["backend"],
                "yes" if r["store"] else "no",
                f"{C.fmt(r['per_point_ms'])} ({C.fmt(lo)}-{C.fmt(hi)})",
                "-" if r["backend"] == "serial" else C.fmt(r["startup"]),
                C.fmt(r["total"]),
            ]
        )
    rep.add(C.markdown_table(["backend", "store", "per point (ms)", "start-up (s)", "total (s)"], table))
    rep.add()
    proc = [r for r in rows if r["backend"] == "processes"]
    worst = max(r["per_point_ms"] for r in proc)
    rep.add(
        f"Goal: below {GOAL_OVERHEAD_MS:g} ms per point for `processes`: **{C.fmt(worst)} ms** "
        f"({'met' if worst < GOAL_OVERHEAD_MS else 'NOT met'})."
    )
    rep.add()

    print(f"part 2: CPU-bound numba points ({n_busy} per sweep)", flush=True)
    n_iter, t_call = calibrate(mod, 0.5)
    speed_rows = []
    runs = {b: [] for b in backends}
    for _ in range(max(1, repeats)):
        for backend in backends:  # interleaved, so that a burst of other work hits every backend a little
            other = []
            t, ds = timed_sweep(
                mod.busy_point, n_busy, backend, workers=workers, fixed={"n_iter": n_iter}, record=other
            )
            w = 1 if backend == "serial" else workers
            steady = ds.attrs["compute_seconds"] / (n_busy - w)  # first to last result: the pool's pace
            runs[backend].append((t, t - ds.attrs["startup_seconds"], float(ds["wall_time"].sum()), other[0], steady))
            print(f"  {backend:9s}: {t:.2f} s", flush=True)
    med = {b: [statistics.median(x[i] for x in runs[b]) for i in range(5)] for b in backends}
    t_serial = med["serial"][0]
    for backend in backends:
        t, steady, busy_sum, other, pace = med[backend]
        speed_rows.append(
            [
                backend,
                C.fmt(other),
                C.fmt(t),
                C.fmt(busy_sum),
                C.fmt(t_serial / t) + "x",
                C.fmt(steady),
                C.fmt(t_serial / steady) + "x",
                C.fmt(pace),
                C.fmt(med["serial"][4] / pace) + "x",
            ]
        )
    rep.add(
        f"### Speed-up for a CPU-bound numba point\n\n{n_busy} points, each {n_iter:,} steps of a logistic map "
        f"in a numba loop ({C.fmt(t_call)} s per call in this process when calibrated), {max(1, repeats)} runs "
        f"per backend interleaved, medians. `sum of point times` adds the points' `wall_time` (above the serial "
        f"value when workers compete for the cores with each other or with other jobs). `without start-up` "
        f"subtracts the sweep's `startup_seconds`. `s per point (steady)`: the sweep's `compute_seconds` (first to "
        f"last result) / (N - W) as above, the pace once every worker runs, as in a long sweep. "
        f"`other jobs`: cores busy "
        f"with other processes (and hypervisor steal) during the run, from /proc/stat less this process and its "
        f"workers: what was not left of the {workers} cores for the sweep."
    )
    rep.add()
    rep.add(
        C.markdown_table(
            [
                "backend",
                "other jobs (cores)",
                "wall (s)",
                "sum of point times (s)",
                "speed-up",
                "without start-up (s)",
                "speed-up",
                "s per point (steady)",
                "speed-up",
            ],
            speed_rows,
        )
    )
    rep.add()
    sp_pace = med["serial"][4] / med["processes"][4]
    sp = t_serial / med["processes"][1]
    sp_e2e = t_serial / med["processes"][0]
    rep.add(
        f"Goal: `processes` at least {GOAL_SPEEDUP:g}x faster than `serial` on {workers} cores: "
        f"**{C.fmt(sp_pace)}x** in the steady state ({'met' if sp_pace >= GOAL_SPEEDUP else 'NOT met'}), "
        f"{C.fmt(sp)}x without start-up and {C.fmt(sp_e2e)}x end to end for this {C.fmt(t_serial)} s sweep "
        f"(start-up and the uneven last round weigh less in longer sweeps). Load average at the end: "
        f"{C.load_average()}."
    )
    if args.out:
        rep.write(args.out)
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
