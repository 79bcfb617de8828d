#!/usr/bin/env python
"""Benchmark: loss and gradient of the LSTM, plrnn_numba against torch.nn.LSTM and JAX (jit + lax.scan).

One-layer LSTM with PyTorch's equations and gates (``plrnn_numba.LSTM``, the
state z = (h, c) of size 2N), one input (K = 1), T = 400 steps, N in
{2, 50, 200} hidden units and batches of B = 10 and 100; weights by PyTorch's
default initialisation (U(-1/sqrt(N), 1/sqrt(N))), inputs and targets
N(0, 1), initial states h(0), c(0) ~ N(0, 0.5^2).  Loss: the mean over
(batch, time) of ``(w . h_t + b_out - target)^2`` (a ``LinearReadout(1)`` of
z whose weights on c are zero).

The package (float64, analytic BPTT through ``pn.loss_and_grad``) against
``torch.nn.LSTM`` (its CPU implementation: ATen's C++ time loop in float64,
oneDNN's fused LSTM in float32) with ``loss.backward()``, on one thread
each, in the same process, with the same data and the same weights (copied).
Torch runs in float64 (the package's precision; loss and every gradient are
checked equal, rtol 1e-8, before timing) and in float32 (torch's default;
its largest difference to the float64 result is reported as accuracy
context, not checked).  JAX: ``jax.jit(jax.value_and_grad(loss))`` over
``jax.lax.scan`` (the input projection of all steps before the scan; per step
``h @ W_hh^T``, the gates and the readout) in float64 (checked equal, rtol
1e-8, before timing) and float32 (difference reported).  One thread
everywhere, the process pinned to one CPU (``--cpu N``).  ``torch.compile`` is tried on one case first, in a
subprocess, and timed only if it compiles nn.LSTM within ``COMPILE_LIMIT_S``.  First-call times
(numba: kernels from the on-disk cache or compiled) are reported separately.

Usage::

    python benchmarks/bench_lstm.py [--quick] [--sizes 2 50 200] [--no-compile] [--allow-rnn] [--no-jax]
                                    [--cpu N] [--no-startup] [--out FILE]

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
_INDUCTOR_CACHE = tempfile.TemporaryDirectory(prefix="bench_lstm_inductor_")
os.environ["TORCHINDUCTOR_CACHE_DIR"] = _INDUCTOR_CACHE.name

import argparse  # noqa: E402
import subprocess  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from dataclasses import dataclass  # noqa: E402

import _jax_peers as JP  # noqa: E402  (imports jax only when used)
import numba  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

import plrnn_numba as pn  # noqa: E402

T_STEPS, N_INPUTS = 400, 1
SIZES, BATCHES = (2, 50, 200), (10, 100)
RTOL = 1e-8
NOISY_SPREAD = 0.5
#: a compile that takes longer than this (seconds, in a subprocess) counts as "not in reasonable time"
COMPILE_LIMIT_S = 240


@dataclass
class Case:
    N: int
    B: int

    @property
    def label(self) -> str:
        return f"N = {self.N}, B = {self.B}"


def make_problem(case: Case, seed: int = 0):
    """Model, theta, batch, readout and readout parameters (the torch side copies them)."""
    rng = np.random.default_rng(seed)
    N, B = case.N, case.B
    model = pn.LSTM(N, n_inputs=N_INPUTS)
    theta = model.init(seed)  # PyTorch's default: U(-1/sqrt(N), 1/sqrt(N))
    inputs = rng.normal(size=(B, T_STEPS, N_INPUTS))
    targets = rng.normal(size=(B, T_STEPS, 1))
    z0 = rng.normal(0.0, 0.5, (B, 2 * N))
    batch = pn.Batch(targets=targets, inputs=inputs, z0=z0)
    readout = pn.LinearReadout(1)
    ro = readout.init(2 * N, seed)
    ro[N:2 * N] = 0.0  # a readout of h only (torch.nn.LSTM returns h_t, not c_t)
    ro[-1] = 0.1
    return model, theta, batch, readout, ro


#: columns of the package's float32 mode
F32_HEADERS = ["numba f32 ms", "torch f32 / numba f32", "JAX f32 / numba f32", "numba f32 diff"]


def numba_fn(model, theta, batch, readout, ro, dtype="float64"):
    def run():
        return pn.loss_and_grad(model, theta, batch, readout=readout, readout_params=ro, loss="mse", dtype=dtype)

    return run


def torch_fns(case: Case, model, theta, batch, ro, dtype, compiled: bool):
    """``run()`` (loss and backward) and ``result()`` (loss, theta gradient, readout gradient, z0 gradient).

    ``torch.nn.LSTM(1, N, batch_first=True)`` with the package's weights
    copied in, the readout applied once to the output sequence, one reduction
    for the loss.  The readout gradient is that of (w on h, b_out).
    """
    N = case.N
    lstm = torch.nn.LSTM(N_INPUTS, N, batch_first=True, dtype=dtype)
    d = model.unpack(theta)
    with torch.no_grad():
        for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            getattr(lstm, f"{name}_l0").copy_(torch.from_numpy(d[name]))
    leaves = (lstm.weight_ih_l0, lstm.weight_hh_l0, lstm.bias_ih_l0, lstm.bias_hh_l0)
    tt = dict(dtype=dtype)
    u = torch.tensor(batch.inputs, **tt)
    y = torch.tensor(batch.targets[..., 0], **tt)
    h0 = torch.tensor(batch.z0[:, :N], **tt, requires_grad=True)
    c0 = torch.tensor(batch.z0[:, N:], **tt, requires_grad=True)
    w = torch.tensor(ro[:N], **tt, requires_grad=True)
    b_out = torch.tensor(ro[-1:], **tt, requires_grad=True)
    ro_leaves = (w, b_out)

    def loss_fn(u, h0, c0, w, b_out, y):
        out, _ = lstm(u, (h0[None], c0[None]))  # (B, T, N)
        return ((out @ w + b_out - y) ** 2).mean()

    fn = torch.compile(loss_fn) if compiled else loss_fn

    def run():
        for p in (*leaves, *ro_leaves, h0, c0):
            p.grad = None
        loss = fn(u, h0, c0, w, b_out, y)
        loss.backward()
        return loss

    def result():
        loss = run()
        g = torch.cat([p.grad.reshape(-1) for p in leaves]).double().numpy().copy()
        g_ro = torch.cat([p.grad.reshape(-1) for p in ro_leaves]).double().numpy().copy()
        g_z0 = torch.cat([h0.grad, c0.grad], 1).double().numpy().copy()
        return float(loss.detach()), g, g_ro, g_z0

    return run, result


def _pairs(N, r, torch_result):
    """(name, numba, torch) for the loss and every gradient torch computes."""
    t_loss, t_grad, t_gro, t_gz0 = torch_result
    gro = np.r_[r.grad_readout[:N], r.grad_readout[-1:]]  # torch has no readout weights on c
    return [("loss", np.array([r.loss]), np.array([t_loss])), ("grad", r.grad, t_grad),
            ("grad_readout", gro, t_gro), ("grad_z0", r.grad_z0, t_gz0)]


def check_agreement(label: str, N: int, r, torch_result) -> float:
    """Compare loss and gradients (rtol 1e-8); the largest difference relative to the largest entry."""
    if not r.finite:
        raise AssertionError(f"{label}: numba loss/gradient not finite")
    diffs = []
    for name, a, b in _pairs(N, r, torch_result):
        if a.shape != b.shape:
            raise AssertionError(f"{label}: {name} shapes differ: numba {a.shape}, torch {b.shape}")
        scale = np.max(np.abs(b))
        np.testing.assert_allclose(a, b, rtol=RTOL, atol=RTOL * 1e-3 * scale, err_msg=f"{label}: {name}")
        diffs.append(float(np.max(np.abs(a - b)) / scale))
    return max(diffs)


def relative_difference(N: int, r, torch_result) -> float:
    """Largest difference (loss, gradients) relative to the largest entry; no check (float32)."""
    return max(float(np.max(np.abs(a - b)) / np.max(np.abs(a))) for _, a, b in _pairs(N, r, torch_result))


COMPILE_NOTE = ""

_COMPILE_PROBE = r"""
import os, sys, time, warnings
sys.path.insert(0, sys.argv[1])
import bench_lstm as BL
import torch
warnings.simplefilter("ignore")
torch._dynamo.config.allow_rnn = sys.argv[3] == "1"
BL.C.single_thread_torch_numba()
case = BL.Case(int(sys.argv[2]), 10)
model, theta, batch, readout, ro = BL.make_problem(case)
run, _ = BL.torch_fns(case, model, theta, batch, ro, torch.float64, compiled=True)
t0 = time.perf_counter()
run()
print(time.perf_counter() - t0)
print(torch._dynamo.utils.counters["stats"]["unique_graphs"])
"""


def probe_compile(N: int, allow_rnn: bool) -> tuple[bool, str]:
    """Whether torch.compile compiles nn.LSTM (graphs captured) within COMPILE_LIMIT_S, in a subprocess."""
    what = "with `torch._dynamo.config.allow_rnn = True` (experimental)" if allow_rnn else "in its default mode"
    # importing bench_lstm there gives the subprocess its own empty inductor cache directory
    here = os.path.dirname(os.path.abspath(__file__))
    args = [sys.executable, "-c", _COMPILE_PROBE, here, str(N), str(int(allow_rnn))]
    try:
        proc = subprocess.run(args, capture_output=True, text=True, timeout=COMPILE_LIMIT_S)
    except subprocess.TimeoutExpired:
        return False, (f"{what} did not finish its first call (N = {N}, B = 10, T = {T_STEPS}) within "
                       f"{COMPILE_LIMIT_S} s: not timed")
    if proc.returncode != 0:
        err = proc.stderr.strip().splitlines()
        return False, f"{what} failed: {err[-1] if err else proc.returncode}"
    first, graphs = proc.stdout.split()[-2:]
    if int(graphs) == 0:
        return False, (f"{what} captured no graph (dynamo does not support nn.LSTM and runs the whole "
                       f"function eagerly; first call {float(first):.2f} s), so a compiled column would time "
                       "eager torch: not timed. `--allow-rnn` tries dynamo's experimental LSTM support")
    return True, f"{what} compiled {graphs} graph(s), first call {float(first):.1f} s (N = {N}, B = 10)"


_STARTUP_CODE = r"""
import json, sys, time
t0 = time.perf_counter()
sys.path.insert(0, sys.argv[1])
import numpy as np
import plrnn_numba as pn
t1 = time.perf_counter()
rng = np.random.default_rng(0)
m = pn.LSTM(2, n_inputs=1)
ro = pn.LinearReadout(1)
batch = pn.Batch(targets=rng.normal(size=(10, 400, 1)), inputs=rng.normal(size=(10, 400, 1)),
                 z0=np.zeros((10, 4)))
pn.loss_and_grad(m, m.init(0), batch, readout=ro, readout_params=ro.init(4, 0), loss="mse")
t2 = time.perf_counter()
m = pn.LSTM(50, n_inputs=1)
batch = pn.Batch(targets=rng.normal(size=(100, 400, 1)), inputs=rng.normal(size=(100, 400, 1)),
                 z0=np.zeros((100, 100)))
pn.loss_and_grad(m, m.init(0), batch, readout=ro, readout_params=ro.init(100, 0), loss="mse")
t3 = time.perf_counter()
print(json.dumps({"import": t1 - t0, "small": t2 - t1, "blas": t3 - t2}))
"""


def repeats(cost: float, quick: bool) -> tuple[float, int, int, int]:
    """(min_time, min_runs, rounds, warmup) for a case whose slowest side takes ``cost`` seconds a call."""
    if quick:
        return (0.3, 5, 1, 1) if cost < 0.3 else (0.0, 2, 1, 1)
    if cost < 0.1:
        return 1.5, 15, 3, 2
    if cost < 0.5:
        return 1.5, 9, 3, 1
    return 0.0, 8, 2, 1


def _ratio(t, tn) -> str:
    """``peer time / numba time`` with a ``(noisy)`` flag."""
    if t is None:
        return "n/a"
    return f"{C.fmt(t.median / tn.median, 2)}x" + (" (noisy)" if max(t.spread, tn.spread) > NOISY_SPREAD else "")


def openblas_kernels() -> str:
    env = {k: os.environ[k] for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE") if k in os.environ}
    if not env:
        return "native (OPENBLAS_CORETYPE unset: the kernels OpenBLAS detects for this CPU)"
    return ", ".join(f"{k}={v}" for k, v in env.items()) + " (from the environment)"


def main(argv=None) -> int:
    global COMPILE_NOTE
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="fewer repeats (a smoke run)")
    ap.add_argument("--sizes", type=int, nargs="+", default=list(SIZES), metavar="N",
                    help=f"hidden sizes (default {' '.join(map(str, SIZES))})")
    ap.add_argument("--no-compile", action="store_true", help="skip torch.compile (eager torch only)")
    ap.add_argument("--allow-rnn", action="store_true",
                    help="torch.compile with torch._dynamo.config.allow_rnn = True (experimental; slow to compile)")
    ap.add_argument("--no-jax", action="store_true", help="skip the JAX columns")
    C.add_cpu_argument(ap)
    ap.add_argument("--no-startup", action="store_true", help="skip numba's compile / cached start-up measurement")
    ap.add_argument("--subsection", action="store_true",
                    help="a short report under a level-3 heading (the timing table only), e.g. to add a rerun "
                         "with other OpenBLAS kernels below a full report")
    ap.add_argument("--out", metavar="FILE", help="also write the markdown report to FILE")
    args = ap.parse_args(argv)

    t_start = time.perf_counter()
    C.single_thread_torch_numba()
    use_jax, jax_note = JP.status(args.no_jax)
    rep = C.Report()
    if args.subsection:
        kind = "native" if "OPENBLAS_CORETYPE" not in os.environ else "from the environment"
        rep.add(f"### LSTM, OpenBLAS kernels {kind}")
    else:
        rep.add("## LSTM: analytic BPTT (numba) vs torch.nn.LSTM and JAX")
    rep.add()
    rep.add(f"Generated by `benchmarks/bench_lstm.py` on {time.strftime('%Y-%m-%d %H:%M %Z')}"
            + (" (`--quick`: fewer repeats)" if args.quick else "") + ".")
    rep.add()
    rep.add(f"- **command**: `{C.command_line()}`")
    if args.subsection:
        rep.add(f"- **load average (1, 5, 15 min)**: {C.load_average()}")
        rep.add(f"- **OpenBLAS kernels**: {openblas_kernels()}")
    else:
        rep.add(C.key_value_list(C.machine_info()))
        vers = C.versions(("numpy", "numba", "torch"))
        vers["jax"] = jax_note
        vers["BLAS (numpy)"] = C.blas_info()
        vers["OpenBLAS kernels"] = openblas_kernels()
        vers["plrnn_numba"] = f"{pn.__version__} (git {C.git_revision(ROOT)})"
        rep.add(C.key_value_list(vers))
    rep.add(f"- **threads**: torch {torch.get_num_threads()} (interop {torch.get_num_interop_threads()}), "
            f"numba {numba.get_num_threads()}, OPENBLAS/MKL/OMP_NUM_THREADS={os.environ['OPENBLAS_NUM_THREADS']}, "
            f"XLA_FLAGS=`{os.environ.get('XLA_FLAGS', '')}`")
    rep.add(f"- **pinned to**: {C.pinned_cpu_text()}")
    rep.add()

    use_compile = False
    if args.no_compile:
        COMPILE_NOTE = "not tried (`--no-compile`)"
    else:
        torch._dynamo.config.allow_rnn = args.allow_rnn
        use_compile, COMPILE_NOTE = probe_compile(min(args.sizes), args.allow_rnn)
        print(f"  torch.compile probe: {COMPILE_NOTE}", file=sys.stderr, flush=True)

    cases = [Case(N, B) for N in args.sizes for B in BATCHES]
    rows, first_rows = [], []
    for case in cases:
        model, theta, batch, readout, ro = make_problem(case)
        nb = numba_fn(model, theta, batch, readout, ro)
        t_first_nb, r = C.timed_first_call(nb)
        t64_run, t64_result = torch_fns(case, model, theta, batch, ro, torch.float64, compiled=False)
        t_first_64, _ = C.timed_first_call(t64_run)
        cost, res64 = C.timed_first_call(t64_result)
        diff64 = check_agreement(f"{case.label} (float64)", case.N, r, res64)
        t32_run, t32_result = torch_fns(case, model, theta, batch, ro, torch.float32, compiled=False)
        t_first_32, _ = C.timed_first_call(t32_run)
        diff32 = relative_difference(case.N, r, t32_result())
        nb32 = numba_fn(model, theta, batch, readout, ro, "float32")
        r32 = nb32()
        ndiff32 = max(float(np.max(np.abs(a - b)) / np.max(np.abs(a)))
                      for a, b in ((np.array([r.loss]), np.array([r32.loss])), (r.grad, r32.grad),
                                   (r.grad_z0, r32.grad_z0)))
        fns, names = [t64_run, t32_run, nb, nb32], ["float64", "float32", "numba", "numba float32"]
        t_first_comp = float("nan")
        jdiff32 = float("nan")
        t_first_jax = {}
        if use_jax:
            for dt in ("float64", "float32"):
                j_run, j_result = JP.lstm(model, theta, batch, ro, dt)
                t_first_jax[dt], _ = C.timed_first_call(j_run)
                if dt == "float64":
                    diff64 = max(diff64, check_agreement(f"{case.label} (JAX float64)", case.N, r, j_result()))
                else:
                    jdiff32 = relative_difference(case.N, r, j_result())
                fns.append(j_run)
                names.append(f"JAX {dt}")
        if use_compile:
            tc_run, tc_result = torch_fns(case, model, theta, batch, ro, torch.float64, compiled=True)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                t_first_comp, _ = C.timed_first_call(tc_run)
            diff64 = max(diff64, check_agreement(f"{case.label} (compiled)", case.N, r, tc_result()))
            fns.insert(2, tc_run)
            names.insert(2, "compiled")
        if cost < 0.5:  # the slowest side sets the repeats (numba's first call may include compilation)
            cost = max(cost, C.timed_first_call(nb)[0])
        min_time, min_runs, rounds, warmup = repeats(cost, args.quick)
        timings = dict(zip(names, C.time_interleaved(fns, rounds=rounds, min_time=min_time, min_runs=min_runs,
                                                     warmup=warmup)))
        tn, t64, t32 = timings["numba"], timings["float64"], timings["float32"]
        tc = timings.get("compiled")
        noisy64 = max(t64.spread, tn.spread) > NOISY_SPREAD
        noisy32 = max(t32.spread, tn.spread) > NOISY_SPREAD
        tn32 = timings["numba float32"]
        jax_cols = [_ratio(timings.get("JAX float64"), tn), _ratio(timings.get("JAX float32"), tn)]
        f32_cols = [C.fmt(tn32.median * 1e3), f"{C.fmt(t32.median / tn32.median, 2)}x",
                    _ratio(timings.get("JAX float32"), tn32), f"{ndiff32:.1e}"]
        rows.append({
            "head": [case.label, C.fmt(t64.median * 1e3), C.fmt(t32.median * 1e3)],
            "compile": ["n/a" if tc is None else C.fmt(tc.median * 1e3)],
            "tail": [C.fmt(tn.median * 1e3),
                     f"{C.fmt(t64.median / tn.median, 2)}x" + (" (noisy)" if noisy64 else ""),
                     f"{C.fmt(t64.cpu_median / tn.cpu_median, 2)}x",
                     f"{C.fmt(t32.median / tn.median, 2)}x" + (" (noisy)" if noisy32 else "")] + jax_cols
                    + [f"{tn.runs}", f"{diff64:.1e}", f"{diff32:.1e}",
                       "n/a" if jdiff32 != jdiff32 else f"{jdiff32:.1e}"] + f32_cols})
        first_rows.append([case.label, C.fmt(t_first_nb * 1e3), C.fmt(t_first_64 * 1e3), C.fmt(t_first_32 * 1e3)]
                          + [C.fmt(t_first_jax[dt], 2) if dt in t_first_jax else "n/a"
                             for dt in ("float64", "float32")]
                          + ([C.fmt(t_first_comp, 3)] if use_compile else []))
        print(f"  {case.label}: " + ", ".join(f"{k} {t.median * 1e3:.3f} ms (IQR {t.spread:.0%}, {t.runs} runs)"
                                              for k, t in timings.items())
              + f"; float64/numba {t64.median / tn.median:.2f}x, float32/numba {t32.median / tn.median:.2f}x; "
              f"max rel diff {diff64:.1e} (float64 peers), {diff32:.1e} (torch float32), {jdiff32:.1e} (JAX float32)",
              file=sys.stderr, flush=True)

    if args.subsection:
        rep.add("Columns, repeats and checks as in the full report; only the OpenBLAS kernels differ (torch "
                "uses MKL and oneDNN, so its columns measure the same code).")
        rep.add()
        sub_headers = ["case", "torch f64 ms", "torch f32 ms", "numba ms", "vs f64", "vs f64 (CPU)", "vs f32",
                       "JAX f64 / numba", "JAX f32 / numba", "runs", "f64 diff", "f32 diff", "JAX f32 diff",
                       *F32_HEADERS]
        rep.add(C.markdown_table(sub_headers, [r["head"] + r["tail"] for r in rows],
                                 align="l" + "r" * (len(sub_headers) - 1)))
        rep.add()
        rep.add(f"Load average at the end: {C.load_average()}. Total run time of this script: "
                f"{time.perf_counter() - t_start:.0f} s.")
        if args.out:
            rep.write(args.out)
            print(f"wrote {args.out}", file=sys.stderr)
        return 0
    rep.add(f"Median wall time of one loss-and-gradient evaluation (T = {T_STEPS}, K = {N_INPUTS} input, "
            "one thread; warm-up excluded; cases whose slowest side takes under 0.1 s a call: at least 15 "
            "runs and 1.5 s per entry; 0.1-0.5 s: at least 9 runs and 1.5 s; over 0.5 s: 8 runs after one "
            "warm-up call; the sides timed in alternating blocks (3, 3, 2) and the runs pooled"
            + (" (`--quick`: fewer)" if args.quick else "") + "). `numba` is float64. `vs f64` / `vs f32`: "
            "torch's time in float64 / float32 divided by numba's (above 1: the package is faster); "
            "`vs f64 (CPU)`: the same from the process CPU time. `runs`: numba's timed runs. `f64 diff`: "
            "largest difference of loss, parameter, readout (w on h, b_out) and initial-state gradients "
            "between numba and torch float64, "
            f"relative to the largest entry (checked against rtol {RTOL:g} before timing); `f32 diff`: the same "
            "for torch float32 against the float64 result (not checked). `JAX f64 / numba`, `JAX f32 / numba`: "
            "JAX's time (`jit(value_and_grad)` over `lax.scan`) divided by numba's; JAX float64 is included in "
            "`f64 diff` (checked), `JAX f32 diff` as `f32 diff` (not checked). `numba f32 ms`: the package's "
            "float32 mode (`dtype='float32'`), against torch float32 and JAX float32; `numba f32 diff`: its "
            "difference from the package's float64 result (loss, parameter and initial-state gradients)."
            + ("" if use_jax else f" JAX: {jax_note}."))
    rep.add()
    headers = ["case", "torch f64 ms", "torch f32 ms"] + (["torch.compile f64 ms"] if use_compile else []) + [
        "numba ms", "vs f64", "vs f64 (CPU)", "vs f32", "JAX f64 / numba", "JAX f32 / numba", "runs", "f64 diff",
        "f32 diff", "JAX f32 diff"] + F32_HEADERS
    rep.add(C.markdown_table(headers, [r["head"] + (r["compile"] if use_compile else []) + r["tail"] for r in rows],
                             align="l" + "r" * (len(headers) - 1)))
    rep.add()
    rep.add(f"torch.compile: {COMPILE_NOTE}.")
    rep.add()
    rep.add("First call in this process (included in nothing above): numba's `loss_and_grad` (kernels loaded "
            "from numba's on-disk cache when it is warm, else compiled; the first row also loads the BPTT "
            "engine), torch float64 and float32, JAX float64 and float32 (trace and compile)"
            + (", torch.compile (empty inductor cache directory)" if use_compile else "") + ".")
    rep.add()
    rep.add(C.markdown_table(["case", "numba first call ms", "torch f64 first call ms", "torch f32 first call ms",
                              "JAX f64 first call s", "JAX f32 first call s"]
                             + (["torch.compile first call s"] if use_compile else []), first_rows,
                             align="lrrrrr" + ("r" if use_compile else "")))
    rep.add()
    if not args.no_startup:
        n_cached = 1 if args.quick else 3
        cold, cached_runs, _ = C.startup_times(_STARTUP_CODE, [str(ROOT)], n_cached)
        cached = C.median_of(cached_runs)
        rep.add("numba compilation and start-up, each in a new process with `NUMBA_CACHE_DIR` set to a fresh "
                "directory: first with the empty cache (the LSTM kernels and the BPTT engine compile), then "
                f"with the cache it filled (median of {n_cached}). Seconds for `import plrnn_numba`, the first "
                "call (N = 2, B = 10, T = 400: the batch lanes), then a call with N = 50, B = 100 (the BLAS "
                "branches of the same kernels; with the empty cache more compilation happens in this call, cached "
                "it is mostly the computation), and the whole process.")
        rep.add()
        keys = ("import", "small", "blas", "process")
        rep.add(C.markdown_table(["", "import s", "first call (N = 2, B = 10) s", "then N = 50, B = 100 s",
                                  "process s"],
                                 [["empty cache (compile)"] + [f"{cold[k]:.3f}" for k in keys],
                                  ["cached start-up"] + [f"{cached[k]:.3f}" for k in keys]], align="lrrrr"))
        rep.add()
    rep.add("### Method")
    rep.add()
    rep.add("- numba: `plrnn_numba.loss_and_grad(LSTM(N, n_inputs=1), theta, batch, readout=LinearReadout(1), "
            "readout_params=ro, loss='mse')` with the readout weights on c set to zero: the whole public call "
            "(argument checks, forward, backward), float64.")
    rep.add("- torch: `torch.nn.LSTM(1, N, batch_first=True, dtype=float64 or float32)` with the package's "
            "`weight_ih, weight_hh, bias_ih, bias_hh` copied in; `out, _ = lstm(u, (h0, c0))`; "
            "`((out @ w + b_out - target)**2).mean()`; `loss.backward()`; gradients of the four parameters, "
            "w, b_out, h0 and c0. nn.LSTM runs its CPU implementation, no Python loop: in float64 ATen's C++ "
            "loop over time (the input projection for all steps at once, then per step one product with W_hh "
            "and the pointwise gate operations, each recorded by autograd), in float32 oneDNN's fused LSTM "
            "primitive (forward and backward).")
    rep.add("- JAX: `jax.jit(jax.value_and_grad(loss, argnums=(W_ih, W_hh, b_ih, b_hh, w, b_out, h0, c0)))`; "
            "`loss` computes the input projection `x_t W_ih^T + b_ih + b_hh` of all steps in one product, then "
            "`jax.lax.scan` over time-major data (transposed once, outside the timed call) with per step "
            "`a = h @ W_hh^T + p_t`, the gates (`jax.nn.sigmoid`, `tanh`), `c = f c + i g`, `h = o tanh(c)` and "
            "the readout `h @ w` as the scan's output, then one mean; timed with `jax.block_until_ready`. "
            "float64 with `jax_enable_x64`; float32 the same function with float32 arrays. One XLA thread: "
            "`XLA_FLAGS=--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1` before jax is "
            "imported, and every thread of the process pinned to one CPU (`os.sched_setaffinity`, `--cpu N`).")
    rep.add("- Work: the BPTT engine's forward pass keeps the LSTM's tape (the gates i, f, g, o and tanh(c') "
            "of every step, 5N floats per batch item), so the pullbacks do not recompute the pre-activations "
            "or the transcendental functions: three (B x N) x (N x 4N) products per step (forward; "
            "W_hh^T delta in the state pullback; the gradient delta^T h in the parameter pullback, during "
            "the backward sweep over blocks of whole steps of about 256 rows, while they are in cache), "
            "as torch's (forward, dh, dW_hh). The per-step products are row "
            "loops below 16 batch rows (or 8 units) and BLAS (`np.dot`, OpenBLAS) from there; below 8 units "
            "with 8 batch rows or more, every kernel works on transposed copies of the step's rows (one row "
            "per unit and gate), so that its loops run over the batch. "
            "The float32 mode runs the same kernels compiled for float32 arrays (single-precision BLAS).")
    rep.add("- One thread: OPENBLAS/MKL/OMP_NUM_THREADS=1 before the imports, `torch.set_num_threads(1)`, "
            "`numba.set_num_threads(1)`. OPENBLAS_CORETYPE applies to OpenBLAS (numpy and numba's `np.dot`); "
            "torch uses MKL and oneDNN.")
    rep.add(f"- Caveat: a machine with {os.cpu_count()} logical cores that may be shared with other jobs. "
            f"Load average at the end: {C.load_average()}. Total run time of this script: "
            f"{time.perf_counter() - t_start:.0f} s.")
    if args.out:
        rep.write(args.out)
        print(f"wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
