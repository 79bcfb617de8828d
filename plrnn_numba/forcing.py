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

Seed 000, Theorem 3: if ``||A|| + ||W|| = r > 1``, any ``1 - 1/r < alpha < 1``
prevents degenerate transcritical bifurcations during training; if ``r < 1``
any ``0 < alpha < 1`` does.  :class:`Theorem3Alpha` implements this choice.
Forcing is applied only where the data are counted (mask > 0).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from . import _validate as V


@dataclass(frozen=True)
class ConstantAlpha:
    """``alpha(epoch) = value``."""

    value: float

    def __call__(self, epoch: int, model=None, theta=None) -> float:
        return self.value


@dataclass(frozen=True)
class LinearAlpha:
    """Linear change from ``start`` to ``end`` over ``n_epochs``, then constant."""

    start: float
    end: float
    n_epochs: int

    def __call__(self, epoch: int, model=None, theta=None) -> float:
        f = min(max(epoch / max(self.n_epochs, 1), 0.0), 1.0)
        return self.start + f * (self.end - self.start)


@dataclass(frozen=True)
class ExponentialAlpha:
    """Geometric change from ``start`` to ``end`` (> 0) over ``n_epochs``, then constant."""

    start: float
    end: float
    n_epochs: int

    def __call__(self, epoch: int, model=None, theta=None) -> float:
        f = min(max(epoch / max(self.n_epochs, 1), 0.0), 1.0)
        return float(self.start * (self.end / self.start) ** f)


@dataclass(frozen=True)
class Theorem3Alpha:
    """``alpha = clip(1 - 1/r + margin, alpha_min, alpha_max)`` with ``r = ||A|| + ||W||``.

    Re-evaluated every epoch from the current parameters (seed 000, Theorem 3).
    Needs a model with a ``norm_bound(theta)`` method (the PLRNN has one).
    """

    margin: float = 0.05
    alpha_min: float = 0.0
    alpha_max: float = 0.95

    def __call__(self, epoch: int, model=None, theta=None) -> float:
        if model is None or not hasattr(model, "norm_bound"):
            raise TypeError("Theorem3Alpha needs a model with a norm_bound(theta) method (e.g. PLRNN)")
        r = model.norm_bound(theta)
        base = 1.0 - 1.0 / r if r > 1.0 else 0.0
        return float(np.clip(base + self.margin, self.alpha_min, self.alpha_max))


AlphaLike = float | Callable[..., float]


@dataclass(frozen=True)
class FreeRunning:
    """No forcing: the model runs freely from its initial state."""

    n_forced: int | None = None

    def alphas(self, n_steps: int, epoch: int = 0, model=None, theta=None) -> np.ndarray:
        return np.zeros(n_steps)

    def describe(self) -> dict:
        return {"forcing": "free"}


@dataclass(frozen=True)
class SparseTF:
    """Sparse teacher forcing: replace the observed states by data every ``tau`` steps."""

    tau: int
    n_forced: int | None = None

    def __post_init__(self):
        V.positive_int(self.tau, "tau")

    def alphas(self, n_steps: int, epoch: int = 0, model=None, theta=None) -> np.ndarray:
        t = np.arange(1, n_steps + 1)
        return (t % self.tau == 0).astype(np.float64)

    def describe(self) -> dict:
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

    def alpha_at(self, epoch: int = 0, model=None, theta=None) -> float:
        a = self.alpha(epoch, model, theta) if callable(self.alpha) else self.alpha
        return V.finite_float(a, "alpha", 0.0, 1.0)

    def alphas(self, n_steps: int, epoch: int = 0, model=None, theta=None) -> np.ndarray:
        return np.full(n_steps, self.alpha_at(epoch, model, theta))

    def describe(self) -> dict:
        a = self.alpha if not callable(self.alpha) else repr(self.alpha)
        return {"forcing": "gtf", "alpha": a}


def as_forcing(forcing):
    """``None`` -> free running; a float -> constant GTF; forcing objects pass through."""
    if forcing is None:
        return FreeRunning()
    if isinstance(forcing, (FreeRunning, SparseTF, GTF)):
        return forcing
    if isinstance(forcing, (int, float)) and not isinstance(forcing, bool):
        return GTF(float(forcing))
    raise TypeError(
        "forcing must be None, a GTF alpha in [0, 1], or FreeRunning() / SparseTF(tau) / GTF(alpha); "
        f"got {type(forcing).__name__}"
    )
