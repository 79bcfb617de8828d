"""Smoothness of the cost against the sequence length, beside the Lipschitz constant of the state map (Ribeiro et
al. 2020, "Beyond exploding and vanishing gradients: analysing RNN training using attractors and smoothness",
Theorem 1 and Eq. 4).

The chaotic 2-unit LSTM of Fig. 1 (``attractors_fig1.py``) at theta(s) = s
theta_true is fitted to its own s = 1 trajectory: the cost of length N is the
mean squared error of h_t over steps 1..N from h0 = c0 = 0.5.  For each s and
N the script estimates the Lipschitz constants of the cost and of its
gradient along random unit directions in parameter space
(``plrnn_numba.dynamics.cost_smoothness``: the largest difference quotients of
neighbouring points on segments of half-length ``--radius``), and, along the
trajectory, the local Lipschitz constants ||J_t||_2 and the running volume
change sum log|det J_t| (``plrnn_numba.dynamics.state_lipschitz``).  Theorem 1:
both constants grow exponentially in N when L_f > 1 (s = 1, chaotic) and stay
bounded when L_f < 1 (s = 0.5, a contracting LSTM).  Writes ``<out>`` (netCDF
over s x length) and ``<out>.png``, and prints the growth.

    python scripts/attractors_smoothness.py            # quick: N = 10 .. 500 (8 lengths), 8 directions
    python scripts/attractors_smoothness.py --full     # 16 lengths, 32 directions

Options of the sweep engine (``--workers``, ``--store``, ``--resume``, ...): see ``plrnn_numba.cli``.

Run times of the quick and full presets: docs/run_times.md.
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np
import xarray as xr

PRESETS = {
    "quick": {"lengths": [10, 20, 40, 70, 100, 200, 300, 500], "n_directions": 8, "n_points": 21},
    "full": {"lengths": [10, 15, 20, 30, 40, 50, 70, 100, 130, 160, 200, 250, 300, 350, 400, 500],
             "n_directions": 32, "n_points": 41},
}
U1 = {"units": "1"}


def point(s: float, length: int, *, n_directions: int, n_points: int, radius: float, seed: int) -> dict:
    """Smoothness of the length-``length`` cost at s theta_true, and the state map's constants; the sweep's function."""
    from attractors_fig1 import H0, chaotic_lstm

    import plrnn_numba as pn
    from plrnn_numba.dynamics import cost_smoothness, state_lipschitz

    model, theta_true = chaotic_lstm()
    z0 = np.full(4, H0)
    target = model.simulate(theta_true, z0, n_steps=length)[1:, :2]  # h_1 .. h_N of the data-generating LSTM
    batch = pn.Batch(targets=target[None], z0=z0[None])
    theta = s * theta_true
    cs = cost_smoothness(model, theta, batch, [length], n_directions=n_directions, radius=radius,
                         n_points=n_points, readout=pn.IdentityReadout(2), seed=seed)
    sl = state_lipschitz(model, theta, n_steps=length, z0=z0)
    dirs = {"direction": ("direction", np.arange(n_directions), {**U1, "long_name": "random unit direction"})}
    return {
        "lipschitz_cost": xr.DataArray(cs["lipschitz_cost"].values[0], dims="direction", coords=dirs,
                                       attrs={**U1, "long_name": "largest |dV| / |dtheta| along the direction"}),
        "lipschitz_grad": xr.DataArray(cs["lipschitz_grad"].values[0], dims="direction", coords=dirs,
                                       attrs={**U1, "long_name": "largest |d grad V| / |dtheta| along the direction"}),
        "state_lipschitz_max": float(sl["lipschitz_max"]),
        "state_lipschitz_mean": float(sl["lipschitz_mean"]),
        "log_volume_rate": float(sl["log_volume"].values[0, -1] / length),
    }


VAR_ATTRS = {
    "state_lipschitz_max": {**U1, "long_name": "largest ||J_t||_2 along the trajectory (estimate of L_f)"},
    "state_lipschitz_mean": {**U1, "long_name": "mean ||J_t||_2 along the trajectory"},
    "log_volume_rate": {"units": "nats/step", "long_name": "sum of log |det J_t| over the trajectory / N"},
}
COORD_ATTRS = {"s": {**U1, "long_name": "scale of the weights, theta = s theta_true"},
               "length": {"units": "steps", "long_name": "sequence length N of the cost"}}


def growth(ds: xr.Dataset, name: str) -> dict[float, float]:
    """Per s: the exponential growth rate (per step) of the median over directions, fitted on log against N."""
    out = {}
    for s in ds["s"].values:
        y = ds[name].sel(s=s).median("direction").values
        n = ds["length"].values
        ok = np.isfinite(y) & (y > 0)
        out[float(s)] = float(np.polyfit(n[ok], np.log(y[ok]), 1)[0]) if ok.sum() >= 2 else np.nan
    return out


def plot(ds: xr.Dataset, path) -> None:
    from plrnn_numba.plot import _plt

    plt = _plt()
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8), constrained_layout=True)
    n = ds["length"].values
    for i, s in enumerate(ds["s"].values):
        d = ds.sel(s=s)
        label = f"s = {s:g} (max ||J|| = {float(d['state_lipschitz_max'].max()):.2f})"
        for ax, name in ((axes[0], "lipschitz_cost"), (axes[1], "lipschitz_grad")):
            med = d[name].median("direction")
            ax.fill_between(n, d[name].min("direction"), d[name].max("direction"), color=f"C{i}", alpha=0.2)
            ax.plot(n, med, color=f"C{i}", marker=".", label=label)
        axes[2].plot(n, d["log_volume_rate"], color=f"C{i}", marker=".", label=label)
    axes[0].set_ylabel(r"Lipschitz constant of $V$ (median, range)")
    axes[1].set_ylabel(r"Lipschitz constant of $\nabla V$ (median, range)")
    axes[2].set_ylabel(r"$\frac{1}{N}\sum_t \log|\det J_t|$ (nats/step)")
    axes[2].axhline(0, color="0.5", lw=0.6)
    for ax in axes[:2]:
        ax.set_yscale("log")
    for ax in axes:
        ax.set_xlabel("sequence length N")
        ax.legend(fontsize=7)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def parse_args(argv=None):
    from plrnn_numba.cli import add_sweep_arguments

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_sweep_arguments(p, default_out="results/attractors_smoothness.nc")
    g = p.add_argument_group("models and estimates")
    g.add_argument("--s", type=float, nargs="+", default=[0.5, 1.0], help="weight scales s (default: 0.5 1)")
    g.add_argument("--lengths", type=int, nargs="+", default=None, help="sequence lengths (default: the preset's)")
    g.add_argument("--radius", type=float, default=1e-3, help="half-length of the segments (default: %(default)s)")
    args = p.parse_args(argv)
    if args.lengths is not None and (min(args.lengths) < 1 or sorted(set(args.lengths)) != args.lengths):
        p.error("--lengths must be increasing positive integers")
    if args.radius <= 0:
        p.error("--radius must be > 0")
    return args, p


def main(argv=None) -> int:
    args, parser = parse_args(argv)
    sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parent))  # attractors_fig1 for the workers
    from plrnn_numba.cli import command_line, preset, print_sweep_summary, run_sweep

    cfg = preset(args, PRESETS)
    t0 = time.perf_counter()
    ds = run_sweep(
        point, {"s": [float(v) for v in args.s], "length": args.lengths or cfg["lengths"]}, args=args, parser=parser,
        script=__file__, argv=argv,
        fixed={"n_directions": cfg["n_directions"], "n_points": cfg["n_points"], "radius": args.radius,
               "seed": args.seed},
        name=f"Ribeiro et al. Theorem 1: smoothness of the chaotic LSTM's cost against N ({args.mode})",
        coord_attrs=COORD_ATTRS, var_attrs=VAR_ATTRS,
        attrs={"script": command_line("scripts/attractors_smoothness.py", argv)},
    )
    wall = time.perf_counter() - t0
    if "lipschitz_grad" not in ds:
        print(f"every point failed; the first: {ds['error'].values.ravel()[0]}", file=sys.stderr)
        return 1
    png = args.out.with_suffix(".png")
    plot(ds, png)
    gc, gg = growth(ds, "lipschitz_cost"), growth(ds, "lipschitz_grad")
    print(f"{'s':>5} {'max ||J_t||':>11} {'log vol / N':>11} {'L_V at N min':>12} {'L_V at N max':>12} "
          f"{'grad L at N min':>15} {'grad L at N max':>15} {'growth of L_V':>13} {'growth of grad L':>16}")
    for s in ds["s"].values:
        d = ds.sel(s=s)
        lc, lg = d["lipschitz_cost"].median("direction").values, d["lipschitz_grad"].median("direction").values
        print(f"{s:5g} {float(d['state_lipschitz_max'].max()):11.3f} {float(d['log_volume_rate'].values[-1]):11.3f} "
              f"{lc[0]:12.3g} {lc[-1]:12.3g} {lg[0]:15.3g} {lg[-1]:15.3g} {gc[float(s)]:13.4f} {gg[float(s)]:16.4f}")
    print_sweep_summary(ds, args, parser, wall, png)
    return 0


if __name__ == "__main__":
    sys.exit(main())
