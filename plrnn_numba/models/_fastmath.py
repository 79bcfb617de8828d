"""exp, tanh and their kin in plain arithmetic, so that loops over units vectorise.

The rate RNN and the LSTM evaluate tanh and the sigmoid several times per unit
and step in a BPTT call (forward, state and parameter pullbacks: the engines
store states, not pre-activations), which made libm's scalar tanh / exp most of
their run time.  The code below makes no calls, so the compiler vectorises the
loops around it: measured 0.55 ns per element for tanh and 0.41 ns for exp
against 7 and 3 ns for libm's scalar calls in the same loop, within 2.5 ulp
(tanh, over [-30, 30] and tiny arguments) and 1 ulp (exp, over [-700, 0]) of
a long-double evaluation (``benchmarks/bench_transcendentals.py``,
``tests/test_fastmath.py``).

Both rest on one reduction (Cody and Waite's): for :math:`u \\le 0`,
:math:`u = k \\ln 2 + r` with :math:`|r| \\le \\ln 2 / 2`, and
:math:`e^u = 2^k (1 + p)`, :math:`e^u - 1 = 2^k p + (2^k - 1)`, where
:math:`p = \\mathrm{expm1}(r)` by its Taylor polynomial to degree 14 (remainder
below 2e-17 relative).

Float32 arguments get float32 evaluations (the kernels compiled for the
float32 mode): the same reduction with ln 2 split for single precision and the
Taylor polynomial to degree 7 (remainder below 2e-8 relative), all in float32
arithmetic, so that a vector register holds twice as many elements and no
value is widened to float64 and back.  ``_tanh``, ``_exp_nonpos`` and
``_like`` dispatch on the argument's type at compile time
(:func:`numba.extending.overload`); they can be called only from compiled code.
Measured within 2.5 ulp of float32 (exp 1.0, tanh 2.5) (``tests/test_fastmath.py``); exp below
float32's normal range (u < -87.3, results under 1.2e-38) returns 0, as
flush-to-zero arithmetic does.
"""

from __future__ import annotations

import numpy as np
from numba import types
from numba.extending import intrinsic, overload

from ..config import FASTMATH, njit

__all__ = ["_tanh", "_exp_nonpos", "_like"]


@intrinsic
def _int_bits_as_float(typingctx, bits):
    """The float64 whose IEEE bit pattern is the int64 ``bits`` (a bit cast)."""

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], context.get_value_type(types.float64))

    return types.float64(types.int64), codegen


@intrinsic
def _int32_bits_as_float32(typingctx, bits):
    """The float32 whose IEEE bit pattern is the int32 ``bits`` (a bit cast)."""

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], context.get_value_type(types.float32))

    return types.float32(types.int32), codegen


def _single(x) -> bool:
    """Whether the numba type ``x`` is float32 (the float32 kernels' scalars)."""
    return isinstance(x, types.Float) and x.bitwidth == 32


# ln 2 split so that k * _LN2_HI is exact for |k| < 2^11 (Cody and Waite's reduction)
_LN2_HI = 6.93147180369123816490e-01
_LN2_LO = 1.90821492927058770002e-10
_INV_LN2 = 1.44269504088896338700e00


@njit(inline="always")
def _pow2_expm1r(u, kmin, keep_split):
    # (2^k, expm1(r)) for u = k ln 2 + r; k is clamped at kmin >= -1022 so that 2^k is a normal number
    # (and a NaN is not converted to an integer)
    kf = np.floor(u * _INV_LN2 + 0.5)
    if keep_split:
        # the low part multiplies k converted back from the integer: with the kernels' reassociating
        # fast-math flags, LLVM would otherwise fold k * LN2_HI + k * LN2_LO into k * ln 2 and lose
        # the split (up to 210 ulp at u = -700); the conversion keeps the loop vectorised.  tanh does
        # not need it (|k| <= 65: 2.5 ulp either way) and keeps its results bit for bit
        r = (u - kf * _LN2_HI) - np.float64(np.int64(kf)) * _LN2_LO
    else:
        r = (u - kf * _LN2_HI) - kf * _LN2_LO
    p = 1.0 / 87178291200.0
    p = p * r + 1.0 / 6227020800.0
    p = p * r + 1.0 / 479001600.0
    p = p * r + 1.0 / 39916800.0
    p = p * r + 1.0 / 3628800.0
    p = p * r + 1.0 / 362880.0
    p = p * r + 1.0 / 40320.0
    p = p * r + 1.0 / 5040.0
    p = p * r + 1.0 / 720.0
    p = p * r + 1.0 / 120.0
    p = p * r + 1.0 / 24.0
    p = p * r + 1.0 / 6.0
    p = p * r + 0.5
    p = p * r * r + r
    kf = kf if kf >= kmin else kmin
    return _int_bits_as_float((np.int64(kf) + 1023) << 52), p


@njit(inline="always")
def _tanh64(x):
    # tanh|x| = -e / (2 + e) with e = expm1(-2|x|) (no cancellation for small |x|); u is clamped at -45
    # (tanh is 1 to double precision from |x| = 19.1 on, and k stays in [-65, 0]); a NaN passes through
    u = -2.0 * abs(x)
    u = -45.0 if u < -45.0 else u
    two_k, p = _pow2_expm1r(u, -65.0, False)
    e = two_k * p + (two_k - 1.0)
    t = abs(e / (2.0 + e))
    return t if x >= 0.0 else -t


@njit(inline="always")
def _exp_nonpos64(u):
    # exp(u) for u <= 0; u is clamped at -700 (exp(-700) ~ 1e-304, a normal number; what the sigmoid
    # needs is far above)
    u = -700.0 if u < -700.0 else u
    two_k, p = _pow2_expm1r(u, -1010.0, True)
    return two_k + two_k * p


# -- float32 -------------------------------------------------------------------------------
_F32 = np.float32
# ln 2 = _LN2_HI_32 + _LN2_LO_32, the high part with 9 significant bits: k * _LN2_HI_32 is exact for |k| < 2^15
_LN2_HI_32 = _F32(0.693359375)
_LN2_LO_32 = _F32(-2.12194440e-4)
_INV_LN2_32 = _F32(1.44269504088896338700)
_C32 = tuple(_F32(1.0 / f) for f in (5040.0, 720.0, 120.0, 24.0, 6.0, 2.0))


@njit(inline="always")
def _pow2_expm1r32(u, kmin):
    # float32 (2^k, expm1(r)) for u = k ln 2 + r, |r| <= ln 2 / 2; k clamped at kmin >= -126.  The
    # low part multiplies k converted back from the integer, for the reason given in _pow2_expm1r
    kf = np.floor(u * _INV_LN2_32 + _F32(0.5))
    r = (u - kf * _LN2_HI_32) - _F32(np.int32(kf)) * _LN2_LO_32
    c7, c6, c5, c4, c3, c2 = _C32
    p = c7
    p = p * r + c6
    p = p * r + c5
    p = p * r + c4
    p = p * r + c3
    p = p * r + c2
    p = p * r * r + r
    kf = kf if kf >= kmin else kmin
    return _int32_bits_as_float32((np.int32(kf) + np.int32(127)) << np.int32(23)), p


@njit(inline="always")
def _tanh32(x):
    # as _tanh64; tanh is 1 to single precision from |x| = 9.01 on, so u is clamped at -20 (k in [-29, 0])
    u = _F32(-2.0) * abs(x)
    u = _F32(-20.0) if u < _F32(-20.0) else u
    two_k, p = _pow2_expm1r32(u, _F32(-29.0))
    e = two_k * p + (two_k - _F32(1.0))
    t = abs(e / (_F32(2.0) + e))
    return t if x >= _F32(0.0) else -t


@njit(inline="always")
def _exp_nonpos32(u):
    # exp(u) for u <= 0 in float32; 0 below the normal range (u < -87.3), where 2^k would be subnormal
    tiny = u < _F32(-87.33654)  # False for a NaN, which passes through
    two_k, p = _pow2_expm1r32(_F32(-87.33654) if tiny else u, _F32(-126.0))  # keeps k >= -126
    return _F32(0.0) if tiny else two_k + two_k * p


# float32 exp compiled without reassociation: the low part's product reads k through an integer
# conversion, which keeps the split in float64 and in float32's vector loops, but not in the
# scalar and short-vector remainders built for an AMD EPYC (LLVM's znver4 target), where LLVM
# folds the round trip and then k * _LN2_HI_32 + k * _LN2_LO_32 into k * ln 2 (26-61 ulp near
# u = -87).  A function of its own keeps its flags when LLVM inlines it into the kernel
_NO_REASSOC_OPTIONS = {"fastmath": set(FASTMATH) - {"reassoc"}}


@njit(**_NO_REASSOC_OPTIONS)
def _exp_nonpos32_exact_split(u):
    return _exp_nonpos32(u)


def _tanh(x):
    """tanh(x) in the precision of ``x`` (compiled code only)."""
    raise TypeError("_tanh is for compiled code (numba); use numpy.tanh in Python")


def _exp_nonpos(u):
    """exp(u) for u <= 0 in the precision of ``u`` (compiled code only)."""
    raise TypeError("_exp_nonpos is for compiled code (numba); use numpy.exp in Python")


def _like(x, c):
    """The constant ``c`` in the floating-point type of ``x`` (compiled code only).

    ``1.0 - t`` with a float32 ``t`` is float64 in numba; ``_like(t, 1.0) - t`` stays float32.
    """
    raise TypeError("_like is for compiled code (numba)")


# the overloads' bodies are compiled apart from the kernel that calls them: with the kernels'
# fast-math flags, so that they contract and vectorise as they did when inlined as numba IR
_OVERLOAD_OPTIONS = {"fastmath": set(FASTMATH)}


@overload(_tanh, jit_options=_OVERLOAD_OPTIONS)
def _tanh_overload(x):
    if _single(x):
        return lambda x: _tanh32(x)
    return lambda x: _tanh64(x)


@overload(_exp_nonpos, jit_options=_OVERLOAD_OPTIONS)
def _exp_nonpos_overload(u):
    if _single(u):
        return lambda u: _exp_nonpos32_exact_split(u)
    return lambda u: _exp_nonpos64(u)


@overload(_like, jit_options=_OVERLOAD_OPTIONS)
def _like_overload(x, c):
    if _single(x):
        return lambda x, c: np.float32(c)
    return lambda x, c: np.float64(c)
