import keras
import numpy as np
import pytest
from sklearn import metrics

from digitlab.evaluation import evaluate_model, evaluate_probabilities, load_report, save_report
from digitlab.preprocessing import scale_images


@pytest.fixture(scope="module")
def report_and_probs(tiny_outcome, mnist):
    _, outcome = tiny_outcome
    x, y = scale_images(mnist.x_test[:2000]), mnist.y_test[:2000]
    probs = np.asarray(outcome.result.model(x, training=False))
    return evaluate_model(outcome.result.model, x, y), probs, y


def test_matches_sklearn_on_real_predictions(report_and_probs):
    report, probs, y = report_and_probs
    pred = probs.argmax(1)
    assert 0.5 < report.accuracy < 1
    assert report.accuracy == pytest.approx(metrics.accuracy_score(y, pred))
    np.testing.assert_array_equal(report.confusion, metrics.confusion_matrix(y, pred))
    p, r, f, s = metrics.precision_recall_fscore_support(y, pred)
    np.testing.assert_allclose(report.precision, p)
    np.testing.assert_allclose(report.recall, r)
    np.testing.assert_allclose(report.f1, f)
    np.testing.assert_array_equal(report.support, s)
    assert report.auc["macro"] == pytest.approx(metrics.roc_auc_score(y, probs, multi_class="ovr", average="macro"))
    assert report.auc["micro"] == pytest.approx(
        metrics.roc_auc_score(np.eye(10)[y], probs, average="micro"), abs=1e-6)
    for c in range(10):
        assert report.auc[str(c)] == pytest.approx(metrics.roc_auc_score(y == c, probs[:, c]))


def test_loss_matches_keras(report_and_probs):
    report, probs, y = report_and_probs
    keras_loss = float(keras.losses.CategoricalCrossentropy()(np.eye(10)[y], probs))
    assert report.loss == pytest.approx(keras_loss, rel=1e-4)


def test_mistakes_are_ranked_by_confidence(report_and_probs):
    report, probs, y = report_and_probs
    pred = probs.argmax(1)
    assert set(report.mistakes.tolist()) == set(np.flatnonzero(pred != y).tolist())
    conf = probs[report.mistakes, pred[report.mistakes]]
    assert np.all(np.diff(conf) <= 0)
    pairs = report.confused_pairs(top=3)
    assert pairs[0][2] == max(report.confusion[t, p] for t in range(10) for p in range(10) if t != p)


def test_to_dict_has_the_cli_contract(report_and_probs):
    d = report_and_probs[0].to_dict()
    assert {"accuracy", "loss", "per_class", "auc"} <= set(d)
    assert set(d["per_class"]) == {str(c) for c in range(10)}
    assert {"micro", "macro"} <= set(d["auc"])


def test_perfect_and_bad_inputs():
    y = np.arange(10).repeat(3)
    perfect = evaluate_probabilities(y, np.eye(10)[y])
    assert perfect.accuracy == 1 and perfect.auc["macro"] == 1 and len(perfect.mistakes) == 0
    with pytest.raises(ValueError, match=r"probabilities must have shape \(n_samples, 10\)"):
        evaluate_probabilities(y, np.ones((30, 9)))
    with pytest.raises(ValueError, match="same non-zero length"):
        evaluate_probabilities(y[:5], np.eye(10)[y])


def test_a_saved_report_reads_back_whole_without_scikit_learn(report_and_probs, tmp_path):
    report = report_and_probs[0]
    save_report(report, tmp_path / "report.npz")
    back = load_report(tmp_path / "report.npz")
    assert (back.accuracy, back.loss, back.auc) == (report.accuracy, report.loss, report.auc)
    for name in ("confusion", "precision", "recall", "f1", "support", "mistakes", "y_true", "y_pred", "probabilities"):
        np.testing.assert_array_equal(getattr(back, name), getattr(report, name))
    assert back.roc.keys() == report.roc.keys()
    np.testing.assert_array_equal(back.roc["micro"][1], report.roc["micro"][1])
    assert [p.name for p in tmp_path.iterdir()] == ["report.npz"]  # written atomically, no leftovers
    script = f"import sys; from digitlab.evaluation import load_report; load_report({str(tmp_path / 'report.npz')!r}); "\
             "assert 'sklearn' not in sys.modules"
    assert __import__("subprocess").run([__import__("sys").executable, "-c", script]).returncode == 0
