"""What augmentation does to training digits: copies made by the very Keras layers training uses, for the Train page.

The dashboard never imports TensorFlow, so the copies are made once, here, and stored with the shipped models
(models/augmentation.npz: DIGITS training digits, VARIANTS augmented copies of each). The page shows a fresh random
choice of copies on request, numpy only. Remake the file with `python -m digitlab.augment_preview`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .modelfiles import SHIPPED_DIR

PREVIEW_FILE = SHIPPED_DIR / "augmentation.npz"
DIGITS = 10  # the first training image of each digit 0-9
VARIANTS = 48  # augmented copies of each, as 48 different training steps would see it


def make_preview(images: np.ndarray, *, variants: int = VARIANTS, seed: int = 0) -> np.ndarray:
    """(n, 28, 28) uint8 training images → (n, variants, 28, 28) uint8, each copy augmented as in training.

    Runs models.augment (rotation, zoom, shift, stroke width) with training=True: the layers a CNN or ANN with
    `augment=True` puts in front of its first layer.
    """
    import keras  # noqa: PLC0415 - TensorFlow: made here, never in the server

    from .models import augment  # noqa: PLC0415

    inputs = keras.Input(shape=(28, 28))
    front = keras.Model(inputs, augment(inputs, seed=seed))
    batch = np.repeat(np.asarray(images, np.float32) / 255.0, variants, axis=0)  # (n·variants, 28, 28)
    copies = np.asarray(front(batch, training=True))[..., 0]
    return np.clip(np.rint(copies * 255), 0, 255).astype(np.uint8).reshape(len(images), variants, 28, 28)


def write_preview(path: str | Path = PREVIEW_FILE, *, seed: int = 0) -> Path:
    from .data import load_mnist  # noqa: PLC0415

    data = load_mnist()
    first = [int(np.flatnonzero(data.y_train == digit)[0]) for digit in range(DIGITS)]
    originals = data.x_train[first]
    np.savez_compressed(path, originals=originals, copies=make_preview(originals, seed=seed), seed=seed)
    return Path(path)


def load_preview(path: str | Path = PREVIEW_FILE) -> tuple[np.ndarray, np.ndarray]:
    """(originals (DIGITS, 28, 28), copies (DIGITS, VARIANTS, 28, 28)), uint8."""
    with np.load(path) as stored:
        return stored["originals"], stored["copies"]


def pick(copies: np.ndarray, *, per_digit: int, rng: np.random.Generator) -> np.ndarray:
    """`per_digit` distinct random copies of each digit: (DIGITS, per_digit, 28, 28)."""
    chosen = np.stack([rng.choice(copies.shape[1], per_digit, replace=False) for _ in range(len(copies))])
    return np.take_along_axis(copies, chosen[:, :, None, None], axis=1)


if __name__ == "__main__":
    print(f"wrote {write_preview()}")
