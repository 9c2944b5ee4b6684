import base64
import io
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from scipy import ndimage

from digitlab.preprocessing import (BlankImageError, _most_parts, ink_from_image, load_image_file, one_hot,
                                    prepare_image, read_canvas, scale_images)
from tests.conftest import digit_images

ROOT = Path(__file__).resolve().parent.parent


def _upscale(digit: np.ndarray, size: int) -> np.ndarray:
    return np.asarray(Image.fromarray(digit).resize((size, size), Image.Resampling.BILINEAR))


def _canvas(digit: np.ndarray, *, size=200, at=(40, 60), canvas=(400, 400)) -> np.ndarray:
    """An RGBA canvas with a transparent background: black stroke, ink in alpha, transparent elsewhere."""
    rgba = np.zeros((*canvas, 4), np.uint8)
    top, left = at
    rgba[top:top + size, left:left + size, 3] = _upscale(digit, size)
    return rgba


def _aligned_error(prepared: np.ndarray, digit: np.ndarray) -> float:
    """Mean absolute difference, allowing the one-pixel slack of rounding the centre of mass (MNIST's own
    digits sit anywhere within ±0.5 px of the centre, so a prepared copy may land one pixel over)."""
    return min(np.abs(np.roll(prepared, (dy, dx), axis=(0, 1)) - digit / 255).mean()
               for dy in (-1, 0, 1) for dx in (-1, 0, 1))


def test_scale_and_one_hot_match_keras():
    import keras

    x = np.array([[0, 128, 255]], np.uint8)
    np.testing.assert_allclose(scale_images(x), [[0, 128 / 255, 1]])
    y = np.array([3, 0, 9])
    np.testing.assert_array_equal(one_hot(y), keras.utils.to_categorical(y, 10))


def test_centred_mnist_digit_stays_put(mnist):
    for digit in mnist.x_test[:50]:
        prepared = prepare_image(digit).image
        assert prepared.shape == (28, 28) and prepared.dtype == np.float32
        assert np.abs(prepared - digit / 255).mean() < 0.01


@pytest.mark.parametrize("size, at", [(200, (40, 60)), (90, (0, 0)), (300, (100, 100)), (40, (350, 10))])
def test_shifted_scaled_canvas_digit_maps_back(mnist, size, at):
    digits, _ = digit_images(mnist)
    for digit in digits:
        prepared = prepare_image(_canvas(digit, size=size, at=at)).image
        assert _aligned_error(prepared, digit) < 0.06, (size, at)  # two resamplings blur a little
        cy, cx = ndimage.center_of_mass(prepared)
        assert abs(cy - 14) <= 0.5 and abs(cx - 14) <= 0.5


def test_steps_are_exposed(mnist):
    digits, _ = digit_images(mnist)
    p = prepare_image(_canvas(digits[1]))
    assert max(p.cropped.shape) > 20 and max(p.resized.shape) == 20
    assert p.image.shape == (28, 28)
    cy, cx = np.argwhere(p.image > 0).mean(axis=0)  # centred
    assert abs(cy - 14) < 2.5 and abs(cx - 14) < 2.5


def test_dark_on_light_and_light_on_dark_give_the_same_input(mnist):
    digits, _ = digit_images(mnist)
    for digit in digits:
        big = _upscale(digit, 140)
        light_on_dark = prepare_image(big).image
        dark_on_light = prepare_image(255 - big).image  # an opaque white page with a black digit
        rgb = np.repeat((255 - big)[..., None], 3, axis=2)
        opaque_rgba = np.dstack([rgb, np.full(big.shape, 255, np.uint8)])
        np.testing.assert_allclose(dark_on_light, light_on_dark, atol=1e-5)
        np.testing.assert_allclose(prepare_image(rgb).image, light_on_dark, atol=0.02)
        np.testing.assert_allclose(prepare_image(opaque_rgba).image, light_on_dark, atol=0.02)


def test_eight_bit_images_are_prepared_exactly_as_their_float_values(mnist):
    """8-bit images take a shortcut (each step runs on the 256 levels, not the pixels); it must change nothing."""
    for digit in mnist.x_test[:20]:
        big = _upscale(digit, 140)
        for image in (big, 255 - big, big // 2 + 60, 200 - big // 2, _canvas(digit)):  # ink, inverted, stretched, alpha
            as_float = image.astype(np.float32) / 255
            np.testing.assert_array_equal(ink_from_image(image), ink_from_image(as_float))
            np.testing.assert_array_equal(prepare_image(image).image, prepare_image(as_float).image)


def test_blank_and_near_blank_are_rejected():
    with pytest.raises(BlankImageError, match="Draw a digit"):
        prepare_image(np.zeros((280, 280, 4), np.uint8))
    with pytest.raises(BlankImageError):
        prepare_image(np.full((280, 280), 255, np.uint8))  # an empty white page
    dot = np.zeros((280, 280, 4), np.uint8)
    dot[100, 100, 3] = 255  # one stray pixel
    with pytest.raises(BlankImageError):
        prepare_image(dot)


def test_thin_and_border_touching_strokes_still_work():
    rgba = np.zeros((280, 280, 4), np.uint8)
    rgba[0:280, 139:141, 3] = 255  # a 2-px vertical line touching top and bottom: a "1"
    image = prepare_image(rgba).image
    assert image.max() == pytest.approx(1.0) and (image > 0.5).sum() >= 20
    rows = np.flatnonzero(image.max(axis=1) > 0)
    assert rows[0] >= 3 and rows[-1] <= 24  # 20 px tall, inside the 28 px frame


def test_bad_shapes_say_what_is_allowed():
    with pytest.raises(ValueError, match=r"image must have shape \(H, W\), \(H, W, 3\) or \(H, W, 4\)"):
        ink_from_image(np.zeros((10, 10, 2)))
    with pytest.raises(ValueError, match="at least 8×8"):
        ink_from_image(np.zeros((4, 4)))


def test_load_image_file_reads_png_and_jpeg(tmp_path, mnist):
    digit = mnist.x_test[0]
    Image.fromarray(255 - _upscale(digit, 100)).save(tmp_path / "d.jpg", quality=90)
    Image.fromarray(_upscale(digit, 100)).save(tmp_path / "d.png")
    for name in ("d.jpg", "d.png"):
        prepared = prepare_image(load_image_file(tmp_path / name)).image
        assert _aligned_error(prepared, digit) < 0.05


@pytest.mark.parametrize("shape", [(200, 50), (50, 200), (7, 3), (400, 400)])
def test_longer_side_becomes_20_px_keeping_aspect_and_grey_levels(shape):
    from digitlab.preprocessing import _fit_longer_side

    ink = np.zeros(shape, np.float32)
    ink[int(shape[0] * 0.27): int(shape[0] * 0.73) + 1, :] = 1.0  # a band: its edges must come out grey
    out = _fit_longer_side(ink, 20)
    h, w = shape
    assert max(out.shape) == 20 and abs(out.shape[0] / out.shape[1] - h / w) < 0.2 + 1 / min(out.shape)
    assert out.max() == pytest.approx(1.0) and out.min() >= 0
    if min(shape) >= 40:
        assert ((out > 0.05) & (out < 0.95)).any()  # anti-aliased, like MNIST


def test_drawing_touching_every_border_still_works():
    rgba = np.zeros((280, 280, 4), np.uint8)
    rgba[:, :12, 3] = rgba[:, -12:, 3] = rgba[:12, :, 3] = rgba[-12:, :, 3] = 255  # a frame: a fat "0"
    image = prepare_image(rgba).image
    rows, cols = np.flatnonzero(image.max(1) > 0.5), np.flatnonzero(image.max(0) > 0.5)
    assert (rows[0], rows[-1], cols[0], cols[-1]) == (4, 23, 4, 23)  # the 20×20 box, centred
    assert image[14, 14] == 0  # the hole stays a hole


def test_noise_only_is_rejected_but_a_digit_with_specks_is_not(mnist):
    rng = np.random.default_rng(0)
    noise = np.zeros((280, 280, 4), np.uint8)
    noise[..., 3] = (rng.random((280, 280)) < 0.01) * 255  # 1% of pixels: ~780 specks
    with pytest.raises(BlankImageError, match="scattered specks"):
        prepare_image(noise)
    digits, _ = digit_images(mnist)
    for digit in digits:  # every real digit, even drawn in pieces, passes; so does one with a few stray dots
        rgba = _canvas(digit)
        rgba[5, 5, 3] = rgba[390, 390, 3] = rgba[5, 390, 3] = 255
        assert prepare_image(rgba).image.max() > 0.9


def test_most_parts_never_counts_fewer_parts_than_scipy(mnist):
    rng = np.random.default_rng(0)
    masks = [rng.random((60, 80)) < density for density in (0.02, 0.1, 0.3, 0.5, 0.7)]
    masks += [digit > 0.2 for digit in scale_images(mnist.x_test[:300])]
    for mask in masks:
        assert _most_parts(mask) >= ndimage.label(mask)[1]
    u = np.zeros((5, 5), bool)
    u[:, 0] = u[:, 4] = u[4] = True  # one part, two tops
    two_dots = np.zeros((5, 5), bool)
    two_dots[1, 1] = two_dots[3, 3] = True  # diagonal neighbours are apart (4-connectivity, like ndimage.label)
    assert [_most_parts(m) for m in (np.zeros((5, 5), bool), u, two_dots, np.ones((5, 5), bool))] == [0, 2, 2, 1]


@pytest.mark.parametrize("pixel", [(0, 0), (39, 39)])  # the first pixel, or any other
def test_a_background_is_transparent_from_any_pixel_under_99_percent_opacity(pixel):
    rgba = np.zeros((40, 40, 4), np.uint8)
    rgba[..., 3] = 255
    rgba[10:30, 18:22, :3] = 255  # a white "1" on opaque black: ink is luminance
    for alpha, transparent in ((253, False), (252, True)):  # 0.99 × 255 = 252.45
        rgba[pixel + (3,)] = alpha
        strided = np.zeros((40, 80, 4), np.uint8)[:, ::2]  # the same pixels, not contiguous: read the other way
        strided[:] = rgba
        for image in (rgba, strided):
            ink = ink_from_image(image)
            assert bool(ink[20, 5] == 1.0) is transparent  # through alpha, the opaque black background is ink
            assert ink[20, 20] == 1.0
        # prepare_image reads a contiguous canvas's alpha from its 32-bit words: the same decision, the same input
        np.testing.assert_array_equal(prepare_image(rgba).image, prepare_image(strided).image)


def test_a_drawn_digit_is_prepared_without_importing_scipy():
    script = ("import sys, numpy as np; from digitlab.preprocessing import prepare_image; "
              "c = np.zeros((280, 280, 4), np.uint8); c[60:80, 70:210] = 255; "  # a 7, white on transparent
              "c[60:230, 190:210] = 255; prepare_image(c); print(sorted(m for m in sys.modules if 'scipy' in m))")
    assert subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True,
                          cwd=ROOT).stdout.strip() == "[]"


def _data_url(image: Image.Image, fmt="PNG") -> str:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def test_read_canvas_returns_the_pixels_the_page_sent(mnist):
    rgba = np.zeros((280, 280, 4), np.uint8)
    rgba[..., 3] = 255
    rgba[40:240, 40:240, :3] = _upscale(mnist.x_test[0], 200)[..., None]
    np.testing.assert_array_equal(read_canvas(_data_url(Image.fromarray(rgba)), size=280), rgba)


@pytest.mark.parametrize("value, message", [
    (None, "not a PNG data URL"),
    ("data:image/jpeg;base64,AAAA", "not a PNG data URL"),
    ("data:image/png;base64,not base64!", "not a readable PNG"),
    ("data:image/png;base64," + base64.b64encode(b"hello").decode(), "not a readable PNG"),
    ("data:image/png;base64," + "A" * 700_000, "larger than a 280×280"),
])
def test_read_canvas_refuses_what_the_canvas_does_not_send(value, message):
    with pytest.raises(ValueError, match=message):
        read_canvas(value, size=280)


def _png_header(width: int, height: int) -> bytes:
    """A PNG's signature and IHDR chunk for an 8-bit RGBA image of that size (CRC not checked before decoding)."""
    ihdr = width.to_bytes(4, "big") + height.to_bytes(4, "big") + bytes([8, 6, 0, 0, 0])
    return b"\x89PNG\r\n\x1a\n" + len(ihdr).to_bytes(4, "big") + b"IHDR" + ihdr + b"\0\0\0\0"


@pytest.mark.parametrize("width, height", [(281, 280), (20_000, 20_000), (280, 3)])
def test_read_canvas_refuses_other_sizes_before_decoding(width, height):
    """The header alone decides: the pixels after it are garbage, which a decoder would call unreadable, and a
    20,000×20,000 header would be a decompression bomb."""
    data = _png_header(width, height) + b"\0\0\0\x10IDAT" + b"garbage!" * 2
    with pytest.raises(ValueError, match="not a 280×280 PNG"):
        read_canvas("data:image/png;base64," + base64.b64encode(data).decode(), size=280)


def test_read_canvas_refuses_a_jpeg_and_a_broken_png():
    with pytest.raises(ValueError, match="not a readable PNG"):
        read_canvas(_data_url(Image.new("RGB", (280, 280)), "JPEG"), size=280)
    data = _png_header(280, 280) + b"\0\0\0\x10IDAT" + b"garbage!" * 2
    with pytest.raises(ValueError, match="not a readable PNG"):
        read_canvas("data:image/png;base64," + base64.b64encode(data).decode(), size=280)
