"""Teacher forcing: free running, sparse teacher forcing and generalized teacher forcing.

All three are one operation applied after every step ``t`` to the first
``N`` latent components (those observed through the identity readout):

.. math::

    \\tilde z_t = (1 - \\alpha_t)\\, z_t + \\alpha_t\\, \\hat z_t

where ``zhat_t`` holds the data ``x_t`` in its first N components and ``z_t``
elsewhere.  The next step starts from ``z~_t``; the loss is computed on the
unforced prediction ``z_t``.  The backward pass differentiates exactly this
map: on a forced component the adjoint is multiplied by ``(1 - alpha_t)``.

* free running: ``alpha_t = 0``;
* sparse teacher forcing with interval ``tau``: ``alpha_t = 1`` when ``t`` is a
  multiple of ``tau`` (``t = 1 .. T``), else 0;
* generalized teacher forcing (GTF): ``alpha_t = alpha`` at every step, with
  ``alpha`` constant or following a schedule over epochs.

Eisenmann et al. (2023), "Bifurcations and loss jumps in RNN training",
Theorem 3: if ``||A|| + ||W|| = r > 1``, any ``1 - 1/r < alpha < 1``
prevents degenerate transcritical bifurcations during training; if ``r < 1``
any ``0 < alpha < 1`` does.  :class:`Theorem3Alpha` implements this choice.
Forcing is applied only where the data are counted (mask > 0).

A schedule of ``alpha`` over epochs is evaluated once per epoch: the trainer
calls ``forcing.at_epoch(epoch, model, theta)``, which gives the forcing with a
constant ``alpha`` for all of that epoch's steps.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from . import _validate as V

__all__ = [
    "ConstantAlpha",
    "LinearAlpha",
    "ExponentialAlpha",
    "Theorem3Alpha",
    "FreeRunning",
    "SparseTF",
    "GTF",
    "as_forcing",
]


@dataclass(frozen=True)
class ConstantAlpha:
    """``alpha(epoch) = value``.

    Parameters
    ----------
    value : float
        The forcing strength, in [0, 1].
    """

    value: float

    def __post_init__(self):
        V.finite_float(self.value, "value", 0.0, 1.0)

    def __call__(self, epoch: int, model=None, theta=None) -> float:
        return self.value


@dataclass(frozen=True)
class LinearAlpha:
    """Linear change from ``start`` to ``end`` over ``n_epochs``, then constant.

    Parameters
    ----------
    start : float
        Forcing strength at epoch 0, in [0, 1].
    end : float
        Forcing strength from epoch ``n_epochs`` on, in [0, 1].
    n_epochs : int
        Length of the change, in epochs (>= 1).
    """

    start: float
    end: float
    n_epochs: int

    def __post_init__(self):
        V.finite_float(self.start, "start", 0.0, 1.0)
        V.finite_float(self.end, "end", 0.0, 1.0)
        V.positive_int(self.n_epochs, "n_epochs")

    def __call__(self, epoch: int, model=None, theta=None) -> float:
        f = min(max(epoch / max(self.n_epochs, 1), 0.0), 1.0)
        return self.start + f * (self.end - self.start)


@dataclass(frozen=True)
class ExponentialAlpha:
    """Geometric change from ``start`` to ``end`` (> 0) over ``n_epochs``, then constant.

    Parameters
    ----------
    start : float
        Forcing strength at epoch 0, in (0, 1].
    end : float
        Forcing strength from epoch ``n_epochs`` on, in (0, 1].
    n_epochs : int
        Length of the change, in epochs (>= 1).
    """

    start: float
    end: float
    n_epochs: int

    def __post_init__(self):
        # a geometric path needs both ends strictly positive
        V.finite_float(self.start, "start", 0.0, 1.0, open_low=True)
        V.finite_float(self.end, "end", 0.0, 1.0, open_low=True)
        V.positive_int(self.n_epochs, "n_epochs")

    def __call__(self, epoch: int, model=None, theta=None) -> float:
        f = min(max(epoch / max(self.n_epochs, 1), 0.0), 1.0)
        return float(self.start * (self.end / self.start) ** f)


@dataclass(frozen=True)
class Theorem3Alpha:
    """``alpha = clip(1 - 1/r + margin, alpha_min, alpha_max)`` with ``r = ||A|| + ||W||``.

    Theorem 3 of Eisenmann et al. (2023): with GTF at strength alpha the
    one-step Jacobians are scaled by ``1 - alpha``, so ``alpha > 1 - 1/r``, where r
    bounds the norm of every region's Jacobian, prevents degenerate
    transcritical bifurcations.  ``r`` is re-evaluated every epoch from the
    current parameters through the piecewise-linear protocol
    (:meth:`~plrnn_numba.models.piecewise.PiecewiseLinear.norm_bound`:
    ``||A|| + ||W||`` for the PLRNN, ``||L|| + ||R|| ||U||`` in general), so it
    works for every piecewise-linear model.

    Parameters
    ----------
    margin : float
        Added to the bound ``1 - 1/r`` (0 when ``r <= 1``).
    alpha_min : float
        Lower clip of alpha, in [0, 1].
    alpha_max : float
        Upper clip of alpha, in [0, 1] and >= ``alpha_min``.
    """

    margin: float = 0.05
    alpha_min: float = 0.0
    alpha_max: float = 0.95

    def __post_init__(self):
        V.finite_float(self.margin, "margin")
        lo = V.finite_float(self.alpha_min, "alpha_min", 0.0, 1.0)
        hi = V.finite_float(self.alpha_max, "alpha_max", 0.0, 1.0)
        if lo > hi:
            raise ValueError(f"alpha_min ({lo}) must be <= alpha_max ({hi})")

    def __call__(self, epoch: int, model=None, theta=None) -> float:
        from .models.piecewise import as_piecewise_linear

        if model is None:
            raise TypeError("Theorem3Alpha needs the model and its parameters (model, theta)")
        r = as_piecewise_linear(model, theta).norm_bound()
        base = 1.0 - 1.0 / r if r > 1.0 else 0.0
        return float(np.clip(base + self.margin, self.alpha_min, self.alpha_max))


AlphaLike = float | Callable[..., float]


@dataclass(frozen=True)
class FreeRunning:
    """No forcing: the model runs freely from its initial state.

    Parameters
    ----------
    n_forced : int, optional
        Number of forced latent components; accepted for a uniform interface
        with :class:`SparseTF` and :class:`GTF` (nothing is forced).
    """

    n_forced: int | None = None

    def __post_init__(self):
        V.optional_int(self.n_forced, "n_forced")

    def alphas(self, n_steps: int, epoch: int = 0, model=None, theta=None) -> np.ndarray:
        """Forcing strength of each step ``t = 1 .. n_steps``: all zero.

        Parameters
        ----------
        n_steps : int
            Number of steps.
        epoch : int
            The training epoch (unused).
        model : Model, optional
            The model (unused).
        theta : (P,) array, optional
            Its parameters (unused).

        Returns
        -------
        (n_steps,) array
            Zeros.
        """
        return np.zeros(n_steps)

    def at_epoch(self, epoch: int, model=None, theta=None) -> FreeRunning:
        """The forcing of one epoch: itself (nothing depends on the epoch).

        Parameters
        ----------
        epoch : int
            The training epoch.
        model : Model, optional
            The model being trained.
        theta : (P,) array, optional
            Its parameters at the start of the epoch.

        Returns
        -------
        FreeRunning
            ``self``.
        """
        return self

    def describe(self) -> dict:
        """Settings recorded in a training run's provenance.

        Returns
        -------
        dict
            ``{"forcing": "free"}``.
        """
        return {"forcing": "free"}


@dataclass(frozen=True)
class SparseTF:
    """Sparse teacher forcing: replace the observed states by data every ``tau`` steps.

    Parameters
    ----------
    tau : int
        Forcing interval: steps ``t = tau, 2 tau, ...`` are forced (``alpha_t = 1``).
    n_forced : int, optional
        Number of forced latent components (default: all observed ones).
    """

    tau: int
    n_forced: int | None = None

    def __post_init__(self):
        V.positive_int(self.tau, "tau")
        V.optional_int(self.n_forced, "n_forced")

    def alphas(self, n_steps: int, epoch: int = 0, model=None, theta=None) -> np.ndarray:
        """Forcing strength of each step ``t = 1 .. n_steps``: 1 at multiples of ``tau``, else 0.

        Parameters
        ----------
        n_steps : int
            Number of steps.
        epoch : int
            The training epoch (unused).
        model : Model, optional
            The model (unused).
        theta : (P,) array, optional
            Its parameters (unused).

        Returns
        -------
        (n_steps,) array
            ``alpha_1 .. alpha_T``.
        """
        t = np.arange(1, n_steps + 1)
        return (t % self.tau == 0).astype(np.float64)

    def at_epoch(self, epoch: int, model=None, theta=None) -> SparseTF:
        """The forcing of one epoch: itself (nothing depends on the epoch).

        Parameters
        ----------
        epoch : int
            The training epoch.
        model : Model, optional
            The model being trained.
        theta : (P,) array, optional
            Its parameters at the start of the epoch.

        Returns
        -------
        SparseTF
            ``self``.
        """
        return self

    def describe(self) -> dict:
        """Settings recorded in a training run's provenance.

        Returns
        -------
        dict
            ``{"forcing": "sparse", "tau": tau}``.
        """
        return {"forcing": "sparse", "tau": self.tau}


@dataclass(frozen=True)
class GTF:
    """Generalized teacher forcing ``z~ = (1 - alpha) z + alpha zhat``.

    Parameters
    ----------
    alpha : float in [0, 1] or callable ``alpha(epoch, model, theta)``
        Constant forcing strength or a schedule (:class:`LinearAlpha`,
        :class:`ExponentialAlpha`, :class:`Theorem3Alpha`, or your own).
    n_forced : int, optional
        Number of forced latent components (default: all observed ones).
    """

    alpha: AlphaLike = 0.1
    n_forced: int | None = None

    def __post_init__(self):
        if not callable(self.alpha):
            V.finite_float(self.alpha, "alpha", 0.0, 1.0)
        V.optional_int(self.n_forced, "n_forced")

    def alpha_at(self, epoch: int = 0, model=None, theta=None) -> float:
        """The forcing strength at one epoch: ``alpha``, or the schedule evaluated there.

        Parameters
        ----------
        epoch : int
            The training epoch.
        model : Model, optional
            The model (needed by schedules that read the parameters, such as :class:`Theorem3Alpha`).
        theta : (P,) array, optional
            Its parameters.

        Returns
        -------
        float
            Alpha, in [0, 1].
        """
        a = self.alpha(epoch, model, theta) if callable(self.alpha) else self.alpha
        return V.finite_float(a, "alpha", 0.0, 1.0)

    def alphas(self, n_steps: int, epoch: int = 0, model=None, theta=None) -> np.ndarray:
        """Forcing strength of each step ``t = 1 .. n_steps``: :meth:`alpha_at` at every step.

        Parameters
        ----------
        n_steps : int
            Number of steps.
        epoch : int
            The training epoch.
        model : Model, optional
            The model (for schedules that read the parameters).
        theta : (P,) array, optional
            Its parameters.

        Returns
        -------
        (n_steps,) array
            ``alpha_1 .. alpha_T``, all equal.
        """
        return np.full(n_steps, self.alpha_at(epoch, model, theta))

    def at_epoch(self, epoch: int, model=None, theta=None) -> GTF:
        """The forcing of one epoch: ``alpha`` evaluated once, constant for all of the epoch's steps.

        A schedule that reads the parameters (such as :class:`Theorem3Alpha`)
        sees ``theta`` at the start of the epoch.

        Parameters
        ----------
        epoch : int
            The training epoch.
        model : Model, optional
            The model being trained.
        theta : (P,) array, optional
            Its parameters at the start of the epoch.

        Returns
        -------
        GTF
            ``self`` if ``alpha`` is a constant, else a GTF with that epoch's constant alpha.
        """
        if not callable(self.alpha):
            return self
        return GTF(self.alpha_at(epoch, model, theta), n_forced=self.n_forced)

    def describe(self) -> dict:
        """Settings recorded in a training run's provenance.

        Returns
        -------
        dict
            ``{"forcing": "gtf", "alpha": alpha}`` (a schedule by its ``repr``).
        """
        a = self.alpha if not callable(self.alpha) else repr(self.alpha)
        return {"forcing": "gtf", "alpha": a}


def as_forcing(forcing):
    """``None`` -> free running; a float -> constant GTF; forcing objects pass through.

    Parameters
    ----------
    forcing : None, float, FreeRunning, SparseTF or GTF
        The forcing as the training functions accept it.

    Returns
    -------
    FreeRunning, SparseTF or GTF
        The forcing object.
    """
    if forcing is None:
        return FreeRunning()
    if isinstance(forcing, (FreeRunning, SparseTF, GTF)):
        return forcing
    if isinstance(forcing, (int, float)) and not isinstance(forcing, bool):
        return GTF(V.finite_float(forcing, "forcing (a GTF alpha)", 0.0, 1.0))
    raise TypeError(
        "forcing must be None, a GTF alpha in [0, 1], or FreeRunning() / SparseTF(tau) / GTF(alpha); "
        f"got {type(forcing).__name__}"
    )
