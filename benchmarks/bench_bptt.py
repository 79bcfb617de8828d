#!/usr/bin/env python
"""Benchmark: analytic BPTT in plrnn_numba against PyTorch CPU autograd.

Both sides compute the same float64 loss and its gradient for the same model,
parameters and data, on one thread each, in the same process:

* PLRNN ``z_t = A z_{t-1} + W relu(z_{t-1}) + h`` (A diagonal, W with a zero
  diagonal), identity readout on the first 3 states, MSE against random
  targets; free running, and generalized teacher forcing (GTF, alpha = 0.1).
* tanh RNN ``h_t = W tanh(h_{t-1}) + V x_t + b`` with one input (K = 1),
  the same readout and loss.

Sizes (M, T, B): (8, 200, 16), (32, 200, 16), (128, 200, 16), (32, 1000, 1).

Before timing, the loss and the gradients (parameters and initial states) of
both sides are compared (rtol 1e-8).  Then: numba compile time (fresh, empty
``NUMBA_CACHE_DIR``) and cached start-up, each in a new process.

Usage::

    python benchmarks/bench_bptt.py [--quick] [--out docs/performance_bptt.md]

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

import argparse  # noqa: E402
import time  # noqa: E402
from dataclasses import dataclass  # noqa: E402

import numba  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

import plrnn_numba as pn  # noqa: E402

N_OBS = 3  # identity readout on the first 3 states
GTF_ALPHA = 0.1
SIZES = [(8, 200, 16), (32, 200, 16), (128, 200, 16), (32, 1000, 1)]
RTOL = 1e-8
NOISY_SPREAD = 0.5  # relative interquartile range above which a timing is flagged
# Project goals: speed-up of numba over torch (one thread each).
GOAL_SMALL = 30.0  # M <= 32
GOAL_LARGE = 2.0  # M = 128, B = 16


# ------------------------------------------------------------------------ cases
@dataclass
class Case:
    model: str  # "PLRNN", "PLRNN GTF", "tanh RNN"
    M: int
    T: int
    B: int

    @property
    def label(self) -> str:
        return f"{self.model} M={self.M} T={self.T} B={self.B}"

    @property
    def flops(self) -> float:
        # forward W @ relu(z): 2 M^2; backward W^T g: 2 M^2; dW outer product: 2 M^2
        return 6.0 * self.M**2 * self.B * self.T


def make_problem(case: Case, seed: int = 0):
    """Model, theta, Batch and forcing for the numba side (the torch side copies them)."""
    rng = np.random.default_rng(seed)
    M, T, B = case.M, case.T, case.B
    targets = rng.standard_normal((B, T, N_OBS))
    z0 = rng.standard_normal((B, M))
    if case.model.startswith("PLRNN"):
        model = pn.PLRNN(dim=M)
        theta = model.init(seed)  # A ~ U(0.5, 0.9), W_ij ~ N(0, 0.25 / M) off-diagonal, h = 0, ||A|| + ||W|| <= 0.99
        theta[-M:] = rng.normal(0.0, 0.1, M)  # a non-zero h, so its gradient is tested too
        batch = pn.Batch(targets=targets, z0=z0)
        forcing = pn.GTF(GTF_ALPHA) if "GTF" in case.model else None
    else:
        model = pn.VanillaRNN(n_hidden=M, n_inputs=1, nonlinearity="tanh")
        theta = model.init(seed)  # W ~ N(0, 1 / M), V ~ N(0, 1), b ~ 0.1 U[0, 1)
        batch = pn.Batch(targets=targets, inputs=rng.standard_normal((B, T, 1)), z0=z0)
        forcing = None
    return model, theta, batch, forcing


def numba_fn(model, theta, batch, forcing):
    readout = pn.IdentityReadout(N_OBS)

    def run():
        return pn.loss_and_grad(model, theta, batch, readout=readout, loss="mse", forcing=forcing)

    return run


# ------------------------------------------------------------------ torch side
def torch_plrnn(model, theta, batch, alpha: float):
    """PLRNN loss in torch autograd; returns ``run() -> (loss, grad_theta, grad_z0)``."""
    M = model.dim
    d = model.unpack(theta)
    A = torch.tensor(d["A"], dtype=torch.float64, requires_grad=True)
    W_full = torch.tensor(d["W"], dtype=torch.float64, requires_grad=True)
    h = torch.tensor(d["h"], dtype=torch.float64, requires_grad=True)
    offdiag = torch.ones(M, M, dtype=torch.float64) - torch.eye(M, dtype=torch.float64)
    z0 = torch.tensor(batch.z0, dtype=torch.float64, requires_grad=True)
    X = torch.tensor(batch.targets, dtype=torch.float64)
    T = X.shape[1]
    off_idx = torch.from_numpy(np.flatnonzero(~np.eye(M, dtype=bool).ravel()))
    leaves = (A, W_full, h, z0)

    def run():
        for p in leaves:
            p.grad = None
        WT = (W_full * offdiag).t()  # zero diagonal stays zero: its gradient is masked
        z = z0
        ys = []
        for t in range(T):
            z = A * z + torch.relu(z) @ WT + h
            ys.append(z[:, :N_OBS])
            if alpha:
                z = torch.cat(((1.0 - alpha) * z[:, :N_OBS] + alpha * X[:, t], z[:, N_OBS:]), dim=1)
        Y = torch.stack(ys, dim=1)
        loss = ((Y - X) ** 2).mean()
        loss.backward()
        return loss

    def result():
        loss = run()
        g = torch.cat((A.grad, W_full.grad.reshape(-1)[off_idx], h.grad))
        return float(loss.detach()), g.numpy().copy(), z0.grad.numpy().copy()

    return run, result


def torch_rnn(model, theta, batch):
    """tanh RNN loss in torch autograd (the input term ``V x_t + b`` computed once for all t)."""
    d = model.unpack(theta)
    W = torch.tensor(d["W"], dtype=torch.float64, requires_grad=True)
    V = torch.tensor(d["V"], dtype=torch.float64, requires_grad=True)
    b = torch.tensor(d["b"], dtype=torch.float64, requires_grad=True)
    z0 = torch.tensor(batch.z0, dtype=torch.float64, requires_grad=True)
    X = torch.tensor(batch.targets, dtype=torch.float64)
    S = torch.tensor(batch.inputs, dtype=torch.float64)
    T = X.shape[1]
    leaves = (W, V, b, z0)

    def run():
        for p in leaves:
            p.grad = None
        U = S @ V.t() + b  # (B, T, M)
        WT = W.t()
        z = z0
        ys = []
        for t in range(T):
            z = torch.tanh(z) @ WT + U[:, t]
            ys.append(z[:, :N_OBS])
        Y = torch.stack(ys, dim=1)
        loss = ((Y - X) ** 2).mean()
        loss.backward()
        return loss

    def result():
        loss = run()
        g = torch.cat((W.grad.reshape(-1), V.grad.reshape(-1), b.grad))
        return float(loss.detach()), g.numpy().copy(), z0.grad.numpy().copy()

    return run, result


def torch_fns(case: Case, model, theta, batch):
    if case.model.startswith("PLRNN"):
        return torch_plrnn(model, theta, batch, GTF_ALPHA if "GTF" in case.model else 0.0)
    return torch_rnn(model, theta, batch)


def check_agreement(case: Case, nb_run, torch_result) -> float:
    """Compare loss and gradients; returns the largest relative difference."""
    r = nb_run()
    if not r.finite:
        raise AssertionError(f"{case.label}: numba loss/gradient not finite")
    t_loss, t_grad, t_gz0 = torch_result()
    diffs = [abs(r.loss - t_loss) / abs(t_loss)]
    for name, a, b in (("grad", r.grad, t_grad), ("grad_z0", r.grad_z0, t_gz0)):
        if a.shape != b.shape:
            raise AssertionError(f"{case.label}: {name} shapes differ: numba {a.shape}, torch {b.shape}")
        scale = np.max(np.abs(b))
        # entries many orders below the largest are compared on the scale of the largest
        np.testing.assert_allclose(a, b, rtol=RTOL, atol=RTOL * 1e-3 * scale, err_msg=f"{case.label}: {name}")
        diffs.append(float(np.max(np.abs(a - b)) / scale))
    np.testing.assert_allclose(r.loss, t_loss, rtol=RTOL, err_msg=f"{case.label}: loss")
    return max(diffs)


# ------------------------------------------------------------- compile time
_STARTUP_CODE = r"""
import json, sys, time
t0 = time.perf_counter()
sys.path.insert(0, sys.argv[1])
import numpy as np
import plrnn_numba as pn
t1 = time.perf_counter()
rng = np.random.default_rng(0)
ro = pn.IdentityReadout(3)
m = pn.PLRNN(dim=8)
pn.loss_and_grad(m, m.init(0), pn.Batch(targets=rng.standard_normal((2, 10, 3)),
                 z0=rng.standard_normal((2, 8))), readout=ro)
t2 = time.perf_counter()
r = pn.VanillaRNN(n_hidden=8, n_inputs=1, nonlinearity="tanh")
pn.loss_and_grad(r, r.init(0), pn.Batch(targets=rng.standard_normal((2, 10, 3)),
                 inputs=rng.standard_normal((2, 10, 1)), z0=rng.standard_normal((2, 8))), readout=ro)
t3 = time.perf_counter()
print(json.dumps({"import": t1 - t0, "plrnn": t2 - t1, "rnn": t3 - t2}))
"""


# ------------------------------------------------------------------------ main
def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="fewer repeats (a smoke run)")
    ap.add_argument("--out", metavar="FILE", help="also write the markdown report to FILE")
    ap.add_argument("--no-startup", action="store_true", help="skip the compile / cached start-up measurement")
    args = ap.parse_args(argv)

    C.single_thread_torch_numba()
    min_time, min_runs, rounds = (0.2, 3, 1) if args.quick else (1.0, 7, 3)
    rep = C.Report()
    rep.add("## Analytic BPTT (numba) vs PyTorch autograd")
    rep.add()
    rep.add(f"Generated by `benchmarks/bench_bptt.py` on {time.strftime('%Y-%m-%d %H:%M %Z')}"
            + (" (`--quick`: fewer repeats)" if args.quick else "") + ".")
    rep.add()
    rep.add(f"- **command**: `{C.command_line()}`")
    rep.add(C.key_value_list(C.machine_info()))
    vers = C.versions(("numpy", "numba", "torch"))
    vers["BLAS (numpy)"] = C.blas_info()
    vers["plrnn_numba"] = f"{pn.__version__} (git {C.git_revision(ROOT)})"
    rep.add(C.key_value_list(vers))
    rep.add(f"- **threads**: torch {torch.get_num_threads()} (interop {torch.get_num_interop_threads()}), "
            f"numba {numba.get_num_threads()} (threading layer pool {numba.config.NUMBA_NUM_THREADS}), "
            f"OPENBLAS/MKL/OMP_NUM_THREADS={os.environ['OPENBLAS_NUM_THREADS']}")
    rep.add()

    # --- matmul reference
    ref = {}
    for n in (256, 512):
        ref[n], _ = C.matmul_gflops(n, min_time=min_time, min_runs=min_runs)
    peak = ref[512]
    rep.add("Single-thread NumPy matmul reference (float64 `a @ b`, median): "
            + ", ".join(f"n = {n}: **{C.fmt(g)} GFLOP/s**" for n, g in ref.items())
            + ". The last column of the table divides by the n = 512 rate.")
    rep.add()

    # --- cases
    cases = []
    for M, T, B in SIZES:
        cases.append(Case("PLRNN", M, T, B))
        cases.append(Case("PLRNN GTF", M, T, B))
        cases.append(Case("tanh RNN", M, T, B))

    rows, results = [], []
    for case in cases:
        model, theta, batch, forcing = make_problem(case)
        nb = numba_fn(model, theta, batch, forcing)
        t_run, t_result = torch_fns(case, model, theta, batch)
        diff = check_agreement(case, nb, t_result)
        tt, tn = C.time_interleaved([t_run, nb], rounds=rounds, min_time=min_time, min_runs=min_runs)
        speedup = tt.median / tn.median
        gflops = case.flops / tn.median / 1e9
        results.append((case, tt, tn, speedup, diff))
        cpu_speedup = tt.cpu_median / tn.cpu_median
        noisy = max(tt.spread, tn.spread) > NOISY_SPREAD
        rows.append([case.model, case.M, case.T, case.B, C.fmt(tt.median * 1e3), C.fmt(tn.median * 1e3),
                     f"{speedup:.1f}x" + (" (noisy)" if noisy else ""), C.fmt(gflops), f"{gflops / peak:.2f}",
                     f"{cpu_speedup:.1f}x",
                     f"{diff:.1e}"])
        print(f"  {case.label}: torch {tt.median * 1e3:.3f} ms ({tt.runs} runs, IQR {tt.spread:.0%}), "
              f"numba {tn.median * 1e3:.3f} ms ({tn.runs} runs, IQR {tn.spread:.0%}), "
              f"speed-up {speedup:.1f}x, max rel diff {diff:.1e}", file=sys.stderr, flush=True)

    rep.add(f"Median wall time of one loss-and-gradient evaluation (warm-up excluded; at least {min_runs} runs "
            f"and {min_time:g} s per entry, torch and numba timed in {rounds} alternating block(s) and the runs "
            f"pooled; `(noisy)`: interquartile range above {NOISY_SPREAD:.0%} of the median on one side). "
            "numba GFLOP/s counts 6 M^2 B T flops (see below). "
            "`max rel diff`: largest difference between the two sides in the loss, the parameter gradient "
            "and the initial-state gradient, relative to the largest entry (checked against rtol 1e-8 "
            "before timing). `speed-up (CPU)`: the same ratio from the median process CPU time per run "
            "(`time.process_time`), less affected by other jobs competing for the cores.")
    rep.add()
    rep.add(C.markdown_table(
        ["case", "M", "T", "B", "torch ms", "numba ms", "speed-up", "numba GFLOP/s",
         "fraction of matmul", "speed-up (CPU)", "max rel diff"],
        rows, align="lrrrrrrrrrr"))
    rep.add()

    # --- goals
    rep.add(f"Project goals: speed-up >= {GOAL_SMALL:g}x for M <= 32, >= {GOAL_LARGE:g}x at M = 128, B = 16.")
    rep.add()
    goal_rows = []
    for case, _tt, _tn, s, _ in results:
        goal = GOAL_SMALL if case.M <= 32 else GOAL_LARGE
        goal_rows.append([case.label, f"{s:.1f}x", f">= {goal:g}x", "met" if s >= goal else "**missed**"])
    rep.add(C.markdown_table(["case", "speed-up", "goal", ""], goal_rows, align="lrrl"))
    rep.add()

    # --- where the numba time goes: forward-only simulate vs loss_and_grad; fixed per-call cost
    brk = []
    for case, _tt, tn, _s, _ in results:
        if case.model != "PLRNN":
            continue
        model, theta, batch, _ = make_problem(case)

        def sim(model=model, theta=theta, z0=batch.z0, T=case.T):
            return pn.simulate(model, theta, z0, n_steps=T)

        ts = C.time_call(sim, min_time=min_time / 2, min_runs=min_runs)
        per_step = tn.median / (case.T * case.B) * 1e9
        brk.append([case.label, C.fmt(ts.median * 1e3), C.fmt(tn.median * 1e3),
                    f"{tn.median / ts.median:.1f}", C.fmt(per_step)])
    m8 = pn.PLRNN(dim=8)
    tiny = pn.Batch(targets=np.zeros((1, 1, N_OBS)), z0=np.zeros((1, 8)))
    th8 = m8.init(0)
    t_tiny = C.time_call(lambda: pn.loss_and_grad(m8, th8, tiny, readout=pn.IdentityReadout(N_OBS)),
                         min_time=min_time / 2, min_runs=min_runs)
    rep.add("Where the numba time goes (free-running PLRNN): forward-only `plrnn_numba.simulate` over the "
            "same T steps and batch, against the full `loss_and_grad`; and the time per (step, batch item).")
    rep.add()
    rep.add(C.markdown_table(["case", "simulate ms", "loss_and_grad ms", "ratio", "ns per step and item"],
                             brk, align="lrrrr"))
    rep.add()
    rep.add(f"Fixed cost of one `loss_and_grad` call (PLRNN M = 8, T = 1, B = 1: argument checks, "
            f"layout conversion, kernel dispatch): **{t_tiny.median * 1e6:.0f} us**.")
    rep.add()

    # --- compile and start-up
    if not args.no_startup:
        n_cached = 1 if args.quick else 3
        cold, cached, n_files = C.startup_times(_STARTUP_CODE, [str(ROOT)], n_cached)
        med = {k: float(np.median([c[k] for c in cached])) for k in cold}
        rep.add("Compilation and start-up, each in a new process (`sys.executable -c ...`) with "
                "`NUMBA_CACHE_DIR` set to a fresh temporary directory: *first* run with the empty cache "
                f"(everything is compiled; {n_files} cache files written), then the same command with the "
                f"same cache directory (median of {n_cached}). Columns: `import plrnn_numba` (with numpy), "
                "the first `loss_and_grad` call of a PLRNN (M = 8) and then of a tanh RNN (M = 8, K = 1), "
                "and the whole process including interpreter start.")
        rep.add()
        rep.add(C.markdown_table(
            ["", "import s", "first PLRNN loss_and_grad s", "first RNN loss_and_grad s", "process s"],
            [["empty cache (compile)"] + [f"{cold[k]:.2f}" for k in ("import", "plrnn", "rnn", "process")],
             ["cached start-up"] + [f"{med[k]:.2f}" for k in ("import", "plrnn", "rnn", "process")]],
            align="lrrrr"))
        rep.add()

    rep.add("### Method")
    rep.add()
    rep.add(
        "- Same process, same float64 data. PLRNN: `plrnn_numba.PLRNN(dim=M)`, `theta = model.init(0)` "
        "(A ~ U(0.5, 0.9), off-diagonal W ~ N(0, 0.25/M), then A and W scaled together so that "
        "||A||_2 + ||W||_2 <= 0.99) with h ~ N(0, 0.01); z0 ~ N(0, 1); identity "
        f"readout on the first {N_OBS} states; MSE = mean over (b, t, n) of (z_t[n] - x_t[n])^2 against "
        f"N(0, 1) targets. `PLRNN GTF`: generalized teacher forcing with alpha = {GTF_ALPHA} on the 3 "
        "observed states at every step (the loss is on the unforced prediction). tanh RNN: "
        "`VanillaRNN(n_hidden=M, n_inputs=1)`, `theta = model.init(0)`, N(0, 1) inputs.")
    rep.add(
        "- numba: `plrnn_numba.loss_and_grad(model, theta, batch, readout=IdentityReadout(3), loss='mse', "
        "forcing=...)` (the whole public call: argument checks, layout conversion, forward, backward).")
    rep.add(
        "- torch: leaf tensors with `requires_grad` (PLRNN: A, a dense W multiplied by a constant "
        "off-diagonal mask so the diagonal stays zero, h, z0; RNN: W, V, b, z0), a Python loop over time "
        "(`z = A * z + relu(z) @ W.T + h`; RNN: `z = tanh(z) @ W.T + U[:, t]` with `U = S @ V.T + b` "
        "computed once), predictions stacked, one MSE, `loss.backward()`. "
        "`torch.set_num_threads(1)`, `torch.set_num_interop_threads(1)`.")
    rep.add(
        "- One thread everywhere: OPENBLAS/MKL/OMP_NUM_THREADS=1 set before numpy, numba and torch are "
        "imported; `numba.set_num_threads(1)` (so `loss_and_grad` runs the batch as one chunk).")
    rep.add(
        "- Flop model for GFLOP/s: per time step and batch item the forward product W relu(z) (2 M^2), "
        "the backward product W^T g (2 M^2) and the rank-1 update of dL/dW (2 M^2), i.e. **6 M^2 B T** "
        "flops; element-wise work (O(M) per step) is not counted. The same count is used for the tanh RNN.")
    rep.add(
        "- Timing: 2 warm-up calls, then repeated `time.perf_counter` runs until both the minimum number "
        "of runs and the minimum time are reached, in alternating torch / numba blocks; the median over all "
        "runs is reported. The matmul reference, the breakdown table and the fixed cost use one block each.")
    rep.add(
        f"- Caveat: measured on a machine with {os.cpu_count()} logical cores that may be shared with other "
        "jobs; numbers are preliminary (run-to-run differences of 10-20 % are possible). "
        f"Load average at the end of the run: {C.load_average()}.")

    if args.out:
        rep.write(args.out)
        print(f"wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
