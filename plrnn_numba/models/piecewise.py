r"""The piecewise-linear protocol: how a model tells SCYFI and the bifurcation tools its regions.

A model whose map is piecewise linear says so through one method of its own,
``model.piecewise_linear(theta, inputs=None)``, which returns a
:class:`PiecewiseLinear` description of the map ``z -> F(z, s)`` for fixed
parameters and a fixed (constant) input ``s``.  Every engine that needs the
regions -- SCYFI on the CPU and on CUDA, the brute-force enumeration, stability,
bifurcation paths, grids and training histories, the norm bound of
:class:`~plrnn_numba.forcing.Theorem3Alpha` -- goes through this description and
nothing else, so a new piecewise-linear family (or a user's own) is one file.

ReLU normal form
----------------
The description holds the map in the form

.. math::

    F(z) = L z + c + R\,\mathrm{relu}(U z + v),

with ``L`` (M x M), ``c`` (M), ``R`` (M x P), ``U`` (P x M), ``v`` (P).  The P
*pattern bits* of a state are the signs of the affine functionals
:math:`g_q(z) = U_q z + v_q`: :math:`d_q(z) = 1` if :math:`g_q(z) > 0`, else 0.
Inside the region of a pattern :math:`d` (with :math:`D = \mathrm{diag}(d)`)
the map is affine,

.. math::

    z \mapsto F_d z + c_d, \qquad F_d = L + R D U, \qquad c_d = c + R D v .

Every piecewise-linear RNN with one kink per hidden unit has this form: the
PLRNN (``L = A``, ``R = W``, ``U = I``), the shallow PLRNN (``R = W_1``,
``U = W_2``, ``v = h_2``), its clipped variant (two bits per hidden unit), the
ReLU RNN in pre-activation coordinates (``L = 0``), the almost-linear RNN, a
leaky ReLU (slope :math:`\beta` on the negative side:
:math:`\mathrm{lrelu}(x) = \beta x + (1 - \beta)\,\mathrm{relu}(x)`, so
``L += beta R U`` and ``R *= 1 - beta``), hard-tanh units (two bits each).

Kernels
-------
The normal form is data: the NumPy side (brute force, verification of found
cycles, continuation along parameter paths, stability, the norm bound) uses
it directly.  The compiled engines call two kernels with fixed signatures,

``regions(p, meta, pats, F, c)``
    the region maps ``F[j], c[j]`` of the patterns ``pats[j]`` (k, P), j = 0..k-1;
``rollout(p, meta, traj, act)``
    with ``traj[0]`` given: ``act[j] = d(traj[j])`` and ``traj[j + 1] = F(traj[j])``
    for j = 0..n-1 (``traj`` (n + 1, M), ``act`` (n, P));

which the CPU engine calls through their native addresses and the CUDA engine
compiles as device functions from their Python source (so they must be plain
index loops: no NumPy calls, no allocation).  A family may provide its own
kernels, specialised to its structure (the PLRNN's region map costs O(M^2),
the generic one O(M^2 P)); without them, the generic :data:`NORMAL_FORM_KERNELS`
evaluate the normal form from ``p = L | c | R | U | v``.  Either way,
:func:`check_piecewise_linear` verifies a family against its model's own step
and Jacobian kernels.

Adding a piecewise-linear family
--------------------------------
Write the model as usual (:mod:`plrnn_numba.models.base`) and add

.. code-block:: python

    def piecewise_linear(self, theta, inputs=None):
        d = self.unpack(theta)
        return PiecewiseLinear.from_model(self, theta, inputs, L=..., c=..., R=..., U=..., v=...)

(optionally with ``kernels=``, ``p=``, ``meta=`` and ``bit_labels=``).  SCYFI,
``brute_force_cycles``, ``bifurcation_path``, ``bifurcation_grid`` and
``Theorem3Alpha`` then work for it; ``tests/test_open_protocol.py`` does this
for a leaky-ReLU PLRNN defined only in the test file.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
from numba import types

from .. import _validate as V
from .. import config
from .._fnptr import kernel_address

__all__ = [
    "PiecewiseLinear",
    "RegionKernels",
    "NORMAL_FORM_KERNELS",
    "REGIONS_SIG",
    "ROLLOUT_SIG",
    "regions_kernel",
    "rollout_kernel",
    "as_piecewise_linear",
    "check_piecewise_linear",
    "bound_init",
]

# -- kernel signatures ---------------------------------------------------------------
_f1 = types.float64[::1]
_f2 = types.float64[:, ::1]
_f3 = types.float64[:, :, ::1]
_i1 = types.int64[::1]
_b2 = types.int8[:, ::1]

#: ``regions(p, meta, pats, F, c)``: region maps ``z -> F[j] z + c[j]`` of the patterns
#: ``pats[j]`` (k, P) int8 0/1, for j = 0..k-1.
REGIONS_SIG = types.void(_f1, _i1, _b2, _f3, _f2)
#: ``rollout(p, meta, traj, act)``: with ``traj[0]`` given, ``act[j] = d(traj[j])`` and
#: ``traj[j + 1] = F(traj[j])`` for j = 0..n-1 (traj (n + 1, M), act (n, P)).
ROLLOUT_SIG = types.void(_f1, _i1, _f2, _b2)

#: parameter vectors larger than this are recorded in provenance only as a SHA-256 digest.
MAX_PARAMS_IN_ATTRS = 4096


def regions_kernel(func):
    """Compile ``func(p, meta, pats, F, c)`` as a family's region-map kernel.

    Parameters
    ----------
    func : callable
        The Python function (numba-compilable), with the arguments above.

    Returns
    -------
    LazyKernel
        The kernel, compiled with the signature ``REGIONS_SIG`` on first use.
    """
    return config.jit(REGIONS_SIG)(func)


def rollout_kernel(func):
    """Compile ``func(p, meta, traj, act)`` as a family's roll-out kernel.

    Parameters
    ----------
    func : callable
        The Python function (numba-compilable), with the arguments above.

    Returns
    -------
    LazyKernel
        The kernel, compiled with the signature ``ROLLOUT_SIG`` on first use.
    """
    return config.jit(ROLLOUT_SIG)(func)


class RegionKernels(NamedTuple):
    """The two compiled kernels of a piecewise-linear family (see the module docstring).

    Parameters
    ----------
    regions : LazyKernel or numba dispatcher
        The region-map kernel (:func:`regions_kernel`).
    rollout : LazyKernel or numba dispatcher
        The roll-out kernel (:func:`rollout_kernel`).
    """

    regions: object
    rollout: object

    def addresses(self) -> tuple[int, int]:
        """Native addresses, as the CPU engine takes them.

        Returns
        -------
        (int, int)
            The addresses of ``regions`` and ``rollout``.
        """
        return kernel_address(self.regions, REGIONS_SIG), kernel_address(self.rollout, ROLLOUT_SIG)


# Why kernels that work on whole sequences, not one state: the engine calls them
# indirectly, and each such call costs ~30 ns (no inlining, reference counting of
# the array arguments), as much as the whole region map of a 2-D system.  Inside,
# parameters are indexed in the flat vector: ``reshape`` of a slice costs ~40 ns
# per call in numba 0.68, again comparable to the work for small M.


# ============================================================================ generic kernels
# p = L (M*M) | c (M) | R (M*P) | U (P*M) | v (P), row-major;  meta = [M, P]
@regions_kernel
def normal_form_regions(p, meta, pats, F, c):
    # F_d = L + sum_{q: d_q = 1} R[:, q] U[q, :],   c_d = c + sum_{q: d_q = 1} R[:, q] v_q
    M, P = meta[0], meta[1]
    oc = M * M
    oR = oc + M
    oU = oR + M * P
    ov = oU + P * M
    for s in range(pats.shape[0]):
        for i in range(M):
            for j in range(M):
                F[s, i, j] = p[i * M + j]
            c[s, i] = p[oc + i]
        for q in range(P):
            if pats[s, q] == 0:
                continue
            vq = p[ov + q]
            for i in range(M):
                r = p[oR + i * P + q]
                if r != 0.0:
                    c[s, i] += r * vq
                    for j in range(M):
                        F[s, i, j] += r * p[oU + q * M + j]


@rollout_kernel
def normal_form_rollout(p, meta, traj, act):
    # z' = L z + c + R relu(U z + v); bit q is (U z + v)_q > 0
    M, P = meta[0], meta[1]
    oc = M * M
    oR = oc + M
    oU = oR + M * P
    ov = oU + P * M
    for s in range(act.shape[0]):
        for i in range(M):
            acc = p[oc + i]
            for j in range(M):
                acc += p[i * M + j] * traj[s, j]
            traj[s + 1, i] = acc
        for q in range(P):
            g = p[ov + q]
            for j in range(M):
                g += p[oU + q * M + j] * traj[s, j]
            if g > 0.0:
                act[s, q] = 1
                for i in range(M):
                    traj[s + 1, i] += p[oR + i * P + q] * g
            else:
                act[s, q] = 0


#: the kernels that evaluate the normal form itself (families without kernels of their own).
NORMAL_FORM_KERNELS = RegionKernels(normal_form_regions, normal_form_rollout)


# ============================================================================ the description
def _matrix(x, name: str, shape: tuple[int, int]) -> np.ndarray:
    a = V.as_float_array(x, name)
    if a.shape != shape:
        raise ValueError(f"{name} must have shape {shape}; got {a.shape}")
    V.check_finite(a, name)
    return np.ascontiguousarray(a)


class PiecewiseLinear:
    r"""A piecewise-linear map ``F(z) = L z + c + R relu(U z + v)`` with the kernels engines call.

    Build it with :meth:`from_model` inside a model's ``piecewise_linear``
    method (see the module docstring); engines obtain it with
    :func:`as_piecewise_linear`.

    Parameters
    ----------
    L : (M, M) array
        Linear part shared by all regions.
    c : (M,) array
        Offset shared by all regions (a constant input is folded in here).
    R : (M, P) array
        Output weights of the P ReLU units.
    U, v : (P, M) and (P,) arrays
        The affine functionals whose signs are the pattern bits.
    kernels : RegionKernels, optional
        The family's compiled ``regions`` / ``rollout`` kernels, with their
        parameter vector ``p`` and integer settings ``meta``.  Default: the
        generic normal-form kernels on ``p = L | c | R | U | v``.
    p, meta : arrays, optional
        Kernel parameters (required with ``kernels``).
    bit_labels : sequence of str, optional
        What each pattern bit means (``"z[0] > 0"``), stored with SCYFI's output.
    description : dict, optional
        JSON-able provenance (model, parameters, inputs).

    Attributes
    ----------
    dim, n_bits : int
        M and P.
    """

    def __init__(self, L, c, R, U, v, *, kernels: RegionKernels | None = None, p=None, meta=None,
                 bit_labels: Sequence[str] | None = None, description: dict | None = None):
        L = V.as_float_array(L, "L")
        if L.ndim != 2 or L.shape[0] != L.shape[1]:
            raise ValueError(f"L must be a square (M, M) matrix; got shape {L.shape}")
        M = L.shape[0]
        U = V.as_float_array(U, "U")
        if U.ndim != 2 or U.shape[1] != M:
            raise ValueError(f"U must have shape (P, {M}) (one affine functional per pattern bit); got {U.shape}")
        P = U.shape[0]
        if P < 1:
            raise ValueError("a piecewise-linear map needs at least one pattern bit (U has no rows)")
        self.L = _matrix(L, "L", (M, M))
        self.c = _matrix(np.reshape(V.as_float_array(c, "c"), (1, -1)), "c", (1, M))[0]
        self.R = _matrix(R, "R", (M, P))
        self.U = _matrix(U, "U", (P, M))
        self.v = _matrix(np.reshape(V.as_float_array(v, "v"), (1, -1)), "v", (1, P))[0]
        self.dim, self.n_bits = M, P
        # When every functional is a coordinate (U's rows are distinct unit vectors, as for the
        # PLRNN, ALRNN and ReLU RNN), R D U only adds columns of R D to L: O(M P) instead of O(M^2 P).
        rows = np.argmax(self.U != 0.0, axis=1)
        unit = np.array_equal(self.U, np.eye(M)[rows]) and np.unique(rows).size == P
        self._columns = rows if unit else None
        self._identity = unit and P == M and bool(np.all(rows == np.arange(M)))
        # and a diagonal L (the PLRNN's A) acts elementwise
        self._l_diag = np.diag(self.L).copy() if np.count_nonzero(self.L - np.diag(np.diag(self.L))) == 0 else None
        if kernels is None:
            if p is not None or meta is not None:
                raise ValueError("p and meta are the parameters of the family's kernels: pass kernels= with them")
            kernels = NORMAL_FORM_KERNELS
            p = np.concatenate([self.L.ravel(), self.c, self.R.ravel(), self.U.ravel(), self.v])
            meta = np.array([M, P], dtype=np.int64)
        elif not isinstance(kernels, RegionKernels):
            raise TypeError(f"kernels must be a RegionKernels(regions, rollout); got {type(kernels).__name__}")
        elif p is None or meta is None:
            raise ValueError("a family's kernels need their parameter vector p and settings meta")
        self.kernels = kernels
        self.p = np.ascontiguousarray(p, dtype=np.float64)
        self.meta = np.ascontiguousarray(meta, dtype=np.int64)
        if self.p.ndim != 1 or self.meta.ndim != 1:
            raise ValueError("p and meta must be 1-D arrays")
        labels = [f"(U z + v)[{q}] > 0" for q in range(P)] if bit_labels is None else [str(b) for b in bit_labels]
        if len(labels) != P:
            raise ValueError(f"bit_labels must have one label per pattern bit ({P}); got {len(labels)}")
        self.bit_labels = tuple(labels)
        self._description = dict(description or {})
        self._origin = None

    @property
    def description(self) -> dict:
        """JSON-able provenance: the model, its parameters (a digest when large) and the inputs."""
        if self._origin is not None and not self._description:
            model, theta, inputs = self._origin
            desc = {"model": model.describe(), "inputs": None if inputs is None else inputs.tolist()}
            if theta.size <= MAX_PARAMS_IN_ATTRS:
                desc["theta"] = theta.tolist()
            desc["theta_sha256"] = hashlib.sha256(np.ascontiguousarray(theta).tobytes()).hexdigest()
            self._description = desc
        return self._description

    @classmethod
    def from_model(cls, model, theta, inputs, **kwargs) -> PiecewiseLinear:
        """The description of ``model`` at ``theta`` (and constant ``inputs``), with provenance filled in.

        Parameters
        ----------
        model : Model
            The model.
        theta : (P,) array
            Its parameters.
        inputs : (K,) array or None
            The constant input.
        **kwargs
            The constructor's arguments (``L, c, R, U, v`` and optionally
            ``kernels, p, meta, bit_labels``).

        Returns
        -------
        PiecewiseLinear
            The description; its :attr:`description` is built from ``model``, ``theta`` and ``inputs``
            when first read.
        """
        pl = cls(**kwargs)
        # provenance is built only when asked for: continuation along a path builds
        # thousands of descriptions and never reads it
        pl._origin = (model, np.array(theta, dtype=np.float64), None if inputs is None else np.array(inputs))
        return pl

    def __repr__(self) -> str:
        model = self.description.get("model", {}).get("model", "map")
        return f"<PiecewiseLinear {model} M={self.dim} pattern bits={self.n_bits}>"

    # -- the map, its regions and patterns (NumPy) --------------------------------------
    def boundary_values(self, Z: np.ndarray) -> np.ndarray:
        """``U z + v`` for states ``Z``: the signs are the pattern bits.

        Parameters
        ----------
        Z : (..., M) array
            States.

        Returns
        -------
        (..., P) array
            The values of the P affine functionals.
        """
        if self._columns is None:
            return Z @ self.U.T + self.v
        if self._identity:
            return Z + self.v  # U = I (PLRNN, ReLU RNN): no gather
        return Z[..., self._columns] + self.v

    def patterns(self, Z: np.ndarray) -> np.ndarray:
        """Pattern bits of states ``Z``.

        Parameters
        ----------
        Z : (..., M) array
            States.

        Returns
        -------
        (..., P) int8 array
            0/1 bits ``U z + v > 0``.
        """
        return (self.boundary_values(Z) > 0.0).astype(np.int8)

    def step(self, Z: np.ndarray) -> np.ndarray:
        """The map ``F`` applied to states ``Z``.

        Parameters
        ----------
        Z : (..., M) array
            States.

        Returns
        -------
        (..., M) array
            ``F(Z)``.
        """
        LZ = Z * self._l_diag if self._l_diag is not None else Z @ self.L.T
        return LZ + self.c + np.maximum(self.boundary_values(Z), 0.0) @ self.R.T

    def region(self, d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Region map ``(F_d, c_d)`` of pattern(s) ``d``.

        Parameters
        ----------
        d : (..., P) array
            0/1 pattern bits.

        Returns
        -------
        F : (..., M, M) array
            The linear parts ``L + R D U``.
        c : (..., M) array
            The offsets ``c + R D v``.
        """
        d = np.asarray(d, dtype=np.float64)
        RD = self.R * d[..., None, :]
        if self._identity:
            F = self.L + RD
        elif self._columns is None:
            F = self.L + RD @ self.U
        else:
            F = np.array(np.broadcast_to(self.L, RD.shape[:-1] + (self.dim,)))
            F[..., self._columns] += RD
        return F, self.c + RD @ self.v

    def cycle_map(self, pats: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(Z, b)`` of the k-fold map ``z -> Z z + b`` through the regions ``pats`` (k, P).

        ``Z = F_k ... F_1`` and ``b = c_k + F_k c_{k-1} + ... + F_k ... F_2 c_1``.

        Parameters
        ----------
        pats : (k, P) array
            The patterns of the k regions, in order.

        Returns
        -------
        Z : (M, M) array
            Linear part of the k-fold map.
        b : (M,) array
            Its offset.
        """
        F, c = self.region(pats)
        Z = np.eye(self.dim)
        b = np.zeros(self.dim)
        for j in range(len(pats)):
            Z = F[j] @ Z
            b = F[j] @ b + c[j]
        return Z, b

    # -- derived quantities ---------------------------------------------------------------
    def norm_bound(self) -> float:
        r"""``||L||_2 + ||R||_2 ||U||_2``: a bound on the spectral norm of every region's Jacobian.

        Since ``||D|| <= 1``, :math:`\|L + R D U\| \le \|L\| + \|R\|\,\|U\|`.  For the PLRNN
        (``L = A`` diagonal, ``R = W``, ``U = I``) it is :math:`\|A\| + \|W\|`, the r of
        Theorem 3 of Eisenmann et al. (2023).

        Returns
        -------
        float
            The bound.
        """
        return float(np.linalg.norm(self.L, 2) + np.linalg.norm(self.R, 2) * np.linalg.norm(self.U, 2))

    @property
    def bits_independent(self) -> bool:
        """Whether every one of the ``2^P`` patterns is realised by some state (rank U = P).

        Then SCYFI draws random candidate patterns bit by bit; otherwise most
        patterns are infeasible and it draws them from patterns of sampled states.
        """
        if self.n_bits > self.dim:
            return False
        return bool(np.linalg.matrix_rank(self.U) == self.n_bits)

    def offset_scale(self) -> float:
        """``max |c_d|`` bound over the regions (a scale for residuals).

        Returns
        -------
        float
            ``max |c| + max |R| |v|``.
        """
        return float(np.max(np.abs(self.c), initial=0.0) + np.max(np.abs(self.R) @ np.abs(self.v), initial=0.0))

    def boundary_radius(self) -> float:
        """Distance from the origin of the farthest boundary hyperplane ``U_q z + v_q = 0`` (at least 1).

        Returns
        -------
        float
            The distance, at least 1.
        """
        nrm = np.linalg.norm(self.U, axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            dist = np.where(nrm > 0, np.abs(self.v) / nrm, 0.0)
        return max(1.0, float(np.max(dist, initial=0.0)))


# ============================================================================ engines' entry point
def as_piecewise_linear(model, theta, inputs=None, *, name: str = "model",
                        theta_name: str = "theta") -> PiecewiseLinear:
    """Validate ``(model, theta, inputs)`` and return the model's :class:`PiecewiseLinear` description.

    Parameters
    ----------
    model : Model
        A piecewise-linear model.
    theta : (P,) array
        Its parameters.
    inputs : (K,) array, optional
        A constant input.
    name, theta_name : str
        The arguments' names in error messages.

    Returns
    -------
    PiecewiseLinear
        The model's regions and their affine pieces.

    Raises
    ------
    TypeError
        If ``model`` is not a plrnn_numba model or its map is not piecewise linear.
    ValueError
        For a malformed ``theta`` or ``inputs`` (a constant (K,) vector).
    """
    from .base import Model

    if not isinstance(model, Model):
        raise TypeError(f"{name} must be a plrnn_numba model (with theta); got {type(model).__name__}")
    if not model.is_piecewise_linear:
        raise TypeError(
            f"{name} must be a piecewise-linear model (one with a piecewise_linear method, e.g. PLRNN, "
            f"ShallowPLRNN, ALRNN, VanillaRNN(nonlinearity='relu')); {model!r} is not"
        )
    if theta is None:
        raise ValueError(f"{theta_name} is required: pass the parameter vector of {model!r}")
    theta = model.check_theta(theta, theta_name)
    s = V.constant_input(inputs, model.n_inputs)
    pl = model.piecewise_linear(theta, s)
    if not isinstance(pl, PiecewiseLinear):
        raise TypeError(f"{model.name}.piecewise_linear must return a PiecewiseLinear; got {type(pl).__name__}")
    return pl


def bound_init(model, theta: np.ndarray, max_norm: float | None, names: Sequence[str]) -> np.ndarray:
    """Scale the parameter blocks ``names`` by one factor so that the map's norm bound is at most ``max_norm``.

    Used by the families' ``init``: with ``||L|| + ||R|| ||U|| <= max_norm < 1``
    every region's Jacobian is a contraction, so a free run from any state
    stays bounded (and converges to the unique fixed point): a fresh model
    never explodes.  ``names`` must be blocks in which the bound is homogeneous
    of degree one (the PLRNN's A and W, the shallow PLRNN's A and W1, the ReLU
    RNN's W).  ``max_norm=None`` leaves ``theta`` as drawn.
    """
    if max_norm is None:
        return theta
    max_norm = V.finite_float(max_norm, "max_norm", low=0.0, open_low=True)
    r = as_piecewise_linear(model, theta).norm_bound()
    if r > max_norm:
        slices = model.param_slices()
        for name in names:
            theta[slices[name]] *= max_norm / r
    return theta


def check_piecewise_linear(model, theta, inputs=None, *, n_states: int = 256, seed=0, rtol: float = 1e-10) -> dict:
    """Check a piecewise-linear family against its model's own kernels.

    At ``n_states`` random states (normal, at log-uniform scales around the
    boundary radius) it compares

    1. the normal form's ``F(z)`` with ``model.step`` (the BPTT step kernel);
    2. the region map ``F_d`` of the state's pattern with ``model.jacobian``;
    3. the family's ``rollout`` kernel with the normal form (next state and bits);
    4. the family's ``regions`` kernel with the normal form, on the states'
       patterns and on random patterns;

    each to ``rtol`` relative to the size of the terms.  Use it when writing a
    family; the test-suite runs it on every family of the package.

    Parameters
    ----------
    model : Model
        A piecewise-linear model.
    theta : (P,) array
        Its parameters.
    inputs : (K,) array, optional
        A constant input.
    n_states : int
        Number of random states.
    seed : int, None or numpy.random.Generator
        Random seed of the states and patterns.
    rtol : float
        Tolerance of each comparison.

    Returns
    -------
    dict
        The largest relative error of each comparison.

    Raises
    ------
    ValueError
        If a comparison fails (the message says which).
    """
    pl = as_piecewise_linear(model, theta, inputs)
    theta = model.check_theta(theta)
    rng, _ = V.generator(seed)
    rtol = V.finite_float(rtol, "rtol", low=0.0)
    M, P = pl.dim, pl.n_bits
    n = V.positive_int(n_states, "n_states")
    radius = pl.boundary_radius()
    Z = rng.standard_normal((n, M)) * (radius * 10.0 ** rng.uniform(-2, 1, (n, 1)))
    s = np.zeros(model.n_inputs) if inputs is None else V.constant_input(inputs, model.n_inputs)
    errors = {}

    def compare(label, got, want, scale):
        err = float(np.max(np.abs(got - want) / scale))
        errors[label] = err
        if not err <= rtol:
            raise ValueError(f"{model.name}.piecewise_linear disagrees with {label}: relative error {err:.3g}")

    scale = 1.0 + np.max(np.abs(Z), axis=1, keepdims=True) * (
        np.abs(pl.L).sum(1).max() + np.abs(pl.R).sum(1).max() * np.abs(pl.U).sum(1).max()) + np.abs(pl.c).max()
    compare("model.step", pl.step(Z), model.step(theta, Z, None if model.n_inputs == 0 else np.broadcast_to(
        s, (n, model.n_inputs))), scale)
    d = pl.patterns(Z)
    F, _ = pl.region(d)
    J = np.stack([model.jacobian(theta, z, None if model.n_inputs == 0 else s) for z in Z])
    compare("model.jacobian", F, J, scale[:, :, None])
    traj = np.zeros((n, 2, M))
    act = np.zeros((n, 1, P), dtype=np.int8)
    roll = pl.kernels.rollout.dispatcher if hasattr(pl.kernels.rollout, "dispatcher") else pl.kernels.rollout
    regions = pl.kernels.regions.dispatcher if hasattr(pl.kernels.regions, "dispatcher") else pl.kernels.regions
    for i in range(n):
        traj[i, 0] = Z[i]
        roll(pl.p, pl.meta, traj[i], act[i])
    compare("the rollout kernel (next state)", traj[:, 1], pl.step(Z), scale)
    if not np.array_equal(act[:, 0], d):
        raise ValueError(f"{model.name}.piecewise_linear: the rollout kernel's pattern bits differ from U z + v > 0")
    pats = np.concatenate([d, rng.integers(0, 2, (n, P)).astype(np.int8)])
    Fk = np.empty((pats.shape[0], M, M))
    ck = np.empty((pats.shape[0], M))
    regions(pl.p, pl.meta, np.ascontiguousarray(pats), Fk, ck)
    F2, c2 = pl.region(pats)
    rscale = 1.0 + np.abs(pl.L).max() + np.abs(pl.R).max() * (np.abs(pl.U).max() + np.abs(pl.v).max()) * P + np.abs(
        pl.c).max()
    compare("the regions kernel (F)", Fk, F2, rscale)
    compare("the regions kernel (c)", ck, c2, rscale)
    return errors
