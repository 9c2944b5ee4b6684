"""Score a model's predicted probabilities against the true labels, with scikit-learn doing the metrics.

`evaluate_probabilities` is pure (arrays in, report out); `evaluate_model` runs a Keras model on images first.
A report is computed once, where the model is made, and saved (`save_report`); the dashboard reads it back with
`load_report`, which needs neither scikit-learn (56 MB) nor TensorFlow.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np

CLASSES = tuple(range(10))
EVALUATION_BATCH = 256  # images per forward pass when scoring: a wide CNN's outputs for 1,000 held 1.7 GB


@dataclass(frozen=True)
class EvaluationReport:
    accuracy: float  # fraction correct, 0-1
    loss: float  # mean categorical cross-entropy
    confusion: np.ndarray  # (10, 10) int: rows = true digit, columns = predicted
    precision: np.ndarray  # (10,) per class
    recall: np.ndarray  # (10,)
    f1: np.ndarray  # (10,)
    support: np.ndarray  # (10,) test images of each class
    auc: dict  # {"0": ..., ..., "9": ..., "micro": ..., "macro": ...}  one-vs-rest ROC AUC
    roc: dict  # same keys → (fpr, tpr) arrays
    mistakes: np.ndarray  # (m,) indices of misclassified images, most confident mistake first
    y_true: np.ndarray  # (n,) int
    y_pred: np.ndarray  # (n,) int
    probabilities: np.ndarray  # (n, 10) float32

    @property
    def confidence(self) -> np.ndarray:
        """(n,) probability of the predicted class."""
        return self.probabilities.max(axis=1)

    def confused_pairs(self, *, top: int = 10) -> list[tuple[int, int, int]]:
        """The `top` most frequent (true, predicted, count) mistakes, most frequent first."""
        off = self.confusion.copy()
        np.fill_diagonal(off, 0)
        order = np.argsort(off, axis=None)[::-1][:top]
        pairs = [(int(i // 10), int(i % 10), int(off.flat[i])) for i in order]
        return [p for p in pairs if p[2] > 0]

    def to_dict(self, *, top_mistakes: int = 20) -> dict:
        """JSON-ready summary (no per-image arrays or curves)."""
        return {
            "accuracy": float(self.accuracy),
            "loss": float(self.loss),
            "num_images": int(len(self.y_true)),
            "per_class": {
                str(c): {"precision": float(self.precision[c]), "recall": float(self.recall[c]),
                         "f1": float(self.f1[c]), "support": int(self.support[c])}
                for c in CLASSES
            },
            "auc": {k: float(v) for k, v in self.auc.items()},
            "confusion_matrix": self.confusion.tolist(),
            "confused_pairs": [{"true": t, "predicted": p, "count": n} for t, p, n in self.confused_pairs()],
            "top_mistakes": [
                {"index": int(i), "true": int(self.y_true[i]), "predicted": int(self.y_pred[i]),
                 "confidence": float(self.confidence[i])}
                for i in self.mistakes[:top_mistakes]
            ],
        }


def macro_roc(roc: dict) -> tuple[np.ndarray, np.ndarray]:
    """The macro-average ROC curve of the digits' curves in `roc` ({"0": (fpr, tpr), ...}): their mean at every false
    positive rate any of them has (scikit-learn's recipe), so it is their exact mean everywhere, even zoomed in.

    Returns (fpr (m,), tpr (m,)).
    """
    curves = [roc[str(c)] for c in CLASSES if str(c) in roc]
    grid = np.unique(np.concatenate([fpr for fpr, _ in curves]))
    return grid, np.mean([np.interp(grid, fpr, tpr) for fpr, tpr in curves], axis=0)


def evaluate_probabilities(y_true: np.ndarray, probabilities: np.ndarray) -> EvaluationReport:
    """Build the report.

    y_true : array-like of shape (n_samples,), integer digits 0-9.
    probabilities : array-like of shape (n_samples, 10), rows summing to 1.
    """
    from sklearn import metrics  # noqa: PLC0415 - only where reports are made

    y_true = np.asarray(y_true).astype(np.int64)
    probabilities = np.asarray(probabilities, np.float32)
    if probabilities.ndim != 2 or probabilities.shape[1] != 10:
        raise ValueError(f"probabilities must have shape (n_samples, 10), got {probabilities.shape}")
    if len(y_true) != len(probabilities) or len(y_true) == 0:
        raise ValueError(f"y_true and probabilities must have the same non-zero length, "
                         f"got {len(y_true)} and {len(probabilities)}")
    y_pred = probabilities.argmax(axis=1)
    precision, recall, f1, support = metrics.precision_recall_fscore_support(
        y_true, y_pred, labels=list(CLASSES), zero_division=0)
    y_onehot = np.eye(10, dtype=np.int64)[y_true]
    roc, auc = {}, {}
    for c in CLASSES:
        if 0 < y_onehot[:, c].sum() < len(y_true):  # a class absent from a small slice has no ROC curve
            fpr, tpr, _ = metrics.roc_curve(y_onehot[:, c], probabilities[:, c])
            roc[str(c)], auc[str(c)] = (fpr, tpr), metrics.auc(fpr, tpr)
    present = [c for c in CLASSES if str(c) in auc]
    if present:
        fpr, tpr, _ = metrics.roc_curve(y_onehot[:, present].ravel(), probabilities[:, present].ravel())
        roc["micro"], auc["micro"] = (fpr, tpr), metrics.auc(fpr, tpr)
        auc["macro"] = float(np.mean([auc[str(c)] for c in present]))
        roc["macro"] = macro_roc(roc)
    wrong = np.flatnonzero(y_pred != y_true)
    mistakes = wrong[np.argsort(-probabilities[wrong, y_pred[wrong]], kind="stable")]
    return EvaluationReport(
        accuracy=float(metrics.accuracy_score(y_true, y_pred)),
        loss=float(metrics.log_loss(y_true, probabilities, labels=list(CLASSES))),
        confusion=metrics.confusion_matrix(y_true, y_pred, labels=list(CLASSES)),
        precision=precision, recall=recall, f1=f1, support=support,
        auc=auc, roc=roc, mistakes=mistakes, y_true=y_true, y_pred=y_pred, probabilities=probabilities,
    )


def save_report(report: EvaluationReport, path) -> Path:
    """Write every field of `report` to one .npz file, atomically (temporary file, then rename)."""
    path = Path(path)
    arrays = {f.name: getattr(report, f.name) for f in fields(report) if f.name not in ("auc", "roc")}
    for key, (fpr, tpr) in report.roc.items():
        arrays[f"roc_{key}_fpr"], arrays[f"roc_{key}_tpr"] = fpr, tpr
    arrays["auc_json"] = np.array(json.dumps({k: float(v) for k, v in report.auc.items()}))
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp.npz")
    np.savez_compressed(tmp, **arrays)
    os.replace(tmp, path)
    return path


def load_report(path) -> EvaluationReport:
    """Read a report written by `save_report` (no pickles are loaded)."""
    with np.load(path, allow_pickle=False) as f:
        auc = json.loads(str(f["auc_json"]))
        roc = {key: (f[f"roc_{key}_fpr"], f[f"roc_{key}_tpr"]) for key in auc if f"roc_{key}_fpr" in f}
        values = {field.name: f[field.name] for field in fields(EvaluationReport) if field.name not in ("auc", "roc")}
    values["accuracy"], values["loss"] = float(values["accuracy"]), float(values["loss"])
    if "macro" in roc:  # from the digits' curves: reports saved before `macro_roc` hold a coarse 201-point one
        roc["macro"] = macro_roc(roc)
    return EvaluationReport(**values, auc=auc, roc=roc)


def predict_probabilities(model, images: np.ndarray, *, batch_size: int = EVALUATION_BATCH) -> np.ndarray:
    """float32 (n, 28, 28) in [0, 1] → (n, 10) probabilities, in batches, without Keras' `predict` overhead."""
    images = np.asarray(images, np.float32)
    return np.concatenate([np.asarray(model(images[i:i + batch_size], training=False))
                           for i in range(0, len(images), batch_size)])


def evaluate_model(model, images: np.ndarray, labels: np.ndarray) -> EvaluationReport:
    """Run `model` on float32 (n, 28, 28) images in [0, 1] and score it against int labels (n,)."""
    return evaluate_probabilities(labels, predict_probabilities(model, images))
