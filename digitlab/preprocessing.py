"""From pixels to model inputs: scaling, one-hot labels, training augmentation, and any image → MNIST-style 28×28.

MNIST digits were size-normalised so the longer side fits 20 px (anti-aliased, so grey levels remain) and centred
in 28×28 by their centre of mass (LeCun, Cortes, Burges). `prepare_image` does the same to a drawing or a photo:
ink → crop → 20 px → paste into 28×28 → shift the centre of mass to (14, 14). Measured on the MNIST test set, that
centre is at (13.99, 14.00) ± 0.29 and the longer side is exactly 20 px for every digit.
"""

from __future__ import annotations

import base64
import binascii
import io
import sys
from dataclasses import dataclass

import numpy as np
from PIL import Image

NUM_CLASSES = 10
BOX, SIZE = 20, 28  # MNIST's digit box and image size, in pixels
MIN_INK_PIXELS = 0.0005  # fraction of the image that must carry ink; below that the image counts as blank


# ---------------------------------------------------------------------------------------------------------------
# Training inputs
# ---------------------------------------------------------------------------------------------------------------

def scale_images(images: np.ndarray) -> np.ndarray:
    """uint8 (n, 28, 28) → float32 (n, 28, 28) in [0, 1]."""
    return np.asarray(images, np.float32) / 255.0


def one_hot(labels: np.ndarray) -> np.ndarray:
    """int (n,) → float32 (n, 10)."""
    return np.eye(NUM_CLASSES, dtype=np.float32)[np.asarray(labels)]


def augmentation_layers(*, seed: int = 0):
    """Random rotation (±8°), zoom (±10%) and translation (±10%), active only in training (Keras layers)."""
    import keras  # noqa: PLC0415 - keep TensorFlow off the import path of this module

    return keras.Sequential(
        [
            keras.layers.RandomRotation(0.022, fill_mode="constant", seed=seed),
            keras.layers.RandomZoom(0.1, fill_mode="constant", seed=seed + 1),
            keras.layers.RandomTranslation(0.1, 0.1, fill_mode="constant", seed=seed + 2),
        ],
        name="augmentation",
    )


# ---------------------------------------------------------------------------------------------------------------
# Any image → MNIST-style 28×28
# ---------------------------------------------------------------------------------------------------------------

class BlankImageError(ValueError):
    """The image holds no digit (blank, near-blank or too faint)."""


@dataclass(frozen=True)
class Prepared:
    """Every step of the preparation, so a UI can show drawing → cropped → 20 px → centred."""

    cropped: np.ndarray  # (h, w) float32 in [0, 1]: the ink's bounding box (1 = ink, 0 = background)
    resized: np.ndarray  # (≤20, ≤20) float32: longer side 20 px, aspect ratio kept
    image: np.ndarray  # (28, 28) float32 in [0, 1]: the model input, centre of mass at (14, 14)


def prepare_image(image: np.ndarray) -> Prepared:
    """Prepare a drawing or photo the way MNIST digits were prepared.

    image : array of shape (H, W) grey, (H, W, 3) RGB or (H, W, 4) RGBA, uint8 (0-255) or float (0-1).
        With a transparent background (the drawing canvas), ink is the alpha channel; when opaque, ink is the
        luminance, inverted when the background (the border) is light, so dark-on-light and light-on-dark both work.

    Raises BlankImageError when there is no digit to see.
    """
    words = _canvas_words(image)
    # A canvas's ink is its alpha, the top byte of each pixel's 32-bit word: words compare as their alphas do, with
    # every level `unit` times larger.
    ink, levels, unit = (words, _LEVELS, 1 << 24) if words is not None else (*_ink(image), 1)
    row_peaks, column_peaks = ink.max(axis=1), ink.max(axis=0)  # (H,), (W,): the peak and the box, in two passes
    if levels is None:
        peak = row_peaks.max()
        threshold = 0.2 * peak  # ink: brighter than a fifth of the strongest stroke
    else:
        top = int(row_peaks.max()) // unit
        peak = levels[top]  # levels never decrease
        threshold = unit * (_FIRST[top] if levels is _LEVELS else int(np.argmax(levels > 0.2 * peak)))
    if peak < 0.15:
        raise BlankImageError("no digit found: the image is blank or too faint. Draw a digit.")

    def inked(values):
        return values >= threshold if levels is not None else values > threshold

    rows, cols = np.flatnonzero(inked(row_peaks)), np.flatnonzero(inked(column_peaks))
    box = np.s_[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]  # every ink pixel is inside: look only at this part
    mask = inked(ink[box])
    ink_pixels = np.count_nonzero(mask)
    if ink_pixels / ink.size < MIN_INK_PIXELS or ink_pixels < 3:
        raise BlankImageError("no digit found: the image is blank or too faint. Draw a digit.")
    if _looks_like_noise(mask):
        raise BlankImageError("no digit found: only scattered specks. Draw a digit.")
    part = ink[box] if words is None else (ink[box] >> 24).astype(np.uint8)
    if levels is _LEVELS:  # the same floats as the table, in a third of the time
        cropped = part / np.float32(255)
    else:
        cropped = np.take(levels, part) if levels is not None else part  # take: twice as fast as [...]
    resized = _fit_longer_side(cropped, BOX)
    return Prepared(cropped=cropped, resized=resized, image=_centre(resized))


def _looks_like_noise(mask: np.ndarray) -> bool:
    """True when the ink is scattered specks: its 3 largest connected parts hold under half of it.

    A digit is one to three strokes (a "4" or "5" drawn in pieces); noise is many small, separate blobs.
    """
    if _most_parts(mask) <= 3:  # 97% of MNIST's digits: no labelling, and no scipy import (0.3 CPU-s) on a new server
        return False
    from scipy import ndimage  # noqa: PLC0415

    labels, count = ndimage.label(mask)
    if count <= 3:
        return False
    sizes = np.sort(np.bincount(labels.ravel())[1:])[::-1]
    return sizes[:3].sum() < 0.5 * sizes.sum()


def _most_parts(mask: np.ndarray) -> int:
    """At least the number of 4-connected parts of a (h, w) bool mask (scipy.ndimage.label's count): its runs of ink
    along a row that touch no ink in the row above. A part's top-most row holds such a run, so none is missed."""
    height, width = mask.shape
    padded = np.zeros((height, width + 1), bool)  # a blank pixel after each row: no run continues into the next row
    padded[:, :-1] = mask
    flat = padded.ravel()
    starts = np.flatnonzero(flat[1:] & ~flat[:-1]) + 1  # where each run begins
    if flat[0]:
        starts = np.concatenate(([0], starts))
    if not starts.size:
        return 0
    inked_above = np.zeros_like(padded)
    inked_above[1:, :-1] = mask[1:] & mask[:-1]
    # A run's pixels and the blank ones after it, up to the next run's start: only its own can be inked above.
    return int(starts.size - np.count_nonzero(np.logical_or.reduceat(inked_above.ravel(), starts)))


def ink_from_image(image: np.ndarray) -> np.ndarray:
    """(H, W[, C]) image → (H, W) float32 ink in [0, 1], 1 where the digit is."""
    ink, levels = _ink(image)
    return np.take(levels, ink) if levels is not None else ink


_LEVELS = np.arange(256, dtype=np.float32) / 255.0  # uint8 → float32 in [0, 1], as `pixels / 255.0` gives
_FIRST = [int(np.argmax(_LEVELS > 0.2 * level)) for level in _LEVELS]  # each peak level's first ink level


def _ink(image: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """`ink_from_image`, kept in 8 bits for 8-bit images: (uint8 levels, their 256 float32 values, non-decreasing),
    else (float32 ink, None). Every step below is per pixel value, so it runs on the 256 values, not on the
    280×280 pixels of a canvas: the same floats, a fraction of the work."""
    pixels = np.asarray(image)
    if pixels.ndim not in (2, 3) or (pixels.ndim == 3 and pixels.shape[2] not in (1, 3, 4)):
        raise ValueError(f"image must have shape (H, W), (H, W, 3) or (H, W, 4), got {pixels.shape}")
    if min(pixels.shape[:2]) < 8:
        raise ValueError(f"image must be at least 8×8 pixels, got {pixels.shape[1]}×{pixels.shape[0]}")
    eight_bit = pixels.dtype == np.uint8
    scale = 255.0 if eight_bit or pixels.max() > 1 else 1.0
    if pixels.ndim == 3 and pixels.shape[2] == 4:
        alpha = pixels[..., 3]
        if alpha[0, 0] < 0.99 * scale or alpha.min() < 0.99 * scale:  # transparent: the ink is what was painted
            return (alpha, _LEVELS) if eight_bit else (alpha.astype(np.float32) / scale, None)
    colour = pixels.ndim == 3 and pixels.shape[2] > 1
    if eight_bit:
        # PIL's "L" (alpha ignored) has the same weights, in C: exact for grey ink.
        ink = np.asarray(Image.fromarray(np.ascontiguousarray(pixels)).convert("L")) if colour else pixels.reshape(
            pixels.shape[:2])
        values = _LEVELS
    else:
        pixels = pixels.astype(np.float32) / scale
        ink = values = pixels[..., :3] @ np.array([0.299, 0.587, 0.114], np.float32) if colour else pixels.reshape(
            pixels.shape[:2])
    background = _border_median(ink, values if eight_bit else None)
    if background > 0.5:  # a light background: ink is the inverse
        ink, values = (255 - ink, 1.0 - _LEVELS[::-1]) if eight_bit else (1.0 - ink,) * 2
        background = _border_median(ink, values if eight_bit else None)
    # Stretch so the background is 0 and the darkest stroke 1 (photos are rarely pure black on pure white).
    peak = values[ink.max()] if eight_bit else ink.max()
    if background > 0 or peak < 1:  # a canvas is already 0 to 1
        values = np.clip((values - background) / max(peak - background, 1e-6), 0, 1)
    values = values.astype(np.float32, copy=False)
    return (ink, values) if eight_bit else (values, None)


def _canvas_words(image) -> np.ndarray | None:
    """A transparent 8-bit RGBA image (the drawing canvas) as its pixels' 32-bit words, (H, W) uint32, whose top
    byte is the alpha (little-endian), without a copy; None for any other image. A word's order is its alpha's, so
    the ink's peaks and box come from the words, and only the box's alpha is ever read out: a stroke's preparation
    skips making a 280×280 alpha array (the peaks: 118 → 72 µs on an AMX Xeon, canvases read cold)."""
    if not (isinstance(image, np.ndarray) and image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 4
            and min(image.shape[:2]) >= 8 and image.flags.c_contiguous and sys.byteorder == "little"):
        return None
    words = image.view(np.uint32)[..., 0]
    return words if words[0, 0] < _OPAQUE or words.min() < _OPAQUE else None


_OPAQUE = 253 << 24  # a word below it has alpha < 0.99 × 255: see `_ink`


def _border_median(image: np.ndarray, values: np.ndarray | None) -> float:
    """The median of the image's edge pixels (of their `values`, for 8-bit levels)."""
    border = np.concatenate([image[0], image[-1], image[:, 0], image[:, -1]])
    return np.median(border if values is None else values[border])


MAX_FILE_PIXELS = 50_000_000  # an image file read for a prediction: a 50-megapixel photo decodes to 200 MB


class ImageTooLargeError(ValueError):
    """An image file with more pixels than `MAX_FILE_PIXELS`."""


def load_image_file(path) -> np.ndarray:
    """Read a PNG/JPEG (any mode, up to `MAX_FILE_PIXELS`) as a uint8 array for `prepare_image`.

    Raises ImageTooLargeError before decoding a larger one (its size is read from the header)."""
    try:
        img = Image.open(path)
    except Image.DecompressionBombError:  # PIL's own refusal, past 179 megapixels
        raise ImageTooLargeError(f"it has more than {MAX_FILE_PIXELS // 1_000_000} megapixels; shrink it (a digit "
                                 "needs a few hundred pixels a side)") from None
    with img:
        if img.width * img.height > MAX_FILE_PIXELS:
            raise ImageTooLargeError(f"it is {img.width:,}×{img.height:,} pixels, more than "
                                     f"{MAX_FILE_PIXELS // 1_000_000} megapixels; shrink it (a digit needs a few "
                                     "hundred pixels a side)")
        img.load()
        if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
            return np.asarray(img.convert("RGBA"))
        return np.asarray(img.convert("L"))


_PNG_URL = "data:image/png;base64,"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def read_canvas(data_url: str, *, size: int) -> np.ndarray:
    """A canvas's drawing as its page sends it (a PNG data URL, `size` × `size`) → uint8 RGBA (size, size, 4).

    The value comes from a browser, so anything else (another format, another size, a broken file) is refused with
    a ValueError; the size is read from the PNG's header before any image library sees the data.
    """
    if not isinstance(data_url, str) or not data_url.startswith(_PNG_URL):
        raise ValueError("the drawing is not a PNG data URL")
    if len(data_url) > 8 * size * size:  # 627 KB for 280×280: 1.5× an incompressible RGBA PNG; a drawing is ~10 KB
        raise ValueError(f"the drawing is larger than a {size}×{size} canvas's PNG")
    try:
        data = base64.b64decode(data_url[len(_PNG_URL):], validate=True)
    except binascii.Error:
        raise ValueError("the drawing is not a readable PNG") from None
    # The signature, then the IHDR chunk: length, type, width and height as big-endian 32-bit integers.
    if data[:8] != PNG_SIGNATURE or data[12:16] != b"IHDR":
        raise ValueError("the drawing is not a readable PNG")
    if (int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")) != (size, size):
        raise ValueError(f"the drawing is not a {size}×{size} PNG")
    try:
        with Image.open(io.BytesIO(data), formats=["PNG"]) as img:
            return np.asarray(img.convert("RGBA"))
    except (OSError, ValueError):  # a truncated or corrupt file, or PIL's own limits (ValueError)
        raise ValueError("the drawing is not a readable PNG") from None


def _fit_longer_side(ink: np.ndarray, size: int) -> np.ndarray:
    """Scale so the longer side is `size` px, keeping the aspect ratio; area averaging keeps grey levels."""
    h, w = ink.shape
    scale = size / max(h, w)
    new_h, new_w = max(1, round(h * scale)), max(1, round(w * scale))
    method = Image.Resampling.BOX if scale < 1 else Image.Resampling.BILINEAR
    out = np.asarray(Image.fromarray(ink, mode="F").resize((new_w, new_h), method), np.float32)
    # The stroke's core is full ink, as in MNIST. Both filters' weights are positive (a box, a triangle): no clipping.
    return out / max(out.max(), np.float32(1e-6))


_PLACES = np.arange(SIZE, dtype=np.float64)


def _centre(resized: np.ndarray) -> np.ndarray:
    """Paste into 28×28, translated by whole pixels so the centre of mass lands on (14, 14)."""
    h, w = resized.shape
    top, left = (SIZE - h) // 2, (SIZE - w) // 2
    # scipy.ndimage.center_of_mass's arithmetic, on the (h, w) digit, without its ~0.1 ms of overhead per call.
    rows, cols = resized.sum(axis=1, dtype=np.float64), resized.sum(axis=0, dtype=np.float64)
    total = rows.sum()
    cy, cx = top + rows @ _PLACES[:h] / total, left + cols @ _PLACES[:w] / total
    # Never push ink off the image: clamp the shift to the empty margin on each side.
    top += min(max(int(round(SIZE / 2 - cy)), -top), SIZE - h - top)
    left += min(max(int(round(SIZE / 2 - cx)), -left), SIZE - w - left)
    out = np.zeros((SIZE, SIZE), np.float32)
    out[top:top + h, left:left + w] = resized
    return out


def canvas_to_mnist(rgba: np.ndarray) -> np.ndarray:
    """The drawing canvas's RGBA uint8 (H, W, 4) → the model input float32 (28, 28) in [0, 1].

    The same preparation as `prepare_image` (which also returns the intermediate steps). Raises BlankImageError.
    """
    return prepare_image(rgba).image
