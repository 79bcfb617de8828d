"""Train a ReLU RNN in PyTorch, then find all its fixed points and cycles exactly (SCYFI).

The tutorial ``docs/tutorials/torch_rnn.md`` walks through the same steps (the
task, training and import with the same code and seeds, so the same network on
one machine).  Run it from the repository root::

    python docs/examples/torch_relu_rnn.py            # about 10 s on 2 cores after numba has compiled
    python docs/examples/torch_relu_rnn.py --quick    # fewer training steps (for the tests)

It writes ``torch_relu_rnn.png`` into ``--out`` (default ``docs/figures``).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display needed
import matplotlib.pyplot as plt
import numpy as np
import torch

from plrnn_numba.dynamics import brute_force_cycles, scyfi
from plrnn_numba.interop import from_torch, from_torch_initial_state, to_torch_states

N_HIDDEN = 8  # hidden units
N_BITS = 2  # flip-flop channels: the network's inputs and outputs

# ----------------------------------------------------------------------------- the task


def flipflop_batch(rng: np.random.Generator, batch_size: int, n_steps: int, p_pulse: float = 0.05):
    """A 2-bit flip-flop: each output must hold the sign of the last pulse on its input.

    Returns inputs and targets, both of shape (batch_size, n_steps, N_BITS).  Every
    channel gets a pulse at t = 0, so the target is defined from the start.
    """
    sign = rng.choice([-1.0, 1.0], size=(batch_size, n_steps, N_BITS))
    x = np.where(rng.random((batch_size, n_steps, N_BITS)) < p_pulse, sign, 0.0)
    x[:, 0] = sign[:, 0]
    # index of the latest pulse at or before t, per channel
    last = np.maximum.accumulate(np.where(x != 0.0, np.arange(n_steps)[None, :, None], 0), axis=1)
    y = np.take_along_axis(x, last, axis=1)
    return x, y


# ----------------------------------------------------------------------------- training in PyTorch


def train_flipflop(n_iters: int = 800, seed: int = 1, lr: float = 1e-2):
    """Train ``nn.RNN`` (ReLU) + a linear readout with Adam, in float32 as usual."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    rnn = torch.nn.RNN(N_BITS, N_HIDDEN, nonlinearity="relu", batch_first=True, dtype=torch.float32)
    readout = torch.nn.Linear(N_HIDDEN, N_BITS, dtype=torch.float32)
    params = [*rnn.parameters(), *readout.parameters()]
    opt = torch.optim.Adam(params, lr=lr)
    losses = []
    for _ in range(n_iters):
        x, y = flipflop_batch(rng, batch_size=32, n_steps=60)
        h, _ = rnn(torch.tensor(x, dtype=torch.float32))  # h_0 = 0 (torch's default)
        loss = torch.mean((readout(h) - torch.tensor(y, dtype=torch.float32)) ** 2)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)  # ReLU RNNs can blow up early in training
        opt.step()
        losses.append(loss.item())
    return rnn, readout, np.array(losses)


# ----------------------------------------------------------------------------- import and check


def import_and_check(rnn: torch.nn.RNN, seed: int = 2):
    """Import the network and check that the package reproduces torch's trajectories."""
    model, theta = from_torch(rnn)  # W = W_hh, V = W_ih, b = b_ih + b_hh
    x, _ = flipflop_batch(np.random.default_rng(seed), batch_size=4, n_steps=200)
    h0 = np.zeros((4, N_HIDDEN))
    with torch.no_grad():
        h_torch, _ = rnn(torch.from_numpy(x), torch.from_numpy(h0)[None])
    z0 = from_torch_initial_state(model, h0)  # phi(z_0) = h_0
    Z = model.simulate(theta, z0, inputs=x)  # z_0 .. z_T, pre-activations
    h_pkg = to_torch_states(model, Z[:, 1:])  # h_t = relu(z_t)
    err = float(np.max(np.abs(h_pkg - h_torch.numpy())))
    return model, theta, err


# ----------------------------------------------------------------------------- fixed points and cycles


def find_cycles(model, theta, s: np.ndarray, max_order: int = 6):
    """All fixed points and cycles up to ``max_order`` for the constant input ``s``."""
    ds = scyfi(model, theta=theta, max_order=max_order, inputs=s, seed=0)
    # this network is small enough to enumerate all 2^(8 k) region sequences for k <= 2
    exhaustive = brute_force_cycles(model, theta=theta, max_order=2, inputs=s)
    n_scyfi = int((ds["order"] <= 2).sum())
    if n_scyfi != exhaustive.sizes["cycle"]:
        print(f"warning: SCYFI found {n_scyfi} objects of order <= 2, enumeration {exhaustive.sizes['cycle']}")
    return ds


def check_in_torch(rnn: torch.nn.RNN, H: np.ndarray, orders: np.ndarray, s: np.ndarray) -> float:
    """Largest error of ``h_1 -> G^k(h_1)`` over the cycles, iterating the torch module itself."""
    err = 0.0
    x = torch.from_numpy(np.asarray(s, dtype=np.float64))[None, None, :]  # (batch 1, one step, K)
    with torch.no_grad():
        for c, k in enumerate(orders):
            h = torch.from_numpy(H[c, 0])[None, None, :]  # (layers 1, batch 1, N)
            for j in range(1, int(k) + 1):
                _, h = rnn(x, h)
                target = H[c, j % int(k)]  # the next cycle point (back to h_1 after k steps)
                err = max(err, float(np.max(np.abs(h[0, 0].numpy() - target)) / max(1.0, np.abs(target).max())))
    return err


def cycle_table(ds, H: np.ndarray, readout: torch.nn.Linear) -> str:
    """One line per object: order, stability, unstable directions, spectral radius, readout at h_1."""
    with torch.no_grad():
        y = readout(torch.from_numpy(H[:, 0])).numpy()
    n_unstable = (np.hypot(ds["eig_real"], ds["eig_imag"]) > 1.0).sum("eig").values
    lines = [
        "| # | order | stability | unstable directions | spectral radius | readout y at h_1 |",
        "|---|---|---|---|---|---|",
    ]
    for c in range(ds.sizes["cycle"]):
        lines.append(
            f"| {c} | {int(ds['order'][c])} | {ds['stability'].values[c]} | {n_unstable[c]} | "
            f"{float(ds['spectral_radius'][c]):.3f} | ({y[c, 0]:+.2f}, {y[c, 1]:+.2f}) |"
        )
    found = dict(zip(ds["order_k"].values.tolist(), ds["n_found"].values.tolist()))
    lines.append(f"\nobjects found per order: {found}")
    return "\n".join(lines)


# ----------------------------------------------------------------------------- figure


def plot(rnn, readout, ds, H: np.ndarray, losses: np.ndarray, path: Path, seed: int = 3) -> None:
    """Left: loss and one test trial.  Right: torch hidden states (PCA) with the objects of SCYFI."""
    x, y = flipflop_batch(np.random.default_rng(seed), batch_size=16, n_steps=200)
    with torch.no_grad():
        h, _ = rnn(torch.from_numpy(x))
        out = readout(h).numpy()
    h = h.numpy()
    # principal axes of the visited torch states; the objects are projected on the same axes
    flat = h.reshape(-1, N_HIDDEN)
    mean = flat.mean(axis=0)
    _, _, axes = np.linalg.svd(flat - mean, full_matrices=False)

    def proj(a):
        return (a - mean) @ axes[:2].T

    fig = plt.figure(figsize=(11, 5.5), layout="constrained")
    left, right = fig.subfigures(1, 2, width_ratios=[1, 1.1])
    ax_loss, ax_bit0, ax_bit1 = left.subplots(3, 1)
    ax_loss.semilogy(losses, lw=0.8)
    ax_loss.set(xlabel="Adam step", ylabel="training loss (MSE)")
    for ch, ax in enumerate((ax_bit0, ax_bit1)):
        ax.plot(x[0, :, ch], color="0.6", lw=0.8, label="input pulses")
        ax.plot(y[0, :, ch], "k--", lw=1.0, label="target")
        ax.plot(out[0, :, ch], color="C3", lw=1.2, label="network output")
        ax.set(ylabel=f"bit {ch}", ylim=(-1.4, 1.4))
    ax_bit0.legend(loc="upper right", fontsize=7, ncol=3)
    ax_bit1.set_xlabel("time step t")

    ax = right.subplots()
    for b in range(h.shape[0]):
        p = proj(h[b])
        ax.plot(p[:, 0], p[:, 1], color="0.75", lw=0.6, zorder=1)
    styles = {
        "stable node": dict(marker="o", color="C0", label="stable node"),
        "stable spiral": dict(marker="o", color="C2", label="stable spiral"),
        "saddle": dict(marker="X", color="C3", label="saddle"),
    }
    used = set()
    for c in range(ds.sizes["cycle"]):
        k = int(ds["order"][c])
        stab = str(ds["stability"].values[c])
        st = styles.get(stab, dict(marker="s", color="C4", label=stab))
        p = proj(H[c, :k])
        if k > 1:  # a cycle: its points joined in order
            ax.plot(*np.vstack([p, p[:1]]).T, color=st["color"], lw=1.0, zorder=2)
        ax.scatter(
            p[:, 0],
            p[:, 1],
            s=70,
            marker=st["marker"],
            color=st["color"],
            edgecolor="k",
            zorder=3,
            label=None if stab in used else f"{st['label']} (k={k})",
        )
        used.add(stab)
    ax.set(
        xlabel="PC 1 of torch hidden states h",
        ylabel="PC 2",
        title=f"ReLU RNN (N={N_HIDDEN}): torch trajectories and the objects SCYFI found (input 0)",
    )
    ax.title.set_fontsize(9)
    ax.legend(fontsize=8, loc="best")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


# ----------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="300 training steps instead of 800")
    parser.add_argument("--out", type=Path, default=Path("docs/figures"), help="folder for the figure")
    parser.add_argument("--seed", type=int, default=1, help="seed of torch's initialisation and the data")
    parser.add_argument("--max-order", type=int, default=6, help="largest cycle order searched")
    args = parser.parse_args(argv)

    rnn, readout, losses = train_flipflop(n_iters=300 if args.quick else 800, seed=args.seed)
    print(f"trained: final loss {losses[-20:].mean():.4f}")
    rnn, readout = rnn.double(), readout.double()  # analysis in float64, like the package

    model, theta, err = import_and_check(rnn)
    print(f"imported {model}; max |h_package - h_torch| over 4 x 200 steps: {err:.1e}")

    s = np.zeros(N_BITS)  # the input between pulses: the network's autonomous dynamics
    ds = find_cycles(model, theta, s, max_order=args.max_order)
    H = to_torch_states(model, ds["points"].values)  # (cycle, point, N): torch coordinates
    print(f"\nfixed points and cycles for input s = {s.tolist()} (orders 1..{args.max_order}):")
    table = cycle_table(ds, H, readout)
    print(table)
    err_cycles = check_in_torch(rnn, H, ds["order"].values, s)
    print(f"\ncycles mapped to torch, checked by iterating the torch module: max error {err_cycles:.1e}")

    path = args.out / "torch_relu_rnn.png"
    plot(rnn, readout, ds, H, losses, path)
    print(f"wrote {path}")
    return {
        "model": model,
        "theta": theta,
        "cycles": ds,
        "H": H,
        "table": table,
        "trajectory_error": err,
        "cycle_error": err_cycles,
        "figure": path,
    }


if __name__ == "__main__":
    main()
