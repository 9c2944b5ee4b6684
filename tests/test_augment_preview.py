"""The augmentation preview: copies made by training's own layers, stored with the shipped models, picked at random."""

import numpy as np

from digitlab import augment_preview
from digitlab.augment_preview import DIGITS, VARIANTS, load_preview, make_preview, pick


def _centre(images):
    """Ink-weighted centre (row, column) of each (…, 28, 28) image."""
    images = np.asarray(images, np.float64)
    grid = np.arange(28)
    mass = images.sum(axis=(-2, -1))
    return np.stack([(images.sum(-1) * grid).sum(-1) / mass, (images.sum(-2) * grid).sum(-1) / mass], axis=-1)


def test_copies_are_augmented_like_training_and_stay_the_same_digit(mnist):
    originals = mnist.x_train[:4]
    copies = make_preview(originals, variants=16, seed=1)
    assert copies.shape == (4, 16, 28, 28) and copies.dtype == np.uint8
    changed = np.abs(copies.astype(int) - originals[:, None].astype(int)).sum(axis=(-2, -1)) > 0
    assert changed.mean() > 0.9  # training sees a different copy at (nearly) every step
    assert len({c.tobytes() for c in copies[0]}) == 16  # and no two steps see the same one
    shift = np.abs(_centre(copies) - _centre(originals)[:, None]).max()
    assert shift <= 0.1 * 28 + 2  # translation up to 10%, plus what rotation and zoom move the centre
    ink = copies.astype(float).sum(axis=(-2, -1)) / originals.astype(float).sum(axis=(-2, -1))[:, None]
    assert 0.3 < ink.min() and ink.max() < 3  # thinner or thicker, never erased or smeared over the square


def test_the_shipped_preview_holds_every_digit():
    originals, copies = load_preview()
    assert originals.shape == (DIGITS, 28, 28) and copies.shape == (DIGITS, VARIANTS, 28, 28)
    assert augment_preview.PREVIEW_FILE.stat().st_size < 400_000  # it travels with the repository
    brightest = copies.reshape(DIGITS, VARIANTS, -1).max(axis=-1)
    assert (brightest > 50).all() and (brightest > 100).mean() > 0.9  # thinning fades a thin 1, never erases it


def test_pick_takes_distinct_copies_of_each_digit():
    _, copies = load_preview()
    chosen = pick(copies, per_digit=7, rng=np.random.default_rng(0))
    assert chosen.shape == (DIGITS, 7, 28, 28)
    for digit in range(DIGITS):
        assert len({c.tobytes() for c in chosen[digit]}) == 7
        stored = {c.tobytes() for c in copies[digit]}
        assert all(c.tobytes() in stored for c in chosen[digit])
    again = pick(copies, per_digit=7, rng=np.random.default_rng(1))
    assert not np.array_equal(chosen, again)  # Redraw shows other copies
