"""Grad mode, anomaly mode, retain_grads, tracing and the module scope are per thread, as PyTorch's grad mode is."""

from __future__ import annotations

import threading

import numpy as np
import pytest

import tinygrad_nn as tg
from tinygrad_nn import Tensor, autograd, nn, optim


def run_in_thread(function, *args):
    """Run `function` in a new thread; return its result or raise its exception here."""
    outcome = {}

    def target():
        try:
            outcome["value"] = function(*args)
        except BaseException as error:
            outcome["error"] = error

    thread = threading.Thread(target=target)
    thread.start()
    thread.join(timeout=60)
    assert not thread.is_alive()
    if "error" in outcome:
        raise outcome["error"]
    return outcome.get("value")


def test_no_grad_in_one_thread_does_not_stop_another_from_recording():
    inside = threading.Event()
    release = threading.Event()

    def evaluator():
        with tg.no_grad():
            inside.set()
            release.wait(timeout=30)
            return tg.is_grad_enabled()

    thread = threading.Thread(target=evaluator)
    thread.start()
    try:
        assert inside.wait(timeout=30)
        x = Tensor([1.0, 2.0], requires_grad=True)
        y = (x * 3.0).sum()  # this thread never entered no_grad
        assert tg.is_grad_enabled() and y.requires_grad
        y.backward()
        np.testing.assert_array_equal(x.grad, [3.0, 3.0])
    finally:
        release.set()
        thread.join(timeout=30)


def test_a_trainer_thread_records_every_step_while_another_thread_evaluates():
    # The probe: a trainer beside an evaluating thread recorded 0 of 300 steps.
    tg.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 1))
    optimizer = optim.SGD(model.parameters(), lr=0.01)
    x, y = np.random.default_rng(0).standard_normal((16, 4)), np.zeros((16, 1))
    stop = threading.Event()
    evaluations = []

    def evaluate():
        while not stop.is_set():
            with tg.no_grad():
                evaluations.append(model(Tensor(x)).requires_grad)

    evaluator = threading.Thread(target=evaluate)
    evaluator.start()
    recorded = 0
    try:
        for _ in range(300):
            loss = nn.functional.mse_loss(model(Tensor(x)), y)
            recorded += loss.requires_grad
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    finally:
        stop.set()
        evaluator.join(timeout=30)
    assert recorded == 300
    assert evaluations and not any(evaluations)


def test_overlapping_no_grad_and_enable_grad_in_two_threads_restore_each_threads_own_mode():
    # Thread A enters no_grad, thread B enters enable_grad, A leaves, B leaves: both end where they started.
    steps = [threading.Event() for _ in range(4)]
    seen = {}

    def thread_a():
        with tg.no_grad():
            steps[0].set()
            steps[1].wait(timeout=30)
        seen["a_after"] = tg.is_grad_enabled()
        steps[2].set()

    def thread_b():
        steps[0].wait(timeout=30)
        with tg.set_grad_enabled(False):
            steps[1].set()
            steps[2].wait(timeout=30)
            seen["b_inside"] = tg.is_grad_enabled()
        seen["b_after"] = tg.is_grad_enabled()

    threads = [threading.Thread(target=thread_a), threading.Thread(target=thread_b)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert seen == {"a_after": True, "b_inside": False, "b_after": True}
    assert tg.is_grad_enabled()


def test_a_new_thread_starts_with_grad_enabled_even_inside_no_grad():
    with tg.no_grad():
        assert run_in_thread(tg.is_grad_enabled) is True
        assert not tg.is_grad_enabled()


def test_one_no_grad_object_used_by_two_threads_restores_each():
    shared = tg.no_grad()
    ready, done = threading.Event(), threading.Event()

    def other():
        with shared:
            ready.set()
            done.wait(timeout=30)
        return tg.is_grad_enabled()

    result = {}
    thread = threading.Thread(target=lambda: result.setdefault("mode", other()))
    thread.start()
    ready.wait(timeout=30)
    with shared:
        assert not tg.is_grad_enabled()
    assert tg.is_grad_enabled()
    done.set()
    thread.join(timeout=30)
    assert result["mode"] is True


def test_decorated_no_grad_function_affects_only_the_calling_thread():
    @tg.no_grad
    def evaluate(x):
        return x * 2.0

    x = Tensor([1.0], requires_grad=True)
    assert not run_in_thread(evaluate, x).requires_grad
    assert (x * 2.0).requires_grad


def test_anomaly_mode_in_one_thread_does_not_raise_in_another():
    x = Tensor([0.0], requires_grad=True)
    ready, done = threading.Event(), threading.Event()

    def hunter():
        with tg.detect_anomaly():
            ready.set()
            done.wait(timeout=30)

    thread = threading.Thread(target=hunter)
    thread.start()
    try:
        ready.wait(timeout=30)
        with np.errstate(divide="ignore"):
            y = x.log()  # -inf: an anomaly, but not in this thread's mode
        assert np.isneginf(y.data[0])
    finally:
        done.set()
        thread.join(timeout=30)

    def anomalous():
        with tg.detect_anomaly():
            Tensor([0.0], requires_grad=True).log()

    with pytest.raises(tg.AnomalyError, match="Log forward produced"):
        run_in_thread(anomalous)


def test_retain_grads_in_one_thread_keeps_nothing_in_another():
    ready, done = threading.Event(), threading.Event()

    def keeper():
        with tg.retain_grads():
            ready.set()
            done.wait(timeout=30)

    thread = threading.Thread(target=keeper)
    thread.start()
    try:
        ready.wait(timeout=30)
        x = Tensor([1.0, 2.0], requires_grad=True)
        hidden = x * 2.0
        hidden.sum().backward()
        assert getattr(hidden.grad_fn, "grad", None) is None
    finally:
        done.set()
        thread.join(timeout=30)


def test_module_scope_is_per_thread():
    model = nn.Sequential(nn.Linear(2, 2), nn.ReLU())
    ready, done = threading.Event(), threading.Event()

    class Blocking(nn.Module):
        def forward(self, x):
            ready.set()
            done.wait(timeout=30)
            return x

    blocker = Blocking()
    thread = threading.Thread(target=lambda: blocker(Tensor([1.0])))
    thread.start()
    try:
        ready.wait(timeout=30)
        # The other thread is inside a module call; ops here must not think they are in it.
        out = Tensor([[1.0, 2.0]], requires_grad=True) * 2.0
        assert getattr(out.grad_fn, "scope", None) is None
        hidden = model(Tensor([[1.0, 2.0]]))
        assert hidden.grad_fn.scope[0] is model[1]
    finally:
        done.set()
        thread.join(timeout=30)


def test_trace_ops_records_only_its_own_thread():
    ready, done = threading.Event(), threading.Event()
    x = Tensor([1.0, 2.0])

    def busy():
        ready.set()
        while not done.is_set():
            (x * 2.0).exp()

    thread = threading.Thread(target=busy)
    thread.start()
    try:
        ready.wait(timeout=30)
        with autograd.trace_ops() as records:
            (x + 1.0).sum()
    finally:
        done.set()
        thread.join(timeout=30)
    assert [r.function.__name__ for r in records] == ["Add", "Sum"]


def test_threads_training_separate_models_get_the_same_result_as_one_thread():
    def train(seed):
        tg.manual_seed(seed)
        rng = np.random.default_rng(seed)
        model = nn.Sequential(nn.Linear(3, 5, dtype=np.float64), nn.Tanh(), nn.Linear(5, 1, dtype=np.float64))
        generator = np.random.default_rng(seed)
        for layer in (model[0], model[2]):
            layer.reset_parameters(generator)
        optimizer = optim.SGD(model.parameters(), lr=0.1)
        x, y = rng.standard_normal((8, 3)), rng.standard_normal((8, 1))
        for _ in range(50):
            loss = nn.functional.mse_loss(model(Tensor(x)), y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        return model.state_dict()

    alone = [train(seed) for seed in range(3)]
    results = {}
    threads = [threading.Thread(target=lambda s=seed: results.setdefault(s, train(s))) for seed in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    for seed in range(3):
        for name, array in alone[seed].items():
            np.testing.assert_array_equal(results[seed][name], array)
