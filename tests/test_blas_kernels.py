"""The BLAS kernel report: which OpenBLAS kernels numba's products run, and the warning when they are forced."""

import os
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

from plrnn_numba import config


def test_report_names_the_library_and_its_kernels():
    info = config.blas_kernels()
    assert set(info) == {"library", "version", "architecture", "forced_by", "cpu_avx512", "slower_than_cpu"}
    assert info["library"] in {"openblas", "mkl", "blis", None}
    # AVX2 kernels on an AVX-512 processor are reported as slower only for OpenBLAS
    if info["slower_than_cpu"]:
        assert info["library"] == "openblas" and info["cpu_avx512"]


def test_warning_only_when_forced_and_slower(monkeypatch):
    fake = {"library": "openblas", "version": "0", "architecture": "Haswell", "forced_by": "Haswell",
            "cpu_avx512": True, "slower_than_cpu": True}
    monkeypatch.setattr(config, "blas_kernels", lambda: dict(fake))
    with pytest.warns(config.BlasKernelWarning, match="OPENBLAS_CORETYPE=Haswell"):
        config.check_blas_kernels()
    for change in ({"forced_by": None}, {"slower_than_cpu": False}):
        monkeypatch.setattr(config, "blas_kernels", lambda change=change: {**fake, **change})
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            config.check_blas_kernels()


FAKE_SLOW = {"library": "openblas", "version": "0", "architecture": "Haswell", "forced_by": "Haswell",
             "cpu_avx512": True, "slower_than_cpu": True}


def test_the_check_runs_once_per_process(monkeypatch):
    monkeypatch.setattr(config, "blas_kernels", lambda: dict(FAKE_SLOW))
    monkeypatch.setattr(config, "_blas_checked", False)
    with pytest.warns(config.BlasKernelWarning):
        config.check_blas_kernels_once()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        config.check_blas_kernels_once()  # done already
        monkeypatch.setattr(config, "_blas_checked", False)
        config.check_blas_kernels_once(warn=False)  # what a sweep worker does: marks it done, no warning
        config.check_blas_kernels_once()


def slow_kernels_point(i):
    """A sweep point in a process whose BLAS report says 'forced onto slow kernels', then an engine's set-up."""
    config.blas_kernels = lambda: dict(FAKE_SLOW)
    config.prepare_engines()
    return {"x": float(i)}


def test_a_sweep_warns_once_not_once_per_worker():
    repo = Path(__file__).resolve().parent.parent
    code = (
        "import plrnn_numba.config as c; from tests.test_blas_kernels import FAKE_SLOW, slow_kernels_point; "
        "c.blas_kernels = lambda: dict(FAKE_SLOW); from plrnn_numba.sweep import sweep; "
        "sweep(slow_kernels_point, {'i': [0, 1, 2, 3]}, workers=2, progress=False)"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=repo, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(repo)})
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.count("BlasKernelWarning") == 1, proc.stderr


def test_malloc_thresholds_scale_with_the_machine_memory():
    MiB, GiB = 1 << 20, 1 << 30
    assert config.malloc_thresholds(24 * GiB) == (768 * MiB, 1536 * MiB)
    assert config.malloc_thresholds(1 * GiB) == (64 * MiB, 128 * MiB)  # the floor
    assert config.malloc_thresholds(512 * GiB) == (GiB, 2 * GiB)  # the cap
    mmap, trim = config.malloc_thresholds()  # this machine
    assert 64 * MiB <= mmap <= GiB and trim == 2 * mmap


def test_large_engine_buffers_are_reused_between_calls():
    # an LSTM call with an 80 MB tape (T x batch x 5N doubles): after the first calls, no page faults
    # (with the earlier fixed 64 MB mmap threshold the tape was mmapped, and faulted in, on every call)
    resource = pytest.importorskip("resource")
    if not sys.platform.startswith("linux") or os.environ.get("PLRNN_NUMBA_MALLOC_TUNE", "1") == "0":
        pytest.skip("glibc's malloc thresholds are tuned on Linux only")
    if config.malloc_thresholds()[0] < 128 << 20:
        pytest.skip("a machine with less than 4 GB keeps the 64 MB threshold")
    import numpy as np

    import plrnn_numba as pn

    rng = np.random.default_rng(0)
    N, B, T = 50, 100, 400
    model = pn.LSTM(N, n_inputs=1)
    batch = pn.Batch(targets=rng.normal(size=(B, T, 1)), inputs=rng.normal(size=(B, T, 1)), z0=np.zeros((B, 2 * N)))
    theta, readout = model.init(0), pn.LinearReadout(1)
    ro = readout.init(2 * N, 0)
    for _ in range(2):
        pn.loss_and_grad(model, theta, batch, readout=readout, readout_params=ro, n_threads=1)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(2):
        pn.loss_and_grad(model, theta, batch, readout=readout, readout_params=ro, n_threads=1)
    faults = (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 2
    assert faults < 1000, f"{faults:.0f} page faults a call: the tape's 20,000 pages were not reused"
