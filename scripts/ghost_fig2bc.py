"""Gradient descent on the ghost-mechanism toy model at two learning rates (Dinc et al., "A ghost
mechanism: an analytical model of abrupt learning", Fig. 2B-C).

From r = 10 r* on the analytic loss (T = 100, c, x* -> inf), 3000 epochs of
r <- r - alpha dL/dr with alpha = 1e-10 (below alpha* ~ 9.1e-10: an abrupt
drop of the loss near epoch 1500, with r > 0 throughout, so without a
bifurcation) and alpha = 1e-9 (above alpha*: oscillations around r* until a
step throws r into the no-learning zone r <= r*/4, where it stays).  The
loss is the unnormalised integral of eq. 1 unless ``--normalised`` (then
alpha* is T times larger, both default rates are far below it, and in 3000
epochs they barely move r).

Writes ``<out>/ghost_fig2bc.nc`` (dims lr x epoch) and ``<out>/ghost_fig2bc.png``.

    python scripts/ghost_fig2bc.py                    # the paper's two runs
    python scripts/ghost_fig2bc.py --lrs 1e-10 5e-10 9e-10 1e-9 --epochs 5000

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


def compute(T: float, lrs, epochs: int, r0_factor: float, normalised: bool) -> xr.Dataset:
    r0 = r0_factor * toy.critical_r(T)
    runs = [toy.gradient_descent(r0, T, lr, epochs, normalised=normalised) for lr in lrs]
    ds = xr.concat([run[["r", "loss", "grad", "escape_time"]] for run in runs], dim="lr")
    ds = ds.assign_coords(lr=("lr", np.asarray(lrs, dtype=float), {"long_name": "learning rate", "units": "1"}))
    ds["r_over_r_star"] = ds["r"] / toy.critical_r(T)
    ds["r_over_r_star"].attrs = {"long_name": "r / r*", "units": "1"}
    ds["stuck"] = ("lr", np.array([run.attrs["final_in_no_learning_zone"] for run in runs], dtype=np.int8),
                   {"long_name": "1 if the final r is in the no-learning zone r <= r*/4", "units": "1"})
    ds.attrs = {"T": T, "normalised": int(normalised), "r0": r0, "critical_r": toy.critical_r(T),
                "critical_learning_rate": toy.critical_learning_rate(T, normalised=normalised)}
    return ds


def summary(ds: xr.Dataset) -> list[str]:
    T = float(ds.attrs["T"])
    full = 1.0 if ds.attrs["normalised"] else T  # the loss of a run that never switches its output
    lines = []
    for lr in ds["lr"].values:
        run = ds.sel(lr=lr)
        loss, r = run["loss"].values, run["r"].values
        below = np.nonzero(loss < 0.5 * full)[0]
        lines.append(
            f"alpha = {lr:.3g} ({lr / ds.attrs['critical_learning_rate']:.3g} alpha*): "
            f"loss first below T/2 at epoch {below[0] if below.size else 'never'}, "
            f"min loss {loss.min():.4g}, final loss {loss[-1]:.4g}, "
            f"r {'stayed > 0' if np.all(r > 0) else 'changed sign'}, "
            f"{'ended in the no-learning zone' if int(run['stuck']) else 'did not get stuck'}"
        )
    return lines


def plot(ds: xr.Dataset, path) -> None:
    from plrnn_numba.plot import _plt

    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6), constrained_layout=True)
    for i, lr in enumerate(ds["lr"].values):
        run = ds.sel(lr=lr)
        label = rf"$\alpha$ = {lr:.3g} ({lr / ds.attrs['critical_learning_rate']:.3g} $\alpha^*$)"
        axes[0].plot(run["epoch"], run["r_over_r_star"], color=f"C{i}", lw=1, label=label)
        axes[1].plot(run["epoch"], run["loss"], color=f"C{i}", lw=1, label=label)
    axes[0].axhline(1.0, color="k", ls="--", lw=0.8)
    axes[0].axhline(0.25, color="0.5", ls=":", lw=0.8)
    axes[0].text(0, 1.05, "r*", fontsize=8)
    axes[0].text(0, 0.3, "point of no return r*/4", fontsize=8, color="0.4")
    axes[0].set_ylabel("r / r*")
    axes[0].set_title("B: parameter", fontsize=10)
    axes[1].set_ylabel("loss" + (" / T" if ds.attrs["normalised"] else " (unnormalised)"))
    axes[1].set_title("C: loss", fontsize=10)
    for ax in axes:
        ax.set_xlabel("epoch")
        ax.legend(fontsize=8)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, default=Path("results"), help="output directory (default: %(default)s)")
    p.add_argument("--T", type=float, default=100.0, help="length of each task phase (default: %(default)s)")
    p.add_argument("--lrs", type=float, nargs="+", default=[1e-10, 1e-9], help="learning rates (default: %(default)s)")
    p.add_argument("--epochs", type=int, default=3000, help="gradient steps (default: %(default)s)")
    p.add_argument("--r0-factor", type=float, default=10.0, help="initial r in units of r* (default: %(default)s)")
    p.add_argument("--normalised", action="store_true", help="train on the loss divided by T")
    args = p.parse_args(argv)
    t0 = time.perf_counter()
    ds = compute(args.T, args.lrs, args.epochs, args.r0_factor, args.normalised)
    ds.attrs.update(io.provenance("scripts/ghost_fig2bc.py", {**vars(args), "out": str(args.out)}))
    ds.attrs["title"] = "Dinc et al. Fig. 2B-C: gradient descent on the toy model's analytic loss"
    args.out.mkdir(parents=True, exist_ok=True)
    nc = io.save(ds, args.out / "ghost_fig2bc.nc")
    png = args.out / "ghost_fig2bc.png"
    plot(ds, png)
    print(f"alpha* = {ds.attrs['critical_learning_rate']:.4g} ({'normalised' if args.normalised else 'unnormalised'}"
          f" loss), r* = {ds.attrs['critical_r']:.4g}")
    print("\n".join(summary(ds)))
    print(f"wrote {nc} and {png} in {time.perf_counter() - t0:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
