"""Command-line options shared by the sweep scripts in ``scripts/``.

Every sweep script takes the same execution options, so that a study moves
from a laptop to a cluster, or is resumed after a crash, the same way
whichever script runs it::

    python scripts/sweep_gtf_alpha.py                         # quick, all local cores
    python scripts/sweep_gtf_alpha.py --full --workers 8
    python scripts/sweep_gtf_alpha.py --full --scheduler tcp://head:8786
    python scripts/sweep_gtf_alpha.py --full --resume         # after Ctrl-C or a crash
    python scripts/sweep_gtf_alpha.py --full --retry-failed   # compute the failed points again

A script adds the options with :func:`add_sweep_arguments`, picks its preset
with :func:`preset`, its seeds with :func:`seed_list`, and runs the sweep
with :func:`run_sweep`, which passes :func:`sweep_kwargs` to
:func:`plrnn_numba.sweep.sweep` and turns the ways a sweep is stopped (a
store that already holds points, Ctrl-C, ``SIGTERM``) into one line that says
what was kept and the command that goes on, instead of a traceback.

Options
-------
``--quick`` / ``--full``
    Preset size (default quick; run times of every script: docs/run_times.md).
``--backend {processes,serial,dask}``
    Where points run (default ``processes``; ``dask`` when ``--scheduler`` is given).
``--scheduler ADDRESS``
    A running dask scheduler (``tcp://host:8786``); implies ``--backend dask``.
``--workers N``
    Worker processes (default: all cores; the size of a local dask cluster).
``--out FILE``
    The merged netCDF result.
``--store DIR``
    Finished points, one file each (default ``<out without .nc>.store``).
``--resume``
    Continue a sweep whose store holds finished points (without it such a
    store is refused, so stale results are never mixed in by accident).
``--retry-failed``
    Continue the sweep and compute its failed points again (implies ``--resume``).
``--seed N`` / ``--seeds K``
    Seeds ``N .. N+K-1`` (K defaults to the preset's).
``--connect-timeout S``, ``--no-progress``
    Seconds to wait for a dask scheduler; no progress bar.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shlex
import signal
import sys
import threading
from collections.abc import Callable, Mapping
from pathlib import Path

from .sweep._core import SWEEP_BACKENDS

__all__ = [
    "add_sweep_arguments",
    "default_store",
    "sweep_kwargs",
    "preset",
    "seed_list",
    "command_line",
    "run_sweep",
    "print_sweep_summary",
]


def _positive_int(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer; got {text!r}") from None
    if n < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer; got {n}")
    return n


def _nonnegative_int(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a non-negative integer; got {text!r}") from None
    if n < 0:
        raise argparse.ArgumentTypeError(f"expected a non-negative integer; got {n}")
    return n


def _positive_float(text: str) -> float:
    try:
        x = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number; got {text!r}") from None
    if not x > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number; got {x}")
    return x


def add_sweep_arguments(parser: argparse.ArgumentParser, *, default_out: str | Path) -> argparse.ArgumentParser:
    """Add the shared sweep options (see the module docstring) to ``parser``.

    Parameters
    ----------
    parser : argparse.ArgumentParser
        The script's parser.
    default_out : path
        Default of ``--out`` (the merged netCDF file).

    Returns
    -------
    argparse.ArgumentParser
        ``parser``, for chaining.
    """
    size = parser.add_argument_group("size")
    mode = size.add_mutually_exclusive_group()
    mode.add_argument("--quick", dest="mode", action="store_const", const="quick", help="small preset (default)")
    mode.add_argument("--full", dest="mode", action="store_const", const="full", help="the full study")
    parser.set_defaults(mode="quick")
    g = parser.add_argument_group("sweep execution")
    g.add_argument(
        "--backend",
        choices=SWEEP_BACKENDS,
        default=None,
        help="where the points run (default: processes; dask when --scheduler is given)",
    )
    g.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        default=None,
        help="address of a running dask scheduler, e.g. tcp://host:8786 (implies --backend dask)",
    )
    g.add_argument(
        "--workers",
        type=_positive_int,
        default=None,
        help="worker processes (default: all cores; for dask without --scheduler: the local cluster's size)",
    )
    g.add_argument("--out", type=Path, default=Path(default_out), help="merged netCDF result (default: %(default)s)")
    g.add_argument(
        "--store",
        type=Path,
        default=None,
        help="directory of finished points, for resuming (default: the --out path with .store instead of .nc)",
    )
    g.add_argument("--resume", action="store_true", help="continue a sweep whose store holds finished points")
    g.add_argument(
        "--retry-failed",
        action="store_true",
        help="continue the sweep and compute its failed points again (implies --resume)",
    )
    g.add_argument("--seed", type=_nonnegative_int, default=0, help="first seed (default: %(default)s)")
    g.add_argument("--seeds", type=_positive_int, default=None, help="number of seeds (default: the preset's)")
    g.add_argument(
        "--connect-timeout",
        type=_positive_float,
        default=10.0,
        metavar="SECONDS",
        help="how long to wait for the dask scheduler (default: %(default)s)",
    )
    g.add_argument("--no-progress", action="store_true", help="no progress bar")
    return parser


def default_store(out: str | Path) -> Path:
    """The store directory that goes with a result file: ``results/x.nc`` -> ``results/x.store``.

    Parameters
    ----------
    out : path
        The result file.

    Returns
    -------
    pathlib.Path
        The store directory.
    """
    out = Path(out)
    return out.with_suffix(".store") if out.suffix else out.with_name(out.name + ".store")


def sweep_kwargs(args: argparse.Namespace, parser: argparse.ArgumentParser | None = None) -> dict:
    """Keyword arguments for :func:`plrnn_numba.sweep.sweep` from the parsed options.

    Parameters
    ----------
    args : argparse.Namespace
        Parsed by a parser prepared with :func:`add_sweep_arguments`.
    parser : argparse.ArgumentParser, optional
        If given, contradictory options exit through ``parser.error`` (usage
        message, exit status 2); otherwise they raise ``ValueError``.

    Returns
    -------
    dict
        ``backend``, ``scheduler``, ``workers``, ``store``, ``out``,
        ``resume``, ``retry_failed``, ``progress`` and ``connect_timeout``.
    """
    _check_args(args)
    backend = args.backend
    if args.scheduler is not None:
        if backend not in (None, "dask"):
            msg = f"--scheduler needs --backend dask (got --backend {backend})"
            if parser is not None:
                parser.error(msg)
            raise ValueError(msg)
        backend = "dask"
    return {
        "backend": backend or "processes",
        "scheduler": args.scheduler,
        "workers": args.workers,
        "store": args.store if args.store is not None else default_store(args.out),
        "out": args.out,
        "resume": bool(args.resume or args.retry_failed),
        "retry_failed": bool(args.retry_failed),
        "progress": not args.no_progress,
        "connect_timeout": args.connect_timeout,
    }


_OPTIONS = ("mode", "backend", "scheduler", "workers", "out", "store", "resume", "retry_failed", "seed", "seeds")


def _check_args(args) -> None:
    missing = [k for k in _OPTIONS if not hasattr(args, k)]
    if missing:
        raise TypeError(
            f"args must be the options parsed by a parser prepared with add_sweep_arguments(parser, ...); "
            f"{type(args).__name__} {args!r:.80} lacks {missing}"
        )


def preset(args: argparse.Namespace, presets: Mapping[str, Mapping]) -> dict:
    """A copy of ``presets["quick"]`` or ``presets["full"]``, by ``--quick`` / ``--full``.

    Parameters
    ----------
    args : argparse.Namespace
        Parsed by a parser prepared with :func:`add_sweep_arguments`.
    presets : dict
        The script's settings under the keys ``"quick"`` and ``"full"``.

    Returns
    -------
    dict
        A copy of the chosen preset.
    """
    _check_args(args)
    if not isinstance(presets, Mapping) or args.mode not in presets:
        have = sorted(presets) if isinstance(presets, Mapping) else type(presets).__name__
        raise ValueError(f"presets must be a dict with the keys 'quick' and 'full'; no {args.mode!r} in {have}")
    return dict(presets[args.mode])


def seed_list(args: argparse.Namespace, default_n: int) -> list[int]:
    """Seeds ``--seed .. --seed + n - 1`` with ``n`` from ``--seeds`` or ``default_n``.

    Parameters
    ----------
    args : argparse.Namespace
        Parsed by a parser prepared with :func:`add_sweep_arguments`.
    default_n : int
        The number of seeds when ``--seeds`` is not given (the preset's).

    Returns
    -------
    list of int
        The seeds.
    """
    _check_args(args)
    if isinstance(default_n, bool) or not isinstance(default_n, int) or default_n < 1:
        raise ValueError(f"default_n must be a positive integer (the preset's number of seeds); got {default_n!r}")
    n = args.seeds if args.seeds is not None else default_n
    return list(range(args.seed, args.seed + n))


def command_line(script: str, argv: list[str] | None = None) -> str:
    """The command as typed (for the ``script`` attribute of a result).

    Parameters
    ----------
    script : str
        The script as typed.
    argv : list of str, optional
        Its arguments (default ``sys.argv[1:]``).

    Returns
    -------
    str
        The command line, shell-quoted.
    """
    argv = sys.argv[1:] if argv is None else argv
    return " ".join(shlex.quote(a) for a in [script, *argv])


def _script_path(script) -> str:
    """``script`` as typed from the current directory (relative when it lies below it)."""
    text = os.fspath(script)
    try:
        rel = os.path.relpath(text)
    except ValueError:  # pragma: no cover - another drive on Windows
        return text
    return text if rel.startswith("..") else rel


class _Terminated(KeyboardInterrupt):
    """SIGTERM, raised where Ctrl-C would be, so that the sweep stops its workers the same way."""


@contextlib.contextmanager
def _sigterm_as_interrupt():
    """Inside the block, ``SIGTERM`` (a batch system's time limit, ``kill``) stops the sweep like Ctrl-C."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        raise _Terminated()

    old = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)


def _stop(parser: argparse.ArgumentParser, message: str, status: int):
    print(f"{parser.prog}: {message}", file=sys.stderr, flush=True)
    raise SystemExit(status)


def run_sweep(
    fn: Callable,
    grid: Mapping,
    *,
    args: argparse.Namespace,
    parser: argparse.ArgumentParser,
    script=None,
    argv: list[str] | None = None,
    **kwargs,
):
    """Run :func:`plrnn_numba.sweep.sweep` with the script's options; stop with one line instead of a traceback.

    Parameters
    ----------
    fn : callable
        The sweep function.
    grid : dict
        The sweep grid: parameter name -> list of values.
    args : argparse.Namespace
        The parsed options (:func:`add_sweep_arguments`).
    parser : argparse.ArgumentParser
        Their parser.
    script : path, optional
        The script's file (``__file__``), for the commands in the messages
        (default: ``parser.prog``).
    argv : list of str, optional
        The script's arguments (default ``sys.argv[1:]``).
    **kwargs
        Further arguments of ``sweep`` (``seeds``, ``fixed``, ``name``, ...).

    Returns
    -------
    xarray.Dataset
        What ``sweep`` returns.

    Raises
    ------
    SystemExit
        After printing one line to stderr that says what the store holds and
        the command that goes on: status 2 when the store already holds
        points and neither ``--resume`` nor ``--retry-failed`` was given,
        when it belongs to a different sweep, or when another sweep is
        using it; 130 after Ctrl-C; 143 after ``SIGTERM`` (which, while the
        sweep runs, stops it like Ctrl-C: the workers are ended and every
        finished point is kept).
    """
    from .sweep import StoreExistsError, StoreLockedError, StoreMismatchError, SweepInterrupted, sweep

    if not isinstance(parser, argparse.ArgumentParser):
        raise TypeError(f"parser must be the argparse.ArgumentParser that parsed args; got {type(parser).__name__}")

    argv = list(sys.argv[1:] if argv is None else argv)
    prog = _script_path(script) if script is not None else parser.prog
    again = "python " + command_line(prog, argv)
    resume = (
        again
        if ("--resume" in argv or "--retry-failed" in argv)
        else "python " + command_line(prog, [*argv, "--resume"])
    )
    options = {**sweep_kwargs(args, parser), **kwargs}
    store = options.get("store")
    try:
        with _sigterm_as_interrupt():
            return sweep(fn, grid, **options)
    except StoreExistsError as exc:
        _stop(
            parser,
            f"error: the store {exc.path} already holds {exc.n_points} finished point(s) of this sweep; continue it "
            f"with `{resume}`, or start fresh with `rm -r {shlex.quote(str(exc.path))}` and then `{again}`",
            2,
        )
    except StoreLockedError as exc:
        _stop(parser, f"error: {exc}", 2)
    except StoreMismatchError as exc:
        # the lines after the first show what differs: worth more than one line here
        _stop(parser, f"error: {exc}\nGive another --store (or --out) for the new sweep, or `rm -r {exc.path}`.", 2)
    except KeyboardInterrupt as exc:
        terminated = isinstance(exc, _Terminated) or isinstance(exc.__context__, _Terminated)
        why, status = (
            ("stopped by SIGTERM", 128 + signal.SIGTERM) if terminated else ("interrupted", 128 + signal.SIGINT)
        )
        if isinstance(exc, SweepInterrupted):
            if exc.store is not None:
                what = f"{exc.n_done} of {exc.n_points} points are stored in {exc.store}"
            else:
                what = f"{exc.n_done} of {exc.n_points} points were finished but not kept (no store)"
        else:  # stopped before or after the points ran (imports, start-up, writing the result)
            what = f"finished points are kept in {store}" if store is not None else "nothing was kept"
        _stop(parser, f"{why}: {what}; resume with `{resume}`", int(status))


def print_sweep_summary(ds, args: argparse.Namespace, parser: argparse.ArgumentParser, seconds: float,
                        *written) -> None:
    """The two closing lines of a sweep script: points computed and failed, time and backend; the files written.

    Parameters
    ----------
    ds : xarray.Dataset
        The sweep's result.
    args : argparse.Namespace
        Parsed by a parser prepared with :func:`add_sweep_arguments`.
    parser : argparse.ArgumentParser
        Their parser.
    seconds : float
        The sweep's wall-clock time.
    *written : path
        Further files the script wrote (after ``--out``).
    """
    failed = int((ds["error"] != "").sum())
    print(f"{ds['error'].size} points ({ds.attrs['n_computed']} computed, {failed} failed) in {seconds:.1f} s with "
          f"backend {ds.attrs['backend']} ({ds.attrs['workers']} workers)")
    files = ", ".join(str(f) for f in (args.out, *written))
    print(f"wrote {files} (store: {sweep_kwargs(args, parser)['store']})")
