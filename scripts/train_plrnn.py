"""Train a PLRNN with generalized teacher forcing on Lorenz-63 (the package's main job).

Writes ``<out>/train_plrnn.nc`` (training history, parameter snapshots, the
observed and the generated trajectories, fit measures) and
``<out>/train_plrnn.png`` (loss curve; generated versus true attractor).

    python scripts/train_plrnn.py            # quick default
    python scripts/train_plrnn.py --full     # longer data, more epochs, a better fit

The model is selected on the way: every ``--eval-every`` epochs a callback
runs the model freely and measures the state-space divergence ``D_stsp``
between generated and observed attractor; the parameters with the lowest
``D_stsp`` are the ones reported (``theta_best``).

Run times of the quick and full presets: docs/run_times.md.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import xarray as xr

import plrnn_numba as pn
from plrnn_numba import io, plot
from plrnn_numba.data import as_array, lorenz63
from plrnn_numba.metrics import evaluation_window, free_run_measures, state_space_divergence
from plrnn_numba.training import TrainState

PRESETS = {
    "quick": {"n_samples": 20000, "epochs": 3000, "seq_len": 100, "batch_size": 16, "hidden": 30},
    "full": {"n_samples": 100000, "epochs": 20000, "seq_len": 200, "batch_size": 16, "hidden": 50},
}


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="quick default run")
    mode.add_argument("--full", action="store_true", help="longer run with a better fit")
    p.add_argument("--out", type=Path, default=Path("results"), help="output directory (default: results/)")
    p.add_argument(
        "--model",
        choices=["shallow", "plrnn"],
        default="shallow",
        help="clipped shallow PLRNN (default; bounded orbits) or the standard PLRNN",
    )
    p.add_argument("--dim", type=int, default=None, help="latent dimension (default: 3 shallow, 20 plrnn)")
    p.add_argument("--hidden", type=int, default=None, help="hidden width of the shallow PLRNN")
    p.add_argument("--epochs", type=int, default=None, help="override the preset's number of epochs")
    p.add_argument("--alpha-start", type=float, default=0.3, help="GTF alpha at the start (annealed geometrically)")
    p.add_argument("--alpha-end", type=float, default=0.02, help="GTF alpha after 80%% of the epochs")
    p.add_argument("--lr", type=float, default=3e-3, help="Adam learning rate")
    p.add_argument("--eval-every", type=int, default=None, help="epochs between D_stsp evaluations")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=None, help="numba threads (default: all cores)")
    p.add_argument("--no-progress", action="store_true")
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    preset = dict(PRESETS["full" if args.full else "quick"])
    if args.epochs is not None:
        preset["epochs"] = args.epochs
    if args.threads:
        pn.config.set_num_threads(args.threads)
    epochs = preset["epochs"]
    eval_every = args.eval_every or max(1, epochs // 30)
    t_start = time.perf_counter()

    data = lorenz63(preset["n_samples"], dt=0.01, seed=args.seed)
    x = as_array(data)
    n_train = int(0.8 * x.shape[0])
    x_train, x_test = x[:n_train], x[n_train:]

    if args.model == "shallow":
        model = pn.ShallowPLRNN(args.dim or 3, args.hidden or preset["hidden"], clipped=True)
    else:
        model = pn.PLRNN(args.dim or 20)
    theta0 = model.init(args.seed)
    sampler = pn.SubsequenceSampler(x_train, seq_len=preset["seq_len"], batch_size=preset["batch_size"])
    n_eval = min(5000, x_test.shape[0])
    best = {"dstsp": np.inf, "theta": theta0.copy(), "epoch": -1}

    def evaluate(state: TrainState) -> dict:
        d = free_run_measures(model, state.theta, x_test[:n_eval])["dstsp"]
        if d < best["dstsp"]:
            best.update(dstsp=d, theta=state.theta.copy(), epoch=state.epoch)
        return {"dstsp": d}

    forcing = pn.GTF(pn.ExponentialAlpha(args.alpha_start, args.alpha_end, int(0.8 * epochs)))
    history = pn.train(
        model,
        theta0,
        sampler,
        n_epochs=epochs,
        optimizer=pn.Adam(args.lr),
        lr_schedule=pn.MultiStepLR([int(0.7 * epochs), int(0.9 * epochs)], 0.3),
        clip_norm=10.0,
        forcing=forcing,
        snapshot_every=max(1, epochs // 100),
        callback=evaluate,
        callback_every=eval_every,
        seed=args.seed,
        progress=not args.no_progress,
    )

    # free run of the selected model from the first test state, 1.25 T states with the first 0.25 T dropped,
    # against the T held-out observations
    observed = x_test
    n_gen = observed.shape[0]
    fit = free_run_measures(model, best["theta"], observed)
    generated, d_stsp, d_pse = fit["generated"], fit["dstsp"], fit["dh"]
    d_ref = state_space_divergence(observed[: n_gen // 2], observed[n_gen // 2 :])

    out = history.copy()
    out = out.rename({"cb_dstsp": "dstsp"}) if "cb_dstsp" in out else out
    if "dstsp" in out:
        out["dstsp"].attrs = {"long_name": "state-space divergence of a free run (held-out data)", "units": "nats"}
    channel = data["channel"].values
    out = out.assign_coords(
        channel=("channel", channel, {"long_name": "observed Lorenz-63 variable"}),
        gen_time=(
            "gen_time",
            np.arange(n_gen),
            {"long_name": f"step in the compared window (held-out data: its step; free run: step "
                          f"{evaluation_window(n_gen)[1]} + this, after the dropped transient)",
             "units": "steps of 0.01 time units"},
        ),
    )
    out["observed"] = (
        ("gen_time", "channel"),
        observed,
        {"long_name": "held-out Lorenz-63 data (standardised)", "units": "1"},
    )
    out["generated"] = (
        ("gen_time", "channel"),
        generated,
        {"long_name": "free-running model from the first held-out state (transient of 0.25 T dropped)",
         "units": "1"},
    )
    out["theta_best"] = ("param", best["theta"], {"long_name": "parameters with the lowest D_stsp", "units": "1"})
    out.attrs.update(
        title=f"{model.name} with GTF on Lorenz-63",
        state_space_divergence=float(d_stsp),
        power_spectrum_distance=float(d_pse),
        measures=("state_space_divergence: binned KL divergence, 30 bins per channel over [min - 0.1 sd, "
                  "max + 0.1 sd], Laplace smoothing 1e-5; power_spectrum_distance: mean Hellinger distance of "
                  "z-scored power spectra smoothed by a Gaussian of sigma 20; free run of floor(1.25 T) states, "
                  "the first floor(0.25 T) dropped"),
        state_space_divergence_data_halves=float(d_ref),
        best_epoch=int(best["epoch"]),
        script="scripts/train_plrnn.py " + " ".join(sys.argv[1:] if argv is None else argv),
        data_attrs=io.to_json({k: v for k, v in data.attrs.items() if k in ("sigma", "rho", "beta", "dt", "seed")}),
        wall_seconds=float(time.perf_counter() - t_start),
    )
    args.out.mkdir(parents=True, exist_ok=True)
    nc = io.save(out, args.out / "train_plrnn.nc")
    fig = plot.training_summary(out, args.out / "train_plrnn.png")
    del fig
    check = xr.open_dataset(nc)
    check.close()
    print(
        f"{model.name}: {epochs} epochs in {history.attrs['train_seconds']:.1f} s "
        f"(status: {history.attrs['status']}); best D_stsp at epoch {best['epoch']}"
    )
    print(
        f"held-out D_stsp = {d_stsp:.3f} (two halves of the data: {d_ref:.3f}), power-spectrum distance = {d_pse:.3f}"
    )
    print(f"wrote {nc} and {args.out / 'train_plrnn.png'} in {time.perf_counter() - t_start:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
