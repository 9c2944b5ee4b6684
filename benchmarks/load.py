"""Many visitors drawing at once while a training runs: what the server can take, measured on the server alone.

    taskset -c 1 python -m benchmarks.load [--sessions 20] [--minutes 2] [--server-cpus 0]

A real `streamlit run app.py` (fresh home) pinned to `--server-cpus` with taskset (its training worker inherits the
pin and runs niced beside it); run the benchmark itself pinned to the other core, so the headless Chromium pages
load the browsers' core, not the server's. One visitor starts a reference-CNN training (5 epochs on 20,000 images)
on the Train page; meanwhile `--sessions` visitors, each its own browser context (its own Streamlit session), open
Draw and for `--minutes` draw digit after digit: mouse-up → the new preparation picture on screen is one stroke's
latency. Every fourth stroke is followed by Clear (not timed).

Reported: strokes answered per visitor (every visitor must get answers), exceptions or failure messages on any
page, p50/p95/max stroke latency, the server's CPU per stroke and per new visitor's Draw page (from /proc), server
RSS before, at peak and after, and from CPU per stroke how many visitors drawing at once one core can serve.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time
from pathlib import Path

from playwright.async_api import async_playwright

from benchmarks.browser import ARGS, CHROMIUM, IDLE, fresh_home, rss_mb, server

DIGITS = [[(140, 40), (140, 240)], [(70, 60), (210, 60), (120, 230)], [(90, 50), (70, 160), (200, 160)],
          [(80, 80), (200, 80), (200, 230)]]
FAILURE = "hit a problem it did not expect"


def process_cpu(pid: int) -> float:
    """User + system CPU seconds of one process and its finished children (the worker is not one of them)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def stroke(page, box, points, steps=8):
    (x, y), rest = points[0], points[1:]
    await page.mouse.move(box["x"] + x, box["y"] + y)
    await page.mouse.down()
    for x1, y1 in rest:
        for i in range(1, steps + 1):
            await page.mouse.move(box["x"] + x + (x1 - x) * i / steps, box["y"] + y + (y1 - y) * i / steps)
        x, y = x1, y1
    await page.mouse.up()


async def visitor(browser, url, until, index, results):
    context = await browser.new_context(viewport={"width": 1400, "height": 1000})
    page = await context.new_page()
    latencies, problems = [], []
    try:
        opened = time.perf_counter()
        await page.goto(f"{url}/draw", timeout=300_000)
        canvas = page.locator("canvas.upper-canvas").first
        await canvas.wait_for(timeout=300_000)
        await page.wait_for_selector(IDLE, timeout=300_000)
        results["open"].append(time.perf_counter() - opened)
        await asyncio.sleep(2.5)  # a freshly mounted canvas needs a moment before it takes strokes
        strip = page.locator('[data-testid="stImage"] img').last
        count = 0
        while time.perf_counter() < until:
            before = await strip.get_attribute("src") if await strip.count() else None
            box = await canvas.bounding_box()
            await stroke(page, box, DIGITS[(index + count) % len(DIGITS)])
            done = time.perf_counter()
            deadline = done + 120
            while time.perf_counter() < deadline:  # the answer to this stroke: a new picture
                if await strip.count() and await strip.get_attribute("src") not in (None, before):
                    break
                await asyncio.sleep(0.02)
            else:
                problems.append(f"visitor {index}: no answer to stroke {count} within 120 s")
                break
            latencies.append(time.perf_counter() - done)
            count += 1
            if await page.locator('[data-testid="stException"]').count() or await page.get_by_text(FAILURE).count():
                problems.append(f"visitor {index}: the page shows an error")
            if count % 4 == 0:
                await page.get_by_role("button", name="Clear").click()
                await page.wait_for_function("() => !document.querySelector('[data-testid=\"stImage\"]')",
                                             timeout=120_000)
                await asyncio.sleep(1.5)
                canvas = page.locator("canvas.upper-canvas").first
    except Exception as error:  # a visitor that fails is reported, not hidden
        problems.append(f"visitor {index}: {type(error).__name__}: {str(error).splitlines()[0]}")
    finally:
        await context.close()
    results["latencies"].extend(latencies)
    results["answered"].append(len(latencies))
    results["problems"].extend(problems)


async def start_training(browser, url):
    page = await browser.new_page(viewport={"width": 1400, "height": 1000})
    await page.goto(f"{url}/train?model=cnn&preset=reference&num_epochs=5&train_limit=20000")
    await page.get_by_role("button", name="Start training").click()
    await page.get_by_text("Run: CNN").first.wait_for(timeout=300_000)
    return page


async def main(sessions: int, minutes: float, server_cpus: str) -> None:
    with fresh_home() as home, server(home, cpus=server_cpus) as (url, process, _):
        async with async_playwright() as p:
            browser = await p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            warm = await browser.new_page()
            await warm.goto(f"{url}/draw")
            await warm.locator("canvas.upper-canvas").first.wait_for(timeout=300_000)
            await warm.close()
            rss_before = rss_mb(process.pid)
            training = await start_training(browser, url)
            results = {"open": [], "latencies": [], "answered": [], "problems": []}
            peak = [rss_before]
            cpu_before = process_cpu(process.pid)
            until = time.perf_counter() + 60 * minutes

            async def watch():
                while True:
                    peak.append(rss_mb(process.pid))
                    await asyncio.sleep(1)

            watcher = asyncio.create_task(watch())
            await asyncio.gather(*(visitor(browser, url, until, i, results) for i in range(sessions)))
            watcher.cancel()
            cpu = process_cpu(process.pid) - cpu_before
            status = " ".join(await training.locator('[data-testid="stProgress"], [data-testid="stAlert"]')
                              .all_inner_texts())[:120]
            await browser.close()
        await asyncio.sleep(30)
        rss_after = rss_mb(process.pid)

    latencies = sorted(results["latencies"])
    strokes = len(latencies)
    p95 = latencies[int(0.95 * (strokes - 1))] if strokes else float("nan")
    per_stroke = cpu / max(1, strokes)  # includes the new visitors' pages and the Clear reruns: an upper bound
    print(f"{sessions} visitors, {minutes} min, server pinned to CPU {server_cpus}, one training running")
    print(f"strokes answered per visitor: {results['answered']} (fewest {min(results['answered'])})")
    print(f"problems: {len(results['problems'])}" + "".join(f"\n  {p}" for p in results["problems"][:10]))
    print(f"mouse-up → answer on screen: p50 {statistics.median(latencies):.2f} s, p95 {p95:.2f} s, "
          f"max {latencies[-1]:.2f} s over {strokes} strokes")
    print(f"new visitor's Draw page ready: median {statistics.median(results['open']):.1f} s")
    print(f"server CPU: {cpu:.1f} s in all, {per_stroke * 1000:.0f} ms per stroke (everything included); one core "
          f"serves about {1 / per_stroke:.0f} strokes a second")
    print(f"server RSS: before {rss_before:.0f} MB, peak {max(peak):.0f} MB, 30 s after {rss_after:.0f} MB")
    print(f"training at the end: {status}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--sessions", type=int, default=20)
    parser.add_argument("--minutes", type=float, default=2)
    parser.add_argument("--server-cpus", default="0")
    args = parser.parse_args()
    asyncio.run(main(args.sessions, args.minutes, args.server_cpus))
