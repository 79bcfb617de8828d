"""Lyapunov spectra by QR reorthonormalisation (Benettin's method), for any model.

For the map ``z_t = F(z_{t-1}, s_t)`` with one-step Jacobians
``J_t = dF/dz (z_{t-1}, s_t)``, an orthonormal ``M x k`` matrix ``Q`` is
evolved as ``Q~ = J_t Q``; every ``t_ons`` steps ``Q~ = Q R`` (QR with a
positive diagonal of R) and

.. math::

    \\lambda_i = \\frac{1}{T} \\sum_{\\text{QR steps}} \\log R_{ii}

over ``T`` steps after a transient of the state (``n_transient``) and of the
orthonormal system (``n_transient_ons``).  Units: natural log per step.  The
first ``k`` exponents are returned, largest first.

Engines call the model's ``step`` and ``jacobian`` kernels, so the spectrum
works for every model of the package and for user-defined maps.
"""

from __future__ import annotations

import time

import numpy as np
import xarray as xr
from numba import prange, types
from numpy.typing import ArrayLike

from .. import _validate as V
from .. import config, io
from ..models.base import Model, call_step, check_model, check_precision, model_params, tangent_addresses
from ._tangents import initial_tangents, qr_positive, tangent_product

_f1 = types.float64[::1]
_f2 = types.float64[:, ::1]
_f3 = types.float64[:, :, ::1]
_i8 = types.int64

_LYAP_SIG = types.void(
    _i8,
    _i8,
    _i8,
    _f1,
    types.int64[::1],  # step, jacobian, tangent (0: none) addresses; p, meta
    _f2,
    _f3,
    _f3,  # z0 (B, M), S (n_total, B, K), Q0 (B, M, k)
    _i8,
    _i8,
    _i8,
    _i8,  # n_transient, n_transient_ons, n_steps, t_ons
    _i8,  # n_blocks: the accumulated QR steps are split into this many consecutive blocks
    _f2,
    _f3,
    types.int8[::1],  # out: exponents (B, k), trace (B, n_qr, k), diverged (B,)
    _f3,  # out: sums of log R_ii per block (B, n_blocks, k)
)


# float32 mode: parameters, trajectory, inputs and tangent system in float32 (p, z0, S, Q0); the sums of
# log R_ii and every output stay float64
_LYAP_SIG32 = types.void(
    *_LYAP_SIG.args[:3],
    types.float32[::1],
    _LYAP_SIG.args[4],
    types.float32[:, ::1],
    types.float32[:, :, ::1],
    types.float32[:, :, ::1],
    *_LYAP_SIG.args[8:],
)
_LYAP_SIGS = {"float64": _LYAP_SIG, "float32": _LYAP_SIG32}


@config.njit(inline="always")
def _accumulated_qr_steps(n_transient_ons, n_steps, t_ons):
    # number of QR steps whose log R_ii are accumulated (those ending at tt >= n_transient_ons)
    n_total = n_transient_ons + n_steps
    n_acc = 0
    for tt in range(n_transient_ons, n_total):
        if (tt + 1) % t_ons == 0 or tt == n_total - 1:
            n_acc += 1
    return n_acc


@config.njit
def _lyapunov_one(
    b, step, jac, tan, p, meta, z0, S, Q0, n_transient, n_transient_ons, n_steps, t_ons, n_blocks, n_acc, out, trace,
    diverged, blocks
):
    # one initial condition b (independent of the others: the engines below run them serially or in parallel)
    M = z0.shape[1]
    k = Q0.shape[2]
    K = S.shape[2]
    z = np.empty((1, M), z0.dtype)
    zn = np.empty((1, M), z0.dtype)
    s = np.empty((1, K), z0.dtype)
    J = np.empty((M, M), z0.dtype)
    n_qr_trace = trace.shape[1]
    n_total = n_transient_ons + n_steps
    i_acc = 0
    z[0, :] = z0[b]
    Q = Q0[b].copy()
    sums = np.zeros(k)
    t = 0
    bad = False
    # state transient: only the trajectory
    for _ in range(n_transient):
        s[0, :] = S[t, b]
        call_step(step, p, meta, z, s, zn)
        z[0, :] = zn[0]
        t += 1
    if not np.all(np.isfinite(z)):
        bad = True
    i_qr = 0
    for tt in range(n_total):
        if bad:
            break
        s[0, :] = S[t, b]
        Q = tangent_product(jac, tan, p, meta, z[0], s[0], J, Q)
        call_step(step, p, meta, z, s, zn)
        z[0, :] = zn[0]
        t += 1
        if (tt + 1) % t_ons == 0 or tt == n_total - 1:
            if not (np.all(np.isfinite(Q)) and np.all(np.isfinite(z))):
                bad = True
                break
            Qn, R = qr_positive(Q)
            j_block = i_acc * n_blocks // n_acc if tt >= n_transient_ons else 0
            for i in range(k):
                r = R[i, i]
                if tt >= n_transient_ons:
                    lr = np.log(r) if r > 0.0 else -np.inf
                    sums[i] += lr
                    blocks[b, j_block, i] += lr
            if tt >= n_transient_ons:
                i_acc += 1
            Q = np.ascontiguousarray(Qn)
            if tt >= n_transient_ons and i_qr < n_qr_trace:
                done = tt + 1 - n_transient_ons
                for i in range(k):
                    trace[b, i_qr, i] = sums[i] / done
                i_qr += 1
    if bad:
        diverged[b] = 1
        for i in range(k):
            out[b, i] = np.nan
    else:
        for i in range(k):
            out[b, i] = sums[i] / n_steps


@config.jit(_LYAP_SIG)
def _lyapunov_kernel(
    step, jac, tan, p, meta, z0, S, Q0, n_transient, n_transient_ons, n_steps, t_ons, n_blocks, out, trace, diverged,
    blocks
):
    n_acc = _accumulated_qr_steps(n_transient_ons, n_steps, t_ons)
    for b in range(z0.shape[0]):
        _lyapunov_one(b, step, jac, tan, p, meta, z0, S, Q0, n_transient, n_transient_ons, n_steps, t_ons, n_blocks,
                      n_acc, out, trace, diverged, blocks)


# the same over initial conditions in parallel (a separate engine: entering a parallel region costs
# thread wake-ups, so one initial condition or one thread uses the serial one)
@config.jit(_LYAP_SIG, parallel=True)
def _lyapunov_kernel_parallel(
    step, jac, tan, p, meta, z0, S, Q0, n_transient, n_transient_ons, n_steps, t_ons, n_blocks, out, trace, diverged,
    blocks
):
    n_acc = _accumulated_qr_steps(n_transient_ons, n_steps, t_ons)
    for b in prange(z0.shape[0]):
        _lyapunov_one(b, step, jac, tan, p, meta, z0, S, Q0, n_transient, n_transient_ons, n_steps, t_ons, n_blocks,
                      n_acc, out, trace, diverged, blocks)


def lyapunov_spectrum(
    model: Model,
    theta: ArrayLike,
    *,
    k: int | None = None,
    n_steps: int = 10_000,
    t_ons: int = 1,
    n_transient: int = 1_000,
    n_transient_ons: int = 100,
    z0=None,
    n_init: int = 1,
    inputs=None,
    trace: bool = False,
    n_blocks: int = 20,
    seed: int | np.random.Generator | None = 0,
    n_threads: int | None = None,
    dtype="float64",
) -> xr.Dataset:
    """Lyapunov exponents of ``model`` by QR reorthonormalisation, with standard errors.

    Parameters
    ----------
    model : Model
        Any model of the package or a user-defined one.
    theta : (P,) array
        Parameters.
    k : int, optional
        Number of exponents (default: all, ``model.dim``).
    n_steps : int
        Steps over which the exponents are averaged (after both transients).
    t_ons : int
        Steps between reorthonormalisations (>= 1).
    n_transient : int
        Steps of the state discarded before the orthonormal system starts.
    n_transient_ons : int
        Steps of the orthonormal system discarded before accumulating.
    z0 : (M,) or (B, M) array, optional
        Initial state(s); default ``n_init`` draws from N(0, 1) (``seed``).
    n_init : int
        Number of initial conditions when ``z0`` is not given.
    inputs : (K,), (T, K) or (B, T, K) array, optional
        Inputs of a driven system: a constant vector, or a stream (shared by
        the initial conditions, or one per initial condition) covering all
        ``T = n_transient + n_transient_ons + n_steps`` steps.
    trace : bool
        Also return the running estimate after every QR step (convergence trace).
    n_blocks : int
        Number of consecutive, non-overlapping time blocks for the batch-means
        standard error (>= 2; default 20, within the 10-30 usually recommended
        for a fixed number of batches).  The accumulated QR steps are split
        into ``min(n_blocks, number of QR steps)`` blocks of (nearly) equal
        length; costs one (B, n_blocks, k) array, nothing per step.
    seed : int, None or numpy.random.Generator
        Seeds the default initial states and the initial orthonormal system;
        the int that repeats the run is recorded in the ``seeds`` attribute.
    n_threads : int, optional
        Initial conditions run in parallel on this many numba threads
        (default: all of numba's threads when there are several initial
        conditions and enough work, see
        :func:`plrnn_numba.config.parallel_threads`; 1: serially).  The
        results do not depend on it.
    dtype : {"float64", "float32"}
        Precision of the trajectory, the tangent products and the QR
        factorisations (float32: models whose ``dtypes`` include it); the
        sums of ``log R_ii`` and the outputs are float64.  On a stable
        orbit the exponents agree with float64 to about 1e-7; on a chaotic
        one the float32 orbit is another orbit, and the estimates agree
        within their spread across initial conditions (measured: 0.005 at
        N = 40, g = 3 for the vanilla RNN, 20,000 steps).

    Returns
    -------
    xarray.Dataset
        ``exponents`` (init, exponent), ``mean`` and ``std`` over initial
        conditions (exponent), ``diverged`` (init; 1 where the trajectory or
        the tangent system became non-finite, exponents NaN there) and
        optionally ``trace`` (init, qr_step, exponent).  Standard errors
        (see Notes):

        * ``exponents_block_sem`` (init, exponent): batch-means standard error
          of each initial condition's exponents, from the spread of the block
          means ``lambda_i^{(j)} = sum_{QR steps in block j} log R_ii / L_j``:
          ``std(block means, ddof=1) / sqrt(n_blocks)``;
        * ``mean_block_sem`` (exponent): the standard error of ``mean``
          combined from them, ``sqrt(sum_b sem_b^2) / B`` over the
          non-diverged initial conditions;
        * ``exponents_sem`` (exponent): the standard error of ``mean`` from
          the spread across initial conditions, ``std(ddof=1) / sqrt(B)``
          (NaN with fewer than two non-diverged initial conditions).

    Notes
    -----
    The batch-means (block) standard error assumes that the block means are
    approximately independent, i.e. that each block is much longer than the
    correlation time of the local growth rates ``log R_ii``; blocks that are
    too short (strongly correlated) make it too small.  ``n_blocks`` trades
    the bias (few long blocks: nearly independent) against the variance of
    the SE estimate itself (relative error about ``1 / sqrt(2 (n_blocks - 1))``,
    16 % for 20 blocks).  Initial conditions that share an input stream are
    not independent (a common drive synchronises them), so ``exponents_sem``
    is then meaningless while ``mean_block_sem`` stays valid only if the
    trajectories are independent too; for autonomous chaotic systems both
    estimates agree (tested).  Both shrink like ``1 / sqrt(n_steps)``.
    """
    check_model(model)
    theta = model.check_theta(theta)
    dtype = check_precision(model, dtype)
    M, K = model.dim, model.n_inputs
    k = M if k is None else V.positive_int(k, "k")
    if k > M:
        raise ValueError(f"k must be <= the state dimension {M}; got {k}")
    n_steps = V.positive_int(n_steps, "n_steps")
    t_ons = V.positive_int(t_ons, "t_ons")
    n_transient = V.positive_int(n_transient, "n_transient", minimum=0)
    n_transient_ons = V.positive_int(n_transient_ons, "n_transient_ons", minimum=0)
    trace = V.flag(trace, "trace")
    n_blocks = V.positive_int(n_blocks, "n_blocks", minimum=2)
    rng, recorded_seed = V.generator(seed)
    if z0 is None:
        Z0 = rng.standard_normal((V.positive_int(n_init, "n_init"), M))
    else:
        Z0 = V.as_state(z0, M, "z0")
        Z0 = Z0[None, :] if Z0.ndim == 1 else Z0
    B = Z0.shape[0]
    n_total = n_transient + n_transient_ons + n_steps
    s = V.input_stream(inputs, B, n_total, K, "n_transient + n_transient_ons + n_steps steps")
    S = V.carray(np.transpose(s, (1, 0, 2)))
    # random orthonormal initial tangent vectors (NumPy RNG, passed in)
    Q0, _ = initial_tangents("random", B, M, k, rng)
    n_qr = -(-(n_transient_ons + n_steps) // t_ons)
    n_trace = max(0, n_qr - (n_transient_ons // t_ons)) if trace else 0
    out = np.empty((B, k))
    tr = np.full((B, n_trace, k), np.nan)
    div = np.zeros(B, dtype=np.int8)
    block_len = _block_lengths(n_transient_ons, n_steps, t_ons, n_blocks)
    n_eff = block_len.size
    blocks = np.zeros((B, n_eff, k))
    kern = model.kernels.addresses(dtype)
    config.prepare_engines()
    # per step: the tangent product (2 M^2 k) and the QR factorisation (about 4 M k^2)
    work = B * (n_transient_ons + n_steps) * (2.0 * M * M * k + 4.0 * M * k * k)
    n_thr = config.parallel_threads(n_threads, B, work)
    engine = (_lyapunov_kernel if n_thr == 1 else _lyapunov_kernel_parallel).for_signature(_LYAP_SIGS[dtype])
    t0 = time.perf_counter()
    with np.errstate(all="ignore"), config.threads_for(n_thr):
        engine(
            kern.step,
            kern.jacobian,
            tangent_addresses(model, dtype).tangent,
            V.carray(model_params(model, theta), dtype),
            model.meta,
            V.carray(Z0, dtype),
            V.carray(S, dtype),
            V.carray(Q0, dtype),
            n_transient,
            n_transient_ons,
            n_steps,
            t_ons,
            n_eff,
            out,
            tr,
            div,
            blocks,
        )
    seconds = time.perf_counter() - t0
    ok = div == 0
    n_ok = int(ok.sum())
    # the finite runs (all of them, without a copy, in the usual case)
    def finite(a):
        return a if n_ok == B else a[ok]

    # QR already orders the exponents almost surely; sort for safety on the finite runs
    if n_ok and k > 1:
        order = np.argsort(-finite(out).mean(axis=0), kind="stable")
        if np.any(order != np.arange(k)):
            out = out[:, order]
            tr = tr[:, :, order]
            blocks = blocks[:, :, order]
    block_sem = np.full((B, k), np.nan)
    with np.errstate(all="ignore"):
        if n_ok:
            block_sem[ok] = _batch_means_sem(finite(blocks) / block_len[None, :, None], axis=1)
        sem_init = finite(out).std(axis=0, ddof=1) / np.sqrt(n_ok) if n_ok > 1 else np.full(k, np.nan)
        mean_block_sem = np.sqrt((finite(block_sem) ** 2).sum(axis=0)) / n_ok if n_ok else np.full(k, np.nan)
    mean = finite(out).mean(axis=0) if n_ok else np.full(k, np.nan)
    std = finite(out).std(axis=0) if n_ok > 1 else np.zeros(k) if n_ok else np.full(k, np.nan)
    data = {
        "exponents": (
            ("init", "exponent"),
            out,
            {"long_name": "Lyapunov exponents per initial condition", "units": "1/step (natural log)"},
        ),
        "mean": (
            "exponent",
            mean,
            {"long_name": "mean over non-diverged initial conditions", "units": "1/step (natural log)"},
        ),
        "std": (
            "exponent",
            std,
            {"long_name": "standard deviation over initial conditions", "units": "1/step (natural log)"},
        ),
        "diverged": (
            "init",
            div,
            {"long_name": "1 if the trajectory or tangent system became non-finite", "units": "1"},
        ),
        "exponents_sem": (
            "exponent",
            sem_init,
            {
                "long_name": "standard error of mean from the spread across initial conditions (std ddof=1 / sqrt(B))",
                "units": "1/step (natural log)",
            },
        ),
        "exponents_block_sem": (
            ("init", "exponent"),
            block_sem,
            {
                "long_name": "batch-means standard error of exponents from non-overlapping time blocks",
                "units": "1/step (natural log)",
                "n_blocks": n_eff,
            },
        ),
        "mean_block_sem": (
            "exponent",
            mean_block_sem,
            {
                "long_name": "standard error of mean combined from the block standard errors (sqrt(sum sem^2) / B)",
                "units": "1/step (natural log)",
            },
        ),
    }
    coords = {
        "exponent": ("exponent", np.arange(1, k + 1), {"long_name": "exponent index (largest first)", "units": "1"}),
        "init": ("init", np.arange(B), {"long_name": "initial condition", "units": "1"}),
    }
    if trace:
        data["trace"] = (
            ("init", "qr_step", "exponent"),
            tr,
            {"long_name": "running estimate after each reorthonormalisation", "units": "1/step (natural log)"},
        )
        coords["qr_step"] = (
            "qr_step",
            np.arange(1, n_trace + 1) * t_ons,
            {"long_name": "steps accumulated (after the transients)", "units": "steps"},
        )
    attrs = io.provenance(
        "plrnn_numba.dynamics.lyapunov_spectrum",
        {
            "model": model.describe(),
            "k": k,
            "n_steps": n_steps,
            "t_ons": t_ons,
            "n_transient": n_transient,
            "n_transient_ons": n_transient_ons,
            "n_init": B,
            "driven": int(inputs is not None),
            "n_blocks": n_eff,
            "dtype": dtype,
        },
        seeds=recorded_seed,
    )
    attrs["seconds"] = seconds
    return _from_template(("lyapunov_spectrum", B, k, n_eff, n_trace if trace else -1, t_ons if trace else 0),
                          data, coords, attrs)


# Datasets of the same layout differ only in their data and global attributes: the first call of each
# layout builds a template (with placeholder data) and the others assemble theirs from its parts (its
# dimensions and indexes, shallow copies of its coordinates, new data variables), which skips xarray's
# merge, index construction and per-variable copies (about 10 instead of 250 us per call)
_TEMPLATES: dict[tuple, xr.Dataset] = {}
_MAX_TEMPLATES = 64


def _from_template(key: tuple, data: dict, coords: dict, attrs: dict) -> xr.Dataset:
    """``xr.Dataset(data, coords=coords, attrs=attrs)``, through a cached template of the layout ``key``.

    ``key`` must determine the dimensions, coordinates and variable attributes of ``data``.
    """
    template = _TEMPLATES.get(key)
    if template is None:
        placeholders = {name: (dims, np.broadcast_to(np.zeros((), np.asarray(values).dtype), np.shape(values)), va)
                        for name, (dims, values, va) in data.items()}
        template = xr.Dataset(placeholders, coords=coords)
        if len(_TEMPLATES) >= _MAX_TEMPLATES:
            _TEMPLATES.clear()
        _TEMPLATES[key] = template
    try:
        # xarray's own constructor of a Dataset from consistent parts; each variable and coordinate is
        # a new object with its own attributes, so edits of the result never reach the template
        variables = {name: var.copy(deep=False) for name, var in template._variables.items()
                     if name in template._coord_names}
        for name, (_, values, _) in data.items():
            var = template._variables[name]
            variables[name] = xr.Variable(var.dims, values, dict(var.attrs), fastpath=True)
        return xr.Dataset._construct_direct(variables, set(template._coord_names), dict(template._dims),
                                            dict(attrs), dict(template._indexes))
    except (AttributeError, TypeError):  # pragma: no cover - an xarray without these internals
        ds = template.copy(deep=False, data={name: values for name, (_, values, _) in data.items()})
        ds.attrs = attrs
        return ds


def _block_lengths(n_transient_ons: int, n_steps: int, t_ons: int, n_blocks: int) -> np.ndarray:
    """Steps covered by each block of accumulated QR steps, as the kernel assigns them.

    The accumulated QR steps (those ending at ``tt >= n_transient_ons``) are
    numbered ``q = 0 .. n_acc - 1`` and block ``j`` holds those with
    ``q * n_eff // n_acc == j``, ``n_eff = min(n_blocks, n_acc)``; QR step
    ``q`` covers the steps since the previous one (the first: since the start
    of accumulation), so the lengths add up to ``n_steps``.
    """
    if t_ons == 1:
        # every step is a QR step, each covering one step: block j holds the q with q n_eff // n == j,
        # i.e. q from ceil(j n / n_eff) to ceil((j + 1) n / n_eff) - 1
        n_eff = min(n_blocks, n_steps)
        starts = -((-np.arange(n_eff + 1) * n_steps) // n_eff)
        return np.diff(starts).astype(float)
    n_total = n_transient_ons + n_steps
    tt = np.arange(n_transient_ons, n_total)
    ends = tt[((tt + 1) % t_ons == 0) | (tt == n_total - 1)] + 1 - n_transient_ons
    n_acc = ends.size
    n_eff = min(n_blocks, n_acc)
    cover = np.diff(ends, prepend=0)
    j = np.arange(n_acc) * n_eff // n_acc
    return np.bincount(j, weights=cover, minlength=n_eff).astype(float)


def _batch_means_sem(block_means: np.ndarray, axis: int) -> np.ndarray:
    """Batch-means standard error ``std(block means, ddof=1) / sqrt(n_blocks)`` along ``axis`` (NaN if < 2)."""
    n = block_means.shape[axis]
    if n < 2:
        return np.full(np.delete(block_means.shape, axis), np.nan)
    return block_means.std(axis=axis, ddof=1) / np.sqrt(n)
