"""The tutorial examples: every published number, in float64, from the framework's own parts.

Two halves. First each example is imported and its classes are checked against the tutorial they rebuild: the
published numbers, the tutorial's own hand-written numpy algorithm, and that the networks are nn.Linear /
nn.Sigmoid / optim.SGD with no gradient written by hand. Then each example file is run as a script, the way a
reader runs it, and its printed table and pictures are checked.
"""

from __future__ import annotations

import importlib
import math
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

import tinygrad_nn as tg
from tinygrad_nn import nn, optim

REPOSITORY = Path(__file__).resolve().parent.parent
EXAMPLES = REPOSITORY / "examples"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-x))


# --------------------------------------------------------------------------------------------------------------
# Fixtures
# --------------------------------------------------------------------------------------------------------------


def import_example(name: str) -> ModuleType:
    """Import examples/<name>.py as a module (the examples import their shared helpers from _common)."""
    sys.path.insert(0, str(EXAMPLES))
    try:
        return importlib.import_module(name)
    finally:
        sys.path.remove(str(EXAMPLES))


@pytest.fixture(scope="module")
def tutorial_000() -> ModuleType:
    return import_example("tutorial_000_python_course")


@pytest.fixture(scope="module")
def tutorial_001() -> ModuleType:
    return import_example("tutorial_001_make_your_own")


@pytest.fixture(scope="module")
def tutorial_002_003() -> ModuleType:
    return import_example("tutorial_002_003_real_python")


@pytest.fixture(scope="module")
def tutorial_004() -> ModuleType:
    return import_example("tutorial_004_sichkar")


@pytest.fixture(autouse=True)
def keep_global_numpy_state():
    """The tutorials seed numpy's global generator, as the originals do; put it back for the other tests."""
    state = np.random.get_state()
    yield
    np.random.set_state(state)


@pytest.fixture(scope="module")
def fashion_mnist_present() -> None:
    try:
        tg.data.load_fashion_mnist(download=False)
    except tg.data.DataError as error:
        pytest.skip(f"Fashion-MNIST is not on this machine (apt-get install dataset-fashion-mnist): {error}")


# --------------------------------------------------------------------------------------------------------------
# Made of the framework's parts, trained without hand-written gradients
# --------------------------------------------------------------------------------------------------------------


def assert_built_from_modules(network: nn.Sequential, optimizer: optim.Optimizer, lr: float, kinds: list[type]):
    assert isinstance(network, nn.Sequential)
    assert [type(module) for module in network] == kinds
    assert type(optimizer) is optim.SGD
    (group,) = optimizer.param_groups
    assert group["lr"] == lr
    assert group["momentum"] == 0
    # The optimizer owns exactly the network's parameters, so a step moves every weight and nothing else.
    assert [id(p) for p in group["params"]] == [id(p) for p in network.parameters()]


def assert_only_the_optimizer_moves_weights(network: nn.Module, optimizer: optim.Optimizer, train_once, monkeypatch):
    """With optimizer.step switched off, a training call must leave every weight as it was, yet have set grads."""
    before = [p.data.copy() for p in network.parameters()]
    monkeypatch.setattr(optimizer, "step", lambda: None)
    train_once()
    for parameter, old in zip(network.parameters(), before):
        np.testing.assert_array_equal(parameter.data, old)
        assert parameter.grad is not None and np.any(parameter.grad != 0)
    grads_after_one_call = [p.grad.copy() for p in network.parameters()]
    train_once()
    # zero_grad() runs before each backward: the same call again gives the same gradient, not twice it.
    for parameter, grad in zip(network.parameters(), grads_after_one_call):
        np.testing.assert_array_equal(parameter.grad, grad)
    monkeypatch.undo()
    train_once()
    assert any(not np.array_equal(p.data, old) for p, old in zip(network.parameters(), before))


def test_000_is_made_of_modules_and_trained_by_sgd(tutorial_000, monkeypatch):
    network = tutorial_000.NeuralNetwork(no_of_in_nodes=3, no_of_out_nodes=2, no_of_hidden_nodes=4, learning_rate=0.3)
    assert_built_from_modules(network.network, network.optimizer, 0.3, [nn.Linear, nn.Sigmoid, nn.Linear, nn.Sigmoid])
    assert network.in_hidden.bias is None and network.hidden_out.bias is None
    assert_only_the_optimizer_moves_weights(
        network.network, network.optimizer, lambda: network.train([0.2, 0.7, 0.1], [0.99, 0.01]), monkeypatch
    )


def test_001_is_made_of_modules_and_trained_by_sgd(tutorial_001, monkeypatch):
    network = tutorial_001.Neural_Network(3, 3, 3, lr=0.3)
    assert_built_from_modules(network.network, network.optimizer, 0.3, [nn.Linear, nn.Sigmoid, nn.Linear, nn.Sigmoid])
    assert network.input_hidden.bias is None and network.hidden_output.bias is None
    assert_only_the_optimizer_moves_weights(
        network.network, network.optimizer, lambda: network.train([0.9, 0.1, 0.5], [0.99, 0.01, 0.01]), monkeypatch
    )


def test_002_003_is_made_of_modules_and_trained_by_sgd(tutorial_002_003, monkeypatch):
    network = tutorial_002_003.NeuralNetwork(alpha=0.1, weights=np.array([1.45, -0.66]), bias=0.0)
    assert_built_from_modules(network.network, network.optimizer, 0.1, [nn.Linear, nn.Sigmoid])
    assert network.layer.bias is not None  # Real Python's neuron has a bias
    assert isinstance(network.loss, nn.MSELoss)
    inputs, targets = tutorial_002_003.INPUT_VECTORS, tutorial_002_003.TARGETS

    def train_once():
        np.random.seed(3)  # the same random sample each call
        network.train(inputs, targets, 1)

    assert_only_the_optimizer_moves_weights(network.network, network.optimizer, train_once, monkeypatch)


def test_004_is_made_of_modules_and_trained_by_sgd(tutorial_004, monkeypatch):
    network = tutorial_004.NN()
    assert_built_from_modules(network.network, network.optimizer, 1.0, [nn.Linear, nn.Sigmoid])
    assert network.synapses.bias is None
    assert_only_the_optimizer_moves_weights(
        network.network,
        network.optimizer,
        lambda: network.training_process(tutorial_004.INPUTS, tutorial_004.OUTPUTS, 1),
        monkeypatch,
    )


# --------------------------------------------------------------------------------------------------------------
# 004: Sichkar's neuron
# --------------------------------------------------------------------------------------------------------------


def sichkar_by_hand(iterations: int) -> tuple[np.ndarray, np.ndarray]:
    """The tutorial's own code: seed 1, w = 2 * random((3, 1)) - 1, then w += X.T @ (err * o * (1 - o))."""
    np.random.seed(1)
    weights = 2 * np.random.random((3, 1)) - 1
    initial = weights.copy()
    inputs = np.array([[1, 1, 1], [1, 0, 1], [0, 0, 1], [0, 1, 1]], dtype=float)
    outputs = np.array([[1, 1, 0, 0]], dtype=float).T
    for _ in range(iterations):
        output = sigmoid(inputs @ weights)
        weights += inputs.T @ ((outputs - output) * output * (1 - output))
    return initial.ravel(), weights.ravel()


def test_004_initial_weights(tutorial_004):
    network = tutorial_004.NN()
    weights = network.weights_of_synapses
    assert weights.shape == (3, 1) and weights.dtype == np.float64
    np.testing.assert_allclose(weights.ravel(), [-0.16595599, 0.44064899, -0.99977125], rtol=0, atol=5e-9)
    np.testing.assert_array_equal(weights.ravel(), sichkar_by_hand(0)[0])


def test_004_weights_and_output_after_5000_iterations(tutorial_004):
    network = tutorial_004.NN()
    network.training_process(tutorial_004.INPUTS, tutorial_004.OUTPUTS, 5000)
    weights = network.weights_of_synapses.ravel()
    assert weights.dtype == np.float64
    np.testing.assert_allclose(weights, [8.95950703, -0.20975775, -4.27128529], rtol=0, atol=1e-8)
    np.testing.assert_allclose(weights, sichkar_by_hand(5000)[1], rtol=1e-12, atol=0)
    output = network.run_nn(tutorial_004.TEST_INPUT)
    assert output.shape == (1,) and output.dtype == np.float64
    assert abs(output[0] - 0.99987151) <= 5e-9
    # A batch gives a column, as the tutorial's run_nn does.
    assert network.run_nn(tutorial_004.INPUTS).shape == (4, 1)


def test_004_reaches_0999_after_730_iterations(tutorial_004):
    assert tutorial_004.iterations_to_reach(0.999) == 730
    outputs = {}
    for iterations in (720, 730):
        network = tutorial_004.NN()
        network.training_process(tutorial_004.INPUTS, tutorial_004.OUTPUTS, iterations)
        outputs[iterations] = network.run_nn(tutorial_004.TEST_INPUT)[0]
    assert outputs[720] < 0.999 <= outputs[730]


# --------------------------------------------------------------------------------------------------------------
# 002 and 003: Real Python's neuron
# --------------------------------------------------------------------------------------------------------------


def test_002_predictions_with_fixed_weights(tutorial_002_003):
    network = tutorial_002_003.NeuralNetwork(alpha=0.1, weights=np.array([1.45, -0.66]), bias=0.0)
    first, second = network.predict([1.66, 1.56]), network.predict(np.array([2, 1.5]))
    assert isinstance(first, float) and isinstance(second, float)
    assert abs(first - 0.7985731) <= 5e-8
    assert abs(second - 0.87101915) <= 5e-9
    assert first == pytest.approx(sigmoid(1.66 * 1.45 + 1.56 * -0.66), rel=1e-15)
    assert second == pytest.approx(sigmoid(2 * 1.45 + 1.5 * -0.66), rel=1e-15)


def test_003_prediction_with_seed_42(tutorial_002_003):
    np.random.seed(42)
    network = tutorial_002_003.NeuralNetwork(alpha=0.1)
    assert network.layer.weight.dtype == np.float64
    assert network.predict([1.66, 1.56]) == pytest.approx(0.7784302101100966, rel=0, abs=1e-15)


class RealPythonNeuron:
    """The note's NeuralNetwork class, condensed: hand-derived gradients, global numpy generator."""

    def __init__(self, alpha: float) -> None:
        self.weights = np.array([np.random.randn(), np.random.randn()])
        self.bias = np.random.randn()
        self.alpha = alpha

    def predict(self, input_vector: np.ndarray) -> float:
        return sigmoid(np.dot(input_vector, self.weights) + self.bias)

    def train(self, input_vectors: np.ndarray, targets: np.ndarray, iterations: int) -> list[float]:
        cumulative_errors = []
        for current_iteration in range(iterations):
            index = np.random.randint(len(input_vectors))
            layer_1 = np.dot(input_vectors[index], self.weights) + self.bias
            dl_dp = 2 * (sigmoid(layer_1) - targets[index])
            dp_dz = sigmoid(layer_1) * (1 - sigmoid(layer_1))
            self.bias = self.bias - dl_dp * dp_dz * self.alpha
            self.weights = self.weights - dl_dp * dp_dz * input_vectors[index] * self.alpha
            if current_iteration % 100 == 0:
                cumulative_errors.append(sum(np.square(self.predict(x) - y) for x, y in zip(input_vectors, targets)))
        return cumulative_errors


def test_003_training_follows_the_tutorials_algorithm(tutorial_002_003):
    inputs, targets = tutorial_002_003.INPUT_VECTORS, tutorial_002_003.TARGETS
    np.random.seed(42)
    reference = RealPythonNeuron(alpha=0.1)
    expected_errors = reference.train(inputs, targets, 10_000)
    np.random.seed(42)
    network = tutorial_002_003.NeuralNetwork(alpha=0.1)
    errors = network.train(inputs, targets, 10_000)
    assert len(errors) == 100
    np.testing.assert_allclose(errors, expected_errors, rtol=1e-10)
    np.testing.assert_allclose(network.layer.weight.data.ravel(), reference.weights, rtol=1e-10)
    np.testing.assert_allclose(network.layer.bias.data, [reference.bias], rtol=1e-10)
    assert errors[-1] < errors[0]


# --------------------------------------------------------------------------------------------------------------
# 000: python-course.eu's network (no published numbers: structure, initialisation, run, train)
# --------------------------------------------------------------------------------------------------------------


def test_000_structure_and_weight_bounds(tutorial_000):
    network = tutorial_000.NeuralNetwork(
        no_of_in_nodes=784, no_of_out_nodes=10, no_of_hidden_nodes=100, learning_rate=0.1
    )
    assert (network.no_of_in_nodes, network.no_of_out_nodes, network.no_of_hidden_nodes) == (784, 10, 100)
    assert network.learning_rate == 0.1
    assert network.weights_in_hidden.shape == (100, 784)
    assert network.weights_hidden_out.shape == (10, 100)
    for weights, fan_in in ((network.weights_in_hidden, 784), (network.weights_hidden_out, 100)):
        assert weights.dtype == np.float64
        assert np.abs(weights).max() <= 1 / math.sqrt(fan_in)
        assert np.abs(weights).max() > 0.9 / math.sqrt(fan_in)  # the whole range is used, not a narrow normal
    # Unseeded, as in the tutorial: two networks get different weights.
    other = tutorial_000.NeuralNetwork(784, 10, 100, 0.1)
    assert not np.array_equal(other.weights_in_hidden, network.weights_in_hidden)


def test_000_weights_are_a_truncated_normal_not_a_uniform(tutorial_000):
    # With fan_in 2 the bound is 1/sqrt(2): a truncated N(0, 1) puts 53.1% of its mass in the inner half of
    # [-bound, bound], a uniform 50%. 40,000 draws tell them apart by 12 standard errors.
    network = tutorial_000.NeuralNetwork(
        no_of_in_nodes=2, no_of_out_nodes=1, no_of_hidden_nodes=20_000, learning_rate=0
    )
    network.create_weight_matrices(np.random.default_rng(5))
    bound = 1 / math.sqrt(2)
    weights = network.weights_in_hidden.ravel()
    assert np.abs(weights).max() <= bound

    def mass(z: float) -> float:
        return math.erf(z / math.sqrt(2))  # P(|Z| < z) for a standard normal Z

    expected_inner = mass(bound / 2) / mass(bound)
    assert np.mean(np.abs(weights) < bound / 2) == pytest.approx(expected_inner, abs=0.01)


def test_000_seeded_initialisation_is_reproducible(tutorial_000):
    first = tutorial_000.NeuralNetwork(3, 2, 4, 0.1)
    second = tutorial_000.NeuralNetwork(3, 2, 4, 0.1)
    first.create_weight_matrices(np.random.default_rng(11))
    second.create_weight_matrices(np.random.default_rng(11))
    np.testing.assert_array_equal(first.weights_in_hidden, second.weights_in_hidden)
    np.testing.assert_array_equal(first.weights_hidden_out, second.weights_hidden_out)


@pytest.mark.parametrize("input_vector", [(3, 4), [3, 4], [(3, 4)], np.array([3.0, 4.0]), np.array([[3.0], [4.0]])])
def test_000_run_returns_a_column(tutorial_000, input_vector):
    network = tutorial_000.NeuralNetwork(no_of_in_nodes=2, no_of_out_nodes=3, no_of_hidden_nodes=4, learning_rate=0.6)
    output = network.run(input_vector)
    assert output.shape == (3, 1) and output.dtype == np.float64
    x = np.array([[3.0], [4.0]])
    expected = sigmoid(network.weights_hidden_out @ sigmoid(network.weights_in_hidden @ x))
    np.testing.assert_allclose(output, expected, rtol=1e-14)


def test_000_train_is_one_gradient_descent_step(tutorial_000):
    network = tutorial_000.NeuralNetwork(no_of_in_nodes=3, no_of_out_nodes=2, no_of_hidden_nodes=4, learning_rate=0.3)
    network.create_weight_matrices(np.random.default_rng(2))
    w_ih, w_ho = network.weights_in_hidden.copy(), network.weights_hidden_out.copy()
    x, target = np.array([[0.5], [-1.0], [2.0]]), np.array([[0.99], [0.01]])
    hidden = sigmoid(w_ih @ x)
    output = sigmoid(w_ho @ hidden)
    output_delta = (target - output) * output * (1 - output)
    hidden_delta = (w_ho.T @ output_delta) * hidden * (1 - hidden)
    network.train([0.5, -1.0, 2.0], (0.99, 0.01))
    np.testing.assert_allclose(network.weights_hidden_out, w_ho + 0.3 * output_delta @ hidden.T, rtol=1e-14)
    np.testing.assert_allclose(network.weights_in_hidden, w_ih + 0.3 * hidden_delta @ x.T, rtol=1e-14)


def test_000_train_reduces_the_error(tutorial_000):
    generator = np.random.default_rng(3)
    network = tutorial_000.NeuralNetwork(no_of_in_nodes=2, no_of_out_nodes=2, no_of_hidden_nodes=4, learning_rate=0.6)
    network.create_weight_matrices(generator)
    points, targets = tutorial_000.two_clusters(200, generator)

    def error() -> float:
        return sum(float(np.sum((t.reshape(-1, 1) - network.run(p)) ** 2)) for p, t in zip(points, targets))

    before_error, before_accuracy = error(), tutorial_000.accuracy(network, points, targets)
    for _ in range(3):
        for point, target in zip(points, targets):
            network.train(point, target)
    assert error() < 0.5 * before_error
    assert tutorial_000.accuracy(network, points, targets) >= 0.9 > before_accuracy


# --------------------------------------------------------------------------------------------------------------
# 001: Make Your Own Neural Network
# --------------------------------------------------------------------------------------------------------------


def test_001_initial_weights_are_the_books(tutorial_001):
    np.random.seed(4)
    network = tutorial_001.Neural_Network(5, 4, 3, lr=0.1)
    np.random.seed(4)
    expected_ih, expected_ho = np.random.rand(4, 5) - 0.5, np.random.rand(3, 4) - 0.5
    np.testing.assert_array_equal(network.weights_input_hidden, expected_ih)
    np.testing.assert_array_equal(network.weights_hidden_output, expected_ho)
    assert network.weights_input_hidden.dtype == np.float64


def test_001_query_returns_a_column(tutorial_001):
    np.random.seed(5)
    network = tutorial_001.Neural_Network(5, 4, 3, lr=0.1)
    inputs = np.array([0.1, 0.9, 0.3, 0.5, 0.7])
    output = network.query(list(inputs))
    assert output.shape == (3, 1) and output.dtype == np.float64
    expected = sigmoid(network.weights_hidden_output @ sigmoid(network.weights_input_hidden @ inputs[:, None]))
    np.testing.assert_allclose(output, expected, rtol=1e-14)


def one_step(tutorial_001, sizes: tuple[int, int, int], seed: int, lr: float):
    """One train() step from seeded weights; returns (weights before, inputs, targets, the network after)."""
    np.random.seed(seed)
    network = tutorial_001.Neural_Network(*sizes, lr=lr)
    before = network.weights_input_hidden.copy(), network.weights_hidden_output.copy()
    generator = np.random.default_rng(seed)
    inputs = generator.uniform(0.01, 1.0, sizes[0])
    targets = np.full(sizes[2], 0.01)
    targets[0] = 0.99
    network.train(inputs, targets)
    return before, inputs, targets, network


@pytest.mark.parametrize(("sizes", "seed"), [((3, 3, 3), 7), ((5, 4, 2), 8), ((2, 6, 3), 9)])
def test_001_train_step_equals_the_hand_written_update(tutorial_001, sizes, seed):
    (w_ih, w_ho), inputs, targets, network = one_step(tutorial_001, sizes, seed, lr=0.3)
    expected_ih, expected_ho = tutorial_001.hand_written_update(w_ih, w_ho, inputs, targets, 0.3)
    assert network.weights_input_hidden.shape == (sizes[1], sizes[0])  # non-square layers work
    # Within an ulp or two: the framework multiplies the same factors in a different order.
    np.testing.assert_allclose(network.weights_hidden_output, expected_ho, rtol=0, atol=4 * np.spacing(1.0))
    np.testing.assert_allclose(network.weights_input_hidden, expected_ih, rtol=0, atol=4 * np.spacing(1.0))


def test_001_w_ho_update_is_the_books_to_rounding(tutorial_001):
    # The same products summed in another order: equal to a few units in the last place, as the docstring says.
    np.random.seed(7)
    network = tutorial_001.Neural_Network(3, 3, 3, lr=0.3)
    w_ih, w_ho = network.weights_input_hidden.copy(), network.weights_hidden_output.copy()
    inputs, targets = np.array([0.9, 0.1, 0.5]), np.array([0.99, 0.01, 0.01])  # the example's own step
    network.train(inputs, targets)
    _, expected_ho = tutorial_001.hand_written_update(w_ih, w_ho, inputs, targets, 0.3)
    np.testing.assert_allclose(network.weights_hidden_output, expected_ho, rtol=0, atol=4 * np.spacing(1.0))
    assert "equal to rounding" in tutorial_001.__doc__


def test_001_hand_written_update_is_the_books_rule_and_the_exact_gradient(tutorial_001):
    np.random.seed(6)
    w_ih, w_ho = np.random.rand(4, 5) - 0.5, np.random.rand(3, 4) - 0.5
    inputs, targets, lr = np.linspace(0.1, 0.9, 5), np.array([0.01, 0.99, 0.01]), 0.2
    new_ih, new_ho = tutorial_001.hand_written_update(w_ih, w_ho, inputs, targets, lr)
    # The book's W_ho rule, written out independently.
    column, target_column = inputs[:, None], targets[:, None]
    hidden = sigmoid(w_ih @ column)
    final = sigmoid(w_ho @ hidden)
    np.testing.assert_allclose(new_ho, w_ho + lr * ((target_column - final) * final * (1 - final)) @ hidden.T)

    # W_ih: a step of -lr times the exact gradient of 0.5 * sum((t - o)^2), by central differences.
    def loss(w: np.ndarray) -> float:
        return 0.5 * float(np.sum((target_column - sigmoid(w_ho @ sigmoid(w @ column))) ** 2))

    numerical = np.zeros_like(w_ih)
    for index in np.ndindex(*w_ih.shape):
        step = np.zeros_like(w_ih)
        step[index] = 1e-6
        numerical[index] = (loss(w_ih + step) - loss(w_ih - step)) / 2e-6
    np.testing.assert_allclose(new_ih, w_ih - lr * numerical, rtol=0, atol=1e-10)


@pytest.mark.usefixtures("fashion_mnist_present")
def test_001_short_training_on_fashion_mnist_beats_chance(tutorial_001):
    accuracy, seconds, count = tutorial_001.train_on_fashion_mnist(samples=3000)
    assert count == 3000
    assert seconds > 0
    # Chance is 0.10; 3,000 images one at a time reach about 0.75.
    assert accuracy > 0.6


# --------------------------------------------------------------------------------------------------------------
# The example files, run as scripts
# --------------------------------------------------------------------------------------------------------------


def run_example(file_name: str, out_dir: Path, timeout: float = 300) -> str:
    result = subprocess.run(
        [sys.executable, f"examples/{file_name}", "--out", str(out_dir)],
        cwd=REPOSITORY,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    return result.stdout


def table(stdout: str) -> dict[str, tuple[str, str]]:
    """The printed table as quantity -> (published, ours); cells are separated by two or more spaces."""
    lines = stdout.splitlines()
    header = next(i for i, line in enumerate(lines) if line.split() == ["quantity", "published", "ours"])
    assert set(lines[header + 1].strip()) <= {"-", " "}
    rows = {}
    for line in lines[header + 2 :]:
        if not line.strip():
            break
        cells = re.split(r"\s{2,}", line.strip())
        assert len(cells) == 3, line
        rows[cells[0]] = (cells[1], cells[2])
    return rows


def assert_real_png(path: Path) -> None:
    import matplotlib.image

    assert path.is_file(), f"{path} was not written"
    content = path.read_bytes()
    assert content.startswith(PNG_SIGNATURE) and content[12:16] == b"IHDR"
    width, height = int.from_bytes(content[16:20], "big"), int.from_bytes(content[20:24], "big")
    assert width >= 200 and height >= 200
    pixels = matplotlib.image.imread(path)
    assert pixels.shape[:2] == (height, width)
    assert pixels.std() > 0  # something is drawn


@pytest.mark.slow
def test_script_004_prints_every_published_number(tmp_path):
    rows = table(run_example("tutorial_004_sichkar.py", tmp_path))
    assert rows["initial weights"] == (
        "[-0.16595599, 0.44064899, -0.99977125]",
        "[-0.16595599, 0.44064899, -0.99977125]",
    )
    assert rows["weights after 5000 iterations"] == (
        "[8.95950703, -0.20975775, -4.27128529]",
        "[8.95950703, -0.20975775, -4.27128529]",
    )
    assert rows["output for [1, 0, 0]"] == ("0.99987151", "0.99987151")
    assert rows["iterations to reach 0.999"][1] == "730"
    curve = Path(rows["iterations-vs-output curve"][1])
    assert curve == tmp_path / "tutorial_004_iterations_vs_output.png"
    assert_real_png(curve)


def test_script_002_003_prints_every_published_number(tmp_path):
    rows = table(run_example("tutorial_002_003_real_python.py", tmp_path))
    assert rows["002: prediction for [1.66, 1.56]"] == ("0.7985731", "0.7985731")
    assert rows["002: prediction for [2, 1.5]"] == ("0.87101915", "0.87101915")
    assert rows["003: prediction for [1.66, 1.56], seed 42"] == ("0.7784302101100966", "0.7784302101100966")
    first, last = (float(x) for x in rows["003: summed error, first / last of 100"][1].split(" / "))
    assert last < first
    curve = Path(rows["003: cumulative-error curve"][1])
    assert curve == tmp_path / "tutorial_003_training_error.png"
    assert_real_png(curve)


def test_script_000_prints_its_structure(tmp_path):
    rows = table(run_example("tutorial_000_python_course.py", tmp_path))
    assert rows["weights_in_hidden shape"] == ("(4, 3)", "(4, 3)")
    assert rows["weights_hidden_out shape"] == ("(2, 4)", "(2, 4)")
    for quantity in ("largest |weight| in_hidden <= 1/sqrt(3)", "largest |weight| hidden_out <= 1/sqrt(4)"):
        bound, largest = rows[quantity]
        assert 0 < float(largest) <= float(bound)
    assert re.fullmatch(
        r"\(2, 1\) column \[\[0\.\d{3}\], \[0\.\d{3}\]\]", rows["run([(3, 4)]) of the 2-4-2 network"][1]
    )
    before, after = (
        float(x) for x in rows["2-4-2 accuracy on two clusters, before / after 3 epochs of train()"][1].split(" / ")
    )
    assert after >= 0.9 and after > before


@pytest.mark.slow
@pytest.mark.usefixtures("fashion_mnist_present")
def test_script_001_reproduces_the_book_on_all_of_fashion_mnist(tmp_path):
    rows = table(run_example("tutorial_001_make_your_own.py", tmp_path, timeout=600))
    for quantity in (
        "train(): W_ho after one step vs the book's update",
        "train(): W_ih after one step vs the exact gradient",
    ):
        published, ours = rows[quantity]
        assert published == "the same weights"
        assert float(ours.removeprefix("max difference ")) <= 1e-15
    published, ours = rows["Fashion-MNIST test accuracy, 60000 images x 1 epoch"]
    # The book's network, faithfully reproduced: measured 0.8376 (60,000 images, one epoch, seed 0).
    assert float(ours.split()[0]) >= 0.83
