"""BLAS routines called from compiled code by symbol (plrnn_numba.dynamics._blas)."""

import os
import subprocess
import sys

import numpy as np
import pytest

from plrnn_numba.dynamics._blas import solve_right_upper_transposed

# a triangular solve against numpy's general solver: rounding of the dtype, amplified by cond(R)
SOLVE_RTOL = {np.float64: 1e-12, np.float32: 1e-5}


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("n, k", [(80, 75), (20, 20), (5, 3), (3, 1)])
def test_solve_right_upper_transposed(dtype, n, k):
    rng = np.random.default_rng(n + k)
    _, R = np.linalg.qr(rng.standard_normal((n, k)))
    junk = np.tril(rng.standard_normal((k, k)), -1)  # below the diagonal: must not be read
    R = np.ascontiguousarray(R + junk).astype(dtype)
    B = rng.standard_normal((n, k)).astype(dtype)
    X = B.copy()
    solve_right_upper_transposed(R, X)
    ref = np.linalg.solve(np.triu(R).astype(np.float64), B.T.astype(np.float64)).T  # X R^T = B
    assert X.dtype == dtype
    assert np.max(np.abs(X - ref)) <= SOLVE_RTOL[dtype] * np.max(np.abs(ref))


def test_cached_code_finds_the_routine_in_a_new_process(tmp_path):
    # the compiled code refers to the routine by a symbol registered at import, not by an address,
    # so a second process that loads it from the on-disk cache calls the right function
    code = ("import numpy as np; from plrnn_numba.dynamics._blas import solve_right_upper_transposed as f; "
            "R = np.array([[2.0, 1.0], [0.0, 4.0]]); X = np.array([[2.0, 4.0]]); f(R, X); print(X.tolist())")
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path)}
    outs = [subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
            for _ in range(2)]
    assert any(tmp_path.rglob("*.nbc"))
    # X R^T = [[2, 4]]: x2 = 4 / 4 = 1, x1 = (2 - 1 * 1) / 2 = 0.5
    assert outs[0].strip() == outs[1].strip() == "[[0.5, 1.0]]"
