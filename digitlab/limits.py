"""What a visitor may do: this machine's memory on your own machine, server-side caps in the public demo.

The public demo is on when the environment (or a root-level key of Streamlit's `.streamlit/secrets.toml`, which
Streamlit exports to the environment) sets `DIGITLAB_PUBLIC=1`. The caps are checked where jobs are submitted
(`jobs.submit_job`) and the wall-time cap where they run, never only in widgets, so a crafted request cannot get
around them. Besides epochs, images and parameters they bound the work itself: a run's estimated peak memory and
training FLOPs (`costs.py`), since a few parameters can still need gigabytes (wide first convolutions, big batches).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from . import costs
from .config import FIELDS, TRAIN_SIZE, RunConfig

GB = 1024**3


@dataclass(frozen=True)
class Limits:
    public: bool = False  # the public demo: runs and drawings are private to each visitor
    max_epochs: int = 200
    max_train_images: int = TRAIN_SIZE
    max_parameters: int = 50_000_000
    batch_sizes: tuple[int, int] = (1, 4096)  # smallest and largest batch size
    max_memory: int | None = None  # bytes of a training's estimated peak; None: what this machine has available
    max_training_flops: float | None = None  # forward + backward over all epochs
    max_seconds: float | None = None  # wall time of one training; a run past it stops, kept as "time limit"
    max_running: int = 1  # trainings at once on this host (2 cores: one trains at full speed)
    max_queued: int | None = None  # trainings waiting on the host; the next visitor is told the demo is busy
    max_jobs_per_visitor: int | None = None  # queued + running jobs one visitor may have
    max_jobs_per_network: int | None = None  # ... and all visitors from one network (`identity.network_of`)
    max_runs_kept: int | None = None  # runs in the store; the oldest are deleted for good first (never shipped ones)
    max_runs_per_network: int | None = None  # ... of which one network's: its own oldest go first past it
    max_drawings: int = 10_000  # per visitor
    max_drawing_sets: int = 100_000  # visitors' sets kept; when full, a new visitor's set waits (none is deleted)
    max_drawing_sets_per_network: int | None = None  # ... of which one network may hold
    uploads: bool = True  # importing files (drawing sets)
    max_map_makers: int | None = None  # models' maps (Inside the model) made at once, each a process of ~0.3 GB

    def check(self, config: RunConfig) -> None:
        """Raise ValueError naming the first cap `config` exceeds, the value, and what to change."""
        where = "in the public demo" if self.public else "on this machine"
        images = config.train_limit or TRAIN_SIZE
        memory = costs.training_memory_bytes(config)
        memory_cap = self.max_memory or costs.available_memory_bytes()
        flops = costs.training_flops(config)
        problems = [
            ("num_epochs", f"{config.num_epochs:,}", config.num_epochs <= self.max_epochs,
             f"at most {self.max_epochs}", "Lower the epochs"),
            ("train_limit", f"{images:,}", images <= self.max_train_images,
             f"at most {self.max_train_images:,} images", "Use fewer training images"),
            ("batch_size", f"{config.batch_size:,}", self.batch_sizes[0] <= config.batch_size <= self.batch_sizes[1],
             f"between {self.batch_sizes[0]} and {self.batch_sizes[1]}", "Pick a batch size in that range"),
            ("parameters", f"{config.num_parameters:,}", config.num_parameters <= self.max_parameters,
             f"at most {self.max_parameters:,}", "Use fewer filters or hidden units"),
            ("estimated training memory", f"{memory / GB:.1f} GB", memory_cap is None or memory <= memory_cap,
             f"at most {(memory_cap or 0) / GB:.1f} GB", "Lower the batch size or the first block's filters"),
            ("training work", f"{flops / 1e12:.1f} TFLOP", self.max_training_flops is None
             or flops <= self.max_training_flops, f"at most {(self.max_training_flops or 0) / 1e12:.1f} TFLOP",
             "Use fewer epochs, training images or filters"),
        ]
        for name, value, ok, allowed, fix in problems:
            if not ok:
                raise ValueError(f"{name} must be {allowed} {where}, got {value}. {fix}, or run DigitLab on "
                                 "your own machine for bigger runs.")

    def clamp(self, values: dict) -> tuple[dict, list[str]]:
        """Bring RunConfig field values within the caps, for a form's defaults and link values.

        Returns (values, notes): each note says what was lowered or raised, to what, and why.
        """
        out, notes = dict(values), []
        bounds = {"num_epochs": (1, self.max_epochs), "batch_size": self.batch_sizes,
                  "train_limit": (100, self.max_train_images)}
        for name, (low, high) in bounds.items():
            if name not in out:
                continue
            value = out[name]
            if name == "train_limit" and value is None and self.max_train_images < TRAIN_SIZE:
                value = TRAIN_SIZE  # "all 60,000"
            if isinstance(value, int) and not isinstance(value, bool) and not low <= value <= high:
                out[name] = min(max(value, low), high)
                notes.append(f"{FIELDS[name].label} {value:,} → {out[name]:,} (the "
                             f"{'public demo' if self.public else 'allowed'} range is {low:,}–{high:,})")
        return out, notes


LOCAL = Limits()
PUBLIC = Limits(public=True, max_epochs=5, max_train_images=20_000, max_parameters=500_000, batch_sizes=(32, 512),
                max_memory=int(1.25 * GB), max_training_flops=5e12, max_seconds=180.0, max_running=1, max_queued=8,
                max_jobs_per_visitor=1, max_jobs_per_network=3, max_runs_kept=200, max_runs_per_network=50,
                max_drawings=100, max_drawing_sets=500, max_drawing_sets_per_network=50, uploads=False,
                max_map_makers=1)


def current_limits(*, public: bool | None = None) -> Limits:
    """PUBLIC when `public` (or, when None, the DIGITLAB_PUBLIC environment variable) says so, else LOCAL."""
    if public is None:
        public = os.environ.get("DIGITLAB_PUBLIC", "").strip().lower() in ("1", "true", "yes", "on")
    return PUBLIC if public else LOCAL

