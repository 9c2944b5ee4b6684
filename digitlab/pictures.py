"""Pure numpy pictures for the Draw page: arrays in, uint8 RGB images out (shown with `st.image`).

A stroke redraws these several times a second for every visitor, so they are plain arrays (a few microseconds each),
not Plotly figures (about 10 ms each to build). Pixels are enlarged by repetition, so digits stay crisp.
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


def saliency_rgb(image: np.ndarray, saliency: np.ndarray, *, scale: int = 8) -> np.ndarray:
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
