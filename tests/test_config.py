import pytest

from digitlab import config as cfg
from digitlab.config import PRESETS, RunConfig, made_with, preset, recipe


@pytest.mark.parametrize("field, value, message", [
    ("model", "rnn", r"model must be one of ann, cnn, got 'rnn'"),
    ("hidden_units", 0, r"hidden_units must be an integer from 1 to 4096, got 0"),
    ("hidden_units", 12.5, r"hidden_units must be an integer"),
    ("filters", (), r"filters must be 1 to 3 comma-separated integers from 1 to 512, e.g. 32,64, got nothing$"),
    ("filters", [32, 64], r"filters must be 1 to 3 comma-separated integers"),
    ("filters", (32, -1), r"filters must be .*, got 32,-1$"),  # shown as typed, not as Python's (32, -1)
    ("dropout_rate", 0.95, r"dropout_rate must be a number from 0 to 0.9, got 0.95"),
    ("dropout_rate", "0.2", r"dropout_rate must be a number"),
    ("batch_norm", 1, r"batch_norm must be true or false, got 1"),
    ("num_epochs", 0, r"num_epochs must be an integer from 1 to 200, got 0"),
    ("batch_size", 5000, r"batch_size must be an integer from 1 to 4096, got 5000"),
    ("optimizer", "adagrad", r"optimizer must be one of adam, sgd, rmsprop, got 'adagrad'"),
    ("learning_rate", 5.0, r"learning_rate must be a number above 0, at most 1, got 5.0"),
    ("learning_rate", 0.0, r"learning_rate must be a number above 0, at most 1, got 0.0"),
    ("schedule", "cyclic", r"schedule must be one of constant, onecycle"),
    ("validation_split", 0.6, r"validation_split must be a number from 0 to 0.5, got 0.6"),
    ("train_limit", 50, r"train_limit must be an integer from 100 to 60000, or 0 for all 60,000, got 50"),
    ("augment", "yes", r"augment must be true or false"),
    ("early_stopping", 0, r"early_stopping must be an integer from 1 to 100, or 0 for off, got 0"),
    ("seed", -1, r"seed must be an integer from 0 to 2147483647, got -1"),
])
def test_every_field_is_validated_with_its_name(field, value, message):
    with pytest.raises(ValueError, match=message):
        RunConfig(**{field: value})


def test_early_stopping_needs_a_validation_split():
    with pytest.raises(ValueError, match="early stopping needs a validation split"):
        RunConfig(validation_split=0.0, early_stopping=3)
    assert RunConfig(validation_split=0.0, early_stopping=None).early_stopping is None


def test_reference_preset_is_the_product_brief():
    for model in ("ann", "cnn"):
        c = preset("reference", model=model)
        assert (c.model, c.optimizer, c.num_epochs, c.batch_size, c.validation_split) == (model, "adam", 10, 32, 0.1)
        assert c.learning_rate == 1e-3 and c.schedule == "constant" and not c.augment
    assert preset("reference", model="ann").hidden_units == 128


def test_explicit_values_override_the_preset_and_none_is_ignored():
    c = preset("fast", model="cnn", num_epochs=7, batch_size=None)
    assert c.num_epochs == 7 and c.batch_size == preset("fast", model="cnn").batch_size


def test_every_preset_is_valid_for_both_models():
    for name in PRESETS:
        for model in ("ann", "cnn"):
            assert preset(name, model=model).model == model
    with pytest.raises(ValueError, match="preset must be one of"):
        preset("turbo")


def test_a_recipe_is_the_preset_without_its_seed():
    assert recipe("fast", model="cnn") == {k: v for k, v in preset("fast", model="cnn", seed=5).to_params().items()
                                           if k != "seed"}
    assert recipe("best", model="cnn")["num_epochs"] == "20" and "seed" not in recipe("best", model="ann")


def test_recorded_params_are_a_recipe_whatever_their_seed_and_with_newer_fields_at_their_defaults():
    recorded = {**preset("best", model="cnn", seed=7).to_params()}
    assert made_with(recorded, "best", model="cnn") and not made_with(recorded, "best", model="ann")
    recorded.pop("label_smoothing")  # recorded before the field existed: those runs trained without it
    assert made_with(recorded, "best", model="cnn")
    assert not made_with({**recorded, "num_epochs": "35"}, "best", model="cnn")
    assert not made_with({**recorded, "label_smoothing": "0.1"}, "best", model="cnn")
    assert not made_with({**recorded, "num_epochs": "many"}, "best", model="cnn")  # unreadable: not the recipe


def test_params_round_trip_and_bad_strings_name_the_field():
    c = RunConfig(model="cnn", filters=(16, 32, 64), train_limit=500, early_stopping=None, augment=True)
    assert RunConfig.from_params(c.to_params()) == c
    assert RunConfig.from_params({"num_epochs": "3", "unknown": "x"}).num_epochs == 3
    with pytest.raises(ValueError, match="num_epochs must be an integer from 1 to 200, got 'ten'"):
        RunConfig.from_params({"num_epochs": "ten"})
    with pytest.raises(ValueError, match="augment must be true or false, got 'maybe'"):
        RunConfig.from_params({"augment": "maybe"})
    with pytest.raises(ValueError, match="train_limit must be an integer from 100 to 60000, or 0 for all 60,000, "
                                         "got 'abc'"):  # issue 15: it said "must be NoneType"
        RunConfig.from_params({"train_limit": "abc"})


def test_cnn_only_fields_are_ignored_for_the_ann():
    """Issue 15: filters "abc" blocked an ANN run; for the ANN they are meaningless and reset to their defaults."""
    ann = RunConfig(model="ann", filters="abc", convs_per_block=7, batch_norm="x")
    assert (ann.filters, ann.convs_per_block, ann.batch_norm) == (RunConfig().filters, 1, False)
    assert RunConfig.from_params({"model": "ann", "filters": "abc"}) == RunConfig(model="ann")
    with pytest.raises(ValueError, match="filters must be"):
        RunConfig(model="cnn", filters="abc")


def test_num_train_images_accounts_for_limit_and_split():
    assert RunConfig(train_limit=1000, validation_split=0.1).num_train_images == 900
    assert RunConfig().num_train_images == 54_000


def test_errors_in_words_name_fields_by_their_labels():
    assert cfg.in_words("num_epochs must be an integer from 1 to 200, got 0") == (
        "Epochs must be an integer from 1 to 200, got 0")
    assert cfg.in_words("the low end must be below the high end") == "the low end must be below the high end"
    assert cfg.in_words("num_trials must be an integer", labels={"num_trials": "Trials"}) == "Trials must be an integer"
