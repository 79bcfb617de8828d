"""Result files: atomic saves with checksums, every mode, no temporary file left, damage detected on open.

References: the Dataset written (values, dims, attributes) for round trips;
for corruption, a saved file with one random byte flipped must either open
to exactly the Dataset written or raise ``CorruptFileError`` -- never return
changed values.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

import plrnn_numba as pn
from plrnn_numba.io import SAVE_MODES, CorruptFileError, remove_stale_temporaries

ROOT = Path(__file__).resolve().parents[1]


def sample(n=40, seed=0) -> xr.Dataset:
    """Every kind of variable the package writes: floats, ints, bools, strings, scalars, empty, coordinates."""
    rng = np.random.default_rng(seed)
    return xr.Dataset(
        {
            "x": (("a", "b"), rng.normal(size=(n, 7)), {"units": "1", "long_name": "values"}),
            "i": ("a", np.arange(n, dtype=np.int64)),
            "flag": ("a", rng.random(n) < 0.5),
            "label": ("a", np.array(["stable node", "saddle", "unstable spiral", "x"] * (n // 4))),
            "s": ((), 2.75),
            "k": ((), np.int64(7)),
            "empty": (("e",), np.zeros(0)),
        },
        coords={"a": np.arange(n) * 0.5, "b": np.arange(7)},
        attrs={"arguments": '{"seed": 1}', "flag": True, "nested": {"x": [1, 2]}},
    )


def stored(ds):
    """What a save keeps of ``ds`` (attributes as netCDF holds them)."""
    out = ds.copy()
    out.attrs = {**ds.attrs, "flag": 1, "nested": '{"x": [1, 2]}'}
    return out


def test_round_trip_of_every_kind_of_variable(tmp_path):
    ds = sample()
    back = pn.io.open(pn.io.save(ds, tmp_path / "r.nc"))
    xr.testing.assert_identical(back, stored(ds))
    assert "_plrnn_numba_value" not in back["s"].attrs and ds["s"].attrs == {}  # the caller's Dataset is untouched


def test_modes(tmp_path):
    path = tmp_path / "m.nc"
    ds = sample()
    # "x": create only
    pn.io.save(ds, path, mode="x")
    before = path.read_bytes()
    with pytest.raises(FileExistsError, match="mode='x' never overwrites"):
        pn.io.save(sample(seed=1), path, mode="x")
    assert path.read_bytes() == before
    # "w": replace
    pn.io.save(sample(seed=1), path, mode="w")
    xr.testing.assert_identical(pn.io.open(path), stored(sample(seed=1)))
    # "a": add a variable, replace one, keep the others and the attributes
    extra = xr.Dataset({"y": ("a", np.ones(40)), "i": ("a", -np.arange(40))}, coords={"a": ds.a}, attrs={"more": 2})
    pn.io.save(extra, path, mode="a")
    back = pn.io.open(path)
    assert set(back.data_vars) == set(ds.data_vars) | {"y"}
    np.testing.assert_array_equal(back["i"].values, -np.arange(40))
    xr.testing.assert_identical(back["x"], sample(seed=1)["x"])
    assert back.attrs["more"] == 2 and back.attrs["arguments"] == '{"seed": 1}'
    with pytest.raises(ValueError, match="mode='a' cannot add these variables"):
        pn.io.save(xr.Dataset({"z": ("a", np.ones(3))}, coords={"a": [0, 1, 2]}), path, mode="a")
    # "a" on a missing file creates it
    pn.io.save(extra, tmp_path / "new.nc", mode="a")
    xr.testing.assert_identical(pn.io.open(tmp_path / "new.nc"), extra)
    assert set(SAVE_MODES) == {"w", "x", "a"}


@pytest.mark.parametrize(
    "args, exc, match",
    [
        ((sample(), "f.nc"), None, None),
        ((sample(), "f.nc", "r"), ValueError, "mode must be one of"),
        ((sample(), "f.nc", "w+"), ValueError, "mode must be one of"),
        ((sample(), "f.nc", 1), ValueError, "mode must be one of"),
        ((sample()["x"], "f.nc"), TypeError, "DataArray: save da.to_dataset"),
        (({"x": 1}, "f.nc"), TypeError, "ds must be an xarray.Dataset"),
        ((sample(), 3), TypeError, "path must be a str or path-like"),
    ],
)
def test_bad_arguments(args, exc, match, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    ds, path, *mode = args
    if exc is None:
        pn.io.save(ds, path)
        return
    with pytest.raises(exc, match=match):
        pn.io.save(ds, path, mode=mode[0]) if mode else pn.io.save(ds, path)
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_open_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such file"):
        pn.io.open(tmp_path / "missing.nc")
    junk = tmp_path / "junk.nc"
    junk.write_bytes(b"not a netCDF file at all" * 10)
    with pytest.raises(CorruptFileError, match="cannot be read as netCDF"):
        pn.io.open(junk)
    with pytest.raises(TypeError, match="path must be"):
        pn.io.open(None)


@pytest.mark.parametrize("when", ["write", "rename", "interrupt"])
def test_no_temporary_file_after_a_failed_save(when, tmp_path, monkeypatch):
    path = tmp_path / "f.nc"
    pn.io.save(sample(seed=3), path)
    original = path.read_bytes()
    if when == "write":
        real = xr.Dataset.to_netcdf

        def failing(self, target, *a, **k):
            real(self, target, *a, **k)  # a complete temporary file exists, then the write "fails"
            raise OSError("disk full")

        monkeypatch.setattr(xr.Dataset, "to_netcdf", failing)
        exc = OSError
    elif when == "rename":
        monkeypatch.setattr(os, "replace", lambda *a, **k: (_ for _ in ()).throw(PermissionError("denied")))
        exc = PermissionError
    else:
        def interrupted(self, target, *a, **k):
            Path(target).write_bytes(b"partial")
            raise KeyboardInterrupt

        monkeypatch.setattr(xr.Dataset, "to_netcdf", interrupted)
        exc = KeyboardInterrupt
    with pytest.raises(exc):
        pn.io.save(sample(), path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.nc"]
    assert path.read_bytes() == original  # the old file is intact


_KILLED_SAVER = r"""
import sys, numpy as np, xarray as xr
sys.path.insert(0, sys.argv[1])
import plrnn_numba as pn
ds = xr.Dataset({"x": (("a", "b"), np.random.default_rng(0).normal(size=(4000, 500)))})
print("ready", flush=True)
while True:
    pn.io.save(ds, sys.argv[2])
"""


def test_kill_mid_save_leaves_the_old_file_and_a_stale_temporary_that_the_next_save_removes(tmp_path):
    path = tmp_path / "big.nc"
    proc = subprocess.Popen([sys.executable, "-c", _KILLED_SAVER, str(ROOT), str(path)], stdout=subprocess.PIPE)
    assert proc.stdout.readline().strip() == b"ready"
    deadline = time.time() + 60
    while time.time() < deadline and not list(tmp_path.glob(".big.nc.*.tmp")):
        time.sleep(0.01)  # kill while a temporary file is being written
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    stale = list(tmp_path.glob(".big.nc.*.tmp"))
    assert stale, "the child was not killed mid-save"
    if path.exists():  # a complete earlier save, never a partial one
        assert pn.io.open(path)["x"].shape == (4000, 500)
    assert remove_stale_temporaries(path) == stale
    pn.io.save(sample(), tmp_path / "other.nc")  # another file's save leaves big.nc's temporaries alone
    # and a save of the same file removes them itself
    stale[0].write_bytes(b"left by a dead process")
    pn.io.save(sample(), path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["big.nc", "other.nc"]


def test_live_processes_keep_their_temporaries(tmp_path):
    path = tmp_path / "f.nc"
    mine = tmp_path / f".f.nc.{os.getppid()}.tmp"  # the parent process is alive
    mine.write_bytes(b"in progress")
    assert remove_stale_temporaries(path) == []
    assert mine.exists()


@pytest.mark.parametrize("kind", ["sample", "scyfi", "history"])
def test_single_byte_damage_is_detected_never_returned(kind, tmp_path):
    if kind == "sample":
        ds = sample(200)
    elif kind == "scyfi":
        model, theta = pn.PLRNN.from_arrays(A=[0.8377689, 0.96461297], W=[[0.0, -0.64375], [0.52505308, 0.0]],
                                            h=[0.37298253, -0.97931491])
        ds = pn.dynamics.scyfi(model, theta, 16, min_order=15)
    else:
        model = pn.PLRNN(3)
        ds = pn.train(model, model.init(0), pn.Batch(targets=np.zeros((2, 5, 3))), n_epochs=20, snapshot_every=5)
    path = pn.io.save(ds, tmp_path / "ref.nc")
    ref = pn.io.open(path)
    data = path.read_bytes()
    rng = np.random.default_rng(1)
    outcome = {"detected": 0, "unchanged": 0}
    for trial in range(150):
        # a new name per trial: after a failed open HDF5 may keep the damaged file open and serve it again
        bad = tmp_path / f"bad{trial}.nc"
        pos = int(rng.integers(len(data)))
        damaged = bytearray(data)
        damaged[pos] ^= 1 << int(rng.integers(8))
        bad.write_bytes(bytes(damaged))
        try:
            back = pn.io.open(bad)
        except CorruptFileError:
            outcome["detected"] += 1
            continue
        assert back.identical(ref), f"byte {pos}: changed values returned silently"
        outcome["unchanged"] += 1  # the flip hit unused space
    # about half of the sample's file is data, the rest HDF5 headers and reserved space,
    # where a flip changes nothing that is read (the package's result files: about a third)
    assert outcome["detected"] >= (50 if kind == "sample" else 20), outcome


def test_file_checksum_trailer_is_checked_before_hdf5_and_invisible_to_other_readers(tmp_path):
    ds = sample(48)
    path = pn.io.save(ds, tmp_path / "a.nc")
    # other readers see an ordinary netCDF file (HDF5 ignores the trailing bytes)
    with xr.open_dataset(path) as plain:
        np.testing.assert_array_equal(plain[list(ds.data_vars)[0]].values, ds[list(ds.data_vars)[0]].values)
    # a file written without the trailer (by xarray) still opens through its HDF5 checksums
    other = tmp_path / "b.nc"
    plain_ds = xr.Dataset({"v": ("x", np.arange(5.0))})
    plain_ds.to_netcdf(other, engine="netcdf4")
    np.testing.assert_array_equal(pn.io.open(other)["v"].values, plain_ds["v"].values)
    # damage to the trailer's checksum, or bytes appended after it, is reported
    data = bytearray(path.read_bytes())
    data[-10] ^= 0x40
    (tmp_path / "c.nc").write_bytes(bytes(data))
    with pytest.raises(CorruptFileError, match="file checksum"):
        pn.io.open(tmp_path / "c.nc")
