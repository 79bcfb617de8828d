"""The analytic BPTT gradient against finite differences and a naive reference.

``plrnn_numba.loss_and_grad`` (reverse mode, numba kernels) is checked

1. against central finite differences of its own loss, and
2. against :mod:`tests.naive`, a plain-NumPy implementation written from the
   model equations that computes the gradient in forward mode,

for every model x readout x loss x forcing mode (with and without a mask that
drops and down-weights time steps), and the parallel batch-chunked engine is
checked against the serial one.  The naive reference itself is checked
against the package's step/Jacobian kernels and against finite differences.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, replace

import numpy as np
import pytest

from plrnn_numba import (
    GTF,
    PLRNN,
    Batch,
    FreeRunning,
    IdentityReadout,
    LinearReadout,
    ShallowPLRNN,
    SparseTF,
    VanillaRNN,
    loss_and_grad,
    predict,
)
from plrnn_numba.bptt import _auto_chunks

from .naive import (
    central_fd,
    n_params,
    naive_forward,
    naive_kink_arguments,
    naive_kink_distances,
    naive_kink_sensitivity,
    naive_loss,
    naive_loss_and_grad,
    naive_param_jacobian,
    naive_params,
    naive_state_jacobian,
    naive_step,
)

# Central differences (f(x + h) - f(x - h)) / 2h with h = FD_STEP = 1e-5 have a
# truncation error h^2 |f'''| / 6 ~ 1e-11 |f'''| and a rounding error
# ~ eps |f| / h ~ 1e-16 / 1e-5 = 1e-11 per component (losses are O(1)-O(10) here;
# the package's fast-math exp/tanh add a little), i.e. up to ~1e-8 relative
# to the smallest gradients here (||dL/dz0|| ~ 1e-2).  Measured: <= 6e-9.
# FD_RTOL = 1e-6 leaves two orders of magnitude of margin, while a real error
# (a missing term, a wrong sign or forcing factor) shows up at 1e-3 or above.
# (h = 1e-5 is close to the optimal eps^(1/3); with h = 1e-6 rounding
# dominates and the errors reach 5e-8.)
FD_RTOL = 1e-6
#: finite-difference step
FD_STEP = 1e-5
# The package and the naive reference compute the same quantities exactly in
# exact arithmetic; they differ only by rounding (reverse vs forward mode,
# summation order, fast-math reassociation), i.e. ~1e-15 relative (measured).
REF_RTOL = 1e-10
# ReLU kinks: a finite difference across a kink is wrong.  Every ReLU argument x
# of a test problem's forward pass satisfies |x| >= KINK_SAFETY * FD_STEP * slope,
# slope = max |dx/dq| over all single coordinates q of theta and z0 (computed in
# forward mode by the reference), so no perturbation of size FD_STEP moves it
# even a tenth of the way to its kink.  (Arguments that do not depend on the
# parameters, e.g. states replaced by a 0 target, may sit at the kink.)
KINK_SAFETY = 10.0
#: distance to the kinks for the one-step Jacobian checks (slopes there are O(1))
KINK_MARGIN = 1e-3

B, T = 3, 8

# model id -> (model, number of observed channels N for the identity readout)
MODELS = {
    "plrnn": (PLRNN(dim=4), 2),
    "plrnn_fullW": (PLRNN(dim=3, full_W=True), 3),
    "plrnn_inputs": (PLRNN(dim=4, n_inputs=2), 2),
    "shallow": (ShallowPLRNN(dim=4, hidden=6), 3),
    "shallow_clipped": (ShallowPLRNN(dim=4, hidden=5, n_inputs=2, clipped=True), 2),
    "vanilla_tanh": (VanillaRNN(n_hidden=5, n_inputs=2, nonlinearity="tanh"), 3),
    "vanilla_relu": (VanillaRNN(n_hidden=4, n_inputs=1, nonlinearity="relu"), 2),
}
FORCINGS = {"free": FreeRunning(), "sparse3": SparseTF(3), "gtf0.3": GTF(0.3)}
LINEAR_OUT = 2  # outputs of the linear readout


@dataclass(frozen=True)
class Problem:
    """One loss evaluation: model, parameters, data, readout, loss and forcing."""

    model: object
    theta: np.ndarray
    batch: Batch
    readout: object
    ro_params: np.ndarray
    loss: str
    forcing: object

    def package(self, theta=None, ro_params=None, z0=None, **kwargs):
        """``loss_and_grad`` at this problem, optionally at other parameters."""
        batch = self.batch if z0 is None else replace(self.batch, z0=z0)
        ro = self.ro_params if ro_params is None else ro_params
        return loss_and_grad(
            self.model, self.theta if theta is None else theta, batch, readout=self.readout,
            readout_params=ro if ro.size else None, loss=self.loss, forcing=self.forcing, **kwargs,
        )

    def naive(self):
        """``naive_loss_and_grad`` at this problem."""
        return naive_loss_and_grad(self.model, self.theta, self.batch, self.readout,
                                   self.ro_params if self.ro_params.size else None, self.loss, self.forcing)


def _mask_with_holes(Bn, Tn):
    # zeros at some steps (t = 3 and t = 6 are SparseTF(3) forcing steps) and a fractional weight
    mask = np.ones((Bn, Tn))
    mask[0, 2] = 0.0
    mask[1, 5] = 0.0
    mask[2, 0] = 0.0
    mask[2, 4] = 0.5
    return mask


def make_problem(model_id, readout_kind, loss, forcing_id, masked, Bn=B, Tn=T):
    """A deterministic random problem whose ReLU arguments all stay away from their kinks.

    Seeds are derived from the parameter ids; the first of a fixed sequence of
    seeds whose forward pass keeps every ReLU argument out of reach of the
    finite-difference perturbations (see KINK_SAFETY) is used, so the problem
    is the same on every run.
    """
    model, n_obs = MODELS[model_id]
    forcing = FORCINGS[forcing_id]
    M, K = model.dim, model.n_inputs
    base = zlib.crc32(f"{model_id}/{readout_kind}/{loss}/{forcing_id}/{masked}".encode())
    for attempt in range(100):
        rng = np.random.default_rng([base, attempt])
        theta = model.init(seed=int(rng.integers(2**31))) + 0.2 * rng.normal(size=model.n_params)
        if readout_kind == "identity":
            readout, N = IdentityReadout(n_obs), n_obs
            ro = np.zeros(0)
        else:
            readout, N = LinearReadout(LINEAR_OUT), LINEAR_OUT
            ro = rng.normal(0.0, 0.6, LINEAR_OUT * M + LINEAR_OUT)
        if loss == "mse":
            X = rng.normal(0.0, 1.0, (Bn, Tn, N))
        else:
            # Bernoulli targets (with SparseTF, states forced to a 0 target sit exactly
            # on the PLRNN's kink: relu'(0) = 0 there, but they do not depend on theta)
            X = (rng.random((Bn, Tn, N)) < 0.5).astype(float)
        S = rng.normal(0.0, 1.0, (Bn, Tn, K)) if K else None
        z0 = rng.normal(0.0, 1.0, (Bn, M))
        mask = _mask_with_holes(Bn, Tn) if masked else None
        batch = Batch(targets=X, inputs=S, z0=z0, mask=mask)
        args, slopes = naive_kink_sensitivity(model, theta, batch, forcing)
        if np.all(np.abs(args) >= KINK_SAFETY * FD_STEP * slopes):
            return Problem(model, theta, batch, readout, ro, loss, forcing)
    raise RuntimeError("no seed keeps the ReLU arguments away from their kinks")  # pragma: no cover


def rel_err(a, b):
    """``||a - b|| / ||b||`` (``b`` the reference, which must be non-zero)."""
    a, b = np.ravel(a), np.ravel(b)
    nb = np.linalg.norm(b)
    assert nb > 0.0, "reference is zero: the comparison would be vacuous"
    return float(np.linalg.norm(a - b) / nb)


# every valid combination: teacher forcing needs the identity readout
CASES = [
    pytest.param(m, r, lo, f, mk, id=f"{m}-{r}-{lo}-{f}-{'mask' if mk else 'nomask'}")
    for m in MODELS
    for r in ("identity", "linear")
    for lo in ("mse", "bce")
    for f in FORCINGS
    for mk in (False, True)
    if r == "identity" or f == "free"
]


@pytest.mark.parametrize("model_id, readout_kind, loss, forcing_id, masked", CASES)
def test_gradient_vs_finite_differences(model_id, readout_kind, loss, forcing_id, masked):
    prob = make_problem(model_id, readout_kind, loss, forcing_id, masked)
    res = prob.package()
    assert res.finite
    P = prob.model.n_params
    R = prob.ro_params.size
    z0 = np.asarray(prob.batch.z0)

    def f(x):
        return prob.package(theta=x[:P], ro_params=x[P : P + R], z0=x[P + R :].reshape(z0.shape)).loss

    g_fd = central_fd(f, np.concatenate([prob.theta, prob.ro_params, z0.ravel()]), FD_STEP)
    assert rel_err(g_fd[:P], res.grad) <= FD_RTOL
    if R:
        assert rel_err(g_fd[P : P + R], res.grad_readout) <= FD_RTOL
    else:
        assert res.grad_readout.size == 0
    assert res.grad_z0.shape == z0.shape
    assert rel_err(g_fd[P + R :].reshape(z0.shape), res.grad_z0) <= FD_RTOL


@pytest.mark.parametrize("model_id, readout_kind, loss, forcing_id, masked", CASES)
def test_gradient_vs_naive_reference(model_id, readout_kind, loss, forcing_id, masked):
    prob = make_problem(model_id, readout_kind, loss, forcing_id, masked)
    res = prob.package()
    ref_loss, ref_grad, ref_ro, ref_z0 = prob.naive()
    # the plain loop and the forward-mode pass agree on the loss
    assert abs(naive_loss(prob.model, prob.theta, prob.batch, prob.readout,
                          prob.ro_params if prob.ro_params.size else None, prob.loss, prob.forcing)
               - ref_loss) <= REF_RTOL * abs(ref_loss)
    assert abs(res.loss - ref_loss) <= REF_RTOL * abs(ref_loss)
    assert rel_err(res.grad, ref_grad) <= REF_RTOL
    if ref_ro.size:
        assert rel_err(res.grad_readout, ref_ro) <= REF_RTOL
    else:
        assert res.grad_readout.size == 0
    assert rel_err(res.grad_z0, ref_z0) <= REF_RTOL


# -- the naive reference itself --------------------------------------------------------
@pytest.mark.parametrize("model_id", MODELS)
def test_naive_layout_matches_unpack(model_id):
    model, _ = MODELS[model_id]
    assert n_params(model) == model.n_params
    theta = np.random.default_rng(0).normal(size=model.n_params)
    mine = naive_params(model, theta)
    theirs = model.unpack(theta)
    assert set(mine) == set(theirs)
    for name, arr in mine.items():
        np.testing.assert_array_equal(np.asarray(theirs[name]).reshape(arr.shape), arr)


def _random_state(model, theta, rng):
    # a state and input whose ReLU arguments are away from the kinks, with both signs
    # among them (so that both branches of every piecewise-linear map are exercised)
    for _ in range(100):
        z = rng.normal(0.0, 1.0, model.dim)
        s = rng.normal(0.0, 1.0, model.n_inputs)
        d = naive_kink_distances(model, theta, z)
        args = naive_kink_arguments(model, theta, z)
        if d.size == 0 or (d.min() >= KINK_MARGIN and args.min() < 0.0 < args.max()):
            return z, s
    raise RuntimeError("no state away from the kinks")  # pragma: no cover


@pytest.mark.parametrize("model_id", MODELS)
def test_naive_step_and_jacobian_match_package(model_id):
    model, _ = MODELS[model_id]
    rng = np.random.default_rng(1)
    theta = model.init(seed=2) + 0.2 * rng.normal(size=model.n_params)
    for _ in range(5):
        z, s = _random_state(model, theta, rng)
        s_arg = s if model.n_inputs else None
        ref = naive_step(model, theta, z, s)
        assert rel_err(model.step(theta, z, s_arg), ref) <= REF_RTOL
        assert rel_err(model.jacobian(theta, z, s_arg), naive_state_jacobian(model, theta, z, s)) <= REF_RTOL


@pytest.mark.parametrize("model_id", MODELS)
def test_naive_jacobians_vs_finite_differences(model_id):
    model, _ = MODELS[model_id]
    rng = np.random.default_rng(3)
    theta = model.init(seed=4) + 0.2 * rng.normal(size=model.n_params)
    z, s = _random_state(model, theta, rng)
    Jz = naive_state_jacobian(model, theta, z, s)
    Jp = naive_param_jacobian(model, theta, z, s)
    assert Jz.shape == (model.dim, model.dim)
    assert Jp.shape == (model.dim, model.n_params)
    assert rel_err(Jz, central_fd(lambda zz: naive_step(model, theta, zz, s), z, FD_STEP)) <= FD_RTOL
    assert rel_err(Jp, central_fd(lambda th: naive_step(model, th, z, s), theta, FD_STEP)) <= FD_RTOL


@pytest.mark.parametrize("model_id", MODELS)
def test_naive_gradient_vs_finite_differences(model_id):
    # the reference's forward-mode gradient against finite differences of its own loss
    prob = make_problem(model_id, "identity", "mse", "gtf0.3", True)
    _, g, _, gz0 = prob.naive()
    g_fd = central_fd(lambda th: naive_loss(prob.model, th, prob.batch, prob.readout, None, prob.loss,
                                            prob.forcing), prob.theta, FD_STEP)
    assert rel_err(g, g_fd) <= FD_RTOL
    z0 = np.asarray(prob.batch.z0)
    gz0_fd = central_fd(lambda x: naive_loss(prob.model, prob.theta, replace(prob.batch, z0=x.reshape(z0.shape)),
                                             prob.readout, None, prob.loss, prob.forcing), z0.ravel(), FD_STEP)
    assert rel_err(gz0, gz0_fd.reshape(z0.shape)) <= FD_RTOL


@pytest.mark.parametrize("forcing_id", FORCINGS)
@pytest.mark.parametrize("model_id", MODELS)
def test_naive_forward_matches_predict(model_id, forcing_id):
    # the forward pass the gradients are taken of: unforced states z_0 .. z_T
    prob = make_problem(model_id, "identity", "mse", forcing_id, True)
    Z_ref, _ = naive_forward(prob.model, prob.theta, prob.batch, prob.forcing)
    Y, Z = predict(prob.model, prob.theta, prob.batch, readout=prob.readout, forcing=prob.forcing)
    assert rel_err(Z, Z_ref) <= REF_RTOL
    assert rel_err(Y, Z_ref[:, 1:, : prob.readout.n_obs]) <= REF_RTOL


# -- invalid combinations --------------------------------------------------------------
@pytest.mark.parametrize("forcing", [SparseTF(3), GTF(0.3), 0.3], ids=["sparse3", "gtf0.3", "float0.3"])
def test_forcing_with_linear_readout_raises(forcing):
    prob = make_problem("plrnn", "linear", "mse", "free", False)
    with pytest.raises(ValueError, match="identity readout"):
        loss_and_grad(prob.model, prob.theta, prob.batch, readout=prob.readout,
                      readout_params=prob.ro_params, forcing=forcing)


# -- parallel batch chunks -------------------------------------------------------------
CHUNK_MODELS = {
    "plrnn": PLRNN(dim=8, n_inputs=2),
    "shallow_clipped": ShallowPLRNN(dim=8, hidden=12, n_inputs=2, clipped=True),
    "vanilla_tanh": VanillaRNN(n_hidden=8, n_inputs=2),
}


@pytest.mark.parametrize("model_id", CHUNK_MODELS)
@pytest.mark.parametrize("readout_kind, forcing", [("identity", GTF(0.3)), ("identity", SparseTF(4)),
                                                   ("linear", None)], ids=["gtf", "sparse4", "linear"])
def test_parallel_chunks_match_serial(model_id, readout_kind, forcing):
    model = CHUNK_MODELS[model_id]
    Bn, Tn, M, K = 67, 50, model.dim, model.n_inputs  # odd B: unequal chunks
    # enough work for the engine to split the batch into 2 chunks with 2 threads
    assert _auto_chunks(model, Bn, Tn, 2) == 2
    assert _auto_chunks(model, Bn, Tn, 1) == 1
    rng = np.random.default_rng(zlib.crc32(f"{model_id}/{readout_kind}".encode()))
    theta = model.init(seed=5) + 0.05 * rng.normal(size=model.n_params)
    if readout_kind == "identity":
        readout, N, ro = IdentityReadout(3), 3, None
    else:
        readout, N = LinearReadout(3), 3
        ro = rng.normal(0.0, 0.5, 3 * M + 3)
    mask = np.ones((Bn, Tn))
    mask[rng.random((Bn, Tn)) < 0.1] = 0.0
    batch = Batch(targets=rng.normal(size=(Bn, Tn, N)), inputs=rng.normal(size=(Bn, Tn, K)),
                  z0=rng.normal(size=(Bn, M)), mask=mask)
    kw = dict(readout=readout, readout_params=ro, forcing=forcing)
    serial = loss_and_grad(model, theta, batch, n_threads=1, **kw)
    chunked = loss_and_grad(model, theta, batch, n_threads=2, **kw)
    assert serial.finite and chunked.finite
    assert abs(chunked.loss - serial.loss) <= REF_RTOL * abs(serial.loss)
    assert rel_err(chunked.grad, serial.grad) <= REF_RTOL
    if ro is not None:
        assert rel_err(chunked.grad_readout, serial.grad_readout) <= REF_RTOL
    assert rel_err(chunked.grad_z0, serial.grad_z0) <= REF_RTOL
    # and per batch item (a chunk boundary error would show in single rows)
    for b in (0, Bn // 2 - 1, Bn // 2, Bn // 2 + 1, Bn - 1):
        assert rel_err(chunked.grad_z0[b], serial.grad_z0[b]) <= REF_RTOL
