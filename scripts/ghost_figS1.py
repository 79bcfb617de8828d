"""Learning-rate sweep of the rank-one rate network (Dinc et al., "A ghost mechanism: an analytical model of
abrupt learning", Fig. S1).

The paper's rank-one leaky rate network, ``RateRNN(100, rank=1, alpha=0.5)``
(a = dt/tau = 0.5, W = m n^T with m, n ~ N(0, 1/N) from the seed, b = 0,
x0 = -0.3), trained on the delayed-activation trial (20 + 20 steps) with the
latent readout sigmoid(c (n . x - kappa*)), c = 10, kappa* = 1, by full-batch
gradient descent at the **authors'** learning rate on **their** loss
sum_t (o_t - y_t)^2 / T (``plrnn_numba.ghost.train_delayed_activation``), over
learning rates x seeds.  Each point records whether the network learned at
some point (training accuracy above 0.5, the no-learning zone's bound, in
some epoch: ``learned_at_some_point`` of the module, the reading that
reproduces the paper's Fig. 4 count), whether it reached accuracy 1, whether
it ends in the no-learning zone (accuracy <= 0.5 in each of the last 50
epochs), the first epochs with accuracy above 0.5, with accuracy 1 and with
loss < 1e-2 ("epochs to learn"; -1: never), final and best loss and
accuracy, and a subsampled loss curve.  Writes ``<out>`` (netCDF over lr x
seed) and ``<out>.png`` (fractions learned / reaching accuracy 1 / in the
no-learning zone / learned then stuck against the rate; the epochs; smallest
and final loss), and prints a table per learning rate.

    python scripts/ghost_figS1.py              # quick: 9 rates x 5 seeds x 6000 epochs
    python scripts/ghost_figS1.py --full       # 21 rates x 20 seeds x 6000 epochs
    python scripts/ghost_figS1.py --full --resume        # continue after Ctrl-C or a crash
    python scripts/ghost_figS1.py --lr-range -2 -1 11 --epochs 10000 --seeds 10

Learning rates (authors'): quick logspace(-2.5, -0.5, 9), full
logspace(-3, -0.5, 21) (eight per decade).  Quick keeps the paper's 6000
epochs: the initial plateau lasts about 100 / lr epochs (the full sweep: the
median of lr x the first epoch with accuracy > 0.5 is 100), about 5000 at the
authors' rate 0.02, so a shorter run records almost nothing there, and 6000
epochs cut most learning off below lr ~ 0.017 (3 of 20 networks learned at
0.0133, none at 0.01).  "In the no-learning zone" at the end also holds for
a network that never left its plateau; "learned at some point, then stuck" counts those that moved and
fell back.  Options of the sweep engine
(``--workers``, ``--backend``, ``--store``, ``--resume``, ...): see
``plrnn_numba.cli``.

Run times of the quick and full presets: docs/run_times.md.
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np
import xarray as xr

PRESETS = {
    "quick": {"lr_range": (-2.5, -0.5, 9), "n_seeds": 5, "epochs": 6000},
    "full": {"lr_range": (-3.0, -0.5, 21), "n_seeds": 20, "epochs": 6000},
}
CURVE_POINTS = 100
AUTHORS_LR = 0.02


def train_point(lr: float, seed: int, *, epochs: int, n_units: int, a: float, c: float, kappa_star: float,
                x0: float, threshold: float) -> dict:
    """One rank-one network from the authors' initialisation (``seed``), trained at the authors' rate ``lr``."""
    from plrnn_numba import RateRNN
    from plrnn_numba.ghost import epochs_to_learn, train_delayed_activation

    model = RateRNN(n_units, rank=1, alpha=a)
    h = train_delayed_activation(model, model.init(seed), lr=lr, n_epochs=epochs, readout="latent", c=c,
                                 kappa_star=kappa_star, x0=x0, snapshot_every=epochs, seed=seed)
    # epoch e: after e updates, e = 0 .. epochs (the last one is the history's final score)
    loss = np.append(h["loss_authors"].values, float(h["final_loss_authors"]))
    acc = np.append(h["accuracy"].values, float(h["final_accuracy"]))
    above = np.flatnonzero(acc > 0.5)
    perfect = np.flatnonzero(acc >= 1.0)
    every = max(1, epochs // CURVE_POINTS)
    kept = np.arange(0, epochs + 1, every)
    return {
        "learned_at_some_point": bool(h.attrs["learned_at_some_point"]),
        "reached_accuracy_1": bool(perfect.size),
        "stuck": bool(h.attrs["in_no_learning_zone"]),
        "first_epoch_above_half": int(above[0]) if above.size else -1,
        "first_epoch_accuracy_1": int(perfect[0]) if perfect.size else -1,
        "epochs_to_learn": int(epochs_to_learn(h, threshold=threshold)),
        "final_loss": float(loss[-1]),
        "min_loss": float(np.nanmin(loss)),
        "final_accuracy": float(acc[-1]),
        "max_accuracy": float(np.nanmax(acc)),
        "loss_curve": xr.DataArray(
            loss[kept], dims=("epoch",),
            coords={"epoch": ("epoch", kept, {"long_name": "gradient steps taken", "units": "1"})},
            attrs={"long_name": "loss, authors' normalisation sum_t (o_t - y_t)^2 / T (subsampled)", "units": "1"},
        ),
    }


VAR_ATTRS = {
    "learned_at_some_point": {"long_name": "1 if the training accuracy was above 0.5 (out of the no-learning zone's "
                                           "bound) in some epoch", "units": "1"},
    "reached_accuracy_1": {"long_name": "1 if the training accuracy reached 1 in some epoch", "units": "1"},
    "stuck": {"long_name": "1 if the training accuracy was <= 0.5 in each of the last 50 epochs (no-learning zone)",
              "units": "1"},
    "first_epoch_above_half": {"long_name": "first epoch with training accuracy above 0.5 (-1: never)",
                               "units": "1"},
    "first_epoch_accuracy_1": {"long_name": "first epoch with training accuracy 1 (-1: never)", "units": "1"},
    "epochs_to_learn": {"long_name": "first epoch with loss (authors') below the threshold (-1: never)",
                        "units": "1"},
    "final_loss": {"long_name": "loss (authors' normalisation) after the last update", "units": "1"},
    "min_loss": {"long_name": "smallest loss (authors' normalisation) over the run", "units": "1"},
    "final_accuracy": {"long_name": "training accuracy after the last update", "units": "1"},
    "max_accuracy": {"long_name": "highest training accuracy over the run", "units": "1"},
}
COORD_ATTRS = {
    "lr": {"long_name": "learning rate (authors': on sum_t (o_t - y_t)^2 / T)", "units": "1"},
}


def _median_epoch(e: np.ndarray) -> float:
    """Median of the epochs >= 0 (NaN if none)."""
    e = e[e >= 0]
    return float(np.median(e)) if e.size else np.nan


def summary(ds: xr.Dataset) -> list[dict]:
    """Per learning rate: fractions learned / accuracy 1 / stuck / learned then stuck; median epochs; losses.

    Medians of epochs are over the seeds that got there (NaN: none).
    """
    rows = []
    for lr in ds["lr"].values:
        p = ds.sel(lr=lr)
        learned = p["learned_at_some_point"].values.astype(bool)
        stuck = p["stuck"].values.astype(bool)
        rows.append({
            "lr": float(lr),
            "n": int(learned.size),
            "learned": float(learned.mean()),
            "accuracy_1": float(p["reached_accuracy_1"].values.astype(bool).mean()),
            "stuck": float(stuck.mean()),
            "learned_then_stuck": float((stuck & learned).mean()),
            "median_above_half": _median_epoch(p["first_epoch_above_half"].values),
            "median_accuracy_1": _median_epoch(p["first_epoch_accuracy_1"].values),
            "n_loss_below": int((p["epochs_to_learn"].values >= 0).sum()),
            "median_epochs_to_learn": _median_epoch(p["epochs_to_learn"].values),
            "median_min_loss": float(np.nanmedian(p["min_loss"].values)),
            "median_final_loss": float(np.nanmedian(p["final_loss"].values)),
        })
    return rows


def escape_constant(ds: xr.Dataset) -> float:
    """Median over the learned networks of lr x (first epoch with accuracy > 0.5): the plateau lasts ~ this / lr."""
    e = ds["first_epoch_above_half"].values.astype(float)
    k = (ds["lr"].values[:, None] * e)[e >= 0]
    return float(np.median(k)) if k.size else np.nan


def plot(ds: xr.Dataset, path) -> None:
    """Fractions learned / stuck, epochs to learn, smallest and final loss against the rate (points: seeds)."""
    from plrnn_numba.plot import _plt

    plt = _plt()
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2), constrained_layout=True)
    lrs = ds["lr"].values
    n = ds.sizes["seed"]
    epochs = int(ds["loss_curve"]["epoch"].values[-1])
    thr = ds.attrs.get("threshold", 1e-2)
    frac = {k: ds[k].astype(float).mean("seed").values
            for k in ("learned_at_some_point", "reached_accuracy_1", "stuck")}
    both = (ds["stuck"].astype(bool) & ds["learned_at_some_point"].astype(bool)).astype(float).mean("seed").values
    ax = axes[0]
    ax.plot(lrs, frac["learned_at_some_point"], "o-", color="C2", ms=4,
            label="learned at some point (accuracy > 0.5)")
    ax.plot(lrs, frac["reached_accuracy_1"], "D:", color="C0", ms=4, label="reached accuracy 1")
    ax.plot(lrs, frac["stuck"], "s-", color="C3", ms=4, label="no-learning zone at the end")
    ax.plot(lrs, both, "^--", color="C1", ms=4, label="learned at some point, then stuck")
    ax.set_ylabel(f"fraction of {n} seeds")
    ax.set_ylim(-0.03, 1.35)
    ax.set_yticks(np.linspace(0, 1, 6))
    ax.legend(fontsize=7, loc="upper center")

    ax = axes[1]
    rng = np.random.default_rng(0)  # jitter only (deterministic)
    jitter = np.exp(rng.uniform(-0.05, 0.05, (lrs.size, n)))
    for var, color, marker, label in (("first_epoch_above_half", "C2", "o", "first epoch with accuracy > 0.5"),
                                      ("first_epoch_accuracy_1", "C0", "D", "first epoch with accuracy 1"),
                                      ("epochs_to_learn", "C3", "x", f"first epoch with loss < {thr:g}")):
        e = ds[var].values.astype(float)  # (lr, seed)
        ok = e >= 0
        ax.scatter((lrs[:, None] * jitter)[ok], e[ok], s=28 if marker == "x" else 14, color=color, marker=marker,
                   alpha=0.55, label=label)
        med = np.array([_median_epoch(row) for row in ds[var].values])
        ax.plot(lrs, med, color=color, lw=1.2, marker="_", ms=12)
    k = escape_constant(ds)
    if np.isfinite(k):
        grid = np.geomspace(max(lrs[0], k / epochs), lrs[-1], 50)
        ax.plot(grid, k / grid, color="k", ls="--", lw=1, zorder=5, label=f"{k:.0f} / lr (median of lr x epoch)")
    ax.set_ylim(0, epochs * 1.05)
    ax.set_ylabel("epoch (points: seeds; line: median)")
    ax.legend(fontsize=7, loc="upper right")

    ax = axes[2]
    for var, color, marker, label in (("min_loss", "C0", "o", "smallest over the run"),
                                      ("final_loss", "C3", "x", "after the last epoch")):
        v = ds[var].values
        ax.scatter((lrs[:, None] * jitter).ravel(), v.ravel(), s=16 if marker == "o" else 28, color=color,
                   marker=marker, alpha=0.5, label=label)
        ax.plot(lrs, np.nanmedian(v, axis=1), color=color, lw=1.2)
    ax.set_yscale("log")
    ax.set_ylabel("loss (authors'; points: seeds, line: median)")
    ax.axhline(thr, color="k", ls="--", lw=0.8)
    ax.text(lrs[0], thr * 1.1, f" threshold {thr:g}", fontsize=7)
    ax.legend(fontsize=7, loc="lower right")
    span = (lrs[0] / 1.25, lrs[-1] * 1.25)
    for ax in axes:
        ax.set_xscale("log")
        ax.set_xlim(*span)
        ax.set_xlabel("learning rate (authors')")
        ax.axvline(AUTHORS_LR, color="k", ls=":", lw=0.8)
    c = ds.attrs.get("c", 10.0)
    fig.suptitle(f"Rank-one RNN (N = {ds.attrs.get('n_units', 100)}, latent readout, c = {c:g}): "
                 f"{epochs} epochs, {n} seeds per rate (dotted: the authors' lr {AUTHORS_LR:g})", fontsize=10)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def parse_args(argv=None):
    from plrnn_numba.cli import add_sweep_arguments

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_sweep_arguments(p, default_out="results/ghost_figS1.nc")
    g = p.add_argument_group("model and training")
    g.add_argument("--epochs", type=int, default=None, help="override the preset's epochs (paper: 6000)")
    g.add_argument("--lr-range", type=float, nargs=3, metavar=("LOG10_MIN", "LOG10_MAX", "N"), default=None,
                   help="authors' learning rates logspace(LOG10_MIN, LOG10_MAX, N) instead of the preset's")
    g.add_argument("--c", type=float, default=10.0, help="confidence of the latent readout (default: %(default)s)")
    g.add_argument("--threshold", type=float, default=1e-2,
                   help="loss (authors') below which a network counts as learned (default: %(default)s)")
    args = p.parse_args(argv)
    if args.epochs is not None and args.epochs < 50:
        p.error("--epochs must be at least 50 (the no-learning zone is judged on the last 50 epochs)")
    if args.c <= 0 or args.threshold <= 0:
        p.error("--c and --threshold must be > 0")
    return args, p


def main(argv=None) -> int:
    args, parser = parse_args(argv)
    from plrnn_numba.cli import command_line, preset, print_sweep_summary, run_sweep, seed_list

    cfg = preset(args, PRESETS)
    lo, hi, n = args.lr_range or cfg["lr_range"]
    lrs = [float(v) for v in np.logspace(lo, hi, int(n))]
    fixed = {"epochs": args.epochs or cfg["epochs"], "n_units": 100, "a": 0.5, "c": args.c, "kappa_star": 1.0,
             "x0": -0.3, "threshold": args.threshold}
    t0 = time.perf_counter()
    ds = run_sweep(
        train_point,
        {"lr": lrs},
        args=args,
        parser=parser,
        script=__file__,
        argv=argv,
        seeds=seed_list(args, cfg["n_seeds"]),
        fixed=fixed,
        name=f"Dinc et al. Fig. S1: rank-one RNN learning-rate sweep (latent readout, c = {args.c:g}, {args.mode})",
        coord_attrs=COORD_ATTRS,
        var_attrs=VAR_ATTRS,
        attrs={"script": command_line("scripts/ghost_figS1.py", argv), **fixed},
    )
    png = args.out.with_suffix(".png")
    plot(ds, png)
    print(f"{'lr':>8} {'n':>3} {'learned':>7} {'acc=1':>5} {'stuck':>5} {'learned->stuck':>14} "
          f"{'med 1st acc>.5':>14} {'med 1st acc=1':>13} {'loss<thr':>8} {'med ep. to learn':>16} "
          f"{'med min loss':>12} {'med final loss':>14}")
    for r in summary(ds):
        print(f"{r['lr']:8.4g} {r['n']:3d} {r['learned']:7.2f} {r['accuracy_1']:5.2f} {r['stuck']:5.2f} "
              f"{r['learned_then_stuck']:14.2f} {r['median_above_half']:14.0f} {r['median_accuracy_1']:13.0f} "
              f"{r['n_loss_below']:8d} {r['median_epochs_to_learn']:16.0f} {r['median_min_loss']:12.4g} "
              f"{r['median_final_loss']:14.4g}")
    print("fractions of seeds; learned: accuracy > 0.5 in some epoch (the module's learned_at_some_point); medians "
          f"of epochs over the seeds that got there (nan: none); loss<thr: seeds with loss < {args.threshold:g}")
    print(f"lr x (first epoch with accuracy > 0.5), median over the networks that learned: {escape_constant(ds):.1f}")
    print_sweep_summary(ds, args, parser, time.perf_counter() - t0, png)
    return 0


if __name__ == "__main__":
    sys.exit(main())
