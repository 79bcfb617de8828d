"""Command-line options shared by the sweep scripts in ``scripts/``.

Every sweep script takes the same execution options, so that a study moves
from a laptop to a cluster, or is resumed after a crash, the same way
whichever script runs it::

    python scripts/sweep_gtf_alpha.py                         # quick, all local cores
    python scripts/sweep_gtf_alpha.py --full --workers 8
    python scripts/sweep_gtf_alpha.py --full --scheduler tcp://head:8786
    python scripts/sweep_gtf_alpha.py --full --resume         # after Ctrl-C or a crash

A script adds the options with :func:`add_sweep_arguments`, picks its preset
with :func:`preset`, its seeds with :func:`seed_list`, and passes
:func:`sweep_kwargs` to :func:`plrnn_numba.sweep.sweep`.

Options
-------
``--quick`` / ``--full``
    Preset size (default quick: a minute or two on a laptop).
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
``--seed N`` / ``--seeds K``
    Seeds ``N .. N+K-1`` (K defaults to the preset's).
``--connect-timeout S``, ``--no-progress``
"""

from __future__ import annotations

import argparse
import shlex
import sys
from collections.abc import Mapping
from pathlib import Path

from .sweep._core import SWEEP_BACKENDS


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
    """The store directory that goes with a result file: ``results/x.nc`` -> ``results/x.store``."""
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
        ``resume``, ``progress`` and ``connect_timeout``.
    """
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
        "resume": bool(args.resume),
        "progress": not args.no_progress,
        "connect_timeout": args.connect_timeout,
    }


def preset(args: argparse.Namespace, presets: Mapping[str, Mapping]) -> dict:
    """A copy of ``presets["quick"]`` or ``presets["full"]``, by ``--quick`` / ``--full``."""
    return dict(presets[args.mode])


def seed_list(args: argparse.Namespace, default_n: int) -> list[int]:
    """Seeds ``--seed .. --seed + n - 1`` with ``n`` from ``--seeds`` or ``default_n``."""
    n = args.seeds if args.seeds is not None else default_n
    return list(range(args.seed, args.seed + n))


def command_line(script: str, argv: list[str] | None = None) -> str:
    """The command as typed (for the ``script`` attribute of a result)."""
    argv = sys.argv[1:] if argv is None else argv
    return " ".join(shlex.quote(a) for a in [script, *argv])
