"""Server memory (RSS): idle, during one training, and after many trainings.

    python -m benchmarks.memory [--trainings 20]

A real `streamlit run app.py` with a fresh home (the server, plus the queue runner and training worker it starts,
all counted: "below the server" is every process it started); headless Chromium visits Home, Draw (draws a 7, so
both shipped models load), Results and Compare, then the page closes and the server settles: **idle**. One visitor then
starts the reference CNN for 2 epochs on the Train page and watches it: server and worker RSS sampled every 0.5 s
(**during one training**, peak). Then `--trainings` short runs (ANN, 1 epoch, 2,000 images) are started one after
another from the Train page, each followed by a visit to Results (a new model and report in the caches): the
server's RSS once the pages are closed and it has settled is compared with idle.
"""

from __future__ import annotations

import argparse
import threading
import time

from playwright.sync_api import sync_playwright

from benchmarks.browser import IDLE, descendants, draw_on_draw_page, fresh_home, launch, rss_mb, server


def settle(pid, seconds=15.0):
    """RSS after `seconds` without visitors (median of the last samples)."""
    samples = []
    for _ in range(int(seconds / 0.5)):
        samples.append(rss_mb(pid))
        time.sleep(0.5)
    return sorted(samples[-6:])[3]


def visit_everything(browser, url):
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(url)
    page.locator('[data-testid="stDataFrame"]').first.wait_for(timeout=120_000)
    draw_on_draw_page(page, url)
    for path in ("results", "compare"):
        page.goto(f"{url}/{path}")
        page.wait_for_selector(IDLE, timeout=120_000)
    page.close()


def train_from_the_page(browser, url, query, *, then_results=False, timeout=600):
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(f"{url}/train?{query}")
    page.get_by_role("button", name="Start training").click()
    page.get_by_text("Finished: test accuracy").wait_for(timeout=timeout * 1000)
    if then_results:
        page.goto(f"{url}/results")
        page.wait_for_selector(IDLE, timeout=120_000)
        page.locator('[data-testid="stMetric"]').first.wait_for(timeout=120_000)
    page.close()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--trainings", type=int, default=20)
    args = parser.parse_args()
    with fresh_home() as home, server(home) as (url, process, _), sync_playwright() as p:
        browser = launch(p)
        visit_everything(browser, url)
        idle = settle(process.pid)
        print(f"idle (after visiting every page): {idle:.0f} MB", flush=True)

        peak = {"server": 0.0, "below": 0.0, "together": 0.0}
        stop = threading.Event()

        def sample():
            while not stop.is_set():
                server_rss = rss_mb(process.pid)
                below = sum(rss_mb(pid) for pid in descendants(process.pid))  # queue runner + training worker
                peak["server"] = max(peak["server"], server_rss)
                peak["below"] = max(peak["below"], below)
                peak["together"] = max(peak["together"], server_rss + below)
                time.sleep(0.5)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        start = time.perf_counter()
        train_from_the_page(browser, url, "model=cnn&preset=reference&num_epochs=2&early_stopping=0")
        stop.set()
        sampler.join()
        print(f"during one training (reference CNN, 2 epochs, {time.perf_counter() - start:.0f} s): server peak "
              f"{peak['server']:.0f} MB, queue runner + worker peak {peak['below']:.0f} MB, together at most "
              f"{peak['together']:.0f} MB", flush=True)

        for i in range(args.trainings):
            train_from_the_page(browser, url, "model=ann&num_epochs=1&train_limit=2000&hidden_units=32",
                                then_results=True)
            print(f"training {i + 1}: server {rss_mb(process.pid):.0f} MB", flush=True)
        after = settle(process.pid, seconds=30)
        browser.close()
    print(f"\n| state | server RSS |\n|---|---|\n| idle | {idle:.0f} MB |\n"
          f"| during one training (peak) | {peak['server']:.0f} MB (+ runner and worker {peak['below']:.0f} MB; "
          f"together {peak['together']:.0f} MB) |\n"
          f"| after {args.trainings} trainings, settled | {after:.0f} MB ({100 * (after / idle - 1):+.1f}% of idle) |")


if __name__ == "__main__":
    main()
