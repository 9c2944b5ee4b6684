"""Two checkouts of DigitLab side by side on the same machine at the same time (shared machines drift ~2×, so only
paired runs compare changes): per-stroke work in-process, and server start → first drawn prediction.

    python -m benchmarks.ab stroke --base DIR [--new DIR] [--repeats 300]
    python -m benchmarks.ab startup --base DIR [--new DIR] [--rounds 4]

`stroke`: the same canvases through each checkout's `prepare_image`, `ServingModel` and shipped models,
alternating image by image. `startup`: `benchmarks.startup.draw_first` run in each checkout in turn, the
order alternating by round. DIR is a checkout, e.g. `git worktree add /tmp/base <commit>`.
"""

import argparse
import importlib.util
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent


def _module(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def stroke(trees: dict, repeats: int) -> None:
    from benchmarks.latency import canvases

    images, _ = canvases(repeats)
    sides = {}
    for name, tree in trees.items():
        prepare = _module(f"prep_{name}", tree / "digitlab" / "preprocessing.py").prepare_image
        serving = _module(f"digitlab.serving_{name}", tree / "digitlab" / "serving.py")
        sides[name] = (prepare, serving, [serving.ServingModel(tree / "models" / f"{m}.onnx") for m in ("ann", "cnn")])
    for prepare, _, models in sides.values():  # warm up
        for image in images[:20]:
            for model in models:
                model.run(prepare(image).image[None])
    times = {name: {"prepare": [], "models": [], "total": []} for name in trees}
    for i, image in enumerate(images):
        for name in (list(trees) if i % 2 == 0 else list(trees)[::-1]):
            prepare, serving, models = sides[name]
            t0 = time.perf_counter()
            x = prepare(image).image[None]
            t1 = time.perf_counter()
            if hasattr(serving, "run_each"):  # as that checkout's Draw page runs them
                serving.run_each(dict(enumerate(models)), x)
            else:
                for model in models:
                    model.run(x)
            t2 = time.perf_counter()
            for key, value in (("prepare", t1 - t0), ("models", t2 - t1), ("total", t2 - t0)):
                times[name][key].append(value * 1000)
    for name, parts in times.items():
        print(name, "   ".join(f"{k} p50 {np.percentile(v, 50):.2f} p95 {np.percentile(v, 95):.2f} ms"
                                for k, v in parts.items()))


def startup(trees: dict, rounds: int) -> None:
    one = ("import json; from benchmarks.browser import run_in_browser; from benchmarks.startup import draw_first; "
           "print(json.dumps(run_in_browser(draw_first, 1)[0]))")
    results = {name: [] for name in trees}
    for r in range(rounds):
        for name in (list(trees) if r % 2 == 0 else list(trees)[::-1]):
            out = subprocess.run([sys.executable, "-c", one], cwd=trees[name], capture_output=True, text=True)
            results[name].append(json.loads(out.stdout.strip().splitlines()[-1]))
            print(name, results[name][-1], flush=True)
    for name, runs in results.items():
        for key in runs[0]:
            seconds = [round(run[key], 2) for run in runs]
            print(f"{name} {key}: median {np.median(seconds):.2f} s, runs {seconds}")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("what", choices=["stroke", "startup"])
    parser.add_argument("--base", type=Path, required=True)
    parser.add_argument("--new", type=Path, default=ROOT)
    parser.add_argument("--repeats", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=4)
    args = parser.parse_args()
    trees = {"base": args.base.resolve(), "new": args.new.resolve()}
    print(open("/proc/loadavg").read().strip())
    stroke(trees, args.repeats) if args.what == "stroke" else startup(trees, args.rounds)
    print(json.dumps({"loadavg": open("/proc/loadavg").read().strip()}))


if __name__ == "__main__":
    main()
