"""Train a model with Keras `fit`. The loop knows nothing about who watches it: observers get `Progress` events
through `on_progress`, and `should_stop` is polled after every step of execution (a few batches, well under a
second) so a run can be cancelled at once.

Speed without changing what the user asked for (same epochs, batch size and data; benchmarks/RESULTS.md):
several batches per call into TensorFlow (`steps_per_execution`) and, where the CPU has native bfloat16, mixed
precision. The returned model is always float32.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from collections.abc import Callable

import keras
import numpy as np

from .config import RunConfig
from .data import MNIST, load_mnist
from .config import resolve_precision
from .models import build_model
from .preprocessing import one_hot, scale_images

METRICS = ("loss", "accuracy", "val_loss", "val_accuracy")


@dataclass(frozen=True)
class Progress:
    """A snapshot of a running training, sent to `on_progress`."""

    epoch: int  # 1-based epoch in progress (or just finished, when `epoch_end`)
    num_epochs: int
    batch: int  # batches done in this epoch
    batches_per_epoch: int
    elapsed: float  # seconds since training started
    eta: float | None  # seconds left, from the pace so far (None before the first batches)
    logs: dict  # the latest Keras logs (running loss/accuracy; val_* at epoch end)
    history: dict  # per-epoch metrics so far: {"loss": [...], "val_loss": [...], ...}
    epoch_end: bool = False

    @property
    def fraction(self) -> float:
        return ((self.epoch - 1) * self.batches_per_epoch + self.batch) / (self.num_epochs * self.batches_per_epoch)


@dataclass
class TrainResult:
    config: RunConfig
    model: keras.Model
    history: dict[str, list[float]]  # per epoch: loss, accuracy, val_loss, val_accuracy, seconds
    train_seconds: float  # wall time of `fit`, including validation
    precision: str = "float32"  # what the training computed in ("auto" resolved)
    stopped: str | None = None  # None (ran all epochs), "early_stopping", or the reason should_stop gave
    num_parameters: int = field(init=False)

    def __post_init__(self):
        self.num_parameters = self.model.count_params()

    @property
    def epochs_run(self) -> int:
        return len(self.history.get("loss", []))


def split_data(config: RunConfig, data: MNIST):
    """The training images the config asks for, split into fit and validation parts (the last fraction).

    Returns (x_fit, y_fit, x_val, y_val): float32 (n, 28, 28) in [0, 1] and one-hot float32 (n, 10).
    """
    n = config.train_limit or len(data.x_train)
    n_val = int(round(n * config.validation_split))
    x, y = scale_images(data.x_train[:n]), one_hot(data.y_train[:n])
    return x[: n - n_val], y[: n - n_val], x[n - n_val:], y[n - n_val:]


def compile_model(model: keras.Model, config: RunConfig, *, steps: int, steps_per_execution: int = 1) -> keras.Model:
    """Compile with the config's optimizer and learning-rate schedule over `steps` optimizer steps."""
    rate = config.learning_rate
    if config.schedule == "onecycle":  # linear warm-up from rate/25 to rate over 30% of steps, then cosine to 0
        warmup = max(1, int(0.3 * steps))
        rate = keras.optimizers.schedules.CosineDecay(
            config.learning_rate / 25, decay_steps=max(1, steps - warmup), alpha=0.0,
            warmup_target=config.learning_rate, warmup_steps=warmup)
    optimizer = {
        "adam": lambda: keras.optimizers.Adam(learning_rate=rate),
        "sgd": lambda: keras.optimizers.SGD(learning_rate=rate, momentum=0.9, nesterov=True),
        "rmsprop": lambda: keras.optimizers.RMSprop(learning_rate=rate),
    }[config.optimizer]()
    loss = keras.losses.CategoricalCrossentropy(label_smoothing=config.label_smoothing)
    model.compile(optimizer=optimizer, loss=loss, metrics=["accuracy"],
                  steps_per_execution=steps_per_execution)
    return model


def train(
    config: RunConfig,
    data: MNIST | None = None,
    *,
    on_progress: Callable[[Progress], None] | None = None,
    should_stop: Callable[[], object] | None = None,
    progress_interval: float = 0.25,
    steps_per_execution: int = 16,
) -> TrainResult:
    """Train the model `config` describes on MNIST's training images (never the test set).

    on_progress : called with a Progress at most every `progress_interval` seconds and at every epoch end.
    should_stop : polled after every `steps_per_execution` batches; a truthy return stops the run (a string
        return becomes `stopped`).
    steps_per_execution : batches per call into TensorFlow; 1 gives per-batch callbacks, 16 is faster.
    """
    keras.utils.set_random_seed(config.seed)
    x_fit, y_fit, x_val, y_val = split_data(config, data or load_mnist())
    batches_per_epoch = int(np.ceil(len(x_fit) / config.batch_size))
    precision = resolve_precision(config.precision)
    model = build_model(config, precision=precision)
    compile_model(model, config, steps=config.num_epochs * batches_per_epoch,
                  steps_per_execution=min(steps_per_execution, batches_per_epoch))

    reporter = _Reporter(config, batches_per_epoch, on_progress, should_stop, progress_interval)
    callbacks = [reporter]
    early = None
    if config.early_stopping and len(x_val):
        early = keras.callbacks.EarlyStopping(
            monitor="val_loss", patience=config.early_stopping, restore_best_weights=True)
        callbacks.append(early)

    start = time.perf_counter()
    model.fit(
        x_fit, y_fit,
        validation_data=(x_val, y_val) if len(x_val) else None,
        epochs=config.num_epochs, batch_size=config.batch_size, shuffle=True, callbacks=callbacks, verbose=0,
    )
    seconds = time.perf_counter() - start
    stopped = reporter.stopped or ("early_stopping" if early is not None and early.stopped_epoch > 0 else None)
    if precision != "float32":  # hand back a float32 model with the trained weights (they are float32 already),
        trained, model = model, build_model(config)  # compiled like the trained one, so `evaluate` works on it
        model.set_weights(trained.get_weights())
        compile_model(model, config, steps=config.num_epochs * batches_per_epoch)
    return TrainResult(config, model, reporter.history, seconds, precision, stopped)


class _Reporter(keras.callbacks.Callback):
    """Turns Keras callback hooks into Progress events; polls should_stop after every batch."""

    def __init__(self, config, batches_per_epoch, on_progress, should_stop, interval):
        super().__init__()
        self.config, self.batches_per_epoch = config, batches_per_epoch
        self.on_progress, self.should_stop, self.interval = on_progress, should_stop, interval
        self.history: dict[str, list[float]] = {}
        self.stopped: str | None = None
        self.start = self.last_report = self.epoch_start = 0.0
        self.epoch = self.batch = 0

    def on_train_begin(self, logs=None):
        self.start = self.last_report = time.perf_counter()

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch, self.batch, self.epoch_start = epoch + 1, 0, time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        self.batch = min(batch + 1, self.batches_per_epoch)  # `batch` is the last of the execution's steps
        self._poll()
        now = time.perf_counter()
        if self.on_progress is not None and now - self.last_report >= self.interval:
            self.last_report = now
            self._send(self.batch, logs, epoch_end=False)

    def on_epoch_end(self, epoch, logs=None):
        logs = dict(logs or {})
        for key in METRICS:
            if key in logs:
                self.history.setdefault(key, []).append(float(logs[key]))
        self.history.setdefault("seconds", []).append(time.perf_counter() - self.epoch_start)
        # Where the epoch ended: a stopped epoch is part of one (2.11 = epoch 3 stopped after 11% of its batches).
        self.history.setdefault("epoch", []).append(round(epoch + self.batch / self.batches_per_epoch, 4))
        self._poll()  # a Stop pressed while it was validating: no new epoch starts
        if self.on_progress is not None:
            self._send(self.batch, logs, epoch_end=True)  # fewer than batches_per_epoch when stopped

    def _poll(self) -> None:
        if self.should_stop is not None and not self.model.stop_training:
            reason = self.should_stop()
            if reason:
                self.stopped = reason if isinstance(reason, str) else "cancelled"
                self.model.stop_training = True

    def _send(self, batch, logs, *, epoch_end):
        elapsed = time.perf_counter() - self.start
        done = (self.epoch - 1) * self.batches_per_epoch + batch
        total = self.config.num_epochs * self.batches_per_epoch
        eta = elapsed / done * (total - done) if done >= 5 else None
        self.on_progress(Progress(
            epoch=self.epoch, num_epochs=self.config.num_epochs, batch=batch,
            batches_per_epoch=self.batches_per_epoch, elapsed=elapsed, eta=eta,
            logs={k: float(v) for k, v in (logs or {}).items()},
            history={k: list(v) for k, v in self.history.items()}, epoch_end=epoch_end))
