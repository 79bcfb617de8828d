#!/usr/bin/env python
"""Benchmark: SCYFI in numba against a straightforward NumPy implementation of the same algorithm.

Both sides run the same search -- the same region maps, solves, roll-outs, jump
rule, loop detection, duplicate checks and loop counters, fed with the *same*
NumPy random candidates (same seeds) -- so they do the same number of solves and
return the same cycles (checked for every case before it is timed).  Only the
search is timed (pattern pool, verification and Dataset assembly are shared code
outside it).  Then:

* solves per discovered cycle against the order k, for the 2-D test family of
  Eisenmann et al. (2023) (the authors report about 1.9 + 0.03 k regions per found cycle);
* time to find the two 16-cycles of their test system;
* fixed-point search against the dimension M (up to 200) for contracting and
  expanding random PLRNNs;
* recall of the default loop counts against the brute-force enumeration;
* numba compile time (fresh cache) and cached start-up, each in a new process.

Usage::

    python benchmarks/bench_scyfi.py [--quick] [--out docs/performance_scyfi.md]

This is a benchmark, not a test: timings depend on the machine and on what else
runs on it.
"""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common as C  # noqa: E402

C.limit_threads(1)  # before numpy / numba are imported
ROOT = C.add_repo_to_path()

import argparse  # noqa: E402
import importlib  # noqa: E402
import json  # noqa: E402
import shutil  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from collections import deque  # noqa: E402
from dataclasses import dataclass  # noqa: E402

import numba  # noqa: E402
import numpy as np  # noqa: E402

import plrnn_numba as pn  # noqa: E402
from plrnn_numba.dynamics import ScyfiSettings, brute_force_cycles, scyfi  # noqa: E402
from plrnn_numba.models import as_piecewise_linear  # noqa: E402

S = importlib.import_module("plrnn_numba.dynamics.scyfi")  # the module (the package exports the function)
E = importlib.import_module("plrnn_numba.dynamics._search")  # the search engine (constants)

GOAL_SPEEDUP = 20.0
# the parts below measure SCYFI's heuristic: with exhaustive="auto" (the default) the small
# orders would be enumerated instead (see benchmarks/bench_scyfi_completeness.py)
HEURISTIC = ScyfiSettings(exhaustive=False)
RCOND_MIN, DUP_RTOL, ACCEPT_RTOL = 1e-12, 1e-8, 1e-6
# the 2-D test family of the SCYFI authors (Eisenmann et al. 2023)
A2, W2, H1, H2 = 0.96461297, 0.52505308, 0.37298253, -0.97931491


def ref_system(a1: float, w1: float):
    """(model, theta) of the 2-D test system."""
    return pn.PLRNN.from_arrays(A=[a1, A2], W=[[0.0, w1], [W2, 0.0]], h=[H1, H2])


# ============================================================== NumPy reference
def numpy_search_order(system, k, n_out, n_in, rng, pool, max_solves=None):
    """SCYFI for one order k in plain NumPy: the kernel's algorithm, statement by statement.

    Region maps ``system.region``, the true map ``system.step``, patterns
    ``system.patterns``, ``numpy.linalg.solve`` and ``numpy.linalg.cond`` (exact
    1-norm condition number where the kernel uses Hager's estimate).  Returns
    ``(cycles, counters)`` in the kernel driver's format.
    """
    M, P = system.dim, system.n_bits
    eye = np.eye(M)
    draws = S._FreshDraws(rng, k, P, pool)
    fresh, pos = draws.draw(), 0
    found: list[tuple[np.ndarray, np.ndarray, int]] = []
    outer = inner = solves = singular = since = loops = dups = lower = inexact = 0
    need_new = True
    hashes: deque = deque(maxlen=E.N_HASH)
    cand = None
    while True:
        if need_new:
            if pos >= len(fresh):
                fresh, pos = draws.draw(), 0
            cand = fresh[pos].copy()
            pos += 1
            need_new = False
            hashes.clear()
            hashes.append(cand.tobytes())
        if inner >= n_in:
            outer += 1
            inner = 0
            need_new = True
            if outer >= n_out:
                break
            continue
        if max_solves is not None and solves >= max_solves:
            break
        F, c = system.region(cand)
        Z, b = eye, np.zeros(M)
        with np.errstate(all="ignore"):
            for j in range(k):
                Z = F[j] @ Z
                b = F[j] @ b + c[j]
            A = eye - Z
        solves += 1
        inner += 1
        since += 1
        ok = bool(np.all(np.isfinite(A)) and np.all(np.isfinite(b)))
        if ok:
            try:
                z = np.linalg.solve(A, b)
                ok = bool(np.all(np.isfinite(z))) and np.linalg.cond(A, 1) * RCOND_MIN < 1.0
            except np.linalg.LinAlgError:
                ok = False
        if not ok:
            singular += 1
            need_new = True
            continue
        traj = np.empty((k + 1, M))
        traj[0] = z
        with np.errstate(all="ignore"):
            for j in range(k):
                traj[j + 1] = system.step(traj[j])
        act = system.patterns(traj[:k])
        if not np.array_equal(act, cand):
            key = act.tobytes()
            if key in hashes:
                loops += 1
                need_new = True
                continue
            hashes.append(key)
            cand = act
            continue
        need_new = True
        if any(k % d == 0 and np.array_equal(act[d:], act[:-d]) for d in range(1, k)):
            lower += 1
            continue
        scale = max(float(np.max(np.abs(traj[:k]))), float(np.max(np.abs(c))))
        scale = scale if scale > 0 else 1.0
        if not float(np.max(np.abs(traj[k] - traj[0]))) <= ACCEPT_RTOL * scale:
            inexact += 1
            continue
        dup = False
        nrm = float(np.max(np.abs(traj[:k])))
        for fz, fd, _ in found:
            tol = DUP_RTOL * max(nrm, float(np.max(np.abs(fz))))
            for s in range(k):
                if np.array_equal(act, np.roll(fd, -s, axis=0)) or np.all(
                    np.abs(traj[:k] - np.roll(fz, -s, axis=0)) <= tol
                ):
                    dup = True
                    break
            if dup:
                break
        if dup:
            dups += 1
            continue
        found.append((traj[:k].copy(), act.copy(), since))
        since = outer = inner = 0
    return found, {"solves": solves, "singular": singular, "loops": loops, "dups": dups}


def numba_search(system, orders, n_out, n_in, seed, pool):
    # as scyfi() searches by default: fixed points by low-rank updates where "auto" chooses them
    # (benchmarks/bench_scyfi_large.py compares both ways)
    opts = np.array([RCOND_MIN, DUP_RTOL, ACCEPT_RTOL])
    out = []
    for k in orders:
        rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(k,)))
        stream = S._FreshDraws(rng, k, system.n_bits, pool, hint=n_out * n_in)
        low_rank = k == 1 and ScyfiSettings().low_rank_for([system], "cpu", 1)
        batch = S.search_order(system, k, n_out, n_in, None, stream, opts, low_rank=low_rank)
        out.append((batch.cycles(0), batch.stats(0)["n_solves"]))
    return out


def numpy_search(system, orders, n_out, n_in, seed, pool):
    out = []
    for k in orders:
        rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(k,)))
        found, cnt = numpy_search_order(system, k, n_out, n_in, rng, pool)
        out.append((found, cnt["solves"]))
    return out


def same_result(a, b) -> bool:
    for (ra, na), (rb, nb) in zip(a, b):
        if na != nb:
            return False
        if sorted(r[1].tobytes() for r in ra) != sorted(r[1].tobytes() for r in rb):
            return False
    return True


# ================================================================= test systems
def scaled_plrnn(M: int, target: float, seed: int, n_probe: int = 32):
    """Random PLRNN whose region maps have mean spectral radius ``target``, with a planted fixed point.

    ``A_ii ~ U(0, 1)``, ``W_ij ~ N(0, 1/M)`` (zero diagonal); A and W are then scaled
    together so that the mean of ``max |eig(A + W D)|`` over ``n_probe`` random region
    patterns D (bits with probability 1/2) equals ``target`` (eigenvalues scale
    linearly with the map).  ``h = z* - A z* - W relu(z*)`` for a random
    ``z* ~ N(0, I)``, so that z* is a fixed point (expanding random maps often have
    none, and then there is nothing to time).
    """
    rng = np.random.default_rng(seed)
    a = rng.uniform(0.0, 1.0, M)
    W = rng.normal(0.0, 1.0 / np.sqrt(M), (M, M))
    np.fill_diagonal(W, 0.0)
    D = rng.random((n_probe, M)) < 0.5
    rho = np.mean([np.max(np.abs(np.linalg.eigvals(np.diag(a) + W * d[None, :]))) for d in D])
    a, W = a * (target / rho), W * (target / rho)
    z_star = rng.normal(0.0, 1.0, M)
    return pn.PLRNN.from_arrays(a, W, z_star - a * z_star - W @ np.maximum(z_star, 0.0))


def random_rich(seed: int, M: int):
    """A ~ U(-1.5, 1.5), W ~ N(0, 9) zero diagonal, h ~ N(0, 1): often chaotic, many unstable cycles."""
    rng = np.random.default_rng(seed)
    A = rng.uniform(-1.5, 1.5, M)
    W = rng.normal(0.0, 3.0, (M, M))
    np.fill_diagonal(W, 0.0)
    return pn.PLRNN.from_arrays(A, W, rng.normal(0.0, 1.0, M))


@dataclass
class Case:
    label: str
    params: object
    orders: list
    n_out: int
    n_in: int


def speed_cases(quick: bool) -> list[Case]:
    shallow = pn.ShallowPLRNN(4, 12)
    th_s = shallow.init(3, w_scale=3.0, max_norm=None)
    shallow.unpack(th_s)["h1"][:] = np.random.default_rng(3).normal(0.0, 1.0, 4)
    clipped = pn.ShallowPLRNN(3, 6, clipped=True)
    th_c = clipped.init(2, w_scale=2.0)
    return [
        Case("2-D ref., k = 16", ref_system(0.8377689, -0.64375), [16], 10, 200),
        Case("2-D ref., k = 1..10", ref_system(0.8377689, -0.64375), list(range(1, 11)), 10, 50),
        Case("2-D chaotic, k = 1..6", random_rich(31, 2), list(range(1, 7)), 10, 50),
        Case("M = 3 chaotic, k = 1..4", random_rich(11, 3), [1, 2, 3, 4], 10, 50),
        Case("M = 10, k = 1..4", scaled_plrnn(10, 0.9, 0), [1, 2, 3, 4], 10, 50),
        Case("shallow M = 4, H = 12, k = 1..3", (shallow, th_s), [1, 2, 3], 10, 50),
        Case("clipped M = 3, H = 6, k = 1..3", (clipped, th_c), [1, 2, 3], 10, 50),
        Case("M = 50, k = 1..2", scaled_plrnn(50, 0.9, 0), [1, 2], 5, 20),
        Case("M = 200, k = 1", scaled_plrnn(200, 0.9, 0), [1], 3, 10),
    ]


# ========================================================================= parts
def part_speedup(rep, quick, seed=0):
    rep.add("### Search time: numba against NumPy (same algorithm, same random candidates)")
    rep.add()
    rep.add("Median wall time of the search (all listed orders; warm-up excluded). `solves`: linear "
            "solves per run (identical on both sides); `same`: both found the same cycles with the same "
            "number of solves. The loop counts are set per case (`N_out x N_in`) to keep the NumPy side short; "
            "the per-solve work is what is compared.")
    rep.add()
    rows = []
    for case in speed_cases(quick):
        system = as_piecewise_linear(*case.params)
        pool = None
        if not system.bits_independent:
            pool = S.realised_pattern_pool(system, np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(0,))))
        nb = numba_search(system, case.orders, case.n_out, case.n_in, seed, pool)
        t_np0 = time.perf_counter()
        ref = numpy_search(system, case.orders, case.n_out, case.n_in, seed, pool)
        t_np_first = time.perf_counter() - t_np0
        same = same_result(nb, ref)
        n_solves = sum(n for _, n in nb)
        n_found = sum(len(r) for r, _ in nb)
        args = (system, case.orders, case.n_out, case.n_in, seed, pool)
        t_nb = C.time_call(lambda args=args: numba_search(*args),
                           min_time=0.3 if quick else 1.0, min_runs=3 if quick else 7, warmup=1)
        # the NumPy side is slow: its first (untimed-for-warm-up) run already tells how many repeats fit
        np_runs = 1 if quick else (3 if t_np_first < 20 else 1)
        t_np = C.time_call(lambda args=args: numpy_search(*args),
                           min_time=0.0, min_runs=np_runs, warmup=0) if np_runs > 1 else None
        t_np_med = t_np.median if t_np is not None else t_np_first
        rows.append([case.label, f"{case.n_out} x {case.n_in}", n_solves, n_found,
                     C.fmt(t_np_med * 1e3), C.fmt(t_nb.median * 1e3),
                     C.fmt(t_np_med / n_solves * 1e6), C.fmt(t_nb.median / n_solves * 1e6),
                     f"{C.fmt(t_np_med / t_nb.median)}x", "yes" if same else "**NO**"])
        print(f"  {case.label}: {t_np_med / t_nb.median:.1f}x", flush=True)
    rep.add(C.markdown_table(
        ["case", "N_out x N_in", "solves", "cycles", "NumPy ms", "numba ms", "NumPy us/solve",
         "numba us/solve", "speed-up", "same"], rows, "lrrrrrrrrl"))
    rep.add()
    sp = [float(r[8][:-1].replace(",", "")) for r in rows]
    rep.add(f"Project goal: speed-up >= {GOAL_SPEEDUP:g}x. Met in {sum(s >= GOAL_SPEEDUP for s in sp)} of "
            f"{len(sp)} cases; median speed-up {C.fmt(float(np.median(sp)))}x.")
    rep.add()
    return rows


# systems of the authors' 2-D family with a stable k-cycle, found by a simulation scan over
# (a1, w1) in [-0.5, 1] x [-1.5, -0.1] (4 initial conditions, 3000 steps, period <= 100)
FAMILY = [
    (14, 0.825, -0.5), (15, 0.825, -0.65), (16, 0.8377689, -0.64375), (17, 0.825, -0.95), (18, 0.825, -1.1),
    (19, 0.85, -0.95), (20, 0.85, -1.1), (21, 0.875, -0.9), (22, 0.875, -1.0), (24, 0.9, -1.0),
    (26, 0.9, -1.35), (30, 0.925, -1.4), (35, 0.825, -1.0), (39, 0.85, -1.0), (45, 0.875, -1.05),
    (51, 0.925, -0.75),
]


def part_family(rep, quick, seed=0):
    rep.add("### Solves per discovered cycle against k (the authors' 2-D family)")
    rep.add()
    rep.add("Systems `A = diag(a1, 0.9646)`, `W = [[0, w1], [0.5251, 0]]`, `h = (0.3730, -0.9793)` with a stable "
            "k-cycle (found by simulation); SCYFI searches order k alone (`min_order = max_order = k`) with the "
            "default loop counts, and order 1 for the fixed points. `solves to find`: solves until the last "
            "discovery (the sum of `n_solves_to_find`); `per cycle`: that divided by the cycles found; "
            "`total`: including the stopping budget N_out x N_in spent after the last discovery.")
    rep.add()
    fam = FAMILY[::2] + [FAMILY[2]] if quick else FAMILY
    fam = sorted(set(fam))
    rows, ks, per = [], [], []
    fp_solves, fp_found = 0, 0
    for k, a1, w1 in fam:
        params = ref_system(a1, w1)
        ds = scyfi(*params, k, min_order=k, seed=seed, settings=HEURISTIC)
        n = ds.sizes["cycle"]
        to_find = int(ds.n_solves_to_find.values.sum())
        stab = ", ".join(f"{(ds.stability.values == s).sum()} {s}" for s in sorted(set(ds.stability.values)))
        rows.append([k, a1, w1, n, stab, to_find, C.fmt(to_find / max(n, 1)), int(ds.n_solves.values[0]),
                     C.fmt(float(ds.seconds.values[0]))])
        ks.append(k)
        per.append(to_find / max(n, 1))
        d1 = scyfi(*params, 1, seed=seed, settings=HEURISTIC)
        fp_solves += int(d1.n_solves_to_find.values.sum())
        fp_found += d1.sizes["cycle"]
    rep.add(C.markdown_table(["k", "a1", "w1", "cycles", "classes", "solves to find", "per cycle", "total solves",
                              "seconds"], rows, "rrrrlrrrr"))
    rep.add()
    slope, icept = np.polyfit(ks, per, 1)
    rep.add(f"Fixed points (order 1) of the same {len(fam)} systems: {fp_found} found with {fp_solves} solves "
            f"({C.fmt(fp_solves / max(fp_found, 1))} per fixed point). Solves per found cycle for k >= 14: median "
            f"{C.fmt(float(np.median(per)))}, least-squares line {C.fmt(icept)} + ({C.fmt(slope)}) k: no growth "
            f"with k in this range (the authors fit about 1.9 + 0.03 k linear regions per found cycle for k = 1..50 "
            f"in their 2-D system; their count may not include the random restarts that loop back to known "
            f"cycles, which ours does).")
    rep.add()


def part_16(rep, quick, seed=0):
    rep.add("### Time to find the 16-cycles of the authors' 2-D test system")
    rep.add()
    params = ref_system(0.8377689, -0.64375)
    rows = []
    for label, kw in (("orders 1..16", {}), ("order 16 alone", {"min_order": 16})):
        times, dss = [], []
        for _ in range(1 if quick else 3):
            t0 = time.perf_counter()
            ds = scyfi(*params, 16, seed=seed, settings=HEURISTIC, **kw)
            times.append(time.perf_counter() - t0)
            dss.append(ds)
        ds = dss[0]
        i16 = np.flatnonzero(ds.order.values == 16)
        j16 = list(ds.order_k.values).index(16)
        per_solve = float(ds.seconds.values[j16]) / int(ds.n_solves.values[j16])
        to_find = ds.n_solves_to_find.values[i16]
        rows.append([label, C.fmt(float(np.median(times))), int(ds.n_solves.values.sum()),
                     ", ".join(str(int(x)) for x in to_find), C.fmt(per_solve * 1e6),
                     C.fmt(float(to_find.sum()) * per_solve * 1e3),
                     ", ".join(f"{s} ({C.fmt(float(r))})" for s, r in zip(ds.stability.values[i16],
                                                                           ds.spectral_radius.values[i16]))])
    rep.add(C.markdown_table(["search", "seconds (median)", "solves", "solves to find each 16-cycle",
                              "us per solve (k = 16)", "ms until both found", "16-cycles (spectral radius)"],
                             rows, "lrrrrrl"))
    rep.add()
    rep.add("`ms until both found`: the solves until the second discovery times the measured time per solve; "
            "the rest of the search is the stopping budget (N_out x N_in = 40 x 1080 solves per order for "
            "k >= 8 in 2-D) that makes SCYFI reasonably sure nothing is left.")
    rep.add()


def part_dimension(rep, quick, seed=0):
    rep.add("### Fixed points against the dimension M")
    rep.add()
    cap = 4000 if quick else 10000
    rep.add("Random PLRNNs built by `scaled_plrnn`: `A_ii ~ U(0, 1)`, `W_ij ~ N(0, 1/M)` (zero diagonal), "
            "then A and W scaled together so that the mean spectral radius of `A + W D` over 32 random region "
            "patterns D is 0.7 (contracting: the planted fixed point is the only one) or 1.25 (expanding; "
            "the authors report about quadratic growth of the solves); `h = z* - A z* - W relu(z*)` plants a "
            "fixed point at a random `z* ~ N(0, I)`. Order 1; contracting: N_out = 10, N_in = 50; expanding: "
            f"N_out = 10, N_in = 1000; at most {cap} solves. Medians over the systems. `solves to the first`: "
            "solves until the first fixed point was found (a system where none was found counts as the cap); "
            "`ms to the first`: that times the time per solve; `search seconds`: the whole search, which for expanding "
            "systems (many fixed points, each discovery resets the counters) usually ends at the cap.")
    rep.add()
    dims = [2, 10, 50, 100, 200] if quick else [2, 5, 10, 20, 50, 100, 200]
    n_sys = 2 if quick else 5
    rows = []
    for target, label, n_in in ((0.7, "contracting (0.7)", 50), (1.25, "expanding (1.25)", 1000)):
        for M in dims:
            first, found, secs, per, solves, hits = [], [], [], [], [], 0
            for s in range(n_sys):
                params = scaled_plrnn(M, target, 1000 * M + s)
                ds = scyfi(*params, 1, seed=seed,
                           settings=ScyfiSettings(n_outer=10, n_inner=n_in, max_solves=cap, exhaustive=False))
                n = ds.sizes["cycle"]
                found.append(n)
                first.append(int(np.min(ds.found_at_solve.values)) if n else cap)
                secs.append(float(ds.seconds.values[0]))
                solves.append(int(ds.n_solves.values[0]))
                per.append(secs[-1] / solves[-1])
                hits += int(ds.hit_limit.values[0])
            n_none = sum(f == 0 for f in found)
            med_first = float(np.median(first))
            rows.append([label, M, C.fmt(float(np.median(found))), f"{n_sys - n_none}/{n_sys}", C.fmt(med_first),
                         C.fmt(float(np.median(solves))), f"{hits}/{n_sys}", C.fmt(float(np.median(per)) * 1e6),
                         C.fmt(med_first * float(np.median(per)) * 1e3), C.fmt(float(np.median(secs)))])
            print(f"  {label} M={M}: {rows[-1]}", flush=True)
    rep.add(C.markdown_table(["systems", "M", "fixed points", "systems with one", "solves to the first",
                              "solves in all", "hit max_solves", "us per solve", "ms to the first", "search seconds"],
                             rows, "lrrrrrrrrr"))
    rep.add()


def part_recall(rep, quick):
    rep.add("### Recall of the default loop counts (against brute force)")
    rep.add()
    rep.add("Random 'rich' PLRNNs (`A ~ U(-1.5, 1.5)`, `W ~ N(0, 9)`, `h ~ N(0, 1)`: often chaotic, with many "
            "unstable cycles) that have at least two cycles of order > 2; SCYFI's heuristic (`exhaustive=False`) "
            "with the default counters and two seeds each, against `brute_force_cycles` (with the default "
            "`exhaustive=\"auto\"` these orders are enumerated: see \"Completeness\" below).")
    rep.add()
    rows = []
    for M, K in ((2, 7), (3, 5)):
        want = 4 if quick else 12
        systems, seed = [], 10_000
        while len(systems) < want:
            params = random_rich(seed, M)
            seed += 1
            bf = brute_force_cycles(*params, K)
            if (bf.order.values > 2).sum() >= 2:
                systems.append((params, bf))
        tot = np.zeros(K + 1, int)
        hit = np.zeros(K + 1, int)
        secs = 0.0
        for params, bf in systems:
            ref = {(int(bf.order[i]), bf.patterns.values[i].tobytes()) for i in range(bf.sizes["cycle"])}
            for s in range(2):
                ds = scyfi(*params, K, seed=s, settings=HEURISTIC)
                secs += float(ds.seconds.values.sum())
                got = {(int(ds.order[i]), ds.patterns.values[i].tobytes()) for i in range(ds.sizes["cycle"])}
                for k, _ in ref:
                    tot[k] += 1
                for k, _ in ref & got:
                    hit[k] += 1
        per_k = ", ".join(f"k={k}: {hit[k]}/{tot[k]}" for k in range(1, K + 1) if tot[k])
        rows.append([M, K, len(systems), f"{hit.sum()}/{tot.sum()} ({C.fmt(100 * hit.sum() / tot.sum())}%)", per_k,
                     C.fmt(secs / (2 * len(systems)))])
    rep.add(C.markdown_table(["M", "max order", "systems", "found / present", "per order", "seconds per search"],
                             rows, "rrrrlr"))
    rep.add()
    rep.add("The misses are unstable cycles of chaotic maps whose regions the jump dynamics rarely enter: in such "
            "systems SCYFI needed up to ~2 x 2^(M k) solves for the last cycle of an order (measured while choosing "
            "the defaults), i.e. no better than enumeration. Raise `n_outer`/`n_inner` (or use `brute_force_cycles` "
            "for small M k) when every saddle matters; attracting cycles are found quickly (see the tests).")
    rep.add()


_STARTUP_CODE = r"""
import json, sys, time
t0 = time.perf_counter()
sys.path.insert(0, sys.argv[1])
from plrnn_numba import PLRNN, ShallowPLRNN
from plrnn_numba.dynamics import scyfi
t1 = time.perf_counter()
scyfi(*PLRNN.from_arrays(A=[0.5, 0.9], W=[[0, -0.6], [0.5, 0]], h=[0.3, -0.9]), 2)
t2 = time.perf_counter()
scyfi(*ShallowPLRNN.from_arrays(A=[0.5, 0.9], W1=[[1.0], [0.5]], W2=[[1.0, -1.0]], h1=[0.1, 0.2], h2=[0.3]), 2)
t3 = time.perf_counter()
print(json.dumps({"import": t1 - t0, "plrnn": t2 - t1, "shallow": t3 - t2}))
"""


def startup_run(cache_dir: str) -> dict:
    env = dict(os.environ, NUMBA_CACHE_DIR=cache_dir)
    env.pop("PLRNN_NUMBA_CACHE", None)
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", _STARTUP_CODE, str(ROOT)], env=env,
                          capture_output=True, text=True, timeout=900)
    if proc.returncode != 0:
        raise RuntimeError(f"start-up subprocess failed:\n{proc.stderr}")
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    out["process"] = time.perf_counter() - t0
    return out


def part_startup(rep, quick):
    rep.add("### Compile time and cached start-up")
    rep.add()
    cache_dir = tempfile.mkdtemp(prefix="plrnn_numba_cache_")
    try:
        cold = startup_run(cache_dir)
        warm = [startup_run(cache_dir) for _ in range(1 if quick else 3)]
    finally:
        shutil.rmtree(cache_dir, ignore_errors=True)
    w = {k: float(np.median([x[k] for x in warm])) for k in cold}
    rows = [["first run, empty cache (compiles)"] + [C.fmt(cold[k]) for k in ("import", "plrnn", "shallow", "process")],
            ["later runs (cache), median"] + [C.fmt(w[k]) for k in ("import", "plrnn", "shallow", "process")]]
    rep.add(C.markdown_table(["new process", "import s", "first PLRNN scyfi s", "first shallow scyfi s",
                              "process s"], rows, "lrrrr"))
    rep.add()
    rep.add("All SCYFI kernels have explicit signatures and the model-family kernels reach the engine through "
            "their native addresses, so one compiled engine serves every family and numba's disk cache "
            "serves new processes (`NUMBA_CACHE_DIR` set to a fresh directory here).")
    rep.add()


def part_notes(rep):
    rep.add("### Notes")
    rep.add()
    for line in (
        "- Where the time goes for small systems (M of 2 to ~10): per candidate, the k region maps, the k-fold "
        "product, a hand-written LU with partial pivoting, a Hager/Higham estimate of the condition number "
        "(O(M^2) per iteration, a few iterations), the roll-out with the true map and a 64-bit hash of the "
        "visited patterns (loop detection). NumPy pays ~1-10 us of call overhead for each of these small "
        "operations, numba a few ns; this is the regime of the >= 20x goal.",
        "- Measured while writing the kernels (numba 0.68, this machine): a call through a first-class "
        "function value costs ~30 ns, and so does a `reshape` of a parameter slice (~40 ns) or a row view "
        "passed to a non-inlined helper: as much as the whole 2 x 2 region map. Hence the model-family kernels "
        "work on a whole candidate sequence per call (2 indirect calls per solve), index the flat parameter "
        "vector directly, and the small linear-algebra helpers are inlined. Slice arithmetic such as "
        "`LU[j:, j:] -= upd` cost ~13 s of compile time and was replaced by loops.",
        "- From M ~ 50 on, both sides spend their time in O(k M^3) dense linear algebra (products through BLAS, "
        "LU: numba's is blocked with BLAS trailing updates; NumPy's is LAPACK, and its exact 1-norm condition "
        "number costs an inverse), so the ratio drops to ~3-5x; the >= 20x goal is not met there and cannot be "
        "by a better loop. A batched search over many candidates at once is the way to use more of the "
        "hardware at large M (see \"Batched SCYFI\" below).",
        "- The NumPy reference uses the exact 1-norm condition number where the kernel uses Hager's estimate; "
        "with `rcond_min = 1e-12` no case here is near the threshold, and both sides make identical decisions "
        "(`same` column).",
        "- Timings were taken on a shared 2-core machine (see the load average above); the CPU-bound "
        "ratios are more reliable than the absolute times.",
    ):
        rep.add(line)
    rep.add()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="fewer systems and repeats (a few minutes)")
    ap.add_argument("--out", metavar="FILE", help="also write the markdown report to FILE")
    ap.add_argument("--skip", nargs="*", default=[],
                    choices=["speedup", "family", "16", "dimension", "recall", "startup"], help="parts to skip")
    args = ap.parse_args(argv)
    numba.set_num_threads(1)
    pn.config.set_num_threads(1)
    if hasattr(pn.config, "limit_blas_threads"):
        pn.config.limit_blas_threads()

    rep = C.Report()
    rep.add("## SCYFI (numba) vs NumPy, and SCYFI's scaling")
    rep.add()
    rep.add(f"Generated by `benchmarks/bench_scyfi.py` on {time.strftime('%Y-%m-%d %H:%M %Z')}"
            + (" (`--quick`: fewer systems and repeats)" if args.quick else "") + ".")
    rep.add()
    rep.add(f"- **command**: `{C.command_line()}`")
    rep.add(C.key_value_list(C.machine_info()))
    vers = C.versions(("numpy", "numba"))
    vers["BLAS (numpy)"] = C.blas_info()
    vers["plrnn_numba"] = f"{pn.__version__} (git {C.git_revision(ROOT)})"
    rep.add(C.key_value_list(vers))
    rep.add(f"- **threads**: numba 1, OPENBLAS/MKL/OMP_NUM_THREADS={os.environ['OPENBLAS_NUM_THREADS']}")
    rep.add()
    # compile outside the timings
    scyfi(*ref_system(0.8377689, -0.64375), 2)
    scyfi(*pn.ShallowPLRNN.from_arrays(A=[0.5, 0.9], W1=[[1.0], [0.5]], W2=[[1.0, -1.0]], h1=[0.1, 0.2], h2=[0.3]), 2)
    t0 = time.perf_counter()
    if "speedup" not in args.skip:
        part_speedup(rep, args.quick)
    if "16" not in args.skip:
        part_16(rep, args.quick)
    if "family" not in args.skip:
        part_family(rep, args.quick)
    if "dimension" not in args.skip:
        part_dimension(rep, args.quick)
    if "recall" not in args.skip:
        part_recall(rep, args.quick)
    if "startup" not in args.skip:
        part_startup(rep, args.quick)
    part_notes(rep)
    return C.finish_report(rep, t0, args.out)


if __name__ == "__main__":
    sys.exit(main())
