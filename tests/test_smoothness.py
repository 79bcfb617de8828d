"""Smoothness of the cost against the sequence length, and local Lipschitz constants (Ribeiro et al. 2020)."""

from __future__ import annotations

import numpy as np
import pytest

import plrnn_numba as pn
from plrnn_numba import io
from plrnn_numba.dynamics.smoothness import cost_smoothness, state_lipschitz

EXACT = 1e-12  # quantities that are exact in floating point up to rounding


def _linear_plrnn(a):
    model = pn.PLRNN(len(a))
    theta = model.pack(A=np.asarray(a, float), W=np.zeros((len(a), len(a))), h=np.zeros(len(a)))
    return model, theta


def test_linear_map_gives_its_singular_values_and_determinant():
    a = [0.5, -1.5, 0.9]
    model, theta = _linear_plrnn(a)
    ds = state_lipschitz(model, theta, n_steps=30, n_init=2)
    np.testing.assert_allclose(ds["local_lipschitz"], 1.5, rtol=EXACT)
    np.testing.assert_allclose(ds["min_singular"], 0.5, rtol=EXACT)
    per_step = np.sum(np.log(np.abs(a)))
    np.testing.assert_allclose(ds["log_abs_det"], per_step, rtol=EXACT)
    np.testing.assert_allclose(ds["log_volume"].values[0], per_step * np.arange(1, 31), rtol=1e-10)
    assert float(ds["lipschitz_max"]) == pytest.approx(1.5, rel=EXACT)


def _tanh_rnn(gain):
    model = pn.VanillaRNN(6, n_inputs=1)
    parts = model.unpack(model.init(0))
    W = np.random.default_rng(1).normal(size=(6, 6)) / np.sqrt(6) * gain
    return model, model.pack(**{**parts, "W": W})


def test_volume_lies_between_the_singular_value_bounds_and_round_trips(tmp_path):
    model, theta = _tanh_rnn(3.0)
    ds = state_lipschitz(model, theta, n_steps=100, n_transient=20, inputs=np.zeros(1), n_init=3)
    v, lo, hi = ds["log_volume"].values, ds["entropy_lower"].values, ds["entropy_upper"].values
    assert np.all(lo <= v + 1e-9) and np.all(v <= hi + 1e-9)
    assert float(ds["lipschitz_max"]) > 1.0  # this network expands somewhere
    io.save(ds, tmp_path / "lip.nc")
    back = io.open(tmp_path / "lip.nc")
    np.testing.assert_array_equal(back["log_volume"].values, v)


def _data(T=120):
    rng = np.random.default_rng(0)
    return pn.Batch(targets=rng.normal(size=(4, T, 6)), inputs=0.1 * rng.normal(size=(4, T, 1)),
                    z0=rng.normal(size=(4, 6)))


def test_difference_quotients_bracket_the_directional_derivative():
    """max |dV| / dtheta over neighbours lies between the secant over the whole segment and the largest |grad . d|."""
    model, theta = _tanh_rnn(1.0)
    batch = _data(30)
    ds = cost_smoothness(model, theta, batch, [30], n_directions=2, radius=0.05, n_points=101, seed=3)
    d = np.random.default_rng(3).normal(size=(2, theta.size))
    d /= np.linalg.norm(d, axis=1, keepdims=True)
    for k in range(2):
        pts = theta + ds["tau"].values[:, None] * d[k]
        slopes = [abs(pn.loss_and_grad(model, p, batch).grad @ d[k]) for p in pts]
        c = ds["cost"].values[0, k]
        secant = abs(c[-1] - c[0]) / 0.1
        est = float(ds["lipschitz_cost"][0, k])
        assert secant <= est * (1 + 1e-12) and est <= max(slopes) * (1 + 1e-3)


def test_contracting_model_stays_smooth_and_an_expanding_one_does_not():
    lengths = [5, 20, 80]
    smooth = cost_smoothness(*_tanh_rnn(0.5), _data(), lengths, n_directions=3, radius=0.05, n_points=21)
    rough = cost_smoothness(*_tanh_rnn(3.0), _data(), lengths, n_directions=3, radius=0.05, n_points=21)
    g_s, g_r = smooth["lipschitz_grad_max"].values, rough["lipschitz_grad_max"].values
    assert g_s[-1] / g_s[0] < 3.0  # bounded in N
    assert g_r[-1] / g_r[0] > 1e3  # grows with N: curvature explodes
    assert int(smooth["n_nonfinite"]) == 0 and smooth["cost"].dims == ("length", "direction", "point")


def test_a_callable_builds_the_data_per_length():
    model, theta = _tanh_rnn(0.5)
    batch = _data(40)
    from_batch = cost_smoothness(model, theta, batch, [10, 40], n_directions=1, n_points=5)
    from_fn = cost_smoothness(model, theta, lambda n: pn.Batch(targets=batch.targets[:, :n],
                                                               inputs=batch.inputs[:, :n], z0=batch.z0),
                              [10, 40], n_directions=1, n_points=5)
    np.testing.assert_array_equal(from_batch["cost"].values, from_fn["cost"].values)


def test_bad_arguments_name_themselves():
    model, theta = _tanh_rnn(0.5)
    with pytest.raises(ValueError, match="data has 40 steps"):
        cost_smoothness(model, theta, _data(40), [10, 50])
    with pytest.raises(ValueError, match="lengths"):
        cost_smoothness(model, theta, _data(40), [20, 10])
    with pytest.raises(ValueError, match="n_points"):
        cost_smoothness(model, theta, _data(40), [10], n_points=2)
    with pytest.raises(TypeError, match="data"):
        cost_smoothness(model, theta, "data", [10])
