"""The engine's first promise: micrograd's own scenarios give micrograd's numbers on 0-d tensors."""

import numpy as np
import pytest

from tinygrad_nn import Tensor


def test_micrograd_sanity_check():
    x = Tensor(-4.0, requires_grad=True)
    z = 2 * x + 2 + x
    q = z.relu() + z * x
    h = (z * z).relu()
    y = h + q + q * x
    y.backward()
    # Values from PyTorch (micrograd's test compares with it): y = -20, dy/dx = 46.
    assert y.item() == pytest.approx(-20.0)
    assert x.grad == pytest.approx(46.0)
    assert isinstance(x.grad, np.ndarray) and x.grad.shape == ()


def test_micrograd_more_ops():
    a = Tensor(-4.0, requires_grad=True)
    b = Tensor(2.0, requires_grad=True)
    c = a + b
    d = a * b + b**3
    c += c + 1
    c += 1 + c + (-a)
    d += d * 2 + (b + a).relu()
    d += 3 * d + (b - a).relu()
    e = c - d
    f = e**2
    g = f / 2.0
    g += 10.0 / f
    g.backward()
    assert g.item() == pytest.approx(24.70408163265306, rel=1e-12)
    assert a.grad == pytest.approx(138.83381924198252, rel=1e-12)
    assert b.grad == pytest.approx(645.5772594752186, rel=1e-12)
