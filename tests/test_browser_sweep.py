"""The Sweep page in headless Chromium: start a 3-trial sweep from the form, watch the optimisation history grow
trial by trial, stop it; the server never maps TensorFlow or scikit-learn while it watches."""

import time
from pathlib import Path

from tests.test_browser import assert_healthy, browser, page, server, shoot, wait_idle  # noqa: F401 - fixtures

HISTORY = '[data-testid="stPlotlyChart"]:has-text("Optimization History Plot")'


def history_points(page) -> int:
    """Trials plotted in the optimisation-history chart: the points of its first trace (0 before it appears)."""
    chart = page.locator(HISTORY)
    return chart.first.locator(".scatterlayer .trace").first.locator("path.point").count() if chart.count() else 0


def test_a_sweep_started_in_the_browser_grows_and_stops(server, page, tmp_path):
    page.goto(f"{server}/sweep")
    page.get_by_role("heading", name="Sweep hyperparameters").wait_for(timeout=60_000)
    wait_idle(page)
    page.get_by_role("radio", name="ANN", exact=True).click()
    wait_idle(page)
    for label, value in (("Trials", "3"), ("Epochs per trial", "2"), ("Training images", "2000")):
        field = page.get_by_label(label, exact=True)
        field.fill(value)
        field.press("Enter")
        wait_idle(page)
    page.get_by_role("button", name="Start the sweep").click()

    seen, deadline = [0], time.time() + 300
    while seen[-1] < 2 and time.time() < deadline:  # the history chart gains a point per finished trial
        time.sleep(1)
        seen.append(history_points(page))
    assert seen[-1] == 2 and 1 in seen, seen
    assert_healthy(page)
    shoot(page, tmp_path, "sweep-running")

    page.get_by_role("button", name="Stop the sweep").click()
    page.get_by_text("Test accuracy of the best trial").wait_for(timeout=120_000)  # shown once the sweep ended
    wait_idle(page)
    assert page.get_by_role("button", name="Stop the sweep").count() == 0
    assert history_points(page) >= 2
    assert_healthy(page)
    shoot(page, tmp_path, "sweep-stopped")

    maps = Path(f"/proc/{server.pid}/maps").read_text()
    mapped = {line.split()[-1] for line in maps.splitlines() if len(line.split()) >= 6}
    assert not [m for m in mapped if "tensorflow" in m or "sklearn" in m]  # the workers did the training
