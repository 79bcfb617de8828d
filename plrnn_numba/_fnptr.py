"""Calling model kernels from engines through their native addresses.

Engines receive model kernels as plain int64 addresses of the compiled
functions and call them through the intrinsics below, which emit a direct
call with numba's internal calling convention for the kernel signature.

Why not numba's first-class function types: they work and are cacheable,
but a dispatcher passed as a first-class function argument is converted on
every call (about 0.1 ms per kernel argument, measured with numba 0.68), which
dominated small BPTT problems.  An address is looked up once per kernel and
costs nothing to pass; the engine stays one compiled, disk-cached function
for every model, because the address is an argument, not a constant.
"""

from __future__ import annotations

from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

_ADDRESSES: dict[tuple[int, int], int] = {}
_KEEP: list = []  # the kernels and signatures whose ids key _ADDRESSES stay alive


def make_caller(*sigs):
    """An intrinsic ``call(addr, *args)`` calling a compiled function of one of the signatures ``sigs``.

    With several signatures (a kernel's float64 and float32 variants) the one whose array dtypes
    match the arguments is called, so an engine written once calls the kernels of its precision.
    """

    def matches(sig, args):
        return len(args) == len(sig.args) and all(
            not isinstance(d, types.Array) or (isinstance(a, types.Array) and a.dtype == d.dtype)
            for a, d in zip(args, sig.args)
        )

    @intrinsic
    def call(typingctx, addr, *args):
        sig = next((sg for sg in sigs if matches(sg, args)), sigs[0])
        outsig = sig.return_type(types.int64, types.StarArgTuple(tuple(sig.args)))

        def codegen(context, builder, signature, llargs):
            packed = llargs[1]
            vals = [builder.extract_value(packed, i) for i in range(len(sig.args))]
            fnty = context.call_conv.get_function_type(sig.return_type, sig.args)
            fptr = builder.inttoptr(llargs[0], fnty.as_pointer())
            status, res = context.call_conv.call_function(builder, fptr, sig.return_type, sig.args, vals)
            with cgutils.if_unlikely(builder, status.is_error):
                context.call_conv.return_status_propagate(builder, status)
            return res

        return outsig, codegen

    return call


def kernel_address(kernel, sig) -> int:
    """Native address of ``kernel`` compiled for ``sig`` (compiles or loads it on first use).

    A kernel made by the package's decorators (a :class:`~plrnn_numba.config.LazyKernel`) compiles
    itself for a signature other than its own on request: the float32 variants of the kernels.
    """
    # by identity: kernels and their signatures are long-lived module objects (and hashing a numba
    # signature costs microseconds of Python per call)
    key = (id(kernel), id(sig))
    addr = _ADDRESSES.get(key)
    if addr is None:
        for_signature = getattr(kernel, "for_signature", None)
        disp = for_signature(sig) if for_signature is not None else getattr(kernel, "dispatcher", kernel)
        # kernels carry explicit signatures, so they are compiled (or loaded from
        # the cache) when the dispatcher is created
        try:
            cres = disp.get_compile_result(sig)
        except KeyError as exc:
            raise TypeError(
                f"kernel {getattr(disp, '__name__', disp)!r} is not compiled for {sig}; "
                "decorate it with the matching plrnn_numba.models.*_kernel decorator"
            ) from exc
        addr = int(cres.library.get_pointer_to_function(cres.fndesc.llvm_func_name))
        _ADDRESSES[key] = addr
        _KEEP.append((kernel, sig))
    return addr
