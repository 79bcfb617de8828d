"""The on-disk store that makes a sweep resumable.

Layout of a store directory::

    manifest.json        what sweep this is (function, grid, seeds, fixed arguments)
    points/<key>.pkl     one finished point each (outputs or error, wall time, host)
    rejected/<key>.pkl   results refused as inconsistent with earlier points (kept for inspection)
    .lock                held (flock) while a sweep writes to the store

Each point file is written to a temporary name and renamed with
``os.replace``, so a killed process leaves either a complete file or a
stray temporary (ignored and removed on the next run), never half a result.
With the ``processes`` backend the worker that computed a point writes its
file (:func:`write_point`) before it reports back, so a point whose call
returned is on disk even if the calling process is killed a moment later.
The files are pickles of plain dicts, NumPy arrays and strings: the store is
a cache written and read by the same user's sweeps, not an exchange format
(the merged netCDF file is that), so do not load stores from untrusted sources.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import pickle
import re
import warnings
from pathlib import Path

from .. import io

FORMAT = "plrnn_numba.sweep store"
FORMAT_VERSION = 1

#: manifest fields that must agree for a store to be resumed.
IDENTITY_FIELDS = ("function", "grid", "seeds", "seed_mode", "fixed")


class StoreExistsError(FileExistsError):
    """The store already holds finished points of this sweep and ``resume=False`` was given.

    Parameters
    ----------
    message : str
        The error message.
    path : pathlib.Path
        The store directory (kept as ``path``).
    n_points : int
        The number of finished points in it (kept as ``n_points``).
    """

    def __init__(self, message: str, path: Path, n_points: int):
        super().__init__(message)
        self.path, self.n_points = Path(path), int(n_points)


class StoreMismatchError(ValueError):
    """The store was written for a different sweep (function, grid, seeds or fixed arguments).

    Parameters
    ----------
    message : str
        The error message (which fields differ).
    path : pathlib.Path
        The store directory (kept as ``path``).
    """

    def __init__(self, message: str, path: Path):
        super().__init__(message)
        self.path = Path(path)


class StoreLockedError(RuntimeError):
    """Another running sweep holds the store.

    Parameters
    ----------
    message : str
        The error message.
    path : pathlib.Path
        The store directory (kept as ``path``).
    """

    def __init__(self, message: str, path: Path):
        super().__init__(message)
        self.path = Path(path)


def _atomic_write_bytes(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def write_point(points_dir, record: dict) -> None:
    """Write one finished point to ``points_dir/<key>.pkl`` atomically (temporary file, then ``os.replace``).

    Called by :meth:`Store.save` and by the worker processes of the
    ``processes`` backend, which store their own points.
    """
    _atomic_write_bytes(Path(points_dir) / f"{record['key']}.pkl", pickle.dumps(record, protocol=4))


def _stable(text: str) -> str:
    # default reprs hold memory addresses that differ on every run
    return re.sub(r" at 0x[0-9a-fA-F]+", "", text)


def _same_function(a: str, b: str) -> bool:
    # A script's function is ``__main__.f`` when run and ``module.f`` when imported: the same function.
    for x, y in ((a, b), (b, a)):
        if x.startswith("__main__.") and y.endswith("." + x[len("__main__.") :]):
            return True
    return a == b


class Store:
    """A sweep's directory of finished points (see the module docstring).

    Parameters
    ----------
    path : path-like
        The directory (created if missing).
    """

    def __init__(self, path):
        if not isinstance(path, (str, os.PathLike)):
            raise TypeError(
                f"store must be a directory path (str or pathlib.Path); got {type(path).__name__} {path!r:.60}"
            )
        self.path = Path(path)
        self.points_dir = self.path / "points"
        self.rejected_dir = self.path / "rejected"
        self.manifest_path = self.path / "manifest.json"
        self._lock_file = None

    # ------------------------------------------------------------------ opening
    def open(self, manifest: dict, *, resume: bool) -> None:
        """Lock the store, check or write its manifest.

        Parameters
        ----------
        manifest : dict
            The sweep's identity (``function``, ``grid``, ``seeds``, ``seed_mode``,
            ``fixed``; optionally ``source_sha1`` and ``versions``).
        resume : bool
            Whether finished points of the same sweep may be reused.

        Raises
        ------
        StoreMismatchError
            If the store was written for a different sweep (function, grid,
            seeds or fixed arguments differ); a ``ValueError``.
        StoreExistsError
            If it holds finished points and ``resume`` is False; a ``FileExistsError``.
        StoreLockedError
            If another running sweep holds the store; a ``RuntimeError``.
        """
        if self.path.exists() and not self.path.is_dir():
            raise NotADirectoryError(f"store {self.path} exists and is not a directory")
        self.path.mkdir(parents=True, exist_ok=True)
        self._lock()
        try:
            self._check_manifest(manifest, resume=resume)
            self.points_dir.mkdir(exist_ok=True)
        except BaseException:
            self.close()
            raise

    def _lock(self) -> None:
        try:
            import fcntl
        except ImportError:  # pragma: no cover - Windows: no locking
            return
        f = open(self.path / ".lock", "a+")  # noqa: SIM115 - held until close()
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            f.seek(0)
            owner = f.read().strip() or "unknown"
            f.close()
            raise StoreLockedError(
                f"store {self.path} is in use by another running sweep ({owner}); wait for it to finish, "
                "or use another store directory",
                self.path,
            ) from None
        f.seek(0)
        f.truncate()
        f.write(f"pid {os.getpid()}")
        f.flush()
        self._lock_file = f

    def close(self) -> None:
        """Release the lock (finished points stay on disk)."""
        if self._lock_file is not None:
            self._lock_file.close()  # closing the descriptor releases the flock
            self._lock_file = None

    def _check_manifest(self, manifest: dict, *, resume: bool) -> None:
        identity = {k: json.loads(_stable(io.to_json(manifest[k]))) for k in IDENTITY_FIELDS}
        if self.manifest_path.exists():
            try:
                old = json.loads(self.manifest_path.read_text())
            except (OSError, ValueError) as exc:
                raise StoreMismatchError(
                    f"store {self.path}: unreadable manifest.json ({exc}); use another store", self.path
                ) from None
            if old.get("format") != FORMAT:
                raise StoreMismatchError(
                    f"{self.path} is not a plrnn_numba sweep store (manifest format {old.get('format')!r})", self.path
                )
            diffs = [k for k in IDENTITY_FIELDS if old.get(k) != identity[k]]
            if "function" in diffs and _same_function(str(old.get("function")), identity["function"]):
                diffs.remove("function")
            if diffs:
                lines = [
                    f"  {k}: store has {json.dumps(old.get(k))[:200]}, this sweep has {json.dumps(identity[k])[:200]}"
                    for k in diffs
                ]
                raise StoreMismatchError(
                    f"store {self.path} belongs to a different sweep ({', '.join(diffs)} differ):\n"
                    + "\n".join(lines)
                    + "\nResume with the same arguments, or give a new store directory for the new sweep.",
                    self.path,
                )
            if old.get("source_sha1") and manifest.get("source_sha1") and old["source_sha1"] != manifest["source_sha1"]:
                warnings.warn(
                    f"the source of {identity['function']} changed since store {self.path} was written; "
                    "its stored points come from the old code (remove the store to recompute them)",
                    stacklevel=4,
                )
            n = self.count()
            if n and not resume:
                raise StoreExistsError(
                    f"store {self.path} already holds {n} finished point(s) of this sweep; pass resume=True "
                    "(--resume) to compute only the missing points, or remove the directory to start over",
                    self.path,
                    n,
                )
            return
        if self.points_dir.exists() and any(self.points_dir.glob("*.pkl")):
            raise StoreMismatchError(
                f"store {self.path} has point files but no manifest.json; use another store directory", self.path
            )
        now = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
        body = {"format": FORMAT, "format_version": FORMAT_VERSION, **identity, "created": now}
        for k in ("source_sha1", "versions"):
            if k in manifest:
                body[k] = manifest[k]
        _atomic_write_bytes(self.manifest_path, (json.dumps(body, indent=1, sort_keys=True) + "\n").encode())

    # ------------------------------------------------------------------ points
    def count(self) -> int:
        """Number of finished points on disk.

        Returns
        -------
        int
            The count.
        """
        return sum(1 for _ in self.points_dir.glob("*.pkl")) if self.points_dir.exists() else 0

    def load(self, keys) -> dict[str, dict]:
        """Finished records for ``keys`` (others are ignored; stray temporaries removed).

        Parameters
        ----------
        keys : iterable of str
            Point keys.

        Returns
        -------
        dict of str to dict
            The readable records by key (an unreadable file is warned about and skipped).
        """
        wanted = set(keys)
        out = {}
        if not self.points_dir.exists():
            return out
        for tmp in self.points_dir.glob(".*.tmp"):
            try:
                tmp.unlink()
            except OSError:  # pragma: no cover - another process's file, or gone already
                pass
        for f in self.points_dir.glob("*.pkl"):
            key = f.stem
            if key not in wanted:
                continue
            try:
                with open(f, "rb") as fh:
                    rec = pickle.load(fh)
            except Exception as exc:  # damaged file: recompute the point
                warnings.warn(f"ignoring unreadable point file {f} ({exc}); the point is recomputed", stacklevel=3)
                continue
            out[key] = rec
        return out

    def save(self, record: dict) -> None:
        """Persist one finished point (atomically).

        Parameters
        ----------
        record : dict
            The point's record (with its ``key``).
        """
        write_point(self.points_dir, record)

    def reject(self, record: dict, *, stored: bool = False) -> Path:
        """Keep a refused (inconsistent) result for inspection; it does not count as finished.

        Parameters
        ----------
        record : dict
            The point's record (with its ``key``).
        stored : bool
            The worker already wrote the point to ``points/``; it is moved out
            of there, so that a resume computes it again.

        Returns
        -------
        pathlib.Path
            Where the record was kept.
        """
        self.rejected_dir.mkdir(exist_ok=True)
        path = self.rejected_dir / f"{record['key']}.pkl"
        write_point(self.rejected_dir, record)
        if stored:
            (self.points_dir / f"{record['key']}.pkl").unlink(missing_ok=True)
        return path
