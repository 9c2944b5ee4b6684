"""Inside the model: how long the map of test digits takes to appear when a visitor first asks for it.

    python -m benchmarks.inside_map [--runs 3]

For each run a fresh server (`streamlit run app.py`, fresh home) and headless Chromium: open Inside the model, draw a
1, wait for the layer pictures, then click "Where your digit sits" and time until Plotly has drawn the map's scatter
layer (first time); switch tabs and time it again (cached).
"""

import argparse
import time


from benchmarks.browser import IDLE, fresh_home, run_in_browser, server


def one_run(browser) -> tuple[float, float]:
    with fresh_home() as home, server(home) as (url, _, _):
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(f"{url}/inside")
        canvas = page.locator("canvas.digit-pad[data-ready]").first
        canvas.wait_for(timeout=120_000)
        page.wait_for_selector(IDLE)
        box = canvas.bounding_box()
        page.mouse.move(box["x"] + 140, box["y"] + 40)
        page.mouse.down()
        for i in range(1, 11):
            page.mouse.move(box["x"] + 140, box["y"] + 40 + 20 * i)
        page.mouse.up()
        page.get_by_text("Convolution 1:").first.wait_for(timeout=60_000)
        page.wait_for_selector(IDLE)
        timings = []
        for _ in range(2):
            start = time.perf_counter()
            page.get_by_role("tab", name="Where your digit sits").click()
            page.locator(".js-plotly-plot .scatterlayer").first.wait_for(timeout=60_000)
            timings.append(time.perf_counter() - start)
            page.get_by_role("tab", name="Layer by layer").click()
            page.wait_for_selector(IDLE)
            time.sleep(0.5)
        page.close()
        return timings[0], timings[1]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    for first, again in run_in_browser(one_run, args.runs):
        print(f"map first asked: {first:.2f} s; asked again: {again:.2f} s")


if __name__ == "__main__":
    main()
