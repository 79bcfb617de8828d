#!/usr/bin/env python
"""Benchmark: one loss-and-gradient call of a model at several git revisions of the package.

Each revision is checked out into a temporary git worktree and timed in its
own process (pinned to one CPU, one thread, numba's cache in a fresh
directory per revision so nothing compiled by another revision is reused):
warm-up, then the median of repeated calls of ``loss_and_grad`` on the same
random problem (the problem is built with NumPy only, so every revision sees
the same data).

Usage::

    python benchmarks/compare_revisions.py 1eab232 HEAD --model tanh --sizes 32 128

This is a benchmark, not a test: timings depend on the machine and on what
else runs on it.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common as C  # noqa: E402

ROOT = C.repo_root()

# run in the revision's process: build the problem, time the call, print JSON
_TIMER = r"""
import json, sys, time
sys.path.insert(0, sys.argv[1])
import numpy as np
import plrnn_numba as pn
kind, N, T, B, reps = sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6])
rng = np.random.default_rng(0)
if kind == "tanh":
    model = pn.VanillaRNN(n_hidden=N, n_inputs=1)
elif kind == "lstm":
    model = pn.LSTM(n_hidden=N, n_inputs=1)
else:
    model = pn.PLRNN(dim=N, n_inputs=1)
theta = model.init(0)
batch = pn.Batch(targets=rng.standard_normal((B, T, 3)), inputs=rng.standard_normal((B, T, 1)),
                 z0=0.5 * rng.standard_normal((B, model.dim)))
readout = pn.IdentityReadout(3)
f = lambda: pn.loss_and_grad(model, theta, batch, readout=readout)
f(); f()
ts = []
for _ in range(reps):
    t = time.perf_counter(); f(); ts.append(time.perf_counter() - t)
print(json.dumps({"median_ms": 1e3 * float(np.median(ts)), "loss": f().loss}))
"""


def run_revision(path: Path, kind: str, N: int, T: int, B: int, reps: int, cpu: int | None) -> dict:
    env = dict(os.environ, NUMBA_CACHE_DIR=tempfile.mkdtemp(prefix="numba-cache-"), NUMBA_NUM_THREADS="1")
    for var in C.THREAD_ENV_VARS:
        env[var] = "1"
    cmd = [sys.executable, "-c", _TIMER, str(path), kind, str(N), str(T), str(B), str(reps)]
    if cpu is not None:
        cmd = ["taskset", "-c", str(cpu)] + cmd
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("revisions", nargs="+", help="git revisions (the first is the baseline)")
    ap.add_argument("--model", choices=("tanh", "lstm", "plrnn"), default="tanh")
    ap.add_argument("--sizes", type=int, nargs="+", default=[32, 128], help="state sizes N (hidden units)")
    ap.add_argument("--T", type=int, default=200)
    ap.add_argument("--B", type=int, default=16)
    ap.add_argument("--reps", type=int, default=30)
    ap.add_argument("--cpu", type=int, default=0, help="pin each run to this CPU (-1: no pinning)")
    ap.add_argument("--out", metavar="FILE", help="also write the markdown report to FILE")
    args = ap.parse_args(argv)
    cpu = None if args.cpu < 0 else args.cpu
    rep = C.Report()
    rep.add(f"### loss_and_grad of the {args.model} model across revisions")
    rep.add()
    rep.add(f"- **command**: `{C.command_line()}`")
    rep.add(f"- **BLAS**: {C.blas_info()}")
    rep.add(f"- T = {args.T}, B = {args.B}, one thread, pinned to CPU {cpu}; median of {args.reps} calls")
    rep.add()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        paths = {}
        for rev in args.revisions:
            sha = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", rev], capture_output=True,
                                 text=True, check=True).stdout.strip()
            path = Path(tmp) / sha
            subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(path), sha],
                           capture_output=True, check=True)
            paths[rev] = (sha, path)
        try:
            for N in args.sizes:
                base = None
                for rev, (sha, path) in paths.items():
                    r = run_revision(path, args.model, N, args.T, args.B, args.reps, cpu)
                    base = base or r
                    if abs(r["loss"] - base["loss"]) > 1e-9 * abs(base["loss"]):
                        raise AssertionError(f"revision {sha} computes another loss ({r['loss']} vs {base['loss']})")
                    rows.append([N, f"{rev} ({sha})", C.fmt(r["median_ms"]),
                                 f"{base['median_ms'] / r['median_ms']:.2f}x"])
                    print(f"  N={N} {sha}: {r['median_ms']:.3f} ms", file=sys.stderr, flush=True)
        finally:
            for _sha, path in paths.values():
                subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(path)],
                               capture_output=True)
    rep.add(C.markdown_table(["N", "revision", "ms", "speed-up over the first"], rows, align="rlrr"))
    rep.add()
    if args.out:
        rep.write(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
