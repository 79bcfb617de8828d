#!/usr/bin/env python
"""Benchmark: batched SCYFI region solves -- CPU threads (numba prange) and CUDA.

Two workloads (issue "CUDA kernels for batched SCYFI region solves"):

1. **Grid**: a 2-D PLRNN (the 2-D test family of Eisenmann et al. 2023, a1 and w1 varied) on
   a ``G x G`` parameter grid (256 x 256 by default), every order 1..8 searched
   at every point -- ``G^2 * 8`` independent searches in one batch
   (:func:`plrnn_numba.dynamics.search_many`).
2. **Restarts**: one 20-D PLRNN, ``10^5`` concurrent restarts (lanes) of the
   fixed-point search (order 1) and of the 2-cycle search, in one batch.

For each: region solves per second of the batched search on one thread (the
same engine, serial), on all threads (``prange`` over chunks of the batch),
and on the GPU (CUDA kernel; "not yet measured" without a GPU).  Plus the
end-to-end speed-up of ``bifurcation_grid(backend="parallel")`` over the
serial ``backend="cpu"`` (one :func:`scyfi` call per point) on the same grid.

The loop counts are reduced (``--n-outer``/``--n-inner``) so that the CPU side
of the full grid finishes in minutes; solves per second do not depend on them.

Usage::

    python benchmarks/bench_scyfi_batched.py [--quick] [--grid 256] [--out docs/performance_batched.md]

This is a benchmark, not a test: timings depend on the machine and its load.
"""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common as C  # noqa: E402

C.limit_threads(1)  # BLAS: one thread (numba's own threads do the parallel work)
ROOT = C.add_repo_to_path()

import argparse  # noqa: E402
import importlib  # noqa: E402
import time  # noqa: E402

import numba  # noqa: E402
import numpy as np  # noqa: E402

from plrnn_numba.dynamics import ScyfiSettings, bifurcation_grid, cuda_available  # noqa: E402
from plrnn_numba.dynamics import scyfi as _scyfi_fn  # noqa: E402,F401
from plrnn_numba.models import PLRNN, as_piecewise_linear  # noqa: E402

S = importlib.import_module("plrnn_numba.dynamics.scyfi")
E = importlib.import_module("plrnn_numba.dynamics._search")

# the 2-D test family of Eisenmann et al. (2023)
A2, W2, H1, H2 = 0.96461297, 0.52505308, 0.37298253, -0.97931491


def grid_systems(G: int):
    a1 = np.linspace(0.0, 0.99, G)
    w1 = np.linspace(-1.5, 0.5, G)
    out = []
    for w in w1:
        for a in a1:
            out.append(as_piecewise_linear(*PLRNN.from_arrays(A=[a, A2], W=[[0.0, w], [W2, 0.0]], h=[H1, H2])))
    return out


def restart_system(M: int = 20, seed: int = 0):
    """A random 20-D PLRNN (region maps of mean spectral radius 0.9) with a planted fixed point."""
    from bench_scyfi import scaled_plrnn

    return as_piecewise_linear(*scaled_plrnn(M, 0.9, seed))


def build_grid_batch(systems, orders, n_out, n_in, seed=0):
    cfg = ScyfiSettings(n_outer=n_out, n_inner=n_in)
    streams = S._Streams(seed, cfg)
    s0 = systems[0]
    n_sys, n_ord = len(systems), len(orders)
    return E.BatchSearch(
        s0.kernels, np.stack([s.p for s in systems]), s0.meta, s0.dim, s0.n_bits,
        {"system": np.repeat(np.arange(n_sys), n_ord), "order": np.tile(orders, n_sys),
         "stream": np.tile(np.arange(n_ord), n_sys), "n_outer": np.full(n_sys * n_ord, n_out),
         "n_inner": np.full(n_sys * n_ord, n_in), "max_solves": np.full(n_sys * n_ord, -1),
         "lanes": np.ones(n_sys * n_ord, dtype=np.int64)},
        [streams.stream(int(k), s0.n_bits, None) for k in orders], cfg.engine_options,
    )


def build_restart_batch(system, k, lanes, n_in, seed=0):
    cfg = ScyfiSettings()
    streams = S._Streams(seed, cfg)
    # n_outer = lanes: every lane runs about one restart of n_inner solves
    return E.BatchSearch(
        system.kernels, system.p[None], system.meta, system.dim, system.n_bits,
        {"system": [0], "order": [k], "stream": [0], "n_outer": [lanes], "n_inner": [n_in], "max_solves": [-1],
         "lanes": [lanes]},
        [streams.stream(k, system.n_bits, None)], cfg.engine_options,
    )


def run_batch(make, backend, n_threads):
    """(solves, seconds, cycles found) of one batch run on a backend."""
    batch = make()
    t0 = time.perf_counter()
    if backend == "cuda":
        from plrnn_numba.dynamics.gpu_scyfi import CudaSolver

        batch.run_rounds(CudaSolver(batch), n_threads=n_threads)
    else:
        numba.set_num_threads(n_threads)
        batch.run_cpu(parallel=backend == "parallel", n_chunks=4 * n_threads)
    dt = time.perf_counter() - t0
    solves = int(batch.searches["solves"].sum())
    return solves, dt, int(batch.searches["found"].sum())


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="64 x 64 grid, 2*10^4 restarts (about a minute)")
    ap.add_argument("--grid", type=int, default=256, help="grid side G (default 256)")
    ap.add_argument("--max-order", type=int, default=8)
    ap.add_argument("--restarts", type=int, default=100_000)
    ap.add_argument("--n-outer", type=int, default=2, help="outer loop count of the grid searches")
    ap.add_argument("--n-inner", type=int, default=40, help="inner loop count (grid searches and restarts)")
    ap.add_argument("--serial-grid", type=int, default=24, help="side of the grid timed end to end serially")
    ap.add_argument("--out", metavar="FILE", help="also write the markdown report to FILE")
    args = ap.parse_args(argv)
    if args.quick:
        args.grid, args.restarts, args.serial_grid = 64, 20_000, 12
    threads = numba.config.NUMBA_NUM_THREADS
    ok, kind = cuda_available()
    gpu = ok and kind == "gpu"

    rep = C.Report()
    rep.add("## Batched SCYFI region solves (CPU threads and CUDA)")
    rep.add()
    rep.add(C.key_value_list({**C.machine_info(), **C.versions(("numpy", "numba", "numba_cuda")),
                              "numba threads": str(threads), "GPU": kind if ok else "none",
                              "revision": C.git_revision(ROOT), "command": f"`{C.command_line()}`"}))
    rep.add()
    orders = np.arange(1, args.max_order + 1)
    G = args.grid
    t0 = time.perf_counter()
    systems = grid_systems(G)
    t_sys = time.perf_counter() - t0
    M20 = restart_system()
    cases = [
        (f"grid {G}x{G}, 2-D PLRNN, orders 1-{args.max_order} ({G * G * len(orders):,} searches)",
         lambda: build_grid_batch(systems, orders, args.n_outer, args.n_inner)),
        (f"{args.restarts:,} restarts, 20-D PLRNN, fixed points",
         lambda: build_restart_batch(M20, 1, args.restarts, args.n_inner)),
        (f"{args.restarts:,} restarts, 20-D PLRNN, 2-cycles",
         lambda: build_restart_batch(M20, 2, args.restarts, args.n_inner)),
    ]
    # compile (or load from the cache) outside the timings
    small = grid_systems(2)
    for be in ("cpu", "parallel"):
        run_batch(lambda: build_grid_batch(small, orders[:2], 1, 4), be, threads)
    rows = []
    for name, make in cases:
        s1, t1, f1 = run_batch(make, "cpu", 1)
        sp, tp, fp = run_batch(make, "parallel", threads)
        if gpu:
            run_batch(lambda: build_grid_batch(small, orders[:2], 1, 4), "cuda", threads)  # compile
            sg, tg, fg = run_batch(make, "cuda", threads)
            g_rate, g_ratio = C.fmt(sg / tg / 1e6), C.fmt((sg / tg) / (sp / tp))
        else:
            g_rate = g_ratio = "not yet measured"
        rows.append([name, f"{s1:,}", C.fmt(s1 / t1 / 1e6), C.fmt(sp / tp / 1e6), C.fmt((sp / tp) / (s1 / t1)),
                     g_rate, g_ratio, f"{fp:,}"])
        print(f"  {name}: serial {t1:.2f} s, parallel {tp:.2f} s", flush=True)
    rep.add(f"Region solves per second (millions; search engine only, loop counts n_outer = {args.n_outer}, "
            f"n_inner = {args.n_inner}; the restart batches use n_outer = number of restarts):")
    rep.add()
    rep.add(C.markdown_table(
        ["workload", "solves", "CPU 1 thread", f"CPU {threads} threads", "threads / 1", "GPU", "GPU / CPU threads",
         "cycles found"], rows))
    rep.add()

    # end to end: bifurcation_grid serial (one scyfi per point) vs parallel, same grid
    Gs = args.serial_grid
    model = PLRNN(2)
    theta = model.pack(A=np.array([0.5, A2]), W=np.array([[0.0, -0.5], [W2, 0.0]]), h=np.array([H1, H2]))
    xs, ys = np.linspace(0.0, 0.99, Gs), np.linspace(-1.5, 0.5, Gs)
    kw = dict(max_order=args.max_order, settings=ScyfiSettings(n_outer=args.n_outer, n_inner=args.n_inner))
    bifurcation_grid(model, theta, "A[0]", xs[:2], "W[0,1]", ys[:2], backend="parallel", **kw)  # warm
    t0 = time.perf_counter()
    a = bifurcation_grid(model, theta, "A[0]", xs, "W[0,1]", ys, backend="cpu", **kw)
    t_ser = time.perf_counter() - t0
    t0 = time.perf_counter()
    b = bifurcation_grid(model, theta, "A[0]", xs, "W[0,1]", ys, backend="parallel", **kw)
    t_par = time.perf_counter() - t0
    same = bool(np.array_equal(a.n_cycles.values, b.n_cycles.values)
                and np.array_equal(a.signature_id.values, b.signature_id.values))
    rep.add(f"End to end, `bifurcation_grid` on a {Gs}x{Gs} grid, orders 1-{args.max_order} (search, verification "
            "and stability of every cycle):")
    rep.add()
    rep.add(C.markdown_table(
        ["backend", "seconds", "speed-up", "same signatures as serial"],
        [["cpu (one scyfi call per point)", C.fmt(t_ser), "1", "-"],
         [f"parallel ({threads} threads, one batch)", C.fmt(t_par), C.fmt(t_ser / t_par), str(same)]]))
    rep.add()
    rep.add(f"Building the {G * G:,} grid systems took {t_sys:.1f} s (not in the solve rates).")
    if args.out:
        rep.write(args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
