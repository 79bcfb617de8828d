r"""The loss gradient of a free-running model as its parameters approach a located bifurcation.

Eisenmann, Monfared, Göring and Durstewitz (2023), "Bifurcations and loss
jumps in RNN training", connect bifurcations of a PLRNN to the loss
gradient: when a stable fixed point or k-cycle undergoes a degenerate
transcritical bifurcation (an eigenvalue of the cycle's Jacobian reaches +1
and the cycle escapes to infinity), the norm of the loss gradient diverges
(their Theorem 1).  :func:`gradient_near_bifurcation` measures that: along a
parameter path :math:`\theta(s) = \theta_0 + s\,d` with a bifurcation at
:math:`s^*` (located exactly by :func:`~plrnn_numba.dynamics.bifurcation_path`)
it evaluates the free-running loss and its exact gradient (backpropagation
through time, :func:`~plrnn_numba.loss_and_grad`) at
:math:`s = s^* + \sigma \varepsilon` for distances :math:`\varepsilon` and
sequence lengths ``T``.

The rate for a fixed point
--------------------------
Let the fixed point :math:`z^* = (I - F)^{-1} h` of the region map
:math:`F = A + W D_\Omega` have a simple eigenvalue :math:`\lambda(s) = 1 - c\,
\varepsilon + O(\varepsilon^2)` with right and left eigenvectors :math:`v, w`
(:math:`w^\top v = 1`).  Then :math:`(I - F)^{-1} = v w^\top / (c\varepsilon)
+ O(1)`, so

.. math::

    z^* = \frac{(w^\top h)\, v}{c\,\varepsilon} + O(1), \qquad
    \frac{\partial z^*}{\partial \theta_j} = (I - F)^{-1}\Big(\frac{\partial F}{\partial \theta_j} z^*
      + \frac{\partial h}{\partial \theta_j}\Big)
    = \frac{(w^\top E_j v)(w^\top h)\, v}{c^2 \varepsilon^2} + O(\varepsilon^{-1})

for a parameter entering :math:`F` (:math:`E_j = \partial F / \partial\theta_j`,
e.g. ``A[i]`` or a ``W`` entry of an active unit) and
:math:`\partial z^*/\partial h_j = O(\varepsilon^{-1})`.  A loss term
:math:`\|z_t - x_t\|^2` with bounded targets, evaluated after the trajectory
has converged, has the gradient
:math:`2 (z^* - x_t)^\top \partial z^*/\partial\theta`: of order
:math:`\varepsilon^{-1} \cdot \varepsilon^{-2} = \varepsilon^{-3}` for the
parameters of :math:`F` and :math:`\varepsilon^{-2}` for ``h``.  So on a
log-log plot the gradient norm against :math:`\varepsilon` has slope
:math:`-3` (dominated by :math:`A` and :math:`W`; slope :math:`-2` for ``h``
alone).  The same holds for a k-cycle with :math:`F` replaced by the cycle's
Jacobian :math:`Z = F_k \cdots F_1` and :math:`z^*` by a cycle point.

Convergence to :math:`z^*` takes about :math:`1/(c\varepsilon)` steps, so a
finite sequence of ``T`` steps sees the :math:`\varepsilon^{-3}` law only
for :math:`\varepsilon \gg 1/(cT)`; below, the trajectory has not reached
the (distant) fixed point, :math:`z_t` grows at most linearly in ``t``, and
the gradient of the mean loss saturates at a level of order :math:`T^3`.
Theorem 1's divergence is the limit :math:`T \to \infty`.
"""

from __future__ import annotations

import time

import numpy as np
import xarray as xr

from .. import _validate as V
from .. import io
from ..bptt import Batch, loss_and_grad
from ..models.base import check_model
from ..readouts import IdentityReadout
from .paths import parameter_direction


def gradient_near_bifurcation(model, theta, direction, s_star: float, distances, n_steps, *, z0, targets=None,
                              side: int = -1) -> xr.Dataset:
    r"""Free-running loss and gradient norm at distances :math:`\varepsilon` from a bifurcation at ``s_star``.

    At :math:`\theta(s) = \theta + s\,d` with :math:`s = s^* + \sigma\varepsilon`
    (``side`` :math:`\sigma = \pm 1`) the model runs freely from ``z0`` for
    ``T`` steps and the loss is the mean squared error of all latent states
    against the targets,

    .. math:: L_T(\theta) = \frac{1}{T M} \sum_{t=1}^{T} \|z_t(\theta) - x_t\|^2 ,

    with its exact gradient from backpropagation through time.

    Parameters
    ----------
    model : Model
        A model without inputs.
    theta : (P,) array
        The path's start (``s = 0``).
    direction : str, mapping or (P,) array
        The path's direction (:func:`~plrnn_numba.dynamics.parameter_direction`).
    s_star : float
        Where the bifurcation lies on the path (from
        :func:`~plrnn_numba.dynamics.bifurcation_path`).
    distances : (n,) array
        Distances :math:`\varepsilon > 0`.
    n_steps : int or (m,) array of int
        Sequence lengths ``T``.
    z0 : (M,) array
        Initial state of every run.
    targets : (T_max, M) array, optional
        :math:`x_1 \ldots x_{T_{max}}` (each run uses the first ``T``);
        default: the free run of the model at ``theta`` (``s = 0``) from ``z0``,
        i.e. the data a model at the start of the path fits exactly.
    side : {-1, +1}
        Approach from below (``s < s*``, default) or from above.

    Returns
    -------
    xarray.Dataset
        Dims ``distance`` and ``n_steps``; ``grad_norm`` (the whole gradient),
        one ``grad_norm_<name>`` per parameter group of ``model.param_slices()``
        (e.g. ``grad_norm_A``), ``loss``, ``finite`` (0/1); coordinates ``s``
        (distance) and ``param`` labels; attrs ``s_star``, ``side``,
        ``direction`` and provenance.
    """
    model = check_model(model)
    if model.n_inputs:
        raise ValueError(f"gradient_near_bifurcation runs the autonomous map; the model has {model.n_inputs} "
                         "inputs: use a model without inputs (n_inputs=0)")
    theta = model.check_theta(theta)
    d, label = parameter_direction(model, direction)
    s_star = V.finite_float(s_star, "s_star")
    eps = V.as_float_array(distances, "distances").ravel()
    if eps.size == 0 or not np.all(np.isfinite(eps)) or np.any(eps <= 0):
        raise ValueError("distances must be a non-empty array of finite values > 0 (epsilon = |s - s_star|)")
    Ts = np.atleast_1d(np.asarray(n_steps))
    if Ts.ndim != 1 or Ts.size == 0 or Ts.dtype.kind not in "iu" or np.any(Ts < 1):
        raise ValueError(f"n_steps must be a positive integer or a 1-D array of them; got {n_steps!r}")
    if side not in (-1, 1):
        raise ValueError(f"side must be -1 (approach from s < s_star) or +1 (from s > s_star); got {side!r}")
    z0 = V.as_state(z0, model.dim, "z0")
    if z0.ndim != 1:
        raise ValueError(f"z0 must be one state of shape ({model.dim},); got {z0.shape}")
    T_max = int(Ts.max())
    if targets is None:
        with np.errstate(all="ignore"):
            X = model.simulate(theta, z0, n_steps=T_max)[1:]
    else:
        X = V.as_float_array(targets, "targets")
        if X.ndim != 2 or X.shape[1] != model.dim or X.shape[0] < T_max:
            raise ValueError(f"targets must have shape (>= {T_max}, {model.dim}) (time, latent states); got {X.shape}")
    V.check_finite(X, "targets")
    groups = model.param_slices()
    shape = (eps.size, Ts.size)
    out = {k: np.full(shape, np.nan) for k in ("grad_norm", "loss", *(f"grad_norm_{g}" for g in groups))}
    finite = np.zeros(shape, dtype=np.int8)
    t0 = time.perf_counter()
    for i, e in enumerate(eps):
        th = theta + (s_star + side * e) * d
        for j, T in enumerate(Ts):
            r = loss_and_grad(model, th, Batch(targets=X[None, : int(T)], z0=z0[None]), readout=IdentityReadout())
            finite[i, j] = int(r.finite)
            out["loss"][i, j] = r.loss
            out["grad_norm"][i, j] = np.linalg.norm(r.grad)
            for g, sl in groups.items():
                out[f"grad_norm_{g}"][i, j] = np.linalg.norm(r.grad[sl])
    dims = ("distance", "n_steps")
    data = {"grad_norm": (dims, out["grad_norm"], {"long_name": "norm of the loss gradient (all parameters)",
                                                    "units": "1"}),
            "loss": (dims, out["loss"], {"long_name": "free-running mean squared error", "units": "1"}),
            "finite": (dims, finite, {"long_name": "1 if the loss and gradient are finite", "units": "1"})}
    for g in groups:
        data[f"grad_norm_{g}"] = (dims, out[f"grad_norm_{g}"],
                                  {"long_name": f"norm of the loss gradient with respect to {g}", "units": "1"})
    coords = {"distance": ("distance", eps, {"long_name": "distance |s - s_star| to the bifurcation", "units": "1"}),
              "n_steps": ("n_steps", Ts.astype(np.int64), {"long_name": "sequence length T", "units": "steps"}),
              "s": ("distance", s_star + side * eps, {"long_name": "path parameter s", "units": "1"})}
    attrs = {"s_star": s_star, "side": int(side), "direction": label,
             "loss": "mean over steps and latent states of (z_t - x_t)^2, free run from z0",
             "targets": "free run at s = 0" if targets is None else "given",
             "compute_seconds": time.perf_counter() - t0,
             **io.provenance("plrnn_numba.dynamics.gradient_near_bifurcation",
                             {"model": model.describe(), "direction": label, "s_star": s_star, "side": int(side),
                              "distances": eps.tolist(), "n_steps": Ts.tolist()})}
    return xr.Dataset(data, coords=coords, attrs=attrs)


def fitted_slope(distances, values, mask=None) -> float:
    r"""Least-squares slope of :math:`\log v` against :math:`\log \varepsilon` (over ``mask``).

    Parameters
    ----------
    distances : (n,) array
        Distances :math:`\varepsilon > 0`.
    values : (n,) array
        Values :math:`v > 0` (e.g. gradient norms); non-finite logarithms are left out.
    mask : (n,) bool array, optional
        The points to fit (default: all).

    Returns
    -------
    float
        The slope; NaN with fewer than two points.
    """
    x = np.log(np.asarray(distances, dtype=float))
    y = np.log(np.asarray(values, dtype=float))
    keep = np.isfinite(x) & np.isfinite(y)
    if mask is not None:
        keep &= np.asarray(mask, dtype=bool)
    if keep.sum() < 2:
        return float("nan")
    return float(np.polyfit(x[keep], y[keep], 1)[0])
