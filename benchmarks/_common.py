"""Shared helpers for the benchmark scripts in this folder.

Import this module *first* in a benchmark script and call
:func:`limit_threads` before numpy, numba or torch are imported: BLAS
libraries read their thread count from the environment once, when they load.
Nothing here imports numpy (or anything heavy) at module level for that
reason.

Helpers
-------
* :func:`limit_threads` — one thread for BLAS / OpenMP / numba / XLA (environment).
* :func:`xla_single_thread` — XLA's CPU flags for one thread (``XLA_FLAGS``, before jax is imported).
* :func:`cpu_from_argv`, :func:`pin_to_cpu`, :func:`add_cpu_argument`, :func:`pinned_cpu_text` — pin the
  process (every thread) to one CPU (``--cpu N``).
* :func:`repo_root`, :func:`add_repo_to_path` — run the scripts from a checkout.
* :func:`time_call` — warm-up, then the median of repeated ``perf_counter`` runs.
* :func:`median_per_repetition` — seconds per repetition of a compiled loop ``run(n)``.
* :func:`matmul_gflops` — single-call GFLOP/s of NumPy's ``a @ b`` (reference).
* :func:`machine_info`, :func:`versions`, :func:`command_line` — provenance.
* :func:`markdown_table`, :func:`fmt` — markdown output.
* :class:`Report` — collect lines, print them as they come and write them to a file.
* :func:`single_thread_torch_numba` — one thread for torch, numba and the package.
* :func:`timed_first_call`, :func:`startup_process`, :func:`startup_times` — first-call,
  compile and cached start-up times (numba's cache in a fresh directory).
"""

from __future__ import annotations

import argparse
import os
import platform
import shlex
import statistics
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

THREAD_ENV_VARS = (
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "OMP_NUM_THREADS",
    "BLIS_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
    "NUMEXPR_NUM_THREADS",
)


def limit_threads(n: int = 1, *, numba_env: bool = False) -> None:
    """Set the BLAS / OpenMP thread-count variables to ``n``.

    Must run before numpy, scipy, numba or torch are imported (the libraries
    read them when they load).  ``numba_env=True`` also sets
    ``NUMBA_NUM_THREADS`` (the size of numba's thread pool); by default the
    pool is left alone and the script calls ``numba.set_num_threads`` instead.
    """
    heavy = [m for m in ("numpy", "torch", "numba", "scipy") if m in sys.modules]
    if heavy:
        print(f"warning: limit_threads() called after importing {heavy}; "
              "their BLAS may already use more threads", file=sys.stderr)
    for var in THREAD_ENV_VARS:
        os.environ[var] = str(n)
    if numba_env:
        os.environ["NUMBA_NUM_THREADS"] = str(n)
    if n == 1:
        xla_single_thread()


#: XLA's CPU flags for one thread (Eigen's thread pool off; one intra-op thread)
XLA_SINGLE_THREAD_FLAGS = ("--xla_cpu_multi_thread_eigen=false", "intra_op_parallelism_threads=1")


def xla_single_thread() -> None:
    """Add :data:`XLA_SINGLE_THREAD_FLAGS` to ``XLA_FLAGS`` (replacing other values of the same flags).

    XLA reads ``XLA_FLAGS`` when jax creates its CPU client: call this before
    jax is imported (:func:`limit_threads` does).  Harmless without jax.
    """
    if "jax" in sys.modules:
        print("warning: xla_single_thread() called after importing jax; XLA may already use more threads",
              file=sys.stderr)
    keys = {f.lstrip("-").split("=", 1)[0] for f in XLA_SINGLE_THREAD_FLAGS}
    flags = [f for f in os.environ.get("XLA_FLAGS", "").split() if f.lstrip("-").split("=", 1)[0] not in keys]
    os.environ["XLA_FLAGS"] = " ".join(flags + list(XLA_SINGLE_THREAD_FLAGS))


# ------------------------------------------------------------------------- CPU pinning
PINNED_CPU: int | None = None


def add_cpu_argument(ap: argparse.ArgumentParser) -> None:
    """The ``--cpu N`` option (read early by :func:`cpu_from_argv`; declared here for ``--help``)."""
    ap.add_argument("--cpu", type=int, metavar="N", default=None,
                    help="pin the process to CPU N (default: the first CPU of the current affinity set; "
                         "-1: no pinning)")


def cpu_from_argv(argv: Sequence[str] | None = None) -> int | None:
    """The CPU to pin to, from ``--cpu N`` in ``argv`` (default ``sys.argv[1:]``), before argparse runs.

    Default: the first CPU of the process's current affinity set; ``--cpu -1``: ``None`` (no pinning).
    """
    p = argparse.ArgumentParser(add_help=False)
    add_cpu_argument(p)
    ns, _ = p.parse_known_args(sys.argv[1:] if argv is None else argv)
    if ns.cpu is not None:
        return None if ns.cpu < 0 else ns.cpu
    try:
        return min(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return None


def pin_to_cpu(cpu: int | None) -> int | None:
    """Pin every thread of this process (and the threads and processes it starts later) to ``cpu``.

    ``os.sched_setaffinity`` on Linux acts on one thread: each task in
    ``/proc/self/task`` is pinned, so threads that imported libraries already
    started are pinned too.  Call it early (before numpy, torch, jax start
    thread pools).  Returns the CPU (``None``: not pinned).
    """
    global PINNED_CPU
    if cpu is None or not hasattr(os, "sched_setaffinity"):
        return None
    try:
        tids = [int(t) for t in os.listdir("/proc/self/task")]
    except OSError:
        tids = [0]
    for tid in tids:
        try:
            os.sched_setaffinity(tid, {cpu})
        except OSError:  # the thread ended meanwhile
            pass
    os.sched_setaffinity(0, {cpu})  # the calling thread at least (raises for a CPU not available)
    PINNED_CPU = cpu
    return cpu


def pinned_cpu_text() -> str:
    """For the report header: the CPU this process is pinned to."""
    if PINNED_CPU is None:
        return "not pinned (`--cpu -1` or no `os.sched_setaffinity`)"
    return f"CPU {PINNED_CPU} (every thread, `os.sched_setaffinity`; `--cpu N` chooses)"


def repo_root() -> Path:
    """The checkout that holds this ``benchmarks/`` folder."""
    return Path(__file__).resolve().parent.parent


def add_repo_to_path() -> Path:
    """Make the package in the checkout importable (no install needed)."""
    root = repo_root()
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    return root


# --------------------------------------------------------------------------- timing
@dataclass
class Timing:
    """Result of :func:`time_call` (seconds)."""

    times: list[float] = field(default_factory=list)
    cpu_times: list[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.times)

    @property
    def cpu_median(self) -> float:
        """Median CPU time of the process per run (less sensitive to other jobs
        competing for the cores than the wall time)."""
        return statistics.median(self.cpu_times)

    @property
    def best(self) -> float:
        return min(self.times)

    @property
    def runs(self) -> int:
        return len(self.times)

    @property
    def spread(self) -> float:
        """Relative interquartile range (a noise indicator)."""
        if len(self.times) < 4:
            return (max(self.times) - min(self.times)) / self.median
        q = statistics.quantiles(self.times, n=4)
        return (q[2] - q[0]) / self.median


def time_call(
    fn: Callable[[], object],
    *,
    min_time: float = 1.0,
    min_runs: int = 7,
    warmup: int = 2,
    max_runs: int = 10_000,
) -> Timing:
    """Time ``fn()``: ``warmup`` untimed calls, then repeat until both
    ``min_time`` seconds have been spent and ``min_runs`` runs were made.

    Each run is timed on its own with :func:`time.perf_counter` (and the
    process CPU time with :func:`time.process_time`); use
    :attr:`Timing.median` (robust to a few runs disturbed by other jobs).
    """
    for _ in range(warmup):
        fn()
    out = Timing()
    start = time.perf_counter()
    while True:
        c0 = time.process_time()
        t0 = time.perf_counter()
        fn()
        t1 = time.perf_counter()
        out.cpu_times.append(time.process_time() - c0)
        out.times.append(t1 - t0)
        if (out.runs >= min_runs and time.perf_counter() - start >= min_time) or out.runs >= max_runs:
            return out


def median_per_repetition(run: Callable[[int], object], *, min_time: float = 0.05, runs: int = 7) -> float:
    """Seconds per repetition of ``run(n)``, a compiled loop of ``n`` repetitions.

    After one warm-up call, ``n`` doubles from 1 until one call takes ``min_time``
    seconds; then the median of ``runs`` calls, divided by ``n`` (a Python call per
    repetition would measure the call, not the work).
    """
    run(1)
    n = 1
    while True:
        t0 = time.perf_counter()
        run(n)
        if time.perf_counter() - t0 > min_time:
            break
        n *= 2
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        run(n)
        times.append((time.perf_counter() - t0) / n)
    return statistics.median(times)


def time_interleaved(
    fns: Sequence[Callable[[], object]],
    *,
    rounds: int = 3,
    min_time: float = 1.0,
    min_runs: int = 7,
    warmup: int = 2,
) -> list[Timing]:
    """Time several functions in alternating blocks and pool the runs.

    ``rounds`` blocks per function, each of at least ``min_time / rounds``
    seconds and ``ceil(min_runs / rounds)`` runs, in the order f0 f1 .. f0 f1 ..:
    a burst of activity from another job then disturbs every function a
    little instead of one function a lot.  Returns one pooled :class:`Timing`
    per function (its median is the median over all runs).
    """
    rounds = max(int(rounds), 1)
    per_runs = -(-min_runs // rounds)
    out = [Timing() for _ in fns]
    for r in range(rounds):
        for i, fn in enumerate(fns):
            t = time_call(fn, min_time=min_time / rounds, min_runs=per_runs, warmup=warmup if r == 0 else 1)
            out[i].times.extend(t.times)
            out[i].cpu_times.extend(t.cpu_times)
    return out


def matmul_gflops(n: int, *, min_time: float = 1.0, min_runs: int = 7, seed: int = 0) -> tuple[float, Timing]:
    """GFLOP/s of NumPy's float64 ``a @ b`` for square ``n x n`` matrices (2 n^3 flops).

    With :func:`limit_threads` called before numpy was imported, this is the
    single-thread BLAS rate: a practical peak for the machine.
    """
    import numpy as np

    rng = np.random.default_rng(seed)
    a = rng.standard_normal((n, n))
    b = rng.standard_normal((n, n))
    c = np.empty((n, n))
    t = time_call(lambda: np.matmul(a, b, out=c), min_time=min_time, min_runs=min_runs)
    return 2.0 * n**3 / t.median / 1e9, t


# ----------------------------------------------------------------------- provenance
def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_info() -> dict[str, str]:
    """CPU model, core counts, OS and load average."""
    info = {"cpu": cpu_model(), "logical cores": str(os.cpu_count())}
    try:
        info["cores usable by this process"] = str(len(os.sched_getaffinity(0)))
    except AttributeError:
        pass
    try:
        with open("/proc/meminfo") as f:
            kb = int(f.readline().split()[1])
        info["memory"] = f"{kb / 2**20:.1f} GiB"
    except (OSError, ValueError, IndexError):
        pass
    info["os"] = f"{platform.system()} {platform.release()} ({platform.machine()})"
    info["load average (1, 5, 15 min)"] = load_average()
    return info


def load_average() -> str:
    try:
        return ", ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "n/a"


def versions(modules: Iterable[str] = ("numpy", "numba", "torch")) -> dict[str, str]:
    """Python and package versions (only for modules that import)."""
    out = {"python": platform.python_version()}
    for name in modules:
        try:
            mod = __import__(name)
            out[name] = str(getattr(mod, "__version__", "?"))
        except Exception as exc:  # pragma: no cover - report, don't fail
            out[name] = f"not available ({type(exc).__name__})"
    return out


def blas_info() -> str:
    """The BLAS numpy was built against (name and version), and the CPU kernels that numba's products run
    (``OPENBLAS_CORETYPE`` forces them on some machines), best effort."""
    try:
        import numpy as np

        cfg = np.show_config(mode="dicts")
        blas = cfg["Build Dependencies"]["blas"]
        text = f"{blas.get('name', '?')} {blas.get('version', '')}".strip()
    except Exception:
        text = "unknown"
    try:
        from plrnn_numba.config import blas_kernels

        k = blas_kernels()
        forced = f"forced by OPENBLAS_CORETYPE={k['forced_by']}" if k["forced_by"] else "chosen for this CPU"
        text += f"; kernels {k['architecture']} ({forced}; CPU AVX-512: {'yes' if k['cpu_avx512'] else 'no'})"
    except Exception:
        pass
    return text


def git_revision(path: str | os.PathLike | None = None) -> str:
    """``git describe --always --dirty`` of the checkout (``"unknown"`` without git)."""
    import subprocess

    try:
        out = subprocess.run(["git", "describe", "--always", "--dirty"], cwd=path or repo_root(),
                             capture_output=True, text=True, timeout=10)
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def command_line() -> str:
    """The command that ran this script, shell-quoted."""
    return " ".join(shlex.quote(a) for a in [os.path.basename(sys.executable)] + sys.argv)


# ----------------------------------------------------------------------------- output
def fmt(x: float, digits: int = 3) -> str:
    """A number with ``digits`` significant digits, no exponent for usual sizes."""
    if x != x:  # NaN
        return "n/a"
    if x == 0:
        return "0"
    ax = abs(x)
    if ax >= 10 ** digits:
        return f"{x:,.0f}"
    if ax < 1e-3:
        return f"{x:.{digits - 1}e}"
    from math import floor, log10

    dec = max(digits - 1 - int(floor(log10(ax))), 0)
    return f"{x:.{dec}f}"


def markdown_table(headers: Sequence[str], rows: Iterable[Sequence[object]], align: str | None = None) -> str:
    """A GitHub-flavoured markdown table; ``align`` is one of l/r/c per column."""
    rows = [[str(c) for c in r] for r in rows]
    ncol = len(headers)
    align = align or "l" + "r" * (ncol - 1)
    widths = [max([len(headers[i])] + [len(r[i]) for r in rows]) for i in range(ncol)]

    def line(cells):
        parts = []
        for i, c in enumerate(cells):
            parts.append(c.rjust(widths[i]) if align[i] == "r" else c.ljust(widths[i]))
        return "| " + " | ".join(parts) + " |"

    seps = []
    for i in range(ncol):
        w = max(widths[i], 3)
        if align[i] == "r":
            seps.append("-" * (w - 1) + ":")
        elif align[i] == "c":
            seps.append(":" + "-" * (w - 2) + ":")
        else:
            seps.append("-" * w)
    return "\n".join([line(headers), "| " + " | ".join(seps) + " |"] + [line(r) for r in rows])


def key_value_list(d: dict[str, str]) -> str:
    """A markdown bullet list ``- **key**: value``."""
    return "\n".join(f"- **{k}**: {v}" for k, v in d.items())


class Report:
    """Markdown lines, printed as they are added and optionally written to a file."""

    def __init__(self, echo: bool = True):
        self.lines: list[str] = []
        self.echo = echo

    def add(self, text: str = "") -> None:
        self.lines.append(text)
        if self.echo:
            print(text, flush=True)

    def text(self) -> str:
        return "\n".join(self.lines).rstrip() + "\n"

    def write(self, path: str | os.PathLike) -> None:
        p = Path(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(self.text())


# ------------------------------------------------------------------------ threads and start-up
def single_thread_torch_numba() -> None:
    """One thread for torch (intra- and inter-op), numba and plrnn_numba's engines (imported here: call it after
    :func:`limit_threads` and the imports of the script)."""
    import numba
    import torch

    from plrnn_numba import config as pn_config

    torch.set_num_threads(1)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:  # already set, or parallel work already started
        pass
    numba.set_num_threads(1)
    pn_config.set_num_threads(1)


def timed_first_call(fn: Callable[[], object]) -> tuple[float, object]:
    """``(seconds, result)`` of one call of ``fn``."""
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def startup_process(code: str, args: Sequence[str], cache_dir: str, timeout: float = 900) -> dict:
    """Run ``python -c code *args`` in a new process with numba's cache in ``cache_dir``.

    ``code`` prints a JSON dict of timings as its last line; it is returned
    with ``"process"``, the wall time of the whole process, added.
    """
    import json
    import subprocess

    env = dict(os.environ, NUMBA_CACHE_DIR=cache_dir)
    env.pop("PLRNN_NUMBA_CACHE", None)  # caching on (the package default)
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", code, *args], env=env, capture_output=True, text=True,
                          timeout=timeout)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"start-up subprocess failed:\n{proc.stderr}")
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    out["process"] = wall
    return out


def startup_times(code: str, args: Sequence[str], n_cached: int) -> tuple[dict, list[dict], int]:
    """Cold start-up (a fresh, empty numba cache: everything compiles), then ``n_cached`` cached ones.

    Returns ``(cold, cached, n_files)``: the timings of :func:`startup_process`,
    and the number of files the cold run left in the cache.
    """
    import shutil
    import tempfile

    cache_dir = tempfile.mkdtemp(prefix="plrnn_numba_cache_")
    try:
        cold = startup_process(code, args, cache_dir)
        n_files = sum(len(f) for _, _, f in os.walk(cache_dir))
        cached = [startup_process(code, args, cache_dir) for _ in range(n_cached)]
    finally:
        shutil.rmtree(cache_dir, ignore_errors=True)
    return cold, cached, n_files


def median_of(runs: Sequence[dict]) -> dict:
    """Key by key median of dicts of numbers with the same keys."""
    return {k: float(statistics.median(r[k] for r in runs)) for k in runs[0]}


def finish_report(rep, t0: float, out: str | None) -> int:
    """Close a report: the benchmark's wall time since ``t0`` (``perf_counter``), then write it to ``out``."""
    rep.add(f"Benchmark wall time: {fmt(time.perf_counter() - t0)} s.")
    if out:
        rep.write(out)
    return 0
