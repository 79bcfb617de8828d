"""Loss jumps are bifurcations: a 2-D PLRNN trained by BPTT on a cycle of a ground-truth 2-D PLRNN (the toy
example of Eisenmann, Monfared, Göring, Durstewitz 2023, "Bifurcations and loss jumps in RNN training").

The ground truth is the 2-D PLRNN A = diag(0.8377689, 0.96461297),
W = [[0, -0.64375], [0.52505308, 0]], h = (0.37298253, -0.97931491), which has
one (unstable) fixed point and a stable 16-cycle; the data are 2000 steps of
it after a transient of 1000.  Per seed, a 2-D PLRNN from ``PLRNN.init(seed)``
is trained by plain BPTT (no teacher forcing: the free-running loss whose
gradients the bifurcations shape): Adam 1e-2, batches of 128 windows of 30
steps (large enough that the epoch loss is smooth: with 16 the minibatch noise
at losses near 1e-3 alone exceeds a factor 1.5), one batch per epoch, no
gradient clipping, parameter snapshots every ``--snapshot-every`` epochs.  Then

* the loss jumps: ``plrnn_numba.training.detect_loss_jumps`` on the linear
  scale (``scale="range"``): a running median over 5 epochs compared
  ``--lag`` = 25 epochs before and after, a jump where it changes by more
  than 20% of the loss's range, runs of the same direction less than 100
  epochs apart merged, after the first ``--skip`` = 50 epochs (the initial
  fit of the data's mean level, a fall by a factor ~20 in every run, is not
  a bifurcation of a trained model).  A bifurcation that lets the model
  oscillate starts a descent over tens to hundreds of epochs, not a one-epoch
  step, hence the long lag; and the linear scale, because after it the loss
  keeps halving every few tens of epochs at levels near 1e-3, which a
  relative threshold reads as a string of jumps (``--scale relative``, a
  factor 2, shows it);
* the bifurcations along training: ``plrnn_numba.dynamics.bifurcations_along_training``
  (SCYFI at every snapshot for cycles up to ``--max-order``, events located
  by bisection between snapshots);
* the match: ``plrnn_numba.training.match_jumps_to_events`` with
  ``max_distance`` = one snapshot interval, measured to the jump's run
  (``span=True``): a jump is explained when a located bifurcation lies within
  one snapshot interval of the epochs over which the loss jumped.

Writes ``<out>`` (netCDF over seed: counts, shares, loss and gradient norm per
epoch), ``<out stem>_matches/seed_<k>.nc`` (the jump x event Dataset of every
seed) and two figures for ``--seed``: ``<out>.png`` (loss and gradient norm
against epoch, jumps and events marked by kind) and ``<out stem>_path.png``
(the training path in the plane of the two parameters that moved most, over
the bifurcation manifolds of that plane through the final parameters,
``plrnn_numba.dynamics.bifurcation_grid``).

    python scripts/loss_jumps_toy.py            # quick: 4 seeds, cycles up to order 4, 40 x 40 grid
    python scripts/loss_jumps_toy.py --full     # 20 seeds, cycles up to order 16 (the ground truth's), 80 x 80

Run times of the quick and full presets: docs/run_times.md.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import xarray as xr

PRESETS = {"quick": {"n_seeds": 4, "max_order": 4, "grid": 40},
           "full": {"n_seeds": 20, "max_order": 16, "grid": 80}}
GROUND_TRUTH = {"A": [0.8377689, 0.96461297], "W": [[0.0, -0.64375], [0.52505308, 0.0]],
                "h": [0.37298253, -0.97931491]}
U1 = {"units": "1"}


def ground_truth_data(n_steps: int = 2000, transient: int = 1000):
    """``(model, theta_true, x)``: the ground-truth PLRNN and ``n_steps`` of its stable 16-cycle."""
    import plrnn_numba as pn

    model = pn.PLRNN(2)
    theta = model.pack(**{k: np.asarray(v) for k, v in GROUND_TRUTH.items()})
    x = model.simulate(theta, np.array([0.5, -10.0]), n_steps=transient + n_steps)[transient + 1:]
    return model, theta, x


#: detection settings (see the docstring)
JUMPS = {"relative": {"window": 5, "threshold": 1.0, "min_separation": 100},
         "range": {"window": 5, "threshold": 0.2, "min_separation": 100, "scale": "range"}}
BATCH = 128


def run_seed(seed: int, *, epochs: int, lr: float, seq_len: int, snapshot_every: int, max_order: int, lag: int,
             skip: int, scale: str = "range"):
    """Train one model; return its history, jumps, events and their match."""
    import plrnn_numba as pn
    from plrnn_numba.dynamics import bifurcations_along_training
    from plrnn_numba.training import detect_loss_jumps, match_jumps_to_events

    model, _, x = ground_truth_data()
    t0 = time.perf_counter()
    hist = pn.train(model, model.init(seed), pn.SubsequenceSampler(x, seq_len=seq_len, batch_size=BATCH),
                    n_epochs=epochs, optimizer=pn.Adam(lr), clip_norm=None, snapshot_every=snapshot_every, seed=seed)
    train_s = time.perf_counter() - t0
    jumps = detect_loss_jumps(hist["loss"].isel(epoch=slice(skip, None)), lag=lag, **JUMPS[scale])
    t0 = time.perf_counter()
    _, events = bifurcations_along_training(model, hist, max_order=max_order, seed=seed)
    bif_s = time.perf_counter() - t0
    match = match_jumps_to_events(jumps, events, max_distance=float(snapshot_every), span=True)
    return hist, jumps, events, match, train_s, bif_s


def training_path_figure(hist: xr.Dataset, path: Path, *, grid: int, max_order: int) -> tuple[str, str]:
    """The training path over the bifurcation manifolds of the two parameters that moved most."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    import plrnn_numba as pn
    from plrnn_numba.dynamics import bifurcation_grid
    from plrnn_numba.plot import bifurcation_manifolds

    model = pn.PLRNN(2)
    snaps = hist["theta_snapshots"].values
    names = model.param_names()
    moved = np.argsort(-np.abs(snaps[-1] - snaps[0]))[:2]
    ix, iy = int(moved[0]), int(moved[1])
    lo, hi = snaps[:, [ix, iy]].min(axis=0), snaps[:, [ix, iy]].max(axis=0)
    pad = 0.15 * np.maximum(hi - lo, 0.05)
    gx = np.linspace(lo[0] - pad[0], hi[0] + pad[0], grid)
    gy = np.linspace(lo[1] - pad[1], hi[1] + pad[1], grid)
    ds = bifurcation_grid(model, snaps[-1], names[ix], gx, names[iy], gy, max_order=max_order, backend="parallel")
    fig, ax = plt.subplots(figsize=(6.5, 5.2), constrained_layout=True)
    bifurcation_manifolds(ds, ax)
    sc = ax.scatter(snaps[:, ix], snaps[:, iy], c=hist["snapshot_epoch"].values, cmap="autumn", s=8, zorder=3)
    ax.plot(snaps[:, ix], snaps[:, iy], "w-", lw=0.6, zorder=2)
    fig.colorbar(sc, ax=ax, label="epoch of the snapshot")
    ax.set_title(f"training path over the bifurcation manifolds ({names[ix]}, {names[iy]});\nslice through the final "
                 f"parameters, cycles up to order {max_order}", fontsize=9)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return names[ix], names[iy]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="4 seeds, cycles up to order 4 (default)")
    mode.add_argument("--full", action="store_true", help="20 seeds, cycles up to order 16")
    p.add_argument("--out", type=Path, default=Path("results/loss_jumps_toy.nc"))
    p.add_argument("--seeds", type=int, default=None, help="number of seeds 0..n-1 (default: the preset's)")
    p.add_argument("--seed", type=int, default=0, help="the seed the figures show (default: %(default)s)")
    p.add_argument("--epochs", type=int, default=2000, help="training epochs (default: %(default)s)")
    p.add_argument("--lr", type=float, default=1e-2, help="Adam learning rate (default: %(default)s)")
    p.add_argument("--seq-len", type=int, default=30, help="steps per training window (default: %(default)s)")
    p.add_argument("--snapshot-every", type=int, default=10, help="epochs between snapshots (default: %(default)s)")
    p.add_argument("--max-order", type=int, default=None, help="largest cycle order (quick 4, full 16)")
    p.add_argument("--lag", type=int, default=25, help="epochs before and after compared (default: %(default)s)")
    p.add_argument("--skip", type=int, default=50, help="first epochs not searched for jumps (default: %(default)s)")
    p.add_argument("--scale", choices=sorted(JUMPS), default="range",
                   help="jumps as a fraction of the loss's range (default) or as factors")
    p.add_argument("--grid", type=int, default=None, help="grid points per axis of the figure's plane (0: none)")
    args = p.parse_args(argv)
    for name in ("epochs", "seq_len", "snapshot_every", "lag"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be a positive integer")
    if args.lr <= 0:
        p.error("--lr must be > 0")
    from plrnn_numba import io
    from plrnn_numba.cli import command_line
    from plrnn_numba.plot import loss_jumps_figure

    cfg = PRESETS["full" if args.full else "quick"]
    n_seeds = args.seeds or cfg["n_seeds"]
    max_order = args.max_order or cfg["max_order"]
    grid = cfg["grid"] if args.grid is None else args.grid
    seeds = sorted(set(range(n_seeds)) | {args.seed})
    args.out.parent.mkdir(parents=True, exist_ok=True)
    match_dir = args.out.parent / f"{args.out.stem}_matches"
    match_dir.mkdir(exist_ok=True)
    t0 = time.perf_counter()
    rows, losses, grads, shown = [], [], [], None
    for seed in seeds:
        hist, jumps, events, match, train_s, bif_s = run_seed(seed, epochs=args.epochs, lr=args.lr,
                                                               seq_len=args.seq_len,
                                                               snapshot_every=args.snapshot_every,
                                                               max_order=max_order, lag=args.lag,
                                                               skip=args.skip, scale=args.scale)
        io.save(match, match_dir / f"seed_{seed}.nc")
        kinds = [str(k) for k in events["kind"].values]
        rows.append({"n_jumps": match.attrs["n_jumps"], "n_events": match.attrs["n_events"],
                     "n_jumps_matched": int(match["matched"].sum()) if match.sizes["jump"] else 0,
                     "n_events_without_jump": int((match["has_jump"] == 0).sum()) if match.sizes["event"] else 0,
                     "n_degenerate_transcritical": kinds.count("degenerate transcritical"),
                     "final_loss": float(hist["loss"].values[-1]), "train_seconds": train_s,
                     "bifurcation_seconds": bif_s})
        loss = np.full(args.epochs, np.nan)
        loss[: hist.sizes["epoch"]] = hist["loss"].values
        gn = np.full(args.epochs, np.nan)
        gn[: hist.sizes["epoch"]] = hist["grad_norm"].values
        losses.append(loss)
        grads.append(gn)
        if seed == args.seed:
            shown = (hist, jumps, events)
        print(f"seed {seed}: {rows[-1]['n_jumps']} jumps, {rows[-1]['n_jumps_matched']} within one snapshot interval "
              f"of a located bifurcation; {rows[-1]['n_events']} events, {rows[-1]['n_events_without_jump']} without "
              f"a jump; train {train_s:.1f} s, bifurcations {bif_s:.1f} s", flush=True)
    seed_c = ("seed", np.asarray(seeds), {"long_name": "training seed (PLRNN.init and batches)", **U1})
    epoch_c = ("epoch", np.arange(args.epochs), {"long_name": "training epoch (0-based)", **U1})
    var_attrs = {
        "n_jumps": "loss jumps after the skipped epochs (detect_loss_jumps with the settings of jump_settings)",
        "n_events": "bifurcation events located along training",
        "n_jumps_matched": "jumps with a located bifurcation within one snapshot interval",
        "n_events_without_jump": "located bifurcations with no jump within one snapshot interval",
        "n_degenerate_transcritical": "degenerate transcritical bifurcations along training",
        "final_loss": "training loss in the last epoch",
        "train_seconds": "training time", "bifurcation_seconds": "bifurcations_along_training time"}
    data = {k: ("seed", np.array([r[k] for r in rows]),
                {"long_name": v, "units": "s" if k.endswith("seconds") else "1"}) for k, v in var_attrs.items()}
    data["loss"] = (("seed", "epoch"), np.array(losses), {"long_name": "training loss (mse)", **U1})
    data["grad_norm"] = (("seed", "epoch"), np.array(grads), {"long_name": "gradient norm before clipping", **U1})
    n_j = int(sum(r["n_jumps"] for r in rows))
    n_m = int(sum(r["n_jumps_matched"] for r in rows))
    n_e = int(sum(r["n_events"] for r in rows))
    n_q = int(sum(r["n_events_without_jump"] for r in rows))
    ds = xr.Dataset(data, coords={"seed": seed_c, "epoch": epoch_c})
    ds.attrs.update(io.provenance("scripts/loss_jumps_toy.py", {"preset": "full" if args.full else "quick"}, seeds),
                    script=command_line("scripts/loss_jumps_toy.py", argv), epochs=args.epochs, lr=args.lr,
                    seq_len=args.seq_len, snapshot_every=args.snapshot_every, max_order=max_order, lag=args.lag,
                    skip=args.skip, batch_size=BATCH, jump_settings=io.to_json(JUMPS[args.scale]),
                    ground_truth=io.to_json(GROUND_TRUTH),
                    share_jumps_matched=n_m / n_j if n_j else float("nan"),
                    share_events_without_jump=n_q / n_e if n_e else float("nan"),
                    matches_dir=str(match_dir))
    nc = io.save(ds, args.out)
    png = args.out.with_suffix(".png")
    hist, jumps, events = shown
    loss_jumps_figure(hist, jumps, events, png,
                      title=f"2-D PLRNN trained by BPTT on a 16-cycle (seed {args.seed}): loss jumps and bifurcations")
    msg = f"wrote {nc}, {match_dir}/ and {png}"
    if grid > 0:
        path_png = args.out.parent / f"{args.out.stem}_path.png"
        px, py = training_path_figure(hist, path_png, grid=grid, max_order=max_order)
        msg += f" and {path_png} (plane {px}, {py})"
    print(f"all seeds: {n_m} of {n_j} jumps within one snapshot interval of a located bifurcation; "
          f"{n_q} of {n_e} located bifurcations without a jump")
    print(f"{msg} in {time.perf_counter() - t0:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
