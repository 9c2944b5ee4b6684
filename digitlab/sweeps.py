"""Hyperparameter sweeps: what a sweep searches, and the settings every worker of a study shares.

A sweep is an Optuna study whose trials are DigitLab trainings: `studies.py` keeps the studies (SQLite or
PostgreSQL) and `sweep_worker.py` runs their trials. Settings are checked here, at the edge: each end of a range is
checked by building the RunConfig it would give, so the allowed bounds are the ones `config.py` validates, and every
message names the field.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass

from . import config as cfg

PRUNERS = ("median", "hyperband", "none")
# What a sweep may search, and its default range (".." = a range, "," = choices). Type, log scale, label and the
# allowed bounds come from config.FIELDS: every range end is checked by building a RunConfig with it.
SEARCHABLE = {
    "learning_rate": "0.0001..0.01",
    "dropout_rate": "0..0.5",
    "batch_size": "32,64,128,256",
    "hidden_units": "32..256",
    "filters": "8..64",  # the first block's filters; each later block doubles them (CNN only)
    "augment": "false,true",
    "num_epochs": "1..{max_epochs}",  # epochs up to the sweep's cap
}
DEFAULT_PARAMS = ("learning_rate", "dropout_rate", "batch_size", "hidden_units")
_STUDY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


# ---------------------------------------------------------------------------------------------------------------
# The search space and the sweep's settings
# ---------------------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Dimension:
    name: str  # a RunConfig field
    low: float | None = None  # a range low..high, or
    high: float | None = None
    choices: tuple = ()  # a list of values
    log: bool = False

    def suggest(self, trial):
        if self.choices:
            return trial.suggest_categorical(self.name, list(self.choices))
        if value_type(self.name) is int:
            return trial.suggest_int(self.name, self.low, self.high, log=self.log)
        return trial.suggest_float(self.name, self.low, self.high, log=self.log)

    def values(self) -> tuple | None:
        """Every value it can take, or None for a continuous range."""
        if self.choices:
            return self.choices
        return tuple(range(self.low, self.high + 1)) if value_type(self.name) is int else None

    def describe(self) -> str:
        if self.choices:
            return ",".join(str(c).lower() for c in self.choices)
        return f"{self.low:g}..{self.high:g}" + (" (log)" if self.log else "")


def parse_param(spec: str, *, max_epochs: int) -> Dimension:
    """'NAME' (its default range), 'NAME=LOW..HIGH' or 'NAME=A,B,C' → a Dimension (types checked, not bounds)."""
    name, _, text = spec.partition("=")
    name = name.strip()
    if name not in SEARCHABLE:
        raise ValueError(f"cannot search {name!r}; searchable: {', '.join(SEARCHABLE)}")
    default, log, kind = SEARCHABLE[name], cfg.FIELDS[name].log, value_type(name)
    text = (text.strip() or default).format(max_epochs=max_epochs)
    try:
        if ".." in text:
            low, high = (_value(kind, part) for part in text.split("..", 1))
            if not low < high:
                raise ValueError("the low end must be below the high end")
            if log and low <= 0:
                raise ValueError("a log-scale range must start above 0")
            return Dimension(name, low, high, log=log)
        choices = tuple(dict.fromkeys(_value(kind, part) for part in text.split(",")))
        return Dimension(name, choices=choices)
    except ValueError as error:
        example = default.format(max_epochs=max_epochs)
        forms = (f"a range like {example} or choices like a,b,c" if ".." in example else f"choices like {example}"
                 + ("" if kind is bool else " or a range like low..high"))
        noun = {float: "numbers", int: "whole numbers", bool: "true or false"}[kind]
        raise ValueError(f"{name} must be {forms} ({noun}), got {text!r}: {error}") from None


def value_type(name: str) -> type:
    """The Python type of one searched value (one filter count for `filters`)."""
    return {"float": float, "bool": bool}.get(cfg.FIELDS[name].kind, int)


def _value(kind, text: str):
    text = text.strip().lower()
    if kind is bool:
        if text not in ("true", "false"):
            raise ValueError(f"{text!r} is not true or false")
        return text == "true"
    try:
        return kind(text)
    except ValueError:
        raise ValueError(f"{text!r} is not {'a whole number' if kind is int else 'a number'}") from None


@dataclass(frozen=True)
class SweepConfig:
    """What every worker of a study shares. Stored in the study, so a worker joins with `--study` alone."""

    model: str = "cnn"
    preset: str = "reference"  # values for everything not searched
    params: tuple[str, ...] = DEFAULT_PARAMS  # 'NAME', 'NAME=LOW..HIGH' or 'NAME=A,B,C'
    num_trials: int = 20  # finished (completed or pruned) trials the study is done at
    max_epochs: int = 5  # epochs of every trial, or the cap when num_epochs is searched
    train_limit: int | None = None  # first N training images (None = all 60,000)
    seed: int = 0  # training seed, the same in every trial: trials differ only by their hyperparameters
    pruner: str = "median"  # "median", "hyperband" or "none"

    def __post_init__(self):
        cfg._check("num_trials", self.num_trials, cfg.Field("Trials", "", "int", 1, 10_000))
        cfg._choice("pruner", self.pruner, PRUNERS)
        if not self.params or not isinstance(self.params, tuple):
            raise ValueError(f"params must name at least one hyperparameter to search, got {self.params!r}")
        base = self.base  # RunConfig checks model, preset, max_epochs, train_limit and seed
        if base.validation_split == 0:
            raise ValueError("a sweep chooses on validation accuracy: the preset needs a validation split > 0")
        names = [d.name for d in self.space]
        if len(set(names)) < len(names):
            raise ValueError(f"each hyperparameter may be searched once, got {', '.join(names)}")
        for dimension in self.space:
            if dimension.name == "filters" and self.model != "cnn":
                raise ValueError("filters is a CNN hyperparameter; search it with model 'cnn'")
            if dimension.name == "filters":
                blocks, most = len(self.base.filters), int(cfg.FIELDS["filters"].high)
                top = max(dimension.choices or (dimension.high,))
                if top * 2 ** (blocks - 1) > most:
                    raise ValueError(f"search range filters={dimension.describe()}: the first block's filters can "
                                     f"be at most {most // 2 ** (blocks - 1)} ({blocks} blocks, each doubling the "
                                     f"last: {top} gives {top * 2 ** (blocks - 1)}, above {most})")
            for value in dimension.choices or (dimension.low, dimension.high):
                try:
                    self.trial_config({dimension.name: value})
                except ValueError as error:
                    raise ValueError(f"search range {dimension.name}={dimension.describe()}: {error}") from None

    @property
    def base(self) -> cfg.RunConfig:
        """The RunConfig of a trial before its searched values: the preset, this sweep's data and epochs."""
        return cfg.preset(self.preset, model=self.model, num_epochs=self.max_epochs, train_limit=self.train_limit,
                          seed=self.seed).replace(early_stopping=None)

    @property
    def space(self) -> tuple[Dimension, ...]:
        return tuple(parse_param(spec, max_epochs=self.max_epochs) for spec in self.params)

    def trial_config(self, values: dict) -> cfg.RunConfig:
        """The RunConfig a trial trains: the base with the sampled `values` (raises ValueError naming a field)."""
        base = self.base
        if "filters" in values:
            values = {**values, "filters": tuple(int(values["filters"]) * 2 ** i for i in range(len(base.filters)))}
        return base.replace(**values)

    def to_dict(self) -> dict:
        return {**dataclasses.asdict(self), "params": list(self.params)}

    @classmethod
    def from_options(cls, options: dict, *, stored: dict | None = None) -> SweepConfig:
        """Explicit `options` (None = not given) on top of a study's stored settings, which they must not change."""
        given = {k: tuple(v) if k == "params" else v for k, v in options.items() if v is not None}
        if stored is None:
            return cls(**given)
        stored = {**stored, "params": tuple(stored["params"])}
        changed = [f"{k}={stored[k]!r}" for k, v in given.items() if stored.get(k) != v]
        if changed:
            raise ValueError(f"this study already exists with {', '.join(changed)}; leave those options out to "
                             "join it, or start a new study under another name")
        return cls(**stored)


def check_study_name(name: str) -> str:
    if not isinstance(name, str) or not _STUDY.match(name):
        raise ValueError(f"study must be 1-64 letters, digits, '.', '_' or '-' (starting with a letter or digit), "
                         f"got {str(name)[:70]!r}")
    return name
