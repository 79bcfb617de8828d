"""Sweep the generalized-teacher-forcing strength alpha x seeds for a small PLRNN on Lorenz-63.

Each point trains a model from its own seed with a constant GTF alpha and
records the final loss, the largest gradient norm, whether training
diverged, the loss curve, and the state-space divergence D_stsp of a free
run against held-out data.  Writes ``<out>`` (netCDF, one Dataset over
alpha x seed) and ``<out>.png`` (D_stsp and final loss against alpha).

    python scripts/sweep_gtf_alpha.py                  # quick preset
    python scripts/sweep_gtf_alpha.py --full --workers 16
    python scripts/sweep_gtf_alpha.py --full --scheduler tcp://head:8786
    python scripts/sweep_gtf_alpha.py --full --resume  # continue after Ctrl-C or a crash
    python scripts/sweep_gtf_alpha.py --full --retry-failed  # and compute the failed points again

Open the result with ``plrnn_numba.io.open("results/sweep_gtf_alpha.nc")``;
see docs/sweeps.md.

Run times of the quick and full presets: docs/run_times.md.
"""

from __future__ import annotations

import argparse
import functools
import sys
import time

import numpy as np
import xarray as xr

PRESETS = {
    "quick": {
        "alphas": [0.0, 0.02, 0.05, 0.1, 0.2, 0.4],
        "n_seeds": 4,
        "epochs": 500,
        "n_samples": 6000,
        "seq_len": 50,
        "batch_size": 16,
        "hidden": 20,
        "n_eval": 2000,
    },
    "full": {
        "alphas": [0.0, 0.02, 0.05, 0.1, 0.15, 0.2, 0.3, 0.5],
        "n_seeds": 10,
        "epochs": 3000,
        "n_samples": 20000,
        "seq_len": 100,
        "batch_size": 16,
        "hidden": 30,
        "n_eval": 5000,
    },
}


@functools.lru_cache(maxsize=4)
def lorenz_data(n_samples: int) -> tuple[np.ndarray, np.ndarray]:
    """Standardised Lorenz-63 training and held-out data (80/20), computed once per worker process."""
    from plrnn_numba.data import as_array, lorenz63

    x = as_array(lorenz63(n_samples, dt=0.01, seed=0))
    n_train = int(0.8 * x.shape[0])
    return x[:n_train], x[n_train:]


def train_point(
    alpha: float,
    seed: int,
    *,
    model: str,
    dim: int,
    hidden: int,
    epochs: int,
    n_samples: int,
    seq_len: int,
    batch_size: int,
    lr: float,
    n_eval: int,
) -> dict:
    """Train one model with GTF(alpha) from ``seed``; the sweep's point function.

    Returns
    -------
    dict
        ``final_loss``, ``max_grad_norm``, ``diverged`` (0/1),
        ``epochs_completed``, ``dstsp`` and ``dh`` (free run vs held-out data,
        ``plrnn_numba.metrics.free_run_measures``; inf and 1 if the free run
        diverges) and ``loss`` (per epoch, NaN after a
        divergence).
    """
    import plrnn_numba as pn
    from plrnn_numba.metrics import free_run_measures

    x_train, x_test = lorenz_data(n_samples)
    net = pn.ShallowPLRNN(dim, hidden, clipped=True) if model == "shallow" else pn.PLRNN(dim)
    theta0 = net.init(seed)
    sampler = pn.SubsequenceSampler(x_train, seq_len=seq_len, batch_size=batch_size)
    hist = pn.train(
        net,
        theta0,
        sampler,
        n_epochs=epochs,
        optimizer=pn.Adam(lr),
        clip_norm=10.0,
        forcing=pn.GTF(alpha),
        snapshot_every=epochs,
        seed=seed,
    )
    loss = np.full(epochs, np.nan)
    loss[: hist.sizes["epoch"]] = hist["loss"].values
    fit = free_run_measures(net, hist["theta"].values, x_test[: min(n_eval, x_test.shape[0])])
    return {
        "final_loss": float(hist["loss"].values[-1]),
        "max_grad_norm": float(np.nanmax(hist["grad_norm"].values)),
        "diverged": hist.attrs["status"] == "diverged",
        "epochs_completed": int(hist.attrs["epochs_completed"]),
        "dstsp": fit["dstsp"],
        "dh": fit["dh"],
        "loss": xr.DataArray(
            loss,
            dims=("epoch",),
            coords={"epoch": ("epoch", np.arange(epochs), {"long_name": "training epoch (0-based)", "units": "1"})},
            attrs={"long_name": "mean training loss (mse; NaN after a divergence)", "units": "1"},
        ),
    }


VAR_ATTRS = {
    "final_loss": {"long_name": "training loss in the last completed epoch (mse)", "units": "1"},
    "max_grad_norm": {"long_name": "largest global gradient norm before clipping", "units": "1"},
    "diverged": {"long_name": "1 if training stopped on a non-finite loss or gradient", "units": "1"},
    "epochs_completed": {"long_name": "epochs completed", "units": "1"},
    "dstsp": {"long_name": "state-space divergence of a free run vs held-out data (binned KL, 30 bins per "
                           "channel, Laplace smoothing 1e-5; free run of 1.25 T, first 0.25 T dropped)",
              "units": "nats"},
    "dh": {"long_name": "power-spectrum (Hellinger) distance of the same free run vs held-out data (Gaussian "
                        "smoothing sigma 20)", "units": "1"},
}


def parse_args(argv=None) -> tuple[argparse.Namespace, argparse.ArgumentParser]:
    from plrnn_numba.cli import add_sweep_arguments

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_sweep_arguments(p, default_out="results/sweep_gtf_alpha.nc")
    model = p.add_argument_group("model and training")
    model.add_argument(
        "--model", choices=["shallow", "plrnn"], default="shallow", help="clipped shallow PLRNN or PLRNN"
    )
    model.add_argument("--dim", type=int, default=None, help="latent dimension (default: 3 shallow, 10 plrnn)")
    model.add_argument("--epochs", type=int, default=None, help="override the preset's epochs")
    model.add_argument("--alphas", type=float, nargs="+", default=None, help="override the preset's alpha values")
    model.add_argument("--lr", type=float, default=3e-3, help="Adam learning rate (default: %(default)s)")
    return p.parse_args(argv), p


def plot(ds: xr.Dataset, path) -> None:
    """D_stsp and final loss against alpha (one dot per seed, line: median)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(9, 3.5), constrained_layout=True)
    labels = {"dstsp": "D_stsp of a free run (nats)", "final_loss": "final training loss (mse)"}
    for ax, var in zip(axes, labels):
        da = ds[var].where(np.isfinite(ds[var]))
        for s in ds["seed"].values:
            ax.plot(ds["alpha"], da.sel(seed=s), "o", color="0.6", ms=3)
        ax.plot(ds["alpha"], da.median("seed"), "-", color="C0", label="median over seeds")
        ax.set_xlabel("GTF alpha")
        ax.set_ylabel(labels[var])
        ax.set_yscale("log")
    axes[0].legend()
    fig.suptitle(ds.attrs.get("title", ""))
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv=None) -> int:
    args, parser = parse_args(argv)
    from plrnn_numba.cli import command_line, preset, run_sweep, seed_list, sweep_kwargs

    cfg = preset(args, PRESETS)
    kwargs = sweep_kwargs(args, parser)
    fixed = {
        "model": args.model,
        "dim": args.dim or (3 if args.model == "shallow" else 10),
        "hidden": cfg["hidden"],
        "epochs": args.epochs or cfg["epochs"],
        "n_samples": cfg["n_samples"],
        "seq_len": cfg["seq_len"],
        "batch_size": cfg["batch_size"],
        "lr": args.lr,
        "n_eval": cfg["n_eval"],
    }
    t0 = time.perf_counter()
    # run_sweep: the --backend/--store/--resume options, and one clear line instead of a traceback when the
    # store already holds points, on Ctrl-C or on SIGTERM
    ds = run_sweep(
        train_point,
        {"alpha": args.alphas or cfg["alphas"]},
        args=args,
        parser=parser,
        script=__file__,
        argv=argv,
        seeds=seed_list(args, cfg["n_seeds"]),
        fixed=fixed,
        name=f"GTF alpha sweep: {args.model} PLRNN on Lorenz-63 ({args.mode})",
        coord_attrs={"alpha": {"long_name": "generalized teacher forcing strength", "units": "1"}},
        var_attrs=VAR_ATTRS,
        attrs={"script": command_line("scripts/sweep_gtf_alpha.py", argv)},
    )
    png = args.out.with_suffix(".png")
    plot(ds, png)
    summary = xr.Dataset(
        {
            "median D_stsp": ds["dstsp"].median("seed"),
            "median D_H": ds["dh"].median("seed"),
            "diverged": ds["diverged"].mean("seed"),
            "median loss": ds["final_loss"].median("seed"),
            "failed": (ds["error"] != "").sum("seed"),
        }
    ).to_dataframe()
    print(summary.to_string(float_format=lambda v: f"{v:.4g}"))
    print(
        f"{ds.sizes['alpha'] * ds.sizes['seed']} points ({ds.attrs['n_computed']} computed) in "
        f"{time.perf_counter() - t0:.1f} s with backend {ds.attrs['backend']} ({ds.attrs['workers']} workers)"
    )
    print(f"wrote {args.out}, {png} (store: {kwargs['store']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
