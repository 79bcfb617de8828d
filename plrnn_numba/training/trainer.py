"""The training loop: BPTT gradients, optimiser steps and an xarray history.

The history is the record later analyses work from: losses, gradient norms,
learning rates and forcing strengths per epoch, and parameter snapshots every
``snapshot_every`` epochs (bifurcation analyses follow the parameters along
this trajectory).  A non-finite loss or gradient is never a crash: the run
stops (or skips the step) and says so in the history; Ctrl-C returns the
history up to the last finished epoch; ``checkpoint_path`` keeps a netCDF copy
of the history on disk so that a killed run keeps what it finished.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import xarray as xr

from .. import _validate as V
from .. import io
from ..bptt import Batch, loss_and_grad
from ..forcing import as_forcing
from ..models.base import Model
from ..readouts import LinearReadout, as_readout
from .optim import Adam, as_optimizer, clip_by_global_norm
from .schedules import as_schedule

STATUS_COMPLETED = "completed"
STATUS_DIVERGED = "diverged"
STATUS_INTERRUPTED = "interrupted"


@dataclass(frozen=True)
class TrainState:
    """What a training callback sees after an epoch.

    Attributes
    ----------
    epoch : int
        The epoch just finished (0-based).
    theta : (P,) array
        Current model parameters (a copy).
    readout_params : array
        Current readout parameters (a copy; empty for an identity readout).
    z0 : array or None
        Current learned initial state, if any.
    loss : float
        The epoch's mean training loss.
    model : Model
    """

    epoch: int
    theta: np.ndarray
    readout_params: np.ndarray
    z0: np.ndarray | None
    loss: float
    model: Model


def _as_batch_source(data, seed):
    if isinstance(data, Batch):
        return lambda rng, epoch: data, {"data": "fixed batch", "batch_size": data.size, "n_steps": data.n_steps}
    if hasattr(data, "sample"):
        desc = data.describe() if hasattr(data, "describe") else {"data": type(data).__name__}
        return lambda rng, epoch: data.sample(rng), desc
    if callable(data):
        desc = data.describe() if hasattr(data, "describe") else {"data": getattr(data, "__qualname__", repr(data))}
        return data, desc
    raise TypeError(
        "data must be a Batch, a sampler with .sample(rng) (e.g. SubsequenceSampler), "
        f"or a callable (rng, epoch) -> Batch; got {type(data).__name__}"
    )


def train(
    model: Model,
    theta0,
    data,
    *,
    n_epochs: int,
    batches_per_epoch: int = 1,
    optimizer=None,
    lr_schedule=None,
    clip_norm: float | None = None,
    readout=None,
    readout_params=None,
    loss: str = "mse",
    forcing=None,
    learn_z0: bool = False,
    z0_init=None,
    snapshot_every: int = 10,
    callback: Callable[[TrainState], dict | None] | None = None,
    callback_every: int = 1,
    on_nonfinite: str = "stop",
    max_skips: int = 10,
    checkpoint_path=None,
    checkpoint_every: int = 100,
    seed: int | None = 0,
    progress: bool = False,
    n_threads: int | None = None,
    flossing=None,
    flossing_episodes=None,
) -> xr.Dataset:
    """Train ``model`` by gradient descent with analytic BPTT.

    Parameters
    ----------
    model : Model
    theta0 : (P,) array
        Initial parameters (not modified).
    data : Batch, sampler or callable
        A fixed :class:`~plrnn_numba.Batch` (full-batch training), an object
        with ``sample(rng) -> Batch`` such as
        :class:`~plrnn_numba.train.SubsequenceSampler`, or ``f(rng, epoch) -> Batch``.
    n_epochs : int
        Number of epochs.
    batches_per_epoch : int
        Optimiser steps per epoch (one fresh batch each).
    optimizer : SGD, Adam or AdamW, optional
        Default ``Adam(lr=1e-3)``.
    lr_schedule : StepLR or MultiStepLR, optional
        Multiplies the optimiser's ``lr`` per epoch.
    clip_norm : float, optional
        Clip the global gradient norm to this value.
    readout, readout_params, loss, forcing
        As in :func:`~plrnn_numba.loss_and_grad`.  A ``LinearReadout`` without
        ``readout_params`` is initialised from ``seed``.  A GTF alpha schedule
        is evaluated once per epoch.
    learn_z0 : bool
        Learn one shared initial state (overrides the batches' ``z0``).
    z0_init : (M,) array, optional
        Its starting value (default zeros).
    snapshot_every : int
        Store the parameters every this many epochs (and at the first and last).
    callback : callable, optional
        ``callback(TrainState) -> dict or None`` every ``callback_every``
        epochs; returned scalars/arrays are stored in the history along a
        ``checkpoint`` dimension (for analyses during training).
    on_nonfinite : {"stop", "skip"}
        On a NaN/inf loss or gradient: stop the run, or skip the step (at
        most ``max_skips`` consecutive skips, then stop).  Either way the
        event is recorded (``nonfinite`` variable, ``status`` attribute).
    checkpoint_path : path, optional
        Write the history to this netCDF file every ``checkpoint_every``
        epochs and at the end.
    seed : int
        Seeds batch sampling and readout initialisation.
    progress : bool
        Show a tqdm progress bar.
    n_threads : int, optional
        Passed to :func:`~plrnn_numba.loss_and_grad`.
    flossing : plrnn_numba.dynamics.flossing.Flossing, optional
        Gradient-flossing settings (exponents, target, trajectory length, lr).
    flossing_episodes : dict or sequence of (epoch, n_steps)
        Before the task step of each listed epoch, run ``n_steps`` flossing
        steps (Adam on the flossing loss, a persistent optimiser of its own).
        The history records every flossing step (``floss_loss``,
        ``floss_exponents`` along ``floss_step``, with ``floss_epoch``).

    Returns
    -------
    xarray.Dataset
        The training history (see ``docs/user_guide.md`` for every variable).
    """
    if not isinstance(model, Model):
        raise TypeError(f"model must be a plrnn_numba model; got {type(model).__name__}")
    theta = model.check_theta(theta0, "theta0").copy()
    n_epochs = V.positive_int(n_epochs, "n_epochs")
    batches_per_epoch = V.positive_int(batches_per_epoch, "batches_per_epoch")
    snapshot_every = V.positive_int(snapshot_every, "snapshot_every")
    callback_every = V.positive_int(callback_every, "callback_every")
    checkpoint_every = V.positive_int(checkpoint_every, "checkpoint_every")
    max_skips = V.positive_int(max_skips, "max_skips")
    V.choice(on_nonfinite, "on_nonfinite", {"stop", "skip"})
    if clip_norm is not None:
        clip_norm = V.finite_float(clip_norm, "clip_norm", low=0.0)
        if clip_norm == 0:
            raise ValueError("clip_norm must be > 0 (or None for no clipping)")
    optimizer = as_optimizer(Adam() if optimizer is None else optimizer)
    optimizer.reset()
    schedule = as_schedule(lr_schedule)
    readout = as_readout(readout, model.dim)
    forcing = as_forcing(forcing)
    rng = np.random.default_rng(seed)
    if isinstance(readout, LinearReadout):
        ro = (
            readout.init(model.dim, seed)
            if readout_params is None
            else V.as_float_array(readout_params, "readout_params").copy()
        )
        if ro.shape != (readout.n_params(model.dim),):
            raise ValueError(f"readout_params must have shape ({readout.n_params(model.dim)},); got {ro.shape}")
        V.check_finite(ro, "readout_params")
    else:
        ro = np.zeros(0)
    z0 = None
    if learn_z0:
        z0 = np.zeros(model.dim) if z0_init is None else V.as_state(z0_init, model.dim, "z0_init").copy()
    elif z0_init is not None:
        raise ValueError("z0_init is only used with learn_z0=True")
    source, data_desc = _as_batch_source(data, seed)
    episodes: dict[int, int] = {}
    if flossing_episodes is not None:
        if flossing is None:
            raise ValueError("flossing_episodes need flossing=Flossing(...) settings")
        items = flossing_episodes.items() if isinstance(flossing_episodes, dict) else flossing_episodes
        for ep, n in items:
            episodes[V.positive_int(ep, "flossing episode epoch", minimum=0)] = V.positive_int(n, "flossing steps")
    floss_rec: dict[str, list] = {"loss": [], "exponents": [], "epoch": []}
    floss_opt = None
    floss_rng = np.random.default_rng(None if seed is None else seed + 7919)

    P, R = theta.size, ro.size
    x = np.concatenate([theta, ro] + ([z0] if z0 is not None else []))

    def split(vec):
        th = vec[:P]
        r = vec[P : P + R]
        zz = vec[P + R :] if z0 is not None else None
        return th, r, zz

    rec = {k: [] for k in ("loss", "grad_norm", "lr", "alpha", "nonfinite", "skipped", "wall_time")}
    snaps, snap_epochs, ro_snaps = [], [], []
    cb_records: list[dict] = []
    cb_epochs: list[int] = []
    status, message = STATUS_COMPLETED, ""
    consecutive_skips = 0
    t_start = time.perf_counter()
    last_done = -1
    theta_init = theta.copy()

    def snapshot(epoch):
        th, r, _ = split(x)
        snaps.append(th.copy())
        ro_snaps.append(r.copy())
        snap_epochs.append(epoch)

    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=n_epochs, desc="train", unit="epoch")

    def build(final: bool) -> xr.Dataset:
        ds = _history(
            model, rec, snaps, snap_epochs, ro_snaps, cb_records, cb_epochs, split(x), theta_init,
            readout, optimizer, schedule, forcing, loss, clip_norm, data_desc, seed, n_epochs,
            batches_per_epoch, status if final else "running", message, last_done,
        )  # fmt: skip
        if floss_rec["loss"]:
            n_f = len(floss_rec["loss"])
            ds["floss_loss"] = (
                "floss_step",
                np.asarray(floss_rec["loss"], float),
                {"long_name": "gradient-flossing loss", "units": "1"},
            )
            ds["floss_exponents"] = (
                ("floss_step", "floss_exponent"),
                np.asarray(floss_rec["exponents"], float).reshape(n_f, flossing.k),
                {"long_name": "finite-time Lyapunov exponents during flossing", "units": "1/step (natural log)"},
            )
            ds = ds.assign_coords(
                floss_epoch=(
                    "floss_step",
                    np.asarray(floss_rec["epoch"], np.int64),
                    {"long_name": "training epoch of the flossing step", "units": "1"},
                )
            )
            ds.attrs["flossing"] = io.to_json(flossing)
        return ds

    try:
        for epoch in range(n_epochs):
            t0 = time.perf_counter()
            lr = optimizer.lr * schedule.factor(epoch)
            th_now = x[:P]
            alpha = forcing.alpha_at(epoch, model, th_now) if hasattr(forcing, "alpha_at") else float("nan")
            ep_loss, ep_gn, bad, skipped = 0.0, 0.0, 0, 0
            if epoch in episodes:
                if floss_opt is None:
                    floss_opt = Adam(flossing.lr)
                for _ in range(episodes[epoch]):
                    fres = flossing.loss_and_grad(model, x[:P], floss_rng)
                    floss_rec["loss"].append(fres.loss)
                    floss_rec["exponents"].append(fres.exponents.mean(axis=0))
                    floss_rec["epoch"].append(epoch)
                    if not fres.finite:
                        break
                    th_view = x[:P]
                    floss_opt.step(th_view, fres.grad)
            for _ in range(batches_per_epoch):
                batch = source(rng, epoch)
                th, r, zz = split(x)
                if zz is not None:
                    batch = Batch(
                        targets=batch.targets,
                        inputs=batch.inputs,
                        z0=np.broadcast_to(zz, (batch.size, model.dim)),
                        mask=batch.mask,
                    )
                res = loss_and_grad(
                    model,
                    th,
                    batch,
                    readout=readout,
                    readout_params=r if R else None,
                    loss=loss,
                    forcing=_fixed_alpha(forcing, alpha),
                    epoch=epoch,
                    n_threads=n_threads,
                )
                g = np.concatenate([res.grad, res.grad_readout] + ([res.grad_z0.sum(axis=0)] if zz is not None else []))
                g, gn = clip_by_global_norm(g, clip_norm)
                ep_loss += res.loss
                ep_gn += gn
                if not (res.finite and np.isfinite(gn)):
                    bad += 1
                    if on_nonfinite == "stop":
                        break
                    skipped += 1
                    continue
                x_prev = x.copy()
                optimizer.step(x, g, lr)
                if not np.all(np.isfinite(x)):
                    x[:] = x_prev
                    bad += 1
                    if on_nonfinite == "stop":
                        break
                    skipped += 1
            n = batches_per_epoch
            rec["loss"].append(ep_loss / n)
            rec["grad_norm"].append(ep_gn / n)
            rec["lr"].append(lr)
            rec["alpha"].append(alpha)
            rec["nonfinite"].append(int(bad > 0))
            rec["skipped"].append(skipped)
            rec["wall_time"].append(time.perf_counter() - t0)
            last_done = epoch
            if bad and on_nonfinite == "stop":
                status = STATUS_DIVERGED
                message = (
                    f"non-finite loss, gradient or parameters at epoch {epoch}; "
                    "stopped (parameters from before that step)"
                )
                break
            if bad and skipped == n:
                consecutive_skips += 1
                if consecutive_skips >= max_skips:
                    status = STATUS_DIVERGED
                    message = f"{max_skips} consecutive epochs with only non-finite steps; stopped at epoch {epoch}"
                    break
            else:
                consecutive_skips = 0
            if epoch % snapshot_every == 0:
                snapshot(epoch)
            if callback is not None and epoch % callback_every == 0:
                th, r, zz = split(x)
                out = callback(
                    TrainState(epoch, th.copy(), r.copy(), None if zz is None else zz.copy(), rec["loss"][-1], model)
                )
                if out:
                    cb_records.append(dict(out))
                    cb_epochs.append(epoch)
            if checkpoint_path is not None and (epoch + 1) % checkpoint_every == 0:
                io.save(build(final=False), checkpoint_path)
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{rec['loss'][-1]:.4g}")
    except KeyboardInterrupt:
        status = STATUS_INTERRUPTED
        message = f"interrupted by the user after epoch {last_done}"
    finally:
        if bar is not None:
            bar.close()
    if not snap_epochs or snap_epochs[-1] != last_done:
        if last_done >= 0:
            snapshot(last_done)
    ds = build(final=True)
    ds.attrs["train_seconds"] = time.perf_counter() - t_start
    if checkpoint_path is not None:
        io.save(ds, checkpoint_path)
    return ds


def _fixed_alpha(forcing, alpha):
    # The schedule is evaluated once per epoch; within the epoch alpha is constant.
    from ..forcing import GTF

    if isinstance(forcing, GTF) and callable(forcing.alpha):
        return GTF(alpha, n_forced=forcing.n_forced)
    return forcing


def _history(
    model,
    rec,
    snaps,
    snap_epochs,
    ro_snaps,
    cb_records,
    cb_epochs,
    current,
    theta_init,
    readout,
    optimizer,
    schedule,
    forcing,
    loss,
    clip_norm,
    data_desc,
    seed,
    n_epochs,
    batches_per_epoch,
    status,
    message,
    last_done,
) -> xr.Dataset:
    th, r, zz = current
    n = len(rec["loss"])
    epoch = np.arange(n)
    pnames = model.param_names()
    data_vars = {
        "loss": ("epoch", np.asarray(rec["loss"], float), {"long_name": f"mean training loss ({loss})", "units": "1"}),
        "grad_norm": (
            "epoch",
            np.asarray(rec["grad_norm"], float),
            {"long_name": "global gradient norm before clipping (mean over the epoch's steps)", "units": "1"},
        ),
        "lr": ("epoch", np.asarray(rec["lr"], float), {"long_name": "learning rate", "units": "1"}),
        "alpha": (
            "epoch",
            np.asarray(rec["alpha"], float),
            {"long_name": "generalized teacher forcing strength (NaN: not GTF)", "units": "1"},
        ),
        "nonfinite": (
            "epoch",
            np.asarray(rec["nonfinite"], np.int8),
            {"long_name": "1 if a loss, gradient or parameter update was NaN/inf", "units": "1"},
        ),
        "skipped": (
            "epoch",
            np.asarray(rec["skipped"], np.int32),
            {"long_name": "optimiser steps skipped because they were non-finite", "units": "1"},
        ),
        "wall_time": (
            "epoch",
            np.asarray(rec["wall_time"], float),
            {"long_name": "epoch wall-clock time", "units": "s"},
        ),
        "theta": ("param", th.copy(), {"long_name": "model parameters at the end of training", "units": "1"}),
        "theta_init": ("param", theta_init, {"long_name": "initial model parameters", "units": "1"}),
        "theta_snapshots": (
            ("snapshot", "param"),
            np.asarray(snaps, float).reshape(len(snaps), th.size),
            {"long_name": "model parameters after the snapshot epoch", "units": "1"},
        ),
    }
    coords = {
        "epoch": ("epoch", epoch, {"long_name": "training epoch (0-based)", "units": "1"}),
        "param": ("param", np.asarray(pnames, dtype=str), {"long_name": "parameter name (entry of theta)"}),
        "snapshot_epoch": (
            "snapshot",
            np.asarray(snap_epochs, np.int64),
            {"long_name": "epoch after which the snapshot was taken", "units": "1"},
        ),
    }
    if r.size:
        data_vars["readout_params"] = (
            "readout_param",
            r.copy(),
            {"long_name": "readout parameters at the end", "units": "1"},
        )
        data_vars["readout_snapshots"] = (
            ("snapshot", "readout_param"),
            np.asarray(ro_snaps, float).reshape(len(ro_snaps), r.size),
            {"long_name": "readout parameters after the snapshot epoch", "units": "1"},
        )
    if zz is not None:
        data_vars["z0"] = ("state", zz.copy(), {"long_name": "learned initial latent state", "units": "1"})
    if cb_records:
        keys = sorted(set().union(*cb_records))
        coords["checkpoint_epoch"] = (
            "checkpoint",
            np.asarray(cb_epochs, np.int64),
            {"long_name": "epoch at which the callback ran", "units": "1"},
        )
        for k in keys:
            vals = [np.asarray(rec_.get(k, np.nan), dtype=float) for rec_ in cb_records]
            shape = max((v.shape for v in vals), key=len)
            arr = np.full((len(vals),) + shape, np.nan)
            for i, v in enumerate(vals):
                if v.shape == shape:
                    arr[i] = v
            dims = ("checkpoint",) + tuple(f"{k}_dim{j}" for j in range(len(shape)))
            data_vars[f"cb_{k}"] = (dims, arr, {"long_name": f"callback output '{k}'"})
    attrs = io.provenance(
        "plrnn_numba.train",
        {
            "model": model.describe(),
            "optimizer": optimizer.describe(),
            "lr_schedule": schedule.describe(),
            "forcing": forcing.describe(),
            "readout": {"type": type(readout).__name__, **readout.__dict__},
            "loss": loss,
            "clip_norm": clip_norm,
            "data": data_desc,
            "n_epochs": n_epochs,
            "batches_per_epoch": batches_per_epoch,
        },
        seeds=seed,
    )
    attrs.update(
        {
            "model": io.to_json(model.describe()),
            "status": status,
            "message": message,
            "epochs_completed": int(last_done + 1),
            "diverged": int(status == STATUS_DIVERGED),
        }
    )
    return xr.Dataset(data_vars, coords=coords, attrs=attrs)
