"""What one visitor costs the server, in CPU seconds read from /proc: a new visitor's first page, and one stroke.

    python -m benchmarks.visitor_cost [--visitors 5] [--strokes 15] [--profile DIR]

A real `streamlit run app.py` (fresh home) warmed by one visitor who opened every page and drew. Then, one at a
time, `--visitors` new browser contexts (new Streamlit sessions) open Home and then Draw; the server's CPU time is
read before and after each page is idle. The last one draws `--strokes` strokes, each a different digit so every
stroke changes the prediction, waiting for the prediction after each. Reported: server CPU per new visitor's Home
and Draw page, per stroke (median), server RSS, and the number of TensorFlow libraries mapped in the server.
With --profile, py-spy samples the server during the strokes and DIR/strokes.txt lists where the time went.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import time
from collections import Counter
from pathlib import Path

from playwright.sync_api import sync_playwright

from benchmarks.browser import IDLE, fresh_home, launch, process_cpu, rss_mb, server

DIGITS = [  # strokes on the 280×280 canvas that read as different digits, drawn in turn
    [(140, 40), (140, 240)],  # 1
    [(70, 60), (210, 60), (120, 230)],  # 7
    [(90, 50), (70, 160), (200, 160)],  # an L: the start of a 4
]


def idle(page):
    page.wait_for_selector(IDLE, timeout=120_000)
    time.sleep(0.3)


def stroke(page, canvas, points, steps=10):
    box = canvas.bounding_box()
    (x, y), rest = points[0], points[1:]
    page.mouse.move(box["x"] + x, box["y"] + y)
    page.mouse.down()
    for x1, y1 in rest:
        for i in range(1, steps + 1):
            page.mouse.move(box["x"] + x + (x1 - x) * i / steps, box["y"] + y + (y1 - y) * i / steps)
        x, y = x1, y1
    page.mouse.up()


def tensorflow_libraries(pid: int) -> int:
    maps = Path(f"/proc/{pid}/maps").read_text().splitlines()
    return len({line.split()[-1] for line in maps if "tensorflow" in line.lower()})


def summarise_profile(raw: Path, out: Path, top: int = 25) -> None:
    """py-spy's collapsed stacks → the functions with the most samples anywhere on the stack, and the leaves."""
    inclusive, leaves, total = Counter(), Counter(), 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        frames, n = stack.split(";"), int(count)
        total += n
        leaves[frames[-1]] += n
        for frame in set(frames):
            inclusive[frame] += n
    lines = [f"{total} samples"]
    lines += ["", "on the stack:"] + [f"{n / total:6.1%}  {f}" for f, n in inclusive.most_common(top)]
    lines += ["", "leaves:"] + [f"{n / total:6.1%}  {f}" for f, n in leaves.most_common(top)]
    out.write_text("\n".join(lines) + "\n")


def main(visitors: int, strokes: int, profile: Path | None) -> None:
    with fresh_home() as home, server(home) as (url, process, _), sync_playwright() as p:
        browser = launch(p)
        warm = browser.new_page(viewport={"width": 1400, "height": 1000})
        for path in ("", "train", "results", "compare", "draw"):
            warm.goto(f"{url}/{path}")
            idle(warm)
        canvas = warm.locator("canvas.digit-pad[data-ready]").first
        stroke(warm, canvas, DIGITS[0])
        warm.get_by_text("What the models see").wait_for(timeout=120_000)
        warm.close()

        home_cpu, draw_cpu = [], []
        for _ in range(visitors):
            context = browser.new_context(viewport={"width": 1400, "height": 1000})
            page = context.new_page()
            before = process_cpu(process.pid)
            page.goto(url)
            page.get_by_role("heading", name="Models").wait_for(timeout=120_000)
            idle(page)
            home_cpu.append(process_cpu(process.pid) - before)
            before = process_cpu(process.pid)
            page.goto(f"{url}/draw")
            page.locator("canvas.digit-pad[data-ready]").first.wait_for(timeout=120_000)
            idle(page)
            draw_cpu.append(process_cpu(process.pid) - before)
            context.close()

        context = browser.new_context(viewport={"width": 1400, "height": 1000})
        page = context.new_page()
        page.goto(f"{url}/draw")
        canvas = page.locator("canvas.digit-pad[data-ready]").first
        canvas.wait_for(timeout=120_000)
        idle(page)
        spy = None
        if profile:
            profile.mkdir(parents=True, exist_ok=True)
            spy = subprocess.Popen(["py-spy", "record", "--gil", "-p", str(process.pid), "-r", "200", "-f", "raw", "-o",
                                    str(profile / "strokes.raw")], stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL)
            time.sleep(1)
        per_stroke, answer = [], page.locator('[data-testid="stMetric"]').filter(has_text="Prediction").first
        clear = page.get_by_role("button", name="Clear")
        for i in range(strokes):
            if i:
                clear.click()
                page.wait_for_function("() => !document.querySelector('[data-testid=\"stImage\"]')", timeout=60_000)
                idle(page)
            before = process_cpu(process.pid)
            stroke(page, canvas, DIGITS[i % len(DIGITS)])
            answer.wait_for(timeout=60_000)
            idle(page)
            per_stroke.append(process_cpu(process.pid) - before)
        if spy:
            spy.send_signal(2)
            spy.wait(timeout=60)
            summarise_profile(profile / "strokes.raw", profile / "strokes.txt")
        rss = rss_mb(process.pid)
        libraries = tensorflow_libraries(process.pid)
        browser.close()

    print(f"server CPU, new visitor's Home: median {statistics.median(home_cpu):.3f} s  (each: "
          + ", ".join(f"{c:.2f}" for c in home_cpu) + ")")
    print(f"server CPU, new visitor's Draw: median {statistics.median(draw_cpu):.3f} s  (each: "
          + ", ".join(f"{c:.2f}" for c in draw_cpu) + ")")
    print(f"server CPU per stroke (whole rerun, warm): mean {statistics.mean(per_stroke) * 1000:.0f} ms, median "
          f"{statistics.median(per_stroke) * 1000:.0f} ms, max {max(per_stroke) * 1000:.0f} ms over {len(per_stroke)} "
          "strokes (/proc counts in 10 ms ticks: the mean is the precise figure)")
    print(f"server RSS after all pages and strokes: {rss:.0f} MB; TensorFlow libraries mapped: {libraries}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--visitors", type=int, default=5)
    parser.add_argument("--strokes", type=int, default=15)
    parser.add_argument("--profile", type=Path)
    args = parser.parse_args()
    main(args.visitors, args.strokes, args.profile)
