#!/usr/bin/env python
"""Benchmark: loss and gradient of the leaky rate RNN, plrnn_numba against PyTorch autograd.

The network of Dinc et al., "A ghost mechanism: an analytical model of abrupt
learning": ``x' = (1 - a) x + a tanh(W x + b)`` with N = 100 units, a = 0.5,
x(0) = -0.3 for every unit, T = 40 steps of the delayed-activation task
(target 0 for 20 steps, then 1), loss = mean over (batch, time) of
``(sigmoid(y) - target)^2``:

* rank 1: ``W = m n^T`` (m, n ~ N(0, 1/N), b = 0) with the tied readout
  ``y = c (n . x - kappa*)``, c = 10, kappa* = 1 (the authors' setup);
* full: a full trainable W (``W_ij ~ N(0, 1/N)``) with the trainable readout
  ``y = w . x + b_out`` (the readout of their sloppy-ranks experiment).

Each for the authors' single trial (B = 1) and a batch of B = 16 (initial
states -0.3 plus N(0, 0.01^2) noise, so the items differ).

Both sides compute the same float64 loss and its gradient with respect to
every parameter and the initial states, on one thread each, in the same
process.  Before timing, the results are checked equal (rtol 1e-8).  Torch
runs eagerly and compiled (``torch.compile``, default inductor backend); the
table reports both and the speed-up against the faster one.  First-call times
(numba: kernels from the on-disk cache or compiled; torch.compile: tracing and
compilation) are reported separately.

Usage::

    python benchmarks/bench_rate_rnn.py [--quick] [--no-compile] [--out FILE]

This is a benchmark, not a test: timings depend on the machine and on what
else runs on it.
"""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common as C  # noqa: E402

C.limit_threads(1)  # before numpy / numba / torch are imported
ROOT = C.add_repo_to_path()

import tempfile  # noqa: E402

# torch.compile keeps compiled graphs on disk; a fresh directory makes its first call a cold compile
# (as numba's is in the start-up measurement below)
_INDUCTOR_CACHE = tempfile.TemporaryDirectory(prefix="bench_rate_inductor_")
os.environ["TORCHINDUCTOR_CACHE_DIR"] = _INDUCTOR_CACHE.name

import argparse  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from dataclasses import dataclass  # noqa: E402

import numba  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

import plrnn_numba as pn  # noqa: E402
from plrnn_numba.models import RateRNN  # noqa: E402
from plrnn_numba.readouts import LatentReadout  # noqa: E402

N_UNITS, T_HALF, ALPHA = 100, 20, 0.5
C_CONF, KAPPA_STAR, X0 = 10.0, 1.0, -0.3
RTOL = 1e-8
NOISY_SPREAD = 0.5


@dataclass
class Case:
    rank: int | None  # 1 or None (full W)
    B: int

    @property
    def label(self) -> str:
        return f"{'rank 1' if self.rank == 1 else 'full W'}, B = {self.B}"

    @property
    def readout_label(self) -> str:
        return "sigmoid(c (n . x - 1))" if self.rank == 1 else "sigmoid(w . x + b_out)"


def make_problem(case: Case, seed: int = 0):
    """Model, theta, batch, readout and readout parameters (the torch side copies them)."""
    rng = np.random.default_rng(seed)
    model = RateRNN(N_UNITS, rank=case.rank, alpha=ALPHA)
    theta = model.init(seed)  # m, n (or W) ~ N(0, 1/N), b = 0
    y = np.r_[np.zeros(T_HALF), np.ones(T_HALF)]
    targets = np.broadcast_to(y[None, :, None], (case.B, 2 * T_HALF, 1)).copy()
    z0 = np.full((case.B, N_UNITS), X0)
    if case.B > 1:
        z0 += rng.normal(0.0, 0.01, z0.shape)
    batch = pn.Batch(targets=targets, z0=z0)
    if case.rank == 1:
        readout, ro = LatentReadout(c=C_CONF, kappa_star=KAPPA_STAR), None
    else:
        readout = pn.LinearReadout(1)
        ro = readout.init(N_UNITS, seed)
    return model, theta, batch, readout, ro


def numba_fn(model, theta, batch, readout, ro):
    def run():
        return pn.loss_and_grad(model, theta, batch, readout=readout, readout_params=ro, loss="sigmoid_mse")

    return run


def torch_fns(case: Case, model, theta, batch, ro, compiled: bool):
    """``run()`` (loss and backward) and ``result()`` (loss, theta gradient, readout gradient, z0 gradient).

    Written as a PyTorch user who cares about speed would: one fused ``addmm``
    for ``W x + b`` (for rank one, ``x @ n`` then ``addmm`` with ``m``),
    ``torch.lerp`` for the leak ``x + a (tanh(h) - x)``, the readout applied
    once to the stacked states, one reduction for the loss.
    """
    d = model.unpack(theta)
    t64 = dict(dtype=torch.float64)
    b = torch.tensor(d["b"], **t64, requires_grad=True)
    z0 = torch.tensor(batch.z0, **t64, requires_grad=True)
    y = torch.tensor(batch.targets[..., 0], **t64)
    T = y.shape[1]
    if case.rank == 1:
        m = torch.tensor(d["m"], **t64, requires_grad=True)  # (N, 1)
        n = torch.tensor(d["n"], **t64, requires_grad=True)  # (1, N)
        leaves = (m, n, b)
        ro_leaves = ()
    else:
        W = torch.tensor(d["W"], **t64, requires_grad=True)
        w = torch.tensor(ro[:-1], **t64, requires_grad=True)
        b_out = torch.tensor(ro[-1:], **t64, requires_grad=True)
        leaves = (W, b)
        ro_leaves = (w, b_out)

    def loss_rank1(m, n, b, z0, y):
        x = z0
        mt, nt = m.t(), n.t()
        xs = []
        for _ in range(T):
            x = torch.lerp(x, torch.tanh(torch.addmm(b, x @ nt, mt)), ALPHA)
            xs.append(x)
        kappa = (torch.stack(xs, 1) @ nt).squeeze(-1)  # (B, T)
        o = torch.sigmoid(C_CONF * (kappa - KAPPA_STAR))
        return ((o - y) ** 2).mean()

    def loss_full(W, b, w, b_out, z0, y):
        x = z0
        Wt = W.t()
        xs = []
        for _ in range(T):
            x = torch.lerp(x, torch.tanh(torch.addmm(b, x, Wt)), ALPHA)
            xs.append(x)
        o = torch.sigmoid(torch.stack(xs, 1) @ w + b_out)
        return ((o - y) ** 2).mean()

    fn = loss_rank1 if case.rank == 1 else loss_full
    if compiled:
        fn = torch.compile(fn)
    args = (*leaves, *ro_leaves, z0, y)

    def run():
        for p in (*leaves, *ro_leaves, z0):
            p.grad = None
        loss = fn(*args)
        loss.backward()
        return loss

    def result():
        loss = run()
        g = torch.cat([p.grad.reshape(-1) for p in leaves]).numpy().copy()
        g_ro = torch.cat([p.grad.reshape(-1) for p in ro_leaves]).numpy().copy() if ro_leaves else np.zeros(0)
        return float(loss.detach()), g, g_ro, z0.grad.numpy().copy()

    return run, result


def check_agreement(label: str, r, torch_result) -> float:
    """Compare loss and gradients; the largest difference relative to the largest entry."""
    if not r.finite:
        raise AssertionError(f"{label}: numba loss/gradient not finite")
    t_loss, t_grad, t_gro, t_gz0 = torch_result
    np.testing.assert_allclose(r.loss, t_loss, rtol=RTOL, err_msg=f"{label}: loss")
    diffs = [abs(r.loss - t_loss) / abs(t_loss)]
    for name, a, b in (("grad", r.grad, t_grad), ("grad_readout", r.grad_readout, t_gro),
                       ("grad_z0", r.grad_z0, t_gz0)):
        if a.shape != b.shape:
            raise AssertionError(f"{label}: {name} shapes differ: numba {a.shape}, torch {b.shape}")
        if a.size == 0:
            continue
        scale = np.max(np.abs(b))
        np.testing.assert_allclose(a, b, rtol=RTOL, atol=RTOL * 1e-3 * scale, err_msg=f"{label}: {name}")
        diffs.append(float(np.max(np.abs(a - b)) / scale))
    return max(diffs)


_STARTUP_CODE = r"""
import json, sys, time
t0 = time.perf_counter()
sys.path.insert(0, sys.argv[1])
import numpy as np
import plrnn_numba as pn
from plrnn_numba.models import RateRNN
from plrnn_numba.readouts import LatentReadout
t1 = time.perf_counter()
y = np.r_[np.zeros(20), np.ones(20)][None, :, None]
batch = pn.Batch(targets=y, z0=np.full((1, 100), -0.3))
m = RateRNN(100, rank=1)
pn.loss_and_grad(m, m.init(0), batch, readout=LatentReadout(10.0, 1.0), loss="sigmoid_mse")
t2 = time.perf_counter()
f = RateRNN(100)
ro = pn.LinearReadout(1)
pn.loss_and_grad(f, f.init(0), batch, readout=ro, readout_params=ro.init(100, 0), loss="sigmoid_mse")
t3 = time.perf_counter()
print(json.dumps({"import": t1 - t0, "rank1": t2 - t1, "full": t3 - t2}))
"""


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="fewer repeats (a smoke run)")
    ap.add_argument("--no-compile", action="store_true", help="skip torch.compile (eager torch only)")
    ap.add_argument("--no-startup", action="store_true", help="skip numba's compile / cached start-up measurement")
    ap.add_argument("--out", metavar="FILE", help="also write the markdown report to FILE")
    args = ap.parse_args(argv)

    C.single_thread_torch_numba()
    min_time, min_runs, rounds = (0.3, 5, 1) if args.quick else (1.5, 15, 3)
    rep = C.Report()
    rep.add("## Rate RNN (ghost mechanism): analytic BPTT (numba) vs PyTorch autograd")
    rep.add()
    rep.add(f"Generated by `benchmarks/bench_rate_rnn.py` on {time.strftime('%Y-%m-%d %H:%M %Z')}"
            + (" (`--quick`: fewer repeats)" if args.quick else "") + ".")
    rep.add()
    rep.add(f"- **command**: `{C.command_line()}`")
    rep.add(C.key_value_list(C.machine_info()))
    vers = C.versions(("numpy", "numba", "torch"))
    vers["BLAS (numpy)"] = C.blas_info()
    vers["plrnn_numba"] = f"{pn.__version__} (git {C.git_revision(ROOT)})"
    rep.add(C.key_value_list(vers))
    rep.add(f"- **threads**: torch {torch.get_num_threads()} (interop {torch.get_num_interop_threads()}), "
            f"numba {numba.get_num_threads()}, OPENBLAS/MKL/OMP_NUM_THREADS={os.environ['OPENBLAS_NUM_THREADS']}")
    rep.add()

    cases = [Case(rank, B) for rank in (1, None) for B in (1, 16)]
    rows, first_rows = [], []
    for case in cases:
        model, theta, batch, readout, ro = make_problem(case)
        nb = numba_fn(model, theta, batch, readout, ro)
        t_first_nb, r = C.timed_first_call(nb)
        te_run, te_result = torch_fns(case, model, theta, batch, ro, compiled=False)
        t_first_eager, _ = C.timed_first_call(te_run)
        diff = check_agreement(f"{case.label} (eager)", r, te_result())
        fns, names = [te_run, nb], ["eager", "numba"]
        t_first_comp = float("nan")
        if not args.no_compile:
            tc_run, tc_result = torch_fns(case, model, theta, batch, ro, compiled=True)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                t_first_comp, _ = C.timed_first_call(tc_run)
            diff = max(diff, check_agreement(f"{case.label} (compiled)", r, tc_result()))
            fns.insert(1, tc_run)
            names.insert(1, "compiled")
        timings = dict(zip(names, C.time_interleaved(fns, rounds=rounds, min_time=min_time, min_runs=min_runs)))
        te, tn = timings["eager"], timings["numba"]
        tc = timings.get("compiled")
        best_name = "eager" if tc is None or te.median <= tc.median else "compiled"
        best = timings[best_name]
        speedup = best.median / tn.median
        noisy = max(t.spread for t in timings.values()) > NOISY_SPREAD
        rows.append([case.label, case.readout_label, C.fmt(te.median * 1e3),
                     "n/a" if tc is None else C.fmt(tc.median * 1e3), C.fmt(tn.median * 1e3),
                     f"{speedup:.1f}x ({best_name})" + (" (noisy)" if noisy else ""),
                     f"{best.cpu_median / tn.cpu_median:.1f}x", f"{diff:.1e}"])
        first_rows.append([case.label, C.fmt(t_first_nb * 1e3), C.fmt(t_first_eager * 1e3),
                           "n/a" if tc is None else C.fmt(t_first_comp, 3)])
        print(f"  {case.label}: " + ", ".join(f"{k} {t.median * 1e3:.3f} ms (IQR {t.spread:.0%})"
                                              for k, t in timings.items())
              + f"; speed-up {speedup:.1f}x vs {best_name}; max rel diff {diff:.1e}", file=sys.stderr, flush=True)

    rep.add(f"Median wall time of one loss-and-gradient evaluation (N = {N_UNITS}, T = {2 * T_HALF}, "
            f"a = {ALPHA}, float64, one thread; warm-up excluded; at least {min_runs} runs and {min_time:g} s per "
            f"entry, the sides timed in {rounds} alternating block(s) and the runs pooled). `speed-up`: torch's "
            "faster variant (named) divided by numba; `speed-up (CPU)`: the same from the process CPU time. "
            "`max rel diff`: largest difference of loss, parameter, readout and initial-state gradients between "
            f"numba and torch (both variants), relative to the largest entry (checked against rtol {RTOL:g} "
            "before timing).")
    rep.add()
    rep.add(C.markdown_table(["case", "readout", "torch eager ms", "torch.compile ms", "numba ms", "speed-up",
                              "speed-up (CPU)", "max rel diff"], rows, align="llrrrrrr"))
    rep.add()
    rep.add("First call in this process (included in nothing above): numba's `loss_and_grad` (kernels loaded "
            "from numba's on-disk cache when it is warm, else compiled; the first row also loads the BPTT "
            "engine), torch eager, and torch.compile (tracing, AOT autograd and inductor compilation of "
            "forward and backward, with an empty inductor cache directory).")
    rep.add()
    rep.add(C.markdown_table(["case", "numba first call ms", "torch eager first call ms", "torch.compile first call s"],
                             first_rows, align="lrrr"))
    rep.add()
    if not args.no_startup:
        n_cached = 1 if args.quick else 3
        cold, cached_runs, _ = C.startup_times(_STARTUP_CODE, [str(ROOT)], n_cached)
        cached = C.median_of(cached_runs)
        rep.add("numba compilation and start-up, each in a new process with `NUMBA_CACHE_DIR` set to a fresh "
                "directory: first with the empty cache (the rate kernels and the BPTT engine compile), then "
                f"with the cache it filled (median of {n_cached}). Seconds for `import plrnn_numba`, the first "
                "rank-one call (T = 40, B = 1), then the first full-W call, and the whole process.")
        rep.add()
        keys = ("import", "rank1", "full", "process")
        rep.add(C.markdown_table(["", "import s", "first rank-1 call s", "first full-W call s", "process s"],
                                 [["empty cache (compile)"] + [f"{cold[k]:.3f}" for k in keys],
                                  ["cached start-up"] + [f"{cached[k]:.3f}" for k in keys]], align="lrrrr"))
        rep.add()
    rep.add("### Method")
    rep.add()
    rep.add("- numba: `plrnn_numba.loss_and_grad(RateRNN(100, rank=1 or None, alpha=0.5), theta, batch, "
            "readout=LatentReadout(c=10, kappa_star=1) or LinearReadout(1), loss='sigmoid_mse')`: the whole "
            "public call (argument checks, forward, backward). A rank-one step costs O(N) (W x = m (n . x)).")
    rep.add("- torch: leaf tensors m, n, b (rank 1) or W, b, w, b_out (full) and x(0); a Python loop over time "
            "with `x = torch.lerp(x, torch.tanh(torch.addmm(b, x @ n.T, m.T)), a)` (rank 1) or "
            "`torch.addmm(b, x, W.T)` (full); the readout on the stacked states; "
            "`((sigmoid(y) - target)**2).mean()`; `loss.backward()`. The same function is timed eagerly and "
            "through `torch.compile` (default mode).")
    rep.add("- Work: the BPTT engine stores states, not pre-activations, so the model's backward kernels "
            "recompute h = W x + b (in the state pullback of every step and once more, as one product over all "
            "steps, for the parameter gradient): five N x N products per step and batch item against "
            "torch's three (forward, dx, dW). A rank-one model does O(N) work per product, so tanh and the "
            "per-step overheads dominate there; with a full W and B = 16 both sides are bound by BLAS.")
    rep.add("- One thread: OPENBLAS/MKL/OMP_NUM_THREADS=1 before the imports, `torch.set_num_threads(1)`, "
            "`numba.set_num_threads(1)`.")
    rep.add(f"- Caveat: a machine with {os.cpu_count()} logical cores that may be shared with other jobs. "
            f"Load average at the end: {C.load_average()}.")
    if args.out:
        rep.write(args.out)
        print(f"wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
