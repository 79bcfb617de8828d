"""Theorem 3 swept: degenerate transcritical bifurcations met during training against the GTF strength alpha
(Eisenmann, Monfared, Göring, Durstewitz 2023, "Bifurcations and loss jumps in RNN training").

Theorem 3: with generalized teacher forcing at strength alpha, every one-step
Jacobian of the *forced* system is (1 - alpha) times the model's, so with
r = ||A|| + ||W|| (a bound on every region's Jacobian norm) any alpha > 1 - 1/r
keeps it contracting: its fixed points cannot reach an eigenvalue +1, and no
degenerate transcritical bifurcation (DTB) can occur in it.

The task: a 3-D PLRNN (every latent state observed and forced) trained by
BPTT with GTF on standardised Lorenz-63 data, from parameters drawn close to
the edge of stability (``PLRNN.init`` with A_ii ~ U(0.95, 1.05), w_scale 0.5,
no norm bound), which makes unforced training meet DTBs: Adam 1e-2, windows
of 100 steps, batches of 16, gradient clipping at 10, 400 epochs, snapshots
every 4 epochs.  Per (forcing, seed) the sweep runs

* ``bifurcations_along_training`` of the model itself (fixed points), the
  DTBs of the free-running model;
* the same along the *forced map* z -> (1 - alpha) F(z) + alpha xbar, the map
  GTF's gradients see, with xbar the training data's mean (for the PLRNN:
  A' = (1 - alpha) A, W' = (1 - alpha) W, h' = (1 - alpha) h + alpha xbar,
  with alpha of each snapshot's epoch): the DTBs Theorem 3 is about;
* r = ||A||_2 + ||W||_2 at every snapshot, the bound 1 - 1/r, and whether
  alpha exceeded it at every snapshot (``above_bound``).

``forcing`` is a constant alpha or ``theorem3``: ``GTF(Theorem3Alpha())``,
which sets alpha = 1 - 1/r + 0.05 from the current parameters every epoch.

Writes ``<out>`` (netCDF over forcing x seed) and ``<out>.png`` (DTB counts of
the forced map and of the model against alpha, one dot per run, the largest
bound 1 - 1/r over the runs marked, the Theorem3Alpha runs at their mean
alpha).

    python scripts/loss_jumps_theorem3.py           # quick: 8 forcings x 4 seeds
    python scripts/loss_jumps_theorem3.py --full    # 12 forcings x 10 seeds

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
from sweep_gtf_alpha import lorenz_data  # the standardised Lorenz-63 data, shared with the GTF sweep

PRESETS = {
    "quick": {"alphas": [0.0, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6], "n_seeds": 4, "epochs": 400},
    "full": {"alphas": [0.0, 0.02, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5, 0.6, 0.8], "n_seeds": 10,
             "epochs": 400},
}
THEOREM3 = "theorem3"
INIT = {"a_range": (0.95, 1.05), "w_scale": 0.5, "max_norm": None}
U1 = {"units": "1"}


def forcing_label(alpha: float | str) -> str:
    return THEOREM3 if alpha == THEOREM3 else f"alpha={float(alpha):g}"


def snapshot_alpha(hist: xr.Dataset) -> np.ndarray:
    """GTF alpha at each snapshot's epoch (0 without forcing, where the history records NaN)."""
    a = hist["alpha"].values[np.minimum(hist["snapshot_epoch"].values, hist.sizes["epoch"] - 1)]
    return np.nan_to_num(a, nan=0.0)


def forced_snapshots(model, hist: xr.Dataset, xbar: np.ndarray) -> xr.Dataset:
    """``hist`` with its snapshots replaced by the forced map's parameters (PLRNN, every state forced)."""
    alpha = snapshot_alpha(hist)
    snaps = []
    for a, th in zip(alpha, hist["theta_snapshots"].values):
        d = model.unpack(th)
        snaps.append(model.pack(A=(1 - a) * d["A"], W=(1 - a) * d["W"], h=(1 - a) * d["h"] + a * xbar))
    return hist.assign(theta_snapshots=(hist["theta_snapshots"].dims, np.array(snaps)))


def train_point(forcing: str, seed: int, *, epochs: int, n_samples: int) -> dict:
    """One run: train with the forcing, count DTBs of the model and of the forced map, record r along training."""
    import plrnn_numba as pn
    from plrnn_numba.dynamics import bifurcations_along_training
    from plrnn_numba.models.piecewise import as_piecewise_linear

    x_train, _ = lorenz_data(n_samples)
    model = pn.PLRNN(3)
    alpha = pn.Theorem3Alpha() if forcing == THEOREM3 else float(forcing.split("=")[1])
    t0 = time.perf_counter()
    hist = pn.train(model, model.init(seed, **INIT), pn.SubsequenceSampler(x_train, seq_len=100, batch_size=16),
                    n_epochs=epochs, optimizer=pn.Adam(1e-2), clip_norm=10.0,
                    forcing=pn.GTF(alpha) if alpha != 0.0 else None, snapshot_every=4, seed=seed)
    train_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    _, ev_model = bifurcations_along_training(model, hist, max_order=1, seed=seed)
    _, ev_forced = bifurcations_along_training(model, forced_snapshots(model, hist, x_train.mean(axis=0)),
                                               max_order=1, seed=seed)
    bif_s = time.perf_counter() - t0
    snaps = hist["theta_snapshots"].values
    r = np.array([as_piecewise_linear(model, th).norm_bound() for th in snaps])
    a_snap = snapshot_alpha(hist)
    bound = np.where(r > 1.0, 1.0 - 1.0 / r, 0.0)
    n_snap = epochs // 4 + 1
    pad = lambda v: np.pad(v.astype(float), (0, n_snap - v.size), constant_values=np.nan)  # noqa: E731
    count = lambda ev: int(list(ev["kind"].values).count("degenerate transcritical"))  # noqa: E731
    return {
        "dtb_forced": count(ev_forced),
        "dtb_model": count(ev_model),
        "events_forced": int(ev_forced.sizes["event"]),
        "events_model": int(ev_model.sizes["event"]),
        "r_max": float(r.max()),
        "bound_max": float(bound.max()),
        "alpha_mean": float(np.mean(np.nan_to_num(hist["alpha"].values, nan=0.0))),
        "above_bound": int(np.all(a_snap > bound)),
        "final_loss": float(hist["loss"].values[-1]),
        "diverged": int(hist.attrs["status"] == "diverged"),
        "train_seconds": train_s,
        "bifurcation_seconds": bif_s,
        "r": xr.DataArray(pad(r), dims=("snapshot",)),
        "alpha_at_snapshot": xr.DataArray(pad(a_snap), dims=("snapshot",)),
    }


VAR_ATTRS = {
    "dtb_forced": {"long_name": "degenerate transcritical bifurcations of the forced map along training", **U1},
    "dtb_model": {"long_name": "degenerate transcritical bifurcations of the free-running model along training",
                  **U1},
    "events_forced": {"long_name": "bifurcation events of the forced map (fixed points)", **U1},
    "events_model": {"long_name": "bifurcation events of the model (fixed points)", **U1},
    "r_max": {"long_name": "largest r = ||A||_2 + ||W||_2 over the snapshots", **U1},
    "bound_max": {"long_name": "largest Theorem 3 bound 1 - 1/r over the snapshots", **U1},
    "alpha_mean": {"long_name": "mean GTF alpha over the epochs", **U1},
    "above_bound": {"long_name": "1 if alpha > 1 - 1/r at every snapshot", **U1},
    "final_loss": {"long_name": "training loss in the last epoch (forced, mse)", **U1},
    "diverged": {"long_name": "1 if training stopped on a non-finite loss", **U1},
    "train_seconds": {"long_name": "training time", "units": "s"},
    "bifurcation_seconds": {"long_name": "time of the two bifurcations_along_training calls", "units": "s"},
    "r": {"long_name": "r = ||A||_2 + ||W||_2 at each snapshot", **U1},
    "alpha_at_snapshot": {"long_name": "GTF alpha at each snapshot's epoch", **U1},
}


def plot(ds: xr.Dataset, path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4), constrained_layout=True)
    labels = [str(f) for f in ds["forcing"].values]
    bound = float(ds["bound_max"].max())
    for ax, var, title in ((axes[0], "dtb_forced", "forced map (what Theorem 3 is about)"),
                           (axes[1], "dtb_model", "free-running model")):
        jitter = np.random.default_rng(0)  # spreads equal counts so that every run shows
        seen = set()
        for f in labels:
            sel = ds.sel(forcing=f)
            for x, y, above in zip(sel["alpha_mean"].values, sel[var].values, sel["above_bound"].values):
                if not np.isfinite(y):
                    continue
                key = (f == THEOREM3, int(above))
                label = None if key in seen else (
                    ("GTF(Theorem3Alpha()) at its mean alpha" if key[0] else "constant alpha")
                    + (", alpha > 1 - 1/r at every snapshot" if key[1] else ", below the bound somewhere"))
                seen.add(key)
                ax.plot(x, y + jitter.uniform(-0.1, 0.1), "D" if key[0] else "o", ms=6 if key[0] else 5,
                        color="C2" if key[1] else "C0", mfc="none" if key[0] else None, label=label)
        ax.axvline(bound, color="k", ls="--", lw=1, label=f"largest bound 1 - 1/r of any run: {bound:.2f}")
        ax.set_xlabel("GTF alpha")
        ax.set_ylabel("degenerate transcritical bifurcations per run")
        ax.set_title(title, fontsize=10)
        ax.legend(fontsize=7)
    fig.suptitle("Theorem 3: DTBs along training against the GTF strength (3-D PLRNN, Lorenz-63)", fontsize=11)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None) -> int:
    from plrnn_numba.cli import add_sweep_arguments

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_sweep_arguments(p, default_out="results/loss_jumps_theorem3.nc")
    g = p.add_argument_group("forcing and training")
    g.add_argument("--alphas", type=float, nargs="+", default=None, help="constant alphas (default: the preset's)")
    g.add_argument("--no-theorem3", action="store_true", help="leave out the GTF(Theorem3Alpha()) runs")
    g.add_argument("--epochs", type=int, default=None, help="training epochs (default: 400)")
    args = p.parse_args(argv)
    if args.epochs is not None and args.epochs < 1:
        p.error("--epochs must be a positive integer")
    if args.alphas is not None and any(not 0.0 <= a < 1.0 for a in args.alphas):
        p.error("--alphas must lie in [0, 1)")
    from plrnn_numba.cli import command_line, preset, print_sweep_summary, run_sweep, seed_list

    cfg = preset(args, PRESETS)
    forcings = [forcing_label(a) for a in (args.alphas or cfg["alphas"])]
    if not args.no_theorem3:
        forcings.append(THEOREM3)
    fixed = {"epochs": args.epochs or cfg["epochs"], "n_samples": 6000}
    t0 = time.perf_counter()
    ds = run_sweep(train_point, {"forcing": forcings}, args=args, parser=p, script=__file__, argv=argv,
                   seeds=seed_list(args, cfg["n_seeds"]), fixed=fixed,
                   name=f"Theorem 3: DTBs along training against GTF alpha ({args.mode})",
                   coord_attrs={"forcing": {"long_name": "GTF forcing: constant alpha or Theorem3Alpha"}},
                   var_attrs=VAR_ATTRS,
                   attrs={"script": command_line("scripts/loss_jumps_theorem3.py", argv), "init": str(INIT)})
    wall = time.perf_counter() - t0
    if "dtb_forced" not in ds:
        print(f"every point failed; the first: {ds['error'].values.ravel()[0]}", file=sys.stderr)
        return 1
    png = args.out.with_suffix(".png")
    plot(ds, png)
    print(f"{'forcing':>12} {'mean alpha':>10} {'DTB forced':>10} {'DTB model':>9} {'above bound':>11} "
          f"{'bound max':>9}")
    for f in ds["forcing"].values:
        s = ds.sel(forcing=f)
        print(f"{str(f):>12} {float(s['alpha_mean'].mean()):10.3f} {str(s['dtb_forced'].values.tolist()):>10} "
              f"{str(s['dtb_model'].values.tolist()):>9} {str(s['above_bound'].values.tolist()):>11} "
              f"{float(s['bound_max'].max()):9.3f}")
    print_sweep_summary(ds, args, p, wall, png)
    return 0


if __name__ == "__main__":
    sys.exit(main())
