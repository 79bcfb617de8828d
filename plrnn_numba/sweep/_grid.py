"""The grid of a sweep: validated parameter lists, seeds, points and their stable keys.

A point is one call of the sweep function.  Its *key* is a hash of the
point's parameter values (canonical JSON), so it does not depend on the
order in which points are computed, on the backend or on the worker count;
the store files are named by it, and resuming matches stored results to
points through it.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import keyword
import math
import numbers
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

#: names a grid parameter, fixed argument or output may not take.
RESERVED_NAMES = frozenset({"seed", "error", "wall_time"})

#: how the ``seed`` argument given to the function is derived from the seed coordinate.
SEED_MODES = ("value", "per_point")

KEY_VERSION = 1


@dataclass(frozen=True)
class Point:
    """One call of the sweep function.

    Parameters
    ----------
    index : tuple of int
        Position in the result (grid dimensions in order, then ``seed``).
    params : dict
        Grid parameter values (original Python values), plus ``seed`` (the
        seed coordinate) when the sweep has seeds.
    key : str
        Stable hash of ``params`` (names the point's file in the store).
    seed : int or None
        The value passed to the function as ``seed=`` (equal to the seed
        coordinate with ``seed_mode="value"``).
    """

    index: tuple[int, ...]
    params: dict
    key: str
    seed: int | None

    def kwargs(self) -> dict:
        """Keyword arguments for the function (grid values and ``seed``).

        Returns
        -------
        dict
            The grid values by name, and ``seed`` when the sweep has seeds.
        """
        kw = {k: v for k, v in self.params.items() if k != "seed"}
        if self.seed is not None:
            kw["seed"] = self.seed
        return kw

    def label(self) -> str:
        """Human-readable ``name=value`` list, for messages.

        Returns
        -------
        str
            ``"alpha=0.5, seed=3"``, say.
        """
        return ", ".join(f"{k}={v!r}" for k, v in self.params.items())


def canonical_value(value: Any, where: str) -> bool | int | float | str:
    """A grid value as a plain Python bool, int, float or str.

    Raises
    ------
    TypeError
        For anything else (lists, arrays, None, objects): a grid value
        becomes a coordinate, which netCDF stores as a number or a string.
    """
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return float(value)
    if isinstance(value, (str, np.str_)):
        return str(value)
    raise TypeError(
        f"{where} must be a number, a string or a boolean (it becomes a coordinate of the result); "
        f"got {type(value).__name__} {value!r:.60}. Put structured settings in fixed= or encode them as strings."
    )


def point_key(params: Mapping[str, Any]) -> str:
    """Stable hash (20 hex digits) of a point's canonical parameter values.

    ``params`` maps the grid parameter names (and ``seed``) to the point's
    values, as in ``{"alpha": 0.5, "seed": 3}``: the name of the point's
    file in a store.

    Parameters
    ----------
    params : dict
        The point's parameter values (numbers, strings or booleans).

    Returns
    -------
    str
        20 hexadecimal digits.
    """
    if not isinstance(params, Mapping):
        raise TypeError(
            f"point_key: params must be a dict of the point's parameter values, e.g. {{'alpha': 0.5, 'seed': 3}}; "
            f"got {type(params).__name__}"
        )
    params = {str(k): canonical_value(v, f"point_key: params[{k!r}]") for k, v in params.items()}
    text = json.dumps({"v": KEY_VERSION, "p": params}, sort_keys=True, allow_nan=True)
    return hashlib.sha1(text.encode()).hexdigest()[:20]


def derived_seed(seed: int, params: Mapping[str, Any]) -> int:
    """An independent seed for one point (``seed_mode="per_point"``).

    ``numpy.random.SeedSequence`` over the seed and a hash of the point's
    grid values: different for every point, the same on every run and
    backend.

    Parameters
    ----------
    seed : int
        The seed coordinate (>= 0).
    params : dict
        The point's grid values (a ``seed`` entry is ignored).

    Returns
    -------
    int
        The point's seed (32 bits).
    """
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise ValueError(f"derived_seed: seed must be a non-negative integer; got {seed!r}")
    if not isinstance(params, Mapping):
        raise TypeError(f"derived_seed: params must be a dict of the point's grid values; got {type(params).__name__}")
    rest = {k: v for k, v in params.items() if k != "seed"}
    word = int(point_key(rest)[:16], 16)
    return int(np.random.SeedSequence([int(seed), word]).generate_state(1, np.uint32)[0])


@dataclass(frozen=True)
class Grid:
    """Validated sweep grid (made by :func:`make_grid`).

    Parameters
    ----------
    names : tuple of str
        Grid parameter names, in order (the result's first dimensions).
    values : dict
        Name -> list of canonical values.
    seeds : list of int or None
        Seed coordinate values (the last dimension), if any.
    seed_mode : str
        ``"value"`` or ``"per_point"``.
    """

    names: tuple[str, ...]
    values: dict
    seeds: list[int] | None
    seed_mode: str

    @property
    def dims(self) -> tuple[str, ...]:
        """Result dimensions: the grid names, then ``seed`` if seeds are used."""
        return self.names + (("seed",) if self.seeds is not None else ())

    @property
    def shape(self) -> tuple[int, ...]:
        """Result shape: the number of values of each dimension of :attr:`dims`."""
        sizes = [len(self.values[n]) for n in self.names]
        if self.seeds is not None:
            sizes.append(len(self.seeds))
        return tuple(sizes)

    @property
    def size(self) -> int:
        """Number of points."""
        return math.prod(self.shape)

    def coords(self) -> dict[str, np.ndarray]:
        """Coordinate arrays (numbers as int64/float64, strings as str, booleans as bool).

        Returns
        -------
        dict of str to array
            One array per dimension of :attr:`dims`.
        """
        out = {n: np.asarray(self.values[n]) for n in self.names}
        if self.seeds is not None:
            out["seed"] = np.asarray(self.seeds, dtype=np.int64)
        return out

    def points(self) -> list[Point]:
        """All points in C order over :attr:`dims` (the seed varies fastest).

        Returns
        -------
        list of Point
            :attr:`size` points.
        """
        lists = [self.values[n] for n in self.names]
        if self.seeds is not None:
            lists.append(self.seeds)
        out = []
        for index in np.ndindex(*self.shape):
            params = {d: lists[i][j] for i, (d, j) in enumerate(zip(self.dims, index))}
            seed = None
            if self.seeds is not None:
                s = params["seed"]
                seed = s if self.seed_mode == "value" else derived_seed(s, params)
            out.append(Point(tuple(int(i) for i in index), params, point_key(params), seed))
        return out

    def describe(self) -> dict:
        """JSON-compatible description (stored in the manifest and the attributes).

        Returns
        -------
        dict
            ``grid``, ``seeds`` and ``seed_mode``.
        """
        return {
            "grid": {n: list(self.values[n]) for n in self.names},
            "seeds": self.seeds,
            "seed_mode": self.seed_mode,
        }


def make_grid(grid, seeds, seed_mode: str = "value") -> Grid:
    """Validate ``grid`` and ``seeds`` (see :func:`~plrnn_numba.sweep.sweep`).

    Parameters
    ----------
    grid : dict
        Parameter name -> list of values (numbers, strings or booleans).
    seeds : int, list of int or None
        The seed dimension: ``n`` means seeds ``0..n-1``; None: no seed dimension.
    seed_mode : {"value", "per_point"}
        How the seed passed to the function is derived from the seed coordinate.

    Returns
    -------
    Grid
        The validated grid.
    """
    if not isinstance(grid, Mapping):
        raise TypeError(
            f"grid must be a dict mapping parameter names to lists of values, e.g. {{'alpha': [0.1, 0.2]}}; "
            f"got {type(grid).__name__}"
        )
    if seed_mode not in SEED_MODES:
        raise ValueError(f"seed_mode must be one of {SEED_MODES}; got {seed_mode!r}")
    seed_list = _seed_list(seeds)
    if not grid and seed_list is None:
        raise ValueError(
            "grid is empty and no seeds were given: nothing to sweep over. "
            "Give at least one parameter with a list of values, e.g. grid={'alpha': [0.1, 0.2]}, or seeds=n"
        )
    names, values = [], {}
    for name, vals in grid.items():
        if not isinstance(name, str) or not name.isidentifier() or keyword.iskeyword(name):
            raise ValueError(f"grid parameter names must be valid Python identifiers; got {name!r}")
        if name in RESERVED_NAMES:
            hint = " (use seeds= for a seed dimension)" if name == "seed" else ""
            raise ValueError(f"grid parameter name {name!r} is reserved{hint}")
        if isinstance(vals, (str, bytes, Mapping)) or not isinstance(vals, (Sequence, np.ndarray, range)):
            raise TypeError(
                f"grid[{name!r}] must be a list of values; got {type(vals).__name__} {vals!r:.60} "
                "(wrap a single value in a list, or pass it in fixed=)"
            )
        if isinstance(vals, np.ndarray) and vals.ndim != 1:
            raise ValueError(f"grid[{name!r}] must be one-dimensional; got an array of shape {vals.shape}")
        vals = [canonical_value(v, f"grid[{name!r}][{i}]") for i, v in enumerate(vals)]
        if not vals:
            raise ValueError(f"grid[{name!r}] is empty: give at least one value")
        kinds = {"str" if isinstance(v, str) else "bool" if isinstance(v, bool) else "number" for v in vals}
        if len(kinds) > 1:
            raise TypeError(f"grid[{name!r}] mixes {sorted(kinds)} values; a coordinate needs one type")
        seen = set()
        for v in vals:
            if isinstance(v, float) and math.isnan(v):
                raise ValueError(f"grid[{name!r}] contains NaN; coordinates must be comparable values")
            if v in seen:
                raise ValueError(f"grid[{name!r}] contains {v!r} twice; coordinate values must be unique")
            seen.add(v)
        names.append(name)
        values[name] = vals
    return Grid(tuple(names), values, seed_list, seed_mode)


def _seed_list(seeds) -> list[int] | None:
    if seeds is None:
        return None
    if isinstance(seeds, (bool, np.bool_)):
        raise TypeError("seeds must be an int (number of seeds) or a list of ints; got a bool")
    if isinstance(seeds, numbers.Integral):
        if seeds < 1:
            raise ValueError(f"seeds must be >= 1 (the number of seeds 0..n-1); got {seeds}")
        return list(range(int(seeds)))
    if isinstance(seeds, (str, bytes)) or not isinstance(seeds, (Sequence, np.ndarray, range)):
        raise TypeError(f"seeds must be an int (number of seeds) or a list of ints; got {type(seeds).__name__}")
    out = []
    for s in seeds:
        if isinstance(s, (bool, np.bool_)) or not isinstance(s, numbers.Integral) or s < 0:
            raise ValueError(f"seeds must be non-negative integers; got {s!r}")
        out.append(int(s))
    if not out:
        raise ValueError("seeds is an empty list; give at least one seed (or seeds=None)")
    if len(set(out)) != len(out):
        raise ValueError(f"seeds contains duplicates: {out}")
    return out


def check_fixed(fixed, grid: Grid) -> dict:
    """Validate the fixed keyword arguments (names must not clash with the grid)."""
    if fixed is None:
        return {}
    if not isinstance(fixed, Mapping):
        raise TypeError(f"fixed must be a dict of keyword arguments; got {type(fixed).__name__}")
    out = {}
    for k, v in fixed.items():
        if not isinstance(k, str) or not k.isidentifier():
            raise ValueError(f"fixed argument names must be identifiers; got {k!r}")
        if k in grid.names:
            raise ValueError(f"{k!r} is both a grid parameter and a fixed argument; keep it in one place")
        if k == "seed" and grid.seeds is not None:
            raise ValueError("'seed' is passed by the sweep (seeds=...); remove it from fixed")
        out[k] = v
    return out


def check_signature(fn: Callable, grid: Grid, fixed: dict) -> None:
    """TypeError, before anything runs, when ``fn`` cannot take the sweep's arguments."""
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):  # builtins, some compiled callables: nothing to check
        return
    params = sig.parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return
    accepted = {n for n, p in params.items() if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    given = {n: "grid" for n in grid.names}
    given.update({n: "fixed" for n in fixed})
    if grid.seeds is not None:
        given["seed"] = "seeds"
    unknown = [f"{n!r} ({src})" for n, src in given.items() if n not in accepted]
    name = getattr(fn, "__qualname__", repr(fn))
    if unknown:
        raise TypeError(
            f"{name}{sig} does not accept the argument(s) {', '.join(unknown)} that the sweep passes; "
            "add them to its parameters (or **kwargs)"
        )
    missing = [
        n
        for n, p in params.items()
        if p.default is inspect.Parameter.empty
        and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
        and n not in given
    ]
    if missing:
        raise TypeError(
            f"{name}{sig} requires {', '.join(map(repr, missing))}, which neither the grid, fixed= nor seeds= provide"
        )
