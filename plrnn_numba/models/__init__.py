"""Models: one module per family, all sharing the kernel interface of :mod:`.base`."""

from .base import (
    JACOBIAN_SIG,
    JACOBIAN_VJP_SIG,
    PARAM_VJP_SIG,
    STATE_VJP_SIG,
    STEP_SIG,
    Kernels,
    Model,
    build_kernels,
    jacobian_kernel,
    jacobian_vjp_kernel,
    param_vjp_kernel,
    state_vjp_kernel,
    step_kernel,
)
from .plrnn import PLRNN
from .shallow import ShallowPLRNN
from .vanilla import VanillaRNN

__all__ = [
    "Model",
    "Kernels",
    "build_kernels",
    "PLRNN",
    "ShallowPLRNN",
    "VanillaRNN",
    "step_kernel",
    "state_vjp_kernel",
    "param_vjp_kernel",
    "jacobian_kernel",
    "jacobian_vjp_kernel",
    "STEP_SIG",
    "STATE_VJP_SIG",
    "PARAM_VJP_SIG",
    "JACOBIAN_SIG",
    "JACOBIAN_VJP_SIG",
]
