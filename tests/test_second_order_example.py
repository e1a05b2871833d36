"""examples/second_order.py: what it shows is true, and docs/higher-order.md prints exactly what it prints."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "examples"))

import second_order as demo  # noqa: E402 - examples/ is not a package

from tinygrad_nn import Tensor, gradcheck, gradgradcheck  # noqa: E402


@pytest.fixture(scope="module")
def printed() -> str:
    done = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "second_order.py")], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_the_docs_page_prints_exactly_what_the_example_prints(printed):
    page = (ROOT / "docs" / "higher-order.md").read_text()
    assert printed.strip() in page


def test_newton_gets_below_five_thousand_gradient_steps_in_a_handful():
    _, sgd_loss = demo.sgd()
    _, newton_loss, steps = demo.newton(target_loss=sgd_loss)
    assert newton_loss < sgd_loss
    assert steps <= 10


def test_the_sgd_baseline_is_the_tutorials_training():
    weights, _ = demo.sgd()
    np.testing.assert_allclose(weights.ravel(), [8.95950703, -0.20975775, -4.27128529], atol=1e-8)


def test_the_neuron_loss_is_twice_differentiable_by_finite_differences():
    w = Tensor(demo.INITIAL_WEIGHTS.copy(), requires_grad=True)
    assert gradcheck(demo.neuron_loss, [w], order=2)
    assert gradgradcheck(demo.neuron_loss, [w])


def test_the_mlp_hessian_is_symmetric_and_is_the_derivative_of_the_gradient():
    _, after, hessian, eigenvalues = demo.mlp_hessian()
    assert after < 1e-12
    np.testing.assert_allclose(hessian, hessian.T, atol=1e-12)
    # An exact fit of 4 points: the Hessian is the Gauss-Newton matrix, of rank at most 4, positive semi-definite.
    assert np.sum(eigenvalues > 1e-6) <= 4
    assert eigenvalues.min() > -1e-9


def test_the_gradient_penalty_goes_down():
    penalties = demo.gradient_penalty_training(steps=30)
    assert penalties[-1] < penalties[0] / 5
