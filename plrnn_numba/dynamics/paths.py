r"""Parameter paths: directions in parameter space, path positions, training histories as paths.

A path is :math:`\theta(s) = \theta_0 + s\, d`, with ``d`` a direction vector,
a unit vector named after one parameter (``"A[0]"``, ``"W[0,1]"``, ``"h[1]"``:
the labels of ``model.param_names()``) or a mapping ``{name: coefficient}``;
or a training run, where ``s`` is the epoch and :math:`\theta(s)` interpolates
the parameter snapshots of the history linearly between consecutive snapshot
epochs.  Used by the bifurcation analyses and the orbit diagrams.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

import numpy as np
import xarray as xr

from .. import _validate as V
from ..models.base import Model, check_model
from ..models.piecewise import PiecewiseLinear, as_piecewise_linear

__all__ = ["parameter_direction", "path_positions", "history_snapshots", "ParameterPath", "MapAlongPath"]


def _normalise_name(name: str) -> str:
    return "".join(name.split())


def parameter_direction(model: Model, direction, name: str = "direction") -> tuple[np.ndarray, str]:
    r"""Direction vector ``d`` in parameter space, and a label for it.

    Parameters
    ----------
    model : Model
        The model whose ``theta`` the direction lives in.
    direction : str, mapping or (P,) array
        A parameter label from ``model.param_names()`` (``"A[0]"``, ``"W[0,1]"``,
        ``"h[1]"``; spaces are ignored), giving the unit vector :math:`e_i`; a
        mapping ``{label: coefficient}``, giving :math:`\sum c_i e_i`; or a
        vector of length ``model.n_params``.
    name : str
        The argument's name in error messages (e.g. ``"param_x"``).

    Returns
    -------
    d : (P,) array
        The direction.
    label : str
        The name (for a single parameter), ``"a*A[0] + b*W[0,1]"`` for a mapping,
        or ``"direction"`` for a vector.

    Raises
    ------
    ValueError
        Unknown parameter name, wrong length, non-finite or all-zero vector.
    TypeError
        Anything else.
    """
    names = check_model(model).param_names()
    index = {_normalise_name(n): i for i, n in enumerate(names)}

    arg = name

    def lookup(label) -> int:
        if not isinstance(label, str):
            raise TypeError(f"{arg}: parameter names must be strings; got {type(label).__name__}")
        key = _normalise_name(label)
        if key not in index:
            hint = model.unknown_param_hint(key)
            shown = names if len(names) <= 24 else names[:24] + ["..."]
            raise ValueError(f"{arg}: unknown parameter name {label!r} for {model!r}{hint}; valid names: {shown}")
        return index[key]

    d = np.zeros(model.n_params)
    if isinstance(direction, str):
        d[lookup(direction)] = 1.0
        return d, direction
    if isinstance(direction, Mapping):
        if not direction:
            raise ValueError(f"{arg}: the mapping {{name: coefficient}} is empty")
        parts = []
        for label, coef in direction.items():
            c = V.finite_float(coef, f"{arg}[{label!r}]")
            d[lookup(label)] += c
            parts.append(f"{c:g}*{label}")
        if not np.any(d):
            raise ValueError(f"{arg}: all coefficients are zero")
        return d, " + ".join(parts)
    arr = V.as_float_array(direction, arg)
    if arr.shape != (model.n_params,):
        raise ValueError(
            f"{arg} must be a parameter name, a {{name: coefficient}} mapping or a vector of length "
            f"{model.n_params} (model.n_params); got shape {arr.shape}"
        )
    V.check_finite(arr, arg)
    if not np.any(arr):
        raise ValueError(f"{arg} must not be the zero vector")
    return arr.copy(), "direction"


def path_positions(s_values, name: str = "s_values") -> np.ndarray:
    """Path positions: a finite, strictly increasing 1-D array (a copy)."""
    s = V.as_float_array(s_values, name)
    if s.ndim != 1:
        raise ValueError(f"{name} must be a 1-D array of path positions; got shape {s.shape}")
    if s.size < 1:
        raise ValueError(f"{name} must hold at least one value")
    V.check_finite(s, name)
    if s.size > 1 and not np.all(np.diff(s) > 0):
        raise ValueError(f"{name} must be strictly increasing (sort them and drop duplicates)")
    return s.copy()


def history_snapshots(model: Model, history) -> tuple[np.ndarray, np.ndarray]:
    """(epochs, snapshots) of a training history, checked; duplicate epochs keep the last snapshot."""
    if not isinstance(history, xr.Dataset):
        raise TypeError(
            f"history must be the xarray.Dataset returned by plrnn_numba.train; got {type(history).__name__}"
        )
    for var in ("theta_snapshots", "snapshot_epoch"):
        if var not in history.variables:
            raise ValueError(f"history has no {var!r}: pass the Dataset returned by plrnn_numba.train")
    snaps = V.as_float_array(history["theta_snapshots"].values, "history['theta_snapshots']")
    epochs = V.as_float_array(history["snapshot_epoch"].values, "history['snapshot_epoch']")
    recorded = history.attrs.get("model")
    if recorded is not None:
        try:
            recorded = json.loads(recorded) if isinstance(recorded, str) else dict(recorded)
        except (ValueError, TypeError):
            recorded = None
    if isinstance(recorded, dict) and recorded != model.describe():
        raise ValueError(
            f"history was recorded for the model {recorded}, not for {model!r}: pass the model that was trained"
        )
    if snaps.ndim != 2 or snaps.shape[1] != model.n_params:
        raise ValueError(
            f"history['theta_snapshots'] must have shape (snapshot, {model.n_params}) for {model!r}; got {snaps.shape}"
        )
    if epochs.shape != (snaps.shape[0],):
        raise ValueError("history['snapshot_epoch'] must have one epoch per snapshot")
    if snaps.shape[0] < 1:
        raise ValueError("history holds no parameter snapshots")
    V.check_finite(snaps, "history['theta_snapshots']")
    order = np.argsort(epochs, kind="stable")
    epochs, snaps = epochs[order], snaps[order]
    keep = np.append(np.diff(epochs) > 0, True)  # last of equal epochs
    return epochs[keep].copy(), np.ascontiguousarray(snaps[keep])


class ParameterPath:
    r"""``theta(s)``: ``theta0 + s d`` or the piecewise-linear interpolation of snapshots ``(s_k, theta_k)``."""

    def __init__(self, theta0=None, d=None, knots=None, thetas=None):
        self.theta0, self.d, self.knots, self.thetas = theta0, d, knots, thetas

    def theta(self, s: float) -> np.ndarray:
        """The parameters at ``s`` (outside the knots: the end snapshots)."""
        if self.knots is None:
            return self.theta0 + s * self.d
        i, w = self.segment(s)
        if w == 0.0:
            return self.thetas[i].copy()
        return (1.0 - w) * self.thetas[i] + w * self.thetas[i + 1]

    def segment(self, s: float) -> tuple[int, float]:
        """``(i, w)``: ``theta(s) = (1 - w) thetas[i] + w thetas[i + 1]``."""
        kn = self.knots
        if kn.size == 1:
            return 0, 0.0
        i = int(np.clip(np.searchsorted(kn, s, side="right") - 1, 0, kn.size - 2))
        w = (s - kn[i]) / (kn[i + 1] - kn[i])
        if w == 1.0:
            return i + 1, 0.0
        return i, float(w)


class MapAlongPath:
    """The piecewise-linear map along a path: ``model.piecewise_linear(theta(s), inputs)`` at any ``s``.

    The region maps are recomputed from the interpolated parameters at every
    ``s``; nothing assumes they are linear in ``theta`` (they are not, e.g., for
    factorised weights ``W = M N^T``).
    """

    def __init__(self, model: Model, path: ParameterPath, inputs):
        self.model, self.path, self.inputs = model, path, inputs
        self.dim = model.dim
        first = path.theta0 if path.knots is None else path.thetas[0]
        self.description = as_piecewise_linear(model, first, inputs).description

    def at(self, s: float) -> PiecewiseLinear:
        return self.model.piecewise_linear(self.path.theta(s), self.inputs)
