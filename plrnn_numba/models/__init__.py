"""Models: one module per family, all sharing the kernel interface of :mod:`.base`."""

from .alrnn import ALRNN
from .base import (
    JACOBIAN_SIG,
    JACOBIAN_VJP_SIG,
    PARAM_VJP_SIG,
    STATE_VJP_SIG,
    STEP_SIG,
    TAPE_PARAM_VJP_SIG,
    TAPE_STATE_VJP_SIG,
    TAPE_STEP_SIG,
    Kernels,
    Model,
    TangentKernels,
    TapeKernels,
    build_kernels,
    jacobian_kernel,
    jacobian_vjp_kernel,
    param_vjp_kernel,
    state_vjp_kernel,
    step_kernel,
    tangent_kernel,
    tangent_vjp_kernel,
    tape_param_vjp_kernel,
    tape_state_vjp_kernel,
    tape_step_kernel,
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
    "TangentKernels",
    "TapeKernels",
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
    "tape_step_kernel",
    "tape_state_vjp_kernel",
    "tape_param_vjp_kernel",
    "tangent_kernel",
    "tangent_vjp_kernel",
    "STEP_SIG",
    "STATE_VJP_SIG",
    "PARAM_VJP_SIG",
    "JACOBIAN_SIG",
    "JACOBIAN_VJP_SIG",
    "TAPE_STEP_SIG",
    "TAPE_STATE_VJP_SIG",
    "TAPE_PARAM_VJP_SIG",
]
