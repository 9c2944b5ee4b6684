"""The load benchmark's light client keeps to Streamlit's protocol: a session opens Draw, and a stroke carrying a
drawn MNIST digit gets that digit back from both models, as a browser's stroke does; Clear brings a fresh canvas."""

import asyncio

from benchmarks.browser import server
from benchmarks.load import CANVAS, Tally, clear, load_drawings, open_draw, stroke


def test_a_stroke_from_the_light_client_gets_the_drawn_digit(home):
    drawings = load_drawings(2)

    async def visit(url):
        tally = Tally()
        session = await open_draw(url, tally)
        for value, label in drawings:
            await stroke(session, value, label, tally)
        first_canvas = session.components[CANVAS][0]
        await clear(session, tally)
        await session.close()
        return tally, first_canvas, session.components[CANVAS][0]

    with server(home) as (url, _, _):
        tally, before, after = asyncio.run(visit(url))
    assert tally.problems == []
    assert len(tally.answer) == 2 and tally.cnn_right == 2 and tally.ann_right == 2
    assert before.endswith("-canvas-0") and after.endswith("-canvas-1")
