"""The extension point: a map that is not in the package gets every engine for free.

The Hénon map ``(x, y) -> (1 - a x^2 + y + c s, b x)`` with parameters
``theta = (a, b, c)`` is written here as four kernels and a Model subclass,
then trained with BPTT and teacher forcing and checked against finite
differences.  A variant keeps a tape (``x^2`` of every step, read by the
parameter pullback instead of recomputing it): the optional tape protocol.
"""

from dataclasses import dataclass

import numpy as np
import pytest

import plrnn_numba as pn
from plrnn_numba.models import (
    Model,
    TapeKernels,
    build_kernels,
    jacobian_kernel,
    param_vjp_kernel,
    state_vjp_kernel,
    step_kernel,
    tape_param_vjp_kernel,
    tape_state_vjp_kernel,
    tape_step_kernel,
)

from .naive import central_fd


@step_kernel
def henon_step(p, meta, z, s, z_next):
    a, b, c = p[0], p[1], p[2]
    for i in range(z.shape[0]):
        x, y = z[i, 0], z[i, 1]
        drive = c * s[i, 0] if s.shape[1] > 0 else 0.0
        z_next[i, 0] = 1.0 - a * x * x + y + drive
        z_next[i, 1] = b * x


@state_vjp_kernel
def henon_state_vjp(p, meta, z, s, g, g_z):
    a, b = p[0], p[1]
    for i in range(z.shape[0]):
        g_z[i, 0] = -2.0 * a * z[i, 0] * g[i, 0] + b * g[i, 1]
        g_z[i, 1] = g[i, 0]


@param_vjp_kernel
def henon_param_vjp(p, meta, Z, S, G, g_p):
    for n in range(Z.shape[0]):
        x = Z[n, 0]
        g_p[0] += -x * x * G[n, 0]
        g_p[1] += x * G[n, 1]
        if S.shape[1] > 0:
            g_p[2] += S[n, 0] * G[n, 0]


@jacobian_kernel
def henon_jacobian(p, meta, z, s, J):
    J[0, 0] = -2.0 * p[0] * z[0]
    J[0, 1] = 1.0
    J[1, 0] = p[1]
    J[1, 1] = 0.0


HENON_KERNELS = build_kernels(henon_step, henon_state_vjp, henon_param_vjp, henon_jacobian)


@dataclass(frozen=True)
class Henon(Model):
    dim: int = 2
    n_inputs: int = 0

    def param_shapes(self):
        return {"a": (), "b": (), "c": ()}

    @property
    def kernels(self):
        return HENON_KERNELS

    def init(self, seed=None):
        return np.array([1.4, 0.3, 0.0])


@tape_step_kernel
def henon_tape_step(p, meta, z, s, z_next, tape):
    a, b, c = p[0], p[1], p[2]
    for i in range(z.shape[0]):
        x, y = z[i, 0], z[i, 1]
        tape[i, 0] = x * x
        drive = c * s[i, 0] if s.shape[1] > 0 else 0.0
        z_next[i, 0] = 1.0 - a * tape[i, 0] + y + drive
        z_next[i, 1] = b * x


@tape_state_vjp_kernel
def henon_tape_state_vjp(p, meta, z, s, tape, g, g_z):
    a, b = p[0], p[1]
    for i in range(z.shape[0]):
        g_z[i, 0] = -2.0 * a * z[i, 0] * g[i, 0] + b * g[i, 1]
        g_z[i, 1] = g[i, 0]


@tape_param_vjp_kernel
def henon_tape_param_vjp(p, meta, Z, S, TAPE, G, g_p):
    for n in range(Z.shape[0]):
        g_p[0] += -TAPE[n, 0] * G[n, 0]  # x^2 from the tape
        g_p[1] += Z[n, 0] * G[n, 1]
        if S.shape[1] > 0:
            g_p[2] += S[n, 0] * G[n, 0]


@dataclass(frozen=True)
class HenonWithTape(Henon):
    @property
    def tape_width(self):
        return 1

    @property
    def tape_kernels(self):
        return TapeKernels(henon_tape_step, henon_tape_state_vjp, henon_tape_param_vjp)


def test_custom_map_simulates_like_plain_python():
    model = Henon()
    theta = model.init()
    Z = model.simulate(theta, np.array([0.1, 0.1]), n_steps=50)
    # chaotic: compare step by step (rounding differences grow along a trajectory)
    for t in range(50):
        x, y = Z[t]
        np.testing.assert_allclose(Z[t + 1], [1 - 1.4 * x * x + y, 0.3 * x], rtol=1e-12, atol=1e-15)
    J = model.jacobian(theta, np.array([0.5, -0.2]))
    np.testing.assert_allclose(J, [[-1.4, 1.0], [0.3, 0.0]])
    assert model.param_names() == ["a", "b", "c"]


@pytest.mark.parametrize("forcing", [None, pn.GTF(0.4), pn.SparseTF(2)])
@pytest.mark.parametrize("with_input", [False, True])
def test_custom_map_gradient_matches_finite_differences(forcing, with_input):
    model = Henon(n_inputs=1 if with_input else 0)
    theta = np.array([1.2, 0.3, 0.2 if with_input else 0.0])
    rng = np.random.default_rng(3)
    B, T = 3, 8
    batch = pn.Batch(
        targets=rng.normal(0, 0.5, (B, T, 1)),
        inputs=rng.normal(0, 0.1, (B, T, 1)) if with_input else None,
        z0=rng.normal(0, 0.2, (B, 2)),
    )
    res = pn.loss_and_grad(model, theta, batch, readout=pn.IdentityReadout(1), forcing=forcing)
    fd = central_fd(
        lambda th: pn.loss_and_grad(model, th, batch, readout=pn.IdentityReadout(1), forcing=forcing).loss, theta, 1e-6
    )
    assert np.linalg.norm(fd - res.grad) <= 1e-6 * np.linalg.norm(res.grad)


@pytest.mark.parametrize("forcing", [None, pn.GTF(0.4)])
def test_custom_map_with_a_tape_gives_the_same_gradient(forcing):
    theta = np.array([1.2, 0.3, 0.2])
    rng = np.random.default_rng(5)
    batch = pn.Batch(targets=rng.normal(0, 0.5, (3, 8, 1)), inputs=rng.normal(0, 0.1, (3, 8, 1)),
                     z0=rng.normal(0, 0.2, (3, 2)))
    kw = {"readout": pn.IdentityReadout(1), "forcing": forcing}
    plain = pn.loss_and_grad(Henon(n_inputs=1), theta, batch, **kw)
    taped = pn.loss_and_grad(HenonWithTape(n_inputs=1), theta, batch, **kw)
    assert taped.loss == plain.loss
    np.testing.assert_allclose(taped.grad, plain.grad, rtol=1e-13)
    np.testing.assert_allclose(taped.grad_z0, plain.grad_z0, rtol=1e-13)


def test_custom_map_trains():
    model = Henon()
    true = np.array([1.2, 0.3, 0.0])
    x = model.simulate(true, np.array([0.1, 0.0]), n_steps=400)[100:, :1]
    sampler = pn.SubsequenceSampler(x, seq_len=5, batch_size=8)
    hist = pn.train(
        model,
        np.array([1.0, 0.2, 0.0]),
        sampler,
        n_epochs=300,
        optimizer=pn.Adam(0.02),
        forcing=pn.GTF(0.5),
        seed=1,
        readout=pn.IdentityReadout(1),
    )
    assert hist.attrs["status"] == "completed"
    np.testing.assert_allclose(hist["theta"].values[:2], true[:2], atol=0.05)
