"""The training loop: BPTT gradients, optimiser steps, hooks and an xarray history.

One epoch ``e`` of :func:`train`, on the vector ``x = [theta, readout
parameters, z0]`` (the last two only when they are trained)::

    hooks' before_epoch(e)                      may change theta in place (e.g. flossing episodes)
    lr = optimizer.lr * lr_schedule.factor(e)
    F  = forcing.at_epoch(e, model, theta)      a GTF alpha schedule, evaluated once per epoch
    batches_per_epoch times:
        L, g = loss_and_grad(theta, readout, z0; a fresh batch, F)     analytic BPTT
        g    = g * min(1, clip_norm / |g|)                             global-norm clipping
        x    = optimizer.step(x, g, lr)
    record the epoch; snapshot, callback and checkpoint when due

A non-finite loss, gradient or updated parameter is never a crash: the run
stops (parameters from before that step) or skips the step, and says so in
the history (``nonfinite``, ``skipped``, the ``status`` attribute).  Ctrl-C
returns the history up to the last finished epoch; ``checkpoint_path`` keeps a
netCDF copy on disk, so that a killed run keeps what it finished.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import xarray as xr
from numpy.typing import ArrayLike

from .. import _validate as V
from .. import io
from .._interrupt import interrupt_behind
from ..bptt import Batch, LossGrad, loss_and_grad
from ..forcing import GTF, as_forcing
from ..models.base import Model, check_model, check_precision
from ..optim import Adam, as_optimizer, clip_by_global_norm
from ..readouts import as_readout
from .history import (
    STATUS_COMPLETED,
    STATUS_DIVERGED,
    STATUS_FAILED,
    STATUS_INTERRUPTED,
    STATUS_RUNNING,
    STATUS_STOPPED,
    History,
)
from .hooks import Hooks
from .schedules import as_schedule


@dataclass(frozen=True)
class TrainState:
    """What a training callback sees after an epoch.

    Parameters
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
        The model being trained.
    """

    epoch: int
    theta: np.ndarray
    readout_params: np.ndarray
    z0: np.ndarray | None
    loss: float
    model: Model


def train(
    model: Model,
    theta: ArrayLike,
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
    hooks: object | Sequence[object] | None = None,
    on_nonfinite: str = "stop",
    max_skips: int = 10,
    checkpoint_path=None,
    checkpoint_every: int = 100,
    seed: int | np.random.Generator | None = 0,
    progress: bool = False,
    n_threads: int | None = None,
    dtype="float64",
) -> xr.Dataset:
    """Train ``model`` by gradient descent with analytic BPTT.

    Each optimiser step minimises the loss of a batch,

    .. math::

        x \\leftarrow x - \\mathrm{lr}_e\\, \\mathrm{step}\\big(\\mathrm{clip}(\\nabla_x L(x))\\big),
        \\qquad x = [\\theta, \\text{readout parameters}, z_0],

    with the gradient from :func:`~plrnn_numba.loss_and_grad` (see the module
    docstring for the order of one epoch).

    Parameters
    ----------
    model : Model
        The model to train.
    theta : (P,) array
        Initial parameters (not modified).
    data : Batch, sampler or callable
        A fixed :class:`~plrnn_numba.Batch` (full-batch training), an object
        with ``sample(rng) -> Batch`` such as
        :class:`~plrnn_numba.SubsequenceSampler`, or ``f(rng, epoch) -> Batch``.
    n_epochs : int
        Number of epochs.
    batches_per_epoch : int
        Optimiser steps per epoch (one fresh batch each).
    optimizer : SGD, Adam or AdamW, optional
        Default ``Adam(lr=1e-3)``.  Its state is reset at the start.
    lr_schedule : StepLR or MultiStepLR, optional
        Multiplies the optimiser's ``lr`` per epoch.
    clip_norm : float, optional
        Clip the global gradient norm to this value.
    readout : IdentityReadout, LinearReadout or LatentReadout, optional
        Observation model, as in :func:`~plrnn_numba.loss_and_grad`.
    readout_params : array, optional
        Initial readout parameters (trained with ``theta``).  Not given, they
        are initialised by ``readout.init`` (a ``LinearReadout`` from ``seed``;
        a ``LatentReadout(train_c=True)`` to ``[c]``).
    loss : {"mse", "bce", "sigmoid_mse", "ce"}
        The loss, as in :func:`~plrnn_numba.loss_and_grad`.
    forcing : None, float, FreeRunning, SparseTF or GTF
        Teacher forcing, as in :func:`~plrnn_numba.loss_and_grad`.  A GTF alpha
        schedule is evaluated once per epoch, from the parameters at its start.
    learn_z0 : bool
        Learn one shared initial state (overrides the batches' ``z0``).
    z0_init : (M,) array, optional
        Its starting value (default zeros).
    snapshot_every : int
        Store the parameters every this many epochs (and at the first and last).
    callback : callable, optional
        ``callback(TrainState) -> dict or None`` every ``callback_every``
        epochs; returned scalars/arrays are stored in the history as
        ``cb_<name>`` along a ``checkpoint`` dimension (for analyses during
        training); each name keeps one shape.  A callback that raises
        :class:`StopTraining` ends the run on purpose after that epoch
        (status ``stopped``, the exception's text as the message, no
        warning), e.g. once a validation accuracy reaches 1.  A callback that
        raises anything else, or returns what cannot be recorded, stops the
        run with status ``failed`` (and a warning), returning the epochs
        finished so far.
    callback_every : int
        Epochs between two calls of ``callback``.
    hooks : hook or sequence of hooks, optional
        Objects with optional ``start(state)``, ``before_epoch(state)``,
        ``after_step(state)`` and ``add_to_history(ds)`` methods
        (:mod:`plrnn_numba.training.hooks`), e.g. gradient-flossing episodes
        (:class:`plrnn_numba.dynamics.flossing.FlossingEpisodes`) or a
        constraint applied after every optimiser step
        (:class:`plrnn_numba.training.Projection`).
    on_nonfinite : {"stop", "skip"}
        On a NaN/inf loss, gradient or updated parameter: stop the run, or skip
        the step (at most ``max_skips`` consecutive epochs of only skipped
        steps, then stop).  Either way the event is recorded (``nonfinite``
        variable, ``status`` attribute).
    max_skips : int
        See ``on_nonfinite``.
    checkpoint_path : path, optional
        Write the history to this netCDF file every ``checkpoint_every``
        epochs and at the end.
    checkpoint_every : int
        See ``checkpoint_path``.
    seed : int, None or numpy.random.Generator
        Seeds batch sampling, the readout initialisation and the hooks' random
        streams; the int that repeats the run is recorded in the ``seeds``
        attribute.
    progress : bool
        Show a tqdm progress bar.
    n_threads : int, optional
        Passed to :func:`~plrnn_numba.loss_and_grad`.
    dtype : {"float64", "float32"}
        Precision of every BPTT call (passed to :func:`~plrnn_numba.loss_and_grad`);
        the parameters and the optimiser's state stay float64.

    Returns
    -------
    xarray.Dataset
        The training history (see ``docs/user_guide.md`` for every variable).
    """
    # validate and set up
    check_model(model)
    theta = model.check_theta(theta, "theta").copy()
    n_epochs = V.positive_int(n_epochs, "n_epochs")
    batches_per_epoch = V.positive_int(batches_per_epoch, "batches_per_epoch")
    snapshot_every = V.positive_int(snapshot_every, "snapshot_every")
    callback_every = V.positive_int(callback_every, "callback_every")
    checkpoint_every = V.positive_int(checkpoint_every, "checkpoint_every")
    policy = _NonfinitePolicy(V.choice(on_nonfinite, "on_nonfinite", {"stop", "skip"}),
                              V.positive_int(max_skips, "max_skips"))
    clip_norm = _check_clip_norm(clip_norm)
    dtype = check_precision(model, dtype)
    learn_z0 = V.flag(learn_z0, "learn_z0")
    progress = V.flag(progress, "progress")
    if callback is not None and not callable(callback):
        raise TypeError(f"callback must be callable as callback(TrainState) -> dict or None; "
                        f"got {type(callback).__name__}")
    optimizer = as_optimizer(Adam() if optimizer is None else optimizer)
    optimizer.reset()
    schedule = as_schedule(lr_schedule)
    readout = as_readout(readout, model.dim)
    forcing = as_forcing(forcing)
    source, data_desc = _as_batch_source(data)
    seeds = V.seed_sequence(seed)
    rng, recorded_seed = np.random.default_rng(seeds), int(seeds.entropy)
    params = _Trainable.create(model, theta, readout, readout_params, learn_z0, z0_init, recorded_seed)
    run_hooks = Hooks(hooks, seeds, model)
    arguments = {
        "model": model.describe(), "optimizer": optimizer.describe(), "lr_schedule": schedule.describe(),
        "forcing": forcing.describe(), "readout": {"type": type(readout).__name__, **readout.__dict__},
        "loss": loss, "clip_norm": clip_norm, "data": data_desc, "n_epochs": n_epochs, "dtype": dtype,
        "batches_per_epoch": batches_per_epoch, **({"hooks": run_hooks.describe()} if run_hooks.hooks else {}),
    }  # fmt: skip
    history = History(model, theta, loss=loss, arguments=arguments, seed=recorded_seed)

    def dataset(status: str, message: str = "") -> xr.Dataset:
        ds = history.to_dataset(params.theta, params.readout, params.z0, status=status, message=message)
        return run_hooks.add_to_history(ds)

    # the epochs
    status, message = STATUS_COMPLETED, ""
    bar = _progress_bar(progress, n_epochs)
    t_start = time.perf_counter()
    try:
        run_hooks.call("start", 0, params.theta)
        for epoch in range(n_epochs):
            t0 = time.perf_counter()
            # hooks first: what they change is what this epoch trains on, and what an alpha schedule reads
            run_hooks.call("before_epoch", epoch, params.theta)
            lr = optimizer.lr * schedule.factor(epoch)
            epoch_forcing = forcing.at_epoch(epoch, model, params.theta)
            loss_sum, norm_sum, bad, skipped = 0.0, 0.0, 0, 0
            for _ in range(batches_per_epoch):
                res = loss_and_grad(
                    model, params.theta, params.batch(source(rng, epoch)), readout=readout,
                    readout_params=params.readout if params.readout.size else None, loss=loss,
                    forcing=epoch_forcing, epoch=epoch, n_threads=n_threads, dtype=dtype,
                )  # fmt: skip
                g, norm = clip_by_global_norm(params.gradient(res), clip_norm)
                loss_sum, norm_sum = loss_sum + res.loss, norm_sum + norm
                # no step from a non-finite loss or gradient; a step to non-finite parameters is undone
                if not (res.finite and np.isfinite(norm) and _finite_step(optimizer, params.x, g, lr)):
                    bad += 1
                    if policy.stop:
                        break
                    skipped += 1
                else:
                    run_hooks.call("after_step", epoch, params.theta)
            history.record_epoch(
                loss=loss_sum / batches_per_epoch, grad_norm=norm_sum / batches_per_epoch, lr=lr,
                alpha=epoch_forcing.alpha if isinstance(epoch_forcing, GTF) else np.nan,
                nonfinite=int(bad > 0), skipped=skipped, wall_time=time.perf_counter() - t0,
            )  # fmt: skip
            verdict = policy.verdict(epoch, bad, skipped, batches_per_epoch)
            if verdict:
                status, message = STATUS_DIVERGED, verdict
                break
            if epoch % snapshot_every == 0:
                history.snapshot(epoch, params.theta, params.readout)
            if callback is not None and epoch % callback_every == 0:
                try:
                    failure = _run_callback(callback, params.state(epoch, history.last_loss, model), history, epoch)
                except StopTraining as stop:
                    status, message = STATUS_STOPPED, str(stop) or f"stopped by the callback after epoch {epoch}"
                    break
                if failure:
                    status, message = STATUS_FAILED, failure
                    break
            if checkpoint_path is not None and (epoch + 1) % checkpoint_every == 0:
                io.save(dataset(STATUS_RUNNING), checkpoint_path)
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{history.last_loss:.4g}")
    except (KeyboardInterrupt, Exception) as exc:
        # Ctrl-C; during a compiled engine call it can surface as a SystemError with the interrupt behind it
        if interrupt_behind(exc) is None:
            raise
        status, message = STATUS_INTERRUPTED, f"interrupted by the user after epoch {history.epochs_completed - 1}"
    finally:
        if bar is not None:
            bar.close()
    # the record: the last parameters are always a snapshot
    if history.epochs_completed:
        history.snapshot(history.epochs_completed - 1, params.theta, params.readout)
    ds = dataset(status, message)
    ds.attrs["train_seconds"] = time.perf_counter() - t_start
    if checkpoint_path is not None:
        io.save(ds, checkpoint_path)
    return ds


@dataclass
class _Trainable:
    """The optimised vector ``x = [theta, readout parameters, z0]`` and named views into it."""

    x: np.ndarray
    n_theta: int
    n_readout: int
    learn_z0: bool

    @classmethod
    def create(cls, model: Model, theta, readout, readout_params, learn_z0: bool, z0_init, seed: int) -> _Trainable:
        """Validate and initialise the readout parameters and the learned initial state."""
        ro = np.zeros(0)
        n_ro = readout.n_params(model.dim)
        if n_ro:  # a LinearReadout, or a LatentReadout with a trained c
            if readout_params is None:
                ro = readout.init(model.dim, seed)
            else:
                ro = V.as_float_array(readout_params, "readout_params").copy()
                if ro.shape != (n_ro,):
                    raise ValueError(f"readout_params must have shape ({n_ro},); got {ro.shape}")
                V.check_finite(ro, "readout_params")
        z0 = []
        if learn_z0:
            z0 = [np.zeros(model.dim) if z0_init is None else V.as_state(z0_init, model.dim, "z0_init")]
            if z0[0].ndim != 1:
                raise ValueError(f"z0_init must be one state of shape ({model.dim},) (shared by the batch)")
        elif z0_init is not None:
            raise ValueError("z0_init is only used with learn_z0=True; pass learn_z0=True or drop z0_init")
        return cls(np.concatenate([theta, ro, *z0]), theta.size, ro.size, bool(learn_z0))

    @property
    def theta(self) -> np.ndarray:
        return self.x[: self.n_theta]

    @property
    def readout(self) -> np.ndarray:
        return self.x[self.n_theta : self.n_theta + self.n_readout]

    @property
    def z0(self) -> np.ndarray | None:
        return self.x[self.n_theta + self.n_readout :] if self.learn_z0 else None

    def batch(self, batch: Batch) -> Batch:
        """The batch as trained on: a learned initial state replaces the batch's own."""
        if not self.learn_z0:
            return batch
        z0 = np.broadcast_to(self.z0, (batch.size, self.z0.size))
        return Batch(targets=batch.targets, inputs=batch.inputs, z0=z0, mask=batch.mask)

    def gradient(self, res: LossGrad) -> np.ndarray:
        """The gradient with respect to ``x`` (a shared ``z0`` sums the batch items' gradients)."""
        return np.concatenate([res.grad, res.grad_readout] + ([res.grad_z0.sum(axis=0)] if self.learn_z0 else []))

    def state(self, epoch: int, loss: float, model: Model) -> TrainState:
        """What a callback sees (copies: the callback cannot change the run)."""
        z0 = None if self.z0 is None else self.z0.copy()
        return TrainState(epoch, self.theta.copy(), self.readout.copy(), z0, loss, model)


@dataclass
class _NonfinitePolicy:
    """What a non-finite loss, gradient or update does: ``"stop"`` the run or ``"skip"`` the step."""

    mode: str
    max_skips: int
    consecutive: int = 0

    @property
    def stop(self) -> bool:
        """Stop at the first bad step (no further steps in its epoch)."""
        return self.mode == "stop"

    def verdict(self, epoch: int, bad: int, skipped: int, n_steps: int) -> str | None:
        """Why the run ends after this epoch, or None if it goes on."""
        if bad and self.stop:
            return (
                f"non-finite loss, gradient or parameters at epoch {epoch}; stopped (parameters from before that step)"
            )
        self.consecutive = self.consecutive + 1 if (bad and skipped == n_steps) else 0
        if self.consecutive >= self.max_skips:
            return f"{self.max_skips} consecutive epochs with only non-finite steps; stopped at epoch {epoch}"
        return None


class StopTraining(Exception):
    """Raise from a training callback to end the run after the current epoch, on purpose.

    The history comes back with status ``"stopped"`` and the exception's
    text as its message; every finished epoch is kept.

    Examples
    --------
    >>> def until_solved(state):
    ...     if state.loss < 1e-3:
    ...         raise StopTraining(f"loss below 1e-3 at epoch {state.epoch}")
    """


def _run_callback(callback, state: TrainState, history: History, epoch: int) -> str:
    """Call the training callback and record what it returns; a failure message, or "" if it worked.

    A callback that raises, or returns what cannot be recorded, ends the run
    like Ctrl-C does (the finished epochs are kept and returned) instead of
    losing them; the run's status says why, and a warning shows it.
    """
    try:
        history.record_callback(epoch, callback(state))
    except StopTraining:
        raise
    except Exception as exc:  # noqa: BLE001 - any failure of user code ends the run, keeping the history
        message = f"callback failed after epoch {epoch}: {type(exc).__name__}: {exc}; the run stopped there"
        warnings.warn(message, RuntimeWarning, stacklevel=3)
        return message
    return ""


def _finite_step(optimizer, x: np.ndarray, g: np.ndarray, lr: float) -> bool:
    """One optimiser step on ``x`` in place; undone (returns False) if a parameter becomes non-finite."""
    x_prev = x.copy()
    optimizer.step(x, g, lr)
    if np.all(np.isfinite(x)):
        return True
    x[:] = x_prev
    return False


def _check_clip_norm(clip_norm) -> float | None:
    if clip_norm is None:
        return None
    clip_norm = V.finite_float(clip_norm, "clip_norm", low=0.0)
    if clip_norm == 0:
        raise ValueError("clip_norm must be > 0 (or None for no clipping)")
    return clip_norm


def _as_batch_source(data) -> tuple[Callable[[np.random.Generator, int], Batch], dict]:
    """``(rng, epoch) -> Batch`` and its description for the provenance."""
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


def _progress_bar(progress: bool, n_epochs: int):
    if not progress:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=n_epochs, desc="train", unit="epoch")
