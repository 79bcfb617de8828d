"""Numba settings for the whole package, in one place.

Every ``@njit`` in plrnn_numba reads its options from here, so a change of
policy (fast-math flags, caching, threading) is made once.

Why these choices
-----------------
* ``cache=True``: kernels and engines are compiled with explicit signatures
  (model kernels are passed to the engines as first-class function values of
  a fixed type), which lets numba's on-disk cache serve every new process.
  The first import in a fresh environment compiles; later ones load from the
  cache (see ``docs/performance.md`` for the measured times).
* ``fastmath``: only the flags that do not change the meaning of NaN and inf.
  ``nnan``/``ninf`` are left out on purpose: a non-finite state or loss is how
  a diverging simulation or training run is detected and reported.
  ``reassoc``/``contract`` let LLVM vectorise reductions and fuse
  multiply-adds; results then differ from strict IEEE order in the last bits,
  which is far below every tolerance in the test-suite.
* Engines that loop over independent work (batch chunks) are compiled with
  ``parallel=True``; model kernels never are (they run inside those loops).
"""

from __future__ import annotations

import functools
import os

import numba

__all__ = [
    "blas_kernels",
    "check_blas_kernels",
    "blas_small_matrix_kernels",
    "BlasKernelWarning",
    "limit_blas_threads",
    "set_num_threads",
    "get_num_threads",
    "parallel_threads",
    "threads_for",
    "prepare_engines",
    "malloc_thresholds",
    "tune_malloc",
    "jit",
    "njit",
    "LazyKernel",
]

#: fast-math flags used by every kernel (NaN/inf semantics preserved).
FASTMATH: frozenset[str] = frozenset({"nsz", "arcp", "contract", "afn", "reassoc"})

#: whether compiled kernels are cached on disk (``PLRNN_NUMBA_CACHE=0`` turns it off).
CACHE: bool = os.environ.get("PLRNN_NUMBA_CACHE", "1") != "0"

#: options for serial kernels.  ``error_model="numpy"``: a division by zero
#: gives inf/NaN (IEEE semantics) instead of raising ZeroDivisionError, so a
#: diverging computation (a saturated tanh network has a zero Jacobian, so a
#: zero QR diagonal) is reported by its non-finite result like everywhere else.
JIT_OPTIONS: dict = {"nogil": True, "cache": CACHE, "fastmath": set(FASTMATH), "error_model": "numpy"}

#: options for top-level engines that use ``prange`` over independent work.
PARALLEL_OPTIONS: dict = {**JIT_OPTIONS, "parallel": True}


class LazyKernel:
    """A numba function compiled (or loaded from the cache) on first use.

    An explicit signature is what makes a kernel usable as a first-class
    function value and cacheable across processes; compiling it lazily keeps
    ``import plrnn_numba`` cheap: only what a program calls is compiled.

    Call it like the function, or take :attr:`dispatcher` to pass the kernel
    to an engine.  Made by :func:`jit`.

    Parameters
    ----------
    pyfunc : callable
        The Python function (kept as ``py_func``; its name and docstring are copied).
    signature : numba signature or None
        The explicit signature (None: compiled lazily for the argument types of each call).
    options : dict
        Options of ``numba.njit`` (``cache``, ``fastmath``, ...).
    """

    def __init__(self, pyfunc, signature, options):
        self.py_func = pyfunc
        self.signature = signature
        self._options = options
        self._dispatcher = None
        self.__name__ = pyfunc.__name__
        self.__qualname__ = getattr(pyfunc, "__qualname__", pyfunc.__name__)
        self.__doc__ = pyfunc.__doc__
        self.__module__ = pyfunc.__module__

    @property
    def dispatcher(self):
        """The compiled numba dispatcher (compiles on first access)."""
        if self._dispatcher is None:
            if self.signature is None:
                self._dispatcher = numba.njit(**self._options)(self.py_func)
            else:
                self._dispatcher = numba.njit(self.signature, **self._options)(self.py_func)
        return self._dispatcher

    def for_signature(self, signature):
        """A dispatcher compiled for ``signature``.

        The primary signature, or another (e.g. the float32 variant of a
        kernel); each is compiled on first request and cached like the primary one.

        Parameters
        ----------
        signature : numba signature or None
            The signature (None: the primary one).

        Returns
        -------
        numba dispatcher
            The compiled kernel.
        """
        if signature is None or signature is self.signature or signature == self.signature:
            return self.dispatcher
        others = self.__dict__.setdefault("_others", {})
        disp = others.get(signature)
        if disp is None:
            disp = others[signature] = numba.njit(signature, **self._options)(self.py_func)
        return disp

    def __call__(self, *args):
        return self.dispatcher(*args)

    def __repr__(self) -> str:
        state = "compiled" if self._dispatcher is not None else "not yet compiled"
        return f"<LazyKernel {self.__qualname__} ({state})>"


def jit(signature=None, *, parallel: bool = False):
    """Return a decorator that compiles with the package-wide numba options.

    Parameters
    ----------
    signature : numba signature, optional
        An explicit signature makes the function usable as a first-class
        function value of that type and cacheable across processes.
    parallel : bool
        Compile with ``parallel=True`` (only for engines with ``prange``).

    Returns
    -------
    callable
        Decorator producing a :class:`LazyKernel`.
    """
    opts = PARALLEL_OPTIONS if parallel else JIT_OPTIONS

    def decorate(pyfunc):
        return LazyKernel(pyfunc, signature, opts)

    return decorate


def njit(func=None, **overrides):
    """Plain lazily-typed ``numba.njit`` with the package options (helpers only).

    Helpers called from kernels are inlined into their caller's compilation,
    so they need no explicit signature.

    Parameters
    ----------
    func : callable, optional
        The function; None returns the decorator (``@njit(...)`` with options).
    **overrides
        Options replacing the package's defaults (e.g. ``inline="always"``).

    Returns
    -------
    numba dispatcher or callable
        The compiled function, or the decorator when ``func`` is None.
    """
    opts = {**JIT_OPTIONS, **overrides}
    if func is None:
        return numba.njit(**opts)
    return numba.njit(**opts)(func)


#: threads for the BLAS library numba's np.dot uses (``PLRNN_NUMBA_BLAS_THREADS``;
#: 0 leaves BLAS alone).
BLAS_THREADS: int = int(os.environ.get("PLRNN_NUMBA_BLAS_THREADS", "1"))
_blas_limited = False


def limit_blas_threads() -> None:
    """Cap the threads of the BLAS library that numba kernels call (once per process).

    numba's ``np.dot`` goes to SciPy's BLAS.  Its threads compete with numba's
    own threads and with other processes; with two cores, a multi-threaded
    product inside a kernel was up to 50x slower than a single-threaded one.
    Parallelism in this package comes from splitting batches, restarts and
    sweeps instead.  The cap is set on the first call of an engine and applies
    to SciPy's BLAS for the whole process; set ``PLRNN_NUMBA_BLAS_THREADS=0``
    to keep BLAS as it is, or to another number to choose the cap.
    """
    global _blas_limited
    if _blas_limited:
        return
    _blas_limited = True
    check_blas_kernels_once()  # tell the user when OpenBLAS is forced onto slow kernels
    if BLAS_THREADS <= 0:
        return
    try:
        import scipy.linalg  # noqa: F401 - loads the BLAS library numba uses
        from threadpoolctl import ThreadpoolController
    except ImportError:  # pragma: no cover - threadpoolctl is a dependency
        return
    controller = ThreadpoolController()
    for lib in controller.lib_controllers:
        if lib.user_api == "blas" and "scipy" in (lib.filepath or "") and "numpy" not in (lib.filepath or ""):
            lib.set_num_threads(BLAS_THREADS)


class BlasKernelWarning(UserWarning):
    """The BLAS library runs older CPU kernels than the processor supports (see :func:`blas_kernels`)."""


#: OpenBLAS kernel families that use AVX-512 (the rest: AVX2 at best)
_AVX512_KERNELS = ("skylakex", "cooperlake", "sapphirerapids")


def _cpu_flags() -> set[str]:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:  # pragma: no cover - not Linux
        pass
    return set()


def blas_kernels() -> dict:
    """The BLAS library that numba's products call, the CPU kernels it runs, and whether they are forced.

    OpenBLAS chooses its kernels for the processor when it loads, unless
    ``OPENBLAS_CORETYPE`` names a family; some machines set it (to Haswell,
    for old OpenBLAS builds) and so run AVX2 kernels on AVX-512 processors:
    measured here, single-thread float64 GEMM at n = 512 fell from 92 to
    58 GFLOP/s and the PLRNN's BPTT at M = 128 took 1.9x as long.

    Returns
    -------
    dict
        ``library``, ``version``, ``architecture`` (threadpoolctl's names),
        ``forced_by`` (the value of ``OPENBLAS_CORETYPE``, or None),
        ``cpu_avx512`` (the processor has AVX-512F) and ``slower_than_cpu``
        (OpenBLAS runs AVX2 kernels on an AVX-512 processor).
    """
    import scipy.linalg  # noqa: F401 - loads the BLAS library numba uses

    info = {"library": None, "version": None, "architecture": None}
    try:
        from threadpoolctl import threadpool_info
    except ImportError:  # pragma: no cover - threadpoolctl is a dependency
        threadpool_info = list
    for lib in threadpool_info():
        if lib.get("user_api") == "blas" and "scipy" in (lib.get("filepath") or ""):
            info = {"library": lib.get("internal_api"), "version": lib.get("version"),
                    "architecture": lib.get("architecture")}
            break
    avx512 = "avx512f" in _cpu_flags()
    arch = (info["architecture"] or "").lower()
    slower = bool(info["library"] == "openblas" and avx512 and arch and arch not in _AVX512_KERNELS)
    return {**info, "forced_by": os.environ.get("OPENBLAS_CORETYPE"), "cpu_avx512": avx512,
            "slower_than_cpu": slower}


@functools.lru_cache(maxsize=1)
def blas_small_matrix_kernels() -> bool:
    """Whether numba's BLAS is OpenBLAS running AVX-512 kernels (which have small-matrix paths).

    With them, BLAS products of a few rows beat the kernels' own loops (the
    LSTM chooses its per-step products by it); with AVX2 kernels (forced
    Haswell, Zen up to 3) or another library the loops win up to about 10
    rows.  Decided once per process, from :func:`blas_kernels`.

    Returns
    -------
    bool
    """
    info = blas_kernels()
    return bool(info["library"] == "openblas" and (info["architecture"] or "").lower() in _AVX512_KERNELS)


def check_blas_kernels(warn: bool = True) -> dict:
    """:func:`blas_kernels`, with a :class:`BlasKernelWarning` when OpenBLAS is forced onto older kernels.

    Parameters
    ----------
    warn : bool
        Issue the warning (False: only report).

    Returns
    -------
    dict
        What :func:`blas_kernels` reports.
    """
    info = blas_kernels()
    if warn and info["slower_than_cpu"] and info["forced_by"]:
        import warnings

        warnings.warn(
            f"OPENBLAS_CORETYPE={info['forced_by']} makes OpenBLAS run its {info['architecture']} kernels on a "
            "processor with AVX-512: the matrix products of plrnn_numba's engines run up to 2x slower. "
            "Unset OPENBLAS_CORETYPE (and OPENBLAS_L2_SIZE) before starting Python unless an old OpenBLAS "
            "build needs it (plrnn_numba.config.blas_kernels() reports the kernels in use).",
            BlasKernelWarning, stacklevel=3,
        )
    return info


_blas_checked = False


def check_blas_kernels_once(warn: bool = True) -> None:
    """:func:`check_blas_kernels` on the first call in this process; later calls do nothing.

    Parameters
    ----------
    warn : bool
        False marks the check as done without making it: a sweep's worker
        processes pass False, since the process that started them has warned
        already (one line per sweep instead of one per worker).
    """
    global _blas_checked
    if _blas_checked:
        return
    _blas_checked = True
    if warn:
        check_blas_kernels()


#: keep freed memory for reuse instead of returning it to the OS (glibc only;
#: ``PLRNN_NUMBA_MALLOC_TUNE=0`` turns it off).
MALLOC_TUNE: bool = os.environ.get("PLRNN_NUMBA_MALLOC_TUNE", "1") != "0"
_malloc_tuned = False


def malloc_thresholds(total_memory: int | None = None) -> tuple[int, int]:
    """The glibc thresholds ``(M_MMAP_THRESHOLD, M_TRIM_THRESHOLD)`` in bytes that :func:`tune_malloc` sets.

    The mmap threshold is 1/32 of the machine's memory, at least 64 MiB and
    at most 1 GiB; the trim threshold twice that.

    Parameters
    ----------
    total_memory : int, optional
        Bytes of physical memory (default: this machine's; 8 GiB when it
        cannot be read).

    Returns
    -------
    (int, int)
        The two thresholds.
    """
    if total_memory is None:
        try:
            total_memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
        except (ValueError, OSError, AttributeError):  # pragma: no cover - not POSIX
            total_memory = 8 << 30
    mmap = min(max(int(total_memory) // 32, 64 << 20), 1 << 30)
    return mmap, 2 * mmap


def tune_malloc() -> None:
    """Raise glibc's mmap and trim thresholds (once per process).

    Engines allocate their trajectory buffers (T x batch x M doubles, and for
    models with a tape T x batch x tape width) on every call: a few MB to
    hundreds of MB.  By default glibc serves blocks above its mmap threshold
    with fresh ``mmap`` pages and returns them on free, so every call pays one
    page fault per 4 kB.  In a virtual machine that cost 40% of a BPTT call
    at M = 32 (measured), and with the thresholds at 64 / 256 MB, an LSTM call
    at N = 50, batch 100, T = 400 (an 80 MB tape) still spent 20% of its time
    in the kernel (19,500 page faults a call; 164 against 114 ms a call with
    the thresholds below, and 1.41 against 1.04 s at N = 200).  The
    thresholds are sized by the machine's memory (:func:`malloc_thresholds`:
    on a 24 GB machine 750 MB and 1.5 GB), so that such blocks are reused
    from the heap.  The price is that up to the trim threshold of freed
    memory may stay with the process (``PLRNN_NUMBA_MALLOC_TUNE=0`` leaves
    glibc's defaults).  No effect outside glibc.
    """
    global _malloc_tuned
    if _malloc_tuned:
        return
    _malloc_tuned = True
    if not MALLOC_TUNE:
        return
    import ctypes
    import sys

    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL("libc.so.6")
        M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
        mmap, trim = malloc_thresholds()
        libc.mallopt(M_MMAP_THRESHOLD, ctypes.c_int(min(mmap, 2**31 - 1)))
        libc.mallopt(M_TRIM_THRESHOLD, ctypes.c_int(min(trim, 2**31 - 1)))
    except (OSError, AttributeError):  # pragma: no cover - not glibc
        pass


def prepare_engines() -> None:
    """Process-wide settings the engines rely on (BLAS threads, allocator); idempotent."""
    if not (_blas_limited and _malloc_tuned):
        limit_blas_threads()
        tune_malloc()


def set_num_threads(n: int) -> None:
    """Limit the numba worker threads used by parallel engines.

    Parameters
    ----------
    n : int
        Number of threads (at most numba's pool size).
    """
    numba.set_num_threads(int(n))


def get_num_threads() -> int:
    """Number of numba worker threads parallel engines may use.

    Returns
    -------
    int
        The count.
    """
    return numba.get_num_threads()


def parallel_threads(n_threads, n_items: int, work: float) -> int:
    """Threads for an engine that runs ``n_items`` independent items (1: its serial variant).

    ``n_threads=None``: numba's thread count when there are two items or more and ``work`` (the
    engine's flop estimate) reaches :data:`BPTT_PARALLEL_MIN_WORK` -- entering a parallel region
    costs thread wake-ups, which small problems do not repay; an explicit ``n_threads`` is used as
    given (at most one thread per item and numba's pool size).

    Parameters
    ----------
    n_threads : int or None
        The caller's request.
    n_items : int
        Number of independent items (batch size).
    work : float
        The engine's flop estimate.

    Returns
    -------
    int
        The number of threads.
    """
    if n_threads is None:
        nt = get_num_threads()
        return 1 if nt <= 1 or n_items < 2 or work < BPTT_PARALLEL_MIN_WORK else int(min(nt, n_items))
    from ._validate import positive_int

    return int(min(positive_int(n_threads, "n_threads"), n_items, numba.config.NUMBA_NUM_THREADS))


class threads_for:
    """Context manager: numba's thread count set to ``n`` inside, restored after (``n <= 1``: untouched).

    Parameters
    ----------
    n : int
        Number of threads inside the block.
    """

    def __init__(self, n: int):
        self.n = int(n)

    def __enter__(self):
        # n <= 1: the serial engines, which do not use numba's threads (nothing to set)
        self._old = numba.get_num_threads() if self.n > 1 else None
        if self._old is not None and self.n != self._old:
            numba.set_num_threads(self.n)
        return self

    def __exit__(self, *exc):
        if self._old is not None and numba.get_num_threads() != self._old:
            numba.set_num_threads(self._old)
        return False


# -- tunables ----------------------------------------------------------------------------
# Sizes and thresholds that trade speed against memory or overhead.  Numba freezes
# module constants into compiled code, so those read inside kernels take effect
# after a recompilation (delete the cache or set PLRNN_NUMBA_CACHE=0).

#: loss_and_grad splits a batch over numba's threads from this much work per call
#: (B T M max(M, 8)), about 10 ms single-threaded: below it, waking threads (and, on a
#: machine busy with other processes, waiting for a descheduled one) costs more than it saves.
BPTT_PARALLEL_MIN_WORK: int = 20_000_000

#: longest stretch an orbit diagram simulates in one call during its transient (bounds the memory).
ORBIT_CHUNK: int = 4096

#: model kernels use BLAS for their per-step products from this state dimension on, or from
#: 16 units with a batch of at least BLAS_MIN_BATCH items; below, row loops avoid the call overhead.
BLAS_MIN_DIM: int = 48
BLAS_MIN_BATCH: int = 4

#: SCYFI: k-fold products with at least this many output entries go to BLAS (below: loops).
SCYFI_BLAS_MIN_SIZE: int = 48 * 48
#: SCYFI's LU: index-only loops up to this dimension (per-call overheads dominate small systems),
#: row views (vectorised) above, and blocked with BLAS trailing updates from SCYFI_BLOCKED_LU_DIM on
#: (measured at M = 200: 1.45 ms unblocked, 1.05 ms blocked, 0.6 ms for LAPACK's dgesv).
SCYFI_SMALL_DIM: int = 16
SCYFI_BLOCKED_LU_DIM: int = 96
#: panel width of the blocked LU.
SCYFI_LU_BLOCK: int = 32
#: SCYFI's fixed points by low-rank updates of a factorised region (plrnn_numba.dynamics._low_rank):
#: ``low_rank="auto"`` uses them from this dimension on (below, a refactorisation is as cheap);
SCYFI_LOW_RANK_MIN_DIM: int = 16
#: candidates with more flipped bits than this fraction of P (relative to the base) are refactorised
#: (an update with r flipped bits costs about as much as a refactorisation at r = 0.6 M for M = 16,
#: 0.75 M for M = 24 to 50, 0.9 M from M = 100 on);
SCYFI_LOW_RANK_MAX_FLIPS: float = 0.75
#: an update is accepted only if its bound on the condition number of I - F_d is below this
#: (it bounds the update's error; the refactorising path decides the rest);
SCYFI_LOW_RANK_COND_MAX: float = 1e10
#: a consistent update whose closure residual exceeds this times its scale is re-solved by refactorising;
SCYFI_LOW_RANK_CLOSURE_RTOL: float = 1e-11
#: a region becomes a lane's base only if its estimated reciprocal condition number is at least this;
SCYFI_LOW_RANK_BASE_RCOND: float = 1e-6
#: a base moves to a far or failed candidate's region only after serving this many updates;
SCYFI_LOW_RANK_REBUILD_MIN: int = 8
#: ``low_rank="auto"`` stays off when the lanes' bases (about 8 (M P + M^2) bytes each) would need more than this.
SCYFI_LOW_RANK_MAX_BYTES: int = 1 << 30
#: fresh random SCYFI candidates are drawn in chunks growing from the first to the largest size
#: (in candidates; the largest also limited to ~8 MB).
SCYFI_FIRST_CHUNK: int = 64
SCYFI_MAX_CHUNK: int = 1 << 16
#: the chunks of all streams of one search batch share this many bytes: a batch of many searches
#: (``search_many``, ``bifurcations_along_training``: systems x orders) draws smaller chunks per stream
#: (measured: 840 streams of order up to 40 held 6 GB of candidates with ~8 MB chunks).
SCYFI_FRESH_BYTES: int = 512 << 20

#: compile-time maximum state dimension M of the CUDA kernels (the size of their per-thread
#: local arrays: about ``4 * CUDA_MAX_DIM**2 * 8`` bytes, 32 KiB for 32); larger systems are
#: solved on the CPU.
CUDA_MAX_DIM: int = 32
#: CUDA threads per block (``PLRNN_NUMBA_CUDA_TPB``; the simulator uses a handful).
CUDA_THREADS_PER_BLOCK: int = int(os.environ.get("PLRNN_NUMBA_CUDA_TPB", 128))
#: ``backend="auto"`` uses the GPU only when a search needs at least this many flops (about
#: ``budget * M**3``; ``PLRNN_NUMBA_AUTO_CUDA_MIN_WORK``): below it launches and transfers dominate.
AUTO_CUDA_MIN_WORK: float = float(os.environ.get("PLRNN_NUMBA_AUTO_CUDA_MIN_WORK", 1e8))
