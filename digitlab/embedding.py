"""Where a digit sits: a model's last hidden layer for a fixed 5,000 MNIST test digits, mapped to 2-D two ways.

PCA is a linear projection, so a new drawing is projected exactly like the digits were. t-SNE keeps neighbours
together but cannot place points it was not fitted on: a drawing goes to the distance-weighted mean of its 8 nearest
test digits (nearest in the hidden layer itself), the way openTSNE starts placing new points.

The hidden layer and its PCA are made with the model (`pipeline.run_training`, `export.save_model_with_card`): a
forward pass through the serving graph and a PCA, a second or two. t-SNE takes ~20–40 s of CPU, so it is made once,
when first asked for, by `python -m digitlab.embedding MODEL_ID` in a separate process. Both are kept beside the
model: `models/<id>.embedding.npz` and `models/<id>.tsne.npz` for shipped models, the artifacts
`model/embedding.npz` and `model/tsne.npz` for runs. Reading them and placing a drawing needs numpy only; making them
needs scikit-learn, which the dashboard's server never imports.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .data import PROJECT_DIR, home_dir
from .modelfiles import SHIPPED, SHIPPED_DIR, ModelLoadError

SAMPLE, SAMPLE_SEED = 5000, 0  # the fixed test digits every model's map shows
NEIGHBOURS = 8
METHODS = ("pca", "tsne")
FILES = ("embedding", "tsne")  # <name>.npz beside the model
DONE = "done"  # the last line a background maker writes when it succeeds


@dataclass(frozen=True)
class Embedding:
    indices: np.ndarray  # (n,) int: positions in the MNIST test set
    labels: np.ndarray  # (n,) int: true digits
    predicted: np.ndarray  # (n,) int: the model's digits (mistakes: predicted != labels)
    hidden: np.ndarray  # (n, units) float16: the last hidden layer
    pca_mean: np.ndarray  # (units,) float32
    pca_components: np.ndarray  # (2, units) float32
    pca_variance: np.ndarray  # (2,) float32: share of the variance along each axis
    pca: np.ndarray  # (n, 2) float32
    tsne: np.ndarray | None = None  # (n, 2) float32, once made

    def positions(self, method: str) -> np.ndarray:
        """(n, 2) map positions of the test digits."""
        if method not in METHODS:
            raise ValueError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
        if method == "tsne" and self.tsne is None:
            raise ValueError("this embedding has no t-SNE yet; make it with `python -m digitlab.embedding MODEL_ID`")
        return self.pca if method == "pca" else self.tsne


def sample_indices() -> np.ndarray:
    """The fixed 5,000 test-set positions (sorted), the same for every model."""
    return np.sort(np.random.default_rng(SAMPLE_SEED).choice(10_000, SAMPLE, replace=False))


# ---------------------------------------------------------------------------------------------------------------
# Placing a drawing (numpy only: the dashboard does this on every stroke)
# ---------------------------------------------------------------------------------------------------------------

def place(embedding: Embedding, hidden: np.ndarray, *, method: str) -> tuple[np.ndarray, np.ndarray]:
    """Where a drawing sits on the map, and its nearest test digits.

    hidden : (units,) the drawing's last hidden layer (ServingModel.run(...)["hidden"][0]).
    Returns (position (2,), neighbours (8,) row indices of the embedding, nearest first).
    PCA: the exact projection. t-SNE: the mean of the neighbours' positions weighted by 1 / distance, so a drawing
    identical to a test digit lands on it.
    """
    positions = embedding.positions(method)
    query = np.asarray(hidden, np.float16).astype(np.float32).ravel()  # rounded as the stored digits were
    stored, squared = _prepared(embedding)
    rough = squared - 2 * stored @ query  # ‖stored − query‖² − ‖query‖², for ranking only
    neighbours = np.argpartition(rough, NEIGHBOURS)[:NEIGHBOURS]
    distances = np.linalg.norm(stored[neighbours] - query, axis=1)  # exact, so a digit's own distance is 0
    order = np.argsort(distances)
    neighbours, distances = neighbours[order], distances[order]
    if method == "pca":
        position = (np.asarray(hidden, np.float32).ravel() - embedding.pca_mean) @ embedding.pca_components.T
    else:
        weights = 1.0 / np.maximum(distances, 1e-12)
        position = (weights[:, None] * positions[neighbours]).sum(axis=0) / weights.sum()
    return position.astype(np.float32), neighbours


_PREPARED: dict = {}


def _prepared(embedding: Embedding) -> tuple[np.ndarray, np.ndarray]:
    """The stored hidden layer as float32 and its squared norms, made once per embedding (placing runs per stroke)."""
    key = id(embedding.hidden)
    if key not in _PREPARED:
        if len(_PREPARED) >= 8:
            _PREPARED.clear()
        stored = embedding.hidden.astype(np.float32)
        _PREPARED[key] = (embedding.hidden, stored, (stored ** 2).sum(axis=1))  # holding hidden keeps its id valid
    return _PREPARED[key][1:]


# ---------------------------------------------------------------------------------------------------------------
# Making one (scikit-learn: the training worker, the CLI or a separate process, never the dashboard's server)
# ---------------------------------------------------------------------------------------------------------------

def make_embedding(model, images: np.ndarray, labels: np.ndarray, indices: np.ndarray) -> Embedding:
    """`model`'s last hidden layer for `images`, and its PCA (no t-SNE: see `make_tsne`).

    model : a serving.ServingModel. images : float32 (n, 28, 28) in [0, 1]; labels, indices : (n,).
    """
    from sklearn.decomposition import PCA  # noqa: PLC0415

    outputs = [model.run(images[i:i + 100], outputs=["hidden", "probabilities"]) for i in range(0, len(images), 100)]
    hidden = np.concatenate([o["hidden"] for o in outputs]).astype(np.float32)  # (n, units)
    pca = PCA(2, random_state=0).fit(hidden)
    return Embedding(
        indices=np.asarray(indices, np.int32), labels=np.asarray(labels, np.uint8),
        predicted=np.concatenate([o["probabilities"] for o in outputs]).argmax(axis=1).astype(np.uint8),
        hidden=hidden.astype(np.float16), pca_mean=pca.mean_.astype(np.float32),
        pca_components=pca.components_.astype(np.float32),
        pca_variance=pca.explained_variance_ratio_.astype(np.float32), pca=pca.transform(hidden).astype(np.float32))


def make_tsne(embedding: Embedding, *, seed: int = 0, n_jobs: int = 1) -> np.ndarray:
    """t-SNE of the stored hidden layer: (n, 2) float32.

    scikit-learn's Barnes-Hut t-SNE (perplexity 30, PCA start) on the first 50 principal components, as is usual,
    for 500 iterations: on the shipped CNN, 1,000 gave the same 5-neighbour accuracy in 2-D (99.3%) for twice the
    CPU time, and openTSNE's FFT method was no faster on 5,000 points (measured in benchmarks/RESULTS.md).
    """
    from sklearn.decomposition import PCA  # noqa: PLC0415
    from sklearn.manifold import TSNE  # noqa: PLC0415
    from threadpoolctl import threadpool_limits  # noqa: PLC0415

    hidden = embedding.hidden.astype(np.float32)
    with threadpool_limits(n_jobs):  # BLAS threads spinning on a busy 2-core host cost 9× the CPU (measured)
        reduced = PCA(min(50, *hidden.shape), random_state=seed).fit_transform(hidden)
        perplexity = min(30.0, (len(hidden) - 1) / 3)
        return TSNE(2, perplexity=perplexity, init="pca", max_iter=500, random_state=seed,
                    n_jobs=n_jobs).fit_transform(reduced).astype(np.float32)


def make_model_embedding(serving_path, *, data=None) -> Embedding:
    """The embedding of the serving graph at `serving_path` on the fixed 5,000 test digits (data: MNIST, loaded
    when None)."""
    from .data import load_mnist  # noqa: PLC0415
    from .preprocessing import scale_images  # noqa: PLC0415
    from .serving import ServingModel  # noqa: PLC0415

    data, indices = data or load_mnist(), sample_indices()
    return make_embedding(ServingModel(serving_path), scale_images(data.x_test[indices]), data.y_test[indices],
                          indices)


# ---------------------------------------------------------------------------------------------------------------
# Files
# ---------------------------------------------------------------------------------------------------------------

def save_embedding(embedding: Embedding, folder, *, prefix: str = "") -> list[Path]:
    """Write `prefix`embedding.npz (and `prefix`tsne.npz when it has one) in `folder`, each atomically."""
    arrays = {f.name: getattr(embedding, f.name) for f in dataclasses.fields(Embedding) if f.name != "tsne"}
    parts = {"embedding": arrays, **({"tsne": {"tsne": embedding.tsne}} if embedding.tsne is not None else {})}
    return [_save_npz(Path(folder) / f"{prefix}{name}.npz", values) for name, values in parts.items()]


def _save_npz(path: Path, arrays: dict) -> Path:
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp.npz")
    np.savez_compressed(tmp, **arrays)
    os.replace(tmp, path)  # readers see no file or a whole one
    return path


def write_embedding(folder, *, data=None) -> list[Path]:
    """folder/embedding.npz from folder/model.onnx, where a model is made; returns what was written. A failure is
    logged and costs only the map, which is then made on first use."""
    import logging  # noqa: PLC0415

    try:
        return save_embedding(make_model_embedding(Path(folder) / "model.onnx", data=data), folder)
    except Exception:  # the model is fine without its map
        logging.getLogger("digitlab").exception("could not make the embedding map; it is made on first use")
        return []


def load_embedding(path, tsne_path=None) -> Embedding:
    """Read an embedding (and its t-SNE, when `tsne_path` exists). Raises ModelLoadError when missing or unreadable."""
    try:
        with np.load(path, allow_pickle=False) as f:
            values = {field.name: f[field.name] for field in dataclasses.fields(Embedding) if field.name != "tsne"}
    except (OSError, KeyError, ValueError) as error:
        raise ModelLoadError(f"no readable embedding at {path} ({type(error).__name__}); make it with "
                             "`python -m digitlab.embedding MODEL_ID`") from None
    try:
        with np.load(tsne_path, allow_pickle=False) as f:
            values["tsne"] = f["tsne"]
    except (OSError, KeyError, ValueError, TypeError):  # not made yet (or being written)
        pass
    return Embedding(**values)


def load_model_embedding(model_id: str, *, store=None) -> Embedding:
    """A model's stored embedding, with its t-SNE when made. ModelLoadError when it has none (see `start_making`)."""
    paths = embedding_paths(model_id, store=store)
    return load_embedding(paths["embedding"], paths["tsne"])


def embedding_paths(model_id: str, *, store=None) -> dict[str, Path]:
    """{"embedding": path, "tsne": path} of a model's files (they may not exist yet). ModelLoadError for an unknown
    id or an unfinished run."""
    if model_id in SHIPPED:
        return {name: SHIPPED_DIR / f"{model_id}.{name}.npz" for name in FILES}
    from .modelfiles import model_file  # noqa: PLC0415

    folder = model_file(model_id, store=store, kind="keras").parent  # refuses unknown and unfinished runs
    return {name: folder / f"{name}.npz" for name in FILES}


def write_model_embedding(model_id: str, *, store=None) -> Embedding:
    """Make whatever of a model's embedding is missing (the hidden layer and PCA, then t-SNE) and store it."""
    from .modelfiles import model_file  # noqa: PLC0415

    if model_id not in SHIPPED and store is None:
        from .runs import RunStore  # noqa: PLC0415

        store = RunStore()
    try:
        made = load_model_embedding(model_id, store=store)
    except ModelLoadError:
        made = make_model_embedding(model_file(model_id, store=store, kind="onnx"))
    if made.tsne is None:
        made = dataclasses.replace(made, tsne=make_tsne(made))
    if model_id in SHIPPED:
        save_embedding(made, SHIPPED_DIR, prefix=f"{model_id}.")
    else:
        with tempfile.TemporaryDirectory() as tmp:
            for path in save_embedding(made, tmp):
                store.client.log_artifact(model_id, str(path), "model")
    return made


# ---------------------------------------------------------------------------------------------------------------
# Made on first use, in a separate process: `python -m digitlab.embedding MODEL_ID`
# ---------------------------------------------------------------------------------------------------------------

def start_making(model_id: str, *, at_most: int | None = None) -> bool:
    """Start `python -m digitlab.embedding MODEL_ID` in the background unless one is already making it; True when
    one is at it, False while `at_most` makers of other models are (the public demo: one at a time, each holding
    a few hundred MB; call again later).

    Its log (the last line says why, when it fails) is <home>/embeddings/<id>.log.
    """
    import fcntl  # noqa: PLC0415

    folder = home_dir() / "embeddings"
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # two visitors' sessions at once start one maker, not two
        if making(model_id):
            return True
        if at_most is not None and sum(making(pid.stem) for pid in folder.glob("*.pid")) >= at_most:
            return False
        with open(folder / f"{model_id}.log", "wb") as log:
            process = subprocess.Popen([sys.executable, "-m", "digitlab.embedding", model_id], cwd=PROJECT_DIR,
                                       stdout=log, stderr=log, stdin=subprocess.DEVNULL, start_new_session=True)
        (folder / f"{model_id}.pid").write_text(f"{process.pid} {time.time()}")
    return True


def making(model_id: str) -> bool:
    """True while a background maker of this model's embedding is alive."""
    from .runs import process_alive  # noqa: PLC0415

    try:
        pid, started = (home_dir() / "embeddings" / f"{model_id}.pid").read_text().split()
        command = Path(f"/proc/{int(pid)}/cmdline").read_bytes()
    except (OSError, ValueError):
        return False
    # Between fork and exec the child still shows the parent's command line: give it a few seconds.
    return process_alive(pid) and (b"digitlab.embedding" in command or time.time() - float(started) < 10)


def failure(model_id: str) -> str:
    """Why the last background maker of this model failed: the last line of its log ('' when it succeeded, is still
    running, or never ran)."""
    try:
        lines = [line for line in (home_dir() / "embeddings" / f"{model_id}.log").read_text().splitlines() if line]
    except OSError:
        return ""
    last = lines[-1] if lines and not making(model_id) else DONE
    return "" if last == DONE else last.removeprefix("digitlab: error: ")


if __name__ == "__main__":
    try:
        os.nice(10)  # the dashboard stays responsive while the map is made
        write_model_embedding(sys.argv[1])
        print(DONE)
    except (ValueError, IndexError) as error:  # ModelLoadError and bad ids: say why on one line
        print(f"digitlab: error: {error or 'usage: python -m digitlab.embedding MODEL_ID'}", file=sys.stderr)
        sys.exit(2)
