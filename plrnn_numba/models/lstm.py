r"""Long short-term memory network (one layer), with PyTorch's equations, gate order and parameters.

For Ribeiro et al. (2020), "Beyond exploding and vanishing gradients:
analysing RNN training using attractors and smoothness".  With N hidden units,
K inputs ``u`` and the state ``z = (h, c)`` of size 2N (h first):

.. math::

    a &= W_{ih} u + b_{ih} + W_{hh} h + b_{hh} \in \mathbb{R}^{4N},
    \qquad a = (a_i, a_f, a_g, a_o), \\
    i &= \sigma(a_i), \quad f = \sigma(a_f), \quad g = \tanh(a_g), \quad o = \sigma(a_o), \\
    c' &= f \odot c + i \odot g, \\
    h' &= o \odot \tanh(c'),

exactly ``torch.nn.LSTM`` (``num_layers=1``, ``proj_size=0``).  ``W_hh`` stacks
the blocks ``W_hi, W_hf, W_hg, W_ho`` (each N x N) in PyTorch's gate order
(i, f, g, o), and likewise ``W_ih`` and the biases.  The input of the step that
produces ``z_t`` is ``u_t`` (the package's convention: ``simulate`` and
``loss_and_grad`` feed ``s_1 .. s_T``, the input of step t producing ``z_t``,
like torch's ``x_t`` producing ``h_t``).

One-step Jacobian
-----------------
With ``sigma' = sigma (1 - sigma)``, ``tau = tanh(c')`` and the per-unit
coefficients

.. math::

    \alpha_i = g\, \sigma'(a_i), \quad \alpha_f = c\, \sigma'(a_f), \quad
    \alpha_g = i\, (1 - g^2), \quad \beta_o = \tau\, \sigma'(a_o), \quad
    m = o\, (1 - \tau^2),

the 2N x 2N Jacobian ``dz'/dz`` has the blocks

.. math::

    \frac{\partial c'}{\partial h} &= D_{\alpha_i} W_{hi} + D_{\alpha_f} W_{hf} + D_{\alpha_g} W_{hg}, \qquad
    \frac{\partial c'}{\partial c} = D_f, \\
    \frac{\partial h'}{\partial h} &= D_m \frac{\partial c'}{\partial h} + D_{\beta_o} W_{ho}, \qquad
    \frac{\partial h'}{\partial c} = D_m D_f,

(``D_x = diag(x)``), ordered ``[[dh'/dh, dh'/dc], [dc'/dh, dc'/dc]]``.

Backward pass (the state VJP): with ``(gh, gc)`` the adjoint of ``(h', c')``,
``cbar = gc + gh m``, the adjoint of the pre-activations is
``delta = (cbar alpha_i, cbar alpha_f, cbar alpha_g, gh beta_o)`` and
``(gh_prev, gc_prev) = (W_hh^T delta, cbar f)``; the parameter gradient is
``dW_hh += delta h^T``, ``dW_ih += delta u^T``, ``db_ih += delta``,
``db_hh += delta``.

Layout of ``theta`` (PyTorch's parameters in its order, row-major):
``weight_ih (4N*K) | weight_hh (4N*N) | bias_ih (4N) | bias_hh (4N)``; without
biases (``bias=False``) the last two blocks are absent.  The kernels receive
``theta | b (4N, = bias_ih + bias_hh) | W_hh^T (N*4N) | W_ih^T (K*4N)``
(:meth:`LSTM.expand`).

Tape.  Backpropagation through time keeps the gates ``i, f, g, o`` and
``tanh(c')`` of every step (``5N`` floats per batch item, the model's
``tape_width``), so that the pullbacks need neither the pre-activations nor
the transcendental functions again: a BPTT call makes three (rows x N) x
(N x 4N) products per step and batch item (the forward step, ``W_hh^T
delta`` in the state pullback, ``delta^T h`` in the parameter pullback, the
last as BLAS over blocks of whole steps, about 256 rows, which the BPTT
engine reduces during its backward sweep while they are in cache), as an
implementation that stores its activations does.  The kernels without a tape (``step``,
``state_vjp``, ``param_vjp``, used by every other engine) recompute the
gates from ``z``.  The per-step products are row loops up to 15 batch rows
and BLAS from 16 (from 2 at N >= 32 with OpenBLAS's AVX-512 kernels,
:func:`blas_min_rows`); the gates are branch-free arithmetic (:func:`_sigmoid`,
the rate model's ``_tanh``) in loops that vectorise.  Below 8 units a row's
few units cannot fill the vector lanes, so from 8 batch rows on the kernels
copy the step's rows into transposed buffers (one row per unit and gate, one
column per batch item) and every loop runs over the batch
(``_LANES_MIN_ROWS``; measured at N = 2, batch 100, T = 400: 2.3 ms against
5.5 ms unit by unit).  Measured (one thread, T = 400, LinearReadout, whole
``loss_and_grad`` against ``torch.nn.LSTM`` forward + backward in float64;
``benchmarks/bench_lstm.py``, an AMD EPYC with AVX-512, OpenBLAS's native
kernels and in brackets the forced Haswell ones): 55x (58x) faster at N = 2
and batch 10, 11x (9.9x) at N = 2 and batch 100, 5.4x (4.2x) at N = 50 and
batch 10, 2.1x (1.9x) at N = 50 and batch 100, 2.1x (1.4x) at N = 200 and
batch 10, 1.3x (1.3x) at N = 200 and batch 100, where both sides are bound by
the same three products per step.  Torch in float32 (oneDNN's fused LSTM) is
faster than this float64 code from N = 50 on; the float32 mode beats it at
N <= 50 (1.0-2.9x) and not at N = 200 (0.55-0.91x).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import _validate as V_
from .. import config
from ..config import njit
from ._fastmath import _exp_nonpos, _like, _tanh
from ._linalg import acc_at_b
from .base import (
    Model,
    TapeKernels,
    build_kernels,
    jacobian_kernel,
    jacobian_vjp_kernel,
    param_vjp_kernel,
    state_vjp_kernel,
    step_kernel,
    tape_param_vjp_kernel,
    tape_state_vjp_kernel,
    tape_step_kernel,
)

# meta = [N, K, bias (0/1), P, blas rows]: units, inputs, whether theta holds the biases, length of theta,
# batch rows from which the per-step products call BLAS (blas_min_rows)


@njit(inline="always")
def _sigmoid(x):
    """``(sigma(x), 1 - sigma(x))``, both to full relative accuracy (``1 - sigma(x) = sigma(-x)``)."""
    one = _like(x, 1.0)  # in x's precision (float32 kernels: no widening to float64)
    e = _exp_nonpos(-abs(x))
    r = one / (one + e)
    er = e * r
    if x >= 0.0:
        return r, er
    return er, r


@njit(inline="always")
def _blas(meta, rows):
    # BLAS for the per-step (rows, N) x (N, 4N) products from meta[4] rows (chosen by LSTM.meta
    # from the BLAS kernels in use: see blas_min_rows), and from 8 units
    return rows >= meta[4] and meta[0] >= 8


def blas_min_rows(n_hidden: int) -> int:
    """Batch rows from which the LSTM's per-step products call BLAS instead of the row loops.

    Measured (one thread, T = 400, loss and gradient, two interleaved rounds):
    with OpenBLAS's Haswell kernels the row loops were as fast or faster up to
    10 rows at every N (N = 200, batch 4: 90-103 ms against 128-150 ms with
    BLAS), BLAS about twice as fast at 100 rows from N = 16 on; with its
    AVX-512 kernels (SkylakeX and later, which have small-matrix paths) BLAS
    was faster from 2 rows at N >= 32 (N = 50, batch 10: 11.5-11.7 against
    18.8-25.5 ms; N = 100, batch 4: 12-14 against 26-39 ms) and about equal
    below 32 units.

    Parameters
    ----------
    n_hidden : int
        Hidden units N.

    Returns
    -------
    int
        16 (``4 * config.BLAS_MIN_BATCH``), or 2 from 32 units with AVX-512 OpenBLAS kernels.
    """
    if n_hidden >= 32 and config.blas_small_matrix_kernels():
        return 2
    return 4 * config.BLAS_MIN_BATCH


@njit(inline="always")
def _views(p, N, K, P):
    """``W_hh (4N, N)``, combined bias ``b (4N)``, ``W_hh^T (N, 4N)``, ``W_ih^T (K, 4N)`` from the kernel vector."""
    Whh = p[4 * N * K : 4 * N * K + 4 * N * N].reshape((4 * N, N))
    b = p[P : P + 4 * N]
    o = P + 4 * N
    WhhT = p[o : o + 4 * N * N].reshape((N, 4 * N))
    o += 4 * N * N
    WihT = p[o : o + 4 * N * K].reshape((K, 4 * N))
    return Whh, b, WhhT, WihT


@njit
def _preactivation(p, meta, Z, S):
    """``A = H W_hh^T + S W_ih^T + b`` (rows, 4N) for states ``Z`` (rows, 2N) and inputs ``S`` (rows, K)."""
    N, K, P = meta[0], meta[1], meta[3]
    Whh, b, WhhT, WihT = _views(p, N, K, P)
    rows = Z.shape[0]
    N4 = 4 * N
    if _blas(meta, rows):
        H = np.empty((rows, N), Z.dtype)
        for r in range(rows):
            for j in range(N):
                H[r, j] = Z[r, j]
        A = np.dot(H, WhhT)
        if K > 0:
            A += np.dot(S, WihT)
        for r in range(rows):
            ar = A[r]
            for q in range(N4):
                ar[q] += b[q]
        return A
    A = np.empty((rows, N4), Z.dtype)
    # in the arrays' precision: a float64 0.0 would make h1 float64 and the float32 kernels mix precisions
    zero = Z.dtype.type(0)
    # a += h_j (column j of W_hh) and u_k (column k of W_ih): contiguous rows of the transposes,
    # two batch rows at a time (each load of W serves two rows: 30% faster at N = 50, 10 rows)
    r = 0
    while r < rows:
        two = r + 1 < rows
        r1 = r + 1 if two else r
        for q in range(N4):
            A[r, q] = b[q]
            A[r1, q] = b[q]
        for j in range(N):
            h0 = Z[r, j]
            h1 = Z[r1, j] if two else zero
            for q in range(N4):
                w = WhhT[j, q]
                A[r, q] += h0 * w
                A[r1, q] += h1 * w
        for k in range(K):
            u0 = S[r, k]
            u1 = S[r1, k] if two else zero
            for q in range(N4):
                w = WihT[k, q]
                A[r, q] += u0 * w
                A[r1, q] += u1 * w
        r += 2
    return A


@njit(inline="always")
def _unit_terms(A, r, N, k, c):
    """Gates of unit k of row r of the pre-activations ``A`` and ``tau = tanh(c')``.

    Returns ``i, 1 - i, f, 1 - f, g, o, 1 - o, tau``.
    """
    i, i1 = _sigmoid(A[r, k])
    f, f1 = _sigmoid(A[r, N + k])
    g = _tanh(A[r, 2 * N + k])
    o, o1 = _sigmoid(A[r, 3 * N + k])
    tc = _tanh(f * c + i * g)
    return i, i1, f, f1, g, o, o1, tc


#: from this many units the gates are computed one gate at a time (vectorised loops); below, unit by unit
_SPLIT_MIN_UNITS = 8

#: floats per unit of a tape row: ``i, f, g, o, tanh(c')``
TAPE_TERMS = 5


@njit(inline="always")
def _gate_rows(A, Z, N, Y):
    """The tape rows ``Y[r] = (i, f, g, o, tanh(c'))`` (each N long) of pre-activations ``A`` and states ``Z``.

    From ``_SPLIT_MIN_UNITS`` units on, one loop per gate, each over contiguous memory: LLVM
    vectorises them (the transcendental functions are branch-free arithmetic); one loop over
    units writing everything did not (measured 30 ns against 7 ns per unit in the parameter
    pullback at N = 50).  Everything is indexed in 2-D: a row view per row and gate (reference
    counting) cost 70 ns per unit at N = 2.  Every loop runs over ``range(N)`` with the gate's
    offset in the index, and ``c'`` goes through a buffer of its own: a loop over
    ``range(2N, 3N)``, and one reading and writing ``Y`` at offsets that depend on the run-time
    ``N`` (LLVM cannot rule out an overlap), were not vectorised as well (5.5-7 against 14-21 ns
    per unit for the five terms, N = 8 to 128, one thread).
    """
    if N < _SPLIT_MIN_UNITS:
        for r in range(A.shape[0]):
            for k in range(N):
                i, i1, f, f1, g, o, o1, tc = _unit_terms(A, r, N, k, Z[r, N + k])
                Y[r, k] = i
                Y[r, N + k] = f
                Y[r, 2 * N + k] = g
                Y[r, 3 * N + k] = o
                Y[r, 4 * N + k] = tc
        return
    cn = np.empty(N, Y.dtype)
    for r in range(A.shape[0]):
        for k in range(N):
            Y[r, k] = _sigmoid(A[r, k])[0]
        for k in range(N):
            Y[r, N + k] = _sigmoid(A[r, N + k])[0]
        for k in range(N):
            Y[r, 2 * N + k] = _tanh(A[r, 2 * N + k])
        for k in range(N):
            Y[r, 3 * N + k] = _sigmoid(A[r, 3 * N + k])[0]
        for k in range(N):
            cn[k] = Y[r, N + k] * Z[r, N + k] + Y[r, k] * Y[r, 2 * N + k]
        for k in range(N):
            Y[r, 4 * N + k] = _tanh(cn[k])


#: below ``_SPLIT_MIN_UNITS`` units, from this many batch rows the kernels work on transposed
#: copies (one row per unit and gate, one column per batch row), so that every loop runs over the
#: batch and vectorises; unit by unit, each row's few units leave the vector lanes empty.
#: Measured (one thread, T = 400): batch 100 at N = 2 and 6, 2.3 and 8.5 ms against 5.6 and 14.3
#: ms; batch 10 about equal; from 8 units on the gate-by-gate loops are as fast or faster
#: (N = 8 to 24, batch 100)
_LANES_MIN_ROWS = 8


@njit(inline="always")
def _lanes(N, rows):
    return N < _SPLIT_MIN_UNITS and rows >= _LANES_MIN_ROWS


@njit(inline="always")
def _transpose_into(X, c0, c1, XT, d0):
    """``XT[d0 + c - c0, r] = X[r, c]`` for the columns ``c0 <= c < c1`` of ``X``."""
    # column by column: contiguous stores.  Row by row, the stores one row of XT apart ran 16x
    # slower (2.6 against 0.16 ns per element, 256 rows x 30 columns, one thread)
    for c in range(c0, c1):
        x = XT[d0 + c - c0]
        for r in range(X.shape[0]):
            x[r] = X[r, c]


@njit(inline="always")
def _gate_lanes(p, meta, XT, CT, YT, CN, R):
    """The tape ``YT`` (5N, .) = ``(i, f, g, o, tanh(c'))`` and ``CN`` (N, .) = ``c'``, transposed.

    Columns ``0 .. R - 1`` (batch rows) of buffers that may be wider.  ``XT`` (N + K, .) holds
    ``h`` and ``u`` and ``CT`` (N, .) ``c``, one row per unit: the
    pre-activation ``a_q = b_q + sum_j W_hh[q, j] h_j + sum_k W_ih[q, k] u_k`` accumulates in the
    same order as :func:`_preactivation`'s row loops.
    """
    N, K, P = meta[0], meta[1], meta[3]
    Whh, b, WhhT, WihT = _views(p, N, K, P)
    for q in range(4 * N):
        a = YT[q]
        bq = b[q]
        for r in range(R):
            a[r] = bq
        for j in range(N):
            w = WhhT[j, q]
            x = XT[j]
            for r in range(R):
                a[r] += x[r] * w
        for k in range(K):
            w = WihT[k, q]
            x = XT[N + k]
            for r in range(R):
                a[r] += x[r] * w
    for q in range(2 * N):  # i and f
        for r in range(R):
            YT[q, r] = _sigmoid(YT[q, r])[0]
    for q in range(2 * N, 3 * N):
        for r in range(R):
            YT[q, r] = _tanh(YT[q, r])
    for q in range(3 * N, 4 * N):
        for r in range(R):
            YT[q, r] = _sigmoid(YT[q, r])[0]
    for k in range(N):
        for r in range(R):
            CN[k, r] = YT[N + k, r] * CT[k, r] + YT[k, r] * YT[2 * N + k, r]
        for r in range(R):
            YT[4 * N + k, r] = _tanh(CN[k, r])


@njit
def _step_lanes(p, meta, z, s, z_next, Y):
    # the step on transposed copies (see _LANES_MIN_ROWS); z_next and the tape Y stay row-major
    N, K = meta[0], meta[1]
    R = z.shape[0]
    XT = np.empty((N + K, R), z.dtype)
    CT = np.empty((N, R), z.dtype)
    _transpose_into(z, 0, N, XT, 0)
    _transpose_into(s, 0, K, XT, N)
    _transpose_into(z, N, 2 * N, CT, 0)
    YT = np.empty((TAPE_TERMS * N, R), z.dtype)
    CN = np.empty((N, R), z.dtype)
    _gate_lanes(p, meta, XT, CT, YT, CN, R)
    for r in range(R):
        for q in range(TAPE_TERMS * N):
            Y[r, q] = YT[q, r]
        for k in range(N):
            z_next[r, N + k] = CN[k, r]
            z_next[r, k] = YT[3 * N + k, r] * YT[4 * N + k, r]


@njit(inline="always")
def _step_rows(p, meta, z, s, z_next, Y):
    # c' = f c + i g, h' = o tanh(c'), keeping the gates in Y
    N = meta[0]
    if _lanes(N, z.shape[0]):
        _step_lanes(p, meta, z, s, z_next, Y)
        return
    A = _preactivation(p, meta, z, s)
    _gate_rows(A, z, N, Y)
    for r in range(z.shape[0]):
        for k in range(N):
            z_next[r, N + k] = Y[r, N + k] * z[r, N + k] + Y[r, k] * Y[r, 2 * N + k]
        for k in range(N):
            z_next[r, k] = Y[r, 3 * N + k] * Y[r, 4 * N + k]


@step_kernel
def lstm_step(p, meta, z, s, z_next):
    _step_rows(p, meta, z, s, z_next, np.empty((z.shape[0], TAPE_TERMS * meta[0]), z.dtype))


@tape_step_kernel
def lstm_tape_step(p, meta, z, s, z_next, tape):
    _step_rows(p, meta, z, s, z_next, tape)


@njit(inline="always")
def _adjoint_rows(N, Y, Z, G, D, gc_prev):
    """``D`` (rows, 4N): ``delta``, the adjoint of the pre-activations, from the tape rows ``Y``.

    ``G`` (rows, 2N) holds the adjoints ``(gh, gc)`` of ``(h', c')``; ``cbar = gc + gh o (1 - tau^2)``.
    ``gc_prev[r, k] = cbar f`` (the adjoint of c) is written when ``gc_prev`` has rows (the state
    pullback needs it, the parameter pullback does not).
    """
    want_c = gc_prev.shape[0] > 0
    cb = np.empty(N, D.dtype)
    one = D.dtype.type(1)  # the arrays' precision
    for r in range(Y.shape[0]):
        for k in range(N):
            tau = Y[r, 4 * N + k]
            cb[k] = G[r, N + k] + G[r, k] * Y[r, 3 * N + k] * (one - tau * tau)
        for k in range(N):
            i = Y[r, k]
            D[r, k] = cb[k] * Y[r, 2 * N + k] * i * (one - i)
        for k in range(N):
            f = Y[r, N + k]
            D[r, N + k] = cb[k] * Z[r, N + k] * f * (one - f)
        for k in range(N):
            g = Y[r, 2 * N + k]
            D[r, 2 * N + k] = cb[k] * Y[r, k] * (one - g * g)
        for k in range(N):
            o = Y[r, 3 * N + k]
            D[r, 3 * N + k] = G[r, k] * Y[r, 4 * N + k] * o * (one - o)
        if want_c:
            for k in range(N):
                gc_prev[r, k] = cb[k] * Y[r, N + k]


@njit(inline="always")
def _adjoint_lanes(N, YT, CT, GT, DT, GC, R):
    """:func:`_adjoint_rows` on transposed copies: ``DT`` (4N, .) from ``YT`` (5N, .), ``CT`` (N, .) =
    ``c`` and ``GT`` (2N, .) = ``(gh, gc)``; ``GC`` (N, .) = ``cbar f`` when it has rows.  Columns
    ``0 .. R - 1``.
    """
    want_c = GC.shape[0] > 0
    cb = np.empty(R, DT.dtype)
    one = DT.dtype.type(1)
    for k in range(N):
        for r in range(R):
            tau = YT[4 * N + k, r]
            cb[r] = GT[N + k, r] + GT[k, r] * YT[3 * N + k, r] * (one - tau * tau)
        for r in range(R):
            i = YT[k, r]
            DT[k, r] = cb[r] * YT[2 * N + k, r] * i * (one - i)
        for r in range(R):
            f = YT[N + k, r]
            DT[N + k, r] = cb[r] * CT[k, r] * f * (one - f)
        for r in range(R):
            g = YT[2 * N + k, r]
            DT[2 * N + k, r] = cb[r] * YT[k, r] * (one - g * g)
        for r in range(R):
            o = YT[3 * N + k, r]
            DT[3 * N + k, r] = GT[k, r] * YT[4 * N + k, r] * o * (one - o)
        if want_c:
            for r in range(R):
                GC[k, r] = cb[r] * YT[N + k, r]


@njit
def _state_pullback_lanes(p, meta, z, Y, g, g_z):
    # the state pullback on transposed copies (see _LANES_MIN_ROWS)
    N, K, P = meta[0], meta[1], meta[3]
    Whh, b, WhhT, WihT = _views(p, N, K, P)
    R = z.shape[0]
    YT = np.empty((TAPE_TERMS * N, R), z.dtype)
    CT = np.empty((N, R), z.dtype)
    GT = np.empty((2 * N, R), z.dtype)
    _transpose_into(Y, 0, TAPE_TERMS * N, YT, 0)
    _transpose_into(z, N, 2 * N, CT, 0)
    _transpose_into(g, 0, 2 * N, GT, 0)
    DT = np.empty((4 * N, R), z.dtype)
    GC = np.empty((N, R), z.dtype)
    _adjoint_lanes(N, YT, CT, GT, DT, GC, R)
    # gh_prev[j] = sum_q W_hh[q, j] delta_q, summed over q in the order of _hh_transpose_rows
    GH = np.zeros((N, R), z.dtype)
    for j in range(N):
        acc = GH[j]
        for q in range(4 * N):
            w = WhhT[j, q]
            d = DT[q]
            for r in range(R):
                acc[r] += w * d[r]
    for r in range(R):
        for k in range(N):
            g_z[r, k] = GH[k, r]
            g_z[r, N + k] = GC[k, r]


@njit(inline="always")
def _state_pullback(p, meta, z, Y, g, g_z):
    # (gh_prev, gc_prev) = (W_hh^T delta, cbar f)
    N, K, P = meta[0], meta[1], meta[3]
    Whh, b, WhhT, WihT = _views(p, N, K, P)
    rows = z.shape[0]
    if _lanes(N, rows):
        _state_pullback_lanes(p, meta, z, Y, g, g_z)
        return
    D = np.empty((rows, 4 * N), z.dtype)
    gc = np.empty((rows, N), z.dtype)
    _adjoint_rows(N, Y, z, g, D, gc)
    for r in range(rows):
        for k in range(N):
            g_z[r, N + k] = gc[r, k]
    if _blas(meta, rows):
        GH = np.dot(D, Whh)
        for r in range(rows):
            for j in range(N):
                g_z[r, j] = GH[r, j]
        return
    _hh_transpose_rows(WhhT, D, g_z)


@state_vjp_kernel
def lstm_state_vjp(p, meta, z, s, g, g_z):
    N = meta[0]
    Y = np.empty((z.shape[0], TAPE_TERMS * N), z.dtype)
    if _lanes(N, z.shape[0]):
        _step_lanes(p, meta, z, s, np.empty_like(z), Y)
    else:
        _gate_rows(_preactivation(p, meta, z, s), z, N, Y)
    _state_pullback(p, meta, z, Y, g, g_z)


@tape_state_vjp_kernel
def lstm_tape_state_vjp(p, meta, z, s, tape, g, g_z):
    _state_pullback(p, meta, z, tape, g, g_z)


@njit
def _hh_transpose_rows(WhhT, D, g_z):
    """``g_z[r, :N] = W_hh^T D[r]`` by contiguous dot products with the rows of ``W_hh^T``.

    A separate (not inlined) function: inlined into the state pullback, the same loops ran
    several times slower (measured at N = 50, 10 rows: 60 us against 7 us).
    """
    N, N4 = WhhT.shape
    zero = D.dtype.type(0)  # accumulate in the arrays' precision (float32 kernels: as BLAS's sgemm does)
    for r in range(D.shape[0]):
        d = D[r]
        for j in range(N):
            w = WhhT[j]
            acc = zero
            for q in range(N4):
                acc += w[q] * d[q]
            g_z[r, j] = acc


#: rows of the parameter pullback processed together: the block's pre-activations, gates and
#: adjoints stay in cache.  Measured (one thread, N = 50, 40,000 rows = T 400 x batch 100): 194 ms
#: for all rows at once (fresh 64 MB arrays: memory traffic and page faults, not arithmetic)
#: against 46 ms in blocks of 256 (64 to 1024 rows: within noise).
_PARAM_BLOCK_ROWS = 256


@njit(inline="always")
def _add_bias_grad(g_p, sb, N4, K, N):
    # db_ih = db_hh = the column sums of delta
    o = N4 * K + N4 * N
    for q in range(N4):
        g_p[o + q] += sb[q]
        g_p[o + N4 + q] += sb[q]


@njit
def _param_pullback_lanes(p, meta, Z, S, TAPE, G, g_p):
    # the parameter pullback on transposed copies (see _LANES_MIN_ROWS), block by block:
    # dW[q, j] += sum_r delta_q[r] x_j[r] as contiguous dot products over the block's rows
    N, K, bias = meta[0], meta[1], meta[2]
    rows = Z.shape[0]
    N4 = 4 * N
    gih = g_p[0 : N4 * K].reshape((N4, K))
    ghh = g_p[N4 * K : N4 * K + N4 * N].reshape((N4, N))
    sb = np.zeros(N4)
    R = min(rows, _PARAM_BLOCK_ROWS)
    XT = np.empty((N + K, R), Z.dtype)
    CT = np.empty((N, R), Z.dtype)
    YT = np.empty((TAPE_TERMS * N, R), Z.dtype)
    CN = np.empty((N, R), Z.dtype)
    GT = np.empty((2 * N, R), Z.dtype)
    DT = np.empty((N4, R), Z.dtype)
    none = np.empty((0, R), Z.dtype)
    zero = Z.dtype.type(0)  # accumulate in the arrays' precision
    for r0 in range(0, rows, R):
        r1 = min(rows, r0 + R)
        n = r1 - r0
        Zb = Z[r0:r1]
        # full-width buffers, the block in their first n columns (slices would be non-contiguous)
        _transpose_into(Zb, 0, N, XT, 0)
        _transpose_into(S[r0:r1], 0, K, XT, N)
        _transpose_into(Zb, N, 2 * N, CT, 0)
        if TAPE.shape[0] == 0:
            _gate_lanes(p, meta, XT, CT, YT, CN, n)
        else:
            _transpose_into(TAPE[r0:r1], 0, TAPE_TERMS * N, YT, 0)
        _transpose_into(G[r0:r1], 0, 2 * N, GT, 0)
        _adjoint_lanes(N, YT, CT, GT, DT, none, n)
        for q in range(N4):
            d = DT[q]
            for j in range(N + K):
                x = XT[j]
                acc = zero
                for r in range(n):
                    acc += d[r] * x[r]
                if j < N:
                    ghh[q, j] += acc
                else:
                    gih[q, j - N] += acc
            if bias:
                acc = zero
                for r in range(n):
                    acc += d[r]
                sb[q] += acc
    if bias:
        _add_bias_grad(g_p, sb, N4, K, N)


@njit(inline="always")
def _param_pullback(p, meta, Z, S, TAPE, G, g_p):
    # dW_ih += Delta^T S, dW_hh += Delta^T H, db_ih = db_hh += column sums of Delta; the gates
    # from TAPE when it has rows, else recomputed block by block
    N, K, bias = meta[0], meta[1], meta[2]
    rows = Z.shape[0]
    if _lanes(N, rows):
        _param_pullback_lanes(p, meta, Z, S, TAPE, G, g_p)
        return
    N4 = 4 * N
    gih = g_p[0 : N4 * K].reshape((N4, K))
    ghh = g_p[N4 * K : N4 * K + N4 * N].reshape((N4, N))
    sb = np.zeros(N4)
    R = min(rows, _PARAM_BLOCK_ROWS)
    H = np.empty((R, N), Z.dtype)
    D = np.empty((R, N4), Z.dtype)
    Ys = np.empty((R if TAPE.shape[0] == 0 else 0, TAPE_TERMS * N), Z.dtype)
    none = np.empty((0, N), Z.dtype)
    for r0 in range(0, rows, R):
        r1 = min(rows, r0 + R)
        n = r1 - r0
        Zb = Z[r0:r1]
        Sb = S[r0:r1]
        if TAPE.shape[0] == 0:
            Yb = Ys[:n]
            _gate_rows(_preactivation(p, meta, Zb, Sb), Zb, N, Yb)
        else:
            Yb = TAPE[r0:r1]
        Db = D[:n]
        _adjoint_rows(N, Yb, Zb, G[r0:r1], Db, none)
        Hb = H[:n]
        for r in range(n):
            for j in range(N):
                Hb[r, j] = Zb[r, j]
        if K > 0:
            acc_at_b(Db, Sb, gih)
        acc_at_b(Db, Hb, ghh)
        if bias:
            for r in range(n):
                for q in range(N4):
                    sb[q] += Db[r, q]
    if bias:
        _add_bias_grad(g_p, sb, N4, K, N)


@param_vjp_kernel
def lstm_param_vjp(p, meta, Z, S, G, g_p):
    _param_pullback(p, meta, Z, S, np.empty((0, TAPE_TERMS * meta[0]), Z.dtype), G, g_p)


@tape_param_vjp_kernel
def lstm_tape_param_vjp(p, meta, Z, S, TAPE, G, g_p):
    _param_pullback(p, meta, Z, S, TAPE, G, g_p)


@jacobian_kernel
def lstm_jacobian(p, meta, z, s, J):
    # [[dh'/dh, dh'/dc], [dc'/dh, dc'/dc]] = [[D_m Jc + D_beta W_ho, D_m D_f], [Jc, D_f]],
    # Jc = D_alpha_i W_hi + D_alpha_f W_hf + D_alpha_g W_hg
    N, K, P = meta[0], meta[1], meta[3]
    Whh, b, WhhT, WihT = _views(p, N, K, P)
    A = _preactivation(p, meta, z.reshape((1, 2 * N)), s.reshape((1, K)))
    for k in range(N):
        i, i1, f, f1, g, o, o1, tc = _unit_terms(A, 0, N, k, z[N + k])
        al_i = g * i * i1
        al_f = z[N + k] * f * f1
        al_g = i * (1.0 - g * g)
        be_o = tc * o * o1
        m = o * (1.0 - tc * tc)
        wi, wf, wg, wo = Whh[k], Whh[N + k], Whh[2 * N + k], Whh[3 * N + k]
        Jh, Jc = J[k], J[N + k]
        for j in range(N):
            jc = al_i * wi[j] + al_f * wf[j] + al_g * wg[j]
            Jc[j] = jc
            Jh[j] = m * jc + be_o * wo[j]
        for j in range(N):
            Jh[N + j] = 0.0
            Jc[N + j] = 0.0
        Jh[N + k] = m * f
        Jc[N + k] = f


@jacobian_vjp_kernel
def lstm_jacobian_vjp(p, meta, z, s, Jbar, g_z, g_p):
    # L = sum(Jbar * J) = sum_k l_k with, per unit (R_x = Jbar_ch[k] . W_hx[k], Q_x = Jbar_hh[k] . W_hx[k]),
    #   l = alpha_i R_i + alpha_f R_f + alpha_g R_g + f Jbar_cc[k,k]
    #       + m (alpha_i Q_i + alpha_f Q_f + alpha_g Q_g + f Jbar_hc[k,k]) + beta_o Q_o.
    # Direct dependence on W_hh: dl/dW_hx[k, j] = alpha_x (Jbar_ch[k, j] + m Jbar_hh[k, j]) (x = i, f, g),
    # beta_o Jbar_hh[k, j] (x = o).  Through the state: the scalar graph of l is pulled back to the
    # pre-activations (abar) and to c; then g_h = W_hh^T abar, g_c = cbar, and abar also reaches
    # W_hh (abar h^T), W_ih (abar u^T) and the biases.
    N, K, P, bias = meta[0], meta[1], meta[3], meta[2]
    Whh, b, WhhT, WihT = _views(p, N, K, P)
    N4 = 4 * N
    gWih = g_p[0 : N4 * K].reshape((N4, K))
    gWhh = g_p[N4 * K : N4 * K + N4 * N].reshape((N4, N))
    A = _preactivation(p, meta, z.reshape((1, 2 * N)), s.reshape((1, K)))
    abar = np.empty(N4, z.dtype)
    for k in range(N):
        c = z[N + k]
        i, i1, f, f1, g, o, o1, tc = _unit_terms(A, 0, N, k, c)
        si, sf, so = i * i1, f * f1, o * o1  # sigma'
        g1 = 1.0 - g * g
        t1 = 1.0 - tc * tc
        al_i, al_f, al_g = g * si, c * sf, i * g1
        be_o = tc * so
        m = o * t1
        wi, wf, wg, wo = Whh[k], Whh[N + k], Whh[2 * N + k], Whh[3 * N + k]
        Jh, Jc = Jbar[k], Jbar[N + k]
        Ri = Rf = Rg = Qi = Qf = Qg = Qo = 0.0
        for j in range(N):
            Ri += Jc[j] * wi[j]
            Rf += Jc[j] * wf[j]
            Rg += Jc[j] * wg[j]
            Qi += Jh[j] * wi[j]
            Qf += Jh[j] * wf[j]
            Qg += Jh[j] * wg[j]
            Qo += Jh[j] * wo[j]
        D_hc, D_cc = Jh[N + k], Jc[N + k]
        # direct dependence on W_hh
        gi, gf, gg, go = gWhh[k], gWhh[N + k], gWhh[2 * N + k], gWhh[3 * N + k]
        for j in range(N):
            e = Jc[j] + m * Jh[j]
            gi[j] += al_i * e
            gf[j] += al_f * e
            gg[j] += al_g * e
            go[j] += be_o * Jh[j]
        # adjoints of the intermediate scalars
        abar_i = Ri + m * Qi
        abar_f = Rf + m * Qf
        abar_g = Rg + m * Qg
        mbar = al_i * Qi + al_f * Qf + al_g * Qg + f * D_hc
        fbar = D_cc + m * D_hc
        obar = mbar * t1
        taubar = -2.0 * mbar * o * tc + Qo * so
        ao = Qo * tc * so * (1.0 - 2.0 * o)
        cnbar = taubar * t1  # adjoint of c'
        fbar += cnbar * c
        cbar = cnbar * f
        ibar = cnbar * g
        gbar = cnbar * i
        # alpha_i = g sigma'(a_i), alpha_f = c sigma'(a_f), alpha_g = i (1 - g^2)
        gbar += abar_i * si
        ai = abar_i * g * si * (1.0 - 2.0 * i)
        cbar += abar_f * sf
        af = abar_f * c * sf * (1.0 - 2.0 * f)
        ibar += abar_g * g1
        ag = -2.0 * abar_g * i * g * g1
        abar[k] = ai + ibar * si
        abar[N + k] = af + fbar * sf
        abar[2 * N + k] = ag + gbar * g1
        abar[3 * N + k] = ao + obar * so
        g_z[N + k] = cbar
    for j in range(N):
        w = WhhT[j]
        acc = 0.0
        for q in range(N4):
            acc += w[q] * abar[q]
        g_z[j] = acc
    for q in range(N4):
        aq = abar[q]
        gq = gWhh[q]
        for j in range(N):
            gq[j] += aq * z[j]
        for k in range(K):
            gWih[q, k] += aq * s[k]
    if bias:
        ob = N4 * K + N4 * N
        for q in range(N4):
            g_p[ob + q] += abar[q]
            g_p[ob + N4 + q] += abar[q]


LSTM_KERNELS = build_kernels(lstm_step, lstm_state_vjp, lstm_param_vjp, lstm_jacobian, lstm_jacobian_vjp)
LSTM_TAPE_KERNELS = TapeKernels(lstm_tape_step, lstm_tape_state_vjp, lstm_tape_param_vjp)


@dataclass(frozen=True)
class LSTM(Model):
    r"""One-layer LSTM ``c' = f c + i g``, ``h' = o tanh(c')`` with PyTorch's gates (i, f, g, o).

    The state is ``z = (h, c)`` of size 2N, h first; see the module docstring
    for the equations, the Jacobian blocks and the layout of ``theta``
    (``weight_ih | weight_hh | bias_ih | bias_hh``, as ``torch.nn.LSTM``
    stores them).  :func:`plrnn_numba.interop.from_torch` imports a
    ``torch.nn.LSTM``.

    Parameters
    ----------
    n_hidden : int
        Number of hidden units N (the state dimension is 2N).
    n_inputs : int
        Number of inputs K.
    bias : bool
        Whether the model has the biases ``bias_ih`` and ``bias_hh`` (as torch's ``bias``).

    Examples
    --------
    >>> model = LSTM(2)
    >>> model.dim, model.n_params
    (4, 32)
    >>> model.unpack(model.init(seed=0))["weight_hh"].shape
    (8, 2)
    """

    n_hidden: int
    n_inputs: int = 0
    bias: bool = True

    def __post_init__(self):
        V_.positive_int(self.n_hidden, "n_hidden")
        V_.positive_int(self.n_inputs, "n_inputs", minimum=0)
        V_.flag(self.bias, "bias")

    @property
    def dim(self) -> int:  # type: ignore[override]
        """The state dimension: ``2 n_hidden`` (the hidden state and the cell state)."""
        return 2 * self.n_hidden

    def param_shapes(self) -> dict[str, tuple[int, ...]]:
        N, K = self.n_hidden, self.n_inputs
        shapes = {"weight_ih": (4 * N, K), "weight_hh": (4 * N, N)}
        if self.bias:
            shapes.update(bias_ih=(4 * N,), bias_hh=(4 * N,))
        return shapes

    @property
    def meta(self) -> np.ndarray:
        return np.array([self.n_hidden, self.n_inputs, int(self.bias), self.n_params,
                         blas_min_rows(self.n_hidden)], dtype=np.int64)

    @property
    def dtypes(self) -> tuple[str, ...]:
        return ("float64", "float32")

    @property
    def kernels(self):
        return LSTM_KERNELS

    @property
    def tape_width(self) -> int:
        # BPTT keeps the gates i, f, g, o and tanh(c') of every step (5N floats per item)
        return TAPE_TERMS * self.n_hidden

    @property
    def tape_kernels(self):
        return LSTM_TAPE_KERNELS

    def expand(self, theta: np.ndarray) -> np.ndarray:
        """Kernel layout ``theta | bias_ih + bias_hh | W_hh^T | W_ih^T`` (derived blocks for the kernels).

        Parameters
        ----------
        theta : (P,) array
            Parameter vector.

        Returns
        -------
        array
            The kernel parameter vector.
        """
        N, K = self.n_hidden, self.n_inputs
        Wih = theta[: 4 * N * K].reshape(4 * N, K)
        Whh = theta[4 * N * K : 4 * N * K + 4 * N * N].reshape(4 * N, N)
        if self.bias:
            o = 4 * N * K + 4 * N * N
            b = theta[o : o + 4 * N] + theta[o + 4 * N : o + 8 * N]
        else:
            b = np.zeros(4 * N)
        return np.concatenate([theta, b, Whh.T.ravel(), Wih.T.ravel()])

    def reduce_grad(self, grad_p: np.ndarray) -> np.ndarray:
        return grad_p[: self.n_params].copy()

    def gates(self, theta: np.ndarray, z: np.ndarray, s: np.ndarray | None = None) -> dict[str, np.ndarray]:
        """The gates ``i, f, g, o`` of the step from ``z`` with input ``s``.

        Parameters
        ----------
        theta : (P,) array
            Parameter vector.
        z : (2N,) or (B, 2N) array
            State(s) ``[h, c]``.
        s : (K,) or (B, K) array, optional
            Input(s); required when the model has inputs.

        Returns
        -------
        dict of str to array
            ``{"i", "f", "g", "o"}``, each of shape (..., N).
        """
        d = self.unpack(theta)
        N = self.n_hidden
        z = V_.as_state(z, self.dim, "z")
        a = z[..., :N] @ d["weight_hh"].T
        if self.n_inputs:
            if s is None:
                raise ValueError(f"s is required: the model has {self.n_inputs} inputs")
            a = a + V_.as_float_array(s, "s") @ d["weight_ih"].T
        if self.bias:
            a = a + d["bias_ih"] + d["bias_hh"]
        sig = 0.5 * (1.0 + np.tanh(0.5 * a))
        return {"i": sig[..., :N], "f": sig[..., N : 2 * N], "g": np.tanh(a[..., 2 * N : 3 * N]),
                "o": sig[..., 3 * N :]}

    def pack(self, *, weight_hh, weight_ih=None, bias_ih=None, bias_hh=None) -> np.ndarray:
        """Build ``theta`` from torch's parameter arrays.

        Parameters
        ----------
        weight_hh : (4N, N) array
            Recurrent weights, blocks ``W_hi, W_hf, W_hg, W_ho``.
        weight_ih : (4N, K) array, optional
            Input weights (required when the model has inputs).
        bias_ih, bias_hh : (4N,) arrays
            Biases (required with ``bias=True``; not accepted with ``bias=False``).

        Returns
        -------
        (P,) array
            ``theta``.
        """
        N, K = self.n_hidden, self.n_inputs
        if weight_ih is None:
            if K:
                raise ValueError(f"weight_ih is required: the model has {K} inputs (shape ({4 * N}, {K}))")
            weight_ih = np.zeros((4 * N, 0))
        params = {"weight_ih": weight_ih, "weight_hh": weight_hh}
        if self.bias:
            for name, val in (("bias_ih", bias_ih), ("bias_hh", bias_hh)):
                if val is None:
                    raise ValueError(f"{name} is required: shape ({4 * N},) (pass np.zeros({4 * N}) for none)")
                params[name] = val
        elif bias_ih is not None or bias_hh is not None:
            raise ValueError("this LSTM has bias=False: pass no bias_ih or bias_hh")
        return super().pack(**params)

    def init(self, seed=0, *, scale: float = 1.0) -> np.ndarray:
        """PyTorch's default initialisation: every weight and bias ~ U(-k, k), ``k = scale / sqrt(N)``.

        Drawn in the order of ``theta`` (``weight_ih, weight_hh, bias_ih, bias_hh``);
        ``scale=1`` is ``torch.nn.LSTM``'s default.

        Parameters
        ----------
        seed : int, None or numpy.random.Generator
            Random seed.
        scale : float
            Multiplies the bound ``k = 1 / sqrt(N)``.

        Returns
        -------
        (P,) array
            ``theta``.
        """
        rng, _ = V_.generator(seed)
        scale = V_.finite_float(scale, "scale", low=0.0)
        k = scale / np.sqrt(self.n_hidden)
        return rng.uniform(-k, k, self.n_params)
