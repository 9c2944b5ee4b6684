"""Pure numpy pictures for the Draw page: arrays in, uint8 RGB images out (shown with `st.image`).

A stroke redraws these several times a second for every visitor, so they are plain arrays (a few microseconds each),
not Plotly figures (about 10 ms each to build). The page shows them small-as-made and lets the browser enlarge them
without smoothing (`image-rendering: pixelated`), so a 28×28 digit costs a 28×28 PNG; `enlarge` is for places
that need the pixels themselves.
"""

from __future__ import annotations

import numpy as np

# Red where a pixel pushed the score up, blue where it pushed it down (ColorBrewer RdBu ends), grey ink beneath.
POSITIVE, NEGATIVE = np.array([202, 0, 32], np.float32), np.array([5, 113, 176], np.float32)


def enlarge(image: np.ndarray, scale: int) -> np.ndarray:
    """(h, w[, c]) → (h·scale, w·scale[, c]) by repeating pixels."""
    return np.repeat(np.repeat(image, scale, axis=0), scale, axis=1)


def grey(image: np.ndarray, *, scale: int = 1) -> np.ndarray:
    """(h, w) float in [0, 1] → uint8 (h·scale, w·scale): ink bright on black, as the model sees it."""
    return enlarge(np.clip(np.asarray(image, np.float32) * 255, 0, 255).astype(np.uint8), scale)


def saliency_rgb(image: np.ndarray, saliency: np.ndarray, *, scale: int = 1) -> np.ndarray:
    """The input in grey with the saliency on top: red pushed toward the digit, blue away; uint8 (h·s, w·s, 3).

    image, saliency : (h, w) float. Colour strength is |saliency| relative to its largest value, so every map
    uses its full range; pixels under 5% of it show the plain input.
    """
    image, saliency = np.asarray(image, np.float32), np.asarray(saliency, np.float32)
    limit = float(np.abs(saliency).max()) or 1.0
    strength = np.clip(np.abs(saliency) / limit, 0, 1)[..., None]  # (h, w, 1)
    strength = np.where(strength > 0.05, 0.25 + 0.75 * strength, 0.0)
    colour = np.where(saliency[..., None] >= 0, POSITIVE, NEGATIVE)
    base = np.repeat(image[..., None] * 110, 3, axis=2)  # dim grey ink, so the colours stand out
    return enlarge((base * (1 - strength) + colour * strength).astype(np.uint8), scale)


def preparation_strip(cropped: np.ndarray, resized: np.ndarray, image: np.ndarray, *, tile: int = 56,
                      gap: int = 6) -> np.ndarray:
    """The preparation steps side by side in one uint8 (tile, 3·tile + 2·gap) picture: the ink cropped (scaled down
    to fit a tile), the longer side at 20 px, and the centred 28×28 input (both enlarged 2×, so 1 px = 2 px)."""
    step = max(1, int(np.ceil(max(cropped.shape) / tile)))
    tiles = [cropped[::step, ::step], enlarge(resized, tile // 28), enlarge(image, tile // 28)]
    out = np.zeros((tile, 3 * tile + 2 * gap), np.float32)
    out[:, tile:tile + gap] = out[:, 2 * tile + gap:2 * tile + 2 * gap] = 0.35  # grey separators
    for i, picture in enumerate(tiles):
        h, w = picture.shape
        top, left = (tile - h) // 2, i * (tile + gap) + (tile - w) // 2
        out[top:top + h, left:left + w] = picture
    return grey(out)
