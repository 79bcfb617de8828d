"""The chaotic LSTM: orbit diagram, cost, 2-D cost landscape and largest Lyapunov exponent along theta(s) = s
theta_true (Ribeiro et al. 2020, "Beyond exploding and vanishing gradients: analysing RNN training using
attractors and smoothness", Fig. 1).

A 2-unit LSTM without biases and without inputs, with the authors' recurrent
weights theta_true (rows: the two hidden units; PyTorch gate order i, f, g, o),
runs from h0 = c0 = 0.5 for 200 steps at theta(s) = s theta_true.  Per s:

* the orbit: h_1 at steps 100..199 (the first 100 are discarded);
* the cost: the mean over steps 100..199 of the squared difference between the
  2-D output h_t(s) and h_t(1) (the data-generating weights), zero at s = 1;
* the largest Lyapunov exponent (QR method, ``plrnn_numba.dynamics.lyapunov_spectrum``);
* the 2-D landscape: the same cost at theta = s theta_true + v |theta_true| d,
  for a fixed random unit direction d orthogonal to theta_true and offsets v
  (a plane through the path; the authors show the path only).

Writes ``<out>`` (netCDF over s) and ``<out>.png`` (orbit diagram, cost and
exponent against s; the landscape), and prints where the chaotic band lies.

    python scripts/attractors_fig1.py              # quick: 1000 values of s (and s = 1), 101 offsets v
    python scripts/attractors_fig1.py --full       # the paper's 5000 values of s (and s = 1), 201 offsets v

Options of the sweep engine (``--workers``, ``--backend``, ``--store``,
``--resume``, ...): see ``plrnn_numba.cli``.

Run times of the quick and full presets: docs/run_times.md.
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np
import xarray as xr

#: the authors' chaotic LSTM: recurrent weights per gate (rows: hidden units 1, 2)
W_HI = [[-1.0, -4.0], [-3.0, -2.0]]
W_HF = [[-2.0, 6.0], [0.0, -6.0]]
W_HG = [[-1.0, -6.0], [6.0, -9.0]]
W_HO = [[4.0, 1.0], [-9.0, -7.0]]
H0 = 0.5
PRESETS = {
    "quick": {"n_s": 1000, "n_v": 101, "lyap_steps": 2000},
    "full": {"n_s": 5000, "n_v": 201, "lyap_steps": 5000},
}
N_STEPS, N_BURN = 200, 100
U1 = {"units": "1"}


def chaotic_lstm():
    """``(model, theta_true)``: the 2-unit LSTM without biases or inputs and the authors' weights."""
    import plrnn_numba as pn

    model = pn.LSTM(2, n_inputs=0, bias=False)
    theta = model.pack(weight_ih=np.zeros((8, 0)), weight_hh=np.vstack([W_HI, W_HF, W_HG, W_HO]))
    return model, theta


def second_direction(theta_true: np.ndarray, seed: int) -> np.ndarray:
    """A random unit vector orthogonal to theta_true (the landscape's second axis)."""
    d = np.random.default_rng(seed).normal(size=theta_true.size)
    u = theta_true / np.linalg.norm(theta_true)
    d -= (d @ u) * u
    return d / np.linalg.norm(d)


def _outputs(model, theta) -> np.ndarray:
    """h_t (2-D output) at steps N_BURN .. N_STEPS - 1 from h0 = c0 = 0.5."""
    z = model.simulate(theta, np.full(4, H0), n_steps=N_STEPS - 1)
    return z[N_BURN:N_STEPS, :2]


def point(s: float, *, v_values: list[float], direction_seed: int, lyap_steps: int) -> dict:
    """One value of s: orbit of h_1, cost, largest Lyapunov exponent and the landscape column; the sweep's function."""
    from plrnn_numba.dynamics import lyapunov_spectrum

    model, theta_true = chaotic_lstm()
    reference = _outputs(model, theta_true)
    h = _outputs(model, s * theta_true)
    d = second_direction(theta_true, direction_seed) * np.linalg.norm(theta_true)
    landscape = [float(np.mean(np.sum((_outputs(model, s * theta_true + v * d) - reference) ** 2, axis=1)))
                 for v in v_values]
    ly = lyapunov_spectrum(model, s * theta_true, k=1, n_steps=lyap_steps, n_transient=500,
                           z0=np.full(4, H0), seed=0)
    sample = {"sample": ("sample", np.arange(N_BURN, N_STEPS), {"units": "steps", "long_name": "time step"})}
    vc = {"v": ("v", np.asarray(v_values), {**U1, "long_name": "offset along the second direction, in units of "
                                                               "|theta_true|"})}
    return {
        "h1": xr.DataArray(h[:, 0], dims="sample", coords=sample, attrs={**U1, "long_name": "h_1 after the burn-in"}),
        "cost": float(np.mean(np.sum((h - reference) ** 2, axis=1))),
        "lyapunov": float(ly["mean"].values[0]),
        "landscape": xr.DataArray(landscape, dims="v", coords=vc,
                                  attrs={**U1, "long_name": "cost at s theta_true + v |theta_true| d"}),
    }


VAR_ATTRS = {
    "cost": {**U1, "long_name": "mean squared difference of h_t from the s = 1 trajectory, steps 100-199"},
    "lyapunov": {"units": "1/step", "long_name": "largest Lyapunov exponent"},
}
COORD_ATTRS = {"s": {**U1, "long_name": "scale s of the weights, theta = s theta_true"}}


def chaotic_band(ds: xr.Dataset, threshold: float = 0.01) -> tuple[float, float, float]:
    """(smallest s, largest s, share of s in between) with a largest exponent above ``threshold``."""
    s, lam = ds["s"].values, ds["lyapunov"].values
    pos = s[lam > threshold]
    if pos.size == 0:
        return np.nan, np.nan, 0.0
    inside = (s >= pos.min()) & (s <= pos.max())
    return float(pos.min()), float(pos.max()), float(np.mean(lam[inside] > threshold))


def plot(ds: xr.Dataset, path) -> None:
    from plrnn_numba.plot import _plt

    plt = _plt()
    fig, axes = plt.subplots(2, 2, figsize=(11, 7), constrained_layout=True)
    s = ds["s"].values
    h1 = ds["h1"].values
    axes[0, 0].plot(np.repeat(s, h1.shape[1]), h1.ravel(), ",k", alpha=0.5)
    axes[0, 0].set_ylabel("$h_1$ (steps 100-199)")
    axes[0, 0].set_title("orbit diagram", fontsize=9)
    axes[1, 0].plot(s, ds["cost"].values, "k", lw=0.6)
    axes[1, 0].axvline(1.0, color="C3", lw=0.6, ls=":")
    axes[1, 0].set_ylabel("cost")
    axes[1, 0].set_title("cost against s (0 at s = 1)", fontsize=9)
    axes[0, 1].plot(s, ds["lyapunov"].values, "C3", lw=0.6)
    axes[0, 1].axhline(0, color="0.5", lw=0.6)
    axes[0, 1].set_ylabel(r"largest Lyapunov exponent $\lambda_1$")
    axes[0, 1].set_title("largest Lyapunov exponent", fontsize=9)
    land = np.log10(ds["landscape"].values.T + 1e-6)
    im = axes[1, 1].pcolormesh(s, ds["v"].values, land, shading="auto", cmap="viridis",
                               vmin=np.nanpercentile(land, 1), vmax=np.nanmax(land))  # the exact 0 at s = 1 aside
    fig.colorbar(im, ax=axes[1, 1], label="log10 cost")
    axes[1, 1].set_ylabel("v (second direction)")
    axes[1, 1].set_title(r"cost on the plane $s\,\theta_{true} + v\,|\theta_{true}|\,d$", fontsize=9)
    for ax in axes.ravel():
        ax.set_xlabel("s")
    fig.savefig(path, dpi=120)
    plt.close(fig)


def parse_args(argv=None):
    from plrnn_numba.cli import add_sweep_arguments

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_sweep_arguments(p, default_out="results/attractors_fig1.nc")
    g = p.add_argument_group("path and landscape")
    g.add_argument("--s-range", type=float, nargs=2, default=(0.5, 2.0), metavar=("S_MIN", "S_MAX"),
                   help="range of s (default: 0.5 2, the authors')")
    g.add_argument("--n-s", type=int, default=None, help="values of s (default: the preset's)")
    g.add_argument("--v-range", type=float, nargs=2, default=(-0.25, 0.25), metavar=("V_MIN", "V_MAX"),
                   help="offsets along the second direction, in units of |theta_true| (default: -0.25 0.25)")
    g.add_argument("--n-v", type=int, default=None, help="offsets v (default: the preset's)")
    g.add_argument("--direction-seed", type=int, default=0, help="seed of the second direction (default: 0)")
    args = p.parse_args(argv)
    if args.n_s is not None and args.n_s < 2 or args.n_v is not None and args.n_v < 1:
        p.error("--n-s must be >= 2 and --n-v >= 1")
    if args.s_range[0] >= args.s_range[1] or args.v_range[0] > args.v_range[1]:
        p.error("--s-range and --v-range must be increasing")
    return args, p


def main(argv=None) -> int:
    args, parser = parse_args(argv)
    from plrnn_numba.cli import command_line, preset, print_sweep_summary, run_sweep

    cfg = preset(args, PRESETS)
    s_values = np.linspace(*args.s_range, args.n_s or cfg["n_s"])
    if args.s_range[0] <= 1.0 <= args.s_range[1]:
        s_values = np.union1d(s_values, [1.0])  # the data-generating weights themselves: cost exactly 0
    s_values = [float(x) for x in s_values]
    v_values = [float(x) for x in np.linspace(*args.v_range, args.n_v or cfg["n_v"])]
    t0 = time.perf_counter()
    ds = run_sweep(
        point, {"s": s_values}, args=args, parser=parser, script=__file__, argv=argv,
        fixed={"v_values": v_values, "direction_seed": args.direction_seed, "lyap_steps": cfg["lyap_steps"]},
        name=f"Ribeiro et al. Fig. 1: chaotic LSTM along s theta_true ({args.mode})",
        coord_attrs=COORD_ATTRS, var_attrs=VAR_ATTRS,
        attrs={"script": command_line("scripts/attractors_fig1.py", argv)},
    )
    wall = time.perf_counter() - t0
    if "cost" not in ds:
        print(f"every point failed; the first: {ds['error'].values.ravel()[0]}", file=sys.stderr)
        return 1
    png = args.out.with_suffix(".png")
    plot(ds, png)
    lo, hi, share = chaotic_band(ds)
    s = ds["s"].values
    near = np.abs(s - 1.0) < 0.05
    print(f"largest Lyapunov exponent > 0.01 for s in [{lo:.3f}, {hi:.3f}] ({100 * share:.0f}% of the s in between; "
          f"paper: chaotic band about 0.9 < s < 1.45)")
    print(f"max lambda_1 = {np.nanmax(ds['lyapunov'].values):.3f} at s = {s[np.nanargmax(ds['lyapunov'].values)]:.3f};"
          f" cost at s = 1: {float(ds['cost'].sel(s=s[np.argmin(np.abs(s - 1))])):.2e}; "
          f"cost within 0.05 of s = 1: median {np.median(ds['cost'].values[near]):.3g}")
    print_sweep_summary(ds, args, parser, wall, png)
    return 0


if __name__ == "__main__":
    sys.exit(main())
