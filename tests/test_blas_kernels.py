"""The BLAS kernel report: which OpenBLAS kernels numba's products run, and the warning when they are forced."""

import warnings

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
