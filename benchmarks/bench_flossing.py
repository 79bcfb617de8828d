"""Benchmark: gradient flossing and Lyapunov spectra in plrnn_numba against PyTorch autograd.

    python benchmarks/bench_flossing.py [--quick] [--out docs/performance_flossing.md]

Same process, same float64 computation, one thread each: a vanilla tanh RNN
``h <- W tanh(h) + b`` (N units), k exponents by QR every step over a
55-step trajectory; the flossing step is the loss ``sum_i lambda_i^2`` and its
gradient (numba: the analytic pullback; torch: autograd through
``torch.linalg.qr``), the spectrum evaluation the forward pass only.
"""

from __future__ import annotations

import argparse
from functools import partial

import _common as C

C.limit_threads(1)
C.add_repo_to_path()

import numpy as np  # noqa: E402

import plrnn_numba as pn  # noqa: E402
from plrnn_numba.dynamics.flossing import Flossing, floss, flossing_loss_and_grad  # noqa: E402


def torch_flossing(torch, W0, b0, z0, q0, T, grad=True):
    W = torch.tensor(W0, requires_grad=grad)
    b = torch.tensor(b0, requires_grad=grad)
    h = torch.tensor(z0)
    Q = torch.tensor(q0)
    logs = torch.zeros(q0.shape[1], dtype=torch.float64)
    for _ in range(T):
        J = W * (1 - torch.tanh(h) ** 2)[None, :]
        Q, R = torch.linalg.qr(J @ Q)
        sgn = torch.sign(torch.diagonal(R))
        Q, R = Q * sgn[None, :], R * sgn[:, None]
        logs = logs + torch.log(torch.diagonal(R))
        h = W @ torch.tanh(h) + b
    loss = ((logs / T) ** 2).sum()
    if grad:
        loss.backward()
        return loss.item(), np.concatenate([W.grad.numpy().ravel(), b.grad.numpy()])
    return loss.item(), None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    import torch

    torch.set_num_threads(1)
    torch.set_default_dtype(torch.float64)
    pn.config.set_num_threads(1)
    rep = C.Report()
    rep.add("## Gradient flossing and Lyapunov spectra (numba) vs PyTorch autograd\n")
    rep.add(f"- **command**: `{C.command_line()}`")
    rep.add(C.key_value_list({**C.machine_info(), **C.versions(("numpy", "numba", "torch"))}))
    rep.add("- **threads**: one (torch, numba, BLAS)\n")
    min_time = 0.3 if args.quick else 1.0
    T = 55
    cases = [(80, 75), (80, 1), (80, 40), (20, 20), (40, 40), (160, 150)]
    if args.quick:
        cases = cases[:4]
    rows = []
    for N, k in cases:
        model = pn.VanillaRNN(N)
        theta = model.init(0, g=1.0)
        d = model.unpack(theta)
        rng = np.random.default_rng(1)
        z0 = rng.standard_normal(N)
        q, r = np.linalg.qr(rng.standard_normal((N, k)))
        q0 = q * np.sign(np.diag(r))
        res = flossing_loss_and_grad(model, theta, k, z0=z0, n_steps=T, q0=q0)
        tl, tg = torch_flossing(torch, d["W"], d["b"], z0, q0, T)
        rel = np.abs(res.grad - tg).max() / np.abs(tg).max()
        assert rel < 1e-7, rel
        t_nb, t_th = C.time_interleaved(
            [partial(flossing_loss_and_grad, model, theta, k, z0=z0, n_steps=T, q0=q0),
             partial(torch_flossing, torch, d["W"], d["b"], z0, q0, T)], min_time=min_time)
        # forward only: the spectrum estimate
        f_nb, f_th = C.time_interleaved(
            [partial(pn.dynamics.lyapunov_spectrum, model, theta, k=k, n_steps=T, n_transient=0,
                     n_transient_ons=0, z0=z0),
             partial(torch_flossing, torch, d["W"], d["b"], z0, q0, T, grad=False)], min_time=min_time)
        rows.append([f"N={N}, k={k}", C.fmt(t_th.median * 1e3), C.fmt(t_nb.median * 1e3),
                     f"{t_th.median / t_nb.median:.1f}x", C.fmt(f_th.median * 1e3), C.fmt(f_nb.median * 1e3),
                     f"{f_th.median / f_nb.median:.1f}x", f"{rel:.1e}"])
        print(rows[-1], flush=True)
    rep.add(f"Median wall time per evaluation over a {T}-step trajectory (QR every step; alternating blocks). "
            "`flossing step`: loss and exact gradient; `spectrum`: forward only (numba: `lyapunov_spectrum`; "
            "torch: the same loop without autograd). `max rel diff`: numba against torch gradient.\n")
    rep.add(C.markdown_table(["case", "torch flossing ms", "numba flossing ms", "speed-up", "torch spectrum ms",
                              "numba spectrum ms", "speed-up", "max rel diff"], rows))
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
