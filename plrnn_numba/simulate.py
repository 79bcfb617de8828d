"""Forward simulation of any model (batched), written once over the step kernel."""

from __future__ import annotations

import numpy as np
from numba import types

from . import _validate as V
from . import config
from ._validate import carray
from .models.base import call_step, model_params

_SIM_SIG = types.void(
    types.int64, types.float64[::1], types.int64[::1], types.float64[:, :, ::1], types.float64[:, :, ::1]
)


@config.jit(_SIM_SIG)
def _simulate_kernel(step, p, meta, Z, S):
    # Z[0] holds the initial states; Z[t + 1] = F(Z[t], S[t]); step is a kernel address.
    for t in range(S.shape[0]):
        call_step(step, p, meta, Z[t], S[t], Z[t + 1])


def simulate(model, theta, z0, n_steps: int | None = None, inputs=None) -> np.ndarray:
    """Iterate ``model`` from ``z0``; see :meth:`plrnn_numba.models.Model.simulate`."""
    theta = model.check_theta(theta)
    z0 = V.as_state(z0, model.dim, "z0")
    single = z0.ndim == 1
    Z0 = z0[None, :] if single else z0
    B = Z0.shape[0]
    K = model.n_inputs
    if inputs is None:
        if K:
            raise ValueError(f"inputs are required: the model has {K} inputs (shape (T, {K}) or (B, T, {K}))")
        if n_steps is None:
            raise ValueError("give n_steps (autonomous run) or inputs")
        T = V.positive_int(n_steps, "n_steps", minimum=0)
        S = np.zeros((T, B, 0))
    else:
        s = V.as_float_array(inputs, "inputs")
        if s.ndim == 2:
            s = np.broadcast_to(s[None], (B,) + s.shape)
        if s.ndim != 3 or s.shape[0] != B or s.shape[2] != K:
            raise ValueError(f"inputs must have shape (T, {K}) or ({B}, T, {K}); got {np.shape(inputs)}")
        V.check_finite(s, "inputs")
        if n_steps is not None and n_steps != s.shape[1]:
            raise ValueError(f"n_steps={n_steps} disagrees with inputs of length {s.shape[1]}")
        T = s.shape[1]
        S = carray(np.transpose(s, (1, 0, 2)))
    Z = np.empty((T + 1, B, model.dim))
    Z[0] = Z0
    config.prepare_engines()
    with np.errstate(all="ignore"):
        _simulate_kernel(model.kernels.addresses().step, model_params(model, theta), model.meta, Z, S)
    out = np.transpose(Z, (1, 0, 2))
    return carray(out[0] if single else out)
