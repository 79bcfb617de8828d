r"""Fixed points, slow points and ghosts of any model, by minimising the speed of the map.

For the autonomous map :math:`x \mapsto F(x, s)` of a model with a constant
input ``s``, half the squared speed :math:`q` (Sussillo & Barak 2013,
"Opening the black box: low-dimensional dynamics in high-dimensional recurrent neural networks";
Golub & Sussillo 2018, "FixedPointFinder: A Tensorflow toolbox for identifying
and characterizing fixed points in recurrent neural networks") is

.. math::

    q(x) = \tfrac12 \lVert r(x) \rVert_2^2, \qquad r(x) = F(x, s) - x,

with zeros at the fixed points and small values where the flow is slow.  It
is minimised from many starts by Levenberg-Marquardt on the residual ``r``,
whose Jacobian is :math:`A = J_F - I` with the model's analytic one-step
Jacobian :math:`J_F = \partial F / \partial x`:

.. math::

    (A^\top A + \mu I)\, h = -A^\top r, \qquad x \leftarrow x + h
    \text{ if } q \text{ decreases},

solved by Cholesky, with the damping :math:`\mu` updated from the ratio of
the actual to the predicted decrease of ``q`` (Nielsen's rule).  Once ``x``
is a zero to the fixed-point tolerance, up to three Newton steps
:math:`A h = -r` polish it to machine precision; a start also ends at a
stationary point of ``q`` (``gamma`` below, at ``1e-4 ghost_tol``), when its
steps become negligible, after ``max_iter`` steps, or when it diverges.  The
engine runs on numba's threads over the starts and calls only the model's
``step`` and ``jacobian`` kernels, so it works for every model of the
package and for user-defined models.

Classification
--------------
With :math:`v = \lVert r(x) \rVert_2` (the *speed*, state units per step),
the state scale :math:`\sigma = \max(1, \lVert x \rVert_2)` and the unit
vector :math:`u = r / v` along which the flow moves:

fixed point
    :math:`v \le \mathrm{fixed\_tol}\,\sigma` (default ``1e-10``, about
    :math:`5 \cdot 10^5` machine epsilons: rounding in ``F`` times the
    conditioning of ``A``).
ghost
    not a fixed point, slow (:math:`v \le \mathrm{slow\_tol}\,\sigma`), and a
    stationary point of ``q``:
    :math:`\gamma = \lVert A^\top u \rVert_2 \le \mathrm{ghost\_tol}`.  Since
    :math:`\nabla q = A^\top r = v\,A^\top u`, :math:`\gamma` is the gradient
    of ``q`` per unit speed; :math:`\gamma = 0` with :math:`v > 0` means
    :math:`A^\top` has ``u`` in its null space, i.e. :math:`J_F` has the
    eigenvalue 1 and the flow points along the singular direction.  A ghost
    is thus a local minimum of the speed that is not a zero -- the remnant
    of a saddle-node pair of fixed points (Dinc et al., "A ghost mechanism:
    an analytical model of abrupt learning").  The descent only accepts
    decreasing steps, so a stationary point it reaches is a local minimum
    unless a start sits exactly on a saddle of ``q``.
slow point
    slow, but neither a zero nor a stationary point of ``q`` (the search
    stopped on a slow plateau: an approximate line attractor, or the
    iteration budget ran out on a shallow slope).

Minima with :math:`v > \mathrm{slow\_tol}\,\sigma` and runs that diverged
are dropped (counted in the attributes ``n_fast`` and ``n_diverged``).
Results within ``dedup_tol`` (relative, max-norm) of a better one are merged:
fixed points before ghosts before slow points, slower before faster.
Stability comes from the eigenvalues of :math:`J_F` (the map's classes of
:func:`~plrnn_numba.dynamics.classify_stability`); a ghost has an
eigenvalue 1 and is ``"non-hyperbolic"``; ``n_unstable`` counts the
eigenvalues outside the unit circle (0 for a ghost that attracts transversally).
"""

from __future__ import annotations

import math
import time

import numpy as np
import xarray as xr
from numba import prange, types

from .. import _validate as V
from .. import config, io
from ..models.base import Model, call_jacobian, call_step, check_model, model_params
from ._cycles import classify_stability, sorted_eigenvalues
from ._search import LU

__all__ = ["slow_points", "SLOW_POINT_KINDS", "START_STATUSES"]

#: ``kind`` codes of the returned points.
SLOW_POINT_KINDS = ("fixed point", "ghost", "slow point")
KIND_FIXED, KIND_GHOST, KIND_SLOW = 0, 1, 2

#: how the search from one start ended (``start_status``).
START_STATUSES = ("zero", "stationary", "stalled", "max_iter", "diverged")
_ZERO, _STATIONARY, _STALLED, _MAX_ITER, _DIVERGED = range(5)

#: the engine stops at a stationary point once gamma is this factor below ``ghost_tol``, so
#: that ghosts are located well inside the classification threshold (and deduplicate).
_STATIONARY_MARGIN = 1e-4
#: at most this many damping increases per Jacobian before a start counts as stalled.
_MAX_REJECTIONS = 60
#: Newton steps that polish a zero to machine precision.
_POLISH_STEPS = 3

_LU_FACTOR = LU.factor
_LU_SOLVE = LU.solve

_f1 = types.float64[::1]
_f2 = types.float64[:, ::1]
_i1 = types.int64[::1]
_i8 = types.int64
_f8 = types.float64

_ENGINE_SIG = types.void(
    _i8, _i8, _f1, _i1,  # step and jacobian kernel addresses, p, meta
    _f2, _f2,  # s (1, K), starts (S, M)
    _i8, _f8, _f8, _f8,  # max_iter, fixed_tol, grad_tol, step_tol
    _f2, _f1, _f1, _i1, types.int8[::1],  # out: x (S, M), speed (S,), gamma (S,), n_iter (S,), status (S,)
)


# ----------------------------------------------------------------------------------- engine
@config.njit
def _residual(step, p, meta, x, s, fx, r):
    # r = F(x, s) - x for one state held as a (1, M) row; returns ||r||_2 (inf when not finite)
    call_step(step, p, meta, x, s, fx)
    acc = 0.0
    for j in range(x.shape[1]):
        d = fx[0, j] - x[0, j]
        r[j] = d
        acc += d * d
    v = math.sqrt(acc)
    return v if math.isfinite(v) else math.inf


@config.njit
def _norm(x):
    acc = 0.0
    for j in range(x.shape[0]):
        acc += x[j] * x[j]
    return math.sqrt(acc)


@config.njit
def _shifted_jacobian(jac, p, meta, x, s, A):
    # A = J_F(x) - I
    call_jacobian(jac, p, meta, x[0], s[0], A)
    for i in range(A.shape[0]):
        A[i, i] -= 1.0


@config.njit
def _normal_equations(A, r, H, g):
    # H = A^T A, g = A^T r, accumulated row by row of A: the inner loop is a contiguous
    # axpy that LLVM vectorises (a triangular or branching loop measured 5-9x slower at M = 64)
    M = A.shape[0]
    H[:, :] = 0.0
    g[:] = 0.0
    for k in range(M):
        ak = A[k]
        rk = r[k]
        for i in range(M):
            a = ak[i]
            g[i] += a * rk
            Hi = H[i]
            for j in range(M):
                Hi[j] += a * ak[j]


@config.njit
def _damped_solve(H, mu, g, L, h):
    """Solve (H + mu I) h = -g by Cholesky (H symmetric positive semi-definite, mu > 0).

    Returns False when a pivot is not positive or not finite (the damping is then raised).
    """
    M = H.shape[0]
    for j in range(M):
        Lj = L[j]
        d = H[j, j] + mu
        for k in range(j):
            d -= Lj[k] * Lj[k]
        if not (d > 0.0 and d < math.inf):
            return False
        d = math.sqrt(d)
        Lj[j] = d
        for i in range(j + 1, M):
            Li = L[i]
            acc = H[i, j]
            for k in range(j):
                acc -= Li[k] * Lj[k]
            Li[j] = acc / d
    # L y = -g, then L^T h = y
    for i in range(M):
        Li = L[i]
        acc = -g[i]
        for k in range(i):
            acc -= Li[k] * h[k]
        h[i] = acc / Li[i]
    for i in range(M - 1, -1, -1):
        acc = h[i]
        for k in range(i + 1, M):
            acc -= L[k, i] * h[k]
        h[i] = acc / L[i, i]
    return True


@config.njit
def _polish(step, jac, p, meta, x, s, v, fx, r, A, xt, rt, piv):
    # Newton steps A h = -r on a zero, kept while they lower the speed; returns the speed
    M = x.shape[1]
    for _ in range(_POLISH_STEPS):
        if v == 0.0:
            break
        _shifted_jacobian(jac, p, meta, x, s, A)
        if not _LU_FACTOR(A, piv):
            break
        h = -r
        _LU_SOLVE(A, piv, h)
        for j in range(M):
            xt[0, j] = x[0, j] + h[j]
        vt = _residual(step, p, meta, xt, s, fx, rt)
        if not vt < v:
            break
        x[0, :] = xt[0]
        r[:] = rt
        v = vt
    return v


@config.njit
def _lm_step(step, p, meta, x, s, v, r, H, g, mu, nu, step_tol, fx, xt, rt, Lw):
    """One accepted Levenberg-Marquardt step (updates x, r in place).

    Returns (speed, mu, nu, accepted); ``accepted`` is False when the step became
    negligible or the damping ran away (the search stalled).
    """
    M = x.shape[1]
    xnorm = _norm(x[0])
    h = np.empty(M)
    for _ in range(_MAX_REJECTIONS):
        ok = _damped_solve(H, mu, g, Lw, h)
        if ok:
            hn = _norm(h)
            ok = math.isfinite(hn)
        if ok:
            if hn <= step_tol * (xnorm + step_tol):
                return v, mu, nu, False
            for j in range(M):
                xt[0, j] = x[0, j] + h[j]
            vt = _residual(step, p, meta, xt, s, fx, rt)
            gain = 0.5 * (v - vt) * (v + vt)
            if vt < math.inf and gain > 0.0:
                # gain ratio against the decrease predicted by the damped linear model,
                # q(x) - |r + A h|^2 / 2 = h^T (mu h - g) / 2 (> 0 unless rounding dominates)
                pred = 0.0
                for i in range(M):
                    pred += h[i] * (mu * h[i] - g[i])
                pred *= 0.5
                rho = gain / pred if pred > 0.0 else 1.0
                x[0, :] = xt[0]
                r[:] = rt
                c = 2.0 * rho - 1.0
                mu *= max(1.0 / 3.0, 1.0 - c * c * c)
                return vt, mu, 2.0, True
        mu *= nu
        nu *= 2.0
        if not mu < 1e300:
            break
    return v, mu, nu, False


@config.njit
def _minimise(step, jac, p, meta, s, x0, max_iter, fixed_tol, grad_tol, step_tol, x_out):
    """Minimise q from one start; writes the final state to ``x_out``.

    Returns (speed, gamma, n_iterations, status); gamma is NaN for zeros.
    """
    M = x0.shape[0]
    x = np.empty((1, M))
    x[0, :] = x0
    xt = np.empty((1, M))
    fx = np.empty((1, M))
    r = np.empty(M)
    rt = np.empty(M)
    A = np.empty((M, M))
    H = np.empty((M, M))
    Lw = np.empty((M, M))
    g = np.empty(M)
    piv = np.empty(M, np.int64)
    v = _residual(step, p, meta, x, s, fx, r)
    mu = -1.0
    nu = 2.0
    gamma = math.nan
    it = 0
    status = _MAX_ITER
    while True:
        if not v < math.inf:
            status = _DIVERGED
            break
        if v <= fixed_tol * max(1.0, _norm(x[0])):
            v = _polish(step, jac, p, meta, x, s, v, fx, r, A, xt, rt, piv)
            gamma = math.nan
            status = _ZERO
            break
        _shifted_jacobian(jac, p, meta, x, s, A)
        _normal_equations(A, r, H, g)
        gamma = _norm(g) / v
        if not math.isfinite(gamma):
            status = _DIVERGED
            break
        if gamma <= grad_tol:
            status = _STATIONARY
            break
        if it >= max_iter:
            status = _MAX_ITER
            break
        if mu < 0.0:
            # initial damping: a small fraction of the largest diagonal of A^T A
            dmax = 0.0
            for i in range(M):
                dmax = max(dmax, H[i, i])
            mu = 1e-3 * dmax if dmax > 0.0 else 1e-3
        v, mu, nu, accepted = _lm_step(step, p, meta, x, s, v, r, H, g, mu, nu, step_tol, fx, xt, rt, Lw)
        if not accepted:
            status = _STALLED
            break
        it += 1
    x_out[:] = x[0]
    return v, gamma, it, status


@config.njit
def _minimise_start(step, jac, p, meta, s, starts, i, max_iter, fixed_tol, grad_tol, step_tol,
                    x_out, speed, gamma, n_iter, status):
    # the prange body calls this (not inlined: writes made in code inlined into a prange body
    # can be lost, see _search.py)
    v, gm, it, st = _minimise(step, jac, p, meta, s, starts[i], max_iter, fixed_tol, grad_tol, step_tol, x_out[i])
    speed[i] = v
    gamma[i] = gm
    n_iter[i] = it
    status[i] = st


@config.jit(_ENGINE_SIG, parallel=True)
def _slow_point_engine(step, jac, p, meta, s, starts, max_iter, fixed_tol, grad_tol, step_tol,
                       x_out, speed, gamma, n_iter, status):
    for i in prange(starts.shape[0]):
        _minimise_start(step, jac, p, meta, s, starts, np.int64(i), max_iter, fixed_tol, grad_tol, step_tol,
                        x_out, speed, gamma, n_iter, status)


# ------------------------------------------------------------------------------ validation
def _tolerance(x, name: str) -> float:
    return V.finite_float(x, name, low=0.0, open_low=True)


def _draw_starts(model: Model, starts, around, n_starts, scale, rng) -> tuple[np.ndarray, str]:
    """The (S, M) starts and how they were made (``"given"``, ``"around"``, ``"gaussian"``)."""
    M = model.dim
    if starts is not None:
        for value, label in ((around, "around"), (n_starts, "n_starts"), (scale, "scale")):
            if value is not None:
                raise ValueError(f"{label} must be None when starts are given (the starts are used as they are)")
        X = V.as_state(starts, M, "starts")
        return V.carray(X[None, :] if X.ndim == 1 else X), "given"
    n = 256 if n_starts is None else V.positive_int(n_starts, "n_starts")
    if around is not None:
        states = V.as_float_array(around, "around")
        if states.ndim < 1 or states.shape[-1] != M or states.size == 0:
            raise ValueError(f"around must hold states of dimension {M}: shape (..., {M}), e.g. a trajectory "
                             f"(T, {M}) or a batch of them (B, T, {M}); got {states.shape}")
        V.check_finite(states, "around")
        states = states.reshape(-1, M)
        sd = 0.0 if scale is None else V.finite_float(scale, "scale", low=0.0)
        X = states[rng.integers(0, states.shape[0], n)] + sd * rng.standard_normal((n, M))
        return V.carray(X), "around"
    sd = 1.0 if scale is None else V.finite_float(scale, "scale", low=0.0)
    return V.carray(sd * rng.standard_normal((n, M))), "gaussian"


# --------------------------------------------------------------------------- classification
def _classify(X, speed, gamma, status, fixed_tol, slow_tol, ghost_tol) -> np.ndarray:
    """Kind code per start (-1: dropped, fast; -2: diverged)."""
    with np.errstate(all="ignore"):  # diverged starts hold inf/NaN
        scale = np.maximum(1.0, np.linalg.norm(X, axis=1))
        finite = np.isfinite(speed) & np.all(np.isfinite(X), axis=1) & (status != _DIVERGED)
        fixed = finite & (speed <= fixed_tol * scale)
        slow = finite & ~fixed & (speed <= slow_tol * scale)
        ghost = slow & (gamma <= ghost_tol)
    kind = np.full(speed.shape, -1, np.int64)
    kind[~finite] = -2
    kind[fixed] = KIND_FIXED
    kind[slow] = KIND_SLOW
    kind[ghost] = KIND_GHOST
    return kind


def _deduplicate(X, kind, speed, dedup_tol) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Representatives (indices into the starts), the point of every start (-1: none) and hit counts.

    Greedy: starts in order of (kind, speed, index) become a new point unless they lie within
    ``dedup_tol * max(1, |x_rep|_inf)`` (max-norm) of an earlier representative.
    """
    kept = np.flatnonzero(kind >= 0)
    order = kept[np.lexsort((kept, speed[kept], kind[kept]))]
    reps: list[int] = []
    point_of = np.full(kind.shape, -1, np.int64)
    R = np.empty((0, X.shape[1]))
    for i in order:
        if reps:
            dist = np.max(np.abs(R - X[i]), axis=1)
            tol = dedup_tol * np.maximum(1.0, np.max(np.abs(R), axis=1))
            close = np.flatnonzero(dist <= tol)
            if close.size:
                point_of[i] = close[0]
                continue
        point_of[i] = len(reps)
        reps.append(int(i))
        R = X[reps]
    hits = np.bincount(point_of[point_of >= 0], minlength=len(reps)).astype(np.int64)
    return np.asarray(reps, np.int64), point_of, hits


def _spectra(model: Model, p, s, X, kinds, tol_hyperbolic) -> tuple[np.ndarray, list[str], np.ndarray]:
    """Eigenvalues of J_F (by decreasing modulus), stability class and unstable count per point.

    Ghosts are ``"non-hyperbolic"`` by definition (J_F - I is singular at a stationary
    non-zero minimum of q; at the located point only to the location error).
    """
    M = model.dim
    lam = np.empty((X.shape[0], M), complex)
    J = np.empty((M, M))
    jac = model.kernels.jacobian
    for i in range(X.shape[0]):
        jac(p, model.meta, np.ascontiguousarray(X[i]), s, J)
        lam[i] = sorted_eigenvalues(J)
    stability = [classify_stability(row, tol_hyperbolic) if k != KIND_GHOST else "non-hyperbolic"
                 for row, k in zip(lam, kinds)]
    n_unstable = np.sum(np.abs(lam) > 1.0 + tol_hyperbolic, axis=1).astype(np.int64)
    return lam, stability, n_unstable


# ------------------------------------------------------------------------------ public API
def slow_points(
    model: Model,
    theta: np.ndarray,
    *,
    inputs: np.ndarray | None = None,
    starts: np.ndarray | None = None,
    around: np.ndarray | None = None,
    n_starts: int | None = None,
    scale: float | None = None,
    seed=0,
    max_iter: int = 200,
    fixed_tol: float = 1e-10,
    slow_tol: float = 1e-2,
    ghost_tol: float = 1e-6,
    dedup_tol: float = 1e-6,
    step_tol: float = 1e-15,
    tol_hyperbolic: float = 1e-6,
) -> xr.Dataset:
    r"""Fixed points, ghosts and slow points of any model by minimising :math:`q(x) = \frac12\|F(x, s) - x\|^2`.

    Levenberg-Marquardt with the model's analytic Jacobian from every start (on
    numba's threads), then classification, deduplication and the eigenvalues
    of :math:`J_F` at each point (criteria in :mod:`plrnn_numba.dynamics.slow_points`).

    Parameters
    ----------
    model : Model
        Any model of the package (only its step and Jacobian kernels are used).
    theta : (P,) array
        Parameter vector.
    inputs : (K,) array, optional
        The constant input ``s`` of the autonomous map :math:`x \mapsto F(x, s)`;
        None means ``s = 0``.
    starts : (S, M) or (M,) array, optional
        Initial states, used as they are.  Excludes ``around``, ``n_starts``
        and ``scale``.
    around : (..., M) array, optional
        States to start from (e.g. a trajectory ``(T, M)`` or a batch of them):
        ``n_starts`` of them drawn with replacement, each plus Gaussian noise of
        standard deviation ``scale`` (default 0), as in Golub & Sussillo (2018).
    n_starts : int, optional
        Number of drawn starts (default 256).
    scale : float, optional
        Without ``starts`` and ``around``: the starts are drawn from
        :math:`N(0, \mathrm{scale}^2 I)` (default 1).  With ``around``: the noise.
    seed : int, None or numpy.random.Generator
        Seeds the drawn starts (recorded in the ``seeds`` attribute).
    max_iter : int
        Jacobian evaluations (accepted steps) per start.
    fixed_tol : float
        Relative speed below which a point is a fixed point:
        :math:`\|F(x) - x\|_2 \le \mathrm{fixed\_tol} \max(1, \|x\|_2)`.
    slow_tol : float
        Relative speed up to which a non-zero point is kept (ghost or slow point).
    ghost_tol : float
        Largest :math:`\gamma = \|(J_F - I)^\top u\|_2`, ``u`` the unit flow
        direction, for which a slow point is a stationary point of ``q`` (a ghost).
    dedup_tol : float
        Points closer than ``dedup_tol * max(1, |x|_inf)`` (max-norm) are one.
    step_tol : float
        A start stalls when a step is shorter than ``step_tol * (|x|_2 + step_tol)``.
    tol_hyperbolic : float
        An eigenvalue modulus within this of 1 makes a point ``"non-hyperbolic"``.

    Returns
    -------
    xarray.Dataset
        Dims ``point``, ``state``, ``eigenvalue``, ``start``.  Per point: ``x``
        (point, state), ``q``, ``speed`` (:math:`\|F(x) - x\|_2`), ``gamma``
        (NaN for fixed points), ``kind`` (codes of :data:`SLOW_POINT_KINDS`,
        CF ``flag_values``/``flag_meanings``), ``stability``, ``n_unstable``,
        ``eig_real``/``eig_imag`` (point, eigenvalue; eigenvalues of
        :math:`J_F` by decreasing modulus), ``n_iterations`` and ``from_start`` (of
        the representative start), ``n_hits`` (starts that ended there).  Per
        start: ``starts`` (start, state), ``start_point`` (the point it
        reached, -1 if dropped), ``start_speed``, ``start_status`` (codes of
        :data:`START_STATUSES`).  Points are ordered by kind, then speed.
        Attributes: provenance, counts ``n_fixed_points``, ``n_ghosts``,
        ``n_slow_points``, ``n_fast`` and ``n_diverged`` (starts dropped), the
        tolerances and ``seconds``.

    Examples
    --------
    >>> import plrnn_numba as pn
    >>> from plrnn_numba.dynamics.slow_points import slow_points
    >>> model = pn.VanillaRNN(8)
    >>> ds = slow_points(model, model.init(0, g=1.5), n_starts=64)
    >>> int(ds.n_fixed_points) >= 1
    True
    """
    check_model(model)
    theta = model.check_theta(theta)
    K = model.n_inputs
    s_vec = V.constant_input(inputs, K)
    s = np.zeros((1, K)) if s_vec is None else V.carray(s_vec[None, :])
    rng, recorded_seed = V.generator(seed)
    X0, origin = _draw_starts(model, starts, around, n_starts, scale, rng)
    max_iter = V.positive_int(max_iter, "max_iter", minimum=0)
    fixed_tol = _tolerance(fixed_tol, "fixed_tol")
    slow_tol = _tolerance(slow_tol, "slow_tol")
    ghost_tol = _tolerance(ghost_tol, "ghost_tol")
    dedup_tol = V.finite_float(dedup_tol, "dedup_tol", low=0.0)
    step_tol = V.finite_float(step_tol, "step_tol", low=0.0)
    tol_hyperbolic = V.finite_float(tol_hyperbolic, "tol_hyperbolic", low=0.0)
    if slow_tol < fixed_tol:
        raise ValueError(f"slow_tol must be >= fixed_tol ({fixed_tol:g}); got {slow_tol:g}")

    S, M = X0.shape
    p = model_params(model, theta)
    X = np.empty((S, M))
    speed = np.empty(S)
    gamma = np.empty(S)
    n_iter = np.empty(S, np.int64)
    status = np.empty(S, np.int8)
    kern = model.kernels.addresses()
    config.prepare_engines()
    t0 = time.perf_counter()
    with np.errstate(all="ignore"):
        _slow_point_engine(kern.step, kern.jacobian, p, model.meta, s, X0, max_iter, fixed_tol,
                           ghost_tol * _STATIONARY_MARGIN, step_tol, X, speed, gamma, n_iter, status)
    seconds = time.perf_counter() - t0

    kind = _classify(X, speed, gamma, status, fixed_tol, slow_tol, ghost_tol)
    reps, point_of, hits = _deduplicate(X, kind, speed, dedup_tol)
    lam, stability, n_unstable = _spectra(model, p, s[0], X[reps], kind[reps], tol_hyperbolic)
    arguments = {
        "model": model.describe(),
        "inputs": None if s_vec is None else s_vec.tolist(),
        "starts": origin,
        "n_starts": S,
        "scale": scale,
        "max_iter": max_iter,
        "fixed_tol": fixed_tol,
        "slow_tol": slow_tol,
        "ghost_tol": ghost_tol,
        "dedup_tol": dedup_tol,
        "step_tol": step_tol,
        "tol_hyperbolic": tol_hyperbolic,
    }
    attrs = io.provenance("plrnn_numba.dynamics.slow_points", arguments,
                          seeds=recorded_seed if origin != "given" else None)
    ds = _dataset(X0, X, speed, gamma, n_iter, status, kind, reps, point_of, hits, lam, stability, n_unstable, attrs)
    ds.attrs.update({"title": "Fixed points, ghosts and slow points (minima of q)", "seconds": seconds,
                     "fixed_tol": fixed_tol, "slow_tol": slow_tol, "ghost_tol": ghost_tol, "dedup_tol": dedup_tol,
                     "n_fast": int(np.sum(kind == -1)), "n_diverged": int(np.sum(kind == -2))})
    return ds


def _dataset(X0, X, speed, gamma, n_iter, status, kind, reps, point_of, hits, lam, stability, n_unstable,
             attrs) -> xr.Dataset:
    n, (S, M) = reps.size, X0.shape
    u1 = {"units": "1"}
    kinds = kind[reps].astype(np.int8)
    flags = {"flag_values": np.arange(len(SLOW_POINT_KINDS), dtype=np.int8),
             "flag_meanings": " ".join(k.replace(" ", "_") for k in SLOW_POINT_KINDS)}
    data_vars = {
        "x": (("point", "state"), X[reps].reshape(n, M), {**u1, "long_name": "location of the point"}),
        "q": ("point", 0.5 * speed[reps] ** 2, {**u1, "long_name": "q = ||F(x, s) - x||^2 / 2"}),
        "speed": ("point", speed[reps], {"units": "1/step", "long_name": "speed ||F(x, s) - x||_2"}),
        "gamma": ("point", gamma[reps], {**u1, "long_name": "||(J_F - I)^T u||_2, u = (F(x) - x) / ||F(x) - x|| "
                                                            "(0 at a minimum of q; NaN at fixed points)"}),
        "kind": ("point", kinds, {**u1, **flags, "long_name": "fixed point, ghost or slow point",
                                  "legend": io.to_json(dict(enumerate(SLOW_POINT_KINDS)))}),
        "stability": ("point", np.asarray(stability, dtype=str).reshape(n),
                      {"long_name": "stability class of the map's Jacobian J_F"}),
        "n_unstable": ("point", n_unstable, {**u1, "long_name": "eigenvalues of J_F with modulus > 1"}),
        "eig_real": (("point", "eigenvalue"), lam.real.reshape(n, M),
                     {**u1, "long_name": "real part of the eigenvalues of J_F (by decreasing modulus)"}),
        "eig_imag": (("point", "eigenvalue"), lam.imag.reshape(n, M),
                     {**u1, "long_name": "imaginary part of the eigenvalues of J_F"}),
        "n_iterations": ("point", n_iter[reps], {**u1, "long_name": "Levenberg-Marquardt steps from its start"}),
        "from_start": ("point", reps, {**u1, "long_name": "index of the start that found the point"}),
        "n_hits": ("point", hits, {**u1, "long_name": "number of starts that ended at the point"}),
        "starts": (("start", "state"), X0, {**u1, "long_name": "initial states of the searches"}),
        "start_point": ("start", point_of, {**u1, "long_name": "point reached from the start (-1: dropped)"}),
        "start_speed": ("start", speed, {"units": "1/step", "long_name": "final speed from the start"}),
        "start_status": ("start", status, {**u1, "long_name": "how the search ended",
                                           "flag_values": np.arange(len(START_STATUSES), dtype=np.int8),
                                           "flag_meanings": " ".join(START_STATUSES)}),
    }
    coords = {
        "point": ("point", np.arange(n, dtype=np.int64), {**u1, "long_name": "point index"}),
        "state": ("state", np.arange(M, dtype=np.int64), {**u1, "long_name": "state component"}),
        "eigenvalue": ("eigenvalue", np.arange(M, dtype=np.int64), {**u1, "long_name": "eigenvalue index"}),
        "start": ("start", np.arange(S, dtype=np.int64), {**u1, "long_name": "start index"}),
    }
    ds = xr.Dataset(data_vars, coords, attrs)
    ds.attrs.update({f"n_{k.replace(' ', '_')}s": int(np.sum(kinds == c)) for c, k in enumerate(SLOW_POINT_KINDS)})
    return ds
