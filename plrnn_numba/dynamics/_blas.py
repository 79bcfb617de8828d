"""BLAS and LAPACK routines numba does not expose, called from compiled code (the engines: ``?trsm``).

The routines come from the library that numba's own ``np.dot`` and
``np.linalg`` use (SciPy's ``scipy.linalg.cython_blas`` and ``cython_lapack``).  Their addresses are registered
with LLVM under fixed symbol names when this module is imported, and the
compiled code refers to the names, so engines that call them can be cached on
disk (an address baked into cached code would be wrong in the next process).
"""

from __future__ import annotations

import llvmlite.binding as ll
import numpy as np
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import get_cython_function_address, intrinsic

from .. import config


def _fortran_call(symbols: dict[str, str], n_args: int):
    # an intrinsic call(like, *arrays): the Fortran routine of ``like``'s dtype (``symbols``: dtype name
    # -> symbol) with the data pointers of these arrays as its arguments (Fortran passes every argument
    # by reference).  Arrays, not addresses, so that they are alive until the call returns.
    @intrinsic
    def call(typingctx, like, *args):
        if len(args) != n_args or not all(isinstance(a, types.Array) for a in args):
            return None
        symbol = symbols.get(str(getattr(like, "dtype", "")))
        if symbol is None:
            return None

        def codegen(context, builder, signature, llargs):
            ptr = ir.IntType(8).as_pointer()
            fnty = ir.FunctionType(ir.VoidType(), [ptr] * n_args)
            fn = cgutils.get_or_insert_function(builder.module, fnty, symbol)
            packed = llargs[1]
            ptrs = []
            for i, ty in enumerate(args):
                arr = cgutils.create_struct_proxy(ty)(context, builder, value=builder.extract_value(packed, i))
                ptrs.append(builder.bitcast(arr.data, ptr))
            builder.call(fn, ptrs)
            return context.get_dummy_value()

        return types.void(like, types.StarArgTuple(tuple(args))), codegen

    return call


def fortran_routine(name: str, n_args: int, library: str = "blas"):
    """An intrinsic ``call(like, *arrays)`` of the BLAS or LAPACK routine ``d<name>`` / ``s<name>``.

    The float64 or float32 routine is chosen by the dtype of the array ``like``;
    the remaining ``n_args`` arrays are passed by their data pointers (scalars:
    one-element arrays).  The routines' addresses are registered as symbols
    ``plrnn_numba_d<name>`` and ``plrnn_numba_s<name>``.

    Parameters
    ----------
    name : str
        The routine's name without its precision prefix (``"trsm"``, ``"geqrf"``).
    n_args : int
        Its number of arguments.
    library : {"blas", "lapack"}
        Where SciPy exports it (``scipy.linalg.cython_<library>``).
    """
    symbols = {}
    for prefix, dtype in (("d", "float64"), ("s", "float32")):
        symbol = f"plrnn_numba_{prefix}{name}"
        ll.add_symbol(symbol, get_cython_function_address(f"scipy.linalg.cython_{library}", prefix + name))
        symbols[dtype] = symbol
    return _fortran_call(symbols, n_args)


_trsm = fortran_routine("trsm", 11)


@config.njit(inline="always")
def fortran_scalar(x, dtype):
    """A scalar argument of a Fortran routine: a one-element array of ``dtype`` holding ``x``."""
    out = np.empty(1, dtype)
    out[0] = x
    return out


@config.njit
def solve_right_upper_transposed(R, X):
    """Overwrite ``X`` (n, k), C-contiguous, with :math:`X R^{-T}` for the upper triangle of ``R`` (k, k).

    One BLAS ``?trsm`` (float64 or float32, as ``X``): in column-major terms
    ``X`` is the k x n matrix :math:`X^T` and ``R`` the lower triangular
    :math:`R^T`, so the call solves :math:`R\\, Y = X^T` from the left
    (``side = 'L'``, ``uplo = 'L'``, ``transa = 'T'``), without transposing
    either array.  Entries of ``R`` below the diagonal are not read.
    """
    n, k = X.shape
    lower = fortran_scalar(76, np.uint8)  # 'L'
    kk = fortran_scalar(k, np.int32)
    _trsm(X, lower, lower, fortran_scalar(84, np.uint8), fortran_scalar(78, np.uint8), kk,
          fortran_scalar(n, np.int32), np.ones(1, X.dtype), np.ascontiguousarray(R), kk, X, kk)
