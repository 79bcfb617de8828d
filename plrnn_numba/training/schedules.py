"""Learning-rate schedules: ``lr(epoch) = base_lr * factor(epoch)``."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from .. import _validate as V


@dataclass(frozen=True)
class ConstantLR:
    """``factor = 1``."""

    def factor(self, epoch: int) -> float:
        """The factor of the base learning rate at ``epoch``.

        Parameters
        ----------
        epoch : int
            The epoch (0-based).

        Returns
        -------
        float
            1.
        """
        return 1.0

    def describe(self) -> dict:
        """Settings recorded in a training run's provenance.

        Returns
        -------
        dict
            The schedule's name and settings.
        """
        return {"schedule": "constant"}


@dataclass(frozen=True)
class StepLR:
    """``factor = gamma ** (epoch // step_size)``.

    Parameters
    ----------
    step_size : int
        Epochs between two decays.
    gamma : float
        Factor of each decay.
    """

    step_size: int
    gamma: float = 0.1

    def __post_init__(self):
        V.positive_int(self.step_size, "step_size")
        V.finite_float(self.gamma, "gamma", low=0.0)

    def factor(self, epoch: int) -> float:
        """The factor of the base learning rate at ``epoch``.

        Parameters
        ----------
        epoch : int
            The epoch (0-based).

        Returns
        -------
        float
            ``gamma ** (epoch // step_size)``.
        """
        return self.gamma ** (epoch // self.step_size)

    def describe(self) -> dict:
        """Settings recorded in a training run's provenance.

        Returns
        -------
        dict
            The schedule's name and settings.
        """
        return {"schedule": "step", "step_size": self.step_size, "gamma": self.gamma}


@dataclass(frozen=True)
class MultiStepLR:
    """``factor = gamma ** (number of milestones <= epoch)``.

    Parameters
    ----------
    milestones : sequence of int
        Increasing epochs at which the rate decays.
    gamma : float
        Factor of each decay.
    """

    milestones: Sequence[int]
    gamma: float = 0.1

    def __post_init__(self):
        if isinstance(self.milestones, (str, bytes)) or not hasattr(self.milestones, "__iter__"):
            raise TypeError(f"milestones must be a sequence of epochs, e.g. [30, 60]; got {self.milestones!r:.40}")
        ms = [V.positive_int(m, "milestones", minimum=0) for m in self.milestones]
        if ms != sorted(ms):
            raise ValueError(f"milestones must be increasing non-negative integers; got {ms}")
        V.finite_float(self.gamma, "gamma", low=0.0)

    def factor(self, epoch: int) -> float:
        """The factor of the base learning rate at ``epoch``.

        Parameters
        ----------
        epoch : int
            The epoch (0-based).

        Returns
        -------
        float
            ``gamma`` to the number of milestones reached.
        """
        return self.gamma ** sum(1 for m in self.milestones if epoch >= m)

    def describe(self) -> dict:
        """Settings recorded in a training run's provenance.

        Returns
        -------
        dict
            The schedule's name and settings.
        """
        return {"schedule": "multistep", "milestones": list(self.milestones), "gamma": self.gamma}


def as_schedule(s):
    if s is None:
        return ConstantLR()
    if hasattr(s, "factor"):
        return s
    raise TypeError(f"lr_schedule must be None, StepLR(...), MultiStepLR(...) or ConstantLR(); got {s!r}")
