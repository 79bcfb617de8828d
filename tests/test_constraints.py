"""The stable-LSTM projection (Miller & Hardt 2019, as Ribeiro et al. 2020 train it)."""

from __future__ import annotations

import numpy as np
import pytest

import plrnn_numba as pn
from plrnn_numba.training.constraints import (
    STABLE_LSTM_FORGET_INPUT_NORM,
    STABLE_LSTM_NORMS,
    project_columns_l1,
    stable_lstm_projection,
)

EXACT = 1e-12


def _column_norms(model, theta):
    p = model.unpack(theta)
    N = model.n_hidden
    hh = {g: np.abs(p["weight_hh"][q * N:(q + 1) * N]).sum(axis=0) for q, g in enumerate("ifgo")}
    return hh, np.abs(p["weight_ih"][N:2 * N]).sum(axis=0)


def test_projection_caps_every_gate_column_and_is_idempotent():
    model = pn.LSTM(6, n_inputs=2)
    theta = 3.0 * model.init(1)
    hook = stable_lstm_projection(model)
    hook.project(theta, model)
    hh, f_in = _column_norms(model, theta)
    for gate, bound in STABLE_LSTM_NORMS.items():
        assert np.all(hh[gate] <= bound * (1 + EXACT))
    assert np.all(f_in <= STABLE_LSTM_FORGET_INPUT_NORM * (1 + EXACT))
    again = theta.copy()
    hook.project(again, model)
    np.testing.assert_allclose(again, theta, rtol=EXACT, atol=0)
    # the biases and the other input blocks are untouched
    before = model.unpack(3.0 * model.init(1))
    after = model.unpack(theta)
    np.testing.assert_array_equal(after["bias_hh"], before["bias_hh"])
    np.testing.assert_array_equal(after["weight_ih"][:6], before["weight_ih"][:6])


def test_cap_leaves_small_columns_and_set_rescales_them():
    W = np.array([[0.01, 1.0], [0.02, -3.0]])
    capped = W.copy()
    project_columns_l1(capped, 0.5, "cap")
    np.testing.assert_allclose(capped, [[0.01, 0.125], [0.02, -0.375]], rtol=EXACT)
    fixed = W.copy()
    project_columns_l1(fixed, 0.5, "set")
    np.testing.assert_allclose(np.abs(fixed).sum(axis=0), [0.5, 0.5], rtol=EXACT)


def test_training_with_the_projection_stays_on_the_constraint_set():
    model = pn.LSTM(5, n_inputs=1)
    rng = np.random.default_rng(0)
    batch = pn.Batch(targets=rng.normal(size=(3, 15, 1)), inputs=rng.normal(size=(3, 15, 1)))
    h = pn.train(model, 4.0 * model.init(0), batch, n_epochs=6, optimizer=pn.Adam(lr=0.05),
                 readout=pn.LinearReadout(1), readout_params=np.zeros(11), hooks=stable_lstm_projection(model),
                 snapshot_every=1)
    for th in h["theta_snapshots"].values:
        hh, f_in = _column_norms(model, th)
        assert all(np.all(hh[g] <= b * (1 + EXACT)) for g, b in STABLE_LSTM_NORMS.items())
        assert np.all(f_in <= STABLE_LSTM_FORGET_INPUT_NORM * (1 + EXACT))
    assert "stable_lstm_projection" in h.attrs["arguments"]


def test_projected_lstm_is_contracting_on_its_trajectories():
    """Under the constraint the largest Lyapunov exponent of a strongly recurrent LSTM turns negative."""
    model = pn.LSTM(6, n_inputs=1)
    theta = 4.0 * model.init(3)
    before = pn.dynamics.lyapunov_spectrum(model, theta, k=1, n_steps=2000, inputs=np.zeros(1))
    stable_lstm_projection(model).project(theta, model)
    after = pn.dynamics.lyapunov_spectrum(model, theta, k=1, n_steps=2000, inputs=np.zeros(1))
    assert float(after["mean"].values[0]) < -0.05
    assert float(after["mean"].values[0]) < float(before["mean"].values[0])


def test_bad_arguments():
    with pytest.raises(TypeError, match="LSTM"):
        stable_lstm_projection(pn.VanillaRNN(3))
    with pytest.raises(ValueError, match="norms"):
        stable_lstm_projection(pn.LSTM(2), norms={"x": 1.0})
    with pytest.raises(ValueError, match="mode"):
        stable_lstm_projection(pn.LSTM(2), mode="clip")
