import numpy as np
import pytest

from digitlab.data import MNIST
from digitlab.config import RunConfig
from digitlab.training import split_data, train


def test_tiny_run_beats_chance_by_a_wide_margin(mnist):
    events = []
    result = train(RunConfig(model="ann", num_epochs=1, batch_size=32, train_limit=2000, seed=0), mnist,
                   on_progress=events.append, progress_interval=0)
    assert result.epochs_run == 1 and result.stopped is None
    assert result.history["val_accuracy"][0] > 0.80  # chance is 0.10
    assert result.train_seconds > 0 and result.history["seconds"][0] > 0
    batch_events = [e for e in events if not e.epoch_end]
    assert len(batch_events) >= 3 and events[-1].epoch_end and events[-1].fraction == 1.0
    assert events[-1].history["val_accuracy"] == result.history["val_accuracy"]
    assert [e.batch for e in batch_events] == sorted(e.batch for e in batch_events)
    assert events[-1].eta is not None


@pytest.mark.parametrize("steps_per_execution", [1, 16])
def test_cancellation_stops_within_one_execution(mnist, steps_per_execution):
    polls = []

    def should_stop():
        polls.append(1)
        return "cancelled" if len(polls) >= 3 else None

    seen = []
    config = RunConfig(model="ann", num_epochs=5, batch_size=32, train_limit=3000)
    result = train(config, mnist, should_stop=should_stop, steps_per_execution=steps_per_execution,
                   on_progress=lambda p: seen.append(p.batch), progress_interval=0)
    assert result.stopped == "cancelled"
    assert len(polls) == 3  # polled after every execution, never again after the stop
    assert result.epochs_run == 1  # stopped mid-epoch 1 of 5
    assert max(seen) == 3 * steps_per_execution  # the last batch trained: the third execution's last of 85
    assert result.history["epoch"] == [round(3 * steps_per_execution / 85, 4)]  # where it ended: part-way


def test_a_stop_during_validation_starts_no_new_epoch(mnist):
    polls = []

    def should_stop():  # after epoch 1's one execution of 85 batches: no; at its end (validation done): stop
        polls.append(1)
        return "cancelled" if len(polls) >= 2 else None

    config = RunConfig(model="ann", num_epochs=3, batch_size=32, train_limit=3000)
    result = train(config, mnist, should_stop=should_stop, steps_per_execution=85)
    assert result.stopped == "cancelled" and len(polls) == 2
    assert result.epochs_run == 1 and result.history["epoch"] == [1.0]  # a whole epoch, and no part of a second


def test_bfloat16_training_returns_a_float32_model_as_accurate(mnist):
    config = RunConfig(model="cnn", filters=(8, 16), hidden_units=32, num_epochs=2, train_limit=3000)
    exact, mixed = train(config.replace(precision="float32"), mnist), train(config.replace(precision="bfloat16"), mnist)
    assert (exact.precision, mixed.precision) == ("float32", "bfloat16")
    assert all(layer.dtype_policy.name == "float32" for layer in mixed.model.layers)
    assert abs(exact.history["val_accuracy"][-1] - mixed.history["val_accuracy"][-1]) < 0.02
    assert mixed.history["val_accuracy"][-1] > 0.85


def test_early_stopping_watches_validation_only(mnist):
    """Same training images, two validation sets: with shuffled validation labels the validation loss rises from
    the start and training stops early; with the true labels it goes on. Training itself is identical."""
    config = RunConfig(model="ann", hidden_units=64, num_epochs=12, learning_rate=1e-3, train_limit=1000,
                       validation_split=0.2, early_stopping=2, seed=0)
    y = mnist.y_train.copy()
    y[800:1000] = np.random.default_rng(0).permutation(y[800:1000])  # only the validation part changes
    shuffled = train(config, MNIST(mnist.x_train, y, mnist.x_test, mnist.y_test, "shuffled validation labels"))
    honest = train(config, mnist)
    assert shuffled.stopped == "early_stopping" and shuffled.epochs_run <= 4
    assert honest.epochs_run > shuffled.epochs_run
    common = shuffled.epochs_run
    np.testing.assert_allclose(shuffled.history["loss"][:common], honest.history["loss"][:common], rtol=1e-5)


def test_same_seed_same_result(mnist):
    config = RunConfig(model="ann", hidden_units=32, num_epochs=1, train_limit=500, seed=7)
    a, b = train(config, mnist), train(config, mnist)
    np.testing.assert_allclose(a.history["loss"], b.history["loss"], rtol=1e-5)


def test_split_uses_the_last_fraction_for_validation(mnist):
    x_fit, y_fit, x_val, y_val = split_data(RunConfig(train_limit=1000, validation_split=0.2), mnist)
    assert x_fit.shape == (800, 28, 28) and x_val.shape == (200, 28, 28) and y_val.shape == (200, 10)
    np.testing.assert_array_equal(y_val.argmax(1), mnist.y_train[800:1000])
    assert x_fit.dtype == np.float32 and 0 <= x_fit.min() and x_fit.max() <= 1


def test_onecycle_and_optimizers_train(mnist):
    for optimizer in ("sgd", "rmsprop"):
        result = train(RunConfig(model="ann", optimizer=optimizer, schedule="onecycle", learning_rate=0.01,
                                 num_epochs=1, train_limit=1000), mnist)
        assert result.history["val_accuracy"][0] > 0.5, optimizer


def test_label_smoothing_trains_toward_the_softened_targets(mnist):
    """The loss trained on is cross-entropy against 1 − s + s/10 for the right digit and s/10 for the others."""
    config = RunConfig(model="ann", hidden_units=16, num_epochs=1, train_limit=500, label_smoothing=0.2)
    result = train(config, mnist)
    _, _, x, y = split_data(config, mnist)
    p = result.model.predict(x, verbose=0)
    expected = -np.mean(np.sum((y * 0.8 + 0.02) * np.log(np.clip(p, 1e-7, 1)), axis=1))
    assert result.model.evaluate(x, y, verbose=0)[0] == pytest.approx(expected, rel=1e-4)
    plain = -np.mean(np.sum(y * np.log(np.clip(p, 1e-7, 1)), axis=1))
    assert abs(expected - plain) > 0.05  # so the check above tells smoothing from none


@pytest.mark.parametrize("model, floor", [("cnn", 0.93), ("ann", 0.90)])
def test_fast_preset_on_a_slice_still_learns(mnist, small, model, floor):
    """Not a timing test: it keeps the `fast` preset from silently rotting (full data: 98.9% CNN, RESULTS.md)."""
    from digitlab.config import preset
    from digitlab.evaluation import evaluate_model

    result = train(preset("fast", model=model, train_limit=12_000), mnist)
    _, _, x_test, y_test = small
    assert evaluate_model(result.model, x_test, y_test).accuracy > floor
