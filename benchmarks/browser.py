"""What the browser benchmarks share: a real `streamlit run app.py` server, headless Chromium, a drawn 7, RSS."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]
IDLE = '[data-testid="stApp"][data-test-script-state="notRunning"]'


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def fresh_home():
    """A new DigitLab home with the MNIST cache copied in (as after a first start); removed afterwards."""
    from digitlab.data import home_dir, load_mnist

    load_mnist()  # make sure the cache exists
    home = Path(tempfile.mkdtemp())
    shutil.copy(home_dir() / "mnist.npz", home / "mnist.npz")
    try:
        yield home
    finally:
        shutil.rmtree(home, ignore_errors=True)


@contextlib.contextmanager
def server(home: Path, *, cpus: str | None = None, app: str = "app.py", **env):
    """`streamlit run app` on a free port with DIGITLAB_HOME=home (pinned to `cpus` with taskset, e.g. "0");
    yields (url, process, start time)."""
    port = free_port()
    environment = {**os.environ, "DIGITLAB_HOME": str(home), **env}
    environment.pop("MLFLOW_TRACKING_URI", None)
    start = time.perf_counter()
    process = subprocess.Popen(
        (["taskset", "-c", cpus] if cpus else []) + [
            sys.executable, "-m", "streamlit", "run", app, "--server.headless", "true", "--server.port", str(port),
            "--browser.gatherUsageStats", "false"], cwd=ROOT, env=environment, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        while True:
            try:
                urllib.request.urlopen(f"{url}/_stcore/health", timeout=1)
                break
            except OSError:
                if process.poll() is not None:
                    raise RuntimeError("streamlit exited before it became healthy") from None
                time.sleep(0.05)
        yield url, process, start
    finally:
        process.terminate()
        process.wait(timeout=30)


def launch(playwright):
    return playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)


def stroke_points(x0, y0, dx=0):
    """A 7 as mouse positions on a 280×280 canvas whose top-left corner is (x0, y0)."""
    top = [(x0 + 70 + dx + 140 * i / 14, y0 + 60) for i in range(15)]
    return top + [(x0 + 210 + dx - 90 * i / 24, y0 + 60 + 170 * i / 24) for i in range(25)]


def draw_seven(page, x0, y0, dx=0):
    points = stroke_points(x0, y0, dx)
    page.mouse.move(*points[0])
    page.mouse.down()
    for point in points[1:]:
        page.mouse.move(*point)
    page.mouse.up()
    return time.perf_counter()  # the moment the stroke ends


def watch(**conditions: str) -> str:
    """A page script that marks, in the page's own clock (`window.__shown[name]`, ms since the epoch), the frame in
    which each condition (a JavaScript expression) first holds. Playwright's client learns of a change 0.1-0.6 s
    after the page shows it on two busy cores (measured: session 10), so timing by `wait_for` times Playwright as
    much as DigitLab."""
    checks = ",\n".join(f"  [{name!r}, () => {expression}]" for name, expression in conditions.items())
    return """(() => {
window.__shown = {};
const checks = [
%s
];
const watching = new MutationObserver(() => {
  for (const [name, holds] of checks) {
    if (!(name in window.__shown) && holds()) {
      window.__shown[name] = 0;
      requestAnimationFrame(() => { window.__shown[name] = Date.now(); });  // the frame that paints it
    }
  }
  if (checks.every(([name]) => name in window.__shown)) watching.disconnect();  // no cost to the page after
});
watching.observe(document, {subtree: true, childList: true, characterData: true});
})();
""" % checks


def shown_moments(page, names) -> dict:
    """Wait until the page has shown every named condition of `watch`; returns their moments as perf_counter values."""
    page.wait_for_function(f"() => {' && '.join(f'window.__shown[{n!r}] > 0' for n in names)}", timeout=120_000)
    to_perf_counter = time.perf_counter() - time.time()  # the page's Date.now() and time.time() share the wall clock
    shown = page.evaluate("() => window.__shown")
    return {name: shown[name] / 1000 + to_perf_counter for name in names}


# The answers under the canvas ("ANN: 7 (98%) · CNN: 7 (99%)"), then the big "Prediction" figures.
_WATCH_ANSWERS = watch(
    answer="document.body && document.body.textContent.includes('CNN: ')",
    metric="[...document.querySelectorAll('[data-testid=\"stMetric\"]')].some((m) => "
           "m.textContent.includes('Prediction'))")


def draw_on_draw_page(page, url) -> dict:
    """Open Draw, draw a 7 once the canvas takes strokes, and wait until both answers are on screen under the canvas,
    then for the big "Prediction" figures beside it. Returns perf_counter moments: the canvas (when Playwright sees
    it: the robot's reaction), the answers and the figures as the page shows them ("answer", "metric"), and as
    Playwright's client learns of them ("answer_noticed")."""
    page.add_init_script(_WATCH_ANSWERS)
    page.goto(f"{url}/draw")
    canvas = page.locator("canvas.digit-pad[data-ready]").first
    canvas.wait_for(timeout=120_000)
    shown = time.perf_counter()
    box = canvas.bounding_box()
    draw_seven(page, box["x"], box["y"])
    page.get_by_text("CNN: ").first.wait_for(timeout=120_000)
    noticed = time.perf_counter()
    return {"canvas": shown, "answer_noticed": noticed, **shown_moments(page, ["answer", "metric"])}


def rss_mb(pid: int) -> float:
    """Resident memory of a process, in MB (0 when it is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def process_cpu(pid: int) -> float:
    """User + system CPU seconds one process (all its threads, none of its children) has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def descendants(pid: int) -> list[int]:
    """Every live process below `pid` (children, their children, …)."""
    parents = {}
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                parents[int(proc.name)] = int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
    found, frontier = [], [pid]
    while frontier:
        children = [child for child, parent in parents.items() if parent in frontier]
        found += children
        frontier = children
    return found


def cpu_seconds(match: str) -> float:
    """User + system CPU seconds used so far by every process whose command line contains `match`."""
    total, tick = 0.0, os.sysconf("SC_CLK_TCK")
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if match.encode() not in (proc / "cmdline").read_bytes():
                continue
            fields = (proc / "stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick  # utime, stime
        except (OSError, IndexError, ValueError):
            continue
    return total


def run_in_browser(one_run, runs: int) -> list:
    """`one_run(browser)` `runs` times in one headless Chromium; returns what each run gave."""
    from playwright.sync_api import sync_playwright  # noqa: PLC0415

    with sync_playwright() as p:
        browser = launch(p)
        results = [one_run(browser) for _ in range(runs)]
        browser.close()
    return results
