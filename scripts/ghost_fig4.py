"""Lowering the confidence frees rank-one RNNs from the no-learning zone (Dinc et al., "A ghost mechanism: an
analytical model of abrupt learning", Fig. 4).

Trains rank-one rate networks (N = 100, a = dt/tau = 0.5, m, n ~ N(0, 1/N),
b = 0, x(0) = -0.3) on one deterministic trial of the delayed-activation task
(20 steps of 0, then 20 of 1) with the readout sigmoid(c (n . x - 1)), c = 10,
full-batch gradient descent at the authors' learning rate 0.02 on their loss
sum_t (o_t - y_t)^2 / T (T = 20 steps; see ``plrnn_numba.ghost.rnn``), one
network per seed, 6000 epochs.  Per network it records whether it learned
at some point (training accuracy above 0.5, the no-learning zone's bound,
in some epoch), whether it ended in the no-learning zone (accuracy <= 0.5 in
each of the last 50 epochs), its highest accuracy, the first epoch with
accuracy 1, the final loss, and a subsampled accuracy and loss curve.  Every
network that ends in the zone is then trained for 100 more epochs at each
lowered confidence c in logspace(-3, 1, 30) (from its final parameters, c
fixed, same rate): its final accuracy.  Writes ``<out>`` (netCDF over lr x
train_c x seed) and ``<out>.png`` (accuracy curves; accuracy after lowering
against c, mean +- s.e.m. over the networks that learned and then got stuck,
as the paper's figure), and prints the counts next to the paper's: "74
learned the task at some point, whereas 54 of them entered the no-learning
zone" (the 54 are among the 74), and the share of those that lowering c
recovers (accuracy above 0.5) or makes relearn (accuracy 1).

    python scripts/ghost_fig4.py              # quick: 20 networks
    python scripts/ghost_fig4.py --full       # the paper's 100 networks
    python scripts/ghost_fig4.py --full --train-c     # also the variant with a trainable confidence
    python scripts/ghost_fig4.py --full --resume      # continue after Ctrl-C or a crash

Options of the sweep engine (``--workers``, ``--backend``, ``--store``,
``--resume``, ``--seed``, ``--seeds``, ...): see ``plrnn_numba.cli``.

Run times of the quick and full presets: docs/run_times.md.
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np
import xarray as xr

PRESETS = {"quick": {"n_seeds": 20}, "full": {"n_seeds": 100}}
PAPER = {"networks": 100, "learned_at_some_point": 74, "stuck": 54}  # the 54 are among the 74
CURVE_POINTS = 200
U1 = {"units": "1"}


def train_point(lr: float, train_c: int, seed: int, *, n_units: int, rank: int, epochs: int, c: float,
                extra_epochs: int, c_values: list[float]) -> dict:
    """One network: train, score, and (when stuck) train further at every lowered c; the sweep's point function."""
    import plrnn_numba as pn
    from plrnn_numba.ghost import rnn

    model = pn.RateRNN(n_units, rank=rank, alpha=0.5)
    h = rnn.train_delayed_activation(model, model.init(seed), lr=lr, n_epochs=epochs, c=c, train_c=bool(train_c),
                                     snapshot_every=epochs)
    acc = h["accuracy"].values
    stuck = rnn.in_no_learning_zone(h, last=50)
    cs = np.asarray(c_values, dtype=float)
    after = np.full(cs.size, np.nan)
    if stuck:
        lowered = rnn.lower_confidence(model, h["theta"].values, c_values=cs, n_epochs=extra_epochs, lr=lr, c_eval=c)
        after = lowered["final_accuracy"].values
    every = max(1, epochs // CURVE_POINTS)
    kept = np.arange(0, acc.size, every)
    curve_epoch = {"curve_epoch": ("curve_epoch", kept, {"units": "1", "long_name": "epoch (updates taken)"})}
    c_coord = {"c_lowered": ("c_lowered", cs, {"units": "1", "long_name": "lowered confidence c"})}
    first = np.flatnonzero(acc >= 1.0)
    return {
        "learned_at_some_point": rnn.learned_at_some_point(h),
        "max_accuracy": float(acc.max()),
        "stuck": stuck,
        "first_epoch_learned": int(first[0]) if first.size else -1,
        "final_accuracy": float(h["final_accuracy"]),
        "final_loss": float(h["final_loss_authors"]),
        "final_c": float(h["c"].values[-1]) if "c" in h else c,
        "accuracy_curve": xr.DataArray(acc[kept], dims="curve_epoch", coords=curve_epoch,
                                       attrs={**U1, "long_name": "training accuracy (subsampled)"}),
        "loss_curve": xr.DataArray(h["loss_authors"].values[kept], dims="curve_epoch", coords=curve_epoch,
                                   attrs={**U1, "long_name": "loss, authors' normalisation (subsampled)"}),
        "accuracy_after_lowering": xr.DataArray(
            after, dims="c_lowered", coords=c_coord,
            attrs={**U1, "long_name": f"training accuracy after {extra_epochs} more epochs at the lowered c "
                                      "(NaN: the network was not stuck)"}),
    }


VAR_ATTRS = {
    "learned_at_some_point": {**U1, "long_name": "1 if the training accuracy was above 0.5 in some epoch"},
    "max_accuracy": {**U1, "long_name": "highest training accuracy over the epochs"},
    "stuck": {**U1, "long_name": "1 if in the no-learning zone: accuracy <= 0.5 in each of the last 50 epochs"},
    "first_epoch_learned": {**U1, "long_name": "first epoch with training accuracy 1 (-1: never)"},
    "final_accuracy": {**U1, "long_name": "training accuracy after the last update"},
    "final_loss": {**U1, "long_name": "loss after the last update, authors' normalisation sum_t (o - y)^2 / T"},
    "final_c": {**U1, "long_name": "confidence c after training (trained only with train_c)"},
}
COORD_ATTRS = {
    "lr": {**U1, "long_name": "learning rate (authors' normalisation of the loss)"},
    "train_c": {**U1, "long_name": "1 if the confidence c was trained along with the network"},
}


def summary(ds: xr.Dataset) -> list[dict]:
    """Per (lr, train_c): the counts, and the share of the learned-then-stuck networks that lowering c frees.

    Learned at some point: training accuracy above 0.5 in some epoch (out of
    the zone's bound); stuck: in the no-learning zone at the end.  The paper's
    "74 learned at some point, 54 of them entered the no-learning zone" are
    the first count and the count of networks that are both; its Fig. 4
    averages over those 54.  Recovered: accuracy above 0.5 after the extra
    epochs at the lowered c; relearned: accuracy 1.
    """
    rows = []
    for lr in ds["lr"].values:
        for tc in ds["train_c"].values:
            d = ds.sel(lr=lr, train_c=tc)
            ok = d["error"] == ""
            learned = (d["learned_at_some_point"] == 1) & ok
            stuck = (d["stuck"] == 1) & ok
            both = learned & stuck
            after = d["accuracy_after_lowering"].where(both)
            n_both = int(both.sum())
            recovered = ((after > 0.5).sum("seed") / max(n_both, 1)).values
            relearned = ((after >= 1.0).sum("seed") / max(n_both, 1)).values
            best = int(np.argmax(recovered)) if n_both else 0
            nan = np.nan
            rows.append({
                "lr": float(lr), "train_c": int(tc), "networks": int(ok.sum()),
                "learned_at_some_point": int(learned.sum()), "stuck": int(stuck.sum()),
                "learned_then_stuck": n_both, "never_learned": int((~learned & ok).sum()),
                "reached_accuracy_1": int(((d["first_epoch_learned"] >= 0) & ok).sum()),
                "best_c": float(ds["c_lowered"].values[best]),
                "recovered_at_best_c": float(recovered[best]) if n_both else nan,
                "relearned_at_best_c": float(relearned[best]) if n_both else nan,
                "recovered_at_some_c": float(((after > 0.5).any("c_lowered") & both).sum() / n_both) if n_both else nan,
                "recovered_at_c_eval": float(recovered[-1]) if n_both else nan,
            })
    return rows


def plot(ds: xr.Dataset, path) -> None:
    """Accuracy curves of all networks; accuracy after lowering against c (mean +- s.e.m. over stuck networks)."""
    from plrnn_numba.plot import _plt

    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8), constrained_layout=True)
    d = ds.isel(lr=0, train_c=0)
    epochs = d["curve_epoch"].values
    for s in range(d.sizes["seed"]):
        row = d.isel(seed=s)
        if str(row["error"].values):
            continue
        learned = int(row["learned_at_some_point"])
        color = ("C3" if int(row["stuck"]) else "C2") if learned else "0.6"
        axes[0].plot(epochs, row["accuracy_curve"].values, color=color, lw=0.6, alpha=0.6)
    rows = summary(ds)
    r0 = rows[0]
    axes[0].set_title(f"{r0['networks']} networks: {r0['learned_at_some_point']} learned at some point, "
                      f"{r0['learned_then_stuck']} of them stuck (red)", fontsize=9)
    axes[0].set_xlabel("epoch")
    axes[0].set_ylabel("training accuracy")
    cs = ds["c_lowered"].values
    for j, tc in enumerate(ds["train_c"].values):
        d = ds.isel(lr=0).sel(train_c=tc)
        both = (d["stuck"] == 1) & (d["learned_at_some_point"] == 1)
        after = d["accuracy_after_lowering"].where(both)
        n = int(both.sum())
        if n == 0:
            continue
        mean = after.mean("seed").values
        sem = after.std("seed", ddof=1).values / np.sqrt(n) if n > 1 else 0 * mean
        label = (f"c trained ({n} learned, then stuck)" if tc
                 else f"c = {float(ds.attrs.get('c', 10)):g} ({n} learned, then stuck)")
        axes[1].errorbar(cs, mean, yerr=sem, marker=".", ms=4, lw=1, color=f"C{j}", label=label)
    axes[1].axhline(0.5, color="0.5", ls=":", lw=0.8)
    axes[1].set_xscale("log")
    axes[1].set_xlabel("lowered confidence c")
    axes[1].set_ylabel("training accuracy after the extra epochs")
    axes[1].set_title("learned, then stuck: 100 more epochs at lowered c (mean $\\pm$ s.e.m.)", fontsize=9)
    axes[1].legend(fontsize=8)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def parse_args(argv=None):
    from plrnn_numba.cli import add_sweep_arguments

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_sweep_arguments(p, default_out="results/ghost_fig4.nc")
    g = p.add_argument_group("model and training")
    g.add_argument("--lr", type=float, nargs="+", default=[0.02],
                   help="learning rate(s), authors' normalisation of the loss (default: %(default)s)")
    g.add_argument("--epochs", type=int, default=6000, help="training epochs (default: %(default)s)")
    g.add_argument("--c", type=float, default=10.0, help="confidence of the readout (default: %(default)s)")
    g.add_argument("--train-c", action="store_true", help="also train networks whose confidence is trainable")
    g.add_argument("--extra-epochs", type=int, default=100,
                   help="epochs at each lowered confidence (default: %(default)s)")
    g.add_argument("--c-range", type=float, nargs=3, metavar=("LOG10_MIN", "LOG10_MAX", "N"), default=(-3.0, 1.0, 30),
                   help="lowered confidences logspace(LOG10_MIN, LOG10_MAX, N) (default: -3 1 30, the authors')")
    g.add_argument("--n-units", type=int, default=100, help="network size N (default: %(default)s)")
    g.add_argument("--rank", type=int, default=1, help="rank of W = m n (default: %(default)s)")
    args = p.parse_args(argv)
    for name in ("epochs", "extra_epochs", "n_units", "rank"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be a positive integer")
    if args.epochs < 50:
        p.error("--epochs must be at least 50 (the no-learning zone is judged on the last 50 epochs)")
    if any(lr <= 0 for lr in args.lr) or args.c <= 0:
        p.error("--lr and --c must be > 0")
    return args, p


def main(argv=None) -> int:
    args, parser = parse_args(argv)
    from plrnn_numba.cli import command_line, preset, print_sweep_summary, run_sweep, seed_list

    cfg = preset(args, PRESETS)
    lo, hi, n = args.c_range
    c_values = [float(v) for v in np.logspace(lo, hi, int(n))]
    fixed = {"n_units": args.n_units, "rank": args.rank, "epochs": args.epochs, "c": args.c,
             "extra_epochs": args.extra_epochs, "c_values": c_values}
    t0 = time.perf_counter()
    ds = run_sweep(
        train_point,
        {"lr": [float(v) for v in args.lr], "train_c": [0, 1] if args.train_c else [0]},
        args=args,
        parser=parser,
        script=__file__,
        argv=argv,
        seeds=seed_list(args, cfg["n_seeds"]),
        fixed=fixed,
        name=f"Dinc et al. Fig. 4: rank-{args.rank} RNNs, no-learning zone and lowered confidence ({args.mode})",
        coord_attrs=COORD_ATTRS,
        var_attrs=VAR_ATTRS,
        attrs={"script": command_line("scripts/ghost_fig4.py", argv), "c": args.c,
               "paper_counts": "74 of 100 learned at some point, 54 stuck in the no-learning zone"},
    )
    wall = time.perf_counter() - t0
    png = args.out.with_suffix(".png")
    plot(ds, png)
    print(f"{'lr':>6} {'train c':>7} {'networks':>8} {'learned at some point':>21} {'of them stuck':>13} "
          f"{'never learned':>13} {'stuck':>5} {'accuracy 1':>10} {'best c':>7} {'recovered':>9} {'relearned':>9} "
          f"{'recovered at some c':>19}")
    for r in summary(ds):
        print(f"{r['lr']:6g} {r['train_c']:7d} {r['networks']:8d} {r['learned_at_some_point']:21d} "
              f"{r['learned_then_stuck']:13d} {r['never_learned']:13d} {r['stuck']:5d} {r['reached_accuracy_1']:10d} "
              f"{r['best_c']:7.3g} {r['recovered_at_best_c']:9.2f} {r['relearned_at_best_c']:9.2f} "
              f"{r['recovered_at_some_c']:19.2f}")
    scale = ds.sizes["seed"] / PAPER["networks"]
    print(f"paper (c = 10, lr 0.02, 100 networks): {PAPER['learned_at_some_point']} learned at some point, "
          f"{PAPER['stuck']} of them stuck; scaled to {ds.sizes['seed']} networks: "
          f"{PAPER['learned_at_some_point'] * scale:.1f} and {PAPER['stuck'] * scale:.1f}")
    print_sweep_summary(ds, args, parser, wall, png)
    return 0


if __name__ == "__main__":
    sys.exit(main())
