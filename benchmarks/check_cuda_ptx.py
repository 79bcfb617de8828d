#!/usr/bin/env python
"""Compile the CUDA kernels of batched SCYFI to PTX without a GPU (a developer check).

The simulator tests (``tests/cuda``) run the kernels' Python source; they do not
prove that numba's CUDA target can type and compile them.  This script does
that part on a machine without a GPU: it types every kernel for the argument
types the host driver passes and lowers it through NVVM to PTX for a chosen
compute capability (default 9.0, H100).

Needs NVVM and NVRTC, e.g. ``pip install nvidia-cuda-nvcc-cu12
nvidia-cuda-nvrtc-cu12`` (not package dependencies).  Without a driver, numba
cannot ask a device for its compute capability when it compiles a device
function, so this script answers that question itself (it replaces
``numba.cuda.dispatcher.get_current_device`` for the duration of the check).

Usage::

    python benchmarks/check_cuda_ptx.py [--cc 9.0]
"""

from __future__ import annotations

import argparse
import os
import sys
import types as _types

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cc", default="9.0", help="compute capability, e.g. 8.0 or 9.0")
    args = ap.parse_args(argv)
    cc = tuple(int(x) for x in args.cc.split("."))

    from numba import cuda
    from numba import types as nt
    from numba.cuda import dispatcher

    if not cuda.is_available():
        dispatcher.get_current_device = lambda: _types.SimpleNamespace(compute_capability=cc)
    from plrnn_numba import config
    from plrnn_numba.dynamics import gpu_scyfi
    from plrnn_numba.models import NORMAL_FORM_KERNELS
    from plrnn_numba.models.alrnn import ALRNN_REGION_KERNELS
    from plrnn_numba.models.plrnn import PLRNN_REGION_KERNELS
    from plrnn_numba.models.shallow import SHALLOW_REGION_KERNELS

    f2, i1, b1 = nt.float64[:, ::1], nt.int64[::1], nt.int8[::1]
    sig = (f2, i1, i1, i1, nt.int8[:, :, ::1], nt.float64, b1, b1, nt.int8[:, :, ::1], nt.float64[:, :, ::1], f2)
    families = {"PLRNN / ReLU RNN": PLRNN_REGION_KERNELS, "shallow PLRNN": SHALLOW_REGION_KERNELS,
                "ALRNN": ALRNN_REGION_KERNELS, "normal form (any family)": NORMAL_FORM_KERNELS}
    for kind, kernels in families.items():
        kernel = gpu_scyfi.build_solve_kernel(kernels)
        ptx, _ = cuda.compile_ptx(kernel.py_func, sig, cc=cc)
        local = [ln.strip() for ln in ptx.splitlines() if ln.strip().startswith(".local")]
        print(f"{kind}: PTX for sm_{cc[0]}{cc[1]} compiled, {len(ptx):,} characters; "
              f"local arrays: {len(local)} declarations (CUDA_MAX_DIM = {config.CUDA_MAX_DIM})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
