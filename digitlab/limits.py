"""What a visitor may do: no caps on your own machine, server-side caps in the public demo.

The public demo is on when the environment (or a root-level key of Streamlit's `.streamlit/secrets.toml`, which
Streamlit exports to the environment) sets `DIGITLAB_PUBLIC=1`. The caps are checked where jobs are submitted
(`jobs.submit_job`) and the wall-time cap where they run, never only in widgets, so a crafted request cannot get
around them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from .config import TRAIN_SIZE, RunConfig


@dataclass(frozen=True)
class Limits:
    public: bool = False  # the public demo: runs and drawings are private to each visitor's session
    max_epochs: int = 200
    max_train_images: int = TRAIN_SIZE
    max_parameters: int = 50_000_000
    batch_sizes: tuple[int, int] = (1, 4096)  # smallest and largest batch size
    max_seconds: float | None = None  # wall time of one training; a run past it stops, kept as "time limit"
    max_running: int = 1  # trainings at once on this host (2 cores: one trains at full speed)
    max_jobs_per_visitor: int | None = None  # queued + running jobs one visitor may have
    max_runs_kept: int | None = None  # runs in the store; the oldest are deleted first (shipped models never)
    max_drawings: int = 10_000  # per visitor
    max_drawing_sets: int = 100_000  # visitors' sets kept; the least recently changed are deleted first
    uploads: bool = True  # importing files (drawing sets)

    def check(self, config: RunConfig) -> None:
        """Raise ValueError naming the first cap `config` exceeds, the cap, and how to get under it."""
        where = "in the public demo" if self.public else "on this server"
        images = config.train_limit or TRAIN_SIZE
        problems = [
            ("num_epochs", config.num_epochs, config.num_epochs <= self.max_epochs, f"at most {self.max_epochs}"),
            ("train_limit", images, images <= self.max_train_images, f"at most {self.max_train_images:,} images"),
            ("batch_size", config.batch_size, self.batch_sizes[0] <= config.batch_size <= self.batch_sizes[1],
             f"between {self.batch_sizes[0]} and {self.batch_sizes[1]}"),
            ("parameters", config.num_parameters, config.num_parameters <= self.max_parameters,
             f"at most {self.max_parameters:,} (fewer filters or hidden units)"),
        ]
        for name, value, ok, allowed in problems:
            if not ok:
                raise ValueError(f"{name} must be {allowed} {where}, got {value:,}. Lower it, or run DigitLab on "
                                 "your own machine for bigger runs.")


LOCAL = Limits()
PUBLIC = Limits(public=True, max_epochs=5, max_train_images=20_000, max_parameters=500_000, batch_sizes=(32, 512),
                max_seconds=180.0, max_running=1, max_jobs_per_visitor=1, max_runs_kept=200, max_drawings=100,
                max_drawing_sets=500, uploads=False)


def current_limits(*, public: bool | None = None) -> Limits:
    """PUBLIC when `public` (or, when None, the DIGITLAB_PUBLIC environment variable) says so, else LOCAL."""
    if public is None:
        public = os.environ.get("DIGITLAB_PUBLIC", "").strip().lower() in ("1", "true", "yes", "on")
    return PUBLIC if public else LOCAL
