""""My drawings": a personal, labelled set of drawings, stored durably next to the run store.

One file per drawing, `<home>/drawings/<owner>/<id>.npz`, holding the raw canvas as PNG bytes, the prepared 28×28
input and the label; written atomically (temporary file, then rename). A whole set exports to one `.npz` file and
imports back, read with `allow_pickle=False` and checked field by field.

The public demo bounds its disk by the number of sets, and never by deleting a set its visitor can still open: a
full demo keeps a new visitor's drawing out instead (so a script cannot push out everyone's sets by arriving as
many new visitors), and a set goes only once no cookie can reach it (`expire_drawing_sets`).
"""

from __future__ import annotations

import io
import os
import re
import secrets
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from .data import home_dir
from .preprocessing import PNG_SIGNATURE, prepare_image

_OWNER = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
MAX_IMPORT = 5000  # drawings in one imported file


@dataclass(frozen=True)
class Drawing:
    drawing_id: str
    label: int  # the digit the user says it is
    image: np.ndarray  # (28, 28) float32 in [0, 1]: what the models see
    raw_png: bytes  # the canvas as drawn
    created: float


class DrawingSet:
    """One visitor's drawings in `folder` (default <home>/drawings/<owner>).

    max_sets, max_sets_per_network : a new set (its first drawing) is refused while the folder's parent holds that
        many sets, or that many made from `network` (`identity.network_of`; "" counts no network). None: no bound.
    """

    def __init__(self, owner: str = "local", *, folder: Path | None = None, max_drawings: int = 10_000,
                 network: str = "", max_sets: int | None = None, max_sets_per_network: int | None = None):
        if not _OWNER.match(owner):
            raise ValueError(f"owner must be 1-64 letters, digits, '-' or '_', got {owner[:80]!r}")
        self.folder = Path(folder or home_dir() / "drawings" / owner)
        self.max_drawings = max_drawings
        self.network, self.max_sets, self.max_sets_per_network = network, max_sets, max_sets_per_network

    def add(self, raw: np.ndarray, label: int) -> Drawing:
        """Prepare `raw` (any image `prepare_image` takes), label it, store it. Raises ValueError/BlankImageError."""
        label = _check_label(label)
        self._check_room(1)
        image = prepare_image(raw).image
        buffer = io.BytesIO()
        Image.fromarray(np.asarray(raw, np.uint8)).save(buffer, format="PNG")
        drawing = Drawing(_new_id(), label, image, buffer.getvalue(), time.time())
        self._write(drawing)
        return drawing

    def list(self) -> list[Drawing]:
        """Every stored drawing, oldest first (files that cannot be read are skipped)."""
        out = []
        for path in sorted(self.folder.glob("*.npz")) if self.folder.exists() else []:
            try:
                with np.load(path, allow_pickle=False) as f:
                    out.append(Drawing(path.stem, int(f["label"]), f["image"].astype(np.float32),
                                       f["raw_png"].tobytes(), float(f["created"])))
            except (OSError, ValueError, KeyError):
                continue
        return sorted(out, key=lambda d: d.created)

    def remove(self, drawing_id: str) -> None:
        path = self.folder / f"{drawing_id}.npz"
        if path.parent != self.folder or not path.exists():
            raise ValueError(f"no drawing {drawing_id[:40]!r} in this set")
        path.unlink()

    def arrays(self, drawings: list[Drawing] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(images (n, 28, 28) float32, labels (n,) int64) of the set (or of `drawings`, its `list()` already read)."""
        drawings = self.list() if drawings is None else drawings
        if not drawings:
            return np.zeros((0, 28, 28), np.float32), np.zeros(0, np.int64)
        return np.stack([d.image for d in drawings]), np.array([d.label for d in drawings], np.int64)

    def export_bytes(self) -> bytes:
        """The whole set as one .npz file."""
        drawings = self.list()
        fields = {"labels": np.array([d.label for d in drawings], np.int64),
                  "images": np.stack([d.image for d in drawings]) if drawings else np.zeros((0, 28, 28), np.float32),
                  "created": np.array([d.created for d in drawings], np.float64)}
        fields.update({f"raw_{i}": np.frombuffer(d.raw_png, np.uint8) for i, d in enumerate(drawings)})
        buffer = io.BytesIO()
        np.savez_compressed(buffer, **fields)
        return buffer.getvalue()

    def import_bytes(self, blob: bytes) -> tuple[int, int]:
        """Add every drawing of an exported file that the set does not hold yet (same moment made and same canvas:
        a set's own export imported again); returns (added, already held). Raises ValueError saying what is wrong.

        The file's sizes are checked before anything is decompressed: a small .npz can unpack to gigabytes.
        """
        _check_sizes(blob)
        try:
            with np.load(io.BytesIO(blob), allow_pickle=False) as f:
                missing = [key for key in ("labels", "images", "created") if key not in f.files]
                if missing:
                    raise ValueError(f"it has no {' or '.join(missing)}")
                labels, images = f["labels"], f["images"].astype(np.float32)
                created = f["created"].astype(np.float64)
                if labels.ndim != 1 or created.ndim != 1 or images.ndim != 3:
                    raise ValueError("labels and created must be lists, images a stack of 28×28 images")
                if not all(f"raw_{i}" in f.files for i in range(len(labels))):
                    raise ValueError("a drawing's canvas (raw_N) is missing")
                raws = [f[f"raw_{i}"].tobytes() for i in range(len(labels))]
        except (OSError, ValueError, KeyError, EOFError, TypeError) as error:
            raise ValueError(f"not a DigitLab drawings file ({error}); export one from the Draw page") from None
        if not (len(labels) == len(images) == len(created)) or images.shape[1:] != (28, 28):
            raise ValueError(f"drawings file is inconsistent: {len(labels)} labels, images of shape {images.shape}")
        if not len(labels):
            raise ValueError("the file holds no drawings")
        if len(labels) > MAX_IMPORT:
            raise ValueError(f"a drawings file holds at most {MAX_IMPORT} drawings, got {len(labels)}")
        if not (np.isfinite(images).all() and images.min() >= 0 and images.max() <= 1):
            raise ValueError("drawings file images must hold values in [0, 1]")
        for label in labels:
            _check_label(label)
        blank = np.flatnonzero(images.reshape(len(images), -1).max(axis=1) == 0)
        if blank.size:
            raise ValueError(f"drawing {blank[0] + 1} of the file is blank")
        not_png = [i + 1 for i, raw in enumerate(raws) if not raw.startswith(PNG_SIGNATURE)]
        if not_png:
            raise ValueError(f"drawing {not_png[0]} of the file has no PNG of its canvas")
        held = {(d.created, d.raw_png) for d in self.list()}
        new = [row for row in zip(labels, images, raws, created) if (float(row[3]), row[2]) not in held]
        self._check_room(len(new))
        written = []
        try:  # every drawing or none
            for label, image, raw, when in new:
                written.append(Drawing(_new_id(), int(label), image, raw, float(when)))
                self._write(written[-1])
        except (OSError, ValueError):
            for drawing in written[:-1]:
                (self.folder / f"{drawing.drawing_id}.npz").unlink(missing_ok=True)
            raise
        return len(new), len(labels) - len(new)

    def _check_room(self, count: int) -> None:
        stored = len(list(self.folder.glob("*.npz"))) if self.folder.exists() else 0
        if stored + count > self.max_drawings:
            raise ValueError(f"a drawing set holds at most {self.max_drawings} drawings and this one has {stored}; "
                             "export it, then remove some")
        if self.folder.exists():
            return
        others = [p for p in self.folder.parent.iterdir() if p.is_dir()] if self.folder.parent.exists() else []
        if self.max_sets is not None and len(others) >= self.max_sets:
            raise ValueError(f"the demo keeps drawings for {self.max_sets} visitors and all of those places are "
                             "taken; yours cannot be kept now, though both models still answer it. Try again in a "
                             "few days, or run DigitLab on your own machine")
        if self.network and self.max_sets_per_network is not None and sum(
                _network_of_set(p) == self.network for p in others) >= self.max_sets_per_network:
            raise ValueError(f"the demo keeps drawings for {self.max_sets_per_network} visitors from one network "
                             "and yours has that many; yours cannot be kept now, though both models still answer it")

    def _write(self, drawing: Drawing) -> None:
        """Temporary file, then rename: a crash or a full disk leaves the old set, never half a drawing."""
        final = self.folder / f"{drawing.drawing_id}.npz"
        tmp = self.folder / f".{drawing.drawing_id}.{os.getpid()}.tmp.npz"
        try:
            if not self.folder.exists():
                self.folder.mkdir(parents=True, exist_ok=True)
                (self.folder / _NETWORK).write_text(self.network)
            np.savez(tmp, label=np.int64(drawing.label), image=drawing.image,
                     raw_png=np.frombuffer(drawing.raw_png, np.uint8), created=np.float64(drawing.created))
            os.link(tmp, final)  # unlike a rename, never replaces an existing drawing
            tmp.unlink()
        except FileExistsError:
            tmp.unlink(missing_ok=True)
            raise ValueError(f"a drawing {drawing.drawing_id} is already in this set; add it again") from None
        except OSError as error:
            tmp.unlink(missing_ok=True)
            raise OSError(error.errno, f"could not save the drawing in {self.folder} ({error.strerror or error}); "
                                       "free some disk space and add it again") from None


def expire_drawing_sets(*, max_age: float, folder: Path | None = None) -> list[str]:
    """Delete the drawing sets unchanged for `max_age` seconds (the demo: a visitor's cookie's lifetime, after which
    nobody can open them); returns their owners."""
    import shutil  # noqa: PLC0415

    root = Path(folder or home_dir() / "drawings")
    old = [p for p in root.iterdir() if p.is_dir() and p.stat().st_mtime < time.time() - max_age] \
        if root.exists() else []
    for path in old:
        shutil.rmtree(path, ignore_errors=True)
    return sorted(p.name for p in old)


_NETWORK = ".network"  # a set's file naming the network it was made from (keyed, see `identity.network_of`)


def _network_of_set(folder: Path) -> str:
    try:
        return (folder / _NETWORK).read_text()
    except OSError:
        return ""


def accuracy_on(predict, images: np.ndarray, labels: np.ndarray) -> float | None:
    """Fraction of `images` (n, 28, 28) whose predicted digit equals `labels`; None for an empty set."""
    if len(labels) == 0:
        return None
    return float((np.asarray(predict(images)).argmax(axis=1) == labels).mean())


def _new_id() -> str:
    """A drawing id: the time for order, 64 random bits so two drawings made in the same second never collide."""
    return f"{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(8)}"


MAX_IMPORT_BYTES = 64 * 1024**2  # unpacked size of an imported file: 5,000 drawings need ~20 MB


def _check_sizes(blob: bytes) -> None:
    """Refuse an import whose unpacked size (read from the zip's directory, nothing decompressed) is too large."""
    try:
        with zipfile.ZipFile(io.BytesIO(blob)) as archive:
            members = archive.infolist()
    except (zipfile.BadZipFile, ValueError, OSError) as error:
        raise ValueError(f"not a DigitLab drawings file ({error}); export one from the Draw page") from None
    unpacked = sum(member.file_size for member in members)
    if unpacked > MAX_IMPORT_BYTES or len(members) > 2 * MAX_IMPORT + 10:
        raise ValueError(f"a drawings file may unpack to at most {MAX_IMPORT_BYTES // 1024**2} MB in at most "
                         f"{MAX_IMPORT} drawings, this one unpacks to {unpacked / 1024**2:.0f} MB in {len(members)} "
                         "parts; export a smaller set")


def _check_label(label) -> int:
    if isinstance(label, (bool, np.bool_)) or not isinstance(label, (int, np.integer)) or not 0 <= int(label) <= 9:
        raise ValueError(f"label must be a digit 0-9, got {label!r}")
    return int(label)
