#!/usr/bin/env python
"""Benchmark: how complete is a SCYFI search -- exhaustive orders and the estimate of missed cycles.

1. The strongly coupled 2-D PLRNN A = (0.8449, 0.8888), W = [[0, -4.4067],
   [-4.2091, 0]], h = (0.6140, 0.9337) (15 cycles up to order 7 by brute force):
   time and cycles found up to order 7 (and 9) with the default settings
   (``exhaustive="auto"``: these orders are enumerated), with the heuristic alone
   (``exhaustive=False``, the old behaviour) and with brute force.
2. The completeness estimate of the heuristic (``exhaustive=False``, default loop
   counts) over random strongly coupled systems (A ~ U(0.8, 0.9), off-diagonal
   W ~ -U(3.5, 5), h ~ U(0.5, 1); 2-D up to order 7, 3-D up to order 4) against
   brute force: how often an order with missed cycles is flagged (it must never
   be called complete), how often Chao1 alone sees the miss, and how often a
   complete order is recognised as complete.

Usage::

    python benchmarks/bench_scyfi_completeness.py [--systems 20] [--repeats 7] [--out FILE]

This is a benchmark, not a test: timings depend on the machine and its load.
"""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common as C  # noqa: E402

C.limit_threads(1)  # before numpy / numba are imported
ROOT = C.add_repo_to_path()

import argparse  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

import plrnn_numba as pn  # noqa: E402
from plrnn_numba.dynamics import ScyfiSettings, brute_force_cycles, scyfi  # noqa: E402

SYSTEM = pn.PLRNN.from_arrays(A=[0.8449, 0.8888], W=[[0.0, -4.4067], [-4.2091, 0.0]], h=[0.6140, 0.9337])


def strongly_coupled(seed: int, M: int):
    """A random strongly coupled PLRNN (the family of ``tests/test_scyfi_completeness.py``)."""
    rng = np.random.default_rng(seed)
    W = -rng.uniform(3.5, 5.0, (M, M))
    np.fill_diagonal(W, 0.0)
    return pn.PLRNN.from_arrays(A=rng.uniform(0.8, 0.9, M), W=W, h=rng.uniform(0.5, 1.0, M))


def keys(ds, k):
    o = ds.order.values
    return {ds.patterns.values[i, :k].tobytes() for i in range(ds.sizes["cycle"]) if o[i] == k}


def part_system(rep, repeats):
    rep.add("### The 2-D system: default (auto exhaustive) against the heuristic alone")
    rep.add()
    rows = []
    for K in (7, 9):
        bf = None
        cases = [("default (`exhaustive=\"auto\"`)", {}), ("heuristic only (`exhaustive=False`, old)",
                                                         {"settings": ScyfiSettings(exhaustive=False)})]
        for label, kw in cases:
            scyfi(*SYSTEM, K, **kw)  # compile / warm up
            times = []
            for _ in range(repeats):
                t0 = time.perf_counter()
                ds = scyfi(*SYSTEM, K, seed=0, **kw)
                times.append(time.perf_counter() - t0)
            if bf is None:
                t0 = time.perf_counter()
                bf = brute_force_cycles(*SYSTEM, K)
                t_bf = time.perf_counter() - t0
            per_k = " ".join(str(int(n)) for n in ds.n_found.values)
            rows.append([K, label, C.fmt(float(np.median(times)) * 1e3), int(ds.n_solves.values.sum()),
                         f"{ds.sizes['cycle']}/{bf.sizes['cycle']}", per_k,
                         ", ".join(str(int(k)) for k in ds.order_k.values[ds.exhaustive.values]) or "none",
                         int(ds.estimated_complete.values.sum())])
        rows.append([K, "brute force (NumPy, all 2^(Mk) sequences)", C.fmt(t_bf * 1e3),
                     int(bf.n_solves.values.sum()), f"{bf.sizes['cycle']}/{bf.sizes['cycle']}",
                     " ".join(str(int(n)) for n in bf.n_found.values), "all", "-"])
    rep.add(C.markdown_table(["max order", "search", "ms (median)", "solves", "cycles found", "per order k = 1..",
                              "orders enumerated", "orders flagged complete"], rows, "rlrrrlll"))
    rep.add()


def part_estimate(rep, n_systems):
    rep.add("### The completeness estimate of the heuristic against brute force")
    rep.add()
    rows = []
    for M, K in ((2, 7), (3, 4)):
        n = n_systems // 2
        present = found = 0
        miss_orders = flagged = chao_sees = 0
        full_orders = recognised = 0
        excess = []
        secs = 0.0
        for s in range(n):
            params = strongly_coupled(1000 + s, M)
            bf = brute_force_cycles(*params, K)
            ds = scyfi(*params, K, seed=s, settings=ScyfiSettings(exhaustive=False))
            secs += float(ds.seconds.values.sum())
            present += bf.sizes["cycle"]
            found += ds.sizes["cycle"]
            for j, k in enumerate(ds.order_k.values):
                nb, nf = len(keys(bf, k)), int(ds.n_found.values[j])
                est, flag = float(ds.n_estimated.values[j]), bool(ds.estimated_complete.values[j])
                if nf < nb:
                    miss_orders += 1
                    flagged += not flag
                    chao_sees += est > nf
                else:
                    full_orders += 1
                    recognised += flag
                    excess.append(est - nf)
        rows.append([f"{M}-D, k <= {K}", n, f"{found}/{present} ({C.fmt(100 * found / present)}%)",
                     miss_orders, f"{flagged}/{miss_orders}", f"{chao_sees}/{miss_orders}",
                     full_orders, f"{recognised}/{full_orders}",
                     f"{C.fmt(float(np.mean(excess)))} / {C.fmt(float(np.max(excess)))}",
                     C.fmt(secs / n * 1e3)])
    rep.add(C.markdown_table(["systems", "n", "cycles found (heuristic)", "orders with misses",
                              "flagged not complete", "Chao1 > found", "complete orders", "flagged complete",
                              "Chao1 - found on complete orders (mean / max)", "ms per search"], rows,
                             "lrrrrrrrrr"))
    rep.add()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--systems", type=int, default=20, help="random systems, half 2-D, half 3-D (default 20)")
    ap.add_argument("--repeats", type=int, default=7, help="timed repeats of each search (default 7)")
    ap.add_argument("--out", help="also write the report (markdown) to this file")
    args = ap.parse_args(argv)
    rep = C.Report()
    rep.add("## SCYFI completeness")
    rep.add()
    rep.add(C.key_value_list({**C.machine_info(), **C.versions(("numpy", "numba")), "threads": "1",
                              "revision": C.git_revision(ROOT), "command": f"`{C.command_line()}`"}))
    rep.add()
    t0 = time.perf_counter()
    part_system(rep, args.repeats)
    part_estimate(rep, args.systems)
    return C.finish_report(rep, t0, args.out)


if __name__ == "__main__":
    sys.exit(main())
