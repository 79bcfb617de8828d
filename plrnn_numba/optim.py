"""First-order optimisers over one flat parameter vector, and gradient clipping.

A neutral module: task training (:func:`plrnn_numba.train`) and gradient
flossing (:mod:`plrnn_numba.dynamics.flossing`) both step parameters with
these optimisers without depending on each other.

Each optimiser keeps its state as arrays and updates ``x`` in place:

* SGD with momentum ``mu``: ``v <- mu v + g``, ``x <- x - lr (g + mu v)`` if
  Nesterov else ``x <- x - lr v``; L2 weight decay adds ``wd x`` to ``g``.
* Adam (Kingma & Ba): ``m <- b1 m + (1 - b1) g``, ``v <- b2 v + (1 - b2) g^2``,
  ``x <- x - lr m_hat / (sqrt(v_hat) + eps)`` with bias corrections; the
  weight decay is L2 (added to ``g``).
* AdamW (Loshchilov & Hutter): Adam with decoupled decay
  ``x <- x - lr wd x`` before the Adam step.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from . import _validate as V

__all__ = [
    "SGD",
    "Adam",
    "AdamW",
    "as_optimizer",
    "global_norm",
    "clip_by_global_norm",
]


def global_norm(g: np.ndarray) -> float:
    """Euclidean norm ``sqrt(sum_i g_i^2)`` of the whole gradient vector.

    An overflowing sum gives ``inf`` silently: a diverged gradient is reported
    by the caller (training records it), not warned about here.

    Parameters
    ----------
    g : (P,) array
        Gradient vector (non-empty).

    Returns
    -------
    float
        The norm.
    """
    return _norm(_gradient(g))


def _gradient(g) -> np.ndarray:
    g = V.as_float_array(g, "g")
    if g.ndim != 1 or g.size == 0:
        raise ValueError(f"g must be a non-empty 1-D gradient vector; got shape {g.shape}")
    return g


def _norm(g: np.ndarray) -> float:
    with np.errstate(over="ignore", invalid="ignore"):
        return float(np.sqrt(np.dot(g, g)))


def clip_by_global_norm(g: np.ndarray, max_norm: float | None) -> tuple[np.ndarray, float]:
    """Scale ``g`` so that its global norm is at most ``max_norm``.

    A non-finite gradient is returned unchanged with its non-finite norm: the
    caller decides what a diverged step means (training records it).

    Parameters
    ----------
    g : (P,) array
        Gradient vector (non-empty).
    max_norm : float or None
        Largest norm (> 0); None: no clipping.

    Returns
    -------
    g : (P,) array
        The gradient, rescaled if its norm exceeded ``max_norm``.
    norm : float
        Its norm before clipping.
    """
    if max_norm is not None:
        V.finite_float(max_norm, "max_norm", low=0.0, open_low=True)
    g = _gradient(g)
    n = _norm(g)
    if max_norm is not None and n > max_norm and np.isfinite(n):
        g = g * (max_norm / n)
    return g, n


@dataclass
class _Optimizer:
    lr: float = 1e-3
    state: dict = field(default_factory=dict, repr=False, init=False)

    def __post_init__(self):
        V.finite_float(self.lr, "lr", low=0.0)

    def reset(self) -> None:
        """Forget the optimiser's state (moments, step count)."""
        self.state = {}

    def describe(self) -> dict:
        """Settings recorded in a training run's provenance.

        Returns
        -------
        dict
            The optimiser's name and its settings.
        """
        d = asdict(self)
        d.pop("state", None)
        return {"optimizer": type(self).__name__, **d}


@dataclass
class SGD(_Optimizer):
    """Stochastic gradient descent with optional (Nesterov) momentum and L2 decay.

    Parameters
    ----------
    lr : float
        Learning rate.
    momentum : float
        Momentum ``mu`` in [0, 1] (0: none).
    nesterov : bool
        Use Nesterov momentum.
    weight_decay : float
        L2 penalty ``wd`` added to the gradient as ``wd x``.
    """

    lr: float = 1e-2
    momentum: float = 0.0
    nesterov: bool = False
    weight_decay: float = 0.0

    def __post_init__(self):
        super().__post_init__()
        V.finite_float(self.momentum, "momentum", 0.0, 1.0)
        V.flag(self.nesterov, "nesterov")
        V.finite_float(self.weight_decay, "weight_decay", low=0.0)

    def step(self, x: np.ndarray, g: np.ndarray, lr: float | None = None) -> None:
        """Update ``x`` in place by one step with gradient ``g``.

        Parameters
        ----------
        x : (P,) array
            Parameters, updated in place.
        g : (P,) array
            Gradient at ``x``.
        lr : float, optional
            Learning rate of this step (default ``self.lr``; the trainer passes the scheduled rate).
        """
        lr = self.lr if lr is None else lr
        if self.weight_decay:
            g = g + self.weight_decay * x
        if self.momentum:
            v = self.state.setdefault("v", np.zeros_like(x))
            v *= self.momentum
            v += g
            g = g + self.momentum * v if self.nesterov else v
        x -= lr * g


@dataclass
class Adam(_Optimizer):
    """Adam with bias correction; ``weight_decay`` is an L2 penalty added to the gradient.

    Parameters
    ----------
    lr : float
        Learning rate.
    beta1, beta2 : float
        Decay rates of the first and second moment estimates, in [0, 1).
    eps : float
        Added to the root of the second moment (> 0).
    weight_decay : float
        L2 penalty ``wd`` added to the gradient as ``wd x``.
    """

    lr: float = 1e-3
    beta1: float = 0.9
    beta2: float = 0.999
    eps: float = 1e-8
    weight_decay: float = 0.0

    def __post_init__(self):
        super().__post_init__()
        for name in ("beta1", "beta2"):
            # beta = 1 would divide by zero in the bias correction 1 - beta^t
            if V.finite_float(getattr(self, name), name, 0.0, 1.0) == 1.0:
                raise ValueError(f"{name} must be < 1 (the bias correction divides by 1 - {name}^t); got 1.0")
        V.finite_float(self.eps, "eps", low=0.0, open_low=True)
        V.finite_float(self.weight_decay, "weight_decay", low=0.0)

    _decoupled = False

    def step(self, x: np.ndarray, g: np.ndarray, lr: float | None = None) -> None:
        """Update ``x`` in place by one step with gradient ``g``.

        Parameters
        ----------
        x : (P,) array
            Parameters, updated in place.
        g : (P,) array
            Gradient at ``x``.
        lr : float, optional
            Learning rate of this step (default ``self.lr``; the trainer passes the scheduled rate).
        """
        lr = self.lr if lr is None else lr
        if self.weight_decay:
            if self._decoupled:
                x -= lr * self.weight_decay * x
            else:
                g = g + self.weight_decay * x
        m = self.state.setdefault("m", np.zeros_like(x))
        v = self.state.setdefault("v", np.zeros_like(x))
        t = self.state["t"] = self.state.get("t", 0) + 1
        m *= self.beta1
        m += (1.0 - self.beta1) * g
        v *= self.beta2
        v += (1.0 - self.beta2) * g * g
        mhat = m / (1.0 - self.beta1**t)
        vhat = v / (1.0 - self.beta2**t)
        x -= lr * mhat / (np.sqrt(vhat) + self.eps)


@dataclass
class AdamW(Adam):
    """Adam with decoupled weight decay (default ``weight_decay=1e-2``).

    Parameters
    ----------
    lr : float
        Learning rate.
    beta1, beta2 : float
        Decay rates of the first and second moment estimates, in [0, 1).
    eps : float
        Added to the root of the second moment (> 0).
    weight_decay : float
        Decoupled decay: ``x <- x - lr wd x`` before the Adam step.
    """

    weight_decay: float = 1e-2
    _decoupled = True


def as_optimizer(optimizer) -> _Optimizer:
    """An optimiser instance from an instance or a name ("sgd", "adam", "adamw").

    Parameters
    ----------
    optimizer : SGD, Adam, AdamW or str
        An optimiser, or the name of one (with its default settings).

    Returns
    -------
    SGD, Adam or AdamW
        The optimiser.
    """
    if isinstance(optimizer, _Optimizer):
        return optimizer
    names = {"sgd": SGD, "adam": Adam, "adamw": AdamW}
    if isinstance(optimizer, str) and optimizer.lower() in names:
        return names[optimizer.lower()]()
    raise TypeError(f"optimizer must be SGD(...), Adam(...), AdamW(...) or one of {list(names)}; got {optimizer!r}")
