"""A training loop of the library's own: `fit`, `evaluate`, `History`, callbacks and checkpoints.

`fit` runs the loop every example writes by hand (forward, loss, ``zero_grad``, ``backward``, ``step``), with a
progress bar, validation after each epoch, a scheduler, callbacks, and a checkpoint written atomically after
every epoch, from which ``resume=True`` continues bit for bit as if never stopped::

    from tinygrad_nn import data, nn, optim, training

    loader = data.DataLoader(x_train, y_train, batch_size=64, shuffle=True, seed=0)
    history = training.fit(model, nn.functional.cross_entropy, optim.Adam(model.parameters()), loader, epochs=5,
                           val_loader=data.DataLoader(x_test, y_test, batch_size=1000), checkpoint_dir="run")
    print(training.evaluate(model, data.DataLoader(x_test, y_test, batch_size=1000)))

A checkpoint is one ``.npz`` file (never a pickle): every array is a member, and a JSON member,
``checkpoint.json``, holds everything else (`save_checkpoint`, `load_checkpoint`).

Callbacks are plain objects with any of these methods, each called with the `FitState` of the run:
``on_train_begin``, ``on_epoch_begin``, ``on_after_backward`` (the gradients are there, the optimizer has not
stepped), ``on_step_end`` (after the optimizer's step), ``on_epoch_end`` (after validation, with the epoch in
the history) and ``on_train_end`` (always, also after Ctrl-C or a stop). A callback stops the run by calling
``state.request_stop(reason)``; one with ``state_dict()`` and ``load_state_dict()`` is saved in checkpoints (a
resumed run must have the same such callbacks, in the same order; the others may change).
"""

from __future__ import annotations

import json
import math
import numbers
import os
import random
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .autograd import no_grad
from .nn import init
from .nn.module import Module
from .optim import Optimizer
from .optim.lr_scheduler import CyclicLR, LRScheduler, OneCycleLR, ReduceLROnPlateau
from .serialization import load, save
from .tensor import Tensor

__all__ = [
    "CHECKPOINT_NAME",
    "Callback",
    "Evaluation",
    "FitState",
    "History",
    "TrainingInterrupted",
    "evaluate",
    "fit",
    "load_checkpoint",
    "progress_bar",
    "save_checkpoint",
]

CHECKPOINT_NAME = "checkpoint.npz"
"""The file `fit` writes into its ``checkpoint_dir`` after every epoch."""

_JSON_MEMBER = "checkpoint.json"
_FORMAT = "tinygrad_nn checkpoint"
_VERSION = 1

Metric = Callable[[np.ndarray, np.ndarray], float]


# --------------------------------------------------------------------------------------------------------------
# Checkpoint files
# --------------------------------------------------------------------------------------------------------------


def _encode(value: Any, path: str, arrays: dict[str, np.ndarray]) -> Any:
    """`value` as JSON, with each array moved into `arrays` (named by where it was) and left as a reference."""
    if isinstance(value, Tensor):
        value = value.data
    if isinstance(value, (np.ndarray, np.generic)):
        array = np.asarray(value)
        if array.dtype.hasobject:
            raise TypeError(f"a checkpoint cannot hold Python objects, found at {path or 'the top'}")
        name = path or "value"
        while name in arrays or name == _JSON_MEMBER:
            name += "_"
        arrays[name] = array
        return {"__array__": name, "scalar": isinstance(value, np.generic)}
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return float(value)
    if isinstance(value, tuple):
        return {"__tuple__": [_encode(item, f"{path}/{index}", arrays) for index, item in enumerate(value)]}
    if isinstance(value, list):
        return [_encode(item, f"{path}/{index}", arrays) for index, item in enumerate(value)]
    if isinstance(value, Mapping):
        if all(isinstance(key, str) and not key.startswith("__") for key in value):
            return {key: _encode(item, f"{path}/{key}" if path else key, arrays) for key, item in value.items()}
        # Keys that JSON cannot keep as they are (the optimizer numbers its parameters): a list of pairs.
        return {
            "__items__": [
                [_encode(key, f"{path}/key", arrays), _encode(item, f"{path}/{key}", arrays)]
                for key, item in value.items()
            ]
        }
    raise TypeError(
        f"a checkpoint holds numbers, strings, lists, dicts and arrays; {path or 'the value'} is a "
        f"{type(value).__name__}"
    )


def _decode(value: Any, arrays: Mapping[str, np.ndarray], path: str) -> Any:
    if isinstance(value, list):
        return [_decode(item, arrays, path) for item in value]
    if not isinstance(value, dict):
        return value
    if "__array__" in value:
        name = value["__array__"]
        if not isinstance(name, str) or name not in arrays:
            raise ValueError(f"{path}: its JSON refers to an array {name!r} that the file does not hold")
        array = arrays[name]
        return array[()] if value.get("scalar") else array
    if "__tuple__" in value:
        return tuple(_decode(item, arrays, path) for item in _list_of(value["__tuple__"], path))
    if "__items__" in value:
        pairs = _list_of(value["__items__"], path)
        if not all(isinstance(pair, list) and len(pair) == 2 for pair in pairs):
            raise ValueError(f"{path}: a dict stored as pairs must hold [key, value] lists")
        decoded = {}
        for key, item in pairs:
            key = _decode(key, arrays, path)
            if isinstance(key, (list, dict, np.ndarray)):
                raise ValueError(f"{path}: a dict key must be a number or a string, got {key!r}")
            decoded[key] = _decode(item, arrays, path)
        return decoded
    unknown = [key for key in value if key.startswith("__")]
    if unknown:
        raise ValueError(f"{path}: unknown entry {unknown[0]!r} in its JSON")
    return {key: _decode(item, arrays, path) for key, item in value.items()}


def _list_of(value: Any, path: str) -> list:
    if not isinstance(value, list):
        raise ValueError(f"{path}: expected a list in its JSON, got {type(value).__name__}")
    return value


def save_checkpoint(path: str | os.PathLike[str], checkpoint: Mapping[str, Any]) -> Path:
    """Write a nested dict of numbers, strings, lists, dicts and arrays to `path`, atomically; returns the path.

    The file is a ``.npz`` that `tinygrad_nn.load` and ``numpy.load(path, allow_pickle=False)`` can read: one
    member per array, and ``checkpoint.json`` (an array of UTF-8 bytes) for the rest. It is written under a
    temporary name, flushed to disk and renamed, so an interruption at any moment leaves either the previous
    file or the new one, never half of one.
    """
    if not isinstance(checkpoint, Mapping):
        raise TypeError(f"save_checkpoint takes a dict, got {type(checkpoint).__name__}")
    path = Path(path)
    arrays: dict[str, np.ndarray] = {}
    skeleton = {"format": _FORMAT, "version": _VERSION, "content": _encode(checkpoint, "", arrays)}
    arrays[_JSON_MEMBER] = np.frombuffer(json.dumps(skeleton).encode("utf-8"), dtype=np.uint8)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.partial")
    try:
        save(arrays, temporary)
        with open(temporary, "rb") as file:
            os.fsync(file.fileno())  # on disk before the rename makes it the checkpoint
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    _sync_folder(path.parent)
    return path


def _sync_folder(folder: Path) -> None:
    """Make the rename itself durable, where the system allows opening a folder."""
    try:
        descriptor = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)


def load_checkpoint(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a file written by `save_checkpoint` back into its nested dict, never unpickling.

    A missing file raises FileNotFoundError; a damaged, foreign or tampered one raises ValueError naming the
    file and what is wrong with it.
    """
    path = Path(path)
    arrays = load(path)
    if _JSON_MEMBER not in arrays:
        raise ValueError(f"{path} is not a tinygrad_nn checkpoint: it has no {_JSON_MEMBER} member")
    text_array = arrays.pop(_JSON_MEMBER)
    if text_array.dtype != np.uint8 or text_array.ndim != 1:
        raise ValueError(f"{path}: its {_JSON_MEMBER} member must be a 1-d array of bytes")
    try:
        skeleton = json.loads(text_array.tobytes().decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as error:
        raise ValueError(f"{path}: its {_JSON_MEMBER} is not valid JSON ({error})") from None
    except RecursionError:
        raise ValueError(f"{path}: its {_JSON_MEMBER} is nested too deeply") from None
    if not isinstance(skeleton, dict) or skeleton.get("format") != _FORMAT or "content" not in skeleton:
        raise ValueError(f"{path} is not a tinygrad_nn checkpoint (its {_JSON_MEMBER} lacks the format marker)")
    if skeleton.get("version") != _VERSION:
        raise ValueError(
            f"{path} is a checkpoint of format version {skeleton.get('version')!r}; this tinygrad_nn reads "
            f"version {_VERSION}"
        )
    try:
        content = _decode(skeleton["content"], arrays, str(path))
    except RecursionError:
        raise ValueError(f"{path}: its {_JSON_MEMBER} is nested too deeply") from None
    if not isinstance(content, dict):
        raise ValueError(f"{path}: a checkpoint holds a dict, this one a {type(content).__name__}")
    return content


# --------------------------------------------------------------------------------------------------------------
# Random state
# --------------------------------------------------------------------------------------------------------------


def _random_state(train_loader: Any, val_loader: Any) -> dict[str, Any]:
    """Every generator training may draw from, so that a resumed run draws the same numbers."""
    name, keys, position, has_gauss, cached_gaussian = np.random.get_state()
    version, python_state, gauss_next = random.getstate()
    return {
        "train_loader": train_loader.state_dict() if hasattr(train_loader, "state_dict") else None,
        "val_loader": val_loader.state_dict() if hasattr(val_loader, "state_dict") else None,
        # The framework's own generator: layers initialise from it, and dropout will draw from it.
        "default_generator": init.default_generator().bit_generator.state,
        # numpy's and Python's global generators, which user code (and the tutorials) may draw from.
        "numpy_global": {
            "name": name,
            "keys": keys,
            "position": position,
            "has_gauss": has_gauss,
            "cached_gaussian": cached_gaussian,
        },
        "python_random": {"version": version, "state": list(python_state), "gauss_next": gauss_next},
    }


def _restore_random_state(state: Mapping[str, Any], train_loader: Any, val_loader: Any, where: str) -> None:
    try:
        if state.get("train_loader") is not None and hasattr(train_loader, "load_state_dict"):
            train_loader.load_state_dict(state["train_loader"])
        if state.get("val_loader") is not None and hasattr(val_loader, "load_state_dict"):
            val_loader.load_state_dict(state["val_loader"])
        init.default_generator().bit_generator.state = dict(state["default_generator"])
        numpy_state = state["numpy_global"]
        np.random.set_state(
            (
                numpy_state["name"],
                np.asarray(numpy_state["keys"], dtype=np.uint32),
                int(numpy_state["position"]),
                int(numpy_state["has_gauss"]),
                float(numpy_state["cached_gaussian"]),
            )
        )
        python_state = state["python_random"]
        random.setstate(
            (int(python_state["version"]), tuple(int(v) for v in python_state["state"]), python_state["gauss_next"])
        )
    except (KeyError, TypeError, ValueError, OverflowError) as error:
        raise ValueError(f"{where}: its random state cannot be restored ({error})") from None


# --------------------------------------------------------------------------------------------------------------
# History, state of a run, callbacks
# --------------------------------------------------------------------------------------------------------------


@dataclass
class History:
    """What `fit` records: per epoch the mean training loss, metrics and time; every step's loss.

    ``epochs[i]`` is the number of the i-th epoch recorded (1-based), ``loss[i]`` its mean training loss,
    ``metrics[name][i]`` its validation results (``"val_loss"``, ``"val_accuracy"``, ...) and learning rate
    (``"lr"``, the first group's at the epoch's start), ``epoch_time[i]`` its seconds. ``step_loss`` holds every
    optimizer step's loss, in order. ``stop_reason`` says why training ended early, or is None.
    """

    epochs: list[int] = field(default_factory=list)
    loss: list[float] = field(default_factory=list)
    metrics: dict[str, list[float]] = field(default_factory=dict)
    epoch_time: list[float] = field(default_factory=list)
    step_loss: list[float] = field(default_factory=list)
    stop_reason: str | None = None

    def _record_epoch(self, epoch: int, loss: float, metrics: Mapping[str, float], seconds: float) -> None:
        # A metric that appears later (a resumed run given a val_loader) or stops is NaN where it is missing, so
        # that metrics[name][i] always belongs to epochs[i].
        for name in [*metrics, *(name for name in self.metrics if name not in metrics)]:
            self.metrics.setdefault(name, [math.nan] * len(self.epochs)).append(metrics.get(name, math.nan))
        self.epochs.append(epoch)
        self.loss.append(loss)
        self.epoch_time.append(seconds)

    def state_dict(self) -> dict[str, Any]:
        """The history as numbers and lists (``step_loss`` as a float64 array), for a checkpoint."""
        return {
            "epochs": list(self.epochs),
            "loss": list(self.loss),
            "metrics": {name: list(values) for name, values in self.metrics.items()},
            "epoch_time": list(self.epoch_time),
            "step_loss": np.asarray(self.step_loss, dtype=np.float64),
            "stop_reason": self.stop_reason,
        }

    @classmethod
    def from_state_dict(cls, state: Mapping[str, Any]) -> History:
        """The history `state_dict` saved; ValueError if it is not one."""
        try:
            history = cls(
                epochs=[int(e) for e in state["epochs"]],
                loss=[float(v) for v in state["loss"]],
                metrics={str(k): [float(v) for v in values] for k, values in dict(state["metrics"]).items()},
                epoch_time=[float(v) for v in state["epoch_time"]],
                step_loss=[float(v) for v in np.asarray(state["step_loss"], dtype=np.float64).ravel()],
                stop_reason=None if state.get("stop_reason") is None else str(state["stop_reason"]),
            )
        except (KeyError, TypeError, ValueError) as error:
            raise ValueError(f"not a training history ({error!r})") from None
        counts = {len(history.epochs), len(history.loss), len(history.epoch_time)}
        counts |= {len(values) for values in history.metrics.values()}
        if len(counts) != 1:
            raise ValueError("not a training history: its per-epoch lists differ in length")
        return history

    def __repr__(self) -> str:
        if not self.epochs:
            return "History(no epoch finished)"
        last = ", ".join(f"{name} {values[-1]:.4g}" for name, values in self.metrics.items())
        stop = f", stopped: {self.stop_reason}" if self.stop_reason else ""
        return (
            f"History({len(self.epochs)} epochs, {len(self.step_loss)} steps; last epoch {self.epochs[-1]}: "
            f"loss {self.loss[-1]:.4g}{', ' + last if last else ''}{stop})"
        )


@dataclass
class FitState:
    """The run `fit` hands to every callback: what is being trained, and where it is.

    ``epoch`` (1-based) and ``epochs``; ``step`` counts optimizer steps over the whole run (the current one,
    from ``on_after_backward`` on); ``batch`` is the batch's index within its epoch and ``loss`` its loss, a
    float. ``history`` is the `History` so far. Call `request_stop` to end the run.
    """

    model: Module
    optimizer: Optimizer
    scheduler: Any
    epochs: int
    history: History
    epoch: int = 0
    step: int = 0
    batch: int = -1
    loss: float = math.nan
    stop_training: bool = False
    stop_reason: str | None = None

    def request_stop(self, reason: str = "a callback asked to stop") -> None:
        """End training after the current step (mid-epoch) or epoch (from ``on_epoch_end``)."""
        self.stop_training = True
        self.stop_reason = reason


class Callback:
    """A base class for callbacks, with every hook doing nothing; subclassing it is optional.

    `fit` calls only the hooks an object has, so any object with some of these methods is a callback.
    """

    def on_train_begin(self, state: FitState) -> None:
        """Before the first epoch (after a checkpoint was restored, when resuming)."""

    def on_epoch_begin(self, state: FitState) -> None:
        """At the start of epoch ``state.epoch``."""

    def on_after_backward(self, state: FitState) -> None:
        """After ``loss.backward()`` of step ``state.step``: the gradients are there, the step is not taken."""

    def on_step_end(self, state: FitState) -> None:
        """After the optimizer's step ``state.step`` (and a per-batch scheduler's), with its ``state.loss``."""

    def on_epoch_end(self, state: FitState) -> None:
        """After epoch ``state.epoch``'s validation, with the epoch in ``state.history``; before its checkpoint."""

    def on_train_end(self, state: FitState) -> None:
        """When training ends, however it ends (finished, stopped, or interrupted by Ctrl-C)."""


_HOOKS = ("on_train_begin", "on_epoch_begin", "on_after_backward", "on_step_end", "on_epoch_end", "on_train_end")


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C stopped `fit`. It is a KeyboardInterrupt, so an uncaught one ends the program as Ctrl-C does.

    ``history`` holds the finished epochs, ``checkpoint`` the file holding the last of them (None when no epoch
    finished, or without a checkpoint_dir) and ``epoch`` its number (0 for none).
    """

    def __init__(self, message: str, history: History, checkpoint: Path | None, epoch: int) -> None:
        super().__init__(message)
        self.history = history
        self.checkpoint = checkpoint
        self.epoch = epoch


# --------------------------------------------------------------------------------------------------------------
# Progress
# --------------------------------------------------------------------------------------------------------------


def _stdout_is_terminal() -> bool:
    try:
        return sys.stdout.isatty()
    except (AttributeError, ValueError):  # replaced by an object without isatty, or closed
        return False


def _tqdm() -> Any:
    try:
        from tqdm import tqdm
    except ImportError:
        return None
    return tqdm


class _LineProgress:
    """What replaces a progress bar when stdout is not a terminal: the iterable, and one line at the end."""

    def __init__(self, iterable: Iterable[Any], description: str, unit: str, total: int | None, quiet: bool) -> None:
        self._iterable, self._description, self._unit, self._total = iterable, description, unit, total
        self._quiet, self._count, self._start = quiet, 0, time.perf_counter()

    def __iter__(self) -> Any:
        for item in self._iterable:
            self._count += 1
            yield item

    def set_postfix_str(self, text: str, refresh: bool = True) -> None:
        """Ignored: a log gets the summary line instead."""

    def close(self) -> None:
        """Print the one line (unless the caller prints its own)."""
        if not self._quiet:
            seconds = time.perf_counter() - self._start
            print(f"{self._description}: {self._count} {self._unit}s in {seconds:.1f} s", flush=True)


def progress_bar(
    iterable: Iterable[Any], description: str = "", unit: str = "it", total: int | None = None, *, leave: bool = True
) -> Any:
    """A tqdm bar on stdout when stdout is a terminal (and tqdm is installed); otherwise a single line at the end.

    So a log file or CI gets at most one line where a terminal gets a live bar. Iterate over the result and
    call its ``close()`` when done::

        bar = progress_bar(images, "training", unit="image")
        for image in bar:
            ...
        bar.close()
    """
    tqdm = _tqdm()
    if tqdm is not None and _stdout_is_terminal():
        return tqdm(iterable, desc=description, unit=unit, total=total, leave=leave, file=sys.stdout)
    return _LineProgress(iterable, description, unit, total, quiet=False)


# --------------------------------------------------------------------------------------------------------------
# Evaluation
# --------------------------------------------------------------------------------------------------------------


@dataclass
class Evaluation:
    """What `evaluate` found: accuracy, mean loss, confusion matrix and further metrics, over `samples` samples.

    ``confusion_matrix[i, j]`` counts the samples of class i predicted as class j. Entries that do not apply
    (no loss function given; outputs that are not class scores) are None.
    """

    samples: int
    loss: float | None = None
    accuracy: float | None = None
    confusion_matrix: np.ndarray | None = None
    metrics: dict[str, float] = field(default_factory=dict)

    @property
    def correct(self) -> int | None:
        """How many samples were classified correctly."""
        return None if self.confusion_matrix is None else int(np.trace(self.confusion_matrix))

    @property
    def class_accuracy(self) -> np.ndarray | None:
        """The fraction of each class's samples classified correctly (NaN for a class with none)."""
        if self.confusion_matrix is None:
            return None
        totals = self.confusion_matrix.sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.diag(self.confusion_matrix) / totals

    def __str__(self) -> str:
        parts = []
        if self.accuracy is not None:
            parts.append(f"accuracy {self.accuracy:.4f} ({self.correct} of {self.samples})")
        if self.loss is not None:
            parts.append(f"loss {self.loss:.4f}")
        parts += [f"{name} {value:.4g}" for name, value in self.metrics.items()]
        return ", ".join(parts) or f"{self.samples} samples"


def _split_batch(batch: Any, where: str) -> tuple[Any, Any]:
    if isinstance(batch, (tuple, list)) and len(batch) == 2:
        return batch[0], batch[1]
    got = f"a {type(batch).__name__}" + (f" of {len(batch)} items" if isinstance(batch, (tuple, list)) else "")
    raise TypeError(f"{where} needs batches of (inputs, targets), such as a DataLoader(x, y) gives; got {got}")


def _modes(model: Module) -> list[tuple[Module, bool]]:
    return [(module, module.training) for module in model.modules()]


def _restore_modes(modes: list[tuple[Module, bool]]) -> None:
    for module, training in modes:
        object.__setattr__(module, "training", training)


def evaluate(
    model: Module,
    loader: Iterable[Any],
    loss_fn: Callable[[Tensor, Any], Tensor] | None = None,
    *,
    metrics: Mapping[str, Metric] | None = None,
) -> Evaluation:
    """Run `model` over every batch of `loader` and measure it: accuracy, mean loss, confusion matrix.

    The model runs in evaluation mode (``model.eval()``) under ``no_grad``; each module's mode is put back
    afterwards. Accuracy and the confusion matrix apply to class scores of shape (N, C) with targets that are
    class indices (N,) or one-hot rows (N, C). `loss_fn` (the batch's mean loss, as in training) gives the mean
    loss over all samples. `metrics` maps names to ``function(outputs, targets) -> float`` on the arrays of the
    whole data set::

        result = evaluate(model, DataLoader(x_test, y_test, batch_size=1000), F.cross_entropy)
        print(result.accuracy, result.loss)
        print(result.confusion_matrix)
    """
    if not isinstance(model, Module):
        raise TypeError(f"evaluate takes a Module, got {type(model).__name__}")
    modes = _modes(model)
    model.eval()
    outputs_list, targets_list = [], []
    total_loss, samples = 0.0, 0
    try:
        with no_grad():
            for batch in loader:
                inputs, targets = _split_batch(batch, "evaluate")
                outputs = model(inputs)
                count = len(outputs.data) if outputs.data.ndim else 1
                if loss_fn is not None:
                    total_loss += float(loss_fn(outputs, targets).item()) * count
                outputs_list.append(outputs.data)
                targets_list.append(np.asarray(targets.data if isinstance(targets, Tensor) else targets))
                samples += count
    finally:
        _restore_modes(modes)
    if samples == 0:
        raise ValueError("evaluate: the loader yielded no batches")
    result = Evaluation(samples=samples, loss=total_loss / samples if loss_fn is not None else None)
    outputs, targets = np.concatenate(outputs_list), np.concatenate(targets_list)
    if outputs.ndim == 2 and outputs.shape[1] >= 2:
        classes = outputs.shape[1]
        if targets.ndim == 2 and targets.shape == outputs.shape:
            labels = targets.argmax(axis=1)
        elif targets.ndim == 1 and targets.dtype.kind in "iu":
            labels = targets
        else:
            labels = None
        if labels is not None:
            if labels.size and (labels.min() < 0 or labels.max() >= classes):
                raise ValueError(
                    f"evaluate: the targets must be class indices 0..{classes - 1} for {classes} class scores; "
                    f"found {labels.min() if labels.min() < 0 else labels.max()}"
                )
            predictions = outputs.argmax(axis=1)
            matrix = np.bincount(labels * classes + predictions, minlength=classes * classes)
            result.confusion_matrix = matrix.reshape(classes, classes).astype(np.int64)
            result.accuracy = float(np.mean(predictions == labels))
    for name, metric in (metrics or {}).items():
        result.metrics[name] = float(metric(outputs, targets))
    return result


# --------------------------------------------------------------------------------------------------------------
# fit
# --------------------------------------------------------------------------------------------------------------


def _positive_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"fit: {name} must be a whole number >= 1, got {value!r}")
    return int(value)


def _class_name(value: Any) -> str | None:
    return None if value is None else type(value).__name__


class _Run:
    """One call of `fit`: its settings, its printing, its checkpoints."""

    def __init__(
        self,
        model: Module,
        loss_fn: Callable[[Tensor, Any], Tensor],
        optimizer: Optimizer,
        train_loader: Iterable[Any],
        epochs: int,
        val_loader: Iterable[Any] | None,
        scheduler: Any,
        callbacks: Sequence[Any],
        checkpoint_dir: Path | None,
        progress: bool,
        metrics: Mapping[str, Metric] | None,
        val_name: str,
        scheduler_interval: str,
        metadata: Mapping[str, Any] | None,
    ) -> None:
        self.model, self.loss_fn, self.optimizer = model, loss_fn, optimizer
        self.train_loader, self.val_loader, self.scheduler = train_loader, val_loader, scheduler
        self.callbacks, self.metrics, self.val_name = list(callbacks), metrics, val_name
        self.scheduler_interval = scheduler_interval
        self.metadata = metadata
        self.checkpoint = None if checkpoint_dir is None else checkpoint_dir / CHECKPOINT_NAME
        self.progress = progress
        self.bars = progress and _stdout_is_terminal() and _tqdm() is not None
        self.history = History()
        self.state = FitState(model, optimizer, scheduler, epochs, self.history)
        self.saved_epoch = 0
        self.hooks = {
            hook: [getattr(c, hook) for c in self.callbacks if callable(getattr(c, hook, None))] for hook in _HOOKS
        }

    def call(self, hook: str) -> None:
        for method in self.hooks[hook]:
            method(self.state)

    def say(self, text: str) -> None:
        if self.progress:
            print(text, flush=True)

    # ---------------------------------------------------------------------------------------------------------

    def checkpoint_content(self, epoch: int) -> dict[str, Any]:
        return {
            "epoch": epoch,
            "step": self.state.step,
            "model": self.model.state_dict(),
            "optimizer_class": type(self.optimizer).__name__,
            "optimizer": self.optimizer.state_dict(),
            "scheduler_class": _class_name(self.scheduler),
            "scheduler": None if self.scheduler is None else self.scheduler.state_dict(),
            "random": _random_state(self.train_loader, self.val_loader),
            "history": self.history.state_dict(),
            # Only callbacks with a state are saved; the others may come and go between runs.
            "callbacks": [{"class": type(c).__name__, "state": c.state_dict()} for c in self._stateful_callbacks()],
            "metadata": self.metadata,
        }

    def _stateful_callbacks(self) -> list[Any]:
        return [c for c in self.callbacks if callable(getattr(c, "state_dict", None))]

    def restore(self, checkpoint: Path) -> None:
        """Put the model, optimizer, scheduler, generators, history and callbacks where `checkpoint` left them."""
        content = load_checkpoint(checkpoint)
        where = f"the checkpoint {checkpoint}"
        try:
            epoch, step = int(content["epoch"]), int(content["step"])
            if epoch < 0 or step < 0:
                raise ValueError(f"its epoch ({epoch}) and step ({step}) must be whole numbers >= 0")
            if content["optimizer_class"] != type(self.optimizer).__name__:
                raise ValueError(
                    f"it was trained with {content['optimizer_class']}, not {type(self.optimizer).__name__}"
                )
            if content["scheduler_class"] != _class_name(self.scheduler):
                raise ValueError(
                    f"it was trained with scheduler {content['scheduler_class']}, not {_class_name(self.scheduler)}"
                )
            saved_callbacks = content["callbacks"]
            saved_classes = [entry["class"] for entry in saved_callbacks]
            own_classes = [type(c).__name__ for c in self._stateful_callbacks()]
            if saved_classes != own_classes:
                raise ValueError(
                    f"it was trained with the callbacks that have a state {saved_classes or 'none'}, "
                    f"not {own_classes or 'none'}"
                )
            history = History.from_state_dict(content["history"])
        except (KeyError, TypeError, ValueError) as error:
            detail = f"missing {error}" if isinstance(error, KeyError) else str(error)
            raise ValueError(f"cannot resume from {where}: {detail}") from None
        # What to put back if a later part does not fit, so that a refused checkpoint changes nothing.
        before = self.checkpoint_content(0)
        try:
            # Model first, then the optimizer (whose settings include the scheduled rates), then the scheduler.
            self.model.load_state_dict(content["model"])
            self.optimizer.load_state_dict(content["optimizer"])
            if self.scheduler is not None:
                self.scheduler.load_state_dict(content["scheduler"])
            _restore_random_state(content["random"], self.train_loader, self.val_loader, where)
            for callback, saved in zip(self._stateful_callbacks(), saved_callbacks):
                if callable(getattr(callback, "load_state_dict", None)):
                    callback.load_state_dict(saved["state"])
        except (KeyError, TypeError, ValueError) as error:
            self.model.load_state_dict(before["model"])
            self.optimizer.load_state_dict(before["optimizer"])
            if self.scheduler is not None:
                self.scheduler.load_state_dict(before["scheduler"])
            _restore_random_state(before["random"], self.train_loader, self.val_loader, "the state before")
            detail = f"missing {error}" if isinstance(error, KeyError) else str(error)
            raise ValueError(f"cannot resume from {where}: {detail}") from None
        self.history = self.state.history = history
        self.history.stop_reason = None
        self.state.step = step
        self.saved_epoch = epoch

    def write_checkpoint(self, epoch: int) -> None:
        if self.checkpoint is None:
            return
        content = self.checkpoint_content(epoch)
        before = _identity(self.checkpoint)
        try:
            save_checkpoint(self.checkpoint, content)
        finally:
            # Ctrl-C may land after the rename, when the file already holds this epoch: the disk decides.
            if _identity(self.checkpoint) != before:
                self.saved_epoch = epoch

    # ---------------------------------------------------------------------------------------------------------

    def train_epoch(self, epoch: int) -> list[float] | None:
        """One epoch of steps; the losses, or None when a callback stopped it partway."""
        state, model, optimizer = self.state, self.model, self.optimizer
        per_step_scheduler = self.scheduler if self.scheduler_interval == "step" else None
        after_backward, step_end = self.hooks["on_after_backward"], self.hooks["on_step_end"]
        description = f"epoch {epoch}/{state.epochs}"
        total = len(self.train_loader) if hasattr(self.train_loader, "__len__") else None
        if self.bars:
            bar = _tqdm()(self.train_loader, desc=description, unit="batch", total=total, leave=True, file=sys.stdout)
        else:
            bar = self.train_loader
        report_every = max(1, (total or 100) // 25)
        losses: list[float] = []
        try:
            for batch_index, batch in enumerate(bar):
                inputs, targets = _split_batch(batch, "fit")
                loss = self.loss_fn(model(inputs), targets)
                if batch_index == 0:
                    _check_loss(loss)
                optimizer.zero_grad()
                loss.backward()
                state.step += 1
                state.batch = batch_index
                state.loss = value = loss.item()
                for method in after_backward:
                    method(state)
                optimizer.step()
                if per_step_scheduler is not None:
                    per_step_scheduler.step()
                losses.append(value)
                for method in step_end:
                    method(state)
                if self.bars and (batch_index + 1) % report_every == 0:
                    running = sum(losses[-report_every:]) / report_every
                    bar.set_postfix_str(f"running loss {running:.4f}", refresh=False)
                if state.stop_training:
                    self.history.step_loss.extend(losses)
                    return None
        finally:
            if self.bars:
                bar.close()
        self.history.step_loss.extend(losses)
        return losses

    def end_epoch(self, epoch: int, losses: list[float], start: float, lr: float) -> None:
        state = self.state
        if not losses:
            raise ValueError("fit: the training loader yielded no batches")
        epoch_loss = float(np.mean(losses))
        metrics: dict[str, float] = {}
        if self.val_loader is not None:
            result = evaluate(self.model, self.val_loader, self.loss_fn, metrics=self.metrics)
            metrics[f"{self.val_name}_loss"] = result.loss
            if result.accuracy is not None:
                metrics[f"{self.val_name}_accuracy"] = result.accuracy
            metrics.update({f"{self.val_name}_{name}": value for name, value in result.metrics.items()})
        if self.scheduler is not None and self.scheduler_interval == "epoch":
            if isinstance(self.scheduler, ReduceLROnPlateau):
                self.scheduler.step(metrics.get(f"{self.val_name}_loss", epoch_loss))
            else:
                self.scheduler.step()
        metrics["lr"] = lr
        self.history._record_epoch(epoch, epoch_loss, metrics, time.perf_counter() - start)
        shown = [f"mean loss {epoch_loss:.4f}"]
        shown += [f"{name.replace('_', ' ')} {value:.4f}" for name, value in metrics.items() if name != "lr"]
        self.say(f"epoch {epoch}/{state.epochs}: {', '.join(shown)} ({time.perf_counter() - start:.1f} s)")
        self.call("on_epoch_end")


def _identity(path: Path) -> tuple[int, int] | None:
    """Which file `path` is (a rename puts another one there), or None when there is none."""
    try:
        status = path.stat()
    except OSError:
        return None
    return status.st_ino, status.st_mtime_ns


def _check_loss(loss: Any) -> None:
    if not isinstance(loss, Tensor):
        raise TypeError(f"fit: loss_fn must return a Tensor (the batch's mean loss), got {type(loss).__name__}")
    if loss.size != 1:
        raise ValueError(
            f"fit: loss_fn must return a one-element Tensor (the batch's mean loss), got shape {loss.shape}; "
            "reduce it with .mean()"
        )


def fit(
    model: Module,
    loss_fn: Callable[[Tensor, Any], Tensor],
    optimizer: Optimizer,
    train_loader: Iterable[Any],
    *,
    epochs: int,
    val_loader: Iterable[Any] | None = None,
    scheduler: LRScheduler | None = None,
    callbacks: Sequence[Any] = (),
    checkpoint_dir: str | os.PathLike[str] | None = None,
    resume: bool = False,
    progress: bool = True,
    metrics: Mapping[str, Metric] | None = None,
    val_name: str = "val",
    scheduler_interval: str | None = None,
    metadata: Mapping[str, Any] | None = None,
) -> History:
    """Train `model` for `epochs` epochs over `train_loader`; returns the `History`.

    Each step computes ``loss_fn(model(x), y)`` (the batch's mean loss) for a batch ``(x, y)``, then
    ``optimizer.zero_grad()``, ``loss.backward()`` and ``optimizer.step()``. After each epoch, with a
    `val_loader`, `evaluate` measures the model (recorded as ``"val_loss"``, ``"val_accuracy"`` and one entry per
    extra metric; `val_name` replaces ``val``). A `scheduler` steps once per epoch, or once per batch with
    ``scheduler_interval="step"`` (the default for `OneCycleLR` and `CyclicLR`, which count batches);
    `ReduceLROnPlateau` steps on the validation loss, or the training loss without a val_loader.

    The model trains in ``train()`` mode and is measured in ``eval()`` mode; every module's mode is put back
    when fit returns.

    With `progress`, each epoch ends with one line on stdout; when stdout is a terminal (and tqdm is
    installed) a progress bar with the running loss shows each epoch's batches too.

    With `checkpoint_dir`, a checkpoint (``checkpoint.npz``: model, optimizer, scheduler, every random
    generator, history, callbacks' state) is written atomically after every epoch; ``resume=True`` restores it
    and continues from the next epoch, bit for bit as if never stopped (build the model, optimizer, scheduler
    and loaders as for the first run). `metadata`, a dict of numbers, strings and lists (such as the settings
    the run was made with), is stored in every checkpoint, as ``load_checkpoint(path)["metadata"]``.

    Ctrl-C stops training cleanly: the last checkpoint stays, callbacks' ``on_train_end`` run, and
    `TrainingInterrupted` (a KeyboardInterrupt) is raised, naming the checkpoint.
    """
    if not isinstance(model, Module):
        raise TypeError(f"fit takes a Module to train, got {type(model).__name__}")
    if not callable(loss_fn):
        raise TypeError(f"fit: loss_fn must be a function of (outputs, targets), got {type(loss_fn).__name__}")
    if not isinstance(optimizer, Optimizer):
        hint = "; pass optimizer=optim.SGD(model.parameters(), ...)" if isinstance(optimizer, Module) else ""
        raise TypeError(f"fit takes an Optimizer, got {type(optimizer).__name__}{hint}")
    epochs = _positive_int("epochs", epochs)
    if scheduler is not None and not isinstance(scheduler, LRScheduler):
        raise TypeError(f"fit: scheduler must be one of optim.lr_scheduler's, got {type(scheduler).__name__}")
    if scheduler is not None and scheduler.optimizer is not optimizer:
        raise ValueError("fit: the scheduler belongs to another optimizer than the one given")
    if scheduler_interval is None:
        scheduler_interval = "step" if isinstance(scheduler, (OneCycleLR, CyclicLR)) else "epoch"
    if scheduler_interval not in ("epoch", "step"):
        raise ValueError(f"fit: scheduler_interval must be 'epoch' or 'step', got {scheduler_interval!r}")
    if isinstance(scheduler, ReduceLROnPlateau) and scheduler_interval == "step":
        raise ValueError("fit: ReduceLROnPlateau steps on an epoch's metric; use scheduler_interval='epoch'")
    if isinstance(callbacks, (str, bytes)) or not isinstance(callbacks, Iterable):
        raise TypeError(f"fit: callbacks must be a list of callback objects, got {type(callbacks).__name__}")
    callbacks = list(callbacks)
    for callback in callbacks:
        if not any(callable(getattr(callback, hook, None)) for hook in _HOOKS):
            raise TypeError(f"fit: {callback!r} is not a callback: it has none of the methods {', '.join(_HOOKS)}")
    if metadata is not None:
        if not isinstance(metadata, Mapping):
            raise TypeError(f"fit: metadata must be a dict, got {type(metadata).__name__}")
        _encode(metadata, "metadata", {})  # fails now, not after the first epoch, on what a checkpoint cannot hold
    if resume and checkpoint_dir is None:
        raise ValueError("fit: resume=True needs the checkpoint_dir to resume from")
    folder = None
    if checkpoint_dir is not None:
        folder = Path(checkpoint_dir)
        folder.mkdir(parents=True, exist_ok=True)
        _check_writable(folder)
    run = _Run(model, loss_fn, optimizer, train_loader, epochs, val_loader, scheduler, callbacks, folder, progress,
               metrics, val_name, scheduler_interval, metadata)  # fmt: skip
    if resume:
        assert run.checkpoint is not None
        if not run.checkpoint.is_file():
            raise FileNotFoundError(f"fit: resume=True, but there is no checkpoint at {run.checkpoint}")
        run.restore(run.checkpoint)
        run.say(f"resumed from {run.checkpoint}: {run.saved_epoch} of {epochs} epochs done")
    first_epoch = run.saved_epoch + 1
    modes = _modes(model)
    epoch = first_epoch
    run.call("on_train_begin")
    try:
        for epoch in range(first_epoch, epochs + 1):
            run.state.epoch = epoch
            model.train()
            run.call("on_epoch_begin")
            start = time.perf_counter()
            lr = optimizer.param_groups[0]["lr"]
            losses = run.train_epoch(epoch)
            if losses is None:
                run.history.stop_reason = f"{run.state.stop_reason} (during epoch {epoch}, step {run.state.step})"
                run.say(f"stopped during epoch {epoch}: {run.state.stop_reason}")
                break
            run.end_epoch(epoch, losses, start, lr)
            run.write_checkpoint(epoch)
            if run.state.stop_training:
                run.history.stop_reason = f"{run.state.stop_reason} (after epoch {epoch})"
                run.say(f"stopped after epoch {epoch}: {run.state.stop_reason}")
                break
    except KeyboardInterrupt:
        _restore_modes(modes)
        # Ctrl-C between an epoch's checkpoint and the next epoch's start interrupts nothing of the next one.
        when = f"after epoch {epoch}" if run.saved_epoch >= epoch else f"during epoch {epoch}"
        run.history.stop_reason = f"interrupted {when}"
        saved = run.checkpoint if run.saved_epoch and run.checkpoint is not None else None
        where = (
            f"the checkpoint of epoch {run.saved_epoch} is {saved}"
            if saved is not None
            else "no checkpoint was written" + (" (no epoch had finished)" if run.checkpoint is not None else "")
        )
        run.call("on_train_end")
        raise TrainingInterrupted(f"interrupted {when}; {where}", run.history, saved, run.saved_epoch) from None
    except BaseException:
        _restore_modes(modes)
        raise
    _restore_modes(modes)
    run.call("on_train_end")
    return run.history


def _check_writable(folder: Path) -> None:
    """Fail now, not after the first epoch's work, when checkpoints cannot be written into `folder`."""
    probe = folder / f".write-test-{os.getpid()}"
    try:
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as error:
        raise PermissionError(f"fit: cannot write checkpoints into {folder} ({error.strerror or error})") from None
