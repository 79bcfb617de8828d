#!/usr/bin/env python
"""Benchmark: the tall-skinny QR factorisation of the Lyapunov and flossing engines, six ways.

Per step the engines factorise the propagated tangent system ``Y = Q R``
(``Y`` N x k, a positive diagonal of ``R``).  This times, inside a compiled
loop (no Python call per factorisation), for each (N, k):

* ``householder``: LAPACK's ``geqrf`` + ``orgqr`` called directly (the package's
  ``_qr_householder``, the engines' path from three to ``QR_BLOCKED_MIN - 1`` columns),
  with the sign fix;
* ``np.linalg.qr``: the same routines through numba's ``np.linalg.qr`` (workspace
  queries, copies in and out of Fortran order);
* ``gram-schmidt``: the package's classical Gram-Schmidt with one
  reorthogonalisation (``_qr_gram_schmidt``, the engines' path up to two columns);
* ``cholesky-qr2``: Cholesky QR applied twice (``R = chol(Y^T Y)``, ``Q = Y R^-1``),
  BLAS-3 products, written here;
* ``blocked``: Householder QR in panels of ``QR_PANEL`` (16) columns, as LAPACK's
  blocked ``geqrf``/``orgqr`` do above their crossover (128 columns): each panel by
  ``geqr2``, its block reflector (``larft``) applied to the rest by ``larfb``, and
  Q accumulated backwards the same way with ``org2r`` on the panels (the
  package's ``_qr_blocked``, the engines' path from ``QR_BLOCKED_MIN`` columns);
* ``lq``: the LQ factorisation (``gelqf`` + ``orglq``) of the C-ordered array,
  which LAPACK reads as the column-major ``Y^T``: ``Y^T = L Q'`` gives ``Q = Q'^T``
  and ``R = L^T`` with no copies into and out of Fortran order,

and checks that all agree with the Householder factors (max abs difference
of Q and of R / max |R|); JAX's ``jnp.linalg.qr`` in a jitted ``lax.scan`` is
timed beside them when JAX is installed.  Usage::

    python benchmarks/bench_qr.py [--cpu 0] [--no-jax] [--out FILE]
"""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common as C  # noqa: E402

C.limit_threads(1)

import argparse  # noqa: E402
import time  # noqa: E402

import _jax_peers as JP  # noqa: E402  (imports jax only when used)
import numpy as np  # noqa: E402
from numba import njit  # noqa: E402

from plrnn_numba.dynamics._blas import fortran_routine  # noqa: E402
from plrnn_numba.dynamics._blas import fortran_scalar as _one  # noqa: E402
from plrnn_numba.dynamics._tangents import (  # noqa: E402
    QR_BLOCKED_MIN,
    QR_PANEL,
    _qr_blocked,
    _qr_gram_schmidt,
    _qr_householder,
)

_gelqf = fortran_routine("gelqf", 8, "lapack")  # m n a lda tau work lwork info
_orglq = fortran_routine("orglq", 9, "lapack")  # m n k a lda tau work lwork info

CASES = [(80, 1), (80, 2), (80, 3), (80, 4), (20, 20), (80, 16), (40, 40), (80, 40), (80, 75), (100, 96), (160, 150),
         (200, 128), (256, 200), (400, 100)]


@njit
def _sign_fix(Q, R):
    for i in range(R.shape[0]):
        if R[i, i] < 0.0:
            R[i, :] = -R[i, :]
            Q[:, i] = -Q[:, i]
    return Q, R


@njit
def householder(Y):
    Q, R = _qr_householder(Y)
    return _sign_fix(Q, R)


@njit
def numba_qr(Y):
    Q, R = np.linalg.qr(Y)
    return _sign_fix(Q, R)


@njit
def gram_schmidt(Y):
    Q, R, ok = _qr_gram_schmidt(Y)
    return Q, R


@njit
def _cholesky_upper(G):
    k = G.shape[0]
    R = np.zeros((k, k))
    for j in range(k):
        s = G[j, j]
        for p in range(j):
            s -= R[p, j] * R[p, j]
        d = np.sqrt(s)
        R[j, j] = d
        for i in range(j + 1, k):
            s = G[j, i]
            for p in range(j):
                s -= R[p, j] * R[p, i]
            R[j, i] = s / d
    return R


@njit
def _inverse_upper(R):
    k = R.shape[0]
    X = np.zeros((k, k))
    for j in range(k):
        X[j, j] = 1.0 / R[j, j]
        for i in range(j - 1, -1, -1):
            s = 0.0
            for p in range(i + 1, j + 1):
                s += R[i, p] * X[p, j]
            X[i, j] = -s / R[i, i]
    return X


@njit
def cholesky_qr2(Y):
    R1 = _cholesky_upper(Y.T @ Y)
    Q1 = Y @ _inverse_upper(R1)
    R2 = _cholesky_upper(Q1.T @ Q1)
    return Q1 @ _inverse_upper(R2), R2 @ R1


@njit
def blocked(Y):
    Q, R = _qr_blocked(Y)
    return _sign_fix(Q, R)


@njit
def lq(Y):
    m, n = Y.shape
    A = Y.copy()  # read by LAPACK as the column-major n x m matrix Y^T
    tau = np.empty(n)
    lwork = 64 * n
    work = np.empty(lwork)
    i32 = np.int32
    info, nn, mm, lw = _one(0, i32), _one(n, i32), _one(m, i32), _one(lwork, i32)
    _gelqf(Y, nn, mm, A, nn, tau, work, lw, info)
    R = np.zeros((n, n))
    for i in range(n):
        for j in range(i, n):
            R[i, j] = A[i, j]  # L^T: the upper triangle of the first n rows
    _orglq(Y, nn, mm, nn, A, nn, tau, work, lw, info)
    return _sign_fix(A, R)


@njit
def _repeat(which, Y, n):
    acc = 0.0
    for _ in range(n):
        if which == 0:
            Q, R = householder(Y)
        elif which == 1:
            Q, R = numba_qr(Y)
        elif which == 2:
            Q, R = gram_schmidt(Y)
        elif which == 3:
            Q, R = cholesky_qr2(Y)
        elif which == 4:
            Q, R = blocked(Y)
        else:
            Q, R = lq(Y)
        acc += R[0, 0] + Q[-1, -1]
    return acc


METHODS = ("householder", "np.linalg.qr", "gram-schmidt", "cholesky-qr2", "blocked", "lq")
FUNCS = (householder, numba_qr, gram_schmidt, cholesky_qr2, blocked, lq)


def per_call_us(which: int, Y: np.ndarray) -> float:
    return C.median_per_repetition(lambda n: _repeat(which, Y, n)) * 1e6


def jax_per_call_us(Y: np.ndarray) -> float:
    """JAX's ``jnp.linalg.qr`` per factorisation, inside a jitted ``lax.scan`` (after checking its factors)."""
    n = 1
    while True:
        run, result = JP.qr_loop(Y, n)
        run()
        t0 = time.perf_counter()
        run()
        if time.perf_counter() - t0 > 0.05 or n >= 2**16:
            break
        n *= 4
    Q, R = result()
    Qh, Rh = householder(Y)
    assert np.abs(Q - Qh).max() < 1e-10 and np.abs(R - Rh).max() < 1e-10 * np.abs(Rh).max(), "JAX's QR differs"
    runs = []
    for _ in range(7):
        t0 = time.perf_counter()
        run()
        runs.append((time.perf_counter() - t0) / n * 1e6)
    return float(np.median(runs))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    C.add_cpu_argument(ap)
    ap.add_argument("--no-jax", action="store_true", help="skip the JAX column")
    ap.add_argument("--out", help="also write the markdown report here")
    args = ap.parse_args(argv)
    C.pin_to_cpu(args.cpu)
    use_jax, jax_note = JP.status(args.no_jax)
    rep = C.Report()
    rep.add("## Tall-skinny QR: Householder (LAPACK), Gram-Schmidt twice, Cholesky QR twice, blocked Householder, LQ\n")
    rep.add(f"- **command**: `{C.command_line()}`")
    rep.add(C.key_value_list(C.machine_info()))
    rep.add(f"- **BLAS**: {C.blas_info()}")
    rep.add(f"- **jax**: {jax_note}")
    rep.add(f"- **pinned to**: {C.pinned_cpu_text()}\n")
    rng = np.random.default_rng(0)
    rows = []
    for N, k in CASES:
        # a tangent-like system: columns of decaying scale
        Y = np.ascontiguousarray(rng.standard_normal((N, k)) * np.exp(-np.linspace(0.0, 3.0, k)))
        Qh, Rh = householder(Y)
        row = [f"{N} x {k}"]
        times = [per_call_us(i, Y) for i in range(len(FUNCS))]
        errs = []
        for f in FUNCS[1:]:
            Q, R = f(Y)
            errs.append(max(np.abs(Q - Qh).max(), np.abs(R - Rh).max() / np.abs(Rh).max()))
        row += [C.fmt(t) for t in times] + [C.fmt(jax_per_call_us(Y)) if use_jax else "n/a"]
        row += [f"{e:.1e}" for e in errs]
        rows.append(row)
        print(row, flush=True)
    rep.add(C.markdown_table(["N x k"] + [f"{m} us" for m in METHODS] + ["JAX us"]
                             + [f"{m} diff" for m in METHODS[1:]], rows, "l" + "r" * (2 * len(METHODS))))
    rep.add("\nMedian time per factorisation inside a compiled loop; `diff`: largest difference of Q, and of R "
            "relative to max |R|, against the Householder factors. `JAX`: `jnp.linalg.qr` (float64) inside a "
            "jitted `lax.scan`, per factorisation, its factors checked against the Householder ones (1e-10). "
            "The engines use `gram-schmidt` up to two "
            f"columns, `householder` from three, `blocked` (panels of {QR_PANEL}) from {QR_BLOCKED_MIN}.")
    if args.out:
        rep.write(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
