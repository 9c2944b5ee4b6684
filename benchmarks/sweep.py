"""A 20-trial CNN sweep sized for ≤ 15 minutes on 2 cores: what it finds, and how fast one and two workers go.

    python -m benchmarks.sweep [--trials 20] [--train-limit 10000] [--max-epochs 5] [--workers 1 2] [--seeds 0 1 2]

For each worker count, a fresh study in a fresh DigitLab home (SQLite storage, SQLite MLflow store) is swept by
that many `python -m digitlab sweep` processes started at once (the defaults: a CNN on the `reference` preset,
searching learning rate, dropout, batch size and hidden units, median pruner). Timed from the start to the last
worker's exit: trials per minute and trained epochs per minute (pruning makes trials differ in length), and the
workers' CPU time, which other load on a shared machine changes far less than the wall time.

Then, in the same conditions (the same training images and validation split, `--max-epochs` epochs, early stopping
off), the `reference` preset is trained once per seed, and the 1-worker sweep's best configuration is trained again
with the other seeds: their validation accuracies (mean ± std) put the sweep's best, a maximum over trials and so
optimistic, in context. The best trial's test accuracy is read once, at the end. Writes benchmarks/sweep.json.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from digitlab import studies, sweeps
from digitlab.data import home_dir, load_mnist
from digitlab.training import train

OUT = Path(__file__).resolve().parent / "sweep.json"
PROJECT = Path(__file__).resolve().parent.parent


def sweep(workers: int, args) -> dict:
    """Run one study with `workers` processes; returns its timing and its trials."""
    home = Path(tempfile.mkdtemp(prefix=f"sweep-bench-{workers}-"))
    shutil.copy(home_dir() / "mnist.npz", home / "mnist.npz")
    env = {**os.environ, "DIGITLAB_HOME": str(home)}
    env.pop("MLFLOW_TRACKING_URI", None)
    command = [sys.executable, "-m", "digitlab", "sweep", "--study", "bench", "--model", "cnn", "--trials",
               str(args.trials), "--train-limit", str(args.train_limit), "--max-epochs", str(args.max_epochs)]
    load_before = Path("/proc/loadavg").read_text().split()[:3]
    cpu_before = _children_cpu()
    start = time.time()
    procs = [subprocess.Popen(command, cwd=PROJECT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for _ in range(workers)]
    outputs = [p.communicate() for p in procs]
    seconds = time.time() - start
    cpu = _children_cpu() - cpu_before  # the workers' CPU time: what the sweep costs whatever else runs
    for p, (_, err) in zip(procs, outputs):
        if p.returncode:
            raise RuntimeError(err[-3000:])
    results = [json.loads(out.strip().splitlines()[-1]) for out, _ in outputs]
    rows = studies.trial_rows(studies.load_study("bench", f"sqlite:///{home / 'sweeps.db'}"))
    finished = [r for r in rows if r["state"] in ("complete", "pruned")]
    epochs = sum(r["epochs"] or 0 for r in finished)
    out = {"workers": workers, "seconds": round(seconds, 1), "trials_finished": len(finished),
           "pruned": sum(r["state"] == "pruned" for r in finished), "epochs_trained": epochs,
           "trials_per_minute": round(len(finished) / seconds * 60, 2),
           "epochs_per_minute": round(epochs / seconds * 60, 2), "cpu_seconds": round(cpu, 1),
           "cpu_seconds_per_epoch": round(cpu / max(1, epochs), 2), "loadavg_before": load_before,
           "loadavg_after": Path("/proc/loadavg").read_text().split()[:3],
           "best": next(r for r in results if r["best_trial_test_accuracy"] is not None),
           "trials": [{k: r[k] for k in ("number", "state", "value", "params", "epochs", "seconds")} for r in rows]}
    print(json.dumps({k: v for k, v in out.items() if k != "trials"}), flush=True)
    return out


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def validation_accuracy(config, data) -> float:
    return train(config, data).history["val_accuracy"][-1]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--train-limit", type=int, default=10_000)
    parser.add_argument("--max-epochs", type=int, default=5)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    args = parser.parse_args()
    data = load_mnist()
    runs = [sweep(workers, args) for workers in args.workers]

    settings = sweeps.SweepConfig(model="cnn", num_trials=args.trials, train_limit=args.train_limit,
                                  max_epochs=args.max_epochs)
    best = runs[0]["best"]
    reference = [validation_accuracy(settings.base.replace(seed=s), data) for s in args.seeds]
    again = [validation_accuracy(settings.trial_config(best["best_params"]).replace(seed=s), data)
             for s in args.seeds if s != settings.seed]
    report = {
        "command": "python -m benchmarks.sweep " + " ".join(sys.argv[1:]), "date": time.strftime("%Y-%m-%d %H:%M"),
        "cpu": _cpu(), "sweeps": runs,
        "reference_val_accuracy": reference, "best_config_other_seeds_val_accuracy": again,
        "best_val_accuracy": best["best_value"], "best_params": best["best_params"],
        "best_trial_test_accuracy": best["best_trial_test_accuracy"],
    }
    OUT.write_text(json.dumps(report, indent=1) + "\n")
    print(f"\nCPU: {report['cpu']}")
    print("| workers | wall time | trials finished (pruned) | epochs | trials/min | epochs/min | worker CPU | "
          "CPU s/epoch | load before → after |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in runs:
        print(f"| {r['workers']} | {r['seconds'] / 60:.1f} min | {r['trials_finished']} ({r['pruned']}) | "
              f"{r['epochs_trained']} | {r['trials_per_minute']} | {r['epochs_per_minute']} | "
              f"{r['cpu_seconds'] / 60:.1f} min | {r['cpu_seconds_per_epoch']} | {' '.join(r['loadavg_before'])} → "
              f"{' '.join(r['loadavg_after'])} |")
    print(f"\nbest trial val_accuracy {best['best_value']:.4f} {best['best_params']}; same config, other seeds "
          f"{_mean_std(again)}; reference preset {_mean_std(reference)} (seeds {args.seeds}); best trial's test "
          f"accuracy (reported once) {best['best_trial_test_accuracy']:.4f}")


def _mean_std(values) -> str:
    if len(values) < 2:
        return f"{values[0]:.4f}" if values else "-"
    return f"{statistics.mean(values):.4f} ± {statistics.stdev(values):.4f}"


def _cpu() -> str:
    info = Path("/proc/cpuinfo").read_text()
    model = next(line.split(":", 1)[1].strip() for line in info.splitlines() if line.startswith("model name"))
    bf16 = [flag for flag in ("avx512_bf16", "amx_bf16") if flag in info.split()]
    return f"{model}, {os.cpu_count()} cores, native bfloat16: {', '.join(bf16) or 'no'}"


if __name__ == "__main__":
    main()
