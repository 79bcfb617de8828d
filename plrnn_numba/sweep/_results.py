"""What a sweep function returns, checked and normalised, and the merge into one Dataset.

A point's outputs are normalised in the worker, right after the call, into
plain picklable pieces (``dims``, a NumPy ``data`` array, netCDF-safe
``attrs`` and 1-D ``coords``).  Anything that cannot become a netCDF variable
(a function, an arbitrary object, complex numbers, ragged lists) is refused
there, with the output's name and the point in the message.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import xarray as xr

from ..io import _sanitize_attrs
from ._grid import RESERVED_NAMES, Grid, Point


class SweepOutputError(TypeError):
    """The sweep function returned something a Dataset cannot hold."""


class InconsistentOutputError(ValueError):
    """Two points returned outputs of different names, shapes, dims or coordinates."""


def _short(value) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _as_data(value, name: str) -> np.ndarray:
    if callable(value) and not isinstance(value, (np.ndarray, np.generic)):
        raise SweepOutputError(
            f"output {name!r} is a callable ({_short(value)}); return numbers, strings, numpy arrays or "
            "xarray.DataArray values"
        )
    if value is None or isinstance(value, (Mapping, set, bytes)):
        raise SweepOutputError(
            f"output {name!r} is {type(value).__name__} {_short(value)}; return numbers, strings, numpy arrays "
            "or xarray.DataArray values (store dicts as separate outputs or as a JSON string)"
        )
    try:
        data = np.asarray(value)
    except Exception as exc:  # ragged lists and the like
        raise SweepOutputError(f"output {name!r} could not be converted to an array: {exc}") from None
    kind = data.dtype.kind
    if kind == "b":
        return data.astype(np.int8)  # netCDF has no boolean type: 0/1
    if kind in "iuf":
        return data
    if kind == "U":
        return data
    if kind == "S":
        return data.astype(str)
    if kind == "c":
        raise SweepOutputError(
            f"output {name!r} is complex; netCDF has no complex type: return the real and imaginary parts as "
            f"two outputs (e.g. '{name}_real' and '{name}_imag')"
        )
    if kind == "O":
        flat = data.ravel()
        if flat.size and all(isinstance(v, str) for v in flat):
            return data.astype(str)
        first = next((v for v in flat if not isinstance(v, (str, int, float))), None)
        raise SweepOutputError(
            f"output {name!r} holds Python objects ({type(first).__name__} {_short(first)}); "
            "return numbers, strings, numpy arrays or xarray.DataArray values"
        )
    raise SweepOutputError(f"output {name!r} has unsupported dtype {data.dtype}; return numbers or strings")


def normalize_outputs(result, grid_dims: tuple[str, ...]) -> dict[str, dict]:
    """Check and normalise what the sweep function returned.

    Parameters
    ----------
    result : dict or xarray.Dataset
        Named outputs: scalars, strings, arrays or DataArrays.
    grid_dims : tuple of str
        The sweep's dimension names (outputs may not use them).

    Returns
    -------
    dict
        ``name -> {"dims", "data", "attrs", "coords"}``.

    Raises
    ------
    SweepOutputError
        If ``result`` is not a mapping of supported values.
    """
    if isinstance(result, xr.Dataset):
        result = {name: result[name] for name in result.data_vars}
    if not isinstance(result, Mapping):
        raise SweepOutputError(
            f"the sweep function must return a dict of named outputs (or an xarray.Dataset); "
            f"got {type(result).__name__} {_short(result)}"
        )
    reserved = RESERVED_NAMES | set(grid_dims)
    out = {}
    for name, value in result.items():
        if not isinstance(name, str) or not name:
            raise SweepOutputError(f"output names must be non-empty strings; got {name!r}")
        if name in reserved:
            raise SweepOutputError(
                f"output name {name!r} is reserved (a sweep dimension or one of {sorted(RESERVED_NAMES)}); rename it"
            )
        if isinstance(value, xr.Dataset):
            raise SweepOutputError(f"output {name!r} is a Dataset; return its variables as separate outputs")
        if isinstance(value, xr.DataArray):
            dims = tuple(str(d) for d in value.dims)
            clash = [d for d in dims if d in reserved]
            if clash:
                raise SweepOutputError(
                    f"output {name!r} uses the dimension(s) {clash}: sweep dimensions or reserved names; rename them"
                )
            data = _as_data(value.values, name)
            coords = {}
            for cname, c in value.coords.items():
                if c.ndim == 0 or not set(c.dims) <= set(dims):
                    continue  # scalar coordinates describe a selection, not an axis
                if str(cname) in reserved:
                    raise SweepOutputError(f"output {name!r} has a coordinate named {cname!r}, which is reserved")
                coords[str(cname)] = {
                    "dims": tuple(str(d) for d in c.dims),
                    "data": _as_data(c.values, f"{name}.coords[{cname!r}]"),
                    "attrs": _sanitize_attrs(dict(c.attrs)),
                }
            out[name] = {"dims": dims, "data": data, "attrs": _sanitize_attrs(dict(value.attrs)), "coords": coords}
        else:
            data = _as_data(value, name)
            dims = tuple(f"{name}_dim{i}" for i in range(data.ndim))
            out[name] = {"dims": dims, "data": data, "attrs": {}, "coords": {}}
    seen: dict[str, tuple[str, dict]] = {}
    for name, o in out.items():
        for cname, c in o["coords"].items():
            if cname in seen:
                first, prev = seen[cname]
                if prev["dims"] != c["dims"] or not np.array_equal(prev["data"], c["data"]):
                    raise SweepOutputError(
                        f"outputs {first!r} and {name!r} both have a coordinate {cname!r} but with different "
                        "values; shared coordinates must agree (rename one)"
                    )
            else:
                seen[cname] = (name, c)
    axes = {d for o in out.values() for d in o["dims"]} | set(seen)
    clash = sorted(set(out) & axes)
    if clash:
        raise SweepOutputError(
            f"output name(s) {clash} are also dimension or coordinate names of outputs; rename one of them"
        )
    return out


def _kind(data: np.ndarray) -> str:
    return "str" if data.dtype.kind == "U" else "number"


def _describe(o: dict) -> str:
    return f"dims {o['dims']}, shape {o['data'].shape}, {_kind(o['data'])}"


class Schema:
    """Names, dims, shapes and coordinates of the outputs, checked across points.

    The first successful point defines the schema; every later one must match
    it (same names; per name the same dims, shape, kind and coordinates), and
    dimensions shared by several outputs must have one length.
    """

    def __init__(self):
        self.ref: dict[str, dict] | None = None
        self.ref_point: str = ""
        self.dim_sizes: dict[str, int] = {}

    def check(self, outputs: dict[str, dict], point: Point) -> None:
        """Accept ``outputs`` or raise :class:`InconsistentOutputError`."""
        if self.ref is None:
            sizes: dict[str, int] = {}
            for name, o in outputs.items():
                for d, n in zip(o["dims"], o["data"].shape):
                    if sizes.setdefault(d, n) != n:
                        raise InconsistentOutputError(
                            f"dimension {d!r} has length {sizes[d]} in one output and {n} in {name!r} "
                            f"at point ({point.label()}); outputs sharing a dimension need one length"
                        )
            self.ref, self.ref_point, self.dim_sizes = outputs, point.label(), sizes
            return
        a, b = self.ref, outputs
        where = f"point ({self.ref_point}) and point ({point.label()})"
        if set(a) != set(b):
            only_a, only_b = sorted(set(a) - set(b)), sorted(set(b) - set(a))
            raise InconsistentOutputError(
                f"the sweep function returned different outputs at {where}: "
                f"only in the first: {only_a}, only in the second: {only_b}; every point must return the same names"
            )
        for name in a:
            oa, ob = a[name], b[name]
            if (
                oa["dims"] != ob["dims"]
                or oa["data"].shape != ob["data"].shape
                or _kind(oa["data"]) != _kind(ob["data"])
            ):
                raise InconsistentOutputError(
                    f"output {name!r} has {_describe(oa)} at {where.split(' and ')[0]} but {_describe(ob)} at "
                    f"{where.split(' and ')[1]}; every point must return the same shape (pad with NaN if needed)"
                )
            if set(oa["coords"]) != set(ob["coords"]) or any(
                not np.array_equal(oa["coords"][c]["data"], ob["coords"][c]["data"]) for c in oa["coords"]
            ):
                raise InconsistentOutputError(
                    f"output {name!r} has different coordinates at {where}; the coordinates of an output must "
                    "not depend on the point (return varying values as outputs instead)"
                )


def build_dataset(grid: Grid, points: list[Point], records: dict[str, dict]) -> xr.Dataset:
    """Merge the per-point records into one Dataset (no attributes yet).

    Points that raised get NaN (numbers) or ``""`` (strings) in every output;
    integer outputs become float64 then, so that NaN fits.
    """
    shape = grid.shape
    dims = grid.dims
    ordered = [(p, records[p.key]) for p in points]
    ok = [(p, r) for p, r in ordered if r["status"] == "ok"]
    schema = Schema()
    for p, r in ok:
        schema.check(r["outputs"], p)
    ref = schema.ref or {}
    complete = len(ok) == len(ordered)
    data_vars: dict = {}
    coords: dict = {}
    for name, o in ref.items():
        vshape = o["data"].shape
        if _kind(o["data"]) == "str":
            arr = np.full(shape + vshape, "", dtype=object)
        else:
            dtype = np.result_type(*[r["outputs"][name]["data"].dtype for _, r in ok])
            if not complete and dtype.kind in "iu":
                dtype = np.dtype(np.float64)
            fill = np.nan if dtype.kind == "f" else 0
            arr = np.full(shape + vshape, fill, dtype=dtype)
        for p, r in ok:
            arr[p.index] = r["outputs"][name]["data"]
        if arr.dtype == object:
            arr = arr.astype(str)
        data_vars[name] = (dims + o["dims"], arr, dict(o["attrs"]))
        for cname, c in o["coords"].items():
            if cname in coords:
                prev = coords[cname]
                if prev[0] != c["dims"] or not np.array_equal(prev[1], c["data"]):
                    raise InconsistentOutputError(
                        f"coordinate {cname!r} differs between outputs; outputs sharing a coordinate need equal values"
                    )
                continue
            coords[cname] = (c["dims"], c["data"], dict(c["attrs"]))
    errors = np.full(shape, "", dtype=object)
    wall = np.full(shape, np.nan)
    for p, r in ordered:
        errors[p.index] = r["error"] if r["status"] != "ok" else ""
        wall[p.index] = r["wall_time"]
    data_vars["error"] = (
        dims,
        errors.astype(str),
        {"long_name": "exception raised by the function at this point ('' if none)"},
    )
    data_vars["wall_time"] = (dims, wall, {"long_name": "wall-clock time of the function call", "units": "s"})
    return xr.Dataset(data_vars, coords=coords)
