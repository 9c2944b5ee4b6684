"""Load and soak: many visitors drawing at once while a training runs, in the public demo mode.

    python -m benchmarks.load [--sessions 20] [--minutes 3]

A real `streamlit run app.py` (DIGITLAB_PUBLIC=1, fresh home). One visitor starts the reference CNN on the Train
page; meanwhile `--sessions` headless Chromium pages (each its own browser context, so its own Streamlit session)
open Draw and, for `--minutes`, clear the canvas, draw a 7 and wait for the prediction, again and again (a stroke
made while the canvas is still mounting is lost and drawn again; its latency counts from the first try). Reported:
predictions per session, mouse-up → prediction visible p50/p95, lost strokes, any `stException` on any page, server
RSS before, at peak and a minute after the sessions close. The browsers share the server's cores, so latencies
include rendering 20 pages on 2 cores.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time

from playwright.async_api import TimeoutError as PlaywrightTimeout
from playwright.async_api import async_playwright

from benchmarks.browser import ARGS, CHROMIUM, IDLE, cpu_seconds, fresh_home, rss_mb, server, stroke_points


CPU_USERS = {"streamlit server": "streamlit", "training worker": "digitlab.jobs", "chromium": "chromium"}


async def visitor(browser, url, until, latencies, errors, lost, index):
    context = await browser.new_context(viewport={"width": 1400, "height": 1000})
    page = await context.new_page()
    done = 0
    prediction = page.locator('[data-testid="stMetric"]').filter(has_text="Prediction").first
    try:
        await page.goto(f"{url}/draw", timeout=300_000)
        while time.perf_counter() < until:
            start = None
            for _ in range(10):  # a stroke on a canvas that is still mounting is lost: draw again
                canvas = page.locator("canvas.upper-canvas").first
                await canvas.wait_for(timeout=300_000)
                await page.wait_for_selector(IDLE, timeout=300_000)
                await asyncio.sleep(2.5)  # a freshly mounted canvas needs a moment before it takes strokes
                box = await canvas.bounding_box()
                points = stroke_points(box["x"], box["y"], dx=(index % 5) * 8 - 16)
                await page.mouse.move(*points[0])
                await page.mouse.down()
                for point in points[1:]:
                    await page.mouse.move(*point)
                await page.mouse.up()
                start = start or time.perf_counter()  # latency counts from the first stroke, lost ones included
                try:
                    await prediction.wait_for(timeout=30_000)
                    break
                except PlaywrightTimeout:
                    if await page.locator(IDLE).count() and await page.get_by_text("Draw a digit").count():
                        lost.append(index)  # the page is idle and saw no ink: the stroke was lost
                    continue
            await prediction.wait_for(timeout=300_000)
            latencies.append(time.perf_counter() - start)
            done += 1
            if await page.locator('[data-testid="stException"]').count():
                errors.append(f"session {index}: " + await page.locator('[data-testid="stException"]').first
                              .inner_text())
            await page.get_by_role("button", name="Clear").click()
            await page.get_by_text("Draw a digit", exact=True).wait_for(timeout=300_000)
    except Exception as error:  # a session that fails is reported, not hidden
        errors.append(f"session {index}: {type(error).__name__}: {str(error).splitlines()[0]}")
    finally:
        await context.close()
    return done


async def trainer(browser, url):
    page = await browser.new_page(viewport={"width": 1400, "height": 1000})
    await page.goto(f"{url}/train?model=cnn&preset=reference&num_epochs=5&train_limit=20000")
    await page.get_by_role("button", name="Start training").click()
    await page.get_by_text("Epoch").first.wait_for(timeout=300_000)
    return page


async def main(sessions, minutes):
    with fresh_home() as home, server(home, DIGITLAB_PUBLIC="1") as (url, process, _):
        async with async_playwright() as p:
            browser = await p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            warm = await browser.new_page()
            await warm.goto(f"{url}/draw")
            await warm.locator("canvas.upper-canvas").first.wait_for(timeout=300_000)
            await warm.close()
            before = rss_mb(process.pid)
            cpu = {name: cpu_seconds(match) for name, match in CPU_USERS.items()}
            training = await trainer(browser, url)
            latencies, errors, lost, peak = [], [], [], [before]
            until = time.perf_counter() + 60 * minutes

            async def watch():
                while time.perf_counter() < until + 60:
                    peak.append(rss_mb(process.pid))
                    await asyncio.sleep(1)

            watcher = asyncio.create_task(watch())
            counts = await asyncio.gather(*(visitor(browser, url, until, latencies, errors, lost, i)
                                             for i in range(sessions)))
            watcher.cancel()
            cpu = {name: cpu_seconds(match) - cpu[name] for name, match in CPU_USERS.items()}
            texts = await training.locator('[data-testid="stAlert"], [data-testid="stProgress"]').all_inner_texts()
            training_status = next((t for t in texts if any(w in t for w in ("Epoch", "Finished", "Stopped",
                                                                              "Queued", "Starting"))), "?")
            await training.close()
            await browser.close()
        time.sleep(60)  # sessions closed: give the server a minute to let go of them
        after = rss_mb(process.pid)
    ordered = sorted(latencies)
    p95 = ordered[int(0.95 * (len(ordered) - 1))] if ordered else float("nan")
    print(f"sessions {sessions}, {minutes} min, predictions per session {counts} (min {min(counts)})")
    print(f"mouse-up → prediction: p50 {statistics.median(ordered):.2f} s, p95 {p95:.2f} s over {len(ordered)}")
    print(f"strokes lost on a canvas still mounting (drawn again): {len(lost)}")
    print(f"errors: {len(errors)}" + "".join(f"\n  {e}" for e in errors[:10]))
    print("CPU seconds while the sessions ran: " + ", ".join(f"{k} {v:.0f}" for k, v in cpu.items()))
    print(f"server RSS: before {before:.0f} MB, peak {max(peak):.0f} MB, a minute after closing {after:.0f} MB")
    print(f"training at the end: {training_status.splitlines()[0]}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--sessions", type=int, default=20)
    parser.add_argument("--minutes", type=float, default=3)
    args = parser.parse_args()
    asyncio.run(main(args.sessions, args.minutes))
