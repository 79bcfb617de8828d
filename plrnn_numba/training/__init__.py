"""Training: the training loop, its history, hooks, learning-rate schedules, batch sampling and loss jumps.

The optimisers live in the neutral module :mod:`plrnn_numba.optim` (gradient
flossing uses them too) and are re-exported here.
"""

from ..optim import SGD, Adam, AdamW, clip_by_global_norm, global_norm
from .history import History
from .hooks import HookState, Projection
from .jumps import detect_loss_jumps, match_jumps_to_events
from .sampling import SubsequenceSampler
from .schedules import ConstantLR, MultiStepLR, StepLR
from .trainer import StopTraining, TrainState, train

__all__ = [
    "SGD",
    "Adam",
    "AdamW",
    "clip_by_global_norm",
    "global_norm",
    "History",
    "HookState",
    "Projection",
    "SubsequenceSampler",
    "ConstantLR",
    "StepLR",
    "MultiStepLR",
    "StopTraining",
    "TrainState",
    "train",
    "detect_loss_jumps",
    "match_jumps_to_events",
]
