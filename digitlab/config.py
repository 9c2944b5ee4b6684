"""One frozen dataclass holds everything a training run needs; presets fill it in.

The configuration is flat on purpose: every field maps one-to-one to a CLI flag, a Train-page widget, a URL query
parameter and an MLflow param, so nothing has to be nested or renamed on the way. Validation happens in
`__post_init__`, at the edge, with messages that name the field, the allowed range and the bad value.
"""

from __future__ import annotations

import dataclasses
import functools
import re
from dataclasses import dataclass
from pathlib import Path

MODELS = ("ann", "cnn")
OPTIMIZERS = ("adam", "sgd", "rmsprop")
SCHEDULES = ("constant", "onecycle")
PRECISIONS = ("auto", "float32", "bfloat16")
PRESETS = ("reference", "fast", "best")
TRAIN_SIZE = 60_000  # images in the MNIST training set


@dataclass(frozen=True)
class Field:
    """One hyperparameter as every edge sees it: validation, the CLI flag, the Train widget, a sweep's range."""

    label: str  # widget label
    help: str  # one line, in the user's words
    kind: str  # "int", "float", "choice", "bool", "int_list" (e.g. "32,64") or "optional_int" (0/empty = off)
    low: float | None = None  # smallest allowed (inclusive unless low_open)
    high: float | None = None  # largest allowed
    choices: tuple = ()
    low_open: bool = False
    cnn_only: bool = False  # meaningless for the ANN: hidden and not validated for it
    flag: str = ""  # the CLI flag when it is not --field-name
    log: bool = False  # searched on a log scale (sweeps)
    zero_means: str = "off"  # optional_int: what 0 (None) stands for

    def _number(self, value) -> str:
        return str(int(value)) if self.kind in ("int", "int_list", "optional_int") else f"{value:g}"

    def allowed(self) -> str:
        """What may be given, in the user's words: 'an integer from 1 to 200', '32,64 (1-3 integers, 1-512)'."""
        if self.kind == "choice":
            return "one of " + ", ".join(map(str, self.choices))
        if self.kind == "bool":
            return "true or false"
        if self.kind == "int_list":
            low, high = self._number(self.low), self._number(self.high)
            return f"1 to 3 comma-separated integers from {low} to {high}, e.g. 32,64"
        if self.kind == "optional_int":
            return f"an integer from {self._number(self.low)} to {self._number(self.high)}, or 0 for {self.zero_means}"
        interval = (f"above {self._number(self.low)}, at most {self._number(self.high)}" if self.low_open
                    else f"from {self._number(self.low)} to {self._number(self.high)}")
        return ("an integer " if self.kind == "int" else "a number ") + interval


FIELDS: dict[str, Field] = {
    "model": Field("Model", "ANN: dense layers on raw pixels. CNN: convolutions.", "choice", choices=MODELS),
    "hidden_units": Field("Hidden units", "Width of the dense hidden layer.", "int", 1, 4096, log=True),
    "filters": Field("CNN filters", "Filters per convolution block, 1-3 blocks, e.g. 32,64.", "int_list", 1, 512,
                     cnn_only=True, log=True),
    "convs_per_block": Field("Convolutions per block", "3×3 convolutions before each max-pooling; 2 is more "
                             "accurate and about 4× the work.", "int", 1, 2, cnn_only=True),
    "dropout_rate": Field("Dropout", "Fraction of units dropped before the output, in training only.", "float",
                          0.0, 0.9, flag="--dropout"),
    "batch_norm": Field("Batch normalisation", "Normalise after each convolution; trains faster.", "bool",
                        cnn_only=True),
    "num_epochs": Field("Epochs", "Passes over the training images.", "int", 1, 200, flag="--epochs"),
    "batch_size": Field("Batch size", "Images per optimizer step; larger is faster per epoch.", "int", 1, 4096),
    "optimizer": Field("Optimizer", "Adam is the robust default; SGD uses Nesterov momentum 0.9.", "choice",
                       choices=OPTIMIZERS),
    "learning_rate": Field("Learning rate", "Step size (the peak with one-cycle).", "float", 0.0, 1.0,
                           low_open=True, log=True),
    "schedule": Field("Schedule", "One-cycle warms up, then anneals: good for short runs.", "choice",
                      choices=SCHEDULES),
    "label_smoothing": Field("Label smoothing", "Softer targets: the right digit 1 − s + s/10, every digit at least "
                             "s/10. Less overconfident; often more accurate in short runs.", "float", 0.0, 0.5),
    "validation_split": Field("Validation split", "The last fraction of the training images, held out to watch "
                              "overfitting and to choose settings by.", "float", 0.0, 0.5),
    "train_limit": Field("Training images", "Use only the first N of the 60,000 training images, for quick runs.",
                         "optional_int", 100, TRAIN_SIZE, zero_means="all 60,000"),
    "augment": Field("Augmentation", "Random rotation, zoom, shift and stroke width of training images.", "bool"),
    "early_stopping": Field("Early stopping patience", "Stop after this many epochs without validation-loss "
                            "gain; 0 = off.", "optional_int", 1, 100, flag="--early-stopping"),
    "seed": Field("Seed", "Same seed and settings give the same run.", "int", 0, 2**31 - 1),
    "precision": Field("Precision", "bfloat16 mixed precision trains faster at the same accuracy on CPUs with "
                       "native bfloat16; auto uses it there. The saved model is float32.", "choice",
                       choices=PRECISIONS),
}


@dataclass(frozen=True)
class RunConfig:
    # --- model ---
    model: str = "cnn"  # "ann" (multilayer perceptron) or "cnn" (convolutional)
    hidden_units: int = 128  # ANN hidden layer; CNN dense layer after the convolutions
    filters: tuple[int, ...] = (32, 64)  # CNN only: one Conv/MaxPool block per entry
    convs_per_block: int = 1  # CNN only: 3×3 convolutions before each 2×2 max-pooling (2 = VGG-style blocks)
    dropout_rate: float = 0.2  # before the output layer; 0 disables it
    batch_norm: bool = False  # CNN only: BatchNormalization after each convolution
    # --- optimisation ---
    num_epochs: int = 10
    batch_size: int = 32
    optimizer: str = "adam"
    learning_rate: float = 1e-3  # the peak rate when schedule="onecycle"
    schedule: str = "constant"  # "onecycle": warm up then anneal, for short runs
    label_smoothing: float = 0.0  # targets 1 − s + s/10 for the right digit, s/10 for the others (Keras's rule)
    # --- data ---
    validation_split: float = 0.1  # the last fraction of the training images; early stopping watches it
    train_limit: int | None = None  # use only the first N training images (quick runs); None = all 60,000
    augment: bool = False  # random rotation/zoom/translation, in training only
    early_stopping: int | None = 3  # patience in epochs on validation loss; None disables it
    seed: int = 0
    # --- compute ---
    precision: str = "auto"  # "bfloat16" = mixed precision (float32 weights); "auto" picks it where the CPU has it

    def __post_init__(self):
        _check("model", self.model, FIELDS["model"])
        for name, field in FIELDS.items():
            if field.cnn_only and self.model == "ann":  # meaningless for the ANN: its default, whatever was given
                object.__setattr__(self, name, next(f.default for f in dataclasses.fields(self) if f.name == name))
            _check(name, getattr(self, name), field)
        if self.model == "cnn" and self.convolutions()[-1][0] < 2:
            raise ValueError(f"{len(self.filters)} blocks of {self.convs_per_block} convolutions shrink the 28×28 "
                             "image to nothing; use fewer blocks or 1 convolution per block")
        if self.early_stopping is not None and self.validation_split == 0:
            raise ValueError("early stopping needs a validation split to watch, got validation split 0; set the "
                             "validation split above 0 or turn early stopping off")

    @property
    def num_train_images(self) -> int:
        """Images actually fitted on (after the limit and the validation split)."""
        total = self.train_limit or TRAIN_SIZE
        return total - int(round(total * self.validation_split))

    @property
    def num_parameters(self) -> int:
        """Weights of the network (Keras' `count_params`), computed without building it."""
        if self.model == "ann":
            return 784 * self.hidden_units + self.hidden_units + self.hidden_units * 10 + 10
        total = sum(9 * channels * filters + (4 * filters if self.batch_norm else filters)  # BN: γ, β, mean, var
                    for _, channels, filters in self.convolutions())
        return total + self.flat_features * self.hidden_units + self.hidden_units + self.hidden_units * 10 + 10

    def convolutions(self) -> list[tuple[int, int, int]]:
        """CNN only: (output size, input channels, filters) of each 3×3 valid convolution, in order."""
        out, size, channels = [], 28, 1
        for filters in self.filters:
            for _ in range(self.convs_per_block):
                size = max(0, size - 2)
                out.append((size, channels, filters))
                channels = filters
            size //= 2  # 2×2 max-pooling
        return out

    @property
    def flat_features(self) -> int:
        """CNN only: features after the last max-pooling, flattened."""
        last_size, _, channels = self.convolutions()[-1]
        return (last_size // 2) ** 2 * channels

    def to_params(self) -> dict[str, str]:
        """Flat string form, for MLflow params and URL query parameters."""
        out = {}
        for key, value in dataclasses.asdict(self).items():
            if isinstance(value, (tuple, list)):
                value = ",".join(str(v) for v in value)
            out[key] = "" if value is None else str(value)
        return out

    @classmethod
    def from_params(cls, params: dict[str, str]) -> RunConfig:
        """Inverse of `to_params`; unknown keys are ignored, bad values raise ValueError naming the field."""
        ann = str(params.get("model", "")).strip() == "ann"  # an ANN ignores CNN-only fields, even unparsable ones
        return cls(**{name: parse(name, params[name]) for name, field in FIELDS.items()
                      if name in params and not (ann and field.cnn_only)})

    def replace(self, **changes) -> RunConfig:
        return dataclasses.replace(self, **changes)


# ---------------------------------------------------------------------------------------------------------------
# Presets. `reference` is the product brief, exactly; `fast` and `best` are measured in benchmarks/RESULTS.md.
# ---------------------------------------------------------------------------------------------------------------

_PRESETS: dict[str, dict[str, dict]] = {
    "reference": {
        "ann": dict(model="ann", hidden_units=128, dropout_rate=0.2),
        "cnn": dict(model="cnn", filters=(32, 64), hidden_units=128, dropout_rate=0.5),
    },
    "fast": {
        "ann": dict(model="ann", hidden_units=256, dropout_rate=0.2, num_epochs=5, batch_size=128,
                    learning_rate=3e-3, schedule="onecycle", early_stopping=None),
        # One epoch with label smoothing 0.1: validation 99.13% ± 0.07% (seeds 0-2) in about half the time of the
        # two epochs without it (99.17% ± 0.02%); chosen as the fastest candidate whose validation mean cleared
        # 99.1% (AVX2 EPYC, `python -m benchmarks.fast_levers ema`; the test set not used).
        "cnn": dict(model="cnn", filters=(16, 32), hidden_units=256, dropout_rate=0.1, num_epochs=1,
                    batch_size=128, learning_rate=8e-3, schedule="onecycle", label_smoothing=0.1,
                    early_stopping=None),
    },
    "best": {
        # Chosen on validation (seed 0, float32 EPYC): this recipe 99.13% in 446 s; 2048 units 99.10% in 691 s;
        # dropout 0.4 99.05%; the previous 512 units, no augmentation, 30 epochs, batch 64, 1e-3: 98.83%.
        "ann": dict(model="ann", hidden_units=1024, dropout_rate=0.3, num_epochs=40, batch_size=128,
                    learning_rate=2e-3, schedule="onecycle", augment=True, early_stopping=None),
        # 20 epochs: validation accuracy 99.55% against 99.52% at 35 (one seed each, BF16 EPYC). The shipped CNN
        # is this recipe, seed 0 (models/cnn.json).
        "cnn": dict(model="cnn", filters=(32, 64), convs_per_block=2, hidden_units=256, dropout_rate=0.4,
                    num_epochs=20, batch_size=128, learning_rate=2e-3, schedule="onecycle", augment=True,
                    early_stopping=None),
    },
}


def resolve_precision(precision: str) -> str:
    """"auto" → "bfloat16" on CPUs with native bfloat16 (AVX512-BF16 or AMX), else "float32"; others unchanged.

    Measured on the reference CNN here (benchmarks/RESULTS.md): 1.3× faster per epoch, equal test accuracy.
    Without native support it would be emulated, and slower.
    """
    if precision != "auto":
        return precision
    return "bfloat16" if cpu_has_bfloat16() else "float32"


@functools.cache
def cpu_has_bfloat16() -> bool:
    """True on CPUs with native bfloat16 (AVX512-BF16 or AMX), from /proc/cpuinfo; False elsewhere."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:  # not Linux: stay with float32
        return False
    return any(flag in flags.split() for flag in ("avx512_bf16", "amx_bf16"))


def preset(name: str, *, model: str = "cnn", **overrides) -> RunConfig:
    """The named preset for `model`, with explicit `overrides` on top (None values are ignored)."""
    _choice("preset", name, PRESETS)
    _choice("model", model, MODELS)
    values = dict(_PRESETS[name][model])
    values.update({k: v for k, v in overrides.items() if v is not None})
    return RunConfig(**values)


def recipe(name: str, *, model: str) -> dict[str, str]:
    """Preset `name`'s settings for `model` as parameters, the seed apart: what a figure measured for it records."""
    return {k: v for k, v in preset(name, model=model).to_params().items() if k != "seed"}


def made_with(params: dict, name: str, *, model: str) -> bool:
    """Whether recorded run parameters are preset `name`'s recipe for `model`, whatever the seed; fields added
    since they were recorded count at their defaults, which is what those runs used."""
    try:
        recorded = RunConfig.from_params(params).to_params()
    except (ValueError, TypeError):
        return False
    return {k: v for k, v in recorded.items() if k != "seed"} == recipe(name, model=model)


# ---------------------------------------------------------------------------------------------------------------
# Validation and parsing, from FIELDS: each error says "<field> must be <allowed>, got <value>".
# ---------------------------------------------------------------------------------------------------------------

def in_words(message: str, *, labels: dict[str, str] | None = None) -> str:
    """An error as a form says it: each "<field> must be" names the field by its label ("Epochs must be …"), as do
    `labels` for names that are not hyperparameters (a sweep's num_trials)."""
    names = {**{name: field.label for name, field in FIELDS.items()}, **(labels or {})}
    return re.sub(r"\b([a-z_]+)(?= must be )", lambda m: names.get(m.group(1), m.group(1)), message)


def _choice(name, value, allowed):
    if value not in allowed:
        raise ValueError(f"{name} must be one of {', '.join(map(str, allowed))}, got {value!r}")


def _check(name: str, value, field: Field) -> None:
    """Raise ValueError unless `value` is what `field` allows."""
    def fail(shown=None):
        raise ValueError(f"{name} must be {field.allowed()}, got {shown if shown is not None else repr(value)}")

    if field.kind == "choice":
        if value not in field.choices:
            fail()
    elif field.kind == "bool":
        if not isinstance(value, bool):
            fail()
    elif field.kind == "int_list":
        if not isinstance(value, tuple) or not 1 <= len(value) <= 3 or not all(
                _is_int(v) and field.low <= v <= field.high for v in value):
            fail((",".join(map(str, value)) or "nothing") if isinstance(value, tuple) else None)
    elif field.kind == "optional_int":
        if value is not None and not (_is_int(value) and field.low <= value <= field.high):
            fail()
    elif not (_is_int(value) or (field.kind == "float" and isinstance(value, float))):
        fail()
    elif not ((value > field.low if field.low_open else value >= field.low) and value <= field.high):
        fail()


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def parse(name: str, text) -> object:
    """A query/CLI/widget string → the field's type. Raises ValueError in the user's words."""
    field, text = FIELDS[name], str(text).strip()
    try:
        if field.kind == "bool":
            if text.lower() not in ("true", "false", "1", "0"):
                raise ValueError
            return text.lower() in ("true", "1")
        if field.kind == "int_list":
            return tuple(int(part) for part in text.split(",") if part.strip())
        if field.kind == "optional_int":
            return None if text.lower() in ("", "none", "0", "off") else int(text)
        if field.kind == "int":
            return int(text)
        if field.kind == "float":
            return float(text)
        return text
    except ValueError:
        raise ValueError(f"{name} must be {field.allowed()}, got {text[:40]!r}") from None
