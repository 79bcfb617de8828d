"""Covariant Lyapunov vectors (Ginelli et al. 2007): exact for a linear map, covariant along nonlinear
trajectories, their growth rates average to the Lyapunov exponents."""

import numpy as np
import pytest

import plrnn_numba as pn
from plrnn_numba.dynamics import covariant_lyapunov_vectors, lyapunov_spectrum

from .test_custom_model import Henon
from .test_lyapunov_sem import RandomLinear

EXACT_ATOL = 1e-10  # constant linear maps: exact up to rounding after the transients
COVARIANT_ATOL = 1e-6  # J_t V_t / |J_t V_t| against V_{t+1} (rounding grows along the weaker vectors)


def _covariance_error(model, theta, ds):
    """max over t of |J_{t+1} v_t / |J_{t+1} v_t| - v_{t+1}| per vector, and the growth rates log|J v|."""
    V, Z = ds["clv"].values, ds["z"].values
    err = np.zeros(V.shape[2])
    rates = np.empty((V.shape[0] - 1, V.shape[2]))
    for t in range(V.shape[0] - 1):
        W = model.jacobian(theta, Z[t]) @ V[t]
        nrm = np.linalg.norm(W, axis=0)
        rates[t] = np.log(nrm)
        err = np.maximum(err, np.abs(W / nrm - V[t + 1]).max(axis=0))
    return err, rates


def test_constant_linear_map_clvs_are_the_eigenvectors():
    # a non-normal A = P diag(lam) P^-1 (eigenvectors far from orthogonal), one eigenvalue negative
    lam = np.array([0.95, -0.6, 0.3])
    P = np.array([[1.0, 0.9, 0.2], [0.0, 0.5, 0.7], [0.3, 0.1, 1.0]])
    P /= np.linalg.norm(P, axis=0)
    A = P @ np.diag(lam) @ np.linalg.inv(P)
    model = RandomLinear(3)
    ds = covariant_lyapunov_vectors(model, A.ravel(), n_steps=40, n_transient=0, n_transient_ons=80,
                                    n_transient_backward=80, z0=[1.0, -0.5, 0.2], seed=3)
    assert int(ds["diverged"]) == 0 and ds["clv"].dims == ("time", "state", "vector")
    V = ds["clv"].values
    # |<v_j, p_j>| = 1: the CLVs are the eigenvectors up to sign, at every time
    np.testing.assert_allclose(np.abs(np.einsum("tmj,mj->tj", V, P)), 1.0, atol=EXACT_ATOL)
    np.testing.assert_allclose(ds["local_growth"].values, np.broadcast_to(np.log(np.abs(lam)), (40, 3)),
                               atol=EXACT_ATOL)
    np.testing.assert_allclose(ds["exponents"].values, np.log(np.abs(lam)), atol=EXACT_ATOL)
    # angles between the eigenvector lines; no positive exponent: no unstable subspace
    cos = np.abs(P.T @ P)
    np.testing.assert_allclose(ds["angles"].values[7], np.arccos(np.clip(cos, 0, 1)), atol=1e-7)
    assert ds.attrs["n_unstable"] == 0 and np.isnan(ds["min_angle_unstable_stable"].values).all()


def test_henon_clvs_are_covariant_and_converge_whatever_the_start():
    model = Henon()
    theta = model.init()
    kw = dict(n_steps=300, n_transient=200, n_transient_ons=100, n_transient_backward=100, z0=[0.1, 0.1])
    ds = covariant_lyapunov_vectors(model, theta, seed=0, **kw)
    err, rates = _covariance_error(model, theta, ds)
    assert err.max() < COVARIANT_ATOL, err
    np.testing.assert_allclose(rates, ds["local_growth"].values[:-1], atol=1e-10)
    # another random orthonormal start and backward start: the same vectors (up to sign) and growth rates
    other = covariant_lyapunov_vectors(model, theta, seed=7, **kw)
    np.testing.assert_allclose(np.abs(np.einsum("tmj,tmj->tj", ds["clv"].values, other["clv"].values)), 1.0,
                               atol=1e-10)
    np.testing.assert_allclose(ds["local_growth"].values, other["local_growth"].values, atol=1e-10)
    # one unstable, one stable direction: the minimal subspace angle is the angle between the two lines
    assert ds.attrs["n_unstable"] == 1
    np.testing.assert_allclose(ds["min_angle_unstable_stable"].values, ds["angles"].values[:, 0, 1], atol=1e-10)
    assert 0 < ds["min_angle_unstable_stable"].min() < ds["min_angle_unstable_stable"].max() <= np.pi / 2


def test_chaotic_rnn_clvs_are_covariant_with_k_below_the_dimension():
    model = pn.VanillaRNN(32)
    theta = model.init(0, g=3.0)
    ds = covariant_lyapunov_vectors(model, theta, k=6, n_steps=300, n_transient_ons=300,
                                    n_transient_backward=600, seed=2)
    assert ds["clv"].shape == (300, 32, 6)
    err, rates = _covariance_error(model, theta, ds)
    assert err.max() < COVARIANT_ATOL, err
    np.testing.assert_allclose(rates, ds["local_growth"].values[:-1], atol=1e-8)
    np.testing.assert_allclose(np.linalg.norm(ds["clv"].values, axis=1), 1.0, atol=1e-12)


@pytest.mark.parametrize("case", ["henon", "vanilla"])
def test_time_averaged_growth_rates_are_the_lyapunov_exponents(case):
    if case == "henon":
        model, k, n = Henon(), None, 20_000
        theta = model.init()
        z0 = [0.1, 0.1]
    else:
        model, k, n = pn.VanillaRNN(32), 4, 4_000
        theta = model.init(0, g=3.0)
        z0 = None
    ds = covariant_lyapunov_vectors(model, theta, k=k, n_steps=n, n_transient_ons=500, n_transient_backward=500,
                                    z0=z0)
    ref = lyapunov_spectrum(model, theta, k=k, n_steps=20_000, n_init=4)
    se = np.hypot(ds["exponents_block_sem"].values, ref["mean_block_sem"].values)
    z = np.abs(ds["exponents"].values - ref["mean"].values) / se
    assert z.max() < 4, (ds["exponents"].values, ref["mean"].values, se)
    if case == "henon":
        np.testing.assert_allclose(ds["exponents"].values, [0.4199, -1.6240], atol=2e-2)


def test_diverging_and_singular_maps_are_flagged(tmp_path):
    model = pn.PLRNN(2, full_W=True)
    theta = model.pack(A=[3.0, 3.0], W=np.zeros((2, 2)), h=[1.0, 1.0])
    ds = covariant_lyapunov_vectors(model, theta, n_steps=20, n_transient=2000)
    assert int(ds["diverged"]) == 1 and np.isnan(ds["clv"].values).all() and np.isnan(ds["exponents"]).all()
    singular = covariant_lyapunov_vectors(RandomLinear(2), np.array([0.5, 0.0, 0.0, 0.0]), n_steps=5,
                                          n_transient_ons=5, n_transient_backward=5)
    assert int(singular["diverged"]) == 1
    back = pn.io.open(pn.io.save(singular, tmp_path / "clv.nc"))
    assert int(back["diverged"]) == 1


def test_inputs_seed_and_bad_arguments():
    model = pn.VanillaRNN(3, n_inputs=1)
    theta = model.init(0, g=2.0)
    kw = dict(n_steps=10, n_transient=5, n_transient_ons=5, n_transient_backward=5)
    stream = np.random.default_rng(0).normal(size=(25, 1))
    a = covariant_lyapunov_vectors(model, theta, inputs=stream, **kw)
    b = covariant_lyapunov_vectors(model, theta, inputs=stream, **kw)
    np.testing.assert_array_equal(a["clv"].values, b["clv"].values)
    assert a.attrs["producer"] == "plrnn_numba.dynamics.covariant_lyapunov_vectors"
    with pytest.raises(ValueError, match=r"inputs must have shape \(1,\) \(constant\), \(25, 1\)"):
        covariant_lyapunov_vectors(model, theta, inputs=np.zeros((24, 1)), **kw)
    with pytest.raises(ValueError, match="z0 must be one state"):
        covariant_lyapunov_vectors(model, theta, inputs=[0.1], z0=np.zeros((2, 3)), **kw)
    with pytest.raises(ValueError, match="k must be <="):
        covariant_lyapunov_vectors(model, theta, inputs=[0.1], k=4, **kw)
    with pytest.raises(ValueError, match="n_transient_backward must be >= 0"):
        covariant_lyapunov_vectors(model, theta, inputs=[0.1], n_transient_backward=-1)
