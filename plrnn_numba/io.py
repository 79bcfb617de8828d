"""netCDF input/output and provenance attributes for every Dataset the package writes.

netCDF attributes hold only strings, numbers and numeric arrays, so
structured metadata (the call and its arguments, model descriptions) is
stored as JSON strings, and booleans as 0/1.
"""

from __future__ import annotations

import datetime as _dt
import functools
import json
import os
import platform
import socket
from importlib import metadata
from pathlib import Path

import numpy as np
import xarray as xr

from ._version import __version__

_DEPENDENCIES = ("numpy", "numba", "scipy", "xarray", "netCDF4")


def _jsonable(obj):
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (np.floating,)):
        return float(obj)
    if isinstance(obj, (np.bool_,)):
        return bool(obj)
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, (Path,)):
        return str(obj)
    if hasattr(obj, "describe"):
        return obj.describe()
    if hasattr(obj, "__dataclass_fields__"):
        from dataclasses import asdict

        return {"type": type(obj).__name__, **asdict(obj)}
    return repr(obj)


def to_json(obj) -> str:
    """JSON text of ``obj``; numpy scalars/arrays and package objects are converted."""
    return json.dumps(obj, default=_jsonable, sort_keys=True)


def versions() -> dict[str, str]:
    """Versions of the package and its main dependencies."""
    return dict(_versions())


@functools.lru_cache(maxsize=1)
def _versions() -> tuple:
    # package metadata lookups cost ~20 ms; the versions cannot change in a process
    out = {"plrnn_numba": __version__, "python": platform.python_version()}
    for name in _DEPENDENCIES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:  # pragma: no cover
            out[name] = "not installed"
    return tuple(out.items())


def provenance(call: str, arguments: dict | None = None, seeds=None) -> dict:
    """Attributes recording what produced a Dataset.

    Parameters
    ----------
    call : str
        Qualified name of the producing function.
    arguments : dict, optional
        Its arguments (stored as a JSON string).
    seeds : int or sequence, optional
        Random seeds used.
    """
    now = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    attrs = {
        "created": now,
        "producer": call,
        "arguments": to_json(arguments or {}),
        "seeds": to_json(seeds),
        "host": socket.gethostname(),
        "versions": to_json(versions()),
        "history": f"{now}: {call} (plrnn_numba {__version__})",
        "Conventions": "CF-1.8",
    }
    return attrs


def _sanitize_attrs(attrs: dict) -> dict:
    out = {}
    for k, v in attrs.items():
        if isinstance(v, (bool, np.bool_)):
            out[k] = int(v)
        elif isinstance(v, (str, int, float, np.integer, np.floating)):
            out[k] = v
        elif isinstance(v, np.ndarray) and v.dtype.kind in "iuf":
            out[k] = v
        elif v is None:
            out[k] = "None"
        else:
            out[k] = to_json(v)
    return out


def save(ds: xr.Dataset, path, *, mode: str = "w") -> Path:
    """Write ``ds`` to netCDF atomically (temporary file, then rename).

    Attributes that netCDF cannot hold (bools, dicts, None) are converted
    (0/1, JSON strings, "None"), on the Dataset and on every variable.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    ds = ds.copy(deep=False)
    ds.attrs = _sanitize_attrs(ds.attrs)
    for name in list(ds.variables):
        ds[name].attrs = _sanitize_attrs(ds[name].attrs)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    encoding = {}
    for name, var in ds.data_vars.items():
        if var.dtype.kind in "f":
            encoding[name] = {"zlib": True, "complevel": 4}
    ds.to_netcdf(tmp, mode=mode, engine="netcdf4", encoding=encoding)
    os.replace(tmp, path)
    return path


def open(path, **kwargs) -> xr.Dataset:  # noqa: A001 - mirrors xarray.open_dataset
    """Open a Dataset written by :func:`save` and load it into memory."""
    with xr.open_dataset(path, engine="netcdf4", **kwargs) as ds:
        return ds.load()
