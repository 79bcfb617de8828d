"""Analyses of the ghost-mechanism paper (Dinc et al., "A ghost mechanism: an analytical model of abrupt learning").

* :mod:`plrnn_numba.ghost.toy` -- the one-dimensional toy model
  ``dx/dt = x^2 + r`` trained on the delayed-activation task: the analytic
  loss and gradient in the limit of a step output (:func:`analytic_loss`,
  :func:`analytic_gradient`), the optimum :func:`critical_r`, the point of
  no return, the critical learning rate :func:`critical_learning_rate`
  (for the loss normalised by ``T`` or not), the loss at finite confidence
  by forward Euler with its exact gradient (:func:`euler_loss_and_grad`),
  and a :func:`gradient_descent` runner recording ``r``, loss and gradient
  per epoch in an xarray Dataset.

See docs/ghost.md.
"""

from . import toy
from .toy import (
    EulerLossGrad,
    analytic_gradient,
    analytic_loss,
    critical_learning_rate,
    critical_r,
    escape_time,
    euler_loss_and_grad,
    gradient_descent,
    initial_r,
    point_of_no_return,
)

__all__ = [
    "toy",
    "EulerLossGrad",
    "analytic_gradient",
    "analytic_loss",
    "critical_learning_rate",
    "critical_r",
    "escape_time",
    "euler_loss_and_grad",
    "gradient_descent",
    "initial_r",
    "point_of_no_return",
]
