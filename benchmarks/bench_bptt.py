#!/usr/bin/env python
"""Benchmark: analytic BPTT in plrnn_numba against PyTorch CPU autograd and JAX (jit + lax.scan).

Every side computes the same loss and its gradient for the same model,
parameters and data, on one thread (the process pinned to one CPU), in the
same process:

* PLRNN ``z_t = A z_{t-1} + W relu(z_{t-1}) + h`` (A diagonal, W with a zero
  diagonal), identity readout on the first 3 states, MSE against random
  targets; free running, and generalized teacher forcing (GTF, alpha = 0.1).
* tanh RNN ``h_t = W tanh(h_{t-1}) + V x_t + b`` with one input (K = 1),
  the same readout and loss.

Peers: torch eager (a Python loop over time under autograd), torch's fused
``nn.RNN`` (tanh RNN only), ``torch.compile`` of the eager loss (``--compile``),
JAX ``jit(value_and_grad)`` over ``lax.scan`` in float64 and in float32.

Sizes (M, T, B): (8, 200, 16), (32, 200, 16), (64, 200, 16), (128, 200, 16),
(256, 200, 16), (32, 1000, 1), (32, 5000, 16); ``--quick``: (8, 200, 16),
(64, 200, 16), (32, 1000, 1) with fewer repeats.

Before timing, the loss and the gradients (parameters and initial states) of
every float64 peer are compared with the package's (rtol 1e-8); JAX float32
against the package's float64 result at a looser tolerance (``F32_TOL``
relative to the largest entry).  Then: numba compile time (fresh, empty
``NUMBA_CACHE_DIR``) and cached start-up, each in a new process.

Usage::

    python benchmarks/bench_bptt.py [--quick] [--sizes M,T,B ...] [--compile] [--no-jax] [--cpu N]
                                    [--no-startup] [--out docs/performance_bptt.md]

This is a benchmark, not a test: timings depend on the machine and on what
else runs on it.
"""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common as C  # noqa: E402

C.limit_threads(1)  # before numpy / numba / torch / jax are imported (also XLA_FLAGS)
C.pin_to_cpu(C.cpu_from_argv())  # every thread on one CPU (--cpu N)
ROOT = C.add_repo_to_path()

import tempfile  # noqa: E402

# torch.compile keeps compiled graphs on disk; a fresh directory makes its first call a cold compile
_INDUCTOR_CACHE = tempfile.TemporaryDirectory(prefix="bench_bptt_inductor_")
os.environ["TORCHINDUCTOR_CACHE_DIR"] = _INDUCTOR_CACHE.name

import argparse  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from dataclasses import dataclass  # noqa: E402

import _jax_peers as JP  # noqa: E402  (imports jax only when used)
import numba  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

import plrnn_numba as pn  # noqa: E402

N_OBS = 3  # identity readout on the first 3 states
GTF_ALPHA = 0.1
SIZES = [(8, 200, 16), (32, 200, 16), (64, 200, 16), (128, 200, 16), (256, 200, 16), (32, 1000, 1),
         (32, 5000, 16)]
QUICK_SIZES = [(8, 200, 16), (64, 200, 16), (32, 1000, 1)]
RTOL = 1e-8
#: JAX float32 against the package's float64: largest difference relative to the largest entry
F32_TOL = 1e-3
#: torch.compile unrolls the Python time loop into one graph: cases with more steps are not compiled
COMPILE_MAX_T = 200
NOISY_SPREAD = 0.5  # relative interquartile range above which a timing is flagged
# Project goals: speed-up of numba over the best torch (one thread each).
GOAL_SMALL = 30.0  # M <= 32
GOAL_LARGE = 2.0  # M >= 64, B = 16


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


def numba_fn(model, theta, batch, forcing, dtype="float64"):
    readout = pn.IdentityReadout(N_OBS)

    def run():
        return pn.loss_and_grad(model, theta, batch, readout=readout, loss="mse", forcing=forcing, dtype=dtype)

    return run


# ------------------------------------------------------------------ torch side
def _compiled(fn):
    """``torch.compile(fn)`` after clearing dynamo's caches (each case compiles afresh, no recompile limit)."""
    torch._dynamo.reset()
    for name in ("recompile_limit", "cache_size_limit"):
        if hasattr(torch._dynamo.config, name):
            setattr(torch._dynamo.config, name, 64)
    return torch.compile(fn)


def torch_plrnn(model, theta, batch, alpha: float, compiled: bool = False):
    """PLRNN loss in torch autograd; returns ``run()`` and ``result() -> (loss, grad_theta, grad_z0)``.

    Per step one ``addmm`` (``h + relu(z) @ W.T``) and one ``addcmul`` (``+ A * z``);
    with GTF a ``lerp`` of the observed states towards the target and a ``cat``.
    The targets are split into per-step views once (``unbind``), outside autograd.
    """
    M = model.dim
    d = model.unpack(theta)
    A = torch.tensor(d["A"], dtype=torch.float64, requires_grad=True)
    W_full = torch.tensor(d["W"], dtype=torch.float64, requires_grad=True)
    h = torch.tensor(d["h"], dtype=torch.float64, requires_grad=True)
    offdiag = torch.ones(M, M, dtype=torch.float64) - torch.eye(M, dtype=torch.float64)
    z0 = torch.tensor(batch.z0, dtype=torch.float64, requires_grad=True)
    X = torch.tensor(batch.targets, dtype=torch.float64)
    Xs = X.unbind(1)  # constants: no gradient flows into them
    off_idx = torch.from_numpy(np.flatnonzero(~np.eye(M, dtype=bool).ravel()))
    leaves = (A, W_full, h, z0)

    def loss_fn(A, W_full, h, z0):
        WT = (W_full * offdiag).t()  # zero diagonal stays zero: its gradient is masked
        z = z0
        ys = []
        for x in Xs:
            z = torch.addcmul(torch.addmm(h, torch.relu(z), WT), A, z)
            y = z[:, :N_OBS]
            ys.append(y)
            if alpha:
                z = torch.cat((torch.lerp(y, x, alpha), z[:, N_OBS:]), dim=1)
        Y = torch.stack(ys, dim=1)
        return ((Y - X) ** 2).mean()

    fn = _compiled(loss_fn) if compiled else loss_fn

    def run():
        for p in leaves:
            p.grad = None
        loss = fn(*leaves)
        loss.backward()
        return loss

    def result():
        loss = run()
        g = torch.cat((A.grad, W_full.grad.reshape(-1)[off_idx], h.grad))
        return float(loss.detach()), g.numpy().copy(), z0.grad.numpy().copy()

    return run, result


def torch_rnn(model, theta, batch, compiled: bool = False):
    """tanh RNN loss in torch autograd: the input term ``V x_t + b`` for all t computed once and split
    into per-step views once (``unbind``: its backward is one ``stack``), one ``addmm`` and one ``tanh``
    per step."""
    d = model.unpack(theta)
    W = torch.tensor(d["W"], dtype=torch.float64, requires_grad=True)
    V = torch.tensor(d["V"], dtype=torch.float64, requires_grad=True)
    b = torch.tensor(d["b"], dtype=torch.float64, requires_grad=True)
    z0 = torch.tensor(batch.z0, dtype=torch.float64, requires_grad=True)
    X = torch.tensor(batch.targets, dtype=torch.float64)
    S = torch.tensor(batch.inputs, dtype=torch.float64)
    leaves = (W, V, b, z0)

    def loss_fn(W, V, b, z0):
        U = torch.addmm(b, S.reshape(-1, S.shape[-1]), V.t()).reshape(S.shape[0], S.shape[1], -1)  # (B, T, M)
        WT = W.t()
        z = z0
        ys = []
        for u in U.unbind(1):
            z = torch.addmm(u, torch.tanh(z), WT)
            ys.append(z[:, :N_OBS])
        Y = torch.stack(ys, dim=1)
        return ((Y - X) ** 2).mean()

    fn = _compiled(loss_fn) if compiled else loss_fn

    def run():
        for p in leaves:
            p.grad = None
        loss = fn(*leaves)
        loss.backward()
        return loss

    def result():
        loss = run()
        g = torch.cat((W.grad.reshape(-1), V.grad.reshape(-1), b.grad))
        return float(loss.detach()), g.numpy().copy(), z0.grad.numpy().copy()

    return run, result


def torch_rnn_fused(model, theta, batch):
    """tanh RNN through ``torch.nn.RNN`` (ATen's C++ time loop), the same loss and gradients.

    With ``h_t = tanh(z_t)`` the model ``z_t = W h_{t-1} + V x_t + b`` gives
    ``h_t = tanh(W h_{t-1} + V x_t + b)``: ``nn.RNN`` with ``weight_hh = W``,
    ``weight_ih = V``, ``bias_ih = b``, ``bias_hh = 0`` (no gradient) and
    ``h_0 = tanh(z_0)``.  It runs over x_1 .. x_{T-1} (h_1 .. h_{T-1}); with
    h_0 prepended, the loss needs ``z_t[:3] = W[:3] h_{t-1} + V[:3] x_t + b[:3]``
    for t = 1 .. T: one batched readout with the *same* parameter tensors, so
    the gradients of W, V, b and z_0 are complete.
    """
    M, K = model.n_hidden, model.n_inputs
    d = model.unpack(theta)
    rnn = torch.nn.RNN(K, M, nonlinearity="tanh", bias=True, batch_first=True, dtype=torch.float64)
    with torch.no_grad():
        rnn.weight_hh_l0.copy_(torch.from_numpy(d["W"]))
        rnn.weight_ih_l0.copy_(torch.from_numpy(d["V"]))
        rnn.bias_ih_l0.copy_(torch.from_numpy(d["b"]))
        rnn.bias_hh_l0.zero_()
    rnn.bias_hh_l0.requires_grad_(False)
    W, V, b = rnn.weight_hh_l0, rnn.weight_ih_l0, rnn.bias_ih_l0
    z0 = torch.tensor(batch.z0, dtype=torch.float64, requires_grad=True)
    X = torch.tensor(batch.targets, dtype=torch.float64)
    S = torch.tensor(batch.inputs, dtype=torch.float64)  # (B, T, K)
    S_rnn = S[:, :-1].contiguous()  # x_1 .. x_{T-1} drive h_1 .. h_{T-1}
    leaves = (W, V, b, z0)

    def run():
        for p in leaves:
            p.grad = None
        h0 = torch.tanh(z0)
        out, _ = rnn(S_rnn, h0[None])  # (B, T - 1, M)
        H = torch.cat((h0[:, None], out), dim=1)  # h_0 .. h_{T-1}
        Y = H @ W[:N_OBS].t() + S @ V[:N_OBS].t() + b[:N_OBS]  # z_1[:3] .. z_T[:3]
        loss = ((Y - X) ** 2).mean()
        loss.backward()
        return loss

    def result():
        loss = run()
        g = torch.cat((W.grad.reshape(-1), V.grad.reshape(-1), b.grad))
        return float(loss.detach()), g.numpy().copy(), z0.grad.numpy().copy()

    return run, result


def torch_fns(case: Case, model, theta, batch, compiled: bool = False):
    if case.model.startswith("PLRNN"):
        return torch_plrnn(model, theta, batch, GTF_ALPHA if "GTF" in case.model else 0.0, compiled)
    return torch_rnn(model, theta, batch, compiled)


def jax_fns(case: Case, model, theta, batch, dtype: str):
    if case.model.startswith("PLRNN"):
        return JP.plrnn(model, theta, batch, GTF_ALPHA if "GTF" in case.model else 0.0, dtype, N_OBS)
    return JP.tanh_rnn(model, theta, batch, dtype, N_OBS)


def _pairs(r, result):
    loss, grad, gz0 = result
    return [("loss", np.array([r.loss]), np.array([loss])), ("grad", r.grad, grad), ("grad_z0", r.grad_z0, gz0)]


def check_agreement(label: str, r, result) -> float:
    """Compare loss and gradients with the package's (rtol 1e-8); the largest difference relative to the
    largest entry."""
    if not r.finite:
        raise AssertionError(f"{label}: numba loss/gradient not finite")
    diffs = []
    for name, a, b in _pairs(r, result):
        if a.shape != b.shape:
            raise AssertionError(f"{label}: {name} shapes differ: numba {a.shape}, peer {b.shape}")
        scale = np.max(np.abs(b))
        # entries many orders below the largest are compared on the scale of the largest
        np.testing.assert_allclose(a, b, rtol=RTOL, atol=RTOL * 1e-3 * scale, err_msg=f"{label}: {name}")
        diffs.append(float(np.max(np.abs(a - b)) / scale))
    return max(diffs)


def relative_difference(r, result) -> float:
    """Largest difference (loss, gradients) relative to the largest entry of the package's; no check."""
    return max(float(np.max(np.abs(a - b)) / np.max(np.abs(a))) for _, a, b in _pairs(r, result))


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
def _size(text: str) -> tuple[int, int, int]:
    try:
        M, T, B = (int(x) for x in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected M,T,B (three integers); got {text!r}") from None
    return M, T, B


def _ratio(t, tn) -> str:
    """``peer time / numba time`` with a ``(noisy)`` flag."""
    if t is None:
        return "n/a"
    noisy = max(t.spread, tn.spread) > NOISY_SPREAD
    return f"{C.fmt(t.median / tn.median, 2)}x" + (" (noisy)" if noisy else "")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true",
                    help="fewer repeats and sizes "
                         f"{' '.join(','.join(map(str, s)) for s in QUICK_SIZES)} (a smoke run)")
    ap.add_argument("--sizes", type=_size, nargs="+", metavar="M,T,B", help="the sizes to run (default: all)")
    ap.add_argument("--compile", action="store_true",
                    help="also time torch.compile of the eager loss (a cold compile takes minutes per shape)")
    ap.add_argument("--compile-max-t", type=int, default=COMPILE_MAX_T, metavar="T",
                    help=f"compile only cases with at most T steps (default {COMPILE_MAX_T})")
    ap.add_argument("--no-jax", action="store_true", help="skip the JAX columns")
    C.add_cpu_argument(ap)
    ap.add_argument("--out", metavar="FILE", help="also write the markdown report to FILE")
    ap.add_argument("--no-startup", action="store_true", help="skip the compile / cached start-up measurement")
    args = ap.parse_args(argv)

    t_start = time.perf_counter()
    C.single_thread_torch_numba()
    use_jax, jax_note = JP.status(args.no_jax)
    min_time, min_runs, rounds = (0.2, 3, 1) if args.quick else (1.0, 7, 3)
    rep = C.Report()
    rep.add("## Analytic BPTT (numba) vs PyTorch and JAX")
    rep.add()
    rep.add(f"Generated by `benchmarks/bench_bptt.py` on {time.strftime('%Y-%m-%d %H:%M %Z')}"
            + (" (`--quick`: fewer sizes and repeats)" if args.quick else "") + ".")
    rep.add()
    rep.add(f"- **command**: `{C.command_line()}`")
    rep.add(C.key_value_list(C.machine_info()))
    vers = C.versions(("numpy", "numba", "torch"))
    vers["jax"] = jax_note
    vers["BLAS (numpy)"] = C.blas_info()
    vers["plrnn_numba"] = f"{pn.__version__} (git {C.git_revision(ROOT)})"
    rep.add(C.key_value_list(vers))
    rep.add(f"- **threads**: torch {torch.get_num_threads()} (interop {torch.get_num_interop_threads()}), "
            f"numba {numba.get_num_threads()} (threading layer pool {numba.config.NUMBA_NUM_THREADS}), "
            f"OPENBLAS/MKL/OMP_NUM_THREADS={os.environ['OPENBLAS_NUM_THREADS']}, "
            f"XLA_FLAGS=`{os.environ.get('XLA_FLAGS', '')}`")
    rep.add(f"- **pinned to**: {C.pinned_cpu_text()}")
    rep.add()

    # --- matmul reference
    ref = {}
    for n in (256, 512):
        ref[n], _ = C.matmul_gflops(n, min_time=min_time, min_runs=min_runs)
    peak = ref[512]
    rep.add("Single-thread NumPy matmul reference (float64 `a @ b`, median): "
            + ", ".join(f"n = {n}: **{C.fmt(g)} GFLOP/s**" for n, g in ref.items())
            + ". The `fraction of matmul` column divides by the n = 512 rate.")
    rep.add()

    # --- cases
    sizes = args.sizes or (QUICK_SIZES if args.quick else SIZES)
    cases = [Case(model, M, T, B) for M, T, B in sizes for model in ("PLRNN", "PLRNN GTF", "tanh RNN")]

    rows, first_rows, results, results32, jax64 = [], [], [], [], []
    f32_over = []
    for case in cases:
        model, theta, batch, forcing = make_problem(case)
        nb = numba_fn(model, theta, batch, forcing)
        r = nb()
        peers, first = {}, {}
        t_run, t_result = torch_fns(case, model, theta, batch)
        diff = check_agreement(f"{case.label} (torch eager)", r, t_result())
        peers["torch eager"] = t_run
        if case.model == "tanh RNN":
            f_run, f_result = torch_rnn_fused(model, theta, batch)
            diff = max(diff, check_agreement(f"{case.label} (torch nn.RNN)", r, f_result()))
            peers["torch nn.RNN"] = f_run
        if args.compile and case.T <= args.compile_max_t:
            c_run, c_result = torch_fns(case, model, theta, batch, compiled=True)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                first["torch.compile"], _ = C.timed_first_call(c_run)
            print(f"  {case.label}: torch.compile first call {first['torch.compile']:.1f} s", file=sys.stderr,
                  flush=True)
            diff = max(diff, check_agreement(f"{case.label} (torch.compile)", r, c_result()))
            peers["torch.compile"] = c_run
        # the package's float32 mode, checked against its float64 result like JAX float32
        nb32 = numba_fn(model, theta, batch, forcing, "float32")
        r32 = nb32()
        ours32 = relative_difference(r, (r32.loss, r32.grad, r32.grad_z0))
        if ours32 > F32_TOL:
            f32_over.append(case.label + " (numba float32)")
        peers["numba float32"] = nb32
        diff32 = float("nan")
        if use_jax:
            for dt in ("float64", "float32"):
                j_run, j_result = jax_fns(case, model, theta, batch, dt)
                first[f"JAX {dt}"], _ = C.timed_first_call(j_run)
                if dt == "float64":
                    diff = max(diff, check_agreement(f"{case.label} (JAX float64)", r, j_result()))
                else:
                    diff32 = relative_difference(r, j_result())
                    if diff32 > F32_TOL:
                        f32_over.append(case.label)
                        print(f"  warning: {case.label}: JAX float32 differs from numba float64 by {diff32:.1e} "
                              f"(> {F32_TOL:g}) relative to the largest entry", file=sys.stderr, flush=True)
                peers[f"JAX {dt}"] = j_run
        timings = dict(zip(["numba", *peers], C.time_interleaved([nb, *peers.values()], rounds=rounds,
                                                                  min_time=min_time, min_runs=min_runs)))
        tn = timings["numba"]
        tn32 = timings["numba float32"]
        results32.append((case, tn32, timings.get("JAX float32")))
        jax64.append((case, timings.get("JAX float64")))
        best_name = min((k for k in timings if k in ("torch eager", "torch nn.RNN")), key=lambda k: timings[k].median)
        tb = timings[best_name]
        gflops = case.flops / tn.median / 1e9
        results.append((case, tb.median / tn.median, best_name, tn))
        rows.append([case.model, case.M, case.T, case.B, C.fmt(tn.median * 1e3),
                     _ratio(timings["torch eager"], tn),
                     _ratio(tb, tn) + (" nn.RNN" if best_name == "torch nn.RNN" else "")]
                    + ([_ratio(timings.get("torch.compile"), tn)] if args.compile else [])
                    + [_ratio(timings.get("JAX float64"), tn), _ratio(timings.get("JAX float32"), tn),
                       C.fmt(tn32.median * 1e3), _ratio(timings.get("JAX float32"), tn32),
                       C.fmt(gflops), f"{gflops / peak:.2f}", f"{diff:.1e}",
                       "n/a" if diff32 != diff32 else f"{diff32:.1e}" + (" (!)" if diff32 > F32_TOL else ""),
                       f"{ours32:.1e}"])
        if first:
            first_rows.append([case.label] + [C.fmt(first[k], 2) if k in first else "n/a"
                                              for k in ("JAX float64", "JAX float32", "torch.compile")])
        print(f"  {case.label}: " + ", ".join(f"{k} {t.median * 1e3:.3f} ms (IQR {t.spread:.0%}, {t.runs} runs)"
                                              for k, t in timings.items())
              + f"; best torch / numba {tb.median / tn.median:.1f}x; max rel diff {diff:.1e} (float64 peers)"
              + ("" if diff32 != diff32 else f", {diff32:.1e} (JAX float32)"), file=sys.stderr, flush=True)

    rep.add(f"Median wall time of one loss-and-gradient evaluation of the package (`numba ms`, float64) and "
            f"each peer's time divided by it (above 1: the package is faster). Warm-up excluded; at least "
            f"{min_runs} runs and {min_time:g} s per entry, all sides timed in {rounds} alternating block(s) and "
            f"the runs pooled; `(noisy)`: interquartile range above {NOISY_SPREAD:.0%} of the median on one side. "
            "`torch eager`: Python loop under autograd; `torch best`: the faster of torch eager and the fused "
            "`torch.nn.RNN` (tanh RNN only; marked `nn.RNN` when it wins)"
            + ("; `torch.compile`: the eager loss compiled (n/a: more than "
               f"{args.compile_max_t} steps, not compiled)" if args.compile else "")
            + "; `JAX f64` / `JAX f32`: `jit(value_and_grad)` over `lax.scan` in float64 / float32. "
            "numba GFLOP/s counts 6 M^2 B T flops (see below). `max rel diff`: largest difference between "
            "the package and any float64 peer in the loss, the parameter gradient and the initial-state "
            f"gradient, relative to the largest entry (each checked against rtol {RTOL:g} before timing). "
            "`JAX f32 diff`: the same for JAX float32 against the package's float64 result (tolerance "
            f"{F32_TOL:g}; `(!)` above it; timed regardless). `numba f32 ms`: the package's float32 mode "
            "(`loss_and_grad(..., dtype='float32')`), `numba f32 diff` its difference from the float64 result.")
    rep.add()
    headers = (["case", "M", "T", "B", "numba ms", "torch eager / numba", "torch best / numba"]
               + (["torch.compile / numba"] if args.compile else [])
               + ["JAX f64 / numba", "JAX f32 / numba", "numba f32 ms", "JAX f32 / numba f32", "numba GFLOP/s",
                  "fraction of matmul", "max rel diff", "JAX f32 diff", "numba f32 diff"])
    rep.add(C.markdown_table(headers, rows, align="l" + "r" * (len(headers) - 1)))
    rep.add()
    if not use_jax:
        rep.add(f"JAX: {jax_note}.")
        rep.add()
    if f32_over:
        rep.add(f"JAX float32 differs from the float64 result by more than {F32_TOL:g} (relative to the "
                f"largest entry) in: {', '.join(f32_over)}.")
        rep.add()
    if first_rows:
        rep.add("First call in this process (seconds; included in nothing above): JAX traces and compiles "
                "`jit(value_and_grad(loss))` per shape and dtype"
                + ("; torch.compile (empty inductor cache directory) traces the Python loop over time, unrolled "
                   "into one graph, and compiles forward and backward with inductor: a cold compile takes "
                   "minutes per shape" if args.compile else "") + ".")
        rep.add()
        rep.add(C.markdown_table(["case", "JAX f64 first call s", "JAX f32 first call s",
                                  "torch.compile first call s"], first_rows, align="lrrr"))
        rep.add()
    if not args.compile:
        rep.add("torch.compile: not timed (`--compile` times it; dynamo unrolls the Python loop over time into "
                "one graph, so a cold compile takes minutes per shape).")
        rep.add()

    # --- goals
    rep.add(f"Project goals: speed-up over the best torch >= {GOAL_SMALL:g}x for M <= 32, >= {GOAL_LARGE:g}x "
            "for M >= 64.")
    rep.add()
    goal_rows = []
    for case, s_, best_name, _tn in results:
        goal = GOAL_SMALL if case.M <= 32 else GOAL_LARGE
        goal_rows.append([case.label, f"{s_:.1f}x ({best_name})", f">= {goal:g}x",
                          "met" if s_ >= goal else "**missed**"])
    rep.add(C.markdown_table(["case", "speed-up", "goal", ""], goal_rows, align="lrrl"))
    rep.add()
    if use_jax:
        rep.add("Against JAX: the package's float64 faster than JAX float64 in every row, and its float32 "
                "mode faster than JAX float32 from M = 32 on (ratios: JAX time / package time).")
        rep.add()
        jax_rows = []
        for (case, _s, _b, tn), (_c, tn32, tj32) in zip(results, results32):
            tj64 = next(t for c, t in jax64 if c is case)
            r64, r32 = tj64.median / tn.median, tj32.median / tn32.median
            jax_rows.append([case.label, f"{r64:.2f}x", "met" if r64 > 1 else "**missed**", f"{r32:.2f}x",
                             ("met" if r32 > 1 else "**missed**") if case.M >= 32 else "(M < 32)"])
        rep.add(C.markdown_table(["case", "JAX f64 / numba f64", "", "JAX f32 / numba f32", ""], jax_rows,
                                 align="lrlrl"))
        rep.add()

    # --- where the numba time goes: forward-only simulate vs loss_and_grad; fixed per-call cost
    brk = []
    for case, _s, _best, tn in results:
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
        "- torch eager: leaf tensors with `requires_grad` (PLRNN: A, a dense W multiplied by a constant "
        "off-diagonal mask so the diagonal stays zero, h, z0; RNN: W, V, b, z0), a Python loop over time "
        "under autograd, predictions stacked, one MSE, `loss.backward()`. PLRNN step: "
        "`z = torch.addcmul(torch.addmm(h, relu(z), W.T), A, z)` (GTF: then "
        "`z = cat(lerp(z[:, :3], x_t, alpha), z[:, 3:])`, the targets split into per-step views once with "
        "`unbind`). RNN step: `z = torch.addmm(u_t, tanh(z), W.T)` where `U = S @ V.T + b` for all steps is "
        "one product and is split into the per-step `u_t` once with `U.unbind(1)` (its backward is one "
        "`stack`; indexing `U[:, t]` inside the loop would make every step's backward materialise a "
        "(B, T, M) gradient, a cost growing as T^2).")
    rep.add(
        "- torch nn.RNN (tanh RNN only): with h_t = tanh(z_t) the model is h_t = tanh(W h_{t-1} + V x_t + b), "
        "i.e. `torch.nn.RNN(1, M, nonlinearity='tanh')` with `weight_hh = W`, `weight_ih = V`, "
        "`bias_ih = b`, `bias_hh = 0` (no gradient) and h_0 = tanh(z_0), run over x_1 .. x_{T-1}; h_0 is "
        "prepended to its outputs and the loss's z_t[:3] = W[:3] h_{t-1} + V[:3] x_t + b[:3] (t = 1 .. T) "
        "is one batched product with the same parameter tensors, so the gradients of W, V, b and z_0 are "
        "the full ones (checked). On the CPU, nn.RNN is ATen's C++ loop over time (the input projection of "
        "all steps at once, then per step one `addmm` with W and a `tanh`, each recorded by autograd): "
        "the same operations as the eager loop without Python's per-step overhead. torch has no fused "
        "PLRNN, so torch best is torch eager there."
        + (" torch.compile: `torch.compile(loss_fn)` of the eager loss (inductor, default mode; "
           "`loss.backward()` runs the compiled backward); dynamo unrolls the time loop into one graph, so "
           f"only cases with T <= {args.compile_max_t} are compiled; its first-call (compile) time is "
           "reported." if args.compile else ""))
    rep.add(
        "- JAX: `jax.jit(jax.value_and_grad(loss, argnums=(parameters..., z0)))` where `loss` runs the "
        "same step as torch in `jax.lax.scan` over time-major data (transposed once, outside the timed "
        "call), the predictions are the scan's stacked outputs and the loss one mean; the timed call is "
        "`jax.block_until_ready(f(...))`. PLRNN: `z = A * z + relu(z) @ (W * mask).T + h` (GTF: "
        "`concatenate` of the forced observed states and the rest); RNN: `U = S @ V.T + b` before the "
        "scan, `z = tanh(z) @ W.T + u_t` in it. float64 with `jax_enable_x64`; float32: the same function "
        "with float32 arrays. XLA on one thread: `XLA_FLAGS=--xla_cpu_multi_thread_eigen=false "
        "intra_op_parallelism_threads=1` set before jax is imported, and the process pinned to one CPU.")
    rep.add(
        "- One thread everywhere: OPENBLAS/MKL/OMP_NUM_THREADS=1 set before numpy, numba, torch and jax "
        "are imported; `numba.set_num_threads(1)` (so `loss_and_grad` runs the batch as one chunk); "
        "`torch.set_num_threads(1)`, `torch.set_num_interop_threads(1)`; the XLA flags above; every "
        "thread of the process pinned to one CPU with `os.sched_setaffinity` (`--cpu N`).")
    rep.add(
        "- Flop model for GFLOP/s: per time step and batch item the forward product W relu(z) (2 M^2), "
        "the backward product W^T g (2 M^2) and the rank-1 update of dL/dW (2 M^2), i.e. **6 M^2 B T** "
        "flops; element-wise work (O(M) per step) is not counted. The same count is used for the tanh RNN.")
    rep.add(
        "- Timing: 2 warm-up calls, then repeated `time.perf_counter` runs until both the minimum number "
        "of runs and the minimum time are reached, in alternating blocks (numba, then each peer); the median "
        "over all runs is reported. The matmul reference, the breakdown table and the fixed cost use one block each.")
    rep.add(
        f"- Caveat: measured on a machine with {os.cpu_count()} logical cores that may be shared with other "
        "jobs; numbers are preliminary (run-to-run differences of 10-20 % are possible). "
        f"Load average at the end of the run: {C.load_average()}. Total run time of this script: "
        f"{time.perf_counter() - t_start:.0f} s.")

    if args.out:
        rep.write(args.out)
        print(f"wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
