"""Pure numpy pictures for the Draw and Inside pages: arrays in, uint8 RGB images out (shown with `st.image`).

A stroke redraws these several times a second for every visitor, so they are plain arrays (a few microseconds each),
not Plotly figures (about 10 ms each to build). The page shows them small-as-made and lets the browser enlarge them
without smoothing (`image-rendering: pixelated`), so a 28×28 digit costs a 28×28 PNG; `enlarge` is for places
that need the pixels themselves.
"""

from __future__ import annotations

import numpy as np

# Red where a pixel pushed the score up, blue where it pushed it down (ColorBrewer RdBu ends), grey ink beneath.
POSITIVE, NEGATIVE = np.array([202, 0, 32], np.float32), np.array([5, 113, 176], np.float32)
# Activations: black at 0 rising through purple and orange to pale yellow (anchors of matplotlib's "inferno").
_INFERNO = np.array([[0, 0, 4], [40, 11, 84], [101, 21, 110], [159, 42, 99], [212, 72, 66], [245, 125, 21],
                     [250, 193, 39], [252, 255, 164]], np.float32)


def enlarge(image: np.ndarray, scale: int) -> np.ndarray:
    """(h, w[, c]) → (h·scale, w·scale[, c]) by repeating pixels."""
    return np.repeat(np.repeat(image, scale, axis=0), scale, axis=1)


def grey(image: np.ndarray, *, scale: int = 1) -> np.ndarray:
    """(h, w) float in [0, 1] → uint8 (h·scale, w·scale): ink bright on black, as the model sees it."""
    return enlarge(np.clip(np.asarray(image, np.float32) * 255, 0, 255).astype(np.uint8), scale)


def montage(images: np.ndarray, *, columns: int, gap: int = 2) -> np.ndarray:
    """(n, h, w) images → one (rows·(h+gap) − gap, columns·(w+gap) − gap) array, row-major, NaN in the gaps."""
    images = np.asarray(images, np.float32)
    n, h, w = images.shape
    rows = int(np.ceil(n / columns))
    out = np.full((rows * (h + gap) - gap, columns * (w + gap) - gap), np.nan, np.float32)
    for i, image in enumerate(images):
        r, c = divmod(i, columns)
        out[r * (h + gap):r * (h + gap) + h, c * (w + gap):c * (w + gap) + w] = image
    return out


def _heat_table(levels: int = 1024) -> np.ndarray:
    """uint8 (2·levels + 1, 3): rows 0..levels−1 negative (−1 → 0) in blue, rows levels.. positive (0 → 1) through
    the inferno anchors, the last row grey for NaN. `heat` looks colours up here: one gather instead of a dozen
    passes over 3-channel floats (the Inside page draws ~25,000 cells per stroke)."""
    steps = np.linspace(0, 1, levels, dtype=np.float32)
    position = steps * (len(_INFERNO) - 1)
    low = np.minimum(position.astype(int), len(_INFERNO) - 2)
    positive = _INFERNO[low] + (position - low)[:, None] * (_INFERNO[low + 1] - _INFERNO[low])
    negative = NEGATIVE * steps[::-1, None]
    return np.concatenate([negative, positive, [[60, 60, 60]]]).astype(np.uint8)


_HEAT = _heat_table()


def heat(values: np.ndarray, *, limit: float | None = None) -> np.ndarray:
    """Float (h, w) → uint8 (h, w, 3) on one colour scale: 0 black, `limit` (default: the largest value) pale
    yellow, through purple and orange; negative values (an activation before its ReLU) in blue, NaN (gaps) grey.
    Colours come in 1,024 steps per side (within 2 of 255 of the exact blend)."""
    values = np.asarray(values, np.float32)
    limit = float(limit if limit is not None else np.nanmax(np.abs(values), initial=0)) or 1.0
    levels = (len(_HEAT) - 1) // 2
    steps = np.rint(np.clip(np.nan_to_num(values) * ((levels - 1) / limit), 1 - levels, levels - 1)).astype(int)
    index = np.where(steps < 0, levels - 1 + steps, levels + steps)  # −k → the k-th blue row above black
    return _HEAT[np.where(np.isnan(values), 2 * levels, index)]


def signed(values: np.ndarray, *, limit: float | None = None) -> np.ndarray:
    """Float (h, w) → uint8 (h, w, 3): red for positive, blue for negative, black for 0, full colour at ±`limit`
    (default: the largest magnitude); NaN (gaps) grey. For weights, which have no natural zero point elsewhere."""
    values = np.asarray(values, np.float32)
    limit = float(limit if limit is not None else np.nanmax(np.abs(values), initial=0)) or 1.0
    scaled = np.clip(np.nan_to_num(values / limit, nan=0.0), -1, 1)[..., None]
    colour = np.where(scaled >= 0, POSITIVE, NEGATIVE) * np.abs(scaled)
    return np.where(np.isnan(values)[..., None], 60, colour).astype(np.uint8)


def activation_grid(maps: np.ndarray, *, columns: int = 8) -> np.ndarray:
    """One layer's activation maps (h, w, channels) side by side, uint8 RGB, on one colour scale for the layer
    (its largest magnitude), so a bright map fired more than a dim one."""
    maps = np.moveaxis(np.asarray(maps, np.float32), -1, 0)  # (channels, h, w)
    return heat(montage(maps, columns=min(columns, len(maps)), gap=1))


def filter_grid(kernel: np.ndarray, *, columns: int = 8, scale: int = 4) -> np.ndarray:
    """A first convolution's filters, kernel (kh, kw, 1, filters), each enlarged `scale`×, uint8 RGB; red weights
    respond to ink, blue ones to its absence. One scale for the layer, saturating at the 98th percentile of |weight|
    (a few large weights would leave the rest black)."""
    kernel = np.asarray(kernel, np.float32)
    tiles = np.moveaxis(kernel[:, :, 0, :], -1, 0)  # (filters, kh, kw)
    tiles = np.stack([enlarge(tile, scale) for tile in tiles])
    limit = float(np.percentile(np.abs(kernel), 98))
    return signed(montage(tiles, columns=min(columns, len(tiles)), gap=1), limit=limit or None)


def unit_grid(values: np.ndarray, *, columns: int = 32) -> np.ndarray:
    """A dense layer's activations (units,) as cells on a grid, row-major from unit 0, uint8 RGB; cells past the
    last unit are grey."""
    values = np.asarray(values, np.float32).ravel()
    rows = int(np.ceil(len(values) / columns))
    cells = np.full(rows * columns, np.nan, np.float32)
    cells[:len(values)] = values
    limit = float(np.abs(values).max()) or 1.0
    return heat(cells.reshape(rows, columns), limit=limit)


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
