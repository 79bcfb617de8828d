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
import zlib
from importlib import metadata
from pathlib import Path

import numpy as np
import xarray as xr

from ._version import __version__

__all__ = [
    "save",
    "open",
    "CorruptFileError",
    "remove_stale_temporaries",
    "provenance",
    "versions",
    "to_json",
    "SAVE_MODES",
]

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
    """JSON text of ``obj``; numpy scalars/arrays and package objects are converted.

    Parameters
    ----------
    obj : object
        Anything JSON-serialisable once numpy values and the package's dataclasses
        are converted (other objects by their ``repr``).

    Returns
    -------
    str
        JSON with sorted keys.
    """
    return json.dumps(obj, default=_jsonable, sort_keys=True)


def versions() -> dict[str, str]:
    """Versions of the package and its main dependencies.

    Returns
    -------
    dict of str to str
        Version by package name (and ``python``).
    """
    return dict(_versions())


@functools.lru_cache(maxsize=1)
def _versions_json() -> str:
    # the same text for every Dataset of a process
    return to_json(versions())


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

    Returns
    -------
    dict
        ``created``, ``producer``, ``arguments``, ``seeds``, ``host``,
        ``versions``, ``history`` and ``Conventions``.
    """
    now = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    attrs = {
        "created": now,
        "producer": call,
        "arguments": to_json(arguments or {}),
        "seeds": to_json(seeds),
        "host": socket.gethostname(),
        "versions": _versions_json(),
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


#: what each ``mode`` of :func:`save` does.
SAVE_MODES = {
    "w": "create the file, or replace it if it exists",
    "x": "create the file; FileExistsError if it exists (never overwrites)",
    "a": "add the Dataset's variables to an existing file (variables of the same name are replaced, "
         "the others kept, attributes updated); create the file if it does not exist",
}

#: attribute holding the CRC-32 of a variable's values (see :func:`save`).
_CRC = "_plrnn_numba_crc32"


def _crc32(values: np.ndarray) -> int:
    """CRC-32 of a variable's values as :func:`open` returns them (numbers by their bytes, strings as UTF-8)."""
    values = np.asarray(values)
    if values.dtype.kind in "OUS":
        text = "\x00".join(v.decode() if isinstance(v, bytes) else str(v) for v in values.ravel())
        return zlib.crc32(text.encode())
    if values.dtype.kind in "fc":
        values = np.where(np.isnan(values), np.nan, values)  # NaN payloads are not kept by the fill-value decoding
    return zlib.crc32(np.ascontiguousarray(values).tobytes())


class CorruptFileError(OSError):
    """A netCDF file failed its checksums (or could not be read): it was modified or damaged after writing."""


# A trailer after the HDF5 data: magic, CRC-32 of everything before it, and that length.  HDF5
# ignores bytes past the end of its data, so netCDF4, xarray and h5 tools read the file as usual;
# open() checks the CRC *before* handing the file to HDF5, because some damage (in HDF5's global
# heap, which has no checksum) makes the library loop forever instead of failing.
_TRAILER_MAGIC = b"PNCRC32\x00"
_TRAILER_SIZE = len(_TRAILER_MAGIC) + 4 + 8


def _file_crc32(path: Path, length: int) -> int:
    crc = 0
    with path.open("rb") as f:
        left = length
        while left > 0:
            block = f.read(min(left, 1 << 22))
            if not block:
                break
            crc = zlib.crc32(block, crc)
            left -= len(block)
    return crc


def _append_trailer(path: Path) -> None:
    length = path.stat().st_size
    with path.open("ab") as f:
        f.write(_TRAILER_MAGIC + _file_crc32(path, length).to_bytes(4, "little") + length.to_bytes(8, "little"))


def _check_trailer(path: Path) -> None:
    """CorruptFileError if the file's trailer does not match its bytes (files without one pass)."""
    size = path.stat().st_size
    if size < _TRAILER_SIZE:
        return
    with path.open("rb") as f:
        f.seek(size - _TRAILER_SIZE)
        tail = f.read(_TRAILER_SIZE)
    if not tail.startswith(_TRAILER_MAGIC):
        return  # not written by save() (or its magic was damaged: HDF5's own checks remain)
    n = len(_TRAILER_MAGIC)
    crc, length = int.from_bytes(tail[n : n + 4], "little"), int.from_bytes(tail[n + 4 :], "little")
    if length != size - _TRAILER_SIZE or _file_crc32(path, length) != crc:
        raise CorruptFileError(f"{path} fails its file checksum (CRC-32 written by plrnn_numba.io.save): it was "
                               "damaged or modified after it was written")


def _temporary(path: Path, pid: int) -> Path:
    return path.with_name(f".{path.name}.{pid}.tmp")


def remove_stale_temporaries(path) -> list[Path]:
    """Remove the temporary files that :func:`save` left for ``path`` in processes that no longer exist.

    A save writes ``.NAME.PID.tmp`` next to the target and renames it; only a
    process killed mid-save (SIGKILL, power loss) leaves one behind.  Files of
    live processes (a concurrent save) are kept.  :func:`save` calls this
    before every write.

    Parameters
    ----------
    path : str or path-like
        The netCDF file whose temporaries are removed.

    Returns
    -------
    list of Path
        The files removed.
    """
    path = Path(path)
    removed = []
    for tmp in path.parent.glob(f".{path.name}.*.tmp"):
        pid = tmp.name[len(path.name) + 2 : -4]
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            os.kill(int(pid), 0)
            continue  # that process is alive (its save may be in progress)
        except ProcessLookupError:
            pass
        except PermissionError:
            continue  # alive, another user's
        tmp.unlink(missing_ok=True)
        removed.append(tmp)
    return removed


def _encoding(ds: xr.Dataset) -> dict:
    """Per-variable netCDF encoding and checksums (modifies the attributes of ``ds``, a shallow copy).

    Every chunked variable gets compression and HDF5's fletcher32 checksum,
    which the library verifies when it reads a chunk; strings become
    fixed-width character arrays (``dtype="S1"``) so that it covers them too
    (variable-length strings live in a heap no filter covers).  Two kinds of
    damage escape it: a 0-d variable cannot be chunked, so no filter applies,
    and a damaged chunk index makes HDF5 return fill values without reading
    (or checking) anything.  So every variable also carries the CRC-32 of its
    values in an attribute, which HDF5 keeps in its checksummed object header,
    and :func:`open` compares them.
    """
    enc = {}
    for name, var in ds.variables.items():
        var.encoding = {}  # encodings of an opened file (contiguous, chunk sizes, source) would conflict
        var.attrs[_CRC] = _crc32(var.values)
        if var.ndim == 0 or var.size == 0:
            continue
        if var.dtype.kind in "biufMm":
            enc[name] = {"zlib": True, "complevel": 4, "fletcher32": True}
        elif var.dtype.kind in "USO" and all(isinstance(x, str) for x in var.values.ravel()):
            enc[name] = {"dtype": "S1", "zlib": True, "complevel": 4, "fletcher32": True}
    return enc


def save(ds: xr.Dataset, path, *, mode: str = "w") -> Path:
    """Write ``ds`` to netCDF atomically, with checksums, and return the path.

    The Dataset is written to a temporary file next to ``path`` (``.NAME.PID.tmp``)
    and renamed over it, so the file is either the old one or the complete new
    one; the temporary file is removed on every failure (stale ones of killed
    processes are removed too, see :func:`remove_stale_temporaries`).  Every
    variable with data is stored with HDF5's fletcher32 checksum (strings as
    character arrays), and a CRC-32 of the whole file follows its HDF5 data
    (HDF5 ignores trailing bytes), so :func:`open` detects a damaged file
    instead of returning changed values -- or hanging in HDF5, which loops on
    some damage to its unchecksummed global heap.  Attributes that netCDF cannot hold (bools,
    dicts, None) are converted (0/1, JSON strings, "None").

    Parameters
    ----------
    ds : xarray.Dataset
        What to write (a DataArray: ``da.to_dataset(name=...)``).
    path : str or path-like
        The netCDF file; its directory is created if needed.
    mode : {"w", "x", "a"}
        See :data:`SAVE_MODES`: ``"w"`` create or replace, ``"x"`` create only
        (FileExistsError if the file exists), ``"a"`` add variables to an
        existing file.

    Returns
    -------
    Path
        The file written.
    """
    if isinstance(ds, xr.DataArray):
        raise TypeError("ds must be an xarray.Dataset; got a DataArray: save da.to_dataset(name=...) instead")
    if not isinstance(ds, xr.Dataset):
        raise TypeError(f"ds must be an xarray.Dataset; got {type(ds).__name__}")
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a str or path-like; got {type(path).__name__}")
    if not isinstance(mode, str) or mode not in SAVE_MODES:
        modes = "; ".join(f"{k!r}: {v}" for k, v in SAVE_MODES.items())
        raise ValueError(f"mode must be one of {sorted(SAVE_MODES)} ({modes}); got {mode!r}")
    path = Path(path)
    if path.exists() and not path.is_file():
        raise ValueError(f"path {path} exists and is not a file")
    if mode == "x" and path.exists():
        raise FileExistsError(f"{path} exists and mode='x' never overwrites; use mode='w' to replace it")
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(path)
    if mode == "a" and path.exists():
        ds = _appended(open(path), ds, path)
    out = ds.copy(deep=False)
    out.attrs = _sanitize_attrs(out.attrs)
    for name in list(out.variables):
        out[name].attrs = _sanitize_attrs(out[name].attrs)
    encoding = _encoding(out)
    tmp = _temporary(path, os.getpid())
    try:
        out.to_netcdf(tmp, mode="w", engine="netcdf4", encoding=encoding)
        _append_trailer(tmp)
        if mode == "x":
            # a hard link creates the name only if it is still free: atomic create-if-absent
            try:
                os.link(tmp, path)
            except FileExistsError:
                raise FileExistsError(
                    f"{path} was created by someone else while saving; mode='x' never overwrites") from None
        else:
            os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def _appended(existing: xr.Dataset, ds: xr.Dataset, path: Path) -> xr.Dataset:
    """``existing`` with the variables of ``ds`` added or replaced (mode "a")."""
    replaced = [name for name in ds.data_vars if name in existing.variables]
    try:
        merged = xr.merge([existing.drop_vars(replaced), ds], join="exact", compat="no_conflicts",
                          combine_attrs="override")
    except ValueError as exc:
        raise ValueError(
            f"mode='a' cannot add these variables to {path}: their coordinates differ from the file's ({exc}); "
            "save them to another file or with mode='w'"
        ) from None
    merged.attrs = {**existing.attrs, **ds.attrs}
    return merged


def open(path, **kwargs) -> xr.Dataset:  # noqa: A001 - mirrors xarray.open_dataset
    """Open a Dataset written by :func:`save`, verify its checksums and load it into memory.

    Parameters
    ----------
    path : str or path-like
        The netCDF file.
    **kwargs
        Passed to ``xarray.open_dataset``.

    Returns
    -------
    xarray.Dataset
        The Dataset, loaded into memory (the file is closed).

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    CorruptFileError
        If the file fails the whole-file CRC-32 that :func:`save` appends
        (checked before HDF5 reads anything), or one of its variables fails
        HDF5's checksum or cannot be read (the message names the file and the
        variable).
    """
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a str or path-like; got {type(path).__name__}")
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no such file: {path}")
    # Damage surfaces from the HDF5 library as almost any exception type (OSError,
    # RuntimeError, AttributeError from an unreadable attribute, ...).  The file is opened
    # here rather than through xarray's file cache, whose handles could outlive a failed
    # open and serve a later open of the same path.
    import netCDF4

    _check_trailer(path)
    try:
        nc = netCDF4.Dataset(path, mode="r")
    except Exception as exc:
        raise CorruptFileError(f"{path} cannot be read as netCDF: it is damaged or not a netCDF file ({exc})") from None
    try:
        try:
            handle = xr.open_dataset(xr.backends.NetCDF4DataStore(nc), **kwargs)
        except Exception as exc:
            if kwargs:  # perhaps the caller's options, not the file
                raise
            raise CorruptFileError(f"{path} cannot be read: it is damaged ({exc})") from None
        with handle as ds:
            for name, var in ds.variables.items():
                try:
                    var.load()
                except Exception as exc:
                    raise CorruptFileError(
                        f"{path}: variable {name!r} failed its checksum or cannot be read; the file was damaged "
                        f"after it was written ({exc})") from None
            ds = ds.load()
    finally:
        if nc.isopen():
            nc.close()
    for name, var in ds.variables.items():
        crc = var.attrs.pop(_CRC, None)
        if crc is not None and int(crc) != _crc32(var.values):
            raise CorruptFileError(f"{path}: the values of variable {name!r} differ from those written (CRC-32 "
                                   "mismatch: the file was damaged after it was written)")
    return ds
