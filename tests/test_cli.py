"""The CLI's output contract and exit codes. Bad input runs in-process (fast); the happy paths run
`python -m digitlab` as a real subprocess."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from digitlab.cli import main
from tests.conftest import digit_images

PROJECT = Path(__file__).resolve().parent.parent


def run_cli(*args, env=None):
    return subprocess.run([sys.executable, "-m", "digitlab", *args], capture_output=True, text=True, cwd=PROJECT,
                          env={**os.environ, **(env or {})}, timeout=600)


@pytest.mark.parametrize("argv, message", [
    (["train", "--model", "rnn"], "argument --model: invalid choice: 'rnn'"),
    (["train", "--epochs", "ten"], "argument --epochs: num_epochs must be an integer from 1 to 200, got 'ten'"),
    (["train", "--learning-rate", "5"], "learning_rate must be a number above 0, at most 1, got 5.0"),
    (["train", "--dropout", "1.5"], "dropout_rate must be a number from 0 to 0.9, got 1.5"),
    (["train", "--filters", "32,x"], "filters must be 1 to 3 comma-separated integers from 1 to 512, e.g. 32,64, "
                                     "got '32,x'"),
    (["train", "--train-limit", "10"], "train_limit must be an integer from 100 to 60000, or 0 for all 60,000, "
                                       "got 10"),
    (["train", "--export", "model.h5"], "--export must name a .keras file"),
    (["train", "--validation-split", "0", "--early-stopping", "2"], "early stopping needs a validation split"),
    (["evaluate", "model.h5"], "only .keras model files are loaded"),
    (["evaluate", "nothing-here.keras"], "no such model file"),
    (["evaluate", "0123456789abcdef0123456789abcdef"], "0123456789abcdef0123456789abcdef"),
    (["predict", "cnn", "/no/such/image.png"], "/no/such/image.png: no such file"),
    (["evaluate", "nosuch"], "nosuch: give a .keras file, a shipped model (ann, cnn) or a run id"),  # not "no suffix"
    (["evaluate", "../../etc/passwd"], "../../etc/passwd: give a .keras file"),  # named in full
    (["inspect", "model.h5"], "model.h5: give a .keras file"),
    (["runs", "--limit", "0"], "argument --limit: must be a whole number from 1 to 50,000, got '0'"),  # not MLflow's
    (["runs", "--limit", "99999999999999999999"], "must be a whole number from 1 to 50,000"),
    (["frobnicate"], "invalid choice: 'frobnicate'"),
    ([], "the following arguments are required: command"),
])
def test_bad_input_exits_2_with_one_line(argv, message, capsys, tracking_uri):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert message in err
    assert err.startswith("digitlab: error:") and "Traceback" not in err
    assert len(err.splitlines()) == 1


def test_blank_and_unreadable_images_exit_2(tmp_path, capsys, mnist):
    Image.new("L", (100, 100), 255).save(tmp_path / "blank.png")
    (tmp_path / "text.png").write_text("not an image")
    Image.fromarray(mnist.x_test[0]).save(tmp_path / "seven.png")
    assert main(["predict", "cnn", str(tmp_path / "blank.png"), str(tmp_path / "text.png"),
                 str(tmp_path / "seven.png"), "--json"]) == 2
    out, err = capsys.readouterr()
    lines = [json.loads(line) for line in out.splitlines()]
    assert lines[0] == {"file": str(tmp_path / "blank.png"), "digit": None,
                        "error": "no digit found (blank or too faint image)"}
    assert lines[1]["digit"] is None and "not a readable image" in lines[1]["error"]
    assert lines[2]["digit"] == 7  # the good image is still answered
    assert "Traceback" not in err


def test_an_image_past_50_megapixels_is_refused_from_its_header_never_decoded(tmp_path, capsys, mnist):
    Image.new("L", (8000, 6400)).save(tmp_path / "huge.png")  # 51.2 megapixels, a few kB of PNG
    Image.fromarray(mnist.x_test[0]).save(tmp_path / "seven.png")
    assert main(["predict", "cnn", str(tmp_path / "huge.png"), str(tmp_path / "seven.png"), "--json"]) == 2
    out, err = capsys.readouterr()
    lines = [json.loads(line) for line in out.splitlines()]
    assert lines[0]["error"] == ("it is 8,000×6,400 pixels, more than 50 megapixels; shrink it (a digit needs a few "
                                 "hundred pixels a side)")
    assert lines[1]["digit"] == 7 and "Traceback" not in err


def test_predict_contract_on_real_digits(tmp_path, mnist):
    digits, labels = digit_images(mnist)
    files = []
    for digit, label in zip(digits, labels):
        big = np.asarray(Image.fromarray(digit).resize((200, 150), Image.Resampling.BILINEAR))
        path = tmp_path / f"d{label}.{'jpg' if label % 2 else 'png'}"
        Image.fromarray(255 - big if label % 3 else big).save(path)  # dark-on-light and light-on-dark mixed
        files.append(str(path))
    plain = run_cli("predict", "models/cnn.keras", *files)
    assert plain.returncode == 0, plain.stderr
    for line, label, file in zip(plain.stdout.splitlines(), labels, files):
        assert line.startswith(f"{file}  digit {label}  (") and line.endswith("%)"), line
    as_json = run_cli("predict", "ann", *files, "--json")
    assert as_json.returncode == 0, as_json.stderr
    rows = [json.loads(line) for line in as_json.stdout.splitlines()]
    assert [r["file"] for r in rows] == files
    assert sum(r["digit"] == label for r, label in zip(rows, labels)) >= 9
    assert all(len(r["probabilities"]) == 10 and abs(sum(r["probabilities"]) - 1) < 1e-4 for r in rows)


def test_train_evaluate_runs_end_to_end(tmp_path, tracking_uri):
    export = tmp_path / "tiny.keras"
    train = run_cli("train", "--model", "ann", "--epochs", "1", "--train-limit", "3000", "--hidden-units", "32",
                    "--learning-rate", "0.003", "--export", str(export), "--json")
    assert train.returncode == 0, train.stderr
    summary = json.loads(train.stdout.strip().splitlines()[-1])
    assert len(summary["run_id"]) == 32 and summary["test_accuracy"] > 0.8 and summary["train_seconds"] > 0
    card = json.loads(export.with_suffix(".json").read_text())
    assert card["test_accuracy"] == summary["test_accuracy"] and card["config"]["hidden_units"] == "32"
    assert card["command"].startswith("python -m digitlab train --model ann")
    assert card["seed"] == 0 and card["selected_on"] == "validation" and card["precision"] in ("float32", "bfloat16")
    assert card["machine"]["cpu"] and isinstance(card["machine"]["native_bfloat16"], bool)
    assert card["machine"]["onednn"] is True  # `import digitlab` turns oneDNN on before TensorFlow loads

    evaluate = run_cli("evaluate", str(export), "--json")
    assert evaluate.returncode == 0, evaluate.stderr
    report = json.loads(evaluate.stdout)
    assert report["accuracy"] == pytest.approx(summary["test_accuracy"])
    assert {"loss", "per_class", "auc"} <= set(report)

    runs = run_cli("runs")
    assert runs.returncode == 0 and summary["run_id"] in runs.stdout and "finished" in runs.stdout
    by_id = run_cli("evaluate", summary["run_id"])
    assert by_id.returncode == 0 and "accuracy" in by_id.stdout


def test_train_progress_goes_to_stderr_and_json_to_stdout(tracking_uri):
    result = run_cli("train", "--model", "ann", "--epochs", "2", "--train-limit", "500", "--no-track")
    assert result.returncode == 0, result.stderr
    assert "epoch 1/2" in result.stderr and "epoch 2/2" in result.stderr and "val_acc" in result.stderr
    assert json.loads(result.stdout)["run_id"] is None
