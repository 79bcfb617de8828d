"""Flossing extends the trainable delay (Engelken (2023), "Gradient flossing: improving gradient
descent through dynamic control of Jacobians", Figs. 3C and 4C).

Vanilla tanh RNNs are trained on the delayed copy and delayed temporal XOR
tasks (binary inputs, linear readout, binary cross-entropy on logits, Adam,
gradient clipping, one fresh batch per epoch) for a range of delays d, under
three conditions: no flossing, preflossing (flossing the first k exponents to
0 before training), and flossing episodes during training.  The result is the
final test accuracy (on steps whose target is defined) against d.

    python scripts/flossing_delays.py                    # quick preset
    python scripts/flossing_delays.py --full --workers 16 # the paper's sizes (N = 80, T = 300, batch 16)

Writes ``<out>`` (netCDF over task x delay x condition x seed) and ``<out>.png``.
Runs through the sweep engine: ``--backend``, ``--scheduler``, ``--resume`` as
in every sweep script (docs/sweeps.md).

Run times of the quick and full presets: docs/run_times.md.
"""

from __future__ import annotations

import argparse
import sys
import time

PRESETS = {
    "quick": {
        "n": 32,
        "n_steps": 100,
        "batch": 16,
        "epochs": 600,
        "delays": [2, 5, 10, 15],
        "n_seeds": 2,
        "k": 16,
        "pre_epochs": 150,
        "episode_steps": 50,
        "episodes": 3,
        "tasks": ["copy", "temporal_xor"],
    },
    "full": {
        "n": 80,
        "n_steps": 300,
        "batch": 16,
        "epochs": 10000,
        "delays": [5, 10, 20, 30, 40, 50, 70],
        "n_seeds": 5,
        "k": 75,
        "pre_epochs": 500,
        "episode_steps": 500,
        "episodes": 5,
        "tasks": ["copy", "temporal_xor"],
    },
}
CONDITIONS = ["none", "preflossing", "during"]


def train_point(
    task: str,
    delay: int,
    condition: str,
    seed: int,
    *,
    n: int,
    n_steps: int,
    batch: int,
    epochs: int,
    k: int,
    pre_epochs: int,
    episode_steps: int,
    episodes: int,
    lr: float,
    clip: float,
) -> dict:
    """Train one network on one task/delay/condition; return its final test accuracy and loss."""
    import plrnn_numba as pn
    from plrnn_numba.dynamics.flossing import Flossing, FlossingEpisodes, floss
    from plrnn_numba.tasks import accuracy, make_task, task_batch_source

    model = pn.VanillaRNN(n, n_inputs=1)
    theta = model.init(seed)
    fl = Flossing(k=min(k, n), target=0.0, n_steps=55, lr=1e-3)
    if condition == "preflossing":
        theta, _ = floss(model, theta, pre_epochs, fl, seed=seed)
    hooks = []
    if condition == "during":
        every = max(1, epochs // (episodes + 1))
        hooks.append(FlossingEpisodes(fl, {i * every: episode_steps for i in range(episodes)}))
    readout = pn.LinearReadout(1)
    hist = pn.train(
        model,
        theta,
        task_batch_source(task, batch, n_steps, delay, seed=seed),
        n_epochs=epochs,
        readout=readout,
        loss="bce",
        optimizer=pn.Adam(lr),
        clip_norm=clip,
        seed=seed,
        hooks=hooks,
        snapshot_every=epochs,
    )
    test = make_task(task, 256, n_steps, delay, seed=10_000 + seed)
    logits, _ = pn.predict(
        model, hist["theta"].values, test, readout=readout, readout_params=hist["readout_params"].values
    )
    return {
        "accuracy": float(accuracy(logits, test)),
        "final_loss": float(hist["loss"].values[-1]),
        "diverged": hist.attrs["status"] == "diverged",
    }


def main(argv=None) -> int:
    from plrnn_numba.cli import add_sweep_arguments, command_line, preset, run_sweep, seed_list

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_sweep_arguments(p, default_out="results/flossing_delays.nc")
    g = p.add_argument_group("training")
    g.add_argument("--lr", type=float, default=1e-3)
    g.add_argument("--clip", type=float, default=1.0, help="global gradient-norm clipping")
    g.add_argument("--epochs", type=int, default=None)
    g.add_argument("--delays", type=int, nargs="+", default=None, help="delays d (default: the preset's)")
    g.add_argument("--tasks", nargs="+", choices=["copy", "temporal_xor"], default=None,
                   help="tasks (default: both)")
    args = p.parse_args(argv)
    cfg = preset(args, PRESETS)
    fixed = {key: cfg[key] for key in ("n", "n_steps", "batch", "k", "pre_epochs", "episode_steps", "episodes")}
    fixed.update(epochs=args.epochs or cfg["epochs"], lr=args.lr, clip=args.clip)
    t0 = time.perf_counter()
    # run_sweep: the shared sweep options, and one clear line instead of a traceback when the store already
    # holds points, on Ctrl-C or on SIGTERM
    ds = run_sweep(
        train_point,
        {"task": args.tasks or cfg["tasks"], "delay": args.delays or cfg["delays"], "condition": CONDITIONS},
        args=args,
        parser=p,
        script=__file__,
        argv=argv,
        seeds=seed_list(args, cfg["n_seeds"]),
        fixed=fixed,
        name="final test accuracy against delay with and without gradient flossing",
        attrs={"script": command_line("scripts/flossing_delays.py", argv)},
        var_attrs={
            "accuracy": {"long_name": "final test accuracy on steps with a defined target", "units": "1"},
            "final_loss": {"long_name": "training loss in the last epoch (bce)", "units": "1"},
            "diverged": {"long_name": "1 if training diverged", "units": "1"},
        },
    )
    out = args.out  # run_sweep wrote it
    from plrnn_numba.plot import _plt

    plt = _plt()
    tasks = [str(t) for t in ds["task"].values]
    fig, axes = plt.subplots(1, len(tasks), figsize=(5 * len(tasks), 3.6), squeeze=False)
    for ax, task in zip(axes[0], tasks):
        for i, cond in enumerate(CONDITIONS):
            acc = ds["accuracy"].sel(task=task, condition=cond)
            ax.plot(ds["delay"], acc.mean("seed"), "o-", color=f"C{i}", label=cond)
        ax.axhline(0.5, color="k", lw=0.5, ls=":")
        ax.set_xlabel("delay d")
        ax.set_ylabel("final test accuracy")
        ax.set_title(task.replace("_", " "))
        ax.legend(fontsize=8)
    fig.tight_layout()
    png = str(out)[:-3] + ".png" if str(out).endswith(".nc") else str(out) + ".png"
    fig.savefig(png, dpi=110)
    table = ds["accuracy"].mean("seed").to_dataframe().unstack("condition")["accuracy"]
    print(table.round(3).to_string())
    print(f"wrote {out} and {png} in {time.perf_counter() - t0:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
