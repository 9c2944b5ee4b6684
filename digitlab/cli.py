"""Command line: `python -m digitlab train|evaluate|predict|runs|inspect|sweep`. The same functions the dashboard calls.

Exit codes: 0 success; 2 bad usage or bad input (one line saying what was wrong, what is allowed, how to fix);
1 unexpected failure (set DIGITLAB_DEBUG=1 for the traceback).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import sys
import time
from pathlib import Path

from . import config as cfg


class UsageError(Exception):
    """Bad usage or bad input: exit code 2, message on one line."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # argparse's usage dump becomes one line with a pointer to --help
        raise UsageError(f"{message}. Run `python -m {self.prog} --help` for the options.")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="digitlab", description="Train, evaluate and use handwritten-digit models on MNIST.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    t = sub.add_parser("train", help="train a model; progress on stderr, a JSON summary line on stdout")
    t.add_argument("--model", choices=cfg.MODELS, default="cnn")
    t.add_argument("--preset", choices=cfg.PRESETS, default="reference",
                   help="sets many options at once; the flags below override it (default: reference)")
    for name, field in cfg.FIELDS.items():  # every hyperparameter, from the one table of ranges and help
        if name == "model":
            continue
        flag = field.flag or "--" + name.replace("_", "-")
        text = f"{field.help} Allowed: {field.allowed()}."
        if field.kind == "bool":
            t.add_argument(flag, dest=name, action=argparse.BooleanOptionalAction, default=argparse.SUPPRESS,
                           help=text)
        else:
            t.add_argument(flag, dest=name, type=_parser_for(name), default=argparse.SUPPRESS, help=text,
                           metavar=name.upper() if not field.choices else None,
                           choices=field.choices or None)
    t.add_argument("--export", metavar="PATH.keras", help="also save the model and its card (PATH.json)")
    t.add_argument("--json", action="store_true", help="machine-readable output only")
    t.add_argument("--no-track", action="store_true", help="do not record the run in MLflow")

    e = sub.add_parser("evaluate", help="score a model on the 10k MNIST test images")
    e.add_argument("model", help="a .keras file, a shipped model (ann, cnn) or a run id")
    e.add_argument("--json", action="store_true")

    p = sub.add_parser("predict", help="predict the digit in PNG/JPEG images")
    p.add_argument("model", help="a .keras file, a shipped model (ann, cnn) or a run id")
    p.add_argument("images", nargs="+", metavar="IMAGE")
    p.add_argument("--json", action="store_true", help="one JSON object per image")

    s = sub.add_parser("sweep", help="search hyperparameters with Optuna; workers on one study share its trials")
    s.add_argument("--study", required=True, help="the study's name; workers given the same one share its trials")
    s.add_argument("--trials", type=int, dest="num_trials", metavar="N",
                   help="finished trials the study is done at (default 20)")
    s.add_argument("--model", choices=cfg.MODELS, help="default: cnn")
    s.add_argument("--preset", choices=cfg.PRESETS, help="values for everything not searched (default: reference)")
    s.add_argument("--param", action="append", dest="params", metavar="NAME[=RANGE]",
                   help="a hyperparameter to search, repeatable: learning_rate, dropout_rate=0..0.3, "
                        "batch_size=32,64 (default: learning_rate, dropout_rate, batch_size, hidden_units)")
    s.add_argument("--max-epochs", type=int, metavar="N",
                   help="epochs of every trial (the cap when num_epochs is searched)")
    s.add_argument("--train-limit", type=int, metavar="N", help="use only the first N training images")
    s.add_argument("--seed", type=int, help="training seed, the same in every trial")
    s.add_argument("--pruner", choices=("median", "hyperband", "none"), help="default: median")
    s.add_argument("--storage", metavar="URL", help="Optuna storage, e.g. postgresql://user@db-host/digitlab "
                   "(default: $DIGITLAB_SWEEP_STORAGE, else data/sweeps.db)")
    s.add_argument("--timeout", type=float, metavar="MINUTES", help="this worker starts no trial after it and "
                   "stops its running one")
    s.add_argument("--heartbeat", type=int, default=10, metavar="SECONDS",
                   help="a dead worker's trial is failed and queued again after 2× this (default 10)")
    s.add_argument("--json", action="store_true", help="no per-trial lines on stderr")

    r = sub.add_parser("runs", help="list tracked runs, newest first")
    r.add_argument("--limit", type=_whole_number(1, 50_000), default=50, help="runs to list, 1-50,000 (default 50)")
    r.add_argument("--json", action="store_true")

    i = sub.add_parser("inspect", help="a model's layers: type, output shape, parameters, FLOPs, and totals")
    i.add_argument("model", help="a .keras file, a shipped model (ann, cnn) or a run id")
    i.add_argument("--json", action="store_true", help="one JSON object: layers and the totals")
    return parser


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        return {"train": cmd_train, "evaluate": cmd_evaluate, "predict": cmd_predict, "runs": cmd_runs,
                "inspect": cmd_inspect, "sweep": cmd_sweep}[args.command](args)
    except UsageError as error:
        print(f"digitlab: error: {error}", file=sys.stderr)
        return 2
    except ValueError as error:  # config validation, bad ids, refused model files: all bad input
        print(f"digitlab: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("digitlab: interrupted", file=sys.stderr)
        return 130
    except Exception as error:
        if os.environ.get("DIGITLAB_DEBUG"):
            raise
        print(f"digitlab: unexpected error: {type(error).__name__}: {error} "
              "(set DIGITLAB_DEBUG=1 to see the traceback)", file=sys.stderr)
        return 1


# ---------------------------------------------------------------------------------------------------------------
# Commands
# ---------------------------------------------------------------------------------------------------------------

def cmd_train(args) -> int:
    given = {name: getattr(args, name) for name in cfg.FIELDS if name != "model" and hasattr(args, name)}
    config = cfg.preset(args.preset, model=args.model).replace(**given)
    if args.export and not args.export.endswith(".keras"):
        raise UsageError(f"--export must name a .keras file, got {args.export!r}")
    _quiet_tensorflow_import()
    from .pipeline import run_training  # noqa: PLC0415

    bar = None if args.json else _ProgressBar(sys.stderr)
    outcome = run_training(config, preset=args.preset, track=not args.no_track, export=args.export,
                           on_progress=bar)
    summary = outcome.summary()
    if not args.json:
        print(f"test accuracy {summary['test_accuracy']:.2%}  test loss {summary['test_loss']:.4f}  "
              f"trained {summary['epochs_run']} epochs in {summary['train_seconds']:.1f} s"
              + (f"  (stopped: {summary['stopped']})" if summary["stopped"] else "")
              + (f"  run {outcome.run_id}" if outcome.run_id else ""), file=sys.stderr)
    print(json.dumps(summary))
    return 0


def cmd_evaluate(args) -> int:
    model = _load_model(args.model)
    from .data import load_mnist  # noqa: PLC0415
    from .evaluation import evaluate_model  # noqa: PLC0415
    from .preprocessing import scale_images  # noqa: PLC0415

    data = load_mnist()
    report = evaluate_model(model, scale_images(data.x_test), data.y_test)
    if args.json:
        print(json.dumps({"model": args.model, **report.to_dict()}))
        return 0
    d = report.to_dict()
    print(f"{args.model}: accuracy {d['accuracy']:.2%}  loss {d['loss']:.4f}  "
          f"AUC macro {d['auc']['macro']:.5f}  micro {d['auc']['micro']:.5f}  ({d['num_images']} test images)")
    print("digit  precision  recall     f1  support    AUC")
    for c, m in d["per_class"].items():
        print(f"{c:>5}  {m['precision']:9.4f}  {m['recall']:6.4f}  {m['f1']:.4f}  {m['support']:7d}  "
              f"{d['auc'][c]:.5f}")
    pairs = ", ".join(f"{p['true']}→{p['predicted']} ×{p['count']}" for p in d["confused_pairs"][:5])
    print(f"most confused (true→predicted): {pairs or 'none'}")
    return 0


def cmd_predict(args) -> int:
    from .preprocessing import BlankImageError, ImageTooLargeError, load_image_file, prepare_image  # noqa: PLC0415

    # Read every image first, so bad input is reported before the model (and TensorFlow) loads.
    prepared, failed = {}, False
    for name in args.images:
        try:
            prepared[name] = prepare_image(load_image_file(name)).image
        except FileNotFoundError:
            failed = _report_bad_image(args, name, "no such file")
        except BlankImageError:
            failed = _report_bad_image(args, name, "no digit found (blank or too faint image)")
        except ImageTooLargeError as error:
            failed = _report_bad_image(args, name, str(error))
        except (OSError, ValueError) as error:  # PIL.UnidentifiedImageError is an OSError
            failed = _report_bad_image(args, name, f"not a readable image ({_short(error)}); use PNG or JPEG")
    if prepared:
        import numpy as np  # noqa: PLC0415

        model = _load_model(args.model)
        names = list(prepared)
        probabilities = np.asarray(model(np.stack([prepared[n] for n in names]), training=False))
        for name, probs in zip(names, probabilities):
            digit = int(probs.argmax())
            if args.json:
                print(json.dumps({"file": name, "digit": digit, "probabilities": [round(float(p), 6) for p in probs]}))
            else:
                print(f"{name}  digit {digit}  ({probs[digit]:.1%})")
    return 2 if failed else 0


def cmd_sweep(args) -> int:
    from . import sweep_worker  # noqa: PLC0415

    if args.timeout is not None and args.timeout <= 0 or args.heartbeat < 1:
        raise UsageError("--timeout must be above 0 minutes and --heartbeat at least 1 second")
    options = {k: getattr(args, k) for k in ("model", "preset", "params", "num_trials", "max_epochs", "train_limit",
                                             "seed", "pruner")}
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow loads at the first trial, after the study opens
    logging.getLogger("tensorflow").setLevel(logging.ERROR)  # each trial is a new model: retracing is expected
    say = (lambda text: None) if args.json else (lambda text: print(text, file=sys.stderr, flush=True))
    result = sweep_worker.run_worker(args.study, options, url=args.storage, heartbeat=args.heartbeat,
                                     timeout=args.timeout * 60 if args.timeout else None, on_event=say)
    if not args.json and result["best_run_id"]:
        print(f"best of {result['trials_finished']} finished trials: #{result['best_trial']} val_accuracy "
              f"{result['best_value']:.4f} {result['best_params']}  run {result['best_run_id']}"
              + (f"  (its test accuracy, reported once: {result['best_trial_test_accuracy']:.2%})"
                 if result["best_trial_test_accuracy"] is not None else ""), file=sys.stderr)
    print(json.dumps(result))
    return 0


def cmd_runs(args) -> int:
    from .runs import RunStore  # noqa: PLC0415

    store = RunStore()
    store.recover()
    runs = store.list_runs(max_results=args.limit)
    if args.json:
        for run in runs:
            print(json.dumps({"run_id": run.run_id, "name": run.name, "status": run.status, "stopped": run.stopped,
                              "start_time": run.start_time, "model": run.config.model if run.config else None,
                              "preset": run.preset, "metrics": run.metrics}))
        return 0
    if not runs:
        print("no runs yet: train one with `python -m digitlab train --model cnn --epochs 3`")
        return 0
    print(f"{'run id':32}  {'started':16}  {'model':5}  {'preset':9}  {'epochs':>6}  {'test acc':>8}  "
          f"{'train s':>7}  status")
    for run in runs:
        acc = run.metrics.get("test_accuracy")
        secs = run.metrics.get("train_seconds")
        epochs = run.config.num_epochs if run.config else "?"
        status = run.status.lower() + (f" ({run.stopped})" if run.stopped else "")
        print(f"{run.run_id:32}  {time.strftime('%Y-%m-%d %H:%M', time.localtime(run.start_time)):16}  "
              f"{run.config.model if run.config else '?':5}  {run.preset or '-':9}  {epochs!s:>6}  "
              f"{f'{acc:.2%}' if acc is not None else '-':>8}  {f'{secs:.1f}' if secs is not None else '-':>7}  "
              f"{status}")
    return 0


def cmd_inspect(args) -> int:
    from .anatomy import load_anatomy  # noqa: PLC0415

    path = _model_path(args.model)
    if path.suffix != ".keras":
        raise UsageError(f"{args.model}: {_NOT_A_MODEL}")
    if not path.is_file():
        raise UsageError(f"{args.model}: no such model file. Check the path, or use a shipped id: ann, cnn.")
    anatomy = load_anatomy(path)
    if args.json:
        print(json.dumps(anatomy.to_dict()))
        return 0
    print(f"{'layer':24}  {'type':34}  {'output shape':14}  {'parameters':>10}  {'FLOPs':>12}")
    for layer in anatomy.layers:
        kind = layer.type + (" (training only)" if layer.training_only else "")
        print(f"{layer.name:24}  {kind:34}  {'×'.join(map(str, layer.output_shape)):14}  {layer.parameters:>10,}  "
              f"{layer.flops:>12,}")
    print(f"{'total':24}  {'':34}  {'':14}  {anatomy.parameters:>10,}  {anatomy.flops:>12,}")
    print("FLOPs: per image at inference, a multiply-add counted as 2 and a bias add as 1 (anatomy.layer_flops).")
    return 0


# ---------------------------------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------------------------------

_NOT_A_MODEL = "give a .keras file, a shipped model (ann, cnn) or a run id (see `python -m digitlab runs`)"


def _model_path(name: str) -> Path:
    """A .keras path, a shipped id (ann, cnn) or a run id → its model file. A name without a suffix that is no
    model's id is a UsageError (another suffix is left to `modelfiles.load_model_file`, which says why not)."""
    from . import modelfiles  # noqa: PLC0415

    if modelfiles.is_model_id(name):
        return modelfiles.model_file(name)
    if not Path(name).suffix:
        raise UsageError(f"{name}: {_NOT_A_MODEL}")
    return Path(name)


def _load_model(name: str):
    """A .keras path, a shipped id (ann, cnn) or a run id → a Keras model (safe mode, never .h5)."""
    from . import modelfiles  # noqa: PLC0415

    path = _model_path(name)
    _quiet_tensorflow_import()
    return modelfiles.load_model_file(path)


def _whole_number(low: int, high: int):
    """argparse type: a whole number from `low` to `high`, else a message saying so."""
    def parse(text):
        try:
            number = int(text)
        except ValueError:
            number = None
        if number is None or not low <= number <= high:
            raise argparse.ArgumentTypeError(f"must be a whole number from {low:,} to {high:,}, got {text[:40]!r}")
        return number

    parse.__name__ = "whole number"
    return parse


def _report_bad_image(args, name, why) -> bool:
    if args.json:
        print(json.dumps({"file": name, "digit": None, "error": why}))
    print(f"digitlab: error: {name}: {why}", file=sys.stderr)
    return True


def _parser_for(name: str):
    """argparse type for a RunConfig field: the field's own parsing, its message on failure."""
    def parse(text):
        try:
            return cfg.parse(name, text)
        except ValueError as error:
            raise argparse.ArgumentTypeError(str(error)) from None

    parse.__name__ = name  # argparse names the type in some messages
    return parse


def _short(error: Exception) -> str:
    return str(error).splitlines()[0][:120] if str(error) else type(error).__name__


def _quiet_tensorflow_import() -> None:
    """Import TensorFlow with its native start-up log lines (printed before logging is set up) silenced."""
    if "tensorflow" in sys.modules:
        return
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            with contextlib.suppress(ImportError):
                import tensorflow  # noqa: F401, PLC0415
    finally:
        os.dup2(saved, 2)
        os.close(saved)


class _ProgressBar:
    """A text progress bar with ETA; redraws in place on a terminal, one line per epoch otherwise."""

    def __init__(self, stream):
        self.stream, self.tty = stream, stream.isatty()

    def __call__(self, p) -> None:
        if not (self.tty or p.epoch_end):
            return
        width = 24
        filled = int(width * p.batch / p.batches_per_epoch)
        logs = p.logs
        text = (f"epoch {p.epoch}/{p.num_epochs} [{'#' * filled}{'.' * (width - filled)}] "
                f"loss {logs.get('loss', float('nan')):.4f} acc {logs.get('accuracy', float('nan')):.4f}")
        if p.epoch_end and "val_loss" in logs:
            text += f" | val_loss {logs['val_loss']:.4f} val_acc {logs['val_accuracy']:.4f}"
        text += f" | {p.elapsed:.0f}s elapsed" + (f", ETA {p.eta:.0f}s" if p.eta is not None and p.fraction < 1 else "")
        end = "\n" if p.epoch_end else ""
        self.stream.write(("\r\x1b[2K" if self.tty else "") + text + end)
        self.stream.flush()
