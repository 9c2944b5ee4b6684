"""My drawings: durable, validated, exportable; accuracy of a real model on it."""

import numpy as np
import pytest
from PIL import Image

from digitlab.drawings import DrawingSet, accuracy_on
from digitlab.preprocessing import BlankImageError
from tests.conftest import digit_images


def canvas_of(digit):
    rgba = np.zeros((280, 280, 4), np.uint8)
    rgba[40:240, 40:240, 3] = np.asarray(Image.fromarray(digit).resize((200, 200), Image.Resampling.BILINEAR))
    return rgba


def test_drawings_survive_a_restart_and_keep_raw_and_prepared(tmp_path, mnist):
    digits, labels = digit_images(mnist)
    first = DrawingSet("alice", folder=tmp_path)
    for digit, label in zip(digits[:3], labels[:3]):
        first.add(canvas_of(digit), int(label))
    again = DrawingSet("alice", folder=tmp_path)  # a new process would see the same files
    stored = again.list()
    assert [d.label for d in stored] == [0, 1, 2]
    assert stored[0].image.shape == (28, 28) and stored[0].image.max() == pytest.approx(1)
    raw = np.asarray(Image.open(__import__("io").BytesIO(stored[0].raw_png)))
    np.testing.assert_array_equal(raw, canvas_of(digits[0]))
    assert not list(tmp_path.glob(".*tmp*"))  # no temporary files left behind
    again.remove(stored[1].drawing_id)
    assert [d.label for d in again.list()] == [0, 2]


@pytest.mark.parametrize("label", [10, -1, 3.0, "7", True, None])
def test_bad_labels_are_rejected(tmp_path, mnist, label):
    with pytest.raises(ValueError, match="label must be a digit 0-9"):
        DrawingSet(folder=tmp_path).add(canvas_of(mnist.x_test[0]), label)
    assert DrawingSet(folder=tmp_path).list() == []


def test_blank_drawings_and_bad_owners_are_rejected(tmp_path):
    with pytest.raises(BlankImageError):
        DrawingSet(folder=tmp_path).add(np.zeros((280, 280, 4), np.uint8), 3)
    with pytest.raises(ValueError, match="owner must be"):
        DrawingSet("../etc")


def test_export_import_round_trip_and_bad_files(tmp_path, mnist):
    digits, labels = digit_images(mnist)
    source = DrawingSet(folder=tmp_path / "a")
    for digit, label in zip(digits, labels):
        source.add(canvas_of(digit), int(label))
    blob = source.export_bytes()
    target = DrawingSet(folder=tmp_path / "b")
    assert target.import_bytes(blob) == (10, 0)
    assert target.import_bytes(blob) == (0, 10) and len(target.list()) == 10  # the same file again: nothing twice
    assert source.import_bytes(blob) == (0, 10)  # a set's own export
    x_a, y_a = source.arrays()
    x_b, y_b = target.arrays()
    np.testing.assert_array_equal(y_a, y_b)
    np.testing.assert_allclose(x_a, x_b)
    assert [d.raw_png for d in target.list()] == [d.raw_png for d in source.list()]
    with pytest.raises(ValueError, match="not a DigitLab drawings file"):
        target.import_bytes(b"garbage")
    bad = __import__("io").BytesIO()
    np.savez(bad, labels=np.array([12]), images=np.zeros((1, 28, 28), np.float32), created=np.zeros(1),
             raw_0=np.zeros(3, np.uint8))
    with pytest.raises(ValueError, match="label must be a digit 0-9, got 12"):
        target.import_bytes(bad.getvalue())
    assert len(target.list()) == 10  # nothing half-imported


def _drawings_file(**changes) -> bytes:
    """A two-drawing export, with fields replaced by `changes`."""
    ink = np.zeros((2, 28, 28), np.float32)
    ink[:, 10:18, 13:15] = 1.0  # two "1"s
    png = np.frombuffer(b"\x89PNG\r\n\x1a\n" + bytes(20), np.uint8)
    fields = {"labels": np.array([1, 1]), "images": ink, "created": np.array([1.0, 2.0]), "raw_0": png, "raw_1": png}
    buffer = __import__("io").BytesIO()
    np.savez(buffer, **{k: v for k, v in {**fields, **changes}.items() if v is not None})  # None: left out
    return buffer.getvalue()


@pytest.mark.parametrize("changes, message", [
    (dict(labels=np.int64(3)), "not a DigitLab drawings file"),  # one number, not a list
    (dict(created=np.array(["1", "x"])), "not a DigitLab drawings file"),
    (dict(images=np.zeros((2, 28, 28), np.float32)), "drawing 1 of the file is blank"),
    (dict(created=None), r"not a DigitLab drawings file \(it has no created\)"),
    (dict(raw_1=None), r"not a DigitLab drawings file \(a drawing's canvas \(raw_N\) is missing\)"),
    (dict(raw_1=np.zeros(30, np.uint8)), "drawing 2 of the file has no PNG of its canvas"),
    (dict(labels=np.zeros(0, np.int64), images=np.zeros((0, 28, 28), np.float32), created=np.zeros(0)),
     "the file holds no drawings"),
])
def test_a_bad_drawings_file_is_refused_whole_with_a_reason(tmp_path, changes, message):
    drawings = DrawingSet(folder=tmp_path)
    assert drawings.import_bytes(_drawings_file()) == (2, 0)  # the file as exported is fine
    with pytest.raises(ValueError, match=message):
        drawings.import_bytes(_drawings_file(**changes))
    assert len(drawings.list()) == 2  # nothing of the bad file was added


def test_accuracy_of_the_shipped_cnn_on_a_drawing_set(tmp_path, mnist):
    from digitlab.models import make_predictor
    from digitlab.modelfiles import SHIPPED_DIR, load_model_file

    digits, labels = digit_images(mnist)
    drawings = DrawingSet(folder=tmp_path)
    for digit, label in zip(digits, labels):
        drawings.add(canvas_of(digit), int(label))
    drawings.add(canvas_of(digits[1]), 7)  # a deliberately wrong label
    predict = make_predictor(load_model_file(SHIPPED_DIR / "cnn.keras"))
    images, y = drawings.arrays()
    expected = float((predict(images).argmax(1) == y).mean())
    assert accuracy_on(predict, images, y) == expected and expected == pytest.approx(10 / 11)
    assert accuracy_on(predict, *DrawingSet(folder=tmp_path / "empty").arrays()) is None
