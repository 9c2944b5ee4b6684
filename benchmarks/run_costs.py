"""Estimated against measured: a training process's peak memory (the public demo's memory cap rests on it) and its
wall time from start to finish (the Train page's estimate).

    python -m benchmarks.run_costs

For each configuration below, `python -m digitlab train ... --no-track` runs as a subprocess under
`/usr/bin/time -f %M` (its peak resident memory) and its wall time is timed; the estimates come from
`digitlab.costs` (training_memory_bytes; start-up + training + testing: --no-track skips the saving step).
Machine-specific: say which CPU, and compare within one run.
"""

from __future__ import annotations

import subprocess
import sys
import time

from digitlab import costs
from digitlab.config import RunConfig

CASES = [
    ("ANN 128, batch 32, 1,000 images", RunConfig(model="ann", hidden_units=128, train_limit=1000, num_epochs=1)),
    ("reference CNN, batch 32, 2,000 images", RunConfig(model="cnn", train_limit=2000, num_epochs=1)),
    ("VGG CNN 32,64 ×2, batch 128, 2,000 images",
     RunConfig(model="cnn", convs_per_block=2, batch_size=128, train_limit=2000, num_epochs=1)),
    ("ANN 4096, batch 512, 20,000 images",
     RunConfig(model="ann", hidden_units=4096, batch_size=512, train_limit=20000, num_epochs=1)),
    ("CNN filters 512,8, batch 512, 2,000 images (69k parameters)",
     RunConfig(model="cnn", filters=(512, 8), batch_size=512, train_limit=2000, num_epochs=1)),
]


def measure(config: RunConfig) -> tuple[float, float]:
    """(peak RSS in MB, wall seconds) of a real training process for `config`."""
    flags = []
    for name, value in config.to_params().items():
        flag = "--" + {"num_epochs": "epochs", "dropout_rate": "dropout"}.get(name, name.replace("_", "-"))
        if name in ("model",):
            flags += ["--model", value]
        elif value in ("True", "False"):
            flags.append(flag if value == "True" else "--no-" + flag[2:])
        elif value != "":
            flags += [flag, value]
    start = time.perf_counter()
    done = subprocess.run(["/usr/bin/time", "-f", "%M", sys.executable, "-m", "digitlab", "train", *flags,
                           "--no-track", "--json"], capture_output=True, text=True, check=True)
    return int(done.stderr.strip().splitlines()[-1]) / 1024, time.perf_counter() - start


def main() -> None:
    print("| configuration | peak memory: estimated | measured | error | wall time: estimated | measured |")
    print("|---|---|---|---|---|---|")
    for name, config in CASES:
        rss, wall = measure(config)
        estimate = costs.training_memory_bytes(config) / costs.MB
        seconds = costs.STARTUP_SECONDS + costs.training_seconds(config) + costs.testing_seconds(config)
        print(f"| {name} | {estimate:,.0f} MB | {rss:,.0f} MB | {(estimate - rss) / rss:+.0%} | {seconds:.0f} s | "
              f"{wall:.0f} s |", flush=True)


if __name__ == "__main__":
    main()
