"""The dashboard's shared helpers: cached data, store and models, the selected model, error display.

Caching lives here (the UI layer), never in `digitlab/`. `cache_resource` objects are shared by every
visitor, so only read-only things are cached: MNIST, the run store client, serving models, test-set reports.
The server reaches models only through `digitlab.serving` (ONNX Runtime): it never imports TensorFlow.
"""

from __future__ import annotations

import logging
import secrets

import numpy as np
import streamlit as st

from digitlab import catalog, modelfiles, runs as runstore, serving
from digitlab.data import load_mnist, overview


@st.cache_resource(show_spinner="Loading MNIST…")
def mnist():
    """MNIST as the pages show it: samples and means of the training images, the test set (data.Overview)."""
    return overview(load_mnist())


@st.cache_resource(show_spinner=False)
def _store():
    store = runstore.RunStore()
    store.recover()  # runs left RUNNING by a dead process become FAILED/interrupted
    return store


def store() -> runstore.RunStore | None:
    """The run store, or None (with a message on the page) when it cannot be opened."""
    try:
        return _store()
    except Exception as error:  # a locked, corrupt or unreachable store must not take the app down
        st.warning(f"The run store ({runstore.tracking_uri()}) cannot be opened: {error}. Shipped models still "
                   "work; fix or move the store (MLFLOW_TRACKING_URI) to see and record runs.", icon="⚠️")
        return None


def limits():
    """LOCAL, or PUBLIC when DIGITLAB_PUBLIC=1 (in the environment, or a root-level key of secrets.toml, which
    Streamlit exports to the environment at start-up)."""
    from digitlab.limits import current_limits

    return current_limits()


def visitor() -> str | None:
    """Whose runs and drawings this session sees: its own in the public demo, everyone's (None) locally."""
    return owner() if limits().public else None


def model_entries() -> list[dict]:
    """The shipped models and the finished runs this session may see."""
    return catalog.model_entries(store(), owner=visitor())


def runs() -> list:
    """Runs this session may see, newest first ([] when the store is unreachable)."""
    s = store()
    return s.list_runs(owner=visitor()) if s else []


def drawing_set():
    """This session's "my drawings" (private to the session in the public demo)."""
    from digitlab.drawings import DrawingSet, evict_drawing_sets

    if limits().public and not st.session_state.get("drawings_evicted"):  # bound the demo's disk, once a session
        st.session_state.drawings_evicted = True
        evict_drawing_sets(keep=limits().max_drawing_sets)
    return DrawingSet(visitor() or "local", max_drawings=limits().max_drawings)


def drawing_scores(entries: list[dict], images: np.ndarray, labels: np.ndarray) -> list[dict]:
    """Every model's accuracy on a drawing set next to its MNIST test accuracy (cached per model and set)."""
    import hashlib

    digest = hashlib.sha256(images.tobytes() + labels.tobytes()).hexdigest()
    return [{"model": e["label"], "accuracy on my drawings": _drawing_score(e["id"], digest, images, labels),
             "MNIST test accuracy": e["test_accuracy"]} for e in entries]


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


def crisp_images() -> None:
    """Enlarge every image on the page without smoothing: a 28×28 digit sent as 28×28 pixels stays sharp."""
    st.html("<style>[data-testid='stImage'] img { image-rendering: pixelated; }</style>")


def seconds(value: float | None) -> str:
    """12.3 → '12 s', 75 → '1 min 15 s'."""
    if value is None:
        return "…"
    value = int(round(value))
    return f"{value} s" if value < 60 else f"{value // 60} min {value % 60:02d} s"


# ---------------------------------------------------------------------------------------------------------------
# Train page: URL ↔ form, widgets, the live job view
# ---------------------------------------------------------------------------------------------------------------

def owner() -> str:
    """An anonymous id for this browser session (jobs and runs are tagged with it)."""
    if "owner" not in st.session_state:
        st.session_state.owner = secrets.token_hex(8)
    return st.session_state.owner


def config_from_url() -> tuple[dict, list[str]]:
    """Known form values from the URL's query parameters, and a message for each bad one."""
    from digitlab import config as cfg

    values, errors = {}, []
    for key, text in st.query_params.to_dict().items():
        if key == "model" and text not in cfg.MODELS or key == "preset" and text not in cfg.PRESETS:
            errors.append(f"{key} must be one of {', '.join(cfg.MODELS if key == 'model' else cfg.PRESETS)}, "
                          f"got {text[:40]!r}")
        elif key in ("model", "preset"):
            values[key] = text
        elif key in cfg.RunConfig.__dataclass_fields__:
            try:
                cfg.RunConfig.from_params({key: text})
                values[key] = text
            except ValueError as error:
                errors.append(str(error))
    return values, errors


def safe_config(values: dict, fallback):
    from digitlab.config import RunConfig

    try:
        return RunConfig.from_params(values)
    except ValueError as error:
        st.warning(f"Ignored the link's settings: {error}", icon="🔗")
        return fallback


def set_url(params: dict) -> None:
    """Mirror the form in the URL (only when it changed, so history stays clean)."""
    wanted = {**params, **({"job": st.session_state.job_id} if st.session_state.get("job_id") else {})}
    if st.query_params.to_dict() != wanted:
        st.query_params.from_dict(wanted)


def hyperparameter_widgets(d, *, key: str) -> dict:
    """Every hyperparameter the core accepts, with ranges and one-line help; returns RunConfig fields."""
    a, b, c = st.columns(3)
    out = {}
    out["num_epochs"] = a.number_input("Epochs", 1, 200, d.num_epochs, key=f"epochs-{key}",
                                       help="Passes over the training images.")
    sizes = sorted({16, 32, 64, 128, 256, 512, d.batch_size})
    out["batch_size"] = a.select_slider("Batch size", sizes, d.batch_size, key=f"batch-{key}",
                                        help="Images per optimizer step; larger is faster per epoch.")
    out["optimizer"] = a.selectbox("Optimizer", ["adam", "sgd", "rmsprop"], ["adam", "sgd", "rmsprop"].index(
        d.optimizer), key=f"opt-{key}", help="Adam is the robust default; SGD uses Nesterov momentum 0.9.")
    out["learning_rate"] = a.number_input("Learning rate", 1e-5, 1.0, d.learning_rate, step=1e-4, format="%.4f",
                                          key=f"lr-{key}", help="Step size (the peak with one-cycle).")
    out["schedule"] = a.selectbox("Schedule", ["constant", "onecycle"], ["constant", "onecycle"].index(d.schedule),
                                  key=f"sched-{key}", help="One-cycle warms up, then anneals: good for short runs.")
    out["hidden_units"] = b.number_input("Hidden units", 1, 4096, d.hidden_units, key=f"hidden-{key}",
                                         help="Width of the dense hidden layer.")
    out["dropout_rate"] = b.slider("Dropout", 0.0, 0.9, float(d.dropout_rate), 0.05, key=f"drop-{key}",
                                   help="Fraction of units dropped before the output, in training only.")
    filters = b.text_input("CNN filters", ",".join(map(str, d.filters)), key=f"filters-{key}",
                           help="Filters per Conv/MaxPool block, 1-3 blocks, e.g. 32,64 (CNN only).")
    try:
        out["filters"] = tuple(int(part) for part in filters.split(",") if part.strip())
    except ValueError:
        out["filters"] = filters  # RunConfig explains what is wrong with it
    out["convs_per_block"] = b.number_input("Convolutions per block", 1, 2, d.convs_per_block, key=f"convs-{key}",
                                            help="3×3 convolutions before each max-pooling (CNN only); 2 is "
                                                 "more accurate and about 4× the work.")
    out["batch_norm"] = b.checkbox("Batch normalisation", d.batch_norm, key=f"bn-{key}",
                                   help="Normalise after each convolution (CNN only); trains faster.")
    limit = c.slider("Training images", 1000, 60000, d.train_limit or 60000, 1000, key=f"limit-{key}",
                     help="Use only the first N of the 60,000 training images, for quick runs.")
    out["train_limit"] = None if limit >= 60000 else limit
    out["validation_split"] = c.slider("Validation split", 0.0, 0.5, float(d.validation_split), 0.05,
                                       key=f"val-{key}", help="The last fraction, held out to watch overfitting.")
    patience = c.number_input("Early stopping patience", 0, 100, d.early_stopping or 0, key=f"es-{key}",
                              help="Stop after this many epochs without validation-loss gain; 0 = off.")
    out["early_stopping"] = patience or None
    out["augment"] = c.checkbox("Augmentation", d.augment, key=f"aug-{key}",
                                help="Random rotation, zoom and shift of training images.")
    out["precision"] = c.selectbox("Precision", ["auto", "float32", "bfloat16"],
                                   ["auto", "float32", "bfloat16"].index(d.precision), key=f"prec-{key}",
                                   help="bfloat16 mixed precision trains faster at the same accuracy on CPUs with "
                                        "native bfloat16; auto uses it there. The saved model is float32.")
    out["seed"] = c.number_input("Seed", 0, 2**31 - 1, d.seed, key=f"seed-{key}",
                                 help="Same seed and settings give the same run.")
    return {k: int(v) if k in ("num_epochs", "hidden_units", "seed", "convs_per_block") else v for k, v in out.items()}


def active_job():
    """This session's queued or running job, if any."""
    from digitlab import jobs

    job_id = st.session_state.get("job_id")
    if job_id:
        try:
            job = jobs.get_job(job_id)
            return job if job.active else None
        except ValueError:
            return None
    return None


def job_view(job_id: str) -> None:
    """Progress bar with ETA, live curves and Stop, refreshed every 0.5 s while the job is active."""
    from digitlab import charts, jobs

    try:
        job = jobs.get_job(job_id)
        if visitor() is not None and job.owner != visitor():
            raise ValueError("that training belongs to another visitor of this public demo; start your own")
        started_active = job.active
    except ValueError as error:
        st.warning(str(error))
        st.session_state.pop("job_id", None)
        return

    @st.fragment(run_every=0.5 if started_active else None)
    def live():
        job = jobs.get_job(job_id)
        p = job.progress or {}
        name = f"{job.config.model.upper()} · {job.preset or 'custom'} · {job.config.num_epochs} epochs"
        st.subheader(f"Run: {name}")
        if job.status == "queued":
            st.info(f"Queued: position {job.queue_position}, starts in about {seconds(job.wait_seconds)} (when "
                    "the trainings ahead of it end). Stop removes it from the queue.", icon="⏳")
        elif job.status == "running":
            text = (f"Epoch {p['epoch']}/{p['num_epochs']} · batch {p['batch']}/{p['batches_per_epoch']} · "
                    f"elapsed {seconds(p['elapsed'])} · ETA {seconds(p['eta'])}") if p else "Starting…"
            st.progress(min(1.0, p.get("fraction", 0.0)), text=text)
        elif job.status == "finished":
            s = job.summary
            if job.stopped == "time limit":
                st.warning(f"Stopped at the public demo's time limit of {seconds(job.max_seconds)}; the model "
                           "as trained so far is kept and tested.", icon="⏱️")
            st.success(f"Finished: test accuracy {s['test_accuracy']:.2%} after {s['epochs_run']} epochs in "
                       f"{seconds(s['train_seconds'])}" + (f" ({job.stopped.replace('_', ' ')})" if job.stopped
                                                            else "") + ". It is now the selected model.", icon="✅")
            select(job.run_id, job.config.model)
        elif job.status == "cancelled":
            msg = "Stopped by you."
            if job.run_id:
                msg += f" The model as trained so far is kept (test accuracy {job.summary['test_accuracy']:.2%})."
                select(job.run_id, job.config.model)
            st.warning(msg, icon="⏹️")
        else:
            st.error(f"The run {job.status}: {job.error}. Nothing else was lost; start it again.", icon="❌")
        if p.get("history") or p.get("trace"):
            st.plotly_chart(charts.training_curves(p.get("history", {}), running=p.get("trace"),
                                                   num_epochs=p.get("num_epochs")), key="live-curves")
        if job.active and st.button("Stop", key="stop", help="Stops within a second; keeps the model so far."):
            jobs.cancel_job(job_id, owner=visitor())
            st.toast("Stopping…")
        if started_active and not job.active:
            st.rerun()  # once, to stop polling and refresh the model lists

    live()
    if not started_active:
        nav = st.columns(3)
        nav[0].page_link("views/results.py", label="Study the results", icon="📊")
        nav[1].page_link("views/draw.py", label="Try it on a drawing", icon="✍️")
        nav[2].page_link("views/compare.py", label="Compare with other runs", icon="⚖️")


def model_bytes(model_id: str) -> bytes:
    """The .keras file of a shipped model or a run, for download."""
    return modelfiles.model_file(model_id, store=None if model_id in modelfiles.SHIPPED else _store()).read_bytes()


def show_failure(page_title: str, error: Exception) -> None:
    """The last line of defence: a message instead of a traceback; the traceback goes to the server log."""
    logging.getLogger("digitlab").exception("page %s failed", page_title)
    st.error(f"The {page_title} page hit a problem it did not expect: {type(error).__name__}: {error}. "
             "Reload the page or pick another model; the server log has the details.", icon="⚠️")


def import_drawings(drawings) -> None:
    """file_uploader callback: add the uploaded set before the page reruns, so the tables include it."""
    upload = st.session_state.get("import")
    if upload is not None:
        try:
            st.toast(f"Imported {drawings.import_bytes(upload.getvalue())} drawings from {upload.name}.")
        except ValueError as error:
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
