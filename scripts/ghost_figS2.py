"""Epochs to learn against the rank of the rate network ("sloppy ranks"; Dinc et al., "A ghost mechanism: an
analytical model of abrupt learning", Fig. S2).

The leaky rate network ``RateRNN(100, rank=K, alpha=0.5)`` (a = dt/tau = 0.5,
W = m n with trainable factors m (N x K) and n (K x N), b = 0, x0 = -0.3) for
K in {1, 2, 3, 4, 5, 10, 30, 50, 100}; rank 100 too is trained as the
factors, as the authors do (W = M N), at O(N K) per step like a full W.  The
output is the trained linear readout sigmoid(w_out . x + b_out); training is
full-batch gradient descent on the delayed-activation trial (20 + 20 steps)
at the authors' rate 0.02 on their loss sum_t (o_t - y_t)^2 / T
(``plrnn_numba.ghost.train_delayed_activation``, ``readout="linear"``).
Epochs to learn: the first epoch whose loss is below 1e-2 (-1: never).
Each point records that, whether it learned, the first epoch with loss below
0.1, final and smallest loss, final accuracy, the initial spectral radius of
W, and a subsampled loss curve.  Writes ``<out>`` (netCDF over rank x seed)
and ``<out>.png`` (epochs to learn against the rank, median and seeds, the
never-learned marked; smallest and final loss; median loss curves), and
prints a table per rank.

    python scripts/ghost_figS2.py              # quick: ranks 1, 3, 10, 30, 50, 100 x 5 seeds x 6000 epochs
    python scripts/ghost_figS2.py --full       # all 9 ranks x 20 seeds x 6000 epochs
    python scripts/ghost_figS2.py --ranks 1 100 --seeds 10 --epochs 3000
    python scripts/ghost_figS2.py --init w     # rank-independent scale of W (see below)

Initialisation.  ``RateRNN.init(seed)`` draws every entry of m and n from
N(0, 1/N) whatever K (the authors' randn(N) / sqrt(N) for rank one), so
W = m n has entries of variance K / N^2, |W|_F^2 ~ K, and its non-zero
eigenvalues are those of the K x K matrix n m (entries of variance 1/N):
spectral radius ~ sqrt(K / N) (medians over 20 seeds: 0.06 at K = 1, 0.32
at 10, 0.76 at 50, 1.07 at 100).  The higher ranks therefore start with a
stronger recurrence, not only with more directions; ``--init w`` scales m
and n by K^(-1/4) instead (``init(seed, scale=K**-0.25)``), so that W's
entries have the rank-one variance 1/N^2 at every K (radius ~0.1 at every K),
to tell the two apart.  Measured (full, 20 seeds): with the default init
no network of rank <= 30 gets below 1e-2 in 6000 epochs, 13 of 20 at rank 50
and all at 100 (median 698 epochs); with ``--init w`` none of any rank does
(median smallest loss 0.029-0.034 at every K), so the speed-up comes mostly
from the larger initial W rather than from the extra ranks alone
(docs/reproductions/ghost_mechanism.md).

Readout.  w_out ~ N(0, 1/N), b_out = 0 (``LinearReadout(1).init``), drawn by
``train_delayed_activation`` from a child stream of the seed, independent of
the network's draw.  Options of the sweep engine (``--workers``, ``--backend``,
``--store``, ``--resume``, ...): see ``plrnn_numba.cli``.

Run times of the quick and full presets: docs/run_times.md.
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np
import xarray as xr

ALL_RANKS = [1, 2, 3, 4, 5, 10, 30, 50, 100]
PRESETS = {
    "quick": {"ranks": [1, 3, 10, 30, 50, 100], "n_seeds": 5, "epochs": 6000},
    "full": {"ranks": ALL_RANKS, "n_seeds": 20, "epochs": 6000},
}
CURVE_POINTS = 100
INITS = ["factors", "w"]
TENTH = 0.1  # a second, looser threshold: the abrupt drop rather than the slow tail


def train_point(rank: int, seed: int, *, epochs: int, lr: float, n_units: int, a: float, x0: float,
                threshold: float, init: str) -> dict:
    """One rank-``rank`` network with a trained linear readout, from ``seed``; the sweep's point function."""
    from plrnn_numba import RateRNN
    from plrnn_numba.ghost import epochs_to_learn, train_delayed_activation

    model = RateRNN(n_units, rank=rank, alpha=a)
    theta = model.init(seed, scale=1.0 if init == "factors" else rank ** -0.25)
    h = train_delayed_activation(model, theta, lr=lr, n_epochs=epochs, readout="linear",
                                 x0=x0, snapshot_every=epochs, seed=seed)
    # epoch e: after e updates, e = 0 .. epochs (the last one is the history's final score)
    loss = np.append(h["loss_authors"].values, float(h["final_loss_authors"]))
    factors = model.unpack(theta)
    radius = float(np.max(np.abs(np.linalg.eigvals(factors["n"] @ factors["m"]))))
    every = max(1, epochs // CURVE_POINTS)
    kept = np.arange(0, epochs + 1, every)
    etl = int(epochs_to_learn(h, threshold=threshold))
    return {
        "epochs_to_learn": etl,
        "learned": etl >= 0,
        "epochs_to_tenth": int(epochs_to_learn(h, threshold=TENTH)),
        "final_loss": float(loss[-1]),
        "min_loss": float(np.nanmin(loss)),
        "final_accuracy": float(h["final_accuracy"]),
        "initial_radius": radius,
        "loss_curve": xr.DataArray(
            loss[kept], dims=("epoch",),
            coords={"epoch": ("epoch", kept, {"long_name": "gradient steps taken", "units": "1"})},
            attrs={"long_name": "loss, authors' normalisation sum_t (o_t - y_t)^2 / T (subsampled)", "units": "1"},
        ),
    }


VAR_ATTRS = {
    "epochs_to_learn": {"long_name": "first epoch with loss (authors') below the threshold (-1: never)",
                        "units": "1"},
    "learned": {"long_name": "1 if the loss (authors') fell below the threshold within the epochs", "units": "1"},
    "epochs_to_tenth": {"long_name": f"first epoch with loss (authors') below {TENTH} (-1: never)", "units": "1"},
    "final_loss": {"long_name": "loss (authors' normalisation) after the last update", "units": "1"},
    "min_loss": {"long_name": "smallest loss (authors' normalisation) over the run", "units": "1"},
    "final_accuracy": {"long_name": "training accuracy after the last update", "units": "1"},
    "initial_radius": {"long_name": "spectral radius of the initial W = m n (largest |eigenvalue| of n m)",
                       "units": "1"},
}
COORD_ATTRS = {
    "rank": {"long_name": "rank K of W = m n (factors m: N x K, n: K x N)", "units": "1"},
}


def _median_epochs(e: np.ndarray) -> float:
    """Median over all seeds, a never (-1) counting as later than any epoch: inf if half or more never got there."""
    e = np.where(e >= 0, e, np.inf).astype(float)
    return float(np.median(e)) if e.size else np.nan


def summary(ds: xr.Dataset) -> list[dict]:
    """Per rank: fraction learned, epochs to learn (median over all / the learned, range), losses, radius."""
    rows = []
    for k in ds["rank"].values:
        p = ds.sel(rank=k)
        e = p["epochs_to_learn"].values
        ok = e[e >= 0]
        rows.append({
            "rank": int(k),
            "n": int(e.size),
            "learned": float((e >= 0).mean()),
            "median_all": _median_epochs(e),
            "median_learned": float(np.median(ok)) if ok.size else np.nan,
            "min": float(ok.min()) if ok.size else np.nan,
            "max": float(ok.max()) if ok.size else np.nan,
            "median_tenth": _median_epochs(p["epochs_to_tenth"].values),
            "median_min_loss": float(np.nanmedian(p["min_loss"].values)),
            "median_final_loss": float(np.nanmedian(p["final_loss"].values)),
            "median_radius": float(np.nanmedian(p["initial_radius"].values)),
        })
    return rows


def plot(ds: xr.Dataset, path) -> None:
    """Epochs to learn against the rank (seeds, median, never-learned marked), losses, median loss curves."""
    from plrnn_numba.plot import _plt

    plt = _plt()
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.8), constrained_layout=True)
    ranks = ds["rank"].values.astype(float)
    n = ds.sizes["seed"]
    epochs = int(ds["loss_curve"]["epoch"].values[-1])
    thr = ds.attrs.get("threshold", 1e-2)
    rng = np.random.default_rng(0)  # jitter only (deterministic)
    jitter = np.exp(rng.uniform(-0.07, 0.07, (ranks.size, n)))
    x = ranks[:, None] * jitter

    ax = axes[0]
    never_y = epochs * 1.06
    for var, color, marker, label in (("epochs_to_learn", "C0", "o", f"loss < {thr:g} (epochs to learn)"),
                                      ("epochs_to_tenth", "C2", "^", f"loss < {TENTH:g}")):
        e = ds[var].values.astype(float)
        ok = e >= 0
        ax.scatter(x[ok], e[ok], s=16, color=color, marker=marker, alpha=0.6, label=f"{label}: seeds")
        med = np.array([_median_epochs(row) for row in ds[var].values])
        ax.plot(ranks, np.where(np.isfinite(med), med, np.nan), color=color, lw=1.5, marker="_", ms=14,
                label=f"{label}: median (never = later)")
    never = ds["epochs_to_learn"].values < 0
    if never.any():
        ax.scatter(x[never], np.full(never.sum(), never_y), s=30, color="C3", marker="x",
                   label=f"never below {thr:g} in {epochs} epochs")
    ax.axhline(epochs, color="k", ls=":", lw=0.8)
    ax.set_ylim(0, epochs * 1.12)
    ax.set_ylabel("epoch")
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=2)

    ax = axes[1]
    for var, color, marker, label in (("min_loss", "C0", "o", "smallest over the run"),
                                      ("final_loss", "C3", "x", "after the last epoch")):
        v = ds[var].values
        ax.scatter(x.ravel(), v.ravel(), s=16 if marker == "o" else 28, color=color, marker=marker, alpha=0.5,
                   label=label)
        ax.plot(ranks, np.nanmedian(v, axis=1), color=color, lw=1.2)
    ax.set_yscale("log")
    both = np.concatenate([ds["min_loss"].values.ravel(), ds["final_loss"].values.ravel()])
    both = both[np.isfinite(both) & (both > 0)]
    if both.size:  # at least a decade, with labelled ticks on both sides of the threshold
        ax.set_ylim(min(thr / 2, both.min() / 1.5), max(thr * 15, both.max() * 1.5))
    ax.axhline(thr, color="k", ls="--", lw=0.8)
    ax.set_ylabel("loss (authors'; points: seeds, line: median)")
    ax.legend(fontsize=7, loc="lower left")
    for ax in axes[:2]:
        ax.set_xscale("log")
        ax.set_xlabel("rank K")
        ax.set_xticks(ranks)
        ax.set_xticklabels([f"{int(k)}" for k in ranks], fontsize=7)
        ax.minorticks_off()

    ax = axes[2]
    cmap = plt.get_cmap("viridis")
    ep = ds["epoch"].values
    for i, k in enumerate(ds["rank"].values):
        ax.plot(ep, ds["loss_curve"].sel(rank=k).median("seed"), color=cmap(i / max(1, ranks.size - 1)), lw=1.2,
                label=f"K = {int(k)}")
    ax.set_yscale("log")
    ax.axhline(thr, color="k", ls="--", lw=0.8)
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss (authors'), median over seeds")
    ax.legend(fontsize=7, ncol=2, loc="upper right")
    init = ds.attrs.get("init", "factors")
    how = "m, n ~ N(0, 1/N)" if init == "factors" else "m, n ~ N(0, K^-1/2 / N)"
    fig.suptitle(f"RateRNN(N = {ds.attrs.get('n_units', 100)}, rank K), linear readout, lr {ds.attrs.get('lr', 0.02):g}"
                 f" (authors'), {how}: {n} seeds per rank", fontsize=10)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def parse_args(argv=None):
    from plrnn_numba.cli import add_sweep_arguments

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_sweep_arguments(p, default_out="results/ghost_figS2.nc")
    g = p.add_argument_group("model and training")
    g.add_argument("--ranks", type=int, nargs="+", default=None, help="ranks K (default: the preset's)")
    g.add_argument("--epochs", type=int, default=None, help="override the preset's epochs (paper: 6000)")
    g.add_argument("--lr", type=float, default=0.02, help="authors' learning rate (default: %(default)s)")
    g.add_argument("--threshold", type=float, default=1e-2,
                   help="loss (authors') below which a network has learned (default: %(default)s)")
    g.add_argument("--init", choices=INITS, default="factors",
                   help="factors: m, n ~ N(0, 1/N) (RateRNN.init); w: scaled by K^-1/4, so that W has the "
                        "rank-one entry variance at every K (default: %(default)s)")
    args = p.parse_args(argv)
    if args.ranks is not None and any(k < 1 or k > 100 for k in args.ranks):
        p.error("--ranks must lie in 1 .. 100 (N = 100 units)")
    if args.ranks is not None and len(set(args.ranks)) != len(args.ranks):
        p.error("--ranks must not repeat")
    if args.epochs is not None and args.epochs < 1:
        p.error("--epochs must be positive")
    if args.lr <= 0 or args.threshold <= 0:
        p.error("--lr and --threshold must be > 0")
    return args, p


def main(argv=None) -> int:
    args, parser = parse_args(argv)
    from plrnn_numba.cli import command_line, preset, print_sweep_summary, run_sweep, seed_list

    cfg = preset(args, PRESETS)
    ranks = sorted(args.ranks or cfg["ranks"])
    fixed = {"epochs": args.epochs or cfg["epochs"], "lr": args.lr, "n_units": 100, "a": 0.5, "x0": -0.3,
             "threshold": args.threshold, "init": args.init}
    t0 = time.perf_counter()
    ds = run_sweep(
        train_point,
        {"rank": ranks},
        args=args,
        parser=parser,
        script=__file__,
        argv=argv,
        seeds=seed_list(args, cfg["n_seeds"]),
        fixed=fixed,
        name=f"Dinc et al. Fig. S2: epochs to learn against the rank (linear readout, init {args.init}, {args.mode})",
        coord_attrs=COORD_ATTRS,
        var_attrs=VAR_ATTRS,
        attrs={"script": command_line("scripts/ghost_figS2.py", argv), **fixed},
    )
    png = args.out.with_suffix(".png")
    plot(ds, png)
    print(f"{'rank':>4} {'n':>3} {'learned':>8} {'median':>7} {'median (learned)':>16} {'min':>6} {'max':>6} "
          f"{'med to 0.1':>10} {'med min loss':>12} {'med final loss':>14} {'radius W0':>9}")
    for r in summary(ds):
        print(f"{r['rank']:4d} {r['n']:3d} {r['learned']:8.2f} {r['median_all']:7.0f} {r['median_learned']:16.0f} "
              f"{r['min']:6.0f} {r['max']:6.0f} {r['median_tenth']:10.0f} {r['median_min_loss']:12.4g} "
              f"{r['median_final_loss']:14.4g} {r['median_radius']:9.3f}")
    print(f"epochs to learn: first epoch with loss (authors') < {args.threshold:g}; median over all seeds with "
          "never counted as later (inf: half or more never learned); min/max over the learned (nan: none)")
    print_sweep_summary(ds, args, parser, time.perf_counter() - t0, png)
    return 0


if __name__ == "__main__":
    sys.exit(main())
