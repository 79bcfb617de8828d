"""Parameter sweeps: backends agree, stores resume after a kill, failures are recorded, bad input is refused.

The point functions are defined at module level so that worker processes
(spawned, or dask workers) can import them as ``tests.test_sweep.<name>``.
"""

from __future__ import annotations

import argparse
import os
import pickle
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from plrnn_numba import io
from plrnn_numba.cli import add_sweep_arguments, default_store, seed_list, sweep_kwargs
from plrnn_numba.sweep import (
    RUN_ATTRS,
    InconsistentOutputError,
    Store,
    SweepOutputError,
    derived_seed,
    normalize_outputs,
    point_key,
    strip_run_info,
    sweep,
)

REPO = Path(__file__).resolve().parent.parent


# ------------------------------------------------------------------------ point functions
def rich_point(a, b, seed):
    """Scalars, an int, a bool, a string, a plain array and a DataArray with coords and attrs."""
    rng = np.random.default_rng(seed)
    return {
        "y": a * b + rng.normal(),
        "count": a + 10 * seed,
        "big": a > 1,
        "label": f"a={a}",
        "curve": np.arange(4.0) * b + rng.normal(size=4),
        "spectrum": xr.DataArray(
            rng.normal(size=(3, 2)),
            dims=("freq", "channel"),
            coords={"freq": ("freq", [0.5, 1.0, 2.0], {"units": "Hz"}), "channel": ["x", "y"]},
            attrs={"long_name": "power", "units": "1", "flag": True},
        ),
    }


def raising_point(a, seed):
    if a == 2:
        raise ValueError(f"a == {a} is not allowed")
    return {"sq": a * a + seed, "vec": np.full(2, a)}


def slow_point(a, seed, marker_dir):
    """Sleep, then leave a marker file per completed call (tagged with the run)."""
    time.sleep(0.25)
    tag = os.environ.get("SWEEP_TEST_RUN", "none")
    Path(marker_dir, f"{tag}__{a}__{seed}__{uuid.uuid4().hex}").touch()
    return {"value": 10.0 * a + seed}


def ragged_point(a):
    return {"x": np.zeros(a)}


def lambda_point(a):
    if a == 1:
        return {"f": 1.0}
    return {"f": lambda: a}


def object_point(a):
    return {"o": object() if a == 3 else 1.0}


def list_point(a):
    return [a]


def plain_point(a):
    return {"x": float(a)}


def _killable_sweep(store: str, markers: str) -> None:
    """Run in a subprocess by test_killed_sweep_resumes."""
    sweep(
        slow_point,
        {"a": [0, 1, 2, 3]},
        seeds=2,
        fixed={"marker_dir": markers},
        backend="serial",
        store=store,
        progress=False,
    )


GRID = {"a": [1, 2, 3], "b": [0.5, -1.0]}


# ------------------------------------------------------------------------------ tests
def thread_probe(i):
    import numba
    from threadpoolctl import threadpool_info

    blas = [d["num_threads"] for d in threadpool_info() if d["user_api"] in ("blas", "openmp")]
    return {"numba": numba.get_num_threads(), "pool": numba.config.NUMBA_NUM_THREADS, "blas": max(blas, default=1)}


def test_workers_run_single_threaded():
    env_before = {k: os.environ.get(k) for k in ("NUMBA_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS")}
    ds = sweep(thread_probe, {"i": [0, 1, 2, 3]}, backend="processes", workers=2, progress=False)
    assert np.all(ds["numba"] == 1) and np.all(ds["pool"] == 1) and np.all(ds["blas"] == 1)
    assert {k: os.environ.get(k) for k in env_before} == env_before  # the caller's environment is untouched


def test_backends_give_identical_datasets():
    env_before = dict(os.environ)
    serial = sweep(rich_point, GRID, seeds=2, backend="serial", progress=False)
    procs = sweep(rich_point, GRID, seeds=2, backend="processes", workers=2, progress=False)
    dask = pytest.importorskip("dask.distributed")
    del dask
    dsk = sweep(rich_point, GRID, seeds=2, backend="dask", workers=2, progress=False)
    assert dict(os.environ) == env_before  # dask's nannies set thread variables here; sweep puts them back
    for other in (procs, dsk):
        xr.testing.assert_identical(strip_run_info(serial), strip_run_info(other))
    assert (serial.attrs["backend"], procs.attrs["backend"], dsk.attrs["backend"]) == ("serial", "processes", "dask")
    # layout: grid dims in order, then seed, then each output's own dims
    assert serial["y"].dims == ("a", "b", "seed")
    assert serial["curve"].dims == ("a", "b", "seed", "curve_dim0")
    assert serial["spectrum"].dims == ("a", "b", "seed", "freq", "channel")
    assert serial["spectrum"].attrs["units"] == "1" and serial["freq"].attrs["units"] == "Hz"
    assert serial["count"].dtype.kind == "i" and serial["big"].dtype == np.int8
    np.testing.assert_array_equal(serial["count"].sel(a=3, b=0.5), [3, 13])
    assert serial["label"].sel(a=2, b=-1.0, seed=1).item() == "a=2"
    assert serial["wall_time"].attrs["units"] == "s" and np.all(serial["wall_time"] >= 0)
    assert np.all(serial["error"] == "")
    # the value of one point equals a direct call
    direct = rich_point(2, -1.0, 1)
    assert serial["y"].sel(a=2, b=-1.0, seed=1).item() == direct["y"]
    np.testing.assert_array_equal(serial["spectrum"].sel(a=2, b=-1.0, seed=1), direct["spectrum"])


def test_provenance_attributes():
    ds = sweep(plain_point, {"a": [1, 2]}, backend="serial", fixed=None, name="demo", progress=False)
    a = ds.attrs
    import json

    assert json.loads(a["versions"])["plrnn_numba"]
    assert a["function"] == "tests.test_sweep.plain_point"
    assert json.loads(a["grid"]) == {"a": [1, 2]}
    assert json.loads(a["fixed"]) == {}
    assert a["title"] == "demo" and a["backend"] == "serial" and a["host"] and a["created"]
    assert a["n_points"] == 2 and a["n_failed"] == 0
    assert set(RUN_ATTRS) <= set(a)
    assert not set(RUN_ATTRS) & set(strip_run_info(ds).attrs)


def mixed_point(flag, name, x, seed, data):
    return {"v": float(flag) + len(name) + x + seed + float(data.sum())}


def test_fixed_arrays_are_recorded_by_hash_and_odd_grids_round_trip(tmp_path):
    import json

    data = np.arange(100.0)
    ds = sweep(
        mixed_point,
        {"flag": [True, False], "name": ["ab", "c"], "x": [1, 2.5]},
        seeds=[1, 4],
        fixed={"data": data},
        backend="serial",
        progress=False,
        out=tmp_path / "m.nc",
        attrs={"extra": {"k": 1}, "ok": True},
        var_attrs={"v": {"units": "m"}},
        coord_attrs={"x": {"units": "s"}},
    )
    fixed = json.loads(ds.attrs["fixed"])
    assert fixed["data"]["shape"] == [100] and len(fixed["data"]["sha1"]) == 40
    assert ds["v"].sel(flag=True, name="ab", x=2.5, seed=4).item() == 1 + 2 + 2.5 + 4 + data.sum()
    assert ds["x"].attrs["units"] == "s" and ds["v"].attrs["units"] == "m"
    xr.testing.assert_identical(ds, io.open(tmp_path / "m.nc"))


def test_netcdf_round_trip(tmp_path):
    with pytest.warns(RuntimeWarning, match="1 of 2"):
        failed = sweep(raising_point, {"a": [1, 2]}, backend="serial", fixed={"seed": 0}, progress=False)
    ds = sweep(rich_point, GRID, seeds=[3, 5], backend="serial", progress=False, out=tmp_path / "r.nc")
    back = io.open(tmp_path / "r.nc")
    xr.testing.assert_identical(ds, back)
    io.save(failed, tmp_path / "f.nc")
    xr.testing.assert_identical(failed, io.open(tmp_path / "f.nc"))


def test_failing_point_is_recorded_and_the_rest_completes(tmp_path):
    with pytest.warns(RuntimeWarning, match="2 of 6 sweep points failed.*a == 2 is not allowed"):
        ds = sweep(raising_point, {"a": [1, 2, 3]}, seeds=2, backend="serial", store=tmp_path / "s", progress=False)
    err = ds["error"].sel(a=2)
    assert all(e == "ValueError: a == 2 is not allowed" for e in err.values)
    assert np.all(ds["error"].sel(a=[1, 3]) == "")
    assert np.all(np.isnan(ds["sq"].sel(a=2))) and np.all(np.isnan(ds["vec"].sel(a=2)))
    np.testing.assert_array_equal(ds["sq"].sel(a=3), [9.0, 10.0])  # int outputs became float for the NaN
    assert ds.attrs["n_failed"] == 2
    # failed points are stored: a rerun computes nothing, unless asked to retry them
    with pytest.warns(RuntimeWarning):
        again = sweep(raising_point, {"a": [1, 2, 3]}, seeds=2, backend="serial", store=tmp_path / "s", progress=False)
    assert again.attrs["n_computed"] == 0
    with pytest.warns(RuntimeWarning):
        retry = sweep(
            raising_point,
            {"a": [1, 2, 3]},
            seeds=2,
            backend="serial",
            store=tmp_path / "s",
            retry_failed=True,
            progress=False,
        )
    assert retry.attrs["n_computed"] == 2
    rec = pickle.loads((tmp_path / "s" / "points" / f"{point_key({'a': 2, 'seed': 0})}.pkl").read_bytes())
    assert rec["status"] == "error" and "Traceback" in rec["traceback"]


def test_killed_sweep_resumes_and_computes_every_point_once(tmp_path, monkeypatch):
    store, markers = tmp_path / "store", tmp_path / "markers"
    markers.mkdir()
    env = {**os.environ, "SWEEP_TEST_RUN": "first", "PYTHONPATH": str(REPO)}
    code = f"import tests.test_sweep as t; t._killable_sweep({str(store)!r}, {str(markers)!r})"
    proc = subprocess.Popen(
        [sys.executable, "-c", code], cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline:
            if len(list((store / "points").glob("*.pkl"))) >= 3 if (store / "points").exists() else False:
                break
            if proc.poll() is not None:
                pytest.fail(f"the sweep subprocess ended early: {proc.stderr.read().decode()[-2000:]}")
            time.sleep(0.02)
        else:
            pytest.fail("no points were stored within 60 s")
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
        proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL

    points = [(a, s) for a in range(4) for s in range(2)]
    keys = {point_key({"a": a, "seed": s}): (a, s) for a, s in points}
    stored = {keys[f.stem] for f in (store / "points").glob("*.pkl")}
    assert 3 <= len(stored) < len(points)
    (store / "points" / ".leftover.pkl.123.tmp").write_bytes(b"half a file")  # what a kill mid-write leaves

    monkeypatch.setenv("SWEEP_TEST_RUN", "second")
    ds = sweep(
        slow_point,
        {"a": [0, 1, 2, 3]},
        seeds=2,
        fixed={"marker_dir": str(markers)},
        backend="processes",
        workers=2,
        store=store,
        progress=False,
    )

    def calls(tag):
        out = {}
        for m in markers.iterdir():
            t, a, s, _ = m.name.split("__")
            if t == tag:
                out[(int(a), int(s))] = out.get((int(a), int(s)), 0) + 1
        return out

    second, first = calls("second"), calls("first")
    assert second == {p: 1 for p in points if p not in stored}  # only the missing points, once each
    assert stored <= set(first) and all(n == 1 for n in first.values())
    assert ds.attrs["n_resumed"] == len(stored) and ds.attrs["n_computed"] == len(points) - len(stored)
    expected = np.array([[10.0 * a + s for s in range(2)] for a in range(4)])
    np.testing.assert_array_equal(ds["value"].values, expected)
    assert np.all(ds["error"] == "")
    assert not list((store / "points").glob("*.tmp"))


def test_store_refuses_a_different_sweep(tmp_path):
    store = tmp_path / "s"
    sweep(plain_point, {"a": [1, 2]}, backend="serial", store=store, progress=False)
    before = sorted(p.name for p in (store / "points").iterdir())
    with pytest.raises(ValueError, match=r"different sweep \(grid differ"):
        sweep(plain_point, {"a": [1, 2, 3]}, backend="serial", store=store, progress=False)
    with pytest.raises(ValueError, match=r"\(function, seeds, fixed differ\)"):
        sweep(
            slow_point,
            {"a": [1, 2]},
            seeds=2,
            fixed={"marker_dir": str(tmp_path)},
            backend="serial",
            store=store,
            progress=False,
        )
    with pytest.raises(FileExistsError, match="already holds 2 finished point"):
        sweep(plain_point, {"a": [1, 2]}, backend="serial", store=store, resume=False, progress=False)
    assert sorted(p.name for p in (store / "points").iterdir()) == before
    # a second sweep cannot write into a store in use
    holder = Store(store)
    holder._lock()
    try:
        with pytest.raises(RuntimeError, match="in use by another running sweep"):
            sweep(plain_point, {"a": [1, 2]}, backend="serial", store=store, progress=False)
    finally:
        holder.close()
    assert sweep(plain_point, {"a": [1, 2]}, backend="serial", store=store, progress=False).attrs["n_computed"] == 0


@pytest.mark.parametrize(
    ("grid", "seeds", "exc", "match"),
    [
        ({}, None, ValueError, "grid is empty"),
        ({"a": []}, None, ValueError, r"grid\['a'\] is empty"),
        ({"a": 0.5}, None, TypeError, r"grid\['a'\] must be a list"),
        ({"a": [1, 1]}, None, ValueError, "twice"),
        ({"a": [[1, 2]]}, None, TypeError, "must be a number, a string or a boolean"),
        ({"seed": [1]}, None, ValueError, "reserved.*seeds="),
        ({"a": [1]}, 0, ValueError, "seeds must be >= 1"),
        ({"b": [1]}, None, TypeError, r"does not accept the argument\(s\) 'b' \(grid\)"),
    ],
)
def test_bad_grid_is_refused_before_anything_runs(grid, seeds, exc, match):
    with pytest.raises(exc, match=match):
        sweep(plain_point, grid, seeds=seeds, backend="serial", progress=False)


def test_bad_arguments():
    with pytest.raises(ValueError, match="backend must be one of"):
        sweep(plain_point, {"a": [1]}, backend="threads", progress=False)
    with pytest.raises(ValueError, match="scheduler= is only used with backend='dask'"):
        sweep(plain_point, {"a": [1]}, backend="serial", scheduler="tcp://127.0.0.1:1", progress=False)
    with pytest.raises(TypeError, match="requires 'seed'"):
        sweep(raising_point, {"a": [1]}, backend="serial", progress=False)
    with pytest.raises(ValueError, match="both a grid parameter and a fixed argument"):
        sweep(plain_point, {"a": [1]}, fixed={"a": 2}, backend="serial", progress=False)
    with pytest.raises(ValueError, match="workers must be a positive integer"):
        sweep(plain_point, {"a": [1]}, workers=0, progress=False)


def test_inconsistent_shapes_stop_the_sweep_and_keep_finished_points(tmp_path):
    store = tmp_path / "s"
    with pytest.raises(InconsistentOutputError, match=r"output 'x' has dims \('x_dim0',\), shape \(1,\).*shape \(2,\)"):
        sweep(ragged_point, {"a": [1, 2, 3]}, backend="serial", store=store, progress=False)
    assert [p.stem for p in (store / "points").glob("*.pkl")] == [point_key({"a": 1})]
    assert [p.stem for p in (store / "rejected").glob("*.pkl")] == [point_key({"a": 2})]


def test_non_serialisable_outputs_are_refused_with_the_name(tmp_path):
    store = tmp_path / "s"
    with pytest.raises(SweepOutputError, match=r"output 'f' is a callable .*at point a=2.*1 finished point"):
        sweep(lambda_point, {"a": [1, 2, 3]}, backend="serial", store=store, progress=False)
    assert [p.stem for p in (store / "points").glob("*.pkl")] == [point_key({"a": 1})]
    # the same check runs inside worker processes
    with pytest.raises(SweepOutputError, match=r"output 'o' holds Python objects \(object"):
        sweep(object_point, {"a": [1, 2, 3]}, backend="processes", workers=2, progress=False)
    with pytest.raises(SweepOutputError, match="must return a dict"):
        sweep(list_point, {"a": [1.0]}, backend="serial", progress=False)


@pytest.mark.parametrize(
    ("result", "match"),
    [
        ({"c": 1 + 2j}, "complex; netCDF has no complex type"),
        ({"n": None}, "output 'n' is NoneType"),
        ({"d": {"k": 1}}, "output 'd' is dict"),
        ({"r": [[1, 2], [3]]}, "output 'r' could not be converted"),
        ({"x": 1.0, "y": xr.DataArray([1, 2], dims="x")}, r"\['x'\] are also dimension or coordinate names"),
        ({"alpha": 1.0}, "output name 'alpha' is reserved"),
        ({"error": 1.0}, "output name 'error' is reserved"),
        ({"v": xr.DataArray([1, 2], dims="alpha")}, "uses the dimension"),
        (
            {
                "a": xr.DataArray([1, 2], dims="t", coords={"t": [0, 1]}),
                "b": xr.DataArray([1, 2], dims="t", coords={"t": [0, 2]}),
            },
            "coordinate 't' but with different values",
        ),
    ],
)
def test_unsupported_outputs_are_named(result, match):
    with pytest.raises(SweepOutputError, match=match):
        normalize_outputs(result, ("alpha", "seed"))


def test_unreachable_scheduler_fails_fast_and_keeps_the_store(tmp_path):
    pytest.importorskip("dask.distributed")
    store = tmp_path / "s"
    sweep(plain_point, {"a": [1, 2, 3]}, backend="serial", store=store, progress=False)
    (store / "points" / f"{point_key({'a': 3})}.pkl").unlink()
    t0 = time.perf_counter()
    with pytest.raises(ConnectionError, match=r"could not connect to the dask scheduler at 'tcp://127.0.0.1:9'"):
        sweep(
            plain_point, {"a": [1, 2, 3]}, scheduler="tcp://127.0.0.1:9", connect_timeout=1, store=store, progress=False
        )
    assert time.perf_counter() - t0 < 15
    assert len(list((store / "points").glob("*.pkl"))) == 2
    ds = sweep(plain_point, {"a": [1, 2, 3]}, backend="serial", store=store, progress=False)
    assert ds.attrs["n_computed"] == 1 and ds["x"].values.tolist() == [1.0, 2.0, 3.0]
    # nothing left to compute: no connection is needed
    done = sweep(plain_point, {"a": [1, 2, 3]}, scheduler="tcp://127.0.0.1:9", store=store, progress=False)
    xr.testing.assert_identical(strip_run_info(done), strip_run_info(ds))


def test_seed_modes():
    def seeds_of(mode):
        ds = sweep(seed_echo, {"a": [1, 2]}, seeds=[0, 7], seed_mode=mode, backend="serial", progress=False)
        return ds["got"].values

    np.testing.assert_array_equal(seeds_of("value"), [[0, 7], [0, 7]])
    per_point = seeds_of("per_point")
    assert len(np.unique(per_point)) == 4
    np.testing.assert_array_equal(per_point, seeds_of("per_point"))
    assert per_point[1, 1] == derived_seed(7, {"a": 2, "seed": 7})


def seed_echo(a, seed):
    return {"got": seed}


def test_cli_helpers():
    p = argparse.ArgumentParser()
    add_sweep_arguments(p, default_out="results/x.nc")
    args = p.parse_args([])
    kw = sweep_kwargs(args, p)
    assert kw["backend"] == "processes" and kw["store"] == Path("results/x.store") and not kw["resume"]
    assert args.mode == "quick" and seed_list(args, 3) == [0, 1, 2]
    args = p.parse_args(
        "--full --scheduler tcp://h:8786 --seed 5 --seeds 2 --resume --no-progress --out o.nc --store st".split()
    )
    kw = sweep_kwargs(args, p)
    assert args.mode == "full" and seed_list(args, 9) == [5, 6]
    assert kw == {
        "backend": "dask",
        "scheduler": "tcp://h:8786",
        "workers": None,
        "store": Path("st"),
        "out": Path("o.nc"),
        "resume": True,
        "retry_failed": False,
        "progress": False,
        "connect_timeout": 10.0,
    }
    assert sweep_kwargs(p.parse_args(["--resume", "--retry-failed"]), p)["retry_failed"] is True
    with pytest.raises(SystemExit):
        sweep_kwargs(p.parse_args(["--backend", "serial", "--scheduler", "tcp://h:1"]), p)
    with pytest.raises(SystemExit):
        p.parse_args(["--quick", "--full"])
    assert default_store("a/b") == Path("a/b.store")


def test_gtf_alpha_script_runs(tmp_path):
    sys.path.insert(0, str(REPO / "scripts"))
    try:
        import sweep_gtf_alpha
    finally:
        sys.path.remove(str(REPO / "scripts"))
    out = tmp_path / "gtf.nc"
    argv = "--backend serial --alphas 0.1 0.3 --seeds 1 --epochs 3 --no-progress --out".split() + [str(out)]
    assert sweep_gtf_alpha.main(argv) == 0
    ds = io.open(out)
    assert ds["dstsp"].dims == ("alpha", "seed") and ds["loss"].dims == ("alpha", "seed", "epoch")
    assert ds["dh"].dims == ("alpha", "seed") and np.all((ds["dh"].values >= 0) & (ds["dh"].values <= 1))
    assert np.all(ds["error"] == "") and np.all(np.isfinite(ds["final_loss"]))
    assert ds["alpha"].attrs["units"] == "1" and "sweep_gtf_alpha.py" in ds.attrs["script"]
    assert (tmp_path / "gtf.png").exists() and (tmp_path / "gtf.store" / "manifest.json").exists()
