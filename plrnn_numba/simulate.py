"""Forward simulation of any model (batched), written once over the step kernel."""

from __future__ import annotations

import numpy as np
from numba import types
from numpy.typing import ArrayLike

from . import _validate as V
from . import config
from ._validate import carray
from .models.base import Model, call_step, check_model, check_precision, model_params, signature_for

__all__ = [
    "simulate",
]

_SIM_SIG = types.void(
    types.int64, types.float64[::1], types.int64[::1], types.float64[:, :, ::1], types.float64[:, :, ::1]
)


_SIM_SIGS = {"float64": _SIM_SIG, "float32": signature_for(_SIM_SIG, "float32")}


@config.jit(_SIM_SIG)
def _simulate_kernel(step, p, meta, Z, S):
    # Z[0] holds the initial states; Z[t + 1] = F(Z[t], S[t]); step is a kernel address.
    for t in range(S.shape[0]):
        call_step(step, p, meta, Z[t], S[t], Z[t + 1])


def simulate(
    model: Model,
    theta: ArrayLike,
    z0: ArrayLike,
    n_steps: int | None = None,
    inputs: ArrayLike | None = None,
    *,
    dtype="float64",
) -> np.ndarray:
    """Iterate ``z_t = F(z_{t-1}, s_t)`` from ``z0``, for a batch of initial states at once.

    Parameters
    ----------
    model : Model
        Any plrnn_numba model.
    theta : (P,) array
        Parameters.
    z0 : (M,) or (B, M) array
        Initial state(s).
    n_steps : int, optional
        Number of steps ``T``.  Required for an autonomous model and with a
        constant input vector; with an input stream it is the stream's length
        (and, if given, must agree with it).
    inputs : (K,), (T, K) or (B, T, K) array, optional
        External inputs ``s_1 .. s_T``: a constant vector, a stream shared by
        every initial state, or one stream per initial state (the package's one
        rule for inputs).  Required when the model has inputs.
    dtype : {"float64", "float32"}
        Precision of the run (float32: models whose ``dtypes`` include it, as
        for :func:`~plrnn_numba.loss_and_grad`); the states come back in it.

    Returns
    -------
    (T + 1, M) or (B, T + 1, M) array
        ``z_0 .. z_T``, matching ``z0``.  A diverging run is not an error: its
        states become inf/NaN from the step where they overflow.
    """
    theta = check_model(model).check_theta(theta)
    dtype = check_precision(model, dtype)
    z0 = V.as_state(z0, model.dim, "z0")
    single = z0.ndim == 1
    Z0 = z0[None, :] if single else z0
    B = Z0.shape[0]
    T = _run_length(n_steps, inputs, model.n_inputs)
    s = V.input_stream(inputs, B, T, model.n_inputs, "n_steps steps")
    S = carray(np.transpose(s, (1, 0, 2)), dtype)
    Z = np.empty((T + 1, B, model.dim), dtype)
    Z[0] = Z0
    config.prepare_engines()
    with np.errstate(all="ignore"):
        _simulate_kernel.for_signature(_SIM_SIGS[dtype])(
            model.kernels.addresses(dtype).step, carray(model_params(model, theta), dtype),
            model.meta, Z, S,
        )
    out = np.transpose(Z, (1, 0, 2))
    return carray(out[0] if single else out, dtype)


def _run_length(n_steps, inputs, n_inputs: int) -> int:
    """Number of steps of a run: ``n_steps``, or the length of an input stream (which must agree)."""
    if inputs is None or np.ndim(inputs) < 2:
        if n_steps is None:
            if inputs is None and n_inputs:
                raise ValueError(
                    f"inputs are required: the model has {n_inputs} inputs (shape ({n_inputs},) with n_steps, "
                    f"(T, {n_inputs}) or (B, T, {n_inputs}))"
                )
            what = "an autonomous run" if inputs is None else "a constant input vector"
            raise ValueError(f"give n_steps for {what}, or inputs as a stream of shape (T, K) or (B, T, K)")
        return V.positive_int(n_steps, "n_steps", minimum=0)
    T = int(np.shape(inputs)[-2])
    if n_steps is not None and V.positive_int(n_steps, "n_steps", minimum=0) != T:
        raise ValueError(f"n_steps={n_steps} disagrees with inputs of length {T}; drop n_steps or fix inputs")
    return T
