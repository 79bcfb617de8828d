#!/usr/bin/env python
"""Benchmark: tanh and exp inside compiled loops, the package's call-free code against libm, SVML and NumPy.

The tanh and sigmoid models evaluate these functions for every unit and step
inside numba loops.  This times, per element, in a compiled loop over a
vector (the shape of the models' per-step loops) and over a long array:

* ``package``: ``plrnn_numba.models._fastmath`` (``_tanh``, ``_exp_nonpos``),
  plain arithmetic that the compiler vectorises;
* ``numba math``: ``math.tanh`` / ``math.exp`` in the same loop, compiled with the
  package's fast-math flags: libm calls, or Intel's SVML vector functions when
  numba finds the ``intel-cmplr-lib-rt`` runtime (the report says which);
* ``numpy``: the ``np.tanh`` / ``np.exp`` ufunc on the whole array, from Python
  (NumPy's own SIMD code; a per-call overhead the models' per-step loops cannot
  afford, shown for reference).

Each in float64 and in float32 (the float32 mode's kernels: the package's
functions then compute in float32).  Accuracy: the largest difference from a
long-double (80-bit) evaluation, in units in the last place (ulp) of the
result in its own precision, over [-30, 30] for tanh and [-700, 0] for exp
(the range the models use; float32 exp over [-87.33, 0], its normal results:
the package's flushes to 0 below), in one long loop and, for every 200th
stretch, in loops of 1 to 17 elements (the compiler's remainder code).  Usage::

    python benchmarks/bench_transcendentals.py [--cpu 0] [--out FILE]

numba uses SVML only when llvmlite's LLVM carries the SVML patch and the
``intel-cmplr-lib-rt`` runtime is installed; the report states both.
"""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common as C  # noqa: E402

C.limit_threads(1)

import argparse  # noqa: E402
import math  # noqa: E402

import numba  # noqa: E402
import numpy as np  # noqa: E402

from plrnn_numba import config  # noqa: E402
from plrnn_numba.models._fastmath import _exp_nonpos, _tanh  # noqa: E402

SIZES = (80, 512, 100_000)


def _compiled_loop(f):
    """``n`` times ``out[j] = f(x[j])`` in a compiled loop, with ``f`` resolved at compile time (inlined)."""

    @config.njit
    def loop(x, out, n):
        for _ in range(n):
            for j in range(x.shape[0]):
                out[j] = f(x[j])

    return loop


_loop_package_tanh = _compiled_loop(_tanh)
_loop_math_tanh = _compiled_loop(math.tanh)
_loop_package_exp = _compiled_loop(_exp_nonpos)
_loop_math_exp = _compiled_loop(math.exp)


def _numpy_tanh(x, out, n):
    for _ in range(n):
        np.tanh(x, out=out)


def _numpy_exp(x, out, n):
    for _ in range(n):
        np.exp(x, out=out)


FUNCTIONS = {
    "tanh": (np.tanh, (-30.0, 30.0), {"package": _loop_package_tanh, "numba math": _loop_math_tanh,
                                       "numpy": _numpy_tanh}),
    "exp": (np.exp, (-700.0, 0.0), {"package": _loop_package_exp, "numba math": _loop_math_exp,
                                     "numpy": _numpy_exp}),
}


DTYPES = (np.float64, np.float32)
#: float32 exp is measured over float32's normal results (the package's flushes to 0 below, by design)
F32_RANGES = {"exp": (-87.33, 0.0)}


def ns_per_element(fn, x: np.ndarray) -> float:
    out = np.empty_like(x)
    return C.median_per_repetition(lambda n: fn(x, out, n)) / x.size * 1e9


def max_ulp(fn, ref, lo: float, hi: float, dtype=np.float64) -> float:
    x = np.concatenate([np.linspace(lo, hi, 200_001), np.random.default_rng(0).uniform(lo, hi, 200_000),
                        np.array([-1e-300, -1e-12, 0.0, 1e-12, 1e-300])])
    x = x[(x >= lo) & (x <= hi)].astype(dtype)
    exact = ref(x.astype(np.longdouble))
    ulp = np.spacing(np.abs(exact).astype(dtype)).astype(np.longdouble)
    ulp[ulp == 0] = np.finfo(dtype).smallest_subnormal

    def worst(got, sl=slice(None)):
        return float(np.max(np.abs(got.astype(np.longdouble) - exact[sl]) / ulp[sl]))

    got = np.empty_like(x)
    fn(x, got, 1)
    err = worst(got)
    # loops of 1..17 elements run the compiler's scalar and short-vector remainders, which can round
    # differently from the vector body: every 200th stretch again, in calls of each such length
    for n in range(1, 18):
        for i in range(0, x.size - n + 1, 200 * n):
            sl = slice(i, i + n)
            out = np.empty(n, dtype)
            fn(x[sl].copy(), out, 1)
            err = max(err, worst(out, sl))
    return err


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    C.add_cpu_argument(ap)
    ap.add_argument("--out", help="also write the markdown report here")
    args = ap.parse_args(argv)
    C.pin_to_cpu(args.cpu)
    svml = bool(getattr(numba.config, "USING_SVML", False))
    import llvmlite.binding as ll

    llvm_svml = bool(getattr(ll, "has_svml", False))
    rep = C.Report()
    rep.add("## Transcendental functions in compiled loops: the package's code, libm or SVML, NumPy\n")
    rep.add(f"- **command**: `{C.command_line()}`")
    rep.add(C.key_value_list({**C.machine_info(), **C.versions(("numpy", "numba"))}))
    rep.add(f"- **numba math functions**: {'SVML' if svml else 'libm'} (numba.config.USING_SVML = {svml}; "
            f"llvmlite built with the SVML patch: {llvm_svml})")
    rep.add(f"- **fast-math flags of the loops**: {', '.join(sorted(config.FASTMATH))}")
    rep.add(f"- **pinned to**: {C.pinned_cpu_text()}\n")
    rows = []
    for name, (ref, (lo, hi), impls) in FUNCTIONS.items():
        for dtype in DTYPES:
            if dtype == np.float32:
                lo, hi = F32_RANGES.get(name, (lo, hi))
            for impl, fn in impls.items():
                row = [name, np.dtype(dtype).name, impl]
                for size in SIZES:
                    x = np.random.default_rng(size).uniform(lo, hi, size).astype(dtype)
                    row.append(C.fmt(ns_per_element(fn, x)))
                row.append(C.fmt(max_ulp(fn, ref, lo, hi, dtype), 2))
                rows.append(row)
                print(row, flush=True)
    rep.add(C.markdown_table(["function", "dtype", "implementation"] + [f"ns/element, n = {n:,}" for n in SIZES]
                             + ["max error (ulp)"], rows, "lllrrrr"))
    rep.add("\nMedian time per element of a compiled loop over a vector of n elements, repeated (NumPy: one ufunc "
            "call per repetition, from Python); error against a long-double evaluation, in ulp of the result.")
    if args.out:
        rep.write(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
