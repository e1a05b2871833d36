"""Second-order autograd: Newton's method, a Hessian and its eigenvalues, and a gradient penalty.

Three things first-order autograd cannot do, each a few lines with `tinygrad_nn.grad(..., create_graph=True)` and
`tinygrad_nn.func`:

1. Newton's method on tutorial 004's neuron: the same loss the tutorial descends for 5,000 steps, minimised in a
   handful of Newton steps (each solves ``(H + damping I) d = -g`` with the exact Hessian).
2. The Hessian of a tiny MLP's loss, with its eigenvalues: the curvature of the loss surface at a point.
3. A gradient penalty, ``((grad_x D(x)).norm() - 1) ** 2``, as WGAN-GP trains its critic: the loss contains a
   gradient, so training it differentiates a gradient.

Run it: ``python examples/second_order.py``.
"""

from __future__ import annotations

import numpy as np

import tinygrad_nn as tg
from tinygrad_nn import Tensor, func, nn, optim

# Tutorial 004's data and starting weights (examples/tutorial_004_sichkar.py): the output is the first input.
INPUTS = np.array([[1, 1, 1], [1, 0, 1], [0, 0, 1], [0, 1, 1]], dtype=np.float64)
OUTPUTS = np.array([[1, 1, 0, 0]], dtype=np.float64).T
INITIAL_WEIGHTS = np.array([[-0.16595599], [0.44064899], [-0.99977125]])
SGD_STEPS = 5000


def neuron_loss(weights: Tensor) -> Tensor:
    """The tutorial's loss, ``0.5 * sum((y - sigmoid(X w)) ** 2)``, as a function of the weights (3, 1)."""
    return 0.5 * ((Tensor(OUTPUTS) - (Tensor(INPUTS) @ weights).sigmoid()) ** 2).sum()


def sgd(steps: int = SGD_STEPS, lr: float = 1.0) -> tuple[np.ndarray, float]:
    """The tutorial's training: `steps` steps of gradient descent. Returns the weights and the final loss."""
    weights = Tensor(INITIAL_WEIGHTS.copy(), requires_grad=True)
    for _ in range(steps):
        (gradient,) = tg.grad(neuron_loss(weights), weights)
        weights.data -= lr * gradient.data
    return weights.data, neuron_loss(weights).item()


def newton(target_loss: float, max_steps: int = 50) -> tuple[np.ndarray, float, int]:
    """Damped Newton steps (Levenberg-Marquardt) until the loss is below `target_loss`.

    Each step takes the exact gradient and Hessian, solves ``(H + damping * I) d = -g`` and keeps the step if the
    loss went down (then trusts the quadratic model more: smaller damping), else retries with more damping.
    Returns the weights, the loss and the number of steps taken.
    """
    weights = INITIAL_WEIGHTS.copy()
    damping = 1.0
    for step in range(1, max_steps + 1):
        current = Tensor(weights, requires_grad=True)
        loss = neuron_loss(current)
        (gradient,) = tg.grad(loss, current)
        hessian = func.hessian(neuron_loss, current)  # (3, 1, 3, 1): d2 loss / dw_i dw_j
        g, h = gradient.data.reshape(3), hessian.data.reshape(3, 3)
        while True:
            proposal = weights + np.linalg.solve(h + damping * np.eye(3), -g).reshape(3, 1)
            if neuron_loss(Tensor(proposal)).item() < loss.item():
                weights, damping = proposal, max(damping / 10, 1e-8)
                break
            damping *= 10
        final = neuron_loss(Tensor(weights)).item()
        if final < target_loss:
            return weights, final, step
    return weights, final, max_steps


def output_for(weights: np.ndarray, x: tuple[float, ...] = (1.0, 0.0, 0.0)) -> float:
    """The neuron's output for one input (the tutorial tests [1, 0, 0])."""
    return float(1 / (1 + np.exp(-(np.array(x) @ weights))).item())


def mlp_hessian(seed: int = 0, training_steps: int = 2000) -> tuple[float, float, np.ndarray, np.ndarray]:
    """The Hessian of a 2-3-1 tanh MLP's mean squared error on XOR, with respect to all 13 parameters.

    The MLP is trained first (Adam), so the Hessian is taken near a minimum. Returns the loss before and after
    training, the Hessian (13, 13) and its eigenvalues, smallest first. The parameters are the flattened weights
    and biases of both layers, in the order of ``model.named_parameters()``.
    """
    tg.manual_seed(seed)
    model = nn.Sequential(nn.Linear(2, 3), nn.Tanh(), nn.Linear(3, 1))
    x = Tensor(np.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]]))
    y = np.array([[0.0], [1.0], [1.0], [0.0]])
    optimizer = optim.Adam(model.parameters(), lr=0.05)
    before = nn.functional.mse_loss(model(x), y).item()
    for _ in range(training_steps):
        loss_value = nn.functional.mse_loss(model(x), y)
        optimizer.zero_grad()
        loss_value.backward()
        optimizer.step()
    after = nn.functional.mse_loss(model(x), y).item()
    shapes = [p.shape for p in model.parameters()]
    sizes = [int(np.prod(s)) for s in shapes]

    def loss(flat: Tensor) -> Tensor:
        pieces, start = [], 0
        for shape, size in zip(shapes, sizes):
            pieces.append(flat[start : start + size].reshape(shape))
            start += size
        hidden = nn.functional.linear(x, pieces[0], pieces[1]).tanh()
        return nn.functional.mse_loss(nn.functional.linear(hidden, pieces[2], pieces[3]), y)

    flat = np.concatenate([p.data.ravel() for p in model.parameters()])
    hessian = func.hessian(loss, Tensor(flat)).data
    return before, after, hessian, np.linalg.eigvalsh(hessian)


def gradient_penalty_training(steps: int = 30, seed: int = 0) -> list[float]:
    """Train a small critic D so that ``|grad_x D(x)| = 1`` on random points: the penalty each step.

    The penalty is a function of a gradient, so its own gradient with respect to D's parameters is a second
    derivative: `tinygrad_nn.grad` with ``create_graph=True`` builds the graph that `backward` then walks.
    """
    tg.manual_seed(seed)
    critic = nn.Sequential(nn.Linear(2, 16), nn.Tanh(), nn.Linear(16, 1))
    optimizer = optim.Adam(critic.parameters(), lr=0.01)
    points = np.random.default_rng(seed)
    penalties = []
    for _ in range(steps):
        x = Tensor(points.standard_normal((64, 2)), requires_grad=True)
        (gradient,) = tg.grad(critic(x).sum(), x, create_graph=True)
        penalty = ((gradient.norm(dim=1) - 1.0) ** 2).mean()
        optimizer.zero_grad()
        penalty.backward()
        optimizer.step()
        penalties.append(penalty.item())
    return penalties


def main() -> None:
    """Run the three demonstrations and print what each found."""
    print("1. Newton's method on tutorial 004's neuron (loss 0.5 * sum((y - sigmoid(X w))^2))")
    sgd_weights, sgd_loss = sgd()
    newton_weights, newton_loss, steps = newton(target_loss=sgd_loss)
    print(f"   gradient descent, {SGD_STEPS} steps: loss {sgd_loss:.8f}, output for [1, 0, 0] "
          f"{output_for(sgd_weights):.8f}")  # fmt: skip
    print(f"   Newton's method,  {steps} steps:    loss {newton_loss:.8f}, output for [1, 0, 0] "
          f"{output_for(newton_weights):.8f}")  # fmt: skip

    print("\n2. The Hessian of a 2-3-1 tanh MLP's loss on XOR (13 parameters), after training it")
    before, after, hessian, eigenvalues = mlp_hessian()
    print(f"   loss {before:.4f} before 2000 Adam steps, {after:.2e} after")
    print(f"   symmetric: {np.allclose(hessian, hessian.T)}; eigenvalues from {eigenvalues[0]:.3g} to "
          f"{eigenvalues[-1]:.3g}")  # fmt: skip
    curved = int(np.sum(eigenvalues > 1e-6))
    print(f"   {curved} directions curve up (at most one per training point: the network fits all four exactly), "
          f"the other {len(eigenvalues) - curved} are flat")  # fmt: skip

    print("\n3. A gradient penalty ((|grad_x D(x)| - 1)^2) trained for 30 Adam steps")
    penalties = gradient_penalty_training()
    print(f"   penalty {penalties[0]:.4f} at the first step, {penalties[-1]:.4f} at the last")


if __name__ == "__main__":
    main()
