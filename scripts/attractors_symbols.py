"""Sequence classification from two relevant symbols: validation accuracy of an LSTM, a stable LSTM and an
orthogonal RNN against the sequence length (Ribeiro et al. 2020, "Beyond exploding and vanishing gradients:
analysing RNN training using attractors and smoothness", Sect. 5.2, Table 1 and Figs. 6 and 7).

The task (``plrnn_numba.tasks.symbol_classification``): sequences of length l
over the symbols p, q, a, b, c, d (one-hot); two relevant symbols, each p or
q, at steps t1 in 10..19 and t2 in 40..49; the class is their order (4
classes, scored at the last step; always answering (p, p) scores 0.25).
1000 training and 1000 validation sequences, drawn with different seeds.
Three one-layer models with a linear readout of the hidden state (for the
LSTMs h of z = (h, c), ``LinearReadout(n_out, n_in=N)``): ``lstm`` (``pn.LSTM``), ``slstm`` (the same projected onto
the stable-LSTM set after every step, ``stable_lstm_projection``) and
``ornn`` (``pn.OrthogonalRNN``, W = expm(S - S^T), modReLU).

The targets are the class one-hot and the loss a 4-class softmax
cross-entropy (``--encoding onehot``, ``loss="ce"``, both presets): the
paper's "linear output layer" and the authors' code; ``class_accuracy``
takes the arg-max.  ``--encoding bits`` trains the two symbols as bits (0 =
p, 1 = q) with the binary cross-entropy of two logistic outputs
(``loss="bce"``) instead, a factorised model of the same four classes;
``class_accuracy`` then scores a sequence right when both logits have the
right sign.

Training as the paper: Adam 1e-2 divided by 10 at epochs 500, 1000 and 2000,
gradient-norm clipping 0.25, batches of 100 random training sequences,
training-set size / 100 batches per epoch, until the validation accuracy is 1
or the epochs run out (paper: 15000).  The validation accuracy is measured
every ``--eval-every`` epochs (``pn.predict`` on the 1000 validation
sequences, 100 at a time) and once after training.

Fig. 7, the orbit (bifurcation) diagram during training: the parameters are
snapshot every ``--snapshot-every`` epochs (and at the last), and at every
snapshot the network runs with a constant unitary input on one of the six
input channels (the paper's "constant input": one-hot p, q, a, b, c or d;
all six are recorded, the paper's supplementary figures show all of them,
its Fig. 7 the input p) from ``--n-init`` random initial states z0 ~ N(0,
``--z0-scale``^2) for a burn-in of 400 steps (the paper's) and 100 kept
steps; the readout outputs y_t = B h_t + c (the four class logits; the two
bits' logits with ``--encoding bits``) and their first differences y_t - y_{t-1} at the kept steps are stored as
``y`` and ``dy`` (snapshot_epoch, symbol, init, sample, output).  The same
computation as ``attractors_sine.py``'s orbit diagram (``readout_orbits``,
here for any number of outputs).  The snapshots lie on the fixed grid 0, k,
2k, ..., last epoch; after an early stop (accuracy 1) they are NaN, as the
validation accuracy is.  Recorded at every length; the figure shows the
length nearest ``--orbit-length`` (default 100, the paper's).  Cost in the
quick preset: 1.9 s of orbit diagrams for 274 s of training (9 points; the
quick wall time, 163 s against 183 s before, is within its run-to-run noise).
At its last snapshot (l = 100, input p) the LSTM and the sLSTM sit on a
fixed point, whereas the oRNN's outputs still swing over a range of ~40 after
the burn-in (orthogonal W: not contractive).

Writes ``<out>`` (netCDF over model x length x seed) and ``<out>.png`` (Fig.
6: validation accuracy per epoch, one panel per length; Fig. 7: per model, y_t
against epoch for the input ``--orbit-symbol``, every output, seed of
--seed), and prints Table 1 with the paper's accuracies beside ours.

Presets.  ``--full``: the paper's, hidden size 200, 15000 epochs, Adam 1e-2
divided by 10 at epochs 500, 1000 and 2000, 1000 + 1000 sequences, lengths
50 100 200 300 500, validation every epoch, snapshots every 50 epochs, 1 seed.  ``--quick`` (default;
found by experiment, 24 minutes on 2 cores): hidden size 32 for the LSTMs and
64 for the oRNN (about the same number of parameters: 5,120 and 4,544), at
most 1500 epochs, 1000 + 1000 sequences, lengths 50 100 200, validation every
5 epochs, 1 seed, snapshots every 10 epochs, and Adam 1e-3 for every model
without decay: the paper's rate after its first milestone.  In a budget of
100-300 epochs the paper's initial 1e-2 gets neither the LSTM (N = 16 or 32)
nor the oRNN (N = 16 to 64) to learn l = 100 (validation accuracy
0.21-0.28).  With 400 epochs the sLSTM has not yet learned l = 100 (it does
at epoch 1135).

    python scripts/attractors_symbols.py              # quick preset
    python scripts/attractors_symbols.py --full       # the paper's scale: weeks of CPU (estimate below)
    python scripts/attractors_symbols.py --lengths 300 --models ornn
    python scripts/attractors_symbols.py --full --resume   # continue after Ctrl-C or a crash

Measured (quick, 2 workers, 1438 s wall while a second two-thread job shared
the cores; seed 0; validation accuracy after training, LSTM / sLSTM / oRNN):
l = 50: 1.000 (solved at epoch 45) / 1.000 (epoch 130) / 1.000 (epoch 155);
l = 100: 1.000 (epoch 395) / 1.000 (epoch 1135) / 1.000 (epoch 605); l = 200:
0.245 / 0.256 / 0.955 (paper: 1.00 / 0.27 / 0.999).  Table 1 in direction:
the sLSTM fails from l = 200 as in the paper, and the oRNN holds longest (the
only model to learn l = 200, in a jump near epoch 250).  The LSTM fails one
length early (l = 200; the paper: l = 300): it fits the 1000 training
sequences (loss 1.39 -> 0.42) without generalising.  The LSTM learns l = 100
in a jump with drops back, the oRNN early and smoothly.  ``--models ornn
--lengths 300`` leaves the oRNN at chance (0.274, best 0.302; training loss
0.16, 633 s on one core): at these sizes no model holds l = 300.

Two cells at the paper's scale (``--full --models lstm --lengths 200
--epochs 1200 --eval-every 10`` and ``--full --models ornn --lengths 300
--epochs 2500 --eval-every 10``, seed 0, one core each, native kernels):
the LSTM ends at 0.236 (5405 s, 4.5 s per epoch), the oRNN at 0.263 (5706
s, 2.3 s per epoch); the paper: 1.00 and 0.995.  Both memorise the
training set (loss below 1e-3 from epochs 369 and 626) without
generalising, so more epochs would change little.  The LSTM at l = 200
depends on the seed (the paper says so too): ``--epochs 300 --seed 2``
solves it at epoch 210 (848 s), ``--seed 1`` stays at 0.232.  The oRNN
at l = 300 with ``--epochs 700 --seed 1`` memorises too (0.242), and so
does seed 0 for 700 epochs with the authors' generator (``--ornn-generator
upper``, 0.227), their clipping of the summed loss (``--clip 0.0025``,
0.242; both, 0.228) or half the rate (``--ornn-lr 5e-3``, 0.233).

The published training code differs from the paper's text in its rate
(1e-3, the paper 1e-2) and hidden size (50: the model class's default, the
paper 200).  ``--authors-code`` selects that code's settings (rate 1e-3,
gamma 0.25, the upper-triangle generator, the summed loss clipped at 0.25,
fixed batches, PyTorch's readout initialisation; explicit options win) and
keeps the preset's hidden size.  With it the oRNN learns l = 300:
``--full --models ornn --lengths 300 --authors-code --epochs 600
--eval-every 10`` reaches validation accuracy 1.000 at epoch 160 (628 s on
one core; paper 0.995), and at 50 units (``--ornn-hidden 50 --epochs
3000``) 0.967 (best 0.985, 1355 s); at l = 500 (``--lengths 500 --epochs
450``) 0.992 after 450 epochs (paper 0.970; 2970 s).  At the paper's 1e-2 the same settings
memorise (training accuracy 0.995-1.000, validation 0.240-0.279, four
seeds of 50 units; 0.238 at 200 units).  In ablations the step on the
generator decides (the rate and the generator's form), the clipping and
the batch order change only the speed; see
docs/reproductions/attractors.md.  ``train_accuracy`` records the accuracy
on the training sequences; scoring them doubles the cost of each
evaluation, which the estimate below predates (use ``--eval-every``).

Full-mode estimate, from the measured cost of one batch of 100 sequences of
length 500 (one thread, four-class softmax): LSTM(200) 1.34 s to train (with
the LSTM's gate tape; 5.9 s before it) and 12 s to validate 1000 sequences,
oRNN(200) 1.5 s and 4.6 s; an epoch (10 batches and 1000 validation
sequences) at length l thus costs about 25 s x l / 500 (LSTM, sLSTM) and
20 s x l / 500 (oRNN).  The points that never reach accuracy 1 (in the
paper: LSTM at l = 300, 500; sLSTM at 200, 300, 500; the oRNN at 200, 300,
500, which end at 0.999, 0.995, 0.970) run all 15000 epochs: 1.4-4.4 days
each, some 25 core-days in all.  Run it on a cluster (``--scheduler``), or
scale it down (``--n-hidden``, ``--epochs``, ``--lengths``,
``--eval-every``: validating every 10 epochs instead of every one nearly
halves the LSTM's cost).  Measured with validation every 10 epochs (the
two cells above): LSTM at l = 200 4.5 s per epoch (this estimate: 5.9 s),
oRNN at l = 300 2.3 s per epoch (this estimate: 9.3 s; the oRNN's epochs
are cheaper than the timed batch suggests, so its share of the total is
smaller).

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
from attractors_sine import (  # the orbit diagram of the readout output, shared with Figs. 4-5
    make_readout,
    readout_orbits,
)

MODELS = ("lstm", "slstm", "ornn")
LABELS = {"lstm": "LSTM", "slstm": "sLSTM", "ornn": "oRNN"}
LENGTHS = (50, 100, 200, 300, 500)
PRESETS = {
    "quick": {"n_seeds": 1, "n_hidden": 32, "ornn_hidden": 64, "epochs": 1500, "lr": 1e-3, "milestones": [],
              "n_train": 1000, "n_val": 1000, "eval_every": 5, "lengths": [50, 100, 200], "snapshot_every": 10,
              "encoding": "onehot", "ornn_generator": "full"},
    "full": {"n_seeds": 1, "n_hidden": 200, "ornn_hidden": 200, "epochs": 15000, "lr": 1e-2,
             "milestones": [500, 1000, 2000], "n_train": 1000, "n_val": 1000, "eval_every": 1,
             "lengths": list(LENGTHS), "snapshot_every": 50, "encoding": "onehot", "ornn_generator": "full"},
}
#: the paper's Table 1: validation accuracy per length (LSTM, sLSTM, oRNN)
PAPER_TABLE1 = {50: (1.00, 1.00, 1.000), 100: (1.00, 1.00, 1.000), 200: (1.00, 0.27, 0.999),
                300: (0.25, 0.26, 0.995), 500: (0.27, 0.26, 0.970)}
BASELINE = 0.25
ORBIT_LENGTH = 100  # Fig. 7's
ORBIT_SYMBOL = "p"  # the input of Fig. 7 (the paper: "input p", its supplementary figures: all six)
VAL_SEED_OFFSET = 10_000  # the validation set's seed: seed + this (the training set's: seed)
VAL_CHUNK = 100  # validation sequences per forward pass
U1 = {"units": "1"}
#: per target encoding: the loss, the number of readout outputs and what they are
ENCODING_LOSS = {"bits": "bce", "onehot": "ce"}
ENCODING_OUTPUTS = {"bits": 2, "onehot": 4}
OUTPUT_NAMES = {"bits": "readout output (logit of the first / second relevant symbol's bit, 1 = q)",
                "onehot": "readout output (softmax logit of the class pp, pq, qp, qq)"}


def build(model: str, n_hidden: int, n_inputs: int, seed: int, ornn_generator: str = "full"):
    """``(model, theta0, hooks)`` for one of MODELS."""
    import plrnn_numba as pn

    if model == "ornn":
        m = pn.OrthogonalRNN(n_hidden, n_inputs, generator=ornn_generator)
        return m, m.init(seed), None
    m = pn.LSTM(n_hidden, n_inputs)
    hooks = None
    if model == "slstm":
        from plrnn_numba.training.constraints import stable_lstm_projection

        hooks = stable_lstm_projection(m)
    return m, m.init(seed), hooks


def initial_readout(readout, dim: int, kind: str, seed: int) -> np.ndarray:
    """The linear readout's initial parameters: ``"normal"``, the package's ``B ~ N(0, 1/k)`` and ``c = 0``
    (``LinearReadout.init``); ``"uniform"``, PyTorch's ``nn.Linear`` default (the authors' code), ``B`` and ``c``
    uniform in ``[-1/sqrt(k), 1/sqrt(k)]`` for ``k`` inputs, a spread ``sqrt(3)`` times smaller."""
    if kind == "normal":
        return readout.init(dim, seed)
    if kind != "uniform":
        raise ValueError(f"readout_init must be 'normal' or 'uniform'; got {kind!r}")
    bound = 1.0 / np.sqrt(readout.reads(dim))
    return np.random.default_rng(seed).uniform(-bound, bound, readout.n_params(dim))


def batch_picker(order: str, n_train: int, batch: int):
    """``pick(rng) -> indices`` of the training sequences of each successive optimiser step.

    ``"random"``: ``batch`` distinct sequences drawn at random for every step;
    ``"fixed"``: the authors' loader, the training set cut into
    ``n_train // batch`` consecutive slices taken in the same order every
    epoch (``pn.train`` asks for one batch per step, so counting the calls
    names the slice).
    """
    if order == "random":
        return lambda rng: rng.choice(n_train, batch, replace=False)
    if order != "fixed":
        raise ValueError(f"batch_order must be 'random' or 'fixed'; got {order!r}")
    n_batches = max(1, n_train // batch)
    steps = [0]

    def pick(rng):
        lo = (steps[0] % n_batches) * batch
        steps[0] += 1
        return np.arange(lo, lo + batch)

    return pick


def snapshot_grid(epochs: int, snapshot_every: int) -> np.ndarray:
    """The epochs of the orbit-diagram snapshots: 0, k, 2k, ... and the last epoch (as ``pn.train`` takes them)."""
    return np.unique(np.append(np.arange(0, epochs, snapshot_every), epochs - 1)).astype(np.int64)


def set_accuracy(net, theta, data, readout, readout_params, chunk: int = VAL_CHUNK) -> float:
    """``class_accuracy`` of the free-running prediction on ``data`` (the validation or the training
    sequences), ``chunk`` sequences per forward pass.

    One pass over all sequences would hold their whole (B, T, 2N)
    trajectories: 1.6 GB at the paper's scale.  Scoring the training
    sequences as well doubles the cost of each evaluation.
    """
    import plrnn_numba as pn
    from plrnn_numba.tasks import class_accuracy

    n = data.targets.shape[0]
    hits = 0.0
    for lo in range(0, n, chunk):
        part = pn.Batch(targets=data.targets[lo:lo + chunk], inputs=data.inputs[lo:lo + chunk],
                        mask=data.mask[lo:lo + chunk])
        y, _ = pn.predict(net, theta, part, readout=readout, readout_params=readout_params)
        hits += class_accuracy(y, part) * part.targets.shape[0]
    return hits / n


def train_point(model: str, length: int, seed: int, *, n_hidden: int, ornn_hidden: int, epochs: int, lr: float,
                ornn_lr: float, ornn_generator: str,
                milestones: list[int], gamma: float, n_train: int, n_val: int, batch: int, clip: float, encoding: str,
                eval_every: int, stop_at_one: bool, snapshot_every: int, n_init: int, z0_scale: float,
                burn_in: int, keep: int, batch_order: str = "random", readout_init: str = "normal") -> dict:
    """One network on one length: train, validation accuracy along training and at the end, and the orbit
    diagrams of the readout outputs for each constant one-hot symbol at the parameter snapshots; the sweep's
    function."""
    import plrnn_numba as pn
    from plrnn_numba.tasks import symbol_classification
    from plrnn_numba.tasks.attractors import SYMBOLS

    train_set = symbol_classification(n_train, length, seed=seed, encoding=encoding)
    val_set = symbol_classification(n_val, length, seed=seed + VAL_SEED_OFFSET, encoding=encoding)
    n_out = ENCODING_OUTPUTS[encoding]
    net, theta0, hooks = build(model, ornn_hidden if model == "ornn" else n_hidden, train_set.inputs.shape[2], seed,
                               ornn_generator)
    readout = make_readout(net, n_out)
    readout_params = initial_readout(readout, net.dim, readout_init, seed)
    n_batches = max(1, n_train // batch)
    pick = batch_picker(batch_order, n_train, batch)

    def data(rng, epoch):
        idx = pick(rng)
        return pn.Batch(targets=train_set.targets[idx], inputs=train_set.inputs[idx], mask=train_set.mask[idx])

    def accuracy(theta, ro):
        return set_accuracy(net, theta, val_set, readout, ro)

    def train_accuracy(theta, ro):
        return set_accuracy(net, theta, train_set, readout, ro)

    checkpoints = np.arange(0, epochs, eval_every)
    curve = np.full(checkpoints.size, np.nan)
    train_curve = np.full(checkpoints.size, np.nan)
    solved = [-1]

    def callback(state):
        acc = accuracy(state.theta, state.readout_params)
        curve[state.epoch // eval_every] = acc
        train_curve[state.epoch // eval_every] = train_accuracy(state.theta, state.readout_params)
        if stop_at_one and acc >= 1.0:
            solved[0] = state.epoch
            raise pn.training.StopTraining(f"validation accuracy 1 at epoch {state.epoch}")
        return None

    t0 = time.perf_counter()
    h = pn.train(net, theta0, data, n_epochs=epochs, batches_per_epoch=n_batches, readout_params=readout_params,
                 optimizer=pn.Adam(lr=ornn_lr if model == "ornn" else lr),
                 lr_schedule=pn.MultiStepLR(list(milestones), gamma=gamma) if milestones else None, clip_norm=clip,
                 readout=readout, loss=ENCODING_LOSS[encoding], hooks=hooks, callback=callback,
                 callback_every=eval_every, snapshot_every=snapshot_every, seed=seed)
    train_s = time.perf_counter() - t0
    status = str(h.attrs.get("status", ""))
    message = str(h.attrs.get("message", h.attrs.get("status_message", "")))
    if status == "stopped" and solved[0] >= 0:
        status = "solved"
    elif status != "completed":
        raise RuntimeError(f"training stopped: {status} {message}")
    final = accuracy(h["theta"].values, h["readout_params"].values)
    final_train = train_accuracy(h["theta"].values, h["readout_params"].values)
    # Fig. 7: the snapshots on the fixed grid (a run stopped early: NaN after the stop, and its off-grid last
    # snapshot is left out, so that every point has the same shape); one constant one-hot symbol at a time, the
    # same random initial states for each
    t0 = time.perf_counter()
    grid = snapshot_grid(epochs, snapshot_every)
    taken = h["snapshot_epoch"].values
    on_grid = np.flatnonzero(np.isin(taken, grid))
    slots = np.searchsorted(grid, taken[on_grid])
    n_sym = train_set.inputs.shape[2]
    y = np.full((grid.size, n_sym, n_init, keep, n_out), np.nan)
    dy = np.full_like(y, np.nan)
    hs = h.isel(snapshot=on_grid)
    for k in range(n_sym):
        y[slots, k], dy[slots, k] = readout_orbits(net, readout, hs, np.eye(n_sym)[k], n_init=n_init, z0_scale=z0_scale,
                                                   burn_in=burn_in, keep=keep, seed=seed)
    orbit_s = time.perf_counter() - t0
    odims = ("snapshot_epoch", "symbol", "init", "sample", "output")
    ocoords = {"snapshot_epoch": ("snapshot_epoch", grid,
                                  {**U1, "long_name": "epoch after which the parameters were taken"}),
               "symbol": ("symbol", np.asarray(SYMBOLS[:n_sym], dtype=str),
                          {"long_name": "the constant one-hot input symbol"}),
               "init": ("init", np.arange(n_init), {**U1, "long_name": "initial state index"}),
               "sample": ("sample", np.arange(burn_in, burn_in + keep), {"units": "steps", "long_name": "time step"}),
               "output": ("output", np.arange(n_out), {**U1, "long_name": OUTPUT_NAMES[encoding]})}
    loss = np.full(epochs, np.nan)
    loss[: h.sizes["epoch"]] = h["loss"].values
    cp = {"eval_epoch": ("eval_epoch", checkpoints, {**U1, "long_name": "epoch after which the accuracy was measured"})}
    ep = {"epoch": ("epoch", np.arange(epochs), {**U1, "long_name": "training epoch (0-based)"})}
    return {
        "final_accuracy": final,
        "best_accuracy": float(np.nanmax(np.append(curve, final))),
        "final_train_accuracy": final_train,
        "solved_epoch": int(solved[0]),
        "epochs_run": int(h.sizes["epoch"]),
        "final_loss": float(h["loss"].values[-1]),
        "train_seconds": train_s,
        "orbit_seconds": orbit_s,
        "status": status,
        "val_accuracy": xr.DataArray(curve, dims="eval_epoch", coords=cp,
                                     attrs={**U1, "long_name": "validation accuracy (NaN after an early stop)"}),
        "train_accuracy": xr.DataArray(train_curve, dims="eval_epoch", coords=cp,
                                       attrs={**U1, "long_name": "accuracy on the training sequences (NaN after an "
                                                                 "early stop)"}),
        "loss": xr.DataArray(loss, dims="epoch", coords=ep,
                             attrs={**U1, "long_name": "mean training BCE of the epoch (NaN after an early stop)"}),
        "y": xr.DataArray(y, dims=odims, coords=ocoords,
                          attrs={**U1, "long_name": "output y_t after the burn-in, constant one-hot input "
                                                    "(NaN after an early stop)"}),
        "dy": xr.DataArray(dy, dims=odims, coords=ocoords,
                           attrs={**U1, "long_name": "first difference y_t - y_{t-1}"}),
    }


VAR_ATTRS = {
    "final_accuracy": {**U1, "long_name": "validation accuracy after training"},
    "best_accuracy": {**U1, "long_name": "highest validation accuracy measured"},
    "final_train_accuracy": {**U1, "long_name": "accuracy on the training sequences after training"},
    "solved_epoch": {**U1, "long_name": "epoch at which the validation accuracy reached 1 (-1: never)"},
    "epochs_run": {**U1, "long_name": "epochs trained"},
    "final_loss": {**U1, "long_name": "mean training BCE of the last epoch"},
    "train_seconds": {"units": "s", "long_name": "training wall time, validation included"},
    "orbit_seconds": {"units": "s", "long_name": "orbit-diagram (Fig. 7) wall time"},
    "status": {"long_name": "completed, or solved (stopped at validation accuracy 1)"},
}
COORD_ATTRS = {"model": {"long_name": "lstm: LSTM; slstm: stable LSTM; ornn: orthogonal RNN"},
               "length": {"units": "steps", "long_name": "sequence length l"}}


def table1(ds: xr.Dataset) -> list[dict]:
    """Per length: our final validation accuracy per model (mean over seeds) and the paper's."""
    rows = []
    for length in ds["length"].values:
        row = {"length": int(length)}
        paper = PAPER_TABLE1.get(int(length), (np.nan,) * 3)
        for m in ds["model"].values:
            d = ds.sel(model=m, length=length)
            ok = (d["error"] == "").values
            acc = d["final_accuracy"].values[ok]
            row[str(m)] = float(np.mean(acc)) if acc.size else np.nan
            row[f"{m}_min"] = float(np.min(acc)) if acc.size else np.nan
            train = d["final_train_accuracy"].values[ok] if "final_train_accuracy" in d else np.array([])
            row[f"{m}_train"] = float(np.mean(train)) if train.size else np.nan
            row[f"{m}_solved"] = int(np.sum(d["solved_epoch"].values[ok] >= 0))
            row[f"{m}_seconds"] = float(np.sum(d["train_seconds"].values[ok]))
            row[f"paper_{m}"] = paper[MODELS.index(str(m))] if str(m) in MODELS else np.nan
        rows.append(row)
    return rows


def plot(ds: xr.Dataset, path, *, seed: int = 0, orbit_length: int = ORBIT_LENGTH,
         orbit_symbol: str = ORBIT_SYMBOL) -> None:
    """Fig. 6: validation accuracy per epoch (dotted: on the training sequences), one panel per length (every
    seed); below it Fig. 7: per model, the orbit diagram y_t against epoch for the constant input ``orbit_symbol``
    at the length nearest ``orbit_length`` (seed ``seed``, or the first), every readout output."""
    from plrnn_numba.plot import _plt

    plt = _plt()
    lengths = ds["length"].values
    models = [str(m) for m in ds["model"].values]
    has_orbit = "y" in ds
    width = max(3.6 * max(len(lengths), len(models) if has_orbit else 1) + 1, 7.6)  # room for the titles
    fig = plt.figure(figsize=(width, 7.4 if has_orbit else 3.6), constrained_layout=True)
    top, bottom = fig.subfigures(2, 1) if has_orbit else (fig, None)
    axes = np.atleast_2d(top.subplots(1, len(lengths), squeeze=False))
    for ax, length in zip(axes[0], lengths):
        for j, m in enumerate(ds["model"].values):
            for k, s in enumerate(ds["seed"].values):
                row = ds.sel(model=m, length=length, seed=s)
                if str(row["error"].values) or "val_accuracy" not in row:
                    continue
                ax.plot(row["eval_epoch"].values, row["val_accuracy"].values, color=f"C{j}", lw=0.9, alpha=0.8,
                        label=LABELS.get(str(m), str(m)) if k == 0 else None)
                if "train_accuracy" in row:
                    ax.plot(row["eval_epoch"].values, row["train_accuracy"].values, color=f"C{j}", lw=0.6,
                            alpha=0.5, ls=":", label="training sequences" if k == 0 and j == 0 else None)
        ax.axhline(BASELINE, color="k", ls="--", lw=0.8, label="baseline (p, p)")
        ax.set_ylim(0, 1.05)
        ax.set_xlabel("epoch")
        ax.set_title(f"l = {int(length)}", fontsize=9)
    axes[0, 0].set_ylabel("validation accuracy")
    axes[0, 0].legend(fontsize=8)
    top.suptitle("Fig. 6: symbol classification, validation accuracy during training", fontsize=10)
    if has_orbit:
        length = int(lengths[np.argmin(np.abs(lengths - orbit_length))])
        s = seed if seed in ds["seed"].values else ds["seed"].values[0]
        sym = orbit_symbol if orbit_symbol in ds["symbol"].values else str(ds["symbol"].values[0])
        for ax, m in zip(np.atleast_1d(bottom.subplots(1, len(models), squeeze=False)[0]), models):
            row = ds.sel(model=m, length=length, seed=s)
            ax.set_title(f"{LABELS.get(m, m)}", fontsize=9)
            ax.set_xlabel("epoch")
            if str(row["error"].values):
                ax.set_title(f"{LABELS.get(m, m)}: failed", fontsize=9)
                continue
            ep = row["snapshot_epoch"].values
            for o in row["output"].values:
                y = row["y"].sel(symbol=sym, output=o).values  # (snapshot, init, sample)
                E = np.broadcast_to(ep[:, None, None], y.shape)
                ax.plot(E.ravel(), y.ravel(), ".", ms=1, color=f"C{int(o)}", alpha=0.5)
                ax.plot([], [], ".", color=f"C{int(o)}", label=f"output {int(o) + 1}")
            ax.axhline(0, color="k", lw=0.5, ls=":")
        bottom.axes[0].set_ylabel("$y_t$ (logit) after the burn-in")
        bottom.axes[0].legend(fontsize=7)
        burn = int(ds["sample"].values[0])
        bottom.suptitle(f"Fig. 7: orbit diagram during training, l = {length}, seed {s}, constant input "
                        f"{sym!r} (one-hot), burn-in {burn}", fontsize=10)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def parse_args(argv=None):
    from plrnn_numba.cli import add_sweep_arguments

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_sweep_arguments(p, default_out="results/attractors_symbols.nc")
    g = p.add_argument_group("models and training (default: the preset's)")
    g.add_argument("--models", nargs="+", choices=MODELS, default=list(MODELS), help="models (default: all three)")
    g.add_argument("--lengths", type=int, nargs="+", default=None,
                   help="sequence lengths l >= 49 (quick 50 100 200, full 50 100 200 300 500)")
    g.add_argument("--n-hidden", type=int, default=None, help="the LSTMs' hidden size N (quick 32, full 200)")
    g.add_argument("--ornn-hidden", type=int, default=None,
                   help="the oRNN's hidden size (quick 64: about the parameters of LSTM(32); full 200)")
    g.add_argument("--epochs", type=int, default=None, help="most epochs (quick 1500, full 15000)")
    g.add_argument("--lr", type=float, default=None, help="Adam learning rate (quick 1e-3, full 1e-2, the paper's)")
    g.add_argument("--ornn-lr", type=float, default=None, help="the oRNN's learning rate (default: --lr)")
    g.add_argument("--ornn-generator", choices=("full", "upper"), default=None,
                   help="the oRNN's skew generator A of W = expm(A): A = S - S^T (full) or from the upper triangle "
                        "of S (upper, the authors' expRNN code; half the step on A)")
    g.add_argument("--milestones", type=int, nargs="*", default=None,
                   help="epochs at which the rate is multiplied by --gamma (quick none, full 500 1000 2000)")
    g.add_argument("--authors-code", action="store_true",
                   help="the settings of the authors' published training code where the paper's text differs or is "
                        "silent: Adam 1e-3, the rate divided by 4 at the milestones, the oRNN's generator from the "
                        "upper triangle, the summed loss clipped at 0.25 (here: the mean at 0.25 / --batch), the same "
                        "consecutive batches every epoch and PyTorch's readout initialisation; options given "
                        "explicitly win; the hidden sizes stay the preset's")
    g.add_argument("--gamma", type=float, default=None,
                   help="factor of the rate at each milestone (default: 0.1, the paper's; --authors-code: 0.25)")
    g.add_argument("--n-train", type=int, default=None, help="training sequences (default: 1000)")
    g.add_argument("--n-val", type=int, default=None, help="validation sequences (default: 1000)")
    g.add_argument("--batch", type=int, default=100, help="sequences per batch (default: %(default)s)")
    g.add_argument("--clip", type=float, default=None,
                   help="gradient-norm clipping of the batch's mean loss (default: 0.25; --authors-code: 0.25 / "
                        "--batch)")
    g.add_argument("--batch-order", choices=("random", "fixed"), default=None,
                   help="random: each batch drawn at random from the training set (default); fixed: the training "
                        "set cut into consecutive batches, the same order every epoch (the authors' code)")
    g.add_argument("--readout-init", choices=("normal", "uniform"), default=None,
                   help="the readout's initial weights: normal N(0, 1/N) and zero bias (default), or uniform in "
                        "+-1/sqrt(N), weights and bias (PyTorch's nn.Linear, the authors' code)")
    g.add_argument("--encoding", choices=sorted(ENCODING_LOSS), default=None,
                   help="targets and loss: onehot (the paper's 4-class softmax, ce; both presets) or bits (two "
                        "logistic outputs, bce)")
    g.add_argument("--eval-every", type=int, default=None, help="epochs between validations (quick 5, full 1)")
    g.add_argument("--no-early-stop", action="store_true", help="train every epoch even after accuracy 1")
    g.add_argument("--snapshot-every", type=int, default=None,
                   help="epochs between the parameter snapshots of the orbit diagrams (quick 10, full 50)")
    o = p.add_argument_group("orbit diagram (Fig. 7): every constant one-hot symbol, every output")
    o.add_argument("--n-init", type=int, default=4, help="random initial states (default: %(default)s)")
    o.add_argument("--z0-scale", type=float, default=1.0, help="their standard deviation (default: %(default)s)")
    o.add_argument("--burn-in", type=int, default=400, help="steps discarded (default: %(default)s, the paper's)")
    o.add_argument("--keep", type=int, default=100, help="steps kept after the burn-in (default: %(default)s)")
    o.add_argument("--orbit-length", type=int, default=ORBIT_LENGTH,
                   help="length whose diagrams the figure shows (the nearest run; default: %(default)s, the paper's)")
    o.add_argument("--orbit-symbol", default=ORBIT_SYMBOL, choices=("p", "q", "a", "b", "c", "d"),
                   help="constant input the figure shows (default: %(default)s, the paper's)")
    args = p.parse_args(argv)
    for name in ("n_hidden", "ornn_hidden", "epochs", "n_train", "n_val", "batch", "eval_every", "snapshot_every",
                 "n_init", "burn_in", "keep"):
        v = getattr(args, name)
        if v is not None and v < 1:
            p.error(f"--{name.replace('_', '-')} must be a positive integer")
    if args.lengths is not None and min(args.lengths) < 49:
        p.error("--lengths must be >= 49 (the second relevant symbol sits at steps 40..49)")
    if args.n_train is not None and args.batch > args.n_train:
        p.error("--batch must not exceed --n-train")
    code = args.authors_code
    for name, ours, authors in (("gamma", 0.1, 0.25), ("clip", 0.25, 0.25 / args.batch),
                                ("batch_order", "random", "fixed"), ("readout_init", "normal", "uniform")):
        if getattr(args, name) is None:
            setattr(args, name, authors if code else ours)
    if code:
        args.lr = 1e-3 if args.lr is None else args.lr
        args.ornn_generator = args.ornn_generator or "upper"
    if (args.lr is not None and args.lr <= 0) or args.clip <= 0 or (args.ornn_lr is not None and args.ornn_lr <= 0):
        p.error("--lr and --clip must be > 0")
    if args.z0_scale < 0:
        p.error("--z0-scale must be >= 0")
    if not 0 < args.gamma <= 1:
        p.error("--gamma must be in (0, 1]")
    return args, p


def main(argv=None) -> int:
    args, parser = parse_args(argv)
    from plrnn_numba.cli import command_line, preset, print_sweep_summary, run_sweep, seed_list

    cfg = preset(args, PRESETS)
    for key in ("lengths", "n_hidden", "ornn_hidden", "epochs", "lr", "milestones", "n_train", "n_val",
                "eval_every", "snapshot_every", "encoding", "ornn_generator"):
        if getattr(args, key) is not None:
            cfg[key] = getattr(args, key)
    if args.batch > cfg["n_train"]:
        parser.error(f"--batch ({args.batch}) must not exceed the training sequences ({cfg['n_train']})")
    ornn_lr = args.ornn_lr if args.ornn_lr is not None else cfg["lr"]
    fixed = {"n_hidden": int(cfg["n_hidden"]), "ornn_hidden": int(cfg["ornn_hidden"]), "epochs": int(cfg["epochs"]),
             "lr": float(cfg["lr"]),
             "ornn_lr": float(ornn_lr), "ornn_generator": str(cfg["ornn_generator"]),
             "milestones": sorted(int(m) for m in cfg["milestones"]), "gamma": float(args.gamma),
             "n_train": int(cfg["n_train"]),
             "n_val": int(cfg["n_val"]), "batch": args.batch, "clip": args.clip, "encoding": str(cfg["encoding"]),
             "eval_every": int(cfg["eval_every"]), "stop_at_one": not args.no_early_stop,
             "snapshot_every": int(cfg["snapshot_every"]), "n_init": args.n_init, "z0_scale": args.z0_scale,
             "burn_in": args.burn_in, "keep": args.keep, "batch_order": args.batch_order,
             "readout_init": args.readout_init}
    lengths = sorted({int(v) for v in cfg["lengths"]})
    t0 = time.perf_counter()
    ds = run_sweep(
        train_point, {"model": list(args.models), "length": lengths}, args=args, parser=parser, script=__file__,
        argv=argv, seeds=seed_list(args, cfg["n_seeds"]), fixed=fixed,
        name=f"Ribeiro et al. Table 1 / Fig. 6: symbol classification, LSTM / sLSTM / oRNN ({args.mode})",
        coord_attrs=COORD_ATTRS, var_attrs=VAR_ATTRS,
        attrs={"script": command_line("scripts/attractors_symbols.py", argv), **{k: str(v) for k, v in fixed.items()},
               "paper_table1": "; ".join(f"l={k}: {v[0]:.2f}/{v[1]:.2f}/{v[2]:.3f}" for k, v in PAPER_TABLE1.items()),
               "val_seed_offset": VAL_SEED_OFFSET},
    )
    wall = time.perf_counter() - t0
    if "final_accuracy" not in ds:
        print(f"every point failed; the first: {ds['error'].values.ravel()[0]}", file=sys.stderr)
        return 1
    png = args.out.with_suffix(".png")
    plot(ds, png, seed=args.seed, orbit_length=args.orbit_length, orbit_symbol=args.orbit_symbol)
    models = [str(m) for m in ds["model"].values]
    print(f"Table 1: validation accuracy (mean over {ds.sizes['seed']} seed(s)), N = {fixed['n_hidden']} "
          f"(oRNN {fixed['ornn_hidden']}), {fixed['encoding']} targets, "
          f"<= {fixed['epochs']} epochs, {fixed['n_train']} + {fixed['n_val']} sequences; paper: N = 200, "
          f"<= 15000 epochs, 1000 + 1000; baseline {BASELINE}; train: our accuracy on the training sequences")
    head = "".join(f" {LABELS[m]:>7} {'paper':>6} {'solved':>6} {'train':>6}" for m in models)
    print(f"{'l':>4}{head}")
    for r in table1(ds):
        cells = "".join(f" {r[m]:7.3f} {r[f'paper_{m}']:6.3f} {r[f'{m}_solved']:6d} {r[f'{m}_train']:6.3f}"
                        for m in models)
        print(f"{r['length']:4d}{cells}")
    secs = {m: float(ds["train_seconds"].sel(model=m).where(ds["error"].sel(model=m) == "").sum()) for m in models}
    print("training time per model (all lengths and seeds): "
          + ", ".join(f"{LABELS[m]} {secs[m]:.0f} s" for m in models))
    print_sweep_summary(ds, args, parser, wall, png)
    return 0


if __name__ == "__main__":
    sys.exit(main())
