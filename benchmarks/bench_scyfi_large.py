#!/usr/bin/env python
"""Benchmark: SCYFI's fixed points at large M, with and without low-rank updates, against NumPy.

The same fixed-point search (order 1) three ways, fed with the same random
candidates: the numba engine refactorising every candidate
(``ScyfiSettings(low_rank=False)``), the numba engine solving candidates by
low-rank updates of a factorised region (``low_rank=True``; see
``plrnn_numba/dynamics/_low_rank.py``), and the NumPy port of the algorithm in
``benchmarks/bench_scyfi.py`` (``numpy.linalg.solve`` and ``numpy.linalg.cond``).
All three must make the same solves and find the same fixed points (checked
for every row).  The searches use the default loop counts of the dimension,
capped at a number of solves per row (the NumPy port is slow at large M); the
table reports solves per second.  Then the time ``scyfi`` takes to find the fixed
points of an M = 1000 PLRNN with the default search budget.

Usage::

    python benchmarks/bench_scyfi_large.py [--full] [--cpu N] [--out FILE]

The default is quick (about two and a half minutes, most of it the M = 1000
search); ``--full`` takes more solves per row and repeats.  One thread, pinned
to one CPU.  This is a benchmark, not a test: timings depend on the machine
and on what else runs on it (process CPU time is reported, which a shared
machine disturbs less than wall time).
"""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common as C  # noqa: E402

C.limit_threads(1)  # before numpy / numba are imported
C.pin_to_cpu(C.cpu_from_argv())  # every thread on one CPU (--cpu N)
ROOT = C.add_repo_to_path()

import argparse  # noqa: E402
import importlib  # noqa: E402
import time  # noqa: E402

import bench_scyfi as BS  # noqa: E402  (the NumPy port and the test systems)
import numba  # noqa: E402
import numpy as np  # noqa: E402

import plrnn_numba as pn  # noqa: E402
from plrnn_numba.dynamics import default_counters, scyfi  # noqa: E402
from plrnn_numba.models import as_piecewise_linear  # noqa: E402

S = importlib.import_module("plrnn_numba.dynamics.scyfi")

GOAL_NUMPY = 20.0  # speed-up over the NumPy port aimed at for M = 200
OPTS = np.array([BS.RCOND_MIN, BS.DUP_RTOL, BS.ACCEPT_RTOL])
DIMS = (10, 20, 50, 100, 200, 500, 1000)
SYSTEMS = ((0.9, "contracting (0.9)"), (1.25, "expanding (1.25)"))


def caps(full: bool) -> dict[int, int]:
    """Solves per row (numba and NumPy alike; the same solves are timed on every side)."""
    if full:
        return {10: 5000, 20: 5000, 50: 5000, 100: 5000, 200: 5000, 500: 1000, 1000: 400}
    return {10: 2000, 20: 2000, 50: 2000, 100: 2000, 200: 2000, 500: 400, 1000: 150}


def numba_run(pl, cap, low_rank, seed=0):
    n_out, n_in = default_counters(1, pl.n_bits)
    stream = S._FreshDraws(np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(1,))), 1, pl.n_bits, None,
                           hint=min(cap, n_out * n_in))
    return S.search_order(pl, 1, n_out, n_in, cap, stream, OPTS, low_rank=low_rank)


def numpy_run(pl, cap, seed=0):
    n_out, n_in = default_counters(1, pl.n_bits)
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(1,)))
    return BS.numpy_search_order(pl, 1, n_out, n_in, rng, None, max_solves=cap)


def same(batch, batch2, np_result) -> bool:
    """The three searches made the same solves and found the same fixed points."""
    found, counters = np_result
    st, st2 = batch.stats(0), batch2.stats(0)
    if not (st["n_solves"] == st2["n_solves"] == counters["solves"]):
        return False
    a, b = batch.cycles(0), batch2.cycles(0)
    pats = [sorted(x[1].tobytes() for x in cyc) for cyc in (a, b)] + [sorted(f[1].tobytes() for f in found)]
    if not pats[0] == pats[1] == pats[2]:
        return False
    return all(np.allclose(x[0], y[0], rtol=0, atol=1e-9 * max(1.0, np.abs(x[0]).max())) for x, y in zip(a, b))


def timed(fn, runs: int):
    """``(result, median process CPU time)`` of ``runs`` calls of ``fn`` (the result of the first)."""
    out, times = None, []
    for _ in range(runs):
        c0 = time.process_time()
        res = fn()
        times.append(time.process_time() - c0)
        out = res if out is None else out
    return out, float(np.median(times))


def part_rates(rep, full: bool, dims=DIMS):
    rep.add("### Solves per second against M")
    rep.add()
    rep.add("Random PLRNNs of `bench_scyfi.scaled_plrnn` (`A_ii ~ U(0, 1)`, `W_ij ~ N(0, 1/M)`, scaled to a mean "
            "spectral radius of the region maps of 0.9 or 1.25, a planted fixed point), seed 0; the fixed-point "
            "search with the default loop counts of M, capped at `solves` solves. `refactor`: numba, a new LU "
            "factorisation per candidate (`low_rank=False`); `updates`: numba with low-rank updates "
            "(`low_rank=True`); `NumPy`: the port of the same algorithm. Times are process CPU time per solve "
            "(median of 5 runs, 3 when refactorising, up to M = 200; one run above and for NumPy); `same`: all "
            "three made the same solves and found the same fixed points. `updates used`: solves done by an "
            "update; `bases`: factorised base regions the update path built (at the first solve, at the first "
            "fixed point, and where a base had to move).")
    rep.add()
    n_cap = caps(full)
    rows, per_solve = [], {}
    for target, label in SYSTEMS:
        for M in dims:
            pl = as_piecewise_linear(*BS.scaled_plrnn(M, target, 0))
            cap = n_cap[M]
            runs = 5 if M <= 200 else 1
            upd, t_upd = timed(lambda pl=pl, cap=cap: numba_run(pl, cap, True), runs)
            ref, t_ref = timed(lambda pl=pl, cap=cap: numba_run(pl, cap, False), min(runs, 3))
            npy, t_np = timed(lambda pl=pl, cap=cap: numpy_run(pl, cap), 1)
            ok = same(upd, ref, npy)
            st = upd.stats(0)
            n = st["n_solves"]
            t_upd, t_ref, t_np = t_upd / n, t_ref / n, t_np / n
            per_solve[target, M] = t_upd, t_ref, t_np
            rows.append([label, M, n, len(upd.cycles(0)), "yes" if ok else "**NO**", st["n_low_rank"], st["n_bases"],
                         C.fmt(t_np * 1e6), C.fmt(t_ref * 1e6), C.fmt(t_upd * 1e6), C.fmt(1.0 / t_upd),
                         f"{C.fmt(t_ref / t_upd)}x", f"{C.fmt(t_np / t_upd)}x", f"{C.fmt(t_np / t_ref)}x"])
            print(f"  {label} M={M}: updates {t_upd * 1e6:.1f} us/solve, refactor {t_ref * 1e6:.1f}, "
                  f"NumPy {t_np * 1e6:.1f} (same: {ok})", flush=True)
    rep.add(C.markdown_table(
        ["systems", "M", "solves", "fixed points", "same", "updates used", "bases", "NumPy us/solve",
         "refactor us/solve", "updates us/solve", "updates solves/s", "updates vs refactor", "updates vs NumPy",
         "refactor vs NumPy"], rows, "lrrrlrrrrrrrrr"))
    rep.add()
    at200 = [r for r in rows if r[1] == 200]
    if at200:
        rep.add(f"At M = 200 the updates run {' and '.join(r[12] for r in at200)} the NumPy port's speed "
                f"(contracting, expanding; goal >= {GOAL_NUMPY:g}x), refactorising "
                f"{' and '.join(r[13] for r in at200)}.")
        rep.add()
    return per_solve


def part_m1000(rep, per_solve):
    rep.add("### An M = 1000 PLRNN with the default search budget")
    rep.add()
    M = 1000
    params = BS.scaled_plrnn(M, 0.9, 0)
    n_out, n_in = default_counters(1, M)
    t0, c0 = time.perf_counter(), time.process_time()
    ds = scyfi(*params, 1, seed=0)  # the defaults: low_rank="auto" (on at this M)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    n = int(ds.n_solves.values[0])
    t_ref = per_solve.get((0.9, M), (0.0, float("nan")))[1]
    rep.add(f"`scyfi(model, theta, 1)` with the default settings on `scaled_plrnn({M}, 0.9, 0)` (one fixed point, "
            f"contracting): N_out x N_in = {n_out} x {n_in}, so the search ends after {n_out * n_in:,} solves "
            f"without a discovery.")
    rep.add()
    rep.add(C.markdown_table(
        ["search", "solves", "fixed points", "solves by updates", "seconds (wall)", "seconds (CPU)", "us per solve"],
        [["low-rank updates (default)", f"{n:,}", ds.sizes["cycle"], f"{int(ds.n_low_rank.values[0]):,}",
          C.fmt(wall), C.fmt(cpu), C.fmt(cpu / n * 1e6)],
         ["refactorising (estimate: solves x the us/solve above)", f"{n:,}", "", "0", "",
          C.fmt(n * t_ref), C.fmt(t_ref * 1e6)]], "lrrrrrr"))
    rep.add()
    print(f"  M=1000 default budget: {wall:.1f} s wall, {n} solves", flush=True)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--full", action="store_true", help="more solves per row and repeats")
    ap.add_argument("--out", metavar="FILE", help="also write the markdown report to FILE")
    ap.add_argument("--skip", nargs="*", default=[], choices=["rates", "m1000"], help="parts to skip")
    ap.add_argument("--dims", nargs="*", type=int, default=list(DIMS), choices=DIMS, metavar="M",
                    help=f"dimensions of the solves-per-second table (default: {' '.join(map(str, DIMS))})")
    C.add_cpu_argument(ap)
    args = ap.parse_args(argv)
    numba.set_num_threads(1)
    pn.config.set_num_threads(1)
    pn.config.limit_blas_threads()

    rep = C.Report()
    rep.add("### Fixed points at large M: low-rank updates")
    rep.add()
    rep.add(f"Generated by `benchmarks/bench_scyfi_large.py` on {time.strftime('%Y-%m-%d %H:%M %Z')}"
            + ("" if args.full else " (quick default)") + ".")
    rep.add()
    rep.add(f"- **command**: `{C.command_line()}`")
    rep.add(C.key_value_list(C.machine_info()))
    vers = C.versions(("numpy", "numba"))
    vers["BLAS (numpy)"] = C.blas_info()
    vers["OPENBLAS_CORETYPE"] = os.environ.get("OPENBLAS_CORETYPE", "(unset: native kernels)")
    vers["plrnn_numba"] = f"{pn.__version__} (git {C.git_revision(ROOT)})"
    rep.add(C.key_value_list(vers))
    rep.add(f"- **threads**: numba 1, BLAS 1; **pinned to**: {C.pinned_cpu_text()}")
    rep.add()
    # compile outside the timings
    small = as_piecewise_linear(*BS.scaled_plrnn(20, 0.9, 0))
    numba_run(small, 50, True)
    numba_run(small, 50, False)
    t0 = time.perf_counter()
    per_solve = part_rates(rep, args.full, args.dims) if "rates" not in args.skip else {}
    if "m1000" not in args.skip:
        part_m1000(rep, per_solve)
    return C.finish_report(rep, t0, args.out)


if __name__ == "__main__":
    sys.exit(main())
