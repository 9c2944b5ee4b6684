"""Start-up as a visitor sees it, on fresh servers (`streamlit run app.py` as a subprocess, fresh DigitLab home with the
MNIST cache copied in, as after a first start) and headless Chromium:
(A) the Draw link opened at once: server start → a drawn digit's answers on screen, then its `Prediction` figures;
(B) another fresh server, Home opened at once: → health endpoint answers, → Home's heading, → its models table
(both timed in the page);
then later strokes on Draw: mouse-up → the new prediction visible, and a new visitor on that warm server: opening
Draw → the canvas, and → a drawn digit's answers (what is left when the server's start costs nothing).

    python -m benchmarks.startup [--runs 3] [--pin] [--app benchmarks/floor_app.py]

--pin: the server on core 0, Chromium on core 1 (as if the visitor's browser ran on another machine).
--app: (A) only, for that app script and for app.py, alternating which goes first run by run (paired figures):
`benchmarks/floor_app.py` is Streamlit and the canvas alone.

Needs Debian's chromium at /usr/bin/chromium. Prints seconds per run and the median.
"""

import argparse
import itertools
import os
import statistics
import time


from benchmarks.browser import draw_on_draw_page, draw_seven, fresh_home, run_in_browser, server, shown_moments, watch

# Home's heading, and its models table drawn (the grid's canvas), as the page shows them.
_WATCH_HOME = watch(heading="[...document.querySelectorAll('h1')].some((h) => h.textContent.includes('DigitLab'))",
                    table="!!document.querySelector('[data-testid=\"stDataFrame\"] canvas')")


def draw_first(browser, *, server_cpus: str | None = None, app: str = "app.py") -> dict:
    """(A): seconds from server start until the first drawn digit's answers are on screen (the line under the
    canvas: "ANN: 7 (98%) · CNN: 7 (99%)"), and until the big "Prediction" figures beside it. The visitor's tab is
    open before the server starts (opening a tab is not the server's time: 0.27–0.30 s here)."""
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    with fresh_home() as home, server(home, cpus=server_cpus, app=app) as (url, _, start):
        moments = draw_on_draw_page(page, url)
        page.close()
        return {"draw_first_" + name: moment - start for name, moment in moments.items()}


def home_first(browser, *, server_cpus: str | None = None) -> dict:
    """(B): Home's milestones from server start, then the stroke latency on Draw, then a new visitor's Draw."""
    with fresh_home() as home, server(home, cpus=server_cpus) as (url, _, start):
        health = time.perf_counter() - start
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.add_init_script(_WATCH_HOME)
        page.goto(url)
        home = {name: moment - start for name, moment in shown_moments(page, ["heading", "table"]).items()}
        draw = browser.new_page(viewport={"width": 1400, "height": 1000})
        draw_on_draw_page(draw, url)
        visitor = browser.new_page(viewport={"width": 1400, "height": 1000})
        opened = time.perf_counter()
        moments = draw_on_draw_page(visitor, url)
        visitor.close()
        strokes = []
        for i in range(5):  # later strokes: clear, draw again, wait for the new prediction
            draw.get_by_role("button", name="Clear").click()
            draw.wait_for_function("() => !document.querySelector('[data-testid=\"stImage\"]')", timeout=60_000)
            draw.wait_for_selector('[data-testid="stApp"][data-test-script-state="notRunning"]')
            box = draw.locator("canvas.digit-pad[data-ready]").first.bounding_box()
            t = draw_seven(draw, box["x"], box["y"], dx=-20 + 10 * i)
            draw.locator('[data-testid="stMetric"]').filter(has_text="Prediction").first.wait_for(timeout=20_000)
            strokes.append(time.perf_counter() - t)
        page.close()  # a tab left open on a stopped server keeps trying to reconnect while the next run is timed
        draw.close()
        return {"health": health, "home_heading": home["heading"], "home_table": home["table"],
                "stroke_to_prediction": statistics.median(strokes),
                "warm_visitor_canvas": moments["canvas"] - opened, "warm_visitor_answer": moments["answer"] - opened}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--pin", action="store_true", help="server on core 0, Chromium on core 1")
    parser.add_argument("--app", help="time (A) only, for this app script and for app.py, alternating")
    args = parser.parse_args()
    cpus = "0" if args.pin else None
    if args.pin:
        os.sched_setaffinity(0, {1})  # Playwright's driver and Chromium inherit it
    if args.app:
        turns = itertools.count()

        def paired(browser):
            apps = [args.app, "app.py"] if next(turns) % 2 == 0 else ["app.py", args.app]
            times = {app: draw_first(browser, server_cpus=cpus, app=app) for app in apps}
            return {f"{key} {app}": value for app in sorted(times) for key, value in times[app].items()}

        results = run_in_browser(paired, args.runs)
    else:
        results = run_in_browser(lambda browser: {**draw_first(browser, server_cpus=cpus),
                                                  **home_first(browser, server_cpus=cpus)}, args.runs)
    for key in results[0]:
        values = [r[key] for r in results]
        print(f"{key:44s} median {statistics.median(values):6.2f} s   runs " + " ".join(f"{v:.2f}" for v in values))


if __name__ == "__main__":
    main()
