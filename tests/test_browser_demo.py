"""The public demo in a real browser (DIGITLAB_PUBLIC=1): nothing from a link renders as markdown, and a visitor
is one person across reloads and tabs of the same browser (a signed cookie)."""

import asyncio
import json
import re
from concurrent.futures import ThreadPoolExecutor

import pytest
from playwright.sync_api import expect
from streamlit.proto.WidgetStates_pb2 import WidgetState

from benchmarks.streamlit_client import Session
from tests.conftest import seed_home
from tests.test_browser import assert_healthy, browser, running_app, wait_idle  # noqa: F401 - fixtures

pytestmark = pytest.mark.browser
MARKDOWN = "[click me](http://example.com/phish)"


@pytest.fixture(scope="module")
def demo(tmp_path_factory, mnist):
    with running_app(seed_home(tmp_path_factory.mktemp("demo"), mnist), DIGITLAB_PUBLIC="1") as url:
        yield url


@pytest.fixture
def visitor(browser):  # noqa: F811 - one browser context: one visitor, with its own cookies
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    yield context
    context.close()


def test_nothing_from_a_link_renders_as_markdown(demo, visitor):
    page = visitor.new_page()
    params = "&".join(f"{name}={MARKDOWN}" for name in ("job", "model", "preset", "num_epochs", "filters",
                                                         "learning_rate", "train_limit"))
    page.goto(f"{demo}/train?{params}")
    page.get_by_role("heading", name="Train a model").wait_for(timeout=60_000)
    wait_idle(page)
    assert page.get_by_text("click me", exact=False).count() >= 1  # the link text is shown, as text
    assert page.locator('a[href*="example.com"]').count() == 0
    assert_healthy(page)


def test_a_reload_and_a_second_tab_are_the_same_visitor(demo, visitor):
    first = visitor.new_page()
    first.goto(f"{demo}/train")
    start = first.get_by_role("button", name="Start training")
    start.wait_for(timeout=60_000)
    wait_idle(first)
    assert [c for c in visitor.cookies() if c["name"] == "digitlab_visitor"], "the visitor cookie was set"
    start.click()
    first.get_by_text("Run: CNN").wait_for(timeout=60_000)
    first.reload()  # a reload follows the visitor's own run, with Stop
    first.get_by_text("Run: CNN").wait_for(timeout=60_000)
    second = visitor.new_page()  # a second tab of the same browser: the same visitor, the same run
    second.goto(f"{demo}/train")
    second.get_by_text("Run: CNN").wait_for(timeout=60_000)
    second.get_by_text("Settings for the next run").click()  # the form is folded away while the run goes on
    expect(second.get_by_role("button", name="Start training")).to_be_disabled()  # no second run for this visitor
    second.get_by_test_id("stMainBlockContainer").get_by_role("button", name="Stop", exact=True).click()
    first.get_by_text(re.compile("^Stopped")).first.wait_for(timeout=30_000)
    assert_healthy(first)
    assert_healthy(second)


def test_another_browser_is_another_visitor(demo, browser):  # noqa: F811
    stranger = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = stranger.new_page()
    page.goto(f"{demo}/train")
    wait_idle(page)
    assert page.get_by_text("Run: CNN").count() == 0  # the first visitor's run is not theirs to see
    stranger.close()


def test_a_crafted_table_selection_shows_no_failure_and_no_traceback(demo):
    """Selections a browser never sends, straight over Streamlit's websocket: a cell named by text, two cells, a
    cell off the matrix, a selection that is not JSON. Each is ignored (or, inside Streamlit itself, shown without
    a traceback): the page never fails, and nothing shows the server's files."""
    crafted = [{"selection": {"rows": [], "columns": [], "cells": cells}}
               for cells in ([[3, "x"]], [[1, "2"], [3, "4"]], [[99, "99"]], [[-1, "-1"]])]

    async def craft():
        session = Session(demo)
        await session.open("results")
        confusion = session.widgets["confusion"][0]
        shown = []
        for value in [json.dumps(c) for c in crafted] + ["{{{"]:
            reply = await session.rerun([WidgetState(id=confusion, string_value=value)])
            shown.append([(kind, getattr(element, "body", "") or f"{element.type} {element.message} "
                           f"{' '.join(element.stack_trace)}") for _, kind, element in reply.elements()
                          if kind in ("alert", "exception")])
        await session.close()
        return shown

    with ThreadPoolExecutor(1) as thread:  # Playwright's sync API holds this thread's event loop
        shown = thread.submit(asyncio.run, craft()).result()
    assert shown[:4] == [[]] * 4  # ignored: no message at all
    assert all("problem it did not expect" not in text and ".py" not in text for _, text in shown[4]), shown[4]
