"""The softmax cross-entropy loss ('ce') of the BPTT engine against a NumPy evaluation and central differences."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import logsumexp

import plrnn_numba as pn
from plrnn_numba.tasks import symbol_classification

from .naive import central_fd

FD_RTOL = 1e-6  # gradients against central differences (step 1e-6)
EXACT = 1e-12  # the same quantity computed two ways


def _problem(n_threads=None):
    model = pn.VanillaRNN(5, n_inputs=6)
    theta = model.init(0)
    batch = symbol_classification(6, 50, seed=2, encoding="onehot")
    readout = pn.LinearReadout(4)
    ro = readout.init(model.dim, 1)
    return model, theta, batch, readout, ro


def test_loss_is_the_masked_mean_of_logsumexp_minus_the_target_logit():
    model, theta, batch, readout, ro = _problem()
    res = pn.loss_and_grad(model, theta, batch, readout=readout, readout_params=ro, loss="ce")
    y, _ = pn.predict(model, theta, batch, readout=readout, readout_params=ro)
    per_step = logsumexp(y, axis=2) - np.sum(batch.targets * y, axis=2)
    expected = np.sum(batch.mask * per_step) / batch.mask.sum()
    assert res.loss == pytest.approx(expected, rel=EXACT)


def test_gradients_against_central_differences_and_threads_agree():
    model, theta, batch, readout, ro = _problem()
    res = pn.loss_and_grad(model, theta, batch, readout=readout, readout_params=ro, loss="ce")

    def f_theta(th):
        return pn.loss_and_grad(model, th, batch, readout=readout, readout_params=ro, loss="ce").loss

    def f_ro(r):
        return pn.loss_and_grad(model, theta, batch, readout=readout, readout_params=r, loss="ce").loss

    np.testing.assert_allclose(res.grad, central_fd(f_theta, theta), rtol=FD_RTOL, atol=1e-9)
    np.testing.assert_allclose(res.grad_readout, central_fd(f_ro, ro), rtol=FD_RTOL, atol=1e-9)
    two = pn.loss_and_grad(model, theta, batch, readout=readout, readout_params=ro, loss="ce", n_threads=2)
    assert two.loss == pytest.approx(res.loss, rel=EXACT)
    np.testing.assert_allclose(two.grad, res.grad, rtol=1e-10, atol=1e-14)


def test_soft_targets_and_the_checks():
    model, theta, _, readout, ro = _problem()
    rng = np.random.default_rng(0)
    p = rng.random((2, 7, 4))
    soft = pn.Batch(targets=p / p.sum(axis=2, keepdims=True), inputs=rng.normal(size=(2, 7, 6)))
    res = pn.loss_and_grad(model, theta, soft, readout=readout, readout_params=ro, loss="ce")
    assert np.isfinite(res.loss) and res.loss > 0
    with pytest.raises(ValueError, match="probability vectors"):
        pn.loss_and_grad(model, theta, pn.Batch(targets=p, inputs=soft.inputs), readout=readout,
                         readout_params=ro, loss="ce")
    one = pn.LinearReadout(1)
    with pytest.raises(ValueError, match="two outputs"):
        pn.loss_and_grad(model, theta, pn.Batch(targets=np.ones((1, 3, 1)), inputs=np.zeros((1, 3, 6))),
                         readout=one, readout_params=one.init(model.dim), loss="ce")


def test_training_with_ce_learns_the_short_symbol_task():
    model = pn.VanillaRNN(12, n_inputs=6)
    train = symbol_classification(200, 50, seed=0, encoding="onehot")
    readout = pn.LinearReadout(4)
    h = pn.train(model, model.init(0), train, n_epochs=60, optimizer=pn.Adam(lr=0.02), readout=readout,
                 readout_params=readout.init(model.dim, 0), loss="ce", clip_norm=1.0)
    assert h["loss"].values[-1] < 0.7 * np.log(4)  # below the chance level log 4
