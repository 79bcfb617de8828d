#!/usr/bin/env python
"""Benchmark: one loss-and-gradient call of a model at several git revisions of the package.

Each revision is checked out into a temporary git worktree and timed in its
own process (pinned to one CPU, one thread, numba's cache in a fresh
directory per revision so nothing compiled by another revision is reused):
warm-up, then the median of repeated calls of ``loss_and_grad`` on the same
random problem (the problem is built with NumPy only, so every revision sees
the same data).

With ``--same-process`` every revision is imported into one process instead
(each copied under its own package name, ``plrnn_numba_r0``, ``plrnn_numba_r1``,
...) and the revisions are timed in alternating rounds, the order rotated each
round: on a machine whose speed drifts between processes this resolves
differences of a few per cent that separate processes do not.

Usage::

    python benchmarks/compare_revisions.py 1eab232 HEAD --model tanh --sizes 32 128
    python benchmarks/compare_revisions.py b1fbcf6 HEAD --model lstm --sizes 50 --T 400 --B 100 \\
        --same-process --rounds 24 --reps 2

This is a benchmark, not a test: timings depend on the machine and on what
else runs on it.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common as C  # noqa: E402

ROOT = C.repo_root()

# the problem every revision times (NumPy only, so every revision sees the same data):
# make_problem(pn, ...) returns the warmed-up call f() of package pn
_PROBLEM = r"""
def make_problem(pn, kind, N, T, B):
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
    return f
"""

# run in the revision's process: build the problem, time the call, print JSON
_TIMER = r"""
import json, sys, time
sys.path.insert(0, sys.argv[1])
import numpy as np
import plrnn_numba as pn
kind, N, T, B, reps = sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6])
""" + _PROBLEM + r"""
f = make_problem(pn, kind, N, T, B)
ts = []
for _ in range(reps):
    t = time.perf_counter(); f(); ts.append(time.perf_counter() - t)
print(json.dumps({"median_ms": 1e3 * float(np.median(ts)), "loss": f().loss}))
"""

# --same-process: every revision's copy imported into one process, timed in rotating rounds
_ROUNDS_TIMER = r"""
import importlib, json, sys, time
sys.path.insert(0, sys.argv[1])
import numpy as np
kind = sys.argv[2]
N, T, B, reps, rounds = (int(a) for a in sys.argv[3:8])
names = sys.argv[8:]
""" + _PROBLEM + r"""
fs = [make_problem(importlib.import_module(n), kind, N, T, B) for n in names]
per_round = [[] for _ in names]
for r in range(rounds):
    k = r % len(names)
    for i in list(range(k, len(names))) + list(range(k)):
        t = time.perf_counter()
        for _ in range(reps):
            fs[i]()
        per_round[i].append(1e3 * (time.perf_counter() - t) / reps)
print(json.dumps([{"median_ms": float(np.median(m)), "min_ms": float(min(m)), "loss": f().loss}
                  for m, f in zip(per_round, fs)]))
"""


def _child_env() -> dict:
    env = dict(os.environ, NUMBA_CACHE_DIR=tempfile.mkdtemp(prefix="numba-cache-"), NUMBA_NUM_THREADS="1")
    for var in C.THREAD_ENV_VARS:
        env[var] = "1"
    return env


def _pinned(cmd: list[str], cpu: int | None) -> list[str]:
    return cmd if cpu is None else ["taskset", "-c", str(cpu)] + cmd


def run_revision(path: Path, kind: str, N: int, T: int, B: int, reps: int, cpu: int | None) -> dict:
    cmd = [sys.executable, "-c", _TIMER, str(path), kind, str(N), str(T), str(B), str(reps)]
    out = subprocess.run(_pinned(cmd, cpu), env=_child_env(), capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def renamed_copy(path: Path, dest: Path, name: str) -> None:
    """Copy the package of the worktree ``path`` to ``dest/name``, every ``plrnn_numba`` in its sources renamed."""
    pattern = re.compile(r"\bplrnn_numba\b")
    for src in (path / "plrnn_numba").rglob("*"):
        if "__pycache__" in src.parts or src.is_dir():
            continue
        out = dest / name / src.relative_to(path / "plrnn_numba")
        out.parent.mkdir(parents=True, exist_ok=True)
        if src.suffix == ".py":
            out.write_text(pattern.sub(name, src.read_text()))
        else:
            shutil.copy2(src, out)


def run_same_process(paths: list[Path], tmp: Path, kind: str, N: int, T: int, B: int, reps: int, rounds: int,
                     cpu: int | None) -> list[dict]:
    names = [f"plrnn_numba_r{i}" for i in range(len(paths))]
    dest = tmp / "same-process"
    if not dest.exists():
        for path, name in zip(paths, names):
            renamed_copy(path, dest, name)
    cmd = [sys.executable, "-c", _ROUNDS_TIMER, str(dest), kind, str(N), str(T), str(B), str(reps), str(rounds),
           *names]
    out = subprocess.run(_pinned(cmd, cpu), env=_child_env(), capture_output=True, text=True, check=True)
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
    ap.add_argument("--same-process", action="store_true",
                    help="all revisions in one process, timed in alternating rounds (see above)")
    ap.add_argument("--rounds", type=int, default=24, help="rounds of --same-process (each: --reps calls per revision)")
    ap.add_argument("--out", metavar="FILE", help="also write the markdown report to FILE")
    args = ap.parse_args(argv)
    cpu = None if args.cpu < 0 else args.cpu
    rep = C.Report()
    rep.add(f"### loss_and_grad of the {args.model} model across revisions")
    rep.add()
    rep.add(f"- **command**: `{C.command_line()}`")
    rep.add(f"- **BLAS**: {C.blas_info()}")
    if args.same_process:
        rep.add(f"- T = {args.T}, B = {args.B}, one thread, pinned to CPU {cpu}; all revisions in one process, "
                f"{args.rounds} rounds of {args.reps} calls each, the order rotated every round; median and "
                "minimum over the rounds of the mean time of a call")
    else:
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
                if args.same_process:
                    results = run_same_process([path for _sha, path in paths.values()], Path(tmp), args.model, N,
                                               args.T, args.B, args.reps, args.rounds, cpu)
                for i, (rev, (sha, path)) in enumerate(paths.items()):
                    if args.same_process:
                        r = results[i]
                    else:
                        r = run_revision(path, args.model, N, args.T, args.B, args.reps, cpu)
                    base = base or r
                    if abs(r["loss"] - base["loss"]) > 1e-9 * abs(base["loss"]):
                        raise AssertionError(f"revision {sha} computes another loss ({r['loss']} vs {base['loss']})")
                    row = [N, f"{rev} ({sha})", C.fmt(r["median_ms"])]
                    if args.same_process:
                        row.append(C.fmt(r["min_ms"]))
                    rows.append(row + [f"{base['median_ms'] / r['median_ms']:.2f}x"])
                    print(f"  N={N} {sha}: {r['median_ms']:.3f} ms", file=sys.stderr, flush=True)
        finally:
            for _sha, path in paths.values():
                subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(path)],
                               capture_output=True)
    if args.same_process:
        rep.add(C.markdown_table(["N", "revision", "median ms", "min ms", "speed-up over the first (medians)"],
                                 rows, align="rlrrr"))
    else:
        rep.add(C.markdown_table(["N", "revision", "ms", "speed-up over the first"], rows, align="rlrr"))
    rep.add()
    if args.out:
        rep.write(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
