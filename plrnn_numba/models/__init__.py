"""Models: one module per family, all sharing the kernel interface of :mod:`.base`."""

from .alrnn import ALRNN
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
from .lstm import LSTM
from .orthogonal import OrthogonalRNN
from .piecewise import (
    NORMAL_FORM_KERNELS,
    PiecewiseLinear,
    RegionKernels,
    as_piecewise_linear,
    check_piecewise_linear,
    regions_kernel,
    rollout_kernel,
)
from .plrnn import PLRNN
from .rate import RateRNN
from .shallow import ShallowPLRNN
from .vanilla import VanillaRNN

__all__ = [
    "Model",
    "Kernels",
    "build_kernels",
    "PLRNN",
    "ALRNN",
    "PiecewiseLinear",
    "RegionKernels",
    "NORMAL_FORM_KERNELS",
    "regions_kernel",
    "rollout_kernel",
    "as_piecewise_linear",
    "check_piecewise_linear",
    "ShallowPLRNN",
    "VanillaRNN",
    "RateRNN",
    "LSTM",
    "OrthogonalRNN",
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
