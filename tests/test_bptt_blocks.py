"""The backward sweep's blocked parameter reduction against one reduction per sequence.

When a call's states, adjoints and tape outgrow ``bptt._PARAM_SWEEP_BYTES``,
BPTT reduces the parameter gradient during the backward sweep, over blocks
of whole steps (about ``bptt._PARAM_ROWS`` rows); one sequence of the same
problems stays below the limit and is reduced in one pass after the sweep.
The loss of a batch is the mean of its sequences' losses (every sequence
has the same number of counted steps; the PLRNN's case masks a different
100 steps of each), so the batch's gradient must equal
the mean of the single-sequence gradients, up to rounding: ``REF_RTOL``, the
tolerance of the comparisons with the reference implementation in
``test_gradients.py``.
"""

from __future__ import annotations

import numpy as np
import pytest

import plrnn_numba as pn
from plrnn_numba import bptt

#: rounding only (summation order), as test_gradients.REF_RTOL
REF_RTOL = 1e-10
B = 4


def _problem(kind: str):
    rng = np.random.default_rng(7)
    if kind == "plrnn_gtf":
        model, T, forcing, readout = pn.PLRNN(32), 1500, pn.GTF(0.3), pn.IdentityReadout(3)
        theta = model.init(0)
        targets = rng.standard_normal((B, T, 3))
        inputs = None
    elif kind == "lstm":
        model, T, forcing, readout = pn.LSTM(16, n_inputs=1), 800, None, pn.LinearReadout(2)
        theta = model.init(0)
        targets = rng.standard_normal((B, T, 2))
        inputs = rng.standard_normal((B, T, 1))
    else:
        model, T, forcing, readout = pn.VanillaRNN(n_hidden=32, n_inputs=1), 1200, None, pn.IdentityReadout(3)
        theta = model.init(0)
        targets = rng.standard_normal((B, T, 3))
        inputs = rng.standard_normal((B, T, 1))
    z0 = 0.5 * rng.standard_normal((B, model.dim))
    ro = readout.init(model.dim, 1) if isinstance(readout, pn.LinearReadout) else None
    mask = np.ones((B, T))
    if kind == "plrnn_gtf":
        for b in range(B):
            mask[b, rng.choice(T, 100, replace=False)] = 0.0
    return model, theta, targets, inputs, z0, mask, forcing, readout, ro


@pytest.mark.parametrize("kind", ["plrnn_gtf", "lstm", "tanh"])
def test_blocked_reduction_equals_the_mean_of_single_sequences(kind):
    model, theta, targets, inputs, z0, mask, forcing, readout, ro = _problem(kind)
    T = targets.shape[1]
    per_step = (2 * model.dim + model.tape_width) * 8
    # the batch takes the blocked path, a single sequence the one-pass path, over several blocks
    assert B * T * per_step > bptt._PARAM_SWEEP_BYTES >= T * per_step
    assert T > 2 * (bptt._PARAM_ROWS // B)

    def call(b):
        batch = pn.Batch(targets=targets[b], inputs=None if inputs is None else inputs[b], z0=z0[b], mask=mask[b])
        return pn.loss_and_grad(model, theta, batch, readout=readout, readout_params=ro, forcing=forcing)

    full = call(slice(None))
    singles = [call(slice(b, b + 1)) for b in range(B)]
    loss = np.mean([s.loss for s in singles])
    grad = np.mean([s.grad for s in singles], axis=0)
    assert abs(full.loss - loss) <= REF_RTOL * abs(loss)
    np.testing.assert_allclose(full.grad, grad, rtol=0, atol=REF_RTOL * np.abs(grad).max())
    if ro is not None:
        grad_ro = np.mean([s.grad_readout for s in singles], axis=0)
        np.testing.assert_allclose(full.grad_readout, grad_ro, rtol=0, atol=REF_RTOL * np.abs(grad_ro).max())
    gz0 = np.concatenate([s.grad_z0 for s in singles]) / B
    np.testing.assert_allclose(full.grad_z0, gz0, rtol=0, atol=REF_RTOL * np.abs(gz0).max())
