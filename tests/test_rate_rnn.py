"""The leaky rate RNN of Dinc et al., "A ghost mechanism: an analytical model of abrupt learning".

``x' = (1 - a) x + a tanh(W x + V u + b)`` with a full W or ``W = m n`` of rank R
(:class:`plrnn_numba.models.RateRNN`), its tied readout
``y = c (n_1 . x - kappa*)`` (:class:`plrnn_numba.readouts.LatentReadout`, c
fixed or trained), the trainable readout ``w . x + b`` (``LinearReadout(1)``)
and the loss ``"sigmoid_mse"`` (squared error of ``sigmoid(y)``).

Checked here:

* BPTT gradients (theta, readout parameters, initial states) against central
  finite differences and against the forward-mode reference of
  :mod:`tests.naive`, for full and low rank, with and without inputs, both
  readouts, fixed and trained c, with a mask, batch > 1, and in the BLAS
  branches of the kernels;
* the naive reference against the kernels (step, Jacobian) and the Jacobian
  kernel against finite differences of the step; the second-order kernel
  (Jacobian VJP) against finite differences of the Jacobian;
* a low-rank model against the full model with ``W = m n``;
* Lyapunov spectra (exact values), flossing gradients and orbit diagrams on the
  model unchanged; training with SGD on the paper's delayed-activation task;
* argument validation.
"""

from __future__ import annotations

import zlib
from dataclasses import replace

import numpy as np
import pytest

import plrnn_numba as pn
from plrnn_numba import dynamics
from plrnn_numba.models import RateRNN
from plrnn_numba.models.base import model_params
from plrnn_numba.readouts import LatentReadout

from .naive import (
    central_fd,
    n_params,
    naive_loss_and_grad,
    naive_param_jacobian,
    naive_state_jacobian,
    naive_step,
)

# Tolerances, one per kind of check (errors are ||a - b|| / ||b||, b the reference).
#: finite-difference step: close to the optimal eps^(1/3) for O(1) losses
FD_STEP = 1e-5
# Central differences with h = 1e-5: truncation h^2 |f'''| / 6 and rounding eps |f| / h
# are both ~1e-11 per component, relative to gradients of norm ~1e-2 .. 1 that is at most
# ~1e-8 (measured here: <= 6e-10).  A missing term or a wrong factor shows up at 1e-3 or more.
FD_RTOL = 1e-6
# The package (reverse mode, numba, fast-math) and the naive reference (forward mode,
# plain NumPy) agree up to rounding: measured <= 1.2e-15.
REF_RTOL = 1e-10
# Jacobian kernel against central differences of the step (h = 1e-6, the state is O(1)):
# measured <= 5e-10.
JAC_RTOL = 1e-7

B, T = 3, 7

MODELS = {
    "full_inputs": RateRNN(5, n_inputs=2, alpha=0.4),
    "rank1": RateRNN(6, rank=1, alpha=0.5),
    "rank2_inputs": RateRNN(5, n_inputs=1, rank=2, alpha=0.8),
    "full_nonleaky": RateRNN(4, alpha=1.0),
    # large enough for the kernels' BLAS branches (a batch of 8 rows, 256 or more multiply-adds per row)
    "full_blas": RateRNN(20, n_inputs=1, alpha=0.5),
    "rank6_blas": RateRNN(24, rank=6, alpha=0.5),
}
BLAS_MODELS = {"full_blas", "rank6_blas"}


def make_readout(readout_id):
    """Readout and its parameters (None when it has none)."""
    if readout_id == "linear":
        return pn.LinearReadout(1), None  # parameters drawn with the problem
    if readout_id == "latent":
        return LatentReadout(c=3.0, kappa_star=0.2), None
    return LatentReadout(c=3.0, kappa_star=0.2, train_c=True), np.array([2.5])


def make_problem(model_id, readout_id, loss="sigmoid_mse", masked=True):
    """A deterministic random problem (seeded by its id)."""
    model = MODELS[model_id]
    rng = np.random.default_rng(zlib.crc32(f"{model_id}/{readout_id}/{loss}/{masked}".encode()))
    Bn = 8 if model_id in BLAS_MODELS else B
    N, K = model.dim, model.n_inputs
    theta = model.init(seed=int(rng.integers(2**31)), scale=1.5, b_scale=0.3)
    readout, ro = make_readout(readout_id)
    if readout_id == "linear":
        ro = rng.normal(0.0, 1.0, N + 1)
    X = rng.random((Bn, T, 1)) if loss != "mse" else rng.normal(0.0, 1.0, (Bn, T, 1))
    mask = None
    if masked:
        mask = np.ones((Bn, T))
        mask[0, 2] = 0.0
        mask[1, 5] = 0.0
        mask[2, 4] = 0.5
    batch = pn.Batch(targets=X, inputs=rng.normal(0.0, 1.0, (Bn, T, K)) if K else None,
                     z0=rng.normal(0.0, 0.5, (Bn, N)), mask=mask)
    return model, theta, batch, readout, ro, loss


def package(model, theta, batch, readout, ro, loss, **kwargs):
    return pn.loss_and_grad(model, theta, batch, readout=readout, readout_params=ro, loss=loss, **kwargs)


def rel_err(a, b):
    a, b = np.ravel(a), np.ravel(b)
    nb = np.linalg.norm(b)
    assert nb > 0.0, "reference is zero: the comparison would be vacuous"
    return float(np.linalg.norm(a - b) / nb)


def _readouts_for(model_id):
    return ("linear",) if MODELS[model_id].rank is None else ("linear", "latent", "latent_c")


CASES = [
    pytest.param(m, r, "sigmoid_mse", True, id=f"{m}-{r}-sigmoid_mse")
    for m in MODELS
    for r in _readouts_for(m)
] + [
    pytest.param("rank1", "latent", "sigmoid_mse", False, id="rank1-latent-sigmoid_mse-nomask"),
    pytest.param("full_inputs", "linear", "mse", True, id="full_inputs-linear-mse"),
    pytest.param("full_inputs", "linear", "bce", True, id="full_inputs-linear-bce"),
    pytest.param("rank2_inputs", "latent_c", "mse", True, id="rank2_inputs-latent_c-mse"),
    pytest.param("rank2_inputs", "latent_c", "bce", True, id="rank2_inputs-latent_c-bce"),
]


@pytest.mark.parametrize("model_id, readout_id, loss, masked", CASES)
def test_gradient_vs_finite_differences(model_id, readout_id, loss, masked):
    model, theta, batch, readout, ro, loss = make_problem(model_id, readout_id, loss, masked)
    res = package(model, theta, batch, readout, ro, loss)
    assert res.finite
    P, R = model.n_params, 0 if ro is None else ro.size
    z0 = np.asarray(batch.z0)

    def f(x):
        return package(model, x[:P], replace(batch, z0=x[P + R :].reshape(z0.shape)), readout,
                       x[P : P + R] if R else None, loss).loss

    x = np.concatenate([theta, np.zeros(0) if ro is None else ro, z0.ravel()])
    fd = central_fd(f, x, FD_STEP)
    assert rel_err(res.grad, fd[:P]) < FD_RTOL
    assert rel_err(res.grad_z0.ravel(), fd[P + R :]) < FD_RTOL
    assert res.grad_readout.shape == (R,)
    if R:
        assert rel_err(res.grad_readout, fd[P : P + R]) < FD_RTOL


@pytest.mark.parametrize("model_id, readout_id, loss, masked", CASES)
def test_gradient_vs_naive_reference(model_id, readout_id, loss, masked):
    model, theta, batch, readout, ro, loss = make_problem(model_id, readout_id, loss, masked)
    res = package(model, theta, batch, readout, ro, loss)
    ref_loss, ref_grad, ref_gro, ref_gz0 = naive_loss_and_grad(model, theta, batch, readout, ro, loss)
    assert abs(res.loss - ref_loss) <= REF_RTOL * abs(ref_loss)
    assert rel_err(res.grad, ref_grad) < REF_RTOL
    assert rel_err(res.grad_z0, ref_gz0) < REF_RTOL
    if ref_gro.size:
        assert rel_err(res.grad_readout, ref_gro) < REF_RTOL


def test_tied_readout_gradient_reaches_n():
    # with the tied readout, part of dL/dn comes from the readout itself: the gradient of a
    # model whose n is frozen inside the dynamics would differ exactly by c sum dL/dy x
    model, theta, batch, readout, ro, loss = make_problem("rank1", "latent")
    res = package(model, theta, batch, readout, ro, loss)
    lin = pn.LinearReadout(1)
    lin_params = readout.linear_params(readout.vector(model, theta), ro)
    res_lin = package(model, theta, batch, lin, lin_params, loss)
    sl = model.readout_vector()
    np.testing.assert_allclose(res.grad[sl] - res_lin.grad[sl], readout.c * res_lin.grad_readout[:-1], rtol=1e-12)
    mask = np.ones(model.n_params, bool)
    mask[sl] = False
    np.testing.assert_array_equal(res.grad[mask], res_lin.grad[mask])


def test_parallel_engine_matches_serial():
    model, theta, batch, readout, ro, loss = make_problem("rank2_inputs", "latent_c")
    r1 = package(model, theta, batch, readout, ro, loss, n_threads=1)
    r2 = package(model, theta, batch, readout, ro, loss, n_threads=2)
    np.testing.assert_allclose(r2.loss, r1.loss, rtol=1e-13)
    for a, b in ((r2.grad, r1.grad), (r2.grad_readout, r1.grad_readout), (r2.grad_z0, r1.grad_z0)):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-15)


# -- the one-step kernels ---------------------------------------------------------------
STEP_MODELS = {**MODELS, "full_50": RateRNN(50, n_inputs=1), "rank24_50": RateRNN(50, rank=24)}


def _point(model, seed=0):
    rng = np.random.default_rng(seed)
    theta = model.init(seed, scale=1.5, b_scale=0.3)
    z = rng.normal(0.0, 0.7, model.dim)
    s = rng.normal(0.0, 1.0, model.n_inputs)
    return theta, z, s


@pytest.mark.parametrize("model_id", STEP_MODELS)
def test_step_and_jacobian_match_the_naive_reference(model_id):
    model = STEP_MODELS[model_id]
    theta, z, s = _point(model)
    s_arg = s if model.n_inputs else None
    np.testing.assert_allclose(model.step(theta, z, s_arg), naive_step(model, theta, z, s), rtol=1e-13, atol=1e-14)
    J = model.jacobian(theta, z, s_arg)
    np.testing.assert_allclose(J, naive_state_jacobian(model, theta, z, s), rtol=1e-12, atol=1e-14)
    # the kernel Jacobian against central differences of the kernel step
    fd = central_fd(lambda x: model.step(theta, x, s_arg), z, 1e-6)
    assert rel_err(J, fd) < JAC_RTOL
    # a batch of states steps like the single states (BLAS and loop branches agree)
    Z = np.stack([z, -z, 0.5 * z, z[::-1]] * 2)
    S = np.stack([s] * 8)
    np.testing.assert_allclose(model.step(theta, Z, S if model.n_inputs else None),
                               np.stack([naive_step(model, theta, zz, s) for zz in Z]), rtol=1e-13, atol=1e-14)


def test_tanh_of_the_kernels_is_accurate():
    # with a = 1 and W = m n = 0 one step is x' = tanh(b): the kernels' own (vectorised) tanh
    xs = np.concatenate([np.linspace(-25.0, 25.0, 20001), np.geomspace(1e-300, 1.0, 5000),
                         -np.geomspace(1e-300, 1.0, 5000), [0.0, 1e300, -1e300]])
    model = RateRNN(xs.size, rank=1, alpha=1.0)
    got = model.step(model.pack(m=np.zeros(xs.size), n=np.zeros(xs.size), b=xs), np.zeros(xs.size))
    ref = np.tanh(xs)
    ulp = np.abs(got - ref) / np.spacing(np.maximum(np.abs(ref), np.finfo(float).tiny))
    assert ulp.max() <= 4.0  # measured: 3


@pytest.mark.parametrize("model_id", ["full_inputs", "rank2_inputs"])
def test_naive_parameter_jacobian_vs_finite_differences(model_id):
    # the reference checks itself: its entry-by-entry dF/dtheta against differences of its step
    model = MODELS[model_id]
    theta, z, s = _point(model, 3)
    assert n_params(model) == model.n_params
    fd = central_fd(lambda th: naive_step(model, th, z, s), theta, 1e-6)
    assert rel_err(naive_param_jacobian(model, theta, z, s), fd) < JAC_RTOL


@pytest.mark.parametrize("model_id", ["full_inputs", "rank1", "rank2_inputs", "full_50", "rank24_50"])
def test_jacobian_vjp_vs_finite_differences(model_id):
    # g_z = d/dz sum(Jbar * J(z)) and g_p += d/dtheta sum(Jbar * J(z)), the kernel behind flossing gradients
    model = STEP_MODELS[model_id]
    theta, z, s = _point(model, 5)
    Jbar = np.random.default_rng(6).normal(size=(model.dim, model.dim))
    kern, meta = model.kernels, model.meta

    def pairing(th, zz):
        J = np.empty((model.dim, model.dim))
        kern.jacobian(model_params(model, th), meta, zz, s, J)
        return float(np.sum(Jbar * J))

    g_z = np.full(model.dim, np.nan)  # the kernel must overwrite it
    g_p = np.zeros(model_params(model, theta).size)
    kern.jacobian_vjp(model_params(model, theta), meta, z, s, Jbar, g_z, g_p)
    assert rel_err(g_z, central_fd(lambda x: pairing(theta, x), z, 1e-6)) < JAC_RTOL
    assert rel_err(model.reduce_grad(g_p), central_fd(lambda th: pairing(th, z), theta, 1e-6)) < JAC_RTOL


def test_low_rank_model_equals_full_model_with_w_equal_m_n():
    low = RateRNN(6, n_inputs=1, rank=2, alpha=0.3)
    full = RateRNN(6, n_inputs=1, alpha=0.3)
    th_low = low.init(4, scale=1.5, b_scale=0.2)
    d = low.unpack(th_low)
    th_full = full.pack(W=d["m"] @ d["n"], V=d["V"], b=d["b"])
    np.testing.assert_allclose(low.connectivity(th_low), full.connectivity(th_full))
    rng = np.random.default_rng(7)
    batch = pn.Batch(targets=rng.random((2, T, 1)), inputs=rng.normal(size=(2, T, 1)), z0=rng.normal(size=(2, 6)))
    readout, ro = pn.LinearReadout(1), np.linspace(-1.0, 1.0, 7)
    r_low = package(low, th_low, batch, readout, ro, "sigmoid_mse")
    r_full = package(full, th_full, batch, readout, ro, "sigmoid_mse")
    np.testing.assert_allclose(r_low.loss, r_full.loss, rtol=1e-13)
    # chain rule through W = m n: dL/dm = dL/dW n^T, dL/dn = m^T dL/dW
    gW = full.unpack(r_full.grad)["W"]
    g_low = low.unpack(r_low.grad)
    np.testing.assert_allclose(g_low["m"], gW @ d["n"].T, rtol=1e-11, atol=1e-15)
    np.testing.assert_allclose(g_low["n"], d["m"].T @ gW, rtol=1e-11, atol=1e-15)
    np.testing.assert_allclose(r_low.grad_z0, r_full.grad_z0, rtol=1e-11, atol=1e-15)


# -- the paper's setup --------------------------------------------------------------------
def test_authors_initialisation_and_layout():
    model = RateRNN(100, rank=1)
    assert model.alpha == 0.5 and model.dim == 100 and model.n_params == 300
    theta = model.init(seed=0)
    d = model.unpack(theta)
    assert d["m"].shape == (100, 1) and d["n"].shape == (1, 100) and d["V"].shape == (100, 0)
    np.testing.assert_array_equal(d["b"], 0.0)
    # m, n ~ N(0, 1/N): standard deviation 0.1 (200 draws: within 20 %)
    assert 0.08 < np.std(np.concatenate([d["m"].ravel(), d["n"].ravel()])) < 0.12
    # the readout vector is n, contiguous in theta; pack takes the paper's vectors
    np.testing.assert_array_equal(theta[model.readout_vector()], d["n"][0])
    again = model.pack(m=d["m"][:, 0], n=d["n"][0], b=d["b"])
    np.testing.assert_array_equal(again, theta)
    assert RateRNN(5).readout_vector() is None
    assert model.param_names()[100] == "n[0,0]"


def test_predict_and_latent_variable():
    model = RateRNN(8, rank=1)
    theta = model.init(1)
    batch = pn.Batch(targets=np.zeros((2, 5, 1)), z0=np.full((2, 8), -0.3))
    readout = LatentReadout(c=10.0, kappa_star=1.0)
    Y, Z = pn.predict(model, theta, batch, readout=readout)
    n = model.unpack(theta)["n"][0]
    kappa = Z[:, 1:] @ n
    np.testing.assert_allclose(Y[..., 0], 10.0 * (kappa - 1.0), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(readout.apply(np.zeros(0), Z[:, 1:], readout.vector(model, theta)), Y, rtol=1e-12)
    # the loss is the squared error of the sigmoid output, averaged over the counted steps
    X = np.random.default_rng(0).random((2, 5, 1))
    res = pn.loss_and_grad(model, theta, replace(batch, targets=X), readout=readout, loss="sigmoid_mse")
    o = 1.0 / (1.0 + np.exp(-Y))
    np.testing.assert_allclose(res.loss, np.mean((o - X) ** 2), rtol=1e-12)


def test_sigmoid_mse_saturates_without_overflow():
    # |y| ~ 1e3: sigmoid exactly 0 or 1, no overflow warnings, finite loss and a zero gradient
    model = RateRNN(3, rank=1)
    theta = model.pack(m=np.ones(3), n=np.full(3, 100.0), b=np.zeros(3))
    batch = pn.Batch(targets=np.array([[[0.0], [1.0]]]), z0=np.ones((1, 3)))
    with np.errstate(all="raise"):
        res = pn.loss_and_grad(model, theta, batch, readout=LatentReadout(c=10.0), loss="sigmoid_mse")
    assert res.finite and res.loss == pytest.approx(0.5)
    np.testing.assert_array_equal(res.grad, 0.0)


def _delayed_activation(n_units):
    # the paper's task: output 0 for 20 steps, then 1 for 20 steps, every unit starting at -0.3
    y = np.r_[np.zeros(20), np.ones(20)][None, :, None]
    return pn.Batch(targets=y, z0=np.full((1, n_units), -0.3))


def test_training_with_sgd_on_the_delayed_activation_task():
    # rank one, N = 100, a = 0.5, x(0) = -0.3, sigmoid(c (kappa - 1)) with a lowered confidence c = 3
    # (the paper's remedy against the no-learning zone), full-batch SGD
    model = RateRNN(100, rank=1)
    hist = pn.train(model, model.init(2), _delayed_activation(100), n_epochs=400, optimizer=pn.SGD(0.03),
                    readout=LatentReadout(c=3.0, kappa_star=1.0), loss="sigmoid_mse", seed=0)
    loss = hist["loss"].values
    assert hist.attrs["status"] == "completed"
    assert loss[-1] < 0.2 * loss[0]


@pytest.mark.parametrize("readout", [LatentReadout(c=3.0, train_c=True), pn.LinearReadout(1)],
                         ids=["train_c", "linear"])
def test_training_trains_the_readout_parameters(readout):
    model = RateRNN(30, rank=3)  # sloppy ranks: rank 3 for a task that needs one
    ro0 = readout.init(30, 0)
    hist = pn.train(model, model.init(0), _delayed_activation(30), n_epochs=30, optimizer=pn.SGD(0.1),
                    readout=readout, readout_params=ro0, loss="sigmoid_mse", seed=0, snapshot_every=10)
    assert hist.attrs["status"] == "completed"
    ro = hist["readout_params"].values
    assert ro.shape == ro0.shape == (readout.n_params(30),)
    assert np.all(np.isfinite(ro)) and not np.allclose(ro, ro0)
    assert hist["readout_snapshots"].shape == (4, ro0.size)


# -- the dynamics engines run on the model unchanged -------------------------------------------
def test_lyapunov_spectrum_exact_cases():
    # W = 0: J = (1 - a) I everywhere, every exponent is log(1 - a)
    model = RateRNN(4, alpha=0.3)
    theta = model.pack(W=np.zeros((4, 4)), b=np.ones(4))
    ds = dynamics.lyapunov_spectrum(model, theta, n_steps=50, n_transient=5, n_transient_ons=0)
    np.testing.assert_allclose(ds["exponents"].values, np.log(0.7), rtol=1e-12)
    # rank one: J v = (1 - a) v for every v orthogonal to n, an invariant subspace of dimension N - 1,
    # so N - 1 exponents equal log(1 - a) exactly; the last one is the latent variable's
    model = RateRNN(6, rank=1, alpha=0.5)
    theta = model.init(0, scale=3.0, b_scale=0.5)
    ds = dynamics.lyapunov_spectrum(model, theta, n_steps=500, n_transient=100, n_init=2)
    lam = np.sort(ds["exponents"].values, axis=1)
    n_equal = np.sum(np.isclose(lam, np.log(0.5), rtol=1e-9, atol=0.0), axis=1)
    assert np.all(n_equal >= 5), lam


@pytest.mark.parametrize("model_id", ["rank1", "full_inputs"])
def test_flossing_gradient_vs_finite_differences(model_id):
    model = MODELS[model_id]
    theta = model.init(1, scale=2.0, b_scale=0.3)
    u = np.full(model.n_inputs, 0.3) if model.n_inputs else None

    def floss(th):
        return dynamics.flossing_loss_and_grad(model, th, 2, n_steps=12, t_ons=2, inputs=u, seed=1)

    res = floss(theta)
    assert res.finite and res.exponents.shape == (1, 2)
    assert rel_err(res.grad, central_fd(lambda th: floss(th).loss, theta, 1e-6)) < 1e-6


def test_orbit_diagram_runs_on_the_rate_rnn():
    model = RateRNN(6, rank=1)
    theta = model.init(0, scale=3.0)
    ds = dynamics.orbit_diagram(model, theta, "m[0,0]", np.linspace(-1.0, 1.0, 4), n_steps=20,
                                n_transient=30, n_init=2, state=[0, 1])
    assert ds["z"].shape == (4, 2, 20, 2)
    assert np.all(np.isfinite(ds["z"].values)) and not ds["diverged"].values.any()
    with pytest.raises(ValueError, match=r"m\[i,q\] or n\[q,j\]"):
        dynamics.orbit_diagram(model, theta, "W[0,1]", [0.0, 1.0])


# -- argument validation ---------------------------------------------------------------------
@pytest.mark.parametrize("kwargs, exc, name", [
    ({"n_units": 0}, ValueError, "n_units"),
    ({"n_units": 2.5}, TypeError, "n_units"),
    ({"n_units": 4, "n_inputs": -1}, ValueError, "n_inputs"),
    ({"n_units": 4, "rank": 0}, ValueError, "rank"),
    ({"n_units": 4, "rank": 5}, ValueError, "rank"),
    ({"n_units": 4, "rank": 1.0}, TypeError, "rank"),
    ({"n_units": 4, "alpha": 0.0}, ValueError, "alpha"),
    ({"n_units": 4, "alpha": 1.5}, ValueError, "alpha"),
    ({"n_units": 4, "alpha": float("nan")}, ValueError, "alpha"),
    ({"n_units": 4, "alpha": "0.5"}, TypeError, "alpha"),
])
def test_model_arguments_are_validated(kwargs, exc, name):
    with pytest.raises(exc, match=name):
        RateRNN(**kwargs)


@pytest.mark.parametrize("kwargs, exc, name", [
    ({"c": 0.0}, ValueError, "c"),
    ({"c": -1.0}, ValueError, "c"),
    ({"c": np.inf}, ValueError, "c"),
    ({"kappa_star": np.nan}, ValueError, "kappa_star"),
    ({"train_c": 1}, TypeError, "train_c"),
])
def test_latent_readout_arguments_are_validated(kwargs, exc, name):
    with pytest.raises(exc, match=name):
        LatentReadout(**kwargs)


def test_pack_and_readout_errors_name_the_argument():
    low, full = RateRNN(4, rank=2), RateRNN(4, n_inputs=1)
    with pytest.raises(ValueError, match="m and n are required"):
        low.pack(m=np.zeros((4, 2)), b=np.zeros(4))
    with pytest.raises(ValueError, match="pass the factors m"):
        low.pack(W=np.zeros((4, 4)), b=np.zeros(4))
    with pytest.raises(ValueError, match=r"n must have shape \(2, 4\)"):
        low.pack(m=np.zeros((4, 2)), n=np.zeros((4, 2)), b=np.zeros(4))
    with pytest.raises(ValueError, match="V is required"):
        full.pack(W=np.zeros((4, 4)), b=np.zeros(4))
    with pytest.raises(ValueError, match="b is required"):
        full.pack(W=np.zeros((4, 4)), V=np.zeros((4, 1)))
    batch = pn.Batch(targets=np.zeros((1, 3, 1)), inputs=np.zeros((3, 1)))
    with pytest.raises(ValueError, match="readout: LatentReadout.*declares none.*LinearReadout"):
        pn.loss_and_grad(full, full.init(0), batch, readout=LatentReadout(), loss="sigmoid_mse")
    b_low = pn.Batch(targets=np.zeros((1, 3, 1)))
    with pytest.raises(ValueError, match="readout_params were given"):
        pn.loss_and_grad(low, low.init(0), b_low, readout=LatentReadout(), readout_params=[1.0])
    with pytest.raises(ValueError, match=r"readout_params must have shape \(1,\)"):
        pn.loss_and_grad(low, low.init(0), b_low, readout=LatentReadout(train_c=True), readout_params=[1.0, 2.0])
    with pytest.raises(ValueError, match="readout_params contains NaN"):
        pn.loss_and_grad(low, low.init(0), b_low, readout=LatentReadout(train_c=True), readout_params=[np.nan])
    with pytest.raises(ValueError, match="loss must be one of"):
        pn.loss_and_grad(low, low.init(0), b_low, readout=LatentReadout(), loss="sigmoid")
    with pytest.raises(ValueError, match="identity readout"):  # teacher forcing needs observed states
        pn.loss_and_grad(low, low.init(0), b_low, readout=LatentReadout(), forcing=pn.GTF(0.5))
    with pytest.raises(TypeError, match="readout must be"):
        pn.loss_and_grad(low, low.init(0), b_low, readout="latent")


def test_latent_readout_overflow_is_a_diverged_run_not_a_bad_argument():
    """c v overflows for a huge but finite theta: the loss saturates, the gradient is non-finite, train flags it."""
    model = RateRNN(3, rank=1)
    theta = np.full(model.n_params, 1e308)
    batch = pn.tasks.delayed_activation(3, n_delay=2, n_active=2)
    with np.errstate(over="ignore", invalid="ignore"):
        res = pn.loss_and_grad(model, theta, batch, readout=LatentReadout(c=10.0), loss="sigmoid_mse")
        assert not np.all(np.isfinite(res.grad))
        h = pn.train(model, theta, batch, n_epochs=2, readout=LatentReadout(c=10.0), loss="sigmoid_mse")
    assert h.attrs["status"] == "diverged"
