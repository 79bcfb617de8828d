"""Training: optimisers, learning-rate schedules, batch sampling and the training loop."""

from .optim import SGD, Adam, AdamW, clip_by_global_norm, global_norm
from .sampling import SubsequenceSampler
from .schedules import ConstantLR, MultiStepLR, StepLR
from .trainer import TrainState, train

__all__ = [
    "SGD",
    "Adam",
    "AdamW",
    "clip_by_global_norm",
    "global_norm",
    "SubsequenceSampler",
    "ConstantLR",
    "StepLR",
    "MultiStepLR",
    "TrainState",
    "train",
]
