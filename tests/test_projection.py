"""Projected training: the after_step hook event and the Projection hook."""

from __future__ import annotations

import numpy as np
import pytest

import plrnn_numba as pn
from plrnn_numba.training import Projection


def _setup():
    model = pn.VanillaRNN(4, n_inputs=1)
    theta = model.init(0)
    rng = np.random.default_rng(0)
    batch = pn.Batch(targets=rng.normal(size=(3, 12, 4)), inputs=rng.normal(size=(3, 12, 1)))
    return model, theta, batch


def _clip_unit_ball(theta, model):
    """Project the recurrent matrix onto the Frobenius ball of radius 1 (in place)."""
    W = theta[model.param_slices()["W"]]
    norm = np.linalg.norm(W)
    if norm > 1.0:
        W /= norm


def test_projection_runs_after_every_step_and_equals_projected_gradient_descent():
    model, theta, batch = _setup()
    sl = model.param_slices()["W"]
    h = pn.train(model, theta, batch, n_epochs=5, batches_per_epoch=2, optimizer=pn.SGD(lr=0.5),
                 hooks=Projection(_clip_unit_ball), snapshot_every=1)
    for th in h["theta_snapshots"].values:
        assert np.linalg.norm(th[sl]) <= 1.0 + 1e-12
    # the same run by hand: project, then (step, project) ten times
    x = theta.copy()
    _clip_unit_ball(x, model)
    for _ in range(10):
        x -= 0.5 * pn.loss_and_grad(model, x, batch).grad
        _clip_unit_ball(x, model)
    np.testing.assert_allclose(h["theta"].values, x, rtol=0, atol=1e-13)
    assert h.attrs["arguments"].count("Projection") == 1


def test_projection_may_return_the_vector_and_skip_the_start():
    model, theta, batch = _setup()
    calls = []

    def halve(th, m):
        calls.append(1)
        return 0.5 * th

    h = pn.train(model, theta, batch, n_epochs=3, optimizer=pn.SGD(lr=0.0 + 1e-300),
                 hooks=Projection(halve, at_start=False))
    assert len(calls) == 3
    np.testing.assert_allclose(h["theta"].values, theta / 8, rtol=1e-12)


def test_projection_checks_what_it_gets_and_returns():
    with pytest.raises(TypeError, match="project"):
        Projection(3)
    with pytest.raises(TypeError, match="at_start"):
        Projection(_clip_unit_ball, at_start="yes")
    model, theta, batch = _setup()
    with pytest.raises(ValueError, match="projection"):
        pn.train(model, theta, batch, n_epochs=1, hooks=Projection(lambda th, m: th[:3]))
