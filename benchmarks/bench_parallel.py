#!/usr/bin/env python
"""Benchmark: batch-parallel engines on all cores against one thread.

Each engine runs independent batch items (sequences, trajectories, initial
conditions) on numba's threads with ``n_threads=...``; the results equal the
serial ones (summed gradients up to the order of additions).  Timed here:
``loss_and_grad`` (PLRNN and tanh RNN), ``flossing_loss_and_grad`` and
``lyapunov_spectrum``, each with ``n_threads=1`` and with every core, in
alternating blocks.  BLAS stays on one thread per numba thread (the package's
default), so the speed-up is that of the batch split alone.

Usage::

    python benchmarks/bench_parallel.py [--quick] [--out FILE]

Needs an otherwise idle machine: a parallel region waits for its slowest
thread, so one busy core erases the speed-up.
"""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common as C  # noqa: E402

C.limit_threads(1)  # BLAS on one thread (numba's own threads are the parallelism measured)
ROOT = C.add_repo_to_path()

import argparse  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

import plrnn_numba as pn  # noqa: E402
from plrnn_numba.dynamics.flossing import flossing_loss_and_grad  # noqa: E402


def cases(quick: bool):
    """(label, callable taking n_threads)."""
    rng = np.random.default_rng(0)
    T = 100 if quick else 200
    out = []
    for name, model in (("PLRNN M=64", pn.PLRNN(dim=64)), ("tanh RNN N=64", pn.VanillaRNN(n_hidden=64, n_inputs=1))):
        B = 64
        theta = model.init(0)
        inputs = None if model.n_inputs == 0 else rng.standard_normal((B, T, 1))
        batch = pn.Batch(targets=rng.standard_normal((B, T, 3)), inputs=inputs, z0=rng.standard_normal((B, 64)))
        out.append((f"loss_and_grad, {name}, T={T}, B={B}",
                    lambda n, model=model, theta=theta, batch=batch: pn.loss_and_grad(
                        model, theta, batch, readout=pn.IdentityReadout(3), n_threads=n)))
    rnn = pn.VanillaRNN(n_hidden=80)
    theta = rnn.init(0, g=2.0)
    z0 = rng.standard_normal((4, 80))
    out.append(("flossing_loss_and_grad, N=80, k=40, T=55, batch 4",
                lambda n: flossing_loss_and_grad(rnn, theta, 40, 0.0, z0=z0, n_steps=55, n_threads=n)))
    out.append((f"lyapunov_spectrum, N=80, k=20, {1000 if quick else 4000} steps, 4 initial conditions",
                lambda n: pn.dynamics.lyapunov_spectrum(rnn, theta, k=20, n_steps=1000 if quick else 4000,
                                                        n_transient=100, n_transient_ons=100, n_init=4, seed=0,
                                                        n_threads=n)))
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="shorter runs and fewer repeats (a smoke run)")
    ap.add_argument("--out", metavar="FILE", help="also write the markdown report to FILE")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    n_all = pn.config.get_num_threads()
    min_time, min_runs, rounds = (0.2, 3, 1) if args.quick else (2.0, 7, 3)
    rep = C.Report()
    rep.add("## Batch-parallel engines: all cores against one thread")
    rep.add()
    rep.add(f"- **command**: `{C.command_line()}`")
    rep.add(C.key_value_list(C.machine_info()))
    rep.add(f"- **numba threads**: {n_all}; BLAS one thread per numba thread")
    rep.add(f"- **load average before** (1, 5, 15 min): {C.load_average()}")
    rep.add()
    rows = []
    for label, fn in cases(args.quick):
        one, alln = C.time_interleaved([lambda fn=fn: fn(1), lambda fn=fn: fn(n_all)], rounds=rounds,
                                       min_time=min_time, min_runs=min_runs)
        rows.append([label, C.fmt(one.median * 1e3), C.fmt(alln.median * 1e3), f"{one.median / alln.median:.2f}x"])
        print(f"  {label}: {one.median * 1e3:.2f} ms / {alln.median * 1e3:.2f} ms", file=sys.stderr, flush=True)
    rep.add(f"Median wall time per call (alternating blocks; at least {min_runs} runs and {min_time:g} s each).")
    rep.add()
    rep.add(C.markdown_table(["engine and case", "1 thread ms", f"{n_all} threads ms", "speed-up"], rows,
                             align="lrrr"))
    rep.add()
    rep.add(f"Load average after: {C.load_average()}.")
    rep.add()
    return C.finish_report(rep, t0, args.out)


if __name__ == "__main__":
    sys.exit(main())
