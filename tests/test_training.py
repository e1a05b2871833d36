"""tinygrad_nn.training: fit, evaluate, callbacks, checkpoint files, and a resume that is bit for bit the same."""

from __future__ import annotations

import io
import json
import math
import random
import zipfile

import numpy as np
import pytest

import tinygrad_nn as tg
from tinygrad_nn import Tensor, data, models, nn, optim, training
from tinygrad_nn.nn import functional as F  # noqa: N812

# --------------------------------------------------------------------------------------------------------------
# Helpers: a small classification problem and a model that draws random numbers while it trains
# --------------------------------------------------------------------------------------------------------------


def blobs(samples=96, features=5, classes=3, seed=0):
    """Three Gaussian blobs: separable enough to learn in a few epochs."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, classes, samples)
    centres = rng.standard_normal((classes, features)) * 3
    return centres[labels] + rng.standard_normal((samples, features)), labels


class NoisyMLP(nn.Module):
    """An MLP that, while training, adds noise drawn from the framework's generator and numpy's global one.

    Dropout will draw from tinygrad_nn's default generator; user code may draw from numpy's or Python's global
    generators. A resume is only bit for bit the same if every one of them is restored.
    """

    def __init__(self, seed=0):
        super().__init__()
        generator = np.random.default_rng(seed)
        self.hidden = nn.Linear(5, 16)
        self.out = nn.Linear(16, 3)
        self.hidden.reset_parameters(generator)
        self.out.reset_parameters(generator)
        self.modes_seen = []

    def forward(self, x):
        self.modes_seen.append(self.training)
        hidden = self.hidden(x).relu()
        if self.training:
            noise = nn.init.default_generator().normal(0, 0.01, hidden.shape) + np.random.rand() * 0.01
            hidden = hidden + Tensor(noise * random.random())
        return self.out(hidden)


def setup(seed=0, shuffle_seed=1, scheduler="cosine", optimizer="adam"):
    x, y = blobs()
    model = NoisyMLP(seed)
    if optimizer == "adam":
        opt = optim.Adam(model.parameters(), lr=0.01, amsgrad=True)
    else:
        opt = optim.SGD(model.parameters(), lr=0.05, momentum=0.9, nesterov=True)
    schedulers = {
        "cosine": lambda: optim.lr_scheduler.CosineAnnealingLR(opt, T_max=5),
        "onecycle": lambda: optim.lr_scheduler.OneCycleLR(opt, max_lr=0.05, epochs=5, steps_per_epoch=6),
        "plateau": lambda: optim.lr_scheduler.ReduceLROnPlateau(opt, factor=0.5, patience=0),
        "none": lambda: None,
    }
    train_loader = data.DataLoader(x[:80], y[:80], batch_size=16, shuffle=True, seed=shuffle_seed)
    val_loader = data.DataLoader(x[80:], y[80:], batch_size=8)
    return model, opt, schedulers[scheduler](), train_loader, val_loader


def parameters_of(model):
    return {name: p.data.copy() for name, p in model.named_parameters()}


def assert_bit_identical(first, second):
    assert first.keys() == second.keys()
    for name in first:
        assert np.array_equal(first[name], second[name]), name


@pytest.fixture(autouse=True)
def fixed_global_generators():
    """These tests draw from numpy's, Python's and the framework's generators: seed them, and put them back."""
    numpy_state, python_state = np.random.get_state(), random.getstate()
    framework_state = nn.init.default_generator().bit_generator.state
    np.random.seed(0)
    random.seed(0)
    tg.manual_seed(0)
    yield
    np.random.set_state(numpy_state)
    random.setstate(python_state)
    nn.init.default_generator().bit_generator.state = framework_state


class Recorder(training.Callback):
    """Records every hook call as (hook, epoch, step)."""

    def __init__(self):
        self.calls = []

    def __getattribute__(self, name):
        if name.startswith("on_"):
            calls = object.__getattribute__(self, "calls")
            return lambda state: calls.append((name, state.epoch, state.step))
        return object.__getattribute__(self, name)


# --------------------------------------------------------------------------------------------------------------
# fit: the plain loop, recorded
# --------------------------------------------------------------------------------------------------------------


def test_fit_is_the_hand_written_loop_bit_for_bit():
    model, opt, scheduler, loader, _ = setup(scheduler="cosine")
    history = training.fit(model, F.cross_entropy, opt, loader, epochs=3, scheduler=scheduler, progress=False)

    np.random.seed(0)
    random.seed(0)
    tg.manual_seed(0)
    by_hand, hand_opt, hand_scheduler, hand_loader, _ = setup(scheduler="cosine")
    losses = []
    for _ in range(3):
        by_hand.train()
        for x, y in hand_loader:
            loss = F.cross_entropy(by_hand(x), y)
            hand_opt.zero_grad()
            loss.backward()
            hand_opt.step()
            losses.append(loss.item())
        hand_scheduler.step()
    assert_bit_identical(parameters_of(model), parameters_of(by_hand))
    assert history.step_loss == losses
    assert history.epochs == [1, 2, 3] and len(history.loss) == len(history.epoch_time) == 3
    assert history.loss == pytest.approx([np.mean(losses[i * 5 : (i + 1) * 5]) for i in range(3)], rel=1e-15)


def test_fit_records_validation_and_the_rate_of_each_epoch():
    model, opt, scheduler, loader, val_loader = setup()
    history = training.fit(
        model, F.cross_entropy, opt, loader, epochs=3, val_loader=val_loader, scheduler=scheduler, progress=False
    )
    assert set(history.metrics) == {"val_loss", "val_accuracy", "lr"}
    assert history.metrics["lr"][0] == 0.01 and history.metrics["lr"][1] < 0.01  # the cosine's first step
    final = training.evaluate(model, val_loader, F.cross_entropy)
    assert history.metrics["val_accuracy"][-1] == final.accuracy
    assert history.metrics["val_loss"][-1] == final.loss
    assert history.metrics["val_accuracy"][-1] > 0.8  # the blobs are learnt
    assert "3 epochs, 15 steps" in repr(history)


def test_a_metric_that_starts_later_is_nan_before_so_epochs_and_metrics_stay_aligned(tmp_path):
    model, opt, _, loader, val_loader = setup(scheduler="none")
    training.fit(model, F.cross_entropy, opt, loader, epochs=1, checkpoint_dir=tmp_path, progress=False)
    model, opt, _, loader, val_loader = setup(scheduler="none")
    history = training.fit(model, F.cross_entropy, opt, loader, epochs=2, val_loader=val_loader,
                           checkpoint_dir=tmp_path, resume=True, progress=False)  # fmt: skip
    assert history.epochs == [1, 2]
    assert math.isnan(history.metrics["val_loss"][0]) and history.metrics["val_loss"][1] > 0
    assert len(history.metrics["lr"]) == 2


def test_val_name_and_extra_metrics():
    model, opt, _, loader, val_loader = setup(scheduler="none")
    history = training.fit(
        model,
        F.cross_entropy,
        opt,
        loader,
        epochs=1,
        val_loader=val_loader,
        val_name="test",
        metrics={"mean_score": lambda outputs, targets: float(outputs.mean())},
        progress=False,
    )
    assert set(history.metrics) == {"test_loss", "test_accuracy", "test_mean_score", "lr"}


def test_onecycle_steps_every_batch_and_plateau_steps_on_the_validation_loss():
    model, opt, scheduler, loader, val_loader = setup(scheduler="onecycle")
    training.fit(model, F.cross_entropy, opt, loader, epochs=5, scheduler=scheduler, progress=False)
    assert scheduler.last_epoch == 5 * len(loader)  # once per batch, as OneCycleLR wants

    model, opt, scheduler, loader, val_loader = setup(scheduler="plateau")
    history = training.fit(
        model, F.cross_entropy, opt, loader, epochs=4, val_loader=val_loader, scheduler=scheduler, progress=False
    )
    assert scheduler.last_epoch == 4
    assert scheduler.best == min(history.metrics["val_loss"])


def test_training_runs_in_train_mode_validation_in_eval_mode_and_modes_are_put_back():
    model, opt, _, loader, val_loader = setup(scheduler="none")
    model.eval()
    model.hidden.train()  # a mixed state, which must come back exactly
    training.fit(model, F.cross_entropy, opt, loader, epochs=2, val_loader=val_loader, progress=False)
    per_epoch = len(loader) + len(val_loader)
    assert model.modes_seen == ([True] * len(loader) + [False] * len(val_loader)) * 2
    assert len(model.modes_seen) == 2 * per_epoch
    assert (model.training, model.hidden.training, model.out.training) == (False, True, False)


# --------------------------------------------------------------------------------------------------------------
# Callbacks
# --------------------------------------------------------------------------------------------------------------


def test_hooks_are_called_in_order_with_the_epoch_and_step():
    model, opt, _, loader, _ = setup(scheduler="none")
    loader = data.DataLoader(loader.x[:32], loader.y[:32], batch_size=16)
    recorder = Recorder()
    training.fit(model, F.cross_entropy, opt, loader, epochs=2, callbacks=[recorder], progress=False)
    assert recorder.calls == [
        ("on_train_begin", 0, 0),
        ("on_epoch_begin", 1, 0),
        ("on_after_backward", 1, 1),
        ("on_step_end", 1, 1),
        ("on_after_backward", 1, 2),
        ("on_step_end", 1, 2),
        ("on_epoch_end", 1, 2),
        ("on_epoch_begin", 2, 2),
        ("on_after_backward", 2, 3),
        ("on_step_end", 2, 3),
        ("on_after_backward", 2, 4),
        ("on_step_end", 2, 4),
        ("on_epoch_end", 2, 4),
        ("on_train_end", 2, 4),
    ]


def test_after_backward_sees_the_gradients_before_the_step_and_step_end_after_it():
    model, opt, _, loader, _ = setup(scheduler="none", optimizer="sgd")
    seen = []

    class Watcher:  # a plain object with two of the hooks is a callback
        def on_after_backward(self, state):
            seen.append(("backward", state.model.out.weight.grad is not None, state.model.out.weight.data.copy()))

        def on_step_end(self, state):
            seen.append(("step", isinstance(state.loss, float), state.model.out.weight.data.copy()))

    training.fit(model, F.cross_entropy, opt, loader, epochs=1, callbacks=[Watcher()], progress=False)
    assert len(seen) == 2 * len(loader)
    for (_, has_grad, before), (_, loss_is_float, after) in zip(seen[::2], seen[1::2]):
        assert has_grad and loss_is_float and not np.array_equal(before, after)


def test_a_callback_stops_training_mid_epoch():
    model, opt, _, loader, _ = setup(scheduler="none")

    class StopAtStep:
        def on_step_end(self, state):
            if state.step == 7:
                state.request_stop("loss looked odd")

    recorder = Recorder()
    history = training.fit(
        model, F.cross_entropy, opt, loader, epochs=5, callbacks=[StopAtStep(), recorder], progress=False
    )
    assert history.epochs == [1]  # the second epoch did not finish
    assert len(history.step_loss) == 7
    assert history.stop_reason == "loss looked odd (during epoch 2, step 7)"
    assert recorder.calls[-1] == ("on_train_end", 2, 7)


def test_a_callback_stops_training_after_an_epoch_and_the_epoch_is_checkpointed(tmp_path):
    model, opt, _, loader, _ = setup(scheduler="none")

    class EarlyStop:
        def on_epoch_end(self, state):
            if state.epoch == 2:
                state.request_stop("patience ran out")

    history = training.fit(
        model, F.cross_entropy, opt, loader, epochs=5, callbacks=[EarlyStop()], checkpoint_dir=tmp_path, progress=False
    )
    assert history.epochs == [1, 2] and history.stop_reason == "patience ran out (after epoch 2)"
    assert training.load_checkpoint(tmp_path / "checkpoint.npz")["epoch"] == 2


def test_an_object_without_hooks_is_not_a_callback():
    model, opt, _, loader, _ = setup(scheduler="none")
    with pytest.raises(TypeError, match="is not a callback: it has none of the methods on_train_begin"):
        training.fit(model, F.cross_entropy, opt, loader, epochs=1, callbacks=[print])


# --------------------------------------------------------------------------------------------------------------
# Checkpoints and resuming
# --------------------------------------------------------------------------------------------------------------


class CountingCallback:
    """A callback with state: how many steps it has seen, saved in checkpoints."""

    def __init__(self):
        self.steps = 0

    def on_step_end(self, state):
        self.steps += 1

    def state_dict(self):
        return {"steps": self.steps}

    def load_state_dict(self, state):
        self.steps = state["steps"]


class InterruptAt:
    """Raises KeyboardInterrupt at a given step, as Ctrl-C would."""

    def __init__(self, step):
        self.step = step

    def on_step_end(self, state):
        if state.step == self.step:
            raise KeyboardInterrupt


@pytest.mark.parametrize(
    ("scheduler", "optimizer"), [("cosine", "adam"), ("onecycle", "sgd"), ("plateau", "adam"), ("none", "sgd")]
)
def test_interrupted_and_resumed_training_is_bit_for_bit_the_uninterrupted_one(tmp_path, scheduler, optimizer):
    model, opt, sched, loader, val_loader = setup(scheduler=scheduler, optimizer=optimizer)
    counter = CountingCallback()
    expected = training.fit(
        model, F.cross_entropy, opt, loader, epochs=5, val_loader=val_loader, scheduler=sched, callbacks=[counter],
        progress=False,
    )  # fmt: skip
    expected_parameters = parameters_of(model)

    np.random.seed(0)
    random.seed(0)
    tg.manual_seed(0)
    model, opt, sched, loader, val_loader = setup(scheduler=scheduler, optimizer=optimizer)
    with pytest.raises(training.TrainingInterrupted) as interruption:
        training.fit(
            model, F.cross_entropy, opt, loader, epochs=5, val_loader=val_loader, scheduler=sched,
            callbacks=[CountingCallback(), InterruptAt(step=14)], checkpoint_dir=tmp_path, progress=False,
        )  # fmt: skip
    assert isinstance(interruption.value, KeyboardInterrupt)
    assert interruption.value.epoch == 2 and interruption.value.checkpoint == tmp_path / "checkpoint.npz"
    assert (
        str(interruption.value)
        == f"interrupted during epoch 3; the checkpoint of epoch 2 is {tmp_path / 'checkpoint.npz'}"
    )
    assert interruption.value.history.epochs == [1, 2]

    # A new process: everything rebuilt with other weights and seeds, and the generators moved on.
    np.random.seed(99)
    random.seed(99)
    tg.manual_seed(99)
    model, opt, sched, loader, val_loader = setup(seed=42, shuffle_seed=42, scheduler=scheduler, optimizer=optimizer)
    resumed_counter = CountingCallback()
    history = training.fit(
        model, F.cross_entropy, opt, loader, epochs=5, val_loader=val_loader, scheduler=sched,
        callbacks=[resumed_counter, InterruptAt(step=-1)], checkpoint_dir=tmp_path, resume=True, progress=False,
    )  # fmt: skip
    assert_bit_identical(parameters_of(model), expected_parameters)
    assert history.step_loss == expected.step_loss
    assert history.loss == expected.loss and history.metrics == expected.metrics
    assert resumed_counter.steps == counter.steps == 5 * len(loader)


def test_the_cnn_recipe_interrupted_and_resumed_is_bit_for_bit_the_uninterrupted_one(tmp_path):
    """The CNN on a few digits: dropout's masks and batch norm's running statistics continue where they stopped."""
    pytest.importorskip("sklearn")
    (x, y), (x_test, y_test) = data.load_digits()

    def build():
        tg.manual_seed(0)
        model = models.cnn((1, 8, 8), [16], 10, np.float32, seed=0)
        optimizer = optim.Adam(model.parameters(), lr=1e-3)
        scheduler = optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=3)
        loader = data.DataLoader(x[:256], y[:256], batch_size=32, shuffle=True, seed=0)
        return model, optimizer, scheduler, loader, data.DataLoader(x_test[:100], y_test[:100], batch_size=50)

    def run(parts, **options):
        model, optimizer, scheduler, loader, val_loader = parts
        return training.fit(model, F.cross_entropy, optimizer, loader, epochs=3, val_loader=val_loader,
                            scheduler=scheduler, progress=False, **options)  # fmt: skip

    straight = build()
    expected = run(straight)
    with pytest.raises(training.TrainingInterrupted):
        run(build(), callbacks=[InterruptAt(step=12)], checkpoint_dir=tmp_path)  # 8 steps an epoch: in the second
    resumed = build()
    tg.manual_seed(7)  # another process's generator: only the checkpoint's state gives the same masks
    history = run(resumed, checkpoint_dir=tmp_path, resume=True)
    assert history.step_loss == expected.step_loss and history.metrics == expected.metrics
    expected_state, resumed_state = straight[0].state_dict(), resumed[0].state_dict()
    assert "2.running_mean" in resumed_state
    assert_bit_identical(resumed_state, expected_state)  # parameters and batch norms' buffers


def test_ctrl_c_while_the_checkpoint_is_written_keeps_the_previous_one(tmp_path, monkeypatch):
    model, opt, _, loader, _ = setup(scheduler="none")
    real_save = training.save
    calls = []

    def save_then_interrupt(arrays, path):
        calls.append(path)
        if len(calls) == 2:  # the second epoch's checkpoint: half written, then Ctrl-C
            real_save(arrays, path)
            raise KeyboardInterrupt
        real_save(arrays, path)

    monkeypatch.setattr(training, "save", save_then_interrupt)
    with pytest.raises(training.TrainingInterrupted, match="the checkpoint of epoch 1 is"):
        training.fit(model, F.cross_entropy, opt, loader, epochs=3, checkpoint_dir=tmp_path, progress=False)
    assert training.load_checkpoint(tmp_path / "checkpoint.npz")["epoch"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint.npz"]  # no temporary file left behind


def test_ctrl_c_in_the_first_epoch_says_there_is_no_checkpoint(tmp_path):
    model, opt, _, loader, _ = setup(scheduler="none")
    with pytest.raises(training.TrainingInterrupted) as interruption:
        training.fit(model, F.cross_entropy, opt, loader, epochs=3, callbacks=[InterruptAt(2)], checkpoint_dir=tmp_path)
    assert interruption.value.checkpoint is None and interruption.value.epoch == 0
    assert "no checkpoint was written (no epoch had finished)" in str(interruption.value)


def test_resuming_a_finished_run_trains_nothing(tmp_path):
    model, opt, _, loader, _ = setup(scheduler="none")
    training.fit(model, F.cross_entropy, opt, loader, epochs=2, checkpoint_dir=tmp_path, progress=False)
    trained = parameters_of(model)
    model, opt, _, loader, _ = setup(seed=3, scheduler="none")
    recorder = Recorder()
    history = training.fit(
        model, F.cross_entropy, opt, loader, epochs=2, checkpoint_dir=tmp_path, resume=True, callbacks=[recorder]
    )
    assert history.epochs == [1, 2]
    assert_bit_identical(parameters_of(model), trained)
    assert [call[0] for call in recorder.calls] == ["on_train_begin", "on_train_end"]


def test_a_checkpoint_that_does_not_fit_is_refused_and_changes_nothing(tmp_path):
    model, opt, sched, loader, _ = setup(scheduler="cosine")
    training.fit(
        model, F.cross_entropy, opt, loader, epochs=1, scheduler=sched, checkpoint_dir=tmp_path, progress=False
    )

    other, other_opt, other_sched, other_loader, _ = setup(seed=5, scheduler="cosine", optimizer="sgd")
    before = parameters_of(other)
    with pytest.raises(ValueError, match="it was trained with Adam, not SGD"):
        training.fit(other, F.cross_entropy, other_opt, other_loader, epochs=2, scheduler=other_sched,
                     checkpoint_dir=tmp_path, resume=True)  # fmt: skip
    assert_bit_identical(parameters_of(other), before)

    other, other_opt, _, other_loader, _ = setup(seed=5, scheduler="none")
    with pytest.raises(ValueError, match="scheduler CosineAnnealingLR, not None"):
        training.fit(other, F.cross_entropy, other_opt, other_loader, epochs=2, checkpoint_dir=tmp_path, resume=True)

    # The optimizer fits but the model does not: the model's load is refused, the optimizer is put back.
    wider = nn.Sequential(nn.Linear(5, 16), nn.ReLU(), nn.Linear(16, 3))
    wider_opt = optim.Adam(wider.parameters(), lr=0.01, amsgrad=True)
    with pytest.raises(ValueError, match=r"cannot resume from the checkpoint .*missing keys"):
        training.fit(wider, F.cross_entropy, wider_opt, other_loader, epochs=2,
                     scheduler=optim.lr_scheduler.CosineAnnealingLR(wider_opt, T_max=5), checkpoint_dir=tmp_path,
                     resume=True)  # fmt: skip
    assert wider_opt.state_dict()["state"] == {}

    # A loader of another batch size would give other batches: refused, and the model put back.
    model, opt, sched, _, _ = setup(seed=5, scheduler="cosine")
    before = parameters_of(model)
    x, y = blobs()
    with pytest.raises(ValueError, match="batch_size 16 there, 32 here"):
        training.fit(model, F.cross_entropy, opt, data.DataLoader(x[:80], y[:80], batch_size=32, shuffle=True),
                     epochs=2, scheduler=sched, checkpoint_dir=tmp_path, resume=True)  # fmt: skip
    assert_bit_identical(parameters_of(model), before)


def test_resume_needs_a_checkpoint(tmp_path):
    model, opt, _, loader, _ = setup(scheduler="none")
    with pytest.raises(FileNotFoundError, match="no checkpoint at"):
        training.fit(model, F.cross_entropy, opt, loader, epochs=1, checkpoint_dir=tmp_path, resume=True)
    with pytest.raises(ValueError, match="resume=True needs the checkpoint_dir"):
        training.fit(model, F.cross_entropy, opt, loader, epochs=1, resume=True)


def test_a_checkpoint_folder_that_cannot_be_written_fails_before_any_training(tmp_path):
    model, opt, _, loader, _ = setup(scheduler="none")
    recorder = Recorder()
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    for folder in (blocker / "inside", "/proc/tinygrad-nn-test"):
        with pytest.raises(OSError):
            training.fit(model, F.cross_entropy, opt, loader, epochs=1, checkpoint_dir=folder, callbacks=[recorder])
    with pytest.raises(PermissionError, match="cannot write checkpoints into /proc"):
        training.fit(model, F.cross_entropy, opt, loader, epochs=1, checkpoint_dir="/proc", callbacks=[recorder])
    assert recorder.calls == []


# --------------------------------------------------------------------------------------------------------------
# Checkpoint files
# --------------------------------------------------------------------------------------------------------------


def test_checkpoint_files_keep_every_kind_of_value(tmp_path):
    content = {
        "array": np.arange(6, dtype=np.float32).reshape(2, 3),
        "scalar": np.float32(0.5),
        "integer": 2**100,
        "floats": [math.inf, -0.0, 1e-300],
        "tuple": (0.9, 0.999),
        "numbered": {0: {"exp_avg": np.ones(2)}, 3: {"step": 7}},
        "nested": {"none": None, "flag": True, "text": "é", "empty": []},
    }
    path = training.save_checkpoint(tmp_path / "c.npz", content)
    loaded = training.load_checkpoint(path)
    assert loaded["array"].dtype == np.float32 and np.array_equal(loaded["array"], content["array"])
    assert type(loaded["scalar"]) is np.float32 and loaded["scalar"] == 0.5
    assert loaded["integer"] == 2**100 and loaded["tuple"] == (0.9, 0.999)
    assert loaded["floats"][0] == math.inf and math.copysign(1, loaded["floats"][1]) == -1
    assert list(loaded["numbered"]) == [0, 3] and loaded["numbered"][3] == {"step": 7}
    assert loaded["nested"] == content["nested"]
    # Plain numpy reads it, without pickle, and so does tinygrad_nn.load.
    with np.load(path, allow_pickle=False) as archive:
        assert "array" in archive.files and "checkpoint.json" in archive.files
        assert json.loads(archive["checkpoint.json"].tobytes())["format"] == "tinygrad_nn checkpoint"
    assert set(tg.load(path)) >= {"array", "checkpoint.json"}


def test_a_checkpoint_refuses_what_is_not_data(tmp_path):
    with pytest.raises(TypeError, match="optimizer/hook is a function"):
        training.save_checkpoint(tmp_path / "c.npz", {"optimizer": {"hook": lambda: 0}})
    assert list(tmp_path.iterdir()) == []


def write_npz(path, members):
    with zipfile.ZipFile(path, "w") as archive:
        for name, array in members.items():
            buffer = io.BytesIO()
            np.lib.format.write_array(buffer, np.asarray(array), allow_pickle=True)
            archive.writestr(name + ".npy", buffer.getvalue())


def json_member(text):
    return np.frombuffer(text.encode(), dtype=np.uint8)


@pytest.mark.parametrize(
    ("members", "message"),
    [
        ({"weights": np.ones(2)}, "has no checkpoint.json member"),
        ({"checkpoint.json": json_member("{not json")}, "is not valid JSON"),
        ({"checkpoint.json": json_member('{"format": "other", "content": {}}')}, "lacks the format marker"),
        ({"checkpoint.json": json_member('{"format": "tinygrad_nn checkpoint", "version": 9, "content": {}}')},
         "format version 9"),
        ({"checkpoint.json": json_member('{"format": "tinygrad_nn checkpoint", "version": 1, '
                                         '"content": {"a": {"__array__": "missing"}}}')},
         "refers to an array 'missing' that the file does not hold"),
        ({"checkpoint.json": json_member('{"format": "tinygrad_nn checkpoint", "version": 1, '
                                         '"content": {"a": {"__class__": "os.system"}}}')},
         "unknown entry '__class__'"),
        ({"checkpoint.json": json_member('{"format": "tinygrad_nn checkpoint", "version": 1, "content": '
                                         + "[" * 100000 + "]" * 100000 + "}")}, "checkpoint.json"),
        ({"checkpoint.json": np.array([1.5])}, "must be a 1-d array of bytes"),
        ({"checkpoint.json": np.array([{"a": 1}], dtype=object)}, "pickled Python objects"),
    ],
)  # fmt: skip
def test_a_damaged_or_hostile_checkpoint_is_a_clear_error(tmp_path, members, message):
    path = tmp_path / "bad.npz"
    write_npz(path, members)
    with pytest.raises(ValueError) as error:
        training.load_checkpoint(path)
    assert message in str(error.value)


def test_a_truncated_checkpoint_is_a_clear_error(tmp_path):
    path = training.save_checkpoint(tmp_path / "c.npz", {"weights": np.ones(1000)})
    path.write_bytes(path.read_bytes()[:500])
    with pytest.raises(ValueError, match=r"c\.npz"):
        training.load_checkpoint(path)


# --------------------------------------------------------------------------------------------------------------
# evaluate
# --------------------------------------------------------------------------------------------------------------


class FixedScores(nn.Module):
    """Returns its input as the class scores, so the predictions are chosen by the test."""

    def forward(self, x):
        return x * 1.0


def test_evaluate_counts_accuracy_loss_and_the_confusion_matrix():
    scores = np.array([[2.0, 0.0, 0.0], [0.0, 3.0, 0.0], [0.0, 0.0, 1.0], [5.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    labels = np.array([0, 1, 1, 2, 1])
    loader = data.DataLoader(scores, labels, batch_size=2)
    result = training.evaluate(FixedScores(), loader, F.cross_entropy)
    assert result.samples == 5 and result.correct == 3 and result.accuracy == 0.6
    np.testing.assert_array_equal(result.confusion_matrix, [[1, 0, 0], [0, 2, 1], [1, 0, 0]])
    np.testing.assert_array_equal(result.class_accuracy, [1.0, 2 / 3, 0.0])
    assert result.loss == pytest.approx(F.cross_entropy(Tensor(scores), labels).item(), rel=1e-14)
    assert str(result) == f"accuracy 0.6000 (3 of 5), loss {result.loss:.4f}"


def test_evaluate_takes_one_hot_targets_and_extra_metrics():
    scores = np.array([[2.0, 0.0], [0.0, 3.0], [1.0, 0.0]])
    one_hot = np.array([[1.0, 0.0], [1.0, 0.0], [1.0, 0.0]])
    result = training.evaluate(
        FixedScores(), data.DataLoader(scores, one_hot, batch_size=2), metrics={"top": lambda o, t: o.max()}
    )
    assert result.accuracy == pytest.approx(2 / 3) and result.loss is None and result.metrics == {"top": 3.0}


def test_evaluate_leaves_no_graph_and_puts_modes_back():
    model, _, _, _, val_loader = setup(scheduler="none")
    model.train()
    training.evaluate(model, val_loader, F.cross_entropy)
    assert model.training and all(p.grad is None for p in model.parameters())
    assert set(model.modes_seen) == {False}


def test_evaluate_on_outputs_that_are_not_class_scores_measures_the_loss_only():
    x = np.linspace(0, 1, 10).reshape(10, 1)
    result = training.evaluate(FixedScores(), data.DataLoader(x, x * 2, batch_size=4), F.mse_loss)
    assert result.accuracy is None and result.confusion_matrix is None
    assert result.loss == pytest.approx(np.mean(x**2))


def test_evaluate_mistakes_are_named():
    scores = np.eye(3)
    with pytest.raises(ValueError, match=r"class indices 0\.\.2 for 3 class scores; found 7"):
        training.evaluate(FixedScores(), data.DataLoader(scores, np.array([0, 1, 7]), batch_size=3))
    with pytest.raises(TypeError, match=r"needs batches of \(inputs, targets\).*got a Tensor"):
        training.evaluate(FixedScores(), data.DataLoader(scores, batch_size=3))
    with pytest.raises(ValueError, match="the loader yielded no batches"):
        training.evaluate(FixedScores(), [])
    with pytest.raises(TypeError, match="evaluate takes a Module, got function"):
        training.evaluate(lambda x: x, [])


# --------------------------------------------------------------------------------------------------------------
# Progress: a bar in a terminal, one line per epoch in a log
# --------------------------------------------------------------------------------------------------------------


class Terminal(io.StringIO):
    def isatty(self):
        return True


def test_a_log_gets_one_line_per_epoch(capsys):
    model, opt, _, loader, val_loader = setup(scheduler="none")
    training.fit(model, F.cross_entropy, opt, loader, epochs=3, val_loader=val_loader)
    out = capsys.readouterr().out
    assert "\r" not in out
    lines = out.splitlines()
    assert len(lines) == 3
    for epoch, line in enumerate(lines, start=1):
        assert line.startswith(f"epoch {epoch}/3: mean loss ") and ", val loss " in line and ", val accuracy " in line


def test_a_terminal_gets_a_bar_with_the_running_loss(monkeypatch):
    pytest.importorskip("tqdm", reason="the bar is tqdm's, an optional dependency (the examples extra)")
    terminal = Terminal()
    monkeypatch.setattr("sys.stdout", terminal)
    model, opt, _, loader, _ = setup(scheduler="none")
    big_loader = data.DataLoader(np.repeat(loader.x, 4, axis=0), np.repeat(loader.y, 4), batch_size=4)
    training.fit(model, F.cross_entropy, opt, big_loader, epochs=2)
    out = terminal.getvalue()
    assert "\r" in out and "epoch 1/2" in out and "running loss" in out
    assert out.count("\nepoch 2/2: mean loss") == 1


def test_progress_false_prints_nothing(capsys):
    model, opt, _, loader, _ = setup(scheduler="none")
    training.fit(model, F.cross_entropy, opt, loader, epochs=2, progress=False)
    assert capsys.readouterr().out == ""


def test_progress_bar_prints_one_line_when_not_in_a_terminal(capsys):
    bar = training.progress_bar(range(5), "counting", unit="number")
    assert list(bar) == [0, 1, 2, 3, 4]
    bar.close()
    out = capsys.readouterr().out
    assert out.startswith("counting: 5 numbers in ") and out.count("\n") == 1


# --------------------------------------------------------------------------------------------------------------
# Mistakes
# --------------------------------------------------------------------------------------------------------------


def test_fit_mistakes_are_named():
    model, opt, _, loader, _ = setup(scheduler="none")
    other_opt = optim.SGD(NoisyMLP().parameters(), lr=0.1)
    cases = [
        (lambda: training.fit(model, F.cross_entropy, model, loader, epochs=1), TypeError, "pass optimizer=optim.SGD"),
        (lambda: training.fit(model, F.cross_entropy, opt, loader, epochs=0), ValueError, "epochs must be a whole"),
        (lambda: training.fit(model, F.cross_entropy, opt, loader, epochs=True), ValueError, "epochs must be"),
        (lambda: training.fit(model, "mse", opt, loader, epochs=1), TypeError, "loss_fn must be a function"),
        (lambda: training.fit(opt, F.cross_entropy, opt, loader, epochs=1), TypeError, "fit takes a Module"),
        (
            lambda: training.fit(model, F.cross_entropy, opt, loader, epochs=1,
                                 scheduler=optim.lr_scheduler.StepLR(other_opt, 1)),
            ValueError, "the scheduler belongs to another optimizer",
        ),
        (
            lambda: training.fit(model, F.cross_entropy, opt, loader, epochs=1,
                                 scheduler=optim.lr_scheduler.ReduceLROnPlateau(opt), scheduler_interval="step"),
            ValueError, "ReduceLROnPlateau steps on an epoch's metric",
        ),
        (
            lambda: training.fit(model, F.cross_entropy, opt, loader, epochs=1, scheduler_interval="batch"),
            ValueError, "'epoch' or 'step', got 'batch'",
        ),
        (lambda: training.fit(model, F.cross_entropy, opt, loader, epochs=1, callbacks="x"), TypeError, "callbacks"),
        (lambda: training.fit(model, lambda o, t: o, opt, loader, epochs=1, progress=False), ValueError,
         r"one-element Tensor.*got shape \(16, 3\); reduce it with .mean\(\)"),
        (lambda: training.fit(model, lambda o, t: 1.0, opt, loader, epochs=1, progress=False), TypeError,
         "loss_fn must return a Tensor"),
        (lambda: training.fit(model, F.cross_entropy, opt, data.DataLoader(np.ones((4, 5))), epochs=1),
         TypeError, r"needs batches of \(inputs, targets\)"),
        (lambda: training.fit(model, F.cross_entropy, opt, [], epochs=1, progress=False), ValueError,
         "the training loader yielded no batches"),
    ]  # fmt: skip
    for call, error, message in cases:
        with pytest.raises(error, match=message):
            call()


# --------------------------------------------------------------------------------------------------------------
# DataLoader's state: the order of the epochs to come
# --------------------------------------------------------------------------------------------------------------


def test_a_loader_restored_from_its_state_gives_the_same_batches():
    x = np.arange(20.0).reshape(10, 2)
    first = data.DataLoader(x, np.arange(10), batch_size=3, shuffle=True, seed=4)
    list(first)
    state = json.loads(json.dumps(first.state_dict()))  # numbers only: through JSON and back
    second = data.DataLoader(x, np.arange(10), batch_size=3, shuffle=True, seed=99)
    second.load_state_dict(state)
    for _ in range(3):
        assert [y.data.tolist() for _, y in first] == [y.data.tolist() for _, y in second]


def test_a_loader_state_that_does_not_fit_is_refused():
    loader = data.DataLoader(np.zeros((10, 2)), batch_size=3, shuffle=True, seed=0)
    state = loader.state_dict()
    with pytest.raises(ValueError, match="samples 10 there, 12 here; batch_size 3 there, 4 here"):
        data.DataLoader(np.zeros((12, 2)), batch_size=4, shuffle=True).load_state_dict(state)
    with pytest.raises(ValueError, match="not a generator state numpy can restore"):
        loader.load_state_dict({**state, "generator": {"bit_generator": "PCG64", "state": "garbage"}})
    with pytest.raises(ValueError, match="takes what state_dict\\(\\) returned"):
        loader.load_state_dict([1, 2])


# --------------------------------------------------------------------------------------------------------------
# Optimizer and scheduler state dicts through a checkpoint file
# --------------------------------------------------------------------------------------------------------------

OPTIMIZERS = {
    "sgd": lambda p: optim.SGD(p, lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.01),
    "adam": lambda p: optim.Adam(p, lr=0.01, amsgrad=True),
    "adamw": lambda p: optim.AdamW(p, lr=0.01),
    "rmsprop": lambda p: optim.RMSprop(p, lr=0.01, momentum=0.5, centered=True),
    "adagrad": lambda p: optim.Adagrad(p, lr=0.1, lr_decay=0.01),
}


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_state_dicts_saved_to_a_file_resume_bit_for_bit(tmp_path, name):
    x, y = blobs()
    batches = [(Tensor(x[i : i + 16]), y[i : i + 16]) for i in range(0, 96, 16)] * 2

    def build(seed):
        model = NoisyMLP(seed)
        optimizer = OPTIMIZERS[name](model.parameters())
        return model, optimizer, optim.lr_scheduler.MultiStepLR(optimizer, milestones=[3, 7], gamma=0.5)

    def train(model, optimizer, scheduler, part):
        model.eval()  # no noise: only the state dicts carry the run
        for inputs, labels in part:
            optimizer.zero_grad()
            F.cross_entropy(model(inputs), labels).backward()
            optimizer.step()
            scheduler.step()

    straight = build(0)
    train(*straight, batches)
    first = build(0)
    train(*first, batches[:5])
    model, optimizer, scheduler = first
    training.save_checkpoint(
        tmp_path / "c.npz",
        {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict()},
    )
    saved = training.load_checkpoint(tmp_path / "c.npz")
    resumed = build(7)
    resumed[0].load_state_dict(saved["model"])
    resumed[1].load_state_dict(saved["optimizer"])
    resumed[2].load_state_dict(saved["scheduler"])
    train(*resumed, batches[5:])
    assert_bit_identical(parameters_of(resumed[0]), parameters_of(straight[0]))


def test_a_tampered_checkpoint_epoch_is_refused(tmp_path):
    model, opt, _, loader, _ = setup(scheduler="none")
    training.fit(model, F.cross_entropy, opt, loader, epochs=1, checkpoint_dir=tmp_path, progress=False)
    content = training.load_checkpoint(tmp_path / "checkpoint.npz")
    training.save_checkpoint(tmp_path / "checkpoint.npz", {**content, "epoch": -4})
    with pytest.raises(ValueError, match=r"its epoch \(-4\) and step \(5\) must be whole numbers >= 0"):
        training.fit(model, F.cross_entropy, opt, loader, epochs=2, checkpoint_dir=tmp_path, resume=True)
    training.save_checkpoint(tmp_path / "checkpoint.npz", {**content, "epoch": "one"})
    with pytest.raises(ValueError, match="cannot resume from the checkpoint"):
        training.fit(model, F.cross_entropy, opt, loader, epochs=2, checkpoint_dir=tmp_path, resume=True)


def test_ctrl_c_just_after_the_rename_counts_the_checkpoint_as_written(tmp_path, monkeypatch):
    model, opt, _, loader, _ = setup(scheduler="none")
    real_sync = training._sync_folder
    calls = []

    def sync_then_interrupt(folder):
        calls.append(folder)
        real_sync(folder)
        if len(calls) == 2:  # the second epoch's file is in place; Ctrl-C lands before fit notes it
            raise KeyboardInterrupt

    monkeypatch.setattr(training, "_sync_folder", sync_then_interrupt)
    with pytest.raises(
        training.TrainingInterrupted, match="interrupted after epoch 2; the checkpoint of epoch 2 is"
    ) as interruption:
        training.fit(model, F.cross_entropy, opt, loader, epochs=3, checkpoint_dir=tmp_path, progress=False)
    assert interruption.value.epoch == 2 == training.load_checkpoint(tmp_path / "checkpoint.npz")["epoch"]


def test_metadata_is_stored_in_every_checkpoint_and_checked_at_once(tmp_path):
    model, opt, _, loader, _ = setup(scheduler="none")
    settings = {"lr": 0.01, "hidden": [16], "note": "first try"}
    training.fit(
        model, F.cross_entropy, opt, loader, epochs=1, checkpoint_dir=tmp_path, metadata=settings, progress=False
    )
    assert training.load_checkpoint(tmp_path / "checkpoint.npz")["metadata"] == settings
    recorder = Recorder()
    with pytest.raises(TypeError, match="metadata/when is a datetime"):
        import datetime

        training.fit(model, F.cross_entropy, opt, loader, epochs=1, metadata={"when": datetime.datetime.now()},
                     callbacks=[recorder])  # fmt: skip
    assert recorder.calls == []
