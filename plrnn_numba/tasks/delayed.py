"""Delayed copy and delayed XOR tasks of the gradient-flossing paper.

The tasks of Engelken (2023), "Gradient flossing: improving gradient descent
through dynamic control of Jacobians", sec. 6 and appendix H.

Inputs are Bernoulli(0.5) bits ``x_t in {0, 1}`` drawn with a NumPy
``Generator``; targets are bits ``y_t in {0, 1}`` to be produced by a linear
readout trained with binary cross-entropy on logits.  With array index
``t = 0 .. T-1`` (``inputs[:, t]`` is the input of step ``t + 1``, and the
readout of the state after that step must produce ``targets[:, t]``):

delayed copy
    .. math:: y_t = x_{t-d}

delayed temporal XOR (``definition="paper"``, the default; Engelken 2023, sec. 6 and appendix H.2)
    .. math:: y_t = x_{t - \\lfloor d/2 \\rfloor} \\oplus x_{t-d} = |x_{t-\\lfloor d/2 \\rfloor} - x_{t-d}|

    (``d/2`` is rounded down for odd ``d``; the paper uses even delays).
delayed temporal XOR (``definition="code"``, the authors' published code)
    .. math:: y_t = x_{t-d} \\oplus x_{t-2d}

delayed spatial XOR (three input channels)
    .. math:: y_t = x^1_{t-d} \\oplus x^2_{t-d} \\oplus x^3_{t-d}

A target is defined from the first step at which every input it refers to
exists (``t >= d``, or ``t >= 2d`` for the code's temporal XOR).  The mask is
1 from that step on and 0 before, so loss and accuracy count only defined
steps (as in the authors' code); undefined targets are stored as 0.

Each generator returns a :class:`plrnn_numba.Batch` (``targets`` (B, T, 1),
``inputs`` (B, T, K), ``mask`` (B, T), ``z0`` zeros when ``dim`` is given,
else None, which the engines read as zeros), or with ``as_dataset=True`` an
:class:`xarray.Dataset` holding the same arrays with units, long names and
provenance (:func:`batch_from_dataset` converts it back).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import xarray as xr

from .. import _validate as V
from .. import io
from ..bptt import Batch

__all__ = [
    "TASKS",
    "delayed_copy",
    "delayed_temporal_xor",
    "delayed_spatial_xor",
    "make_task",
    "accuracy",
    "task_batch_source",
    "TaskBatchSource",
    "batch_from_dataset",
]

XOR_DEFINITIONS = ("paper", "code")


def _check_common(n_batch, n_steps, delay, first_factor: int = 1) -> tuple[int, int, int, int]:
    """Validate the sizes; returns (n_batch, n_steps, delay, first defined index)."""
    n_batch = V.positive_int(n_batch, "n_batch")
    delay = V.positive_int(delay, "delay")
    n_steps = V.positive_int(n_steps, "n_steps")
    first = first_factor * delay
    if n_steps <= first:
        what = "delay" if first_factor == 1 else f"{first_factor} * delay"
        raise ValueError(
            f"n_steps must be > {what} = {first} so that at least one target is defined; got n_steps={n_steps}"
        )
    return n_batch, n_steps, delay, first


def _bits(rng: np.random.Generator, shape) -> np.ndarray:
    return rng.integers(0, 2, size=shape).astype(np.float64)


def _finish(
    x: np.ndarray,
    y: np.ndarray,
    first: int,
    *,
    task: str,
    delay: int,
    seed,
    dim: int | None,
    as_dataset: bool,
    extra: dict | None = None,
):
    as_dataset = V.flag(as_dataset, "as_dataset")
    B, T, K = x.shape
    mask = np.zeros((B, T))
    mask[:, first:] = 1.0
    targets = y[:, :, None]
    z0 = None if dim is None else np.zeros((B, V.positive_int(dim, "dim")))
    if not as_dataset:
        return Batch(targets=targets, inputs=x, z0=z0, mask=mask)
    args = {"task": task, "n_batch": B, "n_steps": T, "delay": delay, **(extra or {})}
    attrs = io.provenance(f"plrnn_numba.tasks.{task}", args, seeds=seed)
    attrs.update({"task": task, "delay": delay, "first_target_index": first})
    for key, val in (extra or {}).items():
        attrs[key] = val
    return xr.Dataset(
        {
            "inputs": (
                ("batch", "step", "input"),
                x,
                {"long_name": "input bits x_t (Bernoulli(0.5))", "units": "1"},
            ),
            "targets": (
                ("batch", "step", "output"),
                targets,
                {"long_name": "target bits y_t (0 where undefined)", "units": "1"},
            ),
            "mask": (
                ("batch", "step"),
                mask,
                {"long_name": "1 where the target is defined and counted in loss and accuracy", "units": "1"},
            ),
        },
        coords={
            "batch": ("batch", np.arange(B), {"long_name": "sequence", "units": "1"}),
            "step": (
                "step",
                np.arange(1, T + 1),
                {"long_name": "time step (1-based: input s_t, target y_t)", "units": "steps"},
            ),
            "input": ("input", np.arange(K), {"long_name": "input channel", "units": "1"}),
            "output": ("output", np.arange(1), {"long_name": "output channel", "units": "1"}),
        },
        attrs=attrs,
    )


def delayed_copy(
    n_batch: int,
    n_steps: int,
    delay: int,
    *,
    seed: int | np.random.Generator | None = 0,
    dim: int | None = None,
    as_dataset: bool = False,
) -> Batch | xr.Dataset:
    """Delayed copy task, :math:`y_t = x_{t-d}` on one input channel.

    Parameters
    ----------
    n_batch : int
        Number of sequences.
    n_steps : int
        Sequence length ``T`` (must exceed ``delay``).
    delay : int
        The delay ``d >= 1``.
    seed : int, None or numpy.random.Generator
        Source of the input bits (the package's one rule for seeds; a
        Generator is advanced by one draw).  The int that repeats the batch is
        recorded in the Dataset's ``seeds`` attribute.
    dim : int, optional
        Latent dimension; if given, ``z0`` is a ``(n_batch, dim)`` array of
        zeros (otherwise None, which the engines also read as zeros).
    as_dataset : bool
        Return an :class:`xarray.Dataset` instead of a :class:`~plrnn_numba.Batch`.

    Returns
    -------
    Batch or xarray.Dataset
        ``targets`` (B, T, 1), ``inputs`` (B, T, 1), ``mask`` (B, T) equal to
        1 for ``t >= d`` (0-based).
    """
    B, T, d, first = _check_common(n_batch, n_steps, delay)
    rng, recorded_seed = V.generator(seed)
    x = _bits(rng, (B, T, 1))
    y = np.zeros((B, T))
    y[:, d:] = x[:, : T - d, 0]
    return _finish(x, y, first, task="delayed_copy", delay=d, seed=recorded_seed, dim=dim, as_dataset=as_dataset)


def delayed_temporal_xor(
    n_batch: int,
    n_steps: int,
    delay: int,
    *,
    seed: int | np.random.Generator | None = 0,
    definition: str = "paper",
    dim: int | None = None,
    as_dataset: bool = False,
) -> Batch | xr.Dataset:
    """Delayed temporal XOR on one input channel.

    ``definition="paper"`` (default; Engelken 2023, Figs. 3-4 and appendix H.2):

    .. math:: y_t = x_{t-\\lfloor d/2 \\rfloor} \\oplus x_{t-d},

    defined for ``t >= d``.  ``definition="code"`` (the authors' published
    code): :math:`y_t = x_{t-d} \\oplus x_{t-2d}`, defined for ``t >= 2d``
    (``n_steps`` must then exceed ``2 d``).

    Parameters
    ----------
    n_batch : int
        Number of sequences.
    n_steps : int
        Sequence length ``T`` (must exceed ``delay``; ``2 d`` with ``definition="code"``).
    delay : int
        The delay ``d >= 1``.
    seed : int, None or numpy.random.Generator
        Source of the input bits, as in :func:`delayed_copy`.
    definition : {"paper", "code"}
        Which of the two published definitions.
    dim : int, optional
        Latent dimension; if given, ``z0`` is a ``(n_batch, dim)`` array of zeros.
    as_dataset : bool
        Return an :class:`xarray.Dataset` instead of a :class:`~plrnn_numba.Batch`.

    Returns
    -------
    Batch or xarray.Dataset
        ``targets`` (B, T, 1), ``inputs`` (B, T, 1), ``mask`` (B, T) equal to 1 where ``y_t`` is defined.
    """
    V.choice(definition, "definition", set(XOR_DEFINITIONS))
    factor = 1 if definition == "paper" else 2
    B, T, d, first = _check_common(n_batch, n_steps, delay, factor)
    rng, recorded_seed = V.generator(seed)
    x = _bits(rng, (B, T, 1))
    a, b = (d // 2, d) if definition == "paper" else (d, 2 * d)
    y = np.zeros((B, T))
    xa = x[:, first - a : T - a, 0]
    xb = x[:, first - b : T - b, 0]
    y[:, first:] = np.abs(xa - xb)
    return _finish(
        x,
        y,
        first,
        task="delayed_temporal_xor",
        delay=d,
        seed=recorded_seed,
        dim=dim,
        as_dataset=as_dataset,
        extra={"definition": definition},
    )


def delayed_spatial_xor(
    n_batch: int,
    n_steps: int,
    delay: int,
    *,
    seed: int | np.random.Generator | None = 0,
    dim: int | None = None,
    as_dataset: bool = False,
) -> Batch | xr.Dataset:
    """Delayed spatial XOR on three input channels.

    .. math:: y_t = x^1_{t-d} \\oplus x^2_{t-d} \\oplus x^3_{t-d}

    (the parity of the three bits ``d`` steps back), defined for ``t >= d``.

    Parameters
    ----------
    n_batch : int
        Number of sequences.
    n_steps : int
        Sequence length ``T`` (must exceed ``delay``).
    delay : int
        The delay ``d >= 1``.
    seed : int, None or numpy.random.Generator
        Source of the input bits, as in :func:`delayed_copy`.
    dim : int, optional
        Latent dimension; if given, ``z0`` is a ``(n_batch, dim)`` array of zeros.
    as_dataset : bool
        Return an :class:`xarray.Dataset` instead of a :class:`~plrnn_numba.Batch`.

    Returns
    -------
    Batch or xarray.Dataset
        ``inputs`` has shape (B, T, 3).
    """
    B, T, d, first = _check_common(n_batch, n_steps, delay)
    rng, recorded_seed = V.generator(seed)
    x = _bits(rng, (B, T, 3))
    y = np.zeros((B, T))
    y[:, d:] = np.mod(x[:, : T - d, :].sum(axis=2), 2.0)
    return _finish(
        x, y, first, task="delayed_spatial_xor", delay=d, seed=recorded_seed, dim=dim, as_dataset=as_dataset
    )


#: task names accepted by :func:`make_task` and :func:`task_batch_source`
TASKS: dict[str, Callable[..., Batch | xr.Dataset]] = {
    "delayed_copy": delayed_copy,
    "delayed_temporal_xor": delayed_temporal_xor,
    "delayed_spatial_xor": delayed_spatial_xor,
}
_ALIASES = {"copy": "delayed_copy", "temporal_xor": "delayed_temporal_xor", "spatial_xor": "delayed_spatial_xor"}


def _task_function(task) -> tuple[str, Callable[..., Batch | xr.Dataset]]:
    if not isinstance(task, str):
        raise TypeError(f"task must be a task name (str); got {type(task).__name__}")
    name = _ALIASES.get(task, task)
    if name not in TASKS:
        raise ValueError(f"task must be one of {sorted(set(TASKS) | set(_ALIASES))}; got {task!r}")
    return name, TASKS[name]


def make_task(
    task: str, n_batch: int, n_steps: int, delay: int, *, seed: int | np.random.Generator | None = 0, **kwargs
) -> Batch | xr.Dataset:
    """Call a task generator by name (``"copy"``, ``"temporal_xor"``, ``"spatial_xor"`` or the full names).

    Parameters
    ----------
    task : str
        The task's name.
    n_batch : int
        Number of sequences.
    n_steps : int
        Sequence length.
    delay : int
        The delay.
    seed : int, None or numpy.random.Generator
        Source of the input bits.
    **kwargs
        Further arguments of the task (``definition``, ``dim``, ``as_dataset``).

    Returns
    -------
    Batch or xarray.Dataset
        What the task generator returns.
    """
    _, fn = _task_function(task)
    return fn(n_batch, n_steps, delay, seed=seed, **kwargs)


def batch_from_dataset(ds: xr.Dataset) -> Batch:
    """The :class:`~plrnn_numba.Batch` held by a task Dataset (``as_dataset=True``).

    ``targets`` and ``mask`` are required; ``inputs`` and ``z0`` are used when
    present (the delayed-activation task has no inputs and a fixed initial state).

    Parameters
    ----------
    ds : xarray.Dataset
        A task Dataset.

    Returns
    -------
    Batch
        Its targets, inputs, initial states and mask.
    """
    if not isinstance(ds, xr.Dataset):
        raise TypeError(f"ds must be a task xarray.Dataset (as_dataset=True); got {type(ds).__name__}")
    for name in ("targets", "mask"):
        if name not in ds:
            raise ValueError(f"ds must be a task Dataset with variables targets and mask; {name!r} is missing")

    def values(name, dims):
        return np.ascontiguousarray(ds[name].transpose(*dims).values, dtype=np.float64)

    return Batch(
        targets=values("targets", ("batch", "step", "output")),
        inputs=values("inputs", ("batch", "step", "input")) if "inputs" in ds else None,
        z0=values("z0", ("batch", "unit")) if "z0" in ds else None,
        mask=values("mask", ("batch", "step")),
    )


def accuracy(logits, batch: Batch) -> float:
    """Fraction of correct bits on the masked (defined) steps, thresholding logits at 0.

    .. math::

        \\mathrm{acc} = \\frac{\\sum_{b,t} m_{bt}\\, [\\,(\\hat y_{bt} > 0) = y_{bt}\\,]}{\\sum_{b,t} m_{bt}}

    Parameters
    ----------
    logits : (B, T, 1) or (B, T) array
        Readout outputs (logits of the bit being 1), e.g. the first return
        value of :func:`plrnn_numba.predict` with a ``LinearReadout(1)``.
    batch : Batch
        The batch the logits were computed for (targets in {0, 1}).

    Returns
    -------
    float
        Accuracy in [0, 1]; NaN logits count as wrong.
    """
    if not isinstance(batch, Batch):
        raise TypeError(f"batch must be a plrnn_numba.Batch; got {type(batch).__name__}")
    y = np.asarray(batch.targets, dtype=np.float64)
    if y.ndim == 3:
        if y.shape[2] != 1:
            raise ValueError(f"accuracy expects one output channel; batch.targets has shape {y.shape}")
        y = y[:, :, 0]
    lg = V.as_float_array(logits, "logits")
    if lg.ndim == 3 and lg.shape[2] == 1:
        lg = lg[:, :, 0]
    if lg.shape != y.shape:
        raise ValueError(
            f"logits must have shape {y.shape + (1,)} or {y.shape} like batch.targets; got {np.shape(logits)}"
        )
    mask = np.ones(y.shape) if batch.mask is None else np.broadcast_to(np.asarray(batch.mask, float), y.shape)
    counted = mask > 0
    if not counted.any():
        raise ValueError("batch.mask counts no step: accuracy is undefined")
    # NaN logits (a diverged model) are wrong whatever the target: (NaN > 0) alone would read as "0"
    correct = ((lg > 0.0) == (y > 0.5)) & ~np.isnan(lg)
    return float(correct[counted].mean())


@dataclass
class TaskBatchSource:
    """A callable ``(rng, epoch) -> Batch`` drawing a fresh task batch per call.

    Pass it as ``data`` to :func:`plrnn_numba.train`.  With ``seed=None`` the
    bits come from the trainer's ``rng`` (seeded by ``train(..., seed=...)``);
    with an integer ``seed`` the ``i``-th batch of epoch ``e`` is determined
    by ``(seed, e, i)`` alone (the Generator ``numpy.random.default_rng([seed,
    e, i])`` seeds the task), independent of the trainer.  (Here None does not
    mean fresh entropy: the trainer's recorded seed already makes such a run
    reproducible.)  Made by :func:`task_batch_source`, which validates the
    arguments.

    Parameters
    ----------
    task : str
        The task's full name (a key of :data:`TASKS`).
    n_batch : int
        Batch size.
    n_steps : int
        Sequence length.
    delay : int
        The delay.
    seed : int, optional
        Makes the batch sequence independent of the trainer's ``rng``.
    kwargs : dict
        Further arguments of the task.
    _epoch, _count : int
        Internal state (the epoch of the last call and the batches drawn in it); not to be passed.
    """

    task: str
    n_batch: int
    n_steps: int
    delay: int
    seed: int | None = None
    kwargs: dict = field(default_factory=dict)
    _epoch: int = field(default=-1, repr=False)
    _count: int = field(default=0, repr=False)

    def __call__(self, rng: np.random.Generator, epoch: int) -> Batch:
        if self.seed is None:
            source = rng
        else:
            if epoch != self._epoch:
                self._epoch, self._count = epoch, 0
            source = np.random.default_rng([self.seed, int(epoch), self._count])
            self._count += 1
        return make_task(self.task, self.n_batch, self.n_steps, self.delay, seed=source, **self.kwargs)

    def describe(self) -> dict:
        """JSON-serialisable description (for provenance).

        Returns
        -------
        dict
            The task's name and settings.
        """
        return {
            "task": self.task,
            "n_batch": self.n_batch,
            "n_steps": self.n_steps,
            "delay": self.delay,
            "seed": self.seed,
            **self.kwargs,
        }


def task_batch_source(
    task: str, n_batch: int, n_steps: int, delay: int, seed: int | None = None, **kwargs
) -> TaskBatchSource:
    """A batch source for :func:`plrnn_numba.train`: one fresh batch of ``task`` per epoch.

    Parameters
    ----------
    task : str
        ``"copy"``, ``"temporal_xor"``, ``"spatial_xor"`` (or ``"delayed_copy"``, ...).
    n_batch, n_steps, delay : int
        Batch size, sequence length and delay (validated here, once).
    seed : int, optional
        Makes the batch sequence independent of the trainer's ``rng``
        (see :class:`TaskBatchSource`).
    **kwargs
        Passed to the task (e.g. ``definition="code"``, ``dim=...``).

    Returns
    -------
    TaskBatchSource
        Callable ``(rng, epoch) -> Batch``.
    """
    name, fn = _task_function(task)
    if kwargs.get("as_dataset"):
        raise ValueError("as_dataset=True makes no sense for a training batch source")
    if seed is not None:
        seed = V.positive_int(seed, "seed", minimum=0)
    fn(1, n_steps, delay, seed=0, **kwargs)  # validate the arguments now, not at the first epoch
    return TaskBatchSource(
        task=name, n_batch=V.positive_int(n_batch, "n_batch"), n_steps=n_steps, delay=delay, seed=seed, kwargs=kwargs
    )
