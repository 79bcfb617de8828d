r"""Constraints applied after every optimiser step (:class:`~plrnn_numba.training.Projection` hooks).

The stable LSTM
---------------
Miller and Hardt (2019), "Stable recurrent models", keep an LSTM contractive
by projecting its weights after each gradient step; Ribeiro et al. (2020),
"Beyond exploding and vanishing gradients: analysing RNN training using
attractors and smoothness", train their stable LSTM (sLSTM) that way.  Every
column of each recurrent gate block (the weights from one hidden unit into
the gate) is held to a fixed L1 norm,

.. math::

    \|W_{h\star}[:, j]\|_1 \le \beta_\star, \qquad
    (\beta_i, \beta_f, \beta_g, \beta_o) = (0.395, 0.155, 0.099, 0.395),

and every column of the forget gate's input weights to
:math:`\|W_{if}[:, k]\|_1 \le 0.25`.  With ``mode="cap"`` (default) a column
whose norm exceeds its bound is scaled down onto it and the others are left
alone: the Euclidean-free projection onto the product of L1 balls in the
sense of rescaling (idempotent, and the identity inside the set).  With
``mode="set"`` every non-zero column is rescaled to exactly its bound.
"""

from __future__ import annotations

import numpy as np

from .. import _validate as V
from .hooks import Projection

__all__ = ["STABLE_LSTM_NORMS", "STABLE_LSTM_FORGET_INPUT_NORM", "stable_lstm_projection", "project_columns_l1"]

#: L1 bounds of the columns of the recurrent gate blocks W_hi, W_hf, W_hg, W_ho of the stable LSTM
STABLE_LSTM_NORMS = {"i": 0.395, "f": 0.155, "g": 0.099, "o": 0.395}
#: L1 bound of the columns of the forget gate's input weights W_if
STABLE_LSTM_FORGET_INPUT_NORM = 0.25
_MODES = ("cap", "set")


def project_columns_l1(W: np.ndarray, bound: float, mode: str = "cap") -> None:
    r"""Rescale the columns of ``W`` in place to L1 norm at most (``"cap"``) or exactly (``"set"``) ``bound``.

    .. math:: W[:, j] \leftarrow W[:, j] \cdot \min\bigl(1, \beta / \|W[:, j]\|_1\bigr) \quad (\text{cap})
    """
    norms = np.abs(W).sum(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        scale = np.where(norms > 0, bound / norms, 1.0)
    if mode == "cap":
        scale = np.minimum(scale, 1.0)
    W *= scale[None, :]


def stable_lstm_projection(model, *, norms: dict | None = None,
                           forget_input_norm: float = STABLE_LSTM_FORGET_INPUT_NORM, mode: str = "cap",
                           at_start: bool = True) -> Projection:
    """The stable-LSTM constraint of Miller and Hardt (2019) as a training hook (module docstring).

    Parameters
    ----------
    model : LSTM
        The model whose parameters will be trained (for the layout).
    norms : dict, optional
        L1 bounds per gate ``{"i", "f", "g", "o"}`` (default :data:`STABLE_LSTM_NORMS`).
    forget_input_norm : float
        L1 bound of the columns of ``W_if`` (default 0.25).
    mode : {"cap", "set"}
        Scale only the columns above their bound (default), or every column to it.
    at_start : bool
        Project the initial parameters too (default True).

    Returns
    -------
    Projection
        Pass it as ``plrnn_numba.train(..., hooks=...)``.

    Examples
    --------
    >>> import plrnn_numba as pn
    >>> model = pn.LSTM(8, n_inputs=1)
    >>> hook = stable_lstm_projection(model)
    >>> theta = model.init(0)
    >>> hook.project(theta, model)
    >>> bool(abs(model.unpack(theta)["weight_hh"][8:16]).sum(axis=0).max() <= 0.155 + 1e-12)
    True
    """
    from ..models.lstm import LSTM

    if not isinstance(model, LSTM):
        raise TypeError(f"model must be a plrnn_numba.LSTM (the stable-LSTM constraint is on its gate blocks); got "
                        f"{type(model).__name__}")
    bounds = dict(STABLE_LSTM_NORMS)
    if norms is not None:
        if not isinstance(norms, dict) or not set(norms) <= set(bounds):
            raise ValueError(f"norms must be a dict with keys among {sorted(bounds)}; got {norms!r}")
        bounds.update(norms)
    for gate, b in bounds.items():
        bounds[gate] = V.finite_float(b, f"norms[{gate!r}]", low=0.0)
    forget_input_norm = V.finite_float(forget_input_norm, "forget_input_norm", low=0.0)
    mode = V.choice(mode, "mode", _MODES)
    N, K = model.n_hidden, model.n_inputs
    sl = model.param_slices()
    hh, ih = sl["weight_hh"], sl["weight_ih"]

    def project(theta, _model):
        W_hh = theta[hh].reshape(4 * N, N)  # a view: rows are gate blocks i, f, g, o
        for q, gate in enumerate("ifgo"):
            project_columns_l1(W_hh[q * N:(q + 1) * N], bounds[gate], mode)
        if K:
            W_ih = theta[ih].reshape(4 * N, K)
            project_columns_l1(W_ih[N:2 * N], forget_input_norm, mode)

    project.__qualname__ = f"stable_lstm_projection(norms={bounds}, forget_input_norm={forget_input_norm}, mode={mode})"
    return Projection(project, at_start=at_start, name=project.__qualname__)
