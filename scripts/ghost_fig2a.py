"""Analytic against numeric loss of the ghost-mechanism toy model (Dinc et al., "A ghost mechanism: an
analytical model of abrupt learning", Fig. 2A), and the convergence table of
docs/reproductions/ghost_mechanism.md.

The loss of dx/dt = x^2 + r, x(0) = 0, output sigmoid(c (x - x*)), target 0
on [0, T) and 1 on [T, 2T), T = 100, over r: the analytic limit c, x* -> inf
(eq. 12) and the forward-Euler loss with its exact gradient
(``plrnn_numba.ghost.euler_loss_and_grad``) for a sequence of settings
(c, x*, dt): the authors' (0.1, 10, 0.1) and (1, 10, 0.1), larger c and x*
at their dt = 0.1, and c and x* growing together with a dt that resolves the
sigmoid's transition (it lasts about 1 / (c x*^2) in time).  All losses are
unnormalised (the integral of eq. 1, in units of time).

Writes ``<out>/ghost_fig2a.nc`` and ``<out>/ghost_fig2a.png`` and prints the
convergence table as Markdown: the largest |L_euler - L_analytic| over the r
grid, and the relative gradient error at r = r*/2, 2 r*, 5 r*.

    python scripts/ghost_fig2a.py            # quick: 100 values of r, settings up to c = 3, x* = 30
    python scripts/ghost_fig2a.py --full     # 200 values of r, up to c = 10, x* = 100 at dt = 1e-5

Run times of the quick and full presets: docs/run_times.md.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import xarray as xr

from plrnn_numba import io
from plrnn_numba.ghost import toy

#: (c, x*, dt): the authors' two settings, then c and x* growing at dt = 0.1, then growing with a fine dt.
SETTINGS = {
    "quick": [(0.1, 10.0, 0.1), (1.0, 10.0, 0.1), (10.0, 100.0, 0.1), (100.0, 1000.0, 0.1),
              (1.0, 10.0, 0.01), (3.0, 30.0, 1e-4)],
    "full": [(0.1, 10.0, 0.1), (1.0, 10.0, 0.1), (10.0, 100.0, 0.1), (100.0, 1000.0, 0.1),
             (1.0, 10.0, 0.01), (3.0, 30.0, 1e-4), (10.0, 100.0, 1e-5)],
}
N_R = {"quick": 100, "full": 200}
PROBES = (0.5, 2.0, 5.0)  # r / r* where the gradients are compared (away from the kinks at r*/4 and r*)


def compute(T: float, settings, n_r: int) -> xr.Dataset:
    """Analytic and Euler loss on a grid of r, Euler gradients at the probes, per setting."""
    r_star = toy.critical_r(T)
    ratio = np.linspace(0.02, 4.0, n_r)
    r = ratio * r_star
    probes = np.array(PROBES) * r_star
    n_s = len(settings)
    loss = np.empty((n_s, n_r))
    grad = np.empty((n_s, n_r))
    probe_loss = np.empty((n_s, len(PROBES)))
    probe_grad = np.empty((n_s, len(PROBES)))
    seconds = np.empty(n_s)
    for i, (c, x_star, dt) in enumerate(settings):
        t0 = time.perf_counter()
        res = toy.euler_loss_and_grad(r, T, c, x_star, dt=dt)
        loss[i], grad[i] = res.loss, res.grad
        probe_loss[i], probe_grad[i], _ = toy.euler_loss_and_grad(probes, T, c, x_star, dt=dt)
        seconds[i] = time.perf_counter() - t0
    c, x_star, dt = (np.array(v) for v in zip(*settings))
    one = {"units": "1"}
    return xr.Dataset(
        {
            "analytic_loss": ("r", toy.analytic_loss(r, T), {"long_name": "analytic loss, c, x* -> inf (eq. 12)",
                                                            **one}),
            "analytic_grad": ("r", toy.analytic_gradient(r, T), {"long_name": "d analytic loss / dr (eq. 13)", **one}),
            "euler_loss": (("setting", "r"), loss, {"long_name": "forward-Euler loss (unnormalised)", **one}),
            "euler_grad": (("setting", "r"), grad, {"long_name": "exact d Euler loss / dr", **one}),
            "probe_euler_loss": (("setting", "probe"), probe_loss,
                                 {"long_name": "Euler loss at the probes", **one}),
            "probe_analytic_loss": ("probe", toy.analytic_loss(probes, T),
                                    {"long_name": "analytic loss at the probes", **one}),
            "probe_euler_grad": (("setting", "probe"), probe_grad,
                                 {"long_name": "exact d Euler loss / dr at the probes", **one}),
            "probe_analytic_grad": ("probe", toy.analytic_gradient(probes, T),
                                    {"long_name": "d analytic loss / dr at the probes", **one}),
            "seconds": ("setting", seconds, {"long_name": "wall time of the Euler evaluations", "units": "s"}),
        },
        coords={
            "r": ("r", r, {"long_name": "parameter r (1/time^2)", **one}),
            "r_over_r_star": ("r", ratio, {"long_name": "r / r*", **one}),
            "probe": ("probe", np.array(PROBES), {"long_name": "r / r* where gradients are compared", **one}),
            "setting": ("setting", np.arange(n_s), {"long_name": "index of the (c, x*, dt) setting", **one}),
            "c": ("setting", c, {"long_name": "sigmoid confidence c", **one}),
            "x_star": ("setting", x_star, {"long_name": "output threshold x*", **one}),
            "dt": ("setting", dt, {"long_name": "Euler step", **one}),
        },
        attrs={"T": T, "critical_r": r_star, "normalised": 0},
    )


def table(ds: xr.Dataset) -> str:
    """The convergence table (Markdown)."""
    T = float(ds.attrs["T"])
    lines = [
        "| c | x* | dt | steps 2T/dt | transition 1/(c x*^2) / dt | max abs(L_euler - L_analytic) "
        "| abs(L_euler - L_analytic) at r/r* = 0.5, 2, 5 | rel. gradient error at r/r* = 0.5, 2, 5 | seconds |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for i in range(ds.sizes["setting"]):
        s = ds.isel(setting=i)
        c, xs, dt = float(s["c"]), float(s["x_star"]), float(s["dt"])
        diff = np.abs(s["euler_loss"] - ds["analytic_loss"]).values
        at = np.abs(s["probe_euler_loss"].values - ds["probe_analytic_loss"].values)
        rel = np.abs(s["probe_euler_grad"].values / ds["probe_analytic_grad"].values - 1)
        lines.append(
            f"| {c:g} | {xs:g} | {dt:g} | {round(2 * T / dt):,} | {1 / (c * xs * xs * dt):.2g} | {diff.max():.3g} "
            f"| {', '.join(f'{v:.3g}' for v in at)} | {', '.join(f'{v:.1e}' for v in rel)} "
            f"| {float(s['seconds']):.2f} |"
        )
    return "\n".join(lines)


def plot(ds: xr.Dataset, path) -> None:
    from plrnn_numba.plot import _plt

    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8), constrained_layout=True)
    x = ds["r_over_r_star"]
    axes[0].plot(x, ds["analytic_loss"], "k-", lw=1.5, label="analytic (c, x* -> inf)")
    for i in range(ds.sizes["setting"]):
        s = ds.isel(setting=i)
        label = f"c={float(s['c']):g}, x*={float(s['x_star']):g}, dt={float(s['dt']):g}"
        axes[0].plot(x, s["euler_loss"], ".", ms=2.5, color=f"C{i}", label=label)
        axes[1].plot(s["probe"], np.abs(s["probe_euler_grad"] / ds["probe_analytic_grad"] - 1), "o-",
                     color=f"C{i}", ms=3, label=label)
    for v in (0.25, 1.0):
        axes[0].axvline(v, color="0.6", ls=":", lw=0.8)
    axes[0].set_xlabel("r / r*")
    axes[0].set_ylabel("loss (unnormalised, time units)")
    axes[0].set_title("A: analytic vs Euler loss", fontsize=10)
    axes[0].legend(fontsize=7)
    axes[1].set_yscale("log")
    axes[1].set_xlabel("r / r*")
    axes[1].set_ylabel("|grad_euler / grad_analytic - 1|")
    axes[1].set_title("gradient error at r/r* = 0.5, 2, 5", fontsize=10)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--quick", dest="mode", action="store_const", const="quick", help="small preset (default)")
    mode.add_argument("--full", dest="mode", action="store_const", const="full", help="finer r grid, finest setting")
    p.set_defaults(mode="quick")
    p.add_argument("--out", type=Path, default=Path("results"), help="output directory (default: %(default)s)")
    p.add_argument("--T", type=float, default=100.0, help="length of each task phase (default: %(default)s)")
    args = p.parse_args(argv)
    t0 = time.perf_counter()
    toy.euler_loss_and_grad(1.0, 1.0, 1.0, 1.0)  # compile (or load from the cache) outside the timed settings
    ds = compute(args.T, SETTINGS[args.mode], N_R[args.mode])
    ds.attrs.update(io.provenance("scripts/ghost_fig2a.py", {"mode": args.mode, "T": args.T, "out": str(args.out)}))
    ds.attrs["title"] = "Dinc et al. Fig. 2A: analytic vs forward-Euler loss of the toy model (unnormalised)"
    args.out.mkdir(parents=True, exist_ok=True)
    nc = io.save(ds, args.out / "ghost_fig2a.nc")
    png = args.out / "ghost_fig2a.png"
    plot(ds, png)
    print(table(ds))
    print(f"wrote {nc} and {png} in {time.perf_counter() - t0:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
