r"""Rate networks on the delayed-activation task, trained as the authors do (Figs. 3, 4, S1 and S2).

Dinc et al., "A ghost mechanism: an analytical model of abrupt learning",
train the leaky rate network (:class:`~plrnn_numba.models.rate.RateRNN`,
:math:`a = \Delta t/\tau = 0.5`)

.. math::

    x_{t+1} = (1 - a)\,x_t + a \tanh(W x_t + b), \qquad W = m\,n \ (\text{rank } R),
    \qquad x_0 = (-0.3, \dots, -0.3),

on one deterministic trial of the delayed-activation task
(:func:`plrnn_numba.tasks.delayed_activation`): target :math:`y_t = 0` for the
``n_delay`` steps of the delay and 1 for the ``n_active`` steps after it
(20 + 20 steps: :math:`T = 100` ms per phase at :math:`\Delta t = 5` ms).  The
output is :math:`o_t = \sigma(z_t)` with the logit

* ``readout="latent"`` (Figs. 3, 4, S1): :math:`z_t = c\,(\kappa_t - \kappa^*)`,
  :math:`\kappa_t = n_1 \cdot x_t`, confidence :math:`c = 10`, threshold
  :math:`\kappa^* = 1` (:class:`~plrnn_numba.readouts.LatentReadout`: the
  gradient reaches :math:`n`; :math:`c` trainable on request);
* ``readout="linear"`` (Fig. S2): :math:`z_t = w_{\rm out} \cdot x_t + b_{\rm out}`,
  both trained (:class:`~plrnn_numba.readouts.LinearReadout` ``(1)``).

Training is full-batch plain gradient descent on that one trial, without
momentum, clipping or weight decay (:func:`plrnn_numba.train` with
:class:`~plrnn_numba.SGD`).

The loss normalisation, and why the learning rate maps as it does
-----------------------------------------------------------------
The authors' loss divides the summed squared error of the ``n_delay +
n_active`` steps by the length of one phase, :math:`T` = ``n_delay`` steps:

.. math::

    \mathcal L_A = \frac1T \sum_{t=1}^{n_{\rm delay} + n_{\rm active}} (o_t - y_t)^2 .

The package's ``"sigmoid_mse"`` loss is the mean over the counted steps,
:math:`\mathcal L_P = \frac{1}{n_{\rm delay} + n_{\rm active}} \sum_t (o_t - y_t)^2`,
so :math:`\mathcal L_A = s\,\mathcal L_P` and
:math:`\nabla\mathcal L_A = s\,\nabla\mathcal L_P` with the constant

.. math::

    s = \frac{n_{\rm delay} + n_{\rm active}}{n_{\rm delay}} \quad (= 2 \text{ for the paper's task}).

A gradient-descent step with the authors' rate :math:`\alpha` on their loss,
:math:`\theta \leftarrow \theta - \alpha\,\nabla\mathcal L_A = \theta - (s\alpha)\,\nabla\mathcal L_P`,
is the package's step at the rate :math:`s\alpha` (:func:`package_lr`).  The
map is exact for plain SGD (no optimiser state, no clipping), and only for
it.  Every function here takes the **authors'** learning rate and records
the loss in **their** normalisation (``loss_authors``; at the no-learning
baseline, output 0 throughout, it is :math:`n_{\rm active}/n_{\rm delay} = 1`);
the history's own ``loss``, ``grad_norm`` and ``lr`` stay in the package's.
Run at the authors' rate on the package's mean loss, the steps are half as
long as theirs, and far fewer networks learn in 6000 epochs.

Metrics
-------
training accuracy
    The fraction of the ``n_delay + n_active`` steps whose output is on the
    right side of 1/2, i.e. whose logit has the sign of :math:`y_t - 1/2`.
    For the latent readout that is the sign of :math:`\kappa_t - \kappa^*`:
    it does not depend on :math:`c > 0`.  A network whose output stays 0 (or
    stays 1) scores exactly 0.5.  Recorded every epoch, at the parameters the
    epoch's loss is computed with (:func:`train_delayed_activation`).
learned at some point
    The training accuracy rose above 0.5, the no-learning zone's bound, in
    some epoch (:func:`learned_at_some_point`): the network left the
    baseline.  This reading of the paper's "learned the task at some point"
    reproduces its count, 74 of 100 networks
    (docs/reproductions/ghost_mechanism.md); reaching
    accuracy 1 is rarer (``first_epoch_accuracy_1``).
no-learning zone
    A training accuracy of at most 0.5 in each of the last 50 epochs
    (:func:`in_no_learning_zone`; the paper's Fig. 4).
epochs to learn
    The first epoch whose loss (authors' normalisation) is below
    ``1e-2`` (:func:`epochs_to_learn`; the paper's Fig. S2).

Accuracy costs one forward pass of the trial per epoch.  It is computed by a
small compiled loop over the factors (:math:`O(N R)` per step, about 2 us for
rank one with N = 100, against about 120 us for the epoch's loss and
gradient), through a training callback that records nothing itself.

See docs/reproductions/ghost_mechanism.md for the reproduced figures.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import xarray as xr

from .. import _validate as V
from .. import io
from ..config import njit
from ..models._fastmath import _tanh
from ..models.rate import RateRNN
from ..optim import SGD
from ..readouts import LatentReadout, LinearReadout
from ..tasks.activation import delayed_activation
from ..training.trainer import train

__all__ = [
    "READOUTS",
    "DEFAULT_C_VALUES",
    "Score",
    "loss_scale",
    "package_lr",
    "evaluate",
    "train_delayed_activation",
    "learned_at_some_point",
    "in_no_learning_zone",
    "epochs_to_learn",
    "lower_confidence",
]

#: the readouts of the paper: ``"latent"`` sigma(c (n_1 . x - kappa*)), ``"linear"`` sigma(w_out . x + b_out)
READOUTS = ("latent", "linear")
#: the authors' scan of the lowered confidence: logspace(-3, 1, 30)
DEFAULT_C_VALUES = np.logspace(-3.0, 1.0, 30)
_U1 = {"units": "1"}


# ------------------------------------------------------------------------ the loss normalisation
def loss_scale(n_delay: int = 20, n_active: int = 20) -> float:
    r"""The factor :math:`s = (n_{\rm delay} + n_{\rm active}) / n_{\rm delay}` from the package's loss to the authors'.

    :math:`\mathcal L_A = s\,\mathcal L_P`: the authors divide the summed
    squared error by the delay :math:`T` = ``n_delay`` steps, the package's
    ``"sigmoid_mse"`` by the number of steps (module docstring).  2 for the
    paper's 20 + 20 steps.

    Parameters
    ----------
    n_delay : int
        Steps with target 0.
    n_active : int
        Steps with target 1.

    Returns
    -------
    float
        The factor ``s``.
    """
    n_delay = V.positive_int(n_delay, "n_delay")
    n_active = V.positive_int(n_active, "n_active")
    return (n_delay + n_active) / n_delay


def package_lr(lr: float, *, n_delay: int = 20, n_active: int = 20) -> float:
    r"""The package SGD rate :math:`s\alpha` that takes exactly the authors' step of rate ``lr`` on their loss.

    Parameters
    ----------
    lr : float
        The authors' learning rate :math:`\alpha > 0` (on :math:`\mathcal L_A`).
    n_delay, n_active : int
        The task's phases (:func:`loss_scale`).

    Returns
    -------
    float
        :math:`s\alpha`, for :class:`~plrnn_numba.SGD` on the package's mean loss.
    """
    lr = V.finite_float(lr, "lr", low=0.0, open_low=True)
    return lr * loss_scale(n_delay, n_active)


# ------------------------------------------------------------------------ a fast forward pass
@njit
def _score_kernel(theta, ro, N, R, a, x0, latent, c, kappa_star, n_delay, n_active):
    # One forward pass of the trial: (accuracy, sum of squared output errors / n_delay), read from theta's
    # blocks (RateRNN layout, no inputs): rank R >= 1: m (N, R) | n (R, N) | b, and h = m (n x) + b in
    # O(N R) per step; R = 0: W (N, N) | b.  Logit z = c (n_1 . x - kappa*) (latent) or ro[:N] . x + ro[N].
    # tanh is the model kernel's own vectorisable one (no libm call: ~5x faster here).
    nb = 2 * N * R if R > 0 else N * N
    b = theta[nb : nb + N]
    x = np.full(N, x0)
    kap = np.empty(max(R, 1))
    h = np.empty(N)
    correct = 0
    sq = 0.0
    for t in range(n_delay + n_active):
        if R > 0:
            for q in range(R):
                acc = 0.0
                off = N * R + q * N  # row q of n
                for j in range(N):
                    acc += theta[off + j] * x[j]
                kap[q] = acc
            for i in range(N):
                acc = b[i]
                for q in range(R):
                    acc += theta[i * R + q] * kap[q]
                h[i] = acc
        else:
            for i in range(N):
                acc = b[i]
                for j in range(N):
                    acc += theta[i * N + j] * x[j]
                h[i] = acc
        z = 0.0
        for i in range(N):
            x[i] = (1.0 - a) * x[i] + a * _tanh(h[i])
        if latent:
            for i in range(N):
                z += theta[N * R + i] * x[i]
            z = c * (z - kappa_star)
        else:
            for i in range(N):
                z += ro[i] * x[i]
            z += ro[N]
        target = 1.0 if t >= n_delay else 0.0
        # right side of 1/2; a NaN logit (a diverged network) is wrong whatever the target
        if (z > 0.0) == (target > 0.5) and z == z:
            correct += 1
        o = 1.0 / (1.0 + np.exp(-z)) if z >= 0.0 else np.exp(z) / (1.0 + np.exp(z))
        sq += (o - target) * (o - target)
    return correct / (n_delay + n_active), sq / n_delay


class Score(NamedTuple):
    """Training accuracy and loss (authors' normalisation) of one network on the trial.

    Parameters
    ----------
    accuracy : float
        Fraction of the steps whose output lies on the side of 1/2 of the target.
    loss : float
        Summed squared error of the sigmoid output divided by ``n_delay``.
    """

    accuracy: float
    loss: float


class _Setup:
    """Validated experiment settings: the model's blocks, the readout and a fast scorer."""

    def __init__(self, model, readout, c, kappa_star, train_c, n_delay, n_active, x0):
        if not isinstance(model, RateRNN):
            raise TypeError("model must be a plrnn_numba.RateRNN (the paper's rate network, e.g. "
                            f"RateRNN(100, rank=1)); got {type(model).__name__}")
        if model.n_inputs != 0:
            raise ValueError(f"model must have no inputs (n_inputs=0): the delayed-activation task has none; got "
                             f"n_inputs={model.n_inputs}")
        self.model = model
        self.kind = V.choice(readout, "readout", READOUTS)
        self.c = V.finite_float(c, "c", low=0.0, open_low=True)
        self.kappa_star = V.finite_float(kappa_star, "kappa_star")
        self.train_c = V.flag(train_c, "train_c")
        self.n_delay = V.positive_int(n_delay, "n_delay")
        self.n_active = V.positive_int(n_active, "n_active")
        self.x0 = V.finite_float(x0, "x0")
        self.scale = loss_scale(self.n_delay, self.n_active)
        if self.kind == "latent":
            if model.rank is None:
                raise ValueError("readout='latent' reads kappa = n_1 . x of a low-rank RateRNN; this model has a "
                                 "full W (rank=None): use readout='linear' or RateRNN(..., rank=R)")
            self.readout = LatentReadout(c=self.c, kappa_star=self.kappa_star, train_c=self.train_c)
        else:
            if self.train_c:
                raise ValueError("train_c=True trains the confidence of the latent readout; readout='linear' "
                                 "trains w_out and b_out anyway (drop train_c)")
            self.readout = LinearReadout(1)
        self.batch = delayed_activation(model.n_units, n_delay=self.n_delay, n_active=self.n_active, x0=self.x0)

    def readout_params(self, readout_params, seed) -> np.ndarray:
        """Validated readout parameters (None: the readout's initial ones)."""
        ro = self.readout
        if self.kind == "latent":
            p = ro.check_params(readout_params, "readout_params")
            if p.size and not p[0] > 0.0:
                raise ValueError(f"readout_params must be [c] with the confidence c > 0 (the accuracy is the sign of "
                                 f"c (kappa - kappa*)); got c = {p[0]}")
            return p
        if readout_params is None:
            return ro.init(self.model.n_units, seed)
        p = V.as_float_array(readout_params, "readout_params")
        if p.shape != (ro.n_params(self.model.n_units),):
            raise ValueError(f"readout_params must have shape ({ro.n_params(self.model.n_units)},): w_out (N) then "
                             f"b_out; got {p.shape}")
        V.check_finite(p, "readout_params")
        return p.copy()

    def score(self, theta: np.ndarray, ro: np.ndarray) -> Score:
        """Accuracy and authors' loss of validated parameters (no checks: called every epoch)."""
        latent = self.kind == "latent"
        c = self.readout.confidence(ro) if latent else 1.0
        acc, loss = _score_kernel(theta, ro if ro.size else _EMPTY, self.model.n_units, self.model.rank or 0,
                                  self.model.alpha, self.x0, latent, c, self.kappa_star, self.n_delay, self.n_active)
        return Score(float(acc), float(loss))

    def describe(self) -> dict:
        return {"readout": self.kind, "c": self.c, "kappa_star": self.kappa_star, "train_c": self.train_c,
                "n_delay": self.n_delay, "n_active": self.n_active, "x0": self.x0}


_EMPTY = np.zeros(0)


def evaluate(
    model: RateRNN,
    theta,
    *,
    readout: str = "latent",
    c: float = 10.0,
    kappa_star: float = 1.0,
    readout_params=None,
    n_delay: int = 20,
    n_active: int = 20,
    x0: float = -0.3,
) -> Score:
    r"""Training accuracy and loss (authors' normalisation) of a network on the delayed-activation trial.

    .. math::

        \mathrm{acc} = \frac{1}{n_{\rm d} + n_{\rm a}}
            \sum_t \bigl[\mathrm{sign}(z_t) = \mathrm{sign}(y_t - \tfrac12)\bigr],
        \qquad \mathcal L_A = \frac{1}{n_{\rm d}} \sum_t \bigl(\sigma(z_t) - y_t\bigr)^2,

    with the logit :math:`z_t` of the readout (module docstring).

    Parameters
    ----------
    model : RateRNN
        A rate network without inputs.
    theta : (P,) array
        Its parameters.
    readout : {"latent", "linear"}
        :math:`z = c (n_1 \cdot x - \kappa^*)` or :math:`z = w_{\rm out} \cdot x + b_{\rm out}`.
    c, kappa_star : float
        Confidence :math:`c > 0` and threshold of the latent readout (a
        trained ``c`` is passed as ``readout_params=[c]``, which overrides ``c``).
    readout_params : array, optional
        Latent readout: ``[c]`` (optional).  Linear readout (required):
        ``w_out`` (N) then ``b_out``.
    n_delay, n_active : int
        The task's phases (steps).
    x0 : float
        Initial state of every unit.

    Returns
    -------
    Score
        ``(accuracy, loss)``.
    """
    setup = _Setup(model, readout, c, kappa_star, readout_params is not None and readout == "latent",
                   n_delay, n_active, x0)
    theta = model.check_theta(theta, "theta")
    if setup.kind == "linear" and readout_params is None:
        raise ValueError("readout_params is required for readout='linear': w_out (N) then b_out")
    return setup.score(theta, setup.readout_params(readout_params, 0))


# ------------------------------------------------------------------------------- training
def train_delayed_activation(
    model: RateRNN,
    theta,
    *,
    lr: float,
    n_epochs: int,
    readout: str = "latent",
    c: float = 10.0,
    kappa_star: float = 1.0,
    train_c: bool = False,
    readout_params=None,
    n_delay: int = 20,
    n_active: int = 20,
    x0: float = -0.3,
    snapshot_every: int = 100,
    seed=0,
    progress: bool = False,
) -> xr.Dataset:
    r"""Train a rate network on the delayed-activation trial as the authors do; record accuracy and their loss.

    Full-batch gradient descent on one deterministic trial (no momentum, no
    clipping), with the authors' learning rate on the authors' loss:

    .. math::

        \theta \leftarrow \theta - \alpha\,\nabla_\theta \mathcal L_A, \qquad
        \mathcal L_A = \frac{1}{n_{\rm delay}} \sum_t \bigl(\sigma(z_t) - y_t\bigr)^2,

    run as :func:`plrnn_numba.train` with ``SGD(lr=s * alpha)`` on the
    package's mean loss ``"sigmoid_mse"``, :math:`s` = :func:`loss_scale`
    (the same steps; module docstring).

    Parameters
    ----------
    model : RateRNN
        A rate network without inputs (the paper: ``RateRNN(100, rank=1)``).
    theta : (P,) array
        Initial parameters (not modified), e.g. ``model.init(seed)``.
    lr : float
        The **authors'** learning rate :math:`\alpha > 0`, on :math:`\mathcal L_A`
        (the paper: 0.02 for Figs. 3B and 4, 0.003 for Fig. 3A).
    n_epochs : int
        Gradient steps.
    readout : {"latent", "linear"}
        ``"latent"``: :math:`z = c(\kappa - \kappa^*)`, :math:`\kappa = n_1 \cdot x`
        (needs a low-rank model).  ``"linear"``: :math:`z = w_{\rm out} \cdot x + b_{\rm out}`,
        trained (Fig. S2).
    c : float
        Confidence :math:`c > 0` of the latent readout (its initial value if
        ``train_c``); the paper: 10.
    kappa_star : float
        Threshold :math:`\kappa^*` of the latent readout (the paper: 1).
    train_c : bool
        Train :math:`c` along with the network (latent readout only).
    readout_params : array, optional
        Initial readout parameters: ``[c]`` with ``train_c``; ``w_out`` (N)
        then ``b_out`` for the linear readout (default: drawn by
        ``LinearReadout.init``, :math:`w \sim \mathcal N(0, 1/N)`, ``b_out = 0``, from
        a child stream of ``seed``, ``SeedSequence(seed).spawn(1)[0]``: independent of
        ``model.init(seed)``, which draws from ``seed`` itself).
    n_delay, n_active : int
        Steps with target 0, then 1 (the paper: 20 and 20).
    x0 : float
        Initial state of every unit (the paper: -0.3).
    snapshot_every : int
        Keep the parameters every this many epochs (and after the last one),
        e.g. for :func:`plrnn_numba.ghost.latent_objects_along_training`.
    seed : int, None or numpy.random.Generator
        Seeds the linear readout's initialisation (the trial is deterministic);
        the history's ``seeds`` attribute repeats it.
    progress : bool
        Show a progress bar.

    Returns
    -------
    xarray.Dataset
        The history of :func:`plrnn_numba.train` (``loss``, ``grad_norm`` and
        ``lr`` in the **package's** normalisation: mean loss, rate
        :math:`s\alpha`; snapshots; ...), plus per epoch ``e``, at the
        parameters the epoch's loss is computed with (after ``e`` updates):

        * ``accuracy``: training accuracy (:func:`evaluate`);
        * ``loss_authors``: :math:`\mathcal L_A = s \times` ``loss``;
        * ``grad_norm_authors``: :math:`|\nabla \mathcal L_A| = s \times` ``grad_norm``;
        * ``c`` (with ``train_c``): the confidence;

        and ``final_accuracy``, ``final_loss_authors`` after the last update.
        Attributes ``lr_authors`` (:math:`\alpha`), ``loss_scale``
        (:math:`s`), ``n_delay``, ``n_active``, ``x0``, ``readout``, ``c``,
        ``kappa_star``, ``train_c``, ``learned_at_some_point`` (accuracy above
        0.5 in some epoch), ``first_epoch_accuracy_1`` (-1 if never),
        ``in_no_learning_zone`` (last 50 epochs) and ``epochs_to_learn``
        (first epoch with :math:`\mathcal L_A < 10^{-2}`, -1 if none).
    """
    setup = _Setup(model, readout, c, kappa_star, train_c, n_delay, n_active, x0)
    theta = model.check_theta(theta, "theta")
    lr = V.finite_float(lr, "lr", low=0.0, open_low=True)
    n_epochs = V.positive_int(n_epochs, "n_epochs")
    snapshot_every = V.positive_int(snapshot_every, "snapshot_every")
    progress = V.flag(progress, "progress")
    ss = V.seed_sequence(seed, "seed")
    # the readout draws from a child stream: model.init(seed) draws m and n from default_rng(seed), and
    # that same stream here would make w_out the first N entries of m (for rank one, w_out = m exactly)
    ro0 = setup.readout_params(readout_params, np.random.default_rng(ss.spawn(1)[0]))

    # accuracy and loss at the parameters before each update: the initial ones here, then the ones the
    # callback sees after epoch e (those of epoch e + 1).  The callback records nothing in the history
    # (returning None costs ~2 us; returning a dict ~70 us, more than the forward pass)
    scores = [setup.score(theta, ro0)]
    confidences = [setup.readout.confidence(ro0)] if setup.kind == "latent" else []

    def record(state):
        scores.append(setup.score(state.theta, state.readout_params))
        if setup.train_c:
            confidences.append(float(state.readout_params[0]))

    ds = train(model, theta, setup.batch, n_epochs=n_epochs, optimizer=SGD(lr=package_lr(
        lr, n_delay=setup.n_delay, n_active=setup.n_active)), readout=setup.readout,
        readout_params=ro0 if ro0.size else None, loss="sigmoid_mse", snapshot_every=snapshot_every,
        callback=record, seed=int(ss.entropy), progress=progress)
    return _add_records(ds, setup, lr, scores, confidences)


def _add_records(ds: xr.Dataset, setup: _Setup, lr: float, scores: list, confidences: list) -> xr.Dataset:
    """The history with accuracy, the authors' loss and the final score."""
    n = ds.sizes["epoch"]
    s = setup.scale
    acc = np.array([sc.accuracy for sc in scores[:n]])
    ds["accuracy"] = ("epoch", acc, {**_U1, "long_name": "training accuracy (fraction of steps with the output on "
                                                         "the right side of 1/2), at the epoch's parameters"})
    ds["loss_authors"] = ("epoch", s * ds["loss"].values,
                          {**_U1, "long_name": f"loss in the authors' normalisation, sum_t (o_t - y_t)^2 / T with "
                                               f"T = n_delay = {setup.n_delay} steps (= loss x {s:g})"})
    ds["grad_norm_authors"] = ("epoch", s * ds["grad_norm"].values,
                               {**_U1, "long_name": "norm of the gradient of the authors' loss (= grad_norm x "
                                                    f"{s:g})"})
    if setup.train_c:
        ds["c"] = ("epoch", np.array(confidences[:n]), {**_U1, "long_name": "confidence c (trained)"})
    ds["loss"].attrs["long_name"] = ("training loss in the package's normalisation: mean over the "
                                     f"{setup.n_delay + setup.n_active} steps of (o_t - y_t)^2")
    ds["lr"].attrs["long_name"] = f"package SGD rate on the mean loss (= the authors' rate x {s:g})"
    ro = ds["readout_params"].values if "readout_params" in ds else np.zeros(0)
    final = setup.score(ds["theta"].values, ro)
    ds["final_accuracy"] = ((), final.accuracy, {**_U1, "long_name": "training accuracy after the last update"})
    ds["final_loss_authors"] = ((), final.loss, {**_U1, "long_name": "loss (authors' normalisation) after the "
                                                                     "last update"})
    ds.attrs.update({"lr_authors": lr, "loss_scale": s, **{k: (int(v) if isinstance(v, bool) else v)
                                                            for k, v in setup.describe().items()}})
    perfect = np.flatnonzero(acc >= 1.0)
    ds.attrs.update({"learned_at_some_point": int(learned_at_some_point(ds)),
                     "first_epoch_accuracy_1": int(perfect[0]) if perfect.size else -1,
                     "in_no_learning_zone": int(in_no_learning_zone(ds, last=min(50, n))),
                     "epochs_to_learn": epochs_to_learn(ds)})
    return ds


# ------------------------------------------------------------------------------- metrics
def _history(history, *names) -> xr.Dataset:
    if not isinstance(history, xr.Dataset):
        raise TypeError(f"history must be the xarray.Dataset of train_delayed_activation; got "
                        f"{type(history).__name__}")
    missing = [k for k in names if k not in history]
    if missing:
        raise ValueError(f"history lacks {missing}: pass the Dataset of train_delayed_activation (plrnn_numba.train "
                         "alone records neither the accuracy nor the authors' loss)")
    if history.sizes.get("epoch", 0) == 0:
        raise ValueError("history has no epoch")
    return history


def _threshold(x, name: str, low: float = 0.0, high: float | None = None) -> float:
    return V.finite_float(x, name, low=low, high=high)


def learned_at_some_point(history: xr.Dataset, *, above: float = 0.5) -> bool:
    r"""Whether the training accuracy rose above ``above`` in some epoch (or after the last update).

    .. math:: \max_e \mathrm{acc}_e > \mathrm{above}

    The default 0.5 is the no-learning zone's bound (:func:`in_no_learning_zone`),
    so a network has learned at some point exactly when some epoch was outside
    the zone: the paper's Fig. 4 count (module docstring).  With 40 steps the
    accuracy moves in steps of 1/40, so ``above=0.97`` asks for every step right.

    Parameters
    ----------
    history : xarray.Dataset
        From :func:`train_delayed_activation` (``accuracy``, ``final_accuracy``).
    above : float
        In [0, 1).

    Returns
    -------
    bool
        True if the accuracy exceeded ``above``.
    """
    h = _history(history, "accuracy")
    above = V.finite_float(above, "above", low=0.0, high=1.0)
    if above >= 1.0:
        raise ValueError("above must be < 1: no accuracy exceeds 1 (for every step right use e.g. above=0.99)")
    acc = h["accuracy"].values
    if "final_accuracy" in h:
        acc = np.append(acc, float(h["final_accuracy"]))
    return bool(np.nanmax(acc) > above) if np.any(np.isfinite(acc)) else False


def in_no_learning_zone(history: xr.Dataset, *, last: int = 50, max_accuracy: float = 0.5) -> bool:
    r"""Whether the training accuracy was at most ``max_accuracy`` in each of the last ``last`` epochs.

    .. math:: \mathrm{acc}_e \le 0.5 \quad \text{for } e = E - \mathrm{last}, \dots, E - 1

    (the paper's Fig. 4: a network whose output stays on one side of 1/2 scores 0.5).

    Parameters
    ----------
    history : xarray.Dataset
        From :func:`train_delayed_activation`.
    last : int
        Number of final epochs (1 .. the epochs recorded).
    max_accuracy : float
        The zone's accuracy bound, in [0, 1].

    Returns
    -------
    bool
        True if the network stayed in the zone.
    """
    h = _history(history, "accuracy")
    last = V.positive_int(last, "last", maximum=h.sizes["epoch"])
    max_accuracy = _threshold(max_accuracy, "max_accuracy", high=1.0)
    acc = h["accuracy"].values[-last:]
    return bool(np.all(acc <= max_accuracy))


def epochs_to_learn(history: xr.Dataset, *, threshold: float = 1e-2) -> int:
    r"""The first epoch whose loss (authors' normalisation) is below ``threshold``; -1 if none.

    .. math:: \min\{e : \mathcal L_A(e) < \mathrm{threshold}\}

    (the paper's Fig. S2: learned when the normalised loss falls below
    :math:`10^{-2}`; the no-learning baseline is :math:`n_{\rm active}/n_{\rm delay} = 1`).
    Epoch ``e`` is the loss after ``e`` updates.

    Parameters
    ----------
    history : xarray.Dataset
        From :func:`train_delayed_activation` (``loss_authors``).
    threshold : float
        > 0.

    Returns
    -------
    int
        The epoch, or -1.
    """
    h = _history(history, "loss_authors")
    threshold = V.finite_float(threshold, "threshold", low=0.0, open_low=True)
    below = np.flatnonzero(h["loss_authors"].values < threshold)
    return int(below[0]) if below.size else -1


# --------------------------------------------------------------------------- lowering confidence
def lower_confidence(
    model: RateRNN,
    theta,
    *,
    c_values=None,
    n_epochs: int = 100,
    lr: float = 0.02,
    kappa_star: float = 1.0,
    c_eval: float = 10.0,
    n_delay: int = 20,
    n_active: int = 20,
    x0: float = -0.3,
) -> xr.Dataset:
    r"""Train a (stuck) network further at lowered confidences; one run per ``c`` (the paper's Fig. 4).

    For every :math:`c` in ``c_values``, ``n_epochs`` more epochs of
    :func:`train_delayed_activation` from ``theta`` with the latent readout
    :math:`\sigma(c(\kappa - \kappa^*))` at fixed :math:`c` and the authors'
    rate ``lr``.  The accuracy, :math:`\mathrm{sign}(c(\kappa - \kappa^*))`
    against the target, does not depend on :math:`c > 0`, so it compares
    directly across :math:`c` and with the network before.  Lower :math:`c`
    flattens the sigmoid, so that steps far from the threshold still carry a
    gradient (the toy model's non-zero gradient beyond the point of no return
    at finite confidence).

    Parameters
    ----------
    model : RateRNN
        A low-rank rate network without inputs.
    theta : (P,) array
        Its parameters (e.g. the final ``theta`` of a stuck run).
    c_values : 1-D array, optional
        Confidences, each > 0 (default: the authors' ``logspace(-3, 1, 30)``).
    n_epochs : int
        Extra epochs per confidence (the paper: 100).
    lr : float
        The authors' learning rate (0.02).
    kappa_star : float
        Threshold of the readout.
    c_eval : float
        The confidence the network is scored with afterwards
        (``final_loss_at_c_eval``): the original one, 10.
    n_delay, n_active : int
        The task's phases (:func:`train_delayed_activation`).
    x0 : float
        Initial state of every unit.

    Returns
    -------
    xarray.Dataset
        Dimension ``c``; per ``c``: ``final_accuracy``, ``max_accuracy``
        (over the extra epochs and the end), ``final_loss`` (authors'
        normalisation, at that ``c``), ``final_loss_at_c_eval``, ``recovered``
        (final accuracy > 0.5: out of the no-learning zone), ``relearned``
        (final accuracy 1), and along ``epoch`` the ``accuracy`` and
        ``loss`` (authors') curves.  Scalars ``initial_accuracy`` and
        ``initial_loss_at_c_eval``.
    """
    c_eval = V.finite_float(c_eval, "c_eval", low=0.0, open_low=True)  # named here: _Setup would call it "c"
    base = _Setup(model, "latent", c_eval, kappa_star, False, n_delay, n_active, x0)
    theta = model.check_theta(theta, "theta")
    if c_values is None:
        c_values = DEFAULT_C_VALUES
    cs = V.as_float_array(c_values, "c_values")
    if cs.ndim != 1 or cs.size == 0:
        raise ValueError(f"c_values must be a non-empty 1-D array of confidences; got shape {cs.shape}")
    V.check_finite(cs, "c_values")
    if np.any(cs <= 0):
        raise ValueError(f"c_values must all be > 0 (the accuracy is sign(c (kappa - kappa*))); got min {cs.min()}")
    n_epochs = V.positive_int(n_epochs, "n_epochs")
    lr = V.finite_float(lr, "lr", low=0.0, open_low=True)
    before = base.score(theta, np.zeros(0))
    rows = []
    for c in cs:
        h = train_delayed_activation(model, theta, lr=lr, n_epochs=n_epochs, c=float(c), kappa_star=base.kappa_star,
                                     n_delay=base.n_delay, n_active=base.n_active, x0=base.x0,
                                     snapshot_every=n_epochs)
        at_eval = base.score(h["theta"].values, np.zeros(0))
        fa = float(h["final_accuracy"])
        rows.append((fa, max(float(h["accuracy"].max()), fa), float(h["final_loss_authors"]), at_eval.loss,
                     h["accuracy"].values, h["loss_authors"].values))
    fa, ma, fl, fle, acc, loss = (np.array(v) for v in zip(*rows))
    epoch = np.arange(acc.shape[1])
    arguments = {"model": model.describe(), "c_values": cs.tolist(), "n_epochs": n_epochs, "lr": lr,
                 "c_eval": base.c, **base.describe()}
    return xr.Dataset(
        {
            "final_accuracy": ("c", fa, {**_U1, "long_name": "training accuracy after the extra epochs"}),
            "max_accuracy": ("c", ma, {**_U1, "long_name": "highest training accuracy during the extra epochs"}),
            "final_loss": ("c", fl, {**_U1, "long_name": "loss (authors' normalisation) at this c after the extra "
                                                         "epochs"}),
            "final_loss_at_c_eval": ("c", fle, {**_U1, "long_name": f"loss (authors' normalisation) at c = "
                                                                    f"{base.c:g} after the extra epochs"}),
            "recovered": ("c", (fa > 0.5).astype(np.int8), {**_U1, "long_name": "1 if the final accuracy is above "
                                                                               "0.5 (out of the no-learning zone)"}),
            "relearned": ("c", (fa >= 1.0).astype(np.int8), {**_U1, "long_name": "1 if the final accuracy is 1"}),
            "accuracy": (("c", "epoch"), acc, {**_U1, "long_name": "training accuracy at the start of each extra "
                                                                   "epoch"}),
            "loss": (("c", "epoch"), loss, {**_U1, "long_name": "loss (authors' normalisation, at this c) at the "
                                                                "start of each extra epoch"}),
            "initial_accuracy": ((), before.accuracy, {**_U1, "long_name": "training accuracy before"}),
            "initial_loss_at_c_eval": ((), before.loss, {**_U1, "long_name": f"loss at c = {base.c:g} before"}),
        },
        coords={"c": ("c", cs, {**_U1, "long_name": "lowered confidence c"}),
                "epoch": ("epoch", epoch, {"units": "1", "long_name": "extra epoch (0-based)"})},
        attrs={**io.provenance("plrnn_numba.ghost.rnn.lower_confidence", arguments), "lr_authors": lr,
               "c_eval": base.c, "n_epochs": n_epochs},
    )
