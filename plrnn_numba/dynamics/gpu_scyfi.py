r"""CUDA kernels for batched SCYFI region solves (numba.cuda) and their host driver.

One CUDA thread solves one candidate region sequence of one system:

1. form :math:`Z = F_k \cdots F_1` and :math:`b` step by step (the region map
   of each step from the family's ``regions`` code, so no k-sized storage);
2. solve :math:`(I - Z) z = b` with the shared pivoted-LU helpers of
   :mod:`._lu` (same pivots, same condition estimate as the CPU);
3. roll :math:`z` out k steps with the true map (the family's ``rollout``
   code), writing the visited patterns, the points, a consistency flag, the
   closure residual and its scale.

The family's ``regions`` / ``rollout`` kernels (the piecewise-linear protocol,
:mod:`plrnn_numba.models.piecewise`) and the LU helpers are plain index loops,
compiled here as CUDA device functions from the same Python source as the CPU
kernels, so both backends run the same arithmetic (up to fused multiply-adds).
One solve kernel is compiled per pair of family kernels (any family, the
package's or a user's).

Work arrays are per-thread local arrays, whose size must be known at compile
time: :data:`plrnn_numba.config.CUDA_MAX_DIM` bounds the state dimension M (about ``4 * CUDA_MAX_DIM**2 * 8``
bytes of local memory per thread: 32 KiB for 32).  Larger systems are solved on
the CPU.  The number of pattern bits (M, H or 2H) and the order k are not
bounded here.

The search logic (jumps, restarts, counters, duplicates) stays on the host
(:class:`._search.BatchSearch`), which hands the kernel one batch of candidates
per round; with one lane per search it makes exactly the CPU's choices.
"""

from __future__ import annotations

import numpy as np
from numba import cuda, float64, int64

from .. import config
from ._lu import SOLVE_OK, build_lu

__all__ = ["CudaSolver", "build_solve_kernel"]



_KERNELS: dict = {}


def _python_source(kernel):
    # the Python function behind a compiled kernel (LazyKernel, dispatcher or plain function)
    return getattr(kernel, "py_func", kernel)


def build_solve_kernel(kernels):
    """Compile (once per pair of family kernels) the batched solve kernel."""
    key = (id(_python_source(kernels.regions)), id(_python_source(kernels.rollout)))
    if key in _KERNELS:
        return _KERNELS[key][0]
    dev = cuda.jit(device=True)
    lu = build_lu(dev)
    solve_shifted = lu.solve_shifted
    regions, rollout = dev(_python_source(kernels.regions)), dev(_python_source(kernels.rollout))
    MD = config.CUDA_MAX_DIM

    @cuda.jit
    def solve_batch(p, meta, sysidx, korder, cand, rcond_min, status, consistent, act, traj, res):
        i = cuda.grid(1)
        if i >= sysidx.shape[0]:
            return
        M = traj.shape[2]
        k = korder[i]
        pr = p[sysidx[i]]
        F = cuda.local.array((1, MD, MD), float64)[:, :M, :M]
        c = cuda.local.array((1, MD), float64)[:, :M]
        Z = cuda.local.array((MD, MD), float64)[:M, :M]
        T = cuda.local.array((MD, MD), float64)[:M, :M]
        LU = cuda.local.array((MD, MD), float64)[:M, :M]
        b = cuda.local.array(MD, float64)[:M]
        t = cuda.local.array(MD, float64)[:M]
        u = cuda.local.array(MD, float64)[:M]
        z = cuda.local.array(MD, float64)[:M]
        piv = cuda.local.array(MD, int64)[:M]
        scale = 0.0
        for s in range(k):
            regions(pr, meta, cand[i, s : s + 1, :], F, c)
            for r in range(M):
                scale = max(scale, abs(c[0, r]))
            if s == 0:
                for r in range(M):
                    for q in range(M):
                        Z[r, q] = F[0, r, q]
                    b[r] = c[0, r]
                continue
            # Z <- F_s Z and b <- F_s b + c_s, in the CPU kernel's loop order
            for r in range(M):
                for q in range(M):
                    T[r, q] = 0.0
                for l in range(M):
                    a = F[0, r, l]
                    if a != 0.0:
                        for q in range(M):
                            T[r, q] += a * Z[l, q]
            for r in range(M):
                for q in range(M):
                    Z[r, q] = T[r, q]
            for r in range(M):
                acc = c[0, r]
                for q in range(M):
                    acc += F[0, r, q] * b[q]
                t[r] = acc
            for r in range(M):
                b[r] = t[r]
        st = solve_shifted(Z, b, rcond_min, z, LU, t, u, piv)
        status[i] = st
        consistent[i] = 0
        if st != SOLVE_OK:
            return
        tr = traj[i, : k + 1, :]
        ac = act[i, :k, :]
        for r in range(M):
            tr[0, r] = z[r]
        rollout(pr, meta, tr, ac)
        same = 1
        for s in range(k):
            for q in range(cand.shape[2]):
                if ac[s, q] != cand[i, s, q]:
                    same = 0
        consistent[i] = same
        clo = 0.0
        for s in range(k):
            for r in range(M):
                scale = max(scale, abs(tr[s, r]))
        for r in range(M):
            clo = max(clo, abs(tr[k, r] - tr[0, r]))
        if not (clo - clo == 0.0 and scale - scale == 0.0):  # inf or NaN: never accepted
            clo = np.inf
            scale = 1.0
        res[i, 0] = clo  # the lane's closure (a LANE field)
        res[i, 1] = scale if scale > 0.0 else 1.0  # the lane's scale

    # the kernels are kept with the compiled solve so that their ids stay valid keys
    _KERNELS[key] = (solve_batch, kernels)
    return solve_batch


class CudaSolver:
    """Batched solver of a :class:`._search.BatchSearch` on the GPU (one call per round).

    The systems' parameters are copied to the device once; each call gathers
    the candidates of the given lanes, runs :func:`solve_batch` with one thread
    per candidate and scatters the results back into the batch's lane records and roll-outs.
    """

    def __init__(self, batch, threads_per_block: int | None = None):
        from .batched import resolve_backend, simulator

        resolve_backend("cuda", dim=batch.M)  # raises without a GPU
        if batch.M > config.CUDA_MAX_DIM:
            raise ValueError(f"CudaSolver needs M <= CUDA_MAX_DIM = {config.CUDA_MAX_DIM}; got M = {batch.M}")
        self.batch = batch
        self.kernel = build_solve_kernel(batch.kernels)
        tpb = threads_per_block or (4 if simulator() else config.CUDA_THREADS_PER_BLOCK)
        self.tpb = int(tpb)
        self.d_p = cuda.to_device(batch.systems.p)
        self.d_meta = cuda.to_device(batch.systems.meta)
        self.rcond_min = batch.options.rcond_min
        self.solves = 0

    def __call__(self, lanes: np.ndarray) -> None:
        b = self.batch
        n = lanes.size
        if n == 0:
            return
        srch = b.lanes.state["search"][lanes]
        sysidx = np.ascontiguousarray(b.searches["system"][srch])
        korder = np.ascontiguousarray(b.searches["order"][srch])
        K, M, P = b.kmax, b.M, b.P
        cand = np.ascontiguousarray(b.lanes.cand[lanes])
        status = cuda.device_array(n, dtype=np.int8)
        consistent = cuda.device_array(n, dtype=np.int8)
        act = cuda.device_array((n, K, P), dtype=np.int8)
        traj = cuda.device_array((n, K + 1, M), dtype=np.float64)
        res = cuda.device_array((n, 2), dtype=np.float64)  # columns: closure, scale
        blocks = (n + self.tpb - 1) // self.tpb
        self.kernel[blocks, self.tpb](
            self.d_p, self.d_meta, cuda.to_device(sysidx), cuda.to_device(korder), cuda.to_device(cand),
            self.rcond_min, status, consistent, act, traj, res,
        )
        state = b.lanes.state
        state["status"][lanes] = status.copy_to_host()
        state["consistent"][lanes] = consistent.copy_to_host()
        b.solved.act[lanes] = act.copy_to_host()
        b.solved.traj[lanes] = traj.copy_to_host()
        r = res.copy_to_host()
        state["closure"][lanes] = r[:, 0]
        state["scale"][lanes] = r[:, 1]
        self.solves += n
