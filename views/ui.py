"""The dashboard's shared helpers: cached data, store and models, the selected model, error display.

Caching lives here (the UI layer), never in `digitlab/`. `cache_resource` objects are shared by every
visitor, so only read-only things are cached: MNIST, the run store client, serving models, test-set reports.
The server reaches models only through `digitlab.serving` (ONNX Runtime): it never imports TensorFlow.
"""

from __future__ import annotations

import logging
import re
import time
from concurrent.futures import Future, ThreadPoolExecutor

import numpy as np
import streamlit as st

from digitlab import catalog, modelfiles, pictures, runs as runstore, serving
from digitlab.data import load_mnist, overview

NO_TOOLBAR = {"displayModeBar": False}  # Plotly config where a zoom toolbar gets in the way (pictures, small charts)
MISSING = "—"  # a table cell without a value (st.dataframe's placeholder; Streamlit shows a grey "None")
NAME_COLUMN = st.column_config.TextColumn(pinned=True)  # a wide table's names stay in view as it scrolls sideways


@st.cache_resource(show_spinner="Loading MNIST…")
def mnist():
    """MNIST as the pages show it: samples and means of the training images, the test set (data.Overview)."""
    return overview(load_mnist())


@st.cache_resource(show_spinner=False)
def _opening_store() -> Future:
    """Open the run store once, in the background: MLflow's import and a new store's schema take seconds, and the
    Draw page (often a visitor's first) answers with the shipped models without waiting for them."""
    def open_store():
        opened = runstore.RunStore()
        opened.recover()  # runs left RUNNING by a dead process become FAILED/interrupted
        return opened

    future = ThreadPoolExecutor(max_workers=1, thread_name_prefix="run-store").submit(open_store)
    future.add_done_callback(lambda done: setattr(done, "finished", time.monotonic()))
    _OPENING[:] = [future]  # the latest attempt only (a failed one is retried after 30 s)
    return future


_OPENING: list[Future] = []  # the opening, once started, so a page can ask without starting it


def _store() -> runstore.RunStore:
    """The run store, waiting for it to open; raises what opening raised (tried again 30 s after a failure)."""
    future = _opening_store()
    if future.done() and future.exception() is not None and time.monotonic() - future.finished > 30:
        _opening_store.clear()
        future = _opening_store()
    return future.result()


def store(*, wait: bool = True, start: bool = True) -> runstore.RunStore | None:
    """The run store, or None (with a message on the page) when it cannot be opened; with wait=False, also None
    while it is still opening; with start=False, also None (and nothing started) when nobody has asked for it yet."""
    if not start and not _OPENING:
        return None
    if not wait and not _opening_store().done():
        return None
    try:
        return _store()
    except Exception as error:  # a locked, corrupt or unreachable store must not take the app down
        st.warning(plain(f"The run store ({runstore.tracking_uri()}) cannot be opened: {error}. Shipped models still "
                   "work; fix or move the store (MLFLOW_TRACKING_URI) to see and record runs."), icon="⚠️")
        return None


def store_opening() -> bool:
    """True while the run store is opening (asked for, not yet open or failed)."""
    return bool(_OPENING) and not _OPENING[0].done()


def rerun_when_store_opens() -> None:
    """A page that showed the shipped models while the run store was opening reruns once it has opened (checked
    twice a second by a tiny fragment; the rerun no longer calls it, so the checking stops)."""
    if store_opening():
        _rerun_once_open()


@st.fragment(run_every=0.5)
def _rerun_once_open() -> None:
    if not store_opening():
        st.rerun()  # the whole page, now with the runs


def limits():
    """LOCAL, or PUBLIC when DIGITLAB_PUBLIC=1 (in the environment, or a root-level key of secrets.toml, which
    Streamlit exports to the environment at start-up)."""
    from digitlab.limits import current_limits

    return current_limits()


def visitor() -> str | None:
    """Whose runs and drawings this session sees: its own in the public demo, everyone's (None) locally."""
    from views.visitor import visitor_id

    return visitor_id() if limits().public else None


def network() -> str:
    """The network this session connects from, keyed (`identity.network_of`): "" on this machine."""
    from views.visitor import network_id

    return network_id() if limits().public else ""


def model_entries(*, wait: bool = True, start: bool = True) -> list[dict]:
    """The shipped models and the finished runs this session may see (only the shipped ones while the run store
    is still opening, with wait=False, or not yet asked for, with start=False)."""
    return catalog.model_entries(store(wait=wait, start=start), owner=visitor())


def runs() -> list:
    """Runs this session may see, newest first ([] when the store is unreachable)."""
    s = store()
    return s.list_runs(owner=visitor()) if s else []


def drawing_set():
    """This session's "my drawings" (private to the session in the public demo)."""
    from digitlab.drawings import DrawingSet, expire_drawing_sets
    from digitlab.identity import MAX_AGE

    caps = limits()
    if caps.public and not st.session_state.get("drawings_expired"):  # once a session
        st.session_state.drawings_expired = True
        expire_drawing_sets(max_age=MAX_AGE)  # sets whose visitor's cookie has expired: nobody can open them
    return DrawingSet(visitor() or "local", max_drawings=caps.max_drawings, network=network(),
                      max_sets=caps.max_drawing_sets if caps.public else None,
                      max_sets_per_network=caps.max_drawing_sets_per_network)


def drawing_scores(entries: list[dict], images: np.ndarray, labels: np.ndarray) -> list[dict]:
    """Every model's accuracy on a drawing set next to its MNIST test accuracy (cached per model and set)."""
    import hashlib

    digest = hashlib.sha256(images.tobytes() + labels.tobytes()).hexdigest()
    return [{"model": f"{e['name']} ({e['model'].upper()})",
             "my drawings": 100 * _drawing_score(e["id"], digest, images, labels),
             "MNIST test": 100 * e["test_accuracy"]} for e in entries]


@st.cache_data(max_entries=5000, show_spinner="Scoring the models on your drawings…")
def _drawing_score(model_id: str, digest: str, _images, _labels) -> float:
    from digitlab.drawings import accuracy_on

    return accuracy_on(model(model_id).predict, _images, _labels)


def model(model_id: str) -> serving.ServingModel:
    """The serving model of a shipped id or run id; a run made before serving graphs gets one first (once, in a
    separate process: this server never imports TensorFlow)."""
    try:
        return _serving(model_id)
    except serving.ServingGraphMissing:
        with st.spinner("Preparing this model for live use (once; about 10 s)…"):
            serving.ensure_serving_graph(model_id)
        return _serving(model_id)


@st.cache_resource(max_entries=8, show_spinner=False)
def warm_up_drawing(model_ids: tuple[str, ...]) -> Future:
    """Ready a first drawing's answer while the person draws (once per server and pair of models): ONNX Runtime loads
    and each model's serving graph opens (~0.1 s in all). Call it after the canvas is on the page, so the warm-up
    never delays the canvas."""
    def warm():
        from digitlab.preprocessing import prepare_image

        canvas = np.zeros((280, 280, 4), np.uint8)
        canvas[60:220, 130:150] = 255  # a "1", white on transparent as the canvas sends it
        image = prepare_image(canvas).image[None]
        for model_id in model_ids:
            _serving(model_id).run(image)

    executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="warm-up")
    future = executor.submit(warm)
    executor.shutdown(wait=False)  # its thread ends with this one task
    future.add_done_callback(lambda done: done.exception() and logging.getLogger("digitlab").warning(
        "warm-up for %s failed (the first drawing loads them itself): %r", model_ids, done.exception()))
    return future


@st.cache_resource(max_entries=24, show_spinner=False)
def _serving(model_id: str) -> serving.ServingModel:
    return serving.load_serving(model_id, store=None if model_id in modelfiles.SHIPPED else _store())


@st.cache_resource(max_entries=12, show_spinner="Reading the model's test-set scores…")
def report(model_id: str):
    """The EvaluationReport of a model on the MNIST test set, from the probabilities saved when it was made."""
    store = None if model_id in modelfiles.SHIPPED else _store()
    return catalog.load_report(model_id, store=store, y_test=mnist().y_test)


def history(model_id: str) -> dict:
    """Per-epoch metrics of a shipped model (its card) or a run (MLflow)."""
    if model_id in modelfiles.SHIPPED:
        return catalog.load_card(model_id)["history"]
    return _store().history(model_id)


def curves_note(label_smoothing: float) -> str:
    """What a run's training curves measure, under them: why training may trail validation, and why a smoothed
    loss does not compare with a test loss."""
    note = ("Training figures average each epoch's batches while the model was still learning, with dropout and any "
            "augmentation on; validation is scored at the epoch's end on unaltered digits, so it is often the "
            "higher of the two early on.")
    if label_smoothing:
        note += (f" This model trained with label smoothing {label_smoothing:g}: its training and validation loss "
                 "compare its answers with softened targets, so they stay well above 0 even for perfect answers; "
                 "a test loss compares them with the true digits. The two do not compare.")
    return note


def pick_model(label: str = "Model", *, kind: str | None = None, key: str = "model_id",
               entries: list[dict] | None = None) -> str | None:
    """A selectbox over every available model (of `kind` if given); remembers the choice for all pages.

    entries : model_entries() already fetched in this run (each fetch queries the run store).
    """
    entries = [e for e in entries or model_entries() if kind is None or e["model"] == kind]
    ids = [e["id"] for e in entries]
    labels = {e["id"]: e["label"] for e in entries}
    remembered = st.session_state.get(key)
    index = ids.index(remembered) if remembered in ids else 0
    choice = st.selectbox(label, ids, index=index, format_func=labels.get, key=f"pick-{key}")
    st.session_state[key] = choice
    return choice


def select(model_id: str, kind: str) -> None:
    """Make a model the selected one on every page (Results, and its kind's column on Draw)."""
    st.session_state.model_id = model_id
    st.session_state[f"draw-{kind}"] = model_id


_MARKDOWN = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~$])")


def plain(text: str) -> str:
    """`text` shown as written, never as markdown: for messages that quote a link, a file name or a typed value.

    Markdown characters are backslash-escaped; a zero-width space after ':' and '@' and in 'www.' stops Streamlit
    from turning addresses into links and ':name:' into icons.
    """
    text = _MARKDOWN.sub(r"\\\1", str(text))
    return text.replace(":", ":\u200b").replace("www\\.", "www\u200b\\.").replace("@", "@\u200b")


def figures_row():
    """A row for big figures (`metric(..., width="content")`): each as wide as its number, wrapping to a second
    line where the page is narrow instead of cutting a number short ("48 of …")."""
    return st.container(horizontal=True, gap="medium")


def picked_rows(selection, count: int) -> list[int]:
    """The rows of a table of `count` a selection picked (a dataframe's `.selection.rows`), dropping anything a
    crafted request might send instead: not an integer, or not a row."""
    return [i for i in selection if type(i) is int and 0 <= i < count]


def picked_cell(cells, *, size: int) -> tuple[int, int] | None:
    """(row, column) of the one cell a single-cell selection picked in a `size` × `size` table whose columns are
    named "0", "1", …; None for no pick, or anything a crafted request might send instead."""
    try:
        (row, column), = cells
        row, column = int(row), int(column)
    except (TypeError, ValueError):
        return None
    return (row, column) if 0 <= row < size and 0 <= column < size else None


def digit_gallery(images: np.ndarray, captions: list[str]) -> None:
    """Digits (n, 28, 28), uint8 or float in [0, 1], side by side with a caption under each, wrapping to the page's
    width: 7 to a row on a laptop, 3 on a phone, each at 84 px (3 screen pixels per pixel)."""
    images = np.asarray(images)
    scaled = images / 255 if images.dtype == np.uint8 else images
    st.image([pictures.grey(image, scale=3) for image in scaled], caption=captions, width=84, output_format="PNG")


def crisp_images() -> None:
    """Enlarge every image on the page without smoothing: a 28×28 digit sent as 28×28 pixels stays sharp."""
    st.html("<style>[data-testid='stImage'] img { image-rendering: pixelated; }</style>")


def count(number: int, noun: str) -> str:
    """1, "epoch" → '1 epoch'; 3 → '3 epochs'; 20000, "image" → '20,000 images'."""
    return f"{number:,} {noun}{'' if number == 1 else 's'}"


seconds = catalog.duration  # 12.3 → '12 s', 75 → '1 min 15 s', 180 → '3 min'


def model_bytes(model_id: str) -> bytes:
    """The .keras file of a shipped model or a run, for download."""
    return modelfiles.model_file(model_id, store=None if model_id in modelfiles.SHIPPED else _store()).read_bytes()


def show_failure(page_title: str, error: Exception) -> None:
    """The last line of defence: a message instead of a traceback; the traceback goes to the server log."""
    logging.getLogger("digitlab").exception("page %s failed", page_title)
    st.error(plain(f"The {page_title} page hit a problem it did not expect: {type(error).__name__}: {error}. "
             "Reload the page or pick another model; the server log has the details."), icon="⚠️")


def import_drawings(drawings) -> None:
    """file_uploader callback: add the uploaded set before the page reruns, so the tables include it."""
    upload = st.session_state.get("import")
    if upload is not None:
        try:
            added, held = drawings.import_bytes(upload.getvalue())
            st.toast(plain(f"Imported {count(added, 'drawing')} from {upload.name}" + (
                f"; the other {count(held, 'drawing')} in it were already in your set." if held else ".")))
        except (ValueError, OSError) as error:  # nothing was added: the message says why
            st.session_state.import_error = f"Could not import {upload.name}: {error}"


# ---------------------------------------------------------------------------------------------------------------
# Inside the model: the model's map, first-layer weights and anatomy, read from files (no TensorFlow, no sklearn)
# ---------------------------------------------------------------------------------------------------------------

@st.cache_resource(max_entries=24, show_spinner=False)
def _model_paths(model_id: str) -> dict:
    """The .keras file and the map's files of a model (one run-store query per model, not per stroke)."""
    from digitlab.embedding import embedding_paths

    store = None if model_id in modelfiles.SHIPPED else _store()
    return {"keras": modelfiles.model_file(model_id, store=store), **embedding_paths(model_id, store=store)}


def embedding(model_id: str):
    """The model's map (embedding.Embedding, with t-SNE once made), or None while it has none."""
    paths = _model_paths(model_id)
    try:  # the key changes when a file appears, so a newly made map is read
        return _embedding(model_id, paths["embedding"].exists(), paths["tsne"].exists())
    except modelfiles.ModelLoadError:
        return None


@st.cache_resource(max_entries=12, show_spinner="Reading the model's map…")
def _embedding(model_id: str, made: bool, has_tsne: bool):
    from digitlab.embedding import load_embedding

    paths = _model_paths(model_id)
    return load_embedding(paths["embedding"], paths["tsne"])


@st.cache_resource(max_entries=12, show_spinner=False)
def first_kernel(model_id: str):
    """("Conv2D", (3, 3, 1, filters)) or ("Dense", (784, units)): the model's first layer weights."""
    from digitlab.anatomy import load_first_kernel

    return load_first_kernel(_model_paths(model_id)["keras"])


@st.cache_resource(max_entries=24, show_spinner=False)
def anatomy(model_id: str):
    """The model's layers: type, output shape, parameters, FLOPs (anatomy.Anatomy)."""
    from digitlab.anatomy import load_anatomy

    return load_anatomy(_model_paths(model_id)["keras"])


@st.cache_resource(show_spinner=False)
def map_sprite() -> str:
    """The map's 5,000 test digits in one PNG (100 to a row), as a data URL for the hover pictures."""
    import base64
    import io

    from PIL import Image

    from digitlab.embedding import sample_indices

    digits = mnist().x_test[sample_indices()]  # (5000, 28, 28) uint8
    sheet = digits.reshape(-1, 100, 28, 28).transpose(0, 2, 1, 3).reshape(-1, 100 * 28)
    buffer = io.BytesIO()
    Image.fromarray(sheet).save(buffer, "PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()
