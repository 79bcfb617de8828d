"""Learning-rate sweep of the ghost-mechanism toy model (Dinc et al., "A ghost mechanism: an analytical
model of abrupt learning", Fig. 2D).

Gradient descent on the toy model's analytic loss (T = 100, c, x* -> inf)
from the authors' initialisation r0 = 10 r* + N(0, (r*/10)^2), one seed per
training instance, over learning rates x seeds, for both normalisations of
the loss: the integral of eq. 1 itself ("none", the loss the critical rate
alpha* = 3 pi^4 / 32 T^-5 ~ 9.1e-10 belongs to) and that integral divided by
T ("by_T", critical rate T alpha* ~ 9.1e-8).  Each point records the final
loss (as a fraction of T), whether r ended in the no-learning zone
(r <= r*/4, where the gradient is exactly 0), when it entered it, and a
subsampled loss curve.  Writes ``<out>`` (netCDF over normalisation x lr x
seed) and ``<out>.png`` (final loss against the learning rate, mean +- s.e.m.
over seeds, alpha* marked), and prints the measured transitions.

    python scripts/ghost_fig2d.py              # quick: 51 rates x 5 seeds x 10,000 epochs
    python scripts/ghost_fig2d.py --full       # 166 rates x 10 seeds x 10,000 epochs (the paper's sizes)
    python scripts/ghost_fig2d.py --full --resume        # continue after Ctrl-C or a crash
    python scripts/ghost_fig2d.py --c 1 --x-star 10 --dt 0.01   # the finite model by Euler instead

Learning rates: quick logspace(-11, -6, 51); full logspace(-11, -6, 166), whose
first 100 values are the paper's logspace(-11, -8, 100) and whose last decades
reach past the normalised loss's critical rate; ``--lr-range -11 -8 100`` gives
the paper's grid alone.  Options of the sweep engine (``--workers``,
``--backend``, ``--store``, ``--resume``, ...): see ``plrnn_numba.cli``.

Run times of the quick and full presets: docs/run_times.md.
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np
import xarray as xr

PRESETS = {
    "quick": {"lr_range": (-11.0, -6.0, 51), "n_seeds": 5, "epochs": 10_000},
    "full": {"lr_range": (-11.0, -6.0, 166), "n_seeds": 10, "epochs": 10_000},
}
NORMALISATIONS = ["none", "by_T"]
CURVE_POINTS = 100


def train_point(normalisation: str, lr: float, seed: int, *, T: float, epochs: int, c, x_star, dt: float) -> dict:
    """One training instance: gradient descent from the authors' random r0; the sweep's point function."""
    from plrnn_numba.ghost import toy

    ds = toy.gradient_descent(None, T, lr, epochs, c=c, x_star=x_star, dt=dt,
                              normalised=normalisation == "by_T", seed=seed)
    fraction = ds["loss"].values * (1.0 if normalisation == "by_T" else 1.0 / T)  # loss as a fraction of T
    r = ds["r"].values
    zone = np.nonzero(r <= toy.point_of_no_return(T))[0]
    every = max(1, epochs // CURVE_POINTS)
    epochs_kept = np.arange(0, epochs + 1, every)
    return {
        "final_loss": float(fraction[-1]),
        "min_loss": float(np.nanmin(fraction)),
        "stuck": bool(ds.attrs["final_in_no_learning_zone"]),
        "zone_epoch": int(zone[0]) if zone.size else -1,
        "final_r": float(r[-1] / toy.critical_r(T)),
        "r0": float(r[0] / toy.critical_r(T)),
        "loss_curve": xr.DataArray(
            fraction[epochs_kept], dims=("epoch",),
            coords={"epoch": ("epoch", epochs_kept, {"long_name": "gradient steps taken", "units": "1"})},
            attrs={"long_name": "loss as a fraction of T (subsampled)", "units": "1"},
        ),
    }


VAR_ATTRS = {
    "final_loss": {"long_name": "loss after the last epoch, as a fraction of T (the normalised loss)", "units": "1"},
    "min_loss": {"long_name": "smallest loss over the run, as a fraction of T", "units": "1"},
    "stuck": {"long_name": "1 if the final r is in the no-learning zone r <= r*/4", "units": "1"},
    "zone_epoch": {"long_name": "first epoch with r <= r*/4 (-1: never)", "units": "1"},
    "final_r": {"long_name": "final r / r*", "units": "1"},
    "r0": {"long_name": "initial r / r*", "units": "1"},
}
COORD_ATTRS = {
    "normalisation": {"long_name": "loss normalisation: none (eq. 1) or divided by T", "units": "1"},
    "lr": {"long_name": "learning rate alpha", "units": "1"},
}


def transitions(ds: xr.Dataset, T: float) -> dict[str, dict[str, float]]:
    """Per normalisation: the theory's alpha*, the largest rate with no seed stuck, the smallest with half and
    with all seeds stuck (NaN if none)."""
    from plrnn_numba.ghost import toy

    out = {}
    lrs = ds["lr"].values
    for norm in ds["normalisation"].values:
        frac = ds["stuck"].sel(normalisation=norm).astype(float).mean("seed").values
        never = lrs[frac == 0]
        half = lrs[frac >= 0.5]
        every = lrs[frac == 1]
        out[str(norm)] = {
            "alpha_star": toy.critical_learning_rate(T, normalised=norm == "by_T"),
            "largest_none_stuck": float(never.max()) if never.size else np.nan,
            "smallest_half_stuck": float(half.min()) if half.size else np.nan,
            "smallest_all_stuck": float(every.min()) if every.size else np.nan,
            # no seed stuck anywhere above it is how it should be: a rate below alpha* cannot get stuck
            "stuck_below_alpha_star": int(ds["stuck"].sel(normalisation=norm, lr=lrs[lrs < toy.critical_learning_rate(
                T, normalised=norm == "by_T")]).sum()),
        }
    return out


def plot(ds: xr.Dataset, path, T: float) -> None:
    """Final loss (fraction of T) against the learning rate: mean +- s.e.m. over seeds; alpha* marked."""
    from plrnn_numba.ghost import toy
    from plrnn_numba.plot import _plt

    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8), constrained_layout=True)
    n = ds.sizes["seed"]
    for i, norm in enumerate(ds["normalisation"].values):
        color = f"C{i}"
        label = "loss = integral (eq. 1)" if norm == "none" else "loss / T"
        fl = ds["final_loss"].sel(normalisation=norm)
        mean, sem = fl.mean("seed"), fl.std("seed", ddof=1) / np.sqrt(n) if n > 1 else 0 * fl.mean("seed")
        axes[0].errorbar(ds["lr"], mean, yerr=sem, color=color, marker=".", ms=3, lw=1, label=label)
        axes[1].plot(ds["lr"], ds["stuck"].sel(normalisation=norm).astype(float).mean("seed"), color=color,
                     marker=".", ms=3, lw=1, label=label)
        a = toy.critical_learning_rate(T, normalised=norm == "by_T")
        for ax in axes:
            ax.axvline(a, color=color, ls="--", lw=0.8)
        axes[0].text(a, 1.02, r" $\alpha^*$" if norm == "none" else r" $T\alpha^*$", color=color, fontsize=8)
    for ax in axes:
        ax.set_xscale("log")
        ax.set_xlabel(r"learning rate $\alpha$")
    axes[0].set_ylabel("final loss / T (mean $\\pm$ s.e.m.)")
    axes[0].set_ylim(-0.02, 1.08)
    axes[1].set_ylabel("fraction of seeds in the no-learning zone")
    axes[0].legend(fontsize=8)
    epochs = int(ds["loss_curve"]["epoch"].values[-1])
    fig.suptitle(f"Toy model, T = {T:g}: final loss after {epochs} epochs ({n} seeds)", fontsize=10)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def parse_args(argv=None):
    from plrnn_numba.cli import add_sweep_arguments

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_sweep_arguments(p, default_out="results/ghost_fig2d.nc")
    g = p.add_argument_group("model and training")
    g.add_argument("--T", type=float, default=100.0, help="length of each task phase (default: %(default)s)")
    g.add_argument("--epochs", type=int, default=None, help="override the preset's epochs")
    g.add_argument("--lr-range", type=float, nargs=3, metavar=("LOG10_MIN", "LOG10_MAX", "N"), default=None,
                   help="learning rates logspace(LOG10_MIN, LOG10_MAX, N) instead of the preset's")
    g.add_argument("--normalisation", choices=NORMALISATIONS, nargs="+", default=NORMALISATIONS,
                   help="which losses to sweep (default: both)")
    g.add_argument("--c", type=float, default=None, help="sigmoid confidence: train the Euler model (with --x-star)")
    g.add_argument("--x-star", type=float, default=None, help="output threshold of the Euler model")
    g.add_argument("--dt", type=float, default=0.1, help="Euler step of the finite model (default: %(default)s)")
    args = p.parse_args(argv)
    if (args.c is None) != (args.x_star is None):
        p.error("--c and --x-star go together (the finite model), or neither (the analytic limit)")
    return args, p


def main(argv=None) -> int:
    args, parser = parse_args(argv)
    from plrnn_numba.cli import command_line, preset, print_sweep_summary, run_sweep, seed_list

    cfg = preset(args, PRESETS)
    lo, hi, n = args.lr_range or cfg["lr_range"]
    lrs = [float(v) for v in np.logspace(lo, hi, int(n))]
    fixed = {"T": args.T, "epochs": args.epochs or cfg["epochs"], "c": args.c, "x_star": args.x_star, "dt": args.dt}
    model = "analytic limit" if args.c is None else f"Euler, c = {args.c:g}, x* = {args.x_star:g}, dt = {args.dt:g}"
    t0 = time.perf_counter()
    ds = run_sweep(
        train_point,
        {"normalisation": args.normalisation, "lr": lrs},
        args=args,
        parser=parser,
        script=__file__,
        argv=argv,
        seeds=seed_list(args, cfg["n_seeds"]),
        fixed=fixed,
        name=f"Dinc et al. Fig. 2D: toy model learning-rate sweep ({model}, {args.mode})",
        coord_attrs=COORD_ATTRS,
        var_attrs=VAR_ATTRS,
        attrs={"script": command_line("scripts/ghost_fig2d.py", argv)},
    )
    png = args.out.with_suffix(".png")
    plot(ds, png, args.T)
    print(f"{'loss':>6} {'alpha* (theory)':>16} {'largest lr, none stuck':>23} {'smallest lr, half stuck':>24} "
          f"{'smallest lr, all stuck':>23} {'stuck below alpha*':>19}")
    for norm, row in transitions(ds, args.T).items():
        print(f"{norm:>6} {row['alpha_star']:16.4g} {row['largest_none_stuck']:23.4g} "
              f"{row['smallest_half_stuck']:24.4g} {row['smallest_all_stuck']:23.4g} "
              f"{row['stuck_below_alpha_star']:19d}")
    print_sweep_summary(ds, args, parser, time.perf_counter() - t0, png)
    return 0


if __name__ == "__main__":
    sys.exit(main())
