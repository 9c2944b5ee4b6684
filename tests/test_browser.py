"""The real app in headless Chromium: every page without an exception, drawing with the mouse gives a prediction,
a training survives switching pages and a reload. Screenshots land in the test's temporary folder (and in
$DIGITLAB_SCREENSHOTS when set). Runs whenever /usr/bin/chromium exists, and must run when CI=true."""

import contextlib
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from playwright.sync_api import expect

from digitlab import config
from tests.conftest import seed_home, stop_jobs

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]

pytestmark = pytest.mark.browser
if not Path(CHROMIUM).exists():
    if os.environ.get("CI") == "true":
        raise RuntimeError(f"{CHROMIUM} is missing but CI=true: browser tests must run (apt-get install chromium)")
    pytest.skip(f"{CHROMIUM} not installed (apt-get install chromium)", allow_module_level=True)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server(str):
    """The app's URL, carrying the server's process id."""

    def __new__(cls, url, pid):
        self = super().__new__(cls, url)
        self.pid = pid
        return self


@contextlib.contextmanager
def running_app(home, **env):
    """`streamlit run app.py` on a free port with DIGITLAB_HOME=home (and `env`), until healthy; yields its Server.
    Stops it, and any job it left running, afterwards."""
    port = _free_port()
    environment = {**os.environ, "DIGITLAB_HOME": str(home), **env}
    environment.pop("MLFLOW_TRACKING_URI", None)
    with open(home / "server.log", "w") as log:
        proc = subprocess.Popen([sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true",
                                 "--server.port", str(port), "--browser.gatherUsageStats", "false"],
                                cwd=ROOT, env=environment, stdout=log, stderr=subprocess.STDOUT)
        url = f"http://127.0.0.1:{port}"
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                if urllib.request.urlopen(f"{url}/_stcore/health", timeout=2).read() == b"ok":
                    break
            except OSError:
                time.sleep(0.2)
        else:
            proc.kill()
            raise RuntimeError("streamlit did not become healthy: " + (home / "server.log").read_text()[-2000:])
        try:
            yield Server(url, proc.pid)
        finally:
            proc.terminate()
            proc.wait(timeout=20)
            stop_jobs(home)


@pytest.fixture(scope="module")
def server(tmp_path_factory, mnist):
    with running_app(seed_home(tmp_path_factory.mktemp("home"), mnist)) as url:
        yield url


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        instance = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield instance
        instance.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    yield context.new_page()
    context.close()


def wait_idle(page, timeout=60_000):
    """Wait until Streamlit has finished running the script (no 'Running…' status widget)."""
    page.wait_for_selector('[data-testid="stApp"][data-test-script-state="notRunning"]', timeout=timeout)
    time.sleep(0.5)


FAILURE = "hit a problem it did not expect"  # app.py's last-resort message (views/ui.py show_failure)


def assert_healthy(page):
    """No Streamlit exception box and no page-failure message from app.py's handler."""
    assert page.locator('[data-testid="stException"]').count() == 0
    failures = page.get_by_text(FAILURE)
    assert failures.count() == 0, failures.all_inner_texts()


def stroke(page, canvas, points, steps=12):
    """Drag the mouse through `points` (canvas pixels) as one stroke, like a person drawing."""
    box = canvas.bounding_box()
    (x, y), rest = points[0], points[1:]
    page.mouse.move(box["x"] + x, box["y"] + y)
    page.mouse.down()
    for (x1, y1) in rest:
        for t in np.linspace(0, 1, steps)[1:]:
            page.mouse.move(box["x"] + x + (x1 - x) * t, box["y"] + y + (y1 - y) * t)
        x, y = x1, y1
    page.mouse.up()


def predictions(page):
    """The two Prediction metrics (ANN, CNN) as shown."""
    return [v.strip() for v in page.locator('[data-testid="stMetric"]').filter(has_text="Prediction").locator(
        '[data-testid="stMetricValue"]').all_inner_texts()]


def shoot(page, tmp_path, name, *, docs=True):
    """A full-page screenshot in tmp_path, and in $DIGITLAB_SCREENSHOTS (docs/) unless it is only a diagnostic."""
    path = tmp_path / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    if docs and os.environ.get("DIGITLAB_SCREENSHOTS"):
        Path(os.environ["DIGITLAB_SCREENSHOTS"]).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(os.environ["DIGITLAB_SCREENSHOTS"]) / path.name)


PAGES = [("", "DigitLab"), ("train", "Train a model"), ("results", "Results"), ("draw", "Draw a digit"),
         ("compare", "Compare runs"), ("inside", "Inside the model"), ("sweep", "Sweep hyperparameters")]


def test_home_lists_the_shipped_models_at_once_and_runs_once_the_store_opens(home, browser):
    """A fresh server's first Home does not wait for MLflow's import and a new store (seconds): the shipped models
    show at once, a run already in the store joins the table by itself, and the page then stops checking."""
    from digitlab.runs import RunStore
    from tests.test_app import finished_run

    finished_run(RunStore(), "alice", 0.91)
    with running_app(home) as url:
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        sent = []  # what the page sends the server: each rerun, of the page or of a fragment, is one message
        page.on("websocket", lambda socket: socket.on("framesent", lambda frame: sent.append(frame)))
        page.goto(url)
        models = page.locator('[data-testid="stMetric"]').filter(has_text="Models available").locator(
            '[data-testid="stMetricValue"]')
        expect(models).to_have_text("2", timeout=60_000)
        expect(page.get_by_text("the run store is still opening")).to_be_visible()
        expect(models).to_have_text("3", timeout=60_000)  # nobody clicked
        expect(page.get_by_text("the run store is still opening")).to_have_count(0)
        wait_idle(page)
        checks = len(sent)
        time.sleep(2)  # four checks' worth
        assert len(sent) == checks, "the page kept rerunning after the store had opened"
        assert checks >= 2  # the page's first run, then at least one check by the fragment
        assert_healthy(page)
        page.close()


@pytest.mark.parametrize("path, title", PAGES)
def test_every_page_renders_without_exception(server, page, tmp_path, path, title):
    page.goto(f"{server}/{path}")
    page.get_by_role("heading", name=title).first.wait_for(timeout=60_000)
    wait_idle(page)
    if path == "results":
        page.get_by_text("Most confused pairs").wait_for(timeout=60_000)
    assert_healthy(page)
    shoot(page, tmp_path, path or "home")


def test_every_page_fits_a_phone(server, browser, tmp_path):
    """Issue 15, defect 11: at 390×844 every page renders without error and without sideways scrolling."""
    phone = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True,
                                device_scale_factor=2)
    page = phone.new_page()
    for path, title in PAGES:
        page.goto(f"{server}/{path}")
        page.get_by_role("heading", name=title).first.wait_for(timeout=60_000)
        wait_idle(page)
        assert_healthy(page)
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 390, (path, width)
        shoot(page, tmp_path, f"{path or 'home'}-phone")
    phone.close()


def open_draw(server, page):
    page.goto(f"{server}/draw")
    page.get_by_text("Draw a digit", exact=True).first.wait_for(timeout=60_000)
    wait_idle(page)
    canvas = page.locator("canvas.digit-pad[data-ready]").first
    canvas.wait_for(timeout=30_000)
    return canvas


def test_drawing_with_the_mouse_predicts(server, page, tmp_path):
    canvas = open_draw(server, page)
    stroke(page, canvas, [(70, 60), (210, 60), (120, 230)])  # a "7": across the top, then down to the left
    page.get_by_text("What the models see").wait_for(timeout=60_000)
    wait_idle(page)
    expect(page.locator('[data-testid="stMetric"]').filter(has_text="Prediction")).to_have_count(2, timeout=30_000)
    values = predictions(page)
    assert len(values) == 2 and all(v.isdigit() for v in values), values
    assert "7" in values  # at least one of the two models reads the 7
    # The two models' probability bars (a first Plotly chart mounts after the browser loads Plotly), the 2 saliency
    # maps and the preparation strip.
    expect(page.locator('[data-testid="stPlotlyChart"]')).to_have_count(2, timeout=30_000)
    expect(page.locator('[data-testid="stImage"]')).to_have_count(3, timeout=30_000)
    assert page.get_by_text("Which pixels decided it").count() == 1
    assert_healthy(page)
    shoot(page, tmp_path, "draw-predicted")
    # Label it and add it to "my drawings": every model is then scored on the set.
    page.get_by_role("button", name="Add to my drawings").click()
    page.get_by_text("Replay my drawings through").wait_for(timeout=60_000)
    wait_idle(page)
    assert_healthy(page)


def test_a_narrow_window_shrinks_the_canvas_beside_the_answers_and_it_still_reads_the_digit(server, browser):
    """At 1,000 px wide (the sidebar open) the canvas's column is narrower than 280 px: the canvas shrinks to it
    instead of covering the first model's answer, and a 7 drawn across the smaller square is read as a 7."""
    context = browser.new_context(viewport={"width": 1000, "height": 900})
    page = context.new_page()
    canvas = open_draw(server, page)
    box = canvas.bounding_box()
    assert 150 < box["width"] < 280 and box["height"] == pytest.approx(box["width"], abs=1), box
    scale = box["width"] / 280
    stroke(page, canvas, [(70 * scale, 60 * scale), (210 * scale, 60 * scale), (120 * scale, 230 * scale)])
    wait_for_predictions(page, "shown.length === 3", None)
    assert predictions(page).count("7") >= 1, predictions(page)
    for metric in page.locator('[data-testid="stMetric"]').all():
        assert metric.bounding_box()["x"] >= box["x"] + box["width"], (metric.bounding_box(), box)
    undo = page.get_by_role("button", name="Undo").bounding_box()
    assert box["x"] < undo["x"] and undo["x"] + undo["width"] < box["x"] + box["width"]  # in the canvas's corner
    assert_healthy(page)
    context.close()


def test_the_offered_label_follows_the_latest_prediction(server, page):
    """Issue 15, defect 2: a 4 drawn in two strokes; the label must follow the guess after each stroke."""
    canvas = open_draw(server, page)
    label = page.get_by_test_id("stSelectbox").filter(has_text="This drawing is a").get_by_role("combobox")
    guesses = []
    for points in ([(90, 50), (70, 160), (200, 160)], [(170, 60), (170, 250)]):  # "L"-like stroke, then the stem
        stroke(page, canvas, points)
        page.get_by_text("What the models see").wait_for(timeout=60_000)
        wait_idle(page)
        assert_healthy(page)
        # Both answers, waited for: one clean-clone CI run read none here, no page failure asserted first (not seen
        # again in 9 runs, 4 of them with both cores busy); a page failure now fails above, a lost answer below.
        expect(page.get_by_test_id("stMetric").filter(has_text="Prediction")).to_have_count(2, timeout=20_000)
        ann, cnn = predictions(page)
        guesses.append(cnn)
        expect(label).to_have_value(cnn, timeout=10_000)  # the widget may update a moment after the metrics
    assert guesses[0] != guesses[1], f"the test needs two different guesses to mean anything, got {guesses}"
    assert_healthy(page)


INK = "c => { const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data; let n = 0; " \
      "for (let i = 3; i < d.length; i += 4) n += d[i] > 127; return n; }"  # inked pixels (the ink is alpha)


def wait_for_predictions(page, condition: str, arg, timeout=30_000):
    """Wait until the two Prediction values, as "ann,cnn", satisfy `condition` (a JS expression in `shown` and
    `arg`); polled every 100 ms."""
    page.wait_for_function(f"""(arg) => {{ const shown = [...document.querySelectorAll(
        '[data-testid="stMetricValue"]')].map((v) => v.innerText.trim()).join(); return {condition}; }}""",
                           arg=arg, polling=100, timeout=timeout)
    wait_idle(page)


def test_undo_and_clear_take_strokes_back(server, page):
    """The canvas's own Undo (its top-right corner): the answers go back to the drawing before the last stroke,
    and to "Draw a digit" when no stroke is left; Clear empties the canvas at once."""
    canvas = open_draw(server, page)
    stroke(page, canvas, [(90, 50), (70, 160), (200, 160)])  # the first stroke of a 4: an L
    wait_for_predictions(page, "shown.length === 3", None)
    first, first_ink = predictions(page), canvas.evaluate(INK)
    stroke(page, canvas, [(170, 60), (170, 250)])  # its stem
    wait_for_predictions(page, "shown.length === 3 && shown !== arg", ",".join(first))  # a test needs them to differ
    assert canvas.evaluate(INK) > first_ink > 0
    page.get_by_role("button", name="Undo").click()
    wait_for_predictions(page, "shown === arg", ",".join(first))
    assert canvas.evaluate(INK) == first_ink
    page.get_by_role("button", name="Undo").click()
    wait_for_predictions(page, "shown === ''", None)
    page.get_by_text("Draw a digit", exact=True).nth(1).wait_for(timeout=30_000)  # the title, then the prompt
    assert canvas.evaluate(INK) == 0
    expect(page.get_by_role("button", name="Undo")).to_be_hidden()  # nothing left to take back
    stroke(page, canvas, [(140, 40), (140, 240)])
    wait_for_predictions(page, "shown.length === 3", None)
    page.get_by_role("button", name="Clear").click()
    wait_for_predictions(page, "shown === ''", None)
    assert page.locator("canvas.digit-pad[data-ready]").first.evaluate(INK) == 0
    assert_healthy(page)


def start_training(page, url):
    """Open Train at `url` (its form from the link) and press Start where a person does."""
    page.goto(url)
    start = page.get_by_role("button", name="Start training")
    start.wait_for(timeout=60_000)
    wait_idle(page)
    start.scroll_into_view_if_needed()
    start.click()


def test_training_survives_page_switch_and_reload(server, page, tmp_path):
    start_training(page, f"{server}/train?model=ann&num_epochs=2&train_limit=2000&hidden_units=32")
    page.get_by_text("Run: ANN").wait_for(timeout=60_000)
    page.get_by_role("link", name="Home").first.click()
    page.get_by_role("heading", name="DigitLab").wait_for(timeout=60_000)
    page.get_by_role("link", name="Train").first.click()
    page.get_by_text("Run: ANN").wait_for(timeout=60_000)  # the job is still shown after coming back
    page.reload()
    page.get_by_text("Run: ANN").wait_for(timeout=60_000)  # and after a browser reload
    page.get_by_text("Finished: test accuracy").wait_for(timeout=180_000)
    assert_healthy(page)
    shoot(page, tmp_path, "train-finished")


def visible_box(element, *, seconds: float = 5.0):
    """The element's box once it is visible: "Starting" gives way to "Training" in a new element, and for a moment
    neither is on screen (its box is then None)."""
    deadline = time.time() + seconds
    while (box := element.bounding_box()) is None and time.time() < deadline:
        time.sleep(0.1)
    return box


def settled_box(element, *, seconds: float = 5.0):
    """The element's box once it has stopped moving (the same twice, 0.3 s apart), as a person waits for a page to
    stop shifting before clicking."""
    deadline, box = time.time() + seconds, element.bounding_box()
    while time.time() < deadline:
        time.sleep(0.3)
        box, last = element.bounding_box(), box
        if box and box == last:
            break
    return box


def test_a_run_shows_every_phase_in_view_and_stop_says_stopped_at_once(server, page, tmp_path):
    """Issue 15, defects 3 and 6: phases, a steady ETA, the live view where the eye is, Stop felt at once."""
    start_training(page, f"{server}/train?model=cnn&preset=reference&num_epochs=20&train_limit=20000&early_stopping=0")
    status = page.locator('[data-testid="stProgress"], [data-testid="stAlert"]').filter(
        has_text=re.compile("Starting|Training|Queued"))
    status.first.wait_for(timeout=60_000)
    stop = page.get_by_test_id("stMainBlockContainer").get_by_role("button", name="Stop", exact=True)  # not the
    # header's Stop, which stops the script run while it is running
    for element in (status.first, stop):  # in the first screen, without scrolling
        box = visible_box(element)
        assert box and 0 <= box["y"] and box["y"] + box["height"] <= page.viewport_size["height"], box
    seen, etas = set(), []
    deadline = time.time() + 240
    while "Training" not in seen and time.time() < deadline:
        text = page.locator('[data-testid="stProgress"], [data-testid="stAlert"]').first.inner_text()
        seen.update(word for word in ("Starting", "Training") if word in text)
        time.sleep(0.2)
    # Any epoch: on a fast CPU the first may end before the pace (4 s of training) gives an ETA.
    page.get_by_text(re.compile(r"Training: epoch \d+/20 · batch \d+.* about .* left")).wait_for(timeout=60_000)
    for _ in range(6):  # the ETA while training: it counts down steadily, never jumps by minutes
        match = re.search(r"about (\d+) min (\d+) s left|about (\d+) s left", page.locator(
            '[data-testid="stProgress"]').first.inner_text())
        if match:
            etas.append(int(match[1]) * 60 + int(match[2]) if match[1] else int(match[3]))
        time.sleep(0.5)
    assert {"Starting", "Training"} <= seen, seen
    assert len(etas) >= 3 and max(abs(a - b) / max(a, b) for a, b in zip(etas, etas[1:])) <= 0.25, etas
    clicked = time.time()
    stop.click()
    page.get_by_text(re.compile("^Stopped")).first.wait_for(timeout=2_000)  # within 2 s of the click
    assert time.time() - clicked < 2.5
    shoot(page, tmp_path, "train-stopping")
    page.get_by_text("Stopped by you").wait_for(timeout=120_000)
    assert_healthy(page)


def test_the_form_is_kept_after_visiting_home(server, page):
    """Issue 15, defect 4: set `fast` and 10,000 images, go to Home and back with the sidebar links."""
    page.goto(f"{server}/train")
    wait_idle(page)
    preset = page.get_by_test_id("stSelectbox").filter(has_text="Preset").get_by_role("combobox")
    preset.click()
    page.get_by_role("option", name="fast").click()
    wait_idle(page)
    images = page.get_by_test_id("stSlider").filter(has_text="Training images").get_by_role("slider")
    images.focus()
    for _ in range(50):  # 60,000 → 10,000 in steps of 1,000, with the keyboard
        page.keyboard.press("ArrowLeft")
    expect(images).to_have_value("10000")
    time.sleep(1)
    wait_idle(page)
    page.get_by_role("link", name="Home").first.click()
    page.get_by_role("heading", name="DigitLab").wait_for(timeout=60_000)
    page.get_by_role("link", name="Train").first.click()
    wait_idle(page)
    expect(preset).to_have_value("fast")
    fast_epochs = str(config.preset("fast", model="cnn").num_epochs)  # the fast preset's value, not reference's 10
    expect(page.get_by_role("spinbutton", name="Epochs")).to_have_value(fast_epochs)
    expect(images).to_have_value("10000")
    assert "preset=fast" in page.url and "train_limit=10000" in page.url


def confusion_cell(page, true, predicted):
    """Where a person clicks the confusion matrix's cell (true, predicted): its centre. The table is as wide as its
    content: the row names, then ten columns of `views.results.CELL_WIDTH`; a header row, then rows of 35 px."""
    table = page.get_by_test_id("stDataFrame").first
    table.scroll_into_view_if_needed()  # charts above it may still be resizing: look at it again, then click
    box = settled_box(table)
    whole = box["width"] >= 10 * CELL_WIDTH + ROW_NAMES  # a phone shows its left part: the names, then cells
    names = box["width"] - 10 * CELL_WIDTH if whole else ROW_NAMES
    return box["x"] + names + CELL_WIDTH * (predicted + 0.5), box["y"] + 35 * (true + 1.5)


CELL_WIDTH, ROW_NAMES = 54, 50  # px: views/results.py's CELL_WIDTH; the names column ("true 9") is ~52


def gallery_of(page, true, predicted):
    """The heading over a cell's test digits: case-sensitive and whole."""
    return page.get_by_text(re.compile(rf"^True {true}, predicted {predicted}: \d+ images?$"))


def test_clicking_a_confusion_cell_shows_those_digits(server, page, tmp_path):
    """Issue 15, defect 1: click the cell "true 4, predicted 9" at its centre, with the mouse, as a person does; then
    another cell, whose digits replace them."""
    page.goto(f"{server}/results")
    page.get_by_text("Most confused pairs").wait_for(timeout=90_000)
    wait_idle(page)
    for true, predicted in ((4, 9), (7, 2)):
        page.mouse.click(*confusion_cell(page, true, predicted))
        gallery_of(page, true, predicted).wait_for(timeout=30_000)
        wait_idle(page)
        assert_healthy(page)
    assert gallery_of(page, 4, 9).count() == 0  # one cell's digits at a time
    shoot(page, tmp_path, "results-cell")


def test_a_phone_tap_on_a_confusion_cell_shows_that_cells_digits(server, browser, tmp_path):
    """A tap picks the cell tapped, the first time and every time (Plotly's heatmap showed nothing for the first tap,
    then each tap the cell tapped before it: its select-on-click reads the last hover, which a touch sets after)."""
    phone = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True,
                                device_scale_factor=2)
    page = phone.new_page()
    page.goto(f"{server}/results")
    page.get_by_text("Most confused pairs").wait_for(timeout=90_000)
    wait_idle(page)
    for true, predicted in ((5, 3), (7, 2), (9, 4)):
        page.touchscreen.tap(*confusion_cell(page, true, predicted))
        gallery_of(page, true, predicted).wait_for(timeout=30_000)
        wait_idle(page)
        assert_healthy(page)
    assert page.evaluate("document.documentElement.scrollWidth") <= 390  # the table scrolls inside, not the page
    shoot(page, tmp_path, "phone-results-cell")
    phone.close()


def test_the_server_never_maps_tensorflow(server, page):
    """Issue 16: every page visited and a digit drawn, yet no TensorFlow library is mapped in the server process."""
    for path, title in [("", "DigitLab"), ("train", "Train a model"), ("results", "Results"),
                        ("compare", "Compare runs")]:
        page.goto(f"{server}/{path}")
        page.get_by_role("heading", name=title).first.wait_for(timeout=60_000)
        wait_idle(page)
    canvas = open_draw(server, page)
    stroke(page, canvas, [(140, 40), (140, 240)])  # a "1"
    page.get_by_text("What the models see").wait_for(timeout=60_000)
    wait_idle(page)
    assert_healthy(page)
    maps = Path(f"/proc/{server.pid}/maps").read_text()
    mapped = {line.split()[-1] for line in maps.splitlines() if len(line.split()) >= 6}
    assert "onnxruntime" in " ".join(mapped)  # the check can see libraries: the serving one is there
    assert not [m for m in mapped if "tensorflow" in m.lower()], sorted(m for m in mapped if "tensorflow" in m)


def touch_stroke(cdp, box, points, steps=10):
    """One finger stroke through `points` (canvas pixels), as Chromium's touch events."""
    def at(x, y):
        return [{"x": box["x"] + x, "y": box["y"] + y}]

    (x, y), rest = points[0], points[1:]
    cdp.send("Input.dispatchTouchEvent", {"type": "touchStart", "touchPoints": at(x, y)})
    for x1, y1 in rest:
        for t in np.linspace(0, 1, steps)[1:]:
            cdp.send("Input.dispatchTouchEvent", {"type": "touchMove",
                                                  "touchPoints": at(x + (x1 - x) * t, y + (y1 - y) * t)})
        x, y = x1, y1
    cdp.send("Input.dispatchTouchEvent", {"type": "touchEnd", "touchPoints": []})


def in_first_screen(page, locator) -> bool:
    box = locator.bounding_box()
    size = page.viewport_size
    return bool(box) and box["y"] >= 0 and box["y"] + box["height"] <= size["height"] and \
        box["x"] >= 0 and box["x"] + box["width"] <= size["width"]


def test_a_phone_draws_with_a_finger_and_sees_both_answers_next_to_the_canvas(server, browser, tmp_path):
    """Issue 15, defect 11: at 390×844 with touch, both answers right under the canvas, nothing cut off."""
    phone = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True,
                                device_scale_factor=2)
    page = phone.new_page()
    canvas = open_draw(server, page)
    touch_stroke(phone.new_cdp_session(page), canvas.bounding_box(), [(140, 40), (140, 240)])  # a 1
    page.get_by_text("What the models see").wait_for(timeout=60_000)
    wait_idle(page)
    answers = page.get_by_text(re.compile(r"^ANN: \d \(\d+%\) · CNN: \d \(\d+%\)$"))
    assert in_first_screen(page, answers), answers.bounding_box()
    assert in_first_screen(page, canvas)
    assert page.locator(".modebar").filter(has=page.locator(":visible")).count() == 0  # no Plotly toolbars
    page.get_by_role("button", name="Add to my drawings").click()
    table = page.get_by_test_id("stDataFrame").first
    table.wait_for(timeout=60_000)
    wait_idle(page)
    assert table.bounding_box()["x"] + table.bounding_box()["width"] <= 390  # the scores table fits the screen
    height = page.evaluate("document.documentElement.scrollHeight")
    assert height < 3000, height  # was ~4,300 px
    assert page.evaluate("document.documentElement.scrollWidth") <= 390  # no sideways scrolling
    assert_healthy(page)
    shoot(page, tmp_path, "phone-draw")
    phone.close()
