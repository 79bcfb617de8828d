"""Sweeps that finish and survive dying workers and parents; scripts that stop with one clear line.

* A point whose call kills its worker process (here: a real segmentation
  fault) is retried once in a fresh worker, then recorded as failed with the
  signal in ``error``; the other points go on, a rerun computes nothing,
  ``retry_failed=True`` computes only the failed points again.  Both the
  ``processes`` and the ``dask`` backend.
* The calling process killed with ``SIGKILL`` or ``SIGTERM``: its workers
  (and multiprocessing's resource tracker) are gone within 5 s, and after a
  resume every point has been computed exactly once (the point function
  appends a line to a marker file per point when it finishes).
* Ctrl-C, ``SIGTERM`` and a store that already holds points: scripts print
  one line with the command that goes on, and no traceback.

The point functions are at module level so that worker processes can import
them as ``tests.test_sweep_faults.<name>``.
"""

from __future__ import annotations

import ctypes
import os
import pickle
import signal
import subprocess
import sys
import threading
import time
import warnings
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from plrnn_numba.sweep import (
    StoreExistsError,
    SweepInterrupted,
    WorkerFailure,
    derived_seed,
    point_key,
    strip_run_info,
    sweep,
)
from plrnn_numba.sweep._backends import WORKER_ENV, describe_exit

REPO = Path(__file__).resolve().parent.parent
CRASHING = (7, 23)  # points of crash_point that segfault while the CRASH file exists


# ------------------------------------------------------------------------ point functions
def _mark(marker_dir, i, text: str) -> None:
    with open(Path(marker_dir) / f"{i}.txt", "a") as f:
        f.write(text + "\n")


def crash_point(i, marker_dir):
    """Segfaults (a real one, in the calling thread) at the points CRASHING while marker_dir/CRASH exists."""
    if i in CRASHING and (Path(marker_dir) / "CRASH").exists():
        _mark(marker_dir, i, "crash")
        ctypes.string_at(0)  # reads address 0: SIGSEGV
    _mark(marker_dir, i, "ok")
    return {"x": float(i), "pid": os.getpid()}


def marker_point(i, marker_dir, duration):
    """Works ``duration`` seconds, then appends a line to marker_dir/<i>.txt: one line per finished call."""
    time.sleep(duration)
    _mark(marker_dir, i, "done")
    return {"x": 2.0 * i}


def big_fixed_point(i, marker_dir, duration, data):
    """``marker_point`` with a large fixed argument (its pickle is far larger than a pipe's buffer)."""
    return marker_point(i, marker_dir, duration)


def ragged_point(a):
    return {"x": np.zeros(a)}


def plain_point(a):
    return {"x": float(a)}


def bomb_point(a, bomb):
    return {"x": float(a)}


class _ExitWhenUnpickled:
    """A fixed argument whose unpickling ends the worker process (exit code 3) before it can run anything."""

    def __reduce__(self):
        return (os._exit, (3,))


class _FailsWhenUnpickled:
    def __reduce__(self):
        return (_raise_on_load, ())


def _raise_on_load():
    raise RuntimeError("cannot be loaded here")


def _run_marker_sweep(store: str, markers: str, n: int, duration: float, backend: str = "processes") -> None:
    """The sweep run in a child process by the parent-death tests."""
    sweep(
        marker_point,
        {"i": list(range(n))},
        fixed={"marker_dir": markers, "duration": duration},
        backend=backend,
        workers=2,
        store=store,
        progress=False,
    )


def _lines(markers: Path) -> dict[int, list[str]]:
    return {int(p.stem): p.read_text().split() for p in markers.glob("*.txt")}


def _alive(proc) -> bool:
    import psutil

    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _sigint_default() -> None:
    """``preexec_fn`` of a child that must stop on Ctrl-C even if this process ignores SIGINT."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _wait_for(condition, timeout: float, proc=None, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if proc is not None and proc.poll() is not None:
            pytest.fail(f"the child process ended early ({what}): {proc.stderr.read().decode()[-3000:]}")
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.01)


def _n_stored(store: Path) -> int:
    return len(list((store / "points").glob("*.pkl"))) if (store / "points").exists() else 0


# ------------------------------------------------------------------------ points that kill their worker
@pytest.mark.parametrize("backend", ["processes", "dask"])
def test_points_that_kill_their_worker_are_retried_then_recorded(backend, tmp_path):
    if backend == "dask":
        pytest.importorskip("dask.distributed")
    markers, store = tmp_path / "markers", tmp_path / "store"
    markers.mkdir()
    (markers / "CRASH").touch()
    grid = {"i": list(range(40))}
    kw = {"fixed": {"marker_dir": str(markers)}, "backend": backend, "workers": 2, "store": store, "progress": False}

    env_before = {k: os.environ.get(k) for k in WORKER_ENV}
    with pytest.warns(RuntimeWarning, match="2 of 40 sweep points failed"):
        ds = sweep(crash_point, grid, **kw)
    # the nannies that restarted the dead workers put the workers' variables into this process's environment;
    # the sweep gives it back (a NUMBA_NUM_THREADS left behind breaks every later numba compilation here)
    assert {k: os.environ.get(k) for k in WORKER_ENV} == env_before
    failed = [int(i) for i in ds["i"].values[ds["error"].values != ""]]
    assert failed == list(CRASHING)  # the right points, and only those
    for i in CRASHING:
        err = ds["error"].sel(i=i).item()
        assert err.startswith("WorkerDied:") and "SIGSEGV" in err, err
        assert np.isnan(ds["x"].sel(i=i))
    ok = ds.drop_sel(i=list(CRASHING))
    np.testing.assert_array_equal(ok["x"], ok["i"].astype(float))
    assert ds.attrs["n_failed"] == 2 and ds.attrs["n_computed"] == 40
    # every crashing point ran twice (once more in a fresh worker), every other point once
    lines = _lines(markers)
    assert {i: lines[i] for i in CRASHING} == {i: ["crash", "crash"] for i in CRASHING}
    if backend == "processes":
        assert all(lines[i] == ["ok"] for i in range(40) if i not in CRASHING)
    else:
        # dask keeps a finished point's result on its worker until this process fetched it; when that worker
        # dies first (here: at the start of the next, crashing point) dask computes the point again
        assert all(set(lines[i]) == {"ok"} for i in range(40) if i not in CRASHING)
        lines = _lines(markers)
    if backend == "processes":  # the two runs were in different processes, named in the message
        for i in CRASHING:
            pids = ds["error"].sel(i=i).item().split("pids ")[1].split(")")[0].split(", ")
            assert len(set(pids)) == 2

    # a rerun completes at once and computes nothing
    with pytest.warns(RuntimeWarning, match="2 of 40"):
        again = sweep(crash_point, grid, **kw)
    assert again.attrs["n_computed"] == 0 and again.attrs["n_resumed"] == 40
    assert _lines(markers) == lines

    # retry_failed computes exactly the two failed points again (the cause is gone now)
    (markers / "CRASH").unlink()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no failed points are left
        retried = sweep(crash_point, grid, retry_failed=True, **kw)
    assert retried.attrs["n_computed"] == 2 and retried.attrs["n_failed"] == 0
    assert np.all(retried["error"] == "")
    np.testing.assert_array_equal(retried["x"], retried["i"].astype(float))
    after = _lines(markers)
    assert {i: after[i] for i in CRASHING} == {i: ["crash", "crash", "ok"] for i in CRASHING}
    assert all(after[i] == lines[i] for i in range(40) if i not in CRASHING)


def test_a_worker_that_dies_while_starting_is_a_worker_failure_not_a_point(tmp_path):
    with pytest.raises(WorkerFailure, match=r"exited with code 3 while starting \(3 times\)"):
        sweep(bomb_point, {"a": [1, 2, 3]}, fixed={"bomb": _ExitWhenUnpickled()}, workers=2, progress=False)
    with pytest.raises(WorkerFailure, match="could not load the sweep function.*cannot be loaded here"):
        sweep(bomb_point, {"a": [1, 2]}, fixed={"bomb": _FailsWhenUnpickled()}, workers=1, progress=False)


def test_describe_exit():
    assert describe_exit(-signal.SIGSEGV).startswith("killed by signal SIGSEGV")
    assert describe_exit(-signal.SIGKILL).startswith("killed by signal SIGKILL")
    assert describe_exit(1) == "exited with code 1"
    assert describe_exit(None) == "ended (exit status unknown)"


def test_inconsistent_point_stored_by_a_worker_is_moved_out_of_the_store(tmp_path):
    store = tmp_path / "s"
    with pytest.raises(Exception, match=r"output 'x' has dims"):
        sweep(ragged_point, {"a": [1, 2, 3, 4]}, workers=1, store=store, progress=False)
    # only the consistent first point counts as finished; the refused and the in-flight ones were moved aside
    assert [p.stem for p in (store / "points").glob("*.pkl")] == [point_key({"a": 1})]
    assert point_key({"a": 2}) in {p.stem for p in (store / "rejected").glob("*.pkl")}


def test_a_worker_terminated_while_storing_its_point_finishes_the_store_and_is_not_rerun(tmp_path, monkeypatch):
    """SIGTERM that arrives while a worker stores its point waits for the write; the point is not computed again."""
    import plrnn_numba.sweep._backends as backends

    real_write = backends.write_point

    def write_then_terminated(points_dir, record):
        os.kill(os.getpid(), signal.SIGTERM)  # arrives inside the commit: deferred until the file is written
        real_write(points_dir, record)

    # fork: the workers inherit the patched module (spawned ones would import it afresh)
    monkeypatch.setattr(backends, "write_point", write_then_terminated)
    markers = tmp_path / "markers"
    markers.mkdir()
    n = 4
    ds = sweep(
        marker_point,
        {"i": list(range(n))},
        fixed={"marker_dir": str(markers), "duration": 0.0},
        workers=2,
        store=tmp_path / "store",
        start_method="fork",
        progress=False,
    )
    assert np.all(ds["error"] == "") and ds.attrs["n_computed"] == n
    np.testing.assert_array_equal(ds["x"], 2.0 * np.arange(n))
    assert _lines(markers) == {i: ["done"] for i in range(n)}  # no point ran twice
    pids = {pickle.loads(f.read_bytes())["pid"] for f in (tmp_path / "store" / "points").glob("*.pkl")}
    assert len(pids) == n  # every worker died after storing its first point, and was replaced


# ------------------------------------------------------------------------ the calling process dies
@pytest.mark.parametrize(
    ("backend", "sig"),
    [
        ("processes", signal.SIGKILL),
        ("processes", signal.SIGTERM),
        pytest.param("dask", signal.SIGKILL, marks=pytest.mark.slow),
    ],
    ids=["processes-SIGKILL", "processes-SIGTERM", "dask-SIGKILL"],
)
def test_workers_end_when_the_sweep_process_is_killed_and_no_point_runs_twice(backend, sig, tmp_path):
    psutil = pytest.importorskip("psutil")
    if backend == "dask":
        pytest.importorskip("dask.distributed")
    store, markers = tmp_path / "store", tmp_path / "markers"
    markers.mkdir()
    n, duration = 16, 0.3
    args = f"{str(store)!r}, {str(markers)!r}, {n}, {duration}, {backend!r}"
    code = f"import tests.test_sweep_faults as t; t._run_marker_sweep({args})"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(
        [sys.executable, "-c", code], cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        _wait_for(lambda: _n_stored(store) >= 3, 60, proc, "3 stored points")
        family = psutil.Process(proc.pid).children(recursive=True)  # the workers and the resource tracker
        assert len(family) >= 2
        proc.send_signal(sig)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stderr.close()
    assert proc.returncode == -sig
    t0 = time.monotonic()
    _wait_for(lambda: not any(_alive(p) for p in family), 5, what=f"the workers {[p.pid for p in family]} to end")
    gone_after = time.monotonic() - t0
    stored = _n_stored(store)
    assert stored < n, "the sweep finished before it was killed: make the points slower"
    time.sleep(2 * duration)  # a worker that outlived its parent would finish a point now
    assert _n_stored(store) == stored  # no worker outlived its parent and finished a point
    stored_keys = {f.stem for f in (store / "points").glob("*.pkl")}
    lost = {i for i in _lines(markers) if point_key({"i": i}) not in stored_keys}  # finished, not stored
    if backend == "processes":  # workers store their points: a point whose function returned is on disk
        assert not lost
    else:  # dask's results travel to this process to be stored: one finished in the last moment may be lost
        assert len(lost) <= 2

    ds = sweep(
        marker_point,
        {"i": list(range(n))},
        fixed={"marker_dir": str(markers), "duration": duration},
        workers=2,
        store=store,
        progress=False,
    )
    assert ds.attrs["n_resumed"] == stored and ds.attrs["n_computed"] == n - stored
    expected = {i: ["done", "done"] if i in lost else ["done"] for i in range(n)}
    assert _lines(markers) == expected, "a point was computed twice, or not at all"
    np.testing.assert_array_equal(ds["x"], 2.0 * np.arange(n))
    assert gone_after < 5


def test_ctrl_c_stops_the_workers_and_keeps_the_points(tmp_path, ctrl_c_raises):
    psutil = pytest.importorskip("psutil")
    store, markers = tmp_path / "store", tmp_path / "markers"
    markers.mkdir()
    n = 12
    kw = {"fixed": {"marker_dir": str(markers), "duration": 0.3}, "workers": 2, "store": store, "progress": False}
    me = psutil.Process()
    workers: list = []

    def interrupt():
        _wait_for(lambda: _n_stored(store) >= 2, 60, what="2 stored points")
        for p in me.children():
            try:
                if _alive(p) and "spawn_main" in " ".join(p.cmdline()):
                    workers.append(p)
            except psutil.Error:  # ended meanwhile (a worker of an earlier sweep)
                pass
        os.kill(os.getpid(), signal.SIGINT)  # what Ctrl-C does to this process

    timer = threading.Thread(target=interrupt, daemon=True)
    timer.start()
    with pytest.raises(SweepInterrupted, match=rf"of {n} points are stored in .*call sweep\(\) again") as info:
        sweep(marker_point, {"i": list(range(n))}, **kw)
    timer.join()
    assert isinstance(info.value, KeyboardInterrupt) and info.value.n_points == n
    assert workers and not any(_alive(p) for p in workers)  # stopped before sweep() returned
    assert info.value.n_done <= _n_stored(store) < n
    ds = sweep(marker_point, {"i": list(range(n))}, **kw)
    assert ds.attrs["n_computed"] == n - ds.attrs["n_resumed"]
    assert _lines(markers) == {i: ["done"] for i in range(n)}


def test_ctrl_c_while_the_workers_start_is_not_lost(tmp_path, ctrl_c_raises):
    # a large fixed argument used to travel with the worker's start, and this process waited for the new
    # interpreter to read it inside the window where Ctrl-C is ignored (so that the workers inherit the
    # ignore): a Ctrl-C then was lost and the sweep ran to its end
    store, markers = tmp_path / "store", tmp_path / "markers"
    markers.mkdir()
    n = 12
    kw = {"fixed": {"marker_dir": str(markers), "duration": 0.3, "data": np.zeros(4_000_000)}, "workers": 2,
          "store": store, "progress": False}

    def interrupt():
        _wait_for(lambda: (store / "manifest.json").exists(), 60, what="the store")
        time.sleep(0.05)  # the first worker is starting
        os.kill(os.getpid(), signal.SIGINT)

    timer = threading.Thread(target=interrupt, daemon=True)
    timer.start()
    with pytest.raises(SweepInterrupted):
        sweep(big_fixed_point, {"i": list(range(n))}, **kw)
    timer.join()
    assert _n_stored(store) < n


def _watched_grandchild_code(fallback: bool) -> str:
    patch = "b._set_parent_death_signal = lambda sig: False; " if fallback else ""
    return (
        "import os, sys, time; import plrnn_numba.sweep._backends as b; "
        + patch
        + "how = b.watch_parent(int(sys.argv[1]), poll=0.05); print(how, flush=True); time.sleep(60)"
    )


@pytest.mark.parametrize("fallback", [False, True], ids=["prctl", "poll"])
def test_watch_parent_ends_the_process_when_its_parent_dies(fallback, tmp_path):
    psutil = pytest.importorskip("psutil")
    if not fallback and not sys.platform.startswith("linux"):
        pytest.skip("prctl is Linux only")
    # parent: starts the watched process and waits; the test kills the parent
    parent_code = (
        "import subprocess, sys, os; "
        f"p = subprocess.Popen([sys.executable, '-c', {_watched_grandchild_code(fallback)!r}, str(os.getpid())], "
        "stdout=subprocess.PIPE, text=True); "
        "print(p.pid, p.stdout.readline().strip(), flush=True); p.wait()"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    parent = subprocess.Popen([sys.executable, "-c", parent_code], env=env, stdout=subprocess.PIPE, text=True)
    try:
        pid, how = parent.stdout.readline().split()
        assert how == ("poll" if fallback else "prctl")
        watched = psutil.Process(int(pid))
        parent.kill()
        parent.wait()
        t0 = time.monotonic()
        _wait_for(lambda: not _alive(watched), 5, what="the watched process to end")
        assert time.monotonic() - t0 < 5
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait()
        parent.stdout.close()


# ------------------------------------------------------------------------ bad input
@pytest.mark.parametrize(
    ("kwargs", "exc", "match"),
    [
        ({"resume": "yes"}, TypeError, "resume must be True or False"),
        ({"progress": 1}, TypeError, "progress must be True or False"),
        ({"retry_failed": True}, ValueError, "retry_failed=True needs store="),
        ({"store": 3}, TypeError, r"store must be a path \(str or pathlib.Path\)"),
        ({"out": ["x.nc"]}, TypeError, "out must be a path"),
        ({"store": "x.nc", "out": "x.nc"}, ValueError, "store and out are the same path"),
        ({"name": 5}, TypeError, "name must be a string"),
        ({"connect_timeout": 0}, ValueError, "connect_timeout must be a positive number"),
        ({"connect_timeout": float("nan")}, ValueError, "connect_timeout must be a positive number"),
        ({"start_method": "thread"}, ValueError, "start_method must be one of"),
        ({"cluster_kwargs": {"n_workers": 2}}, ValueError, "cluster_kwargs= configures the LocalCluster"),
        ({"backend": "dask", "cluster_kwargs": [1]}, TypeError, "cluster_kwargs must be a dict"),
        ({"attrs": [("a", 1)]}, TypeError, "attrs must be a dict"),
        ({"var_attrs": {"x": "metres"}}, TypeError, r"var_attrs\['x'\] must be a dict of attributes"),
        ({"coord_attrs": ["a"]}, TypeError, "coord_attrs must be a dict"),
        ({"scheduler": 8786}, TypeError, "scheduler must be the address of a dask scheduler"),
        ({"workers": 1.5}, ValueError, "workers must be a positive integer"),
        ({"fixed": [("b", 1)]}, TypeError, "fixed must be a dict"),
        ({"seed_mode": "random"}, ValueError, "seed_mode must be one of"),
    ],
)
def test_bad_arguments_are_refused_before_anything_runs(kwargs, exc, match, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(exc, match=match):
        sweep(plain_point, {"a": [1, 2]}, **{"backend": "serial", "progress": False, **kwargs})
    assert not list(tmp_path.iterdir())  # nothing was created


def test_bad_input_to_the_helpers():
    import xarray as xr

    with pytest.raises(TypeError, match="point_key: params must be a dict"):
        point_key([("a", 1)])
    with pytest.raises(TypeError, match=r"params\['a'\] must be a number, a string or a boolean"):
        point_key({"a": [1, 2]})
    assert point_key({"a": np.int64(1)}) == point_key({"a": 1})
    with pytest.raises(ValueError, match="seed must be a non-negative integer"):
        derived_seed(-1, {"a": 1})
    with pytest.raises(TypeError, match="params must be a dict"):
        derived_seed(1, [1])
    with pytest.raises(TypeError, match="expects the xarray.Dataset returned by sweep"):
        strip_run_info(xr.DataArray([1]))
    from plrnn_numba.sweep import Store

    with pytest.raises(TypeError, match="store must be a directory path"):
        Store(None)


def test_bad_input_to_the_cli_helpers():
    import argparse

    from plrnn_numba.cli import add_sweep_arguments, preset, run_sweep, seed_list, sweep_kwargs

    with pytest.raises(TypeError, match="prepared with add_sweep_arguments.*lacks"):
        sweep_kwargs(argparse.Namespace(out="x.nc"))
    parser = add_sweep_arguments(argparse.ArgumentParser(), default_out="x.nc")
    args = parser.parse_args(["--full"])
    with pytest.raises(ValueError, match="keys 'quick' and 'full'; no 'full'"):
        preset(args, {"quick": {}})
    with pytest.raises(ValueError, match="default_n must be a positive integer"):
        seed_list(args, 0)
    with pytest.raises(TypeError, match="parser must be the argparse.ArgumentParser"):
        run_sweep(plain_point, {"a": [1]}, args=args, parser=None)


# ------------------------------------------------------------------------ scripts
def _gtf_script():
    sys.path.insert(0, str(REPO / "scripts"))
    try:
        import sweep_gtf_alpha
    finally:
        sys.path.remove(str(REPO / "scripts"))
    return sweep_gtf_alpha


def test_script_refuses_an_existing_store_with_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(REPO)  # the commands in the message are relative to the current directory
    script = _gtf_script()
    out = tmp_path / "gtf.nc"
    argv = "--backend serial --alphas 0.1 --seeds 1 --epochs 2 --no-progress --out".split() + [str(out)]
    assert script.main(argv) == 0
    capsys.readouterr()
    with pytest.raises(SystemExit) as info:
        script.main(argv)
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    store = tmp_path / "gtf.store"
    resume = f"python scripts/sweep_gtf_alpha.py {' '.join(argv)} --resume"
    assert f"the store {store} already holds 1 finished point(s)" in err
    assert f"continue it with `{resume}`" in err and f"`rm -r {store}`" in err
    # the command it names works
    assert script.main(resume.split()[2:]) == 0
    assert "(0 computed)" in capsys.readouterr().out


def test_run_sweep_turns_store_errors_into_one_line(tmp_path, capsys):
    import argparse

    from plrnn_numba.cli import add_sweep_arguments, run_sweep

    parser = argparse.ArgumentParser(prog="demo.py")
    add_sweep_arguments(parser, default_out=tmp_path / "d.nc")
    args = parser.parse_args(["--backend", "serial", "--no-progress"])
    run_sweep(plain_point, {"a": [1, 2]}, args=args, parser=parser, argv=["--backend", "serial"])
    with pytest.raises(SystemExit) as info:
        run_sweep(plain_point, {"a": [1, 2, 3]}, args=parser.parse_args(["--resume"]), parser=parser, argv=[])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("demo.py: error: store") and "belongs to a different sweep (grid differ)" in err
    assert "Traceback" not in err
    # the library itself raises the exception (a FileExistsError) rather than exiting
    with pytest.raises(StoreExistsError) as exc:
        sweep(plain_point, {"a": [1, 2]}, backend="serial", store=tmp_path / "d.store", resume=False, progress=False)
    assert isinstance(exc.value, FileExistsError) and exc.value.n_points == 2


@pytest.mark.parametrize(("sig", "status"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)], ids=["SIGINT", "SIGTERM"])
def test_script_stopped_by_ctrl_c_or_sigterm_prints_one_line(sig, status, tmp_path):
    out = tmp_path / "gtf.nc"
    store = tmp_path / "gtf.store"
    argv = "--workers 1 --alphas 0.1 0.2 0.3 0.4 --seeds 3 --epochs 400 --no-progress --out".split() + [str(out)]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(
        [sys.executable, "scripts/sweep_gtf_alpha.py", *argv],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        preexec_fn=_sigint_default,
    )
    try:
        _wait_for(lambda: (store / "manifest.json").exists(), 60, proc, "the sweep to start")
        time.sleep(0.5)  # the workers are starting or running
        proc.send_signal(sig)
        stdout, stderr = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    err = stderr.decode()
    assert proc.returncode == status, err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err
    # on a machine that forces OpenBLAS onto older kernels the script warns once before its workers start
    # (BlasKernelWarning: its line and the source line under it); that is the machine's, not the stop's
    raw = err.splitlines()
    lines = [line for k, line in enumerate(raw) if line.strip() and "BlasKernelWarning" not in line
             and not (k > 0 and "BlasKernelWarning" in raw[k - 1])]
    assert len(lines) == 1, err
    why = "interrupted" if sig == signal.SIGINT else "stopped by SIGTERM"
    assert lines[0].startswith(f"sweep_gtf_alpha.py: {why}: "), lines[0]
    resume = f"python scripts/sweep_gtf_alpha.py {' '.join(argv)} --resume"
    assert f"are stored in {store}; resume with `{resume}`" in lines[0], lines[0]
    assert not stdout.strip()


def test_store_counts_are_consistent_with_the_lines(tmp_path):
    # helper sanity: a marker file per finished point, one line each
    markers = tmp_path / "m"
    markers.mkdir()
    for i in range(3):
        marker_point(i, markers, 0.0)
    assert Counter(len(v) for v in _lines(markers).values()) == {1: 3}
