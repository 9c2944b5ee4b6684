"""Per-stroke latency of the Draw page's work, in-process and warm: prepare a 280×280 RGBA canvas, then one call
to each shipped model's serving graph (ONNX Runtime: probabilities, saliency of the predicted digit, activations),
both at once as Draw makes them (`serving.run_each`); then each model alone, for the record.
Then the work a stroke adds on "Inside the model" for the shipped CNN: the layer-by-layer pictures, and the
drawing's place in the map (PCA projection, or t-SNE placement by nearest digits) with the map's figure.

    python -m benchmarks.latency [--repeats 300]
    python -m benchmarks.latency --trace 20     # the host's speed: the CNN's p50 per half second, for 20 s

Prints p50/p95 in milliseconds for each step and the total, then the total split by the host's speed as each stroke
began (`by_speed`); machine-specific, compare within one run. Imports no TensorFlow (checked at the end), as in the
dashboard's server.
"""

import argparse
import sys
import time

import numpy as np
from PIL import Image

from digitlab.data import load_mnist
from digitlab.preprocessing import prepare_image
from digitlab.serving import load_serving, run_each


def canvases(n: int, seed: int = 0) -> tuple[list[np.ndarray], np.ndarray]:
    """MNIST test digits drawn the way the canvas returns them: 280×280 RGBA, white ink on a transparent background
    (the ink is the alpha channel; the colour is white wherever anything was painted, as a browser's PNG has it).

    Returns (n canvases of shape (280, 280, 4), their labels of shape (n,)).
    """
    rng = np.random.default_rng(seed)
    data = load_mnist()
    out = []
    picked = rng.choice(len(data.x_test), n, replace=False)
    for i in picked:
        size = int(rng.integers(120, 260))
        big = np.asarray(Image.fromarray(data.x_test[i]).resize((size, size), Image.Resampling.BILINEAR))
        rgba = np.zeros((280, 280, 4), np.uint8)
        top, left = rng.integers(0, 280 - size + 1, 2)
        rgba[top:top + size, left:left + size, :3] = np.where(big > 0, 255, 0)[..., None]
        rgba[top:top + size, left:left + size, 3] = big
        out.append(rgba)
    return out, data.y_test[picked]


def percentiles(samples_ms: list[float]) -> str:
    return f"p50 {np.percentile(samples_ms, 50):6.2f} ms   p95 {np.percentile(samples_ms, 95):6.2f} ms"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=300)
    parser.add_argument("--trace", type=float, help="seconds of the host's speed to print instead")
    args = parser.parse_args()
    if args.trace:
        return trace(args.trace)
    images, _ = canvases(args.repeats)
    models = {name: load_serving(name) for name in ("ann", "cnn")}
    x = prepare_image(images[0]).image[None]
    for _ in range(20):  # warm up
        for model in models.values():
            model.run(x)

    timings = {"prepare": [], "both models": [], "total": [], "ann alone": [], "cnn alone": []}
    probes = []  # the CNN on one fixed image just before each stroke: the host's speed at that moment
    for rgba in images:  # a stroke as Draw answers it: prepare, then both models at once (serving.run_each)
        t = time.perf_counter()
        models["cnn"].run(x)
        t0 = time.perf_counter()
        probes.append((t0 - t) * 1000)
        image = prepare_image(rgba).image[None]
        t1 = time.perf_counter()
        run_each(models, image)
        t2 = time.perf_counter()
        for key, value in (("prepare", t1 - t0), ("both models", t2 - t1), ("total", t2 - t0)):
            timings[key].append(value * 1000)
    for rgba in images:  # each model on its own, for the record
        image = prepare_image(rgba).image[None]
        for name, model in models.items():
            t0 = time.perf_counter()
            model.run(image)
            timings[f"{name} alone"].append((time.perf_counter() - t0) * 1000)
    for key, samples in timings.items():
        print(f"{key:20s} {percentiles(samples)}   (n={len(samples)})")
    by_speed(timings["total"], probes)
    inside(images, models["cnn"])
    assert "tensorflow" not in sys.modules, "the serving path must not import TensorFlow"


def trace(seconds: float) -> None:
    """The shipped CNN's call on one image, p50 per half second (calls for 0.5 s, then 0.5 s idle), in ms."""
    model, image = load_serving("cnn"), prepare_image(canvases(1)[0][0]).image[None]
    for _ in range(50):
        model.run(image)
    medians = []
    for _ in range(int(seconds)):
        times, end = [], time.perf_counter() + 0.5
        while time.perf_counter() < end:
            t0 = time.perf_counter()
            model.run(image)
            times.append(time.perf_counter() - t0)
        medians.append(np.median(times) * 1000)
        time.sleep(0.5)
    print("cnn p50 per half second (ms):", " ".join(f"{m:.2f}" for m in medians))


def by_speed(totals: list[float], probes: list[float]) -> None:
    """The total split by the host's speed when each stroke began. A shared host's core can run ~1.5x slower for
    seconds at a time (the CNN's call 0.68 against 1.02 ms on the AMX Xeon, half-second to half-second, in one
    process). "Fast" is a probe within 1.25x of the run's fastest 5%: a run at one speed throughout puts (nearly)
    every stroke there, whichever speed that is."""
    totals, probes = np.asarray(totals), np.asarray(probes)
    full = probes <= 1.25 * np.percentile(probes, 5)
    for name, chosen in (("total, host fast", full), ("total, host slowed", ~full)):
        if chosen.any():
            print(f"{name:20s} {percentiles(totals[chosen])}   (n={chosen.sum()}; probe p50 "
                  f"{np.median(probes[chosen]):.2f} ms)")


def inside(images, model) -> None:
    """Inside the model, per stroke, beyond the model call itself: pictures of every layer; the map (both methods)."""
    from digitlab import charts, pictures
    from digitlab.anatomy import load_first_kernel
    from digitlab.embedding import load_embedding, place
    from digitlab.modelfiles import SHIPPED_DIR

    _, kernel = load_first_kernel(SHIPPED_DIR / "cnn.keras")
    made = load_embedding(SHIPPED_DIR / "cnn.embedding.npz", SHIPPED_DIR / "cnn.tsne.npz")
    timings = {"inside: layer pictures": [], "inside: map, PCA": [], "inside: map, t-SNE": []}
    for rgba in images[:100]:
        out = model.run(prepare_image(rgba).image[None])
        t0 = time.perf_counter()
        pictures.filter_grid(kernel)
        for name in model.convolutions:
            pictures.activation_grid(out[name][0])
        pictures.unit_grid(out["hidden"][0])
        charts.probability_bars(out["probabilities"][0], height=180)  # the output layer
        timings["inside: layer pictures"].append((time.perf_counter() - t0) * 1000)
        for method in ("pca", "tsne"):
            t0 = time.perf_counter()
            position, near = place(made, out["hidden"][0], method=method)
            charts.embedding_map(made.positions(method), made.labels, drawing=position, neighbours=near)
            timings[f"inside: map, {'PCA' if method == 'pca' else 't-SNE'}"].append((time.perf_counter() - t0) * 1000)
    for key, samples in timings.items():
        print(f"{key:24s} {percentiles(samples)}   (n={len(samples)})")


if __name__ == "__main__":
    main()
