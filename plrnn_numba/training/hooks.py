"""Hooks: code that :func:`plrnn_numba.train` runs at fixed points of every run.

A hook is any object with one or more of these optional methods:

``start(state)``
    Once, before the first epoch (``state.epoch == 0``): reset what a previous
    run left behind and check the model.
``before_epoch(state)``
    At the start of every epoch, before its learning rate, forcing strength and
    batches are evaluated.  ``state.theta`` is a writeable view of the model
    parameters being trained: what a hook changes in place is what the epoch
    trains on (gradient-flossing episodes do this:
    :class:`plrnn_numba.dynamics.flossing.FlossingEpisodes`).
``after_step(state)``
    After every optimiser step that was taken (a step from a non-finite
    gradient, or one undone because it made a parameter non-finite, is not
    followed by it).  ``state.theta`` is the writeable view of the updated
    parameters: a hook that changes it in place *projects* them onto a
    constraint set, i.e. projected gradient descent.  :class:`Projection`
    wraps a function into such a hook (the stable LSTM's norm constraint
    is one).
``add_to_history(ds)``
    Whenever the history Dataset is built (at checkpoints and at the end):
    return ``ds`` with the hook's own variables, coordinates and attributes
    added, or None after adding them to ``ds`` in place.

Every hook draws its random numbers from ``state.rng``, a stream of its own
spawned from the run's seed sequence (``train(..., seed=...)``): a run is
reproducible from its recorded seed, and a hook neither disturbs the batch
sampling nor another hook.  Hooks run in the order given.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..models.base import Model

#: the methods a hook may have (each optional)
HOOK_METHODS = ("start", "before_epoch", "after_step", "add_to_history")


@dataclass(frozen=True)
class HookState:
    """What a hook sees at the start of an epoch.

    Parameters
    ----------
    epoch : int
        The epoch about to run (0-based).
    theta : (P,) array
        The model parameters being trained: a writeable view, changes made in
        place (``state.theta[:] = ...``, ``state.theta[i] += ...``) are
        trained on.  The state is frozen: rebinding ``state.theta`` raises.
    model : Model
        The model being trained.
    rng : numpy.random.Generator
        This hook's own random stream for the whole run.
    """

    epoch: int
    theta: np.ndarray
    model: Model
    rng: np.random.Generator


class Hooks:
    """The hooks of one run, each with its own random stream.

    Parameters
    ----------
    hooks : hook, sequence of hooks, or None
    seed_sequence : numpy.random.SeedSequence
        The run's seed sequence; one child is spawned per hook.
    model : Model
    """

    def __init__(self, hooks, seed_sequence: np.random.SeedSequence, model: Model):
        self.hooks = _as_hooks(hooks)
        self.model = model
        self._rngs = [np.random.default_rng(s) for s in seed_sequence.spawn(len(self.hooks))]

    def call(self, method: str, epoch: int, theta: np.ndarray) -> None:
        """Call ``method`` (``"start"``, ``"before_epoch"`` or ``"after_step"``) of every hook that has it."""
        for hook, rng in zip(self.hooks, self._rngs):
            fn = getattr(hook, method, None)
            if fn is not None:
                fn(HookState(epoch, theta, self.model, rng))

    def add_to_history(self, ds):
        """``ds`` with every hook's contribution."""
        for hook in self.hooks:
            fn = getattr(hook, "add_to_history", None)
            if fn is not None:
                out = fn(ds)
                ds = ds if out is None else out
        return ds

    def describe(self) -> list:
        """The hooks, for the provenance attributes."""
        return [h.describe() if hasattr(h, "describe") else repr(h) for h in self.hooks]


def _as_hooks(hooks) -> tuple:
    if hooks is None:
        return ()
    if any(hasattr(hooks, m) for m in HOOK_METHODS):
        hooks = (hooks,)
    try:
        hooks = tuple(hooks)
    except TypeError:
        hooks = (hooks,)
    for h in hooks:
        if not any(callable(getattr(h, m, None)) for m in HOOK_METHODS):
            raise TypeError(
                f"hooks must be objects with one or more of the methods {', '.join(HOOK_METHODS)} "
                f"(e.g. plrnn_numba.dynamics.flossing.FlossingEpisodes); got {type(h).__name__}"
            )
    return hooks


class Projection:
    r"""A hook that maps the parameters onto a constraint set after every optimiser step.

    .. math::

        \theta \leftarrow \Pi(\theta) \quad \text{after each step }
        \theta \leftarrow \theta - \mathrm{lr}\,\mathrm{step}(g)

    Parameters
    ----------
    project : callable
        ``project(theta, model)``: changes ``theta`` (a writeable 1-D view of
        the model parameters) in place, or returns the projected vector (same
        shape), which is copied into it.
    at_start : bool
        Also project the initial parameters, before the first epoch (default
        True: the run then stays on the constraint set throughout).
    name : str, optional
        For the provenance record (default: the function's name).

    Notes
    -----
    Only the model parameters are projected; the optimiser's state (Adam's
    moments) is left as it is, as in the usual projected gradient descent.
    Projection is not part of the gradient: gradient checks of a constrained
    model are run without it.
    """

    def __init__(self, project, *, at_start: bool = True, name: str | None = None):
        if not callable(project):
            raise TypeError(f"project must be callable as project(theta, model); got {type(project).__name__}")
        if not isinstance(at_start, (bool, np.bool_)):
            raise TypeError(f"at_start must be True or False; got {type(at_start).__name__}")
        if name is not None and not isinstance(name, str):
            raise TypeError(f"name must be a string or None; got {type(name).__name__}")
        self.project = project
        self.at_start = bool(at_start)
        self.name = name or getattr(project, "__qualname__", type(project).__name__)

    def _apply(self, state: HookState) -> None:
        out = self.project(state.theta, state.model)
        if out is not None:
            out = np.asarray(out, dtype=float)
            if out.shape != state.theta.shape:
                raise ValueError(f"the projection {self.name} returned shape {out.shape}; expected the parameters' "
                                 f"{state.theta.shape} (or change theta in place and return None)")
            state.theta[:] = out

    def start(self, state: HookState) -> None:
        """Project the initial parameters (when ``at_start``).

        Parameters
        ----------
        state : HookState
            The run's state (``state.theta`` is changed in place).
        """
        if self.at_start:
            self._apply(state)

    def after_step(self, state: HookState) -> None:
        """Project the parameters after an optimiser step.

        Parameters
        ----------
        state : HookState
            The run's state (``state.theta`` is changed in place).
        """
        self._apply(state)

    def describe(self) -> dict:
        """Settings recorded in a training run's provenance.

        Returns
        -------
        dict
            The projection's name and ``at_start``.
        """
        return {"hook": "Projection", "project": self.name, "at_start": self.at_start}
