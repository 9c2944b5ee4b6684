"""Drawn-digit robustness: the 10k MNIST test digits rendered the way the drawing canvas returns them, then fed to
the shipped models with DigitLab's preparation (`canvas_to_mnist`) and without it (a plain resize of the whole
canvas to 28×28).

    python -m benchmarks.robustness [--on test|validation] [--limit 10000] [--seed 0] [--model NAME=PATH.keras ...]

Choosing anything with it (augmentation, preprocessing) uses `--on validation`: the last 6,000 training digits, the
validation split every preset holds out (10%), never trained on. `--on test` (the default) is for reporting, once.

Without --model it measures the shipped CNN and ANN (models/cnn.keras, models/ann.keras).

Distortions, each applied to every test digit on a 400×400 transparent RGBA canvas (ink in the alpha channel):
  none        the digit scaled to 280 px, centred (the canvas's own size)
  position    random size 120-360 px at a random position
  thin        as position, strokes thinned by erosion (3-7 px at canvas scale)
  thick       as position, strokes thickened by dilation (5-13 px)
  rotation    as position, rotated by a random angle in ±15°
  all         size, position, thickness and rotation together
Prints a table of test accuracy per model, distortion and preparation, and the loss against the raw test set.
"""

import argparse

import numpy as np
from PIL import Image, ImageFilter

from digitlab.data import load_mnist
from digitlab.models import make_predictor
from digitlab.preprocessing import BlankImageError, canvas_to_mnist
from digitlab.modelfiles import SHIPPED_DIR, load_model_file

CANVAS = 400
DISTORTIONS = ("none", "position", "thin", "thick", "rotation", "all")


def render(digit: np.ndarray, kind: str, rng: np.random.Generator) -> np.ndarray:
    """One uint8 (28, 28) MNIST digit → RGBA (400, 400, 4) as the canvas would return it."""
    size = 280 if kind == "none" else int(rng.integers(120, 361))
    image = Image.fromarray(digit).resize((size, size), Image.Resampling.BILINEAR)
    if kind in ("rotation", "all"):
        image = image.rotate(float(rng.uniform(-15, 15)), resample=Image.Resampling.BILINEAR)
    if kind in ("thin", "all") and (kind == "thin" or rng.random() < 0.5):
        image = image.filter(ImageFilter.MinFilter(int(rng.choice([3, 5, 7]))))
    elif kind in ("thick", "all"):
        image = image.filter(ImageFilter.MaxFilter(int(rng.choice([5, 7, 9, 11, 13]))))
    rgba = np.zeros((CANVAS, CANVAS, 4), np.uint8)
    if kind == "none":
        top = left = (CANVAS - size) // 2
    else:
        top, left = (int(v) for v in rng.integers(0, CANVAS - size + 1, 2))
    rgba[top:top + size, left:left + size, 3] = np.asarray(image)
    return rgba


def plain_resize(rgba: np.ndarray) -> np.ndarray:
    """The naive alternative: the whole canvas's alpha resized to 28×28."""
    return np.asarray(Image.fromarray(rgba[..., 3]).resize((28, 28), Image.Resampling.BOX), np.float32) / 255.0


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--on", choices=("test", "validation"), default="test",
                        help="validation (the last 6,000 training digits) to choose; test to report")
    parser.add_argument("--limit", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--model", action="append", metavar="NAME=PATH.keras", help="models to measure")
    args = parser.parse_args()
    data = load_mnist()
    if args.on == "validation":  # the held-out 10% every preset validates on: never fitted
        x, y = data.x_train[-6_000:][:args.limit], data.y_train[-6_000:][:args.limit]
    else:
        x, y = data.x_test[:args.limit], data.y_test[:args.limit]
    paths = dict(item.split("=", 1) for item in args.model) if args.model else {
        name: SHIPPED_DIR / f"{name}.keras" for name in ("cnn", "ann")}
    predictors = {name: make_predictor(load_model_file(path)) for name, path in paths.items()}

    def accuracy(predict, images):
        probabilities = np.concatenate([predict(images[i:i + 1000]) for i in range(0, len(images), 1000)])
        return float((probabilities.argmax(1) == y).mean())

    raw = {name: accuracy(p, x / 255.0) for name, p in predictors.items()}
    print(f"raw {args.on} set ({len(y)} images): " + ", ".join(f"{n.upper()} {a:.2%}" for n, a in raw.items()))
    print(f"| distortion | {' | '.join(f'{n.upper()} prepared | {n.upper()} plain resize' for n in predictors)} |")
    print("|---" * (1 + 2 * len(predictors)) + "|")
    for kind in DISTORTIONS:
        rng = np.random.default_rng(args.seed)
        prepared, plain, blank = [], [], 0
        for digit in x:
            rgba = render(digit, kind, rng)
            try:
                prepared.append(canvas_to_mnist(rgba))
            except BlankImageError:  # counted as a wrong answer
                prepared.append(np.zeros((28, 28), np.float32))
                blank += 1
            plain.append(plain_resize(rgba))
        prepared, plain = np.stack(prepared), np.stack(plain)
        cells = []
        for name, predict in predictors.items():
            a, b = accuracy(predict, prepared), accuracy(predict, plain)
            cells += [f"{a:.2%} ({(a - raw[name]) * 100:+.2f} pt)", f"{b:.2%} ({(b - raw[name]) * 100:+.2f} pt)"]
        print(f"| {kind} | {' | '.join(cells)} |" + (f"  ({blank} judged blank)" if blank else ""), flush=True)


if __name__ == "__main__":
    main()
