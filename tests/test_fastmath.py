"""The kernels' call-free exp and tanh against a long-double (80-bit) reference, in ulp of the result."""

import numpy as np

from plrnn_numba import config
from plrnn_numba.models._fastmath import _exp_nonpos, _tanh

# libm is within 1 ulp; the call-free versions are allowed a few (measured: exp 0.96, tanh 2.5)
MAX_ULP = 3.0


@config.njit
def _apply_exp(x, out):
    for j in range(x.shape[0]):
        out[j] = _exp_nonpos(x[j])


@config.njit
def _apply_tanh(x, out):
    for j in range(x.shape[0]):
        out[j] = _tanh(x[j])


def _max_ulp(apply, ref, x):
    got = np.empty_like(x)
    apply(x, got)
    exact = ref(x.astype(np.longdouble))
    ulp = np.spacing(np.maximum(np.abs(exact).astype(np.float64), np.finfo(np.float64).tiny))
    return float(np.max(np.abs(got.astype(np.longdouble) - exact) / ulp))


def test_exp_over_the_whole_range():
    # the reduction u = k ln 2 + r must keep ln 2's two-part split under the kernels' fast-math flags
    # (folded into one constant it loses up to 210 ulp at u = -700)
    x = np.concatenate([np.linspace(-700.0, 0.0, 400_001), -np.geomspace(1e-300, 700.0, 20_000), [0.0]])
    assert _max_ulp(_apply_exp, np.exp, x) <= MAX_ULP


def test_tanh_over_the_whole_range():
    x = np.concatenate([np.linspace(-30.0, 30.0, 400_001), np.geomspace(1e-300, 30.0, 20_000),
                        -np.geomspace(1e-300, 30.0, 20_000)])
    assert _max_ulp(_apply_tanh, np.tanh, x) <= MAX_ULP


def test_limits_and_nan():
    out = np.empty(5)
    _apply_tanh(np.array([1e300, -1e300, 0.0, -0.0, np.nan]), out)
    assert out[0] == 1.0 and out[1] == -1.0 and out[2] == 0.0 and np.isnan(out[4])
    _apply_exp(np.array([-1e300, -800.0, 0.0, -0.0, np.nan]), out)
    assert 0.0 <= out[0] < 1e-300 and out[2] == 1.0 and out[3] == 1.0 and np.isnan(out[4])


# -- float32: the same functions compiled for float32 arguments compute in float32 ------------
#: allowed error of the float32 evaluations, in ulp of float32 (measured: see the tests)
MAX_ULP_32 = 3.0


def _max_ulp_32(apply, ref, x):
    got = np.empty_like(x)
    apply(x, got)
    assert got.dtype == np.float32
    exact = ref(x.astype(np.float64))  # float64 is exact enough to grade float32 results
    ulp = np.spacing(np.maximum(np.abs(exact).astype(np.float32), np.finfo(np.float32).tiny)).astype(np.float64)
    return float(np.max(np.abs(got.astype(np.float64) - exact) / ulp))


def test_float32_exp_over_its_normal_range():
    x = np.concatenate([np.linspace(-87.3, 0.0, 400_001), -np.geomspace(1e-38, 87.3, 20_000), [0.0]])
    assert _max_ulp_32(_apply_exp, np.exp, x.astype(np.float32)) <= MAX_ULP_32


def test_float32_tanh_over_the_whole_range():
    x = np.concatenate([np.linspace(-30.0, 30.0, 400_001), np.geomspace(1e-38, 30.0, 20_000),
                        -np.geomspace(1e-38, 30.0, 20_000)])
    assert _max_ulp_32(_apply_tanh, np.tanh, x.astype(np.float32)) <= MAX_ULP_32


def test_short_loops_keep_the_accuracy():
    # a loop of a few elements runs the compiler's scalar and short-vector remainders, which it
    # optimises apart from the main vector body (on an AMD EPYC a float32 exp there once lost ln 2's
    # split: 61 ulp at u = -87); every length up to 17 covers the remainders of 4-, 8- and 16-lane bodies
    cases = ((np.float64, _apply_exp, np.exp, (-700.0, -600.0)), (np.float64, _apply_tanh, np.tanh, (-20.0, 20.0)),
             (np.float32, _apply_exp, np.exp, (-87.3, -60.0)), (np.float32, _apply_tanh, np.tanh, (-9.0, 9.0)))
    for dtype, apply, ref, (lo, hi) in cases:
        vals = np.linspace(lo, hi, 97).astype(dtype)
        limit = MAX_ULP if dtype == np.float64 else MAX_ULP_32
        grade = _max_ulp if dtype == np.float64 else _max_ulp_32
        for n in range(1, 18):
            for start in range(0, vals.size - n + 1, n):
                err = grade(apply, ref, vals[start:start + n].copy())
                assert err <= limit, (np.dtype(dtype).name, apply.__name__, n, start, err)


def test_float32_limits_and_nan():
    out = np.empty(5, np.float32)
    _apply_tanh(np.array([3e38, -3e38, 0.0, -0.0, np.nan], np.float32), out)
    assert out[0] == 1.0 and out[1] == -1.0 and out[2] == 0.0 and np.isnan(out[4])
    # below float32's normal range exp flushes to zero (the true values are under 1.2e-38)
    _apply_exp(np.array([-3e38, -100.0, 0.0, -0.0, np.nan], np.float32), out)
    assert out[0] == 0.0 and out[1] == 0.0 and out[2] == 1.0 and out[3] == 1.0 and np.isnan(out[4])


def test_compiled_code_only():
    # the dispatching names are for numba; from Python they say so instead of computing in float64
    for fn, args in ((_tanh, (0.5,)), (_exp_nonpos, (-0.5,))):
        try:
            fn(*args)
        except TypeError as err:
            assert "compiled code" in str(err)
        else:
            raise AssertionError(f"{fn.__name__} ran in Python")
