"""The worker's progress report: the pace and the ETA it writes (the worker process itself: test_jobs.py)."""

import pytest

from digitlab.config import preset
from digitlab.costs import finishing_seconds
from digitlab.training import Progress
from digitlab.worker import PACE_WINDOW, _Report

CONFIG = preset("reference", model="cnn", num_epochs=20, early_stopping=None)


def reports(*, batches_per_epoch, batch_seconds, first_epoch_end_seconds, epoch_end_seconds, every=5):
    """Progress as `training._Reporter` sends it: every `every` batches and at each epoch end (after validation),
    with the true seconds left in training."""
    elapsed, done, total = 0.0, 0, CONFIG.num_epochs * batches_per_epoch
    for epoch in range(1, CONFIG.num_epochs + 1):
        for batch in range(every, batches_per_epoch + 1, every):
            elapsed += every * batch_seconds
            done += every
            left = (total - done) * batch_seconds + (CONFIG.num_epochs - epoch + 1) * epoch_end_seconds
            yield Progress(epoch, CONFIG.num_epochs, batch, batches_per_epoch, elapsed, None, {}, {}), left
        elapsed += first_epoch_end_seconds if epoch == 1 else epoch_end_seconds
        yield (Progress(epoch, CONFIG.num_epochs, batches_per_epoch, batches_per_epoch, elapsed, None, {}, {},
                        epoch_end=True), (total - done) * batch_seconds + (CONFIG.num_epochs - epoch) * epoch_end_seconds)


def test_the_eta_leaves_out_epoch_ones_one_time_end_costs(tmp_path):
    """Epoch 1 ends with seconds of one-time work (tracing the validation step on a busy host): counted as pace, it
    raised the ETA by half; left out, the ETA stays within 10% of the truth from the first one written."""
    report = _Report(tmp_path, CONFIG)
    etas = []
    for progress, left in reports(batches_per_epoch=100, batch_seconds=0.05, first_epoch_end_seconds=4.0,
                                  epoch_end_seconds=0.2):
        report.progress(progress)
        if report.last["eta"] is not None:
            etas.append((report.last["eta"] - finishing_seconds(CONFIG), left))
    assert len(etas) > 300  # an ETA from ~4 s of training on (PACE_WINDOW)
    assert all(eta == pytest.approx(left, rel=0.1, abs=1.0) for eta, left in etas), max(
        abs(eta - left) / max(left, 1.0) for eta, left in etas)


def test_no_eta_until_the_pace_is_measured_over_the_window(tmp_path):
    report = _Report(tmp_path, CONFIG)
    for progress, _ in reports(batches_per_epoch=100, batch_seconds=0.05, first_epoch_end_seconds=0.2,
                               epoch_end_seconds=0.2):
        if progress.epoch_end:
            break
        report.progress(progress)
        assert (report.last["eta"] is None) == (progress.elapsed - 0.25 < PACE_WINDOW), progress  # first: 0.25 s
    assert report.last["eta"] is not None
