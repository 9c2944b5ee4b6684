"""Numpy pictures: crisp enlargement, grey as the model sees it, saliency colours where (and only where) it matters."""

import numpy as np

from digitlab import pictures


def test_enlarge_repeats_pixels():
    image = np.arange(4, dtype=np.uint8).reshape(2, 2)
    big = pictures.enlarge(image, 3)
    assert big.shape == (6, 6) and (big[:3, :3] == 0).all() and (big[3:, 3:] == 3).all()
    assert pictures.enlarge(np.zeros((2, 2, 3)), 2).shape == (4, 4, 3)


def test_grey_maps_zero_to_one_onto_0_255():
    out = pictures.grey(np.array([[0.0, 0.5], [1.0, 2.0]], np.float32), scale=2)
    assert out.dtype == np.uint8 and out.shape == (4, 4)
    assert out[0, 0] == 0 and out[0, 2] == 127 and out[2, 0] == 255 and out[2, 2] == 255


def test_saliency_is_red_where_it_helps_blue_where_it_hurts_and_plain_where_it_is_small():
    image = np.zeros((28, 28), np.float32)
    image[10:18, 12:16] = 1
    saliency = np.zeros((28, 28), np.float32)
    saliency[10:18, 12:14], saliency[10:18, 14:16] = 0.5, -0.25
    saliency[10, 12] = 0.01  # under 5% of the largest value: shows the plain input
    rgb = pictures.saliency_rgb(image, saliency, scale=1)
    assert rgb.shape == (28, 28, 3) and rgb.dtype == np.uint8
    red, blue, faint, background = rgb[11, 12], rgb[11, 15], rgb[10, 12], rgb[0, 0]
    assert red[0] > red[2] and blue[2] > blue[0]
    assert faint[0] == faint[1] == faint[2] > 0 and (background == 0).all()


def test_preparation_strip_holds_the_three_steps_in_their_tiles():
    cropped = np.ones((200, 100), np.float32)  # scaled down to fit 56 px: 200 / 4 = 50 rows, 25 columns
    resized = np.full((20, 10), 0.5, np.float32)
    image = np.zeros((28, 28), np.float32)
    image[14, 14] = 1
    strip = pictures.preparation_strip(cropped, resized, image, tile=56, gap=6)
    assert strip.shape == (56, 180) and strip.dtype == np.uint8
    assert (strip[3:53, 15:40] == 255).all() and strip[0, 0] == strip[28, 40] == 0  # cropped ink, centred in tile 1
    assert strip[28, 62 + 28] == 127 and strip[0, 62] == 0  # 20 px step, doubled, centred in tile 2
    assert (strip[28:30, 124 + 28:124 + 30] == 255).all() and strip[0, 124] == 0  # the input pixel, doubled
    assert strip[0, 58] == strip[0, 120] == 89  # grey separators
