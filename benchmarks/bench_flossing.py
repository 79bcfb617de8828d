"""Benchmark: gradient flossing and Lyapunov spectra in plrnn_numba against PyTorch autograd and JAX.

    python benchmarks/bench_flossing.py [--quick] [--no-jax] [--cpu N] [--out docs/performance_flossing.md]

Same process, same computation, one thread each (the process pinned to one
CPU): a vanilla tanh RNN ``h <- W tanh(h) + b`` (N units), k exponents by QR
every step over a 55-step trajectory; the flossing step is the loss
``sum_i lambda_i^2`` and its gradient (numba: the analytic pullback; torch:
autograd through ``torch.linalg.qr``; JAX: ``jit(value_and_grad)`` over
``lax.scan`` through ``jnp.linalg.qr``, in float64 and float32), the spectrum
evaluation the forward pass only.  torch and JAX float64 are checked equal to
the package (gradient within 1e-7 of the largest entry) before timing.
"""

from __future__ import annotations

import _common as C

C.limit_threads(1)  # before numpy / numba / torch / jax are imported (also XLA_FLAGS)
C.pin_to_cpu(C.cpu_from_argv())  # every thread on one CPU (--cpu N)
C.add_repo_to_path()

import argparse  # noqa: E402
import os  # noqa: E402
from functools import partial  # noqa: E402

import _jax_peers as JP  # noqa: E402  (imports jax only when used)
import numpy as np  # noqa: E402

import plrnn_numba as pn  # noqa: E402
from plrnn_numba.dynamics.flossing import Flossing, floss, flossing_loss_and_grad  # noqa: E402

#: gradient agreement of the float64 peers with the package (relative to the largest entry)
GRAD_TOL = 1e-7
#: JAX float32 against the package's float64 gradient: reported, flagged above this
F32_TOL = 1e-3
NOISY_SPREAD = 0.5


def torch_flossing(torch, W0, b0, z0, q0, T, grad=True):
    """The torch peer: the Jacobian product ``W diag(1 - tanh(h)^2) Q`` as ``W @ ((1 - tanh(h)^2)[:, None] * Q)``
    (no N x N Jacobian formed), ``torch.linalg.qr`` with the signs of R's diagonal made positive."""
    W = torch.tensor(W0, requires_grad=grad)
    b = torch.tensor(b0, requires_grad=grad)
    h = torch.tensor(z0)
    Q = torch.tensor(q0)
    logs = torch.zeros(q0.shape[1], dtype=torch.float64)
    for _ in range(T):
        th = torch.tanh(h)
        Q, R = torch.linalg.qr(W @ ((1 - th**2)[:, None] * Q))
        r = torch.diagonal(R)
        Q = Q * torch.sign(r)[None, :]
        logs = logs + torch.log(torch.abs(r))
        h = W @ th + b
    loss = ((logs / T) ** 2).sum()
    if grad:
        loss.backward()
        return loss.item(), np.concatenate([W.grad.numpy().ravel(), b.grad.numpy()])
    return loss.item(), None


def _ratio(t, tn) -> str:
    if t is None:
        return "n/a"
    return f"{C.fmt(t.median / tn.median, 2)}x" + (" (noisy)" if max(t.spread, tn.spread) > NOISY_SPREAD else "")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="fewer cases, repeats and epochs (a smoke run)")
    ap.add_argument("--no-jax", action="store_true", help="skip the JAX columns")
    C.add_cpu_argument(ap)
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    import torch

    torch.set_num_threads(1)
    torch.set_default_dtype(torch.float64)
    pn.config.set_num_threads(1)
    use_jax, jax_note = JP.status(args.no_jax)
    rep = C.Report()
    rep.add("## Gradient flossing and Lyapunov spectra (numba) vs PyTorch autograd and JAX\n")
    rep.add(f"- **command**: `{C.command_line()}`")
    rep.add(C.key_value_list({**C.machine_info(), **C.versions(("numpy", "numba", "torch")), "jax": jax_note}))
    rep.add("- **threads**: one (torch, numba, BLAS; XLA_FLAGS="
            f"`{os.environ.get('XLA_FLAGS', '')}`)")
    rep.add(f"- **pinned to**: {C.pinned_cpu_text()}\n")
    min_time = 0.3 if args.quick else 1.0
    T = 55
    cases = [(80, 75), (80, 1), (80, 40), (20, 20), (40, 40), (160, 150)]
    if args.quick:
        cases = cases[:4]
    rows, rows32, first_rows = [], [], []
    for N, k in cases:
        model = pn.VanillaRNN(N)
        theta = model.init(0, g=1.0)
        d = model.unpack(theta)
        rng = np.random.default_rng(1)
        z0 = rng.standard_normal(N)
        q, r = np.linalg.qr(rng.standard_normal((N, k)))
        q0 = q * np.sign(np.diag(r))
        res = flossing_loss_and_grad(model, theta, k, z0=z0, n_steps=T, q0=q0)
        scale = np.abs(res.grad).max()

        def check(name, loss, grad, res=res, scale=scale, N=N, k=k):
            rel = max(abs(loss - res.loss) / abs(res.loss), np.abs(grad - res.grad).max() / scale)
            assert rel < GRAD_TOL, f"N={N}, k={k}: {name} differs from numba by {rel:.1e}"
            return rel

        tl, tg = torch_flossing(torch, d["W"], d["b"], z0, q0, T)
        rel = check("torch", tl, tg)
        assert abs(torch_flossing(torch, d["W"], d["b"], z0, q0, T, grad=False)[0] - res.loss) < 1e-9 * res.loss
        step_fns = {"numba": partial(flossing_loss_and_grad, model, theta, k, z0=z0, n_steps=T, q0=q0),
                    "torch": partial(torch_flossing, torch, d["W"], d["b"], z0, q0, T),
                    "numba float32": partial(flossing_loss_and_grad, model, theta, k, z0=z0, n_steps=T, q0=q0,
                                             dtype="float32")}
        # forward only: the spectrum estimate
        spec_fns = {"numba": partial(pn.dynamics.lyapunov_spectrum, model, theta, k=k, n_steps=T, n_transient=0,
                                     n_transient_ons=0, z0=z0),
                    "torch": partial(torch_flossing, torch, d["W"], d["b"], z0, q0, T, grad=False),
                    "numba float32": partial(pn.dynamics.lyapunov_spectrum, model, theta, k=k, n_steps=T,
                                             n_transient=0, n_transient_ons=0, z0=z0, dtype="float32")}
        r32 = step_fns["numba float32"]()
        rel_n32 = max(abs(r32.loss - res.loss) / abs(res.loss), np.abs(r32.grad - res.grad).max() / scale)
        rel32 = float("nan")
        first = []
        if use_jax:
            for dt in ("float64", "float32"):
                j_run, j_result = JP.flossing(d["W"], d["b"], z0, q0, T, dt)
                s_run, s_result = JP.flossing(d["W"], d["b"], z0, q0, T, dt, grad=False)
                t_first, _ = C.timed_first_call(j_run)
                first.append(C.fmt(t_first, 2))
                jl, jg = j_result()
                sl, _ = s_result()
                if dt == "float64":
                    rel = max(rel, check("JAX float64", jl, jg))
                    assert abs(sl - res.loss) < 1e-9 * res.loss, "JAX float64 spectrum"
                else:
                    rel32 = max(abs(jl - res.loss) / abs(res.loss), np.abs(jg - res.grad).max() / scale)
                step_fns[f"JAX {dt}"] = j_run
                spec_fns[f"JAX {dt}"] = s_run
            first_rows.append([f"N={N}, k={k}"] + first)
        t_step = dict(zip(step_fns, C.time_interleaved(list(step_fns.values()), min_time=min_time)))
        t_spec = dict(zip(spec_fns, C.time_interleaved(list(spec_fns.values()), min_time=min_time)))
        row = [f"N={N}, k={k}"]
        for t in (t_step, t_spec):
            tn = t["numba"]
            row += [C.fmt(tn.median * 1e3), _ratio(t["torch"], tn), _ratio(t.get("JAX float64"), tn),
                    _ratio(t.get("JAX float32"), tn)]
        row += [f"{rel:.1e}", "n/a" if rel32 != rel32 else f"{rel32:.1e}" + (" (!)" if rel32 > F32_TOL else "")]
        rows.append(row)
        row32 = [f"N={N}, k={k}"]
        for t in (t_step, t_spec):
            t32 = t["numba float32"]
            row32 += [C.fmt(t32.median * 1e3), _ratio(t["numba"], t32), _ratio(t.get("JAX float32"), t32)]
        row32 += [f"{rel_n32:.1e}" + (" (!)" if rel_n32 > F32_TOL else "")]
        rows32.append(row32)
        print(row, row32, flush=True)
    rep.add(f"Median wall time per evaluation over a {T}-step trajectory (QR every step; all sides timed in "
            "alternating blocks): the package's (`numba ms`, float64) and each peer's time divided by it (above 1: "
            "the package is faster). `flossing`: loss and exact gradient; `spectrum`: forward only (numba: "
            "`lyapunov_spectrum`; torch: the same loop without autograd; JAX: the jitted forward scan). "
            "`max rel diff`: largest difference of the loss and gradient between numba and the float64 peers "
            f"(torch, JAX), relative to the largest entry (checked < {GRAD_TOL:g} before timing); `JAX f32 diff`: "
            f"the same for JAX float32 against numba's float64 (`(!)` above {F32_TOL:g}; timed regardless).\n")
    rep.add(C.markdown_table(["case", "numba flossing ms", "torch / numba", "JAX f64 / numba", "JAX f32 / numba",
                              "numba spectrum ms", "torch / numba", "JAX f64 / numba", "JAX f32 / numba",
                              "max rel diff", "JAX f32 diff"], rows))
    rep.add("\nThe package's float32 mode (`dtype=\"float32\"`: the same engines compiled for float32 arrays, "
            "single-precision BLAS and LAPACK; the sums of log R_ii and the loss in float64), same runs: its time, "
            "the float64 time divided by it, JAX float32's time divided by it. `numba f32 diff`: the difference "
            "of its loss and gradient from the float64 result, relative to the largest entry (`(!)` above "
            f"{F32_TOL:g}).\n")
    rep.add(C.markdown_table(["case", "numba f32 flossing ms", "numba f64 / f32", "JAX f32 / numba f32",
                              "numba f32 spectrum ms", "numba f64 / f32", "JAX f32 / numba f32",
                              "numba f32 diff"], rows32))
    if not use_jax:
        rep.add(f"\nJAX: {jax_note}.")
    else:
        rep.add("\nJAX first call of the flossing step (trace and compile, seconds; not in the table above):\n")
        rep.add(C.markdown_table(["case", "JAX f64 first call s", "JAX f32 first call s"], first_rows))
    rep.add("\nPeers: torch runs a Python loop of 55 steps under autograd (`torch.linalg.qr`, its backward "
            "through the QR); JAX `jax.jit(jax.value_and_grad(loss))` over `jax.lax.scan` of the same step with "
            "`jnp.linalg.qr` (float64 with `jax_enable_x64`; float32: the same function with float32 arrays), "
            "timed with `jax.block_until_ready`; the spectrum `jax.jit` of the forward scan. Both form the "
            "Jacobian product as `W @ ((1 - tanh(h)^2)[:, None] * Q)` (O(N^2 k), no N x N Jacobian). One "
            "thread: BLAS variables, `torch.set_num_threads(1)`, `--xla_cpu_multi_thread_eigen=false "
            "intra_op_parallelism_threads=1`, the process pinned to one CPU.")
    # fixed cost per call and cost per step (N = 80, k = 1): calls of 1, 55 and 1055 steps
    model = pn.VanillaRNN(80)
    theta = model.init(0, g=1.0)
    rng = np.random.default_rng(1)
    z0 = rng.standard_normal(80)
    q0 = np.linalg.qr(rng.standard_normal((80, 1)))[0]
    split = []
    for name, fn in (("flossing", lambda T: flossing_loss_and_grad(model, theta, 1, z0=z0, n_steps=T, q0=q0)),
                     ("spectrum", lambda T: pn.dynamics.lyapunov_spectrum(model, theta, k=1, n_steps=T,
                                                                          n_transient=0, n_transient_ons=0,
                                                                          z0=z0))):
        t = {T: C.time_call(partial(fn, T), min_time=min_time).median for T in (1, 55, 1055)}
        per_step = (t[1055] - t[1]) / 1054
        split.append([name, C.fmt(t[1] * 1e6), C.fmt(per_step * 1e6), C.fmt(t[55] * 1e3)])
    rep.add("\nFixed cost and cost per step of the package's calls (N = 80, k = 1; medians of calls with 1, 55 "
            "and 1055 steps; per step: the difference of the 1055- and 1-step calls over 1054 steps):\n")
    rep.add(C.markdown_table(["call", "one step us", "per further step us", "55 steps ms"], split))
    # the paper's 500 preflossing epochs (N = 80, k = 75, 55 steps): about 37 s on its machine
    n_ep = 50 if args.quick else 500
    import time

    model = pn.VanillaRNN(80)
    theta = model.init(0)
    t0 = time.perf_counter()
    floss(model, theta, n_ep, Flossing(k=75, n_steps=55, n_transient=20), seed=0)
    dt = time.perf_counter() - t0
    rep.add(f"\n{n_ep} preflossing epochs (N = 80, k = 75, 55 steps after a 20-step transient, Adam): "
            f"**{dt:.1f} s**" + (f" (extrapolated to 500: {dt * 500 / n_ep:.1f} s)" if n_ep != 500 else "")
            + "; the paper reports about 37 s for 500 epochs on its machine.")
    rep.add("\nScaling: the QR factorisation costs O(N k^2) per step and the Jacobian product O(N^2 k); "
            "compare the rows N = 80 with k = 1, 40, 75.")
    if args.out:
        rep.write(args.out)
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
