"""Theorems 1 and 2 numerically: the loss gradient of a free-running PLRNN as its parameters approach a
degenerate transcritical bifurcation or a border collision (Eisenmann, Monfared, Göring, Durstewitz 2023,
"Bifurcations and loss jumps in RNN training").

Four located bifurcations (``plrnn_numba.dynamics.bifurcation_path``), each
approached along its parameter path theta(s) = theta0 + s d to distances
eps = |s - s*| from 1e-1 to 1e-6:

* ``fp_dtb``: a stable fixed point of a 2-D PLRNN (A = diag(0.5, 0.4),
  W = [[0, 0.2], [0.3, 0]], h = (0.3, 0.2)) in the region where both units are
  active; d = A[0]: an eigenvalue of A + W reaches +1 at s* = 0.4 and the
  fixed point escapes to infinity (degenerate transcritical bifurcation);
* ``cycle_dtb``: a stable 2-cycle of a 1-D PLRNN (slopes a_L = -0.8 for z <= 0
  and a_R = -1.1 for z > 0, h = 0.5; ``PLRNN(1, full_W=True)``, A = a_L,
  W = a_R - a_L); d = -W[0,0]: the cycle's multiplier a_L a_R reaches +1 at
  s* = 0.15 (degenerate transcritical bifurcation of the 2-cycle);
* ``fp_border``: the 2-D system's fixed point along d = h[0]: its first
  coordinate reaches 0 at s* = -11/30, a border collision in which the stable
  node persists into the neighbouring region; approached from both sides;
* ``cycle_border``: the 1-D system along d = +W[0,0]: at a_R = -1 (s* = 0.1)
  the 2-cycle's lower point reaches the border and the cycle disappears into
  the fixed point, which flips there.

At every distance and sequence length T the model runs freely from z0 and the
loss is the mean squared error against the free run at s = 0 (the data the
model at the start of the path fits exactly); its exact gradient comes from
backpropagation through time (``plrnn_numba.dynamics.gradient_near_bifurcation``).

Theorem 1's rate (derived in ``plrnn_numba.dynamics.bifurcation_gradients``):
near a degenerate transcritical bifurcation, for a fixed point and for a
k-cycle alike, the gradient norm grows like eps^-3 (eps^-2 for h alone) once
the run is long enough to converge (eps >> 1/T); below that it saturates at a
level of order T^3.  The script fits the log-log slope on the longest T over
eps in [100/T, 1e-2] and prints it beside -3.

Writes ``<out>`` (netCDF over case x side x distance x n_steps) and
``<out>.png`` (log-log gradient norm against eps, one panel per case, one line
per T, the fitted and derived slopes).

    python scripts/loss_jumps_theorems.py            # quick: T = 1e2 .. 1e5, 21 distances
    python scripts/loss_jumps_theorems.py --full     # T = 1e2 .. 1e6, 41 distances

Run times of the quick and full presets: docs/run_times.md.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import xarray as xr

PRESETS = {"quick": {"n_steps": [100, 1000, 10000, 100000], "n_eps": 21},
           "full": {"n_steps": [100, 1000, 10000, 100000, 1000000], "n_eps": 41}}
EPS_RANGE = (1e-1, 1e-6)
DERIVED_SLOPE = -3.0
#: the fit window: converged runs (eps >= FIT_CONVERGED / T) but close to the bifurcation (eps <= FIT_MAX)
FIT_CONVERGED, FIT_MAX = 100.0, 1e-2


def systems():
    """The two PLRNNs: ``{name: (model, theta, z0)}``."""
    import plrnn_numba as pn

    m2 = pn.PLRNN(2)
    th2 = m2.pack(A=np.array([0.5, 0.4]), W=np.array([[0.0, 0.2], [0.3, 0.0]]), h=np.array([0.3, 0.2]))
    m1 = pn.PLRNN(1, full_W=True)
    th1 = m1.pack(A=[-0.8], W=[[-0.3]], h=[0.5])  # a_L = -0.8, a_R = -1.1
    return {"2d": (m2, th2, np.array([0.1, 0.1])), "1d": (m1, th1, np.array([0.3]))}


#: case: (system, direction, s grid for bifurcation_path, max_order, wanted event kind, sides)
CASES = {
    "fp_dtb": ("2d", "A[0]", (0.0, 0.6, 13), 1, "degenerate transcritical", (-1,)),
    "cycle_dtb": ("1d", {"W[0,0]": -1.0}, (0.0, 0.3, 7), 2, "degenerate transcritical", (-1,)),
    "fp_border": ("2d", "h[0]", (-0.6, 0.0, 13), 1, "border collision", (-1, 1)),
    "cycle_border": ("1d", {"W[0,0]": 1.0}, (0.0, 0.2, 9), 2, "flip", (-1,)),
}
LABELS = {"fp_dtb": "fixed point, degenerate transcritical", "cycle_dtb": "2-cycle, degenerate transcritical",
          "fp_border": "fixed point, border collision (persists)",
          "cycle_border": "2-cycle, border collision (into the flipping fixed point)"}


def locate(case: str) -> float:
    """s* of the case's bifurcation, located by bisection (``bifurcation_path``)."""
    from plrnn_numba.dynamics import bifurcation_path

    sysname, direction, grid, order, kind, _ = CASES[case]
    model, theta, _ = systems()[sysname]
    _, events = bifurcation_path(model, theta, direction, np.linspace(*grid), max_order=order)
    hits = events["s"].values[(events["kind"].values == kind) & (events["order"].values == order)]
    if hits.size == 0:
        raise RuntimeError(f"{case}: no {kind} event of order {order} on the path")
    return float(hits[0])


def run(case: str, distances: np.ndarray, n_steps: list[int]) -> xr.Dataset:
    from plrnn_numba.dynamics import gradient_near_bifurcation

    sysname, direction, _, _, kind, sides = CASES[case]
    model, theta, z0 = systems()[sysname]
    s_star = locate(case)
    keep = ["grad_norm", "loss", "finite", "grad_norm_A", "grad_norm_W", "grad_norm_h"]
    found = {side: gradient_near_bifurcation(model, theta, direction, s_star, distances, n_steps, z0=z0,
                                             side=side)[keep].drop_vars("s").astype(float)
             for side in sides}
    # a side not approached: NaN throughout (and finite = 0), so that the cases share one shape
    blank = next(iter(found.values())) * np.nan
    parts = [found.get(side, blank) for side in (-1, 1)]
    out = xr.concat(parts, dim=xr.DataArray([-1, 1], dims="side", name="side"))
    out["finite"] = out["finite"].fillna(0).astype(np.int8)
    return out.assign_attrs(s_star=s_star, kind=kind)


def slopes(ds: xr.Dataset) -> dict:
    """Fitted log-log slope per degenerate transcritical case (longest T, eps in the fit window), whole gradient
    and h alone; NaN for the border collisions, where no power law is derived."""
    from plrnn_numba.dynamics import fitted_slope

    T = int(ds["n_steps"].values.max())
    eps = ds["distance"].values
    mask = (eps >= FIT_CONVERGED / T) & (eps <= FIT_MAX)
    out = {}
    for case in ds["case"].values:
        if not str(case).endswith("dtb"):
            out[str(case)] = (float("nan"), float("nan"))
            continue
        g = ds.sel(case=case, side=-1, n_steps=T)
        out[str(case)] = (fitted_slope(eps, g["grad_norm"].values, mask), fitted_slope(eps, g["grad_norm_h"].values,
                                                                                      mask))
    return out


def plot(ds: xr.Dataset, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fit = slopes(ds)
    fig, axes = plt.subplots(2, 2, figsize=(11, 8.5), constrained_layout=True)
    eps = ds["distance"].values
    for ax, case in zip(axes.ravel(), ds["case"].values):
        for k, T in enumerate(ds["n_steps"].values):
            for side, style in ((-1, "-"), (1, ":")):
                g = ds["grad_norm"].sel(case=case, side=side, n_steps=T).values
                if np.all(np.isnan(g)):
                    continue
                ax.loglog(eps, g, style, color=f"C{k}", marker=".", ms=3,
                          label=f"T = {T:g}" + ("" if side == -1 else " (from s > s*)"))
        c = str(case)
        if c.endswith("dtb"):
            T = int(ds["n_steps"].values.max())
            ref = ds["grad_norm"].sel(case=case, side=-1, n_steps=T).values
            i = np.argmin(np.abs(eps - FIT_MAX))
            ax.loglog(eps, ref[i] * (eps / eps[i]) ** DERIVED_SLOPE, "k--", lw=0.8,
                      label=f"derived slope {DERIVED_SLOPE:g}; fitted {fit[c][0]:.2f} (h: {fit[c][1]:.2f})")
        ax.set_title(f"{LABELS[c]}, s* = {float(ds['s_star'].sel(case=case)):.6g}", fontsize=9)
        ax.set_xlabel(r"distance $\varepsilon = |s - s^*|$")
        ax.set_ylabel(r"$\|\nabla_\theta L_T\|$")
        ax.legend(fontsize=7)
    fig.suptitle("Loss gradient of a free-running PLRNN near a bifurcation", fontsize=11)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="T up to 1e5, 21 distances (default)")
    mode.add_argument("--full", action="store_true", help="T up to 1e6, 41 distances")
    p.add_argument("--out", type=Path, default=Path("results/loss_jumps_theorems.nc"))
    args = p.parse_args(argv)
    from plrnn_numba import io
    from plrnn_numba.cli import command_line

    cfg = PRESETS["full" if args.full else "quick"]
    distances = np.logspace(np.log10(EPS_RANGE[0]), np.log10(EPS_RANGE[1]), cfg["n_eps"])
    t0 = time.perf_counter()
    runs = {case: run(case, distances, cfg["n_steps"]) for case in CASES}
    ds = xr.concat(list(runs.values()), dim=xr.DataArray(list(runs), dims="case", name="case"),
                   combine_attrs="drop")
    ds["s_star"] = ("case", [runs[c].attrs["s_star"] for c in runs],
                    {"long_name": "located bifurcation on the path", "units": "1"})
    ds["bifurcation"] = ("case", [runs[c].attrs["kind"] for c in runs], {"long_name": "kind of the bifurcation"})
    ds["case"].attrs = {"long_name": "bifurcation approached (see the script's docstring)"}
    ds["side"].attrs = {"long_name": "approached from s < s* (-1) or s > s* (+1)", "units": "1"}
    fit = slopes(ds)
    ds["fitted_slope"] = ("case", [fit[c][0] for c in runs],
                          {"long_name": f"log-log slope of the gradient norm, longest T, eps in [{FIT_CONVERGED:g}/T, "
                                        f"{FIT_MAX:g}]", "units": "1"})
    ds["fitted_slope_h"] = ("case", [fit[c][1] for c in runs],
                            {"long_name": "the same for the gradient with respect to h", "units": "1"})
    ds.attrs.update(io.provenance("scripts/loss_jumps_theorems.py", {"preset": "full" if args.full else "quick"}),
                    script=command_line("scripts/loss_jumps_theorems.py", argv), derived_slope=DERIVED_SLOPE,
                    derived_slope_h=-2.0, wall_seconds=time.perf_counter() - t0)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    nc = io.save(ds, args.out)
    png = args.out.with_suffix(".png")
    plot(ds, png)
    T = int(ds["n_steps"].values.max())
    for case in runs:
        g = ds["grad_norm"].sel(case=case, n_steps=T)
        near = {int(sd): float(g.sel(side=sd).values[-1]) for sd in (-1, 1)}
        far = {int(sd): float(g.sel(side=sd).values[0]) for sd in (-1, 1)}
        line = (f"{case:13s} s* = {float(ds['s_star'].sel(case=case)):.6g}  |grad| at eps = {distances[0]:.0e}: "
                f"{far[-1]:.3g}, at eps = {distances[-1]:.0e}: {near[-1]:.3g}")
        if not np.isnan(near[1]):
            line += f" (from s > s*: {far[1]:.3g} -> {near[1]:.3g})"
        if case.endswith("dtb"):
            line += f"; fitted slope {fit[case][0]:.2f} (h: {fit[case][1]:.2f}), derived {DERIVED_SLOPE:g} (h: -2)"
        print(line)
    print(f"wrote {nc} and {png} in {time.perf_counter() - t0:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
