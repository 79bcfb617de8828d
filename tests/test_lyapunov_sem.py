"""Standard errors of lyapunov_spectrum: across initial conditions and by batch means over time blocks.

The reference is a random linear map ``z' = (A + diag(s_t)) z`` with diagonal
``A`` and i.i.d. inputs ``s_t = +-d``: its exponents are exactly
``(log|a + d| + log|a - d|) / 2`` and its local growth rates are independent
with standard deviation ``|log|a + d| - log|a - d|| / 2``, so the standard
error of an ``n``-step, ``B``-trajectory estimate is known:
``sd / sqrt(n B)``.  The map (a user-defined model) also serves the CLV tests
(``s = 0``: the constant linear map ``z -> A z``).
"""

from dataclasses import dataclass

import numpy as np
import pytest

import plrnn_numba as pn
from plrnn_numba.dynamics import lyapunov_spectrum
from plrnn_numba.dynamics.lyapunov import _block_lengths
from plrnn_numba.models import (
    Model,
    build_kernels,
    jacobian_kernel,
    param_vjp_kernel,
    state_vjp_kernel,
    step_kernel,
)


# ---------------------------------------------------------------- z' = (A + diag(s)) z, theta = A (row-major)
@step_kernel
def _lin_step(p, meta, z, s, z_next):
    M = meta[0]
    for b in range(z.shape[0]):
        for i in range(M):
            acc = 0.0
            for j in range(M):
                acc += p[i * M + j] * z[b, j]
            if s.shape[1] > 0:
                acc += s[b, i] * z[b, i]
            z_next[b, i] = acc


@state_vjp_kernel
def _lin_state_vjp(p, meta, z, s, g, g_z):
    M = meta[0]
    for b in range(z.shape[0]):
        for j in range(M):
            acc = 0.0
            for i in range(M):
                acc += p[i * M + j] * g[b, i]
            if s.shape[1] > 0:
                acc += s[b, j] * g[b, j]
            g_z[b, j] = acc


@param_vjp_kernel
def _lin_param_vjp(p, meta, Z, S, G, g_p):
    M = meta[0]
    for n in range(Z.shape[0]):
        for i in range(M):
            for j in range(M):
                g_p[i * M + j] += G[n, i] * Z[n, j]


@jacobian_kernel
def _lin_jacobian(p, meta, z, s, J):
    M = meta[0]
    for i in range(M):
        for j in range(M):
            J[i, j] = p[i * M + j]
        if s.shape[0] > 0:
            J[i, i] += s[i]


LINEAR_KERNELS = build_kernels(_lin_step, _lin_state_vjp, _lin_param_vjp, _lin_jacobian)


@dataclass(frozen=True)
class RandomLinear(Model):
    """``z' = (A + diag(s)) z``; autonomous (``z' = A z``) with ``n_inputs=0``, else ``n_inputs == dim``."""

    dim: int = 2
    n_inputs: int = 0

    def param_shapes(self):
        return {"A": (self.dim, self.dim)}

    @property
    def kernels(self):
        return LINEAR_KERNELS

    def init(self, seed=0):
        return np.diag(np.linspace(0.9, 0.5, self.dim)).ravel()


A_DIAG = np.array([0.9, 0.5])
D = np.array([0.3, 0.2])
TRUE = np.sort((np.log(A_DIAG + D) + np.log(A_DIAG - D)) / 2)[::-1]
SD = np.abs(np.log(A_DIAG + D) - np.log(A_DIAG - D))[np.argsort(-TRUE)] / 2  # per-step sd of the local rates


def _random_linear(n_steps, B=8, seed=0):
    model = RandomLinear(2, n_inputs=2)
    kw = dict(n_steps=n_steps, n_transient=0, n_transient_ons=100, n_init=B, seed=seed)
    T = 100 + n_steps
    signs = np.random.default_rng(seed + 1).choice([-1.0, 1.0], size=(B, T, 2))
    return lyapunov_spectrum(model, np.diag(A_DIAG).ravel(), inputs=signs * D, **kw)


def test_random_linear_map_standard_errors_are_right_and_shrink_like_one_over_sqrt_steps():
    B = 32
    sems = []
    for n in (1_000, 4_000, 16_000):
        ds = _random_linear(n, B)
        expected = SD / np.sqrt(n * B)
        # the true exponents lie within a few standard errors
        z = np.abs(ds["mean"].values - TRUE) / ds["mean_block_sem"].values
        assert z.max() < 4, (n, z)
        # both estimates of the standard error match the exact one (i.i.d. local rates)
        np.testing.assert_allclose(ds["mean_block_sem"].values, expected, rtol=0.25)
        np.testing.assert_allclose(ds["exponents_sem"].values, expected, rtol=0.4)
        # per-trajectory block SE: sd / sqrt(n)
        np.testing.assert_allclose(ds["exponents_block_sem"].values.mean(axis=0), SD / np.sqrt(n), rtol=0.25)
        assert ds["exponents_block_sem"].attrs["n_blocks"] == 20 and ds.attrs["producer"].endswith("spectrum")
        sems.append(ds["mean_block_sem"].values)
    ratio = sems[0] / sems[-1]  # 16x the steps: 4x smaller
    np.testing.assert_allclose(ratio, 4.0, rtol=0.3)


def test_chaotic_rnn_standard_error_across_initial_conditions_matches_the_block_estimate():
    model = pn.VanillaRNN(32)  # g = 3: chaotic, lambda_1 ~ 0.21
    ds = lyapunov_spectrum(model, model.init(0, g=3.0), k=3, n_steps=4_000, n_init=16, seed=1)
    assert ds["mean"].values[0] > 0.1
    ratio = ds["exponents_sem"].values / ds["mean_block_sem"].values
    assert np.all((ratio > 0.5) & (ratio < 2.0)), ratio
    # the exponents of different initial conditions scatter like their block standard errors say
    spread = ds["exponents"].std("init", ddof=1).values / ds["exponents_block_sem"].mean("init").values
    assert np.all((spread > 0.5) & (spread < 2.0)), spread


def test_constant_linear_map_has_zero_standard_errors_and_exponents_are_unchanged():
    model = pn.PLRNN(2, full_W=True)
    theta = model.pack(A=[1.1, 0.8], W=np.zeros((2, 2)), h=[0.0, 0.0])
    kw = dict(n_steps=200, n_transient=0, n_transient_ons=120, t_ons=5, n_init=3)
    a = lyapunov_spectrum(model, theta, **kw)
    b = lyapunov_spectrum(model, theta, n_blocks=7, **kw)
    np.testing.assert_array_equal(a["exponents"].values, b["exponents"].values)
    assert b["exponents_block_sem"].attrs["n_blocks"] == 7
    for ds in (a, b):
        assert np.all(ds["exponents_block_sem"].values < 1e-12) and np.all(ds["exponents_sem"].values < 1e-12)


@pytest.mark.parametrize("n_transient_ons, n_steps, t_ons, n_blocks", [(0, 100, 1, 20), (100, 103, 7, 20),
                                                                     (5, 10, 4, 20), (3, 50, 1, 50)])
def test_blocks_cover_the_accumulated_steps(n_transient_ons, n_steps, t_ons, n_blocks):
    lengths = _block_lengths(n_transient_ons, n_steps, t_ons, n_blocks)
    assert lengths.sum() == n_steps and np.all(lengths > 0)
    n_total = n_transient_ons + n_steps
    n_qr = sum(1 for tt in range(n_transient_ons, n_total) if (tt + 1) % t_ons == 0 or tt == n_total - 1)
    assert lengths.size == min(n_blocks, n_qr)
    assert lengths.max() - lengths.min() <= 2 * t_ons


def test_block_lengths_closed_form_for_every_step_a_qr_step():
    # t_ons = 1 has a closed form; it must assign the blocks as the general rule does
    def general(n_steps, n_blocks):
        n_eff = min(n_blocks, n_steps)
        return np.bincount(np.arange(n_steps) * n_eff // n_steps, minlength=n_eff).astype(float)

    for n_steps in [*range(1, 70), 999, 1000, 1001, 10_007]:
        for n_blocks in (2, 3, 7, 20, 30, 64):
            np.testing.assert_array_equal(_block_lengths(4, n_steps, 1, n_blocks), general(n_steps, n_blocks))


def test_single_initial_condition_and_few_qr_steps():
    model = pn.VanillaRNN(4)
    theta = model.init(0, g=2.0)
    ds = lyapunov_spectrum(model, theta, n_steps=3, n_transient=10, n_transient_ons=0)
    assert np.isnan(ds["exponents_sem"].values).all()  # one initial condition: no spread
    assert ds["exponents_block_sem"].attrs["n_blocks"] == 3 and np.isfinite(ds["exponents_block_sem"].values).all()
    with pytest.raises(ValueError, match="n_blocks must be >= 2"):
        lyapunov_spectrum(model, theta, n_steps=10, n_blocks=1)
    # one QR step: no block standard error
    ds = lyapunov_spectrum(model, theta, n_steps=5, t_ons=5, n_transient=0, n_transient_ons=0)
    assert np.isnan(ds["exponents_block_sem"].values).all()
