"""The one place that loads a model to predict: its serving graph in ONNX Runtime, no TensorFlow.

A serving graph (written by `serving_graph.py` where the model was trained) answers one call with everything the
dashboard shows about an image: probabilities, logits, gradient × input saliency, the last hidden layer and every
convolution's activations. One thread per session and no spinning thread pools: on a 2-core host a stroke costs
about a millisecond, and a session is safe to share between visitors (`InferenceSession.run` is thread-safe).

Models load only by id (`modelfiles.model_file`): shipped ids or finished runs, from files DigitLab wrote. A run made
before serving graphs existed gets one from `ensure_serving_graph`, which converts it in a separate process
(`python -m digitlab.export RUN_ID`): the caller's process never imports TensorFlow.
"""

from __future__ import annotations

import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from .data import PROJECT_DIR
from .modelfiles import ModelLoadError, model_file

BATCH = 1000  # images per call when scoring many


class ServingGraphMissing(ModelLoadError):
    """A finished run has no serving graph yet (it was made before they existed)."""


class ServingModel:
    """A model's serving graph, ready to answer. `run` returns every output; `predict` only probabilities."""

    def __init__(self, path):
        import onnxruntime as ort  # noqa: PLC0415

        options = ort.SessionOptions()
        options.intra_op_num_threads = 1  # default threads: p90 9.7 ms here; one thread: 0.4 ms
        options.inter_op_num_threads = 1
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")  # no busy-waiting after a call
        options.add_session_config_entry("session.inter_op.allow_spinning", "0")
        options.log_severity_level = 3
        options.enable_cpu_mem_arena = False  # an arena keeps its largest batch's buffers for good
        self.path = Path(path)
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.outputs = [o.name for o in self.session.get_outputs()]
        self.convolutions = sorted((n for n in self.outputs if n.startswith("conv")), key=lambda n: int(n[4:]))

    def run(self, images: np.ndarray, *, target: int | None = None, outputs: list[str] | None = None) -> dict:
        """Every output (or those named) for float32 images (n, 28, 28) in [0, 1].

        target : the digit whose saliency to explain; None explains each image's predicted digit.
        Returns {"probabilities": (n, 10), "logits": (n, 10), "saliency": (n, 28, 28), "hidden": (n, units),
        "conv1": (n, h, w, filters), ...}.
        """
        images = np.ascontiguousarray(images, np.float32).reshape(-1, 28, 28)
        if target is not None and not 0 <= int(target) <= 9:
            raise ValueError(f"target must be a digit 0-9 or None, got {target!r}")
        feed = {"image": images, "target": np.array(-1 if target is None else int(target), np.int32)}
        names = outputs or self.outputs
        return dict(zip(names, self.session.run(names, feed)))

    def predict(self, images: np.ndarray) -> np.ndarray:
        """float32 (n, 28, 28) in [0, 1] → (n, 10) probabilities, in batches."""
        images = np.asarray(images, np.float32).reshape(-1, 28, 28)
        if not len(images):
            return np.zeros((0, 10), np.float32)
        return np.concatenate([self.run(images[i:i + BATCH], outputs=["probabilities"])["probabilities"]
                               for i in range(0, len(images), BATCH)])


# ONNX Runtime releases the GIL while a graph runs: one model of a stroke runs here while the other runs in the
# caller's thread, each on its own core and cache. Threads start on first use; a one-core host gains nothing but
# loses little (the caller runs a model the helper has not started).
_HELPERS = ThreadPoolExecutor(max_workers=os.cpu_count() or 1, thread_name_prefix="digitlab-serving")


def run_each(models: dict, images: np.ndarray, *, target: int | None = None) -> dict:
    """{name: model.run(images, target=target)} for {name: ServingModel}, the models running at once: a Draw
    stroke (both models, with their saliency) takes about the time of the slower one, not of both (paired on an AMX
    Xeon, 2 cores: the stroke's p50 and p95 -15%). A model the helper has not started when the caller is done (a
    virtual machine's idle core can take milliseconds to wake: p95 +1-2 ms when waited for) runs in the caller's
    thread. The outputs are the same as one by one."""
    names = list(models)
    helped = {name: _HELPERS.submit(models[name].run, images, target=target) for name in names[:-1]}
    done = {names[-1]: models[names[-1]].run(images, target=target)} if names else {}
    for name, future in helped.items():  # one the helper has not started yet (it had no core): run it here
        done[name] = models[name].run(images, target=target) if future.cancel() else future.result()
    return {name: done[name] for name in names}


def load_serving(model_id: str, *, store=None) -> ServingModel:
    """The serving model of a shipped id or a finished run. Raises ServingGraphMissing for a run without a graph
    (call `ensure_serving_graph`), ModelLoadError when its export was refused (the message says why)."""
    try:
        return ServingModel(model_file(model_id, store=store, kind="onnx"))
    except ModelLoadError as error:
        if model_id in ("ann", "cnn"):
            raise
        refused = _serving_error(model_id, store)
        if refused:
            raise ModelLoadError(f"run {model_id} has no serving graph: {refused}. Its .keras file is kept: "
                                 "download it from Results.") from None
        if "has no model/model.onnx" in str(error):
            raise ServingGraphMissing(str(error)) from None
        raise


def ensure_serving_graph(model_id: str, *, timeout: float = 300) -> None:
    """Make a finished run's serving graph in a separate process (it needs TensorFlow). Raises ModelLoadError."""
    result = subprocess.run([sys.executable, "-m", "digitlab.export", model_id], cwd=PROJECT_DIR, timeout=timeout,
                            capture_output=True, text=True, stdin=subprocess.DEVNULL,
                            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    if result.returncode != 0:
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        raise ModelLoadError(lines[-1].removeprefix("digitlab: error: ") if lines else
                             f"making the serving graph of {model_id} failed (exit {result.returncode})")


def _serving_error(model_id: str, store) -> str:
    from .runs import RunStore  # noqa: PLC0415

    try:
        return (store or RunStore()).get_run(model_id).tags.get("digitlab.serving_error", "")
    except ModelLoadError:
        return ""
