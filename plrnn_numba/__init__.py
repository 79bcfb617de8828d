"""plrnn_numba: dynamical-systems analysis of recurrent neural network training.

Hand-written models with analytic backpropagation through time, compiled with
numba; results as self-describing xarray Datasets.
"""

from . import cli, config, dynamics, ghost, interop, io, optim, sweep, tasks
from ._version import __version__
from .bptt import Batch, LossGrad, loss_and_grad, predict
from .forcing import GTF, ConstantAlpha, ExponentialAlpha, FreeRunning, LinearAlpha, SparseTF, Theorem3Alpha
from .models import ALRNN, LSTM, PLRNN, Model, OrthogonalRNN, RateRNN, ShallowPLRNN, VanillaRNN
from .readouts import IdentityReadout, LatentReadout, LinearReadout
from .simulate import simulate
from .training import SGD, Adam, AdamW, MultiStepLR, StepLR, SubsequenceSampler, train

__all__ = [
    "__version__", "Batch", "LossGrad", "loss_and_grad", "predict", "simulate",
    "GTF", "SparseTF", "FreeRunning", "ConstantAlpha", "LinearAlpha", "ExponentialAlpha", "Theorem3Alpha",
    "Model", "PLRNN", "ShallowPLRNN", "VanillaRNN", "ALRNN", "RateRNN", "LSTM", "OrthogonalRNN",
    "IdentityReadout", "LinearReadout",
    "LatentReadout",
    "SGD", "Adam", "AdamW", "StepLR", "MultiStepLR", "SubsequenceSampler", "train", "io",
    "config",
    "dynamics",
    "ghost",
    "sweep",
    "tasks",
    "cli",
    "interop",
    "optim",
]
