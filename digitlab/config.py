"""One frozen dataclass holds everything a training run needs; presets fill it in.

The configuration is flat on purpose: every field maps one-to-one to a CLI flag, a Train-page widget, a URL query
parameter and an MLflow param, so nothing has to be nested or renamed on the way. Validation happens in
`__post_init__`, at the edge, with messages that name the field, the allowed range and the bad value.
"""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass
from pathlib import Path

MODELS = ("ann", "cnn")
OPTIMIZERS = ("adam", "sgd", "rmsprop")
SCHEDULES = ("constant", "onecycle")
PRECISIONS = ("auto", "float32", "bfloat16")
PRESETS = ("reference", "fast", "best")
TRAIN_SIZE = 60_000  # images in the MNIST training set


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
    # --- data ---
    validation_split: float = 0.1  # the last fraction of the training images; early stopping watches it
    train_limit: int | None = None  # use only the first N training images (quick runs); None = all 60,000
    augment: bool = False  # random rotation/zoom/translation, in training only
    early_stopping: int | None = 3  # patience in epochs on validation loss; None disables it
    seed: int = 0
    # --- compute ---
    precision: str = "auto"  # "bfloat16" = mixed precision (float32 weights); "auto" picks it where the CPU has it

    def __post_init__(self):
        _choice("model", self.model, MODELS)
        _choice("optimizer", self.optimizer, OPTIMIZERS)
        _choice("schedule", self.schedule, SCHEDULES)
        _choice("precision", self.precision, PRECISIONS)
        _integer("hidden_units", self.hidden_units, 1, 4096)
        if not isinstance(self.filters, tuple) or not 1 <= len(self.filters) <= 3:
            raise ValueError(
                f"filters must be a tuple of 1 to 3 positive integers (e.g. (32, 64)), got {self.filters!r}"
            )
        for f in self.filters:
            _integer("filters", f, 1, 512)
        _integer("convs_per_block", self.convs_per_block, 1, 2)
        if self.model == "cnn" and self.convolutions()[-1][0] < 2:
            raise ValueError(f"{len(self.filters)} blocks of {self.convs_per_block} convolutions shrink the 28×28 "
                             "image to nothing; use fewer blocks or convs_per_block=1")
        _number("dropout_rate", self.dropout_rate, 0.0, 0.9, "[0, 0.9]", low_open=False)
        _boolean("batch_norm", self.batch_norm)
        _integer("num_epochs", self.num_epochs, 1, 200)
        _integer("batch_size", self.batch_size, 1, 4096)
        _number("learning_rate", self.learning_rate, 0.0, 1.0, "(0, 1]", low_open=True)
        _number("validation_split", self.validation_split, 0.0, 0.5, "[0, 0.5]", low_open=False)
        if self.train_limit is not None:
            _integer("train_limit", self.train_limit, 100, TRAIN_SIZE)
        _boolean("augment", self.augment)
        if self.early_stopping is not None:
            _integer("early_stopping", self.early_stopping, 1, 100)
            if self.validation_split == 0:
                raise ValueError(
                    "early_stopping needs a validation split to watch, got validation_split=0; "
                    "set validation_split > 0 or turn early stopping off"
                )
        _integer("seed", self.seed, 0, 2**31 - 1)

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
        kwargs = {}
        for f in dataclasses.fields(cls):
            if f.name in params:
                kwargs[f.name] = _parse(f.name, params[f.name], f.default)
        return cls(**kwargs)

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
        "cnn": dict(model="cnn", filters=(16, 32), hidden_units=256, dropout_rate=0.1, num_epochs=2,
                    batch_size=128, learning_rate=8e-3, schedule="onecycle", early_stopping=None),
    },
    "best": {
        "ann": dict(model="ann", hidden_units=512, dropout_rate=0.3, num_epochs=30, batch_size=64,
                    learning_rate=1e-3, schedule="onecycle", early_stopping=None),
        "cnn": dict(model="cnn", filters=(32, 64), convs_per_block=2, hidden_units=256, dropout_rate=0.4,
                    num_epochs=35, batch_size=128, learning_rate=2e-3, schedule="onecycle", augment=True,
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
    return "bfloat16" if _cpu_has_bfloat16() else "float32"


@functools.cache
def _cpu_has_bfloat16() -> bool:
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


# ---------------------------------------------------------------------------------------------------------------
# Validation helpers: each raises ValueError("<field> must be <allowed>, got <value>").
# ---------------------------------------------------------------------------------------------------------------

def _choice(name, value, allowed):
    if value not in allowed:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, allowed))}, got {value!r}")


def _boolean(name, value):
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be True or False, got {value!r}")


def _integer(name, value, low, high):
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValueError(f"{name} must be an integer in [{low}, {high}], got {value!r}")


def _number(name, value, low, high, shown, *, low_open):
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    ok = ok and (low < value if low_open else low <= value) and value <= high
    if not ok:
        raise ValueError(f"{name} must be a number in {shown}, got {value!r}")


def _parse(name, text, default):
    """Turn a query/CLI string into the type of the field's default."""
    text = str(text).strip()
    try:
        if isinstance(default, bool):
            if text.lower() not in ("true", "false", "1", "0"):
                raise ValueError
            return text.lower() in ("true", "1")
        if isinstance(default, tuple):
            return tuple(int(part) for part in text.split(",") if part.strip())
        if name in ("train_limit", "early_stopping"):
            return None if text.lower() in ("", "none", "0") else int(text)
        if isinstance(default, int):
            return int(text)
        if isinstance(default, float):
            return float(text)
        return text
    except ValueError:
        kind = "a comma-separated list of integers" if isinstance(default, tuple) else type(default).__name__
        raise ValueError(f"{name} must be {kind}, got {text!r}") from None
