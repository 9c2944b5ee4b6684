"""Many visitors drawing at once while a training runs: what one core of server can take, measured on the server.

    taskset -c 1 python -m benchmarks.load [--sessions 20] [--minutes 2] [--interval 2] [--server-cpus 0] [--quick]

A real `streamlit run app.py` in demo mode (`DIGITLAB_PUBLIC=1`, fresh home) pinned to `--server-cpus` with taskset
(its queue runner and training workers inherit the pin and run niced beside it); the benchmark runs pinned to the
other core. The visitors are light clients speaking Streamlit's websocket protocol (`benchmarks/streamlit_client.py`),
not browsers, so the clients' core is not the bottleneck (its CPU use is reported).

1. Warm-up and costs alone: one visitor opens Draw and draws; once the server idles (a fresh home's run store is
   made in the background), 3 new visitors open Draw one at a time and a fourth draws 10 strokes one at a time;
   the server's CPU (from /proc) is read around each.
2. Training: two visitors open Train from a link (reference CNN, 5 epochs, 20,000 images) and press Start; the
   second waits in the queue, and each presses Start again when theirs ends, so a worker trains throughout. Both
   watch their run live (the page refreshes itself twice a second). Measuring starts once a worker runs.
3. `--sessions` new visitors open Draw at once (each downloads the page and its scripts, then connects); then 10 s
   with nobody drawing (the server's baseline).
4. For `--minutes` each visitor draws a stroke every `--interval` s (after the answer to the previous one when that
   is later). A stroke is what the browser sends on mouse-up: a rerun of the Draw board's fragment carrying the
   canvas as a PNG, here an MNIST test digit scaled to the 280×280 canvas, white on a transparent background.
   Latency is timed from sending it to the answer ("ANN: d · CNN: d"), to the fragment's `script_finished`, and to
   the last of its pictures downloaded. After every 4th stroke the visitor presses Clear (not timed).

Reported: strokes answered per visitor (every visitor must get answers), exceptions or the app's failure text in
any run, predictions equal to the drawn digit, p50/p95 stroke latency, server CPU per stroke and per new visitor,
server RSS before/peak/after, and from CPU per stroke how many visitors drawing a stroke every 2 s one core serves.
`--quick`: 3 visitors for 20 s, for a smoke run.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import io
import json
import os
import random
import re
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image
from streamlit.proto.WidgetStates_pb2 import WidgetState

from benchmarks.browser import descendants, fresh_home, process_cpu, rss_mb, server
from benchmarks.latency import canvases
from benchmarks.streamlit_client import Reply, Session

CANVAS = "digitlab.digit_pad"
ANSWER = re.compile(r"\*\*ANN: (\d)\*\*.*\*\*CNN: (\d)\*\*")
FAILURE = "hit a problem it did not expect"
TRAIN_QUERY = "model=cnn&preset=reference&num_epochs=5&train_limit=20000"


# The drawings: MNIST test digits as the canvas sends them


def canvas_value(rgba: np.ndarray) -> str:
    """The canvas widget's value on mouse-up (views/canvas.py): its drawing as a PNG data URL."""
    png = io.BytesIO()
    Image.fromarray(rgba).save(png, format="PNG")
    return json.dumps({"drawing": "data:image/png;base64," + base64.b64encode(png.getvalue()).decode()})


def load_drawings(n: int) -> list[tuple[str, int]]:
    images, labels = canvases(n, seed=1)
    return [(canvas_value(rgba), int(label)) for rgba, label in zip(images, labels)]


# One visitor on Draw


@dataclass
class Tally:
    opens: list[float] = field(default_factory=list)  # new visitor: page and scripts, connect → script finished, s
    answer: list[float] = field(default_factory=list)  # stroke sent → the answer arrived, s
    finished: list[float] = field(default_factory=list)  # → the fragment's script_finished
    pictures: list[float] = field(default_factory=list)  # → its last picture downloaded
    answered: dict[int, int] = field(default_factory=dict)  # visitor → strokes answered
    cnn_right: int = 0
    ann_right: int = 0
    clears: int = 0
    problems: list[str] = field(default_factory=list)


def problems_in(reply: Reply) -> list[str]:
    """Exception elements and the app's own failure text in a run."""
    found = []
    for _, kind, element in reply.elements():
        if kind == "exception":
            found.append(f"exception {element.type}: {element.message[:200]}")
        elif kind in ("alert", "markdown") and FAILURE in element.body:
            found.append(element.body[:200])
    return found


async def open_draw(url: str, tally: Tally) -> Session:
    session = Session(url)
    reply = await session.open("draw")
    tally.opens.append(reply.finished - reply.sent)
    tally.problems += problems_in(reply)
    if CANVAS not in session.components:
        tally.problems.append("Draw opened without a canvas")
    return session


async def stroke(session: Session, value: str, label: int, tally: Tally) -> None:
    """Send one stroke and check its answer; raises on no answer."""
    widget_id, fragment_id = session.components[CANVAS]
    reply = await session.rerun([WidgetState(id=widget_id, json_value=value)], fragment_id=fragment_id,
                                timeout=120)
    pictures = await session.fetch_media(reply)
    answers = [(at, ANSWER.search(element.body)) for at, kind, element in reply.elements() if kind == "markdown"]
    answers = [(at, match) for at, match in answers if match]
    tally.problems += problems_in(reply)
    if not answers:
        tally.problems.append("a stroke got no prediction")
        return
    at, match = answers[0]
    tally.answer.append(at - reply.sent)
    tally.finished.append(reply.finished - reply.sent)
    tally.pictures.append(pictures - reply.sent)
    tally.ann_right += int(match[1]) == label
    tally.cnn_right += int(match[2]) == label


async def clear(session: Session, tally: Tally) -> None:
    """Press Clear (the browser sends the canvas's value with it) and check a fresh canvas came back."""
    canvas_id, _ = session.components[CANVAS]
    clear_id, fragment_id = session.widgets["canvas-clear"]
    reply = await session.rerun([WidgetState(id=clear_id, trigger_value=True)], fragment_id=fragment_id, timeout=120)
    tally.problems += problems_in(reply)
    if session.components[CANVAS][0] == canvas_id:
        tally.problems.append("Clear did not bring a fresh canvas")
    tally.clears += 1


async def draw(session: Session, index: int, drawings, until: float, interval: float, tally: Tally) -> None:
    """Draw a stroke every `interval` s until `until` (the first at a random moment: visitors are not in step)."""
    rng = random.Random(index)
    next_at, count = time.perf_counter() + rng.uniform(0, interval), 0
    tally.answered[index] = 0
    try:
        while True:
            await asyncio.sleep(max(0.0, next_at - time.perf_counter()))
            if time.perf_counter() >= until:
                break
            next_at = max(next_at + interval, time.perf_counter())
            value, label = drawings[(index * 37 + count) % len(drawings)]
            await stroke(session, value, label, tally)
            count += 1
            tally.answered[index] = count
            if count % 4 == 0:
                await clear(session, tally)
    except (TimeoutError, ConnectionError, KeyError) as error:  # a visitor that fails is reported, not hidden
        tally.problems.append(f"visitor {index}: {type(error).__name__}: {error}")


# The training: two visitors keep one training going and watch it


async def keep_training(url: str, stop: asyncio.Event, started: list, problems: list) -> None:
    """Open Train from a link, press Start, watch the run live; press Start again when it ends, until `stop`."""
    session = Session(url)
    try:
        await session.open("train", query=TRAIN_QUERY)
        while not stop.is_set():
            reply = await session.click("start")
            if not any(kind == "heading" and element.body.startswith("Run: CNN") for _, kind, element in
                       reply.elements()):
                problems.append("Start did not start a run: " + "; ".join(
                    element.body[:150] for _, kind, element in reply.elements() if kind == "alert"))
                return
            started.append(time.perf_counter())
            # The run ended when a whole-page run shows Start enabled again; press it only once that page run has
            # finished (pressed before, the reply would be that run's end, with no new run in it).
            ended = False
            while not stop.is_set():
                try:
                    _, msg = await asyncio.wait_for(session.next_message(), 1)
                except TimeoutError:
                    continue
                element = msg.delta.new_element
                ended = ended or (msg.WhichOneof("type") == "delta" and element.WhichOneof("type") == "button" and
                                  element.button.id.endswith("-start") and not element.button.disabled)
                if ended and msg.WhichOneof("type") == "script_finished":
                    break
    except (TimeoutError, ConnectionError, KeyError) as error:
        problems.append(f"trainer: {type(error).__name__}: {error}")
    finally:
        await session.close()


def training_workers(server_pid: int) -> list[int]:
    """Training workers below the server (`python -m digitlab.worker JOB_ID`; not the queue runner)."""
    found = []
    for pid in descendants(server_pid):
        try:
            command = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"digitlab.worker" in command and b"--runner" not in command:
            found.append(pid)
    return found


def allowed_cpus(pid: int) -> str:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Cpus_allowed_list:"):
            return line.split()[1]
    return "?"


# The run


async def settle(cpu, *, timeout: float = 60) -> None:
    """Wait until the server idles (under 5% of a core over a second): after its first pages it still opens the run
    store and fills caches in the background, which would be counted against the first visitors and strokes."""
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        before = cpu()
        await asyncio.sleep(1)
        if cpu() - before < 0.05:
            return


def percentile(samples: list[float], q: float) -> float:
    return float(np.percentile(samples, q)) if samples else float("nan")


async def main(sessions: int, minutes: float, interval: float, server_cpus: str, quick: bool) -> None:
    cpu_name = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    print(f"CPU: {cpu_name}; load average before: {open('/proc/loadavg').read().strip()}")
    drawings = load_drawings(200)
    with fresh_home() as home, server(home, cpus=server_cpus, DIGITLAB_PUBLIC="1") as (url, process, _):
        pid, alone = process.pid, Tally()
        cpu = lambda: process_cpu(pid)  # noqa: E731

        # 1. Warm-up, then what one visitor costs with nothing else going on.
        first = await open_draw(url, alone)
        for value, label in drawings[:3]:
            await stroke(first, value, label, alone)
        await first.close()
        await settle(cpu)
        open_cpu = []
        for _ in range(3):
            before = cpu()
            visitor = await open_draw(url, alone)
            open_cpu.append(cpu() - before)
            await visitor.close()
        visitor = await open_draw(url, alone)
        before = cpu()
        for value, label in drawings[3:13]:
            await stroke(visitor, value, label, alone)
        stroke_cpu_alone = (cpu() - before) / 10
        await visitor.close()
        rss = {"before": rss_mb(pid)}
        peak = [rss["before"]]

        # 2. The training, kept going by two visitors; wait until a worker runs.
        stop, started, training_problems = asyncio.Event(), [], []
        trainers = [asyncio.create_task(keep_training(url, stop, started, training_problems)) for _ in range(2)]
        while not training_workers(pid):
            if training_problems:
                raise RuntimeError(f"the training did not start: {training_problems}")
            await asyncio.sleep(0.2)
        worker_pid = training_workers(pid)[0]
        worker_cpus = allowed_cpus(worker_pid)
        samples = {"drawing": 0, "worker": 0}
        phase = {"drawing": False}

        async def watch():
            while True:
                peak.append(rss_mb(pid))
                if phase["drawing"]:
                    samples["drawing"] += 1
                    samples["worker"] += bool(training_workers(pid))
                await asyncio.sleep(0.5)

        watcher = asyncio.create_task(watch())

        # 3. New visitors, all at once; then the baseline.
        tally = Tally()
        before = cpu()
        visitors = await asyncio.gather(*(open_draw(url, tally) for _ in range(sessions)))
        cpu_opens = cpu() - before
        quiet = 3 if quick else 10
        before = cpu()
        await asyncio.sleep(quiet)
        baseline = (cpu() - before) / quiet  # CPU-s per second: the trainers' live views and the server idling

        # 4. Everyone draws.
        phase["drawing"] = True
        seconds = 20 if quick else 60 * minutes
        clients_before, before, t0 = os.times(), cpu(), time.perf_counter()
        until = t0 + seconds
        await asyncio.gather(*(draw(v, i, drawings, until, interval, tally) for i, v in enumerate(visitors)))
        elapsed, cpu_drawing, clients_after = time.perf_counter() - t0, cpu() - before, os.times()
        phase["drawing"] = False
        stop.set()
        await asyncio.gather(*trainers)
        for visitor in visitors:
            await visitor.close()
        await asyncio.sleep(5 if quick else 30)
        rss["after"] = rss_mb(pid)
        watcher.cancel()

    # Report
    strokes = len(tally.answer)
    clients_cpu = sum(clients_after[:2]) - sum(clients_before[:2])
    per_stroke = cpu_drawing / max(1, strokes)  # everything: strokes, Clears, the live views, idling
    answered = [tally.answered.get(i, 0) for i in range(sessions)]
    print(f"{sessions} visitors drawing a stroke every {interval:g} s for {elapsed:.0f} s while a training runs; "
          f"server on CPU {server_cpus} (its training worker on {worker_cpus}), clients on CPU "
          f"{allowed_cpus(os.getpid())}; load average after: {open('/proc/loadavg').read().strip()}")
    print(f"training: a worker ran in {samples['worker']}/{samples['drawing']} samples (every 0.5 s) while they drew; "
          f"trainings started: {len(started)}; problems: {training_problems or 'none'}")
    print(f"strokes answered per visitor: fewest {min(answered)}, most {max(answered)}, "
          f"{'every visitor answered' if min(answered) else 'NOT every visitor answered'}; "
          f"{strokes} strokes ({strokes / elapsed:.1f}/s) and {tally.clears} Clears")
    print(f"problems (exceptions, failure text, no answer): {len(tally.problems) + len(alone.problems)}"
          + "".join(f"\n  {p}" for p in (alone.problems + tally.problems)[:10]))
    print(f"prediction equals the drawn digit: CNN {tally.cnn_right / max(1, strokes):.1%}, "
          f"ANN {tally.ann_right / max(1, strokes):.1%}")
    for name, samples_s in (("answer", tally.answer), ("script finished", tally.finished),
                            ("pictures downloaded", tally.pictures)):
        print(f"stroke → {name}: p50 {percentile(samples_s, 50):.3f} s, p95 {percentile(samples_s, 95):.3f} s, "
              f"max {max(samples_s, default=float('nan')):.3f} s")
    print(f"new visitor's Draw page (HTML and scripts downloaded, connect → script finished), {sessions} at once: "
          f"median {statistics.median(tally.opens):.2f} s, max {max(tally.opens):.2f} s; server CPU "
          f"{cpu_opens / sessions:.3f} CPU-s each (alone, one at a time: {statistics.median(open_cpu):.3f})")
    print(f"server CPU while they drew: {cpu_drawing:.1f} CPU-s in {elapsed:.0f} s ({cpu_drawing / elapsed:.0%} of "
          f"its core); with nobody drawing: {baseline:.0%} (the two live training views)")
    print(f"server CPU per stroke: {per_stroke * 1000:.0f} ms everything included (the Clears, the live views), "
          f"{stroke_cpu_alone * 1000:.0f} ms alone (one visitor, no training)")
    print(f"one core serves ~{1 / per_stroke:.0f} strokes/s: ~{2 / per_stroke:.0f} visitors drawing a stroke every "
          f"2 s (from CPU per stroke, everything included)")
    print(f"server RSS: before {rss['before']:.0f} MB, peak {max(peak):.0f} MB, {5 if quick else 30} s after the "
          f"visitors left {rss['after']:.0f} MB")
    print(f"clients (this process): {clients_cpu:.1f} CPU-s while drawing ({clients_cpu / elapsed:.0%} of their core)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sessions", type=int, default=20)
    parser.add_argument("--minutes", type=float, default=2)
    parser.add_argument("--interval", type=float, default=2.0, help="seconds between one visitor's strokes")
    parser.add_argument("--server-cpus", default="0")
    parser.add_argument("--quick", action="store_true", help="a smoke run: 3 visitors for 20 s")
    args = parser.parse_args()
    asyncio.run(main(3 if args.quick else args.sessions, args.minutes, args.interval, args.server_cpus, args.quick))
