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
* :mod:`plrnn_numba.ghost.latent` -- the latent circuit of a low-rank rate
  network (:class:`plrnn_numba.RateRNN`): the flow
  ``tau dkappa/dt = -kappa + N^T tanh(M kappa + b)``, its fixed points and
  ghost points (:func:`rank_one_objects` on a grid for rank one,
  :func:`latent_slow_points` for rank R), :func:`latent_circuit` for a model
  and :func:`latent_objects_along_training` along a training history.
* :mod:`plrnn_numba.ghost.rnn` -- rate networks trained on the
  delayed-activation task as the authors do (:func:`train_delayed_activation`
  with their learning rate and loss normalisation, per-epoch training
  accuracy), the metrics :func:`learned_at_some_point`,
  :func:`in_no_learning_zone`, :func:`epochs_to_learn`, and
  :func:`lower_confidence` (further training at lowered confidence).

See docs/reproductions/ghost_mechanism.md and docs/slow_points.md.
"""

from . import latent, rnn, toy
from .latent import (
    LATENT_KINDS,
    latent_circuit,
    latent_flow,
    latent_flow_jacobian,
    latent_objects_along_training,
    latent_slow_points,
    low_rank_factors,
    rank_one_objects,
)
from .rnn import (
    DEFAULT_C_VALUES,
    Score,
    epochs_to_learn,
    evaluate,
    in_no_learning_zone,
    learned_at_some_point,
    loss_scale,
    lower_confidence,
    package_lr,
    train_delayed_activation,
)
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
    "latent",
    "rnn",
    "LATENT_KINDS",
    "latent_circuit",
    "latent_flow",
    "latent_flow_jacobian",
    "latent_objects_along_training",
    "latent_slow_points",
    "low_rank_factors",
    "rank_one_objects",
    "DEFAULT_C_VALUES",
    "Score",
    "epochs_to_learn",
    "evaluate",
    "in_no_learning_zone",
    "learned_at_some_point",
    "loss_scale",
    "lower_confidence",
    "package_lr",
    "train_delayed_activation",
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
