"""Per-stroke latency of the Draw page's work, in-process and warm: prepare a 280×280 RGBA canvas, then predict with
the shipped ANN and CNN. Compares the compiled predictor DigitLab uses with `model.predict`.

    python -m benchmarks.latency [--repeats 300]

Prints p50/p95 in milliseconds for each step and the total, then the saliency map of each model; machine-specific,
compare within one run.
"""

import argparse
import time

import numpy as np
from PIL import Image

from digitlab.data import load_mnist
from digitlab.models import make_predictor, saliency
from digitlab.preprocessing import prepare_image
from digitlab.tracking import SHIPPED_DIR, load_model_file


def canvases(n: int, seed: int = 0) -> list[np.ndarray]:
    """MNIST test digits drawn the way the canvas returns them: white on black, opaque RGBA, 280×280."""
    rng = np.random.default_rng(seed)
    data = load_mnist()
    out = []
    for i in rng.choice(len(data.x_test), n, replace=False):
        size = int(rng.integers(120, 260))
        big = np.asarray(Image.fromarray(data.x_test[i]).resize((size, size), Image.Resampling.BILINEAR))
        rgba = np.zeros((280, 280, 4), np.uint8)
        rgba[..., 3] = 255
        top, left = rng.integers(0, 280 - size + 1, 2)
        rgba[top:top + size, left:left + size, :3] = big[..., None]
        out.append(rgba)
    return out


def percentiles(samples_ms: list[float]) -> str:
    return f"p50 {np.percentile(samples_ms, 50):6.2f} ms   p95 {np.percentile(samples_ms, 95):6.2f} ms"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=300)
    args = parser.parse_args()
    images = canvases(args.repeats)
    models = {name: load_model_file(SHIPPED_DIR / f"{name}.keras") for name in ("ann", "cnn")}
    predictors = {name: make_predictor(model) for name, model in models.items()}
    x = prepare_image(images[0]).image[None]
    for name in models:  # warm up both paths
        for _ in range(20):
            predictors[name](x)
            models[name].predict(x, verbose=0)

    timings = {"prepare": [], "ann": [], "cnn": [], "total": [], "ann model.predict": [], "cnn model.predict": []}
    for rgba in images:
        t0 = time.perf_counter()
        x = prepare_image(rgba).image[None]
        t1 = time.perf_counter()
        predictors["ann"](x)
        t2 = time.perf_counter()
        predictors["cnn"](x)
        t3 = time.perf_counter()
        for key, value in (("prepare", t1 - t0), ("ann", t2 - t1), ("cnn", t3 - t2), ("total", t3 - t0)):
            timings[key].append(value * 1000)
    for rgba in images[:60]:
        x = prepare_image(rgba).image[None]
        for name in models:
            t = time.perf_counter()
            models[name].predict(x, verbose=0)
            timings[f"{name} model.predict"].append((time.perf_counter() - t) * 1000)
    for name in models:  # the Draw page's saliency map (gradient × input of the logit), eager, per stroke
        timings[f"{name} saliency"] = []
        for rgba in images[:60]:
            x = prepare_image(rgba).image
            t = time.perf_counter()
            saliency(models[name], x, target=7)
            timings[f"{name} saliency"].append((time.perf_counter() - t) * 1000)
    for key, samples in timings.items():
        print(f"{key:20s} {percentiles(samples)}   (n={len(samples)})")


if __name__ == "__main__":
    main()
