"""Data generators for the experiments of the source papers.

* :func:`delayed_copy`, :func:`delayed_temporal_xor`, :func:`delayed_spatial_xor`
  -- the binary delayed tasks of the gradient-flossing paper (Engelken (2023),
  "Gradient flossing: improving gradient descent through dynamic control of
  Jacobians"), as
  :class:`plrnn_numba.Batch` objects or xarray Datasets;
* :func:`delayed_activation` -- the delayed-activation task of the
  ghost-mechanism paper (Dinc et al., "A ghost mechanism: an analytical model
  of abrupt learning"): output 0 for a delay, then 1, from a fixed initial state;
* :func:`sine_wave`, :func:`symbol_classification` and :func:`class_accuracy`
  -- the tasks of the attractors-and-smoothness paper (Ribeiro et al. (2020),
  "Beyond exploding and vanishing gradients: analysing RNN training using
  attractors and smoothness");
* :func:`accuracy` -- bit accuracy of readout logits on the defined steps;
* :func:`task_batch_source` -- a ``(rng, epoch) -> Batch`` callable drawing a
  fresh batch per epoch, for :func:`plrnn_numba.train`.
"""

from .activation import delayed_activation
from .attractors import ENCODINGS, SYMBOLS, class_accuracy, sine_wave, symbol_classification
from .delayed import (
    TASKS,
    TaskBatchSource,
    accuracy,
    batch_from_dataset,
    delayed_copy,
    delayed_spatial_xor,
    delayed_temporal_xor,
    make_task,
    task_batch_source,
)

__all__ = [
    "ENCODINGS",
    "SYMBOLS",
    "TASKS",
    "TaskBatchSource",
    "accuracy",
    "batch_from_dataset",
    "class_accuracy",
    "delayed_activation",
    "delayed_copy",
    "delayed_spatial_xor",
    "delayed_temporal_xor",
    "make_task",
    "sine_wave",
    "symbol_classification",
    "task_batch_source",
]
