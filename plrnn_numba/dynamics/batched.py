r"""Batched SCYFI region solves and backend selection (CPU threads or CUDA).

SCYFI's unit of work is one *region solve*: for a candidate sequence of linear
regions :math:`d_1, \dots, d_k` form :math:`Z = F_k \cdots F_1` and
:math:`b = c_k + F_k c_{k-1} + \dots + F_k \cdots F_2 c_1`, solve
:math:`(I - Z) z = b` by LU with partial pivoting (skipping singular and
ill-conditioned systems), roll :math:`z` out with the true map and compare the
regions it actually visits with the candidate.  Many such solves are
independent -- restarts of one network, or the points of a bifurcation grid --
so they are done in batches:

* ``"parallel"``: numba threads over chunks of the batch (:mod:`._search`);
* ``"cuda"``: one CUDA thread per candidate (:mod:`.gpu_scyfi`).

:func:`solve_candidates` exposes one batched solve directly;
:func:`~plrnn_numba.dynamics.scyfi` and
:func:`~plrnn_numba.dynamics.bifurcation_grid` take ``backend=`` and run the
whole search in batches.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from .. import _validate as V
from .. import config, io
from ..models.piecewise import as_piecewise_linear
from ._search import READY, BatchSearch

__all__ = ["SCYFI_BACKENDS", "cuda_available", "resolve_backend", "default_lanes", "solve_candidates"]

#: the backends of the SCYFI engine (``backend=`` of scyfi, search_many, solve_candidates, bifurcation_grid).
SCYFI_BACKENDS = ("cpu", "parallel", "cuda", "auto")

def cuda_available() -> tuple[bool, str]:
    """Whether numba.cuda can run kernels here, and why not.

    The CUDA simulator (``NUMBA_ENABLE_CUDASIM=1`` set before numba is imported)
    counts as available (that is how the kernels are tested without a GPU).

    Returns
    -------
    available : bool
        Whether kernels can run.
    reason : str
        ``"gpu"`` or ``"simulator"`` when available, else why not.
    """
    try:
        from numba import cuda
    except Exception as exc:  # pragma: no cover - numba-cuda is a dependency
        return False, f"numba.cuda could not be imported ({exc})"
    try:
        if cuda.is_available():
            return True, "simulator" if simulator() else "gpu"
    except Exception as exc:  # pragma: no cover - depends on the driver
        return False, f"the CUDA driver reported an error ({exc})"
    return False, "numba.cuda found no CUDA GPU and driver on this machine"


def simulator() -> bool:
    """Whether numba runs CUDA kernels in its simulator."""
    from numba import config as nconfig

    return bool(getattr(nconfig, "ENABLE_CUDASIM", False))


def resolve_backend(backend: str, *, dim: int, n_pattern: int = 0, work: float = 0.0, batched_cpu: bool = False) -> str:
    """The backend that runs a search: ``"cpu"``, ``"parallel"`` or ``"cuda"``.

    Parameters
    ----------
    backend : {"cpu", "parallel", "cuda", "auto"}
        Requested backend.  ``"cuda"`` without a usable GPU raises; beyond
        :data:`plrnn_numba.config.CUDA_MAX_DIM` it warns and uses the
        CPU (``"parallel"``).  ``"auto"``: ``"cuda"`` on a real GPU (never the
        simulator) when ``dim <= config.CUDA_MAX_DIM`` and ``work >= config.AUTO_CUDA_MIN_WORK``,
        else ``"parallel"`` if ``batched_cpu`` (many independent searches), else ``"cpu"``.
    dim, n_pattern : int
        State dimension and pattern bits of the system.
    work : float
        Rough size of the search in flops.
    batched_cpu : bool
        Whether the CPU alternative should be the batched one.
    """
    if not isinstance(backend, str) or backend not in SCYFI_BACKENDS:
        raise ValueError(f"backend must be one of {SCYFI_BACKENDS}; got {backend!r}")
    cpu = "parallel" if batched_cpu else "cpu"
    if backend == "auto":
        ok, kind = cuda_available()
        if ok and kind == "gpu" and dim <= config.CUDA_MAX_DIM and work >= config.AUTO_CUDA_MIN_WORK:
            return "cuda"
        return cpu
    if backend == "cuda":
        ok, why = cuda_available()
        if not ok:
            raise RuntimeError(
                f"backend='cuda' needs a CUDA GPU: {why}. Use backend='parallel' (numba threads) or 'cpu', "
                "or backend='auto' to use a GPU only when one is present."
            )
        if dim > config.CUDA_MAX_DIM:
            import warnings

            warnings.warn(
                f"state dimension {dim} exceeds the CUDA kernels' compile-time maximum "
                f"CUDA_MAX_DIM = {config.CUDA_MAX_DIM}; "
                "solving on the CPU (backend='parallel') instead",
                RuntimeWarning,
                stacklevel=3,
            )
            return "parallel"
    return backend


def default_lanes(backend: str, budget: int, n_threads: int) -> int:
    """Lanes per search for a batched backend: enough to fill the device, at most ``budget / 8``.

    More lanes than the budget of solves without a discovery (``n_outer *
    n_inner``) would only repeat restarts, so the count is capped by it.
    """
    want = 4096 if backend == "cuda" else 16 * max(1, n_threads)
    return int(max(1, min(want, budget // 8)))


def solve_lanes(batch: BatchSearch, lanes: np.ndarray, backend: str, n_threads: int, solver=None) -> None:
    """One batched solve of the candidates held by ``lanes`` of ``batch`` on a resolved backend.

    ``"cpu"``: one thread; ``"parallel"``: ``4 * n_threads`` chunks on numba's
    threads; ``"cuda"``: ``solver`` (a :class:`~.gpu_scyfi.CudaSolver` of the batch,
    made here if None).  Results are in the lanes' records and ``batch.solved``.
    """
    batch.lanes.state["stage"][lanes] = READY
    if backend == "cuda":
        if solver is None:
            from .gpu_scyfi import CudaSolver

            solver = CudaSolver(batch)
        solver(lanes)
    else:
        batch.solve_cpu(lanes, n_chunks=4 * n_threads if backend == "parallel" else 1)


def solve_candidates(
    model,
    thetas,
    candidates,
    *,
    system_index=None,
    inputs=None,
    rcond_min: float = 1e-12,
    backend: str = "cpu",
    n_threads: int | None = None,
) -> xr.Dataset:
    r"""One batched SCYFI region solve: a batch of (parameter vector, candidate region sequence) pairs.

    For each candidate ``d`` (k regions) of parameter vector ``s``: form
    :math:`Z = F(d_k) \cdots F(d_1)` and :math:`b`, solve :math:`(I - Z) z_1 = b`
    (LU with partial pivoting; singular when the estimated reciprocal condition
    number is below ``rcond_min``), roll :math:`z_1` out k steps with the true
    map and record the patterns it visits.

    Parameters
    ----------
    model : Model
        A piecewise-linear model (see :func:`~plrnn_numba.dynamics.scyfi`).
    thetas : (P,) or (n_sys, P) array
        One parameter vector, or several (the systems).
    candidates : (n, k, n_bits) array of 0/1
        Candidate region sequences (``n_bits`` pattern bits per region).
    system_index : (n,) int array, optional
        Parameter vector of each candidate (default: all the first).
    inputs : (K,) array, optional
        A constant input.
    rcond_min : float
        Reciprocal condition threshold for singular systems.
    backend : {"cpu", "parallel", "cuda", "auto"}
        Where to solve (``"cpu"`` and ``"parallel"`` run the same numba code).
    n_threads : int, optional
        Threads for ``"parallel"`` (default: numba's thread count).

    Returns
    -------
    xarray.Dataset
        Dims ``candidate``, ``point`` (k + 1), ``step`` (k), ``state`` (M), ``bit`` (n_bits):
        ``status`` (0 solved, 1 singular/ill-conditioned, 2 non-finite),
        ``consistent`` (1 if the roll-out visits exactly the candidate regions: a
        k-cycle), ``points`` (``z_1 .. z_k`` and ``F(z_k)``; NaN where not solved),
        ``patterns`` (visited regions; -1 where not solved), ``closure_residual``
        (:math:`|F(z_k) - z_1|_\infty`) and ``scale`` (max of the points' and offsets' moduli).
    """
    th = V.as_float_array(thetas, "thetas")
    th = th[None, :] if th.ndim == 1 else th
    if th.ndim != 2 or th.shape[0] == 0:
        raise ValueError(f"thetas must be one parameter vector or an (n_sys, n_params) array; got {np.shape(thetas)}")
    sys_list = [as_piecewise_linear(model, t, inputs, theta_name=f"thetas[{i}]") for i, t in enumerate(th)]
    s0 = sys_list[0]
    M, P = s0.dim, s0.n_bits
    cand = V.as_float_array(candidates, "candidates")
    if cand.ndim != 3 or cand.shape[2] != P or cand.shape[1] < 1 or cand.shape[0] < 1:
        raise ValueError(f"candidates must have shape (n, k, {P}) with n, k >= 1; got {cand.shape}")
    if not np.all((cand == 0) | (cand == 1)):
        raise ValueError("candidates must contain only 0 and 1 (region pattern bits)")
    n, k = cand.shape[0], cand.shape[1]
    if system_index is None:
        sidx = np.zeros(n, dtype=np.int64)
    else:
        sidx = np.asarray(system_index)
        if sidx.shape != (n,) or not np.issubdtype(sidx.dtype, np.integer):
            raise ValueError(f"system_index must be an integer array of shape ({n},); got {sidx.shape} {sidx.dtype}")
        if sidx.min() < 0 or sidx.max() >= len(sys_list):
            raise ValueError(f"system_index values must be in [0, {len(sys_list) - 1}]")
    rcond_min = V.finite_float(rcond_min, "rcond_min", low=0.0, high=1.0)
    be = resolve_backend(backend, dim=M, n_pattern=P, work=float(n) * k * M**3, batched_cpu=True)
    n_threads = config.get_num_threads() if n_threads is None else V.positive_int(n_threads, "n_threads")

    p = np.stack([s.p for s in sys_list])
    batch = BatchSearch(
        s0.kernels, p, s0.meta, M, P,
        {"system": sidx, "order": np.full(n, k), "stream": np.zeros(n, dtype=np.int64), "n_outer": np.ones(n),
         "n_inner": np.ones(n), "max_solves": np.full(n, -1), "lanes": np.ones(n, dtype=np.int64)},
        [None], np.array([rcond_min, 0.0, 0.0]),
    )
    batch.lanes.cand[:] = cand.astype(np.int8)
    solve_lanes(batch, np.arange(n, dtype=np.int64), be, n_threads)
    state = batch.lanes.state
    ok = state["status"] == 0
    pts = batch.solved.traj.copy()
    pats = batch.solved.act.copy()
    pts[~ok] = np.nan
    pats[~ok] = -1
    u1 = {"units": "1"}
    data = {
        "status": ("candidate", state["status"].astype(np.int8),
                   {**u1, "long_name": "solve status (0 solved, 1 singular or ill-conditioned, 2 non-finite)"}),
        "consistent": ("candidate", np.where(ok, state["consistent"], 0).astype(np.int8),
                       {**u1, "long_name": "1 if the roll-out visits exactly the candidate regions"}),
        "points": (("candidate", "point", "state"), pts,
                   {**u1, "long_name": "roll-out z_1..z_k and F(z_k) of the solution"}),
        "patterns": (("candidate", "step", "bit"), pats, {**u1, "long_name": "region bits visited by the roll-out"}),
        "bit_label": ("bit", np.asarray(s0.bit_labels, dtype=str),
                      {"units": "1", "long_name": "condition under which the pattern bit is 1"}),
        "closure_residual": ("candidate", np.where(ok, state["closure"], np.nan),
                             {**u1, "long_name": "max-norm of F(z_k) - z_1"}),
        "scale": ("candidate", np.where(ok, state["scale"], np.nan),
                  {**u1, "long_name": "max modulus of the points and region offsets"}),
        "system_index": ("candidate", sidx.astype(np.int64), {**u1, "long_name": "system of the candidate"}),
    }
    attrs = io.provenance("plrnn_numba.dynamics.solve_candidates",
                          {"n_candidates": n, "order": k, "rcond_min": rcond_min, "backend": backend}, seeds=0)
    attrs.update({"title": "Batched SCYFI region solves", "backend": be, "model": model.name})
    return xr.Dataset(data, attrs=attrs)
