"""Sine-wave generation: training history and orbit diagrams during training of an LSTM, a stable LSTM and an
orthogonal RNN (Ribeiro et al. 2020, "Beyond exploding and vanishing gradients: analysing RNN training using
attractors and smoothness", Sect. 5.1, Figs. 4 and 5).

The task (``plrnn_numba.tasks.sine_wave``): 100 sequences of 400 steps, each
with a constant input omega (100 values evenly spaced in [pi/16, pi/8]) and
the target sin(omega t).  Three one-layer models, each followed by a linear
readout y_t = B h_t + c of the hidden state (for the LSTMs, whose state is
z = (h, c), ``LinearReadout(1, n_in=N)``: h alone, as the paper's linear layer
on the LSTM output):

* ``lstm``:  ``pn.LSTM(N, 1)``, PyTorch's initialisation;
* ``slstm``: the same LSTM, projected after every optimiser step onto the
  stable-LSTM set of Miller and Hardt (``stable_lstm_projection``; it is
  contractive: one stable fixed point, no oscillation);
* ``ornn``:  ``pn.OrthogonalRNN(N, 1)``, W = expm(S - S^T), modReLU.

Training: Adam, global gradient-norm clipping at 0.25, batches of 10 random
sequences, 10 batches per epoch (an epoch sees the 100 sequences' worth),
loss MSE over every step.  Per (model, seed) the script records the training
MSE per epoch, the final MSE of the trained network on all 100 sequences,
and the orbit diagram during training: at every parameter snapshot the
network runs with a constant input (default 0.218, the paper's) from 4
initial states z0 ~ N(0, 100^2) for burn-in + keep steps (paper: 1200 +
400); the output y_t and its first difference y_t - y_{t-1} at the kept steps
are stored as (snapshot, init, sample).  The amplitude of the final
attractor (max - min of y over the kept steps, mean over initial states;
the target's is 2) says whether the network oscillates on its own.

Writes ``<out>`` (netCDF over model x seed) and ``<out>.png`` (Fig. 5: MSE
per epoch with the 0.5 baseline; Fig. 4: the orbit diagrams, y_t against
epoch and y_t against y_t - y_{t-1} coloured by epoch, seed of --seed), and
prints a table of the final MSEs beside the paper's.

Presets.  ``--full`` is the paper's: hidden size 200, 4000 epochs, Adam
1e-3 for all models, the stable LSTM's rate divided by 10 at epochs 500,
1000 and 2000, 1 seed, snapshots every 20 epochs.  ``--quick`` (default) was
found by experiment to show the paper's direction in under a minute on 2
cores: hidden size 16, 800 epochs, Adam 1e-2 divided by 10 at epochs 400 and
600 for every model, 2 seeds, snapshots every 20 epochs.  (At 1e-3 without
decay 16 units barely leave the baseline in a few hundred epochs; at 1e-2
without decay the LSTM's MSE jumps between 0.2 and 0.6; with 400 epochs and
the decay at 200 and 300 the LSTM is as good but one oRNN of two stays at 0.43.)

    python scripts/attractors_sine.py              # quick: 6 points
    python scripts/attractors_sine.py --full       # the paper's scale: 1 h 42 min on 2 cores
    python scripts/attractors_sine.py --full --milestones 500 1000 2000   # the authors' code's schedule
    python scripts/attractors_sine.py --models lstm slstm --seeds 3
    python scripts/attractors_sine.py --full --resume   # continue after Ctrl-C or a crash

Measured (quick, 2 workers, 50 s wall): final MSE over all 100 sequences,
seeds 0 and 1: LSTM 0.0072 / 0.0061 (amplitude of the final attractor 1.6 /
1.9: a limit cycle, born in a Neimark-Sacker bifurcation visible in the
orbit diagram), sLSTM 0.481 / 0.482 (fixed points; for seed 1 two of them,
reached from different initial states, and slow transients that still move
after the burn-in, so its amplitude reads 1.3 there and 0.05 for seed 0),
oRNN 0.092 / 0.18 (amplitude 1.4 / 1.8); the paper's 4.8e-3, 0.49 and
4.1e-3.

Measured (full, 2 workers, OpenBLAS's native kernels, 1 h 42 min wall;
seed 0): final MSE LSTM 0.049 (amplitude 1.98), sLSTM 0.492 (a fixed
point), oRNN 0.074 (amplitude 1.42); training 4534 s, 4468 s and 1623 s
(one batch of 10 x 400 steps: 0.11 s for either LSTM, 0.04 s for the oRNN),
about 20 s of orbit diagrams per model.  At the constant rate the epoch MSE
of the LSTM and the oRNN keeps jumping by a factor of ten until the end.
The authors' published training code divides every model's rate by 10 at
epochs 500, 1000 and 2000 (the paper's text says so for the stable model
only); ``--full --milestones 500 1000 2000`` does the same here and ends at
oRNN 0.0046 (27 min on one core; the paper's 4.1e-3), and with
``--epochs 2200`` at LSTM 0.00024 (41 min on one core; the paper's 4.8e-3
after 4000).

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

MODELS = ("lstm", "slstm", "ornn")
LABELS = {"lstm": "LSTM", "slstm": "sLSTM", "ornn": "oRNN"}
PRESETS = {
    "quick": {"n_seeds": 2, "n_hidden": 16, "epochs": 800, "lr": 1e-2, "milestones": [400, 600],
              "slstm_milestones": [400, 600], "snapshot_every": 20},
    "full": {"n_seeds": 1, "n_hidden": 200, "epochs": 4000, "lr": 1e-3, "milestones": [],
             "slstm_milestones": [500, 1000, 2000], "snapshot_every": 20},
}
#: the paper's final training MSE after 4000 epochs (Fig. 5 caption)
PAPER_MSE = {"lstm": 4.8e-3, "slstm": 0.49, "ornn": 4.1e-3}
BASELINE_MSE = 0.5  # always answering 0: the mean of sin^2
ORBIT_INPUT = 0.218  # the paper's constant input of Fig. 4
U1 = {"units": "1"}


def build(model: str, n_hidden: int, seed: int):
    """``(model, theta0, hooks)`` for one of MODELS."""
    import plrnn_numba as pn

    if model == "ornn":
        m = pn.OrthogonalRNN(n_hidden, 1)
        return m, m.init(seed), None
    m = pn.LSTM(n_hidden, 1)
    hooks = None
    if model == "slstm":
        from plrnn_numba.training.constraints import stable_lstm_projection

        hooks = stable_lstm_projection(m)
    return m, m.init(seed), hooks


def make_readout(net, n_out: int):
    """The paper's linear layer on the hidden state: h of an LSTM's z = (h, c), the whole state otherwise."""
    import plrnn_numba as pn

    return pn.LinearReadout(n_out, n_in=net.n_hidden) if isinstance(net, pn.LSTM) else pn.LinearReadout(n_out)


def readout_orbits(net, readout, history: xr.Dataset, u: np.ndarray, *, n_init: int, z0_scale: float, burn_in: int,
                   keep: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Steady state of the linear ``readout`` at every parameter snapshot of ``history``, constant input u.

    ``orbit_diagram_training`` with one step more than kept, for the first
    difference; any number of outputs: ``(y, dy)``, each of shape
    (snapshot, init, sample, output), dy[..., t, :] = y_t - y_{t-1}.  Used by
    this script and by ``attractors_symbols.py``.
    """
    from plrnn_numba.dynamics import orbit_diagram_training

    orb = orbit_diagram_training(net, history, inputs=np.asarray(u, float), n_init=n_init, z0_scale=z0_scale,
                                 n_steps=keep + 1, n_transient=burn_in - 1, seed=seed)
    z = orb["z"].values  # (snapshot, init, sample, state)
    R = history["readout_snapshots"].values  # (snapshot, readout_param)
    y = np.stack([readout.apply(R[k], z[k]) for k in range(R.shape[0])])
    return y[:, :, 1:], np.diff(y, axis=2)


def train_point(model: str, seed: int, *, n_hidden: int, epochs: int, lr: float, milestones: list[int],
                slstm_milestones: list[int], batch: int, n_seq: int, n_steps: int, clip: float, snapshot_every: int,
                orbit_input: float, n_init: int, z0_scale: float, burn_in: int, keep: int) -> dict:
    """One network: train, final MSE, orbit diagram of the output at every snapshot; the sweep's point function."""
    import plrnn_numba as pn
    from plrnn_numba.tasks import sine_wave

    net, theta0, hooks = build(model, n_hidden, seed)
    full = sine_wave(n_seq, n_steps)

    def data(rng, epoch):
        idx = rng.choice(n_seq, batch, replace=False)
        return pn.Batch(targets=full.targets[idx], inputs=full.inputs[idx], mask=full.mask[idx])

    ms = slstm_milestones if model == "slstm" else milestones
    readout = make_readout(net, 1)
    t0 = time.perf_counter()
    h = pn.train(net, theta0, data, n_epochs=epochs, batches_per_epoch=max(1, n_seq // batch),
                 optimizer=pn.Adam(lr=lr), lr_schedule=pn.MultiStepLR(list(ms)) if ms else None, clip_norm=clip,
                 readout=readout, hooks=hooks, snapshot_every=snapshot_every, seed=seed)
    train_s = time.perf_counter() - t0
    y_all, _ = pn.predict(net, h["theta"].values, full, readout=readout, readout_params=h["readout_params"].values)
    final_mse = float(np.mean((y_all - full.targets) ** 2))
    # orbit diagram: keep one step more than asked, for the first difference
    t0 = time.perf_counter()
    y, dy = (a[..., 0] for a in readout_orbits(net, readout, h, np.array([orbit_input]), n_init=n_init,
                                               z0_scale=z0_scale, burn_in=burn_in, keep=keep, seed=seed))
    orbit_s = time.perf_counter() - t0
    amp = np.nanmax(y[-1], axis=1) - np.nanmin(y[-1], axis=1)
    snap = {"snapshot_epoch": ("snapshot_epoch", h["snapshot_epoch"].values.astype(np.int64),
                               {"units": "1", "long_name": "epoch after which the parameters were taken"})}
    dims = ("snapshot_epoch", "init", "sample")
    coords = {**snap, "init": ("init", np.arange(y.shape[1]), {**U1, "long_name": "initial state index"}),
              "sample": ("sample", np.arange(burn_in, burn_in + keep), {"units": "steps", "long_name": "time step"})}
    epoch = {"epoch": ("epoch", np.arange(h.sizes["epoch"]), {**U1, "long_name": "training epoch (0-based)"})}
    loss = h["loss"].values
    if loss.size < epochs:  # a run stopped early (non-finite): pad, so that every point has the same shape
        loss = np.concatenate([loss, np.full(epochs - loss.size, np.nan)])
        epoch = {"epoch": ("epoch", np.arange(epochs), epoch["epoch"][2])}
    return {
        "final_mse": final_mse,
        "last_epoch_mse": float(h["loss"].values[-1]),
        "min_epoch_mse": float(np.nanmin(h["loss"].values)),
        "final_amplitude": float(np.nanmean(amp)),
        "diverged_runs": int(np.sum(~np.all(np.isfinite(y), axis=2))),  # a diverged run is NaN from there on
        "train_seconds": train_s,
        "orbit_seconds": orbit_s,
        "status": str(h.attrs.get("status", "")),
        "mse": xr.DataArray(loss, dims="epoch", coords=epoch,
                            attrs={**U1, "long_name": "mean training MSE of the epoch"}),
        "y": xr.DataArray(y, dims=dims, coords=coords,
                          attrs={**U1, "long_name": f"output y_t after the burn-in, constant input {orbit_input:g}"}),
        "dy": xr.DataArray(dy, dims=dims, coords=coords, attrs={**U1, "long_name": "first difference y_t - y_{t-1}"}),
    }


VAR_ATTRS = {
    "final_mse": {**U1, "long_name": "MSE of the trained network on all sequences"},
    "last_epoch_mse": {**U1, "long_name": "mean training MSE of the last epoch"},
    "min_epoch_mse": {**U1, "long_name": "lowest epoch MSE during training"},
    "final_amplitude": {**U1, "long_name": "max - min of y_t after the burn-in at the last snapshot (mean over "
                                           "initial states; target: 2)"},
    "diverged_runs": {**U1, "long_name": "orbit-diagram runs that diverged (all snapshots and initial states)"},
    "train_seconds": {"units": "s", "long_name": "training wall time"},
    "orbit_seconds": {"units": "s", "long_name": "orbit-diagram wall time"},
    "status": {"long_name": "status of the training run"},
}
COORD_ATTRS = {"model": {"long_name": "lstm: LSTM; slstm: stable LSTM; ornn: orthogonal RNN"}}


def summary(ds: xr.Dataset) -> list[dict]:
    """Per model: final MSE (mean, min, max over seeds), amplitude of the final attractor, the paper's MSE."""
    rows = []
    for m in ds["model"].values:
        d = ds.sel(model=m)
        ok = (d["error"] == "").values
        f = d["final_mse"].values[ok] if "final_mse" in d else np.array([])
        a = d["final_amplitude"].values[ok] if "final_amplitude" in d else np.array([])
        t = d["train_seconds"].values[ok] if "train_seconds" in d else np.array([])
        nan = np.nan
        rows.append({"model": str(m), "seeds": int(ok.sum()),
                     "mse_mean": float(np.mean(f)) if f.size else nan, "mse_min": float(np.min(f)) if f.size else nan,
                     "mse_max": float(np.max(f)) if f.size else nan,
                     "below_half_baseline": int(np.sum(f < 0.5 * BASELINE_MSE)),
                     "amplitude": float(np.mean(a)) if a.size else nan, "paper_mse": PAPER_MSE.get(str(m), nan),
                     "train_s": float(np.mean(t)) if t.size else nan})
    return rows


def plot(ds: xr.Dataset, path, seed: int) -> None:
    """Fig. 5 (MSE per epoch) and Fig. 4 (orbit diagrams during training) of one seed."""
    from plrnn_numba.plot import _plt

    plt = _plt()
    models = [str(m) for m in ds["model"].values]
    fig = plt.figure(figsize=(4 * max(len(models), 2) + 1, 10), constrained_layout=True)
    gs = fig.add_gridspec(3, len(models))
    ax = fig.add_subplot(gs[0, :])
    for j, m in enumerate(models):
        for k, s in enumerate(ds["seed"].values):
            row = ds.sel(model=m, seed=s)
            if str(row["error"].values) or "mse" not in row:
                continue
            ax.semilogy(row["epoch"].values, row["mse"].values, color=f"C{j}", lw=0.8, alpha=0.8, zorder=3 - j,
                        label=LABELS.get(m, m) if k == 0 else None)
    ax.axhline(BASELINE_MSE, color="k", ls="--", lw=0.8, label="baseline (y = 0)")
    ax.set_xlabel("epoch")
    ax.set_ylabel("training MSE")
    ax.set_title("Fig. 5: sine-wave generation, MSE per epoch (every seed)", fontsize=9)
    ax.legend(fontsize=8)
    s = seed if seed in ds["seed"].values else ds["seed"].values[0]
    for j, m in enumerate(models):
        row = ds.sel(model=m, seed=s)
        a1, a2 = fig.add_subplot(gs[1, j]), fig.add_subplot(gs[2, j])
        if str(row["error"].values) or "y" not in row:
            a1.set_title(f"{LABELS.get(m, m)}: failed", fontsize=9)
            continue
        ep = row["snapshot_epoch"].values
        y, dy = row["y"].values, row["dy"].values  # (snapshot, init, sample)
        E = np.broadcast_to(ep[:, None, None], y.shape)
        a1.plot(E.ravel(), y.ravel(), ",k", alpha=0.4)
        a1.set_xlabel("epoch")
        a1.set_ylabel("$y_t$ after the burn-in")
        a1.set_title(f"Fig. 4: {LABELS.get(m, m)} (seed {s}), orbit diagram", fontsize=9)
        # the axes' range from the later snapshots: the first ones can be far out of scale (the paper omits
        # its first 300 epochs for that reason; here they are drawn, but clipped)
        late = ep >= ep[-1] / 4
        lim = np.nanmax(np.abs(y[late])) if np.any(np.isfinite(y[late])) else 1.0
        dlim = np.nanmax(np.abs(dy[late])) if np.any(np.isfinite(dy[late])) else 0.1
        lim, dlim = 1.1 * max(lim, 1.2), 1.1 * max(dlim, 0.05)
        a1.set_ylim(-lim, lim)
        sc = a2.scatter(y.ravel(), dy.ravel(), c=E.ravel(), s=0.3, cmap="viridis")
        a2.set_xlim(-lim, lim)
        a2.set_ylim(-dlim, dlim)
        a2.set_xlabel("$y_t$")
        a2.set_ylabel("$y_t - y_{t-1}$")
        a2.set_title("steady state, coloured by epoch", fontsize=9)
        fig.colorbar(sc, ax=a2, label="epoch")
    fig.savefig(path, dpi=110)
    plt.close(fig)


def parse_args(argv=None):
    from plrnn_numba.cli import add_sweep_arguments

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_sweep_arguments(p, default_out="results/attractors_sine.nc")
    g = p.add_argument_group("models and training (default: the preset's)")
    g.add_argument("--models", nargs="+", choices=MODELS, default=list(MODELS), help="models (default: all three)")
    g.add_argument("--n-hidden", type=int, default=None, help="hidden size N (quick 16, full 200)")
    g.add_argument("--epochs", type=int, default=None, help="training epochs (quick 800, full 4000)")
    g.add_argument("--lr", type=float, default=None, help="Adam learning rate (quick 1e-2, full 1e-3)")
    g.add_argument("--milestones", type=int, nargs="*", default=None,
                   help="epochs at which the LSTM's and oRNN's rate is divided by 10 (quick 400 600, full none)")
    g.add_argument("--slstm-milestones", type=int, nargs="*", default=None,
                   help="the same for the stable LSTM (quick 400 600, full 500 1000 2000)")
    g.add_argument("--batch", type=int, default=10, help="sequences per batch (default: %(default)s)")
    g.add_argument("--n-seq", type=int, default=100, help="sequences (frequencies) (default: %(default)s)")
    g.add_argument("--n-steps", type=int, default=400, help="sequence length (default: %(default)s)")
    g.add_argument("--clip", type=float, default=0.25, help="gradient-norm clipping (default: %(default)s)")
    g.add_argument("--snapshot-every", type=int, default=None, help="epochs between snapshots (quick 20, full 20)")
    o = p.add_argument_group("orbit diagram")
    o.add_argument("--orbit-input", type=float, default=ORBIT_INPUT,
                   help="constant input omega (default: %(default)s, the paper's)")
    o.add_argument("--n-init", type=int, default=4, help="random initial states (default: %(default)s)")
    o.add_argument("--z0-scale", type=float, default=100.0, help="their standard deviation (default: %(default)s)")
    o.add_argument("--burn-in", type=int, default=1200, help="steps discarded (default: %(default)s)")
    o.add_argument("--keep", type=int, default=400, help="steps kept after the burn-in (default: %(default)s)")
    args = p.parse_args(argv)
    for name in ("n_hidden", "epochs", "snapshot_every", "batch", "n_seq", "n_steps", "n_init", "burn_in", "keep"):
        v = getattr(args, name)
        if v is not None and v < 1:
            p.error(f"--{name.replace('_', '-')} must be a positive integer")
    if args.batch > args.n_seq:
        p.error("--batch must not exceed --n-seq")
    if (args.lr is not None and args.lr <= 0) or args.clip <= 0 or args.z0_scale < 0:
        p.error("--lr and --clip must be > 0, --z0-scale >= 0")
    return args, p


def main(argv=None) -> int:
    args, parser = parse_args(argv)
    from plrnn_numba.cli import command_line, preset, print_sweep_summary, run_sweep, seed_list

    cfg = preset(args, PRESETS)
    for key in ("n_hidden", "epochs", "lr", "milestones", "slstm_milestones", "snapshot_every"):
        if getattr(args, key) is not None:
            cfg[key] = getattr(args, key)
    cfg["milestones"] = sorted(int(m) for m in cfg["milestones"])
    cfg["slstm_milestones"] = sorted(int(m) for m in cfg["slstm_milestones"])
    fixed = {"n_hidden": int(cfg["n_hidden"]), "epochs": int(cfg["epochs"]), "lr": float(cfg["lr"]),
             "milestones": cfg["milestones"], "slstm_milestones": cfg["slstm_milestones"], "batch": args.batch,
             "n_seq": args.n_seq, "n_steps": args.n_steps, "clip": args.clip,
             "snapshot_every": int(cfg["snapshot_every"]), "orbit_input": args.orbit_input, "n_init": args.n_init,
             "z0_scale": args.z0_scale, "burn_in": args.burn_in, "keep": args.keep}
    t0 = time.perf_counter()
    ds = run_sweep(
        train_point, {"model": list(args.models)}, args=args, parser=parser, script=__file__, argv=argv,
        seeds=seed_list(args, cfg["n_seeds"]), fixed=fixed,
        name=f"Ribeiro et al. Figs. 4-5: sine-wave generation, LSTM / sLSTM / oRNN ({args.mode})",
        coord_attrs=COORD_ATTRS, var_attrs=VAR_ATTRS,
        attrs={"script": command_line("scripts/attractors_sine.py", argv), **{k: str(v) for k, v in fixed.items()},
               "paper_final_mse": "LSTM 4.8e-3, sLSTM 0.49, oRNN 4.1e-3 (hidden 200, 4000 epochs)"},
    )
    wall = time.perf_counter() - t0
    if "final_mse" not in ds:
        print(f"every point failed; the first: {ds['error'].values.ravel()[0]}", file=sys.stderr)
        return 1
    png = args.out.with_suffix(".png")
    plot(ds, png, args.seed)
    print(f"sine-wave generation, N = {fixed['n_hidden']}, {fixed['epochs']} epochs, lr {fixed['lr']:g} "
          f"(/10 at {fixed['milestones'] or 'none'}; sLSTM at {fixed['slstm_milestones'] or 'none'}); "
          f"baseline MSE {BASELINE_MSE}")
    print(f"{'model':>6} {'seeds':>5} {'final MSE (mean)':>16} {'min':>9} {'max':>9} {'< 0.25':>6} "
          f"{'amplitude':>9} {'paper MSE':>9} {'train s':>8}")
    for r in summary(ds):
        print(f"{LABELS.get(r['model'], r['model']):>6} {r['seeds']:5d} {r['mse_mean']:16.4g} {r['mse_min']:9.4g} "
              f"{r['mse_max']:9.4g} {r['below_half_baseline']:6d} {r['amplitude']:9.3g} {r['paper_mse']:9.3g} "
              f"{r['train_s']:8.1f}")
    print_sweep_summary(ds, args, parser, wall, png)
    return 0


if __name__ == "__main__":
    sys.exit(main())
