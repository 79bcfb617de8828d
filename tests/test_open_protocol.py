"""The piecewise-linear protocol is open: a family defined only in this file gets exact cycles and bifurcations.

The leaky-ReLU PLRNN ``z' = A z + W lrelu(z) + h`` with ``lrelu(x) = x`` for
``x > 0`` and ``beta x`` otherwise (beta = 0.1) is written here as a model (its
four BPTT kernels) plus ``piecewise_linear``, in two variants: with region
kernels of its own, and with the normal form only (the package's generic
kernels).  Nothing in the package knows it.  Checks, against independent
references:

* the family's kernels against its model kernels (``check_piecewise_linear``);
* SCYFI against the brute-force enumeration on random instances: recall 100%,
  no spurious cycle, the same points (``POINT_ATOL``), and every point a true
  cycle of the model's own ``simulate`` (``EXACT``);
* ``bifurcation_path`` locates flips, degenerate transcritical bifurcations and
  border collisions at hand-derived parameter values (``LOCATE_ATOL`` = 1e-6);
* gradients of the family by BPTT against central finite differences.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

import plrnn_numba as pn
from plrnn_numba.dynamics import ScyfiSettings, bifurcation_path, brute_force_cycles, scyfi
from plrnn_numba.models import (
    Model,
    PiecewiseLinear,
    RegionKernels,
    build_kernels,
    check_piecewise_linear,
    jacobian_kernel,
    param_vjp_kernel,
    regions_kernel,
    rollout_kernel,
    state_vjp_kernel,
    step_kernel,
)

from .naive import central_fd
from .test_scyfi import assert_exact_with_simulate, assert_same_cycles

BETA = 0.1
LOCATE_ATOL = 1e-6


# ---------------------------------------------------------------- the family: model kernels
# p = a (M) | W (M*M) | h (M); meta = [M]
@step_kernel
def leaky_step(p, meta, z, s, z_next):
    M = meta[0]
    for b in range(z.shape[0]):
        for i in range(M):
            acc = p[i] * z[b, i] + p[M + M * M + i]
            for j in range(M):
                zj = z[b, j]
                acc += p[M + i * M + j] * (zj if zj > 0.0 else 0.1 * zj)
            z_next[b, i] = acc


@state_vjp_kernel
def leaky_state_vjp(p, meta, z, s, g, g_z):
    M = meta[0]
    for b in range(z.shape[0]):
        for j in range(M):
            acc = 0.0
            for i in range(M):
                acc += p[M + i * M + j] * g[b, i]
            g_z[b, j] = p[j] * g[b, j] + acc * (1.0 if z[b, j] > 0.0 else 0.1)


@param_vjp_kernel
def leaky_param_vjp(p, meta, Z, S, G, g_p):
    M = meta[0]
    for n in range(Z.shape[0]):
        for i in range(M):
            g_p[i] += G[n, i] * Z[n, i]
            g_p[M + M * M + i] += G[n, i]
            for j in range(M):
                zj = Z[n, j]
                g_p[M + i * M + j] += G[n, i] * (zj if zj > 0.0 else 0.1 * zj)


@jacobian_kernel
def leaky_jacobian(p, meta, z, s, J):
    M = meta[0]
    for i in range(M):
        for j in range(M):
            J[i, j] = p[M + i * M + j] * (1.0 if z[j] > 0.0 else 0.1)
        J[i, i] += p[i]


LEAKY_KERNELS = build_kernels(leaky_step, leaky_state_vjp, leaky_param_vjp, leaky_jacobian)


# ---------------------------------------------------------------- the family: region kernels
# the same p; the region of z is d = (z > 0); F_d = diag(a) + W diag(d + beta (1 - d)), c = h
@regions_kernel
def leaky_regions(p, meta, pats, F, c):
    M = meta[0]
    for s in range(pats.shape[0]):
        for i in range(M):
            for j in range(M):
                F[s, i, j] = p[M + i * M + j] * (1.0 if pats[s, j] != 0 else 0.1)
            F[s, i, i] += p[i]
            c[s, i] = p[M + M * M + i]


@rollout_kernel
def leaky_rollout(p, meta, traj, act):
    M = meta[0]
    for s in range(act.shape[0]):
        for i in range(M):
            act[s, i] = 1 if traj[s, i] > 0.0 else 0
        for i in range(M):
            acc = p[i] * traj[s, i] + p[M + M * M + i]
            for j in range(M):
                zj = traj[s, j]
                acc += p[M + i * M + j] * (zj if zj > 0.0 else 0.1 * zj)
            traj[s + 1, i] = acc


LEAKY_REGION_KERNELS = RegionKernels(leaky_regions, leaky_rollout)


@dataclass(frozen=True)
class LeakyPLRNN(Model):
    """``z' = A z + W lrelu(z) + h`` (full W), piecewise linear with the bits ``z_i > 0``."""

    dim: int
    own_kernels: bool = True
    n_inputs: int = 0

    def param_shapes(self):
        return {"A": (self.dim,), "W": (self.dim, self.dim), "h": (self.dim,)}

    @property
    def meta(self):
        return np.array([self.dim], dtype=np.int64)

    @property
    def kernels(self):
        return LEAKY_KERNELS

    def init(self, seed=0):
        rng = np.random.default_rng(seed)
        return rng.normal(size=self.n_params)

    def piecewise_linear(self, theta, inputs=None):
        d = self.unpack(theta)
        M = self.dim
        # lrelu(x) = beta x + (1 - beta) relu(x): L = A + beta W, R = (1 - beta) W, U = I
        form = dict(L=np.diag(d["A"]) + BETA * d["W"], c=d["h"], R=(1.0 - BETA) * d["W"], U=np.eye(M),
                    v=np.zeros(M))
        if self.own_kernels:
            form.update(kernels=LEAKY_REGION_KERNELS, p=np.asarray(theta, dtype=float), meta=self.meta)
        return PiecewiseLinear.from_model(self, theta, inputs, **form)


def random_leaky(seed, M, own_kernels=True):
    """(model, theta) with W ~ N(0, 9), A ~ U(-1.5, 1.5), h ~ N(0, 1): often many, mostly unstable cycles."""
    rng = np.random.default_rng(seed)
    model = LeakyPLRNN(M, own_kernels=own_kernels)
    W = rng.normal(0.0, 3.0, (M, M))
    return model, model.pack(A=rng.uniform(-1.5, 1.5, M), W=W, h=rng.normal(0.0, 1.0, M))


# ---------------------------------------------------------------- checks
@pytest.mark.parametrize("own_kernels", [True, False])
def test_family_kernels_agree_with_the_model(own_kernels):
    model, theta = random_leaky(0, 3, own_kernels)
    errors = check_piecewise_linear(model, theta)
    assert max(errors.values()) <= 1e-12
    assert model.is_piecewise_linear


def test_a_wrong_family_is_caught_by_the_check():
    @dataclass(frozen=True)
    class Wrong(LeakyPLRNN):
        def piecewise_linear(self, theta, inputs=None):  # forgets the leak
            d = self.unpack(theta)
            return PiecewiseLinear.from_model(self, theta, inputs, L=np.diag(d["A"]), c=d["h"], R=d["W"],
                                              U=np.eye(self.dim), v=np.zeros(self.dim))

    model = Wrong(2, own_kernels=False)
    with pytest.raises(ValueError, match="disagrees with model.step"):
        check_piecewise_linear(model, random_leaky(1, 2)[1])


# seeds whose systems have 5 to 22 cycles of up to 4 to 6 different orders (75 in all)
RICH_SEEDS = [26, 60, 50, 17, 65, 59, 69, 15]


@pytest.mark.parametrize("own_kernels", [True, False])
@pytest.mark.parametrize("seed", RICH_SEEDS)
def test_scyfi_equals_brute_force(seed, own_kernels):
    M = 2 if seed % 2 == 0 else 3
    K = 6 if M == 2 else 4
    model, theta = random_leaky(seed, M, own_kernels)
    ref = brute_force_cycles(model, theta, K)
    ds = scyfi(model, theta, K, seed=seed, settings=ScyfiSettings(n_outer=4, n_inner=lambda k: 2 ** (M * k)))
    assert_same_cycles(ds, ref)  # recall 100%, no spurious cycle, same points
    np.testing.assert_array_equal(ds.stability.values, ref.stability.values)
    assert_exact_with_simulate(model, theta, ds)
    assert ref.sizes["cycle"] >= 5 and len(set(ref.order.values)) >= 3


def test_the_two_kernel_variants_find_the_same_cycles():
    own, theta = random_leaky(3, 3, True)
    generic = LeakyPLRNN(3, own_kernels=False)
    assert_same_cycles(scyfi(own, theta, 4, seed=1), scyfi(generic, theta, 4, seed=1))


def _events(events, kind):
    return np.sort(events.s.values[events.kind.values == kind])


@pytest.mark.parametrize("own_kernels", [True, False])
def test_bifurcations_at_hand_derived_values_in_one_dimension(own_kernels):
    """z' = a z + w lrelu(z) + h with w = 0.5, h = 0.4 > 0, along a.

    Right branch slope sR = a + w, left branch sL = a + beta w.  The right fixed
    point h / (1 - sR) flips at sR = -1 (a = -1.5), where the 2-cycle
    p <= 0 < q, p = h (1 + sR) / (1 - sR sL), appears at the border (p = 0); the
    2-cycle escapes to infinity where sR sL = 1 (a = -1.3); the right fixed point
    escapes at sR = 1 (a = 0.5); the left fixed point h / (1 - sL) <= 0 comes from
    infinity at sL = 1 (a = 0.95).
    """
    w, h, a0 = 0.5, 0.4, -2.03
    model = LeakyPLRNN(1, own_kernels=own_kernels)
    theta = model.pack(A=[a0], W=[[w]], h=[h])
    _, events = bifurcation_path(model, theta, "A[0]", np.linspace(0.0, 3.2, 17), max_order=2)
    np.testing.assert_allclose(_events(events, "flip"), [-1.5 - a0] * 2, atol=LOCATE_ATOL)
    np.testing.assert_allclose(_events(events, "degenerate transcritical"), np.array([-1.3, 0.5, 0.95]) - a0,
                               atol=LOCATE_ATOL)
    dt = events.where(events.kind == "degenerate transcritical", drop=True)
    assert dt.order.values.tolist() == [2, 1, 1]
    assert dt.change.values.tolist() == ["disappears", "disappears", "appears"]
    assert set(events.kind.values) == {"flip", "degenerate transcritical"}


@pytest.mark.parametrize("own_kernels", [True, False])
def test_bifurcations_at_hand_derived_values_in_two_dimensions(own_kernels):
    """A triangular W makes the region maps' eigenvalues their diagonal entries.

    z' = diag(a1, 0.2) z + [[0.5, 0.4], [0, 0.3]] lrelu(z) + (0.2, h2): in the
    region (+, +) the eigenvalues are a1 + 0.5 and 0.5, the fixed point is
    z2 = h2 / 0.5, z1 = (0.2 + 0.4 z2) / (0.5 - a1).  Along a1 it flips at
    a1 = -1.5; along h2 its second component meets the border z2 = 0 at h2 = 0 and
    the fixed point persists into the region (+, -) (a border collision).
    """
    model = LeakyPLRNN(2, own_kernels=own_kernels)
    W = np.array([[0.5, 0.4], [0.0, 0.3]])
    theta = model.pack(A=[-2.03, 0.2], W=W, h=[0.2, 0.5])
    _, events = bifurcation_path(model, theta, "A[0]", np.linspace(0.0, 1.0, 6), max_order=2)
    np.testing.assert_allclose(_events(events, "flip"), [-1.5 + 2.03] * 2, atol=LOCATE_ATOL)
    theta = model.pack(A=[-0.5, 0.2], W=W, h=[0.2, 0.5])
    objects, events = bifurcation_path(model, theta, {"h[1]": -1.0}, np.linspace(0.0, 1.0, 6), max_order=2)
    assert events.sizes["event"] == 1
    np.testing.assert_allclose(events.s.values, [0.5], atol=LOCATE_ATOL)
    assert events.kind.values[0] == "border collision" and events.change.values[0] == "persists"
    assert int(events.boundary_unit.values[0]) == 1
    np.testing.assert_allclose(events.point.values[0], [0.2 / 1.0, 0.0], atol=1e-6)  # z1 = 0.2 / (0.5 + 0.5)


def test_training_gradients_of_the_family_match_finite_differences():
    model, theta = random_leaky(4, 3)
    rng = np.random.default_rng(0)
    batch = pn.Batch(targets=rng.normal(0, 0.5, (2, 6, 3)), z0=rng.normal(0, 0.5, (2, 3)))
    res = pn.loss_and_grad(model, 0.3 * theta, batch, forcing=pn.GTF(0.2))
    fd = central_fd(lambda th: pn.loss_and_grad(model, th, batch, forcing=pn.GTF(0.2)).loss, 0.3 * theta, 1e-6)
    assert np.linalg.norm(fd - res.grad) <= 1e-6 * np.linalg.norm(res.grad)
