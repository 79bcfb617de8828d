r"""Tasks of the attractors-and-smoothness paper: sine-wave generation and symbol classification.

Ribeiro, Tiels, Aguirre and Schön (2020), "Beyond exploding and vanishing
gradients: analysing RNN training using attractors and smoothness", train
LSTMs, stable LSTMs and orthogonal RNNs on two tasks (their Sect. 5).

Sine-wave generation (:func:`sine_wave`)
    A constant input :math:`\omega` for the whole sequence; the target is the
    unit-amplitude sine of that frequency,

    .. math:: u_t = \omega, \qquad y_t = \sin\bigl(\omega\, t\bigr), \qquad t = 1, \dots, T,

    for 100 frequencies evenly spaced in :math:`[\pi/16, \pi/8]` and
    :math:`T = 400` (the authors' settings).  Deterministic; every step counts.
    The network must turn a constant input into an oscillation: an attractor
    that a contracting (stable) model cannot have.

Symbol classification (:func:`symbol_classification`)
    Sequences over the six symbols :math:`\{p, q, a, b, c, d\}`, one-hot
    encoded (channel 0 = p, 1 = q, 2..5 = the distractors a..d).  Two
    *relevant* symbols, each p or q, sit at random steps
    :math:`t_1 \in [10, 19]` and :math:`t_2 \in [40, 49]` (1-based, as the
    authors' code draws them); every other step holds a random distractor.
    The class is the ordered pair, :math:`(p,p), (p,q), (q,p), (q,q)` = 0, 1,
    2, 3, and it is scored at the last step only (the mask is 1 there, 0
    elsewhere).  Always answering :math:`(p,p)` scores 0.25.

    ``encoding="onehot"`` gives 4 targets (the class one-hot, for a softmax
    readout trained with ``loss="ce"``, as the authors do); ``encoding="bits"``
    gives 2 targets, which symbol came first and which second (0 = p, 1 = q),
    for ``loss="bce"`` on two logits: a factorised model of the same four
    classes.  :func:`class_accuracy` scores either.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from .. import _validate as V
from .. import io
from ..bptt import Batch

__all__ = ["ENCODINGS", "N_SYMBOLS", "SYMBOLS", "class_accuracy", "sine_wave", "symbol_classification"]

#: the symbols in channel order: the relevant p and q, then the distractors
SYMBOLS = ("p", "q", "a", "b", "c", "d")
N_SYMBOLS = len(SYMBOLS)
#: target encodings of :func:`symbol_classification`
ENCODINGS = ("onehot", "bits")
_U1 = {"units": "1"}


def sine_wave(
    n_seq: int = 100,
    n_steps: int = 400,
    *,
    omega_range: tuple[float, float] = (np.pi / 16, np.pi / 8),
    as_dataset: bool = False,
) -> Batch | xr.Dataset:
    r"""The sine-wave generation task: constant input :math:`\omega`, target :math:`\sin(\omega t)`.

    .. math:: u_t = \omega_b, \qquad y_{b,t} = \sin(\omega_b\, t), \qquad
              \omega_b = \mathrm{linspace}(\omega_{\min}, \omega_{\max}, B)_b, \quad t = 1 .. T

    (array index ``t - 1`` holds step ``t``: the state after step ``t`` must produce it).

    Parameters
    ----------
    n_seq : int
        Number of sequences (frequencies) B; the authors: 100.
    n_steps : int
        Sequence length T; the authors: 400.
    omega_range : (float, float)
        Smallest and largest frequency, rad per step, ``0 < min <= max``;
        the authors: :math:`(\pi/16, \pi/8)`.
    as_dataset : bool
        Return an :class:`xarray.Dataset` (inputs, targets, mask, omega, with
        units, long names and provenance) instead of a :class:`~plrnn_numba.Batch`.

    Returns
    -------
    Batch or xarray.Dataset
        ``inputs`` (B, T, 1), ``targets`` (B, T, 1), ``mask`` all ones.
    """
    n_seq = V.positive_int(n_seq, "n_seq")
    n_steps = V.positive_int(n_steps, "n_steps")
    lo, hi = _range(omega_range, "omega_range")
    if lo <= 0:
        raise ValueError(f"omega_range must hold two frequencies > 0 (rad per step); got ({lo}, {hi})")
    as_dataset = V.flag(as_dataset, "as_dataset")
    omega = np.linspace(lo, hi, n_seq)
    t = np.arange(1, n_steps + 1)
    targets = np.sin(omega[:, None] * t[None, :])[:, :, None]
    inputs = np.repeat(omega[:, None, None], n_steps, axis=1)
    mask = np.ones((n_seq, n_steps))
    if not as_dataset:
        return Batch(targets=targets, inputs=inputs, mask=mask)
    args = {"n_seq": n_seq, "n_steps": n_steps, "omega_range": [lo, hi]}
    ds = _dataset(inputs, targets, mask, "sine_wave", args, None,
                  input_name="constant input omega (rad per step)", target_name="target sin(omega t)")
    ds["omega"] = ("batch", omega, {"units": "rad/step", "long_name": "frequency of the sequence"})
    return ds


def symbol_classification(
    n_seq: int = 1000,
    n_steps: int = 100,
    *,
    seed=0,
    t1_range: tuple[int, int] = (10, 19),
    t2_range: tuple[int, int] = (40, 49),
    encoding: str = "onehot",
    as_dataset: bool = False,
) -> Batch | xr.Dataset:
    r"""The symbol-classification task: the order of two relevant symbols among distractors.

    Step :math:`t` of sequence :math:`b` holds the one-hot symbol

    .. math::

        s_{b,t} = \begin{cases} r_{b,1} \in \{p, q\}, & t = t_{b,1} \\
                                r_{b,2} \in \{p, q\}, & t = t_{b,2} \\
                                \text{uniform on } \{a, b, c, d\}, & \text{otherwise,} \end{cases}

    with :math:`t_{b,1}`, :math:`t_{b,2}` uniform on the given 1-based ranges
    and the class :math:`2 [r_{b,1} = q] + [r_{b,2} = q]`, the target of the
    last step.

    Parameters
    ----------
    n_seq : int
        Number of sequences (the authors: 1000 for training, another 1000 for validation).
    n_steps : int
        Sequence length ``l`` (the authors: 50 to 500); at least ``t2_range[1]``.
    seed : int, None or numpy.random.Generator
        Draws the symbols and positions.
    t1_range, t2_range : (int, int)
        Inclusive 1-based step ranges of the first and second relevant
        symbol (default: the authors' 10..19 and 40..49); the first must end
        before the second starts.
    encoding : {"onehot", "bits"}
        Targets at the last step: the class one-hot (4 outputs) or the two
        symbols as bits, 0 = p, 1 = q (2 outputs, for ``loss="bce"``).
    as_dataset : bool
        Return an :class:`xarray.Dataset` (also holding ``label``, ``t1``,
        ``t2``) instead of a :class:`~plrnn_numba.Batch`.

    Returns
    -------
    Batch or xarray.Dataset
        ``inputs`` (B, T, 6) one-hot, ``targets`` (B, T, 4 or 2) zero except
        at the last step, ``mask`` (B, T) one at the last step only.
    """
    n_seq = V.positive_int(n_seq, "n_seq")
    n_steps = V.positive_int(n_steps, "n_steps")
    a1, b1 = _int_range(t1_range, "t1_range")
    a2, b2 = _int_range(t2_range, "t2_range")
    if b1 >= a2:
        raise ValueError(f"t1_range must end before t2_range starts (the first symbol comes first); got "
                         f"t1_range ({a1}, {b1}), t2_range ({a2}, {b2})")
    if n_steps < b2:
        raise ValueError(f"n_steps must be at least t2_range's end ({b2}) so that the second symbol fits; got "
                         f"{n_steps}")
    encoding = V.choice(encoding, "encoding", ENCODINGS)
    as_dataset = V.flag(as_dataset, "as_dataset")
    rng, recorded = V.generator(seed, "seed")
    symbols = rng.integers(2, N_SYMBOLS, size=(n_seq, n_steps))  # distractors everywhere
    t1 = rng.integers(a1, b1 + 1, size=n_seq)
    t2 = rng.integers(a2, b2 + 1, size=n_seq)
    r = rng.integers(0, 2, size=(n_seq, 2))  # 0 = p, 1 = q
    rows = np.arange(n_seq)
    symbols[rows, t1 - 1] = r[:, 0]
    symbols[rows, t2 - 1] = r[:, 1]
    label = 2 * r[:, 0] + r[:, 1]
    inputs = np.zeros((n_seq, n_steps, N_SYMBOLS))
    inputs[rows[:, None], np.arange(n_steps)[None, :], symbols] = 1.0
    n_out = 4 if encoding == "onehot" else 2
    targets = np.zeros((n_seq, n_steps, n_out))
    if encoding == "onehot":
        targets[rows, -1, label] = 1.0
    else:
        targets[:, -1, :] = r
    mask = np.zeros((n_seq, n_steps))
    mask[:, -1] = 1.0
    if not as_dataset:
        return Batch(targets=targets, inputs=inputs, mask=mask)
    args = {"n_seq": n_seq, "n_steps": n_steps, "t1_range": [a1, b1], "t2_range": [a2, b2], "encoding": encoding}
    ds = _dataset(inputs, targets, mask, "symbol_classification", args, recorded,
                  input_name="one-hot symbol (channels p, q, a, b, c, d)",
                  target_name=("class one-hot (pp, pq, qp, qq) at the last step" if encoding == "onehot"
                               else "first and second relevant symbol (0 = p, 1 = q) at the last step"))
    ds["label"] = ("batch", label, {**_U1, "long_name": "class: 0 (p,p), 1 (p,q), 2 (q,p), 3 (q,q)"})
    ds["t1"] = ("batch", t1, {"units": "steps", "long_name": "step of the first relevant symbol (1-based)"})
    ds["t2"] = ("batch", t2, {"units": "steps", "long_name": "step of the second relevant symbol (1-based)"})
    ds.attrs["symbols"] = "p q a b c d"
    ds.attrs["encoding"] = encoding
    return ds


def class_accuracy(outputs, batch: Batch) -> float:
    r"""Share of sequences whose class is read correctly at the last masked step.

    ``onehot`` targets (4 channels): the class is the arg-max of the outputs;
    ``bits`` targets (2 channels): each logit thresholded at 0.

    .. math:: \mathrm{acc} = \frac1B \sum_b [\hat k_b = k_b]

    Parameters
    ----------
    outputs : (B, T, C) array
        Readout outputs (logits), e.g. the first return value of
        :func:`plrnn_numba.predict`.
    batch : Batch
        From :func:`symbol_classification` (the mask marks the scored step).

    Returns
    -------
    float
        Accuracy in [0, 1].
    """
    if not isinstance(batch, Batch):
        raise TypeError(f"batch must be a plrnn_numba.Batch from symbol_classification; got {type(batch).__name__}")
    y = V.as_float_array(outputs, "outputs")
    X = batch.targets
    if y.shape != X.shape:
        raise ValueError(f"outputs must have the targets' shape {X.shape} (batch, time, classes); got {y.shape}")
    if X.shape[2] not in (2, 4):
        raise ValueError(f"batch must have 4 (onehot) or 2 (bits) target channels; got {X.shape[2]}")
    mask = batch.mask
    last = np.array([np.flatnonzero(m)[-1] if np.any(m) else -1 for m in mask])
    if np.any(last < 0):
        raise ValueError("batch.mask marks no scored step in some sequence")
    rows = np.arange(X.shape[0])
    yl, xl = y[rows, last], X[rows, last]
    if X.shape[2] == 4:
        correct = np.argmax(yl, axis=1) == np.argmax(xl, axis=1)
    else:
        correct = np.all((yl > 0) == (xl > 0.5), axis=1)
    return float(np.mean(correct & np.all(np.isfinite(yl), axis=1)))


# ----------------------------------------------------------------------------------- helpers
def _range(pair, name: str) -> tuple[float, float]:
    a = V.as_float_array(pair, name)
    if a.shape != (2,):
        raise ValueError(f"{name} must be a pair (min, max); got shape {a.shape}")
    V.check_finite(a, name)
    if a[0] > a[1]:
        raise ValueError(f"{name} must be (min, max) with min <= max; got ({a[0]}, {a[1]})")
    return float(a[0]), float(a[1])


def _int_range(pair, name: str) -> tuple[int, int]:
    if not isinstance(pair, (tuple, list, np.ndarray)) or len(pair) != 2:
        raise ValueError(f"{name} must be a pair of 1-based steps (first, last); got {pair!r}")
    a, b = (V.positive_int(v, name) for v in pair)
    if a > b:
        raise ValueError(f"{name} must be (first, last) with first <= last; got ({a}, {b})")
    return a, b


def _dataset(inputs, targets, mask, task, args, seed, *, input_name, target_name) -> xr.Dataset:
    B, T, K = inputs.shape
    attrs = io.provenance(f"plrnn_numba.tasks.{task}", args, seeds=seed)
    attrs["task"] = task
    return xr.Dataset(
        {
            "inputs": (("batch", "step", "input"), inputs, {**_U1, "long_name": input_name}),
            "targets": (("batch", "step", "output"), targets, {**_U1, "long_name": target_name}),
            "mask": (("batch", "step"), mask, {**_U1, "long_name": "1 where the target is counted in the loss"}),
        },
        coords={
            "batch": ("batch", np.arange(B), {**_U1, "long_name": "sequence"}),
            "step": ("step", np.arange(1, T + 1), {"units": "steps", "long_name": "time step (1-based)"}),
            "input": ("input", np.arange(K), {**_U1, "long_name": "input channel"}),
            "output": ("output", np.arange(targets.shape[2]), {**_U1, "long_name": "output channel"}),
        },
        attrs=attrs,
    )
