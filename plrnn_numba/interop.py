r"""Import single-layer PyTorch RNNs and LSTMs (and export RNNs back), with the change of coordinates.

PyTorch is an optional dependency (``pip install plrnn_numba[torch]``); it is
imported inside the functions that need it, so the package imports without it.

Two coordinate systems
----------------------
``torch.nn.RNN`` (one layer) iterates its hidden state in *post-activation*
coordinates,

.. math::

    h_t = \phi(W_{ih} x_t + b_{ih} + W_{hh} h_{t-1} + b_{hh}),
    \qquad \phi \in \{\tanh, \mathrm{relu}\},

while :class:`plrnn_numba.VanillaRNN` iterates *pre-activation* coordinates,

.. math::

    z_t = W \phi(z_{t-1}) + V s_t + b .

Let :math:`z_t := W_{ih} x_t + W_{hh} h_{t-1} + b_{ih} + b_{hh}` be torch's
pre-activation at step t.  Then :math:`h_t = \phi(z_t)`, and substituting
:math:`h_{t-1} = \phi(z_{t-1})`,

.. math::

    z_t = W_{hh}\, \phi(z_{t-1}) + W_{ih} x_t + (b_{ih} + b_{hh}),

which is the package's map with

.. math::

    W = W_{hh}, \qquad V = W_{ih}, \qquad b = b_{ih} + b_{hh}, \qquad s_t = x_t

(the same input index t: the input that produces torch's :math:`h_t` produces
the package's :math:`z_t`).  Only the sum of the two torch biases matters for
the dynamics, so :func:`to_torch` puts all of ``b`` into ``bias_ih`` and sets
``bias_hh`` to zero.

Moving between the coordinates
------------------------------
* package -> torch: :math:`h = \phi(z)`, elementwise (:func:`to_torch_states`);
* torch -> package, the state *after* a step: given torch's previous hidden
  state :math:`h_{t-1}` and the input :math:`x_t`, the package state whose image
  is torch's next hidden state is :math:`z_t = W_{hh} h_{t-1} + W_{ih} x_t + b`
  (:func:`from_torch_state`; exact, no inverse of :math:`\phi` needed);
* torch -> package, an initial state: a :math:`z_0` with :math:`\phi(z_0) = h_0`
  (:func:`from_torch_initial_state`): :math:`z_0 = h_0` for relu (any state with
  the same positive part would do; relu states are never negative) and
  :math:`z_0 = \operatorname{artanh}(h_0)` for tanh (needs :math:`|h_0| < 1`).

Then the package's run from :math:`z_0` with inputs :math:`x_1, \dots, x_T` gives
:math:`z_1, \dots, z_T`, and :math:`\phi(z_t)` is torch's output :math:`h_t`.

LSTMs
-----
A single-layer ``torch.nn.LSTM`` (or ``nn.LSTMCell``) imports as
:class:`plrnn_numba.LSTM` with the same parameters (``weight_ih``,
``weight_hh``, ``bias_ih``, ``bias_hh``, gate order i, f, g, o) and the same
coordinates: the package state is ``z = (h, c)``, torch's hidden and cell
states concatenated, so ``z_0 = (h_0[0], c_0[0])`` with inputs
:math:`x_1, \dots, x_T` gives ``z_t = (h_t, c_t)``; no change of coordinates.

Fixed points and cycles
-----------------------
With a constant input :math:`s` the two maps are
:math:`F(z) = W\phi(z) + Vs + b` (package) and
:math:`G(h) = \phi(W_{ih} s + W_{hh} h + b)` (torch); they are conjugate through
:math:`\phi`: :math:`G(\phi(z)) = \phi(F(z))`.  Hence a k-cycle
:math:`z_1, \dots, z_k` of F maps to the k-cycle :math:`\phi(z_1), \dots,
\phi(z_k)` of G (with the same minimal period: :math:`\phi(z_i) = \phi(z_j)`
would give :math:`z_{i+1} = z_{j+1}`), and every cycle of G arises this way
(:math:`z_{j+1} = W_{hh} h_j + W_{ih} s + b` maps a cycle of G to one of F).
Writing :math:`D_j = \phi'(z_j)` (diagonal), the cycle Jacobians are

.. math::

    \text{package: } (W D_k) \cdots (W D_2)(W D_1) = Y X, \qquad
    \text{torch, from } h_1: (D_1 W)(D_k W) \cdots (D_2 W) = X Y,

with :math:`X = D_1` and :math:`Y = W D_k W \cdots D_2 W`: a cyclic exchange of
the factors.  :math:`XY` and :math:`YX` have the same characteristic
polynomial, so both have the same eigenvalues and the same stability class;
when :math:`D_1` is invertible (tanh always; relu when no unit of
:math:`z_1` is off) they are similar, :math:`XY = X (YX) X^{-1}`.  So the
output of :func:`plrnn_numba.dynamics.scyfi` for the imported model (relu:
the imported map is piecewise linear) describes the torch network after
:func:`to_torch_states` of its ``points``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from . import _validate as V
from .models.lstm import LSTM
from .models.vanilla import VanillaRNN

if TYPE_CHECKING:  # pragma: no cover - typing only
    import torch
    import xarray as xr

__all__ = [
    "from_torch",
    "to_torch",
    "to_torch_states",
    "from_torch_state",
    "from_torch_initial_state",
]

_INSTALL_HINT = "pip install plrnn_numba[torch]"


def _import_torch():
    """PyTorch, or an ImportError that says how to install it."""
    try:
        import torch
    except ImportError as exc:
        raise ImportError(
            f"plrnn_numba.interop needs PyTorch, an optional dependency: {_INSTALL_HINT} (or pip install torch)"
        ) from exc
    return torch


def _numpy64(tensor: Any) -> np.ndarray:
    """A float64 NumPy copy of a tensor wherever it lives (GPU, requires_grad, float32)."""
    # detach first: numpy() refuses tensors that require grad; copy: numpy() shares memory
    return np.array(tensor.detach().cpu().double().numpy())


def _as_array(x: Any, name: str) -> np.ndarray:
    """Array-like or torch tensor -> float64 NumPy array."""
    if hasattr(x, "detach") and hasattr(x, "numpy"):  # a torch tensor; np.asarray fails on requires_grad
        x = _numpy64(x)
    return V.as_float_array(x, name)


def _check_model(model: Any) -> VanillaRNN:
    if not isinstance(model, VanillaRNN):
        raise TypeError(
            f"model must be a plrnn_numba.VanillaRNN (the family torch.nn.RNN maps to); got {type(model).__name__}"
        )
    return model


def _phi(model: VanillaRNN, z: np.ndarray) -> np.ndarray:
    if model.nonlinearity == "tanh":
        return np.tanh(z)
    # np.maximum keeps NaN (the padding of SCYFI's points beyond a cycle's order)
    return np.maximum(z, 0.0)


# ---------------------------------------------------------------------------- modules
def from_torch(module: torch.nn.Module) -> tuple[VanillaRNN | LSTM, np.ndarray]:
    r"""The package model and parameters with the dynamics of a single-layer torch RNN or LSTM.

    Parameters
    ----------
    module : torch.nn.RNN, torch.nn.RNNCell, torch.nn.LSTM or torch.nn.LSTMCell
        ``nn.RNN`` with ``num_layers=1``, ``bidirectional=False``, nonlinearity
        ``"tanh"`` or ``"relu"``, with or without biases, any ``batch_first``
        (it only orders the input and output axes); or an ``nn.RNNCell``; or an
        ``nn.LSTM`` with ``num_layers=1``, ``bidirectional=False``,
        ``proj_size=0`` (any ``batch_first``, with or without biases; dropout
        acts only between layers and is irrelevant), or an ``nn.LSTMCell``.
        Parameters of any dtype or device are copied as float64.

    Returns
    -------
    model : VanillaRNN or LSTM
        ``VanillaRNN(n_hidden=hidden_size, n_inputs=input_size, nonlinearity)``
        for an RNN; ``LSTM(n_hidden=hidden_size, n_inputs=input_size, bias)``
        for an LSTM.
    theta : float64 array
        RNN: ``W = weight_hh``, ``V = weight_ih``, ``b = bias_ih + bias_hh``
        (zero without biases).  LSTM: torch's parameters in its order,
        ``weight_ih | weight_hh | bias_ih | bias_hh``; the states are the same,
        ``z = (h, c)``.

    Raises
    ------
    TypeError
        If ``module`` is not a torch module, or is another recurrent layer
        (GRU) or any other module.
    ValueError
        For ``num_layers != 1``, ``bidirectional=True``, ``proj_size > 0``, an
        unknown nonlinearity or non-finite parameters.
    ImportError
        Without PyTorch.

    Notes
    -----
    The package's state is torch's pre-activation,
    :math:`z_t = W_{hh} h_{t-1} + W_{ih} x_t + b_{ih} + b_{hh}`, so that
    :math:`h_t = \phi(z_t)` (see the module docstring).  Map states with
    :func:`to_torch_states`, :func:`from_torch_state` and
    :func:`from_torch_initial_state`.

    Examples
    --------
    >>> rnn = torch.nn.RNN(2, 8, nonlinearity="relu", batch_first=True)  # doctest: +SKIP
    >>> model, theta = from_torch(rnn)                                    # doctest: +SKIP
    >>> model.unpack(theta)["W"].shape                                    # doctest: +SKIP
    (8, 8)
    """
    torch = _import_torch()
    nn = torch.nn
    if not isinstance(module, nn.Module):
        raise TypeError(f"from_torch expects a torch.nn.RNN or torch.nn.RNNCell module; got {type(module).__name__}")
    if isinstance(module, (nn.LSTM, nn.LSTMCell)):
        return _lstm_from_torch(module)
    if isinstance(module, nn.RNN):
        if module.num_layers != 1:
            raise ValueError(
                f"from_torch imports single-layer RNNs; got num_layers={module.num_layers} "
                "(a stacked RNN is not a VanillaRNN: import each layer as its own torch.nn.RNN)"
            )
        if module.bidirectional:
            raise ValueError(
                "from_torch cannot import a bidirectional RNN (bidirectional=True): its backward "
                "direction runs over the sequence in reverse and is not one recurrent map"
            )
        if getattr(module, "proj_size", 0):
            raise ValueError(f"from_torch cannot import an RNN with proj_size={module.proj_size}")
        names = ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0")
    elif isinstance(module, nn.RNNCell):
        names = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
    elif isinstance(module, (nn.RNNBase, nn.RNNCellBase)):
        raise TypeError(
            f"from_torch imports vanilla RNNs (torch.nn.RNN, torch.nn.RNNCell) and LSTMs (torch.nn.LSTM, "
            f"torch.nn.LSTMCell); got {type(module).__name__}, which has no model in plrnn_numba"
        )
    else:
        raise TypeError(f"from_torch expects a torch.nn.RNN or torch.nn.RNNCell module; got {type(module).__name__}")
    nonlinearity = getattr(module, "nonlinearity", None)
    if nonlinearity not in ("tanh", "relu"):
        raise ValueError(f"nonlinearity must be 'tanh' or 'relu'; the module has {nonlinearity!r}")

    W_ih = _numpy64(getattr(module, names[0]))
    W_hh = _numpy64(getattr(module, names[1]))
    N, K = W_hh.shape[0], W_ih.shape[1]
    b = np.zeros(N)
    for name in names[2:]:
        # without biases torch keeps the attributes, set to None
        bias = getattr(module, name, None)
        if bias is not None:
            b = b + _numpy64(bias)
    model = VanillaRNN(n_hidden=N, n_inputs=K, nonlinearity=nonlinearity)
    # pack validates shapes and finiteness with messages naming W, V or b
    theta = model.pack(W=W_hh, V=W_ih, b=b)
    return model, theta


def _lstm_from_torch(module) -> tuple[LSTM, np.ndarray]:
    """:func:`from_torch` for ``torch.nn.LSTM`` and ``torch.nn.LSTMCell``."""
    torch = _import_torch()
    if isinstance(module, torch.nn.LSTM):
        if module.num_layers != 1:
            raise ValueError(
                f"from_torch imports single-layer LSTMs; got num_layers={module.num_layers} "
                "(a stacked LSTM is not one LSTM map: import each layer as its own torch.nn.LSTM)"
            )
        if module.bidirectional:
            raise ValueError(
                "from_torch cannot import a bidirectional LSTM (bidirectional=True): its backward "
                "direction runs over the sequence in reverse and is not one recurrent map"
            )
        if getattr(module, "proj_size", 0):
            raise ValueError(
                f"from_torch cannot import an LSTM with proj_size={module.proj_size} "
                "(its hidden state is a projection of o * tanh(c); plrnn_numba.LSTM has proj_size=0)"
            )
        names = ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0")
    else:
        names = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
    W_ih = _numpy64(getattr(module, names[0]))
    W_hh = _numpy64(getattr(module, names[1]))
    N, K = W_hh.shape[1], W_ih.shape[1]
    has_bias = bool(module.bias)
    model = LSTM(n_hidden=N, n_inputs=K, bias=has_bias)
    params = {"weight_ih": W_ih, "weight_hh": W_hh}
    if has_bias:
        params.update(bias_ih=_numpy64(getattr(module, names[2])), bias_hh=_numpy64(getattr(module, names[3])))
    # pack validates shapes and finiteness with messages naming the parameter
    return model, model.pack(**params)


def to_torch(
    model: VanillaRNN,
    theta: np.ndarray,
    *,
    batch_first: bool = False,
    bias: bool = True,
    dtype: torch.dtype | None = None,
) -> torch.nn.RNN:
    r"""A single-layer ``torch.nn.RNN`` with the dynamics of a VanillaRNN.

    The inverse of :func:`from_torch`: ``weight_hh = W``, ``weight_ih = V``,
    ``bias_ih = b``, ``bias_hh = 0`` (only the sum of the biases enters the map).
    ``from_torch(to_torch(model, theta))`` returns ``theta`` exactly.

    Parameters
    ----------
    model : VanillaRNN
        With at least one input (``torch.nn.RNN`` needs ``input_size >= 1``).
    theta : (P,) array
        Its parameter vector.
    batch_first : bool
        Passed to ``torch.nn.RNN``.
    bias : bool
        Build the module with biases (default).  ``bias=False`` needs ``b = 0``.
    dtype : torch.dtype, optional
        Parameter dtype; default ``torch.float64`` (float32 would round ``theta``).

    Returns
    -------
    torch.nn.RNN
        On the CPU, in evaluation mode, parameters with ``requires_grad=True``.

    Raises
    ------
    TypeError
        If ``model`` is not a VanillaRNN.
    ValueError
        For a model without inputs, a bad ``theta``, or ``bias=False`` with
        ``b != 0``.
    ImportError
        Without PyTorch.
    """
    torch = _import_torch()
    model = _check_model(model)
    theta = model.check_theta(theta)
    if model.n_inputs < 1:
        raise ValueError(
            "torch.nn.RNN needs input_size >= 1, but the model has no inputs; build "
            "VanillaRNN(n_hidden, 1, nonlinearity) with V = 0 and feed zero inputs"
        )
    p = model.unpack(theta)
    if not bias and np.any(p["b"] != 0.0):
        raise ValueError("bias=False needs b = 0; the model's b is nonzero (use bias=True)")
    dtype = torch.float64 if dtype is None else dtype
    module = torch.nn.RNN(
        model.n_inputs,
        model.n_hidden,
        num_layers=1,
        nonlinearity=model.nonlinearity,
        bias=bool(bias),
        batch_first=bool(batch_first),
        dtype=dtype,
    )
    with torch.no_grad():
        module.weight_hh_l0.copy_(torch.from_numpy(np.ascontiguousarray(p["W"])))
        module.weight_ih_l0.copy_(torch.from_numpy(np.ascontiguousarray(p["V"])))
        if bias:
            module.bias_ih_l0.copy_(torch.from_numpy(np.ascontiguousarray(p["b"])))
            module.bias_hh_l0.zero_()
    return module.eval()


# ---------------------------------------------------------------------------- states
def to_torch_states(model: VanillaRNN, Z: np.ndarray | xr.DataArray) -> np.ndarray | xr.DataArray:
    r"""Torch hidden states :math:`h = \phi(z)` of package states.

    Parameters
    ----------
    model : VanillaRNN
        Gives :math:`\phi`.
    Z : (..., N) array or xarray.DataArray
        Package (pre-activation) states: a trajectory from ``model.simulate``,
        or cycle points (SCYFI's ``points``, NaN beyond a cycle's order stays
        NaN).

    Returns
    -------
    (..., N) array or xarray.DataArray
        :math:`\phi(Z)`, elementwise; a DataArray keeps its dims and coords.

    Notes
    -----
    A trajectory :math:`z_0, z_1, \dots` of the package maps to torch's hidden
    states :math:`h_t = \phi(z_t)` for the same inputs.  With a constant input
    :math:`s`, a k-cycle :math:`z_1, \dots, z_k` of
    :math:`F(z) = W\phi(z) + Vs + b` maps to the k-cycle
    :math:`\phi(z_1), \dots, \phi(z_k)` of torch's map
    :math:`h \mapsto \phi(W_{ih} s + W_{hh} h + b_{ih} + b_{hh})` (same minimal
    period).  Its cycle Jacobian from :math:`\phi(z_1)` is the package's cycle
    Jacobian with its factors cyclically exchanged (:math:`XY` versus
    :math:`YX`, :math:`X = \phi'(z_1)`), so the eigenvalues and the stability
    class are the same; the two matrices are similar,
    :math:`XY = X(YX)X^{-1}`, whenever :math:`\phi'(z_1)` is invertible.
    """
    model = _check_model(model)
    try:
        import xarray as xr
    except ImportError:  # pragma: no cover - xarray is a dependency
        xr = None
    if xr is not None and isinstance(Z, xr.DataArray):
        out = Z.copy(data=_phi(model, V.as_float_array(Z.values, "Z")))
        out.attrs = {**Z.attrs, "long_name": f"torch hidden states {model.nonlinearity}(z)", "units": "1"}
        return out
    Z = _as_array(Z, "Z")
    if Z.ndim == 0 or Z.shape[-1] != model.n_hidden:
        raise ValueError(f"Z must have shape (..., {model.n_hidden}); got {Z.shape}")
    return _phi(model, Z)


def from_torch_state(model: VanillaRNN, theta: np.ndarray, h_prev: Any, x: Any = None) -> np.ndarray:
    r"""Package state :math:`z = W_{hh} h_{prev} + W_{ih} x + b` whose image is torch's next hidden state.

    For torch's hidden state :math:`h_{t-1}` and input :math:`x_t`, torch's next
    hidden state is :math:`h_t = \phi(z_t)` with the returned :math:`z_t`, and
    the package continues from :math:`z_t` with the inputs
    :math:`x_{t+1}, x_{t+2}, \dots`.  Unlike :func:`from_torch_initial_state`
    this needs no inverse of :math:`\phi`, so it also works for saturated tanh
    states (:math:`|h| = 1` in floating point).

    Parameters
    ----------
    model : VanillaRNN
        The imported model (:func:`from_torch`).
    theta : (P,) array
        Its parameters.
    h_prev : (..., N) array_like or tensor
        Torch hidden state(s) :math:`h_{t-1}`.
    x : (..., K) array_like or tensor, optional
        Input(s) :math:`x_t`, broadcast against ``h_prev``; required when K > 0.

    Returns
    -------
    (..., N) float64 array
        :math:`z_t`.
    """
    model = _check_model(model)
    p = model.unpack(theta)
    N, K = model.n_hidden, model.n_inputs
    h = _as_array(h_prev, "h_prev")
    if h.ndim == 0 or h.shape[-1] != N:
        raise ValueError(f"h_prev must have shape (..., {N}); got {h.shape}")
    V.check_finite(h, "h_prev")
    z = h @ p["W"].T + p["b"]
    if K:
        if x is None:
            raise ValueError(f"x is required: the model has {K} inputs (shape (..., {K}))")
        xa = _as_array(x, "x")
        if xa.ndim == 0 or xa.shape[-1] != K:
            raise ValueError(f"x must have shape (..., {K}); got {xa.shape}")
        V.check_finite(xa, "x")
        z = z + xa @ p["V"].T
    elif x is not None and _as_array(x, "x").size:
        raise ValueError("the model has no inputs; pass x=None")
    return z


def from_torch_initial_state(model: VanillaRNN, h0: Any) -> np.ndarray:
    r"""A package initial state :math:`z_0` with :math:`\phi(z_0) = h_0`.

    relu: :math:`z_0 = h_0` (a relu hidden state is never negative; any
    :math:`z_0` with the same positive part maps to the same :math:`h_0`, and
    this one is the simplest).  tanh: :math:`z_0 = \operatorname{artanh}(h_0)`.
    The package run from :math:`z_0` with torch's inputs :math:`x_1, \dots`
    then gives :math:`\phi(z_t) = h_t` (torch's outputs).

    Parameters
    ----------
    model : VanillaRNN
        Gives :math:`\phi`.
    h0 : (..., N) array_like or tensor
        Torch initial hidden state(s), e.g. ``h0[0]`` of torch's
        ``(num_layers=1, B, N)`` tensor (shapes are kept, so the full tensor
        works too); torch's default is zero, which maps to :math:`z_0 = 0`.

    Returns
    -------
    (..., N) float64 array
        :math:`z_0`.

    Raises
    ------
    ValueError
        relu: if some entry of ``h0`` is negative (no relu state is).
        tanh: if some :math:`|h_0| \ge 1`: tanh states of pre-activations
        beyond about 19 round to exactly ±1 in float64 and have no finite
        preimage; start one step later with :func:`from_torch_state` instead.

    Notes
    -----
    artanh is ill-conditioned near ±1, but only in the direction that does not
    matter here: :math:`\tanh(\operatorname{artanh}(h_0))` returns :math:`h_0`
    to rounding.
    """
    model = _check_model(model)
    h = _as_array(h0, "h0")
    if h.ndim == 0 or h.shape[-1] != model.n_hidden:
        raise ValueError(f"h0 must have shape (..., {model.n_hidden}); got {h.shape}")
    V.check_finite(h, "h0")
    if model.nonlinearity == "relu":
        if np.any(h < 0.0):
            raise ValueError(
                f"h0 has negative entries (min {h.min():.3g}), which no relu hidden state has; "
                "pass a state of the relu network (h0 >= 0)"
            )
        return h.copy()
    if np.any(np.abs(h) >= 1.0):
        raise ValueError(
            "h0 has entries with |h0| >= 1, which have no finite tanh preimage (saturated units round to "
            "exactly +-1); start one step later: z_1 = from_torch_state(model, theta, h0, x_1)"
        )
    return np.arctanh(h)
