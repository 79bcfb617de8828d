"""Loss jumps and bifurcations in the empirical example: a shallow PLRNN trained with generalized teacher forcing
on a membrane-voltage trace, its fixed points and cycles tracked through training (Eisenmann, Monfared, Göring,
Durstewitz 2023, "Bifurcations and loss jumps in RNN training").

The authors' recordings are not public; the data are the package's simulated
stand-in, ``plrnn_numba.data.hodgkin_huxley``: a Hodgkin-Huxley neuron driven
by 10 uA/cm^2 plus an Ornstein-Uhlenbeck noise current, firing at about 68 Hz,
2 s after a 100 ms transient, sampled every 1 ms (about 15 samples per spike
period, so that the spiking cycle lies within SCYFI's reach), standardised.
A shallow PLRNN (M = 3 latent states of which the first is the voltage,
H = 20 hidden units) is trained by BPTT with GTF at alpha = 0.07 (the
authors' value): Adam 1e-3, batches of 64 windows of 30 steps, gradient
clipping at 10, parameter snapshots every ``--snapshot-every``
epochs.  Then, as in ``loss_jumps_toy.py``: the loss jumps
(``detect_loss_jumps``: a running median of 5 epochs, compared ``--lag``
epochs before and after, threshold a factor 1.5, runs of the same direction
less than 100 epochs apart merged, the first ``--skip`` epochs not searched),
the bifurcations along training (``bifurcations_along_training`` up to
``--max-order``, SCYFI batched over the snapshots with ``--backend``) and
their match (one snapshot interval, measured to the jump's run).

``--compare-backends`` also runs the bifurcation analysis with the other of
``cpu`` / ``parallel`` and records both times per snapshot (the cost table of
``docs/performance.md``).

Writes ``<out>`` (netCDF: the history's loss and gradient norm, the jump x event
match, the costs) and ``<out>.png`` (loss and gradient norm with the jumps and
the events by kind).  The training history (with the parameter snapshots) is
written first, to ``<out stem>_history.nc``, so that an interrupted analysis
keeps the trained model: ``--history`` analyses a saved history again without
training (its epochs and snapshots replace ``--epochs`` and ``--snapshot-every``).

    python scripts/loss_jumps_membrane.py            # quick: 2000 epochs, 21 snapshots, cycles up to order 16
    python scripts/loss_jumps_membrane.py --full     # 4000 epochs, 81 snapshots, cycles up to order 40 (hours)

Run times of the quick and full presets: docs/run_times.md.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

PRESETS = {"quick": {"epochs": 2000, "snapshot_every": 100, "max_order": 16},
           "full": {"epochs": 4000, "snapshot_every": 50, "max_order": 40}}
ALPHA = 0.07
JUMPS = {"window": 5, "threshold": 0.5, "min_separation": 100}


def membrane_data(seed: int = 0) -> np.ndarray:
    """(T, 1): the standardised simulated voltage, sampled every 1 ms (about 15 samples per spike period)."""
    from plrnn_numba.data import hodgkin_huxley

    ds = hodgkin_huxley(2000.0, sample_every=40, standardize=True, transient_ms=100.0, seed=seed)
    return np.asarray(ds["v"].values, dtype=float).reshape(-1, 1)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="2000 epochs, cycles up to order 16 (default)")
    mode.add_argument("--full", action="store_true", help="4000 epochs, cycles up to order 40")
    p.add_argument("--out", type=Path, default=Path("results/loss_jumps_membrane.nc"))
    p.add_argument("--seed", type=int, default=0, help="model initialisation, batches and data noise")
    p.add_argument("--epochs", type=int, default=None)
    p.add_argument("--snapshot-every", type=int, default=None)
    p.add_argument("--max-order", type=int, default=None)
    p.add_argument("--lag", type=int, default=25, help="epochs before and after compared (default: %(default)s)")
    p.add_argument("--skip", type=int, default=50, help="first epochs not searched for jumps (default: %(default)s)")
    p.add_argument("--backend", choices=("cpu", "parallel"), default="parallel",
                   help="how SCYFI runs over the snapshots (default: %(default)s)")
    p.add_argument("--compare-backends", action="store_true", help="also time the other backend")
    p.add_argument("--history", type=Path, default=None,
                   help="analyse this saved training history (<out stem>_history.nc of an earlier run) "
                        "instead of training")
    args = p.parse_args(argv)
    cfg = PRESETS["full" if args.full else "quick"]
    epochs = args.epochs or cfg["epochs"]
    every = args.snapshot_every or cfg["snapshot_every"]
    max_order = args.max_order or cfg["max_order"]
    if min(epochs, every, max_order, args.lag) < 1:
        p.error("--epochs, --snapshot-every, --max-order and --lag must be positive integers")

    import plrnn_numba as pn
    from plrnn_numba import io
    from plrnn_numba.cli import command_line
    from plrnn_numba.dynamics import bifurcations_along_training
    from plrnn_numba.plot import loss_jumps_figure
    from plrnn_numba.training import detect_loss_jumps, match_jumps_to_events

    t_start = time.perf_counter()
    model = pn.ShallowPLRNN(3, 20)
    t0 = time.perf_counter()
    if args.history is not None:
        hist = io.open(args.history)
        if "theta_snapshots" not in hist or hist.sizes.get("param") != model.n_params:
            p.error(f"--history {args.history} is not a training history of this script's model "
                    f"({model.n_params} parameters, with snapshots)")
        epochs = hist.sizes["epoch"]
        snap = hist["snapshot_epoch"].values
        every = int(snap[1] - snap[0]) if snap.size > 1 else epochs
    else:
        x = membrane_data(args.seed)
        hist = pn.train(model, model.init(args.seed), pn.SubsequenceSampler(x, seq_len=30, batch_size=64),
                        n_epochs=epochs, optimizer=pn.Adam(1e-3), clip_norm=10.0, forcing=pn.GTF(ALPHA),
                        snapshot_every=every, seed=args.seed)
        # kept before the long analysis, so that an interrupted run loses only the analysis
        args.out.parent.mkdir(parents=True, exist_ok=True)
        saved = io.save(hist, args.out.with_name(args.out.stem + "_history.nc"))
        print(f"training history: {saved} (--history {saved} analyses it again without training)")
    train_s = time.perf_counter() - t0
    jumps = detect_loss_jumps(hist["loss"].isel(epoch=slice(args.skip, None)), lag=args.lag, **JUMPS)
    n_snap = hist.sizes["snapshot"]
    seconds = {}
    backends = [args.backend] + ([b for b in ("cpu", "parallel") if b != args.backend] if args.compare_backends
                                 else [])
    for b in backends:
        t0 = time.perf_counter()
        objects, events = bifurcations_along_training(model, hist, max_order=max_order, seed=args.seed, backend=b)
        seconds[b] = time.perf_counter() - t0
        if b == args.backend:
            kept = (objects, events)
    objects, events = kept
    match = match_jumps_to_events(jumps, events, max_distance=float(every), span=True)
    kinds = [str(k) for k in events["kind"].values]
    orders = objects["object_order"].values if "object_order" in objects else np.zeros(0)
    out = match.copy()
    out["loss"] = ("epoch", hist["loss"].values, {"long_name": "training loss (GTF-forced mse)", "units": "1"})
    out["grad_norm"] = ("epoch", hist["grad_norm"].values, {"long_name": "gradient norm before clipping",
                                                             "units": "1"})
    out = out.assign_coords(epoch_index=("epoch", hist["epoch"].values, {"long_name": "training epoch (0-based)",
                                                                         "units": "1"}))
    for b, sec in seconds.items():
        out.attrs[f"bifurcation_seconds_{b}"] = sec
        out.attrs[f"seconds_per_snapshot_{b}"] = sec / n_snap
    out.attrs.update(io.provenance("scripts/loss_jumps_membrane.py", {"preset": "full" if args.full else "quick"},
                                   args.seed),
                     script=command_line("scripts/loss_jumps_membrane.py", argv), alpha=ALPHA, epochs=epochs,
                     snapshot_every=every, n_snapshots=n_snap, max_order=max_order, lag=args.lag, skip=args.skip,
                     jump_settings=io.to_json(JUMPS), train_seconds=train_s, backend=args.backend,
                     largest_order_found=int(orders.max()) if orders.size else 0,
                     n_objects=int(objects.sizes["object"]), event_kinds=io.to_json(
                         {k: kinds.count(k) for k in sorted(set(kinds))}),
                     wall_seconds=time.perf_counter() - t_start)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    nc = io.save(out, args.out)
    png = args.out.with_suffix(".png")
    loss_jumps_figure(hist, jumps, events, png, title=f"shallow PLRNN, GTF alpha = {ALPHA}, simulated membrane "
                                                      f"voltage\n(cycles up to order {max_order})")
    n_j, n_e = match.attrs["n_jumps"], match.attrs["n_events"]
    n_m = int(match["matched"].sum()) if n_j else 0
    n_q = int((match["has_jump"] == 0).sum()) if n_e else 0
    print(f"train {train_s:.1f} s; {n_j} jumps, {n_m} within one snapshot interval of a located bifurcation; "
          f"{n_e} events ({', '.join(f'{k}: {kinds.count(k)}' for k in sorted(set(kinds)))}), {n_q} without a jump; "
          f"objects up to order {out.attrs['largest_order_found']}")
    print("bifurcations_along_training: " + ", ".join(
        f"{b} {sec:.1f} s ({sec / n_snap:.2f} s per snapshot)" for b, sec in seconds.items()))
    print(f"wrote {nc} and {png} in {time.perf_counter() - t_start:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
